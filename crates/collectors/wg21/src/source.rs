//! Arguments, index sources and fetching.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bdc_core::HttpStatusError;
use chrono::{DateTime, Utc};
use clap::Parser;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use url::Url;

use crate::{NAME, Wg21Error};

/// HTTP timeout for the whole request.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(60);

/// `bdc run wg21-papers [--index <URL|PATH>] [--full] [--from-archive]`.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "wg21-papers",
    about = "Collect WG21 papers and issues from the wg21.link index"
)]
pub struct Wg21Args {
    /// The index to read: an http(s):// URL, a file:// URL or a path
    /// [default: BDC_WG21_INDEX_URL, else https://wg21.link/index.json].
    #[arg(long, value_name = "URL|PATH")]
    pub index: Option<String>,
    /// Ignore the checkpoint: no conditional request, no content-hash
    /// shortcut; every entry is upserted (unchanged rows are still not
    /// rewritten).
    #[arg(long)]
    pub full: bool,
    /// Re-parse the newest archived index body under
    /// WORKSPACE_DIR/raw/wg21-papers instead of fetching (no network).
    #[arg(long, conflicts_with = "index")]
    pub from_archive: bool,
}

impl Wg21Args {
    /// Parse collector arguments (without the collector name).
    pub fn parse_args(args: &[String]) -> Result<Self, Wg21Error> {
        Self::try_parse_from(std::iter::once(NAME.to_owned()).chain(args.iter().cloned())).map_err(
            |e| Wg21Error::Args {
                message: e.to_string().trim().to_owned(),
            },
        )
    }
}

/// Where the index comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexSource {
    Http(Url),
    File(PathBuf),
}

impl IndexSource {
    /// `http(s)://` URL, `file://` URL or a plain path.
    pub fn parse(value: &str) -> Result<Self, Wg21Error> {
        let bad = |reason: String| Wg21Error::IndexSource {
            value: value.to_owned(),
            reason,
        };
        let v = value.trim();
        if v.is_empty() {
            return Err(bad("empty".into()));
        }
        let lower = v.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let url = Url::parse(v).map_err(|e| bad(format!("not a valid URL ({e})")))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err(bad("the URL has no host".into()));
            }
            return Ok(IndexSource::Http(url));
        }
        if lower.starts_with("file:") {
            let url = Url::parse(v).map_err(|e| bad(format!("not a valid file URL ({e})")))?;
            let path = url
                .to_file_path()
                .map_err(|()| bad("a file:// URL must name an absolute local path".into()))?;
            return Ok(IndexSource::File(path));
        }
        if let Some((scheme, _)) = v.split_once("://") {
            return Err(bad(format!(
                "unsupported scheme {scheme:?}: use http://, https://, file:// or a path"
            )));
        }
        Ok(IndexSource::File(PathBuf::from(v)))
    }

    /// Stable text naming the source (URL; absolute `file://` URL for paths).
    pub fn describe(&self) -> String {
        match self {
            IndexSource::Http(url) => url.to_string(),
            IndexSource::File(path) => file_url(path),
        }
    }
}

fn file_url(path: &Path) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    Url::from_file_path(&abs)
        .map(|u| u.to_string())
        .unwrap_or_else(|()| abs.display().to_string())
}

/// One index body and where/how it was obtained.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub body: Vec<u8>,
    /// URL (or `file://` URL) it came from.
    pub url: String,
    /// HTTP status, `None` for files.
    pub status: Option<u16>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub fetched_at: DateTime<Utc>,
}

/// HTTP validators from the previous successful fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// Outcome of an HTTP fetch.
#[derive(Debug, Clone)]
pub enum FetchOutcome {
    Body(Fetched),
    /// `304 Not Modified` to a conditional request.
    NotModified,
}

/// The HTTP client: 60 s timeout, `bdc/<version>` user agent.
pub fn http_client(url: &Url) -> Result<reqwest::Client, Wg21Error> {
    // reqwest is built without a bundled crypto provider; the `bdc` binary
    // installs ring at start-up. Installing it here too (a no-op when one is
    // already installed) keeps the collector usable on its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .user_agent(concat!("bdc/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|source| Wg21Error::Client {
            url: url.to_string(),
            source,
        })
}

/// GET the index, conditionally when `validators` are given.
pub async fn fetch_http(url: &Url, validators: &Validators) -> Result<FetchOutcome, Wg21Error> {
    let client = http_client(url)?;
    let mut request = client.get(url.clone());
    if let Some(etag) = &validators.etag {
        request = request.header(IF_NONE_MATCH, etag);
    }
    if let Some(lm) = &validators.last_modified {
        request = request.header(IF_MODIFIED_SINCE, lm);
    }
    let response = request.send().await.map_err(|source| Wg21Error::Request {
        url: url.to_string(),
        source,
    })?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        if validators.is_empty() {
            return Err(Wg21Error::UnexpectedNotModified {
                url: url.to_string(),
            });
        }
        return Ok(FetchOutcome::NotModified);
    }
    if !status.is_success() {
        return Err(Wg21Error::Status(HttpStatusError {
            status: status.as_u16(),
            url: url.to_string(),
            rate_limited: false,
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
    let body = response.bytes().await.map_err(|source| Wg21Error::Body {
        url: url.to_string(),
        source,
    })?;
    Ok(FetchOutcome::Body(Fetched {
        body: body.to_vec(),
        url: url.to_string(),
        status: Some(status.as_u16()),
        etag,
        last_modified,
        fetched_at: Utc::now(),
    }))
}

/// Read an index file.
pub async fn read_file(path: &Path) -> Result<Fetched, Wg21Error> {
    let body = tokio::fs::read(path)
        .await
        .map_err(|source| Wg21Error::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(Fetched {
        body,
        url: file_url(path),
        status: None,
        etag: None,
        last_modified: None,
        fetched_at: Utc::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<Wg21Args, Wg21Error> {
        Wg21Args::parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags() {
        assert_eq!(
            args(&[]).unwrap(),
            Wg21Args {
                index: None,
                full: false,
                from_archive: false
            }
        );
        let a = args(&["--index", "x.json", "--full"]).unwrap();
        assert_eq!(a.index.as_deref(), Some("x.json"));
        assert!(a.full);
        assert!(args(&["--from-archive"]).unwrap().from_archive);
        let e = args(&["--bogus"]).unwrap_err();
        assert_eq!(e.category(), bdc_core::FailureCategory::Config);
        assert!(e.to_string().contains("--bogus"), "{e}");
        assert!(args(&["--from-archive", "--index", "x"]).is_err());
    }

    #[test]
    fn sources() {
        assert!(matches!(
            IndexSource::parse("https://wg21.link/index.json"),
            Ok(IndexSource::Http(_))
        ));
        assert_eq!(
            IndexSource::parse("examples/wg21/index.json").unwrap(),
            IndexSource::File("examples/wg21/index.json".into())
        );
        assert_eq!(
            IndexSource::parse("file:///tmp/index.json").unwrap(),
            IndexSource::File("/tmp/index.json".into())
        );
        for bad in ["ftp://x/y", "", "http://", "file://relative/x"] {
            let e = IndexSource::parse(bad).unwrap_err();
            assert_eq!(
                e.category(),
                bdc_core::FailureCategory::Config,
                "{bad}: {e}"
            );
        }
        let d = IndexSource::File("a/b.json".into()).describe();
        assert!(d.starts_with("file:///") && d.ends_with("/a/b.json"), "{d}");
    }
}
