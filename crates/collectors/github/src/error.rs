//! Errors of the GitHub collectors. Each names what it was doing.

use bdc_core::{BoxError, Categorized, FailureCategory, ProtocolError};
use bdc_http::HttpError;
use bdc_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// A bad collector argument (clap's message, with usage).
    #[error("invalid arguments for {collector}: {message}")]
    Args {
        collector: &'static str,
        message: String,
    },

    #[error("{what}: {source}")]
    Http {
        what: String,
        #[source]
        source: HttpError,
    },

    #[error("database error while {what}: {source}")]
    Storage {
        what: &'static str,
        #[source]
        source: StorageError,
    },

    #[error("building {what}: {source}")]
    Protocol {
        what: String,
        #[source]
        source: ProtocolError,
    },
}

impl GithubError {
    pub fn category(&self) -> FailureCategory {
        match self {
            GithubError::Args { .. } => FailureCategory::Config,
            GithubError::Http { source, .. } => source.category(),
            GithubError::Storage { .. } => FailureCategory::Database,
            GithubError::Protocol { .. } => FailureCategory::Parse,
        }
    }

    /// Box for the collector contract, keeping the category.
    pub fn into_box(self) -> BoxError {
        let category = self.category();
        let message = self.to_string();
        Box::new(Categorized::with_source(category, message, self))
    }
}

pub(crate) fn http(what: impl Into<String>) -> impl FnOnce(HttpError) -> GithubError {
    let what = what.into();
    move |source| GithubError::Http { what, source }
}

pub(crate) fn storage(what: &'static str) -> impl FnOnce(StorageError) -> GithubError {
    move |source| GithubError::Storage { what, source }
}
