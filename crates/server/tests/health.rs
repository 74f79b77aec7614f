//! `/health/`, `/metrics` and heartbeats over loopback HTTP, on SQLite and
//! on a real PostgreSQL server (a fresh database per test).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bdc_config::Config;
use bdc_schedule::Schedule;
use bdc_server::{AppState, ServerOptions};
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};
use serde_json::Value;

use bdc_testsupport::both_backends as both;

const SCHEDULE: &str = "\
groups:
  daily_fresh:
    tasks:
      - command: run_wg21_paper_tracker
        schedule: daily
  daily_never:
    tasks:
      - command: run_boost_github_activity_tracker
        schedule: daily
  weekly_only:
    tasks:
      - command: collect_boost_libraries
        schedule: weekly
        on: monday
      - command: run_cppa_slack_tracker
        schedule: daily
        enabled: false
";

fn config(pairs: &[(&str, &str)]) -> Arc<Config> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Arc::new(Config::from_lookup(|k| map.get(k).cloned()).unwrap())
}

struct Fixture {
    db: TestDb,
    storage: Storage,
    base: String,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<Result<(), bdc_server::ServerError>>>,
}

impl Fixture {
    async fn new(kind: Kind, env: &[(&str, &str)], schedule: Option<&str>) -> Fixture {
        Self::with(
            kind,
            env,
            schedule,
            None,
            ServerOptions {
                health_cache_ttl: Duration::ZERO,
                ..ServerOptions::default()
            },
        )
        .await
    }

    async fn with(
        kind: Kind,
        env: &[(&str, &str)],
        schedule: Option<&str>,
        schedule_error: Option<&str>,
        options: ServerOptions,
    ) -> Fixture {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let db = TestDb::new(kind).await;
        let storage = Storage::connect(
            db.url(),
            &ConnectOptions {
                max_connections: 4,
                acquire_timeout: Duration::from_secs(2),
            },
        )
        .await
        .unwrap();
        storage.migrate().await.unwrap();
        let state = AppState {
            storage: storage.clone(),
            config: config(env),
            schedule: schedule.map(|y| Arc::new(Schedule::parse(y, "schedule.yaml").unwrap())),
            schedule_error: schedule_error.map(str::to_owned),
            metrics: None,
        };
        Self::start(db, storage, state, options).await
    }

    async fn start(
        db: TestDb,
        storage: Storage,
        state: AppState,
        options: ServerOptions,
    ) -> Fixture {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(bdc_server::serve_with_options(
            listener,
            state,
            options,
            async {
                let _ = stopped.await;
            },
        ));
        Fixture {
            db,
            storage,
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            stop: Some(stop),
            server: Some(server),
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn health(&self) -> (u16, Value) {
        let resp = self.get("/health/").await;
        let status = resp.status().as_u16();
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        (status, resp.json().await.unwrap())
    }

    async fn live_worker(&self, id: &str) {
        let mut info = bdc_server::heartbeat::worker_info("serve", "test");
        info.worker_id = id.to_owned();
        self.storage.workers().heartbeat(&info).await.unwrap();
    }

    async fn group_success(&self, group: &str) {
        let runs = self.storage.runs();
        let id = runs.start_group_run(group).await.unwrap();
        runs.finish_group_run(id, 1, 0).await.unwrap();
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("server stops on shutdown")
                .unwrap()
                .unwrap();
        }
        self.storage.close().await;
        drop(self.db);
    }
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

fn is_iso_utc(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

both!(healthy_report_has_the_tier_a_shape);
async fn healthy_report_has_the_tier_a_shape(kind: Kind) {
    let fx = Fixture::new(kind, &[], Some(SCHEDULE)).await;
    fx.live_worker("host-a:1:aaaaaaaa").await;
    fx.group_success("daily_fresh").await;
    fx.group_success("daily_never").await;
    fx.storage
        .index_syncs()
        .record("wg21-papers", "wg21-papers", 42)
        .await
        .unwrap();

    let (code, body) = fx.health().await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(keys(&body), ["checks", "status"]);
    assert_eq!(body["status"], "healthy");
    let checks = &body["checks"];
    assert_eq!(
        keys(checks),
        [
            "celery_workers",
            "collector_groups",
            "collector_meta",
            "database",
            "pinecone_sync"
        ]
    );

    let db = &checks["database"];
    assert_eq!(keys(db), ["latency_ms", "ok"]);
    assert_eq!(db["ok"], true);
    assert!(db["latency_ms"].is_u64(), "{db}");

    let w = &checks["celery_workers"];
    assert_eq!(keys(w), ["expected", "ok", "responded", "workers"]);
    assert_eq!(w["ok"], true);
    assert_eq!(w["workers"], serde_json::json!(["host-a:1:aaaaaaaa"]));
    assert_eq!(w["responded"], 1);
    assert_eq!(w["expected"], 1);

    let groups = &checks["collector_groups"];
    assert_eq!(keys(groups), ["daily_fresh", "daily_never", "weekly_only"]);
    for id in ["daily_fresh", "daily_never"] {
        let g = &groups[id];
        assert_eq!(keys(g), ["last_success_at", "stale"]);
        assert!(is_iso_utc(&g["last_success_at"]), "{g}");
        assert_eq!(g["stale"], false);
    }
    // No enabled daily task: freshness not tracked.
    assert_eq!(
        groups["weekly_only"],
        serde_json::json!({"last_success_at": null, "stale": null})
    );

    assert_eq!(
        checks["collector_meta"],
        serde_json::json!({"any_stale": false, "enforce_freshness": false})
    );

    let pc = &checks["pinecone_sync"];
    assert_eq!(keys(pc), ["wg21-papers"]);
    assert_eq!(keys(&pc["wg21-papers"]), ["final_sync_at"]);
    assert!(is_iso_utc(&pc["wg21-papers"]["final_sync_at"]), "{pc}");

    // Same answer without the trailing slash.
    let resp = fx.get("/health").await;
    assert_eq!(resp.status(), 200);
    fx.shutdown().await;
}

both!(database_down_is_503_and_skips_dependent_checks);
async fn database_down_is_503_and_skips_dependent_checks(kind: Kind) {
    let fx = Fixture::new(
        kind,
        &[("HEALTH_ENFORCE_COLLECTOR_FRESHNESS", "true")],
        Some(SCHEDULE),
    )
    .await;
    fx.live_worker("host-a:1:aaaaaaaa").await;
    fx.storage.close().await;

    let (code, body) = fx.health().await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["status"], "unhealthy");
    let checks = &body["checks"];
    assert_eq!(keys(&checks["database"]), ["error", "ok"]);
    assert_eq!(checks["database"]["ok"], false);
    assert!(checks["database"]["error"].is_string());
    assert_eq!(checks["celery_workers"]["ok"], false);
    assert_eq!(checks["celery_workers"]["error"], "database unavailable");
    assert_eq!(checks["celery_workers"]["workers"], serde_json::json!([]));
    assert_eq!(checks["celery_workers"]["responded"], 0);
    assert_eq!(checks["celery_workers"]["expected"], 1);
    assert_eq!(checks["collector_groups"], serde_json::json!({}));
    assert_eq!(
        checks["collector_meta"],
        serde_json::json!({"any_stale": false, "enforce_freshness": true, "skipped": "database unavailable"})
    );
    assert_eq!(
        checks["pinecone_sync"],
        serde_json::json!({"skipped": "database unavailable"})
    );
    fx.shutdown().await;
}

/// PostgreSQL only: the database is dropped under a live pool.
#[tokio::test(flavor = "multi_thread")]
async fn dropped_postgres_database_is_503() {
    let fx = Fixture::new(Kind::Postgres, &[("HEALTH_CELERY_MIN_WORKERS", "0")], None).await;
    let (code, _) = fx.health().await;
    assert_eq!(code, 200);
    let name = fx
        .db
        .url()
        .rsplit('/')
        .next()
        .and_then(|s| s.split('?').next())
        .unwrap()
        .to_owned();
    let admin = Storage::connect(
        &bdc_testsupport::postgres_admin_url(),
        &ConnectOptions::default(),
    )
    .await
    .unwrap();
    admin
        .execute_raw(format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    admin.close().await;

    let start = Instant::now();
    let (code, body) = fx.health().await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["checks"]["database"]["ok"], false);
    assert!(body["checks"]["database"]["error"].is_string(), "{body}");
    assert_eq!(
        body["checks"]["pinecone_sync"],
        serde_json::json!({"skipped": "database unavailable"})
    );
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "the database check is bounded"
    );
    fx.shutdown().await;
}

both!(stale_daily_group_is_503_only_when_enforced);
async fn stale_daily_group_is_503_only_when_enforced(kind: Kind) {
    for enforce in [true, false] {
        let fx = Fixture::new(
            kind,
            &[
                (
                    "HEALTH_ENFORCE_COLLECTOR_FRESHNESS",
                    if enforce { "true" } else { "false" },
                ),
                // 0.36 s: a success recorded before the sleep below is stale.
                ("HEALTH_COLLECTOR_STALE_HOURS", "0.0001"),
            ],
            Some(SCHEDULE),
        )
        .await;
        fx.live_worker("host-a:1:aaaaaaaa").await;
        fx.group_success("daily_fresh").await;
        fx.group_success("weekly_only").await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        fx.live_worker("host-a:1:aaaaaaaa").await;

        let (code, body) = fx.health().await;
        let checks = &body["checks"];
        let groups = &checks["collector_groups"];
        // Old success: stale with a timestamp.
        assert!(
            is_iso_utc(&groups["daily_fresh"]["last_success_at"]),
            "{body}"
        );
        assert_eq!(groups["daily_fresh"]["stale"], true);
        // Never succeeded: stale with null.
        assert_eq!(
            groups["daily_never"],
            serde_json::json!({"last_success_at": null, "stale": true})
        );
        // Not a daily group: never stale, however old.
        assert!(
            is_iso_utc(&groups["weekly_only"]["last_success_at"]),
            "{body}"
        );
        assert_eq!(groups["weekly_only"]["stale"], Value::Null);
        assert_eq!(
            checks["collector_meta"],
            serde_json::json!({"any_stale": true, "enforce_freshness": enforce})
        );
        if enforce {
            assert_eq!(code, 503, "{body}");
            assert_eq!(body["status"], "unhealthy");
        } else {
            assert_eq!(code, 200, "{body}");
            assert_eq!(body["status"], "healthy");
        }
        fx.shutdown().await;
    }
}

both!(too_few_live_workers_is_503);
async fn too_few_live_workers_is_503(kind: Kind) {
    let fx = Fixture::new(
        kind,
        &[
            ("HEALTH_CELERY_MIN_WORKERS", "2"),
            ("BDC_WORKER_LIVE_SECONDS", "0.5"),
        ],
        None,
    )
    .await;
    fx.live_worker("host-a:1:aaaaaaaa").await;
    let (code, body) = fx.health().await;
    assert_eq!(code, 503, "{body}");
    let w = &body["checks"]["celery_workers"];
    assert_eq!(w["ok"], false);
    assert_eq!(w["responded"], 1);
    assert_eq!(w["expected"], 2);
    assert!(w["error"].is_string(), "{w}");

    fx.live_worker("host-b:2:bbbbbbbb").await;
    let (code, body) = fx.health().await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["checks"]["celery_workers"]["workers"],
        serde_json::json!(["host-a:1:aaaaaaaa", "host-b:2:bbbbbbbb"])
    );
    // No schedule: no groups, nothing stale.
    assert_eq!(body["checks"]["collector_groups"], serde_json::json!({}));

    // Heartbeats older than the live window no longer count.
    tokio::time::sleep(Duration::from_millis(800)).await;
    fx.live_worker("host-b:2:bbbbbbbb").await;
    let (code, body) = fx.health().await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(
        body["checks"]["celery_workers"]["workers"],
        serde_json::json!(["host-b:2:bbbbbbbb"])
    );
    fx.shutdown().await;
}

both!(bearer_token_is_required_when_configured);
async fn bearer_token_is_required_when_configured(kind: Kind) {
    let fx = Fixture::new(
        kind,
        &[
            ("HEALTH_CHECK_TOKEN", "s3cret"),
            ("HEALTH_CELERY_MIN_WORKERS", "0"),
        ],
        None,
    )
    .await;
    let url = format!("{}/health/", fx.base);
    let no_header = fx.client.get(&url).send().await.unwrap();
    let wrong = fx
        .client
        .get(&url)
        .bearer_auth("s3cre")
        .send()
        .await
        .unwrap();
    let basic = fx
        .client
        .get(&url)
        .header("authorization", "Basic s3cret")
        .send()
        .await
        .unwrap();
    for resp in [no_header, wrong, basic] {
        assert_eq!(resp.status(), 401);
        assert_eq!(
            resp.headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer")
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(keys(&body), ["detail", "status"]);
        assert_eq!(body["status"], "unauthorized");
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let ok = fx
        .client
        .get(&url)
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["status"], "healthy");
    fx.shutdown().await;
}

both!(pinecone_sync_lists_recorded_index_syncs);
async fn pinecone_sync_lists_recorded_index_syncs(kind: Kind) {
    let fx = Fixture::new(kind, &[("HEALTH_CELERY_MIN_WORKERS", "0")], None).await;
    let (_, body) = fx.health().await;
    assert_eq!(body["checks"]["pinecone_sync"], serde_json::json!({}));
    let syncs = fx.storage.index_syncs();
    syncs
        .record("wg21-papers", "wg21-papers", 10)
        .await
        .unwrap();
    syncs
        .record("mailing-list", "mailing-list", 3)
        .await
        .unwrap();
    let (code, body) = fx.health().await;
    assert_eq!(code, 200);
    let pc = &body["checks"]["pinecone_sync"];
    assert_eq!(keys(pc), ["mailing-list", "wg21-papers"]);
    for name in ["mailing-list", "wg21-papers"] {
        assert_eq!(keys(&pc[name]), ["final_sync_at"]);
        assert!(is_iso_utc(&pc[name]["final_sync_at"]), "{pc}");
    }
    fx.shutdown().await;
}

both!(schedule_error_is_reported_in_collector_meta);
async fn schedule_error_is_reported_in_collector_meta(kind: Kind) {
    let fx = Fixture::with(
        kind,
        &[("HEALTH_CELERY_MIN_WORKERS", "0")],
        None,
        Some("schedule.yaml:3:5: groups.g: bad"),
        ServerOptions {
            health_cache_ttl: Duration::ZERO,
            ..ServerOptions::default()
        },
    )
    .await;
    let (code, body) = fx.health().await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["checks"]["collector_groups"], serde_json::json!({}));
    assert_eq!(
        body["checks"]["collector_meta"],
        serde_json::json!({
            "any_stale": false,
            "enforce_freshness": false,
            "error": "schedule.yaml:3:5: groups.g: bad"
        })
    );
    fx.shutdown().await;
}

both!(report_is_cached_briefly);
async fn report_is_cached_briefly(kind: Kind) {
    let fx = Fixture::with(
        kind,
        &[],
        None,
        None,
        ServerOptions {
            health_cache_ttl: Duration::from_millis(500),
            ..ServerOptions::default()
        },
    )
    .await;
    let first = fx.get("/health/").await;
    assert_eq!(first.status(), 503, "no live worker yet");
    assert!(first.headers().get("x-bdc-health-cached").is_none());
    fx.live_worker("host-a:1:aaaaaaaa").await;
    let second = fx.get("/health").await;
    assert_eq!(second.status(), 503, "served from the cache");
    assert_eq!(
        second
            .headers()
            .get("x-bdc-health-cached")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let third = fx.get("/health/").await;
    assert_eq!(third.status(), 200, "recomputed after the TTL");
    assert!(third.headers().get("x-bdc-health-cached").is_none());
    fx.shutdown().await;
}

both!(heartbeat_task_writes_and_removes_its_row);
async fn heartbeat_task_writes_and_removes_its_row(kind: Kind) {
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default())
        .await
        .unwrap();
    storage.migrate().await.unwrap();
    let info = bdc_server::heartbeat::worker_info("serve", "9.9.9");
    let id = info.worker_id.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let handle =
        bdc_server::heartbeat::spawn(storage.clone(), info, Duration::from_millis(50), stop_rx);
    let epoch = chrono::DateTime::UNIX_EPOCH;
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        let live = storage.workers().live_since(epoch).await.unwrap();
        if let Some(w) = live.into_iter().find(|w| w.worker_id == id) {
            break w;
        }
        assert!(Instant::now() < deadline, "heartbeat row never appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(first.role, "serve");
    assert_eq!(first.version, "9.9.9");
    assert_eq!(first.pid, i64::from(std::process::id()));
    // It keeps beating.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let live = storage.workers().live_since(epoch).await.unwrap();
        let w = live.into_iter().find(|w| w.worker_id == id).unwrap();
        if w.last_seen_at > first.last_seen_at {
            break;
        }
        assert!(Instant::now() < deadline, "heartbeat never refreshed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("heartbeat task stops")
        .unwrap();
    let live = storage.workers().live_since(epoch).await.unwrap();
    assert!(live.iter().all(|w| w.worker_id != id), "row removed");
    storage.close().await;
}

both!(metrics_are_rendered_when_a_handle_is_given);
async fn metrics_are_rendered_when_a_handle_is_given(kind: Kind) {
    // Without a handle: 404.
    let fx = Fixture::new(kind, &[("HEALTH_CELERY_MIN_WORKERS", "0")], None).await;
    assert_eq!(fx.get("/metrics").await.status(), 404);
    assert_eq!(fx.get("/nope").await.status(), 404);
    fx.shutdown().await;

    let handle = bdc_server::install_metrics_recorder().unwrap();
    // Idempotent within the process.
    let _again = bdc_server::install_metrics_recorder().unwrap();
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default())
        .await
        .unwrap();
    storage.migrate().await.unwrap();
    let state = AppState {
        storage: storage.clone(),
        config: config(&[("HEALTH_CELERY_MIN_WORKERS", "0")]),
        schedule: None,
        schedule_error: None,
        metrics: Some(handle),
    };
    let fx = Fixture::start(db, storage, state, ServerOptions::default()).await;
    assert_eq!(fx.get("/health/").await.status(), 200);
    let resp = fx.get("/metrics").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain; version=0.0.4")
    );
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("bdc_health_checks_total{status=\"healthy\"}"),
        "{text}"
    );
    assert!(text.contains("bdc_http_requests_total"), "{text}");
    fx.shutdown().await;
}

both!(huge_windows_are_clamped);
async fn huge_windows_are_clamped(kind: Kind) {
    let fx = Fixture::new(
        kind,
        &[
            ("BDC_WORKER_LIVE_SECONDS", "1e15"),
            ("HEALTH_COLLECTOR_STALE_HOURS", "1e300"),
            ("HEALTH_ENFORCE_COLLECTOR_FRESHNESS", "true"),
        ],
        Some(SCHEDULE),
    )
    .await;
    fx.live_worker("host-a:1:aaaaaaaa").await;
    fx.group_success("daily_fresh").await;
    fx.group_success("daily_never").await;
    let (code, body) = fx.health().await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["checks"]["celery_workers"]["responded"], 1);
    assert_eq!(body["checks"]["collector_meta"]["any_stale"], false);
    fx.shutdown().await;
}

both!(extra_checks_add_optional_keys);
async fn extra_checks_add_optional_keys(kind: Kind) {
    let check = bdc_server::ExtraCheck {
        key: "audit_coverage".into(),
        run: Arc::new(|| Box::pin(async { serde_json::json!({"ok": true, "covered": ["t"]}) })),
    };
    let fx = Fixture::with(
        kind,
        &[("HEALTH_CELERY_MIN_WORKERS", "0")],
        None,
        None,
        ServerOptions {
            health_cache_ttl: Duration::ZERO,
            extra_checks: vec![check],
            ..ServerOptions::default()
        },
    )
    .await;
    let (code, body) = fx.health().await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["checks"]["audit_coverage"]["covered"][0], "t");
    for key in [
        "database",
        "celery_workers",
        "collector_groups",
        "collector_meta",
        "pinecone_sync",
    ] {
        assert!(body["checks"].get(key).is_some(), "{key} missing: {body}");
    }
    fx.shutdown().await;
}
