-- TRUNCATE capture and schema-change event triggers: PostgreSQL only (see
-- migrations/postgres/0007_truncate_schema.sql). SQLite has no TRUNCATE
-- (`DELETE FROM t` fires the row triggers, which disable its truncate
-- optimisation), and its schema changes are recorded when gen-triggers
-- regenerates a table's triggers. This version keeps both backends'
-- version numbers in step.
SELECT 1;
