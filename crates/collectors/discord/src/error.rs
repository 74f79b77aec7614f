//! Errors of the Discord collectors, each naming what and where.
//! Per-message and per-file problems in exports are not errors: they are
//! counted, logged with file and position, and the run goes on.

use std::path::PathBuf;

use bdc_core::{BoxError, Categorized, FailureCategory};
use bdc_http::HttpError;
use bdc_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    #[error("invalid arguments for {command}: {message}")]
    Args {
        command: &'static str,
        message: String,
    },

    #[error("discord export {path}: {action}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("database error while {what}: {source}")]
    Storage {
        what: &'static str,
        #[source]
        source: StorageError,
    },

    #[error("the export reader thread failed: {0}")]
    Join(String),

    /// Missing configuration (no bot token, no guild id, …).
    #[error("discord configuration: {0}")]
    Config(String),

    #[error("{what}: {source}")]
    Http {
        what: String,
        #[source]
        source: HttpError,
    },

    /// An API answer that is not the documented JSON.
    #[error("Discord API {route}: unexpected answer ({url}): {source}")]
    Json {
        route: String,
        url: String,
        #[source]
        source: serde_json::Error,
    },

    /// The Markdown export or its git commit / push.
    #[error("discord markdown export {path}: {action}: {message}", path = path.display())]
    Export {
        path: PathBuf,
        action: String,
        message: String,
    },
}

impl DiscordError {
    fn category_override(&self) -> Option<FailureCategory> {
        match self {
            DiscordError::Args { .. } | DiscordError::Config(_) => Some(FailureCategory::Config),
            DiscordError::Http { source, .. } => Some(source.category()),
            DiscordError::Json { .. } => Some(FailureCategory::Parse),
            DiscordError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Some(FailureCategory::NotFound)
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

pub(crate) fn storage_err(what: &'static str) -> impl FnOnce(StorageError) -> DiscordError {
    move |source| DiscordError::Storage { what, source }
}

pub(crate) fn http(what: impl Into<String>) -> impl FnOnce(HttpError) -> DiscordError {
    let what = what.into();
    move |source| DiscordError::Http { what, source }
}
