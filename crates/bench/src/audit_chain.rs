//! Audit II: the hash chain and time travel at scale.
//!
//! `n` changes (10 per transaction, `n / 10` distinct rows of one covered
//! table, ~10 versions each, transactions one second apart) are written
//! straight into the audit tables, then:
//!
//! * flush with hashing: [`bdc_audit::flush`] chains every transaction
//!   (changes/s);
//! * `verify-chain`: [`bdc_audit::chain::verify`] recomputes every link
//!   (changes/s);
//! * as-of of one row at a time in the middle of the history (mean
//!   latency over 200 random rows, ms);
//! * as-of of the whole table streamed as NDJSON (rows/s).

use std::time::Instant;

use anyhow::Result;
use bdc_audit::chain::VerifyFrom;
use bdc_audit::query::ExportFormat;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};

use crate::{Row, backend_name};

pub async fn run(kind: Kind, n: u64) -> Result<Vec<Row>> {
    let backend = backend_name(kind);
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    storage.migrate_parts(&[&bdc_audit::AUDIT]).await?;
    let txs = (n / 10).max(1);
    let rows = (n / 10).max(1);
    let fill = match kind {
        Kind::Postgres => format!(
            "CREATE TABLE bench_rows (id BIGINT PRIMARY KEY, title TEXT);
             INSERT INTO audit_covered_tables (table_name, trigger_sql) VALUES ('bench_rows', 'bench');
             INSERT INTO audit_transactions (txid, occurred_at, actor, actor_type, actor_id)
               SELECT g, now() - (({txs} - g) || ' seconds')::interval,
                      '{{\"type\":\"job\",\"collector\":\"bench\",\"run_id\":\"r\"}}', 'job', 'bench'
                 FROM generate_series(1, {txs}) g;
             INSERT INTO audit_changes (transaction_id, table_name, table_pk, op, data_after, changed_fields, changed_from)
               SELECT 1 + (g - 1) / 10, 'bench_rows', jsonb_build_object('id', 1 + g % {rows}), 'UPDATE',
                      jsonb_build_object('id', 1 + g % {rows}, 'title', 'Benchmark item ' || g),
                      '[\"title\"]'::jsonb, jsonb_build_object('title', 'old ' || g)
                 FROM generate_series(1, {n}) g;
             ANALYZE audit_changes; ANALYZE audit_transactions;"
        ),
        Kind::Sqlite => format!(
            "CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, title TEXT);
             INSERT INTO audit_covered_tables (table_name, trigger_sql) VALUES ('bench_rows', 'bench');
             WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {txs})
             INSERT INTO audit_transactions (txid, occurred_at, actor, actor_type, actor_id)
               SELECT x, strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ({txs} - x) || ' seconds'),
                      '{{\"type\":\"job\",\"collector\":\"bench\",\"run_id\":\"r\"}}', 'job', 'bench' FROM g;
             WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {n})
             INSERT INTO audit_changes (transaction_id, table_name, table_pk, op, data_after, changed_fields, changed_from)
               SELECT 1 + (x - 1) / 10, 'bench_rows', json_object('id', 1 + x % {rows}), 'UPDATE',
                      json_object('id', 1 + x % {rows}, 'title', 'Benchmark item ' || x),
                      '[\"title\"]', json_object('title', 'old ' || x)
                 FROM g;
             ANALYZE;"
        ),
    };
    storage.execute_raw(fill).await?;
    let start = Instant::now();
    bdc_audit::flush(&storage).await?;
    let flush_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let report = bdc_audit::chain::verify(&storage, &VerifyFrom::default()).await?;
    let verify_secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(report.ok, "the bench chain does not verify: {report:?}");
    anyhow::ensure!(
        report.changes == n,
        "verified {} of {n} changes",
        report.changes
    );
    let mid = chrono::Utc::now() - chrono::Duration::seconds((txs / 2) as i64);
    let samples = 200u64;
    let start = Instant::now();
    let mut found = 0;
    for i in 0..samples {
        let id = 1 + (i * 7919) % rows;
        let r =
            bdc_audit::asof::row_as_of(&storage, "bench_rows", &format!("{{\"id\":{id}}}"), mid)
                .await?;
        if r.row.is_some() {
            found += 1;
        }
    }
    let row_ms = start.elapsed().as_secs_f64() * 1000.0 / samples as f64;
    anyhow::ensure!(found > 0, "as-of found no row");
    let start = Instant::now();
    let table_rows = bdc_audit::asof::table_as_of(
        &storage,
        "bench_rows",
        chrono::Utc::now(),
        None,
        ExportFormat::Ndjson,
        std::io::sink(),
    )
    .await?;
    let table_secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        table_rows == rows,
        "table as-of gave {table_rows} of {rows} rows"
    );
    Ok(vec![
        Row {
            bench: "audit: flush with hashing (chain)".into(),
            backend,
            size: n.to_string(),
            value: n as f64 / flush_secs,
            unit: "changes/s",
        },
        Row {
            bench: "audit: verify-chain".into(),
            backend,
            size: n.to_string(),
            value: n as f64 / verify_secs,
            unit: "changes/s",
        },
        Row {
            bench: "audit: as-of one row (mean of 200)".into(),
            backend,
            size: n.to_string(),
            value: row_ms,
            unit: "ms",
        },
        Row {
            bench: "audit: as-of whole table (NDJSON)".into(),
            backend,
            size: format!("{n} changes/{rows} rows"),
            value: rows as f64 / table_secs,
            unit: "rows/s",
        },
    ])
}
