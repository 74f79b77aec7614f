//! `bdc demo`, the README's first command: offline, every available
//! collector on bundled sample data, a greenness queue, next steps; its
//! default output is a short summary on stdout and nothing on stderr.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use bdc_testsupport::{Kind, TestDb, both_backends as both};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bdc(db: &TestDb, ws: &Path) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin!("bdc"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db.url())
        .env("WORKSPACE_DIR", ws)
        // Nothing may reach the network: every URL points nowhere.
        .env("BDC_WG21_INDEX_URL", "http://127.0.0.1:9/unreachable.json")
        .env(
            "BDC_MAILING_LIST_ARCHIVE_URL",
            "http://127.0.0.1:9/archives",
        )
        .current_dir(repo_root());
    c
}

both!(demo_shows_the_whole_product);
async fn demo_shows_the_whole_product(kind: Kind) {
    let db = TestDb::new(kind).await;
    let ws = tempfile::tempdir().unwrap();
    if kind == Kind::Postgres {
        bdc(&db, ws.path()).arg("migrate").assert().success();
    }
    let out = bdc(&db, ws.path())
        .arg("demo")
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "a clean terminal: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    insta::assert_snapshot!("demo_first_run", stdout);
    // Every collector this build provides and the demo covers left activity.
    for source in ["wg21", "mailing-list", "git", "github", "boost-libraries"] {
        let out = bdc(&db, ws.path())
            .args(["activity", "--count", "--source", source])
            .assert()
            .success()
            .get_output()
            .clone();
        let n: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert!(n > 0, "{source}");
    }
    // A second run is idempotent and still green.
    let out = bdc(&db, ws.path())
        .arg("demo")
        .assert()
        .success()
        .get_output()
        .clone();
    let again = String::from_utf8_lossy(&out.stdout);
    assert!(again.contains("is green"), "{again}");
    assert!(again.contains("inserted=0"), "{again}");
}

both!(demo_group_runs_on_its_own);
/// The schedule's `demo` group works on its own (no `bdc demo` to prepare
/// anything): every task succeeds on a fresh workspace, offline.
async fn demo_group_runs_on_its_own(kind: Kind) {
    let db = TestDb::new(kind).await;
    let ws = tempfile::tempdir().unwrap();
    if kind == Kind::Postgres {
        bdc(&db, ws.path()).arg("migrate").assert().success();
    }
    let out = bdc(&db, ws.path())
        .args([
            "run-scheduled",
            "--schedule",
            "examples/schedule.yaml",
            "--group",
            "demo",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let tasks: Vec<&str> = stdout.lines().filter(|l| l.starts_with("demo ")).collect();
    assert_eq!(tasks.len(), 15, "{stdout}");
    for t in &tasks {
        assert_eq!(t.split_whitespace().nth(2), Some("ok"), "{stdout}");
    }
    assert!(stdout.contains("15 task(s) ran, 0 failed"), "{stdout}");
    for (task, count) in [
        ("run_boost_github_activity_tracker", "inserted=19"),
        ("collect_boost_libraries", "libraries=5"),
        ("git-history", "commits=5"),
        ("run_boost_library_docs_tracker", "inserted=6"),
        ("run_update_created_repos_by_language", "inserted=22"),
        ("backfill_discord_activity_tracker", "inserted=4"),
        ("run_discord_activity_tracker", "inserted=5"),
        ("run_cppa_youtube_script_tracker", "transcripts_ok=2"),
        ("run_cppa_slack_tracker", "inserted=8"),
        ("run_cppa_user_tracker", "identities="),
        ("run_boost_library_usage_dashboard", "site_pages=5"),
        ("run_cppa_pinecone_sync", "documents="),
    ] {
        let line = tasks.iter().find(|l| l.contains(task)).unwrap();
        assert!(line.contains(count), "{line}");
    }
    // The bundled repository holds the commits `bdc demo` creates on the fly
    // (the snapshot's greenness line names the same tip).
    let heads = std::process::Command::new("git")
        .args([
            "bundle",
            "list-heads",
            "examples/git-history/demo-repo.bundle",
        ])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&heads.stdout)
            .contains("cbb9cfc0dd1659d4f0a50108e118eb3ef31f0099 refs/heads/main"),
        "{heads:?}"
    );
}
