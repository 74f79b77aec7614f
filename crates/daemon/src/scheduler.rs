//! The scheduler role: schedule slots → durable jobs.

use std::sync::Arc;
use std::time::Duration;

use bdc_jobs::{JobQueue, NewJob};
use bdc_schedule::Schedule;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::release::ReleaseWatcher;
use crate::slots::{Slot, due_slots, release_slots};
use crate::{DaemonError, SLOT_JOB_KIND};

/// Enqueues due schedule slots. Any number may run at once (one per
/// `bdc serve`/`bdc scheduler` process): slot keys make each slot one job.
pub struct Scheduler {
    pub queue: JobQueue,
    pub schedule: Arc<Schedule>,
    /// How often the schedule is evaluated.
    pub tick: Duration,
    /// Attempts per slot job before it is dead.
    pub max_attempts: i32,
    pub release: Option<ReleaseWatcher>,
    /// How often the release watcher looks for new tags.
    pub release_every: Duration,
}

impl Scheduler {
    /// Enqueue `slots`; returns how many were new.
    pub async fn enqueue(&self, slots: &[Slot]) -> Result<usize, DaemonError> {
        let mut new = 0;
        for slot in slots {
            let payload = serde_json::to_value(slot).map_err(|e| DaemonError::BadPayload {
                id: 0,
                detail: e.to_string(),
            })?;
            let id = self
                .queue
                .enqueue(&NewJob {
                    kind: SLOT_JOB_KIND.to_owned(),
                    payload,
                    slot_key: Some(slot.key()),
                    run_at: bdc_storage::now(),
                    max_attempts: self.max_attempts,
                })
                .await?;
            if let Some(id) = id {
                new += 1;
                tracing::info!(job = id, slot = %slot.key(), "slot enqueued");
            }
        }
        Ok(new)
    }

    /// Evaluate the schedule at `now` (interval minutes since `since`).
    pub async fn tick_at(
        &self,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<usize, DaemonError> {
        let slots = due_slots(&self.schedule, now, since);
        self.enqueue(&slots).await
    }

    /// Ask the release watcher for new tags and enqueue their slots.
    pub async fn check_releases(&self) -> Result<usize, DaemonError> {
        let Some(watcher) = &self.release else {
            return Ok(0);
        };
        let mut new = 0;
        for tag in watcher.new_tags().await? {
            tracing::info!(tag = %tag, repo = %watcher.repo, "new release detected");
            new += self.enqueue(&release_slots(&self.schedule, &tag)).await?;
            watcher.acknowledge(&tag).await?;
        }
        Ok(new)
    }

    /// Run until `shutdown` turns true.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut since = Utc::now() - chrono::Duration::seconds(1);
        let mut last_release_check: Option<std::time::Instant> = None;
        loop {
            let now = Utc::now();
            match self.tick_at(now, since).await {
                Ok(n) if n > 0 => tracing::debug!(enqueued = n, "scheduler tick"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "scheduler tick failed"),
            }
            since = now;
            if last_release_check.is_none_or(|t| t.elapsed() >= self.release_every) {
                if let Err(e) = self.check_releases().await {
                    tracing::error!(error = %e, "release check failed");
                }
                last_release_check = Some(std::time::Instant::now());
            }
            if let Err(e) = self.queue.stats().await {
                tracing::warn!(error = %e, "reading job queue stats failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.tick) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                tracing::info!("scheduler stopped");
                return;
            }
        }
    }
}
