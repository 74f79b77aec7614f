-- Audit migration 5 (PostgreSQL). Keep in step with
-- migrations/sqlite/0005_pending_lz4.sql (a no-op).
--
-- A statement capture stores its rows as one json value in
-- audit_pending.rows: ~18 KB for 50 GitHub commits. Version 3 stored it
-- uncompressed (STORAGE EXTERNAL: pglz cost more than it saved), which
-- writes ~10 TOAST chunks, each a heap tuple, an index entry and WAL.
-- lz4 compresses such a value to a fraction in a few microseconds:
-- EXPLAIN ANALYZE of a 50-commit sync measured the commit capture at
-- 0.24 ms, against 0.32-0.44 ms uncompressed and 0.39-0.56 ms with pglz.
-- A server without lz4 (built without it, or older than PostgreSQL 14)
-- keeps version 3's uncompressed storage.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE audit_pending ALTER COLUMN rows SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE audit_pending ALTER COLUMN rows SET STORAGE EXTENDED';
EXCEPTION WHEN feature_not_supported OR syntax_error THEN
    RAISE NOTICE 'bdc audit: lz4 is not available (%), audit_pending stays uncompressed', SQLERRM;
END
$$;
