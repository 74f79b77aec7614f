//! End-to-end tests of the `wg21-papers` collector against real SQLite and
//! PostgreSQL databases, local index files and `wiremock` servers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bdc_collector::{CollectContext, Collector, Registry, RunReport, RunRequest, Runner};
use bdc_collector_wg21::{CHECKPOINT_SCOPE, NAME, Wg21PapersCollector};
use bdc_config::Config;
use bdc_core::{FailureCategory, IncrementalState, TrackerResult};
use bdc_storage::activity::ActivityFilter;
use bdc_storage::runs::{RunFilter, RunStatus};
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Valid entries in `examples/wg21/index.json` (40 entries, 2 without a date).
const EXAMPLE_ENTRIES: u64 = 40;
const EXAMPLE_RECORDS: u64 = 38;

fn example_index() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../examples/wg21/index.json")
}

fn example_json() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(example_index()).unwrap();
    match serde_json::from_str(&text).unwrap() {
        Value::Object(m) => m,
        other => panic!("example is not an object: {other}"),
    }
}

struct Env {
    _db: TestDb,
    storage: Storage,
    workspace: tempfile::TempDir,
    config: Arc<Config>,
}

impl Env {
    async fn new(kind: Kind) -> Env {
        let workspace = tempfile::tempdir().unwrap();
        Self::with_workspace(kind, workspace).await
    }

    async fn with_workspace(kind: Kind, workspace: tempfile::TempDir) -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let db = TestDb::new(kind).await;
        let storage = Storage::connect(db.url(), &ConnectOptions::default())
            .await
            .unwrap();
        storage.migrate().await.unwrap();
        let ws = workspace.path().display().to_string();
        let url = db.url().to_owned();
        let config = Config::from_lookup(|k| match k {
            "WORKSPACE_DIR" => Some(ws.clone()),
            "DATABASE_URL" => Some(url.clone()),
            // Never the public index in tests.
            "BDC_WG21_INDEX_URL" => Some("http://127.0.0.1:9/unreachable.json".into()),
            _ => None,
        })
        .unwrap();
        Env {
            _db: db,
            storage,
            workspace,
            config: Arc::new(config),
        }
    }

    fn ctx(&self, args: &[&str]) -> CollectContext {
        CollectContext {
            run_id: format!("test-{}", uuid_like()),
            command: NAME.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            schedule_group: None,
            storage: self.storage.clone(),
            config: Arc::clone(&self.config),
            interactive: false,
        }
    }

    async fn run(&self, args: &[&str]) -> TrackerResult {
        match Wg21PapersCollector.run(&self.ctx(args)).await {
            Ok(r) => r,
            Err(e) => panic!("run {args:?} failed: {e}"),
        }
    }

    async fn fail(&self, args: &[&str]) -> FailureCategory {
        match Wg21PapersCollector.run(&self.ctx(args)).await {
            Ok(r) => panic!("run {args:?} succeeded: {r:?}"),
            Err(e) => e.category,
        }
    }

    async fn rows(&self) -> u64 {
        self.storage
            .activity()
            .count(&ActivityFilter {
                source_system: Some("wg21".into()),
                ..Default::default()
            })
            .await
            .unwrap()
    }

    async fn checkpoint(&self) -> Option<IncrementalState> {
        self.storage
            .checkpoints()
            .get(NAME, CHECKPOINT_SCOPE)
            .await
            .unwrap()
    }

    fn archive_dir(&self) -> PathBuf {
        self.workspace.path().join("raw").join(NAME)
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

fn counts(r: &TrackerResult) -> [u64; 4] {
    [
        r.count("fetched"),
        r.count("inserted"),
        r.count("updated"),
        r.count("unchanged"),
    ]
}

use bdc_testsupport::both_backends as both;

both!(example_file_is_incremental);
async fn example_file_is_incremental(kind: Kind) {
    let env = Env::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("index.json");
    std::fs::copy(example_index(), &file).unwrap();
    let f = file.display().to_string();

    let first = env.run(&["--index", &f]).await;
    assert_eq!(
        counts(&first),
        [EXAMPLE_ENTRIES, EXAMPLE_RECORDS, 0, 0],
        "{first:?}"
    );
    assert_eq!(first.count("skipped_no_date"), 2);
    assert_eq!(first.count("skipped_invalid"), 0);
    assert_eq!(first.count("partial_date"), 1);
    assert_eq!(env.rows().await, EXAMPLE_RECORDS);
    let cp = env.checkpoint().await.unwrap();
    assert!(cp.checkpoint_token().starts_with("fnv1a64:"), "{cp:?}");
    assert_eq!(cp.extras()["papers"], json!(EXAMPLE_RECORDS));
    assert_eq!(cp.extras()["max_date"], json!("2024-08-29"));

    // The stored shape of one paper.
    let rows = env
        .storage
        .activity()
        .list(&ActivityFilter {
            source_system: Some("wg21".into()),
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap();
    let p2300 = rows
        .iter()
        .find(|r| r.record.external_id() == "P2300R10")
        .unwrap();
    assert_eq!(p2300.record.kind(), "paper");
    assert_eq!(p2300.record.actor(), Some("Michał Dominiak"));
    assert_eq!(p2300.record.title(), Some("`std::execution`"));
    assert_eq!(p2300.record.url(), Some("https://wg21.link/p2300r10"));
    assert_eq!(
        p2300.record.occurred_at().to_rfc3339(),
        "2024-06-28T00:00:00+00:00"
    );
    assert_eq!(p2300.record.payload()["document"], "P2300R10");
    assert_eq!(
        p2300.record.payload()["authors"].as_array().unwrap().len(),
        9
    );
    assert_eq!(
        p2300.record.payload()["issues"],
        json!(["LWG4127", "LWG4128"])
    );
    let kinds: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.record.kind()).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["editorial", "issue", "paper", "standing_document"]
    );
    let no_author = rows
        .iter()
        .find(|r| r.record.external_id() == "P3288R0")
        .unwrap();
    assert_eq!(no_author.record.actor(), None);

    // Second run: the content hash matches; nothing written.
    let second = env.run(&["--index", &f]).await;
    assert_eq!(
        counts(&second),
        [EXAMPLE_ENTRIES, 0, 0, EXAMPLE_RECORDS],
        "{second:?}"
    );
    assert_eq!(env.checkpoint().await, Some(cp.clone()));

    // Edit one title, add one paper.
    let mut index = example_json();
    index["P2389R2"]["title"] = json!("dextents Index Type Parameter (revised)");
    index.insert(
        "P3325R3".into(),
        json!({"type": "paper", "title": "A Utility for Creating Execution Environments",
               "author": "Eric Niebler", "date": "2024-07-16", "subgroup": "LEWG",
               "link": "https://wg21.link/p3325r3"}),
    );
    std::fs::write(
        &file,
        serde_json::to_vec_pretty(&Value::Object(index)).unwrap(),
    )
    .unwrap();
    let third = env.run(&["--index", &f]).await;
    assert_eq!(
        counts(&third),
        [EXAMPLE_ENTRIES + 1, 1, 1, EXAMPLE_RECORDS - 1],
        "{third:?}"
    );
    assert_eq!(env.rows().await, EXAMPLE_RECORDS + 1);
    let cp3 = env.checkpoint().await.unwrap();
    assert_ne!(cp3.checkpoint_token(), cp.checkpoint_token());
    assert_eq!(cp3.extras()["papers"], json!(EXAMPLE_RECORDS + 1));

    // --full ignores the checkpoint but still writes nothing unchanged.
    let full = env.run(&["--index", &f, "--full"]).await;
    assert_eq!(
        counts(&full),
        [EXAMPLE_ENTRIES + 1, 0, 0, EXAMPLE_RECORDS + 1]
    );

    // The file bodies were archived (deduplicated: 2 distinct contents).
    let bodies = std::fs::read_dir(env.archive_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with("-index.json"))
        .count();
    assert_eq!(bodies, 2);
}

async fn mount_index(server: &MockServer, body: Vec<u8>) {
    // A conditional request with the current ETag gets 304 (higher priority).
    Mock::given(method("GET"))
        .and(path("/index.json"))
        .and(header("If-None-Match", "\"v1\""))
        .respond_with(ResponseTemplate::new(304))
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/index.json"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("ETag", "\"v1\"")
                .insert_header("Last-Modified", "Wed, 28 Aug 2024 07:28:00 GMT")
                .insert_header("Content-Type", "application/json")
                .set_body_bytes(body),
        )
        .with_priority(2)
        .mount(server)
        .await;
}

both!(http_conditional_request_gets_304);
async fn http_conditional_request_gets_304(kind: Kind) {
    let env = Env::new(kind).await;
    let server = MockServer::builder().start().await;
    mount_index(&server, std::fs::read(example_index()).unwrap()).await;
    let url = format!("{}/index.json", server.uri());

    let first = env.run(&["--index", &url]).await;
    assert_eq!(counts(&first), [EXAMPLE_ENTRIES, EXAMPLE_RECORDS, 0, 0]);
    let cp = env.checkpoint().await.unwrap();
    assert_eq!(cp.extras()["etag"], json!("\"v1\""));
    assert_eq!(cp.extras()["source"], json!(url));

    let second = env.run(&["--index", &url]).await;
    assert_eq!(counts(&second), [0, 0, 0, EXAMPLE_RECORDS], "{second:?}");
    assert_eq!(env.checkpoint().await, Some(cp));
    assert_eq!(env.rows().await, EXAMPLE_RECORDS);

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let h = |i: usize, name: &str| {
        requests[i]
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(h(0, "if-none-match"), None);
    assert_eq!(h(1, "if-none-match").as_deref(), Some("\"v1\""));
    assert_eq!(
        h(1, "if-modified-since").as_deref(),
        Some("Wed, 28 Aug 2024 07:28:00 GMT")
    );
    let ua = h(0, "user-agent").unwrap();
    assert!(ua.starts_with("bdc/"), "{ua}");

    // --full sends no validators: a 200, same content, nothing new written.
    let full = env.run(&["--index", &url, "--full"]).await;
    assert_eq!(counts(&full), [EXAMPLE_ENTRIES, 0, 0, EXAMPLE_RECORDS]);
    let requests = server.received_requests().await.unwrap();
    assert!(requests[2].headers.get("if-none-match").is_none());
}

both!(http_failures_are_classified_and_write_nothing);
async fn http_failures_are_classified_and_write_nothing(kind: Kind) {
    let env = Env::new(kind).await;
    let server = MockServer::builder().start().await;
    let url = format!("{}/index.json", server.uri());

    Mock::given(path("/index.json"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    assert_eq!(
        env.fail(&["--index", &url]).await,
        FailureCategory::NotFound
    );

    server.reset().await;
    Mock::given(path("/index.json"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    assert_eq!(env.fail(&["--index", &url]).await, FailureCategory::Network);

    // A good run, then bad bodies: parse failures leave rows and checkpoint alone.
    server.reset().await;
    mount_index(&server, std::fs::read(example_index()).unwrap()).await;
    env.run(&["--index", &url]).await;
    let cp = env.checkpoint().await.unwrap();

    let full_body = std::fs::read(example_index()).unwrap();
    let truncated = full_body[..full_body.len() / 2].to_vec();
    for (body, label) in [(b"[1,2]".to_vec(), "array"), (truncated, "truncated")] {
        server.reset().await;
        Mock::given(path("/index.json"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(body))
            .mount(&server)
            .await;
        assert_eq!(
            env.fail(&["--index", &url]).await,
            FailureCategory::Parse,
            "{label}"
        );
        assert_eq!(env.rows().await, EXAMPLE_RECORDS, "{label}");
        assert_eq!(env.checkpoint().await.as_ref(), Some(&cp), "{label}");
    }

    // A server that went away is a network failure (a bare, unpooled
    // wiremock server stops listening when dropped).
    drop(server);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(env.fail(&["--index", &url]).await, FailureCategory::Network);
}

both!(from_archive_replays_without_network);
async fn from_archive_replays_without_network(kind: Kind) {
    let env = Env::new(kind).await;
    assert_eq!(
        env.fail(&["--from-archive"]).await,
        FailureCategory::NotFound
    );
    let server = MockServer::builder().start().await;
    mount_index(&server, std::fs::read(example_index()).unwrap()).await;
    let url = format!("{}/index.json", server.uri());
    env.run(&["--index", &url]).await;
    drop(server);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(env.fail(&["--index", &url]).await, FailureCategory::Network);

    // The sidecar names the request.
    let meta_path = std::fs::read_dir(env.archive_dir())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-index.meta.json"))
        .unwrap();
    let meta: Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    assert_eq!(meta["url"], json!(url));
    assert_eq!(meta["status"], json!(200));
    assert_eq!(meta["etag"], json!("\"v1\""));
    assert!(meta["fetched_at"].is_string());

    let replay = env.run(&["--from-archive"]).await;
    assert_eq!(counts(&replay), [EXAMPLE_ENTRIES, 0, 0, EXAMPLE_RECORDS]);
    let full = env.run(&["--from-archive", "--full"]).await;
    assert_eq!(counts(&full), [EXAMPLE_ENTRIES, 0, 0, EXAMPLE_RECORDS]);

    // Replaying the same archive into a fresh database stores everything.
    let Env { workspace, .. } = env;
    let fresh = Env::with_workspace(kind, workspace).await;
    let replay = fresh.run(&["--from-archive"]).await;
    assert_eq!(counts(&replay), [EXAMPLE_ENTRIES, EXAMPLE_RECORDS, 0, 0]);
    assert_eq!(
        fresh.checkpoint().await.unwrap().extras()["etag"],
        json!("\"v1\"")
    );
}

both!(runner_records_the_run);
async fn runner_records_the_run(kind: Kind) {
    let env = Env::new(kind).await;
    let mut registry = Registry::new();
    registry.register(Arc::new(Wg21PapersCollector));
    let runner = Runner {
        registry,
        storage: env.storage.clone(),
        config: Arc::clone(&env.config),
        worker_id: None,
        interactive: true,
    };
    let report = runner
        .run(&RunRequest {
            command: "run_wg21_paper_tracker".into(),
            args: vec!["--index".into(), example_index().display().to_string()],
            schedule_group: None,
            slot_task: None,
        })
        .await
        .unwrap();
    assert!(matches!(report, RunReport::Succeeded { .. }), "{report:?}");
    let bad = runner
        .run(&RunRequest {
            command: NAME.into(),
            args: vec!["--bogus".into()],
            schedule_group: None,
            slot_task: None,
        })
        .await
        .unwrap();
    assert!(
        matches!(
            bad,
            RunReport::Failed {
                category: FailureCategory::Config,
                ..
            }
        ),
        "{bad:?}"
    );
    let runs = env
        .storage
        .runs()
        .list(&RunFilter {
            collector: Some(NAME.into()),
            status: None,
            limit: Some(10),
        })
        .await
        .unwrap();
    assert_eq!(runs.len(), 2);
    let ok = runs
        .iter()
        .find(|r| r.status == RunStatus::Success)
        .unwrap();
    assert_eq!(ok.command, "run_wg21_paper_tracker");
    assert_eq!(ok.counts.get("inserted"), Some(&EXAMPLE_RECORDS));
    assert_eq!(ok.counts.get("fetched"), Some(&EXAMPLE_ENTRIES));
    assert_eq!(ok.counts.get("skipped_no_date"), Some(&2));
    let failed = runs.iter().find(|r| r.status == RunStatus::Failed).unwrap();
    assert_eq!(failed.failure_category, Some(FailureCategory::Config));
    assert!(
        failed.error.as_deref().unwrap_or("").contains("--bogus"),
        "{failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_entries_are_counted_not_fatal() {
    let env = Env::new(Kind::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("odd.json");
    let index = json!({
        "P1000R0": {"type": "paper", "title": "Fine", "author": "A. Author and B. Author", "date": "2020-01-13"},
        "P1001R0": "not an object",
        "P1002R0": null,
        "P1003R0": {"type": "paper", "title": "No date"},
        "P1004R0": {"type": "paper", "title": "Bad date", "date": "sometime"},
        "P1005R0": {"type": "paper", "title": "Numeric date", "date": 20200113},
        "P1006R0": {"type": "Core Language Issue", "title": "Odd type", "date": "2020"},
        "P1007R0": {"title": "No type", "date": "2020-02-03", "link": "ftp://nope", "future_field": {"x": 1}},
        "P1008R0": {"type": 7, "title": ["not", "a", "string"], "author": 42, "date": "2020-02-04"},
        "": {"type": "paper", "title": "Empty key", "date": "2020-01-01"},
        "SD-4": {"title": "WG21 Practices and Procedures", "date": "2021-06-01"}
    });
    std::fs::write(&file, serde_json::to_vec(&index).unwrap()).unwrap();
    let r = env.run(&["--index", &file.display().to_string()]).await;
    assert_eq!(r.count("fetched"), 11);
    assert_eq!(r.count("inserted"), 5, "{r:?}");
    assert_eq!(r.count("skipped_no_date"), 3);
    assert_eq!(r.count("skipped_invalid"), 3);
    assert_eq!(r.count("partial_date"), 1);
    let rows = env
        .storage
        .activity()
        .list(&ActivityFilter {
            source_system: Some("wg21".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let by_id = |id: &str| {
        rows.iter()
            .find(|r| r.record.external_id() == id)
            .unwrap_or_else(|| panic!("{id} missing"))
    };
    assert_eq!(
        by_id("P1000R0").record.payload()["authors"],
        json!(["A. Author", "B. Author"])
    );
    assert_eq!(by_id("P1006R0").record.kind(), "core_language_issue");
    assert_eq!(by_id("P1006R0").record.payload()["date_precision"], "year");
    assert_eq!(by_id("P1007R0").record.kind(), "paper");
    assert_eq!(by_id("P1007R0").record.url(), None);
    assert_eq!(
        by_id("P1007R0").record.payload()["future_field"],
        json!({"x": 1})
    );
    assert_eq!(by_id("P1008R0").record.kind(), "paper");
    assert_eq!(by_id("P1008R0").record.title(), None);
    assert_eq!(by_id("P1008R0").record.actor(), None);
    assert_eq!(by_id("SD-4").record.kind(), "standing_document");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_and_sources_are_classified() {
    let env = Env::new(Kind::Sqlite).await;
    assert_eq!(env.fail(&["--bogus"]).await, FailureCategory::Config);
    assert_eq!(env.fail(&["--index"]).await, FailureCategory::Config);
    assert_eq!(
        env.fail(&["--index", "ftp://example.invalid/x.json"]).await,
        FailureCategory::Config
    );
    assert_eq!(
        env.fail(&["--from-archive", "--index", "x.json"]).await,
        FailureCategory::Config
    );
    assert_eq!(
        env.fail(&["--index", "/nonexistent/wg21/index.json"]).await,
        FailureCategory::NotFound
    );
    let file_url = url::Url::from_file_path(example_index().canonicalize().unwrap()).unwrap();
    let r = env.run(&["--index", file_url.as_str()]).await;
    assert_eq!(r.count("inserted"), EXAMPLE_RECORDS);
    // The default source is the configured URL (unreachable here): network.
    assert_eq!(env.fail(&[]).await, FailureCategory::Network);
    assert_eq!(env.rows().await, EXAMPLE_RECORDS);
}

#[tokio::test(flavor = "multi_thread")]
async fn many_batches_write_the_checkpoint_with_the_last() {
    let env = Env::new(Kind::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.json");
    let n = bdc_collector_wg21::BATCH_SIZE * 2 + 345;
    let index: serde_json::Map<String, Value> = (0..n)
        .map(|i| {
            (
                format!("P{:04}R0", i),
                json!({"type": "paper", "title": format!("Paper {i}"), "author": "Someone",
                       "date": format!("2024-{:02}-{:02}", i % 12 + 1, i % 28 + 1)}),
            )
        })
        .collect();
    std::fs::write(&file, serde_json::to_vec(&Value::Object(index)).unwrap()).unwrap();
    let f = file.display().to_string();
    let r = env.run(&["--index", &f]).await;
    assert_eq!(counts(&r), [n as u64, n as u64, 0, 0]);
    assert_eq!(env.rows().await, n as u64);
    let cp = env.checkpoint().await.unwrap();
    assert_eq!(cp.extras()["papers"], json!(n));
    let again = env.run(&["--index", &f, "--full"]).await;
    assert_eq!(counts(&again), [n as u64, 0, 0, n as u64]);
}
