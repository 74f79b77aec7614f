//! One function per subcommand.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bdc_collector::scheduled::{ScheduledOptions, TaskOutcome, run_scheduled};
use bdc_collector::{CATALOG, RunReport, RunRequest, Runner};
use bdc_config::Config;
use bdc_core::Actor;
use bdc_schedule::{DueContext, Schedule};
use bdc_storage::activity::ActivityFilter;
use bdc_storage::runs::{RunFilter, RunStatus};
use bdc_storage::{ConnectOptions, Storage, redact_url};
use chrono::Utc;

use crate::cli::{
    ActivityArgs, Command, MigrateArgs, OutputFormat, RunArgs, RunScheduledArgs, RunsArgs,
    ServeArgs,
};
use crate::output::{table, truncate};

/// An error in how bdc was invoked or configured (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Exit code for an error that reached `main`: 2 for usage and
/// configuration errors, 1 otherwise.
pub fn exit_code_for(e: &anyhow::Error) -> u8 {
    let usage = e.chain().any(|c| {
        c.is::<UsageError>()
            || c.is::<bdc_config::ConfigError>()
            || c.is::<bdc_schedule::ScheduleError>()
    });
    if usage { 2 } else { 1 }
}

pub async fn dispatch(command: Command) -> Result<ExitCode> {
    // Needs no configuration (works with a broken .env or no database).
    match command {
        Command::Completions(args) => return crate::cmd_cli::completions(args),
        Command::Manpage => return crate::cmd_cli::manpage(),
        _ => {}
    }
    let config = Arc::new(load_config()?);
    match command {
        Command::Migrate(args) => migrate(&config, args).await,
        Command::Run(args) => run(config, args).await,
        Command::RunScheduled(args) => run_scheduled_cmd(config, args).await,
        Command::Activity(args) => activity(&config, args).await,
        Command::Runs(args) => runs(&config, args).await,
        Command::Collectors => collectors(),
        Command::Serve(args) => serve(config, args).await,
        Command::Worker(args) => crate::cmd_daemon::worker(config, args).await,
        Command::Scheduler(args) => crate::cmd_daemon::scheduler(config, args).await,
        Command::Jobs(args) => crate::cmd_daemon::jobs(&config, args).await,
        Command::Audit(args) => crate::cmd_audit::run(&config, args).await,
        Command::Greenness(args) => crate::cmd_greenness::run(&config, args).await,
        Command::Demo(args) => crate::cmd_demo::run(config, args).await,
        Command::Completions(_) | Command::Manpage => Ok(ExitCode::SUCCESS),
        Command::Identities(args) => crate::cmd_identities::run(&config, args).await,
        Command::Search(args) => crate::cmd_search::run(&config, args).await,
    }
}

fn load_config() -> Result<Config> {
    let config = Config::from_env()?;
    for var in &config.ignored_present {
        tracing::warn!(
            variable = var,
            "{var} is a setting of the original Django/Celery deployment and is ignored by bdc"
        );
    }
    Ok(config)
}

async fn connect(config: &Config) -> Result<Storage> {
    let storage = Storage::connect(&config.database_url, &ConnectOptions::default())
        .await
        .with_context(|| format!("opening DATABASE_URL {}", redact_url(&config.database_url)))?;
    Ok(storage)
}

/// Connect, make sure every schema part is usable, and write as the CLI
/// user (collector runs switch to their job actor).
pub(crate) async fn connect_ready(config: &Config) -> Result<Storage> {
    let storage = connect(config).await?;
    storage.ensure_parts(&crate::schema::parts()).await?;
    crate::cmd_audit::ensure_sqlite_coverage(&storage).await;
    Ok(storage.with_actor(&Actor::cli_from_env()))
}

async fn migrate(config: &Config, args: MigrateArgs) -> Result<ExitCode> {
    let storage = connect(config).await?;
    if args.status {
        for part in std::iter::once(&bdc_storage::schema::FOUNDATION).chain(crate::schema::parts())
        {
            let applied = storage.part_version(part).await?;
            let known = part.latest();
            println!(
                "{} schema part {}: version {applied}; this binary knows up to {known}{}",
                storage.backend(),
                part.name,
                if applied < known {
                    " (run `bdc migrate`)"
                } else if applied > known {
                    " (the database is NEWER than this binary)"
                } else {
                    ""
                }
            );
        }
        if let Some(my) = crate::cmd_greenness::mysql_store().await? {
            let applied = my
                .version()
                .await
                .context("reading the greenness MySQL schema")?;
            let known = bdc_greenness::store::mysql::MySqlStore::latest();
            println!(
                "mysql schema part greenness: version {applied}; this binary knows up to {known}{}",
                if applied < known {
                    " (run `bdc migrate`)"
                } else {
                    ""
                }
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let reports = storage.migrate_parts(&crate::schema::parts()).await?;
    for report in reports {
        if report.applied.is_empty() {
            println!(
                "{} schema part {} is up to date (version {})",
                report.backend, report.part, report.after
            );
        } else {
            println!(
                "{} schema part {} migrated from version {} to {} (applied {:?})",
                report.backend, report.part, report.before, report.after, report.applied
            );
        }
    }
    crate::cmd_audit::after_migrate(&storage).await?;
    // BDC_GREENNESS_DATABASE_URL=mysql://…: the greenness tables live there.
    if let Some(my) = crate::cmd_greenness::mysql_store().await? {
        let applied = my
            .migrate()
            .await
            .context("migrating the greenness MySQL tables")?;
        let version = bdc_greenness::store::mysql::MySqlStore::latest();
        if applied.is_empty() {
            println!("mysql schema part greenness is up to date (version {version})");
        } else {
            println!(
                "mysql schema part greenness migrated to version {version} (applied {applied:?})"
            );
        }
    }
    storage.close().await;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn runner(config: Arc<Config>, storage: Storage) -> Runner {
    Runner {
        registry: crate::collectors::registry(),
        storage,
        config,
        worker_id: None,
        interactive: std::io::stderr().is_terminal(),
    }
}

fn counts_text(counts: &std::collections::BTreeMap<String, u64>) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn known_names() -> String {
    CATALOG
        .iter()
        .map(|e| e.name)
        .collect::<Vec<_>>()
        .join(", ")
}

async fn run(config: Arc<Config>, args: RunArgs) -> Result<ExitCode> {
    let (collector, args) = match crate::cmd_cli::precheck_run(args) {
        crate::cmd_cli::RunPrecheck::Run { collector, args } => (collector, args),
        crate::cmd_cli::RunPrecheck::Exit(code) => return Ok(code),
    };
    let storage = connect_ready(&config).await?;
    let runner = runner(config, storage.clone());
    let report = runner
        .run(&RunRequest {
            command: collector,
            args,
            schedule_group: None,
            slot_task: None,
        })
        .await?;
    bdc_audit::pending::flush_best_effort(&storage).await;
    storage.close().await;
    match report {
        RunReport::Succeeded {
            run_id,
            collector,
            result,
        } => {
            println!(
                "{collector}: success (run {run_id}) {}",
                counts_text(result.counts())
            );
            Ok(ExitCode::SUCCESS)
        }
        RunReport::Failed {
            run_id,
            collector,
            phase,
            category,
            error,
        } => {
            eprintln!(
                "{collector}: failed in {} ({category}) (run {run_id}): {error}",
                phase.as_str()
            );
            Ok(ExitCode::FAILURE)
        }
        RunReport::NotAvailable { run_id, name } => {
            eprintln!("{name}: not available in this build (recorded as run {run_id})");
            Ok(ExitCode::FAILURE)
        }
        RunReport::Unknown { command } => Err(UsageError(format!(
            "unknown collector {command:?}; known collectors: {}",
            known_names()
        ))
        .into()),
    }
}

pub(crate) fn schedule_path(config: &Config, arg: Option<PathBuf>) -> PathBuf {
    arg.unwrap_or_else(|| config.schedule_yaml.clone())
}

async fn run_scheduled_cmd(config: Arc<Config>, args: RunScheduledArgs) -> Result<ExitCode> {
    let path = schedule_path(&config, args.schedule);
    let schedule = Schedule::from_path(&path)?;
    let date = args.date.unwrap_or_else(|| Utc::now().date_naive());
    let mut due = DueContext::for_date(date, args.interval_minutes, args.release_detected);
    if let Some(d) = args.day_of_week {
        due.day_of_week = d;
    }
    if let Some(d) = args.day_of_month {
        due.day_of_month = d;
        // An explicit day past this month's end (e.g. 31 in November) means
        // that day: a `day_of_month: 31` task is then due.
        due.days_in_month = due.days_in_month.max(d);
    }
    let strict = args.strict || config.schedule_strict;
    let storage = connect_ready(&config).await?;
    let runner = runner(Arc::clone(&config), storage.clone());
    let opts = ScheduledOptions {
        group: args.group,
        strict,
        due,
        file_label: path.display().to_string(),
        kinds: None,
        slot_key: None,
    };
    tracing::info!(
        schedule = %path.display(),
        group = opts.group.as_deref().unwrap_or("*"),
        strict,
        date = %date,
        weekday = due.day_of_week,
        day = due.day_of_month,
        interval_minutes = ?due.interval_minutes,
        "running scheduled collectors"
    );
    let report = match run_scheduled(&runner, &schedule, &opts).await {
        Ok(r) => r,
        Err(e @ bdc_collector::scheduled::ScheduledError::UnknownGroup { .. })
        | Err(e @ bdc_collector::scheduled::ScheduledError::StrictCheck { .. }) => {
            return Err(UsageError(e.to_string()).into());
        }
        Err(e) => return Err(e.into()),
    };
    bdc_audit::pending::flush_best_effort(&storage).await;
    storage.close().await;
    let mut out = std::io::stdout().lock();
    for t in &report.tasks {
        let line = match &t.outcome {
            TaskOutcome::Ran(RunReport::Succeeded { result, .. }) => {
                format!("ok       {}", counts_text(result.counts()))
            }
            TaskOutcome::Ran(RunReport::Failed {
                category, error, ..
            }) => format!("FAILED   ({category}) {}", truncate(error, 200)),
            TaskOutcome::Ran(RunReport::NotAvailable { .. }) => {
                "not available in this build".into()
            }
            TaskOutcome::Ran(RunReport::Unknown { .. }) | TaskOutcome::UnknownCommand => {
                "unknown command, skipped".into()
            }
            TaskOutcome::NotDue(reason) => format!("not due  ({reason})"),
            TaskOutcome::Disabled => "disabled".into(),
            TaskOutcome::AlreadyDone => "already succeeded in this slot".into(),
        };
        writeln!(out, "{:<24} {:<40} {line}", t.group, t.command)?;
    }
    writeln!(
        out,
        "{} task(s) ran, {} failed, {} warning(s)",
        report.ran,
        report.failed,
        report.warnings.len()
    )?;
    if strict && report.failed > 0 {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn activity(config: &Config, args: ActivityArgs) -> Result<ExitCode> {
    let storage = connect_ready(config).await?;
    let filter = ActivityFilter {
        source_system: args.source,
        kind: args.kind,
        actor: args.actor,
        since: args.since,
        until: args.until,
        limit: Some(args.limit),
    };
    if args.count {
        let n = match &args.person {
            Some(p) => crate::cmd_identities::person_count(&storage, p, &filter).await?,
            None => storage.activity().count(&filter).await?,
        };
        match args.format {
            OutputFormat::Json => println!("{}", serde_json::json!({ "count": n })),
            OutputFormat::Table | OutputFormat::Csv => println!("{n}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows = match &args.person {
        Some(p) => crate::cmd_identities::person_activity(&storage, p, &filter).await?,
        None => storage.activity().list(&filter).await?,
    };
    storage.close().await;
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record([
                "occurred_at",
                "source_system",
                "kind",
                "external_id",
                "actor",
                "title",
                "url",
                "revision",
                "updated_at",
            ])?;
            for a in &rows {
                let r = &a.record;
                w.write_record([
                    r.occurred_at().to_rfc3339(),
                    r.source_system().to_owned(),
                    r.kind().to_owned(),
                    r.external_id().to_owned(),
                    r.actor().unwrap_or("").to_owned(),
                    r.title().unwrap_or("").to_owned(),
                    r.url().unwrap_or("").to_owned(),
                    a.revision.to_string(),
                    a.updated_at.to_rfc3339(),
                ])?;
            }
            w.flush()?;
        }
        OutputFormat::Table => {
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|a| {
                    let r = &a.record;
                    vec![
                        r.occurred_at().format("%Y-%m-%d %H:%M").to_string(),
                        r.source_system().to_owned(),
                        r.kind().to_owned(),
                        truncate(r.external_id(), 24),
                        truncate(r.actor().unwrap_or("-"), 24),
                        truncate(r.title().unwrap_or(""), 60),
                    ]
                })
                .collect();
            write!(
                out,
                "{}",
                table(
                    &["OCCURRED (UTC)", "SOURCE", "KIND", "ID", "ACTOR", "TITLE"],
                    &body
                )
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn runs(config: &Config, args: RunsArgs) -> Result<ExitCode> {
    let storage = connect_ready(config).await?;
    let list = storage
        .runs()
        .list(&RunFilter {
            collector: args.collector,
            status: args.status.as_deref().and_then(RunStatus::parse),
            limit: Some(args.limit),
        })
        .await?;
    storage.close().await;
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &list)?;
            writeln!(out)?;
        }
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record([
                "run_id",
                "collector",
                "command",
                "group",
                "status",
                "failure_category",
                "started_at",
                "finished_at",
                "counts",
                "error",
            ])?;
            for r in &list {
                w.write_record([
                    r.run_id.clone(),
                    r.collector.clone(),
                    r.command.clone(),
                    r.schedule_group.clone().unwrap_or_default(),
                    r.status.to_string(),
                    r.failure_category
                        .map(|c| c.to_string())
                        .unwrap_or_default(),
                    r.started_at.to_rfc3339(),
                    r.finished_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    counts_text(&r.counts),
                    r.error.clone().unwrap_or_default(),
                ])?;
            }
            w.flush()?;
        }
        OutputFormat::Table => {
            let body: Vec<Vec<String>> = list
                .iter()
                .map(|r| {
                    let secs = r
                        .finished_at
                        .map(|f| {
                            format!(
                                "{:.1}s",
                                (f - r.started_at).num_milliseconds() as f64 / 1000.0
                            )
                        })
                        .unwrap_or_else(|| "-".into());
                    vec![
                        r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                        r.collector.clone(),
                        r.schedule_group.clone().unwrap_or_else(|| "-".into()),
                        r.status.to_string(),
                        r.failure_category
                            .map(|c| c.to_string())
                            .unwrap_or_else(|| "-".into()),
                        secs,
                        truncate(
                            &if r.counts.is_empty() {
                                r.error.clone().unwrap_or_default()
                            } else {
                                counts_text(&r.counts)
                            },
                            70,
                        ),
                    ]
                })
                .collect();
            write!(
                out,
                "{}",
                table(
                    &[
                        "STARTED (UTC)",
                        "COLLECTOR",
                        "GROUP",
                        "STATUS",
                        "FAILURE",
                        "TOOK",
                        "COUNTS / ERROR"
                    ],
                    &body
                )
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn collectors() -> Result<ExitCode> {
    let registry = crate::collectors::registry();
    let body: Vec<Vec<String>> = CATALOG
        .iter()
        .map(|e| {
            vec![
                e.name.to_owned(),
                if registry.is_available(e.name) {
                    "yes".into()
                } else {
                    "not available".into()
                },
                if e.aliases.is_empty() {
                    "-".into()
                } else {
                    e.aliases.join(", ")
                },
                e.summary.to_owned(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["NAME", "AVAILABLE", "ALIASES", "SUMMARY"], &body)
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}

async fn serve(config: Arc<Config>, args: ServeArgs) -> Result<ExitCode> {
    let storage = connect_ready(&config)
        .await?
        .with_actor(&Actor::system("serve"));
    let explicit_schedule = args.schedule.is_some();
    let path = schedule_path(&config, args.schedule);
    let (schedule, schedule_error) = if path.exists() || explicit_schedule {
        match Schedule::from_path(&path) {
            Ok(s) => (Some(Arc::new(s)), None),
            Err(e) if explicit_schedule => return Err(e.into()),
            Err(e) => {
                tracing::error!(error = %e, "schedule YAML is invalid; /health/ reports it");
                (None, Some(e.to_string()))
            }
        }
    } else {
        tracing::warn!(schedule = %path.display(), "no schedule file; /health/ reports no collector groups");
        (None, None)
    };
    let metrics = bdc_server::install_metrics_recorder()?;
    let bind = args.bind.unwrap_or(config.bind);
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding {bind}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    // A serve process that runs no worker is not counted by /health/'s
    // celery_workers check.
    let role = if args.workers > 0 && schedule.is_some() {
        "serve"
    } else {
        "serve-http"
    };
    let info = bdc_server::heartbeat::worker_info(role, env!("CARGO_PKG_VERSION"));
    let worker_id = info.worker_id.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop_rx_roles = stop_rx.clone();
    let (greenness_routes, greenness_tasks, greenness_store) =
        crate::cmd_greenness::serve_parts(&config, &storage, stop_rx.clone()).await?;
    // The heartbeat outlives the roles: it stops only after in-flight jobs
    // finished (or were released), so /health/ keeps seeing this process
    // during its shutdown grace period.
    let (hb_stop_tx, hb_stop_rx) = tokio::sync::watch::channel(false);
    let heartbeat =
        bdc_server::heartbeat::spawn(storage.clone(), info, Duration::from_secs(10), hb_stop_rx);
    let flusher = bdc_audit::pending::spawn_flusher(
        storage.clone(),
        crate::cmd_daemon::AUDIT_FLUSH_EVERY,
        stop_rx.clone(),
    );
    drop(stop_rx);
    let roles = crate::cmd_daemon::spawn_roles(
        &config,
        &storage,
        schedule.clone(),
        &path,
        crate::cmd_daemon::Roles {
            scheduler: !args.no_scheduler,
            workers: args.workers,
            worker_id: worker_id.clone(),
        },
        stop_rx_roles,
    );
    let dashboard = bdc_dashboard::router(bdc_dashboard::DashboardState {
        storage: storage.clone(),
        config: Arc::clone(&config),
        schedule: schedule.clone(),
        available: crate::collectors::registry().available().collect(),
        sections: crate::sections::all(&config, &storage, greenness_store),
        version: crate::cli::LONG_VERSION.to_owned(),
    });
    let state = bdc_server::AppState {
        storage: storage.clone(),
        config: Arc::clone(&config),
        schedule,
        schedule_error,
        metrics: Some(metrics),
    };
    tracing::info!(addr = %local, version = crate::cli::LONG_VERSION, "bdc serve listening");
    println!("bdc serve listening on http://{local}/health/");
    let options = bdc_server::ServerOptions {
        extra_routes: vec![
            bdc_audit::http::router(
                storage.clone(),
                config.api_token.as_ref().map(|t| t.expose().to_owned()),
            ),
            greenness_routes,
            bdc_search::http::router(
                storage.clone(),
                config.workspace_dir.clone(),
                config.api_token.as_ref().map(|t| t.expose().to_owned()),
            ),
            dashboard,
        ],
        extra_checks: vec![crate::cmd_audit::health_check(storage.clone())],
        ..bdc_server::ServerOptions::default()
    };
    let result = bdc_server::serve_with_options(listener, state, options, shutdown_signal()).await;
    let _ = stop_tx.send(true);
    crate::cmd_daemon::join_roles(roles, config.daemon.shutdown_grace).await;
    crate::cmd_greenness::join(greenness_tasks).await;
    let _ = tokio::time::timeout(Duration::from_secs(30), flusher).await;
    bdc_audit::pending::flush_best_effort(&storage).await;
    let _ = hb_stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), heartbeat).await;
    storage.close().await;
    result?;
    Ok(ExitCode::SUCCESS)
}
