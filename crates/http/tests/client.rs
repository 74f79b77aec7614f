//! Behaviour of the HTTP layer against local wiremock servers.

use std::sync::Arc;
use std::time::Duration;

use bdc_config::Secret;
use bdc_core::FailureCategory;
use bdc_http::{ClientOptions, HttpCache, HttpClient, HttpError, ManualClock, RawArchive, SCHEMA};
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};
use url::Url;
use wiremock::matchers::{header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn opts(server: &MockServer) -> ClientOptions {
    let mut o = ClientOptions::new("test", Url::parse(&server.uri()).unwrap());
    o.accept = "application/vnd.github+json".into();
    o
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(chrono::Utc::now()))
}

async fn storage(kind: Kind) -> (TestDb, Storage) {
    let db = TestDb::new(kind).await;
    let s = Storage::connect(db.url(), &ConnectOptions::default())
        .await
        .unwrap();
    s.migrate_parts(&[&SCHEMA]).await.unwrap();
    (db, s)
}

#[tokio::test]
async fn follows_link_pagination() {
    let server = MockServer::start().await;
    let base = server.uri();
    for p in 1..=3u32 {
        let mut t = ResponseTemplate::new(200).set_body_json(serde_json::json!([p]));
        if p < 3 {
            t = t.insert_header(
                "Link",
                format!(
                    r#"<{base}/items?page={}>; rel="next", <{base}/items?page=3>; rel="last""#,
                    p + 1
                )
                .as_str(),
            );
        }
        let m = Mock::given(method("GET")).and(path("/items"));
        let m = if p == 1 {
            m.and(wiremock::matchers::query_param_is_missing("page"))
        } else {
            m.and(query_param("page", p.to_string()))
        };
        m.respond_with(t).expect(1).mount(&server).await;
    }
    let c = HttpClient::new(opts(&server)).unwrap();
    let mut pages = c.pages("/items");
    let mut got = Vec::new();
    while let Some(r) = pages.next_page().await.unwrap() {
        got.extend(r.json::<Vec<u32>>().unwrap());
    }
    assert_eq!(got, [1, 2, 3]);
    assert_eq!(c.stats().requests, 3);
}

async fn conditional_requests(kind: Kind) {
    let (_db, storage) = storage(kind).await;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/x"))
        .and(header("if-none-match", "W/\"v1\""))
        .respond_with(ResponseTemplate::new(304))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/x"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("[1,2]")
                .insert_header("ETag", "W/\"v1\"")
                .insert_header("Link", "<http://example.invalid/x?page=2>; rel=\"next\""),
        )
        .mount(&server)
        .await;
    let cache = HttpCache::new(storage.clone());
    let c = HttpClient::new(opts(&server))
        .unwrap()
        .with_cache(cache.clone());
    let first = c.get("/x").await.unwrap();
    assert!(!first.not_modified);
    assert_eq!(cache.len().await.unwrap(), 1);
    // A new client (a new run): conditional, 304, stored body and Link reused.
    let c2 = HttpClient::new(opts(&server)).unwrap().with_cache(cache);
    let again = c2.get("/x").await.unwrap();
    assert!(again.not_modified);
    assert_eq!(again.body, b"[1,2]");
    assert_eq!(
        again.next_url().as_deref(),
        Some("http://example.invalid/x?page=2")
    );
    let s = c2.stats();
    assert_eq!((s.requests, s.rate_limit_points, s.not_modified), (1, 0, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn conditional_requests_sqlite() {
    conditional_requests(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn conditional_requests_postgres() {
    conditional_requests(Kind::Postgres).await;
}

#[tokio::test]
async fn rotates_tokens_before_zero_then_pauses_until_reset() {
    let server = MockServer::start().await;
    let clock = clock();
    let reset = clock_now(&clock) + 300;
    for (tok, remaining) in [("a", "1"), ("b", "1")] {
        Mock::given(method("GET"))
            .and(header("authorization", format!("Bearer {tok}").as_str()))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_string("{}")
                    .insert_header("X-RateLimit-Remaining", remaining)
                    .insert_header("X-RateLimit-Reset", reset.to_string().as_str()),
            )
            .mount(&server)
            .await;
    }
    let mut o = opts(&server);
    o.tokens = vec![Secret::new("a"), Secret::new("b")];
    o.rotate_below = 1;
    let c = HttpClient::new(o).unwrap().with_clock(clock.clone());
    c.get("/1").await.unwrap(); // a → 1 left: rotate next time
    c.get("/2").await.unwrap(); // b → 1 left
    c.get("/3").await.unwrap(); // both low: pause until the reset
    let s = c.stats();
    assert_eq!(s.rotations, 1, "{s:?}");
    assert_eq!(s.pauses, 1, "{s:?}");
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 1);
    assert!((295..=300).contains(&sleeps[0].as_secs()), "{sleeps:?}");
    let auth: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r: &Request| {
            r.headers
                .get("authorization")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    // After the pause every token counts as fresh; the current one goes on.
    assert_eq!(auth, ["Bearer a", "Bearer b", "Bearer b"]);
}

fn clock_now(c: &ManualClock) -> i64 {
    use bdc_http::Clock;
    c.now().timestamp()
}

#[tokio::test]
async fn exhausted_403_rotates_to_the_next_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer a"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("X-RateLimit-Remaining", "0")
                .insert_header("X-RateLimit-Reset", "4102444800")
                .set_body_string(r#"{"message":"API rate limit exceeded"}"#),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer b"))
        .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
        .mount(&server)
        .await;
    let mut o = opts(&server);
    o.tokens = vec![Secret::new("a"), Secret::new("b")];
    let c = HttpClient::new(o).unwrap().with_clock(clock());
    assert_eq!(c.get("/x").await.unwrap().body, b"[]");
    assert_eq!(c.stats().rotations, 1);
}

#[tokio::test]
async fn secondary_limit_waits_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("Retry-After", "42")
                .set_body_string(r#"{"message":"You have exceeded a secondary rate limit."}"#),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
        .mount(&server)
        .await;
    let clock = clock();
    let c = HttpClient::new(opts(&server))
        .unwrap()
        .with_clock(clock.clone());
    c.get("/x").await.unwrap();
    assert_eq!(clock.sleeps(), [Duration::from_secs(42)]);
    // Always limited: classified rate_limited after the bounded waits.
    let server2 = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .mount(&server2)
        .await;
    let c = HttpClient::new(opts(&server2))
        .unwrap()
        .with_clock(clock.clone());
    assert_eq!(
        c.get("/x").await.unwrap_err().category(),
        FailureCategory::RateLimited
    );
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
        .mount(&server)
        .await;
    let clock = clock();
    let c = HttpClient::new(opts(&server))
        .unwrap()
        .with_clock(clock.clone());
    c.get("/x").await.unwrap();
    assert_eq!(c.stats().retries, 2);
    let sleeps = clock.sleeps();
    // 500 ms then 1 s, each with ±50 % jitter.
    assert!(
        sleeps[0] >= Duration::from_millis(250) && sleeps[0] < Duration::from_millis(750),
        "{sleeps:?}"
    );
    assert!(
        sleeps[1] >= Duration::from_millis(500) && sleeps[1] < Duration::from_millis(1500),
        "{sleeps:?}"
    );
}

#[tokio::test]
async fn error_categories() {
    let server = MockServer::start().await;
    for (p, status) in [
        ("/404", 404u16),
        ("/401", 401),
        ("/503", 503),
        ("/422", 422),
    ] {
        Mock::given(path(p))
            .respond_with(ResponseTemplate::new(status).set_body_string(r#"{"message":"nope"}"#))
            .mount(&server)
            .await;
    }
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    Mock::given(path("/bad-json"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{oops"))
        .mount(&server)
        .await;
    let mut o = opts(&server);
    o.timeout = Duration::from_millis(200);
    o.max_retries = 1;
    let c = HttpClient::new(o).unwrap().with_clock(clock());
    let cat = |e: HttpError| bdc_core::classify_failure(&*e.into_box());
    assert_eq!(
        cat(c.get("/404").await.unwrap_err()),
        FailureCategory::NotFound
    );
    assert_eq!(cat(c.get("/401").await.unwrap_err()), FailureCategory::Auth);
    assert_eq!(
        cat(c.get("/503").await.unwrap_err()),
        FailureCategory::Network
    );
    assert_eq!(
        cat(c.get("/slow").await.unwrap_err()),
        FailureCategory::Timeout
    );
    let e = c
        .get_json::<serde_json::Value>("/bad-json")
        .await
        .unwrap_err();
    assert_eq!(cat(e), FailureCategory::Parse);
    let e = c.get("/422").await.unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
    // Nothing listens on port 9: network.
    let mut o = ClientOptions::new("test", Url::parse("http://127.0.0.1:9").unwrap());
    o.max_retries = 0;
    let c = HttpClient::new(o).unwrap();
    assert_eq!(
        cat(c.get("/x").await.unwrap_err()),
        FailureCategory::Network
    );
}

#[tokio::test]
async fn budget_counts_rate_limited_requests_only() {
    let server = MockServer::start().await;
    Mock::given(header_exists("if-none-match"))
        .respond_with(ResponseTemplate::new(304))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("[]")
                .insert_header("ETag", "\"e\""),
        )
        .mount(&server)
        .await;
    let mut o = opts(&server);
    o.max_requests = Some(2);
    let c = HttpClient::new(o).unwrap();
    c.get("/a").await.unwrap();
    c.get("/b").await.unwrap();
    let e = c.get("/c").await.unwrap_err();
    assert!(
        matches!(e, HttpError::BudgetExhausted { budget: 2, .. }),
        "{e}"
    );
    assert_eq!(e.category(), FailureCategory::RateLimited);
}

#[tokio::test]
async fn archive_and_replay_without_network() {
    let server = MockServer::start().await;
    Mock::given(path("/data"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"a":1}"#)
                .insert_header("ETag", "\"z\"")
                .insert_header("X-RateLimit-Remaining", "4999"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let ws = tempfile::tempdir().unwrap();
    let c = HttpClient::new(opts(&server))
        .unwrap()
        .with_archive(RawArchive::new(ws.path(), "test"));
    c.get("/data").await.unwrap();
    let index = RawArchive::new(ws.path(), "test").index().await.unwrap();
    let entry = index.get(&format!("{}/data", server.uri())).unwrap();
    assert_eq!(entry.headers["etag"], "\"z\"");
    assert_eq!(entry.headers["x-ratelimit-remaining"], "4999");
    assert!(entry.file.ends_with(".gz"));
    let r = HttpClient::replay(opts(&server), RawArchive::new(ws.path(), "test"))
        .await
        .unwrap();
    let got = r.get("/data").await.unwrap();
    assert!(got.replayed);
    assert_eq!(got.body, br#"{"a":1}"#);
    let missing = r.get("/other").await.unwrap_err();
    assert_eq!(missing.category(), FailureCategory::NotFound);
    assert_eq!(r.stats().requests, 0);
}

/// `archive_not_found`: a final `404` is archived with its body and a
/// replay answers it with the same status and message; without the option
/// (the default) nothing but successes is archived.
#[tokio::test]
async fn archived_not_found_replays_as_the_same_error() {
    let server = MockServer::start().await;
    Mock::given(path("/gone"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_string(r#"{"message":"No commit found for the ref abc","status":"404"}"#),
        )
        .mount(&server)
        .await;
    for archive_404 in [false, true] {
        let ws = tempfile::tempdir().unwrap();
        let mut o = opts(&server);
        o.archive_not_found = archive_404;
        let c = HttpClient::new(o.clone())
            .unwrap()
            .with_archive(RawArchive::new(ws.path(), "test"));
        let live = c.get("/gone").await.unwrap_err();
        assert_eq!(live.status(), Some(404));
        let r = HttpClient::replay(o, RawArchive::new(ws.path(), "test"))
            .await
            .unwrap();
        let replayed = r.get("/gone").await.unwrap_err();
        if archive_404 {
            assert_eq!(replayed.status(), Some(404), "{replayed}");
            assert!(
                replayed.to_string().contains("No commit found"),
                "{replayed}"
            );
        } else {
            assert!(
                matches!(replayed, HttpError::NotArchived { .. }),
                "{replayed}"
            );
        }
    }
}

#[test]
fn github_options_from_config() {
    let cfg = bdc_config::Config::from_lookup(|k| match k {
        "GITHUB_TOKENS_SCRAPING" => Some("s1, s2".into()),
        "GITHUB_TOKEN" => Some("s1".into()),
        "GITHUB_API_URL" => Some("http://127.0.0.1:1234/api/v3".into()),
        _ => None,
    })
    .unwrap();
    let o = ClientOptions::github(&cfg, "github-activity");
    let toks: Vec<&str> = o.tokens.iter().map(Secret::expose).collect();
    assert_eq!(toks, ["s1", "s2"]);
    let c = HttpClient::new(o).unwrap();
    assert_eq!(
        c.url("/repos/a/b").unwrap(),
        "http://127.0.0.1:1234/api/v3/repos/a/b"
    );
    assert_eq!(c.url("https://x.invalid/y").unwrap(), "https://x.invalid/y");
}

#[tokio::test]
async fn scheme_auth_and_fractional_retry_after() {
    let server = MockServer::start().await;
    // A 429 with only the body's `retry_after` (Discord), then one with a
    // fractional `Retry-After` header, then the answer with bucket headers.
    Mock::given(method("GET"))
        .and(header("authorization", "Bot s3cret"))
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_json(serde_json::json!({"retry_after": 0.25, "global": true})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bot s3cret"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1.5"))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bot s3cret"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("X-RateLimit-Bucket", "abc")
                .insert_header("X-RateLimit-Remaining", "0")
                .insert_header("X-RateLimit-Reset", "1470173023.123")
                .insert_header("X-RateLimit-Reset-After", "0.5")
                .set_body_string("[]"),
        )
        .with_priority(3)
        .mount(&server)
        .await;
    let mut o = ClientOptions::new("test", Url::parse(&server.uri()).unwrap());
    o.tokens = vec![Secret::new("s3cret")];
    o.auth = bdc_http::TokenAuth::Scheme("Bot");
    o.token_rate_limit = false;
    let clock = clock();
    let c = HttpClient::new(o).unwrap().with_clock(clock.clone());
    let r = c.get("/x").await.unwrap();
    assert_eq!(
        clock.sleeps(),
        [Duration::from_millis(250), Duration::from_millis(1500)]
    );
    assert_eq!(
        r.headers.get("x-ratelimit-bucket").map(String::as_str),
        Some("abc")
    );
    // Per-token limits are off: Remaining 0 does not pause the next call.
    c.get("/x").await.unwrap();
    assert_eq!(clock.sleeps().len(), 2);
}
