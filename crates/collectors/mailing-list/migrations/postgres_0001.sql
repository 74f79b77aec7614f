-- mailing-list typed tables (PostgreSQL). Keep in step with sqlite_0001.sql.
CREATE TABLE ml_lists (
    name          TEXT PRIMARY KEY,
    archive_url   TEXT,
    first_seen_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE ml_messages (
    list            TEXT      NOT NULL REFERENCES ml_lists (name),
    message_id      TEXT      NOT NULL,
    id_synthesized  BOOLEAN   NOT NULL DEFAULT FALSE,
    subject         TEXT,
    from_name       TEXT,
    from_email      TEXT,
    sent_at         TIMESTAMPTZ,
    month           TEXT,
    parent_id       TEXT,
    thread_root     TEXT      NOT NULL,
    body_text       TEXT      NOT NULL DEFAULT '',
    attachments     BIGINT    NOT NULL DEFAULT 0,
    size_bytes      BIGINT    NOT NULL DEFAULT 0,
    content_hash    TEXT      NOT NULL,
    malformed       TEXT,
    revision        BIGINT    NOT NULL DEFAULT 1,
    run_id          TEXT,
    first_seen_at   TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (list, message_id)
);
CREATE INDEX ml_messages_thread_idx ON ml_messages (list, thread_root, sent_at);
CREATE INDEX ml_messages_month_idx ON ml_messages (list, month);
CREATE INDEX ml_messages_from_idx ON ml_messages (from_email);

CREATE TABLE ml_thread_links (
    list          TEXT   NOT NULL,
    message_id    TEXT   NOT NULL,
    position      BIGINT NOT NULL,
    referenced_id TEXT   NOT NULL,
    PRIMARY KEY (list, message_id, position)
);
CREATE INDEX ml_thread_links_ref_idx ON ml_thread_links (list, referenced_id);
