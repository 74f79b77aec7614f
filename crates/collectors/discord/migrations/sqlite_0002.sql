-- The search index reads changed messages in (updated_at, id) order
-- (store::changed_messages) and follows reply chains (store::reply_chain).
CREATE INDEX dc_messages_updated_idx ON dc_messages (updated_at, id);
CREATE INDEX dc_messages_reply_idx ON dc_messages (reply_to_id);
