//! End-to-end tests of the `bdc` binary as a process, on SQLite and on a
//! real PostgreSQL server (a fresh uniquely named database per test).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use bdc_testsupport::{Kind, TestDb};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example_index() -> String {
    repo_root()
        .join("examples/wg21/index.json")
        .display()
        .to_string()
}

struct Env {
    db: TestDb,
    workspace: tempfile::TempDir,
}

impl Env {
    async fn new(kind: Kind) -> Env {
        let db = TestDb::new(kind).await;
        let workspace = tempfile::tempdir().unwrap();
        let env = Env { db, workspace };
        if kind == Kind::Postgres {
            env.bdc().arg("migrate").assert().success();
        }
        env
    }

    fn bdc(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin!("bdc"));
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", self.db.url())
            .env("WORKSPACE_DIR", self.workspace.path())
            .env("BDC_LOG", "warn")
            .env("BDC_WG21_INDEX_URL", "http://127.0.0.1:9/unreachable.json")
            .current_dir(repo_root());
        c
    }

    fn stdout(&self, args: &[&str]) -> String {
        let out = self
            .bdc()
            .args(args)
            .assert()
            .success()
            .get_output()
            .clone();
        String::from_utf8(out.stdout).unwrap()
    }
}

use bdc_testsupport::both_backends as both;

#[test]
fn version_includes_git_description() {
    let out = Command::new(assert_cmd::cargo::cargo_bin!("bdc"))
        .arg("--version")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let s = String::from_utf8(out).unwrap();
    assert!(
        s.starts_with(&format!("bdc {} (", env!("CARGO_PKG_VERSION"))),
        "{s}"
    );
}

#[test]
fn run_scheduled_help_lists_the_stable_flags() {
    let out = Command::new(assert_cmd::cargo::cargo_bin!("bdc"))
        .args(["run-scheduled", "--help"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let s = String::from_utf8(out).unwrap();
    for flag in [
        "--schedule",
        "--group",
        "--strict",
        "--day-of-week",
        "--day-of-month",
        "--interval-minutes",
    ] {
        assert!(s.contains(flag), "{flag} missing from:\n{s}");
    }
}

both!(wg21_run_is_recorded_and_idempotent);
async fn wg21_run_is_recorded_and_idempotent(kind: Kind) {
    let env = Env::new(kind).await;
    let first = env.stdout(&["run", "wg21-papers", "--index", &example_index()]);
    assert!(first.contains("wg21-papers: success"), "{first}");
    assert!(first.contains("inserted="), "{first}");
    let count: u64 = env
        .stdout(&["activity", "--source", "wg21", "--count"])
        .trim()
        .parse()
        .unwrap();
    assert!(count >= 30, "expected the example papers, got {count}");
    // Second run: nothing new.
    let second = env.stdout(&["run", "run_wg21_paper_tracker", "--index", &example_index()]);
    assert!(second.contains("success"), "{second}");
    assert!(!second.contains("inserted=1"), "{second}");
    let again: u64 = env
        .stdout(&["activity", "--source", "wg21", "--count"])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(again, count);

    let json = env.stdout(&[
        "activity", "--source", "wg21", "--limit", "5", "--format", "json",
    ]);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(5));
    let dates: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["occurred_at"].as_str().unwrap())
        .collect();
    let mut sorted = dates.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(dates, sorted, "newest first");

    let csv = env.stdout(&[
        "activity", "--kind", "paper", "--limit", "3", "--format", "csv",
    ]);
    assert!(
        csv.starts_with("occurred_at,source_system,kind,external_id"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 4, "{csv}");

    let table = env.stdout(&["activity", "--since", "2000-01-01", "--limit", "2"]);
    assert!(table.starts_with("OCCURRED (UTC)"), "{table}");

    let runs = env.stdout(&["runs", "--collector", "wg21-papers", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_str(&runs).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r["status"] == "success"));
    assert_eq!(runs[0]["command"], "run_wg21_paper_tracker");
    let table = env.stdout(&["runs"]);
    assert!(table.contains("wg21-papers"), "{table}");
}

both!(failures_are_classified_and_recorded);
async fn failures_are_classified_and_recorded(kind: Kind) {
    let env = Env::new(kind).await;
    // A missing index file: not_found, exit 1.
    let out = env
        .bdc()
        .args(["run", "wg21-papers", "--index", "/nonexistent/index.json"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("failed"), "{err}");
    // An unreachable server: network.
    env.bdc().args(["run", "wg21-papers"]).assert().code(1);
    // A wrong flag: a usage error (exit 2), nothing recorded.
    env.bdc()
        .args(["run", "wg21-papers", "--bogus"])
        .assert()
        .code(2);
    // A flag that parses but a value the collector refuses: config.
    env.bdc()
        .args(["run", "wg21-papers", "--index", " "])
        .assert()
        .code(1);
    let runs = env.stdout(&["runs", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_str(&runs).unwrap();
    let cats: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["failure_category"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(cats, ["config", "network", "not_found"], "{runs}");
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "failed")
    );
}

both!(unknown_and_unavailable_collectors);
async fn unknown_and_unavailable_collectors(kind: Kind) {
    let env = Env::new(kind).await;
    let out = env
        .bdc()
        .args(["run", "nope"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("unknown collector") && err.contains("wg21-papers"),
        "{err}"
    );
    // A collector the deployment switched off is not available.
    let out = env
        .bdc()
        .env("BDC_DISABLED_COLLECTORS", "search-index-sync")
        .args(["run", "run_cppa_pinecone_sync"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("not available")
    );
    let runs = env.stdout(&["runs", "--format", "json"]);
    assert!(runs.contains("\"not_available\""), "{runs}");
    let list = env.stdout(&["collectors"]);
    assert!(list.contains("run_wg21_paper_tracker"), "{list}");
}

both!(run_scheduled_strict_and_lenient);
async fn run_scheduled_strict_and_lenient(kind: Kind) {
    let env = Env::new(kind).await;
    let schedule = repo_root().join("examples/schedule.yaml");
    let schedule = schedule.to_str().unwrap();
    // Lenient: a task whose collector the deployment switched off
    // (BDC_DISABLED_COLLECTORS) is recorded as not available.
    let out = env
        .bdc()
        .env("BDC_DISABLED_COLLECTORS", "run_cppa_pinecone_sync")
        .args([
            "run-scheduled",
            "--schedule",
            schedule,
            "--group",
            "later",
            "--day-of-week",
            "0",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let out = String::from_utf8(out.stdout).unwrap();
    assert!(out.contains("run_cppa_pinecone_sync"), "{out}");
    assert!(out.contains("not available"), "{out}");
    assert!(out.contains("disabled"), "{out}");
    // Strict: refused up front, nothing runs, exit 2 naming file and line.
    let out = env
        .bdc()
        .env("BDC_DISABLED_COLLECTORS", "search-index-sync")
        .args([
            "run-scheduled",
            "--schedule",
            schedule,
            "--group",
            "later",
            "--strict",
        ])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("schedule.yaml:") && err.contains("run_cppa_pinecone_sync"),
        "{err}"
    );
    // Interval tick: only the interval group's task is due.
    let out = env.stdout(&[
        "run-scheduled",
        "--schedule",
        schedule,
        "--interval-minutes",
        "60",
    ]);
    assert!(out.contains("1 task(s) ran, 0 failed"), "{out}");
    // Strict mode via the environment, with a failing task: exit 1.
    let dir = tempfile::tempdir().unwrap();
    let failing = dir.path().join("failing.yaml");
    std::fs::write(
        &failing,
        "groups:\n  g:\n    tasks:\n      - command: wg21-papers\n        schedule: daily\n        args: [\"--index\", \"/nonexistent.json\"]\n",
    )
    .unwrap();
    env.bdc()
        .args(["run-scheduled", "--schedule", failing.to_str().unwrap()])
        .env("BOOST_COLLECTOR_SCHEDULE_STRICT", "true")
        .assert()
        .code(1);
    // Non-strict: same failure is recorded, exit 0.
    env.bdc()
        .args(["run-scheduled", "--schedule", failing.to_str().unwrap()])
        .assert()
        .success();
}

#[test]
fn schedule_errors_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "groups:\n  g:\n    tasks:\n      - command: wg21-papers\n        schedule: hourly\n",
    )
    .unwrap();
    let out = Command::new(assert_cmd::cargo::cargo_bin!("bdc"))
        .env("WORKSPACE_DIR", dir.path())
        .args(["run-scheduled", "--schedule", bad.to_str().unwrap()])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.yaml:5"), "{err}");
    assert!(err.contains("schedule"), "{err}");
    assert!(err.contains("hourly"), "{err}");
}

#[test]
fn bad_environment_values_name_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(assert_cmd::cargo::cargo_bin!("bdc"))
        .env("WORKSPACE_DIR", dir.path())
        .env("HEALTH_COLLECTOR_STALE_HOURS", "soon")
        .args(["runs"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("HEALTH_COLLECTOR_STALE_HOURS") && err.contains("soon"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_requires_migrate_and_refuses_newer_schema() {
    let db = TestDb::postgres().await;
    let ws = tempfile::tempdir().unwrap();
    let bdc = || {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin!("bdc"));
        c.env("DATABASE_URL", db.url())
            .env("WORKSPACE_DIR", ws.path());
        c
    };
    let out = bdc().args(["runs"]).assert().code(1).get_output().clone();
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("bdc migrate")
    );
    bdc().arg("migrate").assert().success();
    let out = bdc().arg("migrate").assert().success().get_output().clone();
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("up to date")
    );
    let storage = bdc_storage::Storage::connect(db.url(), &Default::default())
        .await
        .unwrap();
    storage
        .execute_raw(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (999999, 'future', TRUE, '\\x00'::bytea, 1)"
                .into(),
        )
        .await
        .unwrap();
    storage.close().await;
    let out = bdc().arg("migrate").assert().code(1).get_output().clone();
    assert!(String::from_utf8(out.stderr).unwrap().contains("newer"));
}

/// Start `bdc serve` on an ephemeral port; returns the child and base URL.
fn start_serve(env: &Env, extra: &[(&str, &str)]) -> (std::process::Child, String) {
    let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin!("bdc"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", env.db.url())
        .env("WORKSPACE_DIR", env.workspace.path())
        .env("BDC_LOG", "warn")
        .current_dir(repo_root())
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--schedule",
            "examples/schedule.yaml",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_end_matches("/health/")
        .to_owned();
    (child, url)
}

both!(serve_answers_health);
async fn serve_answers_health(kind: Kind) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env = Env::new(kind).await;
    env.stdout(&["run", "wg21-papers", "--index", &example_index()]);
    // A collector run ends with its index sync: searchable at once.
    let found = env.stdout(&["search", "prvalues member access", "--format", "json"]);
    assert!(
        found.contains("Class member access with prvalues"),
        "{found}"
    );
    // People for the person page: the demo mbox's senders, merged.
    let mbox = repo_root().join("examples/mailing-list/boost-demo.mbox");
    env.stdout(&[
        "run",
        "mailing-list",
        "--mbox",
        mbox.to_str().unwrap(),
        "--list",
        "boost-demo",
    ]);
    env.stdout(&["run", "identities"]);
    env.stdout(&["run", "search-index-sync"]);
    // `bdc search`: ranked JSON, lenient syntax, a person filter, rebuild.
    let json = env.stdout(&["search", "number parsing", "--format", "json"]);
    let hits: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        hits[0]["title"]
            .as_str()
            .unwrap()
            .contains("faster number parsing"),
        "{json}"
    );
    assert_eq!(hits[0]["source"], "mailing-list");
    env.stdout(&["search", "a AND OR \"(", "--source", "mailing-list"]);
    let by_alice = env.stdout(&[
        "search",
        "json",
        "--person",
        "alice@example.org",
        "--format",
        "json",
    ]);
    assert!(by_alice.contains("alice@example.org"), "{by_alice}");
    env.bdc()
        .args(["search", "json", "--person", "nobody@nowhere.invalid"])
        .assert()
        .code(2);
    let rebuilt = env
        .bdc()
        .args(["search", "--reindex", "number parsing", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(String::from_utf8(rebuilt.stdout).unwrap(), json);
    let (mut child, base) = start_serve(
        &env,
        &[
            ("HEALTH_CHECK_TOKEN", "s3cret"),
            ("BDC_API_TOKEN", "api-s3cret"),
        ],
    );
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let body: serde_json::Value = loop {
        let resp = client
            .get(format!("{base}/health/"))
            .bearer_auth("s3cret")
            .send()
            .await;
        if let Ok(r) = resp
            && r.status() == 200
        {
            break r.json().await.unwrap();
        }
        assert!(Instant::now() < deadline, "serve never became healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(body["status"], "healthy");
    for key in [
        "database",
        "celery_workers",
        "collector_groups",
        "collector_meta",
        "pinecone_sync",
    ] {
        assert!(body["checks"].get(key).is_some(), "{key} missing: {body}");
    }
    assert!(
        body["checks"]["collector_groups"].get("demo").is_some(),
        "{body}"
    );
    let unauth = client.get(format!("{base}/health/")).send().await.unwrap();
    assert_eq!(unauth.status(), 401);
    // The dashboard and its domain pages, behind the API token.
    for page in [
        "/dashboard/",
        "/dashboard/runs",
        "/dashboard/jobs",
        "/dashboard/greenness",
        "/dashboard/audit",
        "/dashboard/people",
        "/dashboard/search",
    ] {
        let r = client.get(format!("{base}{page}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{page} without a token");
        let r = client
            .get(format!("{base}{page}"))
            .bearer_auth("api-s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{page}");
        let html = r.text().await.unwrap();
        assert!(html.contains("<html"), "{page}: {html}");
    }
    let runs = client
        .get(format!(
            "{base}/dashboard/runs?collector=wg21-papers&status=success"
        ))
        .bearer_auth("api-s3cret")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(runs.contains("data-collector=\"wg21-papers\""), "{runs}");
    let audit = client
        .get(format!(
            "{base}/dashboard/audit?table=activity_records&limit=5"
        ))
        .bearer_auth("api-s3cret")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(audit.contains("id=\"timeline\""), "{audit}");
    // The person page: found by address, every source's records newest
    // first with a chart.
    let get = |path: String| {
        let client = client.clone();
        async move {
            client
                .get(path)
                .bearer_auth("api-s3cret")
                .send()
                .await
                .unwrap()
        }
    };
    let people = get(format!("{base}/dashboard/people?q=alice%40example.org"))
        .await
        .text()
        .await
        .unwrap();
    let href = people
        .split("href=\"/dashboard/people/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no person link: {people}"))
        .to_owned();
    let person = get(format!("{base}/dashboard/people/{href}")).await;
    assert_eq!(person.status(), 200);
    let person = person.text().await.unwrap();
    assert!(person.contains("Alice Example"), "{person}");
    assert!(person.contains("id=\"profiles\""), "{person}");
    assert!(person.contains("person-activity"), "chart: {person}");
    assert!(
        person.contains("class=\"record\" data-source=\"mailing-list\""),
        "{person}"
    );
    assert_eq!(
        get(format!("{base}/dashboard/people/999999"))
            .await
            .status(),
        404
    );
    // Search: the page and the JSON API (bearer token).
    let page = get(format!("{base}/dashboard/search?q=number+parsing"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"results\""), "{page}");
    assert!(page.contains("<b>parsing</b>"), "{page}");
    let api = client
        .get(format!(
            "{base}/api/search?q=number%20parsing&source=mailing-list"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    let api: serde_json::Value = get(format!(
        "{base}/api/search?q=number%20parsing&source=mailing-list&limit=2"
    ))
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(api["results"].as_array().unwrap().len(), 2, "{api}");
    assert_eq!(
        get(format!("{base}/api/search?q=x&since=yesterday"))
            .await
            .status(),
        400
    );
    // Graceful shutdown on SIGTERM.
    let _ = StdCommand::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "serve exited with {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
