-- identity hub (PostgreSQL). Keep in step with sqlite_0001.sql.
CREATE TABLE identities (
    id           BIGSERIAL PRIMARY KEY,
    display_name TEXT,
    is_bot       BOOLEAN   NOT NULL DEFAULT FALSE,
    locked       BOOLEAN   NOT NULL DEFAULT FALSE,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE profiles (
    id              BIGSERIAL PRIMARY KEY,
    source          TEXT      NOT NULL,
    source_id       TEXT      NOT NULL,
    display_name    TEXT,
    login           TEXT,
    activity_source TEXT,
    actor           TEXT,
    is_bot          BOOLEAN   NOT NULL DEFAULT FALSE,
    identity_id     BIGINT,
    first_seen_at   TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (source, source_id)
);
CREATE INDEX profiles_identity_idx ON profiles (identity_id);
CREATE INDEX profiles_login_idx ON profiles (login);

CREATE TABLE profile_emails (
    source     TEXT NOT NULL,
    source_id  TEXT NOT NULL,
    email      TEXT NOT NULL,
    email_norm TEXT,
    PRIMARY KEY (source, source_id, email)
);
CREATE INDEX profile_emails_norm_idx ON profile_emails (email_norm);

CREATE TABLE identity_decisions (
    id          BIGSERIAL PRIMARY KEY,
    kind        TEXT      NOT NULL,
    a_source    TEXT      NOT NULL,
    a_source_id TEXT      NOT NULL,
    b_source    TEXT,
    b_source_id TEXT,
    origin      TEXT      NOT NULL,
    created_by  TEXT,
    created_at  TIMESTAMPTZ NOT NULL
);
