-- Typed tables of the github-activity collector (PostgreSQL). Keep in step with migrations/sqlite/0001_github.sql.

CREATE TABLE github_repos (
    id             BIGINT  PRIMARY KEY,
    full_name      TEXT    NOT NULL,
    owner_login    TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    private        BOOLEAN  NOT NULL,
    fork           BOOLEAN  NOT NULL,
    archived       BOOLEAN  NOT NULL,
    default_branch TEXT,
    description    TEXT,
    html_url       TEXT,
    created_at     TIMESTAMPTZ,
    updated_at     TIMESTAMPTZ,
    pushed_at      TIMESTAMPTZ
);
CREATE INDEX github_repos_full_name_idx ON github_repos (full_name);

CREATE TABLE github_users (
    id                 BIGINT PRIMARY KEY,
    login              TEXT   NOT NULL,
    user_type          TEXT,
    name               TEXT,
    email              TEXT,
    html_url           TEXT,
    details_fetched_at TIMESTAMPTZ
);
CREATE INDEX github_users_login_idx ON github_users (login);

-- Issues and pull requests (GitHub numbers them in one sequence; a pull
-- request is an issue with is_pull = true and a row in github_pulls).
CREATE TABLE github_issues (
    id          BIGINT  PRIMARY KEY,
    repo_id     BIGINT  NOT NULL,
    number      BIGINT  NOT NULL,
    is_pull     BOOLEAN  NOT NULL,
    title       TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    user_id     BIGINT,
    labels      TEXT    NOT NULL,
    comments    BIGINT  NOT NULL,
    created_at  TIMESTAMPTZ    NOT NULL,
    updated_at  TIMESTAMPTZ    NOT NULL,
    closed_at   TIMESTAMPTZ,
    html_url    TEXT    NOT NULL
);
CREATE UNIQUE INDEX github_issues_repo_number_idx ON github_issues (repo_id, number);

CREATE TABLE github_pulls (
    id         BIGINT PRIMARY KEY,
    repo_id    BIGINT NOT NULL,
    number     BIGINT NOT NULL,
    draft      BOOLEAN,
    merged_at  TIMESTAMPTZ,
    updated_at TIMESTAMPTZ   NOT NULL
);

-- Issue comments (kind = 'issue') and review comments (kind = 'review').
CREATE TABLE github_comments (
    id           BIGINT PRIMARY KEY,
    repo_id      BIGINT NOT NULL,
    kind         TEXT   NOT NULL,
    issue_number BIGINT,
    user_id      BIGINT,
    review_id    BIGINT,
    path         TEXT,
    commit_id    TEXT,
    body         TEXT,
    created_at   TIMESTAMPTZ   NOT NULL,
    updated_at   TIMESTAMPTZ   NOT NULL,
    html_url     TEXT
);
CREATE INDEX github_comments_repo_idx ON github_comments (repo_id, updated_at);

CREATE TABLE github_reviews (
    id           BIGINT PRIMARY KEY,
    repo_id      BIGINT NOT NULL,
    pull_number  BIGINT NOT NULL,
    user_id      BIGINT,
    state        TEXT   NOT NULL,
    body         TEXT,
    commit_id    TEXT,
    submitted_at TIMESTAMPTZ,
    html_url     TEXT
);

CREATE TABLE github_commits (
    repo_id           BIGINT NOT NULL,
    sha               TEXT   NOT NULL,
    author_id         BIGINT,
    committer_id      BIGINT,
    author_name       TEXT,
    author_email      TEXT,
    authored_at       TIMESTAMPTZ,
    committer_name    TEXT,
    committer_email   TEXT,
    committed_at      TIMESTAMPTZ,
    message           TEXT   NOT NULL,
    html_url          TEXT,
    additions         BIGINT,
    deletions         BIGINT,
    files_fetched     BOOLEAN NOT NULL,
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
    id           BIGINT PRIMARY KEY,
    repo_id      BIGINT NOT NULL,
    tag_name     TEXT   NOT NULL,
    name         TEXT,
    draft        BOOLEAN NOT NULL,
    prerelease   BOOLEAN NOT NULL,
    author_id    BIGINT,
    created_at   TIMESTAMPTZ,
    published_at TIMESTAMPTZ,
    html_url     TEXT
);
