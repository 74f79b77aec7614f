-- Greenness tracking (PostgreSQL). Keep in step with ../sqlite/0001_greenness.sql.
CREATE TABLE greenness_queues (
    name        TEXT        PRIMARY KEY,
    repo        TEXT        NOT NULL,
    ref_name    TEXT        NOT NULL,
    last_green_uri TEXT,
    last_green_seq BIGINT,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE greenness_project_green (
    queue          TEXT   NOT NULL REFERENCES greenness_queues (name),
    project        TEXT   NOT NULL,
    last_green_uri TEXT   NOT NULL,
    last_green_seq BIGINT NOT NULL,
    PRIMARY KEY (queue, project)
);

CREATE TABLE greenness_counters (
    queue TEXT   PRIMARY KEY,
    value BIGINT NOT NULL
);

CREATE TABLE greenness_requests (
    id         TEXT        PRIMARY KEY,
    queue      TEXT        NOT NULL REFERENCES greenness_queues (name),
    seq        BIGINT      NOT NULL,
    head_uri   TEXT        NOT NULL,
    state      TEXT        NOT NULL,
    version    BIGINT      NOT NULL,
    data       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (queue, head_uri),
    UNIQUE (queue, seq)
);

-- Append-only facts: never updated, never deleted.
CREATE TABLE greenness_records (
    id              BIGSERIAL   PRIMARY KEY,
    queue           TEXT        NOT NULL,
    request_id      TEXT        NOT NULL,
    seq             BIGINT      NOT NULL,
    commit_uri      TEXT        NOT NULL,
    scope           TEXT        NOT NULL,
    degree          DOUBLE PRECISION NOT NULL CHECK (degree >= 0 AND degree <= 1),
    outcome         TEXT        NOT NULL CHECK (outcome IN ('passed', 'failed', 'undetermined')),
    build_id        TEXT,
    failing_targets TEXT        NOT NULL DEFAULT '[]',
    log_location    TEXT,
    evidence        TEXT        NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX greenness_records_commit_idx ON greenness_records (queue, commit_uri, scope, id);
CREATE INDEX greenness_records_scope_idx ON greenness_records (queue, scope, id);

CREATE TABLE greenness_messages (
    id           BIGSERIAL PRIMARY KEY,
    queue        TEXT      NOT NULL,
    request_id   TEXT      NOT NULL,
    stage        TEXT      NOT NULL,
    payload      TEXT,
    attempts     BIGINT    NOT NULL DEFAULT 0,
    available_us BIGINT    NOT NULL,
    lease_owner  TEXT,
    lease_until_us BIGINT,
    last_error   TEXT,
    created_us   BIGINT    NOT NULL
);
CREATE INDEX greenness_messages_due_idx ON greenness_messages (available_us, id);

CREATE TABLE greenness_dead_letters (
    id          BIGSERIAL   PRIMARY KEY,
    message_id  BIGINT      NOT NULL,
    queue       TEXT        NOT NULL,
    request_id  TEXT        NOT NULL,
    stage       TEXT        NOT NULL,
    payload     TEXT,
    attempts    BIGINT      NOT NULL,
    error       TEXT        NOT NULL,
    dead_at     TIMESTAMPTZ NOT NULL
);
