-- A conversation's pending rows, in queue order: the dispatcher's interactive pass sends them
-- ahead of the backlog, and operators' views list a conversation's messages.
CREATE INDEX outbox_conversation ON outbox (conversation_id, status, id);
