-- The embedded search index's sync cursors (bdc-search), one per app type
-- (source): moved only after the index commit. Keep in step with
-- sqlite_0001.sql.
CREATE TABLE search_cursors (
    app_type   TEXT      PRIMARY KEY,
    position   TEXT      NOT NULL,
    documents  BIGINT    NOT NULL DEFAULT 0,
    synced_at  TIMESTAMPTZ NOT NULL
);
