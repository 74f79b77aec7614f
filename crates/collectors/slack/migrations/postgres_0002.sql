-- The search index reads changed messages in (updated_at, channel_id, ts)
-- order (store::changed_messages).
CREATE INDEX sl_messages_updated_idx ON sl_messages (updated_at, channel_id, ts);
