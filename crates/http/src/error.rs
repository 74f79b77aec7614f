//! Errors of the HTTP layer, each naming the URL or file involved.

use std::path::PathBuf;

use bdc_core::{BoxError, Categorized, FailureCategory, HttpStatusError};
use bdc_storage::StorageError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("invalid URL {url:?}: {reason}")]
    Url { url: String, reason: String },

    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),

    /// A network error or timeout that outlived the retries.
    #[error("GET {url} failed after {attempts} attempt(s): {source}")]
    Request {
        url: String,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },

    /// A non-success status (after retries where they apply). `detail` is
    /// the start of the response body (GitHub's `message`).
    #[error("{source}: {detail}")]
    Status {
        #[source]
        source: HttpStatusError,
        detail: String,
    },

    #[error(
        "the request budget of {budget} request(s) for this run is spent (next was {url}); \
         the next run continues from the checkpoints"
    )]
    BudgetExhausted { budget: u64, url: String },

    #[error("{url} answered 304 Not Modified but no cached body exists for it")]
    UnexpectedNotModified { url: String },

    #[error("the response from {url} is not the expected JSON: {source}")]
    Json {
        url: String,
        #[source]
        source: serde_json::Error,
    },

    #[error(
        "no archived response for {url} under {dir} (replay never uses the network)",
        dir = dir.display()
    )]
    NotArchived { url: String, dir: PathBuf },

    #[error("raw archive {path}: {action}: {source}", path = path.display())]
    Archive {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("raw archive {path}: invalid metadata: {source}", path = path.display())]
    ArchiveMeta {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// A `POST` whose network error or retryable status outlived the
    /// retries.
    #[error("POST {url} failed after {attempts} attempt(s): {reason}")]
    Post {
        url: String,
        attempts: u32,
        reason: String,
    },

    #[error("HTTP cache: {0}")]
    Cache(#[source] StorageError),
}

impl HttpError {
    fn category_override(&self) -> Option<FailureCategory> {
        match self {
            HttpError::Url { .. } => Some(FailureCategory::Config),
            HttpError::BudgetExhausted { .. } => Some(FailureCategory::RateLimited),
            HttpError::UnexpectedNotModified { .. } => Some(FailureCategory::Parse),
            HttpError::Json { .. } | HttpError::ArchiveMeta { .. } => Some(FailureCategory::Parse),
            HttpError::NotArchived { .. } => Some(FailureCategory::NotFound),
            HttpError::Cache(_) => Some(FailureCategory::Database),
            HttpError::Post { .. } => Some(FailureCategory::Network),
            _ => None,
        }
    }

    /// The failure category of this error.
    pub fn category(&self) -> FailureCategory {
        self.category_override()
            .unwrap_or_else(|| bdc_core::classify_failure(self))
    }

    /// The HTTP status, when the server answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { source, .. } => Some(source.status),
            _ => None,
        }
    }

    /// Box for the collector contract; the category survives
    /// `classify_failure`.
    pub fn into_box(self) -> BoxError {
        let category = self.category();
        let message = self.to_string();
        Box::new(Categorized::with_source(category, message, self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories() {
        let status = |status, rate_limited| HttpError::Status {
            source: HttpStatusError {
                status,
                url: "http://x/".into(),
                rate_limited,
            },
            detail: String::new(),
        };
        assert_eq!(status(404, false).category(), FailureCategory::NotFound);
        assert_eq!(status(401, false).category(), FailureCategory::Auth);
        assert_eq!(status(403, true).category(), FailureCategory::RateLimited);
        assert_eq!(status(502, false).category(), FailureCategory::Network);
        let budget = HttpError::BudgetExhausted {
            budget: 1,
            url: "u".into(),
        };
        assert_eq!(budget.category(), FailureCategory::RateLimited);
        let boxed = budget.into_box();
        assert_eq!(
            bdc_core::classify_failure(&*boxed),
            FailureCategory::RateLimited
        );
        let json = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let e = HttpError::Json {
            url: "u".into(),
            source: json,
        };
        assert_eq!(
            bdc_core::classify_failure(&*e.into_box()),
            FailureCategory::Parse
        );
    }
}
