//! The incremental sync (`search-index-sync`): for each app type, read what
//! changed since its cursor through the collectors' public reads, replace
//! or delete those documents in the index, commit, then move the cursor
//! (never before the commit: a killed sync redoes the last batch, and
//! replacing by document id makes that idempotent). With Pinecone
//! configured the same chunks go to Pinecone by namespace; ids that fail
//! are kept and retried first on the next run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bdc_pinecone::{FailedRecord, FailureStore, Operation, PineconeClient, Record, SyncReport};
use bdc_storage::Storage;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tracing::Instrument;

use crate::SearchError;
use crate::chunk::ChunkConfig;
use crate::doc::{self, SearchDoc};
use crate::index::{SearchIndex, Writer};
use crate::store;

/// The app types this build indexes, in sync order.
pub const APP_TYPES: &[&str] = &[
    "activity",
    "mailing-list",
    "library-docs",
    "youtube",
    "discord",
    "slack",
];

/// Sources whose activity records are not indexed as such: their own app
/// type indexes them with their texts (mail bodies with their thread,
/// Discord reply chains, Slack hours).
const GROUPED_SOURCES: &[&str] = &["mailing-list", "discord", "slack"];

/// Documents per batch (one commit and one cursor move per batch).
const BATCH: u32 = 2000;

/// Allowance for clock skew between the writers' `updated_at` stamps and
/// the database's transaction start times (see `sync_activity`).
const HORIZON_MARGIN: chrono::Duration = chrono::Duration::seconds(5);

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
#[derive(Debug, Default)]
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
    /// Documents in the index after the sync (all app types).
    pub index_documents: u64,
    /// A Pinecone call that failed as a whole (its ids were kept): the run
    /// reports it as failed.
    pub pinecone_error: Option<bdc_pinecone::PineconeError>,
}

struct Batch<'b, 'a> {
    writer: &'b mut Writer<'a>,
    /// (namespace-independent) chunk records to send, and chunk ids to delete.
    records: Vec<Record>,
    deletes: Vec<String>,
}

/// The index writer of one sync: opened on first use (a sync with nothing
/// to do never takes the writer lock), kept across batches (one commit
/// each) so tantivy's background merges keep the segment count low, and
/// waited for at the end (merges finished, segments merged).
struct LazyWriter<'a> {
    index: &'a SearchIndex,
    writer: Option<Writer<'a>>,
}

impl<'a> LazyWriter<'a> {
    fn get(&mut self) -> Result<&mut Writer<'a>, SearchError> {
        if self.writer.is_none() {
            self.writer = Some(self.index.writer()?);
        }
        self.writer.as_mut().ok_or_else(|| SearchError::Index {
            dir: self.index.dir().to_path_buf(),
            what: "opening the writer",
            detail: "no writer".into(),
        })
    }

    fn finish(self) -> Result<(), SearchError> {
        match self.writer {
            Some(w) => w.wait_merges(),
            None => Ok(()),
        }
    }
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

impl<'b, 'a> Batch<'b, 'a> {
    fn new(writer: &'b mut Writer<'a>) -> Self {
        Batch {
            writer,
            records: Vec::new(),
            deletes: Vec::new(),
        }
    }

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

    /// [`delete`](Self::delete) when the committed index holds `doc_id`
    /// (a document that was never indexed is not counted as deleted).
    fn delete_if_indexed(
        &mut self,
        index: &SearchIndex,
        doc_id: &str,
        opts: &SyncOptions,
        counts: &mut SyncCounts,
    ) -> Result<(), SearchError> {
        if index.contains(doc_id)? {
            self.delete(index, doc_id, opts, counts)?;
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
    batch: &mut Batch<'_, '_>,
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
            let r = match sink.client.upsert(&ns, &records).await {
                Ok(r) => r,
                // A whole-call failure (the index cannot be described, say):
                // keep every id so nothing computed here is lost when the
                // cursor moves.
                Err(e) => failed_all(records.iter().map(|r| r.id.clone()), e, counts),
            };
            counts.pinecone_upserted += r.done.len() as u64;
            counts.pinecone_failed += r.failed.len() as u64;
            // An id kept from an earlier run and written now is done.
            sink.failures.clear(&ns, &r.done).await?;
            sink.failures
                .keep(&ns, Operation::Upsert, &r.failed)
                .await?;
        }
        let deletes = std::mem::take(&mut batch.deletes);
        if !deletes.is_empty() {
            let r = match sink.client.delete(&ns, &deletes).await {
                Ok(r) => r,
                Err(e) => failed_all(deletes.iter().cloned(), e, counts),
            };
            counts.pinecone_deleted += r.done.len() as u64;
            counts.pinecone_failed += r.failed.len() as u64;
            sink.failures.clear(&ns, &r.done).await?;
            sink.failures
                .keep(&ns, Operation::Delete, &r.failed)
                .await?;
        }
    }
    store::set_cursor(storage, app_type, position, docs).await?;
    Ok(())
}

/// Every id of a call that failed as a whole, as failures to keep.
/// The first such failure is kept in `counts.pinecone_error`: the run
/// fails once the index and the cursors are safe.
fn failed_all(
    ids: impl Iterator<Item = String>,
    e: bdc_pinecone::PineconeError,
    counts: &mut SyncCounts,
) -> SyncReport {
    tracing::warn!(error = %e, "Pinecone call failed; its ids are kept for the next run");
    let error = e.to_string();
    if counts.pinecone_error.is_none() {
        counts.pinecone_error = Some(e);
    }
    SyncReport {
        done: Vec::new(),
        failed: ids
            .map(|id| FailedRecord {
                id,
                error: error.clone(),
            })
            .collect(),
        requests: 0,
    }
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
        // A whole-call failure leaves the ids kept for the next run.
        let r = sink
            .client
            .upsert(&ns, &records)
            .await
            .unwrap_or_else(|e| failed_all(records.iter().map(|r| r.id.clone()), e, counts));
        counts.pinecone_retried += r.done.len() as u64;
        sink.failures.clear(&ns, &r.done).await?;
        sink.failures
            .keep(&ns, Operation::Upsert, &r.failed)
            .await?;
    }
    if !deletes.is_empty() {
        let r = sink
            .client
            .delete(&ns, &deletes)
            .await
            .unwrap_or_else(|e| failed_all(deletes.iter().cloned(), e, counts));
        counts.pinecone_retried += r.done.len() as u64;
        sink.failures.clear(&ns, &r.done).await?;
        sink.failures
            .keep(&ns, Operation::Delete, &r.failed)
            .await?;
    }
    Ok(())
}

/// Before a change-feed read: rows stamped after this time may still be
/// committed by a transaction open now (PostgreSQL; see
/// [`Storage::oldest_open_transaction`]).
async fn horizon(storage: &Storage) -> Result<Option<DateTime<Utc>>, SearchError> {
    Ok(storage
        .oldest_open_transaction()
        .await?
        .map(|t| t - HORIZON_MARGIN))
}

/// Where a feed cursor must stay after a read up to `read_at`: at the
/// lowest horizon any read of this sync went past (what lies after it is
/// read again; rebuilding a document is idempotent), else None (the read
/// position). `floor` carries that lowest horizon across the batches of
/// one sync: a later batch read after the open transaction committed must
/// not move the cursor past rows that transaction wrote.
fn held(
    floor: &mut Option<DateTime<Utc>>,
    read_at: DateTime<Utc>,
    horizon: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    if let Some(h) = horizon.filter(|h| read_at >= *h) {
        *floor = Some(floor.map_or(h, |f| f.min(h)));
    }
    *floor
}

/// The `T|A|B` cursor to store after a read up to `next` (see [`held`]).
fn triple_position(
    floor: &mut Option<DateTime<Utc>>,
    next: &(DateTime<Utc>, String, String),
    horizon: Option<DateTime<Utc>>,
) -> String {
    match held(floor, next.0, horizon) {
        Some(h) => format!("{}||", h.to_rfc3339()),
        None => format!("{}|{}|{}", next.0.to_rfc3339(), next.1, next.2),
    }
}

/// A `T|A|B` cursor (B, the last field, may hold `|`: a mail message id).
fn parse_triple(p: &str) -> Option<(DateTime<Utc>, String, String)> {
    let mut it = p.splitn(3, '|');
    let t = DateTime::parse_from_rfc3339(it.next()?)
        .ok()?
        .with_timezone(&Utc);
    Some((t, it.next()?.to_owned(), it.next()?.to_owned()))
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
    let index = match SearchIndex::open(&dir) {
        Err(SearchError::Layout { .. }) => {
            // Built by another version of bdc: rebuilt from the database.
            tracing::warn!(dir = %dir.display(), "search index of another layout: rebuilding it");
            SearchIndex::destroy(&dir)?;
            store::reset(storage).await?;
            SearchIndex::open(&dir)?
        }
        r => r?,
    };
    let mut counts = SyncCounts::default();
    let mut w = LazyWriter {
        index: &index,
        writer: None,
    };
    for &app in APP_TYPES {
        if !opts.app_types.is_empty() && !opts.app_types.iter().any(|a| a == app) {
            continue;
        }
        let span = tracing::info_span!("search_sync", app_type = app);
        sync_app(storage, workspace, &index, &mut w, opts, app, &mut counts)
            .instrument(span)
            .await?;
    }
    w.finish()?;
    index.reload()?;
    counts.index_documents = index.documents()?;
    Ok(counts)
}

/// One app type: retry kept Pinecone failures, sync, record the sync.
async fn sync_app(
    storage: &Storage,
    workspace: &Path,
    index: &SearchIndex,
    w: &mut LazyWriter<'_>,
    opts: &SyncOptions,
    app: &str,
    counts: &mut SyncCounts,
) -> Result<(), SearchError> {
    if let Some(sink) = &opts.pinecone {
        retry_failures(index, sink, app, counts).await?;
    }
    let before = counts.documents + counts.deleted;
    match app {
        "activity" => sync_activity(storage, index, w, opts, counts).await?,
        "library-docs" => sync_docs(storage, workspace, index, w, opts, counts).await?,
        "youtube" => sync_youtube(storage, index, w, opts, counts).await?,
        "discord" => sync_discord(storage, index, w, opts, counts).await?,
        "slack" => sync_slack(storage, index, w, opts, counts).await?,
        "mailing-list" => sync_mail(storage, index, w, opts, counts).await?,
        _ => {}
    }
    let n = counts.documents + counts.deleted - before;
    counts.per_app_type.insert(app.to_owned(), n);
    storage
        .index_syncs()
        .record(app, crate::NAME, i64::try_from(n).unwrap_or(i64::MAX))
        .await?;
    tracing::info!(documents = n, "app type synced");
    Ok(())
}

async fn sync_activity(
    storage: &Storage,
    index: &SearchIndex,
    w: &mut LazyWriter<'_>,
    opts: &SyncOptions,
    counts: &mut SyncCounts,
) -> Result<(), SearchError> {
    // The cursor is `T|ID`, or `T|ID|T2|ID2` when it was held back: rows
    // up to (T2, ID2) were read, but a transaction open at the time could
    // still commit rows stamped after (T, ID); the next sync reads from
    // (T, ID) again and skips what it finds indexed at the same version.
    let stored = store::cursor(storage, "activity").await?;
    let (mut pos, read_up_to) = match stored.as_deref() {
        Some(p) => match p.splitn(3, '|').collect::<Vec<_>>().as_slice() {
            [t, id, rest] => (parse_position(&format!("{t}|{id}")), parse_position(rest)),
            _ => (parse_position(p), None),
        },
        None => (None, None),
    };
    let mut floor = None;
    loop {
        // Before the read: a transaction open now may commit rows stamped
        // before what this read returns.
        let horizon = horizon(storage).await?;
        let rows = storage.activity().changed_after(pos, BATCH).await?;
        let Some((t, id, _)) = rows.last() else {
            return Ok(());
        };
        let next = (*t, *id);
        let mut batch = Batch::new(w.get()?);
        for (t, id, a) in &rows {
            // Indexed by their own app type (an index of the earlier
            // layout, which had them alone, is rebuilt whole).
            if GROUPED_SOURCES.contains(&a.record.source_system()) {
                continue;
            }
            let d = doc::from_activity(a);
            let reread = read_up_to.is_some_and(|c| (*t, *id) <= c);
            if reread && index.version_of(&d.doc_id)? == Some(d.version) {
                continue;
            }
            batch.upsert(index, &d, opts, counts)?;
        }
        let read = format!("{}|{}", next.0.to_rfc3339(), next.1);
        let position = match held(&mut floor, next.0, horizon) {
            Some(h) => {
                // Keep the furthest point ever read, so re-reads stay cheap.
                let up_to = match read_up_to {
                    Some(r) if r > next => r,
                    _ => next,
                };
                format!(
                    "{}|{}|{}|{}",
                    h.to_rfc3339(),
                    i64::MIN,
                    up_to.0.to_rfc3339(),
                    up_to.1
                )
            }
            None => read,
        };
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
    w: &mut LazyWriter<'_>,
    opts: &SyncOptions,
    counts: &mut SyncCounts,
) -> Result<(), SearchError> {
    use bdc_collector_library_docs::store::{PageQuery, doc_pages};
    let stored = store::cursor(storage, "library-docs").await?;
    let since = stored
        .as_deref()
        .and_then(|p| DateTime::parse_from_rfc3339(p).ok())
        .map(|t| t.with_timezone(&Utc));
    let horizon = horizon(storage).await?;
    let mut after = None;
    let mut newest = since;
    let mut n = 0u64;
    // Pages come in key order, not time order: each batch is committed to
    // the index (replacing by id is idempotent) but the cursor moves only
    // after the last one.
    loop {
        let pages = doc_pages(
            storage,
            workspace,
            &PageQuery {
                after: after.clone(),
                limit: u64::from(BATCH),
                include_vanished: true,
                updated_after: since,
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
        let mut batch = Batch::new(w.get()?);
        for p in &pages {
            newest = newest.max(Some(p.updated_at));
            n += 1;
            if p.vanished_at.is_some() {
                batch.delete(index, &doc::doc_page_id(p), opts, counts)?;
            } else {
                batch.upsert(index, &doc::from_doc_page(p), opts, counts)?;
            }
        }
        let unchanged = stored.clone().unwrap_or_default();
        finish(
            storage,
            index,
            &mut batch,
            ("library-docs", &unchanged, pages.len() as u64),
            opts,
            counts,
        )
        .await?;
    }
    if n == 0 {
        return Ok(());
    }
    // Held behind a transaction still open (PostgreSQL): pages it writes
    // may carry earlier stamps.
    let newest = match (newest, horizon) {
        (Some(t), Some(h)) if t >= h => Some(h),
        (t, _) => t,
    };
    let position = newest.map(|t| t.to_rfc3339()).unwrap_or_default();
    // The documents were counted batch by batch.
    store::set_cursor(storage, "library-docs", &position, 0).await?;
    Ok(())
}

async fn sync_youtube(
    storage: &Storage,
    index: &SearchIndex,
    w: &mut LazyWriter<'_>,
    opts: &SyncOptions,
    counts: &mut SyncCounts,
) -> Result<(), SearchError> {
    use bdc_collector_youtube_transcripts::store::{segments, videos};
    // Talks are few (hundreds) and carry no change time: read whole; a
    // talk indexed at the same version (a hash of its text) is skipped,
    // so Pinecone is not sent it again.
    let vids = videos(storage).await?;
    let mut docs = Vec::new();
    for v in &vids {
        let segs = segments(storage, &v.video_id).await?;
        let transcript: Vec<&str> = segs.iter().map(|s| s.text.as_str()).collect();
        let d = doc::from_talk(v, &transcript.join(" "));
        if index.version_of(&d.doc_id)? != Some(d.version) {
            docs.push(d);
        }
    }
    let position = vids.len().to_string();
    if docs.is_empty() {
        // Nothing to write: no writer, no commit.
        return Ok(());
    }
    let mut batch = Batch::new(w.get()?);
    for d in &docs {
        batch.upsert(index, d, opts, counts)?;
    }
    finish(
        storage,
        index,
        &mut batch,
        ("youtube", &position, docs.len() as u64),
        opts,
        counts,
    )
    .await
}

/// Discord, one document per reply chain (`discord:<root id>`), following
/// the messages' change feed (`updated_at`), so edits and deletions after
/// indexing reach the index. A message indexed as its own chain before its
/// parent was stored is dropped when the parent's chain is rebuilt.
async fn sync_discord(
    storage: &Storage,
    index: &SearchIndex,
    w: &mut LazyWriter<'_>,
    opts: &SyncOptions,
    counts: &mut SyncCounts,
) -> Result<(), SearchError> {
    use bdc_collector_discord::store::{chain_root, changed_messages, reply_chain};
    let cursor = store::cursor(storage, "discord").await?;
    // A cursor of an earlier build (a bare message id) starts over.
    let mut pos: Option<(DateTime<Utc>, String)> = cursor.as_deref().and_then(|p| {
        let (t, id) = p.split_once('|')?;
        Some((
            DateTime::parse_from_rfc3339(t).ok()?.with_timezone(&Utc),
            id.to_owned(),
        ))
    });
    let mut floor = None;
    loop {
        let horizon = horizon(storage).await?;
        let changed = changed_messages(
            storage,
            pos.as_ref().map(|(t, id)| (*t, id.as_str())),
            BATCH,
        )
        .await?;
        let Some((t, id)) = changed.last() else {
            return Ok(());
        };
        let next = (*t, id.clone());
        let mut batch = Batch::new(w.get()?);
        let mut roots = BTreeSet::new();
        for (_, id) in &changed {
            roots.insert(chain_root(storage, id).await?);
        }
        for root in &roots {
            let chain = reply_chain(storage, root).await?;
            // A message indexed as its own chain before its parent was
            // stored (a backfill of older history) now belongs to this one.
            for m in chain.iter().filter(|m| m.id != *root) {
                batch.delete_if_indexed(index, &format!("discord:{}", m.id), opts, counts)?;
            }
            match doc::from_discord_chain(&chain) {
                Some(d) => batch.upsert(index, &d, opts, counts)?,
                None => batch.delete_if_indexed(index, &format!("discord:{root}"), opts, counts)?,
            }
        }
        let position = match held(&mut floor, next.0, horizon) {
            Some(h) => format!("{}|", h.to_rfc3339()),
            None => format!("{}|{}", next.0.to_rfc3339(), next.1),
        };
        finish(
            storage,
            index,
            &mut batch,
            ("discord", &position, changed.len() as u64),
            opts,
            counts,
        )
        .await?;
        pos = Some(next);
    }
}

/// Slack, one document per user, channel and hour (as the original groups
/// messages), following the messages' change feed (`updated_at`): a
/// changed message rebuilds its hour's document; an hour with no live
/// message left is deleted.
async fn sync_slack(
    storage: &Storage,
    index: &SearchIndex,
    w: &mut LazyWriter<'_>,
    opts: &SyncOptions,
    counts: &mut SyncCounts,
) -> Result<(), SearchError> {
    use bdc_collector_slack::store::{changed_messages, conversation, names, team_domain};
    let mut pos = store::cursor(storage, "slack")
        .await?
        .as_deref()
        .and_then(parse_triple);
    let mut lookups = None;
    let mut floor = None;
    loop {
        let horizon = horizon(storage).await?;
        let changed = changed_messages(
            storage,
            pos.as_ref().map(|(t, c, ts)| (*t, c.as_str(), ts.as_str())),
            BATCH,
        )
        .await?;
        let Some(last) = changed.last() else {
            return Ok(());
        };
        let next = (last.updated_at, last.channel_id.clone(), last.ts.clone());
        if lookups.is_none() {
            lookups = Some((names(storage).await?, team_domain(storage).await?));
        }
        let Some((names, domain)) = &lookups else {
            return Ok(());
        };
        let groups: BTreeSet<(String, Option<String>, i64)> = changed
            .iter()
            .map(|m| {
                let secs = m.posted_at.timestamp();
                (
                    m.channel_id.clone(),
                    m.user_id.clone(),
                    secs - secs.rem_euclid(3600),
                )
            })
            .collect();
        let mut batch = Batch::new(w.get()?);
        for (channel, user, hour) in &groups {
            let msgs = conversation(
                storage,
                channel,
                user.as_deref(),
                &format!("{hour}.000000"),
                &format!("{}.000000", hour + 3600),
            )
            .await?;
            let g = doc::SlackGroup {
                channel_id: channel,
                channel_name: names.channels.get(channel).map(String::as_str),
                user_id: user.as_deref(),
                actor: user
                    .as_deref()
                    .and_then(|u| names.actors.get(u))
                    .map(String::as_str),
                hour_start: *hour,
                domain: domain.as_deref(),
            };
            match doc::from_slack_hour(&g, &msgs) {
                Some(d) => batch.upsert(index, &d, opts, counts)?,
                None => batch.delete_if_indexed(
                    index,
                    &doc::slack_doc_id(channel, user.as_deref(), *hour),
                    opts,
                    counts,
                )?,
            }
        }
        let position = triple_position(&mut floor, &next, horizon);
        finish(
            storage,
            index,
            &mut batch,
            ("slack", &position, changed.len() as u64),
            opts,
            counts,
        )
        .await?;
        pos = Some(next);
    }
}

/// Mailing-list messages with their bodies and thread subject, following
/// the messages' change feed (`updated_at`).
async fn sync_mail(
    storage: &Storage,
    index: &SearchIndex,
    w: &mut LazyWriter<'_>,
    opts: &SyncOptions,
    counts: &mut SyncCounts,
) -> Result<(), SearchError> {
    use bdc_collector_mailing_list::store::changed_messages;
    let mut pos = store::cursor(storage, "mailing-list")
        .await?
        .as_deref()
        .and_then(parse_triple);
    let mut floor = None;
    loop {
        let horizon = horizon(storage).await?;
        let msgs = changed_messages(
            storage,
            pos.as_ref().map(|(t, l, id)| (*t, l.as_str(), id.as_str())),
            BATCH,
        )
        .await?;
        let Some(last) = msgs.last() else {
            return Ok(());
        };
        let next = (last.updated_at, last.list.clone(), last.message_id.clone());
        let mut batch = Batch::new(w.get()?);
        for m in &msgs {
            batch.upsert(index, &doc::from_mail(m), opts, counts)?;
        }
        let position = triple_position(&mut floor, &next, horizon);
        finish(
            storage,
            index,
            &mut batch,
            ("mailing-list", &position, msgs.len() as u64),
            opts,
            counts,
        )
        .await?;
        pos = Some(next);
    }
}
