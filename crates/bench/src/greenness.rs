//! Greenness pipeline benchmarks.
//!
//! * `greenness-overhead`: pipeline overhead per commit with a no-op build
//!   (ingest → final per-project record) over the durable SQL store, one
//!   commit at a time on a queue fed N commits (1,000; 100 with `--quick`):
//!   p50/p95 latency and sustained commits per minute. The source control
//!   is an in-memory linear history so only the pipeline (stage messages,
//!   transactions, records) is measured, not git.
//! * `greenness-incremental`: fraction of project builds avoided by
//!   incremental builds on a 24-project repository with a realistic change
//!   mix (most commits touch one project, some a few, some shared code that
//!   every project includes, some only docs; 5% break a project that the
//!   next commit fixes).
//! * `greenness-ingest`: `Ingest` over gRPC and over HTTP on loopback with
//!   32 concurrent clients (each its own connection): requests/s and
//!   p50/p99 latency (the head is resolved in memory, so the RPC layers and
//!   the store's ingest transaction are measured, not git).
//! * `greenness-graph` (once, in memory): a 200-target dependency graph
//!   (each target 2–20 ms, up to 3 deps on earlier targets) built with
//!   8-way parallelism against the sum of target times and a serial run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Result;
use async_trait::async_trait;
use bdc_greenness::config::{GreennessConfig, ProjectSpec, QueueSpec};
use bdc_greenness::engine::{Pipeline, RetryPolicy, SystemClock};
use bdc_greenness::model::{Outcome, TargetResult};
use bdc_greenness::store::{SCHEMA, SqlStore};
use bdc_greenness::traits::{
    BuildContext, BuildRunner, NoHooks, RunnerError, ScmError, SourceControl, Target,
};
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};

use crate::{Row, backend_name, percentile_ms};

/// A linear history in memory: commit n changed `paths[n]`.
#[derive(Default)]
struct LinearScm {
    paths: Mutex<Vec<Vec<String>>>,
}

fn uri(n: usize) -> String {
    format!("bench://repo/ref/main/{n}")
}

fn index(uri: &str) -> usize {
    uri.rsplit('/')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[async_trait]
impl SourceControl for LinearScm {
    async fn head(&self, _q: &QueueSpec) -> Result<String, ScmError> {
        let n = self.paths.lock().map(|p| p.len()).unwrap_or(1);
        Ok(uri(n.saturating_sub(1)))
    }
    async fn is_ancestor(&self, a: &str, b: &str) -> Result<bool, ScmError> {
        Ok(index(a) <= index(b))
    }
    async fn changed_paths(&self, a: &str, b: &str) -> Result<Vec<String>, ScmError> {
        let p = self.paths.lock().map_err(|e| ScmError::Failed {
            context: "bench".into(),
            detail: e.to_string(),
        })?;
        let mut out = BTreeSet::new();
        for n in index(a) + 1..=index(b) {
            out.extend(p.get(n).into_iter().flatten().cloned());
        }
        Ok(out.into_iter().collect())
    }
    async fn checkout(&self, _c: &str, _key: &str) -> Result<Option<PathBuf>, ScmError> {
        Ok(None)
    }
    async fn release(&self, _c: &str, _key: &str) -> Result<(), ScmError> {
        Ok(())
    }
}

/// A build that does nothing; fails the projects listed as broken.
#[derive(Default)]
struct NoopRunner {
    broken: Mutex<BTreeMap<usize, BTreeSet<String>>>,
    builds: AtomicU64,
}

#[async_trait]
impl BuildRunner for NoopRunner {
    fn target_graph(&self, _q: &QueueSpec, repo: bool, projects: &[String]) -> Vec<Target> {
        let names = if repo {
            vec!["repo".to_owned()]
        } else {
            projects.to_vec()
        };
        names
            .into_iter()
            .map(|name| Target {
                name,
                deps: Vec::new(),
            })
            .collect()
    }
    async fn build(
        &self,
        ctx: &BuildContext,
        _spec: &QueueSpec,
        targets: &[Target],
    ) -> Result<Vec<TargetResult>, RunnerError> {
        let n = index(&ctx.commit_uri);
        let broken = self
            .broken
            .lock()
            .map(|b| b.get(&n).cloned().unwrap_or_default())
            .unwrap_or_default();
        self.builds
            .fetch_add(targets.len() as u64, Ordering::Relaxed);
        Ok(targets
            .iter()
            .map(|t| TargetResult {
                target: t.name.clone(),
                outcome: if broken.contains(&t.name) {
                    Outcome::Failed
                } else {
                    Outcome::Passed
                },
                exit_code: Some(0),
                log_location: None,
                detail: String::new(),
                not_built: false,
            })
            .collect())
    }
}

fn config(projects: usize) -> GreennessConfig {
    GreennessConfig {
        queues: vec![QueueSpec {
            name: "bench".into(),
            repo: "bench".into(),
            ref_name: "main".into(),
            poll_interval_seconds: 60,
            build: None,
            timeout_seconds: 60,
            projects: (0..projects)
                .map(|i| ProjectSpec {
                    name: format!("p{i:02}"),
                    paths: vec![format!("libs/p{i:02}/**"), "common/**".into()],
                    build: Some("true".into()),
                    deps: Vec::new(),
                    from_command: false,
                })
                .collect(),
            projects_command: None,
            projects_command_dir: None,
        }],
        hooks: Vec::new(),
        jobs: None,
    }
}

async fn setup(
    kind: Kind,
    projects: usize,
) -> Result<(TestDb, Pipeline, Arc<LinearScm>, Arc<NoopRunner>)> {
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    storage.migrate_parts(&[&SCHEMA]).await?;
    let scm = Arc::new(LinearScm::default());
    let runner = Arc::new(NoopRunner::default());
    let p = Pipeline {
        store: Arc::new(SqlStore::new(storage)),
        scm: scm.clone(),
        runner: runner.clone(),
        hooks: Arc::new(NoHooks),
        config: Arc::new(config(projects)),
        policy: RetryPolicy::default(),
        clock: Arc::new(SystemClock),
        owner: "bench".into(),
    };
    p.ensure_queues().await?;
    Ok((db, p, scm, runner))
}

/// xorshift for a reproducible change mix.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Ingest over gRPC and HTTP with `clients` concurrent clients.
async fn ingest_rpc(kind: Kind, quick: bool) -> Result<Vec<Row>> {
    use bdc_greenness_grpc::pb::IngestRequest;
    use bdc_greenness_grpc::pb::greenness_client::GreennessClient;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let backend = backend_name(kind);
    let clients = 32usize;
    let per_client = if quick { 20 } else { 200 };
    let (db, p, scm, _runner) = setup(kind, 5).await?;
    if let Ok(mut paths) = scm.paths.lock() {
        paths.push(vec!["libs/p00/a.c".into()]);
    }
    // The same database as the pipeline's store.
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    const TOKEN: &str = "bench-token";
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // gRPC server.
    let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let grpc_addr = grpc_listener.local_addr()?;
    let service =
        bdc_greenness_grpc::GreennessService::new(SqlStore::new(storage.clone()), Some(p.clone()));
    let mut grpc_stop = stop_rx.clone();
    let grpc = tokio::spawn(bdc_greenness_grpc::serve(
        grpc_listener,
        service,
        Some(TOKEN.to_owned()),
        async move {
            let _ = grpc_stop.wait_for(|s| *s).await;
        },
    ));
    // HTTP server.
    let http_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http_addr = http_listener.local_addr()?;
    let router = bdc_greenness::http::router(
        SqlStore::new(storage.clone()),
        Some(p.clone()),
        Some(TOKEN.into()),
    );
    let mut http_stop = stop_rx.clone();
    let http = tokio::spawn(async move {
        axum::serve(http_listener, router)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|s| *s).await;
            })
            .await
    });

    let mut rows = Vec::new();
    for transport in ["grpc", "http"] {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per_client);
                if transport == "grpc" {
                    let channel =
                        tonic::transport::Endpoint::from_shared(format!("http://{grpc_addr}"))?
                            .connect()
                            .await?;
                    let mut c = GreennessClient::new(channel);
                    for _ in 0..per_client {
                        let mut req = tonic::Request::new(IngestRequest {
                            queue: "bench".into(),
                        });
                        req.metadata_mut()
                            .insert("authorization", format!("Bearer {TOKEN}").parse()?);
                        let t = Instant::now();
                        c.ingest(req).await?;
                        lat.push(t.elapsed());
                    }
                } else {
                    let c = reqwest::Client::new();
                    let url = format!("http://{http_addr}/api/greenness/queues/bench/ingest");
                    for _ in 0..per_client {
                        let t = Instant::now();
                        let r = c.post(&url).bearer_auth(TOKEN).send().await?;
                        anyhow::ensure!(r.status().is_success(), "HTTP ingest: {}", r.status());
                        lat.push(t.elapsed());
                    }
                }
                anyhow::Ok(lat)
            }));
        }
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await??);
        }
        let total = started.elapsed();
        lat.sort();
        let size = format!("{clients}x{per_client}");
        rows.push(Row {
            bench: format!("greenness-ingest {transport} throughput"),
            backend,
            size: size.clone(),
            value: lat.len() as f64 / total.as_secs_f64().max(1e-9),
            unit: "req/s",
        });
        for pct in [50.0, 99.0] {
            rows.push(Row {
                bench: format!("greenness-ingest {transport} p{pct:.0}"),
                backend,
                size: size.clone(),
                value: percentile_ms(&lat, pct),
                unit: "ms",
            });
        }
    }
    let _ = stop_tx.send(true);
    let _ = grpc.await;
    let _ = http.await;
    storage.close().await;
    Ok(rows)
}

/// A 200-target graph: 8-way parallel vs the sum of target times and vs
/// a serial run (in memory: each target sleeps its duration).
async fn graph(quick: bool) -> Result<Vec<Row>> {
    let n = 200usize;
    let mut rng = Rng(0x6EA9_0000_0000_0200);
    let mut targets = Vec::with_capacity(n);
    let mut times = BTreeMap::new();
    for i in 0..n {
        let mut deps = BTreeSet::new();
        if i > 0 {
            for _ in 0..rng.below(4) {
                deps.insert(format!("t{:03}", rng.below(i as u64)));
            }
        }
        let ms = 2 + rng.below(19);
        let ms = if quick { ms / 2 + 1 } else { ms };
        times.insert(format!("t{i:03}"), std::time::Duration::from_millis(ms));
        targets.push(Target {
            name: format!("t{i:03}"),
            deps: deps.into_iter().collect(),
        });
    }
    let sum: std::time::Duration = times.values().sum();
    let times = &times;
    let build = |jobs: usize| {
        let targets = &targets;
        async move {
            let t = Instant::now();
            let out = bdc_greenness::graph::run(targets, jobs, |tg| async move {
                let d = times.get(&tg.name).copied().unwrap_or_default();
                tokio::time::sleep(d).await;
                Ok(TargetResult {
                    target: tg.name.clone(),
                    outcome: Outcome::Passed,
                    exit_code: Some(0),
                    log_location: None,
                    detail: String::new(),
                    not_built: false,
                })
            })
            .await?;
            anyhow::ensure!(out.len() == targets.len(), "every target built");
            anyhow::Ok(t.elapsed())
        }
    };
    let parallel = build(8).await?;
    let serial = build(1).await?;
    let size = format!("{n} targets");
    Ok(vec![
        Row {
            bench: "greenness-graph sum of target times".into(),
            backend: "memory",
            size: size.clone(),
            value: sum.as_secs_f64() * 1000.0,
            unit: "ms",
        },
        Row {
            bench: "greenness-graph serial (--jobs 1) wall".into(),
            backend: "memory",
            size: size.clone(),
            value: serial.as_secs_f64() * 1000.0,
            unit: "ms",
        },
        Row {
            bench: "greenness-graph --jobs 8 wall".into(),
            backend: "memory",
            size: size.clone(),
            value: parallel.as_secs_f64() * 1000.0,
            unit: "ms",
        },
        Row {
            bench: "greenness-graph --jobs 8 speed-up vs sum".into(),
            backend: "memory",
            size: size.clone(),
            value: sum.as_secs_f64() / parallel.as_secs_f64().max(1e-9),
            unit: "x",
        },
        Row {
            bench: "greenness-graph --jobs 8 speed-up vs serial".into(),
            backend: "memory",
            size,
            value: serial.as_secs_f64() / parallel.as_secs_f64().max(1e-9),
            unit: "x",
        },
    ])
}

pub async fn run(kind: Kind, quick: bool) -> Result<Vec<Row>> {
    let backend = backend_name(kind);
    let mut rows = Vec::new();
    if kind == Kind::Sqlite {
        rows.extend(graph(quick).await?);
    }
    rows.extend(ingest_rpc(kind, quick).await?);
    if kind == Kind::Sqlite {
        rows.extend(mysql_overhead(quick).await?);
    }

    // Overhead per commit (5 projects, one touched per commit).
    let n = if quick { 100 } else { 1000 };
    let (_db, p, scm, _runner) = setup(kind, 5).await?;
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        if let Ok(mut paths) = scm.paths.lock() {
            paths.push(vec![format!("libs/p{:02}/f{i}.c", i % 5)]);
        }
        let t = Instant::now();
        p.ingest("bench").await?;
        p.drain().await?;
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    lat.sort();
    rows.push(Row {
        bench: "greenness-overhead p50 (ingest→record)".into(),
        backend,
        size: n.to_string(),
        value: percentile_ms(&lat, 50.0),
        unit: "ms",
    });
    rows.push(Row {
        bench: "greenness-overhead p95 (ingest→record)".into(),
        backend,
        size: n.to_string(),
        value: percentile_ms(&lat, 95.0),
        unit: "ms",
    });
    rows.push(Row {
        bench: "greenness-overhead sustained".into(),
        backend,
        size: n.to_string(),
        value: n as f64 / total.as_secs_f64().max(1e-9) * 60.0,
        unit: "commits/min",
    });

    // Incremental vs full on 24 projects.
    let projects = 24usize;
    let commits = if quick { 60 } else { 300 };
    let (_db2, p, scm, runner) = setup(kind, projects).await?;
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut pending_fix: Option<String> = None;
    for i in 0..commits {
        let mut changed = Vec::new();
        let roll = rng.below(100);
        let touch = |rng: &mut Rng| format!("libs/p{:02}/src{}.c", rng.below(projects as u64), i);
        if i == 0 || roll < 5 {
            changed.push(format!("common/config{i}.h"));
        } else if roll < 10 {
            changed.push(format!("doc/notes{i}.md"));
        } else if roll < 30 {
            for _ in 0..2 + rng.below(2) {
                changed.push(touch(&mut rng));
            }
        } else {
            changed.push(touch(&mut rng));
        }
        let mut broken = BTreeSet::new();
        if let Some(p) = pending_fix.take() {
            // The fix touches the broken project.
            changed.push(format!("libs/{p}/fix{i}.c"));
        } else if i > 0 && rng.below(100) < 5 {
            let p = format!("p{:02}", rng.below(projects as u64));
            changed.push(format!("libs/{p}/bug{i}.c"));
            broken.insert(p.clone());
            pending_fix = Some(p);
        }
        if let Ok(mut paths) = scm.paths.lock() {
            paths.push(changed);
        }
        if let Ok(mut b) = runner.broken.lock() {
            b.insert(i, broken);
        }
        p.ingest("bench").await?;
        p.drain().await?;
    }
    let built = runner.builds.load(Ordering::Relaxed) as f64;
    let full = (commits * projects) as f64;
    rows.push(Row {
        bench: "greenness-incremental builds avoided".into(),
        backend,
        size: format!("{commits}x{projects}"),
        value: (1.0 - built / full) * 100.0,
        unit: "%",
    });
    Ok(rows)
}

/// Pipeline overhead per commit with the greenness tables in MariaDB/MySQL
/// (`BDC_BENCH_MYSQL_URL`, default `mysql://root@127.0.0.1:3306`; a
/// throwaway database is created and dropped). Skipped with a note when
/// the server is unreachable.
async fn mysql_overhead(quick: bool) -> Result<Vec<Row>> {
    let admin = std::env::var("BDC_BENCH_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let Some(my_db) = bdc_testsupport::MySqlTestDb::on(admin).await else {
        return Ok(Vec::new());
    };
    let my = bdc_greenness::store::mysql::MySqlStore::connect(my_db.url()).await?;
    my.migrate().await?;
    let main = TestDb::new(Kind::Sqlite).await;
    let storage = Storage::connect(main.url(), &ConnectOptions::default()).await?;
    let scm = Arc::new(LinearScm::default());
    let p = Pipeline {
        store: Arc::new(SqlStore::with_mysql(storage, my)),
        scm: scm.clone(),
        runner: Arc::new(NoopRunner::default()),
        hooks: Arc::new(NoHooks),
        config: Arc::new(config(5)),
        policy: RetryPolicy::default(),
        clock: Arc::new(SystemClock),
        owner: "bench".into(),
    };
    p.ensure_queues().await?;
    let n = if quick { 100 } else { 1000 };
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        if let Ok(mut paths) = scm.paths.lock() {
            paths.push(vec![format!("libs/p{:02}/f{i}.c", i % 5)]);
        }
        let t = Instant::now();
        p.ingest("bench").await?;
        p.drain().await?;
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    lat.sort();
    let backend = "mariadb";
    Ok(vec![
        Row {
            bench: "greenness-overhead p50 (ingest→record)".into(),
            backend,
            size: n.to_string(),
            value: percentile_ms(&lat, 50.0),
            unit: "ms",
        },
        Row {
            bench: "greenness-overhead p95 (ingest→record)".into(),
            backend,
            size: n.to_string(),
            value: percentile_ms(&lat, 95.0),
            unit: "ms",
        },
        Row {
            bench: "greenness-overhead sustained".into(),
            backend,
            size: n.to_string(),
            value: n as f64 / total.as_secs_f64().max(1e-9) * 60.0,
            unit: "commits/min",
        },
    ])
}
