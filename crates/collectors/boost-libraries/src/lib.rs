//! The `boost-libraries` collector: the Boost library catalog per release:
//! the submodules listed in the superproject's `.gitmodules` at each
//! release tag, the commit each one is pinned to, and that commit's
//! `meta/libraries.json` (one object or an array of objects: key, name,
//! authors, maintainers, description, category, cxxstd, status).
//!
//! ```text
//! bdc run boost-libraries [--repo PATH|URL|OWNER/NAME] [--release TAG]… [--full]
//!                         [--source git|github] [--from-archive] [--max-requests N]
//! ```
//!
//! Where the catalog is read from is the [`source::CatalogSource`] trait:
//! [`source::git::GitCatalog`] (default) clones the superproject and each
//! submodule with the `git-history` machinery
//! ([`bdc_collector_git::sync_mirror`]) into
//! `<WORKSPACE_DIR>/git/boost-libraries/`;
//! [`source::github::GithubCatalog`] (`--source github`) reads tags,
//! commits, trees and contents from the GitHub REST API through the shared
//! HTTP client (conditional requests, rate limits, budget, raw archive,
//! `--from-archive` replay).
//!
//! `--repo` defaults to `https://github.com/boostorg/boost.git`; relative
//! submodule URLs (`../config.git`) resolve against it. Without
//! `--release`, every `boost-X.Y.Z` tag (betas and release candidates
//! excluded) is recorded, oldest first. Suits the `on_release` schedule.
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
//! `updated`; with `--source github` also `requests`,
//! `rate_limit_points`, `not_modified`, `replayed`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use bdc_collector::{CollectContext, Collector};
use bdc_collector_git::GitError;
use bdc_core::{
    ActivityRecord, BoxError, Categorized, FailureCategory, IncrementalState, TrackerResult,
};
use bdc_http::{ClientOptions, HttpCache, HttpClient, HttpError, RawArchive};
use bdc_storage::StorageError;
use bdc_storage::checkpoints::CheckpointWrite;
use chrono::{DateTime, Utc};
use clap::{Parser, ValueEnum};
use serde_json::{Map, json};

pub mod deps;
pub mod headers;
pub mod meta;
pub mod source;
pub mod store;

pub use store::{SCHEMA, SOURCE_SYSTEM};

use meta::{Library, release_order};
use source::{CatalogSource, MetaFetch, git::GitCatalog, github::GithubCatalog};
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
    #[error("{what}: {source}")]
    Http {
        what: String,
        #[source]
        source: HttpError,
    },
    #[error("unexpected answer from {url}: {message}")]
    Api { url: String, message: String },
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
            BoostLibrariesError::Date { .. } | BoostLibrariesError::Api { .. } => {
                Some(FailureCategory::Parse)
            }
            BoostLibrariesError::Git(_) => Some(FailureCategory::Command),
            BoostLibrariesError::Http { source, .. } => Some(source.category()),
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

/// Where the catalog is read from (`--source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum SourceKind {
    /// A git clone of the superproject and of each submodule.
    #[default]
    Git,
    /// The GitHub REST API (`GITHUB_API_URL`, tokens from
    /// `GITHUB_TOKENS_SCRAPING` / `GITHUB_TOKEN`).
    Github,
}

/// `bdc run boost-libraries` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "boost-libraries",
    about = "Collect the Boost library catalog per release"
)]
pub struct BoostArgs {
    /// The superproject: a local path or a git URL; with `--source github`,
    /// `OWNER/NAME` or a GitHub URL.
    #[arg(long, value_name = "PATH|URL|OWNER/NAME", default_value = DEFAULT_REPO)]
    pub repo: String,
    /// Release tag(s) (or any ref) to record [default: every boost-X.Y.Z tag].
    #[arg(long, value_name = "TAG")]
    pub release: Vec<String>,
    /// Re-record releases even when their tag did not move.
    #[arg(long)]
    pub full: bool,
    /// Read the superproject and libraries from a git clone or the GitHub
    /// REST API (then `--repo` is `OWNER/NAME` or a GitHub URL).
    #[arg(long, value_enum, default_value_t = SourceKind::Git)]
    pub source: SourceKind,
    /// `--source github`: re-parse the raw archive of an earlier run
    /// without any network request.
    #[arg(long)]
    pub from_archive: bool,
    /// With --from-archive: replay this recorded archive (e.g.
    /// examples/boost-libraries/raw) instead of WORKSPACE_DIR/raw/<collector>.
    #[arg(long, value_name = "DIR", requires = "from_archive")]
    pub archive_dir: Option<std::path::PathBuf>,
    /// `--source github`: at most this many rate-limited requests this run.
    #[arg(long, value_name = "N")]
    pub max_requests: Option<u64>,
}

impl BoostArgs {
    pub fn parse_args(args: &[String]) -> Result<Self, BoostLibrariesError> {
        let a = Self::try_parse_from(std::iter::once(NAME.to_owned()).chain(args.iter().cloned()))
            .map_err(|e| BoostLibrariesError::Args {
                message: e.to_string().trim().to_owned(),
            })?;
        for r in &a.release {
            let bad = r.is_empty() || r.starts_with('-') || r.chars().any(char::is_whitespace);
            // GitHub source: the ref goes into a URL path as is.
            let bad_url = a.source == SourceKind::Github
                && (!r
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
                    || r.split('/')
                        .any(|seg| seg.is_empty() || seg == "." || seg == ".."));
            if bad || bad_url {
                return Err(BoostLibrariesError::Args {
                    message: format!("invalid --release {r:?}"),
                });
            }
        }
        if a.source == SourceKind::Git && (a.from_archive || a.max_requests.is_some()) {
            return Err(BoostLibrariesError::Args {
                message: "--from-archive and --max-requests need --source github".into(),
            });
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

    fn args_command(&self) -> Option<clap::Command> {
        Some(<BoostArgs as clap::CommandFactory>::command())
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
            "dependencies",
            "unknown_includes",
            "inserted",
            "updated",
            "requests",
            "rate_limit_points",
            "not_modified",
            "replayed",
        ] {
            if let Err(e) = r.add(k, self.0.get(k).copied().unwrap_or(0)) {
                tracing::error!(count = k, error = %e, "invalid count name");
            }
        }
        r
    }
}

/// The GitHub catalog for `args` (client with cache and archive, or a
/// replay of the archive).
async fn github_catalog(
    ctx: &CollectContext,
    args: &BoostArgs,
) -> Result<GithubCatalog, BoostLibrariesError> {
    let mut opts = ClientOptions::github(&ctx.config, NAME);
    opts.max_requests = args.max_requests;
    opts.archive_not_found = true;
    let hosts = source::github::github_hosts(&opts.base_url);
    let Some((owner, repo)) = source::github::repo_slug(&args.repo, &hosts) else {
        return Err(BoostLibrariesError::Args {
            message: format!(
                "--repo {:?} is not OWNER/NAME or a GitHub URL (needed by --source github)",
                args.repo
            ),
        });
    };
    let archive = match args.archive_dir.as_ref() {
        Some(dir) if args.from_archive => RawArchive::at(dir),
        _ => RawArchive::new(&ctx.config.workspace_dir, NAME),
    };
    let client = if args.from_archive {
        HttpClient::replay(opts, archive).await
    } else {
        HttpClient::new(opts).map(|c| {
            c.with_cache(HttpCache::new(ctx.storage.clone()))
                .with_archive(archive)
        })
    }
    .map_err(|source| BoostLibrariesError::Http {
        what: "setting up the HTTP client".into(),
        source,
    })?;
    tracing::info!(collector = NAME, repository = %format!("{owner}/{repo}"), "reading the catalog from the GitHub API");
    Ok(GithubCatalog::new(client, owner, repo))
}

async fn collect(
    ctx: &CollectContext,
    args: &BoostArgs,
) -> Result<TrackerResult, BoostLibrariesError> {
    let mut counts = Counts::default();
    match args.source {
        SourceKind::Git => {
            let mut src = GitCatalog::open(ctx.config.workspace_dir.clone(), &args.repo).await?;
            collect_from(ctx, args, &mut src, &mut counts).await?;
        }
        SourceKind::Github => {
            let mut src = github_catalog(ctx, args).await?;
            let outcome = collect_from(ctx, args, &mut src, &mut counts).await;
            let stats = src.client().stats();
            tracing::info!(
                collector = NAME,
                requests = stats.requests,
                rate_limit_points = stats.rate_limit_points,
                not_modified = stats.not_modified,
                "GitHub requests"
            );
            counts.add("requests", stats.requests);
            counts.add("rate_limit_points", stats.rate_limit_points);
            counts.add("not_modified", stats.not_modified);
            counts.add("replayed", stats.replayed);
            outcome?;
        }
    }
    Ok(counts.result())
}

async fn collect_from(
    ctx: &CollectContext,
    args: &BoostArgs,
    src: &mut dyn CatalogSource,
    counts: &mut Counts,
) -> Result<(), BoostLibrariesError> {
    let mut releases = if args.release.is_empty() {
        src.release_tags().await?
    } else {
        args.release.clone()
    };
    releases.sort_by_key(|r| release_order(r));
    releases.dedup();
    let bar = progress_bar(ctx, releases.len() as u64);
    for release in releases {
        bar.set_message(release.clone());
        collect_release(ctx, args, src, &release, counts).await?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

/// A bar over releases on a terminal, hidden otherwise (logs carry the
/// progress then).
fn progress_bar(ctx: &CollectContext, len: u64) -> indicatif::ProgressBar {
    if !ctx.interactive {
        return indicatif::ProgressBar::hidden();
    }
    let bar = bdc_collector::progress::add(indicatif::ProgressBar::new(len));
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} releases {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(NAME);
    bar
}

async fn collect_release(
    ctx: &CollectContext,
    args: &BoostArgs,
    src: &mut dyn CatalogSource,
    release: &str,
    counts: &mut Counts,
) -> Result<(), BoostLibrariesError> {
    let Some(sha) = src.resolve(release).await? else {
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
    let unchanged = prev.as_ref().is_some_and(|p| p.checkpoint_token() == sha);
    // A release stored before the dependency scan existed is read once more.
    let scanned = !src.reads_includes()
        || store::dependencies_scanned(&ctx.storage, release)
            .await
            .map_err(storage_err("reading a boost release"))?;
    if !args.full && unchanged && scanned {
        tracing::info!(collector = NAME, release, sha = %sha, "release unchanged; skipped");
        counts.add("releases_unchanged", 1);
        return Ok(());
    }
    let snap = src.snapshot(release, &sha).await?;
    let subs = meta::parse_gitmodules(&String::from_utf8_lossy(&snap.gitmodules));
    let base = src.submodule_base();
    let mut data = ReleaseData {
        release: release.to_owned(),
        superproject_sha: sha.clone(),
        released_at: snap.released_at,
        submodules: Vec::new(),
        libraries: Vec::new(),
        dependencies: None,
    };
    let mut includes: BTreeMap<String, deps::Includes> = BTreeMap::new();
    for sub in subs {
        let url = meta::resolve_url(&base, &sub.url);
        let pin = snap.gitlinks.get(&sub.path).cloned();
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
        match src.library_meta(&sub.name, &url, &pin).await? {
            MetaFetch::FetchFailed => {
                row.meta_status = "fetch_failed".into();
                counts.add("fetch_failed", 1);
            }
            MetaFetch::CommitNotFound => {
                row.meta_status = "commit_not_found".into();
                counts.add("commit_not_found", 1);
                tracing::warn!(collector = NAME, release, submodule = %sub.name, sha = %pin, "pinned commit not found in the submodule");
            }
            MetaFetch::NoMeta => {
                row.meta_status = "no_meta".into();
                counts.add("no_meta", 1);
            }
            MetaFetch::Found(bytes) => match meta::parse_libraries(&bytes) {
                Ok(parsed) => {
                    if parsed.invalid_entries > 0 {
                        tracing::warn!(collector = NAME, release, submodule = %sub.name, invalid = parsed.invalid_entries, "libraries.json entries without a key");
                    }
                    counts.add("invalid_entries", parsed.invalid_entries);
                    data.libraries
                        .extend(parsed.libraries.into_iter().map(|l| (sub.name.clone(), l)));
                    if let Some(lines) = src.includes(&sub.name, &pin).await? {
                        includes.insert(sub.name.clone(), lines);
                    }
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
    if src.reads_includes() {
        let map = headers::LibraryMap::new(data.libraries.iter().map(|(_, l)| l.key.clone()));
        let mut keys_by_submodule: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (sub, l) in &data.libraries {
            keys_by_submodule
                .entry(sub.clone())
                .or_default()
                .push(l.key.clone());
        }
        let scan = deps::scan(&map, &keys_by_submodule, &includes);
        counts.add("dependencies", scan.edges.len() as u64);
        counts.add("unknown_includes", scan.unknown_includes);
        data.dependencies = Some(scan.edges);
    }

    let records = change_records(ctx, &data, counts).await?;
    counts.add("submodules", data.submodules.len() as u64);
    counts.add("libraries", data.libraries.len() as u64);
    let mut extras = Map::new();
    extras.insert("libraries".into(), json!(data.libraries.len()));
    extras.insert("submodules".into(), json!(data.submodules.len()));
    let state = IncrementalState::new(
        sha.clone(),
        format!("{release} at {}", sha.get(..12).unwrap_or(&sha)),
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
