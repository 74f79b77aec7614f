//! Errors of the `wg21-papers` collector. Each names what it was doing and
//! where (URL, file path, document number, field).

use std::path::PathBuf;

use bdc_core::{BoxError, Categorized, FailureCategory, HttpStatusError, ProtocolError};
use bdc_storage::StorageError;

/// Everything that can stop a `wg21-papers` run. Per-entry problems in the
/// index are not errors: they are counted (`skipped_*`) and logged.
#[derive(Debug, thiserror::Error)]
pub enum Wg21Error {
    /// A bad collector argument (clap's message, with usage).
    #[error("invalid arguments for wg21-papers: {message}")]
    Args { message: String },

    /// `--index` (or `BDC_WG21_INDEX_URL`) is not a usable source.
    #[error("invalid index source {value:?}: {reason}")]
    IndexSource { value: String, reason: String },

    #[error("cannot build the HTTP client for {url}: {source}")]
    Client {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("requesting the WG21 index {url}: {source}")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("reading the response body of {url}: {source}")]
    Body {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    /// A non-2xx answer (classified auth / not_found / rate_limited / network).
    #[error("fetching the WG21 index: {0}")]
    Status(#[source] HttpStatusError),

    #[error(
        "{url} answered 304 Not Modified although no conditional request was sent \
         (no checkpoint); rerun with --full"
    )]
    UnexpectedNotModified { url: String },

    #[error("reading the index file {path}: {source}", path = path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The index body is not JSON.
    #[error("the index from {origin} is not valid JSON: {source}")]
    Json {
        origin: String,
        #[source]
        source: serde_json::Error,
    },

    /// The index body is JSON but not an object keyed by document number.
    #[error(
        "the index from {origin} is not a JSON object keyed by document number (found {found})"
    )]
    NotAnObject { origin: String, found: &'static str },

    #[error("raw archive {path}: {action}: {source}", path = path.display())]
    Archive {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("raw archive metadata {path} is invalid: {source}", path = path.display())]
    ArchiveMeta {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error(
        "no archived WG21 index under {dir}: run `bdc run wg21-papers` without --from-archive first",
        dir = dir.display()
    )]
    NoArchive { dir: PathBuf },

    #[error("building the wg21-papers checkpoint: {0}")]
    Checkpoint(#[source] ProtocolError),

    #[error("database error while {what}: {source}")]
    Storage {
        what: &'static str,
        #[source]
        source: StorageError,
    },
}

impl Wg21Error {
    /// The category when it is not implied by the error chain itself.
    fn category_override(&self) -> Option<FailureCategory> {
        match self {
            Wg21Error::Args { .. } | Wg21Error::IndexSource { .. } => Some(FailureCategory::Config),
            Wg21Error::NotAnObject { .. } | Wg21Error::ArchiveMeta { .. } => {
                Some(FailureCategory::Parse)
            }
            Wg21Error::Json { .. } => Some(FailureCategory::Parse),
            Wg21Error::NoArchive { .. } => Some(FailureCategory::NotFound),
            _ => None,
        }
    }

    /// Box for the collector contract, wrapping in [`Categorized`] where the
    /// chain alone would not classify correctly.
    pub fn into_box(self) -> BoxError {
        match self.category_override() {
            Some(category) => {
                let message = self.to_string();
                Box::new(Categorized::with_source(category, message, self))
            }
            None => Box::new(self),
        }
    }

    /// The failure category this error is classified as.
    pub fn category(&self) -> FailureCategory {
        self.category_override()
            .unwrap_or_else(|| bdc_core::classify_failure(self))
    }
}
