-- Deferred expansion of statement captures (PostgreSQL). Keep in step with
-- migrations/sqlite/0003_pending_capture.sql (a no-op there: SQLite has
-- only row triggers).
--
-- The statement triggers of migration 2 built one jsonb value and one
-- indexed audit_changes row per captured row inside the writing
-- transaction: three quarters of a bulk write's cost. Now they store ONE
-- audit_pending row per statement: the statement's rows (already redacted)
-- as a JSON array, and the audit_changes ids reserved for them from
-- audit_changes_id_seq, so the order of changes is the capture order
-- whatever happens later. bdc_audit_flush() expands pending rows into
-- audit_changes: bdc calls it before every audit read, after `bdc run` and
-- periodically in its daemon processes; SQL readers of audit_changes call
-- it first. The capture stays in the writing transaction: it commits or
-- rolls back with the change it describes.
CREATE TABLE audit_pending (
    id             BIGSERIAL   PRIMARY KEY,
    transaction_id BIGINT      NOT NULL,        -- audit_transactions.id
    table_name     TEXT        NOT NULL,
    op             TEXT        NOT NULL CHECK (op IN ('INSERT', 'DELETE')),
    pk_cols        TEXT[]      NOT NULL,
    change_ids     BIGINT[]    NOT NULL,        -- one reserved audit_changes.id per row, in row order
    rows           JSON        NOT NULL,        -- the rows, redacted, as a JSON array
    captured_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
-- Transient data: skip compression (measured: 8 % of a bulk write).
ALTER TABLE audit_pending ALTER COLUMN rows SET STORAGE EXTERNAL;
CREATE INDEX audit_pending_tx_idx ON audit_pending (transaction_id);

CREATE OR REPLACE FUNCTION bdc_audit_capture_rows() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    pk_cols text[] := TG_ARGV[0]::text[];
    excl    text[] := TG_ARGV[1]::text[];
    masks   text[] := TG_ARGV[2]::text[];
    actor_txt text;
    atx bigint;
BEGIN
    -- Statement triggers fire for zero rows as well.
    IF NOT EXISTS (SELECT 1 FROM bdc_rows) THEN
        RETURN NULL;
    END IF;
    actor_txt := nullif(current_setting('bdc.actor', true), '');
    IF actor_txt IS NULL AND TG_ARGV[3] = 'true' THEN
        RAISE EXCEPTION 'bdc audit: write to table % without an actor (require_actor is on)', TG_TABLE_NAME
            USING ERRCODE = 'P0001';
    END IF;
    atx := bdc_audit_tx_id(actor_txt::jsonb);
    -- Both aggregates read the rows in the same order: change_ids[i]
    -- belongs to rows[i].
    IF cardinality(excl) = 0 AND cardinality(masks) = 0 THEN
        INSERT INTO audit_pending (transaction_id, table_name, op, pk_cols, change_ids, rows)
        SELECT atx, TG_TABLE_NAME, TG_OP, pk_cols,
               array_agg(nextval('audit_changes_id_seq')), json_agg(r)
          FROM bdc_rows r;
    ELSE
        INSERT INTO audit_pending (transaction_id, table_name, op, pk_cols, change_ids, rows)
        SELECT atx, TG_TABLE_NAME, TG_OP, pk_cols,
               array_agg(nextval('audit_changes_id_seq')),
               json_agg(bdc_audit_redact(to_jsonb(r) - excl, '{}', masks))
          FROM bdc_rows r;
    END IF;
    RETURN NULL;
END
$fn$;

-- Expand up to p_limit pending statements into audit_changes; returns the
-- number of changes written (0: nothing left). Concurrent callers wait
-- for each other's rows (FOR UPDATE) rather than skip them, so a reader
-- that flushed sees every change committed before it started. Primary-key
-- columns are never excluded or masked (the configuration refuses it), so
-- the key is read off the stored row. ROWS FROM pairs each row with its
-- reserved id (subscripting change_ids per row would detoast the whole
-- array each time).
CREATE FUNCTION bdc_audit_flush(p_limit integer) RETURNS bigint
LANGUAGE sql AS $fn$
    WITH moved AS (
        DELETE FROM audit_pending
         WHERE id IN (SELECT id FROM audit_pending ORDER BY id LIMIT p_limit FOR UPDATE)
        RETURNING transaction_id, table_name, op, pk_cols, change_ids, rows, captured_at
    ), expanded AS (
        INSERT INTO audit_changes (id, transaction_id, table_name, table_pk, op, data_after, changed_from, captured_at)
        SELECT e.change_id, m.transaction_id, m.table_name,
               CASE cardinality(m.pk_cols)
                    WHEN 1 THEN jsonb_build_object(m.pk_cols[1], e.r -> m.pk_cols[1])
                    WHEN 2 THEN jsonb_build_object(m.pk_cols[1], e.r -> m.pk_cols[1],
                                                   m.pk_cols[2], e.r -> m.pk_cols[2])
                    WHEN 3 THEN jsonb_build_object(m.pk_cols[1], e.r -> m.pk_cols[1],
                                                   m.pk_cols[2], e.r -> m.pk_cols[2],
                                                   m.pk_cols[3], e.r -> m.pk_cols[3])
                    ELSE (SELECT coalesce(jsonb_object_agg(k, e.r -> k), '{}') FROM unnest(m.pk_cols) k)
               END,
               m.op,
               CASE WHEN m.op = 'INSERT' THEN e.r END,
               CASE WHEN m.op = 'DELETE' THEN e.r END,
               m.captured_at
          FROM moved m
         CROSS JOIN LATERAL ROWS FROM (jsonb_array_elements(m.rows::jsonb), unnest(m.change_ids)) AS e(r, change_id)
        RETURNING 1
    )
    SELECT count(*) FROM expanded
$fn$;
