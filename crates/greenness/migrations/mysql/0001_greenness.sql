-- Greenness tracking (MySQL 8 / MariaDB >= 10.6). Keep in step with ../postgres/0001_greenness.sql.
-- Keys are VARCHAR (TEXT cannot be a plain UNIQUE key); timestamps are
-- DATETIME(6) in UTC (the session time zone is +00:00).
CREATE TABLE IF NOT EXISTS greenness_queues (
    name        VARCHAR(191) NOT NULL PRIMARY KEY,
    repo        TEXT         NOT NULL,
    ref_name    TEXT         NOT NULL,
    last_green_uri TEXT,
    last_green_seq BIGINT,
    updated_at  DATETIME(6)  NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS greenness_project_green (
    queue          VARCHAR(191) NOT NULL,
    project        VARCHAR(255) NOT NULL,
    last_green_uri TEXT         NOT NULL,
    last_green_seq BIGINT       NOT NULL,
    PRIMARY KEY (queue, project),
    FOREIGN KEY (queue) REFERENCES greenness_queues (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS greenness_counters (
    queue VARCHAR(191) NOT NULL PRIMARY KEY,
    value BIGINT       NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS greenness_requests (
    id         VARCHAR(255) NOT NULL PRIMARY KEY,
    queue      VARCHAR(191) NOT NULL,
    seq        BIGINT       NOT NULL,
    head_uri   VARCHAR(512) NOT NULL,
    state      VARCHAR(32)  NOT NULL,
    version    BIGINT       NOT NULL,
    data       LONGTEXT     NOT NULL,
    created_at DATETIME(6)  NOT NULL,
    updated_at DATETIME(6)  NOT NULL,
    UNIQUE KEY greenness_requests_head (queue, head_uri),
    UNIQUE KEY greenness_requests_seq (queue, seq),
    FOREIGN KEY (queue) REFERENCES greenness_queues (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Append-only facts: never updated, never deleted.
CREATE TABLE IF NOT EXISTS greenness_records (
    id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    queue           VARCHAR(191) NOT NULL,
    request_id      VARCHAR(255) NOT NULL,
    seq             BIGINT       NOT NULL,
    commit_uri      VARCHAR(512) NOT NULL,
    scope           VARCHAR(255) NOT NULL,
    degree          DOUBLE       NOT NULL CHECK (degree >= 0 AND degree <= 1),
    outcome         VARCHAR(16)  NOT NULL CHECK (outcome IN ('passed', 'failed', 'undetermined')),
    build_id        TEXT,
    failing_targets LONGTEXT     NOT NULL,
    log_location    TEXT,
    evidence        LONGTEXT     NOT NULL,
    recorded_at     DATETIME(6)  NOT NULL,
    KEY greenness_records_commit_idx (queue, commit_uri(255), scope(64), id),
    KEY greenness_records_scope_idx (queue, scope(191), id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS greenness_messages (
    id           BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    queue        VARCHAR(191) NOT NULL,
    request_id   VARCHAR(255) NOT NULL,
    stage        VARCHAR(32)  NOT NULL,
    payload      LONGTEXT,
    attempts     BIGINT       NOT NULL DEFAULT 0,
    available_us BIGINT       NOT NULL,
    lease_owner  VARCHAR(255),
    lease_until_us BIGINT,
    last_error   TEXT,
    created_us   BIGINT       NOT NULL,
    KEY greenness_messages_due_idx (available_us, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS greenness_dead_letters (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    message_id  BIGINT       NOT NULL,
    queue       VARCHAR(191) NOT NULL,
    request_id  VARCHAR(255) NOT NULL,
    stage       VARCHAR(32)  NOT NULL,
    payload     LONGTEXT,
    attempts    BIGINT       NOT NULL,
    error       TEXT         NOT NULL,
    dead_at     DATETIME(6)  NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
