//! Scale-out benchmarks with real `bdc` processes (release build):
//! job throughput with 1, 2 and 4 worker processes on PostgreSQL,
//! scheduling latency (due → started), `/health/` under `wrk` load, idle
//! RSS of `bdc serve` and its time to the first healthy response.
//!
//! Needs the release binary: `cargo build --release -p bdc` first (the
//! harness looks beside its own executable, or at `BDC_BIN`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bdc_testsupport::{Kind, TestDb};

use crate::{Row, backend_name, percentile_ms};

fn bdc_bin() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("BDC_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("locating the bench executable")?;
    let p = exe.with_file_name("bdc");
    if !p.exists() {
        bail!(
            "{} not found: run `cargo build --release -p bdc` first (or set BDC_BIN)",
            p.display()
        );
    }
    Ok(p)
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bdc(db: &TestDb, dir: &std::path::Path) -> Result<Command> {
    let mut c = Command::new(bdc_bin()?);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db.url())
        .env("WORKSPACE_DIR", dir)
        .env("BDC_LOG", "error")
        .env("BDC_WORKER_POLL_SECONDS", "0.02")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Ok(c)
}

/// A schedule whose single interval task is never due for the slots the
/// bench enqueues: each job is a no-op (claim → evaluate → complete).
const NOOP_SCHEDULE: &str = "groups:\n  bench:\n    tasks:\n      - command: wg21-papers\n        schedule: interval\n        minutes: 7\n";

async fn enqueue_noops(db: &TestDb, n: usize, tag: &str) -> Result<()> {
    let storage = bdc_storage::Storage::connect(db.url(), &Default::default()).await?;
    let q = bdc_jobs::JobQueue::new(storage.clone());
    for i in 0..n {
        q.enqueue(&bdc_jobs::NewJob {
            kind: "schedule.slot".into(),
            payload: serde_json::json!({"group": "bench", "slot": "interval", "date": "2026-01-01", "minute": 1}),
            slot_key: Some(format!("bench:{tag}:{i}")),
            run_at: bdc_storage::now(),
            max_attempts: 3,
        })
        .await?;
    }
    storage.close().await;
    Ok(())
}

async fn count_done(db: &TestDb) -> Result<i64> {
    let storage = bdc_storage::Storage::connect(db.url(), &Default::default()).await?;
    let s = bdc_jobs::JobQueue::new(storage.clone()).stats().await?;
    storage.close().await;
    Ok(s.succeeded)
}

pub async fn run(kind: Kind, quick: bool) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let backend = backend_name(kind);
    let dir = tempfile::tempdir()?;
    let schedule = dir.path().join("noop.yaml");
    std::fs::write(&schedule, NOOP_SCHEDULE)?;
    let schedule = schedule.display().to_string();

    // Job throughput: N processes drain the same queue.
    if kind == Kind::Postgres {
        let jobs = if quick { 300 } else { 2_000 };
        for procs in [1usize, 2, 4] {
            let db = TestDb::new(kind).await;
            bdc(&db, dir.path())?.arg("migrate").status()?;
            enqueue_noops(&db, jobs, "tp").await?;
            let start = Instant::now();
            let children: Vec<_> = (0..procs)
                .map(|_| {
                    bdc(&db, dir.path()).and_then(|mut c| {
                        Ok(c.args(["worker", "--drain", "--schedule", &schedule])
                            .spawn()?)
                    })
                })
                .collect::<Result<_>>()?;
            for mut c in children {
                c.wait()?;
            }
            let secs = start.elapsed().as_secs_f64();
            let done = count_done(&db).await?;
            rows.push(Row {
                bench: format!("no-op jobs, {procs} worker process(es)"),
                backend,
                size: format!("{done} jobs"),
                value: done as f64 / secs,
                unit: "jobs/s",
            });
        }
    }

    // Scheduling latency: jobs enqueued one by one while a long-running
    // worker polls; due → started from the job rows.
    {
        let db = TestDb::new(kind).await;
        bdc(&db, dir.path())?.arg("migrate").status()?;
        let _w = Proc(
            bdc(&db, dir.path())?
                .args(["worker", "--schedule", &schedule])
                .spawn()?,
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let n = if quick { 30 } else { 200 };
        for i in 0..n {
            enqueue_noops(&db, 1, &format!("lat{i}")).await?;
            tokio::time::sleep(Duration::from_millis(37)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let storage = bdc_storage::Storage::connect(db.url(), &Default::default()).await?;
        let list = bdc_jobs::JobQueue::new(storage.clone())
            .list(None, 10_000)
            .await?;
        storage.close().await;
        let mut lat: Vec<Duration> = list
            .iter()
            .filter_map(|j| j.started_at.map(|s| s - j.run_at))
            .filter_map(|d| d.to_std().ok())
            .collect();
        lat.sort();
        for p in [50.0, 99.0] {
            rows.push(Row {
                bench: format!("scheduling latency due→started p{p:.0} (poll 20 ms)"),
                backend,
                size: format!("{} jobs", lat.len()),
                value: percentile_ms(&lat, p),
                unit: "ms",
            });
        }
    }

    // bdc serve: start → first healthy response, idle RSS, /health/ under wrk.
    {
        let db = TestDb::new(kind).await;
        bdc(&db, dir.path())?.arg("migrate").status()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let url = format!("http://127.0.0.1:{port}/health/");
        let client = reqwest::Client::new();
        let start = Instant::now();
        let child = Proc(
            bdc(&db, dir.path())?
                .args([
                    "serve",
                    "--bind",
                    &format!("127.0.0.1:{port}"),
                    "--schedule",
                    &schedule,
                    "--no-scheduler",
                ])
                .spawn()?,
        );
        let healthy = loop {
            if let Ok(r) = client.get(&url).send().await
                && r.status() == 200
            {
                break start.elapsed();
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("bdc serve never became healthy");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        rows.push(Row {
            bench: "bdc serve start → first healthy /health/".into(),
            backend,
            size: "1".into(),
            value: healthy.as_secs_f64() * 1000.0,
            unit: "ms",
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.0.id()))?;
        let rss_kb: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        rows.push(Row {
            bench: "bdc serve idle RSS".into(),
            backend,
            size: "1".into(),
            value: rss_kb / 1024.0,
            unit: "MiB",
        });
        let secs = if quick { "3s" } else { "10s" };
        match Command::new("wrk")
            .args(["-t2", "-c32", "-d", secs, "--latency", &url])
            .output()
        {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                let rps = text
                    .lines()
                    .find(|l| l.starts_with("Requests/sec:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(f64::NAN);
                let p99 = text
                    .lines()
                    .find(|l| l.trim_start().starts_with("99%"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .map(parse_wrk_time)
                    .unwrap_or(f64::NAN);
                rows.push(Row {
                    bench: "GET /health/ under wrk (2 threads, 32 conns)".into(),
                    backend,
                    size: secs.into(),
                    value: rps,
                    unit: "req/s",
                });
                rows.push(Row {
                    bench: "GET /health/ under wrk p99".into(),
                    backend,
                    size: secs.into(),
                    value: p99,
                    unit: "ms",
                });
            }
            _ => rows.push(Row {
                bench: "GET /health/ under wrk: wrk not installed (apt-get install wrk)".into(),
                backend,
                size: "-".into(),
                value: f64::NAN,
                unit: "-",
            }),
        }
    }
    Ok(rows)
}

/// `1.23ms`, `850.00us`, `1.2s` → milliseconds.
fn parse_wrk_time(s: &str) -> f64 {
    let (num, mul) = if let Some(v) = s.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1000.0)
    } else {
        (s, 1.0)
    };
    num.parse::<f64>().map(|v| v * mul).unwrap_or(f64::NAN)
}
