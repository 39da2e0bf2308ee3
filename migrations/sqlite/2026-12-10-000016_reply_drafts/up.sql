-- Draft replies to support tickets and complaints (ERPNext Issue), one per ticket, written by the
-- ticket poller (src/pipeline/tickets.rs) from the knowledge base. Nothing is sent until a person
-- approves a draft (status approved, final_text what was sent) or rejects it (reason; the
-- knowledge it used is flagged for review).
CREATE TABLE reply_drafts (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    ticket TEXT NOT NULL UNIQUE,
    conversation_id TEXT NOT NULL,
    customer TEXT NOT NULL,
    subject TEXT NOT NULL,
    details TEXT NOT NULL,
    draft TEXT NOT NULL,
    passages TEXT NOT NULL,
    worded_by TEXT NOT NULL,
    ticket_modified TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    reviewed_at BIGINT,
    reviewed_by TEXT,
    final_text TEXT,
    reason TEXT
);
CREATE INDEX reply_drafts_status ON reply_drafts (status, id);
CREATE INDEX reply_drafts_conversation ON reply_drafts (conversation_id);

-- Where a poller of an outside list got to (the newest `modified` it has read), by name.
CREATE TABLE poll_cursors (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
