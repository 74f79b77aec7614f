//! `bdc audit as-of | history | verify-chain | checkpoint | verify-export`
//! and `export --with-hashes`: time travel and tamper evidence (see
//! docs/audit.md).

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use bdc_audit::AuditError;
use bdc_audit::asof::{self, ColumnFilter, RowState};
use bdc_audit::chain::{self, Checkpoint, VerifyFrom, VerifyReport};
use bdc_audit::query::ExportFormat;
use bdc_config::Config;
use clap::{Args, ValueEnum};

use crate::cmd_audit::{ExportArgs, TimelineFormat, connect_ready};
use crate::commands::UsageError;

/// Bad input (a hostile key, an uncovered table, a future time, a bad
/// checkpoint) is a usage error: exit 2, nothing written.
fn usage(e: AuditError) -> anyhow::Error {
    match e {
        AuditError::InvalidFilter { .. }
        | AuditError::NoSuchTable { .. }
        | AuditError::NoPrimaryKey { .. } => UsageError(e.to_string()).into(),
        other => other.into(),
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AsOfFormat {
    Json,
    Ndjson,
    Csv,
}

#[derive(Debug, Args)]
pub struct AsOfArgs {
    /// The covered table.
    #[arg(long)]
    pub table: String,
    /// The row's primary key as a JSON object, e.g. '{"id": 7}'; without it, the whole table.
    #[arg(long)]
    pub pk: Option<String>,
    /// The time (RFC 3339 or YYYY-MM-DD, UTC); not in the future.
    #[arg(long, value_parser = crate::output::parse_time)]
    pub at: chrono::DateTime<chrono::Utc>,
    /// Whole table only: rows whose column equals a value, COLUMN=VALUE (compared as text).
    #[arg(long = "where", value_name = "COLUMN=VALUE")]
    pub where_: Option<String>,
    /// json (one row, the default with --pk), ndjson (table, the default) or csv (table).
    #[arg(long, value_enum)]
    pub format: Option<AsOfFormat>,
    /// Write the table to this file instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

pub async fn as_of(config: &Config, a: AsOfArgs) -> Result<ExitCode> {
    asof::check_not_future(a.at).map_err(usage)?;
    if let Some(pk) = &a.pk {
        if a.where_.is_some() {
            return Err(
                UsageError("--where applies to a whole table, not with --pk".into()).into(),
            );
        }
        if matches!(a.format, Some(AsOfFormat::Csv | AsOfFormat::Ndjson)) {
            return Err(UsageError("one row (--pk) prints JSON: use --format json".into()).into());
        }
        let storage = connect_ready(config).await?;
        let r = asof::row_as_of(&storage, &a.table, pk, a.at)
            .await
            .map_err(usage)?;
        storage.close().await;
        println!("{}", serde_json::to_string_pretty(&r)?);
        if r.state != RowState::Exists {
            eprintln!("{}", r.message);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let format = match a.format {
        None | Some(AsOfFormat::Ndjson) => ExportFormat::Ndjson,
        Some(AsOfFormat::Csv) => ExportFormat::Csv,
        Some(AsOfFormat::Json) => {
            return Err(UsageError(
                "a whole table streams as --format ndjson or csv (json is for one row, --pk)"
                    .into(),
            )
            .into());
        }
    };
    let filter = match &a.where_ {
        Some(w) => {
            let Some((c, v)) = w.split_once('=') else {
                return Err(UsageError(format!("--where {w:?}: expected COLUMN=VALUE")).into());
            };
            Some(ColumnFilter {
                column: c.trim().to_owned(),
                value: v.to_owned(),
            })
        }
        None => None,
    };
    let storage = connect_ready(config).await?;
    // Validate everything before creating an output file.
    asof::covered_table(&storage, &a.table)
        .await
        .map_err(usage)?;
    let n = match &a.output {
        Some(path) => {
            let tmp = path.with_extension("partial");
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            let n = asof::table_as_of(&storage, &a.table, a.at, filter.as_ref(), format, file)
                .await
                .map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    usage(e)
                })?;
            std::fs::rename(&tmp, path)
                .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
            n
        }
        None => asof::table_as_of(
            &storage,
            &a.table,
            a.at,
            filter.as_ref(),
            format,
            std::io::stdout(),
        )
        .await
        .map_err(usage)?,
    };
    storage.close().await;
    eprintln!("{n} rows of {} as of {}", a.table, a.at.to_rfc3339());
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[arg(long)]
    pub table: String,
    /// The row's primary key as a JSON object, e.g. '{"id": 7}'.
    #[arg(long)]
    pub pk: String,
    /// At most the N newest versions.
    #[arg(long, default_value_t = 1000)]
    pub limit: u64,
    #[arg(long, value_enum, default_value_t = TimelineFormat::Table)]
    pub format: TimelineFormat,
}

pub async fn history(config: &Config, a: HistoryArgs) -> Result<ExitCode> {
    let storage = connect_ready(config).await?;
    let versions = asof::history(&storage, &a.table, &a.pk, a.limit)
        .await
        .map_err(usage)?;
    storage.close().await;
    let mut out = std::io::stdout().lock();
    match a.format {
        TimelineFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&versions)?)?,
        TimelineFormat::Table => {
            for v in &versions {
                writeln!(
                    out,
                    "change {} (transaction {}) at {} by {}: {}{}",
                    v.change_id,
                    v.transaction_id,
                    v.occurred_at,
                    v.actor
                        .as_ref()
                        .map(|a| a.to_string())
                        .unwrap_or_else(|| "(no actor)".into()),
                    v.op,
                    if v.baseline { " (baseline)" } else { "" }
                )?;
                for d in &v.diff {
                    writeln!(out, "  {}: {} -> {}", d.column, d.before, d.after)?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_checkpoint(path: &Path) -> Result<Checkpoint> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the checkpoint {}", path.display()))
        .map_err(|e| UsageError(format!("{e:#}")))?;
    Checkpoint::parse(&text, &path.display().to_string()).map_err(usage)
}

#[derive(Debug, Args)]
pub struct VerifyChainArgs {
    /// Only links of transactions at or after T (trusting the first one's prev_hash).
    #[arg(long, value_parser = crate::output::parse_time)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// A checkpoint file (`bdc audit checkpoint -o`): its signature must hold and the chain must still contain its head.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = TimelineFormat::Table)]
    pub format: TimelineFormat,
}

fn print_report(r: &VerifyReport, format: TimelineFormat) -> Result<ExitCode> {
    match format {
        TimelineFormat::Json => println!("{}", serde_json::to_string_pretty(r)?),
        TimelineFormat::Table => {
            println!(
                "checked {} links ({} changes), positions {}..{}, from {}, in {:.3} s; head {}",
                r.links, r.changes, r.from_seq, r.to_seq, r.anchor, r.seconds, r.head_hash
            );
            if r.ok {
                println!("chain intact");
            }
        }
    }
    match &r.first_break {
        None => Ok(ExitCode::SUCCESS),
        Some(b) => {
            eprintln!(
                "error: broken link at position {}{}: {}",
                b.seq,
                b.transaction_id
                    .map(|t| format!(" (audit transaction {t})"))
                    .unwrap_or_default(),
                b.reason
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

pub async fn verify_chain(config: &Config, a: VerifyChainArgs) -> Result<ExitCode> {
    let checkpoint = a.checkpoint.as_deref().map(read_checkpoint).transpose()?;
    let storage = connect_ready(config).await?;
    let r = chain::verify(
        &storage,
        &VerifyFrom {
            since: a.since,
            checkpoint,
        },
    )
    .await
    .map_err(usage)?;
    storage.close().await;
    print_report(&r, a.format)
}

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// Also write the checkpoint to this file (keep it somewhere the database's owners cannot write).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

pub async fn checkpoint(config: &Config, a: CheckpointArgs) -> Result<ExitCode> {
    let key_hex = std::env::var(chain::SIGNING_KEY_ENV).map_err(|_| {
        UsageError(format!(
            "{} is not set: an Ed25519 secret key as 64 hex digits (generate one with `openssl rand -hex 32`)",
            chain::SIGNING_KEY_ENV
        ))
    })?;
    let key = chain::signing_key_from_hex(&key_hex).map_err(usage)?;
    let storage = connect_ready(config).await?;
    let cp = chain::checkpoint(&storage, &key).await?;
    storage.close().await;
    let text = serde_json::to_string_pretty(&cp)?;
    if let Some(path) = &a.output {
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, format!("{text}\n"))
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        eprintln!("checkpoint written to {}", path.display());
    }
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct VerifyExportArgs {
    /// An NDJSON file written by `bdc audit export --with-hashes`.
    pub file: PathBuf,
    /// A checkpoint the export must contain.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = TimelineFormat::Table)]
    pub format: TimelineFormat,
}

pub fn verify_export(a: VerifyExportArgs) -> Result<ExitCode> {
    let checkpoint = a.checkpoint.as_deref().map(read_checkpoint).transpose()?;
    let file = std::fs::File::open(&a.file)
        .with_context(|| format!("opening {}", a.file.display()))
        .map_err(|e| UsageError(format!("{e:#}")))?;
    let r = chain::verify_export(BufReader::new(file), checkpoint.as_ref())?;
    print_report(&r, a.format)
}

pub async fn export_with_hashes(config: &Config, a: ExportArgs) -> Result<ExitCode> {
    let f = &a.filter;
    if f.table.is_some()
        || f.pk.is_some()
        || f.actor_type.is_some()
        || f.actor_id.is_some()
        || f.action.is_some()
        || f.until.is_some()
        || f.transaction.is_some()
        || a.max_rows.is_some()
        || a.dry_run
    {
        return Err(UsageError(
            "--with-hashes exports whole transactions in chain order: only --since applies".into(),
        )
        .into());
    }
    if !matches!(a.format, crate::cmd_audit::ExportFormatArg::Ndjson) {
        return Err(UsageError("--with-hashes needs --format ndjson".into()).into());
    }
    let storage = connect_ready(config).await?;
    let n = match &a.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            chain::export_chain(&storage, f.since, file).await?
        }
        None => chain::export_chain(&storage, f.since, std::io::stdout()).await?,
    };
    storage.close().await;
    eprintln!("exported {n} chain links");
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct RevertArgs {
    /// The audit transaction to undo (`bdc audit timeline` / `show`).
    pub transaction: i64,
    /// Print the compensating writes and any conflicts; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply even when later transactions changed the same rows (their changes are overwritten).
    #[arg(long)]
    pub force: bool,
    #[arg(long, value_enum, default_value_t = TimelineFormat::Table)]
    pub format: TimelineFormat,
}

pub async fn revert(
    config: &Config,
    cfg: &bdc_audit::AuditConfig,
    a: RevertArgs,
) -> Result<ExitCode> {
    let storage = connect_ready(config).await?;
    let plan = bdc_audit::revert::revert(&storage, cfg, a.transaction, a.force, true)
        .await
        .map_err(usage)?;
    let refused = !plan.conflicts.is_empty() && !a.force;
    let plan = if a.dry_run || refused {
        plan
    } else {
        bdc_audit::revert::revert(&storage, cfg, a.transaction, a.force, false)
            .await
            .map_err(usage)?
    };
    storage.close().await;
    match a.format {
        TimelineFormat::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
        TimelineFormat::Table => {
            println!(
                "{} audit transaction {}: {} compensating write(s)",
                if plan.applied {
                    "reverted"
                } else {
                    "plan to revert"
                },
                plan.transaction_id,
                plan.steps.len()
            );
            for st in &plan.steps {
                println!("  {} {} {} {}", st.action, st.table, st.pk, st.values);
            }
            if let Some(t) = plan.revert_transaction_id {
                println!("recorded as audit transaction {t} (action audit.revert)");
            }
        }
    }
    for c in &plan.conflicts {
        eprintln!(
            "conflict: {} {} was changed later by audit transaction(s) {:?}",
            c.table, c.pk, c.later_transactions
        );
    }
    if refused && !a.dry_run {
        eprintln!(
            "error: refused: later transactions changed the same rows (nothing written; --force overwrites them)"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
