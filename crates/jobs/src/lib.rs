//! Durable jobs on the database.
//!
//! One table (`bdc_jobs`) is the queue, on SQLite for a single process and
//! on PostgreSQL for any number of `bdc` processes on many machines — no
//! broker. The guarantees:
//!
//! * **Exactly-once enqueueing of a schedule slot**: a job may carry a
//!   `slot_key` (e.g. `cal:daily:2026-11-24`) under a UNIQUE constraint;
//!   several schedulers enqueueing the same slot insert one row
//!   (`ON CONFLICT DO NOTHING`).
//! * **One worker at a time per job**: a worker claims a job with a lease
//!   (`locked_by`, `locked_until`): on PostgreSQL with
//!   `FOR UPDATE SKIP LOCKED`, on SQLite by its single writer. While it
//!   runs, the worker renews the lease.
//! * **A dead worker's job is retried elsewhere**: a running job whose
//!   lease expired is claimable again (the attempt counts).
//! * **Retries with backoff**: a failed attempt is re-queued with
//!   exponential backoff until `max_attempts`, then the job is `dead`
//!   (visible in `bdc jobs --status dead` and the dashboard).

use std::time::Duration;

use bdc_storage::{QueryContext, SchemaPart, Storage, StorageError, on_pool, on_tx};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use sqlx::types::Json;

/// The `jobs` schema part.
pub const SCHEMA: SchemaPart = SchemaPart {
    name: "jobs",
    migrations: &[bdc_storage::MigrationFile {
        version: 1,
        description: "jobs",
        sqlite: include_str!("../migrations/sqlite/0001_jobs.sql"),
        postgres: include_str!("../migrations/postgres/0001_jobs.sql"),
    }],
};

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("job {id} has an invalid {field}: {detail}")]
    Corrupt {
        id: i64,
        field: &'static str,
        detail: String,
    },
}

pub type Result<T, E = JobError> = std::result::Result<T, E>;

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub payload: serde_json::Value,
    pub slot_key: Option<String>,
    pub run_at: DateTime<Utc>,
    pub max_attempts: i32,
}

/// A claimed job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    pub slot_key: Option<String>,
    /// Including the current one.
    pub attempts: i32,
    pub max_attempts: i32,
    /// When the job became due (for scheduling-latency metrics).
    pub run_at: DateTime<Utc>,
}

/// Job status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    /// Reserved by the schema; retries go back to `queued` and exhausted
    /// jobs become `dead`, so the queue never sets it today.
    Failed,
    Dead,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "dead" => Self::Dead,
            _ => return None,
        })
    }
}

/// A stored job, for listings.
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    pub id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    pub slot_key: Option<String>,
    pub status: JobStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub locked_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// What happened to a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    Retry {
        run_at: DateTime<Utc>,
    },
    Dead,
    /// The lease was lost (another worker took the job over).
    LeaseLost,
}

/// Queue depth and age, for metrics and the dashboard.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueueStats {
    pub queued: i64,
    pub running: i64,
    pub dead: i64,
    pub succeeded: i64,
    /// Age in seconds of the oldest job that is due and waiting.
    pub oldest_due_age_seconds: f64,
}

/// Exponential backoff for attempt `n` (1-based): `base * 2^(n-1)`, capped.
pub fn backoff(base: Duration, attempt: i32, cap: Duration) -> Duration {
    let exp = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    base.saturating_mul(1u32 << exp).min(cap)
}

fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The queue over a [`Storage`].
#[derive(Debug, Clone)]
pub struct JobQueue {
    storage: Storage,
}

const CLAIM_PG: &str = "UPDATE bdc_jobs SET status = 'running', locked_by = $1, locked_until = $2,
        attempts = attempts + 1, started_at = $3
    WHERE id = (
        SELECT id FROM bdc_jobs
        WHERE (status = 'queued' AND run_at <= $3) OR (status = 'running' AND locked_until < $3)
        ORDER BY run_at, id
        FOR UPDATE SKIP LOCKED
        LIMIT 1)
    RETURNING id, kind, payload, slot_key, attempts, max_attempts, run_at";

// SQLite has one writer at a time: the UPDATE with its subquery is atomic.
const CLAIM_SQLITE: &str =
    "UPDATE bdc_jobs SET status = 'running', locked_by = $1, locked_until = $2,
        attempts = attempts + 1, started_at = $3
    WHERE id = (
        SELECT id FROM bdc_jobs
        WHERE (status = 'queued' AND run_at <= $3) OR (status = 'running' AND locked_until < $3)
        ORDER BY run_at, id
        LIMIT 1)
    RETURNING id, kind, payload, slot_key, attempts, max_attempts, run_at";

impl JobQueue {
    pub fn new(storage: Storage) -> Self {
        Self { storage }
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Enqueue; `Ok(None)` when a job with the same `slot_key` exists.
    pub async fn enqueue(&self, job: &NewJob) -> Result<Option<i64>> {
        let mut tx = self.storage.begin().await?;
        let id: Option<i64> = on_tx!(&mut tx, t => sqlx::query_scalar(
            "INSERT INTO bdc_jobs (kind, payload, slot_key, status, max_attempts, run_at, created_at)
             VALUES ($1, $2, $3, 'queued', $4, $5, $6)
             ON CONFLICT (slot_key) DO NOTHING RETURNING id",
        )
        .bind(&job.kind)
        .bind(Json(&job.payload))
        .bind(job.slot_key.as_deref())
        .bind(job.max_attempts.max(1))
        .bind(bdc_storage::normalize_time(job.run_at))
        .bind(bdc_storage::now())
        .fetch_optional(&mut **t)
        .await)
        .ctx("enqueueing a job")?;
        tx.commit().await?;
        if id.is_some() {
            metrics::counter!("bdc_jobs_enqueued_total", "kind" => job.kind.clone()).increment(1);
        }
        Ok(id)
    }

    /// Claim the next due job (or a job whose lease expired) for
    /// `worker_id`, leasing it for `lease`. Jobs whose lease expired on their
    /// last attempt become `dead` instead.
    pub async fn claim(&self, worker_id: &str, lease: Duration) -> Result<Option<Job>> {
        let now = bdc_storage::now();
        let mut tx = self.storage.begin().await?;
        on_tx!(&mut tx, t => sqlx::query(
            "UPDATE bdc_jobs SET status = 'dead', finished_at = $1, locked_by = NULL,
                    last_error = COALESCE(last_error || '; ', '') || 'lease expired on the last attempt (worker died?)'
             WHERE status = 'running' AND locked_until < $1 AND attempts >= max_attempts",
        )
        .bind(now)
        .execute(&mut **t)
        .await
        .map(|_| ()))
        .ctx("burying expired jobs")?;
        let row = match &mut tx {
            bdc_storage::Tx::Sqlite(t) => sqlx::query(CLAIM_SQLITE)
                .bind(worker_id)
                .bind(now + chrono_dur(lease))
                .bind(now)
                .fetch_optional(&mut **t)
                .await
                .ctx("claiming a job")?
                .map(|r| job_from_row(&r))
                .transpose()?,
            bdc_storage::Tx::Postgres(t) => sqlx::query(CLAIM_PG)
                .bind(worker_id)
                .bind(now + chrono_dur(lease))
                .bind(now)
                .fetch_optional(&mut **t)
                .await
                .ctx("claiming a job")?
                .map(|r| job_from_row(&r))
                .transpose()?,
        };
        tx.commit().await?;
        if let Some(job) = &row {
            metrics::counter!("bdc_jobs_claimed_total", "kind" => job.kind.clone()).increment(1);
        }
        Ok(row)
    }

    /// Extend the lease; `false` when this worker no longer holds the job.
    pub async fn renew(&self, id: i64, worker_id: &str, lease: Duration) -> Result<bool> {
        let until = bdc_storage::now() + chrono_dur(lease);
        let n = bdc_storage::in_write_tx!(self.storage, "renewing a job lease", p => sqlx::query(
            "UPDATE bdc_jobs SET locked_until = $1 WHERE id = $2 AND locked_by = $3 AND status = 'running'",
        )
        .bind(until)
        .bind(id)
        .bind(worker_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        Ok(n == 1)
    }

    /// Mark a job done; `false` when the lease was lost.
    pub async fn complete(&self, id: i64, worker_id: &str) -> Result<bool> {
        let n = bdc_storage::in_write_tx!(self.storage, "completing a job", p => sqlx::query(
            "UPDATE bdc_jobs SET status = 'succeeded', finished_at = $1, locked_by = NULL, locked_until = NULL
             WHERE id = $2 AND locked_by = $3 AND status = 'running'",
        )
        .bind(bdc_storage::now())
        .bind(id)
        .bind(worker_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        Ok(n == 1)
    }

    /// Record a failed attempt: re-queue after `backoff(base, attempts)` or
    /// bury the job when it has no attempts left.
    pub async fn fail(
        &self,
        job: &Job,
        worker_id: &str,
        error: &str,
        base: Duration,
    ) -> Result<FailOutcome> {
        let now = bdc_storage::now();
        let dead = job.attempts >= job.max_attempts;
        let run_at = now + chrono_dur(backoff(base, job.attempts, Duration::from_secs(3600)));
        let n = bdc_storage::in_write_tx!(self.storage, "failing a job", p => sqlx::query(
            "UPDATE bdc_jobs SET status = $1, run_at = $2, finished_at = $3, last_error = $4,
                    locked_by = NULL, locked_until = NULL
             WHERE id = $5 AND locked_by = $6 AND status = 'running'",
        )
        .bind(if dead { "dead" } else { "queued" })
        .bind(run_at)
        .bind(if dead { Some(now) } else { None })
        .bind(error)
        .bind(job.id)
        .bind(worker_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        if n != 1 {
            return Ok(FailOutcome::LeaseLost);
        }
        if dead {
            metrics::counter!("bdc_jobs_dead_total", "kind" => job.kind.clone()).increment(1);
            Ok(FailOutcome::Dead)
        } else {
            metrics::counter!("bdc_jobs_retried_total", "kind" => job.kind.clone()).increment(1);
            Ok(FailOutcome::Retry { run_at })
        }
    }

    /// Give a job back without counting the attempt (graceful shutdown).
    pub async fn release(&self, id: i64, worker_id: &str) -> Result<bool> {
        let n = bdc_storage::in_write_tx!(self.storage, "releasing a job", p => sqlx::query(
            "UPDATE bdc_jobs SET status = 'queued', attempts = attempts - 1, locked_by = NULL, locked_until = NULL
             WHERE id = $1 AND locked_by = $2 AND status = 'running'",
        )
        .bind(id)
        .bind(worker_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        Ok(n == 1)
    }

    /// Jobs, newest first, optionally of one status.
    pub async fn list(&self, status: Option<JobStatus>, limit: u32) -> Result<Vec<JobRecord>> {
        let rows = on_pool!(self.storage, p => sqlx::query(
            "SELECT id, kind, payload, slot_key, status, attempts, max_attempts, run_at, locked_by,
                    created_at, started_at, finished_at, last_error
             FROM bdc_jobs WHERE ($1 IS NULL OR status = $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(status.map(JobStatus::as_str))
        .bind(i64::from(limit))
        .fetch_all(p)
        .await
        .and_then(|rows| rows.iter().map(record_from_row).collect::<Result<Vec<_>, _>>()))
        .ctx("listing jobs")?;
        Ok(rows)
    }

    /// Queue depth by status and the age of the oldest due job.
    pub async fn stats(&self) -> Result<QueueStats> {
        let now = bdc_storage::now();
        let (counts, oldest) = on_pool!(self.storage, p => {
            let counts = sqlx::query("SELECT status, COUNT(*) AS n FROM bdc_jobs GROUP BY status")
                .fetch_all(p)
                .await
                .and_then(|rows| {
                    rows.iter()
                        .map(|r| Ok((r.try_get::<String, _>("status")?, r.try_get::<i64, _>("n")?)))
                        .collect::<Result<Vec<_>, sqlx::Error>>()
                });
            let oldest = sqlx::query_scalar::<_, Option<DateTime<Utc>>>(
                "SELECT MIN(run_at) FROM bdc_jobs WHERE status = 'queued' AND run_at <= $1",
            )
            .bind(now)
            .fetch_one(p)
            .await;
            (counts, oldest)
        });
        let counts = counts.ctx("counting jobs")?;
        let oldest = oldest.ctx("reading the oldest job")?;
        let mut s = QueueStats::default();
        for (status, n) in counts {
            match status.as_str() {
                "queued" => s.queued = n,
                "running" => s.running = n,
                "dead" => s.dead = n,
                "succeeded" => s.succeeded = n,
                _ => {}
            }
        }
        s.oldest_due_age_seconds = oldest
            .map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        metrics::gauge!("bdc_jobs_queued").set(s.queued as f64);
        metrics::gauge!("bdc_jobs_running").set(s.running as f64);
        metrics::gauge!("bdc_jobs_dead").set(s.dead as f64);
        metrics::gauge!("bdc_jobs_oldest_due_age_seconds").set(s.oldest_due_age_seconds);
        Ok(s)
    }
}

fn job_from_row<R: Row>(r: &R) -> Result<Job>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    DateTime<Utc>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i32: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Json<serde_json::Value>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let id: i64 = r.try_get("id").ctx("decoding a job")?;
    let payload: Json<serde_json::Value> = r.try_get("payload").ctx("decoding a job")?;
    Ok(Job {
        id,
        kind: r.try_get("kind").ctx("decoding a job")?,
        payload: payload.0,
        slot_key: r.try_get("slot_key").ctx("decoding a job")?,
        attempts: r.try_get("attempts").ctx("decoding a job")?,
        max_attempts: r.try_get("max_attempts").ctx("decoding a job")?,
        run_at: r.try_get("run_at").ctx("decoding a job")?,
    })
}

fn record_from_row<R: Row>(r: &R) -> Result<JobRecord, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i32: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    DateTime<Utc>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<DateTime<Utc>>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Json<serde_json::Value>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let status: String = r.try_get("status")?;
    let payload: Json<serde_json::Value> = r.try_get("payload")?;
    Ok(JobRecord {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        payload: payload.0,
        slot_key: r.try_get("slot_key")?,
        status: JobStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown job status {status:?}").into()))?,
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
        run_at: r.try_get("run_at")?,
        locked_by: r.try_get("locked_by")?,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        last_error: r.try_get("last_error")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_secs(10);
        let cap = Duration::from_secs(60);
        assert_eq!(backoff(b, 1, cap), Duration::from_secs(10));
        assert_eq!(backoff(b, 2, cap), Duration::from_secs(20));
        assert_eq!(backoff(b, 3, cap), Duration::from_secs(40));
        assert_eq!(backoff(b, 4, cap), cap);
        assert_eq!(backoff(b, 100, cap), cap);
        assert_eq!(backoff(b, 0, cap), Duration::from_secs(10));
    }

    #[test]
    fn status_round_trip() {
        for s in ["queued", "running", "succeeded", "failed", "dead"] {
            assert_eq!(JobStatus::parse(s).map(JobStatus::as_str), Some(s));
        }
        assert!(JobStatus::parse("x").is_none());
    }
}
