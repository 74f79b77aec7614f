-- Audit trail schema (PostgreSQL). Keep in step with migrations/sqlite/0001_audit.sql.
-- One row per database transaction that changed a covered table (or recorded
-- a semantic action).
CREATE TABLE audit_transactions (
    id          BIGSERIAL   PRIMARY KEY,
    txid        BIGINT,                       -- pg_current_xact_id()
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor       JSONB,                        -- bdc_core::Actor JSON, NULL = anonymous
    actor_type  TEXT,
    actor_id    TEXT,
    action      TEXT                          -- name of the semantic action, if any
);
CREATE INDEX audit_transactions_occurred_idx ON audit_transactions (occurred_at DESC);
CREATE INDEX audit_transactions_actor_idx ON audit_transactions (actor_type, actor_id, occurred_at DESC);
CREATE INDEX audit_transactions_action_idx ON audit_transactions (action, occurred_at DESC) WHERE action IS NOT NULL;

-- One row per captured row change.
CREATE TABLE audit_changes (
    id             BIGSERIAL   PRIMARY KEY,
    -- audit_transactions.id; no FOREIGN KEY on purpose: its per-row check
    -- would double the capture cost; purge deletes changes before their
    -- (then empty) transactions.
    transaction_id BIGINT      NOT NULL,
    table_name     TEXT        NOT NULL,
    table_pk       JSONB       NOT NULL,
    op             TEXT        NOT NULL CHECK (op IN ('INSERT', 'UPDATE', 'DELETE')),
    is_baseline    BOOLEAN     NOT NULL DEFAULT false,
    data_after     JSONB,                     -- new row (redacted); NULL for DELETE
    changed_fields JSONB,                     -- UPDATE: names of changed (non-excluded) columns
    changed_from   JSONB,                     -- UPDATE: previous values of those; DELETE: the old row
    captured_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX audit_changes_tx_idx ON audit_changes (transaction_id);
CREATE INDEX audit_changes_table_pk_idx ON audit_changes (table_name, table_pk);
CREATE INDEX audit_changes_table_id_idx ON audit_changes (table_name, id DESC);

-- Semantic actions (record_action): intent linked to the transaction it explains.
CREATE TABLE audit_actions (
    id             BIGSERIAL   PRIMARY KEY,
    transaction_id BIGINT      REFERENCES audit_transactions (id) ON DELETE CASCADE,
    name           TEXT        NOT NULL,
    actor          JSONB,
    status         TEXT        NOT NULL,
    reason         TEXT,
    occurred_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_actions_name_idx ON audit_actions (name, occurred_at DESC);
CREATE INDEX audit_actions_tx_idx ON audit_actions (transaction_id);

-- Which tables are covered, with the trigger SQL installed (stale detection).
CREATE TABLE audit_covered_tables (
    table_name   TEXT        PRIMARY KEY,
    trigger_sql  TEXT        NOT NULL,
    installed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The audit transaction of the current database transaction: created by the
-- first change (or action) of the transaction, cached in the
-- transaction-local setting bdc.audit_tx ("<xid>:<id>").
CREATE FUNCTION bdc_audit_tx_id(p_actor jsonb) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    xid bigint := pg_current_xact_id()::text::bigint;
    cached text := current_setting('bdc.audit_tx', true);
    atx bigint;
BEGIN
    IF cached IS NOT NULL AND cached <> '' AND split_part(cached, ':', 1) = xid::text THEN
        RETURN split_part(cached, ':', 2)::bigint;
    END IF;
    INSERT INTO audit_transactions (txid, actor, actor_type, actor_id)
    VALUES (xid, p_actor, p_actor ->> 'type',
            coalesce(p_actor ->> 'collector', p_actor ->> 'user', p_actor ->> 'caller', p_actor ->> 'component'))
    RETURNING id INTO atx;
    PERFORM set_config('bdc.audit_tx', xid::text || ':' || atx::text, true);
    RETURN atx;
END
$fn$;

-- Redaction: drop excluded keys, replace non-NULL masked values by '***'
-- (JSON values are masked whole).
CREATE FUNCTION bdc_audit_redact(p_row jsonb, p_exclude text[], p_mask text[]) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
    r jsonb := p_row - p_exclude;
    k text;
BEGIN
    IF r IS NULL THEN
        RETURN NULL;
    END IF;
    FOREACH k IN ARRAY p_mask LOOP
        IF r ? k AND jsonb_typeof(r -> k) <> 'null' THEN
            r := jsonb_set(r, ARRAY[k], '"***"'::jsonb);
        END IF;
    END LOOP;
    RETURN r;
END
$fn$;

-- The row trigger of every covered table. Arguments (PostgreSQL text[]
-- literals): primary-key columns, excluded columns, masked columns; then
-- require_actor (true/false).
CREATE FUNCTION bdc_audit_capture() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    pk_cols text[] := TG_ARGV[0]::text[];
    excl    text[] := TG_ARGV[1]::text[];
    masks   text[] := TG_ARGV[2]::text[];
    actor_txt text;
    newj jsonb;
    oldj jsonb;
    pk jsonb;
    changed jsonb;
    prev jsonb;
BEGIN
    IF TG_OP <> 'DELETE' THEN newj := to_jsonb(NEW) - excl; END IF;
    IF TG_OP <> 'INSERT' THEN oldj := to_jsonb(OLD) - excl; END IF;
    IF TG_OP = 'UPDATE' THEN
        SELECT jsonb_agg(o.key ORDER BY o.key), jsonb_object_agg(o.key, o.value)
          INTO changed, prev
          FROM jsonb_each(oldj) o
         WHERE o.value IS DISTINCT FROM newj -> o.key;
        IF changed IS NULL THEN
            RETURN NULL;  -- nothing (audited) changed: record nothing
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        prev := oldj;
    END IF;
    actor_txt := nullif(current_setting('bdc.actor', true), '');
    IF actor_txt IS NULL AND TG_ARGV[3] = 'true' THEN
        RAISE EXCEPTION 'bdc audit: write to table % without an actor (require_actor is on)', TG_TABLE_NAME
            USING ERRCODE = 'P0001';
    END IF;
    IF cardinality(pk_cols) = 1 THEN
        pk := jsonb_build_object(pk_cols[1], coalesce(newj, oldj) -> pk_cols[1]);
    ELSE
        SELECT jsonb_object_agg(c, coalesce(newj, oldj) -> c) INTO pk FROM unnest(pk_cols) c;
    END IF;
    IF cardinality(masks) > 0 THEN
        newj := bdc_audit_redact(newj, '{}', masks);
        prev := bdc_audit_redact(prev, '{}', masks);
    END IF;
    INSERT INTO audit_changes (transaction_id, table_name, table_pk, op, data_after, changed_fields, changed_from)
    VALUES (bdc_audit_tx_id(actor_txt::jsonb), TG_TABLE_NAME, coalesce(pk, '{}'::jsonb), TG_OP,
            newj, changed, prev);
    RETURN NULL;
END
$fn$;
