//! `bdc worker`, `bdc scheduler`, `bdc jobs`, and the daemon roles that
//! `bdc serve` runs beside the HTTP server.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bdc_config::Config;
use bdc_daemon::release::ReleaseWatcher;
use bdc_daemon::{Scheduler, Worker, WorkerOptions};
use bdc_jobs::{JobQueue, JobStatus};
use bdc_schedule::Schedule;
use bdc_storage::Storage;
use clap::Args;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cli::OutputFormat;
use crate::commands::{UsageError, connect_ready, runner, schedule_path, shutdown_signal};
use crate::output::{table, truncate};

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Schedule YAML the slot jobs refer to [default: $BOOST_COLLECTOR_SCHEDULE_YAML].
    #[arg(long)]
    pub schedule: Option<PathBuf>,
    /// Worker tasks in this process.
    #[arg(long, default_value_t = 1)]
    pub concurrency: u32,
    /// Run due jobs until none is left, then exit (scripts, tests).
    #[arg(long)]
    pub drain: bool,
}

#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Schedule YAML [default: $BOOST_COLLECTOR_SCHEDULE_YAML].
    #[arg(long)]
    pub schedule: Option<PathBuf>,
    /// Evaluate once and exit (with --at: as of that time).
    #[arg(long)]
    pub once: bool,
    /// With --once: evaluate as of this RFC 3339 time (e.g. to enqueue a missed day).
    #[arg(long, value_parser = crate::output::parse_time, requires = "once")]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    /// queued, running, succeeded or dead.
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

fn load_schedule(config: &Config, arg: Option<PathBuf>) -> Result<(Arc<Schedule>, PathBuf)> {
    let path = schedule_path(config, arg);
    let schedule = Schedule::from_path(&path)?;
    Ok((Arc::new(schedule), path))
}

fn worker_options(config: &Config, worker_id: String) -> WorkerOptions {
    WorkerOptions {
        worker_id,
        lease: config.daemon.job_lease,
        retry_base: config.daemon.job_retry_base,
        idle_poll: config.daemon.worker_poll,
        shutdown_grace: config.daemon.shutdown_grace,
    }
}

fn make_worker(
    config: &Arc<Config>,
    storage: &Storage,
    schedule: Arc<Schedule>,
    path: &Path,
    worker_id: String,
) -> Worker {
    let mut r = runner(Arc::clone(config), storage.clone());
    r.worker_id = Some(worker_id.clone());
    r.interactive = false;
    Worker {
        queue: JobQueue::new(storage.clone()),
        runner: r,
        schedule,
        file_label: path.display().to_string(),
        options: worker_options(config, worker_id),
    }
}

fn make_scheduler(config: &Config, storage: &Storage, schedule: Arc<Schedule>) -> Scheduler {
    Scheduler {
        queue: JobQueue::new(storage.clone()),
        schedule,
        tick: config.daemon.scheduler_tick,
        max_attempts: i32::try_from(config.daemon.job_max_attempts).unwrap_or(3),
        release: config
            .daemon
            .release_repo
            .as_ref()
            .map(|repo| ReleaseWatcher {
                repo: repo.clone(),
                prefix: config.daemon.release_tag_prefix.clone(),
                storage: storage.clone(),
            }),
        release_every: config.daemon.release_poll,
    }
}

/// Which roles a process runs.
pub struct Roles {
    pub scheduler: bool,
    pub workers: u32,
    /// Base id; worker tasks get `<id>/<n>`.
    pub worker_id: String,
}

/// Start the scheduler and worker tasks (when a schedule is loaded).
pub fn spawn_roles(
    config: &Arc<Config>,
    storage: &Storage,
    schedule: Option<Arc<Schedule>>,
    path: &Path,
    roles: Roles,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let Some(schedule) = schedule else {
        return Vec::new();
    };
    let mut handles = Vec::new();
    if roles.scheduler {
        let s = make_scheduler(config, storage, Arc::clone(&schedule));
        let stop = stop.clone();
        handles.push(tokio::spawn(async move { s.run(stop).await }));
    }
    for n in 0..roles.workers {
        let w = make_worker(
            config,
            storage,
            Arc::clone(&schedule),
            path,
            format!("{}/{n}", roles.worker_id),
        );
        let stop = stop.clone();
        handles.push(tokio::spawn(async move { w.run(stop).await }));
    }
    handles
}

/// Wait for role tasks to stop (they watch the stop signal).
pub async fn join_roles(handles: Vec<JoinHandle<()>>, grace: Duration) {
    let all = async {
        for h in handles {
            let _ = h.await;
        }
    };
    if tokio::time::timeout(grace + Duration::from_secs(5), all)
        .await
        .is_err()
    {
        tracing::warn!("some roles did not stop within the grace period");
    }
}

/// How often daemon processes expand pending audit captures.
pub(crate) const AUDIT_FLUSH_EVERY: Duration = Duration::from_secs(5);

async fn run_process(
    config: Arc<Config>,
    role: &str,
    storage: Storage,
    body: impl FnOnce(String, watch::Receiver<bool>) -> Vec<JoinHandle<()>>,
) -> Result<ExitCode> {
    let _ = bdc_server::install_metrics_recorder()?;
    let info = bdc_server::heartbeat::worker_info(role, env!("CARGO_PKG_VERSION"));
    let worker_id = info.worker_id.clone();
    let (stop_tx, stop_rx) = watch::channel(false);
    // Stopped only after the roles: the process stays visible to /health/
    // while its in-flight job finishes.
    let (hb_stop_tx, hb_stop_rx) = watch::channel(false);
    let heartbeat =
        bdc_server::heartbeat::spawn(storage.clone(), info, Duration::from_secs(10), hb_stop_rx);
    let flusher =
        bdc_audit::pending::spawn_flusher(storage.clone(), AUDIT_FLUSH_EVERY, stop_rx.clone());
    let handles = body(worker_id.clone(), stop_rx);
    tracing::info!(role, worker = %worker_id, "started");
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    join_roles(handles, config.daemon.shutdown_grace).await;
    let _ = tokio::time::timeout(Duration::from_secs(30), flusher).await;
    // What the last jobs captured.
    bdc_audit::pending::flush_best_effort(&storage).await;
    let _ = hb_stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), heartbeat).await;
    storage.close().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn worker(config: Arc<Config>, args: WorkerArgs) -> Result<ExitCode> {
    let (schedule, path) = load_schedule(&config, args.schedule)?;
    let storage = connect_ready(&config)
        .await?
        .with_actor(&bdc_core::Actor::system("worker"));
    if args.drain {
        let id = bdc_server::heartbeat::worker_info("worker", env!("CARGO_PKG_VERSION")).worker_id;
        let w = make_worker(&config, &storage, schedule, &path, id);
        let outcomes = w.drain().await?;
        println!("{} job(s) handled", outcomes.len());
        bdc_audit::pending::flush_best_effort(&storage).await;
        storage.close().await;
        return Ok(ExitCode::SUCCESS);
    }
    let n = args.concurrency.max(1);
    let cfg = Arc::clone(&config);
    let st = storage.clone();
    run_process(config, "worker", storage, move |id, stop| {
        spawn_roles(
            &cfg,
            &st,
            Some(schedule),
            &path,
            Roles {
                scheduler: false,
                workers: n,
                worker_id: id,
            },
            stop,
        )
    })
    .await
}

pub async fn scheduler(config: Arc<Config>, args: SchedulerArgs) -> Result<ExitCode> {
    let (schedule, path) = load_schedule(&config, args.schedule)?;
    let storage = connect_ready(&config)
        .await?
        .with_actor(&bdc_core::Actor::system("scheduler"));
    if args.once {
        let s = make_scheduler(&config, &storage, schedule);
        let now = args.at.unwrap_or_else(chrono::Utc::now);
        let n = s
            .tick_at(now, now - chrono::Duration::minutes(1))
            .await
            .context("evaluating the schedule")?;
        let r = s.check_releases().await.context("checking releases")?;
        println!("{} slot(s) enqueued from {}", n + r, path.display());
        storage.close().await;
        return Ok(ExitCode::SUCCESS);
    }
    let cfg = Arc::clone(&config);
    let st = storage.clone();
    run_process(config, "scheduler", storage, move |id, stop| {
        spawn_roles(
            &cfg,
            &st,
            Some(schedule),
            &path,
            Roles {
                scheduler: true,
                workers: 0,
                worker_id: id,
            },
            stop,
        )
    })
    .await
}

pub async fn jobs(config: &Config, args: JobsArgs) -> Result<ExitCode> {
    let status = match args.status.as_deref() {
        None => None,
        Some(s) => Some(JobStatus::parse(s).ok_or_else(|| {
            UsageError(format!(
                "--status {s:?}: expected queued, running, succeeded or dead"
            ))
        })?),
    };
    let storage = connect_ready(config).await?;
    let q = JobQueue::new(storage.clone());
    let list = q.list(status, args.limit).await?;
    storage.close().await;
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &list)?;
            writeln!(out)?;
        }
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record([
                "id",
                "status",
                "kind",
                "slot_key",
                "attempts",
                "max_attempts",
                "run_at",
                "locked_by",
                "started_at",
                "finished_at",
                "last_error",
            ])?;
            for j in &list {
                w.write_record([
                    j.id.to_string(),
                    j.status.as_str().to_owned(),
                    j.kind.clone(),
                    j.slot_key.clone().unwrap_or_default(),
                    j.attempts.to_string(),
                    j.max_attempts.to_string(),
                    j.run_at.to_rfc3339(),
                    j.locked_by.clone().unwrap_or_default(),
                    j.started_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    j.finished_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    j.last_error.clone().unwrap_or_default(),
                ])?;
            }
            w.flush()?;
        }
        OutputFormat::Table => {
            let body: Vec<Vec<String>> = list
                .iter()
                .map(|j| {
                    vec![
                        j.id.to_string(),
                        j.status.as_str().to_owned(),
                        j.slot_key.clone().unwrap_or_else(|| j.kind.clone()),
                        format!("{}/{}", j.attempts, j.max_attempts),
                        j.run_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                        j.locked_by.clone().unwrap_or_else(|| "-".into()),
                        truncate(j.last_error.as_deref().unwrap_or(""), 60),
                    ]
                })
                .collect();
            write!(
                out,
                "{}",
                table(
                    &[
                        "ID",
                        "STATUS",
                        "SLOT",
                        "ATTEMPTS",
                        "DUE (UTC)",
                        "WORKER",
                        "LAST ERROR"
                    ],
                    &body
                )
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
