-- Deferred expansion of statement captures: PostgreSQL only (see
-- migrations/postgres/0003_pending_capture.sql). SQLite captures with row
-- triggers straight into audit_changes; this version keeps both backends'
-- version numbers in step.
SELECT 1;
