-- What the worker could not read, set aside with its error instead of blocking its conversation:
-- an inbound event that does not parse, a stored state that does not parse, or a turn that failed
-- on every attempt. The conversation is handed to a person and its later messages are processed;
-- operators see these in the admin API (/admin/quarantine) and in `explain`.
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    conversation_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    inbox_id BIGINT,
    body TEXT NOT NULL,
    error TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX quarantine_conversation ON quarantine (conversation_id, id);
