-- Outbox claims with an owner and a fencing token: a claim moves `next_attempt_at` ahead, names
-- the process that holds it and takes the next token; every later change of the row (sent,
-- retry, dead, extended, given back) holds only while the token is still the one it took, so a
-- process whose claim expired cannot mark, retry or dead-letter what another now holds.
-- `attempts` now counts claims (attempts started), so a row whose outcome could not be recorded
-- still reaches the dead letter.
ALTER TABLE outbox ADD COLUMN claim_owner TEXT;
ALTER TABLE outbox ADD COLUMN claim_token BIGINT NOT NULL DEFAULT 0;
-- The due rows of the queue, for the backlog pass (pending and due, in queue order).
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
