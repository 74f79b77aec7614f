//! End to end on real git repositories created by the test, on SQLite and
//! PostgreSQL: full then incremental builds, history rewrite, dedup,
//! supersession, DLQ fail-closed, optimistic-lock conflicts, and webhooks
//! fired exactly on transitions (signature verified).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bdc_greenness::config::GreennessConfig;
use bdc_greenness::engine::{Pipeline, RetryPolicy};
use bdc_greenness::model::*;
use bdc_greenness::service::{Gate, pipeline_on};
use bdc_greenness::store::SqlStore;
use bdc_greenness::traits::*;
use bdc_storage::Storage;
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
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn commit(repo: &Path, files: &[(&str, Option<&str>)], msg: &str) -> String {
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
    git(repo, &["commit", "-q", "-m", msg]);
    git(repo, &["rev-parse", "HEAD"])
}

struct Fixture {
    dbs: Dbs,
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    built: PathBuf,
    storage: Storage,
    config: Arc<GreennessConfig>,
    workspace: PathBuf,
}

const PROJECTS: [&str; 3] = ["a", "b", "c"];

async fn fixture(kind: Db, hooks_yaml: &str) -> Option<Fixture> {
    let dbs = Dbs::new(kind).await?;
    let storage = dbs.storage.clone();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let built = tmp.path().join("built.txt");
    let mut yaml = format!(
        "queues:\n  - name: main\n    repo: {}\n    ref: main\n    poll_interval_seconds: 1\n    timeout_seconds: 30\n    projects:\n",
        repo.display()
    );
    for p in PROJECTS {
        yaml.push_str(&format!(
            "      - name: {p}\n        paths: [\"{p}/**\"]\n        build: echo {p} >> {} && test ! -f {p}/FAIL\n",
            built.display()
        ));
    }
    yaml.push_str(hooks_yaml);
    let config = Arc::new(GreennessConfig::parse(&yaml, "test.yaml").unwrap());
    Some(Fixture {
        dbs,
        workspace: tmp.path().join("workspace"),
        _tmp: tmp,
        repo,
        built,
        storage,
        config,
    })
}

impl Fixture {
    fn pipeline(&self) -> Pipeline {
        let mut p = pipeline_on(
            self.dbs.store(),
            Arc::clone(&self.config),
            &self.workspace,
            "test",
        );
        p.policy = RetryPolicy {
            max_attempts: 3,
            backoff_base: Duration::from_millis(5),
            backoff_max: Duration::from_millis(20),
            lease: Duration::from_secs(60),
        };
        p
    }
    fn store(&self) -> SqlStore {
        self.dbs.store()
    }
    /// Projects built since the last call.
    fn take_built(&self) -> Vec<String> {
        let s = std::fs::read_to_string(&self.built).unwrap_or_default();
        let _ = std::fs::remove_file(&self.built);
        let mut v: Vec<String> = s.lines().map(str::to_owned).collect();
        v.sort();
        v
    }
}

fn initial_files() -> Vec<(&'static str, Option<&'static str>)> {
    PROJECTS
        .iter()
        .map(|p| {
            (
                match *p {
                    "a" => "a/src.c",
                    "b" => "b/src.c",
                    _ => "c/src.c",
                },
                Some("int x;\n"),
            )
        })
        .collect()
}

async fn flow(kind: Db) {
    let Some(f) = fixture(kind, "").await else {
        return;
    };
    let p = f.pipeline();
    let store = f.store();
    let gate = Gate { store: &store };

    // 1. First commit: full build, green.
    let c1 = commit(&f.repo, &initial_files(), "one");
    let r1 = p.ingest("main").await.unwrap();
    assert!(r1.created);
    assert_eq!(r1.request.id, "request/main/1");
    assert!(r1.request.commit_uri.ends_with(&format!("/ref/main/{c1}")));
    let dup = p.ingest("main").await.unwrap();
    assert!(!dup.created, "same head twice dedups");
    assert_eq!(dup.request.id, r1.request.id);
    p.drain().await.unwrap();
    assert_eq!(f.take_built(), vec!["a", "b", "c"]);
    let req = store.request("request/main/1").await.unwrap().unwrap();
    assert_eq!(req.state, RequestState::Done);
    assert_eq!(req.data.plan.as_ref().unwrap().mode, BuildMode::Full);
    let v = gate.verdict("main", &c1, None).await.unwrap();
    assert!(v.green, "{v:?}");
    // An abbreviated sha (≥ 7 digits) names the commit; a hex string that
    // is not a prefix of the commit segment names nothing.
    let short = gate.verdict("main", &c1[..8], None).await.unwrap();
    assert!(short.green, "{short:?}");
    let other = gate.verdict("main", "deadbeefcafe", None).await.unwrap();
    assert_eq!(other.status, "not recorded");
    assert!(!other.green);
    assert_eq!(
        gate.last_green("main", None)
            .await
            .unwrap()
            .unwrap()
            .commit_uri,
        r1.request.commit_uri
    );

    // 2. Change only b: incremental, only b built; a and c inherited.
    let c2 = commit(&f.repo, &[("b/src.c", Some("int y;\n"))], "two");
    p.ingest("main").await.unwrap();
    p.drain().await.unwrap();
    assert_eq!(f.take_built(), vec!["b"]);
    let req = store.request("request/main/2").await.unwrap().unwrap();
    let plan = req.data.plan.clone().unwrap();
    assert_eq!(plan.mode, BuildMode::Incremental, "{plan:?}");
    assert_eq!(plan.affected, vec!["b".to_owned()]);
    assert_eq!(plan.changed_paths, vec!["b/src.c".to_owned()]);
    assert!(gate.verdict("main", &c2, Some("a")).await.unwrap().green);

    // 3. Break b: repo not green (degree 1/3), b failed, a still green.
    let c3 = commit(&f.repo, &[("b/FAIL", Some("x"))], "three");
    p.ingest("main").await.unwrap();
    p.drain().await.unwrap();
    assert_eq!(f.take_built(), vec!["b"]);
    let v = gate.verdict("main", &c3, None).await.unwrap();
    assert!(!v.green);
    assert_eq!(v.status, "failed");
    assert!((v.degree.unwrap() - 1.0 / 3.0).abs() < 1e-9, "{v:?}");
    let rec = v.record.unwrap();
    assert_eq!(rec.evidence.failing_targets, vec!["b".to_owned()]);
    let log = rec.evidence.log_location.unwrap();
    assert!(log.contains("greenness/logs/main/"), "{log}");
    assert!(Path::new(&log).exists());
    assert!(!gate.verdict("main", &c3, Some("b")).await.unwrap().green);
    assert!(gate.verdict("main", &c3, Some("a")).await.unwrap().green);
    // Last green did not move; b's last green is c2.
    let lg = gate.last_green("main", None).await.unwrap().unwrap();
    assert!(lg.commit_uri.ends_with(&c2));
    let lgb = gate.last_green("main", Some("b")).await.unwrap().unwrap();
    assert!(lgb.commit_uri.ends_with(&c2));

    // 4. Force push: main rewritten onto c1 (c2 no longer an ancestor): full.
    git(&f.repo, &["checkout", "-q", "-B", "main", &c1]);
    let c4 = commit(&f.repo, &[("c/other.c", Some("int z;\n"))], "four");
    p.ingest("main").await.unwrap();
    p.drain().await.unwrap();
    assert_eq!(f.take_built(), vec!["a", "b", "c"]);
    let req = store.request("request/main/4").await.unwrap().unwrap();
    let plan = req.data.plan.unwrap();
    assert_eq!(plan.mode, BuildMode::Full);
    assert!(plan.reason.contains("not an ancestor"), "{}", plan.reason);
    assert!(gate.verdict("main", &c4, None).await.unwrap().green);

    // 5. Two heads before a drain: the older is superseded (not validated).
    let c5 = commit(&f.repo, &[("a/x.c", Some("1"))], "five");
    p.ingest("main").await.unwrap();
    let c6 = commit(&f.repo, &[("a/x.c", Some("2"))], "six");
    p.ingest("main").await.unwrap();
    p.drain().await.unwrap();
    let v5 = gate.verdict("main", &c5, None).await.unwrap();
    assert!(!v5.green);
    assert_eq!(v5.status, "not validated");
    assert!(gate.verdict("main", &c6, None).await.unwrap().green);
    let unknown = gate.verdict("main", &"f".repeat(40), None).await.unwrap();
    assert_eq!(unknown.status, "not recorded");

    // History and status.
    let hist = store
        .history("main", Some(&Scope::Repo), 100)
        .await
        .unwrap();
    assert_eq!(hist.len(), 5);
    let status = gate.status("main", 10).await.unwrap();
    assert_eq!(status.requests.len(), 6);
    assert_eq!(status.pending_messages, 0);
    assert_eq!(status.projects.len(), 3);

    // Worktrees were released.
    let checkouts = f.workspace.join("greenness/checkouts");
    let leftover: usize = std::fs::read_dir(&checkouts)
        .map(|d| {
            d.flatten()
                .map(|e| std::fs::read_dir(e.path()).map(|x| x.count()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(leftover, 0);
}

#[tokio::test]
async fn git_flow_sqlite() {
    flow(Db::Sqlite).await;
}

#[tokio::test]
async fn git_flow_postgres() {
    flow(Db::Postgres).await;
}

#[tokio::test]
async fn git_flow_mysql() {
    flow(Db::MySql).await;
}

struct CrashingRunner;

#[async_trait]
impl BuildRunner for CrashingRunner {
    fn target_graph(
        &self,
        _q: &bdc_greenness::QueueSpec,
        _repo: bool,
        projects: &[String],
    ) -> Vec<Target> {
        projects
            .iter()
            .map(|p| Target {
                name: p.clone(),
                deps: vec![],
            })
            .collect()
    }
    async fn build(
        &self,
        _c: &BuildContext,
        _s: &bdc_greenness::QueueSpec,
        _t: &[Target],
    ) -> Result<Vec<TargetResult>, RunnerError> {
        Err(RunnerError("runner crashed".into()))
    }
}

async fn dlq(kind: Db) {
    let Some(f) = fixture(kind, "").await else {
        return;
    };
    let mut p = f.pipeline();
    p.runner = Arc::new(CrashingRunner);
    let store = f.store();
    let gate = Gate { store: &store };
    let c1 = commit(&f.repo, &initial_files(), "one");
    p.ingest("main").await.unwrap();
    let report = p.drain().await.unwrap();
    assert_eq!(report.dead_lettered, 1);
    assert_eq!(report.retried, 2);
    let dead = store.dead_letters("main").await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].2, "build");
    assert_eq!(dead[0].3, 3);
    let req = store.request("request/main/1").await.unwrap().unwrap();
    assert_eq!(req.state, RequestState::DeadLettered);
    let v = gate.verdict("main", &c1, None).await.unwrap();
    assert!(!v.green);
    assert_eq!(v.status, "undetermined");
    for project in PROJECTS {
        let v = gate.verdict("main", &c1, Some(project)).await.unwrap();
        assert_eq!(v.status, "undetermined");
    }
    assert!(gate.last_green("main", None).await.unwrap().is_none());

    // Validated again later with a working runner: a new attempt is
    // appended, the undetermined fact stays, the latest one is used.
    let p = f.pipeline();
    assert!(p.revalidate("request/main/1").await.unwrap());
    p.drain().await.unwrap();
    let v = gate.verdict("main", &c1, None).await.unwrap();
    assert!(v.green, "{v:?}");
    let records = store.history("main", Some(&Scope::Repo), 10).await.unwrap();
    let outcomes: Vec<Outcome> = records.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, vec![Outcome::Passed, Outcome::Undetermined]);
    assert!(gate.last_green("main", None).await.unwrap().is_some());
    // A green commit is not revalidated.
    assert!(!p.revalidate("request/main/1").await.unwrap());
}

#[tokio::test]
async fn dlq_fails_closed_sqlite() {
    dlq(Db::Sqlite).await;
}

#[tokio::test]
async fn dlq_fails_closed_postgres() {
    dlq(Db::Postgres).await;
}

#[tokio::test]
async fn dlq_fails_closed_mysql() {
    dlq(Db::MySql).await;
}

async fn conflicts(kind: Db) {
    let Some(f) = fixture(kind, "").await else {
        return;
    };
    let p = f.pipeline();
    let store = f.store();
    commit(&f.repo, &initial_files(), "one");
    let r = p.ingest("main").await.unwrap().request;
    // Worker 1 claims the process message having read version 1 ...
    let msg = store
        .claim("w1", i64::MAX / 2, 1_000_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.stage, Stage::Process);
    let stale = Transition {
        request: Some(RequestUpdate {
            id: r.id.clone(),
            expected_version: r.version,
            state: RequestState::Processed,
            data: RequestData::default(),
        }),
        enqueue: vec![NewMessage {
            stage: Stage::Build,
            payload: None,
        }],
        ..Transition::default()
    };
    // ... while another writer updates the same request.
    let bump = format!(
        "UPDATE greenness_requests SET version = version + 1 WHERE id = '{}'",
        r.id
    );
    match &f.dbs.mysql {
        Some((_, my)) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(bump))
                .execute(&my.pool)
                .await
                .unwrap();
        }
        None => {
            f.storage.execute_raw(bump).await.unwrap();
        }
    }
    assert_eq!(
        store.apply(&msg, "w1", &stale, 0).await.unwrap(),
        Applied::Conflict
    );
    // Detected: nothing was written, the message was not acked.
    let now = store.request(&r.id).await.unwrap().unwrap();
    assert_eq!((now.state, now.version), (RequestState::Accepted, 2));
    assert_eq!(store.pending().await.unwrap().total, 1);
    // Retried: the handler re-reads version 2 and the pipeline completes.
    store
        .retry(&msg, "w1", "version conflict", 0)
        .await
        .unwrap();
    p.drain().await.unwrap();
    let done = store.request(&r.id).await.unwrap().unwrap();
    assert_eq!(done.state, RequestState::Done);
    assert!(done.version > 2);
}

#[tokio::test]
async fn optimistic_lock_conflicts_sqlite() {
    conflicts(Db::Sqlite).await;
}

#[tokio::test]
async fn optimistic_lock_conflicts_postgres() {
    conflicts(Db::Postgres).await;
}

#[tokio::test]
async fn optimistic_lock_conflicts_mysql() {
    conflicts(Db::MySql).await;
}

async fn hooks(kind: Db) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let yaml = format!(
        "hooks:\n  - kind: webhook\n    url: {}/hook\n    secret: topsecret\n    events: [transition]\n",
        server.uri()
    );
    let Some(f) = fixture(kind, &yaml).await else {
        return;
    };
    let p = f.pipeline();
    commit(&f.repo, &initial_files(), "green");
    p.ingest("main").await.unwrap();
    p.drain().await.unwrap();
    commit(&f.repo, &[("a/more.c", Some("1"))], "still green");
    p.ingest("main").await.unwrap();
    p.drain().await.unwrap();
    commit(&f.repo, &[("c/FAIL", Some("x"))], "red");
    p.ingest("main").await.unwrap();
    p.drain().await.unwrap();
    commit(&f.repo, &[("c/FAIL", None)], "fixed");
    p.ingest("main").await.unwrap();
    p.drain().await.unwrap();

    let received = server.received_requests().await.unwrap();
    let mut events = Vec::new();
    for r in &received {
        let sig = r.headers.get("x-bdc-signature").unwrap().to_str().unwrap();
        assert_eq!(sig, bdc_greenness::hooks::signature("topsecret", &r.body));
        let e: HookEvent = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(e.event, EventKind::Transition);
        events.push((e.scope.key(), e.green));
    }
    events.sort();
    // repo: green, red, green; every project green at first; c red, green.
    let mut expected = vec![
        ("repo".to_owned(), true),
        ("repo".to_owned(), false),
        ("repo".to_owned(), true),
        ("project:a".to_owned(), true),
        ("project:b".to_owned(), true),
        ("project:c".to_owned(), true),
        ("project:c".to_owned(), false),
        ("project:c".to_owned(), true),
    ];
    expected.sort();
    assert_eq!(events, expected);
}

#[tokio::test]
async fn hooks_fire_on_transitions_sqlite() {
    hooks(Db::Sqlite).await;
}

#[tokio::test]
async fn hooks_fire_on_transitions_postgres() {
    hooks(Db::Postgres).await;
}

#[tokio::test]
async fn hooks_fire_on_transitions_mysql() {
    hooks(Db::MySql).await;
}
