-- youtube-transcripts (SQLite). Keep in step with postgres_0001.sql.
CREATE TABLE yt_channels (
    channel_id          TEXT        PRIMARY KEY,
    title               TEXT        NOT NULL,
    uploads_playlist    TEXT,
    newest_published_at TIMESTAMP  ,              -- checkpoint: newest upload stored
    updated_at          TIMESTAMP   NOT NULL
);
CREATE TABLE yt_videos (
    video_id              TEXT        PRIMARY KEY,
    channel_id            TEXT        NOT NULL,
    title                 TEXT        NOT NULL,
    description           TEXT        NOT NULL,
    published_at          TIMESTAMP   NOT NULL,
    duration_seconds      BIGINT,
    tags                  TEXT        NOT NULL,   -- JSON array
    view_count            BIGINT,
    like_count            BIGINT,
    comment_count         BIGINT,
    -- pending | ok | none (no caption track) | invalid (no usable cue) | skipped
    transcript_status     TEXT        NOT NULL,
    transcript_format     TEXT,                   -- vtt | timedtext
    transcript_attempts   BIGINT      NOT NULL DEFAULT 0,
    transcript_checked_at TIMESTAMP  ,
    content_hash          TEXT        NOT NULL,
    updated_at            TIMESTAMP   NOT NULL
);
CREATE INDEX yt_videos_channel_idx ON yt_videos (channel_id, published_at);
CREATE TABLE yt_segments (
    video_id TEXT   NOT NULL,
    seq      BIGINT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms   BIGINT NOT NULL,
    text     TEXT   NOT NULL,
    PRIMARY KEY (video_id, seq)
);
