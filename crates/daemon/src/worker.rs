//! The worker role: claim slot jobs, run them, keep the lease, retry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bdc_collector::Runner;
use bdc_collector::scheduled::{ScheduledError, ScheduledOptions, run_scheduled};
use bdc_jobs::{FailOutcome, Job, JobQueue};
use bdc_schedule::Schedule;
use chrono::Utc;
use tokio::sync::watch;

use crate::slots::Slot;
use crate::{DaemonError, SLOT_JOB_KIND};

/// Worker tuning.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Identity (also the heartbeat id and the runs' `worker_id`).
    pub worker_id: String,
    /// Lease per claim; renewed every third of it while the job runs.
    pub lease: Duration,
    /// Backoff base for failed attempts.
    pub retry_base: Duration,
    /// Sleep between polls when no job is due.
    pub idle_poll: Duration,
    /// On shutdown, how long an in-flight job may still take before it is
    /// released back to the queue.
    pub shutdown_grace: Duration,
}

/// What one claim led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    Idle,
    Succeeded(i64),
    Retried(i64),
    Dead(i64),
    LeaseLost(i64),
    Released(i64),
}

/// Runs slot jobs.
pub struct Worker {
    pub queue: JobQueue,
    /// Its `worker_id` should equal `options.worker_id`.
    pub runner: Runner,
    pub schedule: Arc<Schedule>,
    pub file_label: String,
    pub options: WorkerOptions,
}

impl Worker {
    async fn execute(&self, job: &Job) -> Result<(), String> {
        if job.kind != SLOT_JOB_KIND {
            return Err(format!("unknown job kind {:?}", job.kind));
        }
        let slot: Slot = serde_json::from_value(job.payload.clone())
            .map_err(|e| format!("invalid slot payload: {e}"))?;
        let (due, kinds) = slot.context(Utc::now().date_naive());
        let opts = ScheduledOptions {
            group: Some(slot.group.clone()),
            strict: false,
            due,
            file_label: self.file_label.clone(),
            kinds: Some(kinds),
            slot_key: Some(slot.key()),
        };
        match run_scheduled(&self.runner, &self.schedule, &opts).await {
            Ok(report) => {
                tracing::info!(
                    job = job.id,
                    slot = %slot.key(),
                    ran = report.ran,
                    failed = report.failed,
                    "slot done"
                );
                Ok(())
            }
            // Collector failures are recorded as failed runs; only problems
            // of the slot itself (a group removed from the schedule) or of
            // the infrastructure fail the job and are retried.
            Err(e @ ScheduledError::UnknownGroup { .. }) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Claim and run at most one job.
    pub async fn run_once(
        &self,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<JobOutcome, DaemonError> {
        let me = self.options.worker_id.as_str();
        let Some(job) = self.queue.claim(me, self.options.lease).await? else {
            return Ok(JobOutcome::Idle);
        };
        let wait = (Utc::now() - job.run_at).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::histogram!("bdc_job_wait_seconds", "kind" => job.kind.clone()).record(wait);
        let span =
            tracing::info_span!("job", id = job.id, kind = %job.kind, attempt = job.attempts);
        let _enter = span.enter();
        drop(_enter);
        let started = Instant::now();
        let exec = self.execute(&job);
        tokio::pin!(exec);
        let renew = async {
            loop {
                tokio::time::sleep(self.options.lease / 3).await;
                match self.queue.renew(job.id, me, self.options.lease).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => tracing::warn!(job = job.id, error = %e, "lease renewal failed"),
                }
            }
        };
        tokio::pin!(renew);
        let result = tokio::select! {
            r = &mut exec => Some(r),
            () = &mut renew => None,
            _ = shutdown.changed() => {
                tracing::info!(job = job.id, grace_s = self.options.shutdown_grace.as_secs_f64(), "shutting down: waiting for the running job");
                // Keep renewing the lease during the grace period, so no
                // other worker takes the job over while it still runs here.
                let finish = async {
                    tokio::select! {
                        r = &mut exec => Some(r),
                        () = &mut renew => None,
                    }
                };
                match tokio::time::timeout(self.options.shutdown_grace, finish).await {
                    Ok(r) => r,
                    Err(_) => {
                        self.queue.release(job.id, me).await?;
                        let abandoned = self.runner.storage.runs().fail_abandoned(me).await?;
                        tracing::warn!(job = job.id, abandoned_runs = abandoned, "job released back to the queue");
                        return Ok(JobOutcome::Released(job.id));
                    }
                }
            }
        };
        metrics::histogram!("bdc_job_duration_seconds", "kind" => job.kind.clone())
            .record(started.elapsed().as_secs_f64());
        match result {
            None => {
                tracing::error!(
                    job = job.id,
                    "lease lost: another worker took the job over; abandoned it"
                );
                self.runner.storage.runs().fail_abandoned(me).await?;
                Ok(JobOutcome::LeaseLost(job.id))
            }
            Some(Ok(())) => {
                if self.queue.complete(job.id, me).await? {
                    Ok(JobOutcome::Succeeded(job.id))
                } else {
                    Ok(JobOutcome::LeaseLost(job.id))
                }
            }
            Some(Err(error)) => {
                tracing::error!(job = job.id, error = %error, "job failed");
                Ok(
                    match self
                        .queue
                        .fail(&job, me, &error, self.options.retry_base)
                        .await?
                    {
                        FailOutcome::Retry { .. } => JobOutcome::Retried(job.id),
                        FailOutcome::Dead => JobOutcome::Dead(job.id),
                        FailOutcome::LeaseLost => JobOutcome::LeaseLost(job.id),
                    },
                )
            }
        }
    }

    /// Run jobs until `shutdown` turns true.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.run_once(&mut shutdown).await {
                Ok(JobOutcome::Idle) => {
                    tokio::select! {
                        _ = tokio::time::sleep(self.options.idle_poll) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Ok(outcome) => tracing::debug!(?outcome, "job handled"),
                Err(e) => {
                    tracing::error!(error = %e, "worker loop error");
                    tokio::select! {
                        _ = tokio::time::sleep(self.options.idle_poll) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        tracing::info!(worker = %self.options.worker_id, "worker stopped");
    }

    /// Run until no job is claimable; returns the outcomes (for scripts
    /// and tests: `bdc worker --drain`).
    pub async fn drain(&self) -> Result<Vec<JobOutcome>, DaemonError> {
        let (_tx, mut rx) = watch::channel(false);
        let mut out = Vec::new();
        loop {
            match self.run_once(&mut rx).await? {
                JobOutcome::Idle => return Ok(out),
                o => out.push(o),
            }
        }
    }
}
