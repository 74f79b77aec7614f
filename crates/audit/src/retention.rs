//! Retention: purge audit history older than the policy's cutoff.
//!
//! A change is purged when its transaction occurred strictly before the
//! cutoff of its table (`now - keep_days`, per-table overrides); a
//! transaction is purged when it occurred before the global cutoff and has
//! no changes left. Nothing at or after a cutoff is ever deleted. Deletes
//! run in batches (`batch_size`, at most `max_batches`), each batch its own
//! transaction; the purge records its own semantic action
//! `retention.purge`.

use bdc_storage::{Backend, Storage, on_pool, on_tx};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;

use crate::config::Retention;
use crate::query::sqlite_time;
use crate::{Ctx, Result};

/// Purge options.
#[derive(Debug, Clone)]
pub struct PurgeOptions {
    /// Delete (needs the policy's `enabled: true` too); otherwise count only.
    pub execute: bool,
    pub batch_size: u64,
    pub max_batches: Option<u64>,
    /// The time cutoffs are computed from (default: now).
    pub now: Option<DateTime<Utc>>,
}

impl Default for PurgeOptions {
    fn default() -> Self {
        Self {
            execute: false,
            batch_size: 10_000,
            max_batches: None,
            now: None,
        }
    }
}

/// What a purge did (or would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// True when rows were deleted; false for a dry run.
    pub executed: bool,
    /// Why nothing was deleted, for a dry run.
    pub dry_run_reason: Option<String>,
    /// Changes older than their cutoff (found before deleting).
    pub eligible_changes: u64,
    pub deleted_changes: u64,
    pub deleted_transactions: u64,
    pub batches: u64,
    /// Whether `max_batches` stopped the purge before it finished.
    pub stopped_early: bool,
    /// Rows whose last change before the cutoff was kept as a baseline at
    /// the cutoff (as-of stays exact after it).
    pub compacted_rows: u64,
    /// The last chain position the purge may have touched (verification
    /// resumes after it), when it removed anything.
    pub through_seq: Option<i64>,
    /// The global cutoff (RFC 3339).
    pub cutoff: String,
}

fn time_arg(backend: Backend, t: DateTime<Utc>) -> String {
    match backend {
        Backend::Postgres => t.to_rfc3339_opts(SecondsFormat::Micros, true),
        Backend::Sqlite => sqlite_time(t),
    }
}

fn ts(backend: Backend, p: &str) -> String {
    match backend {
        Backend::Postgres => format!("{p}::timestamptz"),
        Backend::Sqlite => p.to_owned(),
    }
}

/// Run (or dry-run) a purge with `policy`.
pub async fn purge(
    storage: &Storage,
    policy: &Retention,
    opts: &PurgeOptions,
) -> Result<PurgeReport> {
    let backend = storage.backend();
    crate::pending::flush_best_effort(storage).await;
    crate::telemetry::sample(storage).await;
    let now = opts.now.unwrap_or_else(Utc::now);
    let cutoff_for = |days: u32| now - Duration::days(i64::from(days));
    let global = cutoff_for(policy.keep_days);
    let mut report = PurgeReport {
        cutoff: global.to_rfc3339_opts(SecondsFormat::Millis, true),
        ..PurgeReport::default()
    };
    let tables: Vec<String> = on_pool!(storage, p => sqlx::query_scalar::<_, String>(
        "SELECT DISTINCT table_name FROM audit_changes ORDER BY table_name")
        .fetch_all(p)
        .await)
    .ctx("listing audited tables")?;
    let eligible_sql = format!(
        "SELECT COUNT(*) FROM audit_changes c JOIN audit_transactions t ON t.id = c.transaction_id
          WHERE c.table_name = $1 AND t.occurred_at < {}",
        ts(backend, "$2")
    );
    for table in &tables {
        let cutoff = time_arg(backend, cutoff_for(policy.keep_days_for(table)));
        let n: i64 = on_pool!(storage, p => sqlx::query_scalar::<_, i64>(AssertSqlSafe(eligible_sql.clone()))
            .bind(table)
            .bind(&cutoff)
            .fetch_one(p)
            .await)
        .ctx("counting purgeable audit changes")?;
        report.eligible_changes += n.max(0) as u64;
    }
    if !opts.execute || !policy.enabled {
        report.dry_run_reason = Some(if !opts.execute {
            "dry run (pass --execute to delete)".into()
        } else {
            "retention.enabled is false in the audit configuration".into()
        });
        tracing::info!(eligible_changes = report.eligible_changes, cutoff = %report.cutoff,
            reason = report.dry_run_reason.as_deref().unwrap_or(""), "audit purge dry run");
        return Ok(report);
    }
    report.executed = true;
    // Where the hash chain resumes: links of transactions before the
    // latest cutoff may lose changes below.
    let max_cutoff = tables
        .iter()
        .map(|t| cutoff_for(policy.keep_days_for(t)))
        .chain(std::iter::once(global))
        .max()
        .unwrap_or(global);
    let boundary_sql = format!(
        "SELECT chain_seq, hash FROM audit_transactions
          WHERE chain_seq = (SELECT max(chain_seq) FROM audit_transactions WHERE occurred_at < {})",
        ts(backend, "$1")
    );
    let boundary: Option<(i64, String)> = on_pool!(storage, p => sqlx::query_as::<_, (i64, String)>(AssertSqlSafe(boundary_sql.clone()))
        .bind(time_arg(backend, max_cutoff))
        .fetch_optional(p)
        .await)
    .ctx("finding where the audit chain resumes after a purge")?;
    let mut boundary = boundary.unwrap_or((0, crate::chain::GENESIS.to_owned()));
    if let Some(prev) = crate::chain::latest_purge(storage).await?
        && prev.through_seq > boundary.0
    {
        boundary = (prev.through_seq, prev.boundary_hash);
    }
    // Compact first: each row's last change before its table's cutoff
    // becomes a baseline at the cutoff, so as-of after it stays exact.
    for table in &tables {
        let cutoff_t = cutoff_for(policy.keep_days_for(table));
        report.compacted_rows += compact(storage, table, cutoff_t).await?;
    }
    let batch = i64::try_from(opts.batch_size.max(1)).unwrap_or(i64::MAX);
    let within_budget = |r: &PurgeReport| opts.max_batches.is_none_or(|m| r.batches < m);
    let delete_changes = format!(
        "DELETE FROM audit_changes WHERE id IN (
           SELECT c.id FROM audit_changes c JOIN audit_transactions t ON t.id = c.transaction_id
            WHERE c.table_name = $1 AND t.occurred_at < {} ORDER BY c.id LIMIT $3)",
        ts(backend, "$2")
    );
    'tables: for table in &tables {
        let cutoff = time_arg(backend, cutoff_for(policy.keep_days_for(table)));
        loop {
            if !within_budget(&report) {
                report.stopped_early = true;
                break 'tables;
            }
            let mut tx = storage.begin().await?;
            let n = on_tx!(&mut tx, t => sqlx::query(AssertSqlSafe(delete_changes.clone()))
                .bind(table)
                .bind(&cutoff)
                .bind(batch)
                .execute(&mut **t)
                .await
                .map(|r| r.rows_affected()))
            .ctx("purging audit changes")?;
            tx.commit().await?;
            report.batches += 1;
            report.deleted_changes += n;
            if n < batch as u64 {
                break;
            }
        }
    }
    let global_arg = time_arg(backend, global);
    let delete_txs = format!(
        "DELETE FROM audit_transactions WHERE id IN (
           SELECT t.id FROM audit_transactions t
            WHERE t.occurred_at < {} AND NOT EXISTS (SELECT 1 FROM audit_changes c WHERE c.transaction_id = t.id)
              -- Changes committed after the flush above may still be pending.
              AND NOT EXISTS (SELECT 1 FROM audit_pending p WHERE p.transaction_id = t.id)
              -- Set aside by a flush (PostgreSQL): keep their actor.
              AND NOT EXISTS (SELECT 1 FROM audit_pending_failed f WHERE f.transaction_id = t.id)
            ORDER BY t.id LIMIT $2)",
        ts(backend, "$1"),
    );
    while !report.stopped_early {
        if !within_budget(&report) {
            report.stopped_early = true;
            break;
        }
        let mut tx = storage.begin().await?;
        let n = on_tx!(&mut tx, t => sqlx::query(AssertSqlSafe(delete_txs.clone()))
            .bind(&global_arg)
            .bind(batch)
            .execute(&mut **t)
            .await
            .map(|r| r.rows_affected()))
        .ctx("purging audit transactions")?;
        tx.commit().await?;
        report.batches += 1;
        report.deleted_transactions += n;
        if n < batch as u64 {
            break;
        }
    }
    // The purge's own semantic action.
    let mut tx = storage.begin().await?;
    let touched = report.deleted_changes + report.deleted_transactions + report.compacted_rows > 0;
    let mut reason = format!(
        "deleted {} changes and {} transactions older than {} (keep_days {}{}), compacted {} rows",
        report.deleted_changes,
        report.deleted_transactions,
        report.cutoff,
        policy.keep_days,
        if report.stopped_early {
            ", stopped at max_batches"
        } else {
            ""
        },
        report.compacted_rows,
    );
    if touched {
        reason.push_str(&format!(
            "; chain resumes after through_seq={} boundary_hash={}",
            boundary.0, boundary.1
        ));
        report.through_seq = Some(boundary.0);
    }
    let actor = storage
        .actor_json()
        .and_then(|j| serde_json::from_str::<bdc_core::Actor>(j).ok())
        .unwrap_or_else(|| bdc_core::Actor::system("retention"));
    let action_id = crate::record_action(
        &mut tx,
        "retention.purge",
        Some(&actor),
        crate::STATUS_OK,
        Some(&reason),
    )
    .await?;
    if touched {
        let sql = format!(
            "INSERT INTO audit_purges (transaction_id, cutoff, through_seq, boundary_hash,
                                       deleted_changes, deleted_transactions, compacted_rows)
             SELECT transaction_id, {}, $2, $3, $4, $5, $6 FROM audit_actions WHERE id = $1",
            ts(backend, "$7")
        );
        on_tx!(&mut tx, t => sqlx::query(AssertSqlSafe(sql))
            .bind(action_id)
            .bind(boundary.0)
            .bind(&boundary.1)
            .bind(i64::try_from(report.deleted_changes).unwrap_or(i64::MAX))
            .bind(i64::try_from(report.deleted_transactions).unwrap_or(i64::MAX))
            .bind(i64::try_from(report.compacted_rows).unwrap_or(i64::MAX))
            .bind(time_arg(backend, max_cutoff))
            .execute(&mut **t)
            .await
            .map(|_| ()))
        .ctx("recording the purge")?;
    }
    tx.commit().await?;
    metrics::counter!("bdc_audit_purges_total").increment(1);
    metrics::counter!("bdc_audit_purged_changes_total").increment(report.deleted_changes);
    metrics::counter!("bdc_audit_purged_transactions_total").increment(report.deleted_transactions);
    tracing::info!(
        deleted_changes = report.deleted_changes,
        deleted_transactions = report.deleted_transactions,
        batches = report.batches,
        stopped_early = report.stopped_early,
        cutoff = %report.cutoff,
        "audit purge finished"
    );
    Ok(report)
}

/// Keep each row's state at `cutoff` (its last change at or before it,
/// when that is before the cutoff and not a DELETE) as a
/// baseline in a `retention.compact` audit transaction dated at the
/// cutoff, and move the table's audit horizon to the cutoff. Returns the
/// rows compacted.
async fn compact(storage: &Storage, table: &str, cutoff: DateTime<Utc>) -> Result<u64> {
    let backend = storage.backend();
    let cut = time_arg(backend, cutoff);
    let actor = bdc_core::Actor::system("retention").to_json();
    let mut tx = storage.begin().await?;
    let (open, pick) = match backend {
        Backend::Postgres => (
            "INSERT INTO audit_transactions (occurred_at, actor, actor_type, actor_id, action)
             VALUES ($1::timestamptz, $2::jsonb, 'system', 'retention', 'retention.compact') RETURNING id",
            "UPDATE audit_changes SET transaction_id = $3, is_baseline = true, op = 'INSERT',
                    changed_fields = NULL, changed_from = NULL
              WHERE id IN (SELECT s.id FROM (
                      SELECT DISTINCT ON (c.table_pk) c.id, c.op, t.occurred_at AS occ
                        FROM audit_changes c JOIN audit_transactions t ON t.id = c.transaction_id
                       WHERE c.table_name = $1 AND t.occurred_at <= $2::timestamptz
                       ORDER BY c.table_pk, c.id DESC) s
                     WHERE s.op <> 'DELETE' AND s.occ < $2::timestamptz)",
        ),
        Backend::Sqlite => (
            // The id from the counter captures reserve from (audit
            // migration 8), bumped just below: an AUTOINCREMENT id could
            // be one a capture reserved and a flush has not used yet.
            "INSERT INTO audit_transactions (id, occurred_at, actor, actor_type, actor_id, action)
             SELECT audit_next, $1, $2, 'system', 'retention', 'retention.compact'
               FROM bdc_tx_context WHERE id = 1 RETURNING id",
            "UPDATE audit_changes SET transaction_id = $3, is_baseline = 1, op = 'INSERT',
                    changed_fields = NULL, changed_from = NULL
              WHERE id IN (SELECT s.mid FROM (
                      SELECT max(c.id) AS mid, c.op AS op, t.occurred_at AS occ
                        FROM audit_changes c JOIN audit_transactions t ON t.id = c.transaction_id
                       WHERE c.table_name = $1 AND t.occurred_at <= $2
                       GROUP BY c.table_pk) s
                     WHERE s.op <> 'DELETE' AND s.occ < $2)",
        ),
    };
    if matches!(backend, Backend::Sqlite) {
        on_tx!(&mut tx, t => sqlx::query(concat!(
            "UPDATE bdc_tx_context SET audit_next = ",
            crate::triggers::sqlite_next_audit_id!(),
            " WHERE id = 1"
        ))
            .execute(&mut **t)
            .await
            .map(|_| ()))
        .ctx("reserving a compaction transaction")?;
    }
    let atx: i64 = on_tx!(&mut tx, t => sqlx::query_scalar::<_, i64>(open)
        .bind(&cut)
        .bind(&actor)
        .fetch_one(&mut **t)
        .await)
    .ctx("opening a compaction transaction")?;
    let n = on_tx!(&mut tx, t => sqlx::query(pick)
        .bind(table)
        .bind(&cut)
        .bind(atx)
        .execute(&mut **t)
        .await
        .map(|r| r.rows_affected()))
    .ctx("compacting audit history at the cutoff")?;
    if n == 0 {
        on_tx!(&mut tx, t => sqlx::query("DELETE FROM audit_transactions WHERE id = $1")
            .bind(atx)
            .execute(&mut **t)
            .await
            .map(|_| ()))
        .ctx("dropping an empty compaction transaction")?;
    }
    let has_old = format!(
        "SELECT count(*) FROM (SELECT 1 FROM audit_changes c JOIN audit_transactions t ON t.id = c.transaction_id
           WHERE c.table_name = $1 AND t.occurred_at < {} LIMIT 1) s",
        ts(backend, "$2")
    );
    let old: i64 = on_tx!(&mut tx, t => sqlx::query_scalar::<_, i64>(AssertSqlSafe(has_old))
        .bind(table)
        .bind(&cut)
        .fetch_one(&mut **t)
        .await)
    .ctx("counting audit history before the cutoff")?;
    if n > 0 || old > 0 {
        let sql = format!(
            "INSERT INTO audit_horizons (table_name, horizon) VALUES ($1, {})
             ON CONFLICT (table_name) DO UPDATE SET horizon = excluded.horizon
              WHERE audit_horizons.horizon < excluded.horizon",
            ts(backend, "$2")
        );
        on_tx!(&mut tx, t => sqlx::query(AssertSqlSafe(sql))
            .bind(table)
            .bind(&cut)
            .execute(&mut **t)
            .await
            .map(|_| ()))
        .ctx("moving the audit horizon")?;
    }
    tx.commit().await?;
    Ok(n)
}
