//! `GET /api/search?q=…&source=&kind=&since=&person=&library=&limit=`:
//! the same ranked results as `bdc search --format json`, behind the API
//! bearer token (`BDC_API_TOKEN`).

use std::path::PathBuf;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bdc_storage::Storage;
use serde::Deserialize;
use serde_json::json;

use crate::find::{Filters, FindError, find};

#[derive(Clone)]
struct ApiState {
    storage: Storage,
    workspace: PathBuf,
    token: Option<String>,
}

/// The search API routes, state applied.
pub fn router(storage: Storage, workspace: PathBuf, api_token: Option<String>) -> Router {
    Router::new()
        .route("/api/search", get(search))
        .with_state(ApiState {
            storage,
            workspace,
            token: api_token.filter(|t| !t.is_empty()),
        })
}

#[derive(Deserialize)]
struct Params {
    q: Option<String>,
    source: Option<String>,
    kind: Option<String>,
    since: Option<String>,
    person: Option<String>,
    library: Option<String>,
    limit: Option<usize>,
}

fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(json!({ "error": message.into() }))).into_response()
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

async fn search(
    State(st): State<ApiState>,
    headers: HeaderMap,
    Query(p): Query<Params>,
) -> Response {
    match &st.token {
        Some(t) if bdc_server::bearer_token_matches(&headers, t) => {}
        Some(_) => return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token"),
        None => {
            return error(
                StatusCode::UNAUTHORIZED,
                "BDC_API_TOKEN is not set: the search API refuses every request",
            );
        }
    }
    let Some(q) = nonempty(p.q) else {
        return error(
            StatusCode::BAD_REQUEST,
            "parameter q (the query) is required",
        );
    };
    let since = match nonempty(p.since) {
        None => None,
        Some(s) => match parse_since(&s) {
            Some(t) => Some(t),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("since={s:?}: expected RFC 3339 or YYYY-MM-DD"),
                );
            }
        },
    };
    let filters = Filters {
        source: nonempty(p.source),
        kind: nonempty(p.kind),
        since,
        person: nonempty(p.person),
        library: nonempty(p.library),
        limit: p.limit.unwrap_or(20),
    };
    match find(&st.storage, &st.workspace, &q, &filters).await {
        Ok(hits) => Json(json!({"query": q, "results": hits})).into_response(),
        Err(e @ FindError::Person { .. }) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => {
            tracing::error!(error = %e, "search API");
            error(StatusCode::INTERNAL_SERVER_ERROR, "search failed")
        }
    }
}

/// RFC 3339 or a date (midnight UTC).
pub fn parse_since(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}
