-- Audit migration 6 (SQLite). Keep in step with
-- migrations/postgres/0006_chain_asof.sql (hash chain, purge records,
-- horizons, the table + primary key + id index). On SQLite the primary
-- key is stored as the trigger's json_object text (key order of the
-- table's primary key), so the index serves an exact text match.
ALTER TABLE audit_transactions ADD COLUMN chain_seq INTEGER;
ALTER TABLE audit_transactions ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_transactions ADD COLUMN hash TEXT;
CREATE UNIQUE INDEX audit_transactions_chain_idx ON audit_transactions (chain_seq);
CREATE INDEX audit_transactions_unchained_idx ON audit_transactions (id) WHERE chain_seq IS NULL;

CREATE TABLE audit_chain_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL
);
INSERT INTO audit_chain_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_purges (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id       INTEGER NOT NULL,
    purged_at            TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    cutoff               TEXT    NOT NULL,
    through_seq          INTEGER NOT NULL,
    boundary_hash        TEXT    NOT NULL,
    deleted_changes      INTEGER NOT NULL,
    deleted_transactions INTEGER NOT NULL,
    compacted_rows       INTEGER NOT NULL
);

CREATE TABLE audit_horizons (
    table_name TEXT PRIMARY KEY,
    horizon    TEXT NOT NULL
);

CREATE INDEX audit_changes_row_idx ON audit_changes (table_name, table_pk, id);
