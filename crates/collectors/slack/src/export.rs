//! `--messages-json PATH`: import a **standard Slack workspace export**,
//! the zip Slack's export tool produces or the folder it unpacks to:
//!
//! ```text
//! users.json             [ {id, name, real_name, profile: {...}, ...}, ... ]
//! channels.json          [ {id, name, created, creator, members: [...], topic, purpose}, ... ]
//! groups.json, mpims.json, dms.json   (optional: private channels, group and direct messages)
//! general/2024-01-15.json   one folder per channel (by name; dms by id),
//! general/2024-01-16.json   one file per day: [ message, ... ]
//! ```
//!
//! The export's root is the folder holding `channels.json` (else
//! `users.json`), wherever it sits in the zip or folder. A reader thread
//! walks it and sends users, channels, then messages in batches of
//! [`BATCH_SIZE`] through a bounded channel, so memory stays flat whatever
//! the export's size; each batch is one transaction ([`store::write_messages`]).
//! Re-importing the same export changes nothing (`unchanged`); a newer
//! export applies edits and deletions.
//!
//! Bad input is counted and logged, never fatal: a channel listed without
//! a folder (`missing_files`), a day file that is not a JSON array of
//! messages (`skipped_files`, logged with file, line and column), day files
//! in a folder no listing names (`unplaced_files`), a message without a
//! valid `ts` (`malformed`). `--channel-id` and `--start-date/--end-date`
//! (by day-file name) narrow the import.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use bdc_collector::CollectContext;
use chrono::NaiveDate;
use serde_json::Value;

use crate::error::{SlackError, storage};
use crate::model::{Channel, SlMessage, User};
use crate::store::{self, Names};
use crate::sync::{Totals, convert, convert_items};
use crate::{NAME, SlackArgs};

/// Messages per write transaction.
pub const BATCH_SIZE: usize = 2000;

/// Where the export's files come from.
enum Source {
    Dir(PathBuf),
    Zip(Box<zip::ZipArchive<std::fs::File>>, String),
}

impl Source {
    fn open(path: &Path) -> Result<Source, SlackError> {
        let err = |action: &'static str, message: String| SlackError::Export {
            path: path.to_path_buf(),
            action,
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| err("reading", e.to_string()))?;
        if meta.is_dir() {
            let files = list_dir(path).map_err(|e| err("listing", e.to_string()))?;
            let root = find_root(&files).ok_or_else(|| {
                err(
                    "reading",
                    "no channels.json or users.json: not a Slack workspace export".into(),
                )
            })?;
            return Ok(Source::Dir(if root.is_empty() {
                path.to_path_buf()
            } else {
                path.join(root)
            }));
        }
        let file = std::fs::File::open(path).map_err(|e| err("opening", e.to_string()))?;
        let zip = zip::ZipArchive::new(file).map_err(|e| err("opening the zip", e.to_string()))?;
        let names: Vec<String> = zip.file_names().map(str::to_owned).collect();
        let root = find_root(&names).ok_or_else(|| {
            err(
                "reading",
                "no channels.json or users.json in the zip: not a Slack workspace export".into(),
            )
        })?;
        Ok(Source::Zip(Box::new(zip), root))
    }

    /// Files relative to the export root (`/`-separated).
    fn files(&self) -> std::io::Result<Vec<String>> {
        match self {
            Source::Dir(root) => list_dir(root),
            Source::Zip(zip, prefix) => Ok(zip
                .file_names()
                .filter_map(|n| n.strip_prefix(prefix.as_str()))
                .filter(|n| !n.is_empty() && !n.ends_with('/'))
                .map(str::to_owned)
                .collect()),
        }
    }

    fn read(&mut self, rel: &str) -> std::io::Result<Vec<u8>> {
        match self {
            Source::Dir(root) => std::fs::read(root.join(rel)),
            Source::Zip(zip, prefix) => {
                let mut f = zip
                    .by_name(&format!("{prefix}{rel}"))
                    .map_err(std::io::Error::other)?;
                let mut buf = Vec::with_capacity(usize::try_from(f.size()).unwrap_or(0));
                f.read_to_end(&mut buf)?;
                Ok(buf)
            }
        }
    }

    fn display(&self, rel: &str) -> String {
        match self {
            Source::Dir(root) => root.join(rel).display().to_string(),
            Source::Zip(_, prefix) => format!("{prefix}{rel}"),
        }
    }
}

fn list_dir(root: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let r = format!("{rel}{name}");
            if entry.file_type()?.is_dir() {
                stack.push((entry.path(), format!("{r}/")));
            } else {
                out.push(r);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The root prefix (`""` or `"dir/"`): the shallowest folder holding
/// `channels.json`, else `users.json`.
fn find_root(names: &[String]) -> Option<String> {
    for wanted in ["channels.json", "users.json"] {
        let best = names
            .iter()
            .filter(|n| n.rsplit('/').next() == Some(wanted))
            .min_by_key(|n| (n.matches('/').count(), n.len()));
        if let Some(n) = best {
            return Some(n[..n.len() - wanted.len()].to_owned());
        }
    }
    None
}

/// A day file name `YYYY-MM-DD.json`.
fn day_of(file: &str) -> Option<NaiveDate> {
    let stem = file.strip_suffix(".json")?;
    NaiveDate::parse_from_str(stem, "%Y-%m-%d").ok()
}

enum Item {
    Users(Vec<User>),
    Channels(Vec<Channel>),
    Batch(Vec<SlMessage>),
    Counted(Counted),
    Failed(SlackError),
}

enum Counted {
    DayFile,
    Malformed(u64),
    Missing,
    Skipped,
    Unplaced,
}

fn read_list(
    src: &mut Source,
    rel: &str,
    files: &BTreeSet<&str>,
) -> Result<Option<Vec<Value>>, String> {
    if !files.contains(rel) {
        return Ok(None);
    }
    let bytes = src.read(rel).map_err(|e| e.to_string())?;
    serde_json::from_slice::<Vec<Value>>(&bytes)
        .map(Some)
        .map_err(|e| format!("line {} column {}: {e}", e.line(), e.column()))
}

/// The reader thread's walk.
fn walk(mut src: Source, args: &SlackArgs, tx: &tokio::sync::mpsc::Sender<Item>) {
    let send = |item: Item| tx.blocking_send(item).is_ok();
    let files = match src.files() {
        Ok(f) => f,
        Err(e) => {
            let _ = send(Item::Failed(SlackError::Export {
                path: PathBuf::from(src.display("")),
                action: "listing",
                message: e.to_string(),
            }));
            return;
        }
    };
    let set: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    let mut malformed = 0u64;
    // Users.
    match read_list(&mut src, "users.json", &set) {
        Ok(Some(values)) => {
            let users: Vec<User> = convert_items(values, &mut malformed, "user", "users.json");
            if !send(Item::Users(users)) {
                return;
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(collector = NAME, file = %src.display("users.json"), error = %e, "malformed export file skipped");
            let _ = send(Item::Counted(Counted::Skipped));
        }
    }
    // Channels (public, private, group DMs, DMs).
    let mut listed: Vec<(Channel, bool)> = Vec::new();
    for (list, private) in [
        ("channels.json", false),
        ("groups.json", true),
        ("mpims.json", true),
        ("dms.json", true),
    ] {
        match read_list(&mut src, list, &set) {
            Ok(Some(values)) => {
                let chans: Vec<Channel> = convert_items(values, &mut malformed, "channel", list);
                listed.extend(chans.into_iter().map(|c| (c, private)));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(collector = NAME, file = %src.display(list), error = %e, "malformed export file skipped");
                let _ = send(Item::Counted(Counted::Skipped));
            }
        }
    }
    let mut channels: Vec<Channel> = listed
        .into_iter()
        .map(|(mut c, private)| {
            c.is_private |= private;
            if c.name.is_empty() {
                c.name = c.id.clone();
            }
            c
        })
        .filter(|c| !c.id.is_empty())
        .collect();
    channels.retain(|c| args.wants_channel(&c.id));
    if !send(Item::Channels(channels.clone())) {
        return;
    }
    // Day files per folder.
    let mut by_folder: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for f in &files {
        if let Some((folder, file)) = f.split_once('/')
            && !file.contains('/')
            && day_of(file).is_some()
        {
            by_folder.entry(folder).or_default().push(f.as_str());
        }
    }
    let (from, to) = (args.start_date, args.end_date);
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut batch: Vec<SlMessage> = Vec::with_capacity(BATCH_SIZE);
    for c in &channels {
        let folder = [c.name.as_str(), c.id.as_str()]
            .into_iter()
            .find(|f| by_folder.contains_key(f));
        let Some(folder) = folder else {
            tracing::warn!(collector = NAME, channel = %c.id, name = %c.name, folder = %src.display(&c.name), "channel listed in the export has no folder; skipped");
            if !send(Item::Counted(Counted::Missing)) {
                return;
            }
            continue;
        };
        placed.insert(folder);
        let Some(days) = by_folder.get(folder) else {
            continue;
        };
        for rel in days {
            let day = rel.rsplit('/').next().and_then(day_of);
            if day.is_some_and(|d| from.is_some_and(|f| d < f) || to.is_some_and(|t| d > t)) {
                continue;
            }
            let _ = send(Item::Counted(Counted::DayFile));
            match read_list(&mut src, rel, &set) {
                Ok(Some(values)) => {
                    let mut bad = 0u64;
                    let msgs = convert(&c.id, values, &mut bad, rel);
                    if bad > 0 && !send(Item::Counted(Counted::Malformed(bad))) {
                        return;
                    }
                    batch.extend(msgs);
                    if batch.len() >= BATCH_SIZE {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_SIZE));
                        if !send(Item::Batch(full)) {
                            return;
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(collector = NAME, file = %src.display(rel), error = %e, "malformed day file skipped");
                    if !send(Item::Counted(Counted::Skipped)) {
                        return;
                    }
                }
            }
        }
    }
    if !batch.is_empty() && !send(Item::Batch(batch)) {
        return;
    }
    // Day files of folders no listing names.
    if args.channel_ids.is_empty() {
        for (folder, days) in &by_folder {
            if placed.contains(folder) {
                continue;
            }
            tracing::warn!(collector = NAME, folder = %src.display(folder), day_files = days.len(), "folder of day files not listed in channels.json (or groups/mpims/dms.json); skipped");
            for _ in days {
                if !send(Item::Counted(Counted::Unplaced)) {
                    return;
                }
            }
        }
    }
    if malformed > 0 {
        let _ = send(Item::Counted(Counted::Malformed(malformed)));
    }
}

/// Import the export at `path`.
pub async fn import(
    ctx: &CollectContext,
    args: &SlackArgs,
    team_id: Option<&str>,
    path: &Path,
    totals: &mut Totals,
) -> Result<(), SlackError> {
    let src = {
        let p = path.to_path_buf();
        tokio::task::spawn_blocking(move || Source::open(&p))
            .await
            .map_err(|e| SlackError::Join(e.to_string()))??
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Item>(2);
    let a = args.clone();
    let reader = tokio::task::spawn_blocking(move || walk(src, &a, &tx));
    let parts = args.parts();
    let mut names = Names::default();
    let mut team: Option<String> = team_id.map(str::to_owned);
    let mut failure: Option<SlackError> = None;
    while let Some(item) = rx.recv().await {
        match item {
            Item::Users(users) => {
                if team.is_none() {
                    team = users.iter().find_map(|u| u.team_id.clone());
                }
                if !parts.users {
                    continue;
                }
                totals.users += users.len() as u64;
                if !args.dry_run && !users.is_empty() {
                    let c = store::write_users(&ctx.storage, team.as_deref(), &users)
                        .await
                        .map_err(storage("storing slack users"))?;
                    totals.users_inserted += c.inserted;
                    totals.users_updated += c.updated;
                }
            }
            Item::Channels(channels) => {
                if parts.channels {
                    totals.channels += channels.len() as u64;
                    totals.members += channels
                        .iter()
                        .map(|c| c.members.as_ref().map_or(0, |m| m.len() as u64))
                        .sum::<u64>();
                    if !args.dry_run && !channels.is_empty() {
                        let mut chans = channels;
                        if !parts.members {
                            for c in &mut chans {
                                c.members = None;
                            }
                        }
                        let c = store::write_channels(&ctx.storage, team.as_deref(), &chans)
                            .await
                            .map_err(storage("storing slack channels"))?;
                        totals.channels_inserted += c.inserted;
                        totals.channels_updated += c.updated;
                    }
                }
                if !args.dry_run {
                    names = store::names(&ctx.storage)
                        .await
                        .map_err(storage("reading slack names"))?;
                }
            }
            Item::Batch(batch) => {
                if !parts.messages {
                    continue;
                }
                totals.messages += batch.len() as u64;
                if !args.dry_run {
                    let c = store::write_messages(
                        &ctx.storage,
                        &batch,
                        &names,
                        "export",
                        &ctx.run_id,
                        None,
                    )
                    .await
                    .map_err(storage("storing slack messages"))?;
                    totals.stored.add(c);
                }
            }
            Item::Counted(c) => match c {
                Counted::DayFile => totals.day_files += 1,
                Counted::Malformed(n) => totals.malformed += n,
                Counted::Missing => totals.missing_files += 1,
                Counted::Skipped => totals.skipped_files += 1,
                Counted::Unplaced => totals.unplaced_files += 1,
            },
            Item::Failed(e) => failure = Some(e),
        }
    }
    reader.await.map_err(|e| SlackError::Join(e.to_string()))?;
    if let Some(e) = failure {
        return Err(e);
    }
    metrics::counter!("bdc_slack_messages_total", "source" => "export").increment(totals.messages);
    tracing::info!(
        collector = NAME,
        path = %path.display(),
        users = totals.users,
        channels = totals.channels,
        day_files = totals.day_files,
        messages = totals.messages,
        missing_files = totals.missing_files,
        skipped_files = totals.skipped_files,
        unplaced_files = totals.unplaced_files,
        malformed = totals.malformed,
        "slack export imported"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_and_days() {
        let n = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            find_root(&n(&[
                "x/users.json",
                "x/channels.json",
                "x/general/2024-01-01.json"
            ])),
            Some("x/".into())
        );
        assert_eq!(find_root(&n(&["users.json"])), Some(String::new()));
        assert_eq!(find_root(&n(&["a/b.json"])), None);
        assert!(day_of("2024-01-31.json").is_some());
        assert!(day_of("2024-13-01.json").is_none() && day_of("notes.json").is_none());
    }
}
