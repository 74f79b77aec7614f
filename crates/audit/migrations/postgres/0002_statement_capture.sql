-- Bulk capture (PostgreSQL). Keep in step with migrations/sqlite/0002_statement_capture.sql.
--
-- INSERT and DELETE are captured by statement triggers reading the
-- statement's transition table: one INSERT … SELECT per statement instead
-- of one plpgsql call and one INSERT per row (a 1,000-row batch costs one
-- function call). UPDATE keeps the row trigger bdc_audit_capture(): it
-- pairs OLD and NEW even when the primary key changes, and skips rows
-- whose audited columns did not change. Partitioned and inherited tables
-- keep one row trigger for all three events (statement triggers are not
-- cloned to partitions).
--
-- Arguments as for bdc_audit_capture(): primary-key columns, excluded
-- columns, masked columns (text[] literals), then require_actor. The
-- transition table is called bdc_rows in both triggers.
CREATE FUNCTION bdc_audit_capture_rows() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    pk_cols text[] := TG_ARGV[0]::text[];
    excl    text[] := TG_ARGV[1]::text[];
    masks   text[] := TG_ARGV[2]::text[];
    non_pk  text[];
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
    -- The primary key as the row minus every other column (one C call per
    -- row; columns added later never leak into it).
    non_pk := ARRAY(SELECT a.attname::text FROM pg_attribute a
                     WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped
                       AND NOT (a.attname::text = ANY (pk_cols)));
    IF TG_OP = 'INSERT' THEN
        INSERT INTO audit_changes (transaction_id, table_name, table_pk, op, data_after)
        SELECT atx, TG_TABLE_NAME, r - non_pk, 'INSERT',
               CASE WHEN cardinality(masks) > 0 THEN bdc_audit_redact(r - excl, '{}', masks) ELSE r - excl END
          FROM (SELECT to_jsonb(n) AS r FROM bdc_rows n) s;
    ELSE
        INSERT INTO audit_changes (transaction_id, table_name, table_pk, op, changed_from)
        SELECT atx, TG_TABLE_NAME, r - non_pk, 'DELETE',
               CASE WHEN cardinality(masks) > 0 THEN bdc_audit_redact(r - excl, '{}', masks) ELSE r - excl END
          FROM (SELECT to_jsonb(o) AS r FROM bdc_rows o) s;
    END IF;
    RETURN NULL;
END
$fn$;
