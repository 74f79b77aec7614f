//! The HTTP client: conditional requests, token rotation, rate-limit
//! pauses, retries, budget, archive and replay (see the crate docs).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bdc_config::{Config, Secret};
use bdc_core::HttpStatusError;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH};
use serde::de::DeserializeOwned;
use url::Url;

use crate::archive::{ArchiveIndex, RawArchive};
use crate::cache::{CachedResponse, HttpCache};
use crate::clock::{Clock, SystemClock};
use crate::error::HttpError;

/// Settings of an [`HttpClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Collector name: metrics label and archive directory.
    pub collector: String,
    /// API base URL; relative request paths (`/repos/…`) are appended to it.
    pub base_url: Url,
    /// Tokens in rotation order; empty = anonymous.
    pub tokens: Vec<Secret>,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Retries after the first attempt on 5xx, network errors and
    /// secondary limits.
    pub max_retries: u32,
    /// First backoff; doubles per retry (±50 % jitter), capped at
    /// `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Rotate to another token when the current one has at most this many
    /// requests left.
    pub rotate_below: u64,
    /// Longest single pause (rate-limit reset or `Retry-After`).
    pub max_wait: Duration,
    /// Pause on a secondary limit without `Retry-After` (GitHub: ≥ 60 s).
    pub secondary_wait: Duration,
    /// Budget of rate-limited requests for this client (one run): once
    /// this many responses that cost a rate-limit point (everything but a
    /// `304`) were received, further requests fail with
    /// [`HttpError::BudgetExhausted`] (`None` = unlimited). Conditional
    /// requests answered `304` are free, so a resumed run re-walks what it
    /// already fetched without spending budget.
    pub max_requests: Option<u64>,
    /// Also archive final `404` / `410` answers (status and body), so a
    /// replay answers those URLs with the same error instead of
    /// [`HttpError::NotArchived`]. Off by default: replays that walk every
    /// archived entry expect successful bodies only.
    pub archive_not_found: bool,
    /// `Accept` header.
    pub accept: String,
    pub user_agent: String,
    /// How a token is sent (GitHub: `Authorization: Bearer`).
    pub auth: TokenAuth,
    /// Read `X-RateLimit-Remaining` / `X-RateLimit-Reset` as one budget
    /// per token (GitHub). Off for APIs whose limits are per route
    /// (Discord), which pace themselves from [`Response::headers`].
    pub token_rate_limit: bool,
}

/// How [`ClientOptions::tokens`] are sent with each request. Never in the
/// URL: URLs are cache keys and go into the raw archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenAuth {
    /// `Authorization: Bearer <token>` (GitHub, OAuth).
    #[default]
    Bearer,
    /// The token as the whole value of this header (Google API keys:
    /// `X-Goog-Api-Key`).
    Header(&'static str),
    /// `Authorization: <scheme> <token>` (Discord bots: `Bot`).
    Scheme(&'static str),
}

impl ClientOptions {
    /// Defaults for `base_url` with no tokens.
    pub fn new(collector: impl Into<String>, base_url: Url) -> Self {
        ClientOptions {
            collector: collector.into(),
            base_url,
            tokens: Vec::new(),
            timeout: Duration::from_secs(30),
            max_retries: 4,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            rotate_below: 10,
            max_wait: Duration::from_secs(3600),
            secondary_wait: Duration::from_secs(60),
            max_requests: None,
            archive_not_found: false,
            accept: "application/json".into(),
            user_agent: concat!("bdc/", env!("CARGO_PKG_VERSION")).into(),
            auth: TokenAuth::Bearer,
            token_rate_limit: true,
        }
    }

    /// GitHub REST v3 from the configuration: `GITHUB_API_URL`, tokens from
    /// `GITHUB_TOKENS_SCRAPING` then `GITHUB_TOKEN` (duplicates dropped).
    pub fn github(config: &Config, collector: impl Into<String>) -> Self {
        let mut tokens: Vec<Secret> = Vec::new();
        for t in config
            .github_tokens_scraping
            .iter()
            .chain(config.github_token.iter())
        {
            if !tokens.iter().any(|x| x.expose() == t.expose()) {
                tokens.push(t.clone());
            }
        }
        ClientOptions {
            tokens,
            accept: "application/vnd.github+json".into(),
            ..ClientOptions::new(collector, config.github_api_url.clone())
        }
    }
}

/// A stable, non-secret id for a token (metrics label, logs).
pub fn token_id(token: Option<&Secret>) -> String {
    match token {
        Some(t) => format!("tok-{:08x}", crate::fnv1a64(t.expose().as_bytes()) >> 32),
        None => "anonymous".into(),
    }
}

/// Counters of one client (one run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HttpStats {
    /// Requests sent over the network.
    pub requests: u64,
    /// Responses that count against the rate limit (everything but 304).
    pub rate_limit_points: u64,
    /// `304 Not Modified` answers served from the cache.
    pub not_modified: u64,
    pub retries: u64,
    pub rotations: u64,
    pub pauses: u64,
    /// Responses served from the archive (replay).
    pub replayed: u64,
}

/// A successful response (or a cached body after a `304`).
#[derive(Debug, Clone)]
pub struct Response {
    pub url: String,
    /// 2xx status of the body (the cached one after a 304).
    pub status: u16,
    pub body: Vec<u8>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub link: Option<String>,
    /// Served from the cache after a `304` (no rate-limit point spent).
    pub not_modified: bool,
    /// Served from the raw archive (replay).
    pub replayed: bool,
    /// The kept response headers (lower-case names; rate-limit headers
    /// among them), also after a replay.
    pub headers: BTreeMap<String, String>,
}

impl Response {
    /// The `rel="next"` page, if any.
    pub fn next_url(&self) -> Option<String> {
        self.link.as_deref().and_then(crate::link::next)
    }

    /// Deserialize the body.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|source| HttpError::Json {
            url: self.url.clone(),
            source,
        })
    }
}

#[derive(Debug, Clone, Default)]
struct TokenState {
    remaining: Option<u64>,
    reset: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct Rotation {
    current: usize,
    states: Vec<TokenState>,
}

pub(crate) enum Source {
    Live {
        client: reqwest::Client,
        cache: Option<HttpCache>,
        archive: Option<Arc<RawArchive>>,
    },
    Replay {
        archive: Arc<RawArchive>,
        index: ArchiveIndex,
    },
}

/// See the crate documentation.
pub struct HttpClient {
    pub(crate) opts: ClientOptions,
    pub(crate) source: Source,
    pub(crate) clock: Arc<dyn Clock>,
    rotation: Mutex<Rotation>,
    stats: Mutex<HttpStats>,
    rng: AtomicU64,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("collector", &self.opts.collector)
            .field("base_url", &self.opts.base_url.as_str())
            .field("tokens", &self.opts.tokens.len())
            .finish()
    }
}

/// Response headers worth keeping in the archive.
const KEPT_HEADERS: &[&str] = &[
    "etag",
    "last-modified",
    "link",
    "content-type",
    "date",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-resource",
    "x-ratelimit-bucket",
    "x-ratelimit-reset-after",
    "x-ratelimit-global",
    "x-ratelimit-scope",
];

fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
}

/// The [`KEPT_HEADERS`] present in `h`, for the archive.
pub(crate) fn kept_headers(h: &HeaderMap) -> BTreeMap<String, String> {
    KEPT_HEADERS
        .iter()
        .filter_map(|name| header_str(h, name).map(|v| ((*name).to_owned(), v)))
        .collect()
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    header_str(h, name).and_then(|s| s.parse().ok())
}

impl HttpClient {
    /// A live client (network), without cache or archive.
    pub fn new(opts: ClientOptions) -> Result<Self, HttpError> {
        // reqwest is built without a bundled crypto provider; the binary
        // installs ring at start-up, this keeps the crate usable alone.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout.min(Duration::from_secs(10)))
            .user_agent(opts.user_agent.clone())
            .build()
            .map_err(HttpError::Client)?;
        let states = vec![TokenState::default(); opts.tokens.len().max(1)];
        let seed = crate::fnv1a64(opts.collector.as_bytes())
            ^ Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64;
        Ok(HttpClient {
            opts,
            source: Source::Live {
                client,
                cache: None,
                archive: None,
            },
            clock: Arc::new(SystemClock),
            rotation: Mutex::new(Rotation { current: 0, states }),
            stats: Mutex::new(HttpStats::default()),
            rng: AtomicU64::new(seed | 1),
        })
    }

    /// A client that answers every request from `archive` and never uses
    /// the network (`--from-archive`).
    pub async fn replay(opts: ClientOptions, archive: RawArchive) -> Result<Self, HttpError> {
        let index = archive.index().await?;
        let mut c = Self::new(opts)?;
        c.source = Source::Replay {
            archive: Arc::new(archive),
            index,
        };
        Ok(c)
    }

    /// Keep validators and bodies in the database (conditional requests).
    pub fn with_cache(mut self, cache: HttpCache) -> Self {
        if let Source::Live { cache: c, .. } = &mut self.source {
            *c = Some(cache);
        }
        self
    }

    /// Archive every fetched body.
    pub fn with_archive(mut self, archive: RawArchive) -> Self {
        if let Source::Live { archive: a, .. } = &mut self.source {
            *a = Some(Arc::new(archive));
        }
        self
    }

    /// Use another clock (tests: [`crate::ManualClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// The replay index, when this client replays an archive.
    pub fn archive_index(&self) -> Option<&ArchiveIndex> {
        match &self.source {
            Source::Replay { index, .. } => Some(index),
            Source::Live { .. } => None,
        }
    }

    pub fn is_replay(&self) -> bool {
        matches!(self.source, Source::Replay { .. })
    }

    pub fn stats(&self) -> HttpStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    pub(crate) fn bump(&self, f: impl FnOnce(&mut HttpStats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }

    /// Absolute URL for `path_or_url` (`/repos/…` is appended to the base
    /// URL, keeping a base path such as GitHub Enterprise's `/api/v3`).
    pub fn url(&self, path_or_url: &str) -> Result<String, HttpError> {
        let bad = |reason: String| HttpError::Url {
            url: path_or_url.to_owned(),
            reason,
        };
        let lower = path_or_url.to_ascii_lowercase();
        let text = if lower.starts_with("http://") || lower.starts_with("https://") {
            path_or_url.to_owned()
        } else {
            let base = self.opts.base_url.as_str().trim_end_matches('/');
            let path = path_or_url.trim_start_matches('/');
            format!("{base}/{path}")
        };
        Url::parse(&text)
            .map(String::from)
            .map_err(|e| bad(e.to_string()))
    }

    /// Follow `Link: rel="next"` from `first`.
    pub fn pages(&self, first: &str) -> Pager<'_> {
        Pager {
            client: self,
            next: Some(first.to_owned()),
        }
    }

    /// GET `path_or_url` (see the crate docs for everything this does).
    pub async fn get(&self, path_or_url: &str) -> Result<Response, HttpError> {
        let url = self.url(path_or_url)?;
        match &self.source {
            Source::Replay { archive, index } => {
                let Some(entry) = index.get(&url) else {
                    return Err(HttpError::NotArchived {
                        url,
                        dir: archive.dir().to_path_buf(),
                    });
                };
                let body = archive.body(entry).await?;
                self.bump(|s| s.replayed += 1);
                if entry.status >= 400 {
                    // An archived error answer (`archive_not_found`).
                    return Err(HttpError::Status {
                        source: HttpStatusError {
                            status: entry.status,
                            url,
                            rate_limited: false,
                        },
                        detail: String::from_utf8_lossy(&body).chars().take(300).collect(),
                    });
                }
                Ok(Response {
                    url,
                    status: entry.status,
                    body,
                    etag: entry.headers.get("etag").cloned(),
                    last_modified: entry.headers.get("last-modified").cloned(),
                    link: entry.headers.get("link").cloned(),
                    not_modified: false,
                    replayed: true,
                    headers: entry.headers.clone(),
                })
            }
            Source::Live {
                client,
                cache,
                archive,
            } => {
                self.get_live(client, cache.as_ref(), archive.as_deref(), url)
                    .await
            }
        }
    }

    /// GET and deserialize.
    pub async fn get_json<T: DeserializeOwned>(&self, path_or_url: &str) -> Result<T, HttpError> {
        self.get(path_or_url).await?.json()
    }

    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .opts
            .backoff_base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.opts.backoff_max);
        // xorshift64* jitter in [0.5, 1.5).
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        let r = (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64;
        exp.mul_f64(0.5 + r)
    }

    pub(crate) fn charge_budget(&self, url: &str) -> Result<(), HttpError> {
        let mut over = None;
        if let Ok(mut s) = self.stats.lock() {
            match self.opts.max_requests {
                Some(budget) if s.rate_limit_points >= budget => over = Some(budget),
                _ => s.requests += 1,
            }
        }
        match over {
            Some(budget) => Err(HttpError::BudgetExhausted {
                budget,
                url: url.to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// Pick a token that is not about to run out; rotate, or pause until
    /// the earliest reset when all are exhausted. Returns its index.
    pub(crate) async fn acquire_token(&self) -> usize {
        loop {
            let now = self.clock.now();
            let wait = {
                let Ok(mut rot) = self.rotation.lock() else {
                    return 0;
                };
                let n = rot.states.len();
                let usable = |s: &TokenState| match (s.remaining, s.reset) {
                    (None, _) => true,
                    (Some(r), _) if r > self.opts.rotate_below => true,
                    (Some(_), Some(reset)) => reset <= now,
                    (Some(_), None) => false,
                };
                let start = rot.current;
                let found = (0..n)
                    .map(|k| (start + k) % n)
                    .find(|i| rot.states.get(*i).is_some_and(usable));
                if let Some(i) = found {
                    if let Some(s) = rot.states.get_mut(i)
                        && s.reset.is_some_and(|r| r <= now)
                    {
                        *s = TokenState::default();
                    }
                    if i != start {
                        rot.current = i;
                        self.bump(|s| s.rotations += 1);
                        tracing::info!(
                            collector = %self.opts.collector,
                            token = %token_id(self.opts.tokens.get(i)),
                            "rate limit nearly spent; rotated to the next token"
                        );
                    }
                    return i;
                }
                let earliest = rot.states.iter().filter_map(|s| s.reset).min();
                let wait = earliest
                    .and_then(|r| (r - now).to_std().ok())
                    .unwrap_or(self.opts.secondary_wait)
                    .max(Duration::from_secs(1))
                    .min(self.opts.max_wait);
                // After the pause every token counts as fresh.
                for s in &mut rot.states {
                    *s = TokenState::default();
                }
                wait
            };
            self.bump(|s| s.pauses += 1);
            tracing::warn!(
                collector = %self.opts.collector,
                wait_s = wait.as_secs_f64(),
                "every token has exhausted its rate limit; pausing until the reset"
            );
            self.clock.sleep(wait).await;
        }
    }

    fn note_rate_limit(&self, token: usize, headers: &HeaderMap) {
        let remaining = header_u64(headers, "x-ratelimit-remaining");
        let reset = header_u64(headers, "x-ratelimit-reset")
            .and_then(|s| i64::try_from(s).ok())
            .and_then(|s| DateTime::from_timestamp(s, 0));
        if remaining.is_none() && reset.is_none() {
            return;
        }
        if let Some(r) = remaining {
            metrics::gauge!("bdc_http_rate_limit_remaining", "token" => token_id(self.opts.tokens.get(token)))
                .set(r as f64);
        }
        if let Ok(mut rot) = self.rotation.lock()
            && let Some(s) = rot.states.get_mut(token)
        {
            if remaining.is_some() {
                s.remaining = remaining;
            }
            if reset.is_some() {
                s.reset = reset;
            }
        }
    }

    fn mark_exhausted(&self, token: usize) {
        if let Ok(mut rot) = self.rotation.lock()
            && let Some(s) = rot.states.get_mut(token)
        {
            s.remaining = Some(0);
        }
    }

    pub(crate) fn retry_metric(&self, reason: &'static str) {
        self.bump(|s| s.retries += 1);
        metrics::counter!("bdc_http_retries_total", "collector" => self.opts.collector.clone(), "reason" => reason)
            .increment(1);
    }

    async fn get_live(
        &self,
        client: &reqwest::Client,
        cache: Option<&HttpCache>,
        archive: Option<&RawArchive>,
        url: String,
    ) -> Result<Response, HttpError> {
        let cached = match cache {
            Some(c) => c.get(&url).await?,
            None => None,
        };
        let mut attempt: u32 = 0;
        // Rate-limit waits are bounded separately from error retries.
        let mut limit_waits: u32 = 0;
        let max_limit_waits = self.opts.tokens.len() as u32 + 4;
        loop {
            let token = self.acquire_token().await;
            self.charge_budget(&url)?;
            let mut req = client
                .get(&url)
                .header(reqwest::header::ACCEPT, self.opts.accept.as_str());
            if self.opts.accept.contains("github") {
                req = req.header("X-GitHub-Api-Version", "2022-11-28");
            }
            if let Some(t) = self.opts.tokens.get(token) {
                req = match self.opts.auth {
                    TokenAuth::Bearer => req.bearer_auth(t.expose()),
                    TokenAuth::Header(name) => req.header(name, t.expose()),
                    TokenAuth::Scheme(scheme) => req.header(
                        reqwest::header::AUTHORIZATION,
                        format!("{scheme} {}", t.expose()),
                    ),
                };
            }
            if let Some(c) = &cached {
                if let Some(etag) = &c.etag {
                    req = req.header(IF_NONE_MATCH, etag);
                }
                if let Some(lm) = &c.last_modified {
                    req = req.header(IF_MODIFIED_SINCE, lm);
                }
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(source) => {
                    metrics::counter!("bdc_http_requests_total", "collector" => self.opts.collector.clone(), "status" => if source.is_timeout() { "timeout" } else { "error" })
                        .increment(1);
                    if attempt < self.opts.max_retries {
                        let wait = self.backoff(attempt);
                        attempt += 1;
                        self.retry_metric(if source.is_timeout() {
                            "timeout"
                        } else {
                            "network"
                        });
                        tracing::warn!(collector = %self.opts.collector, url = %url, attempt, wait_s = wait.as_secs_f64(), error = %source, "request failed; retrying");
                        self.clock.sleep(wait).await;
                        continue;
                    }
                    return Err(HttpError::Request {
                        url,
                        attempts: attempt + 1,
                        source,
                    });
                }
            };
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            if self.opts.token_rate_limit {
                self.note_rate_limit(token, &headers);
            }
            metrics::counter!("bdc_http_requests_total", "collector" => self.opts.collector.clone(), "status" => status.to_string())
                .increment(1);
            if status != 304 {
                self.bump(|s| s.rate_limit_points += 1);
            }

            if status == 304 {
                let Some(c) = cached else {
                    return Err(HttpError::UnexpectedNotModified { url });
                };
                self.bump(|s| s.not_modified += 1);
                metrics::counter!("bdc_http_not_modified_total", "collector" => self.opts.collector.clone())
                    .increment(1);
                tracing::debug!(collector = %self.opts.collector, url = %url, "304 Not Modified: cached body reused");
                return Ok(Response {
                    url,
                    status: c.status,
                    body: c.body,
                    etag: c.etag,
                    last_modified: c.last_modified,
                    link: c.link,
                    not_modified: true,
                    replayed: false,
                    headers: kept_headers(&headers),
                });
            }

            if (200..300).contains(&status) {
                let body = match resp.bytes().await {
                    Ok(b) => b.to_vec(),
                    Err(source) => {
                        if attempt < self.opts.max_retries {
                            let wait = self.backoff(attempt);
                            attempt += 1;
                            self.retry_metric("body");
                            self.clock.sleep(wait).await;
                            continue;
                        }
                        return Err(HttpError::Request {
                            url,
                            attempts: attempt + 1,
                            source,
                        });
                    }
                };
                let fetched_at = self.clock.now();
                let etag = header_str(&headers, "etag");
                let last_modified = header_str(&headers, "last-modified");
                let link = header_str(&headers, "link");
                if let Some(archive) = archive {
                    archive
                        .store(&url, status, kept_headers(&headers), &body, fetched_at)
                        .await?;
                }
                if let Some(cache) = cache
                    && (etag.is_some() || last_modified.is_some())
                {
                    cache
                        .put(
                            &url,
                            &CachedResponse {
                                etag: etag.clone(),
                                last_modified: last_modified.clone(),
                                link: link.clone(),
                                status,
                                body: body.clone(),
                                fetched_at,
                            },
                        )
                        .await?;
                }
                return Ok(Response {
                    url,
                    status,
                    body,
                    etag,
                    last_modified,
                    link,
                    not_modified: false,
                    replayed: false,
                    headers: kept_headers(&headers),
                });
            }

            // Errors: read a little of the body for the message.
            let text = resp.text().await.unwrap_or_default();
            let detail: String = text.chars().take(300).collect();
            let remaining = header_u64(&headers, "x-ratelimit-remaining");
            // Seconds, possibly fractional (Discord); a 429 without the
            // header may carry `{"retry_after": <seconds>}` in its body.
            let retry_after = header_str(&headers, "retry-after")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .or_else(|| {
                    (status == 429)
                        .then(|| serde_json::from_str::<serde_json::Value>(&text).ok())
                        .flatten()
                        .and_then(|v| v.get("retry_after").and_then(serde_json::Value::as_f64))
                })
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64);
            let secondary = text.to_ascii_lowercase().contains("secondary rate limit");
            let status_err = |rate_limited: bool| HttpError::Status {
                source: HttpStatusError {
                    status,
                    url: url.clone(),
                    rate_limited,
                },
                detail: detail.clone(),
            };
            if status == 403 || status == 429 {
                if let Some(wait) = retry_after.or(secondary.then_some(self.opts.secondary_wait)) {
                    if limit_waits < max_limit_waits {
                        limit_waits += 1;
                        self.retry_metric("secondary_limit");
                        self.bump(|s| s.pauses += 1);
                        let wait = wait.min(self.opts.max_wait);
                        tracing::warn!(collector = %self.opts.collector, url = %url, status, wait_s = wait.as_secs_f64(), "secondary rate limit; waiting before retrying");
                        self.clock.sleep(wait).await;
                        continue;
                    }
                    return Err(status_err(true));
                }
                if remaining == Some(0) {
                    if limit_waits < max_limit_waits {
                        limit_waits += 1;
                        self.mark_exhausted(token);
                        self.retry_metric("rate_limit");
                        continue;
                    }
                    return Err(status_err(true));
                }
                if status == 429 && attempt < self.opts.max_retries {
                    let wait = self.backoff(attempt);
                    attempt += 1;
                    self.retry_metric("429");
                    self.clock.sleep(wait).await;
                    continue;
                }
                return Err(status_err(status == 429));
            }
            if (500..600).contains(&status) && attempt < self.opts.max_retries {
                let wait = self.backoff(attempt);
                attempt += 1;
                self.retry_metric("5xx");
                tracing::warn!(collector = %self.opts.collector, url = %url, status, attempt, wait_s = wait.as_secs_f64(), "server error; retrying");
                self.clock.sleep(wait).await;
                continue;
            }
            if matches!(status, 404 | 410)
                && self.opts.archive_not_found
                && let Some(archive) = archive
            {
                archive
                    .store(
                        &url,
                        status,
                        kept_headers(&headers),
                        text.as_bytes(),
                        self.clock.now(),
                    )
                    .await?;
            }
            return Err(status_err(false));
        }
    }
}

/// Iterates the pages of a `Link`-paginated listing.
pub struct Pager<'c> {
    client: &'c HttpClient,
    next: Option<String>,
}

impl Pager<'_> {
    /// The next page, or `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<Response>, HttpError> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        let resp = self.client.get(&url).await?;
        self.next = resp.next_url();
        Ok(Some(resp))
    }
}
