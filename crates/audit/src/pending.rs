//! Pending captures: capture lean, expand later.
//!
//! * **PostgreSQL**: a bulk INSERT or DELETE on a covered table is captured
//!   by a statement trigger as one `audit_pending` row (the statement's
//!   redacted rows as a JSON array, with `audit_changes` ids reserved in
//!   capture order); an UPDATE by a row trigger as one pending row (the old
//!   and new row, or the redacted diff when columns are excluded or
//!   masked); `bdc_audit_flush()` expands them and computes an UPDATE's
//!   changed fields.
//! * **SQLite**: the generated row triggers write each change into
//!   `audit_pending`, a table without secondary indexes; [`flush`] moves
//!   the rows into `audit_changes` in id order (SQLite has one writer at a
//!   time, so ids follow capture order).
//!
//! On both, a capture only reserves its transaction's `audit_transactions`
//! id and records the header (actor, time) in the pending data; the flush
//! creates the row (audit migration 8). Only semantic actions, baselines,
//! TRUNCATE and schema changes create it at once.
//!
//! Both captures happen in the writing transaction. Every read of the trail
//! in this crate calls [`flush`] first; `bdc run` flushes after its job and
//! daemon processes flush periodically ([`spawn_flusher`]).

use std::time::{Duration, Instant};

use bdc_storage::{Pool, Storage};
use tokio::sync::watch;

use crate::{Ctx, Result};

/// Pending rows expanded per `bdc_audit_flush` call (one database
/// transaction). Since audit migration 8 the call also stops after the
/// row that brings it past 100,000 changes: a statement of up to 20,000
/// rows is one pending row (larger ones are chunked by 10,000), an updated
/// row is one pending row of one change, so a million-row UPDATE takes
/// ~250 calls, not ~15,600 of 64.
const ROWS_PER_CALL: i32 = 4_096;

/// Rows moved per SQLite flush transaction (bounds how long the write lock
/// is held).
const SQLITE_ROWS_PER_TX: i64 = 20_000;

/// Expand every pending capture committed before this call into
/// `audit_changes`; returns the number of changes written (on PostgreSQL
/// also those set aside in `audit_pending_failed`). Captures committed
/// while it runs are left for the next flush, so a flush never chases
/// concurrent writers. Nothing is written when nothing is pending. A
/// no-op on a database without the audit schema (or one older than audit
/// migration 3 on PostgreSQL, 4 on SQLite).
pub async fn flush(storage: &Storage) -> Result<u64> {
    let n = flush_pending(storage).await?;
    // Chain what is complete now (hashing stays off the write path).
    crate::chain::extend(storage).await?;
    Ok(n)
}

async fn flush_pending(storage: &Storage) -> Result<u64> {
    let start = Instant::now();
    // A read first: most calls find nothing and need no write access.
    let Some(hwm) = high_water_mark(storage).await? else {
        return Ok(0);
    };
    let total = match storage.pool() {
        Pool::Postgres(pool) => flush_postgres(pool, hwm).await?,
        Pool::Sqlite(pool) => flush_sqlite(pool, hwm).await?,
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

/// Expand the pending captures only, best effort (as
/// [`flush_best_effort`]), without extending the hash chain: for readers
/// that need every captured change but not its hash (as-of, row history).
/// Looking for unchained transactions costs a scan while the partial index
/// still holds the entries of just-chained rows (until VACUUM): 20-30 ms
/// at 100k transactions, 160 ms at 1 M, on every as-of.
pub async fn expand_best_effort(storage: &Storage) {
    if let Err(e) = flush_pending(storage).await {
        metrics::counter!("bdc_audit_flush_errors_total").increment(1);
        tracing::warn!(error = %e, "audit: cannot expand pending captures; later flushes retry");
    }
}

/// [`flush`], best effort: a failure (a read-only role, a hot standby, a
/// lock timeout) is counted and logged, and the caller goes on (a read
/// with what is already expanded; the next flush retries).
pub async fn flush_best_effort(storage: &Storage) {
    if let Err(e) = flush(storage).await {
        metrics::counter!("bdc_audit_flush_errors_total").increment(1);
        tracing::warn!(error = %e, "audit: cannot expand pending captures; later flushes retry");
    }
}

/// The highest pending id now, `None` when nothing is pending or the
/// table does not exist (no audit schema, or one too old).
async fn high_water_mark(storage: &Storage) -> Result<Option<i64>> {
    let res = bdc_storage::on_pool!(storage, p => {
        sqlx::query_scalar::<_, Option<i64>>("SELECT max(id) FROM audit_pending")
            .fetch_one(p)
            .await
    });
    match res {
        Ok(hwm) => Ok(hwm),
        // SQLite "no such table"; PostgreSQL 42P01 undefined_table.
        Err(sqlx::Error::Database(e))
            if e.message().contains("no such table") || e.code().as_deref() == Some("42P01") =>
        {
            Ok(None)
        }
        Err(e) => Err(e).ctx("reading pending audit captures"),
    }
}

async fn flush_sqlite(pool: &sqlx::SqlitePool, hwm: i64) -> Result<u64> {
    let mut total: u64 = 0;
    loop {
        let bound = sqlx::query_scalar::<_, Option<i64>>(
            "SELECT max(id) FROM (SELECT id FROM audit_pending WHERE id <= $2 ORDER BY id LIMIT $1)",
        )
        .bind(SQLITE_ROWS_PER_TX)
        .bind(hwm)
        .fetch_one(pool)
        .await
        .ctx("reading pending audit captures")?;
        let Some(bound) = bound else { break };
        let mut tx = pool.begin().await.ctx("beginning an audit flush")?;
        // The transactions first (`TX` markers, audit migration 8): dated
        // when their first change was captured. A transaction created at
        // once (an action, a baseline) keeps its row.
        sqlx::query(
            "INSERT INTO audit_transactions (id, occurred_at, actor, actor_type, actor_id)
             SELECT transaction_id, captured_at, data_after, json_extract(data_after, '$.type'),
                    coalesce(json_extract(data_after, '$.collector'), json_extract(data_after, '$.user'),
                             json_extract(data_after, '$.caller'), json_extract(data_after, '$.component'))
               FROM audit_pending WHERE id <= $1 AND op = 'TX' ORDER BY id
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(bound)
        .execute(&mut *tx)
        .await
        .ctx("creating audit transactions of pending captures")?;
        let n = sqlx::query(
            "INSERT INTO audit_changes (transaction_id, table_name, table_pk, op, is_baseline,
                                        data_after, changed_fields, changed_from, captured_at)
             SELECT transaction_id, table_name, table_pk, op, is_baseline,
                    data_after, changed_fields, changed_from, captured_at
               FROM audit_pending WHERE id <= $1 AND op <> 'TX' ORDER BY id",
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

async fn flush_postgres(pool: &sqlx::PgPool, hwm: i64) -> Result<u64> {
    let mut total: u64 = 0;
    loop {
        let res = sqlx::query_scalar::<_, i64>("SELECT bdc_audit_flush($1, $2)")
            .bind(ROWS_PER_CALL)
            .bind(hwm)
            .fetch_one(pool)
            .await;
        let n = res.ctx("expanding pending audit captures")?.max(0) as u64;
        if n == 0 {
            break;
        }
        total += n;
    }
    Ok(total)
}

/// Flush every `every` until `stop` turns true (daemon processes); the
/// process flushes once more itself after its roles have stopped writing.
/// Errors are logged and retried at the next tick.
pub fn spawn_flusher(
    storage: Storage,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                // Err: the sender is gone, nobody can stop us later.
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
            flush_best_effort(&storage).await;
        }
    })
}

/// Pending captures a PostgreSQL flush could not expand and set aside in
/// `audit_pending_failed`: (rows, changes). Always (0, 0) on SQLite.
pub async fn failed(storage: &Storage) -> Result<(i64, i64)> {
    match storage.pool() {
        Pool::Postgres(p) => sqlx::query_as::<_, (i64, i64)>(
            "SELECT count(*), coalesce(sum(cardinality(change_ids)), 0)::bigint FROM audit_pending_failed",
        )
        .fetch_one(p)
        .await
        .ctx("counting audit captures set aside"),
        Pool::Sqlite(_) => Ok((0, 0)),
    }
}
