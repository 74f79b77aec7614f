-- library-docs typed table (PostgreSQL). Keep in step with sqlite_0001.sql.
-- One row per documentation page and version; the Markdown lives on disk
-- under WORKSPACE_DIR (file_path, relative), content_hash is the SHA-256
-- of that Markdown.
CREATE TABLE ld_pages (
    version       TEXT      NOT NULL,
    library       TEXT      NOT NULL,
    url           TEXT      NOT NULL,
    title         TEXT      NOT NULL,
    file_path     TEXT      NOT NULL,
    content_hash  TEXT      NOT NULL,
    bytes         BIGINT    NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    run_id        TEXT,
    PRIMARY KEY (version, library, url)
);
CREATE INDEX ld_pages_library_idx ON ld_pages (library, version);
