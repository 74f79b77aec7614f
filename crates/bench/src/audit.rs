//! Audit trail: write overhead of trigger capture and export rate.
//!
//! * The same write workload (single-row UPDATEs, each its own transaction,
//!   and batch INSERTs of activity records, 500 per transaction) without
//!   and with the audit triggers on `activity_records`; reported as
//!   throughput and as the ratio captured / uncaptured (target ≥ 0.80 on
//!   PostgreSQL single-row updates).
//! * Export rate (rows/s) of NDJSON to a sink and peak memory (VmHWM from
//!   /proc/self/status, before and after) over 1 M changes (`--quick`:
//!   100 k).

use std::time::Instant;

use anyhow::Result;
use bdc_audit::AuditConfig;
use bdc_audit::query::{ExportFormat, TimelineFilter};
use bdc_core::{ActivityRecord, Actor};
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};
use chrono::{Duration, TimeZone, Utc};

use crate::{Row, backend_name};

fn records(prefix: &str, n: usize, revision: u32) -> Result<Vec<ActivityRecord>> {
    let base = Utc
        .with_ymd_and_hms(2020, 1, 1, 0, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("bad base date"))?;
    (0..n)
        .map(|i| {
            Ok(ActivityRecord::new(
                "bench",
                format!("{prefix}-{i}"),
                base + Duration::minutes(i as i64),
                "event",
            )?
            .with_actor(format!("user-{}", i % 97))?
            .with_title(format!("Benchmark item {i} rev {revision}"))
            .with_payload(serde_json::json!({"i": i, "rev": revision}))?)
        })
        .collect()
}

/// (single-row updates/s, batch-inserted records/s) on `storage`.
async fn workload(
    storage: &Storage,
    prefix: &str,
    updates: usize,
    inserts: usize,
) -> Result<(f64, f64)> {
    let batch = 500;
    // Rows to update.
    storage
        .activity()
        .upsert(
            &records(&format!("{prefix}-u"), updates, 1)?,
            Some("bench"),
            None,
        )
        .await?;
    let changed = records(&format!("{prefix}-u"), updates, 2)?;
    let start = Instant::now();
    for r in changed.chunks(1) {
        storage.activity().upsert(r, Some("bench"), None).await?;
    }
    let upd = updates as f64 / start.elapsed().as_secs_f64();
    let data = records(&format!("{prefix}-i"), inserts, 1)?;
    let start = Instant::now();
    for chunk in data.chunks(batch) {
        storage
            .activity()
            .upsert(chunk, Some("bench"), None)
            .await?;
    }
    let ins = inserts as f64 / start.elapsed().as_secs_f64();
    Ok((upd, ins))
}

/// Alternating rounds (plain, captured) averaged: the machine's noise hits both.
const ROUNDS: u32 = 3;

fn vm_hwm_kib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .unwrap_or(f64::NAN)
}

pub async fn run(kind: Kind, quick: bool) -> Result<Vec<Row>> {
    let backend = backend_name(kind);
    let (updates, inserts) = if quick {
        (1_000, 10_000)
    } else {
        (5_000, 50_000)
    };
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    storage.migrate_parts(&[&bdc_audit::AUDIT]).await?;
    let writer = storage.with_actor(&Actor::job("bench", "bench-run"));
    // Warm-up, then alternate plain / captured rounds.
    workload(&writer, "warm", updates / 5, inserts / 5).await?;
    let cfg = AuditConfig::parse("cover_platform_tables: false\n", "bench")?;
    let mut plain = (0.0, 0.0);
    let mut captured = (0.0, 0.0);
    for round in 0..ROUNDS {
        let (u, i) = workload(&writer, &format!("p{round}"), updates, inserts).await?;
        plain.0 += u / ROUNDS as f64;
        plain.1 += i / ROUNDS as f64;
        bdc_audit::triggers::cover_tables(&writer, &cfg, &["activity_records".into()], false)
            .await?;
        let (u, i) = workload(&writer, &format!("c{round}"), updates, inserts).await?;
        captured.0 += u / ROUNDS as f64;
        captured.1 += i / ROUNDS as f64;
        drop_triggers(&storage).await?;
    }
    let mut rows = vec![
        Row {
            bench: "audit: single-row UPDATE, no capture".into(),
            backend,
            size: updates.to_string(),
            value: plain.0,
            unit: "tx/s",
        },
        Row {
            bench: "audit: single-row UPDATE, captured".into(),
            backend,
            size: updates.to_string(),
            value: captured.0,
            unit: "tx/s",
        },
        Row {
            bench: "audit: single-row UPDATE ratio".into(),
            backend,
            size: updates.to_string(),
            value: captured.0 / plain.0,
            unit: "captured/plain",
        },
        Row {
            bench: "audit: batch INSERT, no capture".into(),
            backend,
            size: format!("{inserts}/500"),
            value: plain.1,
            unit: "records/s",
        },
        Row {
            bench: "audit: batch INSERT, captured".into(),
            backend,
            size: format!("{inserts}/500"),
            value: captured.1,
            unit: "records/s",
        },
        Row {
            bench: "audit: batch INSERT ratio".into(),
            backend,
            size: format!("{inserts}/500"),
            value: captured.1 / plain.1,
            unit: "captured/plain",
        },
    ];
    drop(storage);
    drop(db);
    rows.extend(export(kind, if quick { 100_000 } else { 1_000_000 }).await?);
    // The hash chain and as-of at scale: `--only audit-chain`.
    Ok(rows)
}

async fn drop_triggers(storage: &Storage) -> Result<()> {
    let sql = match storage.backend() {
        bdc_storage::Backend::Postgres => {
            let mut s: String = bdc_audit::triggers::PG_TRIGGERS
                .iter()
                .map(|n| format!("DROP TRIGGER IF EXISTS {n} ON activity_records;"))
                .collect();
            s.push_str("DELETE FROM audit_covered_tables;");
            s
        }
        bdc_storage::Backend::Sqlite => {
            let names = bdc_audit::triggers::sqlite_trigger_names("activity_records");
            let mut s: String = names
                .iter()
                .map(|n| {
                    format!(
                        "DROP TRIGGER IF EXISTS {};",
                        bdc_audit::triggers::quote_ident(n)
                    )
                })
                .collect();
            s.push_str("DELETE FROM audit_covered_tables;");
            s
        }
    };
    storage.execute_raw(sql).await?;
    Ok(())
}

async fn export(kind: Kind, n: u64) -> Result<Vec<Row>> {
    let backend = backend_name(kind);
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    storage.migrate_parts(&[&bdc_audit::AUDIT]).await?;
    let txs = (n / 10).max(1);
    let fill = match kind {
        Kind::Postgres => format!(
            "INSERT INTO audit_transactions (txid, actor, actor_type, actor_id)
               SELECT g, '{{\"type\":\"job\",\"collector\":\"bench\",\"run_id\":\"r\"}}', 'job', 'bench' FROM generate_series(1, {txs}) g;
             INSERT INTO audit_changes (transaction_id, table_name, table_pk, op, data_after, changed_fields, changed_from)
               SELECT 1 + (g % {txs}), 'activity_records', jsonb_build_object('id', g), 'UPDATE',
                      jsonb_build_object('id', g, 'title', 'Benchmark item ' || g, 'payload', jsonb_build_object('i', g)),
                      '[\"title\"]'::jsonb, jsonb_build_object('title', 'old ' || g)
                 FROM generate_series(1, {n}) g;"
        ),
        Kind::Sqlite => format!(
            "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {txs})
             INSERT INTO audit_transactions (txid, actor, actor_type, actor_id)
               SELECT x, '{{\"type\":\"job\",\"collector\":\"bench\",\"run_id\":\"r\"}}', 'job', 'bench' FROM g;
             WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {n})
             INSERT INTO audit_changes (transaction_id, table_name, table_pk, op, data_after, changed_fields, changed_from)
               SELECT 1 + (x % {txs}), 'activity_records', json_object('id', x), 'UPDATE',
                      json_object('id', x, 'title', 'Benchmark item ' || x, 'payload', json_object('i', x)),
                      '[\"title\"]', json_object('title', 'old ' || x)
                 FROM g;"
        ),
    };
    storage.execute_raw(fill).await?;
    // Chain the filled transactions first (measured in audit_chain).
    bdc_audit::flush(&storage).await?;
    let before = vm_hwm_kib();
    let start = Instant::now();
    let rows = bdc_audit::query::export(
        &storage,
        &TimelineFilter::default(),
        ExportFormat::Ndjson,
        None,
        std::io::sink(),
        |_| {},
    )
    .await?;
    let secs = start.elapsed().as_secs_f64();
    let after = vm_hwm_kib();
    anyhow::ensure!(rows == n, "exported {rows} of {n} changes");
    Ok(vec![
        Row {
            bench: "audit: export NDJSON".into(),
            backend,
            size: n.to_string(),
            value: n as f64 / secs,
            unit: "rows/s",
        },
        Row {
            bench: "audit: export peak RSS before (VmHWM)".into(),
            backend,
            size: n.to_string(),
            value: before / 1024.0,
            unit: "MiB",
        },
        Row {
            bench: "audit: export peak RSS after (VmHWM)".into(),
            backend,
            size: n.to_string(),
            value: after / 1024.0,
            unit: "MiB",
        },
    ])
}
