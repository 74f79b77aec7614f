//! Run one collector and record the run.

use std::sync::Arc;
use std::time::Instant;

use bdc_config::Config;
use bdc_core::{FailureCategory, TrackerResult};
use bdc_storage::runs::{NewRun, RunOutcome, RunStatus};
use bdc_storage::{Storage, StorageError};
use tracing::Instrument;

use crate::{ArgsCheck, CollectContext, Lookup, Phase, Registry};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Stable name or alias.
    pub command: String,
    pub args: Vec<String>,
    pub schedule_group: Option<String>,
    /// The schedule slot task (`<slot key>#<task index>`) when run by a
    /// slot job; recorded on the run.
    pub slot_task: Option<String>,
}

/// How a run went.
#[derive(Debug, Clone)]
pub enum RunReport {
    Succeeded {
        run_id: String,
        collector: &'static str,
        result: TrackerResult,
    },
    Failed {
        run_id: String,
        collector: &'static str,
        phase: Phase,
        category: FailureCategory,
        error: String,
    },
    /// A known name whose collector this build does not provide (recorded).
    NotAvailable { run_id: String, name: &'static str },
    /// A name `bdc` does not know (not recorded).
    Unknown { command: String },
}

impl RunReport {
    pub fn is_success(&self) -> bool {
        matches!(self, RunReport::Succeeded { .. })
    }
}

/// The runner could not record a run (the run itself may have worked).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Runs collectors by name and records every run.
#[derive(Clone)]
pub struct Runner {
    pub registry: Registry,
    pub storage: Storage,
    pub config: Arc<Config>,
    /// Identity of the process running collectors (heartbeat id).
    pub worker_id: Option<String>,
    pub interactive: bool,
}

impl Runner {
    /// Check `args` against the flags of the collector `command` names
    /// ([`ArgsCheck::Unchecked`] for unknown or not-available names).
    pub fn check_args(&self, command: &str, args: &[String]) -> ArgsCheck {
        match self.registry.lookup(command) {
            Lookup::Available(c) => crate::args::check_args(&*c, args),
            Lookup::NotAvailable { .. } | Lookup::Unknown => ArgsCheck::Unchecked,
        }
    }

    /// Record a run of `req` that failed before it started because its
    /// arguments are wrong (a schedule's `args`): status `failed`, category
    /// `config`, phase `validate_config`, `error` = `message`.
    pub async fn record_args_failure(
        &self,
        req: &RunRequest,
        message: &str,
    ) -> Result<RunReport, RunnerError> {
        let Lookup::Available(collector) = self.registry.lookup(&req.command) else {
            return self.run(req).await;
        };
        let name = collector.name();
        let run_id = uuid::Uuid::new_v4().to_string();
        let storage = self
            .storage
            .with_actor(&bdc_core::Actor::job(name, run_id.as_str()));
        storage
            .runs()
            .start(&NewRun {
                run_id: &run_id,
                collector: name,
                command: &req.command,
                schedule_group: req.schedule_group.as_deref(),
                args: &req.args,
                worker_id: self.worker_id.as_deref(),
                slot_task: req.slot_task.as_deref(),
            })
            .await?;
        let category = FailureCategory::Config;
        tracing::error!(
            collector = name,
            run_id = %run_id,
            collector_phase = Phase::Validate.as_str(),
            failure_category = category.as_str(),
            error = %message,
            "collector failed"
        );
        storage
            .runs()
            .finish(
                &run_id,
                &RunOutcome {
                    status: RunStatus::Failed,
                    failure_category: Some(category),
                    error: Some(message.to_owned()),
                    counts: Default::default(),
                },
            )
            .await?;
        metrics::counter!("bdc_collector_failures_total", "collector" => name, "failure_category" => category.as_str())
            .increment(1);
        metrics::counter!("bdc_collector_runs_total", "collector" => name, "status" => "failed")
            .increment(1);
        Ok(RunReport::Failed {
            run_id,
            collector: name,
            phase: Phase::Validate,
            category,
            error: message.to_owned(),
        })
    }

    pub async fn run(&self, req: &RunRequest) -> Result<RunReport, RunnerError> {
        let run_id = uuid::Uuid::new_v4().to_string();
        let new_run = |collector: &'static str| NewRun {
            run_id: &run_id,
            collector,
            command: &req.command,
            schedule_group: req.schedule_group.as_deref(),
            args: &req.args,
            worker_id: self.worker_id.as_deref(),
            slot_task: req.slot_task.as_deref(),
        };
        // Every write of this run, including its run record, carries the
        // job actor (audit trail).
        let job_storage = |collector: &str| {
            self.storage
                .with_actor(&bdc_core::Actor::job(collector, run_id.as_str()))
        };
        let collector = match self.registry.lookup(&req.command) {
            Lookup::Unknown => {
                return Ok(RunReport::Unknown {
                    command: req.command.clone(),
                });
            }
            Lookup::NotAvailable { name } => {
                let message = format!(
                    "collector `{name}` (invoked as `{}`) is not available in this build",
                    req.command
                );
                // The run record and the CLI's summary say it; a log line
                // only with -v.
                tracing::info!(collector = name, command = %req.command, "{message}");
                job_storage(name)
                    .runs()
                    .record_not_available(&new_run(name), &message)
                    .await?;
                metrics::counter!("bdc_collector_runs_total", "collector" => name, "status" => "not_available")
                    .increment(1);
                return Ok(RunReport::NotAvailable { run_id, name });
            }
            Lookup::Available(c) => c,
        };
        let name = collector.name();
        let storage = job_storage(name);
        storage.runs().start(&new_run(name)).await?;
        let ctx = CollectContext {
            run_id: run_id.clone(),
            command: req.command.clone(),
            args: req.args.clone(),
            schedule_group: req.schedule_group.clone(),
            storage: storage.clone(),
            config: Arc::clone(&self.config),
            interactive: self.interactive,
        };
        let span = tracing::info_span!(
            "collector_run",
            collector = name,
            run_id = %run_id,
            group = req.schedule_group.as_deref().unwrap_or(""),
        );
        let started = Instant::now();
        let outcome = async {
            tracing::info!(args = ?req.args, "collector run started");
            let result = match collector.run(&ctx).await {
                Ok(r) => r,
                Err(f) => return Err((f.phase, f.category, f.source.to_string())),
            };
            if !result.success() {
                return Err((
                    Phase::Collect,
                    FailureCategory::Unknown,
                    "the collector reported success = false".to_owned(),
                ));
            }
            if let Some(index) = collector.index_name() {
                match collector.sync_index(&ctx, &result).await {
                    Ok(items) => {
                        let items = i64::try_from(items).unwrap_or(i64::MAX);
                        if let Err(e) = ctx.storage.index_syncs().record(index, name, items).await {
                            let f = collector.handle_error(Phase::SyncIndex, Box::new(e));
                            return Err((f.phase, f.category, f.source.to_string()));
                        }
                    }
                    Err(e) => {
                        let f = collector.handle_error(Phase::SyncIndex, e);
                        return Err((f.phase, f.category, f.source.to_string()));
                    }
                }
            }
            Ok(result)
        }
        .instrument(span.clone())
        .await;
        let elapsed = started.elapsed().as_secs_f64();
        metrics::histogram!("bdc_collector_run_duration_seconds", "collector" => name)
            .record(elapsed);
        let report = match outcome {
            Ok(result) => {
                for (k, v) in result.counts() {
                    metrics::counter!("bdc_collector_items_total", "collector" => name, "count" => k.clone())
                        .increment(*v);
                }
                storage
                    .runs()
                    .finish(
                        &run_id,
                        &RunOutcome {
                            status: RunStatus::Success,
                            failure_category: None,
                            error: None,
                            counts: result.counts().clone(),
                        },
                    )
                    .await?;
                span.in_scope(|| tracing::info!(elapsed_s = elapsed, counts = ?result.counts(), "collector run succeeded"));
                RunReport::Succeeded {
                    run_id,
                    collector: name,
                    result,
                }
            }
            Err((phase, category, error)) => {
                metrics::counter!("bdc_collector_failures_total", "collector" => name, "failure_category" => category.as_str())
                    .increment(1);
                storage
                    .runs()
                    .finish(
                        &run_id,
                        &RunOutcome {
                            status: RunStatus::Failed,
                            failure_category: Some(category),
                            error: Some(error.clone()),
                            counts: Default::default(),
                        },
                    )
                    .await?;
                RunReport::Failed {
                    run_id,
                    collector: name,
                    phase,
                    category,
                    error,
                }
            }
        };
        let status = if report.is_success() {
            "success"
        } else {
            "failed"
        };
        metrics::counter!("bdc_collector_runs_total", "collector" => name, "status" => status)
            .increment(1);
        Ok(report)
    }
}
