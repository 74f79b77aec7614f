//! Pinecone as a search sink, the way the original uses it: records
//! upserted by namespace through Pinecone's REST data-plane API into two
//! indexes with **integrated embedding** — a dense one
//! (`PINECONE_INDEX_NAME`) and a sparse one (`<name>-sparse`) — so search
//! can be hybrid.
//!
//! * [`PineconeSettings`]: the original's env names (`PINECONE_API_KEY`,
//!   `PINECONE_PRIVATE_API_KEY` for `--pinecone-instance private`,
//!   `PINECONE_INDEX_NAME`, `PINECONE_BATCH_SIZE`), plus
//!   `PINECONE_CONTROL_URL` / `PINECONE_API_VERSION`; per-source
//!   `<PREFIX>_PINECONE_NAMESPACE` / `<PREFIX>_APP_TYPE` via
//!   [`namespace_for`] / [`app_type_for`].
//! * [`PineconeClient`]: `GET /indexes/{name}` (host and embedded field),
//!   `POST /records/namespaces/{ns}/upsert` (NDJSON, batches of 96 by
//!   default), `POST /vectors/delete` (batches of 1,000),
//!   `POST /records/namespaces/{ns}/search` (dense + sparse merged by
//!   reciprocal rank fusion). The key goes in the `Api-Key` header, never in
//!   a URL or a log. `429` (with `Retry-After`), `5xx` and network errors
//!   are retried with jittered backoff by [`bdc_http::HttpClient::post`]; a
//!   batch that still fails does not stop the run: its ids come back in
//!   [`SyncReport::failed`].
//! * [`record_id`]: `<document id>#<chunk start>`, stable, so a re-sync
//!   overwrites instead of duplicating.
//! * [`FailureStore`]: failed ids kept in `pinecone_failed_records`
//!   (schema part [`SCHEMA`]) and retried first on the next run.
//!
//! Metrics: `bdc_pinecone_records_total{operation,outcome}`.

mod client;
mod failures;
mod record;
mod settings;

pub use client::{DELETE_BATCH, FailedRecord, Flavor, Hit, IndexInfo, PineconeClient, SyncReport};
pub use failures::{FailureStore, Operation, PendingRecord, SCHEMA};
pub use record::{MAX_ID_BYTES, Record, document_of, record_id};
pub use settings::{
    DEFAULT_API_VERSION, DEFAULT_BATCH_SIZE, DEFAULT_CONTROL_URL, Instance, PineconeSettings,
    app_type_for, namespace_for,
};

/// Errors of the Pinecone sink.
#[derive(Debug, thiserror::Error)]
pub enum PineconeError {
    #[error("{field}={value:?}: {reason}")]
    Config {
        field: &'static str,
        value: String,
        reason: &'static str,
    },

    #[error(
        "Pinecone index {name:?} does not exist: create it with integrated embedding \
         (dense: e.g. llama-text-embed-v2; `<name>-sparse`: pinecone-sparse-english-v0, \
         field_map text=chunk_text)"
    )]
    IndexMissing { name: String },

    #[error(
        "Pinecone index {name:?} has no integrated embedding (upserting text needs one; \
         see docs/search.md)"
    )]
    NoIntegratedEmbedding { name: String },

    #[error("Pinecone {what}: unexpected answer: {detail}")]
    BadAnswer { what: &'static str, detail: String },

    #[error("Pinecone: {0}")]
    Http(#[from] bdc_http::HttpError),

    #[error("Pinecone failure store: {0}")]
    Storage(#[from] bdc_storage::StorageError),
}
