-- Audit migration 8 (PostgreSQL). Keep in step with
-- migrations/sqlite/0008_deferred_transactions.sql.
--
-- Audit transactions and row captures leave the write path.
--
-- 1. Until version 7 the first capture of a database transaction inserted
--    its audit_transactions row (five indexes: the key, time, actor, chain
--    position and the unchained partial index), and an UPDATE's row
--    trigger wrote its change straight into audit_changes (four indexes):
--    ~70 % of what capture added to a single-row UPDATE. Now a capture
--    only reserves the transaction's id (bdc_audit_tx_reserve: one
--    nextval, cached in bdc.audit_tx for the rest of the transaction) and
--    writes one audit_pending row that carries the transaction's header
--    (txid, start time, actor). bdc_audit_flush_range creates the
--    audit_transactions row when it expands the transaction's first
--    pending row (ON CONFLICT: a transaction may span several flush
--    batches). Ids come from the same sequence either way, so they still
--    follow the order in which transactions first wrote.
-- 2. UPDATE captures are pending rows too. Without excluded or masked
--    columns the trigger stores the old and new row as they are
--    ({"o": old, "n": new}; rows whose binary image did not change are
--    skipped) and the flush computes the changed fields; with them, the
--    trigger computes the redacted diff itself ({"n", "f", "p"}), as
--    before, so nothing excluded or masked is ever stored. An UPDATE whose
--    audited columns did not change still records nothing (the flush drops
--    it, and creates no transaction for it).
-- 3. audit_pending loses its transaction_id index (one index entry less
--    per capture); the chain's and retention's "still pending?" test
--    (NOT EXISTS) plans as a hash anti-join over the queue.
-- 4. Semantic actions, baselines, TRUNCATE and schema changes still create
--    the audit transaction at once (bdc_audit_tx_id): they link rows to
--    it. A transaction that captured first and records an action later
--    gets its reserved id.
SET LOCAL lock_timeout = '5s';
ALTER TABLE audit_pending
    DROP CONSTRAINT IF EXISTS audit_pending_op_check,
    ADD CONSTRAINT audit_pending_op_check CHECK (op IN ('INSERT', 'UPDATE', 'DELETE')),
    ADD COLUMN txid  BIGINT,        -- pg_current_xact_id() of the capturing transaction
    ADD COLUMN tx_at TIMESTAMPTZ,   -- its start (now()): audit_transactions.occurred_at
    ADD COLUMN actor JSONB;         -- bdc.actor at capture; NULL with tx_at: anonymous
-- One index fewer per capture: the chain and retention look for a
-- transaction's pending rows with one hash anti-join over this queue.
DROP INDEX IF EXISTS audit_pending_tx_idx;
ALTER TABLE audit_pending_failed
    ADD COLUMN txid  BIGINT,
    ADD COLUMN tx_at TIMESTAMPTZ,
    ADD COLUMN actor JSONB;

-- The id of the current transaction's audit transaction, reserved (not
-- created) on first use. bdc.audit_tx holds "<xid>:<id>:r" while only
-- reserved, "<xid>:<id>" once created (bdc_audit_tx_id).
CREATE FUNCTION bdc_audit_tx_reserve() RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    xid text := pg_current_xact_id()::text;
    cached text := current_setting('bdc.audit_tx', true);
    atx bigint;
BEGIN
    IF cached IS NOT NULL AND cached <> '' AND split_part(cached, ':', 1) = xid THEN
        RETURN split_part(cached, ':', 2)::bigint;
    END IF;
    atx := nextval('audit_transactions_id_seq');
    PERFORM set_config('bdc.audit_tx', xid || ':' || atx::text || ':r', true);
    RETURN atx;
END
$fn$;

-- The audit transaction of the current transaction, created now (with the
-- id reserved by an earlier capture, if any).
CREATE OR REPLACE FUNCTION bdc_audit_tx_id(p_actor jsonb) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    xid bigint := pg_current_xact_id()::text::bigint;
    cached text := current_setting('bdc.audit_tx', true);
    atx bigint;
BEGIN
    IF cached IS NOT NULL AND cached <> '' AND split_part(cached, ':', 1) = xid::text THEN
        atx := split_part(cached, ':', 2)::bigint;
        IF split_part(cached, ':', 3) = '' THEN
            RETURN atx;
        END IF;
    ELSE
        atx := nextval('audit_transactions_id_seq');
    END IF;
    INSERT INTO audit_transactions (id, txid, actor, actor_type, actor_id)
    VALUES (atx, xid, p_actor, p_actor ->> 'type',
            coalesce(p_actor ->> 'collector', p_actor ->> 'user', p_actor ->> 'caller', p_actor ->> 'component'));
    PERFORM set_config('bdc.audit_tx', xid::text || ':' || atx::text, true);
    RETURN atx;
END
$fn$;

-- The row trigger (UPDATE of every covered table; every operation of a
-- table covered with row triggers only). Arguments as in version 1. Lean
-- on purpose (a single-row UPDATE pays all of it): the text[] arguments
-- are cast only where used (TG_ARGV[1] = '{}': no excluded columns), and
-- bdc_audit_tx_reserve() is inlined (a nested PL/pgSQL call costs a few
-- microseconds more).
CREATE OR REPLACE FUNCTION bdc_audit_capture() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    plain boolean := TG_ARGV[1] = '{}' AND TG_ARGV[2] = '{}';
    actor_txt text;
    excl text[];
    masks text[];
    newj jsonb;
    oldj jsonb;
    changed jsonb;
    prev jsonb;
    elem json;
    cached text;
    xid bigint;
    atx bigint;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD *= NEW THEN
            RETURN NULL;  -- the row did not change at all
        END IF;
        IF plain THEN
            elem := json_build_object('o', OLD, 'n', NEW);
        ELSE
            excl := TG_ARGV[1]::text[];
            masks := TG_ARGV[2]::text[];
            newj := to_jsonb(NEW) - excl;
            oldj := to_jsonb(OLD) - excl;
            SELECT jsonb_agg(o.key ORDER BY o.key), jsonb_object_agg(o.key, o.value)
              INTO changed, prev
              FROM jsonb_each(oldj) o
             WHERE o.value IS DISTINCT FROM newj -> o.key;
            IF changed IS NULL THEN
                RETURN NULL;  -- nothing audited changed: record nothing
            END IF;
            IF cardinality(masks) > 0 THEN
                newj := bdc_audit_redact(newj, '{}', masks);
                prev := bdc_audit_redact(prev, '{}', masks);
            END IF;
            elem := json_build_object('n', newj, 'f', changed, 'p', prev);
        END IF;
    ELSIF plain THEN
        IF TG_OP = 'INSERT' THEN
            elem := to_json(NEW);
        ELSE
            elem := to_json(OLD);
        END IF;
    ELSE
        IF TG_OP = 'INSERT' THEN
            elem := bdc_audit_redact(to_jsonb(NEW) - TG_ARGV[1]::text[], '{}', TG_ARGV[2]::text[])::json;
        ELSE
            elem := bdc_audit_redact(to_jsonb(OLD) - TG_ARGV[1]::text[], '{}', TG_ARGV[2]::text[])::json;
        END IF;
    END IF;
    actor_txt := nullif(current_setting('bdc.actor', true), '');
    IF actor_txt IS NULL AND TG_ARGV[3] = 'true' THEN
        RAISE EXCEPTION 'bdc audit: write to table % without an actor (require_actor is on)', TG_TABLE_NAME
            USING ERRCODE = 'P0001';
    END IF;
    xid := pg_current_xact_id()::text::bigint;
    cached := current_setting('bdc.audit_tx', true);
    IF cached IS NOT NULL AND cached <> '' AND split_part(cached, ':', 1) = xid::text THEN
        atx := split_part(cached, ':', 2)::bigint;
    ELSE
        atx := nextval('audit_transactions_id_seq');
        PERFORM set_config('bdc.audit_tx', xid::text || ':' || atx::text || ':r', true);
    END IF;
    INSERT INTO audit_pending (transaction_id, table_name, op, pk_cols, change_ids, rows, txid, tx_at, actor)
    VALUES (atx, TG_TABLE_NAME, TG_OP, TG_ARGV[0]::text[], ARRAY[nextval('audit_changes_id_seq')],
            json_build_array(elem), xid, now(), actor_txt::jsonb);
    RETURN NULL;
END
$fn$;

-- The statement trigger of bulk INSERT and DELETE (version 7's, with the
-- transaction reserved instead of created).
CREATE OR REPLACE FUNCTION bdc_audit_capture_rows() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    pk_cols text[] := TG_ARGV[0]::text[];
    excl    text[] := TG_ARGV[1]::text[];
    masks   text[] := TG_ARGV[2]::text[];
    n       bigint;
    actor_txt text;
    actor_j jsonb;
    atx bigint;
    xid bigint;
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
    actor_j := actor_txt::jsonb;
    atx := bdc_audit_tx_reserve();
    xid := pg_current_xact_id()::text::bigint;
    -- change_ids[i] belongs to rows[i]: positional (base + i - 1).
    IF n <= 20000 THEN
        base := nextval('audit_changes_id_seq');
        IF cardinality(excl) = 0 AND cardinality(masks) = 0 THEN
            INSERT INTO audit_pending (transaction_id, table_name, op, pk_cols, change_ids, rows, txid, tx_at, actor)
            SELECT atx, TG_TABLE_NAME, TG_OP, pk_cols,
                   ARRAY(SELECT base + i FROM generate_series(0, n - 1) i), json_agg(r), xid, now(), actor_j
              FROM bdc_rows r;
        ELSE
            INSERT INTO audit_pending (transaction_id, table_name, op, pk_cols, change_ids, rows, txid, tx_at, actor)
            SELECT atx, TG_TABLE_NAME, TG_OP, pk_cols,
                   ARRAY(SELECT base + i FROM generate_series(0, n - 1) i),
                   json_agg(bdc_audit_redact(to_jsonb(r) - excl, '{}', masks)), xid, now(), actor_j
              FROM bdc_rows r;
        END IF;
    ELSE
        -- One pending row per 10,000 rows, each with its own block.
        INSERT INTO audit_pending (transaction_id, table_name, op, pk_cols, change_ids, rows, txid, tx_at, actor)
        SELECT atx, TG_TABLE_NAME, TG_OP, pk_cols,
               ARRAY(SELECT x.base + i FROM generate_series(0, x.cnt - 1) i), x.rows, xid, now(), actor_j
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

-- Expand pending rows with p_from <= id <= p_upto, at most p_limit of
-- them and no more after the one that reaches 100,000 changes (an UPDATE
-- is one pending row per updated row: the row limit alone would make a
-- million-row UPDATE thousands of calls), in one statement; returns the
-- pending elements consumed. Creates
-- the audit transactions of the expanded changes (ON CONFLICT: created
-- earlier by an action, or by the batch that expanded the transaction's
-- first pending row). UPDATE elements {"o", "n"} get their changed fields
-- here; an UPDATE with none is dropped.
CREATE OR REPLACE FUNCTION bdc_audit_flush_range(p_limit integer, p_from bigint, p_upto bigint, p_per_row boolean) RETURNS bigint
LANGUAGE sql AS $fn$
    WITH moved AS (
        DELETE FROM audit_pending
         WHERE id IN (SELECT w.id
                        FROM (SELECT l.id, l.n, sum(l.n) OVER (ORDER BY l.id) AS run
                                FROM (SELECT id, cardinality(change_ids) AS n FROM audit_pending
                                       WHERE id BETWEEN p_from AND p_upto
                                       ORDER BY id LIMIT p_limit FOR UPDATE) l) w
                       WHERE w.run - w.n < 100000)
        RETURNING id, transaction_id, table_name, op, pk_cols, change_ids, rows, captured_at, txid, tx_at, actor
    ), x AS (
        SELECT e.change_id, m.transaction_id, m.table_name, m.op, m.pk_cols, m.captured_at, v.r
          FROM moved m
         CROSS JOIN LATERAL ROWS FROM (
                   jsonb_array_elements(CASE WHEN NOT p_per_row THEN m.rows::jsonb END),
                   json_array_elements(CASE WHEN p_per_row THEN m.rows END),
                   unnest(m.change_ids)) AS e(jb, j, change_id)
         CROSS JOIN LATERAL (SELECT coalesce(e.jb, e.j::jsonb)) AS v(r)
    ), c AS (
        SELECT x.change_id, x.transaction_id, x.table_name, x.op, x.pk_cols, x.captured_at,
               CASE WHEN x.op = 'UPDATE' THEN x.r -> 'n' ELSE x.r END AS keyrow,
               CASE WHEN x.op = 'UPDATE' THEN coalesce(x.r -> 'f', d.f) END AS fields,
               CASE WHEN x.op = 'UPDATE' THEN coalesce(x.r -> 'p', d.p)
                    WHEN x.op = 'DELETE' THEN x.r END AS prev
          FROM x
          LEFT JOIN LATERAL (
                SELECT jsonb_agg(o.key ORDER BY o.key) AS f, jsonb_object_agg(o.key, o.value) AS p
                  FROM jsonb_each(x.r -> 'o') o
                 WHERE o.value IS DISTINCT FROM x.r -> 'n' -> o.key) d
            ON x.op = 'UPDATE' AND x.r ? 'o'
    ), expanded AS (
        INSERT INTO audit_changes (id, transaction_id, table_name, table_pk, op, data_after, changed_fields, changed_from, captured_at)
        SELECT c.change_id, c.transaction_id, c.table_name,
               CASE cardinality(c.pk_cols)
                    WHEN 1 THEN jsonb_build_object(c.pk_cols[1], c.keyrow -> c.pk_cols[1])
                    WHEN 2 THEN jsonb_build_object(c.pk_cols[1], c.keyrow -> c.pk_cols[1],
                                                   c.pk_cols[2], c.keyrow -> c.pk_cols[2])
                    WHEN 3 THEN jsonb_build_object(c.pk_cols[1], c.keyrow -> c.pk_cols[1],
                                                   c.pk_cols[2], c.keyrow -> c.pk_cols[2],
                                                   c.pk_cols[3], c.keyrow -> c.pk_cols[3])
                    ELSE (SELECT coalesce(jsonb_object_agg(pk, c.keyrow -> pk), '{}') FROM unnest(c.pk_cols) pk)
               END,
               c.op,
               CASE WHEN c.op <> 'DELETE' THEN c.keyrow END,
               c.fields, c.prev, c.captured_at
          FROM c
         WHERE c.op <> 'UPDATE' OR c.fields IS NOT NULL
        RETURNING transaction_id
    ), written AS (
        SELECT DISTINCT transaction_id FROM expanded
    ), txs AS (
        -- The transactions of the changes written (none for an UPDATE that
        -- changed nothing), from the header of their first pending row.
        INSERT INTO audit_transactions (id, txid, occurred_at, actor, actor_type, actor_id)
        SELECT DISTINCT ON (m.transaction_id) m.transaction_id, m.txid, m.tx_at, m.actor, m.actor ->> 'type',
               coalesce(m.actor ->> 'collector', m.actor ->> 'user', m.actor ->> 'caller', m.actor ->> 'component')
          FROM moved m
          JOIN written w ON w.transaction_id = m.transaction_id
         WHERE m.tx_at IS NOT NULL
         ORDER BY m.transaction_id, m.id
        ON CONFLICT (id) DO NOTHING
    )
    SELECT coalesce(sum(cardinality(m.change_ids)), 0)::bigint FROM moved m
$fn$;

-- Version 4's flush, setting aside a pending row with the header of its
-- transaction (and creating that transaction, so the set-aside changes
-- stay attributable).
CREATE OR REPLACE FUNCTION bdc_audit_flush(p_limit integer, p_upto bigint) RETURNS bigint
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
                INSERT INTO audit_pending_failed (id, transaction_id, table_name, op, pk_cols, change_ids, rows,
                                                  captured_at, error, txid, tx_at, actor)
                VALUES (bad.id, bad.transaction_id, bad.table_name, bad.op, bad.pk_cols, bad.change_ids, bad.rows,
                        bad.captured_at, msg, bad.txid, bad.tx_at, bad.actor);
                IF bad.tx_at IS NOT NULL THEN
                    INSERT INTO audit_transactions (id, txid, occurred_at, actor, actor_type, actor_id)
                    VALUES (bad.transaction_id, bad.txid, bad.tx_at, bad.actor, bad.actor ->> 'type',
                            coalesce(bad.actor ->> 'collector', bad.actor ->> 'user',
                                     bad.actor ->> 'caller', bad.actor ->> 'component'))
                    ON CONFLICT (id) DO NOTHING;
                END IF;
                n := n + cardinality(bad.change_ids);
                RAISE WARNING 'bdc audit: pending capture % (% on %, % change(s)) cannot be expanded: %; kept in audit_pending_failed',
                    bad.id, bad.op, bad.table_name, cardinality(bad.change_ids), msg;
            END IF;
        END;
    END LOOP;
    RETURN n;
END
$fn$;
