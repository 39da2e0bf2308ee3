-- Hand-offs to a person: one row each time a conversation is handed to the team (the customer
-- asked, was upset, got stuck, or something of theirs was set aside), so that somebody is told
-- and the wait is visible. Written by the outbox (kind 'handoff') from the turn that handed the
-- conversation off, once per turn (idempotency_key). status: 'waiting' until an agent takes it
-- ('taken'), then 'resolved' (with a note) or 'released' (back to the bot).
CREATE TABLE handoffs (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    conversation_id TEXT NOT NULL,
    customer TEXT NOT NULL,
    reason TEXT NOT NULL,
    queue TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    taken_by TEXT,
    taken_at BIGINT,
    closed_by TEXT,
    closed_at BIGINT,
    note TEXT
);
CREATE INDEX handoffs_by_status ON handoffs (status, id);
CREATE INDEX handoffs_by_conversation ON handoffs (conversation_id, id);
