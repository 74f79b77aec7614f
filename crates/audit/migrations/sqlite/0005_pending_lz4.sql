-- lz4 compression of pending statement captures: PostgreSQL only (see
-- migrations/postgres/0005_pending_lz4.sql). This version keeps both
-- backends' version numbers in step.
SELECT 1;
