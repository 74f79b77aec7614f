-- TRUNCATE capture and schema-change event triggers: PostgreSQL only (see
-- migrations/postgres/0007_truncate_schema.sql). SQLite has no TRUNCATE
-- (`DELETE FROM t` fires the row triggers, which disable its truncate
-- optimisation), and its schema changes are recorded when gen-triggers
-- regenerates a table's triggers. This version keeps both backends'
-- version numbers in step.
-- The columns of a covered table when it was covered (JSON
-- [{name, type}], excluded columns left out) and when they were taken:
-- the start of its schema history (`bdc audit schema-history`).
ALTER TABLE audit_covered_tables ADD COLUMN columns TEXT;
ALTER TABLE audit_covered_tables ADD COLUMN columns_at TEXT;
