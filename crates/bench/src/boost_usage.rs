//! `boost-usage` benchmark: `--task monitor_content` over N C++
//! repositories (`--quick`: 300; else 2,000) pushed over four days, a third
//! of them including Boost in two files plus a `CMakeLists.txt`, served by
//! the tests' stand-in of the GitHub REST API (wiremock, answering at
//! once). Pacing and pauses run on a manual clock (no real sleeping), so
//! the figure is our own overhead: repositories scanned per minute, API
//! requests per new repository, and the rate-limit points an unchanged
//! re-run costs (target 0: every request conditional, unchanged blobs not
//! fetched).

#[path = "../../collectors/boost-usage/tests/common/fake.rs"]
#[allow(dead_code, clippy::all)]
mod fake;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use bdc_collector::{CollectContext, Collector};
use bdc_collector_boost_usage::{BoostUsageCollector, NAME, SCHEMA};
use bdc_config::Config;
use bdc_http::ManualClock;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};
use chrono::TimeZone;
use wiremock::{Mock, MockServer};

use crate::{Row, backend_name};

pub async fn run(kind: Kind, quick: bool) -> Result<Vec<Row>> {
    let n: usize = if quick { 300 } else { 2_000 };
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    storage
        .migrate_parts(&[
            &bdc_http::SCHEMA,
            &bdc_collector_boost_libraries::SCHEMA,
            &SCHEMA,
        ])
        .await?;
    let server = MockServer::start().await;
    let fake = fake::Fake::default();
    {
        let mut m = fake
            .0
            .lock()
            .map_err(|_| anyhow::anyhow!("fake model lock poisoned"))?;
        let days = ["2026-03-07", "2026-03-08", "2026-03-09", "2026-03-10"];
        for i in 0..n {
            let day = days[i % days.len()];
            let files: Vec<(String, String)> = if i % 3 == 0 {
                vec![
                    (
                        "src/main.cpp".into(),
                        "#include <boost/asio.hpp>\n#include <boost/json.hpp>\nint main() {}\n"
                            .into(),
                    ),
                    (
                        "include/x.hpp".into(),
                        "#include <boost/smart_ptr/shared_ptr.hpp>\n".into(),
                    ),
                    (
                        "CMakeLists.txt".into(),
                        "find_package(Boost 1.83 REQUIRED)\n".into(),
                    ),
                ]
            } else {
                vec![("src/main.cpp".into(), "int main() {}\n".into())]
            };
            let refs: Vec<(&str, &str)> = files
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            m.repos.insert(
                format!("owner{i}/project{i}"),
                fake::repo(11 + (i as u64 % 500), "2019-01-01", day, &refs),
            );
        }
    }
    Mock::given(wiremock::matchers::any())
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    let workspace = tempfile::tempdir()?;
    let ws = workspace.path().display().to_string();
    let api = server.uri();
    let config = Arc::new(Config::from_lookup(|k| match k {
        "WORKSPACE_DIR" => Some(ws.clone()),
        "DATABASE_URL" => Some("sqlite::memory:".into()),
        "GITHUB_API_URL" => Some(api.clone()),
        "GITHUB_TOKENS_SCRAPING" => Some("tok-a,tok-b".into()),
        _ => None,
    })?);
    let ctx = CollectContext {
        run_id: "bench".into(),
        command: NAME.into(),
        args: [
            "--task",
            "monitor_content",
            "--since",
            "2026-03-07",
            "--until",
            "2026-03-10",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        schedule_group: None,
        storage: storage.clone(),
        config,
        interactive: false,
    };
    let clock = Arc::new(ManualClock::new(
        chrono::Utc
            .with_ymd_and_hms(2026, 3, 10, 12, 0, 0)
            .single()
            .context("clock start")?,
    ));
    let collector = BoostUsageCollector::with_clock(clock);
    let t = Instant::now();
    let first = collector.run(&ctx).await?;
    let secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let again = collector.run(&ctx).await?;
    let resecs = t.elapsed().as_secs_f64();
    drop(storage);
    let scanned = first.count("repos_scanned");
    let b = backend_name(kind);
    let size = format!("{n}");
    let row = |bench: &str, value: f64, unit: &'static str| Row {
        bench: bench.into(),
        backend: b,
        size: size.clone(),
        value,
        unit,
    };
    Ok(vec![
        row(
            "boost-usage: repos scanned (instant stand-in)",
            scanned as f64 / secs * 60.0,
            "repos/min",
        ),
        row(
            "boost-usage: API requests per new repo",
            first.count("requests") as f64 / scanned.max(1) as f64,
            "requests",
        ),
        row(
            "boost-usage: unchanged re-run rate-limit points",
            again.count("rate_limit_points") as f64,
            "points",
        ),
        row(
            "boost-usage: unchanged re-run",
            again.count("repos_scanned") as f64 / resecs * 60.0,
            "repos/min",
        ),
    ])
}
