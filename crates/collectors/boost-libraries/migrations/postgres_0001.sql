-- boost-libraries typed tables (PostgreSQL). Keep in step with sqlite_0001.sql.
CREATE TABLE bl_releases (
    release         TEXT PRIMARY KEY,
    superproject_sha TEXT     NOT NULL,
    released_at     TIMESTAMPTZ NOT NULL,
    submodules      BIGINT    NOT NULL DEFAULT 0,
    libraries       BIGINT    NOT NULL DEFAULT 0,
    updated_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE bl_submodules (
    release     TEXT NOT NULL REFERENCES bl_releases (release),
    name        TEXT NOT NULL,
    path        TEXT NOT NULL,
    url         TEXT NOT NULL,
    sha         TEXT,
    meta_status TEXT NOT NULL,
    PRIMARY KEY (release, name)
);

CREATE TABLE bl_libraries (
    release     TEXT NOT NULL REFERENCES bl_releases (release),
    key         TEXT NOT NULL,
    submodule   TEXT NOT NULL,
    name        TEXT,
    authors     TEXT NOT NULL DEFAULT '[]',
    maintainers TEXT NOT NULL DEFAULT '[]',
    description TEXT,
    category    TEXT NOT NULL DEFAULT '[]',
    cxxstd      TEXT,
    status      TEXT,
    PRIMARY KEY (release, key)
);
CREATE INDEX bl_libraries_key_idx ON bl_libraries (key, release);
