//! The `boost-usage` collector: where Boost is used outside boostorg.
//!
//! ```text
//! bdc run boost-usage [--task monitor_content|monitor_stars]… [--since YYYY-MM-DD]
//!                     [--until YYYY-MM-DD] [--min-stars 10] [--dry-run]
//!                     [--from-archive [--archive-dir DIR]] [--max-requests N]
//! ```
//!
//! * `monitor_content`: C++ repositories with more than `--min-stars`
//!   stars pushed in `[since, until]` (`search/repositories`, the date
//!   range halved while a part exceeds the 1,000-result cap), then code
//!   search for `#include <boost/` in batches of candidates
//!   (`repo:a/b repo:c/d …`, under 256 characters), then the matched files
//!   (skipped when the blob sha is the stored one) in GraphQL blob batches
//!   (`object(expression: "HEAD:<path>")`, 50 per query), with the
//!   contents API as the fallback for anything GraphQL did not answer. Vendored copies (paths with `/boost/`) and `boostorg/*` are
//!   skipped. Each header maps to a Boost library through the
//!   `boost-libraries` catalog ([`parse::LibraryMap`], `unknown` bucket).
//! * The Boost version of every repository that uses it: a vendored
//!   `boost/version.hpp` (`BOOST_VERSION`, mode `embedded`), else
//!   `find_package(Boost X.Y`, `GIT_TAG boost-X.Y`, a conanfile or
//!   `vcpkg.json` (mode `dependency`), from the tree listing and contents.
//! * `monitor_stars`: C++ repositories created since 2018-04-01 over the
//!   threshold that are not tracked yet (same scan), then a star refresh
//!   of the tracked repositories that use Boost.
//!
//! Everything goes through `bdc-http` (ETag cache: an unchanged re-run
//! costs no rate-limit points; token rotation over
//! `GITHUB_TOKENS_SCRAPING`; rate-limit and `Retry-After` pauses; raw
//! archive and `--from-archive`), with search paced to 30 and code search
//! to 10 requests per minute per token; `waited_ms` says how long the run
//! waited. One repository is written per transaction (see [`store`]); a
//! crash mid-run and a re-run give the rows of an uninterrupted run.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bdc_collector::{CollectContext, Collector};
use bdc_core::{BoxError, Categorized, FailureCategory, IncrementalState, TrackerResult};
use bdc_http::{
    ClientOptions, Clock, HttpCache, HttpClient, HttpError, RawArchive, SystemClock, WaitMeter,
};
use bdc_storage::StorageError;
use bdc_storage::checkpoints::CheckpointWrite;
use chrono::NaiveDate;
use clap::{Parser, ValueEnum};

pub mod github;
pub mod parse;
pub mod store;

pub use store::SCHEMA;

use github::{Api, FileText, RepoItem};
use parse::{BoostMode, LibraryMap};
use store::{FileScan, RepoRow, RepoScan};

/// Stable collector name.
pub const NAME: &str = "boost-usage";
/// `monitor_stars` looks at repositories created since this day.
pub const STARS_SINCE: &str = "2018-04-01";
/// At most this many build files are read per repository for the version.
pub const MAX_BUILD_FILES: usize = 6;

/// Errors of the `boost-usage` collector.
#[derive(Debug, thiserror::Error)]
pub enum BoostUsageError {
    #[error("invalid arguments for boost-usage: {message}")]
    Args { message: String },
    #[error("{what}: {source}")]
    Http {
        what: String,
        #[source]
        source: HttpError,
    },
    #[error("database error while {what}: {source}")]
    Storage {
        what: &'static str,
        #[source]
        source: StorageError,
    },
    #[error("building a boost-usage checkpoint: {0}")]
    Protocol(#[source] bdc_core::ProtocolError),
}

impl BoostUsageError {
    pub fn into_box(self) -> BoxError {
        let category = match &self {
            BoostUsageError::Args { .. } => Some(FailureCategory::Config),
            BoostUsageError::Http { source, .. } => Some(source.category()),
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

fn storage_err(what: &'static str) -> impl FnOnce(StorageError) -> BoostUsageError {
    move |source| BoostUsageError::Storage { what, source }
}

/// `--task`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Task {
    /// Repositories pushed in the window: their Boost includes.
    MonitorContent,
    /// New C++ repositories over the threshold; star refresh.
    MonitorStars,
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| format!("{s:?} is not YYYY-MM-DD: {e}"))
}

/// `bdc run boost-usage` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "boost-usage",
    about = "Find where Boost is used outside boostorg"
)]
pub struct UsageArgs {
    /// Task(s) to run [default: monitor_content then monitor_stars].
    #[arg(long, value_enum)]
    pub task: Vec<Task>,
    /// First day of the pushed window [default: yesterday].
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub since: Option<NaiveDate>,
    /// Last day of the window [default: today].
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub until: Option<NaiveDate>,
    /// Only repositories with more stars than this (`stars:>N`).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub min_stars: u64,
    /// Fetch and report, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Re-read the raw archive of an earlier run without any network request.
    #[arg(long)]
    pub from_archive: bool,
    /// With `--from-archive`: the archive directory (with `index.jsonl`)
    /// [default: WORKSPACE_DIR/raw/boost-usage/].
    #[arg(long, value_name = "DIR", requires = "from_archive")]
    pub archive_dir: Option<PathBuf>,
    /// At most this many rate-limited requests this run.
    #[arg(long, value_name = "N")]
    pub max_requests: Option<u64>,
}

impl UsageArgs {
    pub fn parse_args(args: &[String]) -> Result<Self, BoostUsageError> {
        let a = Self::try_parse_from(std::iter::once(NAME.to_owned()).chain(args.iter().cloned()))
            .map_err(|e| BoostUsageError::Args {
                message: e.to_string().trim().to_owned(),
            })?;
        if let (Some(s), Some(u)) = (a.since, a.until)
            && s > u
        {
            return Err(BoostUsageError::Args {
                message: format!("--since {s} is after --until {u}"),
            });
        }
        Ok(a)
    }

    /// The tasks in the order they run.
    pub fn tasks(&self) -> Vec<Task> {
        let mut t = Vec::new();
        for want in [Task::MonitorContent, Task::MonitorStars] {
            if self.task.is_empty() || self.task.contains(&want) {
                t.push(want);
            }
        }
        t
    }
}

/// The `boost-usage` collector. Tests inject a clock so pacing and
/// pauses never sleep ([`BoostUsageCollector::with_clock`]).
#[derive(Debug, Clone, Default)]
pub struct BoostUsageCollector {
    clock: Option<Arc<dyn Clock>>,
}

impl BoostUsageCollector {
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        BoostUsageCollector { clock: Some(clock) }
    }
}

#[async_trait]
impl Collector for BoostUsageCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn args_command(&self) -> Option<clap::Command> {
        Some(<UsageArgs as clap::CommandFactory>::command())
    }

    fn validate_config(&self, ctx: &CollectContext) -> Result<(), BoxError> {
        UsageArgs::parse_args(&ctx.args).map_err(BoostUsageError::into_box)?;
        Ok(())
    }

    async fn collect(&self, ctx: &CollectContext) -> Result<TrackerResult, BoxError> {
        let args = UsageArgs::parse_args(&ctx.args).map_err(BoostUsageError::into_box)?;
        let clock = self.clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
        collect(ctx, &args, clock)
            .await
            .map_err(BoostUsageError::into_box)
    }
}

/// Every count the collector reports (always present, 0 when unused).
pub const COUNT_NAMES: &[&str] = &[
    "tasks",
    "windows",
    "window_splits",
    "capped",
    "too_deep",
    "incomplete_results",
    "search_queries",
    "code_queries",
    "candidates",
    "skipped_boostorg",
    "skipped_tracked",
    "repos_scanned",
    "repos_using_boost",
    "skipped_vendored",
    "files_fetched",
    "graphql_batches",
    "graphql_files",
    "graphql_fallbacks",
    "files_unchanged",
    "files_missing",
    "too_large",
    "undecodable",
    "unknown_headers",
    "versions_detected",
    "embedded",
    "repos_inserted",
    "repos_updated",
    "files_new",
    "files_gone",
    "headers_new",
    "headers_gone",
    "headers_back",
    "stars_refreshed",
    "repos_gone",
    "requests",
    "rate_limit_points",
    "not_modified",
    "replayed",
    "waited_ms",
];

/// Run counts.
#[derive(Debug, Default)]
pub struct Counts(BTreeMap<&'static str, u64>);

impl Counts {
    pub fn add(&mut self, k: &'static str, n: u64) {
        *self.0.entry(k).or_insert(0) += n;
    }
    fn result(&self) -> TrackerResult {
        let mut r = TrackerResult::ok();
        for k in COUNT_NAMES {
            if let Err(e) = r.add(k, self.0.get(k).copied().unwrap_or(0)) {
                tracing::error!(count = k, error = %e, "invalid count name");
            }
        }
        r
    }
}

struct Run<'a> {
    ctx: &'a CollectContext,
    args: &'a UsageArgs,
    api: Api,
    libs: LibraryMap,
    today: String,
    /// Repositories scanned in this run (not scanned twice).
    scanned: HashSet<String>,
    counts: Counts,
}

async fn collect(
    ctx: &CollectContext,
    args: &UsageArgs,
    clock: Arc<dyn Clock>,
) -> Result<TrackerResult, BoostUsageError> {
    let meter = WaitMeter::new(clock);
    let mut opts = ClientOptions::github(&ctx.config, NAME);
    opts.max_requests = args.max_requests;
    opts.archive_not_found = true;
    let client = if args.from_archive {
        let archive = match &args.archive_dir {
            Some(dir) => RawArchive::at(dir.clone()),
            None => RawArchive::new(&ctx.config.workspace_dir, NAME),
        };
        HttpClient::replay(opts, archive).await
    } else {
        HttpClient::new(opts).map(|c| {
            c.with_cache(HttpCache::new(ctx.storage.clone()))
                .with_archive(RawArchive::new(&ctx.config.workspace_dir, NAME))
        })
    }
    .map_err(|source| BoostUsageError::Http {
        what: "setting up the HTTP client".into(),
        source,
    })?
    .with_clock(meter.clone());
    let keys = bdc_collector_boost_libraries::store::library_keys(&ctx.storage)
        .await
        .map_err(storage_err("reading the Boost library catalog"))?;
    let libs = if keys.is_empty() {
        tracing::warn!(
            collector = NAME,
            "the boost-libraries catalog is empty (run `bdc run boost-libraries`); mapping headers with the built-in library list"
        );
        LibraryMap::builtin()
    } else {
        LibraryMap::new(keys)
    };
    let today = meter.now().date_naive();
    let mut run = Run {
        ctx,
        args,
        api: Api::new(client, meter.clone()),
        libs,
        today: today.to_string(),
        scanned: HashSet::new(),
        counts: Counts::default(),
    };
    let until = args.until.unwrap_or(today);
    let since = args
        .since
        .unwrap_or_else(|| until - chrono::Duration::days(1));
    if since > until {
        return Err(BoostUsageError::Args {
            message: format!("--since {since} is after the window's end {until}"),
        });
    }
    let mut outcome = Ok(());
    for task in args.tasks() {
        run.counts.add("tasks", 1);
        let span = tracing::info_span!("task", collector = NAME, task = ?task);
        let _enter = span.enter();
        outcome = match task {
            Task::MonitorContent => monitor_content(&mut run, since, until).await,
            Task::MonitorStars => monitor_stars(&mut run, until).await,
        };
        if outcome.is_err() {
            break;
        }
    }
    let stats = run.api.client.stats();
    run.counts.add("requests", stats.requests);
    run.counts.add("rate_limit_points", stats.rate_limit_points);
    run.counts.add("not_modified", stats.not_modified);
    run.counts.add("replayed", stats.replayed);
    run.counts.add("waited_ms", meter.waited_ms());
    tracing::info!(
        collector = NAME,
        requests = stats.requests,
        rate_limit_points = stats.rate_limit_points,
        not_modified = stats.not_modified,
        waited_ms = meter.waited_ms(),
        "GitHub requests"
    );
    outcome?;
    Ok(run.counts.result())
}

fn search_base(min_stars: u64) -> String {
    format!("language:C++ stars:>{min_stars}")
}

/// Candidates: deduplicated, `boostorg/*` dropped.
fn candidates(run: &mut Run<'_>, items: Vec<RepoItem>) -> Vec<RepoItem> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for it in items {
        if !seen.insert(it.full_name.to_ascii_lowercase()) {
            continue;
        }
        if it.full_name.to_ascii_lowercase().starts_with("boostorg/") {
            run.counts.add("skipped_boostorg", 1);
            continue;
        }
        out.push(it);
    }
    run.counts.add("candidates", out.len() as u64);
    out
}

async fn write_checkpoint(
    run: &Run<'_>,
    scope: &str,
    token: String,
    marker: String,
) -> Result<(), BoostUsageError> {
    if run.args.dry_run {
        return Ok(());
    }
    let state = IncrementalState::new(token, marker).map_err(BoostUsageError::Protocol)?;
    run.ctx
        .storage
        .checkpoints()
        .put(&CheckpointWrite {
            collector: NAME,
            scope,
            state: &state,
            run_id: Some(&run.ctx.run_id),
        })
        .await
        .map_err(storage_err("writing a boost-usage checkpoint"))
}

async fn monitor_content(
    run: &mut Run<'_>,
    since: NaiveDate,
    until: NaiveDate,
) -> Result<(), BoostUsageError> {
    let items = run
        .api
        .search_windows(
            &search_base(run.args.min_stars),
            "pushed",
            since,
            until,
            &mut run.counts,
        )
        .await?;
    let cands = candidates(run, items);
    scan_repos(run, cands).await?;
    write_checkpoint(
        run,
        "monitor_content",
        format!("{since}..{until}"),
        format!("pushed {since}..{until} scanned"),
    )
    .await
}

async fn monitor_stars(run: &mut Run<'_>, until: NaiveDate) -> Result<(), BoostUsageError> {
    let from =
        NaiveDate::parse_from_str(STARS_SINCE, "%Y-%m-%d").map_err(|e| BoostUsageError::Args {
            message: format!("internal start date {STARS_SINCE}: {e}"),
        })?;
    let tracked = store::tracked(&run.ctx.storage)
        .await
        .map_err(storage_err("listing tracked repositories"))?;
    if from <= until {
        let items = run
            .api
            .search_windows(
                &search_base(run.args.min_stars),
                "created",
                from,
                until,
                &mut run.counts,
            )
            .await?;
        let mut cands = candidates(run, items);
        let before = cands.len();
        cands.retain(|c| !tracked.contains(&c.full_name) && !run.scanned.contains(&c.full_name));
        run.counts
            .add("skipped_tracked", (before - cands.len()) as u64);
        scan_repos(run, cands).await?;
    }
    // Star refresh of the tracked repositories that use Boost.
    let repos = store::repos(&run.ctx.storage)
        .await
        .map_err(storage_err("listing tracked repositories"))?;
    // Gone repositories are not asked again (a 404 is not cached and
    // would cost a point every run); a scan that finds one revives it.
    for r in repos
        .iter()
        .filter(|r| r.uses_boost && !r.gone && !run.scanned.contains(&r.full_name))
    {
        let fresh = run.api.repo(&r.full_name).await?;
        if fresh.is_none() {
            run.counts.add("repos_gone", 1);
        }
        let changed = store::refresh_repo(
            &run.ctx.storage,
            &r.full_name,
            fresh.as_ref().map(|f| {
                (
                    f.stargazers_count,
                    f.language.as_deref(),
                    f.pushed_at.as_deref(),
                )
            }),
            run.args.dry_run,
        )
        .await
        .map_err(storage_err("refreshing a repository"))?;
        run.counts.add("stars_refreshed", u64::from(changed));
    }
    write_checkpoint(
        run,
        "monitor_stars",
        until.to_string(),
        format!("created {STARS_SINCE}..{until} scanned, stars refreshed"),
    )
    .await
}

/// Code-search `cands` in batches and record each repository.
async fn scan_repos(run: &mut Run<'_>, cands: Vec<RepoItem>) -> Result<(), BoostUsageError> {
    let by_name: BTreeMap<String, RepoItem> = cands
        .into_iter()
        .map(|c| (c.full_name.clone(), c))
        .collect();
    let names: Vec<String> = by_name.keys().cloned().collect();
    for (q, batch) in github::code_queries(&names) {
        let (items, complete) = run.api.code_search(&q, &mut run.counts).await?;
        let mut per_repo: BTreeMap<String, Vec<github::CodeItem>> = BTreeMap::new();
        for it in items {
            // GitHub may answer with a different case than asked.
            if let Some(name) = batch
                .iter()
                .find(|b| b.eq_ignore_ascii_case(&it.repository.full_name))
            {
                per_repo.entry(name.clone()).or_default().push(it);
            }
        }
        for name in &batch {
            let Some(item) = by_name.get(name) else {
                continue;
            };
            let matches = per_repo.remove(name).unwrap_or_default();
            scan_repo(run, item, matches, complete).await?;
        }
    }
    Ok(())
}

async fn scan_repo(
    run: &mut Run<'_>,
    item: &RepoItem,
    matches: Vec<github::CodeItem>,
    complete: bool,
) -> Result<(), BoostUsageError> {
    let name = item.full_name.as_str();
    run.counts.add("repos_scanned", 1);
    run.scanned.insert(item.full_name.clone());
    let stored = store::files(&run.ctx.storage, name)
        .await
        .map_err(storage_err("reading stored files"))?;
    let mut vendored = false;
    let mut files: Vec<FileScan> = Vec::new();
    let mut seen_paths = BTreeSet::new();
    // Files to read (new or changed blob): GraphQL blob batches first,
    // the contents API for whatever they did not answer.
    let mut wanted: Vec<String> = Vec::new();
    for m in &matches {
        let unchanged = stored
            .get(&m.path)
            .is_some_and(|s| s.sha == m.sha && !s.gone);
        if !parse::is_vendored(&m.path) && !unchanged && !wanted.contains(&m.path) {
            wanted.push(m.path.clone());
        }
    }
    let mut prefetched = if wanted.is_empty() {
        BTreeMap::new()
    } else {
        run.api.blobs(name, &wanted, &mut run.counts).await
    };
    for m in matches {
        if parse::is_vendored(&m.path) {
            vendored = true;
            run.counts.add("skipped_vendored", 1);
            continue;
        }
        if !seen_paths.insert(m.path.clone()) {
            continue;
        }
        let headers = match stored.get(&m.path) {
            Some(s) if s.sha == m.sha && !s.gone => {
                run.counts.add("files_unchanged", 1);
                let h = store::file_headers(&run.ctx.storage, name, &m.path)
                    .await
                    .map_err(storage_err("reading stored headers"))?;
                Some(
                    h.into_keys()
                        .map(|h| {
                            let lib = run.libs.library(&h);
                            (h, lib)
                        })
                        .collect(),
                )
            }
            _ => match match prefetched.remove(&m.path) {
                Some(text) => text,
                None => run.api.file_text(name, &m.path).await?,
            } {
                FileText::Text(text) => {
                    run.counts.add("files_fetched", 1);
                    Some(
                        parse::boost_includes(&text)
                            .into_iter()
                            .map(|h| {
                                let lib = run.libs.library(&h);
                                (h, lib)
                            })
                            .collect::<BTreeMap<_, _>>(),
                    )
                }
                FileText::Missing => {
                    run.counts.add("files_missing", 1);
                    continue;
                }
                FileText::TooLarge => {
                    run.counts.add("too_large", 1);
                    tracing::warn!(repo = name, path = %m.path, "file over the contents API's 1 MB limit; skipped");
                    None
                }
                FileText::Undecodable(why) => {
                    run.counts.add("undecodable", 1);
                    tracing::warn!(repo = name, path = %m.path, reason = %why, "file contents not decodable; skipped");
                    None
                }
            },
        };
        if let Some(h) = &headers {
            run.counts.add(
                "unknown_headers",
                h.values().filter(|l| *l == parse::UNKNOWN_LIBRARY).count() as u64,
            );
        }
        files.push(FileScan {
            path: m.path,
            sha: m.sha,
            headers,
        });
    }
    let uses_boost = files
        .iter()
        .any(|f| f.headers.as_ref().is_some_and(|h| !h.is_empty()));
    let (mode, version, source) = if uses_boost || vendored {
        detect_version(run, name, vendored).await?
    } else {
        (BoostMode::Unknown, None, None)
    };
    if version.is_some() {
        run.counts.add("versions_detected", 1);
    }
    if mode == BoostMode::Embedded {
        run.counts.add("embedded", 1);
    }
    run.counts.add("repos_using_boost", u64::from(uses_boost));
    let scan = RepoScan {
        repo: RepoRow {
            full_name: item.full_name.clone(),
            stars: item.stargazers_count,
            language: item.language.clone(),
            created_at: item.created_at.clone(),
            pushed_at: item.pushed_at.clone(),
            uses_boost,
            boost_version: version,
            version_source: source,
            boost_mode: mode.as_str().to_owned(),
            gone: false,
            first_seen: run.today.clone(),
            last_seen: run.today.clone(),
        },
        files,
        complete,
    };
    let c = store::store_scan(&run.ctx.storage, &scan, &run.today, run.args.dry_run)
        .await
        .map_err(storage_err("storing a scanned repository"))?;
    run.counts.add("repos_inserted", c.repos_inserted);
    run.counts.add("repos_updated", c.repos_updated);
    run.counts.add("files_new", c.files_new);
    run.counts.add("files_gone", c.files_gone);
    run.counts.add("headers_new", c.headers_new);
    run.counts.add("headers_gone", c.headers_gone);
    run.counts.add("headers_back", c.headers_back);
    metrics::counter!("bdc_boost_usage_repos_scanned_total").increment(1);
    tracing::debug!(
        collector = NAME,
        repo = name,
        uses_boost,
        files = scan.files.len(),
        "repository scanned"
    );
    Ok(())
}

/// (mode, version, where the version was read).
async fn detect_version(
    run: &mut Run<'_>,
    repo: &str,
    vendored: bool,
) -> Result<(BoostMode, Option<String>, Option<String>), BoostUsageError> {
    let Some(paths) = run.api.tree(repo).await? else {
        let mode = if vendored {
            BoostMode::Embedded
        } else {
            BoostMode::Unknown
        };
        return Ok((mode, None, None));
    };
    let depth = |p: &str| p.matches('/').count();
    if let Some(vh) = paths
        .iter()
        .filter(|p| *p == "boost/version.hpp" || p.ends_with("/boost/version.hpp"))
        .min_by_key(|p| (depth(p), p.len()))
        && let FileText::Text(text) = run.api.file_text(repo, vh).await?
    {
        return Ok((
            BoostMode::Embedded,
            parse::version_from_version_hpp(&text),
            Some(vh.clone()),
        ));
    }
    let mut build: Vec<&String> = paths
        .iter()
        .filter(|p| parse::is_build_file(p) && !parse::is_vendored(p))
        .collect();
    build.sort_by_key(|p| (depth(p), !p.eq_ignore_ascii_case("cmakelists.txt"), p.len()));
    let mut mentioned = false;
    for p in build.into_iter().take(MAX_BUILD_FILES) {
        if let FileText::Text(text) = run.api.file_text(repo, p).await? {
            let (m, v) = parse::version_from_build_file(p, &text);
            mentioned |= m;
            if v.is_some() {
                return Ok((BoostMode::Dependency, v, Some(p.clone())));
            }
        }
    }
    let mode = if vendored {
        BoostMode::Embedded
    } else if mentioned {
        BoostMode::Dependency
    } else {
        BoostMode::Unknown
    };
    Ok((mode, None, None))
}
