//! Target graphs on real git repositories, on SQLite and PostgreSQL:
//! dependency order, `not built` dependents of a failing project (never
//! green, never a guessed red, left out of the degree), change
//! propagation to dependents, and a `projects_command` evaluated for each
//! request.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bdc_greenness::config::GreennessConfig;
use bdc_greenness::engine::{Pipeline, RetryPolicy};
use bdc_greenness::model::*;
use bdc_greenness::service::{Gate, pipeline_on};
use bdc_greenness::traits::PipelineStore;
mod common;
use common::{Db, Dbs};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn commit(repo: &Path, files: &[(&str, Option<&str>)]) -> String {
    for (path, content) in files {
        let p = repo.join(path);
        match content {
            Some(c) => {
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, c).unwrap();
            }
            None => {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "c"]);
    git(repo, &["rev-parse", "HEAD"])
}

fn fast(mut p: Pipeline) -> Pipeline {
    p.policy = RetryPolicy {
        max_attempts: 3,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        lease: Duration::from_secs(60),
    };
    p
}

/// core <- net <- http, docs alone. Each build appends its name to
/// `order.txt` and fails when `<project>/FAIL` exists.
async fn graph(kind: Db) {
    let Some(db) = Dbs::new(kind).await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let order = tmp.path().join("order.txt");
    let mut yaml = format!(
        "jobs: 2\nqueues:\n  - name: main\n    repo: {}\n    ref: main\n    projects:\n",
        repo.display()
    );
    for (p, deps) in [
        ("http", "[net]"),
        ("net", "[core]"),
        ("core", "[]"),
        ("docs", "[]"),
    ] {
        yaml.push_str(&format!(
            "      - name: {p}\n        paths: [\"{p}/**\"]\n        deps: {deps}\n        build: echo {p} >> {} && test ! -f {p}/FAIL\n",
            order.display()
        ));
    }
    let config = Arc::new(GreennessConfig::parse(&yaml, "g.yaml").unwrap());
    assert_eq!(config.jobs, Some(2));
    let p = fast(pipeline_on(db.store(), config, &tmp.path().join("ws"), "t"));
    let store = db.store();
    let gate = Gate { store: &store };
    let take = || {
        let s = std::fs::read_to_string(&order).unwrap_or_default();
        let _ = std::fs::remove_file(&order);
        s.lines().map(str::to_owned).collect::<Vec<_>>()
    };

    // 1. Everything green, built in dependency order.
    let files: Vec<(&str, Option<&str>)> = ["http/a", "net/a", "core/a", "docs/a"]
        .iter()
        .map(|f| (*f, Some("1")))
        .collect();
    let c1 = commit(&repo, &files);
    p.ingest("main").await.unwrap();
    p.drain().await.unwrap();
    let built = take();
    assert_eq!(built.len(), 4, "{built:?}");
    let pos = |n: &str| built.iter().position(|x| x == n).unwrap();
    assert!(
        pos("core") < pos("net") && pos("net") < pos("http"),
        "{built:?}"
    );
    assert!(gate.verdict("main", &c1, None).await.unwrap().green);

    // 2. A change to core affects its dependents (net, http), not docs.
    let c2 = commit(&repo, &[("core/a", Some("2"))]);
    p.ingest("main").await.unwrap();
    p.drain().await.unwrap();
    assert_eq!(take(), vec!["core", "net", "http"]);
    let req = store.request("request/main/2").await.unwrap().unwrap();
    let plan = req.data.plan.unwrap();
    assert_eq!(plan.mode, BuildMode::Incremental);
    assert_eq!(plan.affected, vec!["http", "net", "core"]);
    assert!(gate.verdict("main", &c2, Some("docs")).await.unwrap().green);

    // 3. core fails: net and http are not built (never run, never green,
    // not red), docs (unaffected) inherits green; the repo degree is over
    // the decided targets only: 1 failed of 1 decided.
    let c3 = commit(&repo, &[("core/FAIL", Some("x")), ("docs/b", Some("1"))]);
    p.ingest("main").await.unwrap();
    p.drain().await.unwrap();
    let mut built = take();
    built.sort();
    assert_eq!(built, vec!["core", "docs"]);
    let v = gate.verdict("main", &c3, None).await.unwrap();
    assert_eq!(v.status, "failed", "{v:?}");
    let rec = v.record.unwrap();
    assert_eq!(rec.evidence.failing_targets, vec!["core".to_owned()]);
    let mut nb = rec.evidence.not_built.clone();
    nb.sort();
    assert_eq!(nb, vec!["http".to_owned(), "net".to_owned()]);
    assert!((rec.degree - 0.5).abs() < 1e-9, "{}", rec.degree);
    for proj in ["net", "http"] {
        let v = gate.verdict("main", &c3, Some(proj)).await.unwrap();
        assert!(!v.green);
        assert_eq!(v.status, "not built", "{proj}: {v:?}");
        assert_eq!(v.record.unwrap().outcome, Outcome::Undetermined);
    }
    assert_eq!(
        gate.verdict("main", &c3, Some("core"))
            .await
            .unwrap()
            .status,
        "failed"
    );
    assert!(gate.verdict("main", &c3, Some("docs")).await.unwrap().green);
    // Last green of net stays at c2.
    let lg = gate.last_green("main", Some("net")).await.unwrap().unwrap();
    assert!(lg.commit_uri.ends_with(&c2));

    // 4. Fixed: relative to the last green (c2) only docs changed, so
    // core, net and http inherit their green from c2.
    let c4 = commit(&repo, &[("core/FAIL", None)]);
    p.ingest("main").await.unwrap();
    p.drain().await.unwrap();
    assert_eq!(take(), vec!["docs"]);
    assert!(gate.verdict("main", &c4, Some("http")).await.unwrap().green);
    assert!(gate.verdict("main", &c4, None).await.unwrap().green);
}

#[tokio::test]
async fn target_graph_sqlite() {
    graph(Db::Sqlite).await;
}

#[tokio::test]
async fn target_graph_postgres() {
    graph(Db::Postgres).await;
}

#[tokio::test]
async fn target_graph_mysql() {
    graph(Db::MySql).await;
}

/// The project list comes from a command run for each request: a project
/// added later is validated without reloading the configuration.
async fn listed(kind: Db) {
    let Some(db) = Dbs::new(kind).await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let cfg_dir = tmp.path().join("cfg");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    std::fs::write(cfg_dir.join("projects.txt"), "a a/** -- true\n").unwrap();
    let yaml_path = cfg_dir.join("g.yaml");
    std::fs::write(
        &yaml_path,
        format!(
            "queues:\n  - name: main\n    repo: {}\n    ref: main\n    projects_command: cat projects.txt\n",
            repo.display()
        ),
    )
    .unwrap();
    let config = Arc::new(GreennessConfig::from_path(&yaml_path).unwrap());
    assert_eq!(config.queues[0].project_names(), vec!["a"]);
    let p = fast(pipeline_on(db.store(), config, &tmp.path().join("ws"), "t"));
    let store = db.store();
    let gate = Gate { store: &store };
    commit(&repo, &[("a/x", Some("1")), ("b/x", Some("1"))]);
    p.ingest("main").await.unwrap();
    p.drain().await.unwrap();
    // b appears in the repository's project list; the running pipeline
    // (same configuration object) picks it up on the next request.
    std::fs::write(
        cfg_dir.join("projects.txt"),
        "a a/** -- true\nb b/** deps=a -- true\n",
    )
    .unwrap();
    let c2 = commit(&repo, &[("b/x", Some("2"))]);
    p.ingest("main").await.unwrap();
    p.drain().await.unwrap();
    let v = gate.verdict("main", &c2, Some("b")).await.unwrap();
    assert!(v.green, "{v:?}");
    let req = store.request("request/main/2").await.unwrap().unwrap();
    let listed = req.data.listed_projects.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].deps, vec!["a".to_owned()]);
    // A broken list (a cycle) fails the request closed: undetermined.
    std::fs::write(
        cfg_dir.join("projects.txt"),
        "a a/** deps=b -- true\nb b/** deps=a -- true\n",
    )
    .unwrap();
    let c3 = commit(&repo, &[("b/x", Some("3"))]);
    p.ingest("main").await.unwrap();
    p.drain().await.unwrap();
    let v = gate.verdict("main", &c3, None).await.unwrap();
    assert_eq!(v.status, "undetermined", "{v:?}");
    let dead = store.dead_letters("main").await.unwrap();
    assert!(
        dead[0].4.contains("deps form a cycle: a -> b -> a"),
        "{dead:?}"
    );
}

#[tokio::test]
async fn projects_command_per_request_sqlite() {
    listed(Db::Sqlite).await;
}

#[tokio::test]
async fn projects_command_per_request_postgres() {
    listed(Db::Postgres).await;
}

#[tokio::test]
async fn projects_command_per_request_mysql() {
    listed(Db::MySql).await;
}
