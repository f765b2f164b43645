-- The run journal. Every transition of a run is written here before the next step starts.
-- Times are Unix microseconds (UTC). JSON is stored as text.

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

-- One row per step execution key (`fetch`, `fan[3].lookup`, `call/inner`).
CREATE TABLE steps (
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    step_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,            -- running | succeeded | failed | skipped | continued
    attempts    INTEGER NOT NULL DEFAULT 0,
    seq         INTEGER NOT NULL,         -- order in which steps first started
    started_at  INTEGER,
    finished_at INTEGER,
    error       TEXT,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;

-- Every attempt of every step, finished or not.
CREATE TABLE attempts (
    run_id      TEXT NOT NULL,
    key         TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    status      TEXT NOT NULL,            -- running | succeeded | failed
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    error       TEXT,
    PRIMARY KEY (run_id, key, attempt)
) WITHOUT ROWID;

-- Step outputs, stored once each (resume replays them instead of running the step).
CREATE TABLE outputs (
    run_id TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;

-- Append-only timeline of a run.
CREATE TABLE events (
    run_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    key    TEXT,
    data   TEXT,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
