//! Errors of the Discord collectors, each naming what and where.
//! Per-message and per-file problems in exports are not errors: they are
//! counted, logged with file and position, and the run goes on.

use std::path::PathBuf;

use bdc_core::{BoxError, Categorized, FailureCategory};
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
}

impl DiscordError {
    fn category_override(&self) -> Option<FailureCategory> {
        match self {
            DiscordError::Args { .. } => Some(FailureCategory::Config),
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
