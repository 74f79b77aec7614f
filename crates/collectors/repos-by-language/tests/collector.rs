//! `repos-by-language` against a local stand-in of GitHub's
//! `GET /search/repositories` (wiremock) answering in the documented shape
//! (`total_count`, `incomplete_results`, `items`), with weak ETags and
//! `304`s, rate-limit headers, a `403` secondary limit with `Retry-After`
//! and a malformed body. Every scenario runs on SQLite and PostgreSQL.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bdc_collector::{CollectContext, Collector};
use bdc_collector_repos_by_language::store::counts;
use bdc_collector_repos_by_language::{NAME, ReposByLanguageCollector, SCHEMA};
use bdc_config::Config;
use bdc_core::{FailureCategory, TrackerResult};
use bdc_http::ManualClock;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::both_backends as both;
use bdc_testsupport::{Kind, TestDb};
use chrono::TimeZone;
use serde_json::json;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[derive(Default)]
struct Model {
    /// Total per (language, year, starred?).
    totals: BTreeMap<(String, i32, bool), u64>,
    queries: Vec<String>,
    /// Answer the next N requests with a secondary-limit 403.
    secondary_limits: u32,
    broken: bool,
    not_modified: u64,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<Model>>);

impl Respond for Fake {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut m = self.0.lock().unwrap();
        if req.url.path() != "/search/repositories" {
            return ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}));
        }
        let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
        let query = q.get("q").cloned().unwrap_or_default();
        m.queries.push(query.clone());
        if m.secondary_limits > 0 {
            m.secondary_limits -= 1;
            return ResponseTemplate::new(403)
                .insert_header("Retry-After", "7")
                .set_body_json(json!({
                    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
                }));
        }
        if m.broken {
            return ResponseTemplate::new(200).set_body_string("<html>oops</html>");
        }
        assert_eq!(q.get("per_page").map(String::as_str), Some("1"));
        // language:X created:Y-01-01..Y-12-31 [stars:>=N]
        let mut lang = String::new();
        let mut year = 0;
        let mut starred = false;
        for part in query.split(' ') {
            if let Some(l) = part.strip_prefix("language:") {
                lang = l.to_owned();
            } else if let Some(c) = part.strip_prefix("created:") {
                year = c[..4].parse().unwrap();
            } else if part.starts_with("stars:>=") {
                starred = true;
            }
        }
        let total = m.totals.get(&(lang, year, starred)).copied().unwrap_or(0);
        let body = json!({
            "total_count": total,
            "incomplete_results": false,
            "items": [{"id": 1, "full_name": "a/b", "stargazers_count": 3}]
        });
        let etag = format!("W/\"{total:x}-{}\"", bdc_http::fnv1a64(query.as_bytes()));
        if req
            .headers
            .get("if-none-match")
            .and_then(|v| v.to_str().ok())
            == Some(etag.as_str())
        {
            m.not_modified += 1;
            return ResponseTemplate::new(304).insert_header("ETag", etag.as_str());
        }
        ResponseTemplate::new(200)
            .set_body_json(body)
            .insert_header("ETag", etag.as_str())
            .insert_header("X-RateLimit-Limit", "30")
            .insert_header("X-RateLimit-Remaining", "29")
            .insert_header("X-RateLimit-Resource", "search")
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
        Mock::given(wiremock::matchers::any())
            .respond_with(fake.clone())
            .mount(&server)
            .await;
        {
            let mut m = fake.0.lock().unwrap();
            for (i, y) in (2020..=2022).enumerate() {
                let i = i as u64;
                m.totals.insert(("C++".into(), y, false), 1000 + i);
                m.totals.insert(("C++".into(), y, true), 100 + i);
                m.totals.insert(("Rust".into(), y, false), 500 + i);
                m.totals.insert(("Rust".into(), y, true), 50 + i);
            }
        }
        Env {
            _db: db,
            storage,
            workspace: tempfile::tempdir().unwrap(),
            fake,
            api: server.uri(),
            _server: server,
            clock: Arc::new(ManualClock::new(
                chrono::Utc.with_ymd_and_hms(2022, 6, 1, 0, 0, 0).unwrap(),
            )),
        }
    }

    fn context(&self, args: &[&str], env_languages: Option<&str>) -> CollectContext {
        let ws = self.workspace.path().display().to_string();
        let api = self.api.clone();
        let langs = env_languages.map(str::to_owned);
        let config = Config::from_lookup(|k| match k {
            "WORKSPACE_DIR" => Some(ws.clone()),
            "DATABASE_URL" => Some("sqlite::memory:".into()),
            "GITHUB_API_URL" => Some(api.clone()),
            "GITHUB_TOKENS_SCRAPING" => Some("tok-a,tok-b".into()),
            "REPO_COUNT_LANGUAGES" => langs.clone(),
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

    async fn run(&self, args: &[&str], env_languages: Option<&str>) -> TrackerResult {
        let c = ReposByLanguageCollector::with_clock(self.clock.clone());
        match c.run(&self.context(args, env_languages)).await {
            Ok(r) => r,
            Err(e) => panic!("run {args:?} failed: {e}"),
        }
    }

    async fn rows(&self) -> Vec<(String, i32, u64, u64, u64)> {
        counts(&self.storage)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                (
                    r.language,
                    r.count.year,
                    r.count.stars_min,
                    r.count.created_repos,
                    r.count.starred_repos,
                )
            })
            .collect()
    }
}

const YEARS: [&str; 4] = ["--start-year", "2020", "--end-year", "2022"];

async fn counts_per_language_and_year(kind: Kind) {
    let env = Env::new(kind).await;
    let r = env.run(&YEARS, Some("C++, Rust")).await;
    assert_eq!(r.count("languages"), 2, "{r:?}");
    assert_eq!(r.count("queries"), 12);
    assert_eq!(r.count("inserted"), 6);
    assert_eq!(r.count("rate_limit_points"), 12);
    let rows = env.rows().await;
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0], ("C++".into(), 2020, 10, 1000, 100));
    assert_eq!(rows[5], ("Rust".into(), 2022, 10, 502, 52));
    {
        let m = env.fake.0.lock().unwrap();
        assert!(
            m.queries
                .contains(&"language:C++ created:2021-01-01..2021-12-31".to_owned())
        );
        assert!(
            m.queries
                .contains(&"language:C++ created:2021-01-01..2021-12-31 stars:>=10".to_owned())
        );
    }

    // Unchanged re-run: every answer is a 304 (no rate-limit points), nothing written.
    let r = env.run(&YEARS, Some("C++, Rust")).await;
    assert_eq!(
        (
            r.count("inserted"),
            r.count("updated"),
            r.count("unchanged")
        ),
        (0, 0, 6)
    );
    assert_eq!(r.count("rate_limit_points"), 0, "{r:?}");
    assert_eq!(r.count("not_modified"), 12);

    // A count that grew is updated; --languages beats the env var.
    env.fake
        .0
        .lock()
        .unwrap()
        .totals
        .insert(("C++".into(), 2022, false), 1500);
    let r = env
        .run(
            &[
                "--languages",
                "C++",
                "--start-year",
                "2020",
                "--end-year",
                "2022",
            ],
            Some("Rust"),
        )
        .await;
    assert_eq!(
        (
            r.count("languages"),
            r.count("updated"),
            r.count("unchanged")
        ),
        (1, 1, 2)
    );
    assert_eq!(env.rows().await[2], ("C++".into(), 2022, 10, 1500, 102));

    // Replay of the archive: no network, same rows.
    let before = env.fake.0.lock().unwrap().queries.len();
    let r = env
        .run(
            &[
                "--from-archive",
                "--languages",
                "C++,Rust",
                "--start-year",
                "2020",
                "--end-year",
                "2022",
            ],
            None,
        )
        .await;
    assert_eq!(r.count("replayed"), 12, "{r:?}");
    assert_eq!(r.count("requests"), 0);
    assert_eq!(env.fake.0.lock().unwrap().queries.len(), before);
    assert_eq!(r.count("unchanged"), 6);
}
both!(counts_per_language_and_year);

async fn end_year_defaults_to_the_current_year(kind: Kind) {
    let env = Env::new(kind).await;
    let r = env.run(&["--start-year", "2021"], None).await;
    // Clock says 2022: 2021 and 2022, language C++ by default.
    assert_eq!((r.count("languages"), r.count("years")), (1, 2), "{r:?}");
    assert_eq!(env.rows().await.len(), 2);
}
both!(end_year_defaults_to_the_current_year);

async fn secondary_limit_waits_and_is_reported(kind: Kind) {
    let env = Env::new(kind).await;
    env.fake.0.lock().unwrap().secondary_limits = 2;
    let r = env
        .run(&["--start-year", "2022", "--end-year", "2022"], None)
        .await;
    assert_eq!(r.count("inserted"), 1, "{r:?}");
    assert_eq!(r.count("waited_ms"), 14_000);
    assert_eq!(env.clock.sleeps().len(), 2);
}
both!(secondary_limit_waits_and_is_reported);

async fn pacing_keeps_to_thirty_searches_a_minute_per_token(kind: Kind) {
    let env = Env::new(kind).await;
    // 2 tokens → 60 searches a minute; 2000..2039 = 80 searches.
    let r = env
        .run(&["--start-year", "2000", "--end-year", "2039"], None)
        .await;
    assert_eq!(r.count("queries"), 80, "{r:?}");
    assert_eq!(env.clock.sleeps().len(), 1, "{:?}", env.clock.sleeps());
    assert_eq!(r.count("waited_ms"), 60_000);
}
both!(pacing_keeps_to_thirty_searches_a_minute_per_token);

async fn bad_answers_and_arguments_fail_cleanly(kind: Kind) {
    let env = Env::new(kind).await;
    env.fake.0.lock().unwrap().broken = true;
    let c = ReposByLanguageCollector::with_clock(env.clock.clone());
    let err = c
        .run(&env.context(&["--start-year", "2021", "--end-year", "2022"], None))
        .await
        .unwrap_err();
    assert_eq!(err.category, FailureCategory::Parse, "{err}");
    assert!(err.to_string().contains("not the expected JSON"), "{err}");
    assert!(env.rows().await.is_empty(), "nothing half-written");

    for bad in [
        vec!["--start-year", "2023", "--end-year", "2022"],
        vec!["--languages", "C\"++"],
        vec!["--start-year", "1900"],
        vec!["--archive-dir", "x"],
    ] {
        let err = c.run(&env.context(&bad, None)).await.unwrap_err();
        assert_eq!(err.category, FailureCategory::Config, "{bad:?}: {err}");
    }
}
both!(bad_answers_and_arguments_fail_cleanly);

async fn interrupted_run_then_rerun_equals_uninterrupted(kind: Kind) {
    let env = Env::new(kind).await;
    // The budget runs out in the second language: the first is stored.
    let c = ReposByLanguageCollector::with_clock(env.clock.clone());
    let args = [
        "--languages",
        "C++,Rust",
        "--start-year",
        "2020",
        "--end-year",
        "2022",
    ];
    let mut with_budget: Vec<&str> = args.to_vec();
    with_budget.extend(["--max-requests", "8"]);
    let err = c.run(&env.context(&with_budget, None)).await.unwrap_err();
    assert_eq!(err.category, FailureCategory::RateLimited, "{err}");
    assert_eq!(env.rows().await.len(), 3);
    env.run(&args, None).await;
    let resumed = env.rows().await;

    let fresh = Env::new(kind).await;
    fresh.run(&args, None).await;
    assert_eq!(resumed, fresh.rows().await);
}
both!(interrupted_run_then_rerun_equals_uninterrupted);
