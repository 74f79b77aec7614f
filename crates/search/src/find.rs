//! One search entry point for the CLI, `/api/search` and the dashboard:
//! filters as callers give them, a person resolved to their actors across
//! sources through the identity hub.

use std::path::Path;

use bdc_storage::Storage;
use chrono::{DateTime, Utc};

use crate::SearchError;
use crate::index::{Hit, SearchIndex, SearchQuery, index_dir};

/// Filters of a search.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub source: Option<String>,
    pub kind: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Identity id, address or login.
    pub person: Option<String>,
    pub library: Option<String>,
    pub limit: usize,
}

/// Why a search was refused (the caller's mistake, not ours).
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error("person {person:?}: {reason}")]
    Person { person: String, reason: String },
    #[error(transparent)]
    Search(#[from] SearchError),
}

/// Ranked results for `text` under `filters` from the index under
/// `workspace` (an index not built yet gives no results).
pub async fn find(
    storage: &Storage,
    workspace: &Path,
    text: &str,
    filters: &Filters,
) -> Result<Vec<Hit>, FindError> {
    let actors = match &filters.person {
        None => None,
        Some(p) => {
            let id = bdc_identity::hub::find_identity(storage, p)
                .await
                .map_err(|e| FindError::Person {
                    person: p.clone(),
                    reason: e.to_string(),
                })?;
            let pairs = bdc_identity::hub::actors_of(storage, id)
                .await
                .map_err(|e| FindError::Person {
                    person: p.clone(),
                    reason: e.to_string(),
                })?;
            Some(pairs.into_iter().map(|(_, a)| a).collect())
        }
    };
    let q = SearchQuery {
        text: text.to_owned(),
        source: filters.source.clone(),
        kind: filters.kind.clone(),
        since: filters.since,
        actors,
        library: filters.library.clone(),
        limit: if filters.limit == 0 {
            20
        } else {
            filters.limit.min(1000)
        },
    };
    let dir = index_dir(workspace);
    let hits = tokio::task::spawn_blocking(move || -> Result<Vec<Hit>, SearchError> {
        SearchIndex::open(&dir)?.search(&q)
    })
    .await
    .map_err(|e| SearchError::Index {
        dir: index_dir(workspace),
        what: "the search task",
        detail: e.to_string(),
    })??;
    Ok(hits)
}
