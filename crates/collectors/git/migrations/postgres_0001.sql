-- git-history typed tables (PostgreSQL). Keep in step with sqlite_0001.sql.
CREATE TABLE git_repos (
    name          TEXT PRIMARY KEY,
    source        TEXT      NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE git_refs (
    repo       TEXT      NOT NULL REFERENCES git_repos (name),
    ref_name   TEXT      NOT NULL,
    tip        TEXT      NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (repo, ref_name)
);

CREATE TABLE git_commits (
    repo              TEXT      NOT NULL REFERENCES git_repos (name),
    sha               TEXT      NOT NULL,
    parents           TEXT      NOT NULL DEFAULT '',
    author_name       TEXT      NOT NULL,
    author_email      TEXT      NOT NULL,
    authored_at       TIMESTAMPTZ NOT NULL,
    committer_name    TEXT      NOT NULL,
    committer_email   TEXT      NOT NULL,
    committed_at      TIMESTAMPTZ NOT NULL,
    message           TEXT      NOT NULL,
    files_changed     BIGINT    NOT NULL DEFAULT 0,
    insertions        BIGINT    NOT NULL DEFAULT 0,
    deletions         BIGINT    NOT NULL DEFAULT 0,
    reachable         BOOLEAN   NOT NULL DEFAULT TRUE,
    unreachable_since TIMESTAMPTZ,
    revision          BIGINT    NOT NULL DEFAULT 1,
    run_id            TEXT,
    first_seen_at     TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (repo, sha)
);
CREATE INDEX git_commits_author_idx ON git_commits (author_email, authored_at);
CREATE INDEX git_commits_time_idx ON git_commits (repo, committed_at);

CREATE TABLE git_commit_files (
    repo       TEXT   NOT NULL,
    sha        TEXT   NOT NULL,
    position   BIGINT NOT NULL,
    path       TEXT   NOT NULL,
    old_path   TEXT,
    insertions BIGINT,
    deletions  BIGINT,
    PRIMARY KEY (repo, sha, position)
);
CREATE INDEX git_commit_files_path_idx ON git_commit_files (repo, path);
