//! `boost-libraries --source github` against a local fake of the GitHub
//! REST API (wiremock) serving the documented shapes of `GET
//! /repos/{o}/{r}/tags`, `/commits/{ref}`, `/contents/{path}?ref=`,
//! `/git/trees/{sha}?recursive=1` and `/repos/{o}/{r}`: paginated tags,
//! base64 contents wrapped at 60 columns, weak ETags and `304`s, GitHub's
//! `404` messages. Covers the catalog across releases, steady state at zero
//! rate-limit points, a moved tag, missing pins and repositories,
//! malformed JSON (classified, nothing written) and replay of the archive
//! without a server.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use bdc_collector::{CollectContext, Collector};
use bdc_collector_boost_libraries::store::summary;
use bdc_collector_boost_libraries::{BoostLibrariesCollector, NAME, SCHEMA};
use bdc_config::Config;
use bdc_core::{FailureCategory, TrackerResult};
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A superproject commit.
#[derive(Clone)]
struct SupCommit {
    date: String,
    gitmodules: String,
    /// (path, pinned sha)
    gitlinks: Vec<(String, String)>,
}

#[derive(Default)]
struct Model {
    /// Tag name → superproject commit sha, in listing order.
    tags: Vec<(String, String)>,
    commits: BTreeMap<String, SupCommit>,
    /// "owner/name" → pin → libraries.json text (`None`: no file).
    libraries: BTreeMap<String, BTreeMap<String, Option<String>>>,
    /// Paths answered with a body that is not JSON.
    broken: Vec<String>,
    requests: Vec<String>,
    not_modified: u64,
    /// The server's own `http://127.0.0.1:port` (for `Link` headers).
    origin: String,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<Model>>);

/// The fake never serves more than this many tags per page (GitHub: 100).
const TAGS_PER_PAGE: usize = 2;

fn b64_wrapped(text: &str) -> String {
    let enc = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let mut out = String::new();
    for chunk in enc.as_bytes().chunks(60) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

fn contents(path: &str, text: &str) -> Value {
    json!({
        "type": "file", "encoding": "base64", "size": text.len(),
        "name": path.rsplit('/').next(), "path": path, "content": b64_wrapped(text),
        "sha": format!("{:040x}", bdc_http::fnv1a64(text.as_bytes())),
        "url": "https://api.github.com/x", "git_url": null, "html_url": null,
        "download_url": null, "_links": {}
    })
}

fn not_found(message: &str) -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": "404"
    }))
}

impl Fake {
    fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.0.lock().unwrap()
    }

    fn answer(
        &self,
        m: &Model,
        origin: &str,
        path: &str,
        query: &BTreeMap<String, String>,
    ) -> ResponseTemplate {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let ok = |v: Value| ResponseTemplate::new(200).set_body_json(v);
        match parts.as_slice() {
            ["repos", "boostorg", "boost", "tags"] => {
                let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
                let per: usize = query
                    .get("per_page")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(30)
                    .min(TAGS_PER_PAGE);
                let items: Vec<Value> = m
                    .tags
                    .iter()
                    .skip((page - 1) * per)
                    .take(per)
                    .map(|(name, sha)| {
                        json!({"name": name, "zipball_url": "z", "tarball_url": "t",
                               "commit": {"sha": sha, "url": "u"}, "node_id": "n"})
                    })
                    .collect();
                let mut r = ok(Value::Array(items));
                if page * per < m.tags.len() {
                    r = r.insert_header(
                        "Link",
                        format!(
                            "<{origin}/repos/boostorg/boost/tags?per_page={per}&page={}>; rel=\"next\"",
                            page + 1
                        )
                        .as_str(),
                    );
                }
                r
            }
            ["repos", "boostorg", "boost", "commits", reference] => {
                let sha = m
                    .tags
                    .iter()
                    .find(|(n, _)| n == reference)
                    .map(|(_, s)| s.clone())
                    .unwrap_or_else(|| reference.to_string());
                match m.commits.get(&sha) {
                    Some(c) => ok(json!({
                        "sha": sha, "node_id": "n",
                        "commit": {
                            "author": {"name": "A", "email": "a@x", "date": c.date},
                            "committer": {"name": "C", "email": "c@x", "date": c.date},
                            "message": "release", "tree": {"sha": sha, "url": "u"}
                        },
                        "parents": [], "files": []
                    })),
                    None => ResponseTemplate::new(422).set_body_json(json!({
                        "message": format!("No commit found for SHA: {reference}"),
                        "documentation_url": "https://docs.github.com/rest", "status": "422"
                    })),
                }
            }
            ["repos", "boostorg", "boost", "contents", ".gitmodules"] => {
                let r = query.get("ref").cloned().unwrap_or_default();
                match m.commits.get(&r) {
                    Some(c) => ok(contents(".gitmodules", &c.gitmodules)),
                    None => not_found(&format!("No commit found for the ref {r}")),
                }
            }
            ["repos", "boostorg", "boost", "git", "trees", sha] => match m.commits.get(*sha) {
                Some(c) => {
                    let mut tree = vec![json!({"path": ".gitmodules", "mode": "100644",
                        "type": "blob", "sha": "1".repeat(40), "size": 10, "url": "u"})];
                    tree.extend(c.gitlinks.iter().map(
                        |(p, s)| json!({"path": p, "mode": "160000", "type": "commit", "sha": s}),
                    ));
                    ok(json!({"sha": sha, "url": "u", "tree": tree, "truncated": false}))
                }
                None => not_found("Not Found"),
            },
            ["repos", owner, name, "contents", "meta", "libraries.json"] => {
                let slug = format!("{owner}/{name}");
                let r = query.get("ref").cloned().unwrap_or_default();
                match m.libraries.get(&slug).map(|pins| pins.get(&r)) {
                    None => not_found("Not Found"),
                    Some(None) => not_found(&format!("No commit found for the ref {r}")),
                    Some(Some(None)) => not_found("Not Found"),
                    Some(Some(Some(text))) => ok(contents("meta/libraries.json", text)),
                }
            }
            ["repos", owner, name] => {
                let slug = format!("{owner}/{name}");
                if m.libraries.contains_key(&slug) {
                    ok(json!({"id": 1, "name": name, "full_name": slug}))
                } else {
                    not_found("Not Found")
                }
            }
            _ => not_found("Not Found"),
        }
    }
}

impl Respond for Fake {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut m = self.model();
        let path = req.url.path().to_owned();
        let query: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
        m.requests.push(req.url.to_string());
        if m.broken.iter().any(|b| path.ends_with(b.as_str())) {
            return ResponseTemplate::new(200)
                .insert_header("Content-Type", "application/json")
                .set_body_string("{\"tree\": [");
        }
        let r = self.answer(&m, &m.origin, &path, &query);
        // Weak ETag over what the body would be; `304` when it matches.
        let body = format!(
            "{path}?{query:?}/{}",
            serde_json::to_string(&*m.snapshot_for(&path)).unwrap_or_default()
        );
        let etag = format!("W/\"{:016x}\"", bdc_http::fnv1a64(body.as_bytes()));
        let inm = req
            .headers
            .get("if-none-match")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if inm.as_deref() == Some(etag.as_str()) {
            m.not_modified += 1;
            return ResponseTemplate::new(304).insert_header("ETag", etag.as_str());
        }
        r.insert_header("ETag", etag.as_str())
            .insert_header("X-RateLimit-Limit", "5000")
            .insert_header("X-RateLimit-Remaining", "4000")
    }
}

impl Model {
    /// The part of the model a path's answer depends on (ETag input).
    fn snapshot_for(&self, path: &str) -> Box<Value> {
        Box::new(if path.ends_with("/tags") {
            json!(self.tags)
        } else if path.contains("/boostorg/boost/") {
            json!(
                self.commits
                    .iter()
                    .map(|(k, c)| (
                        k.clone(),
                        (c.date.clone(), c.gitmodules.clone(), c.gitlinks.clone())
                    ))
                    .collect::<BTreeMap<_, _>>()
            )
        } else {
            json!(self.libraries)
        })
    }
}

struct Env {
    _db: TestDb,
    storage: Storage,
    workspace: tempfile::TempDir,
    fake: Fake,
    server: Option<MockServer>,
    api_url: String,
}

impl Env {
    async fn new(kind: Kind) -> Env {
        let db = TestDb::new(kind).await;
        let storage = Storage::connect(db.url(), &ConnectOptions::default())
            .await
            .unwrap();
        storage
            .migrate_parts(&[&bdc_http::SCHEMA, &SCHEMA])
            .await
            .unwrap();
        let server = MockServer::start().await;
        let fake = Fake::default();
        fake.model().origin = server.uri();
        Mock::given(wiremock::matchers::any())
            .respond_with(fake.clone())
            .mount(&server)
            .await;
        Env {
            _db: db,
            storage,
            workspace: tempfile::tempdir().unwrap(),
            fake,
            api_url: server.uri(),
            server: Some(server),
        }
    }

    fn context(&self, args: &[&str]) -> CollectContext {
        let ws = self.workspace.path().display().to_string();
        let api = self.api_url.clone();
        let config = Config::from_lookup(|k| match k {
            "WORKSPACE_DIR" => Some(ws.clone()),
            "DATABASE_URL" => Some("sqlite::memory:".into()),
            "GITHUB_API_URL" => Some(api.clone()),
            _ => None,
        })
        .unwrap();
        let mut all = vec!["--source".to_owned(), "github".to_owned()];
        all.extend(args.iter().map(|s| s.to_string()));
        CollectContext {
            run_id: "test-run".into(),
            command: NAME.into(),
            args: all,
            schedule_group: None,
            storage: self.storage.clone(),
            config: Arc::new(config),
            interactive: false,
        }
    }

    async fn run(&self, args: &[&str]) -> TrackerResult {
        match BoostLibrariesCollector.run(&self.context(args)).await {
            Ok(r) => r,
            Err(e) => panic!("run {args:?} failed: {e}"),
        }
    }

    async fn statuses(&self) -> Vec<(String, String, String)> {
        bdc_storage::on_pool!(self.storage, p => sqlx::query_as::<_, (String, String, String)>(
            "SELECT release, name, meta_status FROM bl_submodules ORDER BY release, name"
        ).fetch_all(p).await.unwrap())
    }
}

fn sha(n: u32) -> String {
    format!("{n:040x}")
}

/// Record a superproject release commit and tag (moving it if present).
fn release(m: &mut Model, tag: &str, commit: u32, date: &str, libs: &[(&str, String)]) {
    let mut gm = String::new();
    for (name, _) in libs {
        gm.push_str(&format!(
            "[submodule \"{name}\"]\n\tpath = libs/{name}\n\turl = ../{name}.git\n\tfetchRecurseSubmodules = on-demand\n"
        ));
    }
    m.commits.insert(
        sha(commit),
        SupCommit {
            date: date.into(),
            gitmodules: gm,
            gitlinks: libs
                .iter()
                .map(|(n, s)| (format!("libs/{n}"), s.clone()))
                .collect(),
        },
    );
    m.tags.retain(|(n, _)| n != tag);
    m.tags.insert(0, (tag.into(), sha(commit)));
}

fn library(m: &mut Model, name: &str, pin: u32, meta: Option<&str>) -> String {
    m.libraries
        .entry(format!("boostorg/{name}"))
        .or_default()
        .insert(sha(pin), meta.map(str::to_owned));
    sha(pin)
}

/// The same catalog as the git test: two releases, an array and an object
/// `libraries.json`, a library without one, a beta tag that is skipped.
fn two_releases(m: &mut Model) {
    let config = library(
        m,
        "config",
        100,
        Some(
            r#"{"key":"config","name":"Config","authors":"John","maintainers":["M <m@example.org>"],"description":"Configuration","category":["Workarounds"],"cxxstd":"03"}"#,
        ),
    );
    let json1 = library(
        m,
        "json",
        200,
        Some(
            r#"[{"key":"json","name":"JSON","authors":["V"],"maintainers":["V"],"category":["IO"],"cxxstd":"11"},{"key":"json/ext","name":"JSON ext"},{"name":"no key"}]"#,
        ),
    );
    let nometa = library(m, "nometa", 300, None);
    release(
        m,
        "boost-1.0.0",
        1,
        "2024-01-01T00:00:00Z",
        &[
            ("config", config.clone()),
            ("json", json1),
            ("nometa", nometa),
        ],
    );
    let json2 = library(
        m,
        "json",
        201,
        Some(
            r#"[{"key":"json","name":"JSON","authors":["V"],"maintainers":["V","W"],"category":["IO"],"cxxstd":"11"}]"#,
        ),
    );
    let beast = library(
        m,
        "beast",
        400,
        Some(r#"{"key":"beast","name":"Beast","cxxstd":11}"#),
    );
    release(
        m,
        "boost-1.1.0",
        2,
        "2024-06-01T00:00:00Z",
        &[("config", config), ("json", json2), ("beast", beast)],
    );
    m.tags.push(("boost-1.1.0.beta1".into(), sha(2)));
    m.tags.push(("develop-snapshot".into(), sha(2)));
}

use bdc_testsupport::both_backends as both;

async fn catalog_through_the_api(kind: Kind) {
    let env = Env::new(kind).await;
    two_releases(&mut env.fake.model());

    let r = env.run(&[]).await;
    common::assert_two_releases(&r, &env.storage).await;
    // config is pinned to the same commit in both releases: fetched once.
    let config_fetches = env
        .fake
        .model()
        .requests
        .iter()
        .filter(|u| u.contains("/boostorg/config/contents/"))
        .count();
    assert_eq!(config_fetches, 1);
    assert_eq!(r.count("not_modified"), 0);

    // Steady state: only the tag listing, every page answered 304.
    let before = env.fake.model().requests.len();
    let r = env.run(&[]).await;
    assert_eq!(r.count("releases_unchanged"), 2, "{r:?}");
    assert_eq!(r.count("rate_limit_points"), 0, "{r:?}");
    assert_eq!(r.count("requests"), r.count("not_modified"));
    let tag_pages = env.fake.model().tags.len().div_ceil(TAGS_PER_PAGE) as u64;
    assert!(tag_pages > 1, "the listing must span pages");
    assert_eq!(r.count("requests"), tag_pages, "{r:?}");
    assert_eq!(env.fake.model().requests.len() - before, tag_pages as usize);
    assert_eq!(r.count("inserted") + r.count("updated"), 0);

    // An explicit release costs one conditional request on a re-run.
    let r = env.run(&["--release", "boost-1.0.0"]).await;
    assert_eq!(r.count("releases_unchanged"), 1);
    let r = env.run(&["--release", "boost-1.0.0"]).await;
    assert_eq!((r.count("requests"), r.count("rate_limit_points")), (1, 0));

    // A moved tag is re-recorded: config's meta is now invalid JSON and a
    // new submodule's repository does not exist.
    {
        let mut m = env.fake.model();
        let config2 = library(&mut m, "config", 101, Some("{ not json"));
        let json2 = sha(201);
        let beast = sha(400);
        release(
            &mut m,
            "boost-1.1.0",
            3,
            "2024-06-02T00:00:00Z",
            &[
                ("config", config2),
                ("json", json2),
                ("beast", beast),
                ("gone", sha(500)),
            ],
        );
    }
    let r = env.run(&[]).await;
    assert_eq!(
        (
            r.count("releases_unchanged"),
            r.count("invalid_json"),
            r.count("fetch_failed")
        ),
        (1, 1, 1),
        "{r:?}"
    );
    assert_eq!(r.count("removed"), 2, "config and json/ext left 1.1.0");
    assert_eq!(summary(&env.storage).await.unwrap(), (2, 7, 5));
    let st = env.statuses().await;
    assert!(st.contains(&("boost-1.1.0".into(), "config".into(), "invalid_json".into())));
    assert!(st.contains(&("boost-1.1.0".into(), "gone".into(), "fetch_failed".into())));
    assert!(st.contains(&("boost-1.0.0".into(), "nometa".into(), "no_meta".into())));

    // A pin that does not exist in the library repository.
    {
        let mut m = env.fake.model();
        m.libraries
            .get_mut("boostorg/beast")
            .unwrap()
            .remove(&sha(400));
    }
    let r = env.run(&["--release", "boost-1.1.0", "--full"]).await;
    assert_eq!(r.count("commit_not_found"), 1, "{r:?}");

    // Replay: the archive alone re-parses the catalog, no server at all,
    // and classifies every submodule as the live run did (404s included).
    let rows = summary(&env.storage).await.unwrap();
    let statuses = env.statuses().await;
    let mut env = env;
    env.server = None;
    let r = env.run(&["--from-archive", "--full"]).await;
    assert_eq!(r.count("requests"), 0, "{r:?}");
    assert!(r.count("replayed") > 0);
    assert_eq!(r.count("releases"), 2);
    assert_eq!(summary(&env.storage).await.unwrap(), rows);
    assert_eq!(env.statuses().await, statuses);
}
both!(catalog_through_the_api);

async fn malformed_json_is_a_parse_failure_with_nothing_written(kind: Kind) {
    let env = Env::new(kind).await;
    {
        let mut m = env.fake.model();
        two_releases(&mut m);
        m.broken.push(format!("/git/trees/{}", sha(2)));
    }
    let err = BoostLibrariesCollector
        .run(&env.context(&[]))
        .await
        .unwrap_err();
    assert_eq!(err.category, FailureCategory::Parse, "{err}");
    assert!(err.to_string().contains("boost-1.1.0"), "{err}");
    // 1.0.0 was complete and is kept; nothing of 1.1.0 is.
    assert_eq!(summary(&env.storage).await.unwrap(), (1, 3, 3));
    assert_eq!(
        common::checkpoint_scopes(&env.storage).await,
        vec!["release:boost-1.0.0".to_owned()]
    );

    // Fixed upstream: the next run records 1.1.0 and skips 1.0.0.
    env.fake.model().broken.clear();
    let r = env.run(&[]).await;
    assert_eq!(
        (r.count("releases_unchanged"), r.count("added")),
        (1, 1),
        "{r:?}"
    );
    assert_eq!(summary(&env.storage).await.unwrap(), (2, 6, 6));
}
both!(malformed_json_is_a_parse_failure_with_nothing_written);

/// A run stopped by its request budget keeps every complete release; a
/// replay of the incomplete archive fails on the first URL it lacks and
/// writes nothing of that release.
#[tokio::test(flavor = "multi_thread")]
async fn budget_stops_between_releases_and_replay_never_invents_rows() {
    let env = Env::new(Kind::Sqlite).await;
    two_releases(&mut env.fake.model());
    // boost-1.0.0 needs 9 requests (2 tag pages, commit, .gitmodules, tree,
    // three metadata lookups, one repository check); the 11th is refused.
    let err = BoostLibrariesCollector
        .run(&env.context(&["--max-requests", "10"]))
        .await
        .unwrap_err();
    assert_eq!(err.category, FailureCategory::RateLimited, "{err}");
    assert_eq!(summary(&env.storage).await.unwrap(), (1, 3, 3));
    assert_eq!(
        common::checkpoint_scopes(&env.storage).await,
        vec!["release:boost-1.0.0".to_owned()]
    );

    let err = BoostLibrariesCollector
        .run(&env.context(&["--from-archive", "--full"]))
        .await
        .unwrap_err();
    assert_eq!(err.category, FailureCategory::NotFound, "{err}");
    assert!(err.to_string().contains(".gitmodules"), "{err}");
    assert_eq!(summary(&env.storage).await.unwrap(), (1, 3, 3));
    assert_eq!(
        common::checkpoint_scopes(&env.storage).await,
        vec!["release:boost-1.0.0".to_owned()]
    );

    // The next live run finishes the job.
    let r = env.run(&[]).await;
    assert_eq!(
        (r.count("releases_unchanged"), r.count("added")),
        (1, 1),
        "{r:?}"
    );
    assert_eq!(summary(&env.storage).await.unwrap(), (2, 6, 6));
}

#[tokio::test]
async fn unknown_release_and_bad_arguments() {
    let env = Env::new(Kind::Sqlite).await;
    two_releases(&mut env.fake.model());
    let err = BoostLibrariesCollector
        .run(&env.context(&["--release", "boost-9.9.9"]))
        .await
        .unwrap_err();
    assert_eq!(err.category, FailureCategory::NotFound, "{err}");
    let err = BoostLibrariesCollector
        .run(&env.context(&["--repo", "https://gitlab.com/a/b.git"]))
        .await
        .unwrap_err();
    assert_eq!(err.category, FailureCategory::Config, "{err}");
    for bad in ["boost 1", "../../users/x", "a//b"] {
        let err = BoostLibrariesCollector
            .run(&env.context(&["--release", bad]))
            .await
            .unwrap_err();
        assert_eq!(err.category, FailureCategory::Config, "{bad}: {err}");
    }
}

/// Regenerates the demo's recorded GitHub responses for the library catalog
/// (`examples/boost-libraries/raw/`, replayed by `bdc demo` with
/// `--source github --from-archive`), with the fake's address replaced by
/// `https://api.github.com`.
/// `cargo test -p bdc-collector-boost-libraries --test github_source -- --ignored record_demo_archive`
#[tokio::test(flavor = "multi_thread")]
#[ignore = "regenerates examples/boost-libraries/raw (run on purpose)"]
async fn record_demo_archive() {
    let env = Env::new(Kind::Sqlite).await;
    {
        // Clean sample data (the demo's output must carry no warning).
        let m = &mut *env.fake.model();
        let config = library(
            m,
            "config",
            100,
            Some(
                r#"{"key":"config","name":"Config","authors":"John Maddock","maintainers":["M <m@example.org>"],"description":"Helps Boost library developers adapt to compiler idiosyncrasies","category":["Workarounds"],"cxxstd":"03"}"#,
            ),
        );
        let json = library(
            m,
            "json",
            200,
            Some(
                r#"[{"key":"json","name":"JSON","authors":["Vinnie Falco"],"maintainers":["V"],"description":"JSON parsing, serialization, and DOM","category":["IO"],"cxxstd":"11"}]"#,
            ),
        );
        release(
            m,
            "boost-1.84.0",
            1,
            "2023-12-13T00:00:00Z",
            &[("config", config.clone()), ("json", json.clone())],
        );
        let beast = library(
            m,
            "beast",
            400,
            Some(
                r#"{"key":"beast","name":"Beast","authors":["Vinnie Falco"],"description":"Portable HTTP, WebSocket, and network operations","category":["IO"],"cxxstd":"11"}"#,
            ),
        );
        release(
            m,
            "boost-1.85.0",
            2,
            "2024-04-15T00:00:00Z",
            &[("config", config), ("json", json), ("beast", beast)],
        );
    }
    let r = env.run(&[]).await;
    assert_eq!(r.count("releases"), 2, "{r:?}");
    let src = env.workspace.path().join("raw").join(NAME);
    let dst = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../examples/boost-libraries/raw");
    let _ = std::fs::remove_dir_all(&dst);
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
    copy(&src, &dst, &env.api_url);
}
