//! The `mailing-list` collector: plain mbox files (or directories of them)
//! and Mailman 3 / HyperKitty per-month mbox exports, stored in typed tables
//! (`ml_lists`, `ml_messages`, `ml_thread_links`; see [`store`]) and as
//! [`ActivityRecord`](bdc_core::ActivityRecord)s with
//! `source_system = "mailing-list"`, `kind = "message"`,
//! `external_id = "<list>:<message-id>"`.
//!
//! ```text
//! bdc run mailing-list --mbox PATH… [--list NAME]
//! bdc run mailing-list --list NAME --archive-url URL [--since YYYY-MM] [--until YYYY-MM] [--from-archive] [--full]
//! ```
//!
//! # Pipeline
//! A reader thread ([`mbox::MboxReader`] over a `BufRead`, gzip decoded on
//! the fly for `.gz`) splits and parses ([`parse::parse_message`]) messages
//! into batches of [`BATCH_SIZE`], handed through a bounded channel to the
//! async writer: memory stays flat whatever the archive size.
//!
//! # Incremental and idempotent
//! * Files: one checkpoint per list + file (scope `file:<list>:<path>`),
//!   token = size and modification time. An unchanged file is not read.
//! * HyperKitty: one checkpoint per list + month (scope
//!   `hyperkitty:<list>:<YYYY-MM>`), token = SHA-256 of the export body,
//!   extras = the HTTP validators. A re-run sends `If-None-Match` /
//!   `If-Modified-Since` (a `304` writes nothing); a `200` with the same
//!   body writes nothing either. Without `--since` a run starts at the
//!   newest month seen before (scope `hyperkitty:<list>`), or the current
//!   month on the first run, and ends at the current month (`--until`).
//! * The checkpoint is written in the same transaction as the last batch
//!   of its file/month; a run that dies midway redoes that source, and the
//!   upserts make it idempotent (same rows as an uninterrupted run).
//!
//! Counts: `messages`, `inserted`, `updated`, `unchanged`, `duplicates`,
//! `malformed`, `no_date`, `files`, `files_unchanged`, `months`,
//! `months_not_modified`, `months_unchanged`, `bytes`.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use async_trait::async_trait;
use bdc_collector::{CollectContext, Collector};
use bdc_core::{BoxError, IncrementalState, TrackerResult};
use bdc_storage::checkpoints::CheckpointWrite;
use chrono::Utc;
use clap::Parser;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

mod error;
pub mod hyperkitty;
pub mod legacy;
pub mod mbox;
pub mod parse;
pub mod pipermail;
pub mod store;

pub use error::MailError;
use error::storage_err;
pub use store::{SCHEMA, SOURCE_SYSTEM};

use hyperkitty::{Fetch, Month, Validators};
use parse::ParsedMessage;
use store::BatchCounts;

/// Stable collector name.
pub const NAME: &str = "mailing-list";
/// The lists collected with no arguments (the original's default): the
/// Boost developers', users' and announcement lists.
pub const DEFAULT_LISTS: [&str; 3] = [
    "boost@lists.boost.org",
    "boost-users@lists.boost.org",
    "boost-announce@lists.boost.org",
];
/// Messages per write transaction.
pub const BATCH_SIZE: usize = 1000;

/// `bdc run mailing-list` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "mailing-list", about = "Collect mailing-list archives")]
pub struct MailArgs {
    /// mbox files or directories of them (`*.mbox`, `*.mbx`, `*.txt`,
    /// and the same gzip-compressed `*.gz`), read in name order.
    #[arg(long, value_name = "PATH", num_args = 1.., conflicts_with_all = ["archive_url", "pipermail_url"])]
    pub mbox: Vec<PathBuf>,
    /// The list name (required with --archive-url: the list address, e.g.
    /// boost@lists.boost.org; for --mbox it defaults to each file's stem).
    #[arg(long)]
    pub list: Option<String>,
    /// HyperKitty root URL, e.g. https://lists.boost.org/archives.
    #[arg(
        long,
        value_name = "URL",
        requires = "list",
        conflicts_with = "pipermail_url"
    )]
    pub archive_url: Option<String>,
    /// Mailman 2 / pipermail archive root whose index page links the
    /// monthly `YYYY-Month.txt.gz` files, e.g.
    /// https://lists.boost.org/Archives/boost/ (--list defaults to its last
    /// path segment).
    #[arg(long, value_name = "URL")]
    pub pipermail_url: Option<String>,
    /// First month to fetch (YYYY-MM).
    #[arg(long, value_name = "YYYY-MM")]
    pub since: Option<String>,
    /// Last month to fetch (YYYY-MM) [default: the current month].
    #[arg(long, value_name = "YYYY-MM")]
    pub until: Option<String>,
    /// Ignore checkpoints: no conditional requests, every source re-read.
    #[arg(long)]
    pub full: bool,
    /// Re-parse the archived exports under WORKSPACE_DIR/raw/mailing-list
    /// instead of fetching (no network).
    #[arg(long)]
    pub from_archive: bool,
}

impl MailArgs {
    pub fn parse_args(args: &[String]) -> Result<Self, MailError> {
        let a = Self::try_parse_from(std::iter::once(NAME.to_owned()).chain(args.iter().cloned()))
            .map_err(|e| MailError::Args {
                message: e.to_string().trim().to_owned(),
            })?;
        if a.from_archive && !a.mbox.is_empty() {
            return Err(MailError::Args {
                message: "--from-archive re-reads fetched archives; it does not apply to --mbox"
                    .into(),
            });
        }
        if let Some(list) = &a.list
            && (list.trim().is_empty() || list.chars().any(|c| c.is_control() || c == '/'))
        {
            return Err(MailError::Value {
                field: "--list",
                value: list.clone(),
                reason: "must be non-empty, without '/' or control characters".into(),
            });
        }
        for (field, url) in [
            ("--archive-url", &a.archive_url),
            ("--pipermail-url", &a.pipermail_url),
        ] {
            if let Some(u) = url
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                return Err(MailError::Value {
                    field,
                    value: u.clone(),
                    reason: "must be an http(s):// URL".into(),
                });
            }
        }
        if let Some(u) = &a.pipermail_url
            && a.list.is_none()
        {
            pipermail::list_from_url(u)?;
        }
        for m in [&a.since, &a.until].into_iter().flatten() {
            Month::parse(m)?;
        }
        Ok(a)
    }
}

/// `sha256:<hex>` of bytes.
pub fn content_hash(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The `mailing-list` collector.
#[derive(Debug, Clone, Copy, Default)]
pub struct MailingListCollector;

#[async_trait]
impl Collector for MailingListCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn args_command(&self) -> Option<clap::Command> {
        Some(<MailArgs as clap::CommandFactory>::command())
    }

    fn validate_config(&self, ctx: &CollectContext) -> Result<(), BoxError> {
        MailArgs::parse_args(&ctx.args).map_err(MailError::into_box)?;
        Ok(())
    }

    async fn collect(&self, ctx: &CollectContext) -> Result<TrackerResult, BoxError> {
        let args = MailArgs::parse_args(&ctx.args).map_err(MailError::into_box)?;
        collect(ctx, &args).await.map_err(MailError::into_box)
    }
}

/// Totals of a run.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub messages: u64,
    pub malformed: u64,
    pub no_date: u64,
    pub bytes: u64,
    pub files: u64,
    pub files_unchanged: u64,
    pub months: u64,
    pub months_not_modified: u64,
    pub months_unchanged: u64,
    pub stored: BatchCounts,
}

impl Totals {
    fn result(&self) -> TrackerResult {
        let mut r = TrackerResult::ok();
        for (k, v) in [
            ("messages", self.messages),
            ("inserted", self.stored.inserted),
            ("updated", self.stored.updated),
            ("unchanged", self.stored.unchanged),
            ("duplicates", self.stored.duplicates),
            ("malformed", self.malformed),
            ("no_date", self.no_date),
            ("files", self.files),
            ("files_unchanged", self.files_unchanged),
            ("months", self.months),
            ("months_not_modified", self.months_not_modified),
            ("months_unchanged", self.months_unchanged),
            ("bytes", self.bytes),
        ] {
            if let Err(e) = r.add(k, v) {
                tracing::error!(count = k, error = %e, "invalid count name");
            }
        }
        r
    }
}

async fn collect(ctx: &CollectContext, args: &MailArgs) -> Result<TrackerResult, MailError> {
    let started = Instant::now();
    let mut totals = Totals::default();
    if let Some(url) = &args.pipermail_url {
        let list = match &args.list {
            Some(l) => l.clone(),
            None => pipermail::list_from_url(url)?,
        };
        collect_pipermail(ctx, args, &list, url, &mut totals).await?;
    } else if let (Some(url), Some(list)) = (&args.archive_url, &args.list) {
        collect_hyperkitty(ctx, args, list, url, &mut totals).await?;
    } else if args.mbox.is_empty() {
        // What the original's command does with no arguments: the Boost
        // lists from the list server's HyperKitty (one list with --list).
        let url = ctx.config.mailing_list_archive_url.clone();
        let lists: Vec<String> = match &args.list {
            Some(l) => vec![l.clone()],
            None => DEFAULT_LISTS.iter().map(|l| (*l).to_owned()).collect(),
        };
        for list in &lists {
            collect_hyperkitty(ctx, args, list, &url, &mut totals).await?;
        }
    } else {
        for file in expand_paths(&args.mbox)? {
            let list = match &args.list {
                Some(l) => l.clone(),
                None => list_from_path(&file),
            };
            collect_file(ctx, args, &list, &file, &mut totals).await?;
        }
    }
    tracing::info!(
        collector = NAME,
        messages = totals.messages,
        inserted = totals.stored.inserted,
        updated = totals.stored.updated,
        unchanged = totals.stored.unchanged,
        malformed = totals.malformed,
        bytes = totals.bytes,
        elapsed_s = started.elapsed().as_secs_f64(),
        "mailing-list run finished"
    );
    Ok(totals.result())
}

/// `boost.mbox.gz` → `boost`.
fn list_from_path(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "mbox".into());
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    if stem.is_empty() {
        "mbox".into()
    } else {
        stem.to_owned()
    }
}

fn is_mbox_name(name: &str) -> bool {
    let n = name.strip_suffix(".gz").unwrap_or(name);
    !name.starts_with('.')
        && (n.ends_with(".mbox") || n.ends_with(".mbx") || n.ends_with(".txt") || n == "mbox")
}

/// Files in `paths` (directories expanded recursively, in name order).
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, MailError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|source| MailError::Io {
            path: p.clone(),
            action: "reading metadata",
            source,
        })?;
        if meta.is_dir() {
            let mut stack = vec![p.clone()];
            let mut found = Vec::new();
            while let Some(dir) = stack.pop() {
                let rd = std::fs::read_dir(&dir).map_err(|source| MailError::Io {
                    path: dir.clone(),
                    action: "listing",
                    source,
                })?;
                for entry in rd {
                    let entry = entry.map_err(|source| MailError::Io {
                        path: dir.clone(),
                        action: "listing",
                        source,
                    })?;
                    let path = entry.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(is_mbox_name)
                    {
                        found.push(path);
                    }
                }
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Counts of one parsed stream.
#[derive(Debug, Clone, Copy, Default)]
struct StreamCounts {
    messages: u64,
    malformed: u64,
    no_date: u64,
    bytes: u64,
    stored: BatchCounts,
}

enum Item {
    Batch(Vec<ParsedMessage>),
    Done { bytes: u64 },
    Failed(std::io::Error),
}

/// Split, parse and store one mbox stream; the checkpoint goes with the
/// last batch (also when the stream holds no message).
pub async fn ingest_stream<R: BufRead + Send + 'static>(
    ctx: &CollectContext,
    list: &str,
    archive_url: Option<&str>,
    origin: &Path,
    input: R,
    checkpoint: Option<&CheckpointWrite<'_>>,
) -> Result<IngestCounts, MailError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Item>(2);
    let reader = tokio::task::spawn_blocking(move || {
        let mut mbox = mbox::MboxReader::new(input);
        let mut batch = Vec::with_capacity(BATCH_SIZE);
        loop {
            match mbox.next_message() {
                Ok(Some(raw)) => {
                    batch.push(parse::parse_message(&raw));
                    if batch.len() == BATCH_SIZE {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_SIZE));
                        if tx.blocking_send(Item::Batch(full)).is_err() {
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.blocking_send(Item::Failed(e));
                    return;
                }
            }
        }
        if !batch.is_empty() && tx.blocking_send(Item::Batch(batch)).is_err() {
            return;
        }
        let _ = tx.blocking_send(Item::Done {
            bytes: mbox.position(),
        });
    });
    let mut counts = StreamCounts::default();
    let mut held: Option<Vec<ParsedMessage>> = None;
    let mut finished = false;
    let bar = ctx.interactive.then(|| spinner(list, origin));
    while let Some(item) = rx.recv().await {
        match item {
            Item::Batch(b) => {
                if let Some(bar) = &bar {
                    bar.inc(b.len() as u64);
                }
                if let Some(prev) = held.replace(b) {
                    store(ctx, list, archive_url, &prev, None, &mut counts).await?;
                }
            }
            Item::Done { bytes } => {
                counts.bytes = bytes;
                finished = true;
            }
            Item::Failed(source) => {
                return Err(MailError::Io {
                    path: origin.to_path_buf(),
                    action: "reading the mbox",
                    source,
                });
            }
        }
    }
    reader.await.map_err(|e| MailError::Join(e.to_string()))?;
    if !finished {
        return Err(MailError::Join(format!(
            "the reader of {} stopped early",
            origin.display()
        )));
    }
    let last = held.unwrap_or_default();
    store(ctx, list, archive_url, &last, checkpoint, &mut counts).await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(IngestCounts {
        messages: counts.messages,
        malformed: counts.malformed,
        no_date: counts.no_date,
        bytes: counts.bytes,
        stored: counts.stored,
    })
}

/// A message counter on an interactive terminal.
fn spinner(list: &str, origin: &Path) -> indicatif::ProgressBar {
    let bar = bdc_collector::progress::add(indicatif::ProgressBar::new_spinner());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "mailing-list {spinner} {pos} messages {per_sec} {msg}",
    ) {
        bar.set_style(style);
    }
    bar.set_message(format!("{list} {}", origin.display()));
    bar
}

/// What [`ingest_stream`] did.
#[derive(Debug, Clone, Copy, Default)]
pub struct IngestCounts {
    pub messages: u64,
    pub malformed: u64,
    pub no_date: u64,
    pub bytes: u64,
    pub stored: BatchCounts,
}

async fn store(
    ctx: &CollectContext,
    list: &str,
    archive_url: Option<&str>,
    batch: &[ParsedMessage],
    checkpoint: Option<&CheckpointWrite<'_>>,
    counts: &mut StreamCounts,
) -> Result<(), MailError> {
    let malformed = batch.iter().filter(|m| !m.malformed.is_empty()).count() as u64;
    let no_date = batch.iter().filter(|m| m.sent_at.is_none()).count() as u64;
    for m in batch.iter().filter(|m| !m.malformed.is_empty()) {
        tracing::debug!(collector = NAME, list, message_id = %m.message_id, problems = ?m.malformed, "malformed message kept");
    }
    let c = store::store_batch(
        &ctx.storage,
        list,
        archive_url,
        batch,
        &ctx.run_id,
        checkpoint,
    )
    .await
    .map_err(storage_err("storing mailing-list messages"))?;
    counts.messages += batch.len() as u64;
    counts.malformed += malformed;
    counts.no_date += no_date;
    counts.stored.add(c);
    metrics::counter!("bdc_mailing_list_messages_total", "list" => list.to_owned())
        .increment(batch.len() as u64);
    metrics::counter!("bdc_mailing_list_malformed_total", "list" => list.to_owned())
        .increment(malformed);
    metrics::counter!("bdc_mailing_list_stored_total", "list" => list.to_owned())
        .increment(c.inserted + c.updated);
    Ok(())
}

fn add_ingest(totals: &mut Totals, c: &IngestCounts) {
    totals.messages += c.messages;
    totals.malformed += c.malformed;
    totals.no_date += c.no_date;
    totals.bytes += c.bytes;
    totals.stored.add(c.stored);
}

fn state(
    token: String,
    marker: String,
    extras: Map<String, Value>,
) -> Result<IncrementalState, MailError> {
    Ok(IncrementalState::new(token, marker)
        .map_err(MailError::Checkpoint)?
        .with_extras(extras))
}

/// A reader over a file, gunzipped when its name ends in `.gz`.
fn open_mbox(path: &Path) -> Result<Box<dyn BufRead + Send>, MailError> {
    let file = std::fs::File::open(path).map_err(|source| MailError::Io {
        path: path.to_path_buf(),
        action: "opening",
        source,
    })?;
    let gz = path.extension().is_some_and(|e| e == "gz");
    let inner: Box<dyn Read + Send> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::with_capacity(256 * 1024, inner)))
}

/// A reader over a downloaded export: gunzipped when it starts with the
/// gzip magic bytes (HyperKitty's export is gzip; an empty month may come
/// back as an empty body).
fn gunzip_if_needed(body: Vec<u8>) -> Box<dyn BufRead + Send> {
    if body.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(
            std::io::Cursor::new(body),
        )))
    } else {
        Box::new(std::io::Cursor::new(body))
    }
}

async fn collect_file(
    ctx: &CollectContext,
    args: &MailArgs,
    list: &str,
    path: &Path,
    totals: &mut Totals,
) -> Result<(), MailError> {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let meta = std::fs::metadata(&abs).map_err(|source| MailError::Io {
        path: abs.clone(),
        action: "reading metadata",
        source,
    })?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let token = format!("size:{}:mtime:{mtime}", meta.len());
    let scope = format!("file:{list}:{}", abs.display());
    totals.files += 1;
    if !args.full {
        let prev = ctx
            .storage
            .checkpoints()
            .get(NAME, &scope)
            .await
            .map_err(storage_err("reading a mailing-list checkpoint"))?;
        if prev.as_ref().is_some_and(|p| p.checkpoint_token() == token) {
            tracing::info!(collector = NAME, list, path = %abs.display(), "mbox file unchanged since the last run; not read");
            totals.files_unchanged += 1;
            return Ok(());
        }
    }
    tracing::info!(collector = NAME, list, path = %abs.display(), bytes = meta.len(), "reading mbox file");
    let input = open_mbox(&abs)?;
    // The checkpoint's counts are only known at the end; its token is
    // known now. Extras carry the path and size.
    let mut extras = Map::new();
    extras.insert("path".into(), json!(abs.display().to_string()));
    extras.insert("size".into(), json!(meta.len()));
    let st = state(
        token,
        format!("{} ({} bytes)", abs.display(), meta.len()),
        extras,
    )?;
    let write = CheckpointWrite {
        collector: NAME,
        scope: &scope,
        state: &st,
        run_id: Some(&ctx.run_id),
    };
    let c = ingest_stream(ctx, list, None, &abs, input, Some(&write)).await?;
    tracing::info!(collector = NAME, list, path = %abs.display(), messages = c.messages, inserted = c.stored.inserted, malformed = c.malformed, "mbox file stored");
    add_ingest(totals, &c);
    Ok(())
}

fn month_scope(list: &str, month: Month) -> String {
    format!("hyperkitty:{list}:{month}")
}

/// One month of an archive (HyperKitty export or pipermail file).
struct MonthSource<'a> {
    list: &'a str,
    /// The archive root recorded with the list.
    archive_url: &'a str,
    scope: &'a str,
    url: &'a str,
    dir: &'a Path,
    month: Month,
}

/// Fetch (conditionally) or load from the raw archive one month, and store
/// it with its checkpoint unless its bytes are unchanged.
async fn month_step(
    ctx: &CollectContext,
    args: &MailArgs,
    client: &reqwest::Client,
    src: &MonthSource<'_>,
    totals: &mut Totals,
) -> Result<(), MailError> {
    let (list, archive_url, month, url) = (src.list, src.archive_url, src.month, src.url);
    let scope = src.scope;
    let dir = src.dir;
    let cps = ctx.storage.checkpoints();
    let prev = if args.full {
        None
    } else {
        cps.get(NAME, scope)
            .await
            .map_err(storage_err("reading a month checkpoint"))?
    };
    totals.months += 1;
    let (meta, body) = if args.from_archive {
        hyperkitty::archive_load(dir, list, month).await?
    } else {
        let s = |p: &IncrementalState, k: &str| {
            p.extras().get(k).and_then(Value::as_str).map(str::to_owned)
        };
        let validators = prev
            .as_ref()
            .filter(|p| s(p, "url").as_deref() == Some(url))
            .map(|p| Validators {
                etag: s(p, "etag"),
                last_modified: s(p, "last_modified"),
            })
            .unwrap_or_default();
        match hyperkitty::fetch(client, url, &validators).await? {
            Fetch::NotModified => {
                tracing::info!(collector = NAME, list, %month, "month not modified (304)");
                totals.months_not_modified += 1;
                return Ok(());
            }
            Fetch::Body { meta, body } => {
                hyperkitty::archive_store(dir, month, &meta, &body).await?;
                (meta, body)
            }
        }
    };
    let mut extras = Map::new();
    extras.insert("url".into(), json!(meta.url));
    extras.insert("etag".into(), json!(meta.etag));
    extras.insert("last_modified".into(), json!(meta.last_modified));
    extras.insert("bytes".into(), json!(body.len()));
    let st = state(meta.content_hash.clone(), format!("{list} {month}"), extras)?;
    let write = CheckpointWrite {
        collector: NAME,
        scope,
        state: &st,
        run_id: Some(&ctx.run_id),
    };
    if prev
        .as_ref()
        .is_some_and(|p| p.checkpoint_token() == meta.content_hash)
    {
        // Same bytes as stored: only refresh changed validators (a no-op
        // write when they did not change either).
        cps.put(&write)
            .await
            .map_err(storage_err("refreshing a month checkpoint"))?;
        tracing::info!(collector = NAME, list, %month, "month export unchanged; nothing written");
        totals.months_unchanged += 1;
    } else {
        let input = gunzip_if_needed(body);
        let origin = PathBuf::from(&meta.url);
        let c = ingest_stream(ctx, list, Some(archive_url), &origin, input, Some(&write)).await?;
        tracing::info!(collector = NAME, list, %month, messages = c.messages, inserted = c.stored.inserted, malformed = c.malformed, "month stored");
        add_ingest(totals, &c);
    }
    Ok(())
}

async fn collect_pipermail(
    ctx: &CollectContext,
    args: &MailArgs,
    list: &str,
    root: &str,
    totals: &mut Totals,
) -> Result<(), MailError> {
    let dir = hyperkitty::archive_dir(&ctx.config.workspace_dir, &format!("pipermail-{list}"));
    let client = hyperkitty::client()?;
    let months: Vec<(Month, String)> = if args.from_archive {
        archived_months(&dir)?
            .into_iter()
            .map(|m| (m, String::new()))
            .collect()
    } else {
        let index_url = format!("{}/", root.trim_end_matches('/'));
        let html = match hyperkitty::fetch(&client, &index_url, &Validators::default()).await? {
            Fetch::Body { body, .. } => String::from_utf8_lossy(&body).into_owned(),
            Fetch::NotModified => String::new(),
        };
        let months = pipermail::parse_index(&index_url, &html);
        if months.is_empty() {
            tracing::warn!(collector = NAME, list, url = %index_url, "the pipermail index links no YYYY-Month.txt[.gz] file");
        }
        months
    };
    let since = args.since.as_deref().map(Month::parse).transpose()?;
    let until = args.until.as_deref().map(Month::parse).transpose()?;
    for (month, url) in months {
        if since.is_some_and(|s| month < s) || until.is_some_and(|u| month > u) {
            continue;
        }
        let scope = format!("pipermail:{list}:{month}");
        let source = MonthSource {
            list,
            archive_url: root,
            scope: &scope,
            url: &url,
            dir: &dir,
            month,
        };
        month_step(ctx, args, &client, &source, totals).await?;
    }
    Ok(())
}

/// Months archived in `dir` (`YYYY-MM.meta.json`), oldest first.
fn archived_months(dir: &Path) -> Result<Vec<Month>, MailError> {
    let rd = std::fs::read_dir(dir).map_err(|source| MailError::Io {
        path: dir.to_path_buf(),
        action: "listing the raw archive",
        source,
    })?;
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(m) = name.strip_suffix(".meta.json")
            && let Ok(m) = Month::parse(m)
        {
            out.push(m);
        }
    }
    out.sort();
    Ok(out)
}

async fn collect_hyperkitty(
    ctx: &CollectContext,
    args: &MailArgs,
    list: &str,
    archive_url: &str,
    totals: &mut Totals,
) -> Result<(), MailError> {
    let list_scope = format!("hyperkitty:{list}");
    let cps = ctx.storage.checkpoints();
    let latest = cps
        .get(NAME, &list_scope)
        .await
        .map_err(storage_err("reading the list checkpoint"))?;
    let until = match &args.until {
        Some(m) => Month::parse(m)?,
        None => Month::of(Utc::now()),
    };
    let since = match (&args.since, &latest) {
        (Some(m), _) => Month::parse(m)?,
        (None, Some(l)) if !args.full => Month::parse(l.checkpoint_token())?,
        _ => until,
    };
    let dir = hyperkitty::archive_dir(&ctx.config.workspace_dir, list);
    let client = hyperkitty::client()?;
    let mut month = since;
    let mut newest_with_data: Option<Month> = None;
    while month <= until {
        let scope = month_scope(list, month);
        let url = hyperkitty::export_url(archive_url, list, month);
        let source = MonthSource {
            list,
            archive_url,
            scope: &scope,
            url: &url,
            dir: &dir,
            month,
        };
        month_step(ctx, args, &client, &source, totals).await?;
        newest_with_data = Some(month);
        month = month.next();
    }
    if let Some(newest) = newest_with_data {
        let st = state(
            newest.to_string(),
            format!("{list}: newest month {newest}"),
            Map::new(),
        )?;
        let move_it = latest
            .as_ref()
            .is_none_or(|l| Month::parse(l.checkpoint_token()).is_ok_and(|m| m < newest));
        if move_it {
            cps.put(&CheckpointWrite {
                collector: NAME,
                scope: &list_scope,
                state: &st,
                run_id: Some(&ctx.run_id),
            })
            .await
            .map_err(storage_err("writing the list checkpoint"))?;
        }
    }
    Ok(())
}
