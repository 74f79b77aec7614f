//! Activity records: the portable rows every collector writes, unique on
//! `(source_system, external_id)` and upserted idempotently.

use std::collections::BTreeMap;

use bdc_core::ActivityRecord;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row};

use crate::checkpoints::CheckpointWrite;
use crate::pg_batch::{BatchResults, Part, PgBatch};
use crate::{QueryContext, Result, Storage, StorageError, normalize_time, now, on_pool};

/// Rows per multi-row INSERT: 11 binds each stays far below both
/// backends' parameter limits (SQLite 32766, PostgreSQL 65535).
const CHUNK: usize = 1000;

/// What an upsert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct UpsertCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl UpsertCounts {
    pub fn add(&mut self, other: UpsertCounts) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

/// A stored activity record with its bookkeeping.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredActivity {
    #[serde(flatten)]
    pub record: ActivityRecord,
    /// 1 when first inserted, +1 on every real change.
    pub revision: i64,
    pub first_seen_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub run_id: Option<String>,
}

/// Filters for listing/counting activity.
#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    pub source_system: Option<String>,
    pub kind: Option<String>,
    pub actor: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: Option<u32>,
}

pub struct ActivityStore<'s> {
    pub(crate) storage: &'s Storage,
}

const UPSERT_HEAD: &str = "INSERT INTO activity_records (source_system, external_id, kind, occurred_at, actor, \
     title, url, payload, run_id, first_seen_at, updated_at) ";

const UPSERT_TAIL: &str = " ON CONFLICT (source_system, external_id) DO UPDATE SET
        kind = excluded.kind,
        occurred_at = excluded.occurred_at,
        actor = excluded.actor,
        title = excluded.title,
        url = excluded.url,
        payload = excluded.payload,
        run_id = excluded.run_id,
        updated_at = excluded.updated_at,
        revision = activity_records.revision + 1
     WHERE activity_records.kind IS DISTINCT FROM excluded.kind
        OR activity_records.occurred_at IS DISTINCT FROM excluded.occurred_at
        OR activity_records.actor IS DISTINCT FROM excluded.actor
        OR activity_records.title IS DISTINCT FROM excluded.title
        OR activity_records.url IS DISTINCT FROM excluded.url
        OR activity_records.payload IS DISTINCT FROM excluded.payload
     RETURNING revision";

/// PostgreSQL: the same upsert with one array per column (`UNNEST`): the
/// statement text does not depend on the row count, so it is prepared
/// and planned once per connection, and binding 8 arrays and 2 scalars is
/// far cheaper than 11,000 scalar parameters. `p` holds the placeholders
/// of the eight column arrays, then the run id and the time stamp.
fn pg_unnest_sql(p: &[String; 10]) -> String {
    format!(
        "{UPSERT_HEAD}SELECT s, e, k, o, a, t, u, p, {run}, {stamp}, {stamp} \
         FROM UNNEST({}::text[], {}::text[], {}::text[], {}::timestamptz[], {}::text[], {}::text[], \
         {}::text[], {}::jsonb[]) AS x (s, e, k, o, a, t, u, p){UPSERT_TAIL}",
        p[0],
        p[1],
        p[2],
        p[3],
        p[4],
        p[5],
        p[6],
        p[7],
        run = p[8],
        stamp = p[9],
    )
}

/// Records per `UNNEST` part on PostgreSQL (bounds what one statement
/// carries of this table).
const PG_CHUNK: usize = 5000;

/// Add one statement's `RETURNING revision` values to `counts`.
fn count_revisions(counts: &mut UpsertCounts, rows: usize, revisions: &[i64]) {
    let inserted = revisions.iter().filter(|r| **r == 1).count() as u64;
    let touched = revisions.len() as u64;
    counts.inserted += inserted;
    counts.updated += touched - inserted;
    counts.unchanged += rows as u64 - touched;
}

fn push_filters<DB: sqlx::Database>(qb: &mut QueryBuilder<DB>, f: &ActivityFilter)
where
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> DateTime<Utc>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    qb.push(" WHERE 1 = 1");
    if let Some(s) = &f.source_system {
        qb.push(" AND source_system = ").push_bind(s.clone());
    }
    if let Some(k) = &f.kind {
        qb.push(" AND kind = ").push_bind(k.clone());
    }
    if let Some(a) = &f.actor {
        qb.push(" AND actor = ").push_bind(a.clone());
    }
    if let Some(t) = f.since {
        qb.push(" AND occurred_at >= ").push_bind(normalize_time(t));
    }
    if let Some(t) = f.until {
        qb.push(" AND occurred_at < ").push_bind(normalize_time(t));
    }
}

/// Records reduced to the last occurrence of each key (one statement may
/// not touch the same row twice: PostgreSQL rejects it), and the counts
/// with the dropped repeats already counted as unchanged.
fn dedupe(records: &[ActivityRecord]) -> (Vec<&ActivityRecord>, UpsertCounts) {
    let mut last: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        last.insert((r.source_system(), r.external_id()), i);
    }
    let unique: Vec<&ActivityRecord> = records
        .iter()
        .enumerate()
        .filter(|(i, r)| last.get(&(r.source_system(), r.external_id())) == Some(i))
        .map(|(_, r)| r)
        .collect();
    let counts = UpsertCounts {
        unchanged: (records.len() - unique.len()) as u64,
        ..UpsertCounts::default()
    };
    (unique, counts)
}

/// PostgreSQL: an activity upsert (and the checkpoint written with it)
/// split into parts of [`PgBatch`]es, so a domain store sends its typed
/// rows, the activity records and the checkpoint as one statement. Chunk
/// `i` of the records joins batch `i`, the checkpoint batch 0; after each
/// batch, [`PgActivityUpsert::record`] takes its result. Same semantics as
/// [`ActivityStore::upsert`].
#[derive(Debug)]
pub struct PgActivityUpsert<'a> {
    unique: Vec<&'a ActivityRecord>,
    checkpoint: Option<&'a CheckpointWrite<'a>>,
    counts: UpsertCounts,
    stamp: DateTime<Utc>,
}

impl<'a> PgActivityUpsert<'a> {
    pub fn new(records: &'a [ActivityRecord], checkpoint: Option<&'a CheckpointWrite<'a>>) -> Self {
        let (unique, counts) = dedupe(records);
        Self {
            unique,
            checkpoint,
            counts,
            stamp: now(),
        }
    }

    /// How many batches the records and the checkpoint need.
    pub fn batches(&self) -> usize {
        self.unique
            .len()
            .div_ceil(PG_CHUNK)
            .max(usize::from(self.checkpoint.is_some()))
    }

    /// Push chunk `i` of the records onto `batch` (nothing when there is
    /// no such chunk), and with chunk 0 the checkpoint.
    pub fn push_chunk(
        &self,
        batch: &mut PgBatch,
        i: usize,
        run_id: Option<&str>,
    ) -> Result<Option<ActivityPart>> {
        if i == 0
            && let Some(cp) = self.checkpoint
        {
            crate::checkpoints::push_pg(batch, cp, self.stamp)?;
        }
        let Some(chunk) = self.unique.chunks(PG_CHUNK).nth(i) else {
            return Ok(None);
        };
        const W: &str = "binding activity records";
        let s = batch.bind(
            chunk.iter().map(|r| r.source_system()).collect::<Vec<_>>(),
            W,
        )?;
        let e = batch.bind(chunk.iter().map(|r| r.external_id()).collect::<Vec<_>>(), W)?;
        let k = batch.bind(chunk.iter().map(|r| r.kind()).collect::<Vec<_>>(), W)?;
        let o = batch.bind(
            chunk
                .iter()
                .map(|r| normalize_time(r.occurred_at()))
                .collect::<Vec<_>>(),
            W,
        )?;
        let a = batch.bind(chunk.iter().map(|r| r.actor()).collect::<Vec<_>>(), W)?;
        let t = batch.bind(chunk.iter().map(|r| r.title()).collect::<Vec<_>>(), W)?;
        let u = batch.bind(chunk.iter().map(|r| r.url()).collect::<Vec<_>>(), W)?;
        let p = batch.bind(
            chunk.iter().map(|r| Json(r.payload())).collect::<Vec<_>>(),
            W,
        )?;
        let run = batch.bind(run_id, W)?;
        let stamp = batch.bind(self.stamp, W)?;
        let sql = pg_unnest_sql(&[s, e, k, o, a, t, u, p, run, stamp]);
        Ok(Some(ActivityPart {
            part: batch.push_int8s(sql, "upserting activity records"),
            rows: chunk.len(),
        }))
    }

    /// Count the result of a part pushed by [`Self::push_chunk`] (every
    /// pushed part must be recorded, or the counts come out short).
    pub fn record(&mut self, results: &BatchResults, part: ActivityPart) {
        count_revisions(&mut self.counts, part.rows, results.int8s(part.part));
    }

    /// What the upsert did.
    pub fn counts(&self) -> UpsertCounts {
        self.counts
    }
}

/// A chunk of activity records pushed onto a [`PgBatch`], to hand back to
/// [`PgActivityUpsert::record`] with the batch's results.
#[derive(Debug, Clone, Copy)]
#[must_use = "record the part's result with PgActivityUpsert::record"]
pub struct ActivityPart {
    part: Part,
    rows: usize,
}

/// [`ActivityStore::upsert`] inside a caller's open write transaction, so a
/// domain store can write its typed rows, the activity records and the
/// checkpoint atomically (all or nothing). Same semantics as `upsert`.
pub async fn upsert_in_tx(
    tx: &mut crate::Tx,
    records: &[ActivityRecord],
    run_id: Option<&str>,
    checkpoint: Option<&CheckpointWrite<'_>>,
) -> Result<UpsertCounts> {
    let counts = match &mut *tx {
        crate::Tx::Postgres(t) => {
            let mut up = PgActivityUpsert::new(records, checkpoint);
            for i in 0..up.batches() {
                let mut batch = PgBatch::new();
                let part = up.push_chunk(&mut batch, i, run_id)?;
                let results = batch.execute(t).await?;
                if let Some(part) = part {
                    up.record(&results, part);
                }
            }
            up.counts()
        }
        crate::Tx::Sqlite(t) => {
            let (unique, mut counts) = dedupe(records);
            let stamp = now();
            for chunk in unique.chunks(CHUNK) {
                let mut qb = QueryBuilder::new(UPSERT_HEAD);
                qb.push_values(chunk.iter(), |mut b, r| {
                    b.push_bind(r.source_system())
                        .push_bind(r.external_id())
                        .push_bind(r.kind())
                        .push_bind(normalize_time(r.occurred_at()))
                        .push_bind(r.actor())
                        .push_bind(r.title())
                        .push_bind(r.url())
                        .push_bind(Json(r.payload()))
                        .push_bind(run_id)
                        .push_bind(stamp)
                        .push_bind(stamp);
                });
                qb.push(UPSERT_TAIL);
                let revisions: Vec<i64> = qb
                    .build_query_scalar()
                    .fetch_all(&mut **t)
                    .await
                    .ctx("upserting activity records")?;
                count_revisions(&mut counts, chunk.len(), &revisions);
            }
            if let Some(cp) = checkpoint {
                crate::checkpoints::write_in_tx(
                    tx,
                    cp,
                    stamp,
                    "writing a checkpoint with its data",
                )
                .await?;
            }
            counts
        }
    };
    Ok(counts)
}

impl ActivityStore<'_> {
    /// Insert new records, update changed ones, leave identical ones alone
    /// (an unchanged record is not rewritten, so its revision, its
    /// `updated_at` and any audit trail stay quiet). The optional checkpoint
    /// is written in the same transaction: both land or neither does.
    ///
    /// Records repeated within `records` are reduced to their last
    /// occurrence.
    pub async fn upsert(
        &self,
        records: &[ActivityRecord],
        run_id: Option<&str>,
        checkpoint: Option<&CheckpointWrite<'_>>,
    ) -> Result<UpsertCounts> {
        let mut tx = self.storage.begin().await?;
        let counts = upsert_in_tx(&mut tx, records, run_id, checkpoint).await?;
        tx.commit().await?;
        Ok(counts)
    }

    /// Records matching `filter`, newest `occurred_at` first.
    pub async fn list(&self, filter: &ActivityFilter) -> Result<Vec<StoredActivity>> {
        let limit = i64::from(filter.limit.unwrap_or(50));
        on_pool!(self.storage, p => {
            let mut qb = QueryBuilder::new(
                "SELECT source_system, external_id, kind, occurred_at, actor, title, url, payload, \
                 revision, first_seen_at, updated_at, run_id FROM activity_records",
            );
            push_filters(&mut qb, filter);
            qb.push(" ORDER BY occurred_at DESC, id DESC LIMIT ").push_bind(limit);
            let rows = qb.build().fetch_all(p).await.ctx("listing activity records")?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let payload: Json<serde_json::Value> = row.try_get("payload").ctx("decoding an activity record")?;
                let record = decode_record(
                    row.try_get("source_system").ctx("decoding an activity record")?,
                    row.try_get("external_id").ctx("decoding an activity record")?,
                    row.try_get("occurred_at").ctx("decoding an activity record")?,
                    row.try_get("kind").ctx("decoding an activity record")?,
                    row.try_get("actor").ctx("decoding an activity record")?,
                    row.try_get("title").ctx("decoding an activity record")?,
                    row.try_get("url").ctx("decoding an activity record")?,
                    payload.0,
                )?;
                out.push(StoredActivity {
                    record,
                    revision: row.try_get("revision").ctx("decoding an activity record")?,
                    first_seen_at: row.try_get("first_seen_at").ctx("decoding an activity record")?,
                    updated_at: row.try_get("updated_at").ctx("decoding an activity record")?,
                    run_id: row.try_get("run_id").ctx("decoding an activity record")?,
                });
            }
            Ok(out)
        })
    }

    /// Records changed (inserted or really updated) after the position
    /// `after` = (updated_at, id), oldest change first, at most `limit`,
    /// each with its position: the read path of an incremental index sync
    /// (resume from the last position it committed).
    pub async fn changed_after(
        &self,
        after: Option<(DateTime<Utc>, i64)>,
        limit: u32,
    ) -> Result<Vec<(DateTime<Utc>, i64, StoredActivity)>> {
        // `updated_at >= $1` bounds the index range
        // (`activity_records_updated_idx`); no cursor reads from the epoch.
        let (at, id) = after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, i64::MIN));
        on_pool!(self.storage, p => {
            let rows = sqlx::query(
                "SELECT id, source_system, external_id, kind, occurred_at, actor, title, url, payload, \
                 revision, first_seen_at, updated_at, run_id FROM activity_records \
                 WHERE updated_at >= $1 AND (updated_at > $1 OR id > $2) \
                 ORDER BY updated_at, id LIMIT $3",
            )
            .bind(normalize_time(at))
            .bind(id)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await
            .ctx("listing changed activity records")?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let payload: Json<serde_json::Value> = row.try_get("payload").ctx("decoding an activity record")?;
                let record = decode_record(
                    row.try_get("source_system").ctx("decoding an activity record")?,
                    row.try_get("external_id").ctx("decoding an activity record")?,
                    row.try_get("occurred_at").ctx("decoding an activity record")?,
                    row.try_get("kind").ctx("decoding an activity record")?,
                    row.try_get("actor").ctx("decoding an activity record")?,
                    row.try_get("title").ctx("decoding an activity record")?,
                    row.try_get("url").ctx("decoding an activity record")?,
                    payload.0,
                )?;
                let updated_at: DateTime<Utc> = row.try_get("updated_at").ctx("decoding an activity record")?;
                let rid: i64 = row.try_get("id").ctx("decoding an activity record")?;
                out.push((updated_at, rid, StoredActivity {
                    record,
                    revision: row.try_get("revision").ctx("decoding an activity record")?,
                    first_seen_at: row.try_get("first_seen_at").ctx("decoding an activity record")?,
                    updated_at,
                    run_id: row.try_get("run_id").ctx("decoding an activity record")?,
                }));
            }
            Ok(out)
        })
    }

    /// Number of records matching `filter` (its `limit` is ignored).
    pub async fn count(&self, filter: &ActivityFilter) -> Result<u64> {
        on_pool!(self.storage, p => {
            let mut qb = QueryBuilder::new("SELECT COUNT(*) FROM activity_records");
            push_filters(&mut qb, filter);
            let n: i64 = qb.build_query_scalar().fetch_one(p).await.ctx("counting activity records")?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn decode_record(
    source_system: String,
    external_id: String,
    occurred_at: DateTime<Utc>,
    kind: String,
    actor: Option<String>,
    title: Option<String>,
    url: Option<String>,
    payload: serde_json::Value,
) -> Result<ActivityRecord> {
    let corrupt = |e: bdc_core::ProtocolError| StorageError::Corrupt {
        context: "decoding an activity record",
        detail: e.to_string(),
    };
    let mut rec =
        ActivityRecord::new(source_system, external_id, occurred_at, kind).map_err(corrupt)?;
    if let Some(a) = actor {
        rec = rec.with_actor(a).map_err(corrupt)?;
    }
    if let Some(t) = title {
        rec = rec.with_title(t);
    }
    if let Some(u) = url {
        rec = rec.with_url(u).map_err(corrupt)?;
    }
    rec.with_payload(payload).map_err(corrupt)
}
