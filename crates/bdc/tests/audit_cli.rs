//! `bdc audit ...` end to end (the real binary), on SQLite and PostgreSQL:
//! `bdc migrate` covers the platform's tables, a collector run is captured
//! with its job actor, and timeline / show / export / purge / verify work.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use bdc_testsupport::{Kind, TestDb};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Env {
    db: TestDb,
    workspace: tempfile::TempDir,
}

impl Env {
    fn bdc(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin!("bdc"));
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", self.db.url())
            .env("WORKSPACE_DIR", self.workspace.path())
            .env("BDC_LOG", "warn")
            .env("USER", "tester")
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

both!(audit_commands_end_to_end);
async fn audit_commands_end_to_end(kind: Kind) {
    let env = Env {
        db: TestDb::new(kind).await,
        workspace: tempfile::tempdir().unwrap(),
    };
    let out = env.stdout(&["migrate"]);
    assert!(out.contains("audit: 12 tables covered"), "{out}");
    let index = repo_root().join("examples/wg21/index.json");
    let out = env.stdout(&[
        "run",
        "wg21-papers",
        "--index",
        &index.display().to_string(),
    ]);
    assert!(out.contains("success"), "{out}");
    // `bdc run` expanded its pending captures before exiting.
    let out = env.stdout(&["audit", "flush"]);
    assert!(out.starts_with("0 pending change(s)"), "{out}");

    let out = env.stdout(&["audit", "verify"]);
    assert!(out.contains("activity_records: covered"), "{out}");
    let fail = env
        .bdc()
        .args(["audit", "verify", "--expected-table", "no_such_table"])
        .assert()
        .failure()
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&fail.stderr).contains("no_such_table"));

    let json = env.stdout(&[
        "audit",
        "timeline",
        "--table",
        "activity_records",
        "--actor-type",
        "job",
        "--limit",
        "5",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert_eq!(items[0]["actor"]["collector"], "wg21-papers");
    let tx = items[0]["transaction_id"].as_i64().unwrap().to_string();
    let show = env.stdout(&["audit", "show", &tx]);
    assert!(show.contains("wg21-papers"), "{show}");

    let count = env.stdout(&[
        "audit",
        "export",
        "--format",
        "ndjson",
        "--table",
        "activity_records",
        "--dry-run",
    ]);
    let n: u64 = count.split_whitespace().next().unwrap().parse().unwrap();
    assert!(n >= 30, "{count}");
    let nd = env.stdout(&[
        "audit",
        "export",
        "--format",
        "ndjson",
        "--table",
        "activity_records",
    ]);
    assert_eq!(nd.lines().count() as u64, n);
    let csv = env.stdout(&["audit", "export", "--format", "csv", "--max-rows", "3"]);
    assert_eq!(csv.lines().count(), 4, "{csv}");

    let purge = env.stdout(&["audit", "purge", "--execute"]);
    assert!(purge.contains("dry run"), "{purge}");
    let dry = env.stdout(&["audit", "gen-triggers", "--all-covered", "--dry-run"]);
    assert!(dry.contains("up to date"), "{dry}");
    // Migrating again is idempotent.
    let out = env.stdout(&["migrate"]);
    assert!(out.contains("0 triggers (re)generated"), "{out}");
}

/// The embedded SQLite default needs no `bdc migrate`: the first command
/// migrates it and installs the capture.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_is_captured_without_migrate() {
    let env = Env {
        db: TestDb::new(Kind::Sqlite).await,
        workspace: tempfile::tempdir().unwrap(),
    };
    let index = repo_root().join("examples/wg21/index.json");
    let out = env.stdout(&[
        "run",
        "wg21-papers",
        "--index",
        &index.display().to_string(),
    ]);
    assert!(out.contains("success"), "{out}");
    let json = env.stdout(&[
        "audit",
        "timeline",
        "--table",
        "collector_runs",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let items = v["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{json}");
    assert_eq!(items[0]["actor"]["type"], "job", "{json}");
    env.stdout(&["audit", "verify"]);
}
