-- Foundation schema (PostgreSQL). Keep in step with migrations/sqlite/0001_foundation.sql.
CREATE TABLE collector_runs (
    id               BIGSERIAL PRIMARY KEY,
    run_id           TEXT        NOT NULL UNIQUE,
    collector        TEXT        NOT NULL,
    command          TEXT        NOT NULL,
    schedule_group   TEXT,
    args             JSONB       NOT NULL DEFAULT '[]',
    worker_id        TEXT,
    started_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ,
    status           TEXT        NOT NULL
        CHECK (status IN ('running', 'success', 'failed', 'not_available')),
    failure_category TEXT,
    error            TEXT,
    counts           JSONB       NOT NULL DEFAULT '{}'
);
CREATE INDEX collector_runs_collector_idx ON collector_runs (collector, started_at DESC);
CREATE INDEX collector_runs_started_idx ON collector_runs (started_at DESC);

CREATE TABLE schedule_group_runs (
    id           BIGSERIAL PRIMARY KEY,
    group_id     TEXT        NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    status       TEXT        NOT NULL CHECK (status IN ('running', 'success', 'failed')),
    tasks_run    BIGINT      NOT NULL DEFAULT 0,
    tasks_failed BIGINT      NOT NULL DEFAULT 0
);
CREATE INDEX schedule_group_runs_group_idx ON schedule_group_runs (group_id, status, finished_at DESC);

CREATE TABLE collector_checkpoints (
    collector             TEXT        NOT NULL,
    scope                 TEXT        NOT NULL,
    checkpoint_token      TEXT        NOT NULL,
    human_readable_marker TEXT        NOT NULL DEFAULT '',
    extras                JSONB       NOT NULL DEFAULT '{}',
    run_id                TEXT,
    updated_at            TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (collector, scope)
);

CREATE TABLE activity_records (
    id            BIGSERIAL PRIMARY KEY,
    source_system TEXT        NOT NULL,
    external_id   TEXT        NOT NULL,
    kind          TEXT        NOT NULL,
    occurred_at   TIMESTAMPTZ NOT NULL,
    actor         TEXT,
    title         TEXT,
    url           TEXT,
    payload       JSONB       NOT NULL DEFAULT '{}',
    revision      BIGINT      NOT NULL DEFAULT 1,
    run_id        TEXT,
    first_seen_at TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (source_system, external_id)
);
CREATE INDEX activity_records_occurred_idx ON activity_records (occurred_at DESC);
CREATE INDEX activity_records_source_kind_idx ON activity_records (source_system, kind, occurred_at DESC);
CREATE INDEX activity_records_actor_idx ON activity_records (actor, occurred_at DESC);

CREATE TABLE worker_heartbeats (
    worker_id    TEXT        PRIMARY KEY,
    hostname     TEXT        NOT NULL,
    pid          BIGINT      NOT NULL,
    role         TEXT        NOT NULL,
    version      TEXT        NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE index_syncs (
    index_name    TEXT        PRIMARY KEY,
    collector     TEXT        NOT NULL,
    items         BIGINT      NOT NULL DEFAULT 0,
    final_sync_at TIMESTAMPTZ NOT NULL
);
