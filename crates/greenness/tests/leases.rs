//! Long builds on SQLite and PostgreSQL: a running stage renews its lease
//! (a build longer than the lease is not picked up twice), and a stage
//! whose worker died is retried elsewhere once the lease runs out,
//! recorded as a new attempt (a new build id).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bdc_greenness::config::GreennessConfig;
use bdc_greenness::engine::{Pipeline, RetryPolicy};
use bdc_greenness::model::*;
use bdc_greenness::service::{Gate, pipeline_on};
use bdc_greenness::traits::{Applied, PipelineStore};
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

struct Fx {
    dbs: Dbs,
    tmp: tempfile::TempDir,
    config: Arc<GreennessConfig>,
    sha: String,
}

async fn fx(kind: Db, build: &str) -> Option<Fx> {
    let dbs = Dbs::new(kind).await?;
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("f"), "1").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    let sha = git(&repo, &["rev-parse", "HEAD"]);
    let yaml = format!(
        "queues:\n  - name: main\n    repo: {}\n    ref: main\n    build: {build}\n",
        repo.display()
    );
    Some(Fx {
        dbs,
        config: Arc::new(GreennessConfig::parse(&yaml, "g.yaml").unwrap()),
        tmp,
        sha,
    })
}

fn worker(f: &Fx, owner: &str, lease: Duration) -> Pipeline {
    let mut p = pipeline_on(
        f.dbs.store(),
        Arc::clone(&f.config),
        &f.tmp.path().join("ws"),
        owner,
    );
    p.policy = RetryPolicy {
        max_attempts: 5,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        lease,
    };
    p
}

async fn renewal(kind: Db) {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count.txt");
    let Some(f) = fx(
        kind,
        &format!("echo built >> {} && sleep 2", count.display()),
    )
    .await
    else {
        return;
    };
    let a = worker(&f, "a", Duration::from_millis(600));
    a.ingest("main").await.unwrap();
    // process
    a.step().await.unwrap().unwrap();
    let store = f.dbs.store();
    let running = tokio::spawn({
        let a = a.clone();
        async move { a.step().await }
    });
    // The build takes 2 s, more than three leases: another worker never
    // gets the message while it runs.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = chrono::Utc::now().timestamp_micros();
        assert!(
            store.claim("b", now, 1_000_000).await.unwrap().is_none(),
            "the running build's message was claimable"
        );
    }
    let report = running.await.unwrap().unwrap().unwrap();
    assert_eq!(report.message.stage, Stage::Build);
    a.drain().await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&count).unwrap().lines().count(),
        1,
        "built once"
    );
    let gate = Gate { store: &store };
    assert!(gate.verdict("main", &f.sha, None).await.unwrap().green);
}

#[tokio::test]
async fn long_build_renews_its_lease_sqlite() {
    renewal(Db::Sqlite).await;
}

#[tokio::test]
async fn long_build_renews_its_lease_postgres() {
    renewal(Db::Postgres).await;
}

#[tokio::test]
async fn long_build_renews_its_lease_mysql() {
    renewal(Db::MySql).await;
}

async fn killed(kind: Db) {
    let Some(f) = fx(kind, "true").await else {
        return;
    };
    let a = worker(&f, "a", Duration::from_millis(300));
    a.ingest("main").await.unwrap();
    a.step().await.unwrap().unwrap();
    let store = f.dbs.store();
    // Worker "dead" claims the build and dies with it (no ack, no renewal).
    let now = chrono::Utc::now().timestamp_micros();
    let msg = store.claim("dead", now, 300_000).await.unwrap().unwrap();
    assert_eq!((msg.stage, msg.attempts), (Stage::Build, 1));
    assert!(store.claim("b", now, 300_000).await.unwrap().is_none());
    // After the lease another worker takes it over: a new attempt.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let b = worker(&f, "b", Duration::from_millis(300));
    let r = b.step().await.unwrap().unwrap();
    assert_eq!((r.message.stage, r.message.attempts), (Stage::Build, 2));
    b.drain().await.unwrap();
    let req = store.request("request/main/1").await.unwrap().unwrap();
    let build = req.data.repo_build.unwrap();
    assert!(build.build_id.ends_with("/repo/2"), "{}", build.build_id);
    let gate = Gate { store: &store };
    let v = gate.verdict("main", &f.sha, None).await.unwrap();
    assert!(v.green);
    assert_eq!(
        v.record.unwrap().evidence.build_id.as_deref(),
        Some(build.build_id.as_str())
    );
    // The dead worker's late ack finds nothing: nothing recorded twice.
    assert_eq!(
        store
            .apply(&msg, "dead", &Transition::default(), 0)
            .await
            .unwrap(),
        Applied::LeaseLost
    );
    assert!(!store.renew(&msg, "dead", i64::MAX).await.unwrap());
    assert_eq!(store.history("main", None, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn killed_worker_stage_is_retried_as_a_new_attempt_sqlite() {
    killed(Db::Sqlite).await;
}

#[tokio::test]
async fn killed_worker_stage_is_retried_as_a_new_attempt_postgres() {
    killed(Db::Postgres).await;
}

#[tokio::test]
async fn killed_worker_stage_is_retried_as_a_new_attempt_mysql() {
    killed(Db::MySql).await;
}

/// The MySQL server drops every connection of the store while a stage
/// runs (`KILL` from another connection): the stage ends with a clear
/// error or recovers on a fresh connection, is retried, and the commit
/// is recorded exactly once.
#[tokio::test]
async fn mysql_connections_killed_mid_stage() {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count.txt");
    let Some(f) = fx(
        Db::MySql,
        &format!("echo built >> {} && sleep 1", count.display()),
    )
    .await
    else {
        return;
    };
    let (my_db, _) = f.dbs.mysql.as_ref().unwrap();
    let a = worker(&f, "a", Duration::from_millis(500));
    a.ingest("main").await.unwrap();
    a.step().await.unwrap().unwrap();
    let running = tokio::spawn({
        let a = a.clone();
        async move { a.step().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let admin = sqlx::mysql::MySqlPool::connect(&bdc_testsupport::mysql_admin_url())
        .await
        .unwrap();
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT CAST(ID AS SIGNED) FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
    )
    .bind(my_db.name())
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(!ids.is_empty(), "the store holds connections");
    for id in ids {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("KILL {id}")))
            .execute(&admin)
            .await;
    }
    match running.await.unwrap() {
        Ok(_) => {}
        Err(e) => {
            let text = e.to_string();
            assert!(!text.is_empty(), "a clear error: {text}");
            eprintln!("stage failed as expected: {text}");
        }
    }
    // Past any lease left behind, the pipeline finishes the request.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let b = worker(&f, "b", Duration::from_millis(500));
    b.drain().await.unwrap();
    let store = f.dbs.store();
    let req = store.requests("main", 10).await.unwrap();
    assert_eq!(req.len(), 1);
    assert_eq!(req[0].state, RequestState::Done);
    let records = store
        .commit_records("main", &req[0].commit_uri)
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "recorded exactly once: {records:?}");
    assert_eq!(store.pending().await.unwrap().total, 0);
    admin.close().await;
}

#[tokio::test]
async fn mysql_unreachable_is_a_clear_error() {
    let err = bdc_greenness::store::mysql::MySqlStore::connect("mysql://root@127.0.0.1:1/none")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("greenness MySQL database"), "{err}");
}
