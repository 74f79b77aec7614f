//! `boost-usage` against a local stand-in of the GitHub REST API
//! (wiremock) answering in the documented shapes: `GET /search/repositories`
//! (`total_count`, `incomplete_results`, `items`; `422` past the pages it
//! serves), `GET /search/code` (items with `repository` and `text_matches`),
//! `GET /repos/{o}/{r}/contents/{path}` (base64 wrapped at 60 columns),
//! `GET /repos/{o}/{r}/git/trees/HEAD?recursive=1`, `GET /repos/{o}/{r}`,
//! weak ETags with `304`s, rate-limit headers and `403` secondary limits
//! with `Retry-After`. Every scenario runs on SQLite and PostgreSQL.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
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
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[derive(Clone)]
struct FakeRepo {
    stars: u64,
    created: String,
    pushed: String,
    files: BTreeMap<String, String>,
}

#[derive(Default)]
struct Model {
    repos: BTreeMap<String, FakeRepo>,
    /// Search pages past this one answer 422.
    max_page: Option<u64>,
    /// The next N code searches answer a 403 secondary limit.
    code_limits: u32,
    broken_search: bool,
    requests: Vec<String>,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<Model>>);

fn b64_wrapped(text: &str) -> String {
    let enc = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    enc.as_bytes()
        .chunks(60)
        .map(|c| format!("{}\n", String::from_utf8_lossy(c)))
        .collect()
}

fn blob_sha(text: &str) -> String {
    format!("{:040x}", bdc_http::fnv1a64(text.as_bytes()))
}

fn repo_json(name: &str, r: &FakeRepo) -> Value {
    json!({"id": bdc_http::fnv1a64(name.as_bytes()) % 1_000_000, "full_name": name,
           "name": name.split('/').nth(1), "private": false, "fork": false,
           "stargazers_count": r.stars, "language": "C++",
           "created_at": r.created, "pushed_at": r.pushed, "default_branch": "main"})
}

fn err(status: u16, message: &str) -> (u16, Value) {
    (
        status,
        json!({"message": message, "documentation_url": "https://docs.github.com/rest"}),
    )
}

impl Model {
    fn search_repos(&self, q: &str, per: u64, page: u64) -> (u16, Value) {
        let mut min_stars = 0;
        let mut range: Option<(&str, String, String)> = None;
        for part in q.split(' ') {
            if let Some(s) = part.strip_prefix("stars:>") {
                min_stars = s.parse().unwrap();
            }
            for field in ["pushed", "created"] {
                if let Some(r) = part.strip_prefix(&format!("{field}:")) {
                    let (a, b) = r.split_once("..").unwrap();
                    range = Some((field, a.to_owned(), b.to_owned()));
                }
            }
        }
        let (field, a, b) = range.unwrap();
        let matched: Vec<(&String, &FakeRepo)> = self
            .repos
            .iter()
            .filter(|(_, r)| r.stars > min_stars)
            .filter(|(_, r)| {
                let d = if field == "pushed" {
                    &r.pushed
                } else {
                    &r.created
                };
                d[..10] >= *a.as_str() && d[..10] <= *b.as_str()
            })
            .collect();
        if self.max_page.is_some_and(|m| page > m) || page * per > 1000 {
            return err(422, "Only the first 1000 search results are available");
        }
        let items: Vec<Value> = matched
            .iter()
            .skip(((page - 1) * per) as usize)
            .take(per as usize)
            .map(|(n, r)| repo_json(n, r))
            .collect();
        (
            200,
            json!({"total_count": matched.len(), "incomplete_results": false, "items": items}),
        )
    }

    fn search_code(&self, q: &str, per: u64, page: u64) -> (u16, Value) {
        let wanted: Vec<&str> = q
            .split(' ')
            .filter_map(|p| p.strip_prefix("repo:"))
            .collect();
        assert!(q.starts_with("\"#include <boost/\""), "{q}");
        assert!(q.len() < 256, "{q}");
        let mut hits = Vec::new();
        for name in wanted {
            if let Some(r) = self.repos.get(name) {
                for (path, text) in &r.files {
                    if text.contains("#include <boost/") {
                        hits.push(json!({
                            "name": path.rsplit('/').next(), "path": path, "sha": blob_sha(text),
                            "url": "u", "git_url": "g", "html_url": "h", "score": 1.0,
                            "repository": {"id": 1, "full_name": name, "private": false},
                            "text_matches": [{"object_type": "FileContent", "property": "content",
                                "fragment": "#include <boost/", "matches": []}]
                        }));
                    }
                }
            }
        }
        let total = hits.len();
        let items: Vec<Value> = hits
            .into_iter()
            .skip(((page - 1) * per) as usize)
            .take(per as usize)
            .collect();
        (
            200,
            json!({"total_count": total, "incomplete_results": false, "items": items}),
        )
    }

    fn answer(&mut self, path: &str, query: &BTreeMap<String, String>) -> (u16, Value) {
        let per: u64 = query
            .get("per_page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(30);
        let page: u64 = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let q = query.get("q").cloned().unwrap_or_default();
        if path == "/search/repositories" {
            return self.search_repos(&q, per, page);
        }
        if path == "/search/code" {
            if self.code_limits > 0 {
                self.code_limits -= 1;
                return err(
                    403,
                    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                );
            }
            return self.search_code(&q, per, page);
        }
        let parts: Vec<&str> = path.trim_matches('/').splitn(5, '/').collect();
        match parts.as_slice() {
            ["repos", o, r] => match self.repos.get(&format!("{o}/{r}")) {
                Some(repo) => (200, repo_json(&format!("{o}/{r}"), repo)),
                None => err(404, "Not Found"),
            },
            ["repos", o, r, "git", rest] if rest.starts_with("trees/") => {
                match self.repos.get(&format!("{o}/{r}")) {
                    Some(repo) => {
                        let tree: Vec<Value> = repo
                            .files
                            .iter()
                            .map(|(p, t)| json!({"path": p, "mode": "100644", "type": "blob", "sha": blob_sha(t), "size": t.len()}))
                            .collect();
                        (
                            200,
                            json!({"sha": "head", "url": "u", "tree": tree, "truncated": false}),
                        )
                    }
                    None => err(404, "Not Found"),
                }
            }
            ["repos", o, r, "contents", p] => {
                let p = percent_decode(p);
                match self
                    .repos
                    .get(&format!("{o}/{r}"))
                    .and_then(|x| x.files.get(&p))
                {
                    Some(text) => (
                        200,
                        json!({
                            "type": "file", "encoding": "base64", "size": text.len(),
                            "name": p.rsplit('/').next(), "path": p, "content": b64_wrapped(text),
                            "sha": blob_sha(text), "url": "u", "git_url": null, "html_url": null,
                            "download_url": null, "_links": {}
                        }),
                    ),
                    None => err(404, "Not Found"),
                }
            }
            _ => err(404, "Not Found"),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

impl Respond for Fake {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut m = self.0.lock().unwrap();
        let path = req.url.path().to_owned();
        let query: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
        m.requests.push(req.url.to_string());
        if m.broken_search && path.starts_with("/search/") {
            return ResponseTemplate::new(200).set_body_string("{\"total_count\": \"many\"");
        }
        let (status, body) = m.answer(&path, &query);
        let text = body.to_string();
        let mut r = ResponseTemplate::new(status)
            .insert_header("Content-Type", "application/json; charset=utf-8")
            .insert_header("X-RateLimit-Limit", "5000")
            .insert_header("X-RateLimit-Remaining", "4000");
        if status == 403 {
            return r.insert_header("Retry-After", "30").set_body_string(text);
        }
        if status == 200 {
            let etag = format!("W/\"{:016x}\"", bdc_http::fnv1a64(text.as_bytes()));
            if req
                .headers
                .get("if-none-match")
                .and_then(|v| v.to_str().ok())
                == Some(etag.as_str())
            {
                return ResponseTemplate::new(304).insert_header("ETag", etag.as_str());
            }
            r = r.insert_header("ETag", etag.as_str());
        }
        r.set_body_string(text)
    }
}

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

fn repo(stars: u64, created: &str, pushed: &str, files: &[(&str, &str)]) -> FakeRepo {
    FakeRepo {
        stars,
        created: format!("{created}T08:00:00Z"),
        pushed: format!("{pushed}T09:30:00Z"),
        files: files
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect(),
    }
}

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
