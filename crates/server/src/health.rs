//! `GET /health/`: the Tier A health report (see the crate documentation
//! for the contract).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bdc_schedule::{Group, ScheduleKind};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::{Serialize, Serializer};
use subtle::ConstantTimeEq;

use crate::{AppState, Ctx};

/// How long a computed report is reused by default.
pub const CACHE_TTL: Duration = Duration::from_secs(1);

/// Bound on each database-backed part of the report except the worker
/// query (which is bounded by `HEALTH_CELERY_INSPECT_TIMEOUT`).
pub const DATABASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Header set to `1` on a response served from the cache.
pub const CACHED_HEADER: &str = "x-bdc-health-cached";

/// Message of the dependent checks when the database check failed.
pub const DATABASE_UNAVAILABLE: &str = "database unavailable";

const TIMED_OUT: &str = "timed out";

/// `status` of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// The `/health/` body.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub status: HealthStatus,
    pub checks: Checks,
}

/// `checks` of the report. Field names are Tier A.
#[derive(Debug, Clone, Serialize)]
pub struct Checks {
    pub database: DatabaseCheck,
    pub celery_workers: WorkersCheck,
    pub collector_groups: BTreeMap<String, GroupCheck>,
    pub collector_meta: CollectorMeta,
    pub pinecone_sync: PineconeSyncCheck,
}

/// `checks.database`.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseCheck {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `checks.celery_workers`: live `bdc` processes.
#[derive(Debug, Clone, Serialize)]
pub struct WorkersCheck {
    pub ok: bool,
    pub workers: Vec<String>,
    pub responded: u64,
    pub expected: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One entry of `checks.collector_groups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupCheck {
    #[serde(serialize_with = "iso_opt")]
    pub last_success_at: Option<DateTime<Utc>>,
    /// `None` (JSON null) for groups without an enabled daily task.
    pub stale: Option<bool>,
}

/// `checks.collector_meta`.
#[derive(Debug, Clone, Serialize)]
pub struct CollectorMeta {
    pub any_stale: bool,
    pub enforce_freshness: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// One entry of `checks.pinecone_sync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexSyncCheck {
    #[serde(serialize_with = "iso_opt")]
    pub final_sync_at: Option<DateTime<Utc>>,
}

/// `checks.pinecone_sync`: a map of index name → entry, or the whole
/// object is `{"error": ...}` / `{"skipped": ...}`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum PineconeSyncCheck {
    Indexes(BTreeMap<String, IndexSyncCheck>),
    Error { error: String },
    Skipped { skipped: String },
}

/// ISO 8601 UTC with second precision and a `Z` suffix, or null.
fn iso_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        None => s.serialize_none(),
    }
}

/// Compute the report (uncached) and the HTTP status it maps to.
pub async fn check(state: &AppState) -> (StatusCode, HealthReport) {
    let health = &state.config.health;
    let database = database_check(state).await;
    let report = if database.ok {
        let now = Utc::now();
        let (celery_workers, (collector_groups, collector_meta), pinecone_sync) = tokio::join!(
            workers_check(state, now),
            collector_checks(state, now),
            pinecone_check(state),
        );
        let critical_ok =
            celery_workers.ok && !(collector_meta.enforce_freshness && collector_meta.any_stale);
        HealthReport {
            status: if critical_ok {
                HealthStatus::Healthy
            } else {
                HealthStatus::Unhealthy
            },
            checks: Checks {
                database,
                celery_workers,
                collector_groups,
                collector_meta,
                pinecone_sync,
            },
        }
    } else {
        HealthReport {
            status: HealthStatus::Unhealthy,
            checks: Checks {
                database,
                celery_workers: WorkersCheck {
                    ok: false,
                    workers: Vec::new(),
                    responded: 0,
                    expected: health.min_workers,
                    error: Some(DATABASE_UNAVAILABLE.to_owned()),
                },
                collector_groups: BTreeMap::new(),
                collector_meta: CollectorMeta {
                    any_stale: false,
                    enforce_freshness: health.enforce_collector_freshness,
                    error: state.schedule_error.clone(),
                    skipped: Some(DATABASE_UNAVAILABLE.to_owned()),
                },
                pinecone_sync: PineconeSyncCheck::Skipped {
                    skipped: DATABASE_UNAVAILABLE.to_owned(),
                },
            },
        }
    };
    let code = match report.status {
        HealthStatus::Healthy => StatusCode::OK,
        HealthStatus::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, report)
}

async fn database_check(state: &AppState) -> DatabaseCheck {
    match tokio::time::timeout(DATABASE_TIMEOUT, state.storage.ping()).await {
        Ok(Ok(latency)) => DatabaseCheck {
            ok: true,
            latency_ms: Some(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX)),
            error: None,
        },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health: database check failed");
            DatabaseCheck {
                ok: false,
                latency_ms: None,
                error: Some(e.to_string()),
            }
        }
        Err(_) => {
            tracing::warn!("health: database check timed out");
            DatabaseCheck {
                ok: false,
                latency_ms: None,
                error: Some(TIMED_OUT.to_owned()),
            }
        }
    }
}

/// `now - d`, clamped to the Unix epoch (a bound both databases accept:
/// PostgreSQL rejects chrono's far-past instants).
fn ago(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .map_or(DateTime::UNIX_EPOCH, |t| t.max(DateTime::UNIX_EPOCH))
}

async fn workers_check(state: &AppState, now: DateTime<Utc>) -> WorkersCheck {
    let health = &state.config.health;
    let since = ago(now, health.worker_live_window);
    let expected = health.min_workers;
    let listed = tokio::time::timeout(
        health.inspect_timeout,
        state.storage.workers().live_since(since),
    )
    .await;
    match listed {
        Ok(Ok(live)) => {
            // Only processes that take jobs count: `bdc scheduler` and an
            // HTTP-only `bdc serve` heartbeat too, but run no work.
            let workers: Vec<String> = live
                .into_iter()
                .filter(|w| !NON_WORKER_ROLES.contains(&w.role.as_str()))
                .map(|w| w.worker_id)
                .collect();
            let responded = u64::try_from(workers.len()).unwrap_or(u64::MAX);
            let ok = responded >= u64::from(expected);
            WorkersCheck {
                ok,
                workers,
                responded,
                expected,
                error: (!ok).then(|| {
                    format!("{responded} live bdc worker(s), at least {expected} required")
                }),
            }
        }
        Ok(Err(e)) => WorkersCheck {
            ok: false,
            workers: Vec::new(),
            responded: 0,
            expected,
            error: Some(e.to_string()),
        },
        Err(_) => WorkersCheck {
            ok: false,
            workers: Vec::new(),
            responded: 0,
            expected,
            error: Some(TIMED_OUT.to_owned()),
        },
    }
}

/// Whether the group's freshness is tracked: it has an enabled daily task.
pub fn tracks_freshness(group: &Group) -> bool {
    group
        .tasks
        .iter()
        .any(|t| t.enabled && t.kind == ScheduleKind::Daily)
}

/// `stale` of a group: `None` when not tracked, else whether the last
/// success is missing or older than `stale_after`.
pub fn staleness(
    tracked: bool,
    last_success: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    stale_after: Duration,
) -> Option<bool> {
    if !tracked {
        return None;
    }
    Some(match last_success {
        None => true,
        Some(t) => t < ago(now, stale_after),
    })
}

/// `HEALTH_COLLECTOR_STALE_HOURS` as a duration (saturating).
fn stale_after(hours: f64) -> Duration {
    Duration::try_from_secs_f64(hours * 3600.0).unwrap_or(Duration::MAX)
}

async fn collector_checks(
    state: &AppState,
    now: DateTime<Utc>,
) -> (BTreeMap<String, GroupCheck>, CollectorMeta) {
    let health = &state.config.health;
    let mut meta = CollectorMeta {
        any_stale: false,
        enforce_freshness: health.enforce_collector_freshness,
        error: state.schedule_error.clone(),
        skipped: None,
    };
    let mut groups = BTreeMap::new();
    let Some(schedule) = &state.schedule else {
        return (groups, meta);
    };
    let stale_after = stale_after(health.collector_stale_hours);
    let deadline = tokio::time::Instant::now() + DATABASE_TIMEOUT;
    let runs = state.storage.runs();
    for group in &schedule.groups {
        let tracked = tracks_freshness(group);
        let read = tokio::time::timeout_at(deadline, runs.last_group_success(&group.id)).await;
        let entry = match read {
            Ok(Ok(last)) => GroupCheck {
                last_success_at: last,
                stale: staleness(tracked, last, now, stale_after),
            },
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => TIMED_OUT.to_owned(),
                };
                tracing::warn!(group = %group.id, error = %why, "health: cannot read the group's last success");
                if meta.error.is_none() {
                    meta.error = Some(format!("group {}: {why}", group.id));
                }
                // Fail closed: a tracked group whose freshness is unknown is stale.
                GroupCheck {
                    last_success_at: None,
                    stale: tracked.then_some(true),
                }
            }
        };
        meta.any_stale |= entry.stale == Some(true);
        groups.insert(group.id.clone(), entry);
    }
    (groups, meta)
}

async fn pinecone_check(state: &AppState) -> PineconeSyncCheck {
    match tokio::time::timeout(DATABASE_TIMEOUT, state.storage.index_syncs().list()).await {
        Ok(Ok(syncs)) => PineconeSyncCheck::Indexes(
            syncs
                .into_iter()
                .map(|s| {
                    (
                        s.index_name,
                        IndexSyncCheck {
                            final_sync_at: Some(s.final_sync_at),
                        },
                    )
                })
                .collect(),
        ),
        Ok(Err(e)) => PineconeSyncCheck::Error {
            error: e.to_string(),
        },
        Err(_) => PineconeSyncCheck::Error {
            error: TIMED_OUT.to_owned(),
        },
    }
}

/// A serialized report, as served.
#[derive(Clone)]
struct Rendered {
    at: Instant,
    code: StatusCode,
    status: HealthStatus,
    body: Bytes,
}

/// Single-flight cache of the last rendered report.
#[derive(Default)]
pub(crate) struct Cache {
    slot: tokio::sync::Mutex<Option<Rendered>>,
}

async fn render(state: &AppState, extra: &[crate::ExtraCheck]) -> Rendered {
    let (code, report) = check(state).await;
    let serialized = if extra.is_empty() {
        serde_json::to_vec(&report)
    } else {
        // Optional extra checks (never Tier A keys, never part of `status`).
        let db_ok = report.checks.database.ok;
        let mut values = Vec::with_capacity(extra.len());
        for c in extra {
            let value = if db_ok {
                match tokio::time::timeout(DATABASE_TIMEOUT, (c.run)()).await {
                    Ok(v) => v,
                    Err(_) => serde_json::json!({"error": "timed out"}),
                }
            } else {
                serde_json::json!({"skipped": DATABASE_UNAVAILABLE})
            };
            values.push((c.key.clone(), value));
        }
        serde_json::to_value(&report).and_then(|mut v| {
            if let Some(checks) = v.get_mut("checks").and_then(|c| c.as_object_mut()) {
                for (key, value) in values {
                    checks.entry(key).or_insert(value);
                }
            }
            serde_json::to_vec(&v)
        })
    };
    let (code, body) = match serialized {
        Ok(body) => (code, Bytes::from(body)),
        Err(e) => {
            tracing::error!(error = %e, "health: cannot serialize the report");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Bytes::from_static(br#"{"status":"unhealthy","checks":{}}"#),
            )
        }
    };
    Rendered {
        at: Instant::now(),
        code,
        status: report.status,
        body,
    }
}

impl Cache {
    /// The report, and whether it came from the cache.
    async fn get(
        &self,
        state: &AppState,
        ttl: Duration,
        extra: &[crate::ExtraCheck],
    ) -> (Rendered, bool) {
        if ttl.is_zero() {
            return (render(state, extra).await, false);
        }
        // Held across the computation: concurrent requests wait for it and
        // then share its result.
        let mut slot = self.slot.lock().await;
        if let Some(cached) = slot.as_ref()
            && cached.at.elapsed() < ttl
        {
            return (cached.clone(), true);
        }
        let fresh = render(state, extra).await;
        *slot = Some(fresh.clone());
        (fresh, false)
    }
}

pub(crate) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/health/", get(health_handler))
        .route("/health", get(health_handler))
}

/// Whether the `Authorization` header carries `Bearer <expected>`.
/// Heartbeat roles of processes that run no jobs (not counted as workers).
pub const NON_WORKER_ROLES: &[&str] = &["scheduler", "serve-http"];

/// Whether `headers` carry `Authorization: Bearer <expected>` (scheme
/// case-insensitive, token compared in constant time). Shared by every API.
pub fn authorized(headers: &HeaderMap, expected: &str) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    let Some(space) = value.iter().position(|b| *b == b' ') else {
        return false;
    };
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return false;
    }
    let token = rest.trim_ascii();
    token.ct_eq(expected.as_bytes()).into()
}

fn unauthorized() -> Response {
    let body = serde_json::json!({
        "status": "unauthorized",
        "detail": "missing or invalid bearer token: send Authorization: Bearer <HEALTH_CHECK_TOKEN>",
    });
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        axum::Json(body),
    )
        .into_response()
}

async fn health_handler(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    if let Some(token) = &ctx.app.config.health.check_token
        && !authorized(&headers, token.expose())
    {
        metrics::counter!("bdc_health_checks_total", "status" => "unauthorized").increment(1);
        return unauthorized();
    }
    let (rendered, cached) = ctx
        .health_cache
        .get(
            &ctx.app,
            ctx.options.health_cache_ttl,
            &ctx.options.extra_checks,
        )
        .await;
    metrics::counter!("bdc_health_checks_total", "status" => rendered.status.as_str()).increment(1);
    let mut response = (
        rendered.code,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        rendered.body,
    )
        .into_response();
    if cached {
        response.headers_mut().insert(
            HeaderName::from_static(CACHED_HEADER),
            HeaderValue::from_static("1"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn staleness_rules() {
        let now = t("2026-11-24T12:00:00Z");
        let day = Duration::from_secs(26 * 3600);
        assert_eq!(staleness(false, None, now, day), None);
        assert_eq!(staleness(false, Some(now), now, day), None);
        assert_eq!(staleness(true, None, now, day), Some(true));
        assert_eq!(
            staleness(true, Some(t("2026-11-24T02:00:03Z")), now, day),
            Some(false)
        );
        assert_eq!(
            staleness(true, Some(t("2026-11-23T09:59:59Z")), now, day),
            Some(true)
        );
        assert_eq!(
            staleness(true, Some(t("2000-01-01T00:00:00Z")), now, Duration::MAX),
            Some(false)
        );
        assert_eq!(stale_after(1e300), Duration::MAX);
        assert_eq!(ago(now, Duration::MAX), DateTime::UNIX_EPOCH);
        assert_eq!(
            ago(now, Duration::from_secs(1_000_000_000_000)),
            DateTime::UNIX_EPOCH
        );
        assert_eq!(
            ago(now, Duration::from_secs(3600)),
            t("2026-11-24T11:00:00Z")
        );
        assert_eq!(stale_after(0.5), Duration::from_secs(1800));
    }

    #[test]
    fn daily_tracking_needs_an_enabled_daily_task() {
        let yaml = "groups:\n  a:\n    tasks:\n      - command: x\n        schedule: daily\n  \
                    b:\n    tasks:\n      - command: x\n        schedule: daily\n        enabled: false\n      \
                    - command: y\n        schedule: weekly\n        on: monday\n";
        let s = bdc_schedule::Schedule::parse(yaml, "t.yaml").unwrap();
        assert!(tracks_freshness(s.group("a").unwrap()));
        assert!(!tracks_freshness(s.group("b").unwrap()));
    }

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert!(!authorized(&h, "tok"));
        for (value, ok) in [
            ("Bearer tok", true),
            ("bearer tok", true),
            ("BEARER  tok ", true),
            ("Bearer tok2", false),
            ("Bearer to", false),
            ("Basic tok", false),
            ("Bearer", false),
            ("tok", false),
        ] {
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(authorized(&h, "tok"), ok, "{value}");
        }
    }

    #[test]
    fn report_serializes_with_tier_a_keys() {
        let report = HealthReport {
            status: HealthStatus::Healthy,
            checks: Checks {
                database: DatabaseCheck {
                    ok: true,
                    latency_ms: Some(3),
                    error: None,
                },
                celery_workers: WorkersCheck {
                    ok: true,
                    workers: vec!["h:1:abcd".into()],
                    responded: 1,
                    expected: 1,
                    error: None,
                },
                collector_groups: BTreeMap::from([
                    (
                        "g".to_owned(),
                        GroupCheck {
                            last_success_at: Some(t("2026-11-24T02:00:03.123456Z")),
                            stale: Some(false),
                        },
                    ),
                    (
                        "w".to_owned(),
                        GroupCheck {
                            last_success_at: None,
                            stale: None,
                        },
                    ),
                ]),
                collector_meta: CollectorMeta {
                    any_stale: false,
                    enforce_freshness: false,
                    error: None,
                    skipped: None,
                },
                pinecone_sync: PineconeSyncCheck::Skipped {
                    skipped: DATABASE_UNAVAILABLE.into(),
                },
            },
        };
        let v = serde_json::to_value(&report).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "status": "healthy",
                "checks": {
                    "database": {"ok": true, "latency_ms": 3},
                    "celery_workers": {"ok": true, "workers": ["h:1:abcd"], "responded": 1, "expected": 1},
                    "collector_groups": {
                        "g": {"last_success_at": "2026-11-24T02:00:03Z", "stale": false},
                        "w": {"last_success_at": null, "stale": null}
                    },
                    "collector_meta": {"any_stale": false, "enforce_freshness": false},
                    "pinecone_sync": {"skipped": "database unavailable"}
                }
            })
        );
    }
}
