//! `boost-usage` against a local stand-in of the GitHub REST API
//! (wiremock) answering in the documented shapes: `GET /search/repositories`
//! (`total_count`, `incomplete_results`, `items`; `422` past the pages it
//! serves), `GET /search/code` (items with `repository` and `text_matches`),
//! `GET /repos/{o}/{r}/contents/{path}` (base64 wrapped at 60 columns),
//! `GET /repos/{o}/{r}/git/trees/HEAD?recursive=1`, `GET /repos/{o}/{r}`,
//! weak ETags with `304`s, rate-limit headers and `403` secondary limits
//! with `Retry-After`. Every scenario runs on SQLite and PostgreSQL.

mod common;

use std::sync::Arc;

use bdc_collector::{CollectContext, Collector};
use bdc_collector_boost_usage::store::{RepoRow, UsageRow, repos, usages};
use bdc_collector_boost_usage::{BoostUsageCollector, NAME, SCHEMA};
use bdc_config::Config;
use bdc_core::{FailureCategory, TrackerResult};
use bdc_http::ManualClock;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::both_backends as both;
use bdc_testsupport::{Kind, TestDb};
use chrono::TimeZone;
use wiremock::{Mock, MockServer};

use common::fake::{Fake, Model, repo};

struct Env {
    _db: TestDb,
    storage: Storage,
    workspace: tempfile::TempDir,
    fake: Fake,
    api: String,
    _server: MockServer,
    clock: Arc<ManualClock>,
}

const TODAY: &str = "2026-03-10";

/// The standard scenario: two Boost users (one via CMake, one vendoring
/// Boost), one C++ repository without Boost, boostorg, one pushed outside
/// the window, one under the star threshold.
fn standard(m: &mut Model) {
    let main = "#include <boost/asio.hpp>\n#include <boost/shared_ptr.hpp>\n#include <boost/foo/bar.hpp>\n#include <vector>\n";
    m.repos.insert(
        "alice/app".into(),
        repo(
            50,
            "2019-01-01",
            "2026-03-09",
            &[
                ("src/main.cpp", main),
                (
                    "CMakeLists.txt",
                    "project(app)\nfind_package(Boost 1.74 REQUIRED COMPONENTS system)\n",
                ),
            ],
        ),
    );
    m.repos.insert(
        "bob/vend".into(),
        repo(
            20,
            "2020-05-05",
            "2026-03-10",
            &[
                ("src/x.cpp", "#include <boost/json.hpp>\n"),
                (
                    "third_party/boost/version.hpp",
                    "#define BOOST_VERSION 108100\n",
                ),
                (
                    "third_party/boost/asio.hpp",
                    "#include <boost/asio/io_context.hpp>\n",
                ),
            ],
        ),
    );
    m.repos.insert(
        "carol/noboost".into(),
        repo(
            30,
            "2021-01-01",
            "2026-03-09",
            &[("src/a.cpp", "#include <vector>\n")],
        ),
    );
    m.repos.insert(
        "boostorg/asio".into(),
        repo(
            1000,
            "2015-01-01",
            "2026-03-09",
            &[("include/x.hpp", "#include <boost/config.hpp>\n")],
        ),
    );
    m.repos.insert(
        "dave/old".into(),
        repo(
            40,
            "2019-01-01",
            "2025-01-01",
            &[("a.cpp", "#include <boost/regex.hpp>\n")],
        ),
    );
    m.repos.insert(
        "eve/small".into(),
        repo(
            5,
            "2019-01-01",
            "2026-03-09",
            &[("a.cpp", "#include <boost/regex.hpp>\n")],
        ),
    );
}

impl Env {
    async fn new(kind: Kind) -> Env {
        let db = TestDb::new(kind).await;
        let storage = Storage::connect(db.url(), &ConnectOptions::default())
            .await
            .unwrap();
        storage
            .migrate_parts(&[
                &bdc_http::SCHEMA,
                &bdc_collector_boost_libraries::SCHEMA,
                &SCHEMA,
            ])
            .await
            .unwrap();
        // A small catalog (what boost-libraries would have stored).
        bdc_storage::on_pool!(storage, p => {
            sqlx::query("INSERT INTO bl_releases (release, superproject_sha, released_at, submodules, libraries, updated_at) VALUES ('boost-1.90.0', 'x', $1, 3, 3, $1)")
                .bind(chrono::Utc::now()).execute(p).await.unwrap();
            for k in ["asio", "json", "smart_ptr", "config"] {
                sqlx::query("INSERT INTO bl_libraries (release, key, submodule) VALUES ('boost-1.90.0', $1, $1)")
                    .bind(k).execute(p).await.unwrap();
            }
        });
        let server = MockServer::start().await;
        let fake = Fake::default();
        Mock::given(wiremock::matchers::any())
            .respond_with(fake.clone())
            .mount(&server)
            .await;
        Env {
            _db: db,
            storage,
            workspace: tempfile::tempdir().unwrap(),
            fake,
            api: server.uri(),
            _server: server,
            clock: Arc::new(ManualClock::new(
                chrono::Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap(),
            )),
        }
    }

    fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.fake.0.lock().unwrap()
    }

    fn context(&self, args: &[&str]) -> CollectContext {
        let ws = self.workspace.path().display().to_string();
        let api = self.api.clone();
        let config = Config::from_lookup(|k| match k {
            "WORKSPACE_DIR" => Some(ws.clone()),
            "DATABASE_URL" => Some("sqlite::memory:".into()),
            "GITHUB_API_URL" => Some(api.clone()),
            "GITHUB_TOKENS_SCRAPING" => Some("tok-a,tok-b".into()),
            _ => None,
        })
        .unwrap();
        CollectContext {
            run_id: "test-run".into(),
            command: NAME.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            schedule_group: None,
            storage: self.storage.clone(),
            config: Arc::new(config),
            interactive: false,
        }
    }

    async fn try_run(
        &self,
        args: &[&str],
    ) -> Result<TrackerResult, bdc_collector::CollectorFailure> {
        BoostUsageCollector::with_clock(self.clock.clone())
            .run(&self.context(args))
            .await
    }

    async fn run(&self, args: &[&str]) -> TrackerResult {
        match self.try_run(args).await {
            Ok(r) => r,
            Err(e) => panic!("run {args:?} failed: {e}"),
        }
    }

    async fn repos(&self) -> Vec<RepoRow> {
        repos(&self.storage).await.unwrap()
    }

    /// (repo, path, header, library, gone?)
    async fn uses(&self) -> Vec<(String, String, String, String, bool)> {
        usages(&self.storage)
            .await
            .unwrap()
            .into_iter()
            .map(|u: UsageRow| (u.repo, u.path, u.header, u.library, u.gone_at.is_some()))
            .collect()
    }

    /// Repos without the seen dates (for comparisons across runs).
    async fn repo_facts(&self) -> Vec<(String, u64, bool, Option<String>, String, bool)> {
        self.repos()
            .await
            .into_iter()
            .map(|r| {
                (
                    r.full_name,
                    r.stars,
                    r.uses_boost,
                    r.boost_version,
                    r.boost_mode,
                    r.gone,
                )
            })
            .collect()
    }
}

fn u(
    repo: &str,
    path: &str,
    header: &str,
    lib: &str,
    gone: bool,
) -> (String, String, String, String, bool) {
    (repo.into(), path.into(), header.into(), lib.into(), gone)
}

async fn content_scan_end_to_end(kind: Kind) {
    let env = Env::new(kind).await;
    standard(&mut env.model());
    let r = env.run(&["--task", "monitor_content"]).await;
    assert_eq!(r.count("candidates"), 3, "{r:?}");
    assert_eq!(r.count("skipped_boostorg"), 1);
    assert_eq!(r.count("repos_scanned"), 3);
    assert_eq!(r.count("repos_using_boost"), 2);
    assert_eq!(r.count("skipped_vendored"), 1);
    assert_eq!(
        r.count("code_queries"),
        1,
        "three candidates fit one code query"
    );
    assert_eq!(r.count("unknown_headers"), 1);
    assert_eq!(r.count("headers_new"), 4);
    assert_eq!(r.count("versions_detected"), 2);
    assert_eq!(r.count("embedded"), 1);
    assert_eq!(
        env.uses().await,
        vec![
            u("alice/app", "src/main.cpp", "boost/asio.hpp", "asio", false),
            u(
                "alice/app",
                "src/main.cpp",
                "boost/foo/bar.hpp",
                "unknown",
                false
            ),
            u(
                "alice/app",
                "src/main.cpp",
                "boost/shared_ptr.hpp",
                "smart_ptr",
                false
            ),
            u("bob/vend", "src/x.cpp", "boost/json.hpp", "json", false),
        ]
    );
    let repos = env.repos().await;
    assert_eq!(repos.len(), 3);
    let alice = &repos[0];
    assert_eq!(
        (
            alice.full_name.as_str(),
            alice.stars,
            alice.boost_version.as_deref(),
            alice.boost_mode.as_str(),
            alice.version_source.as_deref()
        ),
        (
            "alice/app",
            50,
            Some("1.74"),
            "dependency",
            Some("CMakeLists.txt")
        )
    );
    assert_eq!(alice.first_seen, TODAY);
    assert_eq!(alice.created_at.as_deref(), Some("2019-01-01T08:00:00Z"));
    let bob = &repos[1];
    assert_eq!(
        (
            bob.boost_version.as_deref(),
            bob.boost_mode.as_str(),
            bob.version_source.as_deref()
        ),
        (
            Some("1.81.0"),
            "embedded",
            Some("third_party/boost/version.hpp")
        )
    );
    assert!(!repos[2].uses_boost && repos[2].boost_mode == "unknown");
    // The window was yesterday..today.
    assert!(
        env.model()
            .requests
            .iter()
            .any(|r| r.contains("pushed%3A2026-03-09..2026-03-10"))
    );

    // Unchanged re-run: every answer is a 304, nothing is written.
    let r = env.run(&["--task", "monitor_content"]).await;
    assert_eq!(r.count("rate_limit_points"), 0, "{r:?}");
    assert_eq!(r.count("files_fetched"), 0);
    assert_eq!(r.count("files_unchanged"), 2);
    for k in [
        "repos_inserted",
        "repos_updated",
        "files_new",
        "headers_new",
        "headers_gone",
    ] {
        assert_eq!(r.count(k), 0, "{k}: {r:?}");
    }

    // A header disappears (marked gone), another appears; then comes back.
    let changed = "#include <boost/asio.hpp>\n#include <boost/json/value.hpp>\n#include <boost/foo/bar.hpp>\n";
    env.model()
        .repos
        .get_mut("alice/app")
        .unwrap()
        .files
        .insert("src/main.cpp".into(), changed.into());
    let r = env.run(&["--task", "monitor_content"]).await;
    assert_eq!(
        (r.count("headers_new"), r.count("headers_gone")),
        (1, 1),
        "{r:?}"
    );
    let uses = env.uses().await;
    assert!(uses.contains(&u(
        "alice/app",
        "src/main.cpp",
        "boost/shared_ptr.hpp",
        "smart_ptr",
        true
    )));
    assert!(uses.contains(&u(
        "alice/app",
        "src/main.cpp",
        "boost/json/value.hpp",
        "json",
        false
    )));
    let original = "#include <boost/asio.hpp>\n#include <boost/shared_ptr.hpp>\n#include <boost/foo/bar.hpp>\n#include <vector>\n";
    env.model()
        .repos
        .get_mut("alice/app")
        .unwrap()
        .files
        .insert("src/main.cpp".into(), original.into());
    let r = env.run(&["--task", "monitor_content"]).await;
    assert_eq!(
        (r.count("headers_back"), r.count("headers_gone")),
        (1, 1),
        "{r:?}"
    );

    // A file removed from the repository: its file and headers are gone.
    env.model()
        .repos
        .get_mut("bob/vend")
        .unwrap()
        .files
        .remove("src/x.cpp");
    let r = env.run(&["--task", "monitor_content"]).await;
    assert_eq!(
        (r.count("files_gone"), r.count("headers_gone")),
        (1, 1),
        "{r:?}"
    );
    assert!(
        env.uses()
            .await
            .contains(&u("bob/vend", "src/x.cpp", "boost/json.hpp", "json", true))
    );

    // Replay of the raw archive into a fresh database: no network.
    let fresh = Env::new(kind).await;
    let before = env.model().requests.len();
    let ctx = {
        let mut c = fresh.context(&["--task", "monitor_content", "--from-archive"]);
        let ws = env.workspace.path().display().to_string();
        let api = env.api.clone();
        c.config = Arc::new(
            Config::from_lookup(|k| match k {
                "WORKSPACE_DIR" => Some(ws.clone()),
                "DATABASE_URL" => Some("sqlite::memory:".into()),
                "GITHUB_API_URL" => Some(api.clone()),
                _ => None,
            })
            .unwrap(),
        );
        c
    };
    let r = BoostUsageCollector::with_clock(fresh.clock.clone())
        .run(&ctx)
        .await
        .unwrap();
    assert_eq!(r.count("requests"), 0, "{r:?}");
    assert!(r.count("replayed") > 0);
    assert_eq!(env.model().requests.len(), before);
    assert_eq!(fresh.repo_facts().await, env.repo_facts().await);
}
both!(content_scan_end_to_end);

async fn monitor_stars_adds_new_repos_and_refreshes_stars(kind: Kind) {
    let env = Env::new(kind).await;
    standard(&mut env.model());
    env.run(&["--task", "monitor_content"]).await;
    {
        let mut m = env.model();
        // Created long ago, not pushed in the window, uses Boost.
        m.repos.insert("frank/new".into(), repo(15, "2020-02-02", "2024-01-01", &[
            ("lib/a.hpp", "#include <boost/config.hpp>\n"),
            ("vcpkg.json", r#"{"dependencies": ["boost-config"], "overrides": [{"name": "boost-config", "version": "1.85.0"}]}"#),
        ]));
        // Created before 2018-04-01: out of reach of monitor_stars.
        m.repos.insert(
            "gina/ancient".into(),
            repo(
                99,
                "2017-01-01",
                "2024-01-01",
                &[("a.cpp", "#include <boost/asio.hpp>\n")],
            ),
        );
        m.repos.get_mut("alice/app").unwrap().stars = 75;
        m.repos.remove("bob/vend");
    }
    let r = env.run(&["--task", "monitor_stars"]).await;
    // dave/old is new to the tracker too (created 2019, 40 stars).
    assert_eq!(r.count("repos_scanned"), 2, "{r:?}");
    assert_eq!(r.count("skipped_tracked"), 2, "alice and carol");
    assert_eq!(
        (r.count("stars_refreshed"), r.count("repos_gone")),
        (2, 1),
        "{r:?}"
    );
    let facts = env.repo_facts().await;
    assert!(
        facts.contains(&(
            "alice/app".into(),
            75,
            true,
            Some("1.74".into()),
            "dependency".into(),
            false
        )),
        "{facts:?}"
    );
    assert!(facts.contains(&(
        "bob/vend".into(),
        20,
        true,
        Some("1.81.0".into()),
        "embedded".into(),
        true
    )));
    assert!(facts.contains(&(
        "frank/new".into(),
        15,
        true,
        Some("1.85.0".into()),
        "dependency".into(),
        false
    )));
    assert!(!facts.iter().any(|f| f.0 == "gina/ancient"));
    // Re-run: the repositories scanned last time (frank, dave) get their
    // first star refresh; the gone one is not asked again; nothing changes.
    let r = env.run(&["--task", "monitor_stars"]).await;
    assert_eq!(r.count("rate_limit_points"), 2, "{r:?}");
    assert_eq!(
        (r.count("repos_scanned"), r.count("stars_refreshed")),
        (0, 0)
    );
    // Unchanged re-run: free, nothing written.
    let r = env.run(&["--task", "monitor_stars"]).await;
    assert_eq!(r.count("rate_limit_points"), 0, "{r:?}");
    assert_eq!(
        (r.count("repos_scanned"), r.count("stars_refreshed")),
        (0, 0)
    );
}
both!(monitor_stars_adds_new_repos_and_refreshes_stars);

async fn halves_windows_over_the_cap_and_paces_searches(kind: Kind) {
    let env = Env::new(kind).await;
    {
        let mut m = env.model();
        for day in ["2026-03-09", "2026-03-10"] {
            for i in 0..600 {
                m.repos.insert(
                    format!("u{i}-{}/p{i}", &day[8..]),
                    repo(
                        11 + i as u64,
                        "2019-01-01",
                        day,
                        &[("a.cpp", "int main() {}\n")],
                    ),
                );
            }
        }
        // GitHub sometimes refuses pages before the 1,000th result.
        m.max_page = Some(4);
    }
    let r = env.run(&["--task", "monitor_content"]).await;
    assert_eq!(
        (r.count("window_splits"), r.count("windows")),
        (1, 2),
        "{r:?}"
    );
    assert_eq!(r.count("too_deep"), 2);
    assert_eq!(r.count("candidates"), 800);
    assert_eq!(r.count("repos_scanned"), 800);
    assert_eq!(r.count("repos_using_boost"), 0);
    // 2 tokens: 20 code searches a minute; more than 40 queries → waits.
    assert!(r.count("code_queries") > 40, "{r:?}");
    assert!(r.count("waited_ms") >= 120_000, "{r:?}");
}
both!(halves_windows_over_the_cap_and_paces_searches);

async fn secondary_limits_wait_and_interrupted_runs_resume(kind: Kind) {
    let env = Env::new(kind).await;
    standard(&mut env.model());
    env.model().code_limits = 1;
    // The budget runs out in the middle of the scan: a failed run.
    let err = env.try_run(&["--max-requests", "7"]).await.unwrap_err();
    assert_eq!(err.category, FailureCategory::RateLimited, "{err}");
    let partial = env.repos().await.len();
    assert!(partial < 3, "stopped part-way ({partial} repos)");
    let r = env.run(&[]).await;
    assert!(
        r.count("waited_ms") >= 30_000 || env.clock.sleeps().iter().any(|d| d.as_secs() == 30),
        "{r:?}"
    );

    let fresh = Env::new(kind).await;
    standard(&mut fresh.model());
    fresh.run(&[]).await;
    assert_eq!(env.repo_facts().await, fresh.repo_facts().await);
    assert_eq!(env.uses().await, fresh.uses().await);
}
both!(secondary_limits_wait_and_interrupted_runs_resume);

async fn secondary_limit_is_reported_as_waited_time(kind: Kind) {
    let env = Env::new(kind).await;
    standard(&mut env.model());
    env.model().code_limits = 2;
    let r = env.run(&["--task", "monitor_content"]).await;
    assert_eq!(r.count("waited_ms"), 60_000, "{r:?}");
    assert_eq!(r.count("repos_using_boost"), 2);
}
both!(secondary_limit_is_reported_as_waited_time);

async fn dry_run_and_bad_input(kind: Kind) {
    let env = Env::new(kind).await;
    standard(&mut env.model());
    let r = env
        .run(&[
            "--task",
            "monitor_content",
            "--dry-run",
            "--since",
            "2026-03-09",
            "--until",
            "2026-03-10",
        ])
        .await;
    assert_eq!(r.count("headers_new"), 4, "{r:?}");
    assert!(env.repos().await.is_empty(), "dry run writes nothing");

    env.model().broken_search = true;
    let err = env
        .try_run(&["--task", "monitor_content"])
        .await
        .unwrap_err();
    assert_eq!(err.category, FailureCategory::Parse, "{err}");
    assert!(env.repos().await.is_empty());

    for bad in [
        vec!["--task", "monitor_everything"],
        vec!["--since", "2026-13-01"],
        vec!["--since", "2026-03-10", "--until", "2026-03-01"],
        vec!["--archive-dir", "x"],
        vec!["--min-stars", "-1"],
    ] {
        let err = env.try_run(&bad).await.unwrap_err();
        assert_eq!(err.category, FailureCategory::Config, "{bad:?}: {err}");
    }
}
both!(dry_run_and_bad_input);

async fn undecodable_and_huge_files_are_counted_skips(kind: Kind) {
    let env = Env::new(kind).await;
    env.model().repos.insert(
        "ivy/odd".into(),
        repo(
            12,
            "2020-01-01",
            "2026-03-10",
            &[
                ("src/ok.cpp", "#include <boost/json.hpp>\n"),
                ("src/gen.huge.cpp", "#include <boost/asio.hpp>\n"),
                ("src/x.mangled.cpp", "#include <boost/regex.hpp>\n"),
            ],
        ),
    );
    let r = env.run(&["--task", "monitor_content"]).await;
    assert_eq!(
        (r.count("too_large"), r.count("undecodable")),
        (1, 1),
        "{r:?}"
    );
    assert_eq!(r.count("headers_new"), 1);
    // Unreadable files are not recorded (what is stored for them stays).
    assert_eq!(
        env.uses().await,
        vec![u("ivy/odd", "src/ok.cpp", "boost/json.hpp", "json", false)]
    );
}
both!(undecodable_and_huge_files_are_counted_skips);

/// File contents come in GraphQL blob batches (one query per repository
/// instead of one contents request per file); when GraphQL is down the
/// contents API gives the same rows.
async fn graphql_blob_batches_with_rest_fallback(kind: Kind) {
    let env = Env::new(kind).await;
    standard(&mut env.model());
    let r = env.run(&["--task", "monitor_content"]).await;
    assert!(r.count("graphql_batches") >= 2, "{r:?}");
    assert_eq!(r.count("graphql_files"), r.count("files_fetched"), "{r:?}");
    assert_eq!(r.count("graphql_fallbacks"), 0, "{r:?}");
    let requests = env.model().requests.clone();
    assert!(
        !requests.iter().any(|u| u.contains("/contents/src/")),
        "no contents request for searched files: {requests:?}"
    );
    assert!(requests.iter().any(|u| u.ends_with("/graphql")));

    let down = Env::new(kind).await;
    standard(&mut down.model());
    down.model().graphql_down = true;
    let r2 = down.run(&["--task", "monitor_content"]).await;
    assert_eq!(r2.count("graphql_files"), 0, "{r2:?}");
    assert!(r2.count("graphql_fallbacks") >= 2, "{r2:?}");
    assert_eq!(
        r2.count("files_fetched"),
        r.count("files_fetched"),
        "{r2:?}"
    );
    assert!(
        down.model()
            .requests
            .iter()
            .any(|u| u.contains("/contents/src/main.cpp"))
    );
    assert_eq!(down.repo_facts().await, env.repo_facts().await);
    assert_eq!(down.uses().await, env.uses().await);
}
both!(graphql_blob_batches_with_rest_fallback);
