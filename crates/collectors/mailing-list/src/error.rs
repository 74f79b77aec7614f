//! Errors of the `mailing-list` collector, each naming what and where.
//! Per-message problems are not errors: they are counted (`malformed`) and
//! the message is kept.

use std::path::PathBuf;

use bdc_core::{BoxError, Categorized, FailureCategory, HttpStatusError, ProtocolError};
use bdc_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid arguments for mailing-list: {message}")]
    Args { message: String },

    #[error("invalid value {value:?} for {field}: {reason}")]
    Value {
        field: &'static str,
        value: String,
        reason: String,
    },

    #[error("mbox source {path}: {action}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),

    #[error("requesting {url}: {source}")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("HyperKitty export: {0}")]
    Status(#[source] HttpStatusError),

    #[error("{url} answered 304 Not Modified to an unconditional request")]
    UnexpectedNotModified { url: String },

    #[error("no archived export for list {list} month {month} under {dir}", dir = dir.display())]
    NoArchive {
        list: String,
        month: String,
        dir: PathBuf,
    },

    #[error("raw archive metadata {path} is invalid: {source}", path = path.display())]
    ArchiveMeta {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("building a mailing-list checkpoint: {0}")]
    Checkpoint(#[source] ProtocolError),

    #[error("database error while {what}: {source}")]
    Storage {
        what: &'static str,
        #[source]
        source: StorageError,
    },

    #[error("the mbox reader thread failed: {0}")]
    Join(String),
}

impl MailError {
    fn category_override(&self) -> Option<FailureCategory> {
        match self {
            MailError::Args { .. } | MailError::Value { .. } => Some(FailureCategory::Config),
            MailError::ArchiveMeta { .. } => Some(FailureCategory::Parse),
            MailError::NoArchive { .. } => Some(FailureCategory::NotFound),
            MailError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Some(FailureCategory::NotFound)
            }
            MailError::Io { source, .. } if source.kind() == std::io::ErrorKind::InvalidData => {
                Some(FailureCategory::Parse)
            }
            _ => None,
        }
    }

    /// Box for the collector contract, categorised.
    pub fn into_box(self) -> BoxError {
        match self.category_override() {
            Some(category) => {
                let message = self.to_string();
                Box::new(Categorized::with_source(category, message, self))
            }
            None => Box::new(self),
        }
    }
}

pub(crate) fn storage_err(what: &'static str) -> impl FnOnce(StorageError) -> MailError {
    move |source| MailError::Storage { what, source }
}
