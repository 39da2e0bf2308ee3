DROP INDEX outbox_due;
ALTER TABLE outbox DROP COLUMN claim_token;
ALTER TABLE outbox DROP COLUMN claim_owner;
