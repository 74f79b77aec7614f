//! Prometheus figures of the audit trail.
//!
//! Captured transactions are *sampled from the tables* (never counted per
//! row in a trigger): [`sample`] reads the highest audit transaction id and
//! advances `bdc_audit_transactions_captured_total` by the difference since
//! the previous sample of this process; it runs on every timeline, verify,
//! purge and `/health/` coverage check. Purges and exports count
//! themselves (`bdc_audit_purges_total`, `bdc_audit_purged_changes_total`,
//! `bdc_audit_purged_transactions_total`, `bdc_audit_exports_total{format}`,
//! `bdc_audit_exported_rows_total{format}`).

use std::sync::atomic::{AtomicI64, Ordering};

use bdc_storage::{Storage, on_pool};

static LAST_SEEN: AtomicI64 = AtomicI64::new(-1);

/// Sample the number of captured audit transactions (best effort: a failed
/// read is logged and skipped).
pub async fn sample(storage: &Storage) {
    let res = on_pool!(storage, p => sqlx::query_scalar::<_, Option<i64>>(
        "SELECT MAX(id) FROM audit_transactions")
        .fetch_one(p)
        .await);
    match res {
        Ok(max) => {
            let max = max.unwrap_or(0);
            metrics::gauge!("bdc_audit_transactions_max_id").set(max as f64);
            let prev = LAST_SEEN.swap(max, Ordering::Relaxed);
            if prev >= 0 && max > prev {
                metrics::counter!("bdc_audit_transactions_captured_total")
                    .increment((max - prev) as u64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "audit: cannot sample captured transactions"),
    }
}
