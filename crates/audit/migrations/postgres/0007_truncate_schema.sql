-- Audit migration 7 (PostgreSQL). Keep in step with
-- migrations/sqlite/0007_truncate_schema.sql (a no-op: SQLite has no
-- TRUNCATE, its `DELETE FROM t` fires the row triggers, and its schema
-- changes are recorded by `bdc audit gen-triggers` / `bdc migrate`).
--
-- 1. TRUNCATE. A row trigger never sees TRUNCATE, and an AFTER TRUNCATE
--    trigger sees no rows. Each covered table gets a BEFORE TRUNCATE
--    statement trigger (`bdc_audit_truncate`, installed by gen-triggers)
--    whose function records every row the TRUNCATE is about to remove as
--    a DELETE change (the same pending capture as a bulk DELETE, so
--    as-of and revert treat it like one), and the semantic action
--    `sql.truncate` naming the table and the row count. Cost: one scan of
--    the table, inside the TRUNCATE's transaction. A partitioned or
--    inherited table's rows are captured under the table that holds
--    them, except where that table has its own truncate trigger (it
--    captures them itself).
-- 2. Schema changes. An event trigger records ALTER TABLE (columns,
--    ENABLE/DISABLE TRIGGER, ...) and DROP TABLE of a covered table of
--    this schema as the actions `schema.alter_table` / `schema.drop_table`
--    with the column list after the change (excluded columns left out; the
--    statement text is not kept, it may name them), in the DDL's
--    own transaction and hash chain, so old rows stay interpretable.
--    Creating an event trigger needs a superuser: without one the
--    migration says so (NOTICE) and `bdc audit verify` reports schema
--    changes as not captured; gen-triggers then records column changes it
--    finds when it regenerates triggers (as on SQLite).
-- 3. Change ids by the block. A statement capture reserved one id per row
--    (array_agg(nextval(...)) over the transition table): ~3.5 ms of a
--    1,000-row INSERT's capture, more than the rest of it together. The
--    sequence now steps by 32,768: one nextval reserves the block
--    [v, v + 32767] for one pending group (at most 20,000 rows), whose
--    change ids are v, v + 1, ... in row order. Ids stay unique and in
--    capture order (what as-of, row history and the chain rely on); they
--    are no longer dense. A row capture (UPDATE) takes one block per row.
SET LOCAL lock_timeout = '5s';
-- The columns of a covered table when it was covered (JSON [{name, type}],
-- excluded columns left out) and when they were taken: the start of its
-- schema history (`bdc audit schema-history`).
ALTER TABLE audit_covered_tables ADD COLUMN columns TEXT, ADD COLUMN columns_at TEXT;
ALTER SEQUENCE audit_changes_id_seq INCREMENT BY 32768;

CREATE OR REPLACE FUNCTION bdc_audit_capture_rows() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    pk_cols text[] := TG_ARGV[0]::text[];
    excl    text[] := TG_ARGV[1]::text[];
    masks   text[] := TG_ARGV[2]::text[];
    n       bigint;
    actor_txt text;
    atx bigint;
    base bigint;
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
    -- change_ids[i] belongs to rows[i]: positional (base + i - 1).
    IF n <= 20000 THEN
        base := nextval('audit_changes_id_seq');
        IF cardinality(excl) = 0 AND cardinality(masks) = 0 THEN
            INSERT INTO audit_pending (transaction_id, table_name, op, pk_cols, change_ids, rows)
            SELECT atx, TG_TABLE_NAME, TG_OP, pk_cols,
                   ARRAY(SELECT base + i FROM generate_series(0, n - 1) i), json_agg(r)
              FROM bdc_rows r;
        ELSE
            INSERT INTO audit_pending (transaction_id, table_name, op, pk_cols, change_ids, rows)
            SELECT atx, TG_TABLE_NAME, TG_OP, pk_cols,
                   ARRAY(SELECT base + i FROM generate_series(0, n - 1) i),
                   json_agg(bdc_audit_redact(to_jsonb(r) - excl, '{}', masks))
              FROM bdc_rows r;
        END IF;
    ELSE
        -- One pending row per 10,000 rows, each with its own block.
        INSERT INTO audit_pending (transaction_id, table_name, op, pk_cols, change_ids, rows)
        SELECT atx, TG_TABLE_NAME, TG_OP, pk_cols,
               ARRAY(SELECT x.base + i FROM generate_series(0, x.cnt - 1) i), x.rows
          FROM (SELECT g.chunk, g.cnt, g.rows, nextval('audit_changes_id_seq') AS base
                  FROM (SELECT s.chunk, count(*) AS cnt,
                               json_agg(CASE WHEN cardinality(excl) = 0 AND cardinality(masks) = 0
                                             THEN to_jsonb(s.r)
                                             ELSE bdc_audit_redact(to_jsonb(s.r) - excl, '{}', masks) END) AS rows
                          FROM (SELECT r, (row_number() OVER () - 1) / 10000 AS chunk FROM bdc_rows r) s
                         GROUP BY s.chunk) g) x
         ORDER BY x.chunk;
    END IF;
    RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION bdc_audit_capture_truncate() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    pk_cols text[] := TG_ARGV[0]::text[];
    excl    text[] := TG_ARGV[1]::text[];
    masks   text[] := TG_ARGV[2]::text[];
    actor_txt text;
    atx bigint;
    n bigint;
BEGIN
    actor_txt := nullif(current_setting('bdc.actor', true), '');
    IF actor_txt IS NULL AND TG_ARGV[3] = 'true' THEN
        RAISE EXCEPTION 'bdc audit: TRUNCATE of table % without an actor (require_actor is on)', TG_TABLE_NAME
            USING ERRCODE = 'P0001';
    END IF;
    atx := bdc_audit_tx_id(actor_txt::jsonb);
    -- Rows grouped by the table holding them, 10,000 per pending row (as
    -- bdc_audit_capture_rows chunks large statements).
    EXECUTE format(
        'INSERT INTO audit_pending (transaction_id, table_name, op, pk_cols, change_ids, rows)
         SELECT $1, x.tn, ''DELETE'', $2,
                ARRAY(SELECT x.base + i FROM generate_series(0, x.cnt - 1) i), x.rows
           FROM (SELECT g.tn, g.chunk, g.cnt, g.rows, nextval(''audit_changes_id_seq'') AS base
                   FROM (SELECT s.tn, s.chunk, count(*) AS cnt,
                                json_agg(CASE WHEN cardinality($3) = 0 AND cardinality($4) = 0 THEN to_jsonb(s.r)
                                              ELSE bdc_audit_redact(to_jsonb(s.r) - $3, ''{}'', $4) END) AS rows
                           FROM (SELECT r, c.relname::text AS tn,
                                        (row_number() OVER (PARTITION BY r.tableoid) - 1) / 10000 AS chunk
                                   FROM %I.%I r JOIN pg_class c ON c.oid = r.tableoid
                                  WHERE r.tableoid = $5
                                     OR NOT EXISTS (SELECT 1 FROM pg_trigger g
                                                     WHERE g.tgrelid = r.tableoid AND g.tgname = ''bdc_audit_truncate'')) s
                          GROUP BY s.tn, s.chunk) g) x
          ORDER BY x.tn, x.chunk',
        TG_TABLE_SCHEMA, TG_TABLE_NAME)
    USING atx, pk_cols, excl, masks, TG_RELID;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO audit_actions (transaction_id, name, actor, status, reason)
    VALUES (atx, 'sql.truncate', actor_txt::jsonb, 'ok',
            format('TRUNCATE %s: rows captured as DELETE changes (%s pending group(s))', TG_TABLE_NAME, n));
    UPDATE audit_transactions SET action = coalesce(action, 'sql.truncate') WHERE id = atx;
    RETURN NULL;
END
$fn$;

-- Event trigger function: ALTER TABLE / DROP TABLE of covered tables.
-- Never blocks the DDL: a failure here is a WARNING.
CREATE OR REPLACE FUNCTION bdc_audit_ddl() RETURNS event_trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    obj record;
    atx bigint;
    actor_txt text := nullif(current_setting('bdc.actor', true), '');
    cols jsonb;
    excl text[];
    act text;
    detail jsonb;
BEGIN
    IF to_regclass('audit_covered_tables') IS NULL THEN
        RETURN;
    END IF;
    IF TG_EVENT = 'ddl_command_end' THEN
        FOR obj IN SELECT d.objid AS oid, c.relname::text AS tname
                     FROM pg_event_trigger_ddl_commands() d
                     JOIN pg_class c ON c.oid = d.objid
                    WHERE d.classid = 'pg_class'::regclass AND d.command_tag = 'ALTER TABLE'
                      AND d.schema_name = current_schema() AND c.relkind IN ('r', 'p')
                      AND EXISTS (SELECT 1 FROM audit_covered_tables t WHERE t.table_name = c.relname)
        LOOP
            -- The table's excluded columns (second argument of its capture
            -- triggers): never recorded, not even by name.
            SELECT coalesce((string_to_array(encode(g.tgargs, 'escape'), '\000'))[2], '{}')::text[]
              INTO excl
              FROM pg_trigger g
             WHERE g.tgrelid = obj.oid AND g.tgname = 'bdc_audit_truncate';
            excl := coalesce(excl, '{}');
            SELECT coalesce(jsonb_agg(jsonb_build_object('name', a.attname::text,
                                                         'type', format_type(a.atttypid, a.atttypmod))
                                      ORDER BY a.attnum), '[]'::jsonb)
              INTO cols
              FROM pg_attribute a
             WHERE a.attrelid = obj.oid AND a.attnum > 0 AND NOT a.attisdropped
               AND NOT (a.attname::text = ANY (excl));
            act := 'schema.alter_table';
            detail := jsonb_build_object('table', obj.tname, 'columns', cols, 'command', 'ALTER TABLE');
            atx := bdc_audit_tx_id(actor_txt::jsonb);
            INSERT INTO audit_actions (transaction_id, name, actor, status, reason)
            VALUES (atx, act, actor_txt::jsonb, 'ok', detail::text);
            UPDATE audit_transactions SET action = coalesce(action, act) WHERE id = atx;
        END LOOP;
    ELSIF TG_EVENT = 'sql_drop' THEN
        FOR obj IN SELECT o.object_name::text AS tname
                     FROM pg_event_trigger_dropped_objects() o
                    WHERE o.object_type = 'table' AND o.original
                      AND o.schema_name = current_schema()
                      AND EXISTS (SELECT 1 FROM audit_covered_tables t WHERE t.table_name = o.object_name)
        LOOP
            act := 'schema.drop_table';
            detail := jsonb_build_object('table', obj.tname, 'columns', '[]'::jsonb, 'command', 'DROP TABLE');
            atx := bdc_audit_tx_id(actor_txt::jsonb);
            INSERT INTO audit_actions (transaction_id, name, actor, status, reason)
            VALUES (atx, act, actor_txt::jsonb, 'ok', detail::text);
            UPDATE audit_transactions SET action = coalesce(action, act) WHERE id = atx;
        END LOOP;
    END IF;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'bdc audit: schema change not recorded: %', SQLERRM;
END
$fn$;

-- The function resolves audit tables in the schema bdc is installed in,
-- whatever the DDL session's search_path (event triggers are database-wide).
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION bdc_audit_ddl() SET search_path = %I', current_schema());
    BEGIN
        EXECUTE format('CREATE EVENT TRIGGER %I ON ddl_command_end WHEN TAG IN (''ALTER TABLE'') EXECUTE FUNCTION %I.bdc_audit_ddl()',
                       'bdc_audit_ddl_' || current_schema(), current_schema());
        EXECUTE format('CREATE EVENT TRIGGER %I ON sql_drop WHEN TAG IN (''DROP TABLE'') EXECUTE FUNCTION %I.bdc_audit_ddl()',
                       'bdc_audit_drop_' || current_schema(), current_schema());
    EXCEPTION
        WHEN insufficient_privilege THEN
            RAISE NOTICE 'bdc audit: schema changes are not captured (creating an event trigger needs a superuser): %', SQLERRM;
        WHEN duplicate_object THEN
            NULL;
    END;
END
$$;
