-- Pinecone records whose upsert or delete failed after retries (bdc-pinecone);
-- retried first on the next sync. Keep in step with the sqlite file.
CREATE TABLE pinecone_failed_records (
    index_name TEXT        NOT NULL,
    namespace  TEXT        NOT NULL,
    record_id  TEXT        NOT NULL,
    operation  TEXT        NOT NULL CHECK (operation IN ('upsert', 'delete')),
    error      TEXT        NOT NULL,
    attempts   INTEGER     NOT NULL DEFAULT 1,
    failed_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (index_name, namespace, record_id)
);
