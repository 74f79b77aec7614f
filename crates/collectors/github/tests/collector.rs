//! End-to-end tests of `github-activity` / `clang-github` against a fake
//! GitHub (`tests/common/fake.rs`) on real SQLite and PostgreSQL databases.

mod common;

use std::sync::Arc;

use bdc_collector::{CollectContext, Collector};
use bdc_collector_github::{GithubCollector, GithubStore, SCHEMA};
use bdc_config::Config;
use bdc_core::{FailureCategory, TrackerResult};
use bdc_http::{ManualClock, token_id};
use bdc_storage::activity::ActivityFilter;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};
use common::NowTs;
use common::fake::{FakeGithub, RepoData, Sizes};
use wiremock::MockServer;

struct Env {
    _db: TestDb,
    storage: Storage,
    workspace: tempfile::TempDir,
    clock: Arc<ManualClock>,
    fake: FakeGithub,
    server: MockServer,
    tokens: Option<String>,
}

impl Env {
    async fn new(kind: Kind, repos: Vec<RepoData>) -> Env {
        Self::build(kind, repos, None, tempfile::tempdir().unwrap()).await
    }

    async fn build(
        kind: Kind,
        repos: Vec<RepoData>,
        tokens: Option<&str>,
        workspace: tempfile::TempDir,
    ) -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (db, storage) = open(kind).await;
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let fake = FakeGithub::new(repos, clock.clone());
        let server = fake.clone().start().await;
        Env {
            _db: db,
            storage,
            workspace,
            clock,
            fake,
            server,
            tokens: tokens.map(str::to_owned),
        }
    }

    fn config(&self) -> Arc<Config> {
        let ws = self.workspace.path().display().to_string();
        let api = self.server.uri();
        let tokens = self.tokens.clone();
        Arc::new(
            Config::from_lookup(|k| match k {
                "WORKSPACE_DIR" => Some(ws.clone()),
                "GITHUB_API_URL" => Some(api.clone()),
                "GITHUB_TOKENS_SCRAPING" => tokens.clone(),
                _ => None,
            })
            .unwrap(),
        )
    }

    fn ctx(&self, name: &str, args: &[&str]) -> CollectContext {
        CollectContext {
            run_id: format!("test-{}", uuid_like()),
            command: name.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            schedule_group: None,
            storage: self.storage.clone(),
            config: self.config(),
            interactive: false,
        }
    }

    fn collector(&self) -> GithubCollector {
        GithubCollector::activity()
            .with_clock(self.clock.clone())
            .with_client_options(|o| o.rotate_below = 1)
    }

    async fn run(&self, args: &[&str]) -> TrackerResult {
        match self
            .collector()
            .run(&self.ctx("github-activity", args))
            .await
        {
            Ok(r) => r,
            Err(e) => panic!("run {args:?} failed: {e}"),
        }
    }

    async fn fail(&self, args: &[&str]) -> FailureCategory {
        match self
            .collector()
            .run(&self.ctx("github-activity", args))
            .await
        {
            Ok(r) => panic!("run {args:?} succeeded: {r:?}"),
            Err(e) => e.category,
        }
    }

    fn store(&self) -> GithubStore {
        GithubStore::new(self.storage.clone(), "github-activity")
    }

    async fn counts(&self) -> Vec<(&'static str, i64)> {
        self.store().table_counts().await.unwrap()
    }

    async fn count(&self, table: &str) -> i64 {
        self.counts()
            .await
            .into_iter()
            .find(|(t, _)| *t == table)
            .map(|(_, n)| n)
            .unwrap()
    }

    /// Everything observable, for comparing two databases.
    async fn dump(&self) -> (Vec<(&'static str, i64)>, Vec<String>) {
        let recs = self
            .storage
            .activity()
            .list(&ActivityFilter {
                source_system: Some("github".into()),
                limit: Some(100_000),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut lines: Vec<String> = recs
            .iter()
            .map(|r| {
                format!(
                    "{} {} {:?} {:?} {:?} {}",
                    r.record.external_id(),
                    r.record.kind(),
                    r.record.actor(),
                    r.record.title(),
                    r.record.url(),
                    r.record.payload()
                )
            })
            .collect();
        lines.sort();
        (self.counts().await, lines)
    }

    async fn checkpoint(&self, scope: &str) -> Option<String> {
        self.storage
            .checkpoints()
            .get("github-activity", scope)
            .await
            .unwrap()
            .map(|c| c.checkpoint_token().to_owned())
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

use bdc_testsupport::both_backends as both;

/// A fresh database with the collector's schema parts.
async fn open(kind: Kind) -> (TestDb, Storage) {
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default())
        .await
        .unwrap();
    storage
        .migrate_parts(&[&bdc_http::SCHEMA, &SCHEMA, &bdc_identity::SCHEMA])
        .await
        .unwrap();
    (db, storage)
}

fn json_repo() -> RepoData {
    RepoData::generate("boostorg", "json", 7590028, Sizes::small())
}

const REPO: &[&str] = &["--repo", "boostorg/json"];

both!(collects_everything_then_rerun_costs_nothing);
async fn collects_everything_then_rerun_costs_nothing(kind: Kind) {
    let env = Env::new(kind, vec![json_repo()]).await;
    let first = env.run(REPO).await;
    // 6 items: 2 pull requests (3, 6), 4 issues; 4 comments; 2 review
    // comments; 2 reviews; 3 commits; 2 releases.
    assert_eq!(first.count("issues"), 4, "{first:?}");
    assert_eq!(first.count("pulls"), 2);
    assert_eq!(first.count("issue_comments"), 4);
    assert_eq!(first.count("review_comments"), 2);
    assert_eq!(first.count("reviews"), 2);
    assert_eq!(first.count("commits"), 3);
    assert_eq!(first.count("commit_details"), 3);
    assert_eq!(first.count("releases"), 2);
    assert_eq!(first.count("user_details"), 5, "4 people + the org");
    assert_eq!(first.count("inserted"), 6 + 4 + 2 + 2 + 3 + 2);
    let counts = env.counts().await;
    let expect = [
        ("github_repos", 1),
        ("github_users", 5),
        ("github_issues", 6),
        ("github_pulls", 2),
        ("github_comments", 6),
        ("github_reviews", 2),
        ("github_commits", 3),
        ("github_files", 3),
        ("github_file_changes", 3),
        ("github_releases", 2),
    ];
    assert_eq!(counts, expect);
    assert_eq!(
        env.checkpoint("boostorg/json:issues").await.as_deref(),
        Some("2024-01-01T00:06:00+00:00")
    );
    assert_eq!(
        env.checkpoint("boostorg/json:commits").await.as_deref(),
        Some("2024-01-01T03:00:00+00:00")
    );
    // Public details: names for all, emails only where public.
    let acts = env
        .storage
        .activity()
        .count(&ActivityFilter {
            source_system: Some("github".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(acts, 19);
    let before = env.dump().await;
    let served = env.fake.requests();
    let points = env.fake.points();

    // Nothing changed upstream: every request is conditional and answered 304.
    let second = env.run(REPO).await;
    assert_eq!(
        env.fake.points(),
        points,
        "a re-run must spend no rate-limit point"
    );
    assert_eq!(second.count("rate_limit_points"), 0, "{second:?}");
    assert_eq!(second.count("not_modified"), second.count("requests"));
    assert_eq!(second.count("inserted") + second.count("updated"), 0);
    assert_eq!(second.count("rows_written"), 0);
    assert_eq!(
        second.count("commit_details") + second.count("user_details"),
        0
    );
    assert!(env.fake.requests() > served);
    assert_eq!(env.dump().await, before);
}

both!(pagination_over_many_pages);
async fn pagination_over_many_pages(kind: Kind) {
    let sizes = Sizes {
        issues: 57,
        comments: 23,
        commits: 17,
        releases: 3,
    };
    let env = Env::new(
        kind,
        vec![RepoData::generate("boostorg", "json", 7590028, sizes)],
    )
    .await;
    let r = env
        .run(&[
            "--repo",
            "boostorg/json",
            "--per-page",
            "5",
            "--no-commit-files",
        ])
        .await;
    assert_eq!(r.count("issues") + r.count("pulls"), 57, "{r:?}");
    assert_eq!(r.count("commits"), 17);
    assert_eq!(env.count("github_issues").await, 57);
    assert_eq!(env.count("github_comments").await, 23 + 19);
    assert_eq!(env.count("github_commits").await, 17);
    assert_eq!(
        env.count("github_file_changes").await,
        0,
        "--no-commit-files"
    );
    let pages = env
        .fake
        .with(|s| s.log.iter().filter(|l| l.path.contains("/issues?")).count());
    assert_eq!(pages, 12, "57 issues in pages of 5");
    assert_eq!(
        env.checkpoint("boostorg/json:issues").await.as_deref(),
        Some("2024-01-01T00:57:00+00:00")
    );
    // The catch-up moved the request anchor once; from then on re-runs are free.
    let second = env
        .run(&[
            "--repo",
            "boostorg/json",
            "--per-page",
            "5",
            "--no-commit-files",
        ])
        .await;
    assert_eq!(
        second.count("inserted") + second.count("updated"),
        0,
        "{second:?}"
    );
    let third = env
        .run(&[
            "--repo",
            "boostorg/json",
            "--per-page",
            "5",
            "--no-commit-files",
        ])
        .await;
    assert_eq!(third.count("rate_limit_points"), 0, "{third:?}");
}

both!(updates_to_old_items_are_picked_up);
async fn updates_to_old_items_are_picked_up(kind: Kind) {
    let env = Env::new(kind, vec![json_repo()]).await;
    env.run(REPO).await;
    env.fake.with(|s| {
        let r = &mut s.repos[0];
        // An old PR gets a new title and a new review; a new comment appears.
        r.issues[2]["title"] = serde_json::json!("Fix the parser (v2)");
        r.issues[2]["updated_at"] = serde_json::json!("2024-02-01T00:00:00Z");
        let mut review = r.reviews[&3][0].clone();
        review["id"] = serde_json::json!(42);
        review["state"] = serde_json::json!("CHANGES_REQUESTED");
        r.reviews.get_mut(&3).unwrap().push(review);
        let mut c = r.issue_comments[0].clone();
        c["id"] = serde_json::json!(43);
        c["updated_at"] = serde_json::json!("2024-02-02T00:00:00Z");
        r.issue_comments.push(c);
    });
    let r = env.run(REPO).await;
    assert_eq!(r.count("inserted"), 2, "new review and comment: {r:?}");
    assert_eq!(r.count("updated"), 1, "the retitled PR");
    assert_eq!(env.count("github_reviews").await, 3);
    assert_eq!(
        env.checkpoint("boostorg/json:issues").await.as_deref(),
        Some("2024-02-01T00:00:00+00:00")
    );
    let rows = env
        .storage
        .activity()
        .list(&ActivityFilter {
            source_system: Some("github".into()),
            kind: Some("pull_request".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let pr = rows
        .iter()
        .find(|r| r.record.external_id() == "issue:7590028000003")
        .unwrap();
    assert_eq!(pr.record.title(), Some("Fix the parser (v2)"));
    assert_eq!(pr.revision, 2);
}

both!(rate_limit_rotation_and_pause);
async fn rate_limit_rotation_and_pause(kind: Kind) {
    let env = Env::build(
        kind,
        vec![json_repo()],
        Some("tok-a,tok-b"),
        tempfile::tempdir().unwrap(),
    )
    .await;
    let now = env.clock.now_ts();
    env.fake.with(|s| {
        s.window = 5;
        s.limits.insert(
            "tok-a".into(),
            common::fake::Limit {
                remaining: 3,
                reset_at: now + 600,
            },
        );
        s.limits.insert(
            "tok-b".into(),
            common::fake::Limit {
                remaining: 4,
                reset_at: now + 900,
            },
        );
    });
    let r = env.run(REPO).await;
    assert!(r.count("rotations") >= 1, "{r:?}");
    assert!(r.count("pauses") >= 1, "both tokens run out: {r:?}");
    // The pause waited for the earliest reset (600 s), without sleeping.
    assert!(
        env.clock
            .sleeps()
            .iter()
            .any(|d| d.as_secs() >= 590 && d.as_secs() <= 610),
        "{:?}",
        env.clock.sleeps()
    );
    let used: std::collections::BTreeSet<String> = env
        .fake
        .with(|s| s.log.iter().filter_map(|l| l.token.clone()).collect());
    assert_eq!(used.len(), 2, "{used:?}");
    assert_eq!(env.count("github_issues").await, 6);
    // Metrics labels use a hashed id, never the token.
    let id = token_id(Some(&bdc_config::Secret::new("tok-a")));
    assert!(id.starts_with("tok-") && !id.contains("tok-a"), "{id}");
}

both!(secondary_limit_and_server_errors_are_retried);
async fn secondary_limit_and_server_errors_are_retried(kind: Kind) {
    let env = Env::new(kind, vec![json_repo()]).await;
    env.fake.inject(
        "/issues?",
        403,
        r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}"#,
        &[("Retry-After", "7")],
        1,
    );
    env.fake
        .inject("/releases", 500, r#"{"message":"Server Error"}"#, &[], 2);
    let r = env.run(REPO).await;
    assert_eq!(r.count("retries"), 3, "{r:?}");
    assert!(
        env.clock.sleeps().iter().any(|d| d.as_secs() == 7),
        "{:?}",
        env.clock.sleeps()
    );
    assert_eq!(env.count("github_releases").await, 2);
    assert_eq!(env.count("github_issues").await, 6);
    // 500s that never stop: classified network after the bounded retries.
    env.fake.inject("/releases", 502, "bad gateway", &[], 100);
    env.fake
        .with(|s| s.repos[0].releases[0]["name"] = serde_json::json!("changed"));
    assert_eq!(env.fail(REPO).await, FailureCategory::Network);
    // 404 and 401 map to not_found and auth.
    assert_eq!(
        env.fail(&["--repo", "boostorg/nope"]).await,
        FailureCategory::NotFound
    );
    env.fake.inject(
        "/repos/boostorg/json",
        401,
        r#"{"message":"Bad credentials"}"#,
        &[],
        1,
    );
    assert_eq!(env.fail(REPO).await, FailureCategory::Auth);
}

both!(malformed_json_is_a_parse_failure_with_nothing_half_written);
async fn malformed_json_is_a_parse_failure_with_nothing_half_written(kind: Kind) {
    let env = Env::new(kind, vec![json_repo()]).await;
    env.fake
        .inject("/issues?", 200, r#"[{"id": 1, "number": "#, &[], 1);
    assert_eq!(env.fail(REPO).await, FailureCategory::Parse);
    assert_eq!(env.count("github_issues").await, 0);
    assert_eq!(env.count("github_reviews").await, 0);
    assert_eq!(env.checkpoint("boostorg/json:issues").await, None);
    let issues = env
        .storage
        .activity()
        .count(&ActivityFilter {
            source_system: Some("github".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(issues, 0);
    // The next run (the server is fine again) collects everything.
    env.run(REPO).await;
    assert_eq!(env.count("github_issues").await, 6);
}

both!(crash_mid_run_then_resume_equals_uninterrupted);
async fn crash_mid_run_then_resume_equals_uninterrupted(kind: Kind) {
    let sizes = Sizes {
        issues: 23,
        comments: 9,
        commits: 7,
        releases: 2,
    };
    let data = || {
        vec![
            RepoData::generate("boostorg", "json", 7590028, sizes),
            RepoData::generate("boostorg", "url", 7590029, sizes),
        ]
    };
    let args = [
        "--repo",
        "boostorg/json",
        "--repo",
        "boostorg/url",
        "--per-page",
        "4",
    ];
    let reference = Env::new(kind, data()).await;
    reference.run(&args).await;
    let expected = reference.dump().await;
    assert!(expected.0.iter().all(|(_, n)| *n > 0), "{expected:?}");

    for budget in [5u64, 13, 29, 61] {
        let env = Env::new(kind, data()).await;
        let b = budget.to_string();
        let mut crashed = args.to_vec();
        crashed.extend(["--max-requests", b.as_str()]);
        let mut runs = 0;
        // Keep "crashing" until a budgeted run completes, then a final full run.
        loop {
            runs += 1;
            match env
                .collector()
                .run(&env.ctx("github-activity", &crashed))
                .await
            {
                Ok(_) => break,
                Err(e) => assert_eq!(e.category, FailureCategory::RateLimited, "{e}"),
            }
            assert!(runs < 100, "no progress with budget {budget}");
        }
        env.run(&args).await;
        assert!(runs > 1 || budget > 60, "budget {budget} should interrupt");
        assert_eq!(env.dump().await, expected, "budget {budget}, {runs} runs");
    }
}

both!(replay_from_archive_without_network);
async fn replay_from_archive_without_network(kind: Kind) {
    let live = Env::new(kind, vec![json_repo()]).await;
    live.run(REPO).await;
    let expected = live.dump().await;
    let archive = live
        .workspace
        .path()
        .join("raw")
        .join("github-activity")
        .join("index.jsonl");
    assert!(archive.exists());
    // A fresh database, the same workspace and API URL: nothing may be requested.
    let (fresh, storage) = open(kind).await;
    let served = live.fake.requests();
    let mut ctx = live.ctx("github-activity", &["--from-archive"]);
    ctx.storage = storage.clone();
    let r = live.collector().run(&ctx).await.unwrap();
    assert_eq!(
        live.fake.requests(),
        served,
        "replay must not use the network"
    );
    assert_eq!(r.count("requests"), 0);
    assert!(r.count("replayed") > 0);
    let replayed = Env {
        _db: fresh,
        storage,
        workspace: tempfile::tempdir().unwrap(),
        clock: live.clock.clone(),
        fake: live.fake.clone(),
        server: MockServer::start().await,
        tokens: None,
    };
    assert_eq!(replayed.dump().await, expected);
}

both!(clang_github_filters_labels_and_paths);
async fn clang_github_filters_labels_and_paths(kind: Kind) {
    let env = Env::new(
        kind,
        vec![RepoData::generate(
            "llvm",
            "llvm-project",
            75821432,
            Sizes::small(),
        )],
    )
    .await;
    let collector = GithubCollector::clang().with_clock(env.clock.clone());
    let r = collector.run(&env.ctx("clang-github", &[])).await.unwrap();
    // Even items carry the `clang` label: 2, 4, 6 (6 is a PR).
    assert_eq!(r.count("issues") + r.count("pulls"), 3, "{r:?}");
    assert_eq!(env.count("github_issues").await, 3);
    // Comments per labelled issue (2 and 4 have one each) and the PR's review comment.
    assert_eq!(r.count("issue_comments"), 2);
    assert_eq!(r.count("review_comments"), 1);
    // Commits under clang/: 1 and 3.
    assert_eq!(env.count("github_commits").await, 2);
    let cp = env
        .storage
        .checkpoints()
        .get("clang-github", "llvm/llvm-project:issues:label=clang")
        .await
        .unwrap();
    assert!(cp.is_some());
    let again = collector.run(&env.ctx("clang-github", &[])).await.unwrap();
    assert_eq!(again.count("rate_limit_points"), 0, "{again:?}");
}

both!(org_lists_every_repository);
async fn org_lists_every_repository(kind: Kind) {
    let repos = (0..3)
        .map(|i| RepoData::generate("boostorg", &format!("lib{i}"), 100 + i, Sizes::small()))
        .chain([RepoData::generate("other", "x", 999, Sizes::small())])
        .collect();
    let env = Env::new(kind, repos).await;
    let r = env
        .run(&["--org", "boostorg", "--resources", "issues,releases"])
        .await;
    assert_eq!(r.count("repos"), 3, "{r:?}");
    assert_eq!(env.count("github_repos").await, 3);
    assert_eq!(env.count("github_issues").await, 18);
    assert_eq!(env.count("github_commits").await, 0);
}

// One write whose tables need different numbers of PostgreSQL statements
// (5,000 rows per table and statement): 100 commits with 60 files each
// (6,000 files and file changes), their users, activity records and two
// checkpoints. Every row lands once, the counts add up, both checkpoints
// move, and writing it again changes nothing.
both!(a_write_spanning_several_statements_lands_whole);
async fn a_write_spanning_several_statements_lands_whole(kind: Kind) {
    use bdc_collector_github::Batch;
    use bdc_collector_github::model::Commit;
    use bdc_collector_github::sync::add_commits;
    use bdc_core::IncrementalState;

    let (_db, storage) = open(kind).await;
    let store = GithubStore::new(storage.clone(), "github-activity");
    let template = common::fake::fixture("commit");
    let file = template["files"][0].clone();
    let commits: Vec<Commit> = (0..100)
        .map(|i| {
            let mut c = template.clone();
            c["sha"] = serde_json::json!(format!("{i:040x}"));
            c["author"]["id"] = serde_json::json!(5_000 + i);
            c["author"]["login"] = serde_json::json!(format!("dev{i}"));
            c["files"] = serde_json::Value::Array(
                (0..60)
                    .map(|f| {
                        let mut x = file.clone();
                        x["filename"] = serde_json::json!(format!("src/c{i}/f{f}.cpp"));
                        x
                    })
                    .collect(),
            );
            serde_json::from_value(c).unwrap()
        })
        .collect();
    let mut batch = Batch::default();
    add_commits(&mut batch, "boostorg/many", 77, commits).unwrap();
    let cp1 = IncrementalState::new("t1", "commits").unwrap();
    let cp2 = IncrementalState::new("t2", "other").unwrap();
    batch
        .checkpoints
        .push(("boostorg/many:commits".into(), cp1.clone()));
    batch
        .checkpoints
        .push(("boostorg/many:other".into(), cp2.clone()));
    let first = store.write(&batch, Some("r1")).await.unwrap();
    let counts: std::collections::BTreeMap<_, _> =
        store.table_counts().await.unwrap().into_iter().collect();
    assert_eq!(counts["github_commits"], 100);
    assert_eq!(counts["github_files"], 6_000);
    assert_eq!(counts["github_file_changes"], 6_000);
    assert!(counts["github_users"] >= 100, "{counts:?}");
    let users = counts["github_users"] as u64;
    assert_eq!(first.typed_rows, 100 + 6_000 + 6_000 + users);
    assert_eq!(first.activity.inserted, 100);
    for (scope, state) in [
        ("boostorg/many:commits", &cp1),
        ("boostorg/many:other", &cp2),
    ] {
        assert_eq!(
            storage
                .checkpoints()
                .get("github-activity", scope)
                .await
                .unwrap()
                .as_ref(),
            Some(state)
        );
    }
    let again = store.write(&batch, Some("r2")).await.unwrap();
    assert_eq!(again.typed_rows, 0);
    assert_eq!(
        (
            again.activity.inserted,
            again.activity.updated,
            again.activity.unchanged
        ),
        (0, 0, 100)
    );
    storage.close().await;
}

/// Regenerates the demo's recorded GitHub responses
/// (`examples/github-activity/raw/`, replayed by `bdc demo` with
/// `--from-archive`): a run against the fake GitHub, its raw archive copied
/// with the fake's address replaced by `https://api.github.com`.
/// `cargo test -p bdc-collector-github --test collector -- --ignored record_demo_archive`
#[tokio::test(flavor = "multi_thread")]
#[ignore = "regenerates examples/github-activity/raw (run on purpose)"]
async fn record_demo_archive() {
    let env = Env::new(Kind::Sqlite, vec![json_repo()]).await;
    env.run(REPO).await;
    let src = env.workspace.path().join("raw").join("github-activity");
    let dst = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../examples/github-activity/raw");
    let _ = std::fs::remove_dir_all(&dst);
    let base = env.server.uri();
    fn copy(src: &std::path::Path, dst: &std::path::Path, base: &str) {
        std::fs::create_dir_all(dst).unwrap();
        for e in std::fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            let to = dst.join(e.file_name());
            if e.path().is_dir() {
                copy(&e.path(), &to, base);
            } else if e.file_name() == "index.jsonl" {
                let text = std::fs::read_to_string(e.path()).unwrap();
                std::fs::write(to, text.replace(base, "https://api.github.com")).unwrap();
            } else {
                std::fs::copy(e.path(), to).unwrap();
            }
        }
    }
    copy(&src, &dst, &base);
}
