//! The `library-usage-dashboard` collector (alias
//! `run_boost_library_usage_dashboard`): Boost library usage metrics from
//! what other collectors stored, read through their public store functions
//! (`boost-usage`: repositories and header uses; `repos-by-language`: C++
//! repositories per year; `boost-libraries`: the catalog and release dates;
//! `git-history`: commits of library repositories), written as files, a
//! static site, a database snapshot, and optionally pushed to a git
//! repository.
//!
//! ```text
//! bdc run library-usage-dashboard [--skip-collect] [--skip-render] [--skip-publish]
//!                                 [--owner O] [--repo R] [--branch B]
//! ```
//!
//! Steps (each skippable):
//! 1. **collect**: compute the metrics ([`metrics`]) and write, under
//!    `WORKSPACE_DIR/dashboard/`, `dashboard_data.json`, one CSV per table
//!    in `csv/`, the Markdown report `report.md`, and the snapshot row
//!    `bdc serve` shows at `/dashboard/usage`. With `--skip-collect` the
//!    next steps read the `dashboard_data.json` of an earlier run.
//! 2. **render**: the static site in `site/` (`index.html`,
//!    `libraries/<library>.html`; inline-SVG charts, no JavaScript).
//! 3. **publish**: the site into the `develop/` folder of
//!    `<owner>/<repo>` on `<branch>` ([`publish`]), pushed with
//!    `GITHUB_TOKEN_WRITE`. Owner/repo/branch: the flags, else
//!    `BOOST_LIBRARY_USAGE_DASHBOARD_PUBLISH_OWNER/_REPO/_BRANCH` (branch
//!    default `main`); without owner and repo the step is skipped (counted
//!    `publish_skipped`). `BOOST_LIBRARY_USAGE_DASHBOARD_PUBLISH_URL`
//!    replaces the GitHub URL (any git remote; tests use a local bare one).
//!
//! Every file is written only when its bytes change (temporary file +
//! rename), the snapshot only when its data changes, and a publish of an
//! unchanged site makes no commit: a re-run, or a run after a crash, ends
//! with the same files, rows and branch as one uninterrupted run.
//!
//! Counts: `libraries`, `repos`, `header_uses`, `files_written`,
//! `files_unchanged`, `snapshot_written`, `site_pages`, `pages_removed`,
//! `published`, `publish_unchanged`, `publish_skipped`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bdc_collector::{CollectContext, Collector};
use bdc_core::{BoxError, Categorized, FailureCategory, TrackerResult};
use bdc_storage::{Storage, StorageError};
use chrono::{DateTime, NaiveDate, Utc};
use clap::Parser;

pub mod metrics;
pub mod publish;
pub mod render;
pub mod section;
pub mod store;

pub use section::UsageSection;
pub use store::SCHEMA;

use metrics::{CommitIn, DashboardData, Inputs, LibraryIn, RepoIn, UsageIn, Weights};

/// Stable collector name.
pub const NAME: &str = "library-usage-dashboard";
/// "Repositories using it" counts repositories with more stars than this.
pub const STARS_MIN: u64 = 10;
/// The language whose `repos-by-language` counts are the denominator.
pub const CPP: &str = "C++";

/// Errors of the `library-usage-dashboard` collector.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("invalid arguments for library-usage-dashboard: {message}")]
    Args { message: String },
    #[error("--skip-collect needs the dashboard_data.json of an earlier run at {path}: {reason}", path = path.display())]
    NoData { path: PathBuf, reason: String },
    #[error("database error while {what}: {source}")]
    Storage {
        what: &'static str,
        #[source]
        source: StorageError,
    },
    #[error("writing {path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rendering the dashboard: {0}")]
    Render(#[from] askama::Error),
    #[error("writing a CSV table: {0}")]
    Csv(#[from] csv::Error),
    #[error("serialising the dashboard data: {0}")]
    Json(#[from] serde_json::Error),
    #[error("publishing the dashboard: {0}")]
    Publish(#[from] publish::PublishError),
    #[error("the publish task stopped: {0}")]
    Join(String),
}

impl DashboardError {
    pub fn into_box(self) -> BoxError {
        let category = match &self {
            DashboardError::Args { .. } | DashboardError::NoData { .. } => {
                Some(FailureCategory::Config)
            }
            DashboardError::Publish(publish::PublishError::Branch(_)) => {
                Some(FailureCategory::Config)
            }
            DashboardError::Publish(_) => Some(FailureCategory::Command),
            DashboardError::Render(_) | DashboardError::Csv(_) | DashboardError::Json(_) => {
                Some(FailureCategory::Unknown)
            }
            DashboardError::Storage { .. }
            | DashboardError::Io { .. }
            | DashboardError::Join(_) => None,
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

fn db(what: &'static str) -> impl FnOnce(StorageError) -> DashboardError {
    move |source| DashboardError::Storage { what, source }
}

/// `bdc run library-usage-dashboard` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "library-usage-dashboard",
    about = "Build the Boost library usage dashboard (metrics, JSON/CSV/Markdown, static site) and publish it"
)]
pub struct DashboardArgs {
    /// Do not compute the metrics (nor write the JSON, CSV, Markdown and
    /// snapshot); later steps read WORKSPACE_DIR/dashboard/dashboard_data.json.
    #[arg(long)]
    pub skip_collect: bool,
    /// Do not render the static site.
    #[arg(long)]
    pub skip_render: bool,
    /// Do not publish the site to the git repository.
    #[arg(long)]
    pub skip_publish: bool,
    /// Publish repository owner [default: BOOST_LIBRARY_USAGE_DASHBOARD_PUBLISH_OWNER].
    #[arg(long, value_name = "OWNER")]
    pub owner: Option<String>,
    /// Publish repository name [default: BOOST_LIBRARY_USAGE_DASHBOARD_PUBLISH_REPO].
    #[arg(long, value_name = "REPO")]
    pub repo: Option<String>,
    /// Publish branch [default: BOOST_LIBRARY_USAGE_DASHBOARD_PUBLISH_BRANCH, else main].
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl DashboardArgs {
    pub fn parse_args(args: &[String]) -> Result<Self, DashboardError> {
        let a = Self::try_parse_from(std::iter::once(NAME.to_owned()).chain(args.iter().cloned()))
            .map_err(|e| DashboardError::Args {
                message: e.to_string().trim().to_owned(),
            })?;
        for (flag, v) in [("--owner", &a.owner), ("--repo", &a.repo)] {
            if let Some(v) = v
                && !valid_name(v)
            {
                return Err(DashboardError::Args {
                    message: format!("{flag} {v:?}: letters, digits, '-', '_' and '.' only"),
                });
            }
        }
        Ok(a)
    }
}

/// The `library-usage-dashboard` collector. Tests fix "today"
/// ([`LibraryUsageDashboardCollector::with_today`]).
#[derive(Debug, Clone, Default)]
pub struct LibraryUsageDashboardCollector {
    today: Option<NaiveDate>,
}

impl LibraryUsageDashboardCollector {
    pub fn with_today(today: NaiveDate) -> Self {
        LibraryUsageDashboardCollector { today: Some(today) }
    }
}

#[async_trait]
impl Collector for LibraryUsageDashboardCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn args_command(&self) -> Option<clap::Command> {
        Some(<DashboardArgs as clap::CommandFactory>::command())
    }

    fn validate_config(&self, ctx: &CollectContext) -> Result<(), BoxError> {
        DashboardArgs::parse_args(&ctx.args).map_err(DashboardError::into_box)?;
        Ok(())
    }

    async fn collect(&self, ctx: &CollectContext) -> Result<TrackerResult, BoxError> {
        let args = DashboardArgs::parse_args(&ctx.args).map_err(DashboardError::into_box)?;
        let today = self.today.unwrap_or_else(|| Utc::now().date_naive());
        run(ctx, &args, today)
            .await
            .map_err(DashboardError::into_box)
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
            "libraries",
            "repos",
            "header_uses",
            "files_written",
            "files_unchanged",
            "snapshot_written",
            "site_pages",
            "pages_removed",
            "published",
            "publish_unchanged",
            "publish_skipped",
        ] {
            if let Err(e) = r.add(k, self.0.get(k).copied().unwrap_or(0)) {
                tracing::error!(count = k, error = %e, "invalid count name");
            }
        }
        r
    }
}

/// `WORKSPACE_DIR/dashboard`.
pub fn output_dir(workspace: &Path) -> PathBuf {
    workspace.join("dashboard")
}

fn day(s: &str) -> Option<NaiveDate> {
    s.get(..10)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
}

/// Read everything the metrics need through the other collectors' public
/// store functions.
pub async fn gather(
    storage: &Storage,
    today: NaiveDate,
    weights: Weights,
) -> Result<Inputs, DashboardError> {
    use bdc_collector_boost_libraries::store as catalog;
    use bdc_collector_boost_usage::store as usage;
    let repos = usage::repos(storage)
        .await
        .map_err(db("reading boost-usage repositories"))?
        .into_iter()
        .map(|r| RepoIn {
            created: r.created_at.as_deref().and_then(day),
            pushed: r.pushed_at.as_deref().and_then(day),
            first_seen: day(&r.first_seen),
            last_seen: day(&r.last_seen),
            stars: r.stars,
            uses_boost: r.uses_boost,
            boost_version: r.boost_version,
            gone: r.gone,
            full_name: r.full_name,
        })
        .collect();
    let usages = usage::usages(storage)
        .await
        .map_err(db("reading boost header uses"))?
        .into_iter()
        .filter(|u| u.gone_at.is_none())
        .map(|u| UsageIn {
            repo: u.repo,
            header: u.header,
            library: u.library,
        })
        .collect();
    // The catalog: the newest release's libraries (with names and
    // submodules), else every key ever stored.
    let mut libraries = Vec::new();
    let mut submodules: BTreeMap<String, String> = BTreeMap::new();
    let mut dependencies = None;
    match catalog::newest_release(storage)
        .await
        .map_err(db("reading the newest boost release"))?
    {
        Some(release) => {
            // Internal consumers: the newest release's include graph.
            dependencies = catalog::dependencies(storage, &release)
                .await
                .map_err(db("reading boost library dependencies"))?
                .map(|edges| {
                    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
                    for e in edges {
                        m.entry(e.library).or_default().insert(e.depends_on);
                    }
                    m
                });
            for l in catalog::release_libraries(storage, &release)
                .await
                .map_err(db("reading the catalog"))?
            {
                submodules.insert(l.key.clone(), l.submodule.clone());
                libraries.push(LibraryIn {
                    key: l.key,
                    name: l.name,
                });
            }
        }
        None => {
            for key in catalog::library_keys(storage)
                .await
                .map_err(db("reading the catalog keys"))?
            {
                libraries.push(LibraryIn { key, name: None });
            }
        }
    }
    let cpp_per_year = bdc_collector_repos_by_language::store::language_counts(storage, CPP)
        .await
        .map_err(db("reading C++ repository counts"))?
        .into_values()
        .map(|c| (c.year, c.created_repos, c.starred_repos))
        .collect();
    let releases: Vec<(String, DateTime<Utc>)> = catalog::releases(storage)
        .await
        .map_err(db("reading boost releases"))?;
    // Git history: a library whose submodule (or key) names a stored git
    // repository gets its commits.
    let git_repos: BTreeSet<String> = bdc_collector_git::store::repo_names(storage)
        .await
        .map_err(db("listing git repositories"))?
        .into_iter()
        .collect();
    let mut commits: BTreeMap<String, Vec<CommitIn>> = BTreeMap::new();
    for l in &libraries {
        let candidates = [
            submodules.get(&l.key).cloned(),
            Some(l.key.replace('/', "_")),
        ];
        let Some(repo) = candidates
            .into_iter()
            .flatten()
            .find(|c| git_repos.contains(c))
        else {
            continue;
        };
        let stats = bdc_collector_git::store::commit_stats(storage, &repo)
            .await
            .map_err(db("reading git commit stats"))?;
        commits.insert(
            l.key.clone(),
            stats
                .into_iter()
                .map(|c| CommitIn {
                    at: c.committed_at,
                    files_changed: c.files_changed,
                    author: c.author_email,
                })
                .collect(),
        );
    }
    Ok(Inputs {
        today: Some(today),
        stars_min: STARS_MIN,
        weights,
        repos,
        usages,
        libraries,
        cpp_per_year,
        releases,
        dependencies,
        commits: (!commits.is_empty()).then_some(commits),
    })
}

fn write(path: &Path, bytes: &[u8], counts: &mut Counts) -> Result<(), DashboardError> {
    let written = render::write_if_changed(path, bytes).map_err(|source| DashboardError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    counts.add(
        if written {
            "files_written"
        } else {
            "files_unchanged"
        },
        1,
    );
    Ok(())
}

/// The publish target from flags and configuration (`None`: not configured).
fn target(
    ctx: &CollectContext,
    args: &DashboardArgs,
) -> Result<Option<publish::Target>, DashboardError> {
    let c = &ctx.config.usage_dashboard;
    let owner = args.owner.clone().or_else(|| c.publish_owner.clone());
    let repo = args.repo.clone().or_else(|| c.publish_repo.clone());
    let branch = args
        .branch
        .clone()
        .or_else(|| c.publish_branch.clone())
        .unwrap_or_else(|| "main".into());
    let url = match (&c.publish_url, &owner, &repo) {
        (Some(u), _, _) => u.clone(),
        (None, Some(o), Some(r)) => {
            for (what, v) in [("owner", o), ("repo", r)] {
                if !valid_name(v) {
                    return Err(DashboardError::Args {
                        message: format!(
                            "publish {what} {v:?}: letters, digits, '-', '_' and '.' only"
                        ),
                    });
                }
            }
            format!("https://github.com/{o}/{r}.git")
        }
        _ => return Ok(None),
    };
    let env = |k: &str, d: &str| {
        std::env::var(k)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| d.to_owned())
    };
    Ok(Some(publish::Target {
        url,
        branch,
        token: ctx
            .config
            .github_token_write
            .as_ref()
            .map(|t| t.expose().to_owned()),
        author_name: env("GIT_AUTHOR_NAME", "bdc"),
        author_email: env("GIT_AUTHOR_EMAIL", "bdc@users.noreply.github.com"),
    }))
}

/// Remove `.html` files under `dir` that are not in `keep` (a library
/// that left the catalog); returns how many.
fn remove_stale(dir: &Path, keep: &BTreeSet<PathBuf>) -> Result<u64, DashboardError> {
    let mut n = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "html") && !keep.contains(&p) {
            std::fs::remove_file(&p).map_err(|source| DashboardError::Io {
                path: p.clone(),
                source,
            })?;
            n += 1;
        }
    }
    Ok(n)
}

async fn run(
    ctx: &CollectContext,
    args: &DashboardArgs,
    today: NaiveDate,
) -> Result<TrackerResult, DashboardError> {
    let out = output_dir(&ctx.config.workspace_dir);
    let json_path = out.join("dashboard_data.json");
    let mut counts = Counts::default();
    let c = &ctx.config.usage_dashboard;
    let weights = Weights {
        derivative: c.derivative_weight,
        regression: c.regression_weight,
        momentum: c.momentum_weight,
    };
    let data: DashboardData = if args.skip_collect {
        let text = std::fs::read_to_string(&json_path).map_err(|e| DashboardError::NoData {
            path: json_path.clone(),
            reason: e.to_string(),
        })?;
        serde_json::from_str(&text).map_err(|e| DashboardError::NoData {
            path: json_path.clone(),
            reason: e.to_string(),
        })?
    } else {
        let inputs = gather(&ctx.storage, today, weights).await?;
        let data = metrics::compute(&inputs);
        let mut json = serde_json::to_string_pretty(&data)?;
        json.push('\n');
        write(&json_path, json.as_bytes(), &mut counts)?;
        for (name, bytes) in render::csv_tables(&data)? {
            write(&out.join("csv").join(name), &bytes, &mut counts)?;
        }
        write(
            &out.join("report.md"),
            render::markdown(&data).as_bytes(),
            &mut counts,
        )?;
        let stored = store::store_snapshot(&ctx.storage, &data.generated_on, &json)
            .await
            .map_err(db("storing the dashboard snapshot"))?;
        counts.add("snapshot_written", u64::from(stored));
        data
    };
    counts.add("libraries", data.libraries.len() as u64);
    counts.add("repos", data.overview.repos_using_boost);
    counts.add("header_uses", data.overview.header_uses);
    let site = out.join("site");
    if !args.skip_render {
        let pages = render::site_pages(&data)?;
        let mut keep = BTreeSet::new();
        for (rel, html) in &pages {
            let path = site.join(rel);
            write(&path, html.as_bytes(), &mut counts)?;
            keep.insert(path);
        }
        counts.add("site_pages", pages.len() as u64);
        let removed = remove_stale(&site.join("libraries"), &keep)?;
        counts.add("pages_removed", removed);
    }
    if !args.skip_publish {
        match target(ctx, args)? {
            None => {
                counts.add("publish_skipped", 1);
                tracing::warn!(
                    collector = NAME,
                    "publish skipped: set BOOST_LIBRARY_USAGE_DASHBOARD_PUBLISH_OWNER and _REPO (or --owner/--repo), or pass --skip-publish"
                );
            }
            Some(t) => {
                if !site.join("index.html").exists() {
                    return Err(DashboardError::NoData {
                        path: site.join("index.html"),
                        reason: "no rendered site to publish (run without --skip-render first)"
                            .into(),
                    });
                }
                let work = ctx.config.workspace_dir.join("dashboard-publish");
                let message = format!(
                    "Update Boost library usage dashboard ({})",
                    data.generated_on
                );
                let url = t.url.clone();
                let outcome = tokio::task::spawn_blocking(move || {
                    publish::publish(&site, &work, &t, &message)
                })
                .await
                .map_err(|e| DashboardError::Join(e.to_string()))??;
                match outcome {
                    publish::Outcome::Pushed { commit } => {
                        counts.add("published", 1);
                        tracing::info!(collector = NAME, remote = %url, %commit, "dashboard published");
                    }
                    publish::Outcome::Unchanged => {
                        counts.add("publish_unchanged", 1);
                        tracing::info!(collector = NAME, remote = %url, "published dashboard unchanged");
                    }
                }
            }
        }
    }
    tracing::info!(
        collector = NAME,
        libraries = data.libraries.len(),
        dir = %out.display(),
        "dashboard built"
    );
    Ok(counts.result())
}
