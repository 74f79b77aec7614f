//! `bdc greenness ...`: commit greenness tracking (see docs/greenness.md).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use bdc_config::Config;
use bdc_greenness::GreennessConfig;
use bdc_greenness::model::Scope;
use bdc_greenness::service::Gate;
use bdc_greenness::store::SqlStore;
use clap::{Args, Subcommand, ValueEnum};

use crate::commands::UsageError;
use crate::output::{table, truncate};

/// Environment variable naming the greenness configuration YAML.
pub const CONFIG_ENV: &str = "BDC_GREENNESS_YAML";
/// Environment variable: address of the greenness gRPC listener of `bdc serve`
/// (unset: no gRPC listener).
pub const GRPC_BIND_ENV: &str = "BDC_GRPC_BIND";

#[derive(Debug, Args)]
pub struct GreennessArgs {
    #[command(subcommand)]
    pub command: GreennessCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum GreennessCommand {
    /// Ingest the current head of a queue's ref (fetching first); prints the request id.
    Ingest(IngestArgs),
    /// Run every pending pipeline stage until nothing is pending, then exit.
    Drain(DrainArgs),
    /// A queue's last green, recent requests with state and degree, per-project greenness.
    Status(StatusArgs),
    /// Print the last green commit URI of a queue (or project); exit 1 when there is none.
    #[command(name = "last-green")]
    LastGreen(LastGreenArgs),
    /// Exit 0 only when the commit is green for the queue (or project).
    #[command(name = "is-green")]
    IsGreen(IsGreenArgs),
    /// Greenness records of a queue, newest first.
    History(HistoryArgs),
    /// Validate a finished, not green commit again (undetermined, failed or not validated);
    /// the new attempt is appended, earlier records stay.
    Revalidate(RevalidateArgs),
}

#[derive(Debug, Args)]
pub struct RevalidateArgs {
    #[arg(long)]
    pub queue: String,
    /// A full sha or a commit URI.
    #[arg(long)]
    pub commit: String,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Greenness configuration YAML [default: $BDC_GREENNESS_YAML].
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The queue (also accepted as `--queue Q`, like the other subcommands).
    #[arg(
        value_name = "QUEUE",
        required_unless_present = "queue_flag",
        conflicts_with = "queue_flag"
    )]
    pub queue: Option<String>,
    #[arg(long = "queue", value_name = "QUEUE")]
    pub queue_flag: Option<String>,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Targets built at once [default: `jobs` in the config, else the number of cores].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long)]
    pub queue: String,
    #[arg(long, default_value_t = 10)]
    pub limit: i64,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct LastGreenArgs {
    #[arg(long)]
    pub queue: String,
    #[arg(long)]
    pub project: Option<String>,
}

#[derive(Debug, Args)]
pub struct IsGreenArgs {
    #[arg(long)]
    pub queue: String,
    /// A full sha or a commit URI.
    #[arg(long)]
    pub commit: String,
    #[arg(long)]
    pub project: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[arg(long)]
    pub queue: String,
    #[arg(long)]
    pub project: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Load the greenness configuration from `--config` or `$BDC_GREENNESS_YAML`.
pub fn load_config(arg: Option<PathBuf>) -> Result<Arc<GreennessConfig>> {
    let path = arg
        .or_else(|| std::env::var_os(CONFIG_ENV).map(PathBuf::from))
        .ok_or_else(|| {
            UsageError(format!(
                "no greenness configuration: pass --config or set {CONFIG_ENV}"
            ))
        })?;
    let cfg = GreennessConfig::from_path(&path).map_err(|e| UsageError(e.to_string()))?;
    Ok(Arc::new(cfg))
}

/// Lease owner of this process: unique across machines and restarts
/// (`host:pid:uuid8`, as heartbeats), so two replicas never share leases.
fn owner(kind: &str) -> String {
    bdc_server::heartbeat::worker_info(kind, env!("CARGO_PKG_VERSION")).worker_id
}

/// `BDC_GREENNESS_DATABASE_URL`: `mysql://…` puts the greenness tables in
/// MySQL/MariaDB; unset (or any other URL) keeps them in `DATABASE_URL`.
pub const DATABASE_URL_ENV: &str = "BDC_GREENNESS_DATABASE_URL";

/// The greenness store of this process (see [`DATABASE_URL_ENV`]), its
/// tables migrated.
pub async fn open_store(storage: &bdc_storage::Storage) -> Result<SqlStore> {
    let url = std::env::var(DATABASE_URL_ENV).ok();
    bdc_greenness::service::open_store(storage.clone(), url.as_deref())
        .await
        .with_context(|| format!("opening the greenness store ({DATABASE_URL_ENV})"))
}

/// The MySQL greenness store when [`DATABASE_URL_ENV`] is a `mysql://`
/// URL (connected, not migrated), for `bdc migrate`.
pub async fn mysql_store() -> Result<Option<bdc_greenness::store::mysql::MySqlStore>> {
    match std::env::var(DATABASE_URL_ENV) {
        Ok(url) if bdc_greenness::store::mysql::is_mysql_url(&url) => Ok(Some(
            bdc_greenness::store::mysql::MySqlStore::connect(&url)
                .await
                .with_context(|| format!("connecting to {DATABASE_URL_ENV}"))?,
        )),
        _ => Ok(None),
    }
}

pub async fn run(config: &Config, args: GreennessArgs) -> Result<ExitCode> {
    let storage = crate::commands::connect_ready(config).await?;
    let store = open_store(&storage).await?;
    let gate = Gate { store: &store };
    let pipeline = |_storage: bdc_storage::Storage,
                    cfg: Arc<GreennessConfig>,
                    dir: &std::path::Path,
                    owner: &str| {
        bdc_greenness::service::pipeline_on(store.clone(), cfg, dir, owner)
    };
    let code = match args.command {
        GreennessCommand::Ingest(a) => {
            let cfg = load_config(a.config.config)?;
            let Some(queue) = a.queue.or(a.queue_flag) else {
                return Err(
                    UsageError("give the queue: `ingest Q` or `ingest --queue Q`".into()).into(),
                );
            };
            if cfg.queue(&queue).is_none() {
                return Err(UsageError(format!(
                    "unknown queue {queue:?} (not in the greenness configuration)"
                ))
                .into());
            }
            let p = pipeline(storage.clone(), cfg, &config.workspace_dir, &owner("cli"));
            let out = p.ingest(&queue).await.context("ingesting")?;
            println!("{}", out.request.id);
            if !out.created {
                eprintln!("(already ingested: {})", out.request.commit_uri);
            }
            ExitCode::SUCCESS
        }
        GreennessCommand::Drain(a) => {
            let mut cfg = load_config(a.config.config)?;
            if let Some(j) = a.jobs {
                Arc::make_mut(&mut cfg).jobs = Some(usize::from(j));
            }
            let p = pipeline(storage.clone(), cfg, &config.workspace_dir, &owner("drain"));
            p.ensure_queues().await?;
            let r = p.drain().await.context("draining the greenness pipeline")?;
            println!(
                "drained: {} steps ({} applied, {} retried, {} conflicts, {} dead-lettered)",
                r.steps, r.applied, r.retried, r.conflicts, r.dead_lettered
            );
            ExitCode::SUCCESS
        }
        GreennessCommand::Status(a) => {
            let s = gate.status(&a.queue, a.limit).await?;
            match a.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&s)?),
                Format::Table => {
                    println!("queue {}", s.queue);
                    println!(
                        "last green: {}",
                        s.last_green
                            .as_ref()
                            .map_or("(none)", |g| g.commit_uri.as_str())
                    );
                    println!("pending stage messages: {}", s.pending_messages);
                    let rows: Vec<Vec<String>> = s
                        .requests
                        .iter()
                        .map(|r| {
                            vec![
                                r.id.clone(),
                                truncate(&r.commit_uri, 60),
                                r.state.as_str().to_owned(),
                                r.mode.clone().unwrap_or_default(),
                                r.outcome
                                    .map(|o| o.as_str().to_owned())
                                    .unwrap_or_else(|| r.validation.to_owned()),
                                r.degree.map(|d| format!("{d:.3}")).unwrap_or_default(),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        table(
                            &["request", "commit", "state", "mode", "outcome", "degree"],
                            &rows
                        )
                    );
                    let rows: Vec<Vec<String>> = s
                        .projects
                        .iter()
                        .map(|p| {
                            vec![
                                p.project.clone(),
                                p.latest
                                    .as_ref()
                                    .map(|r| r.outcome.as_str().to_owned())
                                    .unwrap_or_default(),
                                truncate(
                                    p.last_green
                                        .as_ref()
                                        .map_or("(none)", |g| g.commit_uri.as_str()),
                                    60,
                                ),
                            ]
                        })
                        .collect();
                    if !rows.is_empty() {
                        print!("{}", table(&["project", "latest", "last green"], &rows));
                    }
                }
            }
            ExitCode::SUCCESS
        }
        GreennessCommand::LastGreen(a) => {
            match gate.last_green(&a.queue, a.project.as_deref()).await? {
                Some(g) => {
                    println!("{}", g.commit_uri);
                    ExitCode::SUCCESS
                }
                None => {
                    eprintln!("no green commit recorded");
                    ExitCode::FAILURE
                }
            }
        }
        GreennessCommand::IsGreen(a) => {
            let v = gate
                .verdict(&a.queue, &a.commit, a.project.as_deref())
                .await?;
            match a.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&v)?),
                Format::Table => println!(
                    "{} {} ({}){}",
                    v.commit_uri.as_deref().unwrap_or(&a.commit),
                    v.status,
                    v.scope,
                    v.degree
                        .map(|d| format!(" degree {d:.3}"))
                        .unwrap_or_default()
                ),
            }
            if v.green {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        GreennessCommand::Revalidate(a) => {
            let cfg = load_config(a.config.config)?;
            let Some(req) = store.find_request(&a.queue, &a.commit).await? else {
                return Err(UsageError(format!(
                    "commit {:?} was never ingested in queue {:?}",
                    a.commit, a.queue
                ))
                .into());
            };
            let p = pipeline(storage.clone(), cfg, &config.workspace_dir, &owner("cli"));
            if p.revalidate(&req.id).await? {
                println!("{}", req.id);
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "{} is {} or already green: nothing to revalidate",
                    req.id,
                    req.state.as_str()
                );
                ExitCode::FAILURE
            }
        }
        GreennessCommand::History(a) => {
            let scope = a.project.as_deref().map(|p| Scope::Project(p.to_owned()));
            let h = store.history(&a.queue, scope.as_ref(), a.limit).await?;
            match a.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&h)?),
                Format::Table => {
                    let rows: Vec<Vec<String>> = h
                        .iter()
                        .map(|r| {
                            vec![
                                r.recorded_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                                r.request_id.clone(),
                                truncate(&r.commit_uri, 60),
                                r.scope.key(),
                                r.outcome.as_str().to_owned(),
                                format!("{:.3}", r.degree),
                                r.evidence.failing_targets.join(","),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        table(
                            &[
                                "recorded", "request", "commit", "scope", "outcome", "degree",
                                "failing"
                            ],
                            &rows
                        )
                    );
                }
            }
            ExitCode::SUCCESS
        }
    };
    storage.close().await;
    Ok(code)
}

/// For `bdc serve`: the greenness routes, the gRPC listener when
/// `BDC_GRPC_BIND` is set and, when `BDC_GREENNESS_YAML` is set, the
/// pollers and stage worker; all on the greenness store (MySQL when
/// [`DATABASE_URL_ENV`] says so), returned for the dashboard.
pub async fn serve_parts(
    config: &Config,
    storage: &bdc_storage::Storage,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(
    bdc_greenness::http::Router,
    Vec<tokio::task::JoinHandle<()>>,
    SqlStore,
)> {
    let token = config.api_token.as_ref().map(|t| t.expose().to_owned());
    let store = open_store(storage).await?;
    let (pipeline, mut tasks) = if std::env::var_os(CONFIG_ENV).is_none() {
        (None, Vec::new())
    } else {
        let cfg = load_config(None)?;
        let p = bdc_greenness::service::pipeline_on(
            store.clone(),
            cfg,
            &config.workspace_dir,
            &owner("serve"),
        );
        tracing::info!(
            queues = p.config.queues.len(),
            "greenness: pollers and worker started"
        );
        let tasks = bdc_greenness::http::spawn_background(p.clone(), stop.clone());
        (Some(p), tasks)
    };
    if let Some(bind) = std::env::var_os(GRPC_BIND_ENV).filter(|b| !b.is_empty()) {
        let bind = bind.to_string_lossy().into_owned();
        let addr: std::net::SocketAddr = bind.parse().map_err(|e| {
            UsageError(format!(
                "{GRPC_BIND_ENV}={bind:?} is not an address (host:port): {e}"
            ))
        })?;
        let std_listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("binding the gRPC listener {addr}"))?;
        std_listener
            .set_nonblocking(true)
            .context("configuring the gRPC listener")?;
        let listener = tokio::net::TcpListener::from_std(std_listener)
            .context("registering the gRPC listener")?;
        let local = listener.local_addr().context("reading the gRPC address")?;
        println!("bdc greenness gRPC listening on {local}");
        let service = bdc_greenness_grpc::GreennessService::new(store.clone(), pipeline.clone());
        let mut stop = stop;
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = bdc_greenness_grpc::serve(listener, service, token, shutdown).await {
                tracing::error!(error = %e, "greenness gRPC listener failed");
            }
        }));
    }
    Ok((
        bdc_greenness::http::router(store.clone(), pipeline, token),
        tasks,
        store,
    ))
}

/// Wait (bounded) for the background tasks of [`serve_parts`].
pub async fn join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), t).await;
    }
}
