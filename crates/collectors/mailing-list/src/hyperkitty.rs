//! Mailman 3 / HyperKitty per-month mbox exports.
//!
//! HyperKitty serves a list's messages as a gzip-compressed mbox at
//! (`hyperkitty/urls.py`, view `export_mbox`):
//!
//! ```text
//! <archive-url>/list/<list>/export/<list>-<YYYY-MM>.mbox.gz?start=<YYYY-MM-01>&end=<first day of next month>
//! ```
//!
//! e.g. `https://lists.boost.org/archives/list/boost@lists.boost.org/export/boost@lists.boost.org-2024-01.mbox.gz?start=2024-01-01&end=2024-02-01`.
//! `<archive-url>` is HyperKitty's root (the part before `/list/`), `<list>`
//! the list's address; the file name is free (HyperKitty ignores it), we
//! keep it stable so HTTP validators match between runs. `start` is
//! inclusive, `end` exclusive (`date >= start AND date < end`).
//!
//! Every downloaded body is archived under
//! `<WORKSPACE_DIR>/raw/mailing-list/<list>/<YYYY-MM>.mbox.gz` with a
//! sidecar `<YYYY-MM>.meta.json` (`{url, status, etag, last_modified,
//! fetched_at, content_hash}`), so `--from-archive` re-parses without the
//! network.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bdc_core::HttpStatusError;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use serde::{Deserialize, Serialize};

use crate::MailError;

/// Whole-request timeout.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(300);

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    /// `YYYY-MM`.
    pub fn parse(s: &str) -> Result<Month, MailError> {
        let bad = |reason: &str| MailError::Value {
            field: "month",
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (y, m) = s
            .trim()
            .split_once('-')
            .ok_or_else(|| bad("expected YYYY-MM"))?;
        let year: i32 = y.parse().map_err(|_| bad("expected YYYY-MM"))?;
        let month: u32 = m.parse().map_err(|_| bad("expected YYYY-MM"))?;
        if !(1..=12).contains(&month) || !(1970..=9999).contains(&year) {
            return Err(bad("month out of range"));
        }
        Ok(Month { year, month })
    }

    pub fn of(t: DateTime<Utc>) -> Month {
        Month {
            year: t.year(),
            month: t.month(),
        }
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn first_day(self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// The export URL of `list` for `month`.
pub fn export_url(archive_url: &str, list: &str, month: Month) -> String {
    let base = archive_url.trim_end_matches('/');
    let start = month.first_day().map(|d| d.format("%Y-%m-%d").to_string());
    let end = month
        .next()
        .first_day()
        .map(|d| d.format("%Y-%m-%d").to_string());
    format!(
        "{base}/list/{list}/export/{list}-{month}.mbox.gz?start={}&end={}",
        start.unwrap_or_default(),
        end.unwrap_or_default()
    )
}

/// HTTP validators from the previous fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// A fetched (or archived) export.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchiveMeta {
    pub url: String,
    pub status: Option<u16>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub fetched_at: DateTime<Utc>,
    pub content_hash: String,
}

/// Outcome of one month's request.
#[derive(Debug)]
pub enum Fetch {
    NotModified,
    Body { meta: ArchiveMeta, body: Vec<u8> },
}

pub fn client() -> Result<reqwest::Client, MailError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .user_agent(concat!("bdc/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(MailError::Client)
}

/// Attempts per month export: server errors, 429 and network failures are
/// retried with jittered exponential backoff (a `Retry-After` is honoured, up
/// to a minute); other statuses fail at once.
pub const ATTEMPTS: u32 = 3;
/// Backoff before the second attempt (doubles after each).
pub const RETRY_BASE: Duration = Duration::from_millis(250);

fn retryable(status: reqwest::StatusCode) -> bool {
    status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS
}

fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(d) = retry_after {
        return d.min(Duration::from_secs(60));
    }
    let base = RETRY_BASE.saturating_mul(1u32 << attempt.min(10));
    // Jitter of up to a quarter, from the clock's sub-second noise: enough to
    // spread concurrent retries without a random-number dependency.
    let noise = u64::from(Utc::now().timestamp_subsec_nanos()) % 1_000;
    base + base.mul_f64(noise as f64 / 4_000.0)
}

/// GET one month's export, conditionally when validators are known.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    validators: &Validators,
) -> Result<Fetch, MailError> {
    let mut attempt = 0;
    let response = loop {
        attempt += 1;
        let mut request = client.get(url);
        if let Some(etag) = &validators.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &validators.last_modified {
            request = request.header(IF_MODIFIED_SINCE, lm);
        }
        match request.send().await {
            Ok(r) if retryable(r.status()) && attempt < ATTEMPTS => {
                let retry_after = r
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let wait = backoff(attempt - 1, retry_after);
                tracing::warn!(
                    url,
                    status = r.status().as_u16(),
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "HyperKitty: retrying"
                );
                tokio::time::sleep(wait).await;
            }
            Ok(r) => break r,
            Err(e)
                if attempt < ATTEMPTS && (e.is_connect() || e.is_timeout() || e.is_request()) =>
            {
                let wait = backoff(attempt - 1, None);
                tracing::warn!(url, error = %e, attempt, wait_ms = wait.as_millis() as u64, "HyperKitty: retrying");
                tokio::time::sleep(wait).await;
            }
            Err(source) => {
                return Err(MailError::Request {
                    url: url.to_owned(),
                    source,
                });
            }
        }
    };
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        if validators.etag.is_none() && validators.last_modified.is_none() {
            return Err(MailError::UnexpectedNotModified {
                url: url.to_owned(),
            });
        }
        return Ok(Fetch::NotModified);
    }
    if !status.is_success() {
        return Err(MailError::Status(HttpStatusError {
            status: status.as_u16(),
            url: url.to_owned(),
            rate_limited: status.as_u16() == 429,
        }));
    }
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let etag = header(ETAG);
    let last_modified = header(LAST_MODIFIED);
    let body = response
        .bytes()
        .await
        .map_err(|source| MailError::Request {
            url: url.to_owned(),
            source,
        })?
        .to_vec();
    Ok(Fetch::Body {
        meta: ArchiveMeta {
            url: url.to_owned(),
            status: Some(status.as_u16()),
            etag,
            last_modified,
            fetched_at: Utc::now(),
            content_hash: crate::content_hash(&body),
        },
        body,
    })
}

/// `<workspace>/raw/mailing-list/<list>`.
pub fn archive_dir(workspace: &Path, list: &str) -> PathBuf {
    let safe: String = list
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@.-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    workspace.join("raw").join(crate::NAME).join(safe)
}

fn io_err(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> MailError {
    let path = path.to_path_buf();
    move |source| MailError::Io {
        path,
        action,
        source,
    }
}

/// Store a month's body and sidecar (tmp + rename, sidecar first).
pub async fn archive_store(
    dir: &Path,
    month: Month,
    meta: &ArchiveMeta,
    body: &[u8],
) -> Result<(), MailError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(io_err(dir, "creating the archive directory"))?;
    let body_path = dir.join(format!("{month}.mbox.gz"));
    let meta_path = dir.join(format!("{month}.meta.json"));
    let json = serde_json::to_vec_pretty(meta).map_err(|source| MailError::ArchiveMeta {
        path: meta_path.clone(),
        source,
    })?;
    for (path, bytes) in [(&meta_path, &json[..]), (&body_path, body)] {
        let tmp = path.with_extension("tmp");
        tokio::fs::write(&tmp, bytes)
            .await
            .map_err(io_err(&tmp, "writing"))?;
        tokio::fs::rename(&tmp, path)
            .await
            .map_err(io_err(path, "renaming into place"))?;
    }
    Ok(())
}

/// Read an archived month.
pub async fn archive_load(
    dir: &Path,
    list: &str,
    month: Month,
) -> Result<(ArchiveMeta, Vec<u8>), MailError> {
    let body_path = dir.join(format!("{month}.mbox.gz"));
    let meta_path = dir.join(format!("{month}.meta.json"));
    let meta_bytes = match tokio::fs::read(&meta_path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(MailError::NoArchive {
                list: list.to_owned(),
                month: month.to_string(),
                dir: dir.to_path_buf(),
            });
        }
        Err(e) => return Err(io_err(&meta_path, "reading")(e)),
    };
    let meta: ArchiveMeta =
        serde_json::from_slice(&meta_bytes).map_err(|source| MailError::ArchiveMeta {
            path: meta_path.clone(),
            source,
        })?;
    let body = tokio::fs::read(&body_path)
        .await
        .map_err(io_err(&body_path, "reading"))?;
    Ok((meta, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_shape() {
        let m = Month::parse("2024-12").unwrap();
        assert_eq!(
            export_url(
                "https://lists.boost.org/archives/",
                "boost@lists.boost.org",
                m
            ),
            "https://lists.boost.org/archives/list/boost@lists.boost.org/export/boost@lists.boost.org-2024-12.mbox.gz?start=2024-12-01&end=2025-01-01"
        );
        assert!(Month::parse("2024-13").is_err());
        assert!(Month::parse("x").is_err());
    }
}
