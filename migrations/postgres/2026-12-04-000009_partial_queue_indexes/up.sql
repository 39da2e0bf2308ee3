-- The queues' indexes cover only what is still waiting. Marking an inbox row processed or an
-- outbox row sent changes a column an index reads, so PostgreSQL writes a new entry into every
-- index of the table whose condition the new row version meets (no heap-only update): with
-- partial indexes, the finished row version enters none of them, and the indexes stay as small
-- as the queue rather than growing with every message ever handled.
DROP INDEX IF EXISTS inbox_pending;
CREATE INDEX inbox_pending_by_conversation ON inbox (conversation_id, id) WHERE processed_at IS NULL;

DROP INDEX IF EXISTS outbox_pending;
DROP INDEX IF EXISTS outbox_due;
DROP INDEX IF EXISTS outbox_conversation;
CREATE INDEX outbox_due_pending ON outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX outbox_by_conversation ON outbox (conversation_id, id);
CREATE INDEX outbox_dead ON outbox (id) WHERE status = 'dead';
