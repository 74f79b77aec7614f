-- Audit migration 4 (PostgreSQL). Keep in step with
-- migrations/sqlite/0004_pending_capture.sql (which moves SQLite's row
-- captures to audit_pending).
--
-- A json value is limited to 1 GB, so one audit_pending row per statement
-- would make a single statement of several million rows fail. Statements
-- of more than 20,000 rows now store one pending row per 10,000 rows;
-- smaller ones keep the single aggregate (the chunking costs ~10 % on a
-- 50-row statement, nothing measurable at 1,000). The row count replaces
-- the EXISTS test of version 3: one scan of the transition table either
-- way.
CREATE OR REPLACE FUNCTION bdc_audit_capture_rows() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    pk_cols text[] := TG_ARGV[0]::text[];
    excl    text[] := TG_ARGV[1]::text[];
    masks   text[] := TG_ARGV[2]::text[];
    plain   boolean := cardinality(TG_ARGV[1]::text[]) = 0 AND cardinality(TG_ARGV[2]::text[]) = 0;
    n       bigint;
    actor_txt text;
    atx bigint;
BEGIN
    -- Statement triggers fire for zero rows as well.
    SELECT count(*) INTO n FROM bdc_rows;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    actor_txt := nullif(current_setting('bdc.actor', true), '');
    IF actor_txt IS NULL AND TG_ARGV[3] = 'true' THEN
        RAISE EXCEPTION 'bdc audit: write to table % without an actor (require_actor is on)', TG_TABLE_NAME
            USING ERRCODE = 'P0001';
    END IF;
    atx := bdc_audit_tx_id(actor_txt::jsonb);
    -- Both aggregates of a group read its rows in the same order:
    -- change_ids[i] belongs to rows[i].
    IF n <= 20000 THEN
        IF plain THEN
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
    ELSE
        INSERT INTO audit_pending (transaction_id, table_name, op, pk_cols, change_ids, rows)
        SELECT atx, TG_TABLE_NAME, TG_OP, pk_cols,
               array_agg(nextval('audit_changes_id_seq')),
               CASE WHEN plain THEN json_agg(s.r)
                    ELSE json_agg(bdc_audit_redact(to_jsonb(s.r) - excl, '{}', masks)) END
          FROM (SELECT r, (row_number() OVER () - 1) / 10000 AS chunk FROM bdc_rows r) s
         GROUP BY s.chunk
         ORDER BY s.chunk;
    END IF;
    RETURN NULL;
END
$fn$;
