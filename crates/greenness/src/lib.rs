//! Commit greenness tracking (seed 003): poll → ingest → process → build →
//! buildsignal → record (whole repo), then analyze → build → buildsignal →
//! record (per project); gating on the last green commit.
//!
//! * [`model`]: entities (queue, request, records) serialisable to bytes.
//! * [`traits`]: the extension points (SourceControl, BuildRunner, Hooks,
//!   Counter, PipelineStore).
//! * [`stages`]: the stage handlers, pure state transitions over the traits.
//! * [`engine`]: the driver of durable stage messages (retries, DLQ).
//! * [`store`]: the SQL store (SQLite and PostgreSQL) and its schema part.
//! * [`mem`]: an in-memory store for simulations.
//! * [`git`], [`runner`], [`hooks`]: the git, command and webhook/command
//!   implementations; [`config`]: the YAML; [`http`]: the axum routes.

pub mod config;
pub mod engine;
pub mod git;
pub mod graph;
pub mod hooks;
pub mod http;
pub mod mem;
pub mod model;
pub mod runner;
pub mod service;
pub mod stages;
pub mod store;
pub mod traits;

pub use config::{GreennessConfig, QueueSpec};
pub use engine::{Pipeline, RetryPolicy};
