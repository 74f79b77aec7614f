//! HTTP API of greenness tracking (mounted by `bdc serve`):
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /api/greenness/queues/{queue}/ingest` | `{"id", "commit_uri", "created"}` |
//! | `GET /api/greenness/queues/{queue}` | status: last green, recent requests, projects |
//! | `GET /api/greenness/queues/{queue}/last-green[?project=P]` | `{"commit_uri", "seq"}` or 404 |
//! | `GET /api/greenness/queues/{queue}/commits/{commit}[?project=P]` | the verdict (`green`, `status`, `degree`, `record`) |
//! | `GET /api/greenness/queues/{queue}/history[?project=P&limit=N]` | records, newest first |
//!
//! Every route needs `Authorization: Bearer $BDC_API_TOKEN`; with no token
//! configured every request is refused (401): fail closed.
//!
//! Also here: [`spawn_background`], the poller (one per queue, at its
//! `poll_interval_seconds`) and the stage worker run by `bdc serve`.

use std::time::Duration;

use axum::Json;
pub use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::engine::Pipeline;
use crate::model::Scope;
use crate::service::Gate;
use crate::store::SqlStore;
use crate::traits::StoreError;

#[derive(Clone)]
struct ApiState {
    store: SqlStore,
    pipeline: Option<Pipeline>,
    token: Option<String>,
}

/// The greenness routes, state applied. `pipeline` is None when no
/// greenness configuration is loaded (queries work; ingest answers 503).
pub fn router(store: SqlStore, pipeline: Option<Pipeline>, api_token: Option<String>) -> Router {
    let state = ApiState {
        store,
        pipeline,
        token: api_token.filter(|t| !t.is_empty()),
    };
    Router::new()
        .route("/api/greenness/queues/{queue}/ingest", post(ingest))
        .route("/api/greenness/queues/{queue}", get(status))
        .route("/api/greenness/queues/{queue}/last-green", get(last_green))
        .route(
            "/api/greenness/queues/{queue}/commits/{commit}",
            get(commit),
        )
        .route("/api/greenness/queues/{queue}/history", get(history))
        .with_state(state)
}

fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(json!({ "error": message.into() }))).into_response()
}

fn authorize(state: &ApiState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    match &state.token {
        Some(t) if bdc_server::bearer_token_matches(headers, t) => Ok(()),
        Some(_) => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
        ))),
        None => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "BDC_API_TOKEN is not set: the greenness API refuses every request",
        ))),
    }
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::UnknownQueue(q) => error(StatusCode::NOT_FOUND, format!("unknown queue {q:?}")),
        e @ StoreError::AmbiguousCommit { .. } => error(StatusCode::CONFLICT, e.to_string()),
        other => {
            tracing::error!(error = %other, "greenness API: store error");
            error(StatusCode::INTERNAL_SERVER_ERROR, "database error")
        }
    }
}

#[derive(Deserialize)]
struct ProjectQuery {
    project: Option<String>,
    limit: Option<i64>,
}

async fn ingest(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(queue): Path<String>,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return *r;
    }
    let Some(p) = &state.pipeline else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no greenness configuration loaded (set BDC_GREENNESS_YAML)",
        );
    };
    // The write is the HTTP caller's (audit actor), not the serving process's.
    let mut p = p.clone();
    p.store = std::sync::Arc::new(state.store.with_actor(&bdc_core::Actor::http("api-token")));
    match p.ingest(&queue).await {
        Ok(out) => (
            if out.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            Json(json!({
                "id": out.request.id,
                "commit_uri": out.request.commit_uri,
                "created": out.created,
            })),
        )
            .into_response(),
        Err(crate::engine::PipelineError::UnknownQueue(q)) => {
            error(StatusCode::NOT_FOUND, format!("unknown queue {q:?}"))
        }
        Err(e) => {
            tracing::error!(error = %e, queue, "greenness API: ingest failed");
            error(StatusCode::BAD_GATEWAY, e.to_string())
        }
    }
}

async fn status(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(queue): Path<String>,
    Query(q): Query<ProjectQuery>,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return *r;
    }
    let gate = Gate {
        store: &state.store,
    };
    match gate
        .status(&queue, q.limit.unwrap_or(20).clamp(1, 500))
        .await
    {
        Ok(s) => Json(s).into_response(),
        Err(e) => store_error(e),
    }
}

async fn last_green(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(queue): Path<String>,
    Query(q): Query<ProjectQuery>,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return *r;
    }
    let gate = Gate {
        store: &state.store,
    };
    match gate.last_green(&queue, q.project.as_deref()).await {
        Ok(Some(g)) => Json(g).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no green commit recorded"),
        Err(e) => store_error(e),
    }
}

async fn commit(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((queue, commit)): Path<(String, String)>,
    Query(q): Query<ProjectQuery>,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return *r;
    }
    let gate = Gate {
        store: &state.store,
    };
    match gate.verdict(&queue, &commit, q.project.as_deref()).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => store_error(e),
    }
}

async fn history(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(queue): Path<String>,
    Query(q): Query<ProjectQuery>,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return *r;
    }
    let scope = q.project.map(Scope::Project);
    match state
        .store
        .history(&queue, scope.as_ref(), q.limit.unwrap_or(50).clamp(1, 1000))
        .await
    {
        Ok(h) => Json(h).into_response(),
        Err(e) => store_error(e),
    }
}

/// Start the pollers (one per queue) and one stage worker; they stop when
/// `stop` turns true.
pub fn spawn_background(
    pipeline: Pipeline,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut handles = Vec::new();
    for q in pipeline.config.queues.clone() {
        let p = pipeline.clone();
        let mut stop = stop.clone();
        handles.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(q.poll_interval_seconds));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = p.ingest(&q.name).await {
                            tracing::warn!(queue = %q.name, error = %e, "greenness poller: ingest failed");
                        }
                    }
                    _ = stop.changed() => break,
                }
                if *stop.borrow() {
                    break;
                }
            }
        }));
    }
    let p = pipeline;
    let mut stop = stop;
    handles.push(tokio::spawn(async move {
        loop {
            if *stop.borrow() {
                break;
            }
            let idle = match p.step().await {
                Ok(Some(_)) => false,
                Ok(None) => true,
                Err(e) => {
                    tracing::error!(error = %e, "greenness worker: step failed");
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }));
    handles
}
