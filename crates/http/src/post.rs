//! `POST` for write APIs (search/vector index sinks such as Pinecone).
//!
//! Shares the client's token, clock, budget and metrics, with its own
//! retry loop: network errors, `5xx` and `429` are retried with the
//! client's jittered backoff (`429` honours `Retry-After`, in seconds,
//! fractional allowed); other statuses fail at once with the start of the
//! body. Never cached or archived (a write is not a page to replay).

use std::time::Duration;

use bdc_core::HttpStatusError;

use crate::client::{HttpClient, Response, Source, TokenAuth};
use crate::error::HttpError;

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
        let client = match &self.source {
            Source::Live { client, .. } => client,
            Source::Replay { .. } => return Err(HttpError::PostInReplay { url }),
        };
        let mut attempt: u32 = 0;
        loop {
            self.charge_budget(&url)?;
            let mut req = client
                .post(&url)
                .header(reqwest::header::ACCEPT, self.opts.accept.as_str())
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body.clone());
            for (name, value) in headers {
                req = req.header(*name, *value);
            }
            if let Some(t) = self.opts.tokens.first() {
                req = match self.opts.auth {
                    TokenAuth::Bearer => req.bearer_auth(t.expose()),
                    TokenAuth::Header(name) => req.header(name, t.expose()),
                };
            }
            let (status, retry_after, reason) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    metrics::counter!("bdc_http_requests_total", "collector" => self.opts.collector.clone(), "status" => status.to_string())
                        .increment(1);
                    self.bump(|s| s.rate_limit_points += 1);
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .filter(|s| s.is_finite() && *s >= 0.0)
                        .map(Duration::from_secs_f64);
                    if (200..300).contains(&status) {
                        let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
                        return Ok(Response {
                            url,
                            status,
                            body,
                            etag: None,
                            last_modified: None,
                            link: None,
                            not_modified: false,
                            replayed: false,
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
