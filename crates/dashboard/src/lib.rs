//! The web dashboard: server-rendered HTML (askama templates compiled into
//! the binary; no JavaScript build step).
//!
//! | page | what |
//! | --- | --- |
//! | `/dashboard/` | Every collector: availability, last run, status, counts, last success, freshness; schedule groups with staleness |
//! | `/dashboard/runs` | Run history with failures and their categories; filters: collector, status, limit |
//! | `/dashboard/jobs` | The durable job queue: depth, dead jobs, last errors; filter: status |
//! | `/dashboard/{section}` | Pages contributed by other crates through [`Section`] (greenness per queue and project, audit timeline, library usage) |
//! | `/dashboard/{section}/{sub…}` | A section's sub-pages ([`Section::render_sub`], e.g. `/dashboard/usage/<library>`) |
//!
//! Auth is the APIs' auth: the bearer token `BDC_API_TOKEN`, sent as an
//! `Authorization: Bearer` header or, for browsers, as the HttpOnly
//! `bdc_token` cookie set by signing in at `/dashboard/login`. Without a
//! configured token the dashboard refuses every request (fail closed).

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use bdc_config::Config;
use bdc_jobs::{JobQueue, JobStatus};
use bdc_schedule::{Schedule, ScheduleKind};
use bdc_storage::Storage;
use bdc_storage::runs::{RunFilter, RunRecord, RunStatus};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use subtle::ConstantTimeEq;

pub mod svg;

/// A page contributed by another crate (e.g. greenness, audit). The
/// fragment it returns is inserted as-is: implementors escape their data
/// (see [`escape`]).
#[async_trait::async_trait]
pub trait Section: Send + Sync {
    /// URL segment: the page is `/dashboard/<path>`.
    fn path(&self) -> &'static str;
    /// Navigation label.
    fn label(&self) -> &'static str;
    /// Render the page body for the query parameters (filters).
    async fn render(&self, query: &HashMap<String, String>) -> Result<String, String>;
    /// Render a sub-page `/dashboard/<path>/<sub>` (`sub` may contain `/`):
    /// `Ok(None)` answers 404 (the default: a section without sub-pages).
    /// The `String` pair is (heading, body fragment).
    async fn render_sub(
        &self,
        _sub: &str,
        _query: &HashMap<String, String>,
    ) -> Result<Option<(String, String)>, String> {
        Ok(None)
    }
}

/// HTML-escape text for [`Section`] fragments.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// What the dashboard reads.
#[derive(Clone)]
pub struct DashboardState {
    pub storage: Storage,
    pub config: Arc<Config>,
    pub schedule: Option<Arc<Schedule>>,
    /// Collector names this build provides.
    pub available: Vec<&'static str>,
    pub sections: Vec<Arc<dyn Section>>,
    pub version: String,
}

type St = Arc<DashboardState>;

/// The dashboard's routes, with state applied (merge into the server via
/// `ServerOptions::extra_routes`).
pub fn router(state: DashboardState) -> Router {
    let st: St = Arc::new(state);
    let protected = Router::new()
        .route("/dashboard/", get(collectors_page))
        .route("/dashboard/runs", get(runs_page))
        .route("/dashboard/jobs", get(jobs_page))
        .route("/dashboard/{section}", get(section_page))
        .route("/dashboard/{section}/{*sub}", get(section_sub_page))
        .layer(axum::middleware::from_fn_with_state(
            st.clone(),
            require_token,
        ));
    Router::new()
        .route(
            "/dashboard",
            get(|| async { Redirect::permanent("/dashboard/") }),
        )
        .route("/dashboard/login", get(login_form).post(login))
        .route("/dashboard/logout", get(logout))
        .merge(protected)
        .with_state(st)
}

const COOKIE: &str = "bdc_token";

/// The cookie carries a value derived from the token, never the API token
/// itself (which also authorizes the write APIs).
fn session_value(token: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"bdc-dashboard-session\0");
    h.update(token.as_bytes());
    hex::encode(h.finalize())
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

fn token_ok(st: &DashboardState, headers: &HeaderMap) -> bool {
    let Some(expected) = st.config.api_token.as_ref() else {
        return false;
    };
    if bdc_server::bearer_token_matches(headers, expected.expose()) {
        return true;
    }
    let session = session_value(expected.expose());
    cookie_token(headers).is_some_and(|t| bool::from(t.as_bytes().ct_eq(session.as_bytes())))
}

async fn require_token(State(st): State<St>, req: Request, next: Next) -> Response {
    if token_ok(&st, req.headers()) {
        return next.run(req).await;
    }
    if st.config.api_token.is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            "the dashboard is disabled: set BDC_API_TOKEN to enable it",
        )
            .into_response();
    }
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html {
        Redirect::to("/dashboard/login").into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "missing or invalid bearer token",
        )
            .into_response()
    }
}

fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a dashboard page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "rendering failed").into_response()
        }
    }
}

fn db_error(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "dashboard query failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("database error: {e}"),
    )
        .into_response()
}

fn fmt_time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "—".into())
}

fn counts_text(counts: &std::collections::BTreeMap<String, u64>) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn status_class(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Success => "ok",
        RunStatus::Failed => "bad",
        RunStatus::Running => "warn",
        RunStatus::NotAvailable => "muted",
    }
}

fn nav_extra(st: &DashboardState) -> Vec<(String, String)> {
    st.sections
        .iter()
        .map(|s| (format!("/dashboard/{}", s.path()), s.label().to_owned()))
        .collect()
}

struct CollectorRow {
    name: String,
    aliases: String,
    available: bool,
    last_run: String,
    status: String,
    status_class: &'static str,
    failure: String,
    detail: String,
    last_success: String,
    fresh: String,
    fresh_class: &'static str,
}

struct GroupRow {
    id: String,
    tasks: String,
    last_success: String,
    stale: String,
    stale_class: &'static str,
}

#[derive(Template)]
#[template(path = "collectors.html")]
struct CollectorsPage {
    nav: &'static str,
    extra_nav: Vec<(String, String)>,
    version: String,
    collectors: Vec<CollectorRow>,
    groups: Vec<GroupRow>,
}

async fn collectors_page(State(st): State<St>) -> Response {
    let latest = match st.storage.runs().latest_per_collector().await {
        Ok(l) => l,
        Err(e) => return db_error(e),
    };
    let stale_after =
        chrono::Duration::seconds((st.config.health.collector_stale_hours * 3600.0) as i64);
    let now = Utc::now();
    let mut collectors = Vec::new();
    for entry in bdc_collector::CATALOG {
        let last = latest.iter().find(|r| r.collector == entry.name);
        let last_success = match st.storage.runs().last_success(entry.name).await {
            Ok(t) => t,
            Err(e) => return db_error(e),
        };
        let (fresh, fresh_class) = match (last, last_success) {
            (None, _) => ("never ran".to_owned(), "muted"),
            (_, Some(t)) if now - t <= stale_after => ("fresh".to_owned(), "ok"),
            (_, Some(_)) => ("stale".to_owned(), "bad"),
            (Some(_), None) => ("never succeeded".to_owned(), "bad"),
        };
        collectors.push(CollectorRow {
            name: entry.name.to_owned(),
            aliases: entry.aliases.join(", "),
            available: st.available.contains(&entry.name),
            last_run: fmt_time(last.map(|r| r.started_at)),
            status: last
                .map(|r| r.status.to_string())
                .unwrap_or_else(|| "—".into()),
            status_class: last.map(|r| status_class(r.status)).unwrap_or("muted"),
            failure: last
                .and_then(|r| r.failure_category)
                .map(|c| c.to_string())
                .unwrap_or_default(),
            detail: last.map(run_detail).unwrap_or_default(),
            last_success: fmt_time(last_success),
            fresh,
            fresh_class,
        });
    }
    let mut groups = Vec::new();
    if let Some(schedule) = &st.schedule {
        for g in &schedule.groups {
            let last = match st.storage.runs().last_group_success(&g.id).await {
                Ok(t) => t,
                Err(e) => return db_error(e),
            };
            let daily = g
                .tasks
                .iter()
                .any(|t| t.enabled && t.kind == ScheduleKind::Daily);
            let (stale, stale_class) = if !daily {
                ("—", "muted")
            } else if last.is_some_and(|t| now - t <= stale_after) {
                ("no", "ok")
            } else {
                ("yes", "bad")
            };
            groups.push(GroupRow {
                id: g.id.clone(),
                tasks: g
                    .tasks
                    .iter()
                    .map(|t| format!("{} ({})", t.command, t.kind))
                    .collect::<Vec<_>>()
                    .join(", "),
                last_success: fmt_time(last),
                stale: stale.to_owned(),
                stale_class,
            });
        }
    }
    render(&CollectorsPage {
        nav: "collectors",
        extra_nav: nav_extra(&st),
        version: st.version.clone(),
        collectors,
        groups,
    })
}

/// `<select>` options with the current one marked.
fn options(values: &[&'static str], current: Option<&str>) -> Vec<(&'static str, bool)> {
    values.iter().map(|v| (*v, Some(*v) == current)).collect()
}

fn run_detail(r: &RunRecord) -> String {
    if r.counts.is_empty() {
        r.error.clone().unwrap_or_default()
    } else {
        counts_text(&r.counts)
    }
}

struct RunRow {
    started: String,
    collector: String,
    command: String,
    group: String,
    status: String,
    status_class: &'static str,
    failure: String,
    took: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    nav: &'static str,
    extra_nav: Vec<(String, String)>,
    version: String,
    collector: String,
    status: String,
    statuses: Vec<(&'static str, bool)>,
    limit: u32,
    runs: Vec<RunRow>,
}

#[derive(Debug, Default, Deserialize)]
struct RunsQuery {
    collector: Option<String>,
    status: Option<String>,
    limit: Option<String>,
}

async fn runs_page(State(st): State<St>, Query(q): Query<RunsQuery>) -> Response {
    let collector = q.collector.filter(|c| !c.trim().is_empty());
    let status = q.status.filter(|s| !s.is_empty());
    let limit = q
        .limit
        .and_then(|l| l.trim().parse::<u32>().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let filter = RunFilter {
        collector: collector.clone(),
        status: status.as_deref().and_then(RunStatus::parse),
        limit: Some(limit),
    };
    let runs = match st.storage.runs().list(&filter).await {
        Ok(r) => r,
        Err(e) => return db_error(e),
    };
    let run_statuses = options(
        &["running", "success", "failed", "not_available"],
        status.as_deref(),
    );
    render(&RunsPage {
        nav: "runs",
        extra_nav: nav_extra(&st),
        version: st.version.clone(),
        collector: collector.unwrap_or_default(),
        status: status.unwrap_or_default(),
        statuses: run_statuses,
        limit,
        runs: runs
            .iter()
            .map(|r| RunRow {
                started: fmt_time(Some(r.started_at)),
                collector: r.collector.clone(),
                command: r.command.clone(),
                group: r.schedule_group.clone().unwrap_or_else(|| "—".into()),
                status: r.status.to_string(),
                status_class: status_class(r.status),
                failure: r
                    .failure_category
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                took: r
                    .finished_at
                    .map(|f| {
                        format!(
                            "{:.1}s",
                            (f - r.started_at).num_milliseconds() as f64 / 1000.0
                        )
                    })
                    .unwrap_or_else(|| "—".into()),
                detail: run_detail(r),
            })
            .collect(),
    })
}

struct JobRow {
    id: i64,
    status: String,
    status_class: &'static str,
    slot: String,
    attempts: String,
    due: String,
    worker: String,
    error: String,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    nav: &'static str,
    extra_nav: Vec<(String, String)>,
    version: String,
    stats: bdc_jobs::QueueStats,
    oldest: String,
    status: String,
    statuses: Vec<(&'static str, bool)>,
    jobs: Vec<JobRow>,
}

#[derive(Debug, Default, Deserialize)]
struct JobsQuery {
    status: Option<String>,
}

async fn jobs_page(State(st): State<St>, Query(q): Query<JobsQuery>) -> Response {
    let queue = JobQueue::new(st.storage.clone());
    let status = q.status.filter(|s| !s.is_empty());
    let stats = match queue.stats().await {
        Ok(s) => s,
        Err(e) => return db_error(e),
    };
    let jobs = match queue
        .list(status.as_deref().and_then(JobStatus::parse), 200)
        .await
    {
        Ok(j) => j,
        Err(e) => return db_error(e),
    };
    let job_statuses = options(
        &["queued", "running", "succeeded", "dead"],
        status.as_deref(),
    );
    render(&JobsPage {
        nav: "jobs",
        extra_nav: nav_extra(&st),
        version: st.version.clone(),
        oldest: format!("{:.0} s", stats.oldest_due_age_seconds),
        stats,
        status: status.unwrap_or_default(),
        statuses: job_statuses,
        jobs: jobs
            .iter()
            .map(|j| JobRow {
                id: j.id,
                status: j.status.as_str().to_owned(),
                status_class: match j.status {
                    JobStatus::Succeeded => "ok",
                    JobStatus::Dead | JobStatus::Failed => "bad",
                    JobStatus::Running => "warn",
                    JobStatus::Queued => "muted",
                },
                slot: j.slot_key.clone().unwrap_or_else(|| j.kind.clone()),
                attempts: format!("{}/{}", j.attempts, j.max_attempts),
                due: fmt_time(Some(j.run_at)),
                worker: j.locked_by.clone().unwrap_or_default(),
                error: j.last_error.clone().unwrap_or_default(),
            })
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "section.html")]
struct SectionPage {
    nav: String,
    extra_nav: Vec<(String, String)>,
    version: String,
    heading: String,
    body: String,
}

async fn section_page(
    State(st): State<St>,
    Path(section): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(s) = st.sections.iter().find(|s| s.path() == section) else {
        return (StatusCode::NOT_FOUND, "no such dashboard page").into_response();
    };
    let body = match s.render(&q).await {
        Ok(b) => b,
        Err(e) => return db_error(e),
    };
    let page = SectionPage {
        nav: s.label().to_owned(),
        extra_nav: nav_extra(&st),
        version: st.version.clone(),
        heading: s.label().to_owned(),
        body,
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => db_error(e),
    }
}

async fn section_sub_page(
    State(st): State<St>,
    Path((section, sub)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(s) = st.sections.iter().find(|s| s.path() == section) else {
        return (StatusCode::NOT_FOUND, "no such dashboard page").into_response();
    };
    let (heading, body) = match s.render_sub(&sub, &q).await {
        Ok(Some(b)) => b,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such dashboard page").into_response(),
        Err(e) => return db_error(e),
    };
    let page = SectionPage {
        nav: s.label().to_owned(),
        extra_nav: nav_extra(&st),
        version: st.version.clone(),
        heading,
        body,
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => db_error(e),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: &'static str,
    extra_nav: Vec<(String, String)>,
    version: String,
    message: String,
}

async fn login_form(State(st): State<St>) -> Response {
    render(&LoginPage {
        nav: "login",
        extra_nav: Vec::new(),
        version: st.version.clone(),
        message: if st.config.api_token.is_none() {
            "The dashboard is disabled: set BDC_API_TOKEN to enable it.".into()
        } else {
            String::new()
        },
    })
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(st): State<St>, headers: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    let ok = st
        .config
        .api_token
        .as_ref()
        .is_some_and(|t| bool::from(f.token.as_bytes().ct_eq(t.expose().as_bytes())));
    if !ok {
        let page = LoginPage {
            nav: "login",
            extra_nav: Vec::new(),
            version: st.version.clone(),
            message: "Wrong token.".into(),
        };
        // 200 with the message: a browser form round-trip, not an API error.
        return render(&page);
    }
    // `Secure` when the request came over HTTPS (directly or through a
    // proxy that says so), so the cookie never travels in clear afterwards.
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{COOKIE}={}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=43200{}",
        session_value(&f.token),
        if https { "; Secure" } else { "" }
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/dashboard/")).into_response()
}

async fn logout() -> Response {
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0"),
        )],
        Redirect::to("/dashboard/login"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#x27;"
        );
    }

    #[test]
    fn reads_the_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; bdc_token=s3cret; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_token(&h).as_deref(), Some("s3cret"));
    }
}
