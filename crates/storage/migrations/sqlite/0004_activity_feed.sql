-- The search index reads activity records in (updated_at, id) order
-- (ActivityStore::changed_after): a range scan instead of a sort per batch.
CREATE INDEX activity_records_updated_idx ON activity_records (updated_at, id);
