//! The collector contract.

use std::sync::Arc;

use async_trait::async_trait;
use bdc_config::Config;
use bdc_core::{BoxError, FailureCategory, TrackerResult, classify_failure};
use bdc_storage::Storage;

/// Everything a collector may use while it runs.
#[derive(Debug, Clone)]
pub struct CollectContext {
    /// Unique id of this run (also the audit actor's `run_id`).
    pub run_id: String,
    /// The name the collector was invoked by (stable name or alias).
    pub command: String,
    /// Collector-specific arguments (after `bdc run <name>`).
    pub args: Vec<String>,
    /// The schedule group, when run from the schedule.
    pub schedule_group: Option<String>,
    pub storage: Storage,
    pub config: Arc<Config>,
    /// Whether to draw progress bars (an interactive terminal).
    pub interactive: bool,
}

/// Lifecycle phase, logged as `collector_phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Validate,
    Collect,
    SyncIndex,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Validate => "validate_config",
            Phase::Collect => "collect",
            Phase::SyncIndex => "sync_index",
        }
    }
}

/// A failed run: the phase it failed in, its category and the error.
#[derive(Debug, thiserror::Error)]
#[error("{collector} failed in {} ({category}): {source}", phase.as_str())]
pub struct CollectorFailure {
    pub collector: &'static str,
    pub phase: Phase,
    pub category: FailureCategory,
    #[source]
    pub source: BoxError,
}

/// A collector (seed 001: `name`, `validate_config`, `collect`; `run`
/// validates then collects; optional index sync after success;
/// `handle_error` logs with structured fields).
#[async_trait]
pub trait Collector: Send + Sync {
    /// Stable CLI name, e.g. `wg21-papers`.
    fn name(&self) -> &'static str;

    /// Check arguments and configuration before any work; fail fast with a
    /// `config` error naming what is wrong.
    fn validate_config(&self, ctx: &CollectContext) -> Result<(), BoxError>;

    /// The collector's flags (e.g. `<Args as clap::CommandFactory>::command()`),
    /// for `bdc run <name> --help`, usage errors and `run-scheduled --strict`.
    /// `None`: the arguments are only checked by [`Self::validate_config`].
    fn args_command(&self) -> Option<clap::Command> {
        None
    }

    /// Do the work: fetch, parse, store. Must be incremental and idempotent.
    async fn collect(&self, ctx: &CollectContext) -> Result<TrackerResult, BoxError>;

    /// The search/vector index this collector keeps in sync, if any
    /// (reported by `/health/`'s `pinecone_sync`).
    fn index_name(&self) -> Option<&'static str> {
        None
    }

    /// Sync the index after a successful collect; returns items synced.
    async fn sync_index(
        &self,
        _ctx: &CollectContext,
        _result: &TrackerResult,
    ) -> Result<u64, BoxError> {
        Ok(0)
    }

    /// Validate, then collect. Failures are logged via [`Self::handle_error`].
    async fn run(&self, ctx: &CollectContext) -> Result<TrackerResult, CollectorFailure> {
        if let Err(e) = self.validate_config(ctx) {
            return Err(self.handle_error(Phase::Validate, e));
        }
        self.collect(ctx)
            .await
            .map_err(|e| self.handle_error(Phase::Collect, e))
    }

    /// Classify and log a failure with the fields `collector`,
    /// `collector_phase` and `failure_category`.
    fn handle_error(&self, phase: Phase, error: BoxError) -> CollectorFailure {
        let category = classify_failure(&*error);
        tracing::error!(
            collector = self.name(),
            collector_phase = phase.as_str(),
            failure_category = category.as_str(),
            error = %error,
            "collector failed"
        );
        CollectorFailure {
            collector: self.name(),
            phase,
            category,
            source: error,
        }
    }
}
