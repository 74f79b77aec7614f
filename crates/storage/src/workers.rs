//! Worker heartbeats: every long-running `bdc` process (serve, worker,
//! scheduler) upserts its row periodically; `/health/` counts the live ones.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{QueryContext, Result, Storage, now, on_pool};

/// Identity of a live `bdc` process.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkerInfo {
    pub worker_id: String,
    pub hostname: String,
    pub pid: i64,
    pub role: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

pub struct WorkerStore<'s> {
    pub(crate) storage: &'s Storage,
}

impl WorkerStore<'_> {
    /// Upsert the heartbeat of `worker` with `last_seen_at = now`.
    pub async fn heartbeat(&self, worker: &WorkerInfo) -> Result<()> {
        crate::in_write_tx!(self.storage, "writing a worker heartbeat", p => sqlx::query(
            "INSERT INTO worker_heartbeats (worker_id, hostname, pid, role, version, started_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (worker_id) DO UPDATE SET last_seen_at = excluded.last_seen_at,
                role = excluded.role, version = excluded.version",
        )
        .bind(&worker.worker_id)
        .bind(&worker.hostname)
        .bind(worker.pid)
        .bind(&worker.role)
        .bind(&worker.version)
        .bind(worker.started_at)
        .bind(now())
        .execute(p)
        .await
        .map(|_| ()));
        Ok(())
    }

    /// Workers seen at or after `since`, by id.
    pub async fn live_since(&self, since: DateTime<Utc>) -> Result<Vec<WorkerInfo>> {
        on_pool!(self.storage, p => {
            let rows = sqlx::query(
                "SELECT worker_id, hostname, pid, role, version, started_at, last_seen_at
                 FROM worker_heartbeats WHERE last_seen_at >= $1 ORDER BY worker_id",
            )
            .bind(since)
            .fetch_all(p)
            .await
            .ctx("listing live workers")?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(WorkerInfo {
                    worker_id: row.try_get("worker_id").ctx("decoding a worker")?,
                    hostname: row.try_get("hostname").ctx("decoding a worker")?,
                    pid: row.try_get("pid").ctx("decoding a worker")?,
                    role: row.try_get("role").ctx("decoding a worker")?,
                    version: row.try_get("version").ctx("decoding a worker")?,
                    started_at: row.try_get("started_at").ctx("decoding a worker")?,
                    last_seen_at: row.try_get("last_seen_at").ctx("decoding a worker")?,
                });
            }
            Ok(out)
        })
    }

    /// Remove a worker's row (clean shutdown).
    pub async fn remove(&self, worker_id: &str) -> Result<()> {
        crate::in_write_tx!(self.storage, "removing a worker heartbeat", p => sqlx::query("DELETE FROM worker_heartbeats WHERE worker_id = $1")
            .bind(worker_id)
            .execute(p)
            .await
            .map(|_| ()));
        Ok(())
    }
}
