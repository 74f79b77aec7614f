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
    let reason = format!(
        "deleted {} changes and {} transactions older than {} (keep_days {}{})",
        report.deleted_changes,
        report.deleted_transactions,
        report.cutoff,
        policy.keep_days,
        if report.stopped_early {
            ", stopped at max_batches"
        } else {
            ""
        }
    );
    let actor = storage
        .actor_json()
        .and_then(|j| serde_json::from_str::<bdc_core::Actor>(j).ok())
        .unwrap_or_else(|| bdc_core::Actor::system("retention"));
    crate::record_action(
        &mut tx,
        "retention.purge",
        Some(&actor),
        crate::STATUS_OK,
        Some(&reason),
    )
    .await?;
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
