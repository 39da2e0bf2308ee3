DROP INDEX outbox_conversation;
