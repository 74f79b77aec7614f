//! `POST` for write APIs (search/vector index sinks such as Pinecone) and
//! query APIs (GitHub GraphQL).
//!
//! Shares the client's tokens (rotation), clock, budget and metrics, with
//! its own retry loop: network errors, `5xx` and `429` are retried with the
//! client's jittered backoff (`429` honours `Retry-After`, in seconds,
//! fractional allowed); other statuses fail at once with the start of the
//! body. Never cached. With an archive, a successful answer is archived
//! under [`post_key`] (the URL plus a hash of the request body), so a
//! replay answers the same query; a replay of a query the archive does not
//! hold is [`HttpError::NotArchived`].

use std::time::Duration;

use bdc_core::HttpStatusError;

use crate::client::{HttpClient, Response, Source, TokenAuth};
use crate::error::HttpError;

/// The archive key of a `POST` of `body` to `url`:
/// `<url>#post:<fnv1a64 of the body>`.
pub fn post_key(url: &str, body: &[u8]) -> String {
    format!("{url}#post:{:016x}", crate::fnv1a64(body))
}

impl HttpClient {
    /// `POST body` (with `content_type`) to `path_or_url`; returns the
    /// 2xx response.
    pub async fn post(
        &self,
        path_or_url: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Response, HttpError> {
        self.post_with_headers(path_or_url, content_type, &[], body)
            .await
    }

    /// [`post`](Self::post) with extra request headers (API versions).
    pub async fn post_with_headers(
        &self,
        path_or_url: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Response, HttpError> {
        let url = self.url(path_or_url)?;
        let (client, archive) = match &self.source {
            Source::Live {
                client, archive, ..
            } => (client, archive.as_deref()),
            Source::Replay { archive, index } => {
                let key = post_key(&url, &body);
                let Some(entry) = index.get(&key) else {
                    return Err(HttpError::NotArchived {
                        url: key,
                        dir: archive.dir().to_path_buf(),
                    });
                };
                let body = archive.body(entry).await?;
                self.bump(|s| s.replayed += 1);
                return Ok(Response {
                    url,
                    status: entry.status,
                    body,
                    etag: None,
                    last_modified: None,
                    link: None,
                    not_modified: false,
                    replayed: true,
                    headers: entry.headers.clone(),
                });
            }
        };
        let mut attempt: u32 = 0;
        loop {
            let token = self.acquire_token().await;
            self.charge_budget(&url)?;
            let mut req = client
                .post(&url)
                .header(reqwest::header::ACCEPT, self.opts.accept.as_str())
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body.clone());
            for (name, value) in headers {
                req = req.header(*name, *value);
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
            let (status, retry_after, reason) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    metrics::counter!("bdc_http_requests_total", "collector" => self.opts.collector.clone(), "status" => status.to_string())
                        .increment(1);
                    self.bump(|s| s.rate_limit_points += 1);
                    let kept = crate::client::kept_headers(resp.headers());
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .filter(|s| s.is_finite() && *s >= 0.0)
                        .map(Duration::from_secs_f64);
                    if (200..300).contains(&status) {
                        let answer = match resp.bytes().await {
                            Ok(b) => b.to_vec(),
                            // The connection broke mid-answer: retried like
                            // a network error (an empty answer would pass
                            // for a success).
                            Err(e) => {
                                let reason = format!("reading the answer: {e}");
                                if attempt >= self.opts.max_retries {
                                    return Err(HttpError::Post {
                                        url,
                                        attempts: attempt + 1,
                                        reason,
                                    });
                                }
                                let wait = self.backoff(attempt).min(self.opts.max_wait);
                                attempt += 1;
                                self.retry_metric("network");
                                tracing::warn!(collector = %self.opts.collector, url = %url, attempt, wait_s = wait.as_secs_f64(), reason = %reason, "POST failed; retrying");
                                self.clock.sleep(wait).await;
                                continue;
                            }
                        };
                        if let Some(archive) = archive {
                            archive
                                .store(
                                    &post_key(&url, &body),
                                    status,
                                    Default::default(),
                                    &answer,
                                    self.clock.now(),
                                )
                                .await?;
                        }
                        let body = answer;
                        return Ok(Response {
                            url,
                            status,
                            body,
                            etag: None,
                            last_modified: None,
                            link: None,
                            not_modified: false,
                            replayed: false,
                            headers: kept,
                        });
                    }
                    let text = resp.text().await.unwrap_or_default();
                    let detail: String = text.chars().take(300).collect();
                    if status != 429 && !(500..600).contains(&status) {
                        return Err(HttpError::Status {
                            source: HttpStatusError {
                                status,
                                url,
                                rate_limited: false,
                            },
                            detail,
                        });
                    }
                    (
                        Some(status),
                        retry_after,
                        format!("HTTP {status}: {detail}"),
                    )
                }
                Err(e) => {
                    metrics::counter!("bdc_http_requests_total", "collector" => self.opts.collector.clone(), "status" => if e.is_timeout() { "timeout" } else { "error" })
                        .increment(1);
                    (None, None, e.to_string())
                }
            };
            if attempt >= self.opts.max_retries {
                if let Some(429) = status {
                    return Err(HttpError::Status {
                        source: HttpStatusError {
                            status: 429,
                            url,
                            rate_limited: true,
                        },
                        detail: reason,
                    });
                }
                return Err(HttpError::Post {
                    url,
                    attempts: attempt + 1,
                    reason,
                });
            }
            let wait = retry_after
                .unwrap_or_else(|| self.backoff(attempt))
                .min(self.opts.max_wait);
            attempt += 1;
            self.retry_metric(match status {
                Some(429) => "429",
                Some(_) => "5xx",
                None => "network",
            });
            tracing::warn!(collector = %self.opts.collector, url = %url, attempt, wait_s = wait.as_secs_f64(), reason = %reason, "POST failed; retrying");
            self.clock.sleep(wait).await;
        }
    }
}
