//! Pending captures: capture lean, expand later.
//!
//! * **PostgreSQL**: a bulk INSERT or DELETE on a covered table is captured
//!   by a statement trigger as one `audit_pending` row (the statement's
//!   redacted rows as a JSON array, with `audit_changes` ids reserved in
//!   capture order); `bdc_audit_flush()` expands it.
//! * **SQLite**: the generated row triggers write each change into
//!   `audit_pending`, a table without secondary indexes; [`flush`] moves
//!   the rows into `audit_changes` in id order (SQLite has one writer at a
//!   time, so ids follow capture order).
//!
//! Both captures happen in the writing transaction. Every read of the trail
//! in this crate calls [`flush`] first; `bdc run` flushes after its job and
//! daemon processes flush periodically ([`spawn_flusher`]).

use std::time::{Duration, Instant};

use bdc_storage::{Pool, Storage};
use tokio::sync::watch;

use crate::{Ctx, Result};

/// Pending statements expanded per `bdc_audit_flush` call (one database
/// transaction): bounds a flush transaction to a few hundred thousand rows.
const STATEMENTS_PER_CALL: i32 = 64;

/// Rows moved per SQLite flush transaction (bounds how long the write lock
/// is held).
const SQLITE_ROWS_PER_TX: i64 = 20_000;

/// Expand every pending capture into `audit_changes`; returns the number of
/// changes written. A no-op on a database without the audit schema (or
/// one older than audit migration 3 on PostgreSQL, 4 on SQLite).
pub async fn flush(storage: &Storage) -> Result<u64> {
    let start = Instant::now();
    let total = match storage.pool() {
        Pool::Postgres(pool) => flush_postgres(pool).await?,
        Pool::Sqlite(pool) => flush_sqlite(pool).await?,
    };
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

async fn flush_sqlite(pool: &sqlx::SqlitePool) -> Result<u64> {
    let mut total: u64 = 0;
    loop {
        // A read first: most calls find nothing and need no write lock.
        let bound = sqlx::query_scalar::<_, Option<i64>>(
            "SELECT max(id) FROM (SELECT id FROM audit_pending ORDER BY id LIMIT $1)",
        )
        .bind(SQLITE_ROWS_PER_TX)
        .fetch_one(pool)
        .await;
        let bound = match bound {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(sqlx::Error::Database(e)) if e.message().contains("no such table") => {
                return Ok(0);
            }
            Err(e) => return Err(e).ctx("reading pending audit captures"),
        };
        let mut tx = pool.begin().await.ctx("beginning an audit flush")?;
        let n = sqlx::query(
            "INSERT INTO audit_changes (transaction_id, table_name, table_pk, op, is_baseline,
                                        data_after, changed_fields, changed_from, captured_at)
             SELECT transaction_id, table_name, table_pk, op, is_baseline,
                    data_after, changed_fields, changed_from, captured_at
               FROM audit_pending WHERE id <= $1 ORDER BY id",
        )
        .bind(bound)
        .execute(&mut *tx)
        .await
        .ctx("expanding pending audit captures")?
        .rows_affected();
        sqlx::query("DELETE FROM audit_pending WHERE id <= $1")
            .bind(bound)
            .execute(&mut *tx)
            .await
            .ctx("deleting expanded audit captures")?;
        tx.commit().await.ctx("committing an audit flush")?;
        total += n;
    }
    Ok(total)
}

async fn flush_postgres(pool: &sqlx::PgPool) -> Result<u64> {
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
