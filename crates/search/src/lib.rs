//! The embedded search index of everything collected, and the
//! `search-index-sync` collector (alias `run_cppa_pinecone_sync`).
//!
//! * [`doc`]: documents built from the collectors' public reads — activity
//!   records of every collector (title, kind, actor, URL, long payload
//!   strings), library documentation pages, YouTube talks (title and
//!   transcript), Discord messages.
//! * [`chunk`]: long texts split on paragraphs, then lines, then words
//!   (1,000 characters, 200 overlap by default: `PINECONE_CHUNK_SIZE`,
//!   `PINECONE_CHUNK_OVERLAP`), junk chunks dropped (`PINECONE_MIN_TEXT_LENGTH`,
//!   `PINECONE_MIN_WORDS`).
//! * [`index`]: tantivy under `WORKSPACE_DIR/index/tantivy/`, one tantivy
//!   document per chunk; ranked search (BM25, title boosted) with filters
//!   (source, kind, since, actors, library), highlighted snippets, lenient
//!   query parsing (search syntax never errors out).
//! * [`sync`]: incremental per app type with a cursor in the database
//!   (`search_cursors`, schema part [`SCHEMA`]) moved only after the index
//!   commit; edits replace, deletions reach the index; Pinecone
//!   ([`bdc_pinecone`]) as an optional second sink; `/health/`'s
//!   `pinecone_sync` gets `final_sync_at` per app type.
//!
//! The [`IndexSink`] trait is the extension point for other remote indexes.

use std::path::PathBuf;

use async_trait::async_trait;
use bdc_collector::{CollectContext, Collector};
use bdc_core::{BoxError, Categorized, FailureCategory, TrackerResult};
use clap::Parser;

pub mod chunk;
pub mod doc;
pub mod find;
pub mod http;
pub mod index;
pub mod section;
pub mod store;
pub mod sync;

pub use chunk::{Chunk, ChunkConfig};
pub use doc::SearchDoc;
pub use find::{Filters, FindError, find};
pub use index::{Hit, SearchIndex, SearchQuery, index_dir};
pub use section::SearchSection;
pub use store::SCHEMA;
pub use sync::{APP_TYPES, PineconeSink, SyncCounts, SyncOptions};

/// Collector name.
pub const NAME: &str = "search-index-sync";

/// Errors of the search index and its sync.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("invalid arguments for search-index-sync: {message}")]
    Args { message: String },

    #[error("search index {dir}: {what}: {detail}", dir = dir.display())]
    Index {
        dir: PathBuf,
        what: &'static str,
        detail: String,
    },

    #[error("{path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("reading {app_type} for the index: {detail}")]
    Source {
        app_type: &'static str,
        detail: String,
    },

    /// The index directory holds an index of another layout (an older
    /// bdc): a sync rebuilds it; `bdc search --reindex` does too.
    #[error("search index {dir}: built by another version of bdc (its fields differ); rebuild it with `bdc search --reindex`", dir = dir.display())]
    Layout { dir: PathBuf },

    /// Another process holds the index writer (a sync is running).
    #[error("search index {dir}: another sync holds the index writer", dir = dir.display())]
    Busy { dir: PathBuf },

    #[error(transparent)]
    Storage(#[from] bdc_storage::StorageError),

    #[error(transparent)]
    Pinecone(#[from] bdc_pinecone::PineconeError),
}

impl SearchError {
    pub fn into_box(self) -> BoxError {
        let category = match &self {
            SearchError::Args { .. } => Some(FailureCategory::Config),
            SearchError::Index { .. }
            | SearchError::Io { .. }
            | SearchError::Busy { .. }
            | SearchError::Layout { .. } => Some(FailureCategory::Unknown),
            SearchError::Source { .. } => Some(FailureCategory::Parse),
            SearchError::Pinecone(bdc_pinecone::PineconeError::Http(h)) => Some(h.category()),
            SearchError::Pinecone(_) => Some(FailureCategory::Config),
            SearchError::Storage(_) => None,
        };
        match category {
            Some(c) => {
                let message = self.to_string();
                Box::new(Categorized::with_source(c, message, self))
            }
            None => Box::new(self),
        }
    }
}

/// A remote index the sync can also feed (Pinecone today: see
/// [`sync::PineconeSink`], which the sync drives directly).
#[async_trait]
pub trait IndexSink: Send + Sync {
    /// Upsert chunks into `namespace`; returns the ids that failed.
    async fn upsert(
        &self,
        namespace: &str,
        records: &[bdc_pinecone::Record],
    ) -> Result<Vec<String>, SearchError>;
    /// Delete chunk ids from `namespace`; returns the ids that failed.
    async fn delete(&self, namespace: &str, ids: &[String]) -> Result<Vec<String>, SearchError>;
}

#[async_trait]
impl IndexSink for bdc_pinecone::PineconeClient {
    async fn upsert(
        &self,
        namespace: &str,
        records: &[bdc_pinecone::Record],
    ) -> Result<Vec<String>, SearchError> {
        let r = bdc_pinecone::PineconeClient::upsert(self, namespace, records).await?;
        Ok(r.failed.into_iter().map(|f| f.id).collect())
    }
    async fn delete(&self, namespace: &str, ids: &[String]) -> Result<Vec<String>, SearchError> {
        let r = bdc_pinecone::PineconeClient::delete(self, namespace, ids).await?;
        Ok(r.failed.into_iter().map(|f| f.id).collect())
    }
}

/// `bdc run search-index-sync --help`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "search-index-sync",
    about = "Sync the embedded search index (and Pinecone, when configured) with what the collectors stored"
)]
pub struct SyncArgs {
    /// Only this app type (repeatable): activity, library-docs, youtube, discord.
    #[arg(long = "app-type", value_name = "APP_TYPE")]
    pub app_type: Vec<String>,
    /// Pinecone namespace for everything (default: `<APP_TYPE>_PINECONE_NAMESPACE`, else the app type).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Which Pinecone project: public (`PINECONE_API_KEY`) or private (`PINECONE_PRIVATE_API_KEY`).
    #[arg(
        long = "pinecone-instance",
        default_value = "public",
        value_name = "public|private"
    )]
    pub pinecone_instance: String,
    /// Do not send anything to Pinecone even when it is configured.
    #[arg(long = "skip-pinecone")]
    pub skip_pinecone: bool,
    /// Rebuild from scratch: delete the index directory and every cursor first.
    #[arg(long)]
    pub reindex: bool,
}

impl SyncArgs {
    pub fn parse_args(args: &[String]) -> Result<Self, SearchError> {
        let a = Self::try_parse_from(std::iter::once(NAME.to_owned()).chain(args.iter().cloned()))
            .map_err(|e| SearchError::Args {
                message: e.to_string().trim().to_owned(),
            })?;
        for t in &a.app_type {
            if !APP_TYPES.contains(&t.as_str()) {
                return Err(SearchError::Args {
                    message: format!("--app-type {t:?}: expected one of {}", APP_TYPES.join(", ")),
                });
            }
        }
        a.pinecone_instance
            .parse::<bdc_pinecone::Instance>()
            .map_err(|e| SearchError::Args {
                message: e.to_string(),
            })?;
        Ok(a)
    }
}

/// Sync options from arguments and the environment (`PINECONE_*`).
pub fn options(args: &SyncArgs) -> Result<SyncOptions, SearchError> {
    let chunk = ChunkConfig::from_lookup(|k| std::env::var(k).ok())
        .map_err(|message| SearchError::Args { message })?;
    Ok(SyncOptions {
        app_types: args.app_type.clone(),
        chunk,
        pinecone: None,
        reindex: args.reindex,
    })
}

/// Whether collector runs keep the index current (`BDC_SEARCH_INDEX_ON_RUN`,
/// default true; `false` leaves it to the scheduled `search-index-sync`).
pub const ON_RUN_ENV: &str = "BDC_SEARCH_INDEX_ON_RUN";

/// The app types a collector's data lands in (its activity records, plus
/// the long texts it owns).
pub fn app_types_of(collector: &str) -> Vec<String> {
    let own = match collector {
        "library-docs" => Some("library-docs"),
        "youtube-transcripts" => Some("youtube"),
        "discord" | "discord-backfill" => Some("discord"),
        "slack" => Some("slack"),
        "mailing-list" => Some("mailing-list"),
        _ => None,
    };
    std::iter::once("activity")
        .chain(own)
        .map(str::to_owned)
        .collect()
}

/// A collector's `sync_index` step: after a successful run, sync the app
/// types its data lands in (and Pinecone when configured, so the cursors
/// stay shared), unless its arguments hold `--skip-index` or
/// `BDC_SEARCH_INDEX_ON_RUN=false`. When another process holds the index
/// writer, nothing is done (the scheduled sync, or the next run, catches
/// up). Returns the documents written or deleted.
pub async fn sync_after_run(ctx: &CollectContext, collector: &str) -> Result<u64, SearchError> {
    let off = std::env::var(ON_RUN_ENV)
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "false" | "0" | "no" | "off"
            )
        })
        .unwrap_or(false);
    if off || ctx.args.iter().any(|a| a == "--skip-index") {
        return Ok(0);
    }
    let mut args = SyncArgs::parse_args(&[])?;
    args.app_type = app_types_of(collector);
    let opts = with_pinecone(ctx, &args)?;
    match sync::sync(&ctx.storage, &ctx.config.workspace_dir, &opts).await {
        Ok(sync::SyncCounts {
            pinecone_error: Some(e),
            ..
        }) => Err(SearchError::Pinecone(e)),
        Ok(c) => Ok(c.documents + c.deleted),
        Err(SearchError::Busy { dir }) => {
            tracing::info!(dir = %dir.display(), "search index busy (another sync running); left to the next sync");
            Ok(0)
        }
        Err(e) => Err(e),
    }
}

/// Sync options with the Pinecone sink when configured (and not skipped).
fn with_pinecone(ctx: &CollectContext, args: &SyncArgs) -> Result<SyncOptions, SearchError> {
    let mut opts = options(args)?;
    if args.skip_pinecone {
        return Ok(opts);
    }
    let instance = args.pinecone_instance.parse::<bdc_pinecone::Instance>()?;
    if let Some(settings) = bdc_pinecone::PineconeSettings::from_env(instance)? {
        let index_name = settings.index_name.clone();
        let client = bdc_pinecone::PineconeClient::new(settings)?;
        opts.pinecone = Some(PineconeSink {
            client,
            failures: bdc_pinecone::FailureStore::new(ctx.storage.clone(), index_name),
            namespace: args.namespace.clone(),
        });
    }
    Ok(opts)
}

/// The `search-index-sync` collector.
#[derive(Debug, Clone, Copy, Default)]
pub struct SearchIndexSyncCollector;

#[async_trait]
impl Collector for SearchIndexSyncCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn args_command(&self) -> Option<clap::Command> {
        Some(<SyncArgs as clap::CommandFactory>::command())
    }

    fn validate_config(&self, ctx: &CollectContext) -> Result<(), BoxError> {
        let a = SyncArgs::parse_args(&ctx.args).map_err(SearchError::into_box)?;
        options(&a).map_err(SearchError::into_box)?;
        Ok(())
    }

    async fn collect(&self, ctx: &CollectContext) -> Result<TrackerResult, BoxError> {
        let args = SyncArgs::parse_args(&ctx.args).map_err(SearchError::into_box)?;
        let opts = with_pinecone(ctx, &args).map_err(SearchError::into_box)?;
        let mut c = sync::sync(&ctx.storage, &ctx.config.workspace_dir, &opts)
            .await
            .map_err(SearchError::into_box)?;
        // Everything else is committed and the failed ids are kept: the
        // run still fails, so a Pinecone outage or a bad key is seen.
        if let Some(e) = c.pinecone_error.take() {
            return Err(SearchError::Pinecone(e).into_box());
        }
        let mut r = TrackerResult::ok();
        for (k, v) in [
            ("documents", c.documents),
            ("deleted", c.deleted),
            ("chunks", c.chunks),
            ("batches", c.batches),
            ("pinecone_upserted", c.pinecone_upserted),
            ("pinecone_deleted", c.pinecone_deleted),
            ("pinecone_failed", c.pinecone_failed),
            ("pinecone_retried", c.pinecone_retried),
            ("index_documents", c.index_documents),
        ] {
            r.add(k, v).map_err(|e| {
                SearchError::Args {
                    message: e.to_string(),
                }
                .into_box()
            })?;
        }
        Ok(r)
    }
}
