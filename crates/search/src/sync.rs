//! The incremental sync (`search-index-sync`): for each app type, read what
//! changed since its cursor through the collectors' public reads, replace
//! or delete those documents in the index, commit, then move the cursor
//! (never before the commit: a killed sync redoes the last batch, and
//! replacing by document id makes that idempotent). With Pinecone
//! configured the same chunks go to Pinecone by namespace; ids that fail
//! are kept and retried first on the next run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bdc_pinecone::{FailureStore, Operation, PineconeClient, Record};
use bdc_storage::Storage;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::SearchError;
use crate::chunk::ChunkConfig;
use crate::doc::{self, SearchDoc};
use crate::index::{SearchIndex, Writer};
use crate::store;

/// The app types this build indexes, in sync order.
pub const APP_TYPES: &[&str] = &["activity", "library-docs", "youtube", "discord"];

/// Documents per batch (one commit and one cursor move per batch).
const BATCH: u32 = 2000;

/// Pinecone as a second sink.
pub struct PineconeSink {
    pub client: PineconeClient,
    pub failures: FailureStore,
    /// `--namespace`: one namespace for everything (else per app type:
    /// `<APP_TYPE>_PINECONE_NAMESPACE`, default the app type).
    pub namespace: Option<String>,
}

impl PineconeSink {
    fn namespace(&self, app_type: &str) -> String {
        if let Some(ns) = &self.namespace {
            return ns.clone();
        }
        let prefix = app_type.to_ascii_uppercase().replace('-', "_");
        bdc_pinecone::namespace_for(&prefix, app_type, |k| std::env::var(k).ok())
    }
}

/// How to sync.
pub struct SyncOptions {
    /// Only these app types (empty: all of [`APP_TYPES`]).
    pub app_types: Vec<String>,
    pub chunk: ChunkConfig,
    pub pinecone: Option<PineconeSink>,
    /// Start over: delete the index directory and every cursor.
    pub reindex: bool,
}

/// Counts of one sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncCounts {
    pub documents: u64,
    pub deleted: u64,
    pub chunks: u64,
    pub batches: u64,
    pub pinecone_upserted: u64,
    pub pinecone_deleted: u64,
    pub pinecone_failed: u64,
    pub pinecone_retried: u64,
    /// Per app type: documents written or deleted.
    pub per_app_type: BTreeMap<String, u64>,
}

struct Batch<'a> {
    writer: Writer<'a>,
    /// (namespace-independent) chunk records to send, and chunk ids to delete.
    records: Vec<Record>,
    deletes: Vec<String>,
}

fn metadata(d: &SearchDoc) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("doc_id".into(), json!(d.doc_id));
    m.insert("source".into(), json!(d.source));
    m.insert("kind".into(), json!(d.kind));
    m.insert("title".into(), json!(d.title));
    m.insert("at".into(), json!(d.at.to_rfc3339()));
    if let Some(u) = &d.url {
        m.insert("url".into(), json!(u));
    }
    if let Some(a) = &d.actor {
        m.insert("actor".into(), json!(a));
    }
    if let Some(l) = &d.library {
        m.insert("library".into(), json!(l));
    }
    m
}

impl Batch<'_> {
    fn upsert(
        &mut self,
        index: &SearchIndex,
        d: &SearchDoc,
        opts: &SyncOptions,
        counts: &mut SyncCounts,
    ) -> Result<(), SearchError> {
        let before: BTreeSet<String> = if opts.pinecone.is_some() {
            index.chunk_ids(&d.doc_id)?.into_iter().collect()
        } else {
            BTreeSet::new()
        };
        let written = self.writer.upsert(d, &opts.chunk)?;
        counts.documents += 1;
        counts.chunks += written.len() as u64;
        if opts.pinecone.is_some() {
            let now: BTreeSet<&str> = written.iter().map(|(id, _)| id.as_str()).collect();
            self.deletes
                .extend(before.into_iter().filter(|id| !now.contains(id.as_str())));
            let meta = metadata(d);
            for (id, text) in written {
                let text = if text.is_empty() {
                    d.title.clone()
                } else {
                    text
                };
                self.records.push(Record {
                    id,
                    text,
                    metadata: meta.clone(),
                });
            }
        }
        Ok(())
    }

    fn delete(
        &mut self,
        index: &SearchIndex,
        doc_id: &str,
        opts: &SyncOptions,
        counts: &mut SyncCounts,
    ) -> Result<(), SearchError> {
        if opts.pinecone.is_some() {
            self.deletes.extend(index.chunk_ids(doc_id)?);
        }
        self.writer.delete(doc_id);
        counts.deleted += 1;
        Ok(())
    }
}

/// Commit the batch, send it to Pinecone, then move the cursor.
async fn finish(
    storage: &Storage,
    index: &SearchIndex,
    batch: &mut Batch<'_>,
    (app_type, position, docs): (&str, &str, u64),
    opts: &SyncOptions,
    counts: &mut SyncCounts,
) -> Result<(), SearchError> {
    batch.writer.commit()?;
    index.reload()?;
    counts.batches += 1;
    if let Some(sink) = &opts.pinecone {
        let ns = sink.namespace(app_type);
        let records = std::mem::take(&mut batch.records);
        if !records.is_empty() {
            let r = sink.client.upsert(&ns, &records).await?;
            counts.pinecone_upserted += r.done.len() as u64;
            counts.pinecone_failed += r.failed.len() as u64;
            sink.failures
                .keep(&ns, Operation::Upsert, &r.failed)
                .await?;
        }
        let deletes = std::mem::take(&mut batch.deletes);
        if !deletes.is_empty() {
            let r = sink.client.delete(&ns, &deletes).await?;
            counts.pinecone_deleted += r.done.len() as u64;
            counts.pinecone_failed += r.failed.len() as u64;
            sink.failures
                .keep(&ns, Operation::Delete, &r.failed)
                .await?;
        }
    }
    store::set_cursor(storage, app_type, position, docs).await?;
    Ok(())
}

/// Retry the ids Pinecone refused last time (texts come from the index).
async fn retry_failures(
    index: &SearchIndex,
    sink: &PineconeSink,
    app_type: &str,
    counts: &mut SyncCounts,
) -> Result<(), SearchError> {
    let ns = sink.namespace(app_type);
    let pending = sink.failures.pending(&ns).await?;
    if pending.is_empty() {
        return Ok(());
    }
    let mut records = Vec::new();
    let mut deletes = Vec::new();
    let mut gone = Vec::new();
    for p in pending {
        match p.operation {
            Operation::Delete => deletes.push(p.record_id),
            Operation::Upsert => match index.chunk(&p.record_id)? {
                Some((d, text)) => records.push(Record {
                    id: p.record_id,
                    text: if text.is_empty() {
                        d.title.clone()
                    } else {
                        text
                    },
                    metadata: metadata(&d),
                }),
                // Deleted since: nothing to send any more.
                None => gone.push(p.record_id),
            },
        }
    }
    sink.failures.clear(&ns, &gone).await?;
    if !records.is_empty() {
        let r = sink.client.upsert(&ns, &records).await?;
        counts.pinecone_retried += r.done.len() as u64;
        sink.failures.clear(&ns, &r.done).await?;
        sink.failures
            .keep(&ns, Operation::Upsert, &r.failed)
            .await?;
    }
    if !deletes.is_empty() {
        let r = sink.client.delete(&ns, &deletes).await?;
        counts.pinecone_retried += r.done.len() as u64;
        sink.failures.clear(&ns, &r.done).await?;
        sink.failures
            .keep(&ns, Operation::Delete, &r.failed)
            .await?;
    }
    Ok(())
}

fn parse_position(p: &str) -> Option<(DateTime<Utc>, i64)> {
    let (t, id) = p.split_once('|')?;
    Some((
        DateTime::parse_from_rfc3339(t).ok()?.with_timezone(&Utc),
        id.parse().ok()?,
    ))
}

/// Sync the index under `workspace` (see the module docs).
pub async fn sync(
    storage: &Storage,
    workspace: &Path,
    opts: &SyncOptions,
) -> Result<SyncCounts, SearchError> {
    let dir = crate::index::index_dir(workspace);
    if opts.reindex {
        SearchIndex::destroy(&dir)?;
        store::reset(storage).await?;
    }
    let index = SearchIndex::open(&dir)?;
    let mut counts = SyncCounts::default();
    for &app in APP_TYPES {
        if !opts.app_types.is_empty() && !opts.app_types.iter().any(|a| a == app) {
            continue;
        }
        let span = tracing::info_span!("search_sync", app_type = app);
        let _e = span.enter();
        if let Some(sink) = &opts.pinecone {
            retry_failures(&index, sink, app, &mut counts).await?;
        }
        let before = counts.documents + counts.deleted;
        match app {
            "activity" => sync_activity(storage, &index, opts, &mut counts).await?,
            "library-docs" => sync_docs(storage, workspace, &index, opts, &mut counts).await?,
            "youtube" => sync_youtube(storage, &index, opts, &mut counts).await?,
            "discord" => sync_discord(storage, &index, opts, &mut counts).await?,
            _ => {}
        }
        let n = counts.documents + counts.deleted - before;
        counts.per_app_type.insert(app.to_owned(), n);
        storage
            .index_syncs()
            .record(app, crate::NAME, i64::try_from(n).unwrap_or(i64::MAX))
            .await?;
        tracing::info!(documents = n, "app type synced");
    }
    Ok(counts)
}

async fn sync_activity(
    storage: &Storage,
    index: &SearchIndex,
    opts: &SyncOptions,
    counts: &mut SyncCounts,
) -> Result<(), SearchError> {
    let mut pos = store::cursor(storage, "activity")
        .await?
        .as_deref()
        .and_then(parse_position);
    loop {
        let rows = storage.activity().changed_after(pos, BATCH).await?;
        let Some((t, id, _)) = rows.last() else {
            return Ok(());
        };
        let next = (*t, *id);
        let mut batch = Batch {
            writer: index.writer()?,
            records: Vec::new(),
            deletes: Vec::new(),
        };
        for (_, _, a) in &rows {
            batch.upsert(index, &doc::from_activity(a), opts, counts)?;
        }
        let position = format!("{}|{}", next.0.to_rfc3339(), next.1);
        finish(
            storage,
            index,
            &mut batch,
            ("activity", &position, rows.len() as u64),
            opts,
            counts,
        )
        .await?;
        pos = Some(next);
    }
}

async fn sync_docs(
    storage: &Storage,
    workspace: &Path,
    index: &SearchIndex,
    opts: &SyncOptions,
    counts: &mut SyncCounts,
) -> Result<(), SearchError> {
    use bdc_collector_library_docs::store::{PageQuery, doc_pages};
    let since = store::cursor(storage, "library-docs")
        .await?
        .and_then(|p| DateTime::parse_from_rfc3339(&p).ok())
        .map(|t| t.with_timezone(&Utc));
    let mut after = None;
    let mut newest = since;
    let mut batch = Batch {
        writer: index.writer()?,
        records: Vec::new(),
        deletes: Vec::new(),
    };
    let mut n = 0u64;
    loop {
        let pages = doc_pages(
            storage,
            workspace,
            &PageQuery {
                after: after.clone(),
                limit: u64::from(BATCH),
                include_vanished: true,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| SearchError::Source {
            app_type: "library-docs",
            detail: e.to_string(),
        })?;
        let Some(last) = pages.last() else {
            break;
        };
        after = Some((last.version.clone(), last.library.clone(), last.url.clone()));
        for p in &pages {
            if since.is_some_and(|s| p.updated_at <= s) {
                continue;
            }
            newest = newest.max(Some(p.updated_at));
            n += 1;
            if p.vanished_at.is_some() {
                batch.delete(index, &doc::doc_page_id(p), opts, counts)?;
            } else {
                batch.upsert(index, &doc::from_doc_page(p), opts, counts)?;
            }
        }
    }
    let position = newest.map(|t| t.to_rfc3339()).unwrap_or_default();
    finish(
        storage,
        index,
        &mut batch,
        ("library-docs", &position, n),
        opts,
        counts,
    )
    .await
}

async fn sync_youtube(
    storage: &Storage,
    index: &SearchIndex,
    opts: &SyncOptions,
    counts: &mut SyncCounts,
) -> Result<(), SearchError> {
    use bdc_collector_youtube_transcripts::store::{segments, videos};
    // Talks are few (hundreds) and carry no change time: rebuilt whole,
    // each replacing its earlier version by id.
    let vids = videos(storage).await?;
    let mut batch = Batch {
        writer: index.writer()?,
        records: Vec::new(),
        deletes: Vec::new(),
    };
    for v in &vids {
        let segs = segments(storage, &v.video_id).await?;
        let transcript: Vec<&str> = segs.iter().map(|s| s.text.as_str()).collect();
        batch.upsert(
            index,
            &doc::from_talk(v, &transcript.join(" ")),
            opts,
            counts,
        )?;
    }
    let position = vids.len().to_string();
    finish(
        storage,
        index,
        &mut batch,
        ("youtube", &position, vids.len() as u64),
        opts,
        counts,
    )
    .await
}

async fn sync_discord(
    storage: &Storage,
    index: &SearchIndex,
    opts: &SyncOptions,
    counts: &mut SyncCounts,
) -> Result<(), SearchError> {
    use bdc_collector_discord::store::message_texts;
    let mut after = store::cursor(storage, "discord").await?;
    loop {
        let msgs = message_texts(storage, after.as_deref(), BATCH).await?;
        let Some(last) = msgs.last() else {
            return Ok(());
        };
        let next = last.id.clone();
        let mut batch = Batch {
            writer: index.writer()?,
            records: Vec::new(),
            deletes: Vec::new(),
        };
        for m in &msgs {
            if m.deleted {
                batch.delete(index, &format!("discord:{}", m.id), opts, counts)?;
            } else {
                batch.upsert(index, &doc::from_discord(m), opts, counts)?;
            }
        }
        finish(
            storage,
            index,
            &mut batch,
            ("discord", &next, msgs.len() as u64),
            opts,
            counts,
        )
        .await?;
        after = Some(next);
    }
}
