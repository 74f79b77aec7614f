//! Collector runs and schedule-group runs.

use std::collections::BTreeMap;

use bdc_core::FailureCategory;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::types::Json;

use crate::{QueryContext, Result, Storage, StorageError, now, on_pool};

/// Lifecycle state of a collector run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Success,
    Failed,
    /// A known command whose collector is not implemented in this build.
    NotAvailable,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::NotAvailable => "not_available",
        }
    }

    /// Parse a status name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::parse_stored(s).ok()
    }

    fn parse_stored(s: &str) -> Result<Self> {
        Ok(match s {
            "running" => Self::Running,
            "success" => Self::Success,
            "failed" => Self::Failed,
            "not_available" => Self::NotAvailable,
            other => {
                return Err(StorageError::Corrupt {
                    context: "reading a run status",
                    detail: format!("unknown status {other:?}"),
                });
            }
        })
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run about to start.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub run_id: &'a str,
    pub collector: &'a str,
    /// The name it was invoked by (a stable CLI name or an alias).
    pub command: &'a str,
    pub schedule_group: Option<&'a str>,
    pub args: &'a [String],
    pub worker_id: Option<&'a str>,
    /// The schedule slot task (`<slot key>#<task index>`) when run by a
    /// slot job.
    pub slot_task: Option<&'a str>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub failure_category: Option<FailureCategory>,
    pub error: Option<String>,
    pub counts: BTreeMap<String, u64>,
}

/// A stored run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub collector: String,
    pub command: String,
    pub schedule_group: Option<String>,
    pub args: Vec<String>,
    pub worker_id: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: RunStatus,
    pub failure_category: Option<FailureCategory>,
    pub error: Option<String>,
    pub counts: BTreeMap<String, u64>,
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub collector: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    pub limit: Option<u32>,
}

const RUN_COLUMNS: &str = "run_id, collector, command, schedule_group, args, worker_id, started_at, \
     finished_at, status, failure_category, error, counts";

macro_rules! run_from_row {
    ($row:expr) => {{
        let row = $row;
        let status: String = row.try_get("status").ctx("decoding a run")?;
        let category: Option<String> = row.try_get("failure_category").ctx("decoding a run")?;
        let args: Json<Vec<String>> = row.try_get("args").ctx("decoding a run")?;
        let counts: Json<BTreeMap<String, u64>> = row.try_get("counts").ctx("decoding a run")?;
        RunRecord {
            run_id: row.try_get("run_id").ctx("decoding a run")?,
            collector: row.try_get("collector").ctx("decoding a run")?,
            command: row.try_get("command").ctx("decoding a run")?,
            schedule_group: row.try_get("schedule_group").ctx("decoding a run")?,
            args: args.0,
            worker_id: row.try_get("worker_id").ctx("decoding a run")?,
            started_at: row.try_get("started_at").ctx("decoding a run")?,
            finished_at: row.try_get("finished_at").ctx("decoding a run")?,
            status: RunStatus::parse_stored(&status)?,
            failure_category: match category {
                Some(c) => Some(c.parse().map_err(|e| StorageError::Corrupt {
                    context: "decoding a run",
                    detail: format!("{e}"),
                })?),
                None => None,
            },
            error: row.try_get("error").ctx("decoding a run")?,
            counts: counts.0,
        }
    }};
}

/// Writes and reads of `collector_runs` and `schedule_group_runs`.
pub struct RunStore<'s> {
    pub(crate) storage: &'s Storage,
}

impl RunStore<'_> {
    /// Record a run as started (`running`).
    pub async fn start(&self, run: &NewRun<'_>) -> Result<DateTime<Utc>> {
        let started = now();
        crate::in_write_tx!(self.storage, "recording the start of a run", p => sqlx::query(
            "INSERT INTO collector_runs (run_id, collector, command, schedule_group, args, worker_id, started_at, status, slot_task)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8)",
        )
        .bind(run.run_id)
        .bind(run.collector)
        .bind(run.command)
        .bind(run.schedule_group)
        .bind(Json(run.args))
        .bind(run.worker_id)
        .bind(started)
        .bind(run.slot_task)
        .execute(p)
        .await
        .map(|_| ()));
        Ok(started)
    }

    /// Record how a run ended.
    pub async fn finish(&self, run_id: &str, outcome: &RunOutcome) -> Result<()> {
        let affected = crate::in_write_tx!(self.storage, "recording the end of a run", p => sqlx::query(
            "UPDATE collector_runs SET finished_at = $1, status = $2, failure_category = $3, error = $4, counts = $5
             WHERE run_id = $6",
        )
        .bind(now())
        .bind(outcome.status.as_str())
        .bind(outcome.failure_category.map(FailureCategory::as_str))
        .bind(outcome.error.as_deref())
        .bind(Json(&outcome.counts))
        .bind(run_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        if affected == 0 {
            return Err(StorageError::Corrupt {
                context: "recording the end of a run",
                detail: format!("no run with id {run_id:?}"),
            });
        }
        Ok(())
    }

    /// Record a run that never started because its collector is not
    /// available in this build.
    pub async fn record_not_available(&self, run: &NewRun<'_>, message: &str) -> Result<()> {
        self.start(run).await?;
        self.finish(
            run.run_id,
            &RunOutcome {
                status: RunStatus::NotAvailable,
                failure_category: Some(FailureCategory::Config),
                error: Some(message.to_owned()),
                counts: BTreeMap::new(),
            },
        )
        .await
    }

    /// Most recent runs first.
    pub async fn list(&self, filter: &RunFilter) -> Result<Vec<RunRecord>> {
        let limit = i64::from(filter.limit.unwrap_or(20));
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM collector_runs
             WHERE ($1 IS NULL OR collector = $1 OR command = $1)
               AND ($3 IS NULL OR status = $3)
             ORDER BY started_at DESC, id DESC LIMIT $2"
        );
        on_pool!(self.storage, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(filter.collector.as_deref())
                .bind(limit)
                .bind(filter.status.map(RunStatus::as_str))
                .fetch_all(p)
                .await
                .ctx("listing runs")?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(run_from_row!(row));
            }
            Ok(out)
        })
    }

    pub async fn get(&self, run_id: &str) -> Result<Option<RunRecord>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM collector_runs WHERE run_id = $1");
        on_pool!(self.storage, p => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(run_id)
                .fetch_optional(p)
                .await
                .ctx("reading a run")?;
            Ok(match row {
                Some(row) => Some(run_from_row!(&row)),
                None => None,
            })
        })
    }

    /// Whether the schedule slot task `slot_task` already succeeded (a
    /// retried slot job skips it).
    pub async fn slot_task_succeeded(&self, slot_task: &str) -> Result<bool> {
        on_pool!(self.storage, p => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM collector_runs WHERE slot_task = $1 AND status = 'success'",
        )
        .bind(slot_task)
        .fetch_one(p)
        .await)
        .ctx("checking a slot task")
        .map(|n| n > 0)
    }

    /// The latest run of every collector that ever ran, by collector name.
    pub async fn latest_per_collector(&self) -> Result<Vec<RunRecord>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM collector_runs r
             WHERE r.id = (SELECT MAX(id) FROM collector_runs r2 WHERE r2.collector = r.collector)
             ORDER BY collector"
        );
        on_pool!(self.storage, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(p)
                .await
                .ctx("listing the latest runs")?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(run_from_row!(row));
            }
            Ok(out)
        })
    }

    /// When `collector` last succeeded.
    pub async fn last_success(&self, collector: &str) -> Result<Option<DateTime<Utc>>> {
        on_pool!(self.storage, p => sqlx::query_scalar::<_, Option<DateTime<Utc>>>(
            "SELECT MAX(finished_at) FROM collector_runs WHERE collector = $1 AND status = 'success'",
        )
        .bind(collector)
        .fetch_one(p)
        .await)
        .ctx("reading the last success")
    }

    /// Mark runs still `running` that a dead process left behind.
    pub async fn fail_abandoned(&self, worker_id: &str) -> Result<u64> {
        Ok(
            crate::in_write_tx!(self.storage, "failing abandoned runs", p => sqlx::query(
            "UPDATE collector_runs SET status = 'failed', finished_at = $1, failure_category = 'unknown',
                    error = 'abandoned: the process running it stopped before it finished'
             WHERE status = 'running' AND worker_id = $2",
        )
        .bind(now())
        .bind(worker_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected())),
        )
    }

    /// Start a schedule-group run; returns its id.
    pub async fn start_group_run(&self, group_id: &str) -> Result<i64> {
        Ok(
            crate::in_write_tx!(self.storage, "recording the start of a group run", p => sqlx::query_scalar::<_, i64>(
            "INSERT INTO schedule_group_runs (group_id, started_at, status) VALUES ($1, $2, 'running') RETURNING id",
        )
        .bind(group_id)
        .bind(now())
        .fetch_one(p)
        .await),
        )
    }

    /// Finish a schedule-group run: `success` when at least one task ran
    /// and none failed.
    pub async fn finish_group_run(&self, id: i64, tasks_run: u64, tasks_failed: u64) -> Result<()> {
        // A group run succeeds only when it ran at least one task and none
        // failed (unknown / not-available commands do not count as run).
        let status = if tasks_run > 0 && tasks_failed == 0 {
            "success"
        } else {
            "failed"
        };
        crate::in_write_tx!(self.storage, "recording the end of a group run", p => sqlx::query(
            "UPDATE schedule_group_runs SET finished_at = $1, status = $2, tasks_run = $3, tasks_failed = $4 WHERE id = $5",
        )
        .bind(now())
        .bind(status)
        .bind(i64::try_from(tasks_run).unwrap_or(i64::MAX))
        .bind(i64::try_from(tasks_failed).unwrap_or(i64::MAX))
        .bind(id)
        .execute(p)
        .await
        .map(|_| ()));
        Ok(())
    }

    /// When the group last finished a run with no failed task.
    pub async fn last_group_success(&self, group_id: &str) -> Result<Option<DateTime<Utc>>> {
        on_pool!(self.storage, p => sqlx::query_scalar::<_, Option<DateTime<Utc>>>(
            "SELECT MAX(finished_at) FROM schedule_group_runs WHERE group_id = $1 AND status = 'success'",
        )
        .bind(group_id)
        .fetch_one(p)
        .await)
        .ctx("reading the last group success")
    }
}
