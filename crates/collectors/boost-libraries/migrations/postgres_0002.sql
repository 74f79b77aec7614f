-- Library dependencies from the libraries' own #includes (PostgreSQL). Keep in
-- step with sqlite_0002.sql.
ALTER TABLE bl_releases ADD COLUMN dependencies_scanned INTEGER NOT NULL DEFAULT 0;

CREATE TABLE bl_dependencies (
    release     TEXT   NOT NULL REFERENCES bl_releases (release),
    library_key TEXT   NOT NULL,
    depends_on  TEXT   NOT NULL,
    includes    BIGINT NOT NULL,
    PRIMARY KEY (release, library_key, depends_on)
);
CREATE INDEX bl_dependencies_target_idx ON bl_dependencies (release, depends_on);
