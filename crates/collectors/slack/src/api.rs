//! The Slack Web API client: GET `{SLACK_API_URL}/{method}?{params}`
//! through [`bdc_http::HttpClient`] (bearer token in the `Authorization`
//! header, never in the URL, so the raw archive and logs never hold it;
//! `429` + `Retry-After` waits through the injectable clock; retries;
//! raw archive; replay), plus:
//!
//! * Slack's error convention: HTTP 200 with `{"ok": false, "error": "…"}`
//!   becomes [`SlackError::Api`] naming the method and the error;
//! * per-method pacing by Slack's rate-limit tiers ([`tier`]), so a run
//!   stays under the documented per-minute limits instead of collecting
//!   `429`s;
//! * cursor pagination (`response_metadata.next_cursor`, [`SlackApi::pages`]).

use std::sync::Arc;

use bdc_http::{Clock, HttpClient, RateWindow, Response};
use serde::de::DeserializeOwned;

use crate::error::{SlackError, http};
use crate::model::Meta;

/// Page size asked of list methods (Slack recommends ≤ 200).
pub const PAGE_LIMIT: u32 = 200;

/// Slack's documented rate-limit tier of a method (requests per minute):
/// Tier 2 = 20/min (`users.list`, `conversations.list`), Tier 3 = 50/min
/// (`conversations.history`, `conversations.replies`), Tier 4 = 100/min
/// (`conversations.members`).
pub fn tier(method: &str) -> (u8, usize) {
    match method {
        "users.list" | "conversations.list" => (2, 20),
        "conversations.members" => (4, 100),
        _ => (3, 50),
    }
}

/// The Web API of one run.
#[derive(Debug)]
pub struct SlackApi {
    client: HttpClient,
    clock: Arc<dyn Clock>,
    tier2: RateWindow,
    tier3: RateWindow,
    tier4: RateWindow,
}

/// One decoded page.
#[derive(Debug)]
pub struct Page<T> {
    pub meta: Meta,
    pub data: T,
    pub response: Response,
}

impl SlackApi {
    pub fn new(client: HttpClient, clock: Arc<dyn Clock>) -> Self {
        SlackApi {
            client,
            clock,
            tier2: RateWindow::per_minute(tier("users.list").1, 1),
            tier3: RateWindow::per_minute(tier("conversations.history").1, 1),
            tier4: RateWindow::per_minute(tier("conversations.members").1, 1),
        }
    }

    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    /// The request path of `method` with `params` (query-encoded).
    pub fn path(method: &str, params: &[(&str, String)]) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            q.append_pair(k, v);
        }
        let q = q.finish();
        if q.is_empty() {
            format!("/{method}")
        } else {
            format!("/{method}?{q}")
        }
    }

    /// Decode a Slack answer: the envelope first (`ok`, `error`), then `T`.
    pub fn decode<T: DeserializeOwned>(
        method: &str,
        response: Response,
    ) -> Result<Page<T>, SlackError> {
        let json_err = |source| SlackError::Json {
            method: method.to_owned(),
            url: response.url.clone(),
            source,
        };
        let meta: Meta = serde_json::from_slice(&response.body).map_err(json_err)?;
        if !meta.ok {
            return Err(SlackError::Api {
                method: method.to_owned(),
                error: meta.error.clone().unwrap_or_else(|| "unknown_error".into()),
                needed: meta.needed.clone(),
            });
        }
        let data: T =
            serde_json::from_slice(&response.body).map_err(|source| SlackError::Json {
                method: method.to_owned(),
                url: response.url.clone(),
                source,
            })?;
        Ok(Page {
            meta,
            data,
            response,
        })
    }

    /// Call `method` once (paced by its tier).
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: &[(&str, String)],
    ) -> Result<Page<T>, SlackError> {
        if !self.client.is_replay() {
            let window = match tier(method).0 {
                2 => &self.tier2,
                4 => &self.tier4,
                _ => &self.tier3,
            };
            window.pace(&*self.clock).await;
        }
        let path = Self::path(method, params);
        let response = self
            .client
            .get(&path)
            .await
            .map_err(http(format!("calling Slack {method}")))?;
        Self::decode(method, response)
    }

    /// Cursor pages of `method`, from the first.
    pub fn pages<'a>(&'a self, method: &'a str, params: Vec<(&'a str, String)>) -> Pages<'a> {
        Pages {
            api: self,
            method,
            params,
            cursor: None,
            done: false,
        }
    }
}

/// Iterates `response_metadata.next_cursor` pages.
pub struct Pages<'a> {
    api: &'a SlackApi,
    method: &'a str,
    params: Vec<(&'a str, String)>,
    cursor: Option<String>,
    done: bool,
}

impl Pages<'_> {
    /// The next page, or `None` after the last.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<Page<T>>, SlackError> {
        if self.done {
            return Ok(None);
        }
        let mut params = self.params.clone();
        if let Some(c) = &self.cursor {
            params.push(("cursor", c.clone()));
        }
        let page: Page<T> = self.api.call(self.method, &params).await?;
        self.cursor = page.meta.next_cursor().map(str::to_owned);
        self.done = self.cursor.is_none();
        Ok(Some(page))
    }

    /// Whether another page follows the last one returned.
    pub fn has_next(&self) -> bool {
        !self.done
    }
}
