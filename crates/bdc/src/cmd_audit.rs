//! `bdc audit ...`: the audit trail's commands (see docs/audit.md).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use bdc_audit::AuditConfig;
use bdc_audit::query::{self, ExportFormat, TimelineFilter};
use bdc_audit::retention::{self, PurgeOptions};
use bdc_audit::triggers;
use bdc_config::Config;
use bdc_core::Actor;
use bdc_storage::{ConnectOptions, Storage, redact_url};
use clap::{Args, Subcommand, ValueEnum};

use crate::commands::UsageError;
use crate::output::{table, truncate};

/// Default location of the audit configuration.
pub const DEFAULT_CONFIG: &str = "config/audit.yaml";

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Audit configuration YAML [default: $BDC_AUDIT_CONFIG, or config/audit.yaml when it exists].
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Create the audit schema and cover the configured tables (idempotent).
    Install,
    /// Generate and install the capture triggers of tables (idempotent).
    #[command(name = "gen-triggers")]
    GenTriggers(GenTriggersArgs),
    /// Record a baseline of a table: one synthetic change per existing row.
    Baseline(BaselineArgs),
    /// Show captured changes, newest first.
    Timeline(TimelineArgs),
    /// Drill down into one audit transaction: its actor, actions and changes.
    Show(ShowArgs),
    /// Stream captured changes as CSV or NDJSON.
    Export(ExportArgs),
    /// Delete audit history older than the retention policy (dry run unless --execute).
    Purge(PurgeArgs),
    /// Check that tables are captured; exits 1 naming every table without (current) capture.
    Verify(VerifyArgs),
    /// Expand pending captures into audit_changes now (reads and daemons do it on their own); exits 1 when captures were set aside in audit_pending_failed.
    Flush,
    /// A row (--pk) or a whole table as it was at a time, reconstructed from the trail.
    #[command(name = "as-of")]
    AsOf(crate::cmd_audit_chain::AsOfArgs),
    /// Every captured version of one row, with the difference between consecutive versions.
    History(crate::cmd_audit_chain::HistoryArgs),
    /// Recompute the hash chain; exits 1 naming the first broken link.
    #[command(name = "verify-chain")]
    VerifyChain(crate::cmd_audit_chain::VerifyChainArgs),
    /// Sign the chain head with BDC_AUDIT_SIGNING_KEY (Ed25519) and print (or write) the checkpoint.
    Checkpoint(crate::cmd_audit_chain::CheckpointArgs),
    /// Undo one audit transaction with compensating writes (one transaction, action audit.revert); --dry-run prints the plan.
    Revert(crate::cmd_audit_chain::RevertArgs),
    /// Recorded schema states of covered tables (coverage, ALTER TABLE, DROP TABLE), oldest first.
    #[command(name = "schema-history")]
    SchemaHistory(SchemaHistoryArgs),
    /// Verify a chain export (export --with-hashes) offline, without a database; exits 1 on a break.
    #[command(name = "verify-export")]
    VerifyExport(crate::cmd_audit_chain::VerifyExportArgs),
}

#[derive(Debug, Args)]
pub struct GenTriggersArgs {
    /// Table to cover (repeatable).
    #[arg(long = "table", required_unless_present = "all_covered")]
    pub tables: Vec<String>,
    /// Every table of the configuration (platform tables + `tables`).
    #[arg(long, conflicts_with = "tables")]
    pub all_covered: bool,
    /// Print the SQL and the difference to what is installed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct BaselineArgs {
    #[arg(long)]
    pub table: String,
}

#[derive(Debug, Args, Clone)]
pub struct FilterArgs {
    /// Only changes of this table.
    #[arg(long)]
    pub table: Option<String>,
    /// Only the row with this primary key (JSON object, e.g. '{"id": 7}').
    #[arg(long)]
    pub pk: Option<String>,
    /// Actor type: job, cli, http, system.
    #[arg(long)]
    pub actor_type: Option<String>,
    /// Actor id: collector, user, caller or component.
    #[arg(long)]
    pub actor_id: Option<String>,
    /// Semantic action name (e.g. retention.purge).
    #[arg(long)]
    pub action: Option<String>,
    /// Only transactions at or after T (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_parser = crate::output::parse_time)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only transactions before T (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_parser = crate::output::parse_time)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Only this audit transaction.
    #[arg(long)]
    pub transaction: Option<i64>,
}

impl FilterArgs {
    fn filter(&self) -> TimelineFilter {
        TimelineFilter {
            table: self.table.clone(),
            pk: self.pk.clone(),
            actor_type: self.actor_type.clone(),
            actor_id: self.actor_id.clone(),
            action: self.action.clone(),
            since: self.since,
            until: self.until,
            transaction_id: self.transaction,
            cursor: None,
            limit: None,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TimelineFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct TimelineArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// At most N changes.
    #[arg(long, default_value_t = 50)]
    pub limit: u64,
    /// Only changes older than this cursor (the `next_cursor` of the previous page).
    #[arg(long)]
    pub cursor: Option<i64>,
    #[arg(long, value_enum, default_value_t = TimelineFormat::Table)]
    pub format: TimelineFormat,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Audit transaction id.
    pub transaction: i64,
    #[arg(long, value_enum, default_value_t = TimelineFormat::Table)]
    pub format: TimelineFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormatArg {
    Csv,
    Ndjson,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    #[arg(long, value_enum)]
    pub format: ExportFormatArg,
    /// Stop after N rows.
    #[arg(long)]
    pub max_rows: Option<u64>,
    /// Only count the rows that would be exported.
    #[arg(long)]
    pub dry_run: bool,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Export the hash chain instead: one NDJSON line per audit transaction with its
    /// actions, changes and hashes (only --since applies); check it with `verify-export`.
    #[arg(long)]
    pub with_hashes: bool,
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Delete for real (also needs `retention.enabled: true`); default is a dry run.
    #[arg(long)]
    pub execute: bool,
    /// Rows per delete batch (one transaction each).
    #[arg(long, default_value_t = 10_000)]
    pub batch_size: u64,
    /// Stop after N batches.
    #[arg(long)]
    pub max_batches: Option<u64>,
}

#[derive(Debug, Args)]
pub struct SchemaHistoryArgs {
    /// Only this table.
    #[arg(long)]
    pub table: Option<String>,
    #[arg(long, value_enum, default_value_t = TimelineFormat::Table)]
    pub format: TimelineFormat,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Table that must be captured (repeatable; added to the config's expected_tables).
    #[arg(long = "expected-table")]
    pub expected_tables: Vec<String>,
    #[arg(long, value_enum, default_value_t = TimelineFormat::Table)]
    pub format: TimelineFormat,
}

/// Load the audit configuration: `--config`, else `$BDC_AUDIT_CONFIG`, else
/// `config/audit.yaml` when it exists, else the defaults.
pub fn load_audit_config(explicit: Option<&Path>) -> Result<AuditConfig> {
    let from_env = std::env::var_os("BDC_AUDIT_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    match explicit.map(Path::to_path_buf).or(from_env) {
        Some(p) => Ok(AuditConfig::load(&p)?),
        None => {
            let p = Path::new(DEFAULT_CONFIG);
            if p.exists() {
                Ok(AuditConfig::load(p)?)
            } else {
                Ok(AuditConfig::default())
            }
        }
    }
}

async fn connect(config: &Config) -> Result<Storage> {
    Storage::connect(&config.database_url, &ConnectOptions::default())
        .await
        .with_context(|| format!("opening DATABASE_URL {}", redact_url(&config.database_url)))
}

pub(crate) async fn connect_ready(config: &Config) -> Result<Storage> {
    let storage = connect(config).await?;
    storage.ensure_parts(&crate::schema::parts()).await?;
    Ok(storage.with_actor(&Actor::cli_from_env()))
}

fn env_off(name: &str) -> bool {
    std::env::var(name)
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "0" | "false" | "no" | "off"
            )
        })
        .unwrap_or(false)
}

/// Called by `bdc migrate` after migrating: cover the platform's tables and
/// the configured ones (regenerating stale triggers), unless
/// `BDC_AUDIT_ON_MIGRATE=false`.
pub async fn after_migrate(storage: &Storage) -> Result<()> {
    if env_off("BDC_AUDIT_ON_MIGRATE") {
        println!("audit: coverage skipped (BDC_AUDIT_ON_MIGRATE is off)");
        return Ok(());
    }
    let cfg = load_audit_config(None)?;
    let writer = storage.with_actor(&Actor::system("migrate"));
    let covered = bdc_audit::cover_configured(&writer, &cfg).await?;
    let changed = covered.iter().filter(|c| c.changed).count();
    let baseline: u64 = covered.iter().map(|c| c.baseline_rows).sum();
    println!(
        "audit: {} tables covered ({changed} triggers (re)generated, {baseline} baseline rows)",
        covered.len()
    );
    Ok(())
}

/// The optional `audit_coverage` check of `/health/` (covered / uncovered
/// tables of the audit configuration; never changes `status`).
pub fn health_check(storage: Storage) -> bdc_server::ExtraCheck {
    let cfg = load_audit_config(None).map_err(|e| format!("{e:#}"));
    let cfg = std::sync::Arc::new(cfg);
    bdc_server::ExtraCheck {
        key: "audit_coverage".into(),
        run: std::sync::Arc::new(move || {
            let storage = storage.clone();
            let cfg = std::sync::Arc::clone(&cfg);
            Box::pin(async move {
                match cfg.as_ref() {
                    Ok(cfg) => bdc_audit::http::coverage_check(&storage, cfg).await,
                    Err(e) => serde_json::json!({"ok": false, "error": e}),
                }
            })
        }),
    }
}

/// The embedded SQLite database migrates itself on first use; give it the
/// capture `bdc migrate` would install too: (re)cover the configured tables
/// that are not (currently) covered. Best effort: a problem is logged, the
/// command goes on. PostgreSQL is covered by `bdc migrate` only.
pub async fn ensure_sqlite_coverage(storage: &Storage) {
    if storage.backend() != bdc_storage::Backend::Sqlite || env_off("BDC_AUDIT_ON_MIGRATE") {
        return;
    }
    let cfg = match load_audit_config(None) {
        Ok(cfg) => cfg,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "audit: configuration invalid; capture not checked");
            return;
        }
    };
    let tables = cfg.covered_tables();
    let report = match triggers::verify(storage, &cfg, &tables).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "audit: cannot check coverage");
            return;
        }
    };
    let todo: Vec<String> = report
        .into_iter()
        .filter(|(_, c)| {
            matches!(
                c,
                bdc_audit::Coverage::Missing | bdc_audit::Coverage::Stale(_)
            )
        })
        .map(|(t, _)| t)
        .collect();
    if todo.is_empty() {
        return;
    }
    let writer = storage.with_actor(&Actor::system("migrate"));
    match triggers::cover_tables(&writer, &cfg, &todo, false).await {
        Ok(done) => tracing::info!(tables = done.len(), "audit: SQLite tables covered"),
        Err(e) => tracing::warn!(error = %e, "audit: cannot cover tables"),
    }
}

pub async fn run(config: &Config, args: AuditArgs) -> Result<ExitCode> {
    let cfg = load_audit_config(args.config.as_deref())?;
    match args.command {
        AuditCommand::Install => {
            let storage = connect(config).await?;
            storage.migrate_parts(&crate::schema::parts()).await?;
            let writer = storage.with_actor(&Actor::cli_from_env());
            let covered = bdc_audit::cover_configured(&writer, &cfg).await?;
            println!("audit schema installed ({})", storage.backend());
            for c in &covered {
                println!(
                    "  {}: {}{}",
                    c.table,
                    if c.changed {
                        "triggers installed"
                    } else {
                        "up to date"
                    },
                    if c.baseline_rows > 0 {
                        format!(", baseline of {} rows", c.baseline_rows)
                    } else {
                        String::new()
                    }
                );
            }
            storage.close().await;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::GenTriggers(a) => {
            let storage = connect_ready(config).await?;
            let tables = if a.all_covered {
                cfg.covered_tables()
            } else {
                a.tables.clone()
            };
            let out = triggers::cover_tables(&storage, &cfg, &tables, a.dry_run).await?;
            for c in &out {
                if a.dry_run {
                    println!(
                        "-- table {}: {}",
                        c.table,
                        if c.changed {
                            "would change"
                        } else {
                            "up to date"
                        }
                    );
                    print!("{}", c.sql);
                    if c.changed && c.previous_sql.is_some() {
                        println!("-- difference to the installed triggers:");
                        for l in c.diff().lines() {
                            println!("-- {l}");
                        }
                    }
                } else {
                    println!(
                        "{}: {}{}",
                        c.table,
                        if c.changed {
                            "triggers installed"
                        } else {
                            "up to date"
                        },
                        if c.baseline_rows > 0 {
                            format!(", baseline of {} rows", c.baseline_rows)
                        } else {
                            String::new()
                        }
                    );
                }
            }
            storage.close().await;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Baseline(a) => {
            let storage = connect_ready(config).await?;
            let n = triggers::baseline(&storage, &cfg, &a.table).await?;
            println!("{}: baseline of {n} rows recorded", a.table);
            storage.close().await;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Timeline(a) => {
            let storage = connect_ready(config).await?;
            let mut filter = a.filter.filter();
            filter.limit = Some(a.limit);
            filter.cursor = a.cursor;
            let page = query::timeline(&storage, &filter).await?;
            storage.close().await;
            print_changes(&page.items, a.format, page.next_cursor)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Show(a) => {
            let storage = connect_ready(config).await?;
            let detail = query::transaction_changes(&storage, a.transaction).await?;
            storage.close().await;
            let Some(detail) = detail else {
                return Err(UsageError(format!("no audit transaction {}", a.transaction)).into());
            };
            match a.format {
                TimelineFormat::Json => {
                    println!("{}", serde_json::to_string_pretty(&detail)?);
                }
                TimelineFormat::Table => {
                    println!(
                        "transaction {} at {} by {} {}",
                        detail.transaction_id,
                        detail.occurred_at.as_deref().unwrap_or("?"),
                        detail
                            .actor
                            .as_ref()
                            .map(|a| a.to_string())
                            .unwrap_or_else(|| "(no actor)".into()),
                        detail
                            .action
                            .as_deref()
                            .map(|a| format!("action {a}"))
                            .unwrap_or_default()
                    );
                    for act in &detail.actions {
                        println!(
                            "  action {} ({}){}",
                            act.name,
                            act.status,
                            act.reason
                                .as_deref()
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default()
                        );
                    }
                    print_changes(&detail.changes, TimelineFormat::Table, None)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export(a) if a.with_hashes => {
            crate::cmd_audit_chain::export_with_hashes(config, a).await
        }
        AuditCommand::Export(a) => export(config, a).await,
        AuditCommand::AsOf(a) => crate::cmd_audit_chain::as_of(config, a).await,
        AuditCommand::History(a) => crate::cmd_audit_chain::history(config, a).await,
        AuditCommand::VerifyChain(a) => crate::cmd_audit_chain::verify_chain(config, a).await,
        AuditCommand::Checkpoint(a) => crate::cmd_audit_chain::checkpoint(config, a).await,
        AuditCommand::VerifyExport(a) => crate::cmd_audit_chain::verify_export(a),
        AuditCommand::Revert(a) => crate::cmd_audit_chain::revert(config, &cfg, a).await,
        AuditCommand::SchemaHistory(a) => {
            let storage = connect_ready(config).await?;
            let rows = bdc_audit::query::schema_history(&storage, a.table.as_deref()).await?;
            storage.close().await;
            match a.format {
                TimelineFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
                TimelineFormat::Table => {
                    let body: Vec<Vec<String>> = rows
                        .iter()
                        .map(|r| {
                            let cols = r
                                .columns
                                .as_array()
                                .map(|c| {
                                    c.iter()
                                        .map(|c| {
                                            format!(
                                                "{} {}",
                                                c["name"].as_str().unwrap_or("?"),
                                                c["type"].as_str().unwrap_or("")
                                            )
                                        })
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                })
                                .unwrap_or_default();
                            vec![
                                r.transaction_id
                                    .map_or_else(|| "-".to_owned(), |t| t.to_string()),
                                r.occurred_at.clone(),
                                r.action.clone(),
                                r.table.clone(),
                                truncate(&cols, 80),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        table(&["TX", "AT", "ACTION", "TABLE", "COLUMNS AFTER"], &body)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Flush => {
            let storage = connect_ready(config).await?;
            let n = bdc_audit::flush(&storage).await?;
            println!("{n} pending change(s) expanded into audit_changes");
            let (rows, changes) = bdc_audit::pending::failed(&storage).await?;
            storage.close().await;
            if rows > 0 {
                eprintln!(
                    "warning: {rows} capture(s) ({changes} change(s)) could not be expanded and are kept \
                     in audit_pending_failed with their error (docs/audit.md, \"Pending captures\")"
                );
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Purge(a) => {
            let storage = connect_ready(config).await?;
            let report = retention::purge(
                &storage,
                &cfg.retention,
                &PurgeOptions {
                    execute: a.execute,
                    batch_size: a.batch_size,
                    max_batches: a.max_batches,
                    now: None,
                },
            )
            .await?;
            storage.close().await;
            if report.executed {
                println!(
                    "purged {} changes and {} transactions older than {} in {} batches{}",
                    report.deleted_changes,
                    report.deleted_transactions,
                    report.cutoff,
                    report.batches,
                    if report.stopped_early {
                        " (stopped at --max-batches; run again)"
                    } else {
                        ""
                    }
                );
            } else {
                println!(
                    "dry run: {} changes are older than their cutoff (global cutoff {}); nothing deleted: {}",
                    report.eligible_changes,
                    report.cutoff,
                    report.dry_run_reason.as_deref().unwrap_or("")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify(a) => {
            let storage = connect_ready(config).await?;
            let mut tables = cfg.expected_tables.clone();
            tables.extend(a.expected_tables.iter().cloned());
            if tables.is_empty() {
                tables = cfg.covered_tables();
            }
            tables.sort();
            tables.dedup();
            let report = triggers::verify(&storage, &cfg, &tables).await?;
            let schema = triggers::schema_capture(&storage).await?;
            storage.close().await;
            let bad: Vec<&(String, bdc_audit::Coverage)> =
                report.iter().filter(|(_, c)| !c.is_covered()).collect();
            match a.format {
                TimelineFormat::Json => {
                    let v: Vec<serde_json::Value> = report
                        .iter()
                        .map(|(t, c)| serde_json::json!({"table": t, "coverage": c}))
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
                TimelineFormat::Table => {
                    for (t, c) in &report {
                        let text = match c {
                            bdc_audit::Coverage::Covered => "covered".to_owned(),
                            bdc_audit::Coverage::Missing => {
                                "NOT covered: no audit trigger".to_owned()
                            }
                            bdc_audit::Coverage::Stale(d) => format!("STALE: {d}"),
                            bdc_audit::Coverage::NoTable => {
                                "NOT covered: table does not exist".to_owned()
                            }
                            bdc_audit::Coverage::Invalid(d) => format!("NOT covered: {d}"),
                        };
                        println!("{t}: {text}");
                    }
                    let text = match &schema {
                        triggers::SchemaCapture::EventTriggers => {
                            "captured by event triggers (ALTER TABLE, DROP TABLE)".to_owned()
                        }
                        triggers::SchemaCapture::OnRegeneration(d) => d.clone(),
                        triggers::SchemaCapture::Tampered(d) => format!("TAMPERED: {d}"),
                    };
                    println!("schema changes: {text}");
                }
            }
            if let triggers::SchemaCapture::Tampered(d) = &schema {
                eprintln!("error: schema-change capture: {d}");
                return Ok(ExitCode::FAILURE);
            }
            if bad.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                let names: Vec<&str> = bad.iter().map(|(t, _)| t.as_str()).collect();
                eprintln!(
                    "error: tables without (current) audit capture: {}",
                    names.join(", ")
                );
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

fn print_changes(
    rows: &[query::ChangeRow],
    format: TimelineFormat,
    next_cursor: Option<i64>,
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        TimelineFormat::Json => {
            let v = serde_json::json!({"items": rows, "next_cursor": next_cursor});
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        TimelineFormat::Table => {
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.change_id.to_string(),
                        r.transaction_id.to_string(),
                        truncate(&r.occurred_at, 23),
                        match (&r.actor_type, &r.actor_id) {
                            (Some(t), Some(i)) => truncate(&format!("{t}:{i}"), 28),
                            (Some(t), None) => t.clone(),
                            _ => "-".into(),
                        },
                        r.action.clone().unwrap_or_else(|| "-".into()),
                        truncate(&r.table_name, 24),
                        truncate(&r.pk.to_string(), 24),
                        if r.baseline {
                            format!("{} (baseline)", r.op)
                        } else {
                            r.op.clone()
                        },
                        truncate(
                            &r.changed_fields
                                .as_ref()
                                .map(|f| f.to_string())
                                .unwrap_or_default(),
                            40,
                        ),
                    ]
                })
                .collect();
            write!(
                out,
                "{}",
                table(
                    &[
                        "CHANGE",
                        "TX",
                        "OCCURRED (UTC)",
                        "ACTOR",
                        "ACTION",
                        "TABLE",
                        "PK",
                        "OP",
                        "CHANGED"
                    ],
                    &body
                )
            )?;
            if let Some(c) = next_cursor {
                writeln!(out, "(more: --cursor {c})")?;
            }
        }
    }
    Ok(())
}

async fn export(config: &Config, a: ExportArgs) -> Result<ExitCode> {
    let storage = connect_ready(config).await?;
    let filter = a.filter.filter();
    let total = query::count(&storage, &filter).await?;
    let total = a.max_rows.map_or(total, |m| total.min(m));
    if a.dry_run {
        println!("{total} changes would be exported");
        storage.close().await;
        return Ok(ExitCode::SUCCESS);
    }
    let format = match a.format {
        ExportFormatArg::Csv => ExportFormat::Csv,
        ExportFormatArg::Ndjson => ExportFormat::Ndjson,
    };
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(total);
        b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        Some(b)
    } else {
        None
    };
    let progress = |n: u64| {
        if let Some(b) = &bar {
            b.set_position(n);
        }
    };
    let n = match &a.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            query::export(&storage, &filter, format, a.max_rows, file, progress).await?
        }
        None => {
            let stdout = std::io::stdout();
            query::export(&storage, &filter, format, a.max_rows, stdout, progress).await?
        }
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    eprintln!("exported {n} changes");
    storage.close().await;
    Ok(ExitCode::SUCCESS)
}
