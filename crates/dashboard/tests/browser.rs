//! End-to-end test of the dashboard in real headless Chromium, driven
//! through chromedriver (Debian packages `chromium` and `chromium-driver`,
//! installed by `scripts/test`). Pages load, sign-in works, filters work,
//! the browser logs no console errors, and screenshots are saved under
//! `$CARGO_TARGET_TMPDIR/dashboard-screenshots/`.
//!
//! The WebDriver calls are a handful of JSON requests, made with the
//! reqwest client the workspace already builds rather than a second HTTP
//! stack from a WebDriver crate.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bdc_collector_library_usage_dashboard as usage;
use bdc_core::FailureCategory;
use bdc_dashboard::{DashboardState, router};
use bdc_storage::runs::{NewRun, RunOutcome, RunStatus};
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::TestDb;
use serde_json::{Value, json};

struct Driver {
    child: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("chromedriver is required (Debian chromium-driver): {e}"));
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap().keep();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_owned();
        let mut d = Driver {
            child,
            base,
            session,
            http,
        };
        d.base = format!("{}/session/{}", d.base, d.session);
        d
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if method != reqwest::Method::GET {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        let v: Value = r.json().await.unwrap();
        assert!(v["value"].get("error").is_none(), "webdriver {path}: {v}");
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("element {css}: {v}"))
            .to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/clear"),
            json!({}),
        )
        .await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            json!({"text": text}),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            json!({}),
        )
        .await;
    }

    async fn script(&self, js: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": js, "args": []}),
        )
        .await
    }

    async fn title(&self) -> String {
        self.cmd(reqwest::Method::GET, "/title", Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Wait until the page title starts with `prefix` (navigation after a
    /// click completes asynchronously).
    async fn wait_title(&self, prefix: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let t = self.title().await;
            if t.starts_with(prefix) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "title {t:?} never became {prefix:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until the current URL contains `part`.
    async fn wait_url(&self, part: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let u = self.cmd(reqwest::Method::GET, "/url", Value::Null).await;
            if u.as_str().unwrap_or_default().contains(part) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "url {u} never contained {part:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn screenshot(&self, name: &str) {
        use base64_decode as b64;
        let v = self
            .cmd(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        let png = b64(v.as_str().unwrap_or_default());
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    async fn console_errors(&self) -> Vec<Value> {
        let logs = self
            .cmd(reqwest::Method::POST, "/se/log", json!({"type": "browser"}))
            .await;
        logs.as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .collect()
    }
}

/// Standard base64 (screenshots); test-only, tiny.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let Some(v) = val(c) else { continue };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

async fn seed_usage(storage: &Storage) {
    use usage::metrics::{Inputs, LibraryIn, RepoIn, UsageIn, compute};
    let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    let repo = |name: &str, stars, created| RepoIn {
        full_name: name.into(),
        stars,
        created: d(created),
        pushed: d(created),
        first_seen: None,
        last_seen: None,
        uses_boost: true,
        boost_version: None,
        gone: false,
    };
    let use_ = |repo: &str, header: &str, library: &str| UsageIn {
        repo: repo.into(),
        header: header.into(),
        library: library.into(),
    };
    let data = compute(&Inputs {
        today: d("2026-06-01"),
        stars_min: 10,
        repos: vec![
            repo("a/one", 42, "2024-01-01"),
            repo("b/two", 7, "2025-03-01"),
        ],
        usages: vec![
            use_(
                "a/one",
                "boost/numeric/conversion/cast.hpp",
                "numeric/conversion",
            ),
            use_("b/two", "boost/asio.hpp", "asio"),
        ],
        libraries: vec![
            LibraryIn {
                key: "numeric/conversion".into(),
                name: Some("Conversion".into()),
            },
            LibraryIn {
                key: "asio".into(),
                name: Some("Asio".into()),
            },
        ],
        cpp_per_year: vec![(2024, 100, 10), (2025, 120, 12)],
        ..Default::default()
    });
    let json = serde_json::to_string(&data).unwrap();
    usage::store::store_snapshot(storage, &data.generated_on, &json)
        .await
        .unwrap();
}

async fn seed(storage: &Storage) {
    let runs = storage.runs();
    let mk = |id: &'static str, collector: &'static str| NewRun {
        run_id: id,
        collector,
        command: collector,
        schedule_group: Some("daily"),
        args: &[],
        worker_id: None,
        slot_task: None,
    };
    let mut counts = BTreeMap::new();
    counts.insert("inserted".to_owned(), 38);
    runs.start(&mk("r1", "wg21-papers")).await.unwrap();
    runs.finish(
        "r1",
        &RunOutcome {
            status: RunStatus::Success,
            failure_category: None,
            error: None,
            counts,
        },
    )
    .await
    .unwrap();
    runs.start(&mk("r2", "github-activity")).await.unwrap();
    runs.finish(
        "r2",
        &RunOutcome {
            status: RunStatus::Failed,
            failure_category: Some(FailureCategory::RateLimited),
            error: Some("HTTP 429 <script>alert(1)</script>".into()),
            counts: BTreeMap::new(),
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_in_headless_chromium() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDb::sqlite();
    let storage = Storage::connect(db.url(), &ConnectOptions::default())
        .await
        .unwrap();
    storage
        .migrate_parts(&[&bdc_jobs::SCHEMA, &usage::SCHEMA, &bdc_search::SCHEMA])
        .await
        .unwrap();
    seed(&storage).await;
    seed_usage(&storage).await;
    // The search page reads an index built from two activity records.
    let workspace = tempfile::tempdir().unwrap();
    let at = chrono::Utc::now();
    let recs = vec![
        bdc_core::ActivityRecord::new("github", "issue-1", at, "issue")
            .unwrap()
            .with_title("Strands and executors in Asio")
            .with_url("https://lists.example/a")
            .unwrap()
            .with_payload(
                json!({"body": "A strand serialises handlers on one executor <b>safely</b>."}),
            )
            .unwrap(),
        bdc_core::ActivityRecord::new("wg21", "P0001", at, "paper")
            .unwrap()
            .with_title("Lunch plans")
            .with_payload(json!({"text": "Anyone for noodles near the office today?"}))
            .unwrap(),
    ];
    storage.activity().upsert(&recs, None, None).await.unwrap();
    bdc_search::sync::sync(
        &storage,
        workspace.path(),
        &bdc_search::SyncOptions {
            app_types: vec!["activity".into()],
            chunk: bdc_search::ChunkConfig::default(),
            pinecone: None,
            reindex: false,
        },
    )
    .await
    .unwrap();
    let config = Arc::new(
        bdc_config::Config::from_lookup(|k| (k == "BDC_API_TOKEN").then(|| "s3cret".to_owned()))
            .unwrap(),
    );
    let schedule = bdc_schedule::Schedule::parse(
        "groups:\n  daily:\n    tasks:\n      - command: wg21-papers\n        schedule: daily\n",
        "s.yaml",
    )
    .unwrap();
    let dash = router(DashboardState {
        storage: storage.clone(),
        config: Arc::clone(&config),
        schedule: Some(Arc::new(schedule)),
        available: vec!["wg21-papers"],
        sections: vec![
            Arc::new(usage::UsageSection::new(storage.clone())),
            Arc::new(bdc_search::SearchSection {
                storage: storage.clone(),
                workspace: workspace.path().to_path_buf(),
            }),
        ],
        version: "test".into(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = bdc_server::AppState {
        storage: storage.clone(),
        config,
        schedule: None,
        schedule_error: None,
        metrics: None,
    };
    let options = bdc_server::ServerOptions {
        extra_routes: vec![dash],
        ..Default::default()
    };
    tokio::spawn(bdc_server::serve_with_options(
        listener,
        state,
        options,
        std::future::pending(),
    ));
    let base = format!("http://{addr}");

    // Without the token: API-style clients get 401.
    let r = reqwest::get(format!("{base}/dashboard/runs"))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let d = Driver::start().await;
    // A browser is sent to the sign-in page.
    d.goto(&format!("{base}/dashboard/")).await;
    d.wait_title("Sign in").await;
    d.type_into("#token", "wrong").await;
    d.click("#sign-in").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !d
        .script("return document.body.innerText")
        .await
        .as_str()
        .unwrap_or("")
        .contains("Wrong token")
    {
        assert!(Instant::now() < deadline, "no 'Wrong token' message");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.goto(&format!("{base}/dashboard/login")).await;
    d.type_into("#token", "s3cret").await;
    d.click("#sign-in").await;
    d.wait_title("Collectors").await;
    let rows = d
        .script("return Array.from(document.querySelectorAll('#collectors tbody tr')).map(r => r.dataset.collector)")
        .await;
    assert!(rows.as_array().unwrap().iter().any(|v| v == "wg21-papers"));
    let fresh = d
        .script("return document.querySelector('tr[data-collector=\"wg21-papers\"]').innerText")
        .await;
    assert!(fresh.as_str().unwrap().contains("fresh"), "{fresh}");
    d.screenshot("collectors").await;

    // Runs page with a filter applied through the form.
    d.goto(&format!("{base}/dashboard/runs")).await;
    let all = d
        .script("return document.querySelectorAll('tr.run').length")
        .await;
    assert_eq!(all, json!(2));
    d.click("#f-status option[value=failed]").await;
    d.click("#f-apply").await;
    d.wait_url("status=failed").await;
    let statuses = d
        .script("return Array.from(document.querySelectorAll('tr.run')).map(r => r.dataset.status)")
        .await;
    assert_eq!(statuses, json!(["failed"]));
    let url = d.cmd(reqwest::Method::GET, "/url", Value::Null).await;
    assert!(url.as_str().unwrap().contains("status=failed"), "{url}");
    // Error text is escaped, not executed.
    let text = d
        .script("return document.querySelector('#runs').innerText")
        .await;
    assert!(text.as_str().unwrap().contains("<script>alert(1)</script>"));
    d.screenshot("runs-failed").await;
    d.type_into("#f-collector", "wg21-papers").await;
    d.click("#f-status option[value='']").await;
    d.click("#f-apply").await;
    d.wait_url("collector=wg21-papers").await;
    let collectors = d
        .script(
            "return Array.from(document.querySelectorAll('tr.run')).map(r => r.dataset.collector)",
        )
        .await;
    assert_eq!(collectors, json!(["wg21-papers"]));

    d.goto(&format!("{base}/dashboard/jobs")).await;
    assert!(d.title().await.starts_with("Jobs"));
    d.screenshot("jobs").await;

    // Library usage (a collector's section): charts are inline SVG.
    d.goto(&format!("{base}/dashboard/usage")).await;
    d.wait_title("Library usage").await;
    let charts = d
        .script("return document.querySelectorAll('svg.chart').length")
        .await;
    assert!(charts.as_u64().unwrap_or(0) >= 4, "charts: {charts}");
    let bars = d
        .script("return document.querySelectorAll('svg.boost-years rect').length")
        .await;
    assert_eq!(bars, json!(2));
    let width = d
        .script("return document.querySelector('svg.boost-years').getBoundingClientRect().width")
        .await;
    assert!(width.as_f64().unwrap_or(0.0) > 100.0, "chart width {width}");
    d.screenshot("usage").await;
    d.click("table.libraries a[href='/dashboard/usage/numeric/conversion']")
        .await;
    d.wait_url("/dashboard/usage/numeric/conversion").await;
    d.wait_title("Library usage: Conversion").await;
    let chart = d
        .script("return document.querySelectorAll('svg.library-years rect').length")
        .await;
    // 2024..=2026, the quiet years as empty bars.
    assert_eq!(chart, json!(3));
    d.screenshot("usage-library").await;

    // Search: the form, ranked results with highlighted snippets.
    d.goto(&format!("{base}/dashboard/search")).await;
    d.wait_title("Search").await;
    d.type_into("#s-q", "strand executor").await;
    d.click("#s-go").await;
    d.wait_url("q=strand").await;
    let results = d
        .script("return Array.from(document.querySelectorAll('#results li.result')).map(r => r.dataset.source)")
        .await;
    assert_eq!(results, json!(["github"]));
    let marked = d
        .script("return document.querySelectorAll('#results .snippet b').length")
        .await;
    assert!(marked.as_u64().unwrap_or(0) >= 1, "highlights: {marked}");
    // Stored text is escaped: the record's <b>safely</b> shows as text.
    let text = d
        .script("return document.querySelector('#results').innerText")
        .await;
    assert!(text.as_str().unwrap().contains("<b>safely"), "{text}");
    d.screenshot("search").await;

    let errors = d.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}
