//! GitHub collector benchmarks.
//!
//! * **Commit sync** (the original's `test_github_commits_throughput.py`):
//!   N GitHub-shaped commit payloads (`GET /repos/{o}/{r}/commits/{sha}`
//!   bodies, one modified file each) parsed and stored through the
//!   collector's sync path (`add_commits` + `GithubStore::write`: commit,
//!   author account, file, file change and activity rows), in
//!   transactions of 1,000 commits. N = 50 (median of 41 runs after 5
//!   warm-up runs, fresh commits each time; all runs interleaved) and
//!   N = 50,000 (`--quick`: 5,000; 500 authors), without and with the audit triggers
//!   on the five tables (the later expansion of pending captures is
//!   reported beside it), and the client's share of an N=50 sync (parse
//!   and batch, no database). Each large run starts after a checkpoint.
//!   The original: 50 commits in 0.137 s median (~365 commits/s), every
//!   commit by the same author (its payloads carry `commit.author` only,
//!   so each resolves to one placeholder account). The N=50 headline rows
//!   do the same with one GitHub account; rows marked "a new author per
//!   commit" also write 50 new accounts per run, a heavier load than the
//!   original's. The original replays the same 50 payloads in every
//!   round, so after its first round it mostly updates commits it already
//!   has; every run here writes new commits, which is heavier too.
//! * **Re-sync of unchanged repos**: `github-activity --org boostorg`
//!   against a local fake GitHub with 200 repositories (`--quick`: 50),
//!   once to fill the database, then again: rate-limit points spent
//!   (target 0: every request conditional) and wall time.

#[path = "../../collectors/github/tests/common/fake.rs"]
#[allow(dead_code, clippy::all)]
mod fake;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use bdc_collector::{CollectContext, Collector};
use bdc_collector_github::model::Commit;
use bdc_collector_github::sync::add_commits;
use bdc_collector_github::{Batch, GithubCollector, GithubStore};
use bdc_config::Config;
use bdc_core::Actor;
use bdc_http::{Clock, SystemClock};
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};
use serde_json::json;

use crate::{Row, backend_name};

const ORIGINAL_COMMITS_PER_S: f64 = 50.0 / 0.137;
/// N = 50 runs: warm-up runs, then timed runs (the median is reported).
const N50_WARMUP: usize = 5;
const N50_RUNS: usize = 41;
const TABLES: &[&str] = &[
    "github_commits",
    "github_users",
    "github_files",
    "github_file_changes",
    "activity_records",
];

/// Who wrote the commits of a payload set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Authors {
    /// Every commit by one account (the original's scenario).
    One,
    /// Commit `i` by account `i % k`.
    Cycle(usize),
    /// Every commit by an account of its own, new to the database.
    EachNew,
}

impl Authors {
    fn of(self, i: usize) -> usize {
        match self {
            Authors::One => 0,
            Authors::Cycle(k) => i % k.max(1),
            Authors::EachNew => i,
        }
    }
}

/// `n` commit detail payloads as one JSON array (as a client would hold
/// them after fetching), commits `offset..offset + n`.
fn payloads(n: usize, offset: usize, authors: Authors) -> Result<Vec<u8>> {
    let template = fake::fixture("commit");
    let t0 = fake::base_time();
    let items: Vec<serde_json::Value> = (offset..offset + n)
        .map(|i| {
            let mut c = template.clone();
            let sha = format!("{:040x}", 0xbe00_0000_0000u64 + i as u64);
            let at = fake::ts(t0 + chrono::Duration::seconds(i as i64));
            let author = authors.of(i);
            let login = format!("dev{author}");
            c["sha"] = json!(sha);
            c["html_url"] = json!(format!("https://github.com/boostorg/bench/commit/{sha}"));
            c["commit"]["author"]["date"] = json!(at);
            c["commit"]["committer"]["date"] = json!(at);
            c["commit"]["message"] = json!(format!("Commit {i}\n\nBody of commit {i}."));
            let user = json!({"login": login, "id": 10_000 + author, "type": "User",
                "html_url": format!("https://github.com/{login}"), "site_admin": false});
            c["author"] = user.clone();
            c["committer"] = user;
            c["files"][0]["filename"] = json!(format!("src/module{}/file{i}.cpp", i % 97));
            c
        })
        .collect();
    Ok(serde_json::to_vec(&items)?)
}

/// Parse and store `bytes` through the sync path.
async fn sync(store: &GithubStore, bytes: &[u8]) -> Result<()> {
    let commits: Vec<Commit> = serde_json::from_slice(bytes)?;
    let mut it = commits.into_iter();
    loop {
        let chunk: Vec<Commit> = it.by_ref().take(1000).collect();
        if chunk.is_empty() {
            break;
        }
        let mut batch = Batch::default();
        add_commits(&mut batch, "boostorg/bench", 4242, chunk)?;
        store.write(&batch, Some("bench")).await?;
    }
    Ok(())
}

/// A database for the commit-sync benchmark, audit triggers on or off.
struct SyncDb {
    storage: Storage,
    store: GithubStore,
    label: &'static str,
    /// Last: dropping it drops the database, after the pool.
    _db: TestDb,
}

async fn sync_db(kind: Kind, audit: bool) -> Result<SyncDb> {
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    storage
        .migrate_parts(&[
            &bdc_http::SCHEMA,
            &bdc_collector_github::SCHEMA,
            &bdc_identity::SCHEMA,
        ])
        .await?;
    let storage = storage.with_actor(&Actor::job("github-activity", "bench"));
    if audit {
        bdc_audit::install(&storage).await?;
        let cfg = bdc_audit::AuditConfig::parse("cover_platform_tables: false\n", "bench")?;
        let tables: Vec<String> = TABLES.iter().map(|t| (*t).to_owned()).collect();
        bdc_audit::triggers::cover_tables(&storage, &cfg, &tables, false).await?;
    }
    let store = GithubStore::new(storage.clone(), "github-activity");
    let label = if audit { "audit on" } else { "audit off" };
    Ok(SyncDb {
        storage,
        store,
        label,
        _db: db,
    })
}

/// The median of `samples` (seconds).
fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}

/// N = 50 on every database in `dbs`, in both author scenarios, all
/// runs interleaved (run r of every database and scenario, then run r + 1;
/// the order rotated by one every round), so drift of a shared machine and
/// the server's background work hit them alike: 5 warm-up runs
/// (connections, statement and plan caches; the one author's account is
/// created by the first), then the median of 41 (a run takes
/// milliseconds, so one noisy neighbour moves a median of a few runs);
/// fresh commits each time.
async fn n50_interleaved(kind: Kind, dbs: &[&SyncDb]) -> Result<Vec<Row>> {
    // (scenario, label suffix, first commit index of its runs)
    let scenarios = [
        (Authors::One, "", 1_000_000),
        (Authors::EachNew, ", a new author per commit", 2_000_000),
    ];
    let cells: Vec<(usize, usize)> = (0..scenarios.len())
        .flat_map(|s| (0..dbs.len()).map(move |d| (s, d)))
        .collect();
    let mut samples = vec![Vec::new(); cells.len()];
    for r in 0..N50_WARMUP + N50_RUNS {
        let bytes: Vec<Vec<u8>> = scenarios
            .iter()
            .map(|(authors, _, first)| payloads(50, first + r * 50, *authors))
            .collect::<Result<_>>()?;
        // Rotate: over any len(cells) consecutive rounds every cell runs
        // once in every position (first after building the payloads, last
        // before the next round, ...).
        let n = cells.len();
        for c in (0..n).map(|k| (k + r) % n) {
            let (s, d) = cells[c];
            let start = Instant::now();
            sync(&dbs[d].store, &bytes[s]).await?;
            if r >= N50_WARMUP {
                samples[c].push(start.elapsed().as_secs_f64());
            }
        }
    }
    let backend = backend_name(kind);
    let mut rows = Vec::new();
    for (&(s, d), samples) in cells.iter().zip(samples) {
        let label = format!("{}{}", dbs[d].label, scenarios[s].1);
        let median = median(samples);
        rows.push(Row {
            bench: format!("github commit sync N=50 ({label})"),
            backend,
            size: "50".into(),
            value: 50.0 / median,
            unit: "commits/s",
        });
        rows.push(Row {
            bench: format!("  ratio to the original 365/s ({label})"),
            backend,
            size: "50".into(),
            value: 50.0 / median / ORIGINAL_COMMITS_PER_S,
            unit: "x",
        });
    }
    Ok(rows)
}

/// N = 50,000 (`--quick`: 5,000) on `db`, with the later audit flush.
async fn n_large(kind: Kind, quick: bool, db: &SyncDb) -> Result<Vec<Row>> {
    let (storage, store, label) = (&db.storage, &db.store, db.label);
    let backend = backend_name(kind);
    let mut rows = Vec::new();
    bdc_audit::flush(storage).await?;
    let n = if quick { 5_000 } else { 50_000 };
    let bytes = payloads(n, 0, Authors::Cycle(500))?;
    let start = Instant::now();
    sync(store, &bytes).await?;
    let s = start.elapsed().as_secs_f64();
    // Both backends defer expanding pending captures into audit_changes
    // (bdc_audit::flush, run after each job and every few seconds by the
    // daemon): report that work too, and the throughput including it.
    let flush_start = Instant::now();
    let flushed = bdc_audit::flush(storage).await?;
    let flush_s = flush_start.elapsed().as_secs_f64();
    if flushed > 0 {
        rows.push(Row {
            bench: format!("  audit flush after N={n} ({flushed} changes)"),
            backend,
            size: n.to_string(),
            value: flushed as f64 / flush_s,
            unit: "changes/s",
        });
        rows.push(Row {
            bench: format!("  sync + flush N={n} ({label})"),
            backend,
            size: n.to_string(),
            value: n as f64 / (s + flush_s),
            unit: "commits/s",
        });
    }
    rows.push(Row {
        bench: format!("github commit sync N={n} ({label})"),
        backend,
        size: n.to_string(),
        value: n as f64 / s,
        unit: "commits/s",
    });
    rows.push(Row {
        bench: format!("  ratio to the original 365/s ({label})"),
        backend,
        size: n.to_string(),
        value: n as f64 / s / ORIGINAL_COMMITS_PER_S,
        unit: "x",
    });
    Ok(rows)
}

/// Re-sync of unchanged repositories (`--only github-resync`).
pub async fn resync(kind: Kind, quick: bool) -> Result<Vec<Row>> {
    let n: i64 = if quick { 50 } else { 200 };
    let repos = (0..n)
        .map(|i| {
            fake::RepoData::generate(
                "boostorg",
                &format!("lib{i}"),
                10_000 + i,
                fake::Sizes::small(),
            )
        })
        .collect();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let gh = fake::FakeGithub::new(repos, clock);
    let server = gh.clone().start().await;
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    storage
        .migrate_parts(&[
            &bdc_http::SCHEMA,
            &bdc_collector_github::SCHEMA,
            &bdc_identity::SCHEMA,
        ])
        .await?;
    let ws = tempfile::tempdir()?;
    let (wsp, api) = (ws.path().display().to_string(), server.uri());
    let config = Arc::new(Config::from_lookup(|k| match k {
        "WORKSPACE_DIR" => Some(wsp.clone()),
        "GITHUB_API_URL" => Some(api.clone()),
        _ => None,
    })?);
    let ctx = |run: &str| CollectContext {
        run_id: run.into(),
        command: "github-activity".into(),
        args: vec!["--org".into(), "boostorg".into()],
        schedule_group: None,
        storage: storage.with_actor(&Actor::job("github-activity", run)),
        config: Arc::clone(&config),
        interactive: false,
    };
    let collector = GithubCollector::activity();
    let start = Instant::now();
    let first = collector.run(&ctx("bench-initial")).await?;
    let initial_s = start.elapsed().as_secs_f64();
    let points_before = gh.points();
    let start = Instant::now();
    let second = collector.run(&ctx("bench-resync")).await?;
    let resync_s = start.elapsed().as_secs_f64();
    let backend = backend_name(kind);
    let size = format!("{n} repos");
    let rows = vec![
        Row {
            bench: "github initial sync (fake GitHub)".into(),
            backend,
            size: size.clone(),
            value: initial_s,
            unit: "s",
        },
        Row {
            bench: "  requests / rate-limit points (initial)".into(),
            backend,
            size: size.clone(),
            value: first.count("rate_limit_points") as f64,
            unit: "points",
        },
        Row {
            bench: "github re-sync of unchanged repos".into(),
            backend,
            size: size.clone(),
            value: resync_s,
            unit: "s",
        },
        Row {
            bench: "  rate-limit points spent (re-sync)".into(),
            backend,
            size: size.clone(),
            value: (gh.points() - points_before) as f64,
            unit: "points",
        },
        Row {
            bench: "  conditional requests answered 304".into(),
            backend,
            size,
            value: second.count("not_modified") as f64,
            unit: "requests",
        },
    ];
    storage.close().await;
    Ok(rows)
}

/// The client's share of an N=50 sync: parsing the payloads and building
/// the batch (`add_commits` and the `Batch`), no database; the median of
/// 41 runs of its own (after 5 warm-ups) over the same payloads, in
/// milliseconds per 50 commits, so the database's share of the N=50 rows
/// can be told apart.
fn client_share(kind: Kind) -> Result<Row> {
    let mut samples = Vec::new();
    for r in 0..N50_WARMUP + N50_RUNS {
        let bytes = payloads(50, 1_000_000 + r * 50, Authors::One)?;
        let start = Instant::now();
        let commits: Vec<Commit> = serde_json::from_slice(&bytes)?;
        let mut batch = Batch::default();
        add_commits(&mut batch, "boostorg/bench", 4242, commits)?;
        std::hint::black_box(&batch);
        if r >= N50_WARMUP {
            samples.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(Row {
        bench: "  N=50 client share (no database)".into(),
        backend: backend_name(kind),
        size: "50".into(),
        value: median(samples) * 1000.0,
        unit: "ms",
    })
}

/// Let the server finish the background work of the previous run (dirty
/// buffers, WAL) before a large run, so the second large run does not pay
/// for the first: `CHECKPOINT` (PostgreSQL), `wal_checkpoint(TRUNCATE)`
/// (SQLite). Best effort: a role that may not checkpoint measures as is.
async fn settle(db: &SyncDb) {
    let sql = match db.storage.backend() {
        bdc_storage::Backend::Postgres => "CHECKPOINT",
        bdc_storage::Backend::Sqlite => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    if let Err(e) = db.storage.execute_raw(sql.into()).await {
        eprintln!("bdc-bench: {sql} failed ({e}); measuring without it");
    }
}

/// Commit sync throughput, audit off and on (`--only github-sync`).
pub async fn sync_throughput(kind: Kind, quick: bool) -> Result<Vec<Row>> {
    let off = sync_db(kind, false).await?;
    let on = match sync_db(kind, true).await {
        Ok(on) => on,
        Err(e) => {
            off.storage.close().await;
            return Err(e);
        }
    };
    let rows = async {
        let mut rows = n50_interleaved(kind, &[&off, &on]).await?;
        rows.push(client_share(kind)?);
        for db in [&off, &on] {
            settle(db).await;
            rows.extend(n_large(kind, quick, db).await?);
        }
        anyhow::Ok(rows)
    }
    .await;
    // Close the pools before the databases are dropped, whatever happened.
    off.storage.close().await;
    on.storage.close().await;
    rows
}
