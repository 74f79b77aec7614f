//! The `git-history` collector: the commits of any git repository (local
//! path or URL), stored in typed tables (`git_repos`, `git_refs`,
//! `git_commits`, `git_commit_files`; see [`store`]) and as
//! [`ActivityRecord`](bdc_core::ActivityRecord)s with
//! `source_system = "git"`, `kind = "commit"`,
//! `external_id = "<repo>:<sha>"`, actor = author e-mail.
//!
//! ```text
//! bdc run git-history --repo PATH|URL… [--ref R]… [--name NAME] [--full]
//! ```
//!
//! The repository is fetched into a bare repository under
//! `<WORKSPACE_DIR>/git/<name>` (branches and tags, forced and pruned) with
//! the `git` CLI (see [`git`] for why not `gix`). `<name>` defaults to the
//! last path component without `.git`. Without `--ref` the source's
//! default branch (its `HEAD`) is collected.
//!
//! # Incremental, force-push safe
//! One checkpoint per repo + ref (scope `<name>:<full ref>`), token = the
//! tip sha last stored; `git_refs` holds the same tips. A run:
//! * tip unchanged → nothing written, checkpoint untouched;
//! * otherwise walks `git log <new> ^<old>` (every commit reachable from the
//!   new tip and not from the old one: works for fast-forwards and
//!   force-pushes alike; a full walk on the first run or when the old tip
//!   is gone from the object store);
//! * commits reachable from the old tip but from neither the new tip nor
//!   any other tracked ref of the repo are marked `reachable = false`
//!   (`unreachable_since`), and their activity records say so; a commit that
//!   comes back is marked reachable again;
//! * writes in batches of [`BATCH_SIZE`]; the last batch carries the ref
//!   tip, the unreachable marks and the checkpoint in one transaction. A run
//!   that dies midway leaves the old checkpoint: the next run walks the
//!   same range again and the idempotent upserts give the same rows.
//!
//! Merge commits carry no file list (git shows no diff for merges).
//!
//! Counts: `commits` (walked), `inserted`, `revived`, `unchanged`, `files`,
//! `unreachable`, `refs`, `refs_unchanged`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use async_trait::async_trait;
use bdc_collector::{CollectContext, Collector};
use bdc_core::{
    BoxError, Categorized, FailureCategory, IncrementalState, ProtocolError, TrackerResult,
};
use bdc_storage::StorageError;
use bdc_storage::checkpoints::CheckpointWrite;
use clap::Parser;
use serde_json::{Map, json};

pub mod git;
pub mod log;
pub mod store;

pub use git::{Git, GitError};
pub use store::{SCHEMA, SOURCE_SYSTEM};

use log::Commit;
use store::{BatchCounts, RefUpdate};

/// Stable collector name.
pub const NAME: &str = "git-history";
/// Commits per write transaction.
pub const BATCH_SIZE: usize = 1000;

/// Errors of the `git-history` collector.
#[derive(Debug, thiserror::Error)]
pub enum GitHistoryError {
    #[error("invalid arguments for git-history: {message}")]
    Args { message: String },
    #[error("git: {0}")]
    Git(#[from] GitError),
    #[error("{repo}: ref {ref_name:?} does not exist")]
    NoRef { repo: String, ref_name: String },
    #[error("{0}")]
    Record(#[from] log::RecordError),
    #[error("building a git-history checkpoint: {0}")]
    Checkpoint(#[source] ProtocolError),
    #[error("database error while {what}: {source}")]
    Storage {
        what: &'static str,
        #[source]
        source: StorageError,
    },
    #[error("a git worker thread failed: {0}")]
    Join(String),
}

impl GitHistoryError {
    pub fn into_box(self) -> BoxError {
        let category = match &self {
            GitHistoryError::Args { .. } => Some(FailureCategory::Config),
            GitHistoryError::NoRef { .. } => Some(FailureCategory::NotFound),
            GitHistoryError::Record(_) => Some(FailureCategory::Parse),
            GitHistoryError::Git(GitError::Spawn { .. }) => Some(FailureCategory::Config),
            // A fetch from a remote that cannot be reached is `network`
            // (or timeout/auth/not_found), as for HTTP; git itself failing
            // is `command`.
            GitHistoryError::Git(GitError::Failed { args, stderr, .. })
                if ["fetch", "clone", "ls-remote", "remote"]
                    .iter()
                    .any(|c| args.split_whitespace().next() == Some(*c)) =>
            {
                Some(bdc_core::classify_git_stderr(stderr))
            }
            GitHistoryError::Git(_) => Some(FailureCategory::Command),
            _ => None,
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

fn storage_err(what: &'static str) -> impl FnOnce(StorageError) -> GitHistoryError {
    move |source| GitHistoryError::Storage { what, source }
}

/// `bdc run git-history` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "git-history",
    about = "Collect the commits of git repositories"
)]
pub struct GitArgs {
    /// Repository: a local path or a URL git can fetch.
    #[arg(long, value_name = "PATH|URL", required = true)]
    pub repo: Vec<String>,
    /// Ref(s) to collect (branch, tag or full ref) [default: the source's HEAD branch].
    #[arg(long = "ref", value_name = "REF")]
    pub refs: Vec<String>,
    /// Name of the repository in the database and under WORKSPACE_DIR/git
    /// (only with a single --repo) [default: last path component].
    #[arg(long)]
    pub name: Option<String>,
    /// Ignore checkpoints: walk every ref's whole history again (unchanged
    /// commits are still not rewritten).
    #[arg(long)]
    pub full: bool,
}

impl GitArgs {
    pub fn parse_args(args: &[String]) -> Result<Self, GitHistoryError> {
        let a = Self::try_parse_from(std::iter::once(NAME.to_owned()).chain(args.iter().cloned()))
            .map_err(|e| GitHistoryError::Args {
                message: e.to_string().trim().to_owned(),
            })?;
        if a.name.is_some() && a.repo.len() > 1 {
            return Err(GitHistoryError::Args {
                message: "--name needs exactly one --repo".into(),
            });
        }
        if let Some(n) = &a.name {
            check_name(n)?;
        }
        for r in a.refs.iter() {
            if r.is_empty()
                || r.starts_with('-')
                || r.contains("..")
                || r.chars().any(char::is_whitespace)
            {
                return Err(GitHistoryError::Args {
                    message: format!("invalid --ref {r:?}"),
                });
            }
        }
        for r in &a.repo {
            if r.trim().is_empty() || r.starts_with('-') {
                return Err(GitHistoryError::Args {
                    message: format!("invalid --repo {r:?}"),
                });
            }
        }
        Ok(a)
    }
}

fn check_name(n: &str) -> Result<(), GitHistoryError> {
    let ok = !n.is_empty()
        && !n.starts_with('.')
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(GitHistoryError::Args {
            message: format!(
                "invalid repository name {n:?}: use letters, digits, '.', '_' and '-'"
            ),
        })
    }
}

/// `https://github.com/boostorg/json.git` → `json`; `/src/my repo/` → `my-repo`.
pub fn repo_name(source: &str) -> String {
    let last = source
        .trim_end_matches('/')
        .rsplit(['/', ':', '\\'])
        .next()
        .unwrap_or(source);
    let last = last.strip_suffix(".git").unwrap_or(last);
    let name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_start_matches('.').to_owned();
    if name.is_empty() { "repo".into() } else { name }
}

/// A local path becomes absolute; anything else is passed to git as is.
pub fn normalize_source(source: &str) -> String {
    let p = Path::new(source);
    if p.exists() {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    } else {
        source.to_owned()
    }
}

/// `<workspace>/git/<name>`.
pub fn mirror_dir(workspace: &Path, name: &str) -> PathBuf {
    workspace.join("git").join(name)
}

/// Fetch `source` into the workspace mirror (blocking work on a thread).
pub async fn sync_mirror(
    workspace: &Path,
    name: &str,
    source: &str,
) -> Result<Git, GitHistoryError> {
    let git = Git::new(mirror_dir(workspace, name));
    let g = git.clone();
    let src = source.to_owned();
    tokio::task::spawn_blocking(move || g.sync_from(&src))
        .await
        .map_err(|e| GitHistoryError::Join(e.to_string()))??;
    Ok(git)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, GitError> + Send + 'static,
) -> Result<T, GitHistoryError> {
    Ok(tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| GitHistoryError::Join(e.to_string()))??)
}

/// The `git-history` collector.
#[derive(Debug, Clone, Copy, Default)]
pub struct GitHistoryCollector;

#[async_trait]
impl Collector for GitHistoryCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn args_command(&self) -> Option<clap::Command> {
        Some(<GitArgs as clap::CommandFactory>::command())
    }

    fn validate_config(&self, ctx: &CollectContext) -> Result<(), BoxError> {
        GitArgs::parse_args(&ctx.args).map_err(GitHistoryError::into_box)?;
        Ok(())
    }

    async fn collect(&self, ctx: &CollectContext) -> Result<TrackerResult, BoxError> {
        let args = GitArgs::parse_args(&ctx.args).map_err(GitHistoryError::into_box)?;
        let mut totals = Totals::default();
        for repo in &args.repo {
            collect_repo(ctx, &args, repo, &mut totals)
                .await
                .map_err(GitHistoryError::into_box)?;
        }
        Ok(totals.result())
    }
}

/// Totals of a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    pub commits: u64,
    pub refs: u64,
    pub refs_unchanged: u64,
    pub stored: BatchCounts,
}

impl Totals {
    pub fn result(&self) -> TrackerResult {
        let mut r = TrackerResult::ok();
        for (k, v) in [
            ("commits", self.commits),
            ("inserted", self.stored.inserted),
            ("revived", self.stored.revived),
            ("unchanged", self.stored.unchanged),
            ("files", self.stored.files),
            ("unreachable", self.stored.marked_unreachable),
            ("refs", self.refs),
            ("refs_unchanged", self.refs_unchanged),
        ] {
            if let Err(e) = r.add(k, v) {
                tracing::error!(count = k, error = %e, "invalid count name");
            }
        }
        r
    }
}

async fn collect_repo(
    ctx: &CollectContext,
    args: &GitArgs,
    repo: &str,
    totals: &mut Totals,
) -> Result<(), GitHistoryError> {
    let started = Instant::now();
    let source = normalize_source(repo);
    let name = match &args.name {
        Some(n) => n.clone(),
        None => repo_name(&source),
    };
    check_name(&name)?;
    tracing::info!(collector = NAME, repo = %name, source = %source, "fetching repository");
    let git = sync_mirror(&ctx.config.workspace_dir, &name, &source).await?;
    let refs = if args.refs.is_empty() {
        let g = git.clone();
        let src = source.clone();
        match blocking(move || g.remote_head(&src)).await? {
            Some(r) => vec![r],
            None => {
                tracing::warn!(collector = NAME, repo = %name, "the source has no HEAD branch; nothing to collect");
                Vec::new()
            }
        }
    } else {
        args.refs.clone()
    };
    for r in refs {
        collect_ref(ctx, args, &git, &name, &source, &r, totals).await?;
    }
    tracing::info!(collector = NAME, repo = %name, commits = totals.commits, inserted = totals.stored.inserted,
        unreachable = totals.stored.marked_unreachable, elapsed_s = started.elapsed().as_secs_f64(), "repository done");
    Ok(())
}

/// Collect one ref of an already fetched repository (also used by the
/// boost-libraries collector through [`sync_mirror`]).
#[allow(clippy::too_many_arguments)]
async fn collect_ref(
    ctx: &CollectContext,
    args: &GitArgs,
    git: &Git,
    repo: &str,
    source: &str,
    ref_arg: &str,
    totals: &mut Totals,
) -> Result<(), GitHistoryError> {
    let g = git.clone();
    let r = ref_arg.to_owned();
    let Some((full_ref, tip)) = blocking(move || g.resolve_ref(&r)).await? else {
        return Err(GitHistoryError::NoRef {
            repo: repo.to_owned(),
            ref_name: ref_arg.to_owned(),
        });
    };
    totals.refs += 1;
    let scope = format!("{repo}:{full_ref}");
    let prev = ctx
        .storage
        .checkpoints()
        .get(NAME, &scope)
        .await
        .map_err(storage_err("reading a git-history checkpoint"))?;
    let old = prev.map(|p| p.checkpoint_token().to_owned());
    if !args.full && old.as_deref() == Some(tip.as_str()) {
        tracing::info!(collector = NAME, repo, r#ref = %full_ref, tip = %tip, "ref unchanged; nothing to do");
        totals.refs_unchanged += 1;
        return Ok(());
    }
    let other_tips: Vec<String> = store::ref_tips(&ctx.storage, repo)
        .await
        .map_err(storage_err("reading git ref tips"))?
        .into_iter()
        .filter(|(r, _)| *r != full_ref)
        .map(|(_, t)| t)
        .collect();

    // What is no longer reachable, decided before any write.
    let g = git.clone();
    let (old_c, tip_c, others) = (old.clone(), tip.clone(), other_tips.clone());
    let (old_present, gone_from_git) = blocking(move || {
        let Some(old) = old_c else {
            return Ok((false, None));
        };
        if !g.has_commit(&old)? {
            return Ok((false, None));
        }
        let others: Vec<String> = others
            .into_iter()
            .filter(|t| g.has_commit(t).unwrap_or(false))
            .collect();
        if g.is_ancestor(&old, &tip_c)? {
            return Ok((true, Some(Vec::new())));
        }
        let mut a = vec![old.clone(), format!("^{tip_c}")];
        a.extend(others.iter().map(|t| format!("^{t}")));
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        Ok((true, Some(g.rev_list(&refs)?)))
    })
    .await?;
    let gone = match gone_from_git {
        Some(g) => g,
        None if old.is_some() => {
            // Old tip gone from the object store (gc after a force-push):
            // compare what the database holds with what is reachable now.
            let stored = store::reachable_shas(&ctx.storage, repo)
                .await
                .map_err(storage_err("reading reachable git commits"))?;
            let g = git.clone();
            let (tip_c, others) = (tip.clone(), other_tips.clone());
            let live: HashSet<String> = blocking(move || {
                let mut a = vec![tip_c];
                a.extend(
                    others
                        .into_iter()
                        .filter(|t| g.has_commit(t).unwrap_or(false)),
                );
                let refs: Vec<&str> = a.iter().map(String::as_str).collect();
                g.rev_list(&refs)
            })
            .await?
            .into_iter()
            .collect();
            stored.into_iter().filter(|s| !live.contains(s)).collect()
        }
        None => Vec::new(),
    };
    let walk_from_old = old_present && !args.full;
    tracing::info!(collector = NAME, repo, r#ref = %full_ref, old = ?old, tip = %tip,
        incremental = walk_from_old, unreachable = gone.len(), "walking history");

    let mut extras = Map::new();
    extras.insert("ref".into(), json!(full_ref));
    extras.insert("source".into(), json!(source));
    let state = IncrementalState::new(
        tip.clone(),
        format!("{full_ref} at {}", &tip[..tip.len().min(12)]),
    )
    .map_err(GitHistoryError::Checkpoint)?
    .with_extras(extras);
    let end = RefUpdate {
        ref_name: &full_ref,
        tip: &tip,
        gone: &gone,
        checkpoint: CheckpointWrite {
            collector: NAME,
            scope: &scope,
            state: &state,
            run_id: Some(&ctx.run_id),
        },
    };

    let mut log_args: Vec<String> = log::LOG_ARGS.iter().map(|s| s.to_string()).collect();
    log_args.push(tip.clone());
    if walk_from_old && let Some(o) = &old {
        log_args.push(format!("^{o}"));
    }
    log_args.push("--".into());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<Commit>, GitHistoryError>>(2);
    let g = git.clone();
    let walker = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = log_args.iter().map(String::as_str).collect();
        let mut batch = Vec::with_capacity(BATCH_SIZE);
        let mut failed = false;
        let res = g.stream_log(&refs, |rec| match log::parse_record(rec) {
            Ok(c) => {
                batch.push(c);
                if batch.len() == BATCH_SIZE {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_SIZE));
                    return tx.blocking_send(Ok(full)).is_ok();
                }
                true
            }
            Err(e) => {
                failed = true;
                let _ = tx.blocking_send(Err(e.into()));
                false
            }
        });
        if failed {
            return;
        }
        match res {
            Ok(()) => {
                if !batch.is_empty() {
                    let _ = tx.blocking_send(Ok(batch));
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e.into()));
            }
        }
    });
    let mut held: Option<Vec<Commit>> = None;
    let bar = ctx.interactive.then(|| {
        let bar = bdc_collector::progress::add(indicatif::ProgressBar::new_spinner());
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "git-history {spinner} {pos} commits {per_sec} {msg}",
        ) {
            bar.set_style(style);
        }
        bar.set_message(format!("{repo} {full_ref}"));
        bar
    });
    while let Some(item) = rx.recv().await {
        let batch = item?;
        if let Some(bar) = &bar {
            bar.inc(batch.len() as u64);
        }
        if let Some(prev) = held.replace(batch) {
            store(ctx, repo, source, &prev, None, totals).await?;
        }
    }
    walker
        .await
        .map_err(|e| GitHistoryError::Join(e.to_string()))?;
    let last = held.unwrap_or_default();
    store(ctx, repo, source, &last, Some(&end), totals).await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(())
}

async fn store(
    ctx: &CollectContext,
    repo: &str,
    source: &str,
    batch: &[Commit],
    end: Option<&RefUpdate<'_>>,
    totals: &mut Totals,
) -> Result<(), GitHistoryError> {
    let c = store::store_batch(&ctx.storage, repo, source, batch, &ctx.run_id, end)
        .await
        .map_err(storage_err("storing git commits"))?;
    totals.commits += batch.len() as u64;
    totals.stored.add(c);
    metrics::counter!("bdc_git_history_commits_total", "repo" => repo.to_owned())
        .increment(batch.len() as u64);
    metrics::counter!("bdc_git_history_inserted_total", "repo" => repo.to_owned())
        .increment(c.inserted);
    tracing::debug!(
        collector = NAME,
        repo,
        commits = batch.len(),
        inserted = c.inserted,
        "batch stored"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(repo_name("https://github.com/boostorg/json.git"), "json");
        assert_eq!(repo_name("/src/my repo/"), "my-repo");
        assert_eq!(repo_name("git@github.com:boostorg/.git"), "repo");
        assert!(
            GitArgs::parse_args(&["--repo".into(), "x".into(), "--ref".into(), "a..b".into()])
                .is_err()
        );
        assert!(GitArgs::parse_args(&[]).is_err());
    }
}

/// Test and benchmark support: repositories generated with
/// `git fast-import` (fast: 100k commits in seconds).
#[doc(hidden)]
pub mod fixtures {
    use std::io::Write;
    use std::path::Path;
    use std::process::{Command, Stdio};

    /// Append `n` linear commits to `branch` of the (non-bare or bare)
    /// repository at `dir`, each changing one of 20 files; commit `i` is
    /// dated `base_ts + i` minutes. Panics on failure (test support).
    pub fn fast_import(dir: &Path, branch: &str, n: usize, base_ts: i64, from_existing: bool) {
        let mut child = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["fast-import", "--quiet", "--force"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running git fast-import: {e}"));
        {
            let mut w =
                std::io::BufWriter::new(child.stdin.take().unwrap_or_else(|| panic!("no stdin")));
            for i in 0..n {
                let ts = base_ts + 60 * i as i64;
                let msg = format!("commit {i}\n\nGenerated body {i}.\n");
                let content = format!("line {i}\nmore {}\n", i * 7);
                writeln!(w, "commit refs/heads/{branch}").unwrap_or_default();
                writeln!(
                    w,
                    "author Dev {} <dev{}@example.org> {ts} +0000",
                    i % 13,
                    i % 13
                )
                .unwrap_or_default();
                writeln!(
                    w,
                    "committer Dev {} <dev{}@example.org> {ts} +0000",
                    i % 13,
                    i % 13
                )
                .unwrap_or_default();
                write!(w, "data {}\n{msg}\n", msg.len()).unwrap_or_default();
                if i == 0 && from_existing {
                    writeln!(w, "from refs/heads/{branch}^0").unwrap_or_default();
                }
                writeln!(w, "M 100644 inline src/f{}.txt", i % 20).unwrap_or_default();
                write!(w, "data {}\n{content}\n", content.len()).unwrap_or_default();
            }
            w.flush().unwrap_or_default();
        }
        let status = child
            .wait()
            .unwrap_or_else(|e| panic!("git fast-import: {e}"));
        assert!(status.success(), "git fast-import failed");
    }
}
