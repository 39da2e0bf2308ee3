DROP INDEX IF EXISTS inbox_pending_by_conversation;
CREATE INDEX inbox_pending ON inbox (processed_at, conversation_id, id);
DROP INDEX IF EXISTS outbox_due_pending;
DROP INDEX IF EXISTS outbox_by_conversation;
DROP INDEX IF EXISTS outbox_dead;
CREATE INDEX outbox_pending ON outbox (status, id);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
CREATE INDEX outbox_conversation ON outbox (conversation_id, status, id);
