-- boost-usage typed tables. Same text on SQLite and PostgreSQL: dates are
-- 'YYYY-MM-DD' text, GitHub timestamps kept as GitHub wrote them.
CREATE TABLE bu_repos (
    full_name      TEXT PRIMARY KEY,
    stars          BIGINT NOT NULL,
    language       TEXT,
    created_at     TEXT,
    pushed_at      TEXT,
    uses_boost     BIGINT NOT NULL DEFAULT 0,
    boost_version  TEXT,
    version_source TEXT,
    boost_mode     TEXT NOT NULL DEFAULT 'unknown',
    gone           BIGINT NOT NULL DEFAULT 0,
    first_seen     TEXT NOT NULL,
    last_seen      TEXT NOT NULL
);
CREATE INDEX bu_repos_uses_idx ON bu_repos (uses_boost, stars);

CREATE TABLE bu_files (
    repo       TEXT NOT NULL REFERENCES bu_repos (full_name),
    path       TEXT NOT NULL,
    sha        TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen  TEXT NOT NULL,
    gone_at    TEXT,
    PRIMARY KEY (repo, path)
);

CREATE TABLE bu_usages (
    repo       TEXT NOT NULL,
    path       TEXT NOT NULL,
    header     TEXT NOT NULL,
    library    TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen  TEXT NOT NULL,
    gone_at    TEXT,
    PRIMARY KEY (repo, path, header),
    FOREIGN KEY (repo, path) REFERENCES bu_files (repo, path)
);
CREATE INDEX bu_usages_library_idx ON bu_usages (library);
