//! The HTTP server of `bdc serve` (axum).
//!
//! Routes:
//!
//! | route | what |
//! | --- | --- |
//! | `GET /health/` (and `/health`) | The health report, a Tier A contract (below) |
//! | `GET /metrics` | Prometheus text exposition (`text/plain; version=0.0.4`); 404 when no recorder handle was given |
//!
//! Later features add their routes as modules of this crate that merge a
//! `Router<Ctx>` into [`router`]; every request goes through one
//! middleware that opens a `http_request` tracing span (method, path) and
//! logs the status and latency.
//!
//! # `GET /health/` contract (Tier A)
//!
//! The JSON keys below are relied on by existing monitors: they are never
//! renamed or removed; new optional keys may be added.
//!
//! ```json
//! {"status": "healthy",
//!  "checks": {
//!    "database": {"ok": true, "latency_ms": 3},
//!    "celery_workers": {"ok": true, "workers": ["host:4242:1a2b3c4d"], "responded": 1, "expected": 1},
//!    "collector_groups": {"daily_github": {"last_success_at": "2026-11-24T02:00:03Z", "stale": false},
//!                         "weekly_papers": {"last_success_at": null, "stale": null}},
//!    "collector_meta": {"any_stale": false, "enforce_freshness": false},
//!    "pinecone_sync": {"wg21-papers": {"final_sync_at": "2026-11-24T02:10:00Z"}}}}
//! ```
//!
//! - `status`: `healthy` (HTTP 200) or `unhealthy` (HTTP 503). Unhealthy
//!   when a critical check fails: `database.ok` is false, `celery_workers.ok`
//!   is false, or `HEALTH_ENFORCE_COLLECTOR_FRESHNESS` is true and
//!   `collector_meta.any_stale` is true. Nothing else makes it unhealthy.
//! - `database`: a round-trip query (`SELECT 1`) on the configured database,
//!   bounded by 5 s ([`health::DATABASE_TIMEOUT`]). `ok` (bool); on success
//!   `latency_ms` (integer milliseconds); on failure `error` (string,
//!   `"timed out"` on timeout).
//! - `celery_workers`: the live `bdc` processes that run jobs (`bdc serve`
//!   with a worker, `bdc worker`; roles `scheduler` and `serve-http` are not
//!   counted), i.e. heartbeat rows newer than
//!   `BDC_WORKER_LIVE_SECONDS` (default 30 s). `workers` = their ids
//!   (`hostname:pid:8-hex`, sorted), `responded` = how many, `expected` =
//!   `HEALTH_CELERY_MIN_WORKERS` (default 1); `ok` when `responded >=
//!   expected`. The query is bounded by `HEALTH_CELERY_INSPECT_TIMEOUT`
//!   (default 2 s); on timeout `ok` is false and `error` is `"timed out"`;
//!   on any failure `error` says why (also when `responded < expected`).
//! - `collector_groups`: one entry per group of the schedule YAML that
//!   `bdc serve` loaded (sorted by id; `{}` when there is no schedule file, it
//!   failed to load, or the database check failed). `last_success_at`: when
//!   the group last finished a `run-scheduled` run in which no task failed
//!   (ISO 8601 UTC, second precision, `Z` suffix), or null. `stale`: null for
//!   a group without an enabled `daily` task; otherwise true when
//!   `last_success_at` is null or older than `HEALTH_COLLECTOR_STALE_HOURS`
//!   (default 26), else false. If the success time of a group cannot be read
//!   (query error or 5 s timeout) its `last_success_at` is null and a daily
//!   group counts as stale (fail closed), and `collector_meta.error` says why.
//! - `collector_meta`: `any_stale` (some `stale` is true),
//!   `enforce_freshness` (`HEALTH_ENFORCE_COLLECTOR_FRESHNESS`); optional
//!   `error` (the schedule failed to load, or a group query failed);
//!   optional `skipped` = `"database unavailable"` when the database check
//!   failed.
//! - `pinecone_sync`: index name → `{"final_sync_at": ISO 8601 or null}` for
//!   every search/vector index a collector recorded a completed sync of.
//!   The whole object is `{"error": "..."}` when the query failed (5 s
//!   bound) and `{"skipped": "database unavailable"}` when the database
//!   check failed. Not critical.
//! - Optional extra keys ([`ServerOptions::extra_checks`], e.g.
//!   `audit_coverage` from the audit trail) may appear in `checks`; they
//!   never change `status` and are `{"skipped": "database unavailable"}`
//!   when the database check fails.
//! - When the database check fails, the dependent checks are not run:
//!   `celery_workers` is `{"ok": false, "workers": [], "responded": 0,
//!   "expected": N, "error": "database unavailable"}`, `collector_groups` is
//!   `{}`, `collector_meta.skipped` and `pinecone_sync.skipped` are
//!   `"database unavailable"`.
//! - Auth: when `HEALTH_CHECK_TOKEN` is set, requests must send
//!   `Authorization: Bearer <token>` (scheme case-insensitive; token compared
//!   in constant time); otherwise HTTP 401 with
//!   `{"status": "unauthorized", "detail": "..."}` and
//!   `WWW-Authenticate: Bearer`. Without a token the endpoint is open.
//! - Caching: the computed report is reused for 1 s
//!   ([`health::CACHE_TTL`], [`ServerOptions::health_cache_ttl`]); concurrent
//!   requests wait for one computation instead of each querying the
//!   database. A response served from the cache carries the header
//!   `x-bdc-health-cached: 1`. Responses carry `Cache-Control: no-store`.
//!
//! # Metrics
//!
//! [`install_metrics_recorder`] installs the global `metrics` recorder
//! (no listener of its own); `GET /metrics` renders it. This crate records
//! `bdc_health_checks_total{status="healthy"|"unhealthy"|"unauthorized"}`
//! (one per `/health/` response, cached or not),
//! `bdc_http_requests_total{method,status}` and
//! `bdc_http_request_duration_seconds{method}`.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bdc_config::Config;
use bdc_schedule::Schedule;
use bdc_storage::Storage;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;

pub mod health;
pub mod heartbeat;

pub use health::authorized as bearer_token_matches;

/// Everything the handlers need. Built by the caller (`bdc serve`).
#[derive(Clone)]
pub struct AppState {
    pub storage: Storage,
    pub config: Arc<Config>,
    /// The schedule YAML, loaded by the caller; `None` if there is no file
    /// or it failed to load.
    pub schedule: Option<Arc<Schedule>>,
    /// Why the schedule failed to load (reported in `collector_meta.error`).
    pub schedule_error: Option<String>,
    /// The Prometheus handle rendered by `GET /metrics`; `None` = 404.
    pub metrics: Option<PrometheusHandle>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("backend", &self.storage.backend())
            .field(
                "schedule_groups",
                &self.schedule.as_ref().map(|s| s.groups.len()),
            )
            .field("schedule_error", &self.schedule_error)
            .field("metrics", &self.metrics.is_some())
            .finish_non_exhaustive()
    }
}

/// Server tuning beyond [`AppState`].
#[derive(Clone)]
pub struct ServerOptions {
    /// How long a computed `/health/` report is reused (zero = never).
    pub health_cache_ttl: Duration,
    /// Routes contributed by other crates (audit API, greenness API, ...),
    /// each with its state already applied. The binary composes them; this
    /// crate does not depend on the domains. They get the same request
    /// tracing as the built-in routes.
    pub extra_routes: Vec<Router>,
    /// Optional extra `/health/` checks contributed by other crates (e.g.
    /// the audit trail's `audit_coverage`), each added under its own key in
    /// `checks`. Never part of `status`, never replaces a Tier A key, and
    /// skipped (`{"skipped": "database unavailable"}`) when the database
    /// check fails.
    pub extra_checks: Vec<ExtraCheck>,
}

/// An extra `/health/` check: its key in `checks` and a function computing
/// its JSON value.
#[derive(Clone)]
pub struct ExtraCheck {
    pub key: String,
    #[allow(clippy::type_complexity)]
    pub run: Arc<
        dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = serde_json::Value> + Send>> + Send + Sync,
    >,
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("health_cache_ttl", &self.health_cache_ttl)
            .field("extra_routes", &self.extra_routes.len())
            .field(
                "extra_checks",
                &self.extra_checks.iter().map(|c| &c.key).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            health_cache_ttl: health::CACHE_TTL,
            extra_routes: Vec::new(),
            extra_checks: Vec::new(),
        }
    }
}

/// Errors of the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("HTTP server I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot install the Prometheus metrics recorder: {0}")]
    Metrics(String),
}

/// Shared state of the router (crate-internal; route modules use it).
pub(crate) struct ServerContext {
    pub(crate) app: AppState,
    pub(crate) options: ServerOptions,
    pub(crate) health_cache: health::Cache,
}

pub(crate) type Ctx = Arc<ServerContext>;

/// The router with default [`ServerOptions`].
pub fn router(state: AppState) -> Router {
    router_with_options(state, ServerOptions::default())
}

/// The router of `bdc serve`.
pub fn router_with_options(state: AppState, options: ServerOptions) -> Router {
    let mut options = options;
    let extra = std::mem::take(&mut options.extra_routes);
    let ctx: Ctx = Arc::new(ServerContext {
        app: state,
        options,
        health_cache: health::Cache::default(),
    });
    let mut router: Router = Router::new()
        .merge(health::routes())
        .route("/metrics", get(metrics_handler))
        .with_state(ctx);
    for r in extra {
        router = router.merge(r);
    }
    router.layer(axum::middleware::from_fn(trace_requests))
}

/// Serve until `shutdown` resolves, then finish in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve_with_options(listener, state, ServerOptions::default(), shutdown).await
}

/// [`serve`] with explicit [`ServerOptions`].
pub async fn serve_with_options(
    listener: tokio::net::TcpListener,
    state: AppState,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    axum::serve(listener, router_with_options(state, options))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

static RECORDER: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Buckets (seconds) of `bdc_http_request_duration_seconds`.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Install the global Prometheus recorder (no HTTP listener: `GET
/// /metrics` renders it). Idempotent within a process: a second call
/// returns the handle installed by the first. Fails when another recorder
/// was installed by someone else.
pub fn install_metrics_recorder() -> Result<PrometheusHandle, ServerError> {
    let mut slot = RECORDER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(handle) = slot.as_ref() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("bdc_http_request_duration_seconds".into()),
            LATENCY_BUCKETS,
        )
        .map_err(|e| ServerError::Metrics(e.to_string()))?
        .install_recorder()
        .map_err(|e| ServerError::Metrics(e.to_string()))?;
    metrics::describe_counter!(
        "bdc_health_checks_total",
        "GET /health/ responses by status (healthy, unhealthy, unauthorized)"
    );
    metrics::describe_counter!(
        "bdc_http_requests_total",
        "HTTP requests served, by method and status code"
    );
    metrics::describe_histogram!(
        "bdc_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency, by method"
    );
    *slot = Some(handle.clone());
    Ok(handle)
}

async fn metrics_handler(State(ctx): State<Ctx>) -> Response {
    match &ctx.app.metrics {
        Some(handle) => {
            handle.run_upkeep();
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4"),
                )],
                handle.render(),
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response(),
    }
}

/// A bounded label for the request method.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Request span + access log + HTTP metrics.
async fn trace_requests(req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("http_request", method, path = %path);
    let start = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if response.status().is_server_error() {
            tracing::warn!(status, latency_ms, "request served");
        } else {
            tracing::info!(status, latency_ms, "request served");
        }
    });
    metrics::counter!("bdc_http_requests_total", "method" => method, "status" => status.to_string())
        .increment(1);
    metrics::histogram!("bdc_http_request_duration_seconds", "method" => method)
        .record(elapsed.as_secs_f64());
    response
}
