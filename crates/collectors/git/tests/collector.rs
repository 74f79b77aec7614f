//! End-to-end tests of `git-history` on SQLite and PostgreSQL with
//! repositories built here by the git CLI: renames, binary files, merges,
//! incremental runs, a force-push (commits marked unreachable, then revived),
//! steady state, and resume after an injected database failure.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use bdc_collector::{CollectContext, Collector};
use bdc_collector_git::store::{get_commit, repo_summary};
use bdc_collector_git::{GitHistoryCollector, NAME, SCHEMA};
use bdc_config::Config;
use bdc_core::TrackerResult;
use bdc_storage::activity::ActivityFilter;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};

struct Env {
    _db: TestDb,
    storage: Storage,
    _workspace: tempfile::TempDir,
    config: Arc<Config>,
}

impl Env {
    async fn new(kind: Kind) -> Env {
        let workspace = tempfile::tempdir().unwrap();
        let db = TestDb::new(kind).await;
        let storage = Storage::connect(db.url(), &ConnectOptions::default())
            .await
            .unwrap();
        storage
            .migrate_parts(&[&SCHEMA, &bdc_identity::SCHEMA])
            .await
            .unwrap();
        let ws = workspace.path().display().to_string();
        let url = db.url().to_owned();
        let config = Config::from_lookup(|k| match k {
            "WORKSPACE_DIR" => Some(ws.clone()),
            "DATABASE_URL" => Some(url.clone()),
            _ => None,
        })
        .unwrap();
        Env {
            _db: db,
            storage,
            _workspace: workspace,
            config: Arc::new(config),
        }
    }

    fn ctx(&self, args: &[&str]) -> CollectContext {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        CollectContext {
            run_id: format!("test-{}", N.fetch_add(1, Ordering::Relaxed)),
            command: NAME.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            schedule_group: None,
            storage: self.storage.clone(),
            config: Arc::clone(&self.config),
            interactive: false,
        }
    }

    async fn run(&self, args: &[&str]) -> TrackerResult {
        match GitHistoryCollector.run(&self.ctx(args)).await {
            Ok(r) => r,
            Err(e) => panic!("run {args:?} failed: {e}"),
        }
    }

    async fn activity(&self) -> u64 {
        self.storage
            .activity()
            .count(&ActivityFilter {
                source_system: Some("git".into()),
                ..Default::default()
            })
            .await
            .unwrap()
    }

    async fn checkpoints(&self) -> Vec<(String, String, String)> {
        bdc_storage::on_pool!(self.storage, p => sqlx::query_as::<_, (String, String, String)>(
            "SELECT scope, checkpoint_token, run_id FROM collector_checkpoints ORDER BY scope"
        ).fetch_all(p).await.unwrap())
    }

    async fn fingerprint(&self) -> (Vec<(String, bool, i64, i64)>, i64, u64) {
        let rows = bdc_storage::on_pool!(self.storage, p => sqlx::query_as::<_, (String, bool, i64, i64)>(
            "SELECT sha, reachable, insertions, files_changed FROM git_commits ORDER BY sha"
        ).fetch_all(p).await.unwrap());
        let files: i64 = bdc_storage::on_pool!(self.storage, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM git_commit_files"
        ).fetch_one(p).await.unwrap());
        (rows, files, self.activity().await)
    }
}

use bdc_testsupport::both_backends as both;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Tester")
        .env("GIT_AUTHOR_EMAIL", "tester@example.org")
        .env("GIT_COMMITTER_NAME", "Tester")
        .env("GIT_COMMITTER_EMAIL", "tester@example.org")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn commit(dir: &Path, file: &str, content: &[u8], msg: &str) -> String {
    std::fs::write(dir.join(file), content).unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", msg]);
    git(dir, &["rev-parse", "HEAD"])
}

fn source_repo() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    git(d.path(), &["init", "-q", "-b", "main"]);
    commit(d.path(), "a.txt", b"one\ntwo\n", "first\n\nwith a body");
    commit(d.path(), "bin.dat", &[0, 1, 2, 0, 255], "binary");
    git(d.path(), &["mv", "a.txt", "b.txt"]);
    commit(d.path(), "b.txt", b"one\ntwo\nthree\n", "rename and grow");
    git(d.path(), &["checkout", "-q", "-b", "side", "HEAD~1"]);
    commit(d.path(), "side.txt", b"s\n", "side work");
    git(d.path(), &["checkout", "-q", "main"]);
    git(d.path(), &["merge", "-q", "--no-edit", "side"]);
    d
}

async fn history_and_force_push(kind: Kind) {
    let env = Env::new(kind).await;
    let src = source_repo();
    let s = src.path().to_str().unwrap();
    let args = ["--repo", s, "--name", "demo"];
    let r = env.run(&args).await;
    assert_eq!((r.count("commits"), r.count("inserted")), (5, 5));
    assert_eq!(env.activity().await, 5);
    let (total, reachable, files) = repo_summary(&env.storage, "demo").await.unwrap();
    assert_eq!((total, reachable), (5, 5));
    assert_eq!(
        files, 4,
        "a.txt, bin.dat, the rename, side.txt; merges carry none"
    );

    let head = git(src.path(), &["rev-parse", "main~1"]);
    let c = get_commit(&env.storage, "demo", &head)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.message, "rename and grow");
    assert_eq!((c.files_changed, c.insertions, c.deletions), (1, 1, 0));
    let merge = git(src.path(), &["rev-parse", "main"]);
    let m = get_commit(&env.storage, "demo", &merge)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.parents.split(' ').count(), 2);

    // Steady state: nothing written, checkpoint untouched.
    let cps = env.checkpoints().await;
    assert_eq!(cps.len(), 1);
    assert_eq!(cps[0].1, merge);
    let fp = env.fingerprint().await;
    let r = env.run(&args).await;
    assert_eq!((r.count("refs_unchanged"), r.count("commits")), (1, 0));
    assert_eq!(env.checkpoints().await, cps);
    assert_eq!(env.fingerprint().await, fp);

    // Incremental: two new commits, only they are walked.
    commit(src.path(), "c.txt", b"c\n", "c1");
    let old_tip = commit(src.path(), "c.txt", b"c\nc\n", "c2");
    let r = env.run(&args).await;
    assert_eq!((r.count("commits"), r.count("inserted")), (2, 2));

    // Force-push: drop c2, c1, the merge and the side commit it brought
    // in (side is not tracked yet), add one.
    git(src.path(), &["reset", "-q", "--hard", "main~3"]);
    let new_tip = commit(src.path(), "d.txt", b"d\n", "rewritten");
    let r = env.run(&args).await;
    assert_eq!(
        (r.count("inserted"), r.count("unreachable")),
        (1, 4),
        "{r:?}"
    );
    let (total, reachable, _) = repo_summary(&env.storage, "demo").await.unwrap();
    assert_eq!((total, reachable), (8, 4));
    let gone = get_commit(&env.storage, "demo", &old_tip)
        .await
        .unwrap()
        .unwrap();
    assert!(!gone.reachable);
    let rec = env
        .storage
        .activity()
        .list(&ActivityFilter {
            source_system: Some("git".into()),
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap();
    let rec = rec
        .iter()
        .find(|r| r.record.external_id() == format!("demo:{old_tip}"))
        .unwrap();
    assert_eq!(rec.record.payload()["reachable"], false);
    assert_eq!(env.checkpoints().await[0].1, new_tip);
    let fp = env.fingerprint().await;
    let r = env.run(&args).await;
    assert_eq!(r.count("refs_unchanged"), 1);
    assert_eq!(env.fingerprint().await, fp);

    // Force-push back: the four come back, the rewritten one goes.
    git(src.path(), &["reset", "-q", "--hard", &old_tip]);
    let r = env.run(&args).await;
    assert_eq!(
        (
            r.count("revived"),
            r.count("unreachable"),
            r.count("inserted")
        ),
        (4, 1, 0),
        "{r:?}"
    );
    let (total, reachable, _) = repo_summary(&env.storage, "demo").await.unwrap();
    assert_eq!((total, reachable), (8, 7));

    // A second tracked ref keeps its commits reachable.
    let r = env
        .run(&["--repo", s, "--name", "demo", "--ref", "side"])
        .await;
    assert_eq!((r.count("inserted"), r.count("unchanged")), (0, 3));
    assert_eq!(env.checkpoints().await.len(), 2);
}
both!(history_and_force_push);

/// A database failure injected in the last batch of a 2,500-commit walk,
/// then a resume: the same rows as an uninterrupted run.
async fn resume_after_failure(kind: Kind) {
    let src = tempfile::tempdir().unwrap();
    git(src.path(), &["init", "-q", "--bare"]);
    bdc_collector_git::fixtures::fast_import(src.path(), "main", 2_500, 1_700_000_000, false);
    git(src.path(), &["symbolic-ref", "HEAD", "refs/heads/main"]);
    let s = src.path().to_str().unwrap();
    let args = ["--repo", s, "--name", "gen"];

    let clean = Env::new(kind).await;
    let r = clean.run(&args).await;
    assert_eq!(r.count("inserted"), 2_500);
    let expected = clean.fingerprint().await;

    let env = Env::new(kind).await;
    let root = git(src.path(), &["rev-list", "--max-parents=0", "main"]);
    let inject = match kind {
        Kind::Sqlite => format!(
            "CREATE TRIGGER inject BEFORE INSERT ON git_commits WHEN NEW.sha = '{root}' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        ),
        Kind::Postgres => format!(
            "CREATE FUNCTION inject() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             RAISE EXCEPTION 'injected failure'; END $$; \
             CREATE TRIGGER inject BEFORE INSERT ON git_commits FOR EACH ROW \
             WHEN (NEW.sha = '{root}') EXECUTE FUNCTION inject()"
        ),
    };
    env.storage.execute_raw(inject).await.unwrap();
    let err = GitHistoryCollector.run(&env.ctx(&args)).await.unwrap_err();
    assert_eq!(err.category, bdc_core::FailureCategory::Database, "{err}");
    let partial = env.fingerprint().await;
    assert_eq!(partial.0.len(), 2_000, "two batches landed");
    assert!(
        env.checkpoints().await.is_empty(),
        "checkpoint did not move"
    );
    env.storage
        .execute_raw("DROP TRIGGER inject ON git_commits".replace(
            " ON git_commits",
            if kind == Kind::Sqlite {
                ""
            } else {
                " ON git_commits"
            },
        ))
        .await
        .unwrap();
    let r = env.run(&args).await;
    assert_eq!((r.count("inserted"), r.count("unchanged")), (500, 2_000));
    assert_eq!(env.fingerprint().await, expected);
}
both!(resume_after_failure);

#[tokio::test]
async fn bad_input_is_classified() {
    let env = Env::new(Kind::Sqlite).await;
    let err = GitHistoryCollector.run(&env.ctx(&[])).await.unwrap_err();
    assert_eq!(err.category, bdc_core::FailureCategory::Config);
    let err = GitHistoryCollector
        .run(&env.ctx(&["--repo", "/nonexistent/repo"]))
        .await
        .unwrap_err();
    assert_eq!(err.category, bdc_core::FailureCategory::NotFound, "{err}");
    // A remote that cannot be reached: network, as for HTTP.
    let err = GitHistoryCollector
        .run(&env.ctx(&["--repo", "http://127.0.0.1:9/x.git"]))
        .await
        .unwrap_err();
    assert_eq!(err.category, bdc_core::FailureCategory::Network, "{err}");
    let src = source_repo();
    let err = GitHistoryCollector
        .run(&env.ctx(&["--repo", src.path().to_str().unwrap(), "--ref", "nope"]))
        .await
        .unwrap_err();
    assert_eq!(err.category, bdc_core::FailureCategory::NotFound, "{err}");
}

/// A force-push whose old tip was garbage-collected from the mirror: the
/// unreachable commits are found by comparing the database with git.
async fn force_push_after_gc(kind: Kind) {
    let env = Env::new(kind).await;
    let src = source_repo();
    let s = src.path().to_str().unwrap();
    let args = ["--repo", s, "--name", "demo"];
    env.run(&args).await;
    git(src.path(), &["reset", "-q", "--hard", "main~1"]);
    commit(src.path(), "e.txt", b"e\n", "after gc");
    git(src.path(), &["reflog", "expire", "--expire=now", "--all"]);
    git(src.path(), &["gc", "-q", "--prune=now"]);
    // Fetch into the mirror, then drop the old objects there too.
    let mirror = env._workspace.path().join("git/demo");
    git(
        &mirror,
        &["fetch", "-q", "--force", s, "+refs/heads/*:refs/heads/*"],
    );
    git(&mirror, &["reflog", "expire", "--expire=now", "--all"]);
    git(&mirror, &["gc", "-q", "--prune=now"]);
    let r = env.run(&args).await;
    // The merge and the side commit are gone; "after gc" is new. The
    // whole history is walked again (unchanged commits are not rewritten).
    assert_eq!(
        (r.count("inserted"), r.count("unreachable")),
        (1, 2),
        "{r:?}"
    );
    let (total, reachable, _) = repo_summary(&env.storage, "demo").await.unwrap();
    assert_eq!((total, reachable), (6, 4));
}
both!(force_push_after_gc);
