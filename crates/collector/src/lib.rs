//! The collector runtime.
//!
//! * [`contract`]: the [`Collector`] trait every collector implements
//!   (seed 001's `AbstractCollector`) and the [`CollectContext`] it runs in.
//! * [`registry`]: stable CLI names, the original's scheduled command names
//!   as aliases, and which collectors this build provides.
//! * [`runner`]: runs one collector and records the run (status, failure
//!   category, counts), metrics and logs.
//! * [`scheduled`]: `run-scheduled`: selects due tasks from the schedule
//!   YAML and runs them in order.
//!
//! Adding a collector: implement [`Collector`] in a crate of its own
//! (`crates/collector-<name>`), then register it in the binary's
//! `collectors.rs`. If the name is new, add it to [`registry::CATALOG`].

pub mod args;
pub mod contract;
pub mod progress;
pub mod registry;
pub mod runner;
pub mod scheduled;

pub use args::{ArgsCheck, check_args};
pub use contract::{CollectContext, Collector, CollectorFailure, Phase};
pub use registry::{CATALOG, CatalogEntry, Lookup, Registry};
pub use runner::{RunReport, RunRequest, Runner, RunnerError};
