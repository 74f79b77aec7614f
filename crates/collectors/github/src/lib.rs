//! The `github-activity` and `clang-github` collectors (GitHub REST API v3).
//!
//! ```text
//! bdc run github-activity [--repo OWNER/NAME … | --org ORG …]   # default: --org boostorg
//!     [--label L …] [--path P …] [--resources issues,comments,review-comments,reviews,commits,releases,users]
//!     [--since DATE] [--full] [--from-archive] [--max-requests N] [--per-page N] [--no-commit-files]
//! bdc run clang-github [same options]   # defaults: llvm/llvm-project, --label clang, --path clang/
//! ```
//!
//! Collects issues and pull requests, issue comments, review comments,
//! reviews, commits (with their files and line counts) and releases, plus
//! the accounts involved (public name and email fetched once per user),
//! into typed tables ([`store::SCHEMA`], part `github_activity`) and
//! [`bdc_core::ActivityRecord`]s with `source_system = github`. All HTTP
//! goes through [`bdc_http`]: conditional requests (a re-run when nothing
//! changed costs no rate-limit point), token rotation, pauses, retries, a
//! request budget (`--max-requests`) and the raw archive under
//! `WORKSPACE_DIR/raw/<collector>` that `--from-archive` replays.
//! Incremental state and transactions: see [`sync`].
//!
//! Counts: `repos`, `issues`, `pulls`, `issue_comments`,
//! `review_comments`, `reviews`, `commits`, `commit_details`, `releases`,
//! `user_details`, `rows_written`, `inserted` / `updated` / `unchanged`
//! (activity records), `requests`, `rate_limit_points`, `not_modified`,
//! `retries`, `rotations`, `pauses`, `replayed`.

use std::sync::Arc;

use async_trait::async_trait;
use bdc_collector::{CollectContext, Collector};
use bdc_core::{BoxError, TrackerResult};
use bdc_http::{ClientOptions, Clock, HttpCache, HttpClient, RawArchive};

pub mod args;
mod error;
pub mod model;
pub mod records;
pub mod store;
pub mod sync;

pub use args::{CLANG_GITHUB, GITHUB_ACTIVITY, GithubArgs, Profile, Resource};
pub use error::GithubError;
pub use records::SOURCE_SYSTEM;
pub use store::{Batch, GithubStore, SCHEMA};

/// The collector, in one of its [`Profile`]s.
#[derive(Debug, Clone)]
pub struct GithubCollector {
    profile: Profile,
    clock: Option<Arc<dyn Clock>>,
    tune: Option<fn(&mut ClientOptions)>,
}

impl GithubCollector {
    /// `github-activity`.
    pub fn activity() -> Self {
        Self::with_profile(GITHUB_ACTIVITY)
    }

    /// `clang-github`.
    pub fn clang() -> Self {
        Self::with_profile(CLANG_GITHUB)
    }

    pub fn with_profile(profile: Profile) -> Self {
        GithubCollector {
            profile,
            clock: None,
            tune: None,
        }
    }

    /// Use `clock` for every wait (tests: [`bdc_http::ManualClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Adjust the HTTP client options (tests: timeouts, thresholds).
    pub fn with_client_options(mut self, tune: fn(&mut ClientOptions)) -> Self {
        self.tune = Some(tune);
        self
    }

    async fn client(
        &self,
        ctx: &CollectContext,
        settings: &args::Settings,
    ) -> Result<HttpClient, GithubError> {
        let name = self.profile.name;
        let mut opts = ClientOptions::github(&ctx.config, name);
        opts.max_requests = settings.args.max_requests;
        if let Some(tune) = self.tune {
            tune(&mut opts);
        }
        let archive = match settings.args.archive_dir.as_ref() {
            Some(dir) if settings.args.from_archive => RawArchive::at(dir),
            _ => RawArchive::new(&ctx.config.workspace_dir, name),
        };
        let client = if settings.args.from_archive {
            HttpClient::replay(opts, archive).await
        } else {
            HttpClient::new(opts).map(|c| {
                c.with_cache(HttpCache::new(ctx.storage.clone()))
                    .with_archive(archive)
            })
        }
        .map_err(error::http("setting up the HTTP client"))?;
        Ok(match &self.clock {
            Some(clock) => client.with_clock(Arc::clone(clock)),
            None => client,
        })
    }
}

fn count(result: &mut TrackerResult, name: &str, n: u64) {
    if let Err(e) = result.add(name, n) {
        tracing::error!(count = name, error = %e, "invalid count name");
    }
}

#[async_trait]
impl Collector for GithubCollector {
    fn name(&self) -> &'static str {
        self.profile.name
    }

    fn args_command(&self) -> Option<clap::Command> {
        Some(<args::GithubArgs as clap::CommandFactory>::command())
    }

    fn validate_config(&self, ctx: &CollectContext) -> Result<(), BoxError> {
        self.profile
            .settings(&ctx.args)
            .map(|_| ())
            .map_err(GithubError::into_box)
    }

    async fn collect(&self, ctx: &CollectContext) -> Result<TrackerResult, BoxError> {
        let settings = self
            .profile
            .settings(&ctx.args)
            .map_err(GithubError::into_box)?;
        let client = self
            .client(ctx, &settings)
            .await
            .map_err(GithubError::into_box)?;
        let store = GithubStore::new(ctx.storage.clone(), self.profile.name);
        let mut run = sync::Run::new(
            self.profile.name,
            &settings,
            store,
            &client,
            Some(&ctx.run_id),
            ctx.interactive,
        );
        let outcome = if settings.args.from_archive {
            run.replay().await
        } else {
            run.live().await
        };
        let stats = client.stats();
        let c = run.counts;
        tracing::info!(
            collector = self.profile.name,
            requests = stats.requests,
            rate_limit_points = stats.rate_limit_points,
            not_modified = stats.not_modified,
            retries = stats.retries,
            rotations = stats.rotations,
            pauses = stats.pauses,
            inserted = c.activity.inserted,
            updated = c.activity.updated,
            unchanged = c.activity.unchanged,
            ok = outcome.is_ok(),
            "GitHub run finished"
        );
        outcome.map_err(GithubError::into_box)?;
        let mut r = TrackerResult::ok();
        for (k, v) in [
            ("repos", c.repos),
            ("issues", c.issues),
            ("pulls", c.pulls),
            ("issue_comments", c.issue_comments),
            ("review_comments", c.review_comments),
            ("reviews", c.reviews),
            ("commits", c.commits),
            ("commit_details", c.commit_details),
            ("releases", c.releases),
            ("user_details", c.user_details),
            ("rows_written", c.typed_rows),
            ("inserted", c.activity.inserted),
            ("updated", c.activity.updated),
            ("unchanged", c.activity.unchanged),
            ("requests", stats.requests),
            ("rate_limit_points", stats.rate_limit_points),
            ("not_modified", stats.not_modified),
            ("retries", stats.retries),
            ("rotations", stats.rotations),
            ("pauses", stats.pauses),
            ("replayed", stats.replayed),
        ] {
            count(&mut r, k, v);
        }
        Ok(r)
    }
}
