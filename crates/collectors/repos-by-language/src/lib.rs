//! The `repos-by-language` collector: how many GitHub repositories were
//! created per language and year, all of them and those with at least
//! `--stars-min` stars, from the search API's `total_count`
//! (`GET /search/repositories?q=language:L created:Y-01-01..Y-12-31&per_page=1`,
//! then the same with `stars:>=N`). It is the denominator of the library
//! usage dashboard's "share of C++ repositories using Boost".
//!
//! ```text
//! bdc run repos-by-language [--languages L1,L2] [--start-year 2010] [--end-year Y]
//!                           [--stars-min 10] [--from-archive [--archive-dir DIR]]
//!                           [--max-requests N]
//! ```
//!
//! Languages: `--languages`, else `REPO_COUNT_LANGUAGES`, else `C++`.
//! `--end-year` defaults to the current year (its counts grow until the
//! year ends; re-runs update them). Requests go through `bdc-http`
//! (conditional requests, token rotation over `GITHUB_TOKENS_SCRAPING`,
//! rate-limit pauses, raw archive under `WORKSPACE_DIR/raw/repos-by-language/`)
//! and are paced to the search API's 30 requests per minute per token.
//!
//! Typed table `rbl_counts` (see [`store`]), upserted one language per
//! transaction; a re-run that changes nothing writes nothing.
//!
//! Counts: `languages`, `years`, `queries`, `incomplete_results`,
//! `inserted`, `updated`, `unchanged`, `requests`, `rate_limit_points`,
//! `not_modified`, `replayed`, `waited_ms`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bdc_collector::{CollectContext, Collector};
use bdc_core::{BoxError, Categorized, FailureCategory, TrackerResult};
use bdc_http::{
    ClientOptions, Clock, HttpCache, HttpClient, HttpError, RateWindow, RawArchive, SystemClock,
    WaitMeter,
};
use bdc_storage::StorageError;
use chrono::Datelike;
use clap::Parser;
use serde::Deserialize;

pub mod store;

pub use store::SCHEMA;
use store::YearCount;

/// Stable collector name.
pub const NAME: &str = "repos-by-language";
/// Languages counted when neither `--languages` nor `REPO_COUNT_LANGUAGES`
/// is set.
pub const DEFAULT_LANGUAGES: &[&str] = &["C++"];
/// GitHub's search API: requests per minute per token.
pub const SEARCH_PER_MINUTE: usize = 30;

/// Errors of the `repos-by-language` collector.
#[derive(Debug, thiserror::Error)]
pub enum ReposByLanguageError {
    #[error("invalid arguments for repos-by-language: {message}")]
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
}

impl ReposByLanguageError {
    pub fn into_box(self) -> BoxError {
        let category = match &self {
            ReposByLanguageError::Args { .. } => Some(FailureCategory::Config),
            ReposByLanguageError::Http { source, .. } => Some(source.category()),
            ReposByLanguageError::Storage { .. } => None,
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

/// `bdc run repos-by-language` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "repos-by-language",
    about = "Count GitHub repositories created per language and year"
)]
pub struct ReposArgs {
    /// Comma-separated languages (GitHub's `language:` names)
    /// [default: REPO_COUNT_LANGUAGES, else C++].
    #[arg(long, value_name = "L1,L2", value_delimiter = ',')]
    pub languages: Vec<String>,
    /// First year counted.
    #[arg(long, value_name = "YEAR", default_value_t = 2010)]
    pub start_year: i32,
    /// Last year counted [default: the current year].
    #[arg(long, value_name = "YEAR")]
    pub end_year: Option<i32>,
    /// Star threshold of the second count (`stars:>=N`).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub stars_min: u64,
    /// Re-read the raw archive of an earlier run without any network request.
    #[arg(long)]
    pub from_archive: bool,
    /// With `--from-archive`: replay the archive in DIR (a directory with
    /// `index.jsonl`) instead of `WORKSPACE_DIR/raw/repos-by-language/`.
    #[arg(long, value_name = "DIR", requires = "from_archive")]
    pub archive_dir: Option<PathBuf>,
    /// At most this many rate-limited requests this run.
    #[arg(long, value_name = "N")]
    pub max_requests: Option<u64>,
}

impl ReposArgs {
    pub fn parse_args(args: &[String]) -> Result<Self, ReposByLanguageError> {
        let a = Self::try_parse_from(std::iter::once(NAME.to_owned()).chain(args.iter().cloned()))
            .map_err(|e| ReposByLanguageError::Args {
                message: e.to_string().trim().to_owned(),
            })?;
        for l in &a.languages {
            validate_language(l)?;
        }
        let bad_year = |y: i32| !(2000..=2100).contains(&y);
        if bad_year(a.start_year) {
            return Err(ReposByLanguageError::Args {
                message: format!("--start-year {} is not between 2000 and 2100", a.start_year),
            });
        }
        if let Some(e) = a.end_year {
            if bad_year(e) {
                return Err(ReposByLanguageError::Args {
                    message: format!("--end-year {e} is not between 2000 and 2100"),
                });
            }
            if e < a.start_year {
                return Err(ReposByLanguageError::Args {
                    message: format!("--end-year {e} is before --start-year {}", a.start_year),
                });
            }
        }
        Ok(a)
    }

    /// The languages to count: the flag, else `configured`, else
    /// [`DEFAULT_LANGUAGES`]; blanks and duplicates dropped.
    pub fn languages(&self, configured: &[String]) -> Vec<String> {
        let src: Vec<String> = if !self.languages.is_empty() {
            self.languages.clone()
        } else if !configured.is_empty() {
            configured.to_vec()
        } else {
            DEFAULT_LANGUAGES.iter().map(|s| (*s).to_owned()).collect()
        };
        let mut out: Vec<String> = Vec::new();
        for l in src {
            let l = l.trim().to_owned();
            if !l.is_empty() && !out.contains(&l) {
                out.push(l);
            }
        }
        out
    }
}

fn validate_language(l: &str) -> Result<(), ReposByLanguageError> {
    let l = l.trim();
    if l.is_empty() || l.contains('"') || l.contains(':') || l.chars().any(char::is_control) {
        return Err(ReposByLanguageError::Args {
            message: format!("invalid language {l:?} (no quotes, colons or control characters)"),
        });
    }
    Ok(())
}

/// The `repos-by-language` collector. Tests inject a clock
/// ([`ReposByLanguageCollector::with_clock`]) so pacing never sleeps.
#[derive(Debug, Clone, Default)]
pub struct ReposByLanguageCollector {
    clock: Option<Arc<dyn Clock>>,
}

impl ReposByLanguageCollector {
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        ReposByLanguageCollector { clock: Some(clock) }
    }
}

#[async_trait]
impl Collector for ReposByLanguageCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn args_command(&self) -> Option<clap::Command> {
        Some(<ReposArgs as clap::CommandFactory>::command())
    }

    fn validate_config(&self, ctx: &CollectContext) -> Result<(), BoxError> {
        ReposArgs::parse_args(&ctx.args).map_err(ReposByLanguageError::into_box)?;
        for l in &ctx.config.repo_count_languages {
            validate_language(l).map_err(ReposByLanguageError::into_box)?;
        }
        Ok(())
    }

    async fn collect(&self, ctx: &CollectContext) -> Result<TrackerResult, BoxError> {
        let args = ReposArgs::parse_args(&ctx.args).map_err(ReposByLanguageError::into_box)?;
        let clock = self.clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
        collect(ctx, &args, clock)
            .await
            .map_err(ReposByLanguageError::into_box)
    }
}

/// `search/repositories` answer (only what is used; GitHub documents
/// `total_count`, `incomplete_results`, `items`).
#[derive(Debug, Deserialize)]
struct SearchAnswer {
    total_count: u64,
    #[serde(default)]
    incomplete_results: bool,
}

/// The `q` value of a language qualifier (quoted when it has spaces).
fn language_qualifier(language: &str) -> String {
    if language.contains(' ') {
        format!("language:\"{language}\"")
    } else {
        format!("language:{language}")
    }
}

/// `/search/repositories?q=…&per_page=1` for `q`.
pub fn search_count_path(q: &str) -> String {
    let enc: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
    format!("/search/repositories?q={enc}&per_page=1")
}

/// The two queries of one language and year: all repositories created
/// that year, and those with at least `stars_min` stars.
pub fn year_queries(language: &str, year: i32, stars_min: u64) -> (String, String) {
    let base = format!(
        "{} created:{year}-01-01..{year}-12-31",
        language_qualifier(language)
    );
    let starred = format!("{base} stars:>={stars_min}");
    (base, starred)
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
            "languages",
            "years",
            "queries",
            "incomplete_results",
            "inserted",
            "updated",
            "unchanged",
            "requests",
            "rate_limit_points",
            "not_modified",
            "replayed",
            "waited_ms",
        ] {
            if let Err(e) = r.add(k, self.0.get(k).copied().unwrap_or(0)) {
                tracing::error!(count = k, error = %e, "invalid count name");
            }
        }
        r
    }
}

struct Search<'a> {
    client: &'a HttpClient,
    pacer: RateWindow,
    clock: Arc<WaitMeter>,
}

impl Search<'_> {
    async fn total(&self, q: &str, counts: &mut Counts) -> Result<u64, ReposByLanguageError> {
        if !self.client.is_replay() {
            self.pacer.pace(&*self.clock).await;
        }
        let path = search_count_path(q);
        let answer: SearchAnswer =
            self.client
                .get_json(&path)
                .await
                .map_err(|source| ReposByLanguageError::Http {
                    what: format!("searching repositories ({q})"),
                    source,
                })?;
        counts.add("queries", 1);
        if answer.incomplete_results {
            counts.add("incomplete_results", 1);
            tracing::warn!(
                collector = NAME,
                query = q,
                "GitHub reported incomplete search results"
            );
        }
        Ok(answer.total_count)
    }
}

async fn collect(
    ctx: &CollectContext,
    args: &ReposArgs,
    clock: Arc<dyn Clock>,
) -> Result<TrackerResult, ReposByLanguageError> {
    let meter = WaitMeter::new(clock);
    let mut opts = ClientOptions::github(&ctx.config, NAME);
    opts.max_requests = args.max_requests;
    let tokens = opts.tokens.len();
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
    .map_err(|source| ReposByLanguageError::Http {
        what: "setting up the HTTP client".into(),
        source,
    })?
    .with_clock(meter.clone());
    let search = Search {
        client: &client,
        pacer: RateWindow::per_minute(SEARCH_PER_MINUTE, tokens),
        clock: meter.clone(),
    };
    let end_year = args.end_year.unwrap_or_else(|| meter.now().year());
    let mut counts = Counts::default();
    let outcome = collect_languages(ctx, args, &search, end_year, &mut counts).await;
    let stats = client.stats();
    counts.add("requests", stats.requests);
    counts.add("rate_limit_points", stats.rate_limit_points);
    counts.add("not_modified", stats.not_modified);
    counts.add("replayed", stats.replayed);
    counts.add("waited_ms", meter.waited_ms());
    tracing::info!(
        collector = NAME,
        requests = stats.requests,
        rate_limit_points = stats.rate_limit_points,
        waited_ms = meter.waited_ms(),
        "GitHub search requests"
    );
    outcome?;
    Ok(counts.result())
}

async fn collect_languages(
    ctx: &CollectContext,
    args: &ReposArgs,
    search: &Search<'_>,
    end_year: i32,
    counts: &mut Counts,
) -> Result<(), ReposByLanguageError> {
    if end_year < args.start_year {
        return Err(ReposByLanguageError::Args {
            message: format!(
                "the current year {end_year} is before --start-year {}",
                args.start_year
            ),
        });
    }
    for language in args.languages(&ctx.config.repo_count_languages) {
        let span = tracing::info_span!("language", collector = NAME, language = %language);
        let _enter = span.enter();
        counts.add("languages", 1);
        let mut years = Vec::new();
        for year in args.start_year..=end_year {
            let (all_q, starred_q) = year_queries(&language, year, args.stars_min);
            let created_repos = search.total(&all_q, counts).await?;
            let starred_repos = search.total(&starred_q, counts).await?;
            counts.add("years", 1);
            years.push(YearCount {
                year,
                stars_min: args.stars_min,
                created_repos,
                starred_repos,
            });
        }
        let w = store::store_language(&ctx.storage, &language, &years)
            .await
            .map_err(|source| ReposByLanguageError::Storage {
                what: "storing repository counts",
                source,
            })?;
        counts.add("inserted", w.inserted);
        counts.add("updated", w.updated);
        counts.add("unchanged", w.unchanged);
        metrics::counter!("bdc_repos_by_language_rows_written_total")
            .increment(w.inserted + w.updated);
        tracing::info!(
            collector = NAME,
            language = %language,
            inserted = w.inserted,
            updated = w.updated,
            unchanged = w.unchanged,
            "language counted"
        );
    }
    Ok(())
}
