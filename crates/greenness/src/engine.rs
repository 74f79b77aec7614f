//! The pipeline driver: claims durable stage messages, runs the pure
//! handlers and applies their transitions (retries with backoff, dead
//! letters with fail-closed reconciliation).

use std::sync::Arc;
use std::time::Duration;

use crate::config::GreennessConfig;
use crate::model::{IngestOutcome, Message, Transition};
use crate::stages::{self, Env, Step};
use crate::traits::{
    Applied, BuildRunner, Hooks, PipelineStore, ScmError, SourceControl, StoreError,
};

/// Delivery policy of stage messages.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Deliveries before a message is dead-lettered.
    pub max_attempts: i64,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How long a claimed message stays invisible to other workers; a
    /// running stage renews it every third of this, so a long build keeps
    /// its stage, and a worker that dies loses it within one lease.
    pub lease: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
            lease: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff after `attempts` deliveries.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let shift = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
        self.backoff_base
            .saturating_mul(1u32 << shift)
            .min(self.backoff_max)
    }
}

/// Time source (µs since the epoch); replaced in simulations.
pub trait Clock: Send + Sync {
    fn now_us(&self) -> i64;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_us(&self) -> i64 {
        chrono::Utc::now().timestamp_micros()
    }
}

/// Errors of the pipeline driver.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("unknown queue {0:?} (not in the greenness configuration)")]
    UnknownQueue(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Scm(#[from] ScmError),
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    Applied,
    Acked,
    Conflict,
    LeaseLost,
    Retried(String),
    DeadLettered(String),
}

/// One processed message.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub message: Message,
    pub outcome: StepOutcome,
}

/// Totals of a drain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub steps: u64,
    pub applied: u64,
    pub retried: u64,
    pub conflicts: u64,
    pub dead_lettered: u64,
}

/// The greenness pipeline over its extension traits.
#[derive(Clone)]
pub struct Pipeline {
    pub store: Arc<dyn PipelineStore>,
    pub scm: Arc<dyn SourceControl>,
    pub runner: Arc<dyn BuildRunner>,
    pub hooks: Arc<dyn Hooks>,
    pub config: Arc<GreennessConfig>,
    pub policy: RetryPolicy,
    pub clock: Arc<dyn Clock>,
    /// Lease owner name of this worker.
    pub owner: String,
}

impl Pipeline {
    /// Create the queue rows of the configuration.
    pub async fn ensure_queues(&self) -> Result<(), PipelineError> {
        for q in &self.config.queues {
            self.store
                .ensure_queue(&q.name, &q.repo, &q.ref_name)
                .await?;
        }
        Ok(())
    }

    /// Ingest the current head of `queue` (fetching first).
    pub async fn ingest(&self, queue: &str) -> Result<IngestOutcome, PipelineError> {
        let spec = self
            .config
            .queue(queue)
            .ok_or_else(|| PipelineError::UnknownQueue(queue.to_owned()))?;
        let head = self.scm.head(spec).await?;
        self.ingest_uri(queue, &head).await
    }

    /// Ingest a given head URI (dedup on (queue, URI)).
    pub async fn ingest_uri(
        &self,
        queue: &str,
        head: &str,
    ) -> Result<IngestOutcome, PipelineError> {
        let spec = self
            .config
            .queue(queue)
            .ok_or_else(|| PipelineError::UnknownQueue(queue.to_owned()))?;
        self.store
            .ensure_queue(&spec.name, &spec.repo, &spec.ref_name)
            .await?;
        let out = self.store.ingest(queue, head, self.clock.now_us()).await?;
        metrics::counter!("bdc_greenness_ingests_total", "created" => if out.created { "true" } else { "false" }).increment(1);
        tracing::info!(queue, head, id = %out.request.id, created = out.created, "greenness: ingested");
        Ok(out)
    }

    /// A new attempt at a finished, not green request (an `undetermined`
    /// or failed commit, or a superseded one): see
    /// [`PipelineStore::revalidate`]. A green commit is not revalidated
    /// (returns false).
    pub async fn revalidate(&self, id: &str) -> Result<bool, PipelineError> {
        let Some(req) = self.store.request(id).await? else {
            return Ok(false);
        };
        let latest = self
            .store
            .latest_record(&req.queue, &req.commit_uri, &crate::model::Scope::Repo)
            .await?;
        if latest.is_some_and(|r| r.outcome.is_green()) {
            return Ok(false);
        }
        let done = self.store.revalidate(id, self.clock.now_us()).await?;
        tracing::info!(request = id, done, "greenness: revalidation requested");
        Ok(done)
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_micros(self.clock.now_us()).unwrap_or_default()
    }

    /// Claim and handle one message; None when nothing is due.
    pub async fn step(&self) -> Result<Option<StepReport>, PipelineError> {
        let lease = i64::try_from(self.policy.lease.as_micros()).unwrap_or(i64::MAX);
        let Some(msg) = self
            .store
            .claim(&self.owner, self.clock.now_us(), lease)
            .await?
        else {
            return Ok(None);
        };
        let started = std::time::Instant::now();
        let outcome = self.handle(&msg).await?;
        metrics::histogram!("bdc_greenness_stage_seconds", "stage" => msg.stage.as_str())
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("bdc_greenness_steps_total", "stage" => msg.stage.as_str(), "outcome" => match &outcome {
            StepOutcome::Applied => "applied",
            StepOutcome::Acked => "acked",
            StepOutcome::Conflict => "conflict",
            StepOutcome::LeaseLost => "lease_lost",
            StepOutcome::Retried(_) => "retried",
            StepOutcome::DeadLettered(_) => "dead_lettered",
        })
        .increment(1);
        Ok(Some(StepReport {
            message: msg,
            outcome,
        }))
    }

    async fn handle(&self, msg: &Message) -> Result<StepOutcome, PipelineError> {
        let Some(spec) = self.config.queue(&msg.queue) else {
            let error = format!("queue {:?} is not configured", msg.queue);
            self.store
                .dead_letter(
                    msg,
                    &self.owner,
                    &error,
                    &Transition::default(),
                    self.clock.now_us(),
                )
                .await?;
            return Ok(StepOutcome::DeadLettered(error));
        };
        let env = Env {
            store: self.store.as_ref(),
            scm: self.scm.as_ref(),
            runner: self.runner.as_ref(),
            hooks: self.hooks.as_ref(),
            spec,
            now: self.now(),
        };
        let span = tracing::info_span!("greenness_stage", stage = msg.stage.as_str(), request = %msg.request_id, attempt = msg.attempts);
        let step = {
            use tracing::Instrument;
            let work = stages::handle(&env, msg).instrument(span.clone());
            tokio::select! {
                r = work => r,
                never = self.keep_lease(msg) => match never {},
            }
        };
        let (transition, acked) = match step {
            Ok(Step::Apply(t)) => (*t, false),
            Ok(Step::Ack(why)) => {
                tracing::debug!(why, "greenness: ack without effect");
                (Transition::default(), true)
            }
            Err(e) => {
                let error = e.to_string();
                if msg.attempts >= self.policy.max_attempts {
                    tracing::error!(
                        error,
                        "greenness: stage gave up; dead-lettering (fail closed)"
                    );
                    let reconcile = match stages::reconcile(&env, msg, &error).await {
                        Ok(t) => t,
                        Err(e) => {
                            // Reconciliation needs the store; retry later.
                            tracing::error!(error = %e, "greenness: reconciliation failed");
                            self.retry(msg, &e.to_string()).await?;
                            return Ok(StepOutcome::Retried(e.to_string()));
                        }
                    };
                    self.store
                        .dead_letter(msg, &self.owner, &error, &reconcile, self.clock.now_us())
                        .await?;
                    return Ok(StepOutcome::DeadLettered(error));
                }
                tracing::warn!(error, "greenness: stage failed; will retry");
                self.retry(msg, &error).await?;
                return Ok(StepOutcome::Retried(error));
            }
        };
        match self
            .store
            .apply(msg, &self.owner, &transition, self.clock.now_us())
            .await?
        {
            Applied::Ok if acked => Ok(StepOutcome::Acked),
            Applied::Ok => Ok(StepOutcome::Applied),
            Applied::Conflict => {
                tracing::info!("greenness: optimistic-lock conflict; retrying the stage");
                self.store
                    .retry(msg, &self.owner, "version conflict", self.clock.now_us())
                    .await?;
                Ok(StepOutcome::Conflict)
            }
            Applied::LeaseLost => Ok(StepOutcome::LeaseLost),
        }
    }

    /// Renew the lease of `msg` every third of the lease while the stage
    /// runs (never returns; dropped when the stage ends). A lost lease is
    /// logged: the stage's apply then finds it lost and writes nothing.
    async fn keep_lease(&self, msg: &Message) -> std::convert::Infallible {
        let lease = self.policy.lease;
        let every = (lease / 3).max(Duration::from_millis(10));
        let lease_us = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX);
        let mut held = true;
        loop {
            tokio::time::sleep(every).await;
            if !held {
                continue;
            }
            let until = self.clock.now_us().saturating_add(lease_us);
            match self.store.renew(msg, &self.owner, until).await {
                Ok(true) => {
                    metrics::counter!("bdc_greenness_lease_renewals_total").increment(1);
                    tracing::debug!(message = msg.id, "greenness: lease renewed");
                }
                Ok(false) => {
                    held = false;
                    tracing::warn!(
                        message = msg.id,
                        "greenness: lease lost while the stage runs; its result will be dropped"
                    );
                }
                Err(e) => {
                    tracing::warn!(message = msg.id, error = %e, "greenness: cannot renew a lease; trying again");
                }
            }
        }
    }

    async fn retry(&self, msg: &Message, error: &str) -> Result<(), PipelineError> {
        let delay =
            i64::try_from(self.policy.backoff(msg.attempts).as_micros()).unwrap_or(i64::MAX);
        self.store
            .retry(
                msg,
                &self.owner,
                error,
                self.clock.now_us().saturating_add(delay),
            )
            .await?;
        Ok(())
    }

    /// Run every pending stage until nothing is pending (waiting for
    /// backoffs), then return.
    pub async fn drain(&self) -> Result<DrainReport, PipelineError> {
        let mut report = DrainReport::default();
        loop {
            match self.step().await? {
                Some(r) => {
                    report.steps += 1;
                    match r.outcome {
                        StepOutcome::Applied | StepOutcome::Acked => report.applied += 1,
                        StepOutcome::Conflict => report.conflicts += 1,
                        StepOutcome::Retried(_) => report.retried += 1,
                        StepOutcome::DeadLettered(_) => report.dead_lettered += 1,
                        StepOutcome::LeaseLost => {}
                    }
                }
                None => {
                    let pending = self.store.pending().await?;
                    if pending.total == 0 {
                        return Ok(report);
                    }
                    let now = self.clock.now_us();
                    let wait_us = pending
                        .next_available_us
                        .map_or(100_000, |t| t.saturating_sub(now))
                        .clamp(1_000, 1_000_000);
                    tokio::time::sleep(Duration::from_micros(wait_us.unsigned_abs())).await;
                }
            }
        }
    }
}
