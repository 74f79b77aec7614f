-- Pending captures (SQLite, audit migration 4). Keep in step with
-- migrations/postgres/0004_pending_capture.sql.
--
-- The generated row triggers write each change here, a table without
-- secondary indexes (two index updates per captured row were ~40 % of the
-- capture cost), instead of into audit_changes. bdc_audit::flush moves the
-- rows into audit_changes in id order (one writer at a time: the order of
-- audit_changes ids is the capture order). Tables covered before this
-- version keep writing to audit_changes until `bdc migrate` or
-- `bdc audit gen-triggers` regenerates their triggers (`bdc audit verify`
-- reports them stale).
CREATE TABLE audit_pending (
    id             INTEGER PRIMARY KEY,
    transaction_id INTEGER NOT NULL,
    table_name     TEXT    NOT NULL,
    table_pk       TEXT    NOT NULL,
    op             TEXT    NOT NULL,
    is_baseline    INTEGER NOT NULL DEFAULT 0,
    data_after     TEXT,
    changed_fields TEXT,
    changed_from   TEXT,
    captured_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- PostgreSQL keeps pending rows it cannot expand here; SQLite's flush
-- copies rows column for column and never sets one aside. The table
-- exists on both so retention reads the same schema.
CREATE TABLE audit_pending_failed (
    id             INTEGER PRIMARY KEY,
    transaction_id INTEGER NOT NULL,
    table_name     TEXT    NOT NULL,
    op             TEXT    NOT NULL,
    error          TEXT    NOT NULL,
    failed_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
