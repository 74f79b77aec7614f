//! Command-line interface (Tier A names and flags: see STABILITY.md).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("BDC_GIT_DESCRIBE"),
    ")"
);

/// Boost Data Collector: keeps an open-source ecosystem's data current and trustworthy.
#[derive(Debug, Parser)]
#[command(name = "bdc", version = LONG_VERSION, propagate_version = true)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "BDC_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// More log lines on stderr: -v info, -vv debug, -vvv trace (BDC_LOG adds EnvFilter directives).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending database migrations (idempotent; refuses a newer schema).
    Migrate(MigrateArgs),
    /// Run one collector now and record the run: `bdc run <collector> [args...]`.
    Run(RunArgs),
    /// Run the due tasks of the schedule YAML (the original's run_scheduled_collectors).
    #[command(name = "run-scheduled", visible_alias = "run_scheduled_collectors")]
    RunScheduled(RunScheduledArgs),
    /// List or count collected activity records, newest first.
    Activity(ActivityArgs),
    /// List recent collector runs.
    Runs(RunsArgs),
    /// List collector names, their aliases and whether this build provides them.
    Collectors,
    /// Run the service: HTTP API (GET /health/, /metrics), the scheduler and workers.
    Serve(ServeArgs),
    /// Run workers only: claim scheduled jobs from the database and run them.
    Worker(crate::cmd_daemon::WorkerArgs),
    /// Run the scheduler only: turn due schedule slots into jobs (exactly once per slot).
    Scheduler(crate::cmd_daemon::SchedulerArgs),
    /// List durable jobs (queued, running, dead, ...).
    Jobs(crate::cmd_daemon::JobsArgs),
    /// The audit trail: install, gen-triggers, baseline, timeline, show, export, purge, verify.
    Audit(crate::cmd_audit::AuditArgs),
    /// Commit greenness: ingest, drain, status, last-green, is-green, history.
    Greenness(crate::cmd_greenness::GreennessArgs),
    /// The whole product on bundled sample data, offline: every available collector, a greenness queue, next steps.
    Demo(crate::cmd_demo::DemoArgs),
    /// Print shell completions: `bdc completions bash > /etc/bash_completion.d/bdc`.
    Completions(crate::cmd_cli::CompletionsArgs),
    /// Print the man page (roff): `bdc manpage > bdc.1`.
    Manpage,
    /// The identity hub: list, show, merge, split, lock, unlock, suggest.
    Identities(crate::cmd_identities::IdentitiesArgs),
    /// Full-text search over everything collected (the embedded index: `bdc run search-index-sync` keeps it current).
    Search(crate::cmd_search::SearchArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Only print the schema version; change nothing.
    #[arg(long)]
    pub status: bool,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help (with a collector: that collector's own flags).
    #[arg(short = 'h', long = "help")]
    pub help: bool,
    /// Collector name (e.g. wg21-papers) or an original command name (e.g. run_wg21_paper_tracker).
    pub collector: Option<String>,
    /// Arguments for the collector (see `bdc run <collector> --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunScheduledArgs {
    /// Schedule YAML [default: $BOOST_COLLECTOR_SCHEDULE_YAML or config/boost_collector_schedule.yaml].
    #[arg(long)]
    pub schedule: Option<PathBuf>,
    /// Only this group.
    #[arg(long)]
    pub group: Option<String>,
    /// Fail before running anything if a command is unknown or not available, and exit non-zero if a task fails
    /// [default: $BOOST_COLLECTOR_SCHEDULE_STRICT].
    #[arg(long)]
    pub strict: bool,
    /// Day of week for weekly tasks, 0 = Monday .. 6 = Sunday [default: today, UTC].
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=6))]
    pub day_of_week: Option<u8>,
    /// Day of month for monthly tasks, 1..31 [default: today, UTC].
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=31))]
    pub day_of_month: Option<u8>,
    /// Interval tick: run only `interval` tasks whose `minutes` divide N.
    #[arg(long)]
    pub interval_minutes: Option<u32>,
    /// A new release was detected: also run `on_release` tasks.
    #[arg(long)]
    pub release_detected: bool,
    /// Evaluate the schedule as of this date (YYYY-MM-DD) instead of today.
    #[arg(long)]
    pub date: Option<chrono::NaiveDate>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct ActivityArgs {
    /// Source system (github, git, mailing-list, wg21, ...).
    #[arg(long)]
    pub source: Option<String>,
    /// Record kind (paper, issue, ...).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only records that occurred at or after T (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_parser = crate::output::parse_time)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only records that occurred before T (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_parser = crate::output::parse_time)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Only records by this actor.
    #[arg(long)]
    pub actor: Option<String>,
    /// Only records of this person (identity id, address or login), across sources.
    #[arg(long, conflicts_with = "actor")]
    pub person: Option<String>,
    /// At most N records.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Print only the number of matching records.
    #[arg(long)]
    pub count: bool,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only runs of this collector (name or alias).
    #[arg(long)]
    pub collector: Option<String>,
    /// Only runs with this status: running, success, failed, not_available.
    #[arg(long, value_parser = ["running", "success", "failed", "not_available"])]
    pub status: Option<String>,
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: $BDC_BIND or 127.0.0.1:8000].
    #[arg(long)]
    pub bind: Option<SocketAddr>,
    /// Schedule YAML whose groups /health/ reports [default: $BOOST_COLLECTOR_SCHEDULE_YAML].
    #[arg(long)]
    pub schedule: Option<PathBuf>,
    /// Worker tasks in this process (0 = serve HTTP only).
    #[arg(long, default_value_t = 1)]
    pub workers: u32,
    /// Do not run the scheduler in this process.
    #[arg(long)]
    pub no_scheduler: bool,
}
