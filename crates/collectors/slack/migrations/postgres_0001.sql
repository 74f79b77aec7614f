-- slack typed tables (postgres). Keep in step with sqlite_0001.sql.
CREATE TABLE sl_team (
    id            TEXT PRIMARY KEY,
    name          TEXT,
    domain        TEXT,
    first_seen_at TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- Accounts as users.list / users.json give them (email needs users:read.email).
CREATE TABLE sl_users (
    id              TEXT PRIMARY KEY,
    team_id         TEXT,
    name            TEXT,
    real_name       TEXT,
    display_name    TEXT,
    email           TEXT,
    title           TEXT,
    is_bot          BOOLEAN NOT NULL DEFAULT FALSE,
    deleted         BOOLEAN NOT NULL DEFAULT FALSE,
    tz              TEXT,
    profile_updated BIGINT,
    first_seen_at   TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE sl_channels (
    id            TEXT PRIMARY KEY,
    team_id       TEXT,
    name          TEXT NOT NULL,
    is_private    BOOLEAN NOT NULL DEFAULT FALSE,
    is_archived   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ,
    creator       TEXT,
    topic         TEXT,
    purpose       TEXT,
    num_members   BIGINT,
    first_seen_at TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE sl_channel_members (
    channel_id    TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel_id, user_id)
);

-- One row per message (thread replies too: thread_ts = the parent's ts).
-- An edit rewrites the row (content_hash, revision); a deletion sets
-- `deleted`, the row stays.
CREATE TABLE sl_messages (
    channel_id    TEXT NOT NULL,
    ts            TEXT NOT NULL,
    thread_ts     TEXT,
    user_id       TEXT,
    text          TEXT NOT NULL DEFAULT '',
    subtype       TEXT,
    edited_ts     TEXT,
    reply_count   BIGINT NOT NULL DEFAULT 0,
    posted_at     TIMESTAMPTZ NOT NULL,
    -- edit time, else post time: an older version never overwrites a newer one
    version_at    TIMESTAMPTZ NOT NULL,
    deleted       BOOLEAN NOT NULL DEFAULT FALSE,
    content_hash  TEXT NOT NULL,
    source        TEXT NOT NULL,
    revision      BIGINT NOT NULL DEFAULT 1,
    run_id        TEXT,
    first_seen_at TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel_id, ts)
);
CREATE INDEX sl_messages_thread_idx ON sl_messages (channel_id, thread_ts);
CREATE INDEX sl_messages_user_idx ON sl_messages (user_id);
CREATE INDEX sl_messages_posted_idx ON sl_messages (posted_at);

CREATE TABLE sl_reactions (
    channel_id    TEXT NOT NULL,
    message_ts    TEXT NOT NULL,
    name          TEXT NOT NULL,
    count         BIGINT NOT NULL,
    users         TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (channel_id, message_ts, name)
);

-- File metadata only (never downloaded).
CREATE TABLE sl_files (
    id            TEXT PRIMARY KEY,
    channel_id    TEXT NOT NULL,
    message_ts    TEXT NOT NULL,
    user_id       TEXT,
    name          TEXT,
    title         TEXT,
    mimetype      TEXT,
    filetype      TEXT,
    size_bytes    BIGINT,
    created_at    TIMESTAMPTZ,
    permalink     TEXT,
    first_seen_at TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX sl_files_message_idx ON sl_files (channel_id, message_ts);
