//! The extension points: everything the pipeline does to the outside world
//! goes through one of these traits, so the stage handlers are pure state
//! transitions over them (and a simulation can replace every one).

use std::path::PathBuf;

use async_trait::async_trait;

use crate::model::{
    GreennessRecord, HookEvent, IngestOutcome, Message, Queue, Request, Scope, TargetResult,
    Transition,
};

/// Errors of a [`SourceControl`].
#[derive(Debug, thiserror::Error)]
pub enum ScmError {
    /// The commit is not known (e.g. rewritten away): not retried.
    #[error("unknown commit {uri}: {detail}")]
    UnknownCommit { uri: String, detail: String },
    #[error("invalid commit URI {uri:?}: {detail}")]
    InvalidUri { uri: String, detail: String },
    /// Anything else (I/O, a failing fetch): retried.
    #[error("source control failed while {context}: {detail}")]
    Failed { context: String, detail: String },
}

/// Owns commit, ref and head URIs (opaque to the core).
#[async_trait]
pub trait SourceControl: Send + Sync {
    /// Current head of the queue's ref (fetching first), as a commit URI.
    async fn head(&self, queue: &crate::config::QueueSpec) -> Result<String, ScmError>;
    /// Whether `ancestor` is an ancestor of (or equal to) `descendant`.
    async fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool, ScmError>;
    /// Paths changed between two commits.
    async fn changed_paths(&self, from: &str, to: &str) -> Result<Vec<String>, ScmError>;
    /// A checkout of `commit` to build in (None: the runner needs none).
    /// `key` (the build id) makes it private to one build: two builds of the
    /// same commit (two queues, or a redelivered stage) never share or
    /// delete each other's tree.
    async fn checkout(&self, commit: &str, key: &str) -> Result<Option<PathBuf>, ScmError>;
    /// Release the checkout made by [`SourceControl::checkout`] with `key`.
    async fn release(&self, commit: &str, key: &str) -> Result<(), ScmError>;
    /// Whether `input` (a full sha or a URI) names `commit_uri`.
    fn same_commit(&self, input: &str, commit_uri: &str) -> bool {
        input == commit_uri || commit_uri.rsplit('/').next() == Some(input)
    }
}

/// One node of a target graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    /// Targets that must pass first (a dependency that does not pass
    /// leaves this one `not built`, without running it).
    pub deps: Vec<String>,
}

/// What a build runs on.
#[derive(Debug, Clone)]
pub struct BuildContext {
    pub queue: String,
    pub request_id: String,
    pub commit_uri: String,
    pub build_id: String,
    pub workdir: Option<PathBuf>,
}

/// An infrastructure failure of a runner (retried, then dead-lettered).
#[derive(Debug, thiserror::Error)]
#[error("build runner failed: {0}")]
pub struct RunnerError(pub String);

/// Runs builds; yields a target graph and per-target results.
#[async_trait]
pub trait BuildRunner: Send + Sync {
    /// Target graph of a queue (`spec`: the request's effective queue,
    /// with its listed projects) for the given phase: `repo` true means the
    /// queue-level build; else one target per project of `projects`, with
    /// its `deps`.
    fn target_graph(
        &self,
        spec: &crate::config::QueueSpec,
        repo: bool,
        projects: &[String],
    ) -> Vec<Target>;
    /// Build `targets` in `ctx.workdir` in dependency order; one result per
    /// target (dependents of a target that did not pass are `not built`).
    async fn build(
        &self,
        ctx: &BuildContext,
        spec: &crate::config::QueueSpec,
        targets: &[Target],
    ) -> Result<Vec<TargetResult>, RunnerError>;
    /// The projects the queue's `projects_command` lists for `commit_uri`
    /// (evaluated once per request, by `process`); None when the queue has
    /// no such command.
    async fn list_projects(
        &self,
        _spec: &crate::config::QueueSpec,
        _commit_uri: &str,
    ) -> Result<Option<Vec<crate::config::ProjectSpec>>, RunnerError> {
        Ok(None)
    }
}

/// A hook delivery failure (retried).
#[derive(Debug, thiserror::Error)]
#[error("hook failed: {0}")]
pub struct HookError(pub String);

/// Downstream notification boundary.
#[async_trait]
pub trait Hooks: Send + Sync {
    async fn notify(&self, event: &HookEvent) -> Result<(), HookError>;
    /// Whether any hook wants events of this kind (none: no notify
    /// message is enqueued at all).
    fn wants(&self, _kind: crate::model::EventKind) -> bool {
        true
    }
}

/// Hooks that do nothing.
pub struct NoHooks;

#[async_trait]
impl Hooks for NoHooks {
    async fn notify(&self, _event: &HookEvent) -> Result<(), HookError> {
        Ok(())
    }
    fn wants(&self, _kind: crate::model::EventKind) -> bool {
        false
    }
}

/// Errors of a [`PipelineStore`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Storage(#[from] bdc_storage::StorageError),
    #[error("unknown queue {0:?}")]
    UnknownQueue(String),
    #[error("stored {what} is invalid: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error(
        "commit {commit:?} is ambiguous in queue {queue:?}: it matches {candidates}; give more digits or the full URI"
    )]
    AmbiguousCommit {
        queue: String,
        commit: String,
        candidates: String,
    },
}

/// Result of applying a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Ok,
    /// The request's version moved (optimistic lock): nothing was written.
    Conflict,
    /// The message is no longer leased to us: nothing was written.
    LeaseLost,
}

/// What is still pending in the message queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pending {
    pub total: i64,
    /// Earliest time (µs since epoch) a pending message becomes claimable.
    pub next_available_us: Option<i64>,
}

/// Mints per-queue monotonic counters, transactionally.
#[async_trait]
pub trait Counter: Send + Sync {
    async fn next(&self, queue: &str) -> Result<i64, StoreError>;
}

/// Durable state of the pipeline: entities, facts and the stage-message
/// queue. Every method is atomic.
#[async_trait]
pub trait PipelineStore: Counter {
    /// Create the queue row if missing (repo and ref updated).
    async fn ensure_queue(&self, name: &str, repo: &str, ref_name: &str) -> Result<(), StoreError>;
    async fn queue(&self, name: &str) -> Result<Option<Queue>, StoreError>;
    /// Dedup on (queue, head URI); else mint a counter, insert the request
    /// and enqueue `process`, in one transaction.
    async fn ingest(
        &self,
        queue: &str,
        head_uri: &str,
        now_us: i64,
    ) -> Result<IngestOutcome, StoreError>;
    async fn request(&self, id: &str) -> Result<Option<Request>, StoreError>;
    /// Whether a request with a higher sequence exists in the queue.
    async fn newer_request_exists(&self, queue: &str, seq: i64) -> Result<bool, StoreError>;
    /// Latest record of `scope` for a commit (the authoritative one).
    async fn latest_record(
        &self,
        queue: &str,
        commit_uri: &str,
        scope: &Scope,
    ) -> Result<Option<GreennessRecord>, StoreError>;
    /// Latest record of `scope` in the queue (any commit).
    async fn latest_scope_record(
        &self,
        queue: &str,
        scope: &Scope,
    ) -> Result<Option<GreennessRecord>, StoreError>;
    /// Claim one due message with a lease.
    async fn claim(
        &self,
        owner: &str,
        now_us: i64,
        lease_us: i64,
    ) -> Result<Option<Message>, StoreError>;
    /// Extend the lease of a message still held by `owner` to `until_us`
    /// (a long build keeps its stage); false when the lease was lost.
    async fn renew(&self, msg: &Message, owner: &str, until_us: i64) -> Result<bool, StoreError>;
    /// Atomically: check the lease, update the request (optimistic lock),
    /// append records, move last-green pointers forward, enqueue the next
    /// messages, ack the message.
    async fn apply(
        &self,
        msg: &Message,
        owner: &str,
        transition: &Transition,
        now_us: i64,
    ) -> Result<Applied, StoreError>;
    /// Release the message for another attempt at `available_us`.
    async fn retry(
        &self,
        msg: &Message,
        owner: &str,
        error: &str,
        available_us: i64,
    ) -> Result<(), StoreError>;
    /// Move the message to the dead-letter table and apply the
    /// reconciliation (forced: no version check), in one transaction.
    async fn dead_letter(
        &self,
        msg: &Message,
        owner: &str,
        error: &str,
        reconcile: &Transition,
        now_us: i64,
    ) -> Result<Applied, StoreError>;
    async fn pending(&self) -> Result<Pending, StoreError>;
    /// Start a new attempt at a finished request (`done`, `dead_lettered`
    /// or `superseded`): back to `accepted` with a `process` message.
    /// Records already written stay; the new ones are appended. Returns
    /// false when the request is not finished (nothing changed).
    async fn revalidate(&self, id: &str, now_us: i64) -> Result<bool, StoreError>;
}
