-- Audit migration 5 (PostgreSQL). Keep in step with
-- migrations/sqlite/0005_pending_lz4.sql (a no-op).
--
-- A statement capture stores its rows as one json value in
-- audit_pending.rows: ~18 KB for 50 GitHub commits. Version 3 stored it
-- uncompressed (STORAGE EXTERNAL: pglz cost more than it saved), which
-- writes ~10 TOAST chunks, each a heap tuple, an index entry and WAL.
-- lz4 compresses such a value to a fraction in a few microseconds:
-- EXPLAIN ANALYZE of a 50-commit sync measured the commit capture at
-- 0.24 ms, against 0.32-0.44 ms uncompressed and 0.39-0.56 ms with pglz
-- (benchmark payloads, more alike than real commits, so real captures
-- compress somewhat less).
--
-- PostgreSQL 14+ built with lz4 (Debian's, for one) switches; an older
-- server, or one built without lz4, keeps version 3's uncompressed
-- storage (a NOTICE says so). The migration is recorded either way: a
-- server upgraded to lz4 later keeps the old storage until an operator
-- runs the ALTER below by hand (docs/audit.md).
--
-- The ALTER takes an ACCESS EXCLUSIVE lock on audit_pending, which every
-- covered write inserts into: wait at most 5 s for it, so a rolling
-- upgrade with busy writers fails `bdc migrate` (retry it) instead of
-- stalling them behind the queued lock.
SET LOCAL lock_timeout = '5s';
DO $$
BEGIN
    IF current_setting('server_version_num')::int < 140000 THEN
        RAISE NOTICE 'bdc audit: PostgreSQL % has no column compression setting, audit_pending stays uncompressed',
            current_setting('server_version');
        RETURN;
    END IF;
    -- EXECUTE: PL/pgSQL checks static SQL when it compiles the block,
    -- which PostgreSQL 13 would refuse before the version test runs.
    EXECUTE 'ALTER TABLE audit_pending ALTER COLUMN rows SET COMPRESSION lz4, '
         || 'ALTER COLUMN rows SET STORAGE EXTENDED';
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'bdc audit: lz4 is not available (%), audit_pending stays uncompressed', SQLERRM;
END
$$;
