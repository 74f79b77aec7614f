-- discord typed tables (sqlite). Keep in step with postgres_0001.sql.
CREATE TABLE dc_guilds (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    icon_url      TEXT,
    first_seen_at TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);

CREATE TABLE dc_channels (
    id            TEXT PRIMARY KEY,
    guild_id      TEXT NOT NULL,
    name          TEXT NOT NULL,
    kind          TEXT,
    category      TEXT,
    parent_id     TEXT,
    topic         TEXT,
    first_seen_at TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);
CREATE INDEX dc_channels_guild_idx ON dc_channels (guild_id);

-- Actor profiles as Discord gives them (no e-mail: Discord never exposes it).
CREATE TABLE dc_users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    discriminator TEXT,
    nickname      TEXT,
    is_bot        BOOLEAN NOT NULL DEFAULT FALSE,
    avatar_url    TEXT,
    first_seen_at TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);

CREATE TABLE dc_messages (
    id            TEXT PRIMARY KEY,
    channel_id    TEXT NOT NULL,
    guild_id      TEXT NOT NULL,
    author_id     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    content       TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMP NOT NULL,
    edited_at     TIMESTAMP,
    month         TEXT NOT NULL,
    reply_to_id   TEXT,
    is_pinned     BOOLEAN NOT NULL DEFAULT FALSE,
    attachments   TEXT NOT NULL DEFAULT '[]',
    reactions     TEXT NOT NULL DEFAULT '[]',
    mentions      TEXT NOT NULL DEFAULT '[]',
    content_hash  TEXT NOT NULL,
    deleted       BOOLEAN NOT NULL DEFAULT FALSE,
    source        TEXT NOT NULL,
    revision      BIGINT NOT NULL DEFAULT 1,
    run_id        TEXT,
    first_seen_at TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);
CREATE INDEX dc_messages_channel_idx ON dc_messages (channel_id, created_at);
CREATE INDEX dc_messages_month_idx ON dc_messages (channel_id, month);
CREATE INDEX dc_messages_author_idx ON dc_messages (author_id);

-- Every export file read by discord-backfill, by content hash: a file
-- already here (same bytes, any path) is not imported again.
CREATE TABLE dc_imported_files (
    content_hash  TEXT PRIMARY KEY,
    path          TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    channel_id    TEXT,
    messages      BIGINT NOT NULL,
    malformed     BIGINT NOT NULL,
    status        TEXT NOT NULL,
    problem       TEXT,
    run_id        TEXT,
    imported_at   TIMESTAMP NOT NULL
);
