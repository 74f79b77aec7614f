-- HTTP validator cache (bdc-http). Keep in step with migrations/postgres/0001_http_cache.sql.
CREATE TABLE http_cache (
    url           TEXT    PRIMARY KEY,
    etag          TEXT,
    last_modified TEXT,
    link          TEXT,
    status        INTEGER NOT NULL,
    body_gz       BLOB    NOT NULL,
    fetched_at    TEXT    NOT NULL
);
