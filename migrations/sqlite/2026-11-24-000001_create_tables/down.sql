DROP TABLE message_statuses;
DROP TABLE outbox;
DROP TABLE turns;
DROP TABLE conversations;
DROP TABLE inbox;
