-- HTTP validator cache (bdc-http). Keep in step with migrations/sqlite/0001_http_cache.sql.
CREATE TABLE http_cache (
    url           TEXT        PRIMARY KEY,
    etag          TEXT,
    last_modified TEXT,
    link          TEXT,
    status        INTEGER     NOT NULL,
    body_gz       BYTEA       NOT NULL,
    fetched_at    TIMESTAMPTZ NOT NULL
);
