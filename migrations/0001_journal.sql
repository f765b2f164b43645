-- The run journal. Every transition of a run is an event, appended before anything that
-- depends on it starts; `steps`, `attempts` and `outputs` are views over the events. Times
-- are Unix microseconds (UTC). JSON is stored as text.

CREATE TABLE runs (
    id            TEXT PRIMARY KEY NOT NULL,
    plan_name     TEXT NOT NULL,
    plan_path     TEXT,
    plan_source   TEXT NOT NULL,
    plan_hash     TEXT NOT NULL,
    inputs        TEXT NOT NULL,
    status        TEXT NOT NULL,          -- running | succeeded | failed | cancelled
    outputs       TEXT,
    error         TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    pid           INTEGER,                -- process driving the run while it is running
    parent_run_id TEXT
);
CREATE INDEX runs_by_created ON runs (created_at);
CREATE INDEX runs_by_status ON runs (status, created_at);

-- Append-only history of every run: one B-tree, rows appended in order, so a step costs one
-- small write. Step keys look like `fetch`, `fan[3].lookup`, `call/inner`.
CREATE TABLE events (
    run_id    TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL,    -- run_created | run_resumed | step_started | attempt_failed | step_finished | run_finished
    key       TEXT,
    step_id   TEXT,
    step_kind TEXT,
    attempt   INTEGER,
    status    TEXT,             -- step_started: running; step_finished: succeeded | failed | continued | skipped
    output    TEXT,
    error     TEXT,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- The latest state of each step of each run.
CREATE VIEW steps AS
SELECT run_id, key, step_id, step_kind AS kind, status, attempt AS attempts, at AS updated_at, error
FROM (
    SELECT e.*, ROW_NUMBER() OVER (PARTITION BY run_id, key ORDER BY seq DESC) AS rn
    FROM events e
    WHERE kind IN ('step_started', 'step_finished')
)
WHERE rn = 1;

-- Every attempt: when it started and how it ended (NULL while running or interrupted).
CREATE VIEW attempts AS
SELECT s.run_id, s.key, s.attempt, s.at AS started_at,
       (SELECT CASE WHEN e.kind = 'attempt_failed' THEN 'failed' ELSE e.status END
        FROM events e WHERE e.run_id = s.run_id AND e.key = s.key AND e.attempt = s.attempt
          AND e.kind IN ('attempt_failed', 'step_finished') ORDER BY e.seq LIMIT 1) AS status,
       (SELECT e.at
        FROM events e WHERE e.run_id = s.run_id AND e.key = s.key AND e.attempt = s.attempt
          AND e.kind IN ('attempt_failed', 'step_finished') ORDER BY e.seq LIMIT 1) AS finished_at
FROM events s
WHERE s.kind = 'step_started';

-- Outputs of finished steps.
CREATE VIEW outputs AS
SELECT run_id, key, output AS value FROM events WHERE kind = 'step_finished' AND output IS NOT NULL;
