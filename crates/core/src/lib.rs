//! Shared vocabulary of the Boost Data Collector.
//!
//! * [`protocol`]: the data that crosses crate boundaries — [`TrackerResult`],
//!   [`ActivityRecord`], [`IncrementalState`] — validated at construction
//!   (the Rust counterpart of the original's `require_*` guards) and serde
//!   round-trippable.
//! * [`failure`]: [`FailureCategory`] and [`classify_failure`], the one place
//!   that maps any error to a coarse bucket for logs, metrics and run records.

pub mod actor;
pub mod failure;
pub mod protocol;

pub use actor::Actor;
pub use failure::{
    BoxError, Categorized, FailureCategory, HttpStatusError, classify_failure, classify_git_stderr,
};
pub use protocol::{ActivityRecord, IncrementalState, ProtocolError, TrackerResult};
