-- Cheaper capture (SQLite). Keep in step with migrations/postgres/0002_statement_capture.sql
-- (which adds the statement-trigger function there).
--
-- SQLite has no statement triggers; its row triggers stay. Row history on
-- SQLite compares primary keys key by key as JSON (json_each), which the
-- (table_name, table_pk) index never served; (table_name, id) serves the
-- table filter. Dropping it halves the index work per captured row.
DROP INDEX audit_changes_table_pk_idx;
