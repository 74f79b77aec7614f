//! The `wg21-papers` collector: WG21 (C++ committee) papers, issues and
//! standing documents from the wg21.link index (`https://wg21.link/index.json`
//! or `BDC_WG21_INDEX_URL`), stored as [`ActivityRecord`]s with
//! `source_system = "wg21"` and `external_id` = the document number.
//!
//! `bdc run wg21-papers [--index <URL|PATH>] [--full] [--from-archive]`
//!
//! # Incremental and idempotent
//! One checkpoint (collector `wg21-papers`, scope `index`) holds the
//! content hash of the last stored index body ([`hash::content_token`]) and
//! the extras `source`, `etag`, `last_modified`, `papers` (records stored),
//! `entries`, `max_date`. A run:
//! 1. over HTTP, sends `If-None-Match` / `If-Modified-Since` from the
//!    checkpoint when it was taken from the same URL; `304` → success,
//!    `fetched = 0`, `unchanged = papers`, nothing written;
//! 2. archives the body (see [`archive`]) and parses it (a top level that is
//!    not an object is a `parse` failure: nothing written);
//! 3. if the body's hash equals the checkpoint token → nothing written
//!    (only the validators are refreshed if the server changed them);
//! 4. otherwise upserts every record in batches of [`BATCH_SIZE`]; the
//!    storage layer leaves identical rows alone and reports
//!    inserted/updated/unchanged. The checkpoint is written in the same
//!    transaction as the *last* batch, so a run that dies midway leaves the
//!    old checkpoint and the next run redoes the work idempotently.
//!
//! `--full` ignores the checkpoint (no conditional request, no hash
//! shortcut). `--from-archive` re-parses the newest archived body.
//!
//! Counts: `fetched` (entries in the index), `inserted`, `updated`,
//! `unchanged`, `skipped_no_date`, `skipped_invalid`, `partial_date`.

use std::time::Instant;

use async_trait::async_trait;
use bdc_collector::{CollectContext, Collector};
use bdc_core::{ActivityRecord, BoxError, IncrementalState, TrackerResult};
use bdc_storage::activity::UpsertCounts;
use bdc_storage::checkpoints::CheckpointWrite;
use serde_json::{Map, Value, json};

pub mod archive;
mod error;
pub mod hash;
pub mod parse;
pub mod source;

pub use error::Wg21Error;
pub use parse::{ParsedIndex, SOURCE_SYSTEM, parse_index};
pub use source::{IndexSource, Wg21Args};

use source::{FetchOutcome, Fetched, Validators};

/// Stable collector name.
pub const NAME: &str = "wg21-papers";
/// Checkpoint scope of the index.
pub const CHECKPOINT_SCOPE: &str = "index";
/// Records per upsert transaction.
pub const BATCH_SIZE: usize = 1000;

/// The `wg21-papers` collector.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wg21PapersCollector;

#[async_trait]
impl Collector for Wg21PapersCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn args_command(&self) -> Option<clap::Command> {
        Some(<source::Wg21Args as clap::CommandFactory>::command())
    }

    fn validate_config(&self, ctx: &CollectContext) -> Result<(), BoxError> {
        let args = Wg21Args::parse_args(&ctx.args).map_err(Wg21Error::into_box)?;
        if !args.from_archive {
            resolve_source(&args, ctx).map_err(Wg21Error::into_box)?;
        }
        Ok(())
    }

    async fn collect(&self, ctx: &CollectContext) -> Result<TrackerResult, BoxError> {
        let args = Wg21Args::parse_args(&ctx.args).map_err(Wg21Error::into_box)?;
        collect_index(ctx, &args).await.map_err(Wg21Error::into_box)
    }
}

fn resolve_source(args: &Wg21Args, ctx: &CollectContext) -> Result<IndexSource, Wg21Error> {
    IndexSource::parse(
        args.index
            .as_deref()
            .unwrap_or(ctx.config.wg21_index_url.as_str()),
    )
}

/// What the previous checkpoint says.
#[derive(Debug, Clone, Default)]
struct Previous {
    token: String,
    source: Option<String>,
    validators: Validators,
    papers: u64,
}

impl Previous {
    fn from_state(state: &IncrementalState) -> Self {
        let s = |k: &str| {
            state
                .extras()
                .get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Previous {
            token: state.checkpoint_token().to_owned(),
            source: s("source"),
            validators: Validators {
                etag: s("etag"),
                last_modified: s("last_modified"),
            },
            papers: state
                .extras()
                .get("papers")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        }
    }
}

fn count(result: &mut TrackerResult, name: &str, n: u64) {
    // Names are fixed lower-case identifiers: `add` cannot fail on them.
    if let Err(e) = result.add(name, n) {
        tracing::error!(count = name, error = %e, "invalid count name");
    }
}

fn result_with(parsed: Option<&ParsedIndex>, upserted: UpsertCounts) -> TrackerResult {
    let mut r = TrackerResult::ok();
    count(&mut r, "fetched", parsed.map_or(0, |p| p.entries));
    count(&mut r, "inserted", upserted.inserted);
    count(&mut r, "updated", upserted.updated);
    count(&mut r, "unchanged", upserted.unchanged);
    count(
        &mut r,
        "skipped_no_date",
        parsed.map_or(0, |p| p.skipped_no_date),
    );
    count(
        &mut r,
        "skipped_invalid",
        parsed.map_or(0, |p| p.skipped_invalid),
    );
    count(&mut r, "partial_date", parsed.map_or(0, |p| p.partial_date));
    r
}

fn checkpoint_state(
    token: String,
    fetched: &Fetched,
    parsed: &ParsedIndex,
) -> Result<IncrementalState, Wg21Error> {
    let max_date = parsed.max_date.map(|d| d.format("%Y-%m-%d").to_string());
    let marker = format!(
        "{} records from {} entries, newest {}",
        parsed.records.len(),
        parsed.entries,
        max_date.as_deref().unwrap_or("-")
    );
    let mut extras = Map::new();
    extras.insert("source".into(), json!(fetched.url));
    extras.insert("etag".into(), json!(fetched.etag));
    extras.insert("last_modified".into(), json!(fetched.last_modified));
    extras.insert("papers".into(), json!(parsed.records.len()));
    extras.insert("entries".into(), json!(parsed.entries));
    extras.insert("max_date".into(), json!(max_date));
    Ok(IncrementalState::new(token, marker)
        .map_err(Wg21Error::Checkpoint)?
        .with_extras(extras))
}

fn storage_err(what: &'static str) -> impl FnOnce(bdc_storage::StorageError) -> Wg21Error {
    move |source| Wg21Error::Storage { what, source }
}

/// One run: fetch (or read the archive), archive, parse, store.
async fn collect_index(ctx: &CollectContext, args: &Wg21Args) -> Result<TrackerResult, Wg21Error> {
    let started = Instant::now();
    let archive_dir = archive::archive_dir(&ctx.config.workspace_dir);
    let previous = if args.full {
        None
    } else {
        ctx.storage
            .checkpoints()
            .get(NAME, CHECKPOINT_SCOPE)
            .await
            .map_err(storage_err("reading the wg21-papers checkpoint"))?
            .map(|s| Previous::from_state(&s))
    };

    let fetched = if args.from_archive {
        let (path, fetched) = archive::newest(&archive_dir).await?;
        tracing::info!(collector = NAME, archive = %path.display(), url = %fetched.url, "re-parsing the newest archived index");
        fetched
    } else {
        let source = resolve_source(args, ctx)?;
        let described = source.describe();
        tracing::info!(collector = NAME, source = %described, full = args.full, "reading the WG21 index");
        match &source {
            IndexSource::Http(url) => {
                let validators = previous
                    .as_ref()
                    .filter(|p| p.source.as_deref() == Some(described.as_str()))
                    .map(|p| p.validators.clone())
                    .unwrap_or_default();
                match source::fetch_http(url, &validators).await? {
                    FetchOutcome::NotModified => {
                        let papers = previous.as_ref().map_or(0, |p| p.papers);
                        tracing::info!(collector = NAME, url = %url, unchanged = papers, "index not modified (304)");
                        let unchanged = UpsertCounts {
                            unchanged: papers,
                            ..UpsertCounts::default()
                        };
                        return Ok(result_with(None, unchanged));
                    }
                    FetchOutcome::Body(f) => f,
                }
            }
            IndexSource::File(path) => source::read_file(path).await?,
        }
    };

    let token = hash::content_token(&fetched.body);
    if !args.from_archive {
        archive::store(&archive_dir, &fetched, &token).await?;
    }
    let parsed = parse_index(&fetched.body, &fetched.url)?;
    let state = checkpoint_state(token, &fetched, &parsed)?;
    let write = CheckpointWrite {
        collector: NAME,
        scope: CHECKPOINT_SCOPE,
        state: &state,
        run_id: Some(&ctx.run_id),
    };

    if let Some(prev) = &previous
        && prev.token == state.checkpoint_token()
    {
        // Same bytes as last time: nothing to write but fresher validators
        // (the put is a no-op when they did not change either).
        ctx.storage
            .checkpoints()
            .put(&write)
            .await
            .map_err(storage_err("refreshing the wg21-papers checkpoint"))?;
        tracing::info!(
            collector = NAME,
            entries = parsed.entries,
            records = parsed.records.len(),
            "index content unchanged since the last run; nothing written"
        );
        let unchanged = UpsertCounts {
            unchanged: parsed.records.len() as u64,
            ..UpsertCounts::default()
        };
        return Ok(result_with(Some(&parsed), unchanged));
    }

    let totals = store_records(ctx, &parsed.records, &write).await?;
    let result = result_with(Some(&parsed), totals);
    tracing::info!(
        collector = NAME,
        fetched = parsed.entries,
        inserted = totals.inserted,
        updated = totals.updated,
        unchanged = totals.unchanged,
        skipped_no_date = parsed.skipped_no_date,
        skipped_invalid = parsed.skipped_invalid,
        elapsed_s = started.elapsed().as_secs_f64(),
        "WG21 index stored"
    );
    Ok(result)
}

/// Upsert `records` in batches; the checkpoint goes with the last batch.
async fn store_records(
    ctx: &CollectContext,
    records: &[ActivityRecord],
    checkpoint: &CheckpointWrite<'_>,
) -> Result<UpsertCounts, Wg21Error> {
    let mut totals = UpsertCounts::default();
    if records.is_empty() {
        ctx.storage
            .checkpoints()
            .put(checkpoint)
            .await
            .map_err(storage_err("writing the wg21-papers checkpoint"))?;
        return Ok(totals);
    }
    let batches: Vec<&[ActivityRecord]> = records.chunks(BATCH_SIZE).collect();
    let n = batches.len();
    let bar = ctx.interactive.then(|| progress_bar(n as u64));
    for (i, batch) in batches.into_iter().enumerate() {
        let last = i + 1 == n;
        let counts = ctx
            .storage
            .activity()
            .upsert(batch, Some(&ctx.run_id), last.then_some(checkpoint))
            .await
            .map_err(storage_err("upserting wg21 records"))?;
        totals.add(counts);
        match &bar {
            Some(bar) => bar.inc(1),
            None => tracing::info!(
                collector = NAME,
                batch = i + 1,
                batches = n,
                records = batch.len(),
                inserted = counts.inserted,
                updated = counts.updated,
                unchanged = counts.unchanged,
                "batch stored"
            ),
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(totals)
}

fn progress_bar(len: u64) -> indicatif::ProgressBar {
    let bar = bdc_collector::progress::add(indicatif::ProgressBar::new(len));
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("wg21-papers {bar:40} {pos}/{len} batches {msg}")
    {
        bar.set_style(style);
    }
    bar
}
