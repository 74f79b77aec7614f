-- Audit migration 6 (PostgreSQL). Keep in step with
-- migrations/sqlite/0006_chain_asof.sql.
--
-- * Hash chain (tamper evidence): every audit transaction gets, when a
--   flush first sees it complete, a position in the chain (chain_seq), the
--   hash of the previous link (prev_hash) and its own hash (sha256 over
--   prev_hash and its canonical content, computed by bdc, see
--   crates/audit/src/chain.rs). audit_chain_head holds the last link.
-- * Purge records (audit_purges): the range a purge removed and the hash
--   it ended on; audit_horizons: per table, the time before which history
--   was purged (as-of answers "before the audit horizon" there).
-- * As-of and row history filter on table + primary key + id.
SET LOCAL lock_timeout = '5s';
ALTER TABLE audit_transactions
    ADD COLUMN chain_seq BIGINT,
    ADD COLUMN prev_hash TEXT,
    ADD COLUMN hash      TEXT;
CREATE UNIQUE INDEX audit_transactions_chain_idx ON audit_transactions (chain_seq);
CREATE INDEX audit_transactions_unchained_idx ON audit_transactions (id) WHERE chain_seq IS NULL;

CREATE TABLE audit_chain_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT  NOT NULL,
    hash TEXT    NOT NULL
);
INSERT INTO audit_chain_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_purges (
    id                   BIGSERIAL   PRIMARY KEY,
    transaction_id       BIGINT      NOT NULL,      -- the purge's own audit transaction (retention.purge)
    purged_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    cutoff               TIMESTAMPTZ NOT NULL,      -- the latest cutoff of any table
    through_seq          BIGINT      NOT NULL,      -- chain links <= this may have been removed or compacted
    boundary_hash        TEXT        NOT NULL,      -- the hash of link through_seq (where the chain resumes)
    deleted_changes      BIGINT      NOT NULL,
    deleted_transactions BIGINT      NOT NULL,
    compacted_rows       BIGINT      NOT NULL
);

CREATE TABLE audit_horizons (
    table_name TEXT        PRIMARY KEY,
    horizon    TIMESTAMPTZ NOT NULL
);

-- Row history and as-of: one row's changes in capture order.
CREATE INDEX audit_changes_row_idx ON audit_changes (table_name, table_pk, id);
DROP INDEX IF EXISTS audit_changes_table_pk_idx;
