//! Audit capture against two reference points, pgbench style, on a plain
//! table (`bench_accounts`, pgbench's `aid, bid, abalance, filler`):
//!
//! * **single-row UPDATE**: `UPDATE … SET abalance = abalance + d WHERE aid
//!   = r`, each its own transaction (pgbench's core write);
//! * **1,000-row INSERT**: one multi-row `INSERT` of 1,000 rows per
//!   transaction.
//!
//! Three modes, alternated over rounds so the machine's noise hits all:
//! no trigger; bdc's capture (`bdc audit gen-triggers`); and a plain
//! **row-per-row** capture trigger of the usual design, written here as the
//! baseline: one audit insert per changed row with the old and new row as
//! JSON, the operation, the table and the actor (as audit-trigger-style
//! libraries do). Reported as rates and as the ratios the issue sets goals
//! for: captured / uncaptured on single-row UPDATE (goal ≥ 0.85) and
//! captured / row-per-row on the 1,000-row INSERT (goal ≥ 3).
//!
//! PostgreSQL runs with `synchronous_commit = off` for this database: with
//! it on, each single-row transaction waits for a WAL flush whose latency
//! on a shared disk is larger and noisier than everything measured here.
//! SQLite runs as `bdc` does (WAL, `synchronous = NORMAL`: no flush per
//! commit either).

use std::time::Instant;

use anyhow::Result;
use bdc_audit::AuditConfig;
use bdc_core::Actor;
use bdc_storage::{Backend, ConnectOptions, Storage, on_tx};
use bdc_testsupport::{Kind, TestDb};
use sqlx::AssertSqlSafe;

use crate::{Row, backend_name};

const ROUNDS: usize = 3;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Plain,
    Captured,
    RowPerRow,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Plain => "no capture",
            Mode::Captured => "bdc capture",
            Mode::RowPerRow => "row-per-row trigger",
        }
    }
}

/// The baseline: one audit row per changed row.
fn row_per_row_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => {
            "CREATE TABLE IF NOT EXISTS bench_row_log (
                 id BIGSERIAL PRIMARY KEY, table_name TEXT NOT NULL, op TEXT NOT NULL,
                 old_row JSONB, new_row JSONB, actor TEXT, at TIMESTAMPTZ NOT NULL DEFAULT now());
             CREATE OR REPLACE FUNCTION bench_row_capture() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 INSERT INTO bench_row_log (table_name, op, old_row, new_row, actor)
                 VALUES (TG_TABLE_NAME, TG_OP,
                         CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
                         CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END,
                         current_setting('bdc.actor', true));
                 RETURN NULL;
             END $$;
             CREATE TRIGGER bench_row AFTER INSERT OR UPDATE OR DELETE ON bench_accounts
                 FOR EACH ROW EXECUTE FUNCTION bench_row_capture();"
        }
        Backend::Sqlite => {
            "CREATE TABLE IF NOT EXISTS bench_row_log (
                 id INTEGER PRIMARY KEY, table_name TEXT NOT NULL, op TEXT NOT NULL,
                 old_row TEXT, new_row TEXT, actor TEXT,
                 at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
             CREATE TRIGGER bench_row_ins AFTER INSERT ON bench_accounts BEGIN
                 INSERT INTO bench_row_log (table_name, op, new_row, actor)
                 VALUES ('bench_accounts', 'INSERT',
                         json_object('aid', NEW.aid, 'bid', NEW.bid, 'abalance', NEW.abalance, 'filler', NEW.filler),
                         (SELECT actor FROM bdc_tx_context WHERE id = 1));
             END;
             CREATE TRIGGER bench_row_upd AFTER UPDATE ON bench_accounts BEGIN
                 INSERT INTO bench_row_log (table_name, op, old_row, new_row, actor)
                 VALUES ('bench_accounts', 'UPDATE',
                         json_object('aid', OLD.aid, 'bid', OLD.bid, 'abalance', OLD.abalance, 'filler', OLD.filler),
                         json_object('aid', NEW.aid, 'bid', NEW.bid, 'abalance', NEW.abalance, 'filler', NEW.filler),
                         (SELECT actor FROM bdc_tx_context WHERE id = 1));
             END;
             CREATE TRIGGER bench_row_del AFTER DELETE ON bench_accounts BEGIN
                 INSERT INTO bench_row_log (table_name, op, old_row, actor)
                 VALUES ('bench_accounts', 'DELETE',
                         json_object('aid', OLD.aid, 'bid', OLD.bid, 'abalance', OLD.abalance, 'filler', OLD.filler),
                         (SELECT actor FROM bdc_tx_context WHERE id = 1));
             END;"
        }
    }
}

fn drop_row_per_row_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "DROP TRIGGER IF EXISTS bench_row ON bench_accounts;",
        Backend::Sqlite => {
            "DROP TRIGGER IF EXISTS bench_row_ins; DROP TRIGGER IF EXISTS bench_row_upd;
             DROP TRIGGER IF EXISTS bench_row_del;"
        }
    }
}

async fn drop_bdc_triggers(storage: &Storage) -> Result<()> {
    let sql: String = match storage.backend() {
        Backend::Postgres => bdc_audit::triggers::PG_TRIGGERS
            .iter()
            .map(|n| format!("DROP TRIGGER IF EXISTS {n} ON bench_accounts;"))
            .collect(),
        Backend::Sqlite => bdc_audit::triggers::sqlite_trigger_names("bench_accounts")
            .iter()
            .map(|n| {
                format!(
                    "DROP TRIGGER IF EXISTS {};",
                    bdc_audit::triggers::quote_ident(n)
                )
            })
            .collect(),
    };
    storage
        .execute_raw(format!(
            "{sql} DELETE FROM audit_covered_tables WHERE table_name = 'bench_accounts';"
        ))
        .await?;
    Ok(())
}

async fn set_mode(storage: &Storage, cfg: &AuditConfig, mode: Mode) -> Result<()> {
    drop_bdc_triggers(storage).await?;
    storage
        .execute_raw(drop_row_per_row_sql(storage.backend()).to_owned())
        .await?;
    match mode {
        Mode::Plain => {}
        Mode::Captured => {
            bdc_audit::triggers::cover_tables(storage, cfg, &["bench_accounts".into()], false)
                .await?;
        }
        Mode::RowPerRow => {
            storage
                .execute_raw(row_per_row_sql(storage.backend()).to_owned())
                .await?;
        }
    }
    Ok(())
}

async fn exec(storage: &Storage, sql: String) -> Result<()> {
    let mut tx = storage.begin().await?;
    on_tx!(&mut tx, t => sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut **t).await.map(|_| ()))?;
    tx.commit().await?;
    Ok(())
}

/// (single-row UPDATE tx/s, 1,000-row INSERT rows/s).
async fn round(
    storage: &Storage,
    accounts: usize,
    updates: usize,
    batches: usize,
    next_aid: &mut usize,
) -> Result<(f64, f64)> {
    let start = Instant::now();
    for i in 0..updates {
        let aid = (i * 7919) % accounts + 1;
        exec(
            storage,
            format!(
                "UPDATE bench_accounts SET abalance = abalance + {} WHERE aid = {aid}",
                (i % 11) as i64 - 5
            ),
        )
        .await?;
    }
    let upd = updates as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in 0..batches {
        let values: Vec<String> = (0..1000)
            .map(|k| {
                let aid = *next_aid + k;
                format!("({aid}, {}, 0, 'filler {aid}')", aid % 10)
            })
            .collect();
        *next_aid += 1000;
        exec(
            storage,
            format!(
                "INSERT INTO bench_accounts (aid, bid, abalance, filler) VALUES {}",
                values.join(",")
            ),
        )
        .await?;
    }
    let ins = (batches * 1000) as f64 / start.elapsed().as_secs_f64();
    Ok((upd, ins))
}

pub async fn run(kind: Kind, quick: bool) -> Result<Vec<Row>> {
    let backend = backend_name(kind);
    let (updates, batches) = if quick { (500, 10) } else { (3_000, 40) };
    let accounts = 10_000;
    let db = TestDb::new(kind).await;
    if kind == Kind::Postgres {
        // Measure what the triggers cost, not the disk's fsync latency
        // (a commit's flush dwarfs and randomizes a single-row UPDATE on a
        // shared machine): sessions of this database skip the flush wait.
        let admin = Storage::connect(db.url(), &ConnectOptions::default()).await?;
        admin
            .execute_raw(
                "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', current_database()); END $$"
                    .to_owned(),
            )
            .await?;
        admin.close().await;
    }
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    storage.migrate_parts(&[&bdc_audit::AUDIT]).await?;
    storage
        .execute_raw(
            "CREATE TABLE bench_accounts (aid BIGINT PRIMARY KEY, bid INTEGER NOT NULL,
                 abalance INTEGER NOT NULL, filler TEXT)"
                .to_owned(),
        )
        .await?;
    let writer = storage.with_actor(&Actor::job("bench", "bench-run"));
    let values: Vec<String> = (1..=accounts)
        .map(|aid| format!("({aid}, {}, 0, 'filler {aid}')", aid % 10))
        .collect();
    exec(
        &writer,
        format!(
            "INSERT INTO bench_accounts (aid, bid, abalance, filler) VALUES {}",
            values.join(",")
        ),
    )
    .await?;
    let cfg = AuditConfig::parse("cover_platform_tables: false\n", "bench")?;
    let modes = [Mode::Plain, Mode::Captured, Mode::RowPerRow];
    let mut sums = [(0.0, 0.0); 3];
    let mut next_aid = accounts + 1;
    // Warm-up (plans, caches), then the measured rounds.
    round(&writer, accounts, updates / 5, 2, &mut next_aid).await?;
    for _ in 0..ROUNDS {
        for (m, mode) in modes.iter().enumerate() {
            set_mode(&writer, &cfg, *mode).await?;
            let (u, i) = round(&writer, accounts, updates, batches, &mut next_aid).await?;
            sums[m].0 += u / ROUNDS as f64;
            sums[m].1 += i / ROUNDS as f64;
            // Our pending captures are expanded off the write path; keep
            // the queue from growing across rounds.
            if *mode == Mode::Captured {
                bdc_audit::flush(&storage).await?;
            }
        }
    }
    let mut rows = Vec::new();
    for (m, mode) in modes.iter().enumerate() {
        rows.push(Row {
            bench: format!("audit pgbench: single-row UPDATE, {}", mode.label()),
            backend,
            size: updates.to_string(),
            value: sums[m].0,
            unit: "tx/s",
        });
        rows.push(Row {
            bench: format!("audit pgbench: 1,000-row INSERT, {}", mode.label()),
            backend,
            size: format!("{batches}x1000"),
            value: sums[m].1,
            unit: "rows/s",
        });
    }
    rows.push(Row {
        bench: "audit pgbench: single-row UPDATE ratio captured/none (goal >= 0.85)".into(),
        backend,
        size: updates.to_string(),
        value: sums[1].0 / sums[0].0,
        unit: "ratio",
    });
    rows.push(Row {
        bench: "audit pgbench: single-row UPDATE ratio captured/row-per-row".into(),
        backend,
        size: updates.to_string(),
        value: sums[1].0 / sums[2].0,
        unit: "ratio",
    });
    rows.push(Row {
        bench: "audit pgbench: 1,000-row INSERT ratio captured/row-per-row (goal >= 3)".into(),
        backend,
        size: format!("{batches}x1000"),
        value: sums[1].1 / sums[2].1,
        unit: "ratio",
    });
    rows.push(Row {
        bench: "audit pgbench: 1,000-row INSERT ratio captured/none".into(),
        backend,
        size: format!("{batches}x1000"),
        value: sums[1].1 / sums[0].1,
        unit: "ratio",
    });
    drop(writer);
    storage.close().await;
    drop(db);
    Ok(rows)
}
