//! Errors of the `slack` collector, each naming what and where.
//! Per-file problems of an export are not errors: they are counted,
//! logged with file and position, and the run goes on.

use std::path::PathBuf;

use bdc_core::{BoxError, Categorized, FailureCategory};
use bdc_http::HttpError;
use bdc_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    /// A bad collector argument (clap's message, with usage).
    #[error("invalid arguments for slack: {message}")]
    Args { message: String },

    /// Missing configuration (no bot token for an API run, …).
    #[error("slack configuration: {0}")]
    Config(String),

    #[error("{what}: {source}")]
    Http {
        what: String,
        #[source]
        source: HttpError,
    },

    /// Slack answered `{"ok": false, "error": "…"}`.
    #[error("Slack API {method} answered ok=false: {error}{}", needed.as_deref().map(|n| format!(" (needed scope: {n})")).unwrap_or_default())]
    Api {
        method: String,
        error: String,
        needed: Option<String>,
    },

    /// A body that is not the documented JSON.
    #[error("Slack API {method}: unexpected answer ({url}): {source}")]
    Json {
        method: String,
        url: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("slack export {path}: {action}: {message}", path = path.display())]
    Export {
        path: PathBuf,
        action: &'static str,
        message: String,
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

impl SlackError {
    pub fn category(&self) -> FailureCategory {
        match self {
            SlackError::Args { .. } | SlackError::Config(_) => FailureCategory::Config,
            SlackError::Http { source, .. } => source.category(),
            SlackError::Api { error, .. } => match error.as_str() {
                "invalid_auth"
                | "not_authed"
                | "account_inactive"
                | "token_revoked"
                | "token_expired"
                | "missing_scope"
                | "no_permission"
                | "not_allowed_token_type"
                | "ekm_access_denied" => FailureCategory::Auth,
                "ratelimited" => FailureCategory::RateLimited,
                "channel_not_found" | "team_not_found" | "thread_not_found" => {
                    FailureCategory::NotFound
                }
                "invalid_cursor" | "invalid_arguments" | "invalid_ts_latest"
                | "invalid_ts_oldest" => FailureCategory::Config,
                _ => FailureCategory::Unknown,
            },
            SlackError::Json { .. } => FailureCategory::Parse,
            SlackError::Export { .. } => FailureCategory::NotFound,
            SlackError::Storage { .. } => FailureCategory::Database,
            SlackError::Join(_) => FailureCategory::Unknown,
        }
    }

    /// Box for the collector contract, keeping the category.
    pub fn into_box(self) -> BoxError {
        let category = self.category();
        let message = self.to_string();
        Box::new(Categorized::with_source(category, message, self))
    }
}

pub(crate) fn http(what: impl Into<String>) -> impl FnOnce(HttpError) -> SlackError {
    let what = what.into();
    move |source| SlackError::Http { what, source }
}

pub(crate) fn storage(what: &'static str) -> impl FnOnce(StorageError) -> SlackError {
    move |source| SlackError::Storage { what, source }
}
