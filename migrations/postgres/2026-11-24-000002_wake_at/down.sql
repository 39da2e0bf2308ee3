DROP INDEX conversations_wake_at;
ALTER TABLE conversations DROP COLUMN wake_at;
