-- Audit migration 4 (PostgreSQL). Keep in step with
-- migrations/sqlite/0004_pending_capture.sql (which moves SQLite's row
-- captures to audit_pending).
--
-- 1. Large statements in chunks. A json value is limited to 1 GB, so one
--    audit_pending row per statement would make a single statement of
--    several million rows fail. Statements of more than 20,000 rows now
--    store one pending row per 10,000 rows; smaller ones keep the single
--    aggregate (chunking costs ~10 % on a 50-row statement, nothing
--    measurable at 1,000). The row count replaces the EXISTS test of
--    version 3: one scan of the transition table either way.
-- 2. A flush that cannot be blocked by one bad row. A batch is expanded
--    through one jsonb value per pending row (fastest); when that fails,
--    each pending row is retried alone, element by element
--    (json_array_elements, then a cast per row: no jsonb value of the
--    whole array, whose limit is 256 MB). A pending row that still cannot
--    be expanded (a json column holding text jsonb refuses, such as
--    "\u0000") is moved, whole and unchanged, to audit_pending_failed
--    with the error, and a WARNING is raised; the rest of the trail keeps
--    flowing.
-- 3. A bound: bdc_audit_flush(limit, upto) expands only pending rows with
--    id <= upto, so a reader flushes what was committed before it started
--    instead of chasing concurrent writers.
CREATE OR REPLACE FUNCTION bdc_audit_capture_rows() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    pk_cols text[] := TG_ARGV[0]::text[];
    excl    text[] := TG_ARGV[1]::text[];
    masks   text[] := TG_ARGV[2]::text[];
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
    ELSIF cardinality(excl) = 0 AND cardinality(masks) = 0 THEN
        INSERT INTO audit_pending (transaction_id, table_name, op, pk_cols, change_ids, rows)
        SELECT atx, TG_TABLE_NAME, TG_OP, pk_cols,
               array_agg(nextval('audit_changes_id_seq')), json_agg(s.r)
          FROM (SELECT r, (row_number() OVER () - 1) / 10000 AS chunk FROM bdc_rows r) s
         GROUP BY s.chunk
         ORDER BY s.chunk;
    ELSE
        INSERT INTO audit_pending (transaction_id, table_name, op, pk_cols, change_ids, rows)
        SELECT atx, TG_TABLE_NAME, TG_OP, pk_cols,
               array_agg(nextval('audit_changes_id_seq')),
               json_agg(bdc_audit_redact(to_jsonb(s.r) - excl, '{}', masks))
          FROM (SELECT r, (row_number() OVER () - 1) / 10000 AS chunk FROM bdc_rows r) s
         GROUP BY s.chunk
         ORDER BY s.chunk;
    END IF;
    RETURN NULL;
END
$fn$;

-- Pending rows that could not be expanded, kept whole (never dropped).
CREATE TABLE audit_pending_failed (
    id             BIGINT      PRIMARY KEY,     -- the audit_pending id
    transaction_id BIGINT      NOT NULL,
    table_name     TEXT        NOT NULL,
    op             TEXT        NOT NULL,
    pk_cols        TEXT[]      NOT NULL,
    change_ids     BIGINT[]    NOT NULL,
    rows           JSON        NOT NULL,
    captured_at    TIMESTAMPTZ NOT NULL,
    error          TEXT        NOT NULL,
    failed_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- audit_pending is a queue: rows live seconds. Vacuum it by row count,
-- not by a fraction of a table that is usually empty.
ALTER TABLE audit_pending SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

-- Expand pending rows with p_from <= id <= p_upto, at most p_limit of
-- them, in one statement; returns the changes written. p_per_row: convert
-- each row on its own (slower; no whole-array jsonb). ROWS FROM zips the
-- element lists with the reserved ids; the element function not chosen
-- gets NULL and yields nothing.
CREATE FUNCTION bdc_audit_flush_range(p_limit integer, p_from bigint, p_upto bigint, p_per_row boolean) RETURNS bigint
LANGUAGE sql AS $fn$
    WITH moved AS (
        DELETE FROM audit_pending
         WHERE id IN (SELECT id FROM audit_pending
                       WHERE id BETWEEN p_from AND p_upto
                       ORDER BY id LIMIT p_limit FOR UPDATE)
        RETURNING transaction_id, table_name, op, pk_cols, change_ids, rows, captured_at
    ), expanded AS (
        INSERT INTO audit_changes (id, transaction_id, table_name, table_pk, op, data_after, changed_from, captured_at)
        SELECT e.change_id, m.transaction_id, m.table_name,
               CASE cardinality(m.pk_cols)
                    WHEN 1 THEN jsonb_build_object(m.pk_cols[1], x.r -> m.pk_cols[1])
                    WHEN 2 THEN jsonb_build_object(m.pk_cols[1], x.r -> m.pk_cols[1],
                                                   m.pk_cols[2], x.r -> m.pk_cols[2])
                    WHEN 3 THEN jsonb_build_object(m.pk_cols[1], x.r -> m.pk_cols[1],
                                                   m.pk_cols[2], x.r -> m.pk_cols[2],
                                                   m.pk_cols[3], x.r -> m.pk_cols[3])
                    ELSE (SELECT coalesce(jsonb_object_agg(k, x.r -> k), '{}') FROM unnest(m.pk_cols) k)
               END,
               m.op,
               CASE WHEN m.op = 'INSERT' THEN x.r END,
               CASE WHEN m.op = 'DELETE' THEN x.r END,
               m.captured_at
          FROM moved m
         CROSS JOIN LATERAL ROWS FROM (
                   jsonb_array_elements(CASE WHEN NOT p_per_row THEN m.rows::jsonb END),
                   json_array_elements(CASE WHEN p_per_row THEN m.rows END),
                   unnest(m.change_ids)) AS e(jb, j, change_id)
         CROSS JOIN LATERAL (SELECT coalesce(e.jb, e.j::jsonb)) AS x(r)
        RETURNING 1
    )
    SELECT count(*) FROM expanded
$fn$;

-- Expand up to p_limit pending rows with id <= p_upto; returns the number
-- of changes expanded or set aside (0: nothing left up to p_upto).
-- Concurrent callers wait for each other's rows (FOR UPDATE) rather than
-- skip them, so a reader that flushed sees every change committed before
-- it started. Primary-key columns are never excluded or masked (the
-- configuration refuses it), so the key is read off the stored row.
CREATE FUNCTION bdc_audit_flush(p_limit integer, p_upto bigint) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    n   bigint := 0;
    pid bigint;
    msg text;
    bad audit_pending%ROWTYPE;
BEGIN
    BEGIN
        RETURN bdc_audit_flush_range(p_limit, 0, p_upto, false);
    EXCEPTION WHEN data_exception OR program_limit_exceeded THEN
        NULL; -- one of these rows cannot be expanded: one at a time below
    END;
    FOR pid IN SELECT id FROM audit_pending WHERE id <= p_upto ORDER BY id LIMIT p_limit LOOP
        BEGIN
            n := n + bdc_audit_flush_range(1, pid, pid, true);
        EXCEPTION WHEN data_exception OR program_limit_exceeded THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
            DELETE FROM audit_pending WHERE id = pid RETURNING * INTO bad;
            IF FOUND THEN
                INSERT INTO audit_pending_failed (id, transaction_id, table_name, op, pk_cols, change_ids, rows, captured_at, error)
                VALUES (bad.id, bad.transaction_id, bad.table_name, bad.op, bad.pk_cols, bad.change_ids, bad.rows, bad.captured_at, msg);
                n := n + cardinality(bad.change_ids);
                RAISE WARNING 'bdc audit: pending capture % (% on %, % change(s)) cannot be expanded: %; kept in audit_pending_failed',
                    bad.id, bad.op, bad.table_name, cardinality(bad.change_ids), msg;
            END IF;
        END;
    END LOOP;
    RETURN n;
END
$fn$;

-- The one-argument form of version 3 (SQL readers): no upper bound.
CREATE OR REPLACE FUNCTION bdc_audit_flush(p_limit integer) RETURNS bigint
LANGUAGE sql AS $fn$
    SELECT bdc_audit_flush(p_limit, 9223372036854775807)
$fn$;
