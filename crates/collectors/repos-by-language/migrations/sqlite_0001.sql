-- repos-by-language (SQLite). Keep in step with postgres_0001.sql.
CREATE TABLE rbl_counts (
    language      TEXT      NOT NULL,
    year          BIGINT    NOT NULL,
    stars_min     BIGINT    NOT NULL,
    created_repos BIGINT    NOT NULL,
    starred_repos BIGINT    NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (language, year)
);
