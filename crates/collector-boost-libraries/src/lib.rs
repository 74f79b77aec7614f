//! The `boost-libraries` collector: the Boost library catalog per release,
//! from a git clone of the superproject (the `git-history` machinery,
//! [`bdc_collector_git::sync_mirror`]): the submodules listed in
//! `.gitmodules` at each release tag, the commit each one is pinned to, and
//! that commit's `meta/libraries.json` (one object or an array of objects:
//! key, name, authors, maintainers, description, category, cxxstd, status).
//!
//! ```text
//! bdc run boost-libraries [--repo PATH|URL] [--release TAG]… [--full]
//! ```
//!
//! `--repo` defaults to `https://github.com/boostorg/boost.git`; relative
//! submodule URLs (`../config.git`) resolve against it, and each submodule
//! is fetched once per run into `<WORKSPACE_DIR>/git/boost-libraries/`.
//! Without `--release`, every `boost-X.Y.Z` tag (betas and release
//! candidates excluded) is recorded, oldest first. Suits the `on_release`
//! schedule.
//!
//! Typed tables: `bl_releases`, `bl_submodules`, `bl_libraries` (see
//! [`store`]). Activity records (`source_system = "boost-libraries"`,
//! `external_id = "<release>/<key>"`, occurred at the release commit's
//! date) describe changes against the previous stored release in version
//! order: `library_added`, `library_changed`, `library_removed`.
//!
//! Incremental: one checkpoint per release (scope `release:<tag>`, token =
//! the superproject commit). A release whose tag still points at the same
//! commit is skipped without fetching any submodule; a moved tag is
//! re-recorded in one transaction (rows that disappeared are deleted).
//! Problems with one submodule (fetch failure, pinned commit missing, no or
//! invalid `meta/libraries.json`, entries without `key`) are recorded in
//! `bl_submodules.meta_status`, counted and logged, never fatal.
//!
//! Counts: `releases`, `releases_unchanged`, `submodules`, `libraries`,
//! `added`, `changed`, `removed`, `no_meta`, `invalid_json`,
//! `invalid_entries`, `fetch_failed`, `commit_not_found`, `inserted`,
//! `updated`.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use bdc_collector::{CollectContext, Collector};
use bdc_collector_git::{Git, GitError, normalize_source, sync_mirror};
use bdc_core::{
    ActivityRecord, BoxError, Categorized, FailureCategory, IncrementalState, TrackerResult,
};
use bdc_storage::StorageError;
use bdc_storage::checkpoints::CheckpointWrite;
use chrono::{DateTime, Utc};
use clap::Parser;
use serde_json::{Map, json};

pub mod meta;
pub mod store;

pub use store::{SCHEMA, SOURCE_SYSTEM};

use meta::{Library, release_order};
use store::{ReleaseData, SubmoduleRow};

/// Stable collector name.
pub const NAME: &str = "boost-libraries";
/// The Boost superproject.
pub const DEFAULT_REPO: &str = "https://github.com/boostorg/boost.git";

/// Errors of the `boost-libraries` collector.
#[derive(Debug, thiserror::Error)]
pub enum BoostLibrariesError {
    #[error("invalid arguments for boost-libraries: {message}")]
    Args { message: String },
    #[error("superproject: {0}")]
    Git(#[from] GitError),
    #[error("superproject: {0}")]
    History(#[from] bdc_collector_git::GitHistoryError),
    #[error("release {release:?} does not exist in the superproject")]
    NoRelease { release: String },
    #[error("release {release}: commit date {value:?} is not ISO 8601")]
    Date { release: String, value: String },
    #[error("building a boost-libraries record: {0}")]
    Protocol(#[source] bdc_core::ProtocolError),
    #[error("database error while {what}: {source}")]
    Storage {
        what: &'static str,
        #[source]
        source: StorageError,
    },
    #[error("a git worker thread failed: {0}")]
    Join(String),
}

impl BoostLibrariesError {
    pub fn into_box(self) -> BoxError {
        let category = match &self {
            BoostLibrariesError::Args { .. } => Some(FailureCategory::Config),
            BoostLibrariesError::NoRelease { .. } => Some(FailureCategory::NotFound),
            BoostLibrariesError::Date { .. } => Some(FailureCategory::Parse),
            BoostLibrariesError::Git(_) => Some(FailureCategory::Command),
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

fn storage_err(what: &'static str) -> impl FnOnce(StorageError) -> BoostLibrariesError {
    move |source| BoostLibrariesError::Storage { what, source }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, GitError> + Send + 'static,
) -> Result<T, BoostLibrariesError> {
    Ok(tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BoostLibrariesError::Join(e.to_string()))??)
}

/// `bdc run boost-libraries` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "boost-libraries",
    about = "Collect the Boost library catalog per release"
)]
pub struct BoostArgs {
    /// The superproject: a local path or a git URL.
    #[arg(long, value_name = "PATH|URL", default_value = DEFAULT_REPO)]
    pub repo: String,
    /// Release tag(s) (or any ref) to record [default: every boost-X.Y.Z tag].
    #[arg(long, value_name = "TAG")]
    pub release: Vec<String>,
    /// Re-record releases even when their tag did not move.
    #[arg(long)]
    pub full: bool,
}

impl BoostArgs {
    pub fn parse_args(args: &[String]) -> Result<Self, BoostLibrariesError> {
        let a = Self::try_parse_from(std::iter::once(NAME.to_owned()).chain(args.iter().cloned()))
            .map_err(|e| BoostLibrariesError::Args {
                message: e.to_string().trim().to_owned(),
            })?;
        for r in &a.release {
            if r.is_empty() || r.starts_with('-') || r.chars().any(char::is_whitespace) {
                return Err(BoostLibrariesError::Args {
                    message: format!("invalid --release {r:?}"),
                });
            }
        }
        Ok(a)
    }
}

/// The `boost-libraries` collector.
#[derive(Debug, Clone, Copy, Default)]
pub struct BoostLibrariesCollector;

#[async_trait]
impl Collector for BoostLibrariesCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn validate_config(&self, ctx: &CollectContext) -> Result<(), BoxError> {
        BoostArgs::parse_args(&ctx.args).map_err(BoostLibrariesError::into_box)?;
        Ok(())
    }

    async fn collect(&self, ctx: &CollectContext) -> Result<TrackerResult, BoxError> {
        let args = BoostArgs::parse_args(&ctx.args).map_err(BoostLibrariesError::into_box)?;
        collect(ctx, &args)
            .await
            .map_err(BoostLibrariesError::into_box)
    }
}

#[derive(Debug, Default)]
struct Counts(BTreeMap<&'static str, u64>);

impl Counts {
    fn add(&mut self, k: &'static str, n: u64) {
        *self.0.entry(k).or_insert(0) += n;
    }
    fn result(&self) -> TrackerResult {
        let mut r = TrackerResult::ok();
        for k in [
            "releases",
            "releases_unchanged",
            "submodules",
            "libraries",
            "added",
            "changed",
            "removed",
            "no_meta",
            "invalid_json",
            "invalid_entries",
            "fetch_failed",
            "commit_not_found",
            "inserted",
            "updated",
        ] {
            if let Err(e) = r.add(k, self.0.get(k).copied().unwrap_or(0)) {
                tracing::error!(count = k, error = %e, "invalid count name");
            }
        }
        r
    }
}

fn safe_name(n: &str) -> String {
    n.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned()
}

async fn collect(
    ctx: &CollectContext,
    args: &BoostArgs,
) -> Result<TrackerResult, BoostLibrariesError> {
    let source = normalize_source(&args.repo);
    let ws = ctx.config.workspace_dir.clone();
    tracing::info!(collector = NAME, source = %source, "fetching the superproject");
    let sup = sync_mirror(&ws, "boost-libraries/superproject", &source).await?;
    let mut releases = if args.release.is_empty() {
        let g = sup.clone();
        let out = blocking(move || {
            g.text(&[
                "for-each-ref",
                "--format=%(refname:short)",
                "refs/tags/boost-*",
            ])
        })
        .await?;
        out.lines()
            .map(str::trim)
            .filter(|t| !t.is_empty() && !t.contains("beta") && !t.contains("rc"))
            .map(str::to_owned)
            .collect()
    } else {
        args.release.clone()
    };
    releases.sort_by_key(|r| release_order(r));
    let mut counts = Counts::default();
    let mut mirrors: HashMap<String, Option<Git>> = HashMap::new();
    for release in releases {
        collect_release(
            ctx,
            args,
            &sup,
            &source,
            &release,
            &mut mirrors,
            &mut counts,
        )
        .await?;
    }
    Ok(counts.result())
}

#[allow(clippy::too_many_arguments)]
async fn collect_release(
    ctx: &CollectContext,
    args: &BoostArgs,
    sup: &Git,
    source: &str,
    release: &str,
    mirrors: &mut HashMap<String, Option<Git>>,
    counts: &mut Counts,
) -> Result<(), BoostLibrariesError> {
    let g = sup.clone();
    let r = release.to_owned();
    let Some((_, sha)) = blocking(move || g.resolve_ref(&r)).await? else {
        return Err(BoostLibrariesError::NoRelease {
            release: release.to_owned(),
        });
    };
    counts.add("releases", 1);
    let scope = format!("release:{release}");
    let prev = ctx
        .storage
        .checkpoints()
        .get(NAME, &scope)
        .await
        .map_err(storage_err("reading a boost-libraries checkpoint"))?;
    if !args.full && prev.as_ref().is_some_and(|p| p.checkpoint_token() == sha) {
        tracing::info!(collector = NAME, release, sha = %sha, "release unchanged; skipped");
        counts.add("releases_unchanged", 1);
        return Ok(());
    }
    let g = sup.clone();
    let s = sha.clone();
    let (date, gitmodules, tree) = blocking(move || {
        let date = g.text(&["log", "-1", "--format=%cI", &s])?;
        let gm = g.show_file(&s, ".gitmodules")?;
        let tree = g.run(&["ls-tree", "-r", "-z", &s])?;
        Ok((date, gm, tree))
    })
    .await?;
    let released_at = DateTime::parse_from_rfc3339(&date)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| BoostLibrariesError::Date {
            release: release.to_owned(),
            value: date.clone(),
        })?;
    // Gitlinks: `160000 commit <sha>\t<path>` entries.
    let mut pinned: HashMap<String, String> = HashMap::new();
    for entry in tree.split(|b| *b == 0) {
        let e = String::from_utf8_lossy(entry);
        if let Some((head, path)) = e.split_once('\t') {
            let f: Vec<&str> = head.split_whitespace().collect();
            if f.len() == 3 && f[0] == "160000" {
                pinned.insert(path.to_owned(), f[2].to_owned());
            }
        }
    }
    let subs = meta::parse_gitmodules(&String::from_utf8_lossy(&gitmodules.unwrap_or_default()));
    let mut data = ReleaseData {
        release: release.to_owned(),
        superproject_sha: sha.clone(),
        released_at,
        submodules: Vec::new(),
        libraries: Vec::new(),
    };
    for sub in subs {
        let url = meta::resolve_url(source, &sub.url);
        let pin = pinned.get(&sub.path).cloned();
        let mut row = SubmoduleRow {
            name: sub.name.clone(),
            path: sub.path.clone(),
            url: url.clone(),
            sha: pin.clone(),
            meta_status: "ok".into(),
        };
        let Some(pin) = pin else {
            row.meta_status = "commit_not_found".into();
            counts.add("commit_not_found", 1);
            tracing::warn!(collector = NAME, release, submodule = %sub.name, "no gitlink for the submodule path");
            data.submodules.push(row);
            continue;
        };
        if !mirrors.contains_key(&sub.name) {
            let dir = format!("boost-libraries/{}", safe_name(&sub.name));
            let git = match sync_mirror(&ctx.config.workspace_dir, &dir, &url).await {
                Ok(g) => Some(g),
                Err(e) => {
                    tracing::warn!(collector = NAME, submodule = %sub.name, url = %url, error = %e, "cannot fetch the submodule");
                    None
                }
            };
            mirrors.insert(sub.name.clone(), git);
        }
        let Some(git) = mirrors.get(&sub.name).cloned().flatten() else {
            row.meta_status = "fetch_failed".into();
            counts.add("fetch_failed", 1);
            data.submodules.push(row);
            continue;
        };
        let (u, p) = (url.clone(), pin.clone());
        let file = blocking(move || {
            if !git.has_commit(&p)? {
                // Not on any branch or tag: ask for the commit itself.
                let _ = git.run(&["fetch", "--quiet", "--no-write-fetch-head", &u, &p]);
                if !git.has_commit(&p)? {
                    return Ok(None);
                }
            }
            git.show_file(&p, "meta/libraries.json").map(Some)
        })
        .await?;
        match file {
            None => {
                row.meta_status = "commit_not_found".into();
                counts.add("commit_not_found", 1);
                tracing::warn!(collector = NAME, release, submodule = %sub.name, sha = %pin, "pinned commit not found in the submodule");
            }
            Some(None) => {
                row.meta_status = "no_meta".into();
                counts.add("no_meta", 1);
            }
            Some(Some(bytes)) => match meta::parse_libraries(&bytes) {
                Ok(parsed) => {
                    if parsed.invalid_entries > 0 {
                        tracing::warn!(collector = NAME, release, submodule = %sub.name, invalid = parsed.invalid_entries, "libraries.json entries without a key");
                    }
                    counts.add("invalid_entries", parsed.invalid_entries);
                    data.libraries
                        .extend(parsed.libraries.into_iter().map(|l| (sub.name.clone(), l)));
                }
                Err(e) => {
                    row.meta_status = "invalid_json".into();
                    counts.add("invalid_json", 1);
                    tracing::warn!(collector = NAME, release, submodule = %sub.name, error = %e, "meta/libraries.json is not valid JSON");
                }
            },
        }
        data.submodules.push(row);
    }
    // A key listed twice keeps its first entry (counted as invalid).
    let mut seen = std::collections::HashSet::new();
    let before = data.libraries.len();
    data.libraries.retain(|(_, l)| seen.insert(l.key.clone()));
    counts.add("invalid_entries", (before - data.libraries.len()) as u64);

    let records = change_records(ctx, &data, counts).await?;
    counts.add("submodules", data.submodules.len() as u64);
    counts.add("libraries", data.libraries.len() as u64);
    let mut extras = Map::new();
    extras.insert("libraries".into(), json!(data.libraries.len()));
    extras.insert("submodules".into(), json!(data.submodules.len()));
    let state = IncrementalState::new(
        sha.clone(),
        format!("{release} at {}", &sha[..sha.len().min(12)]),
    )
    .map_err(BoostLibrariesError::Protocol)?
    .with_extras(extras);
    let cp = CheckpointWrite {
        collector: NAME,
        scope: &scope,
        state: &state,
        run_id: Some(&ctx.run_id),
    };
    let c = store::store_release(&ctx.storage, &data, &records, &ctx.run_id, &cp)
        .await
        .map_err(storage_err("storing a boost release"))?;
    counts.add("inserted", c.inserted);
    counts.add("updated", c.updated);
    metrics::counter!("bdc_boost_libraries_releases_total").increment(1);
    tracing::info!(
        collector = NAME,
        release,
        libraries = data.libraries.len(),
        submodules = data.submodules.len(),
        "release recorded"
    );
    Ok(())
}

fn library_record(
    release: &str,
    at: DateTime<Utc>,
    kind: &str,
    l: &Library,
    sub: Option<&str>,
) -> Result<ActivityRecord, BoostLibrariesError> {
    let verb = kind.trim_start_matches("library_");
    ActivityRecord::new(SOURCE_SYSTEM, format!("{release}/{}", l.key), at, kind)
        .and_then(|r| {
            r.with_title(format!(
                "{} {verb} in {release}",
                l.name.as_deref().unwrap_or(&l.key)
            ))
            .with_payload(json!({
                "release": release,
                "key": l.key,
                "submodule": sub,
                "name": l.name,
                "authors": l.authors,
                "maintainers": l.maintainers,
                "description": l.description,
                "category": l.category,
                "cxxstd": l.cxxstd,
                "status": l.status,
            }))
        })
        .map_err(BoostLibrariesError::Protocol)
}

/// Added / changed / removed libraries against the previous stored release.
async fn change_records(
    ctx: &CollectContext,
    data: &ReleaseData,
    counts: &mut Counts,
) -> Result<Vec<ActivityRecord>, BoostLibrariesError> {
    let prev = store::previous_release(&ctx.storage, &data.release)
        .await
        .map_err(storage_err("reading the previous boost release"))?;
    let prev_map = prev.map(|(_, m)| m).unwrap_or_default();
    let mut out = Vec::new();
    for (sub, l) in &data.libraries {
        let kind = match prev_map.get(&l.key) {
            None => "library_added",
            Some(fp) if *fp != store::library_fingerprint(l) => "library_changed",
            Some(_) => continue,
        };
        counts.add(
            if kind == "library_added" {
                "added"
            } else {
                "changed"
            },
            1,
        );
        out.push(library_record(
            &data.release,
            data.released_at,
            kind,
            l,
            Some(sub),
        )?);
    }
    for key in prev_map.keys() {
        if !data.libraries.iter().any(|(_, l)| &l.key == key) {
            counts.add("removed", 1);
            let l = Library {
                key: key.clone(),
                name: None,
                authors: Vec::new(),
                maintainers: Vec::new(),
                description: None,
                category: Vec::new(),
                cxxstd: None,
                status: None,
            };
            out.push(library_record(
                &data.release,
                data.released_at,
                "library_removed",
                &l,
                None,
            )?);
        }
    }
    Ok(out)
}
