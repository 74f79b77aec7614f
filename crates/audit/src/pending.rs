//! Pending statement captures (PostgreSQL).
//!
//! A bulk INSERT or DELETE on a covered PostgreSQL table is captured by a
//! statement trigger as one `audit_pending` row (the statement's redacted
//! rows as a JSON array, with `audit_changes` ids reserved in capture
//! order). [`flush`] expands them into `audit_changes`. Every read of the
//! trail in this crate flushes first; `bdc run` flushes after its job and
//! daemon processes flush periodically ([`spawn_flusher`]). SQLite captures
//! row by row straight into `audit_changes`: nothing is ever pending there.

use std::time::{Duration, Instant};

use bdc_storage::{Pool, Storage};
use tokio::sync::watch;

use crate::{Ctx, Result};

/// Pending statements expanded per `bdc_audit_flush` call (one database
/// transaction): bounds a flush transaction to a few hundred thousand rows.
const STATEMENTS_PER_CALL: i32 = 64;

/// Expand every pending capture into `audit_changes`; returns the number of
/// changes written. A no-op on SQLite and on a database without the audit
/// schema.
pub async fn flush(storage: &Storage) -> Result<u64> {
    let Pool::Postgres(pool) = storage.pool() else {
        return Ok(0);
    };
    let start = Instant::now();
    let mut total: u64 = 0;
    loop {
        let res = sqlx::query_scalar::<_, i64>("SELECT bdc_audit_flush($1)")
            .bind(STATEMENTS_PER_CALL)
            .fetch_one(pool)
            .await;
        let n = match res {
            Ok(n) => n.max(0) as u64,
            // 42883 undefined_function: the audit schema is not installed
            // (or predates migration 3): nothing can be pending.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42883") => return Ok(0),
            Err(e) => return Err(e).ctx("expanding pending audit captures"),
        };
        if n == 0 {
            break;
        }
        total += n;
    }
    if total > 0 {
        metrics::counter!("bdc_audit_flushed_changes_total").increment(total);
        tracing::debug!(
            changes = total,
            ms = start.elapsed().as_millis() as u64,
            "audit: expanded pending captures"
        );
    }
    Ok(total)
}

/// Flush every `every` until `stop` turns true (daemon processes). Errors
/// are logged and retried at the next tick.
pub fn spawn_flusher(
    storage: Storage,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
            if let Err(e) = flush(&storage).await {
                tracing::warn!(error = %e, "audit: cannot expand pending captures");
            }
            if *stop.borrow() {
                break;
            }
        }
    })
}
