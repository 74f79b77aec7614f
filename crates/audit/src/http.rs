//! The audit HTTP API (merged into `bdc serve` via
//! `ServerOptions::extra_routes`):
//!
//! | route | what |
//! | --- | --- |
//! | `GET /api/audit/timeline?table=&pk=&actor_type=&actor_id=&action=&since=&until=&limit=&cursor=` | a timeline page `{"items": [...], "next_cursor": N|null}` |
//! | `GET /api/audit/transactions/{id}/changes` | one transaction with its actions and changes; 404 when unknown |
//! | `GET /api/audit/as-of?table=&at=&pk=` | one row as it was at `at` (JSON, with its state) |
//! | `GET /api/audit/as-of?table=&at=[&where=COLUMN=VALUE]` | the whole table as it was (NDJSON) |
//! | `GET /api/audit/history?table=&pk=` | every version of one row with the diffs between them |
//!
//! Both need `Authorization: Bearer <BDC_API_TOKEN>`; without the header,
//! with a wrong token, or when `BDC_API_TOKEN` is not set (fail closed) the
//! answer is 401 with `WWW-Authenticate: Bearer`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bdc_storage::Storage;

use crate::query::{TimelineFilter, timeline, transaction_changes};
use crate::{AuditConfig, AuditError, triggers};

/// Name of the env var holding the API bearer token.
pub const TOKEN_ENV: &str = "BDC_API_TOKEN";

struct ApiState {
    storage: Storage,
    token: Option<String>,
}

/// The audit API router with its state applied. `token`: the expected
/// bearer token (`None` = every request is refused).
pub fn router(storage: Storage, token: Option<String>) -> Router {
    let state = Arc::new(ApiState {
        storage,
        token: token.filter(|t| !t.is_empty()),
    });
    Router::new()
        .route("/api/audit/timeline", get(timeline_handler))
        .route("/api/audit/transactions/{id}/changes", get(changes_handler))
        .route("/api/audit/as-of", get(as_of_handler))
        .route("/api/audit/history", get(history_handler))
        .with_state(state)
}

fn json_error(status: StatusCode, detail: String) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(serde_json::json!({"status": "error", "detail": detail})),
    )
        .into_response()
}

/// `Some(401 response)` when the request is not authorized.
fn check_auth(state: &ApiState, headers: &HeaderMap) -> Option<Response> {
    let ok = state
        .token
        .as_deref()
        .is_some_and(|t| bdc_server::bearer_token_matches(headers, t));
    if ok {
        return None;
    }
    let detail = if state.token.is_none() {
        format!("the audit API is disabled: set {TOKEN_ENV}")
    } else {
        format!("missing or invalid bearer token: send Authorization: Bearer <{TOKEN_ENV}>")
    };
    Some(
        (
            StatusCode::UNAUTHORIZED,
            [
                (header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            axum::Json(serde_json::json!({"status": "unauthorized", "detail": detail})),
        )
            .into_response(),
    )
}

fn error_response(e: AuditError) -> Response {
    match e {
        AuditError::InvalidFilter { .. }
        | AuditError::NoSuchTable { .. }
        | AuditError::NoPrimaryKey { .. } => json_error(StatusCode::BAD_REQUEST, e.to_string()),
        other => {
            tracing::error!(error = %other, "audit API failed");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
        }
    }
}

async fn timeline_handler(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    query: Result<Query<TimelineFilter>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(r) = check_auth(&state, &headers) {
        return r;
    }
    let Query(filter) = match query {
        Ok(q) => q,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match timeline(&state.storage, &filter).await {
        Ok(page) => (
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            axum::Json(page),
        )
            .into_response(),
        Err(e) => error_response(e),
    }
}

async fn changes_handler(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = check_auth(&state, &headers) {
        return r;
    }
    let Ok(id) = id.parse::<i64>() else {
        return json_error(
            StatusCode::BAD_REQUEST,
            format!("transaction id {id:?} is not an integer"),
        );
    };
    match transaction_changes(&state.storage, id).await {
        Ok(Some(detail)) => (
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            axum::Json(detail),
        )
            .into_response(),
        Ok(None) => json_error(StatusCode::NOT_FOUND, format!("no audit transaction {id}")),
        Err(e) => error_response(e),
    }
}

/// Query of `/api/audit/as-of` and `/api/audit/history`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsOfQuery {
    pub table: String,
    pub pk: Option<String>,
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(rename = "where")]
    pub where_: Option<String>,
    pub limit: Option<u64>,
}

async fn as_of_handler(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    query: Result<Query<AsOfQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(r) = check_auth(&state, &headers) {
        return r;
    }
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let Some(at) = q.at else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "at (RFC 3339 time) is required".into(),
        );
    };
    let no_store = [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))];
    if let Some(pk) = &q.pk {
        return match crate::asof::row_as_of(&state.storage, &q.table, pk, at).await {
            Ok(r) => (no_store, axum::Json(r)).into_response(),
            Err(e) => error_response(e),
        };
    }
    let filter = match &q.where_ {
        Some(w) => match w.split_once('=') {
            Some((c, v)) => Some(crate::asof::ColumnFilter {
                column: c.to_owned(),
                value: v.to_owned(),
            }),
            None => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    format!("where {w:?}: expected COLUMN=VALUE"),
                );
            }
        },
        None => None,
    };
    let mut body = Vec::new();
    match crate::asof::table_as_of(
        &state.storage,
        &q.table,
        at,
        filter.as_ref(),
        crate::query::ExportFormat::Ndjson,
        &mut body,
    )
    .await
    {
        Ok(_) => (
            [
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-ndjson"),
                ),
            ],
            body,
        )
            .into_response(),
        Err(e) => error_response(e),
    }
}

async fn history_handler(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    query: Result<Query<AsOfQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(r) = check_auth(&state, &headers) {
        return r;
    }
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let Some(pk) = &q.pk else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "pk (JSON object) is required".into(),
        );
    };
    match crate::asof::history(&state.storage, &q.table, pk, q.limit.unwrap_or(1000)).await {
        Ok(v) => (
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            axum::Json(serde_json::json!({"versions": v})),
        )
            .into_response(),
        Err(e) => error_response(e),
    }
}

/// The `audit_coverage` check for `/health/`: covered / uncovered tables
/// among the configured ones (never makes the report unhealthy).
pub async fn coverage_check(storage: &Storage, cfg: &AuditConfig) -> serde_json::Value {
    let mut tables = cfg.covered_tables();
    tables.extend(cfg.expected_tables.iter().cloned());
    tables.sort();
    tables.dedup();
    match triggers::verify(storage, cfg, &tables).await {
        Ok(list) => {
            let (covered, uncovered): (Vec<_>, Vec<_>) =
                list.into_iter().partition(|(_, c)| c.is_covered());
            serde_json::json!({
                "ok": uncovered.is_empty(),
                "covered": covered.into_iter().map(|(t, _)| t).collect::<Vec<_>>(),
                "uncovered": uncovered.into_iter().map(|(t, c)| serde_json::json!({"table": t, "coverage": c})).collect::<Vec<_>>(),
            })
        }
        Err(e) => serde_json::json!({"ok": false, "error": e.to_string()}),
    }
}
