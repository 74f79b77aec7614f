//! First contact with the CLI: every collector's flags reachable with
//! `--help` (nothing recorded), usage errors (exit 2, nothing recorded),
//! completions and the man page. Snapshots with insta.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use bdc_testsupport::{Kind, TestDb, both_backends as both};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bdc(db: &TestDb, workspace: &Path) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin!("bdc"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db.url())
        .env("WORKSPACE_DIR", workspace)
        .current_dir(repo_root());
    c
}

fn plain_bdc() -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin!("bdc"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(repo_root());
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The collectors this build provides, from `bdc collectors`.
fn available() -> Vec<String> {
    let out = plain_bdc()
        .env("WORKSPACE_DIR", std::env::temp_dir())
        .arg("collectors")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    text(&out)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut cols = l.split_whitespace();
            let name = cols.next()?;
            (cols.next()? == "yes").then(|| name.to_owned())
        })
        .collect()
}

#[test]
fn every_available_collector_prints_its_own_help() {
    let names = available();
    assert!(names.len() >= 5, "{names:?}");
    for name in names {
        for form in [
            vec!["run", name.as_str(), "--help"],
            vec!["run", name.as_str(), "-h"],
            vec!["run", name.as_str(), "--", "--help"],
            vec!["help", "run", name.as_str()],
        ] {
            let out = plain_bdc()
                .args(&form)
                .assert()
                .code(0)
                .get_output()
                .clone();
            let help = text(&out.stdout);
            assert!(
                help.contains(&format!("Usage: bdc run {name}")),
                "{form:?}: {help}"
            );
            assert!(out.stderr.is_empty(), "{form:?}: {}", text(&out.stderr));
            if form[0] == "run" && form[2] == "--help" {
                insta::assert_snapshot!(format!("run_{name}_help"), help);
            }
        }
    }
}

both!(help_and_usage_errors_record_no_run);
async fn help_and_usage_errors_record_no_run(kind: Kind) {
    let db = TestDb::new(kind).await;
    let ws = tempfile::tempdir().unwrap();
    if kind == Kind::Postgres {
        bdc(&db, ws.path()).arg("migrate").assert().success();
    }
    bdc(&db, ws.path())
        .args(["run", "mailing-list", "--", "--help"])
        .assert()
        .code(0);
    let out = bdc(&db, ws.path())
        .args(["run", "mailing-list", "--bogus"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(out.stdout.is_empty());
    insta::assert_snapshot!("run_usage_error", text(&out.stderr));
    let out = bdc(&db, ws.path())
        .args(["runs", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(text(&out.stdout).trim(), "[]");
}

#[test]
fn run_without_collector_is_a_usage_error() {
    let out = plain_bdc().arg("run").assert().code(2).get_output().clone();
    let err = text(&out.stderr);
    assert!(
        err.contains("which collector") && err.contains("Usage: bdc run"),
        "{err}"
    );
}

#[test]
fn completions_and_manpage() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = plain_bdc()
            .args(["completions", shell])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        assert!(text(&out).contains("run-scheduled"), "{shell}");
    }
    let out = plain_bdc()
        .arg("manpage")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let man = text(&out);
    assert!(man.starts_with(".ie") && man.contains(".TH bdc 1"), "{man}");
}

#[test]
fn global_verbosity_flags_parse() {
    plain_bdc().args(["-vv", "collectors"]).assert().success();
    plain_bdc()
        .args(["collectors", "--verbose", "--log-format", "json"])
        .assert()
        .success();
}
