-- The search index reads changed messages in (updated_at, list, message_id)
-- order (store::changed_messages).
CREATE INDEX ml_messages_updated_idx ON ml_messages (updated_at, list, message_id);
