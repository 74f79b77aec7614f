-- Audit trail schema (SQLite: timestamps are TEXT 'YYYY-MM-DDTHH:MM:SS.sssZ',
-- JSON is TEXT). Keep in step with migrations/postgres/0001_audit.sql.
-- The per-table triggers are generated (bdc audit gen-triggers): SQLite
-- triggers cannot iterate columns. The transaction context (actor, open
-- audit transaction) lives in the foundation's bdc_tx_context row.
CREATE TABLE audit_transactions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    txid        INTEGER,
    occurred_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    actor       TEXT,
    actor_type  TEXT,
    actor_id    TEXT,
    action      TEXT
);
CREATE INDEX audit_transactions_occurred_idx ON audit_transactions (occurred_at DESC);
CREATE INDEX audit_transactions_actor_idx ON audit_transactions (actor_type, actor_id, occurred_at DESC);
CREATE INDEX audit_transactions_action_idx ON audit_transactions (action, occurred_at DESC) WHERE action IS NOT NULL;

CREATE TABLE audit_changes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id INTEGER NOT NULL,  -- audit_transactions.id (no FK: see the PostgreSQL migration)
    table_name     TEXT    NOT NULL,
    table_pk       TEXT    NOT NULL,
    op             TEXT    NOT NULL CHECK (op IN ('INSERT', 'UPDATE', 'DELETE')),
    is_baseline    INTEGER NOT NULL DEFAULT 0,
    data_after     TEXT,
    changed_fields TEXT,
    changed_from   TEXT,
    captured_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX audit_changes_tx_idx ON audit_changes (transaction_id);
CREATE INDEX audit_changes_table_pk_idx ON audit_changes (table_name, table_pk);
CREATE INDEX audit_changes_table_id_idx ON audit_changes (table_name, id DESC);

CREATE TABLE audit_actions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id INTEGER REFERENCES audit_transactions (id) ON DELETE CASCADE,
    name           TEXT    NOT NULL,
    actor          TEXT,
    status         TEXT    NOT NULL,
    reason         TEXT,
    occurred_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX audit_actions_name_idx ON audit_actions (name, occurred_at DESC);
CREATE INDEX audit_actions_tx_idx ON audit_actions (transaction_id);

CREATE TABLE audit_covered_tables (
    table_name   TEXT PRIMARY KEY,
    trigger_sql  TEXT NOT NULL,
    installed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
