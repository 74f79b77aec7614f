//! `bdc-bench`: the project's benchmark harness.
//!
//! ```text
//! cargo run --release -p bdc-bench              # all benchmarks, both backends
//! cargo run --release -p bdc-bench -- --quick   # smaller sizes (smoke run)
//! cargo run --release -p bdc-bench -- --only upsert --backend sqlite
//! cargo run --release -p bdc-bench -- --only dashboard-render
//! ```
//!
//! Each benchmark creates its own throwaway database (SQLite in a temp dir,
//! PostgreSQL via `BDC_TEST_POSTGRES_URL`, default the local server) and
//! prints one row per measurement: what, backend, size, figure, unit.
//! Later issues add their benchmarks as new modules here.

mod audit;
mod audit_chain;
mod audit_pgbench;
mod boost_usage;
mod collectors_mail_git;
mod daemon;
mod dashboard_render;
mod demo;
mod discord;
mod discord_live;
mod github;
mod greenness;
mod health;
mod identities;
mod library_docs;
mod search;
mod slack;
mod upsert;
mod youtube;

use std::time::Duration;

use anyhow::Result;
use bdc_testsupport::Kind;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "bdc-bench")]
struct Args {
    /// Smaller sizes, for a quick smoke run.
    #[arg(long)]
    quick: bool,
    /// Run only benchmarks whose name contains this (upsert, audit, health).
    #[arg(long)]
    only: Option<String>,
    /// sqlite, postgres or both.
    #[arg(long, default_value = "both")]
    backend: String,
}

/// One reported figure.
pub struct Row {
    pub bench: String,
    pub backend: &'static str,
    pub size: String,
    pub value: f64,
    pub unit: &'static str,
}

pub fn backend_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Sqlite => "sqlite",
        Kind::Postgres => "postgres",
    }
}

/// Percentile (0..=100) of sorted durations, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let kinds: Vec<Kind> = match args.backend.as_str() {
        "sqlite" => vec![Kind::Sqlite],
        "postgres" => vec![Kind::Postgres],
        "both" => vec![Kind::Sqlite, Kind::Postgres],
        other => anyhow::bail!("--backend must be sqlite, postgres or both, not {other:?}"),
    };
    let wants = |name: &str| args.only.as_deref().is_none_or(|o| name.contains(o));
    let mut rows = Vec::new();
    // Backend-independent (pure computation and rendering).
    if wants("dashboard-render") {
        rows.extend(dashboard_render::run(args.quick)?);
    }
    for kind in kinds {
        if wants("upsert") {
            rows.extend(upsert::run(kind, args.quick).await?);
        }
        if wants("github-sync") {
            rows.extend(github::sync_throughput(kind, args.quick).await?);
        }
        if wants("github-resync") {
            rows.extend(github::resync(kind, args.quick).await?);
        }
        if wants("youtube-transcripts") {
            rows.extend(youtube::run(kind, args.quick).await?);
        }
        if wants("audit") {
            rows.extend(audit::run(kind, args.quick).await?);
        }
        if wants("audit-pgbench") {
            rows.extend(audit_pgbench::run(kind, args.quick).await?);
        }
        if wants("audit-chain") {
            // BDC_BENCH_AUDIT_CHAIN_CHANGES overrides the size (the issue's
            // as-of latency figure is at 10,000,000 changes).
            let n = std::env::var("BDC_BENCH_AUDIT_CHAIN_CHANGES")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(if args.quick { 100_000 } else { 1_000_000 });
            rows.extend(audit_chain::run(kind, n).await?);
        }
        if wants("mbox") {
            rows.extend(collectors_mail_git::mbox(kind, args.quick).await?);
        }
        if wants("git-history") {
            rows.extend(collectors_mail_git::git_history(kind, args.quick).await?);
        }
        if wants("discord") {
            rows.extend(discord::run(kind, args.quick).await?);
        }
        if wants("discord-live") {
            rows.extend(discord_live::run(kind, args.quick).await?);
        }
        if wants("slack") {
            rows.extend(slack::run(kind, args.quick).await?);
        }
        if wants("daemon") {
            rows.extend(daemon::run(kind, args.quick).await?);
        }
        if wants("greenness") {
            rows.extend(greenness::run(kind, args.quick).await?);
        }
        if wants("demo") {
            rows.extend(demo::run(kind, args.quick).await?);
        }
        if wants("boost-usage") {
            rows.extend(boost_usage::run(kind, args.quick).await?);
        }
        if wants("health") {
            rows.extend(health::run(kind, args.quick).await?);
        }
        if wants("search") {
            rows.extend(search::run(kind, args.quick).await?);
        }
        if wants("identities") {
            rows.extend(identities::run(kind, args.quick).await?);
        }
        if wants("library-docs") {
            rows.extend(library_docs::run(kind, args.quick).await?);
        }
    }
    let w = rows
        .iter()
        .map(|r| r.bench.chars().count())
        .max()
        .unwrap_or(0)
        .max(44);
    println!(
        "{:<w$} {:<9} {:>10} {:>14}  unit",
        "benchmark", "backend", "size", "value"
    );
    for r in &rows {
        println!(
            "{:<w$} {:<9} {:>10} {:>14.2}  {}",
            r.bench, r.backend, r.size, r.value, r.unit
        );
    }
    Ok(())
}
