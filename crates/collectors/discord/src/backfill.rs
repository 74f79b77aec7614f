//! `discord-backfill`: import DiscordChatExporter JSON exports.
//!
//! ```text
//! bdc run discord-backfill [--path PATH…] [--dry-run]
//! ```
//!
//! Files (`*.json`, directories searched recursively, name order) come from
//! `--path` or, by default, `WORKSPACE_DIR/discord/exports`. Each file is
//! identified by the SHA-256 of its bytes and recorded in
//! `dc_imported_files` in the same transaction as its last batch: a re-run
//! (or the same export under another name) imports nothing twice; a run
//! that dies midway redoes that file, idempotently.
//!
//! A reader thread streams the file ([`crate::export::read_export`]) into
//! batches of [`BATCH_SIZE`] through a bounded channel, so memory stays flat
//! whatever the export size.
//!
//! Bad input: a message that does not fit the documented shape is counted
//! (`malformed`) and logged with file and message index; a file cut in the
//! middle keeps every message before the cut, is counted (`files_cut`),
//! logged with line/column and recorded with status `cut` (a complete
//! re-export has other bytes and is imported); a file that is not an
//! export at all is counted (`files_invalid`) and recorded likewise.
//!
//! Counts: `files`, `files_imported`, `files_already_imported`,
//! `files_cut`, `files_invalid`, `messages`, `inserted`, `updated`,
//! `unchanged`, `malformed`, `would_import` (dry run).

use std::collections::BTreeSet;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use bdc_collector::CollectContext;
use bdc_core::TrackerResult;
use clap::Parser;
use sha2::{Digest, Sha256};

use crate::error::{DiscordError, storage_err};
use crate::export::{self, Channel, DcMessage, Event, Guild};
use crate::store::{self, BatchCounts, FileRecord};

/// Stable collector name.
pub const NAME: &str = "discord-backfill";
/// Messages per write transaction.
pub const BATCH_SIZE: usize = 2000;

/// `bdc run discord-backfill` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "discord-backfill",
    about = "Import DiscordChatExporter JSON exports"
)]
pub struct BackfillArgs {
    /// Export files or directories of them (`*.json`) [default:
    /// WORKSPACE_DIR/discord/exports].
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub path: Vec<PathBuf>,
    /// List the files that would be imported (stdout); write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not write the Markdown export (DISCORD_CONTEXT_REPO_PATH).
    #[arg(long)]
    pub skip_markdown_export: bool,
    /// Commit the Markdown export but do not push it.
    #[arg(long)]
    pub skip_remote_push: bool,
}

impl BackfillArgs {
    pub fn parse_args(args: &[String]) -> Result<Self, DiscordError> {
        Self::try_parse_from(std::iter::once(NAME.to_owned()).chain(args.iter().cloned())).map_err(
            |e| DiscordError::Args {
                command: NAME,
                message: e.to_string().trim().to_owned(),
            },
        )
    }
}

/// Totals of a backfill run.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub files: u64,
    pub files_imported: u64,
    pub files_already_imported: u64,
    pub files_cut: u64,
    pub files_invalid: u64,
    pub messages: u64,
    pub malformed: u64,
    pub would_import: u64,
    pub stored: BatchCounts,
    /// (channel id, month) of every stored message: the Markdown files to
    /// rewrite.
    pub touched: BTreeSet<(String, String)>,
}

impl Totals {
    pub fn result(&self) -> TrackerResult {
        let mut r = TrackerResult::ok();
        for (k, v) in [
            ("files", self.files),
            ("files_imported", self.files_imported),
            ("files_already_imported", self.files_already_imported),
            ("files_cut", self.files_cut),
            ("files_invalid", self.files_invalid),
            ("messages", self.messages),
            ("inserted", self.stored.inserted),
            ("updated", self.stored.updated),
            ("unchanged", self.stored.unchanged),
            ("malformed", self.malformed),
            ("would_import", self.would_import),
        ] {
            if let Err(e) = r.add(k, v) {
                tracing::error!(count = k, error = %e, "invalid count name");
            }
        }
        r
    }
}

/// The default export folder.
pub fn default_dir(workspace: &Path) -> PathBuf {
    workspace.join("discord").join("exports")
}

/// `*.json` files under `paths` (directories recursively, name order).
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, DiscordError> {
    let io = |path: &Path, action| {
        let path = path.to_path_buf();
        move |source| DiscordError::Io {
            path,
            action,
            source,
        }
    };
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(io(p, "reading metadata"))?;
        if !meta.is_dir() {
            out.push(p.clone());
            continue;
        }
        let mut stack = vec![p.clone()];
        let mut found = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).map_err(io(&dir, "listing"))? {
                let path = entry.map_err(io(&dir, "listing"))?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name.starts_with('.') {
                    continue;
                }
                if path.is_dir() {
                    stack.push(path);
                } else if name.ends_with(".json") {
                    found.push(path);
                }
            }
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// SHA-256 and size of a file.
fn hash_file(path: &Path) -> Result<(String, u64), DiscordError> {
    let io = |action| {
        let path = path.to_path_buf();
        move |source| DiscordError::Io {
            path,
            action,
            source,
        }
    };
    let mut f = std::fs::File::open(path).map_err(io("opening"))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io("reading"))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((format!("sha256:{}", hex::encode(h.finalize())), size))
}

/// Run the backfill.
pub async fn collect(ctx: &CollectContext, args: &BackfillArgs) -> Result<Totals, DiscordError> {
    let paths = if args.path.is_empty() {
        vec![default_dir(&ctx.config.workspace_dir)]
    } else {
        args.path.clone()
    };
    let mut totals = Totals::default();
    for file in expand_paths(&paths)? {
        totals.files += 1;
        let abs = std::path::absolute(&file).unwrap_or(file);
        let (hash, size) = {
            let p = abs.clone();
            tokio::task::spawn_blocking(move || hash_file(&p))
                .await
                .map_err(|e| DiscordError::Join(e.to_string()))??
        };
        if let Some((prev_path, status)) = store::imported_file(&ctx.storage, &hash)
            .await
            .map_err(storage_err("reading a discord export record"))?
        {
            tracing::info!(collector = NAME, path = %abs.display(), previous_path = %prev_path, status = %status, "export already read; skipped");
            totals.files_already_imported += 1;
            continue;
        }
        if args.dry_run {
            println!("would import {} ({size} bytes)", abs.display());
            totals.would_import += 1;
            continue;
        }
        import_file(ctx, &abs, hash, size, &mut totals).await?;
    }
    tracing::info!(
        collector = NAME,
        files = totals.files,
        imported = totals.files_imported,
        already = totals.files_already_imported,
        cut = totals.files_cut,
        invalid = totals.files_invalid,
        messages = totals.messages,
        inserted = totals.stored.inserted,
        malformed = totals.malformed,
        "discord-backfill run finished"
    );
    if !args.dry_run && !args.skip_markdown_export {
        match &ctx.config.discord.context_repo_path {
            Some(repo) => {
                crate::markdown::export(
                    &ctx.storage,
                    repo,
                    &totals.touched,
                    !args.skip_remote_push,
                )
                .await?;
            }
            None if !totals.touched.is_empty() => tracing::info!(
                collector = NAME,
                "DISCORD_CONTEXT_REPO_PATH is not set; Markdown export skipped"
            ),
            None => {}
        }
    }
    Ok(totals)
}

enum Item {
    Header(Guild, Channel),
    Batch(Vec<DcMessage>),
    Malformed { index: u64, reason: String },
    End(Result<u64, export::Cut>),
    Failed(std::io::Error),
}

/// Import one export file (streamed); the file record goes with the last
/// batch.
pub async fn import_file(
    ctx: &CollectContext,
    path: &Path,
    hash: String,
    size: u64,
    totals: &mut Totals,
) -> Result<(), DiscordError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Item>(2);
    let p = path.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || {
        let file = match std::fs::File::open(&p) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Item::Failed(e));
                return;
            }
        };
        let mut guild: Option<Guild> = None;
        let mut channel_id: Option<String> = None;
        let mut batch: Vec<DcMessage> = Vec::with_capacity(BATCH_SIZE);
        let mut sink = |ev: Event| match ev {
            Event::Guild(g) => guild = Some(g),
            Event::Channel(c) => {
                channel_id = Some(c.id.clone());
                let g = guild.clone().unwrap_or_else(|| Guild {
                    id: "0".into(),
                    name: "(unknown guild)".into(),
                    icon_url: None,
                });
                let _ = tx.blocking_send(Item::Header(g, c));
            }
            Event::Message { index, message } => {
                let cid = channel_id.as_deref().unwrap_or("");
                match message.into_message(cid) {
                    Ok(m) => {
                        batch.push(m);
                        if batch.len() == BATCH_SIZE {
                            let full =
                                std::mem::replace(&mut batch, Vec::with_capacity(BATCH_SIZE));
                            let _ = tx.blocking_send(Item::Batch(full));
                        }
                    }
                    Err(reason) => {
                        let _ = tx.blocking_send(Item::Malformed { index, reason });
                    }
                }
            }
            Event::Malformed { index, reason } => {
                let _ = tx.blocking_send(Item::Malformed { index, reason });
            }
        };
        let end = export::read_export(BufReader::with_capacity(256 * 1024, file), &mut sink);
        if !batch.is_empty() {
            let _ = tx.blocking_send(Item::Batch(batch));
        }
        let _ = tx.blocking_send(Item::End(end));
    });
    let mut header: Option<(Guild, Channel)> = None;
    let mut held: Option<Vec<DcMessage>> = None;
    let mut end: Option<Result<u64, export::Cut>> = None;
    let mut messages = 0u64;
    let mut malformed = 0u64;
    let mut stored = BatchCounts::default();
    while let Some(item) = rx.recv().await {
        match item {
            Item::Header(g, c) => header = Some((g, c)),
            Item::Batch(b) => {
                messages += b.len() as u64;
                for m in &b {
                    totals.touched.insert((m.channel_id.clone(), m.month()));
                }
                if let (Some(prev), Some((g, c))) = (held.replace(b), &header) {
                    let n =
                        store::store_batch(&ctx.storage, g, c, &prev, "export", &ctx.run_id, None)
                            .await
                            .map_err(storage_err("storing discord messages"))?;
                    stored.add(n);
                }
            }
            Item::Malformed { index, reason } => {
                malformed += 1;
                tracing::warn!(collector = NAME, path = %path.display(), message_index = index, reason = %reason, "malformed message skipped");
            }
            Item::End(e) => end = Some(e),
            Item::Failed(source) => {
                return Err(DiscordError::Io {
                    path: path.to_path_buf(),
                    action: "opening",
                    source,
                });
            }
        }
    }
    reader
        .await
        .map_err(|e| DiscordError::Join(e.to_string()))?;
    let Some(end) = end else {
        return Err(DiscordError::Join(format!(
            "the reader of {} stopped early",
            path.display()
        )));
    };
    let (status, problem) = match &end {
        Ok(_) => ("imported", None),
        Err(cut) => ("cut", Some(cut.to_string())),
    };
    let record = FileRecord {
        content_hash: hash,
        path: path.display().to_string(),
        size_bytes: size,
        channel_id: header.as_ref().map(|(_, c)| c.id.clone()),
        messages,
        malformed,
        status,
        problem: problem.clone(),
    };
    match &header {
        Some((g, c)) => {
            let last = held.unwrap_or_default();
            let n = store::store_batch(
                &ctx.storage,
                g,
                c,
                &last,
                "export",
                &ctx.run_id,
                Some(&record),
            )
            .await
            .map_err(storage_err("storing discord messages"))?;
            stored.add(n);
        }
        None => {
            store::record_file(&ctx.storage, &record, &ctx.run_id)
                .await
                .map_err(storage_err("recording a discord export"))?;
        }
    }
    match (&end, &header) {
        (Err(cut), Some(_)) => {
            totals.files_cut += 1;
            tracing::warn!(collector = NAME, path = %path.display(), line = cut.line, column = cut.column, after_messages = cut.after_messages, reason = %cut.reason, "export cut in the middle: messages before the cut stored, file recorded as cut");
        }
        (Err(cut), None) => {
            totals.files_invalid += 1;
            tracing::warn!(collector = NAME, path = %path.display(), line = cut.line, column = cut.column, reason = %cut.reason, "not a DiscordChatExporter export; skipped and recorded");
        }
        (Ok(_), None) => {
            totals.files_invalid += 1;
            tracing::warn!(collector = NAME, path = %path.display(), "export without a channel; skipped and recorded");
        }
        (Ok(_), Some(_)) => totals.files_imported += 1,
    }
    totals.messages += messages;
    totals.malformed += malformed;
    totals.stored.add(stored);
    metrics::counter!("bdc_discord_messages_total", "source" => "export").increment(messages);
    metrics::counter!("bdc_discord_malformed_total", "source" => "export").increment(malformed);
    tracing::info!(collector = NAME, path = %path.display(), messages, malformed, inserted = stored.inserted, updated = stored.updated, status, "export read");
    Ok(())
}
