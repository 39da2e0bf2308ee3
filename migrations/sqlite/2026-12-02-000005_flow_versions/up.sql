-- Every compiled flow a conversation may still be on, by the SHA-256 of its compiled JSON: a
-- journey keeps the content it started with across restarts, edits and instances. Rows are
-- never updated.
CREATE TABLE flow_versions (
    hash TEXT PRIMARY KEY NOT NULL,
    flow_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
