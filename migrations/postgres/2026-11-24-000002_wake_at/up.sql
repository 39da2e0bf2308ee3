-- When the scheduler should wake a conversation (a reminder is due), Unix ms.
ALTER TABLE conversations ADD COLUMN wake_at BIGINT;
CREATE INDEX conversations_wake_at ON conversations (wake_at);
