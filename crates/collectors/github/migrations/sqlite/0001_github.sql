-- Typed tables of the github-activity collector (SQLite: timestamps are TEXT, booleans INTEGER). Keep in step with migrations/postgres/0001_github.sql.

CREATE TABLE github_repos (
    id             INTEGER PRIMARY KEY,
    full_name      TEXT    NOT NULL,
    owner_login    TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    private        INTEGER  NOT NULL,
    fork           INTEGER  NOT NULL,
    archived       INTEGER  NOT NULL,
    default_branch TEXT,
    description    TEXT,
    html_url       TEXT,
    created_at     TEXT,
    updated_at     TEXT,
    pushed_at      TEXT
);
CREATE INDEX github_repos_full_name_idx ON github_repos (full_name);

CREATE TABLE github_users (
    id                 INTEGER PRIMARY KEY,
    login              TEXT   NOT NULL,
    user_type          TEXT,
    name               TEXT,
    email              TEXT,
    html_url           TEXT,
    details_fetched_at TEXT
);
CREATE INDEX github_users_login_idx ON github_users (login);

-- Issues and pull requests (GitHub numbers them in one sequence; a pull
-- request is an issue with is_pull = true and a row in github_pulls).
CREATE TABLE github_issues (
    id          INTEGER PRIMARY KEY,
    repo_id     BIGINT  NOT NULL,
    number      BIGINT  NOT NULL,
    is_pull     INTEGER  NOT NULL,
    title       TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    user_id     BIGINT,
    labels      TEXT    NOT NULL,
    comments    BIGINT  NOT NULL,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    closed_at   TEXT,
    html_url    TEXT    NOT NULL
);
CREATE UNIQUE INDEX github_issues_repo_number_idx ON github_issues (repo_id, number);

CREATE TABLE github_pulls (
    id         INTEGER PRIMARY KEY,
    repo_id    BIGINT NOT NULL,
    number     BIGINT NOT NULL,
    draft      INTEGER,
    merged_at  TEXT,
    updated_at TEXT   NOT NULL
);

-- Issue comments (kind = 'issue') and review comments (kind = 'review').
CREATE TABLE github_comments (
    id           INTEGER PRIMARY KEY,
    repo_id      BIGINT NOT NULL,
    kind         TEXT   NOT NULL,
    issue_number BIGINT,
    user_id      BIGINT,
    review_id    BIGINT,
    path         TEXT,
    commit_id    TEXT,
    body         TEXT,
    created_at   TEXT   NOT NULL,
    updated_at   TEXT   NOT NULL,
    html_url     TEXT
);
CREATE INDEX github_comments_repo_idx ON github_comments (repo_id, updated_at);

CREATE TABLE github_reviews (
    id           INTEGER PRIMARY KEY,
    repo_id      BIGINT NOT NULL,
    pull_number  BIGINT NOT NULL,
    user_id      BIGINT,
    state        TEXT   NOT NULL,
    body         TEXT,
    commit_id    TEXT,
    submitted_at TEXT,
    html_url     TEXT
);

CREATE TABLE github_commits (
    repo_id           BIGINT NOT NULL,
    sha               TEXT   NOT NULL,
    author_id         BIGINT,
    committer_id      BIGINT,
    author_name       TEXT,
    author_email      TEXT,
    authored_at       TEXT,
    committer_name    TEXT,
    committer_email   TEXT,
    committed_at      TEXT,
    message           TEXT   NOT NULL,
    html_url          TEXT,
    additions         BIGINT,
    deletions         BIGINT,
    files_fetched     INTEGER NOT NULL,
    PRIMARY KEY (repo_id, sha)
);

CREATE TABLE github_files (
    repo_id  BIGINT NOT NULL,
    path     TEXT   NOT NULL,
    PRIMARY KEY (repo_id, path)
);

CREATE TABLE github_file_changes (
    repo_id       BIGINT NOT NULL,
    sha           TEXT   NOT NULL,
    path          TEXT   NOT NULL,
    status        TEXT   NOT NULL,
    additions     BIGINT NOT NULL,
    deletions     BIGINT NOT NULL,
    previous_path TEXT,
    PRIMARY KEY (repo_id, sha, path)
);

CREATE TABLE github_releases (
    id           INTEGER PRIMARY KEY,
    repo_id      BIGINT NOT NULL,
    tag_name     TEXT   NOT NULL,
    name         TEXT,
    draft        INTEGER NOT NULL,
    prerelease   INTEGER NOT NULL,
    author_id    BIGINT,
    created_at   TEXT,
    published_at TEXT,
    html_url     TEXT
);
