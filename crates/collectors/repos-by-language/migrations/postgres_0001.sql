-- repos-by-language (PostgreSQL). Keep in step with sqlite_0001.sql.
CREATE TABLE rbl_counts (
    language      TEXT        NOT NULL,
    year          BIGINT      NOT NULL,
    stars_min     BIGINT      NOT NULL,
    created_repos BIGINT      NOT NULL,
    starred_repos BIGINT      NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (language, year)
);
