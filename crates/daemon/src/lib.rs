//! The long-running roles of `bdc serve` / `bdc worker` / `bdc scheduler`.
//!
//! * [`slots`]: which schedule slots are due at a given time, each with a
//!   unique key (`cal:<group>:<date>`, `int:<group>:<date>:<minute>`,
//!   `rel:<group>:<tag>`).
//! * [`Scheduler`]: evaluates the schedule continuously and enqueues each
//!   due slot as a durable job (`bdc-jobs`); the slot key's UNIQUE
//!   constraint makes every slot run once even with several schedulers.
//! * [`Worker`]: claims jobs with a lease, renews it while running, runs
//!   the slot's due tasks through the collector runner (the same code as
//!   `bdc run-scheduled`), retries infrastructure failures with backoff,
//!   and on shutdown finishes or releases its job within a grace period.
//! * [`release::ReleaseWatcher`]: notices new release tags of a git
//!   repository (`on_release` tasks).

pub mod release;
mod scheduler;
pub mod slots;
mod worker;

pub use scheduler::Scheduler;
pub use slots::{Slot, SlotKind};
pub use worker::{JobOutcome, Worker, WorkerOptions};

/// The job kind of a schedule slot.
pub const SLOT_JOB_KIND: &str = "schedule.slot";

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Jobs(#[from] bdc_jobs::JobError),
    #[error(transparent)]
    Storage(#[from] bdc_storage::StorageError),
    #[error("job {id} has an invalid payload: {detail}")]
    BadPayload { id: i64, detail: String },
    #[error("release watcher: {0}")]
    Release(String),
}
