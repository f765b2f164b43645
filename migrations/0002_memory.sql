-- Memory: conversation threads, facts, notes, and the recall index over them (FTS5 for BM25,
-- int8 embeddings for cosine). Times are Unix microseconds (UTC).

-- A conversation (a chat session or an agent step's turns). A thread goes on across sessions.
CREATE TABLE mem_threads (
    id         TEXT PRIMARY KEY NOT NULL,
    namespace  TEXT NOT NULL,
    title      TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE mem_messages (
    id           INTEGER PRIMARY KEY,
    thread_id    TEXT NOT NULL REFERENCES mem_threads (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,        -- 1, 2, … within the thread
    role         TEXT NOT NULL,           -- system | user | assistant | tool
    content      TEXT NOT NULL,
    tool_calls   TEXT,                    -- JSON array of calls an assistant message asked for
    tool_call_id TEXT,                    -- role tool: the call this result answers
    name         TEXT,                    -- role tool: the tool's name
    tokens       INTEGER,                 -- as counted by the chat model's tokenizer, if known
    run_id       TEXT,
    step         TEXT,
    created_at   INTEGER NOT NULL,
    UNIQUE (thread_id, seq)
);

-- Free text to recall later; split into chunks for the index.
CREATE TABLE mem_notes (
    id         TEXT PRIMARY KEY NOT NULL,   -- ULID
    namespace  TEXT NOT NULL,
    subject    TEXT,
    title      TEXT,
    body       TEXT NOT NULL,
    tags       TEXT,                        -- JSON array of strings
    source     TEXT,                        -- where it came from (file, URL, tool)
    run_id     TEXT,
    step       TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
CREATE INDEX mem_notes_by_ns ON mem_notes (namespace, created_at);

-- subject/key = value. A newer value for the same key supersedes the older one, which stays
-- as history (superseded_at set).
CREATE TABLE mem_facts (
    id            TEXT PRIMARY KEY NOT NULL,  -- ULID
    namespace     TEXT NOT NULL,
    subject       TEXT NOT NULL,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    run_id        TEXT,
    step          TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    superseded_at INTEGER,
    superseded_by TEXT
);
CREATE UNIQUE INDEX mem_facts_current ON mem_facts (namespace, subject, key) WHERE superseded_at IS NULL;
CREATE INDEX mem_facts_history ON mem_facts (namespace, subject, key, created_at);
CREATE INDEX mem_facts_by_ns ON mem_facts (namespace, created_at);

-- The unit of recall: a chunk of a note, a current fact, or a chat message.
CREATE TABLE mem_chunks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: in-memory vector caches follow ids
    kind       TEXT NOT NULL,                     -- note | fact | message
    owner      TEXT NOT NULL,                     -- note id, fact id, or thread id
    ord        INTEGER NOT NULL,                  -- chunk number in the note; message seq
    namespace  TEXT NOT NULL,
    subject    TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    text       TEXT NOT NULL,
    embedding  BLOB                               -- 384 int8 then a little-endian f32 scale; NULL until embedded
);
CREATE INDEX mem_chunks_by_owner ON mem_chunks (owner, ord);
CREATE INDEX mem_chunks_unembedded ON mem_chunks (id) WHERE embedding IS NULL;

-- BM25 over chunk text. External content: the text lives once, in mem_chunks.
CREATE VIRTUAL TABLE mem_fts USING fts5 (
    text,
    content = 'mem_chunks',
    content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

-- Every change to mem_chunks, in commit order, so each process's vector cache can catch up
-- with writes made by any process.
CREATE TABLE mem_changes (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_id INTEGER NOT NULL,
    op       TEXT NOT NULL                         -- put | del
);

CREATE TRIGGER mem_chunks_ai AFTER INSERT ON mem_chunks BEGIN
    INSERT INTO mem_fts (rowid, text) VALUES (new.id, new.text);
    INSERT INTO mem_changes (chunk_id, op) VALUES (new.id, 'put');
END;
CREATE TRIGGER mem_chunks_ad AFTER DELETE ON mem_chunks BEGIN
    INSERT INTO mem_fts (mem_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO mem_changes (chunk_id, op) VALUES (old.id, 'del');
END;
CREATE TRIGGER mem_chunks_au_text AFTER UPDATE OF text ON mem_chunks BEGIN
    INSERT INTO mem_fts (mem_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO mem_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER mem_chunks_au AFTER UPDATE ON mem_chunks BEGIN
    INSERT INTO mem_changes (chunk_id, op) VALUES (new.id, 'put');
END;

-- Retention per namespace (`*`: every namespace without its own row).
CREATE TABLE mem_policies (
    namespace   TEXT PRIMARY KEY NOT NULL,
    max_items   INTEGER,                 -- notes + current facts kept; the oldest go first
    ttl_seconds INTEGER                  -- notes, facts and messages older than this are removed
);

CREATE TABLE mem_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
