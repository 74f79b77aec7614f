-- Per-transaction write context (SQLite). SQLite has no transaction-local
-- settings, but it has exactly one writer at a time: Storage::begin() writes
-- the actor here as the first statement of every write transaction (taking
-- the write lock), and Tx::commit() clears it before committing, so the
-- row always describes the transaction that is currently writing.
-- Audit triggers read `actor` and keep the open audit transaction id in
-- `audit_tx`.
CREATE TABLE bdc_tx_context (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    actor    TEXT,
    audit_tx INTEGER
);
INSERT INTO bdc_tx_context (id, actor, audit_tx) VALUES (1, NULL, NULL);
