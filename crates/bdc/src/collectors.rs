//! The collectors this build provides. Adding one: implement
//! `bdc_collector::Collector` in `crates/collectors/<name>` and register it
//! here (its stable name must be in `bdc_collector::CATALOG`).

use std::sync::Arc;

use async_trait::async_trait;
use bdc_collector::{CollectContext, Collector, Registry};
use bdc_core::{BoxError, TrackerResult};

/// A collector whose successful runs end with the search index's sync
/// (its `sync_index` step, see `bdc_search::sync_after_run`): a schedule
/// keeps the index current without a separate task. Every such collector
/// takes `--skip-index` (the original's `--skip-pinecone`-style flags); for
/// a collector that does not declare it, the wrapper adds it to the flags
/// and takes it out of the arguments the collector parses.
struct Indexed {
    inner: Arc<dyn Collector>,
    /// The inner collector declares `--skip-index` itself.
    own_skip: bool,
}

const SKIP_INDEX: &str = "--skip-index";

fn declares_skip_index(c: &clap::Command) -> bool {
    c.get_arguments()
        .any(|a| a.get_long() == Some(&SKIP_INDEX[2..]))
}

impl Indexed {
    fn new(inner: Arc<dyn Collector>) -> Self {
        let own_skip = inner
            .args_command()
            .is_some_and(|c| declares_skip_index(&c));
        Indexed { inner, own_skip }
    }

    /// The context the inner collector sees (without our `--skip-index`).
    fn inner_ctx(&self, ctx: &CollectContext) -> Option<CollectContext> {
        if self.own_skip || !ctx.args.iter().any(|a| a == SKIP_INDEX) {
            return None;
        }
        let mut c = ctx.clone();
        c.args.retain(|a| a != SKIP_INDEX);
        Some(c)
    }
}

#[async_trait]
impl Collector for Indexed {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn validate_config(&self, ctx: &CollectContext) -> Result<(), BoxError> {
        match self.inner_ctx(ctx) {
            Some(c) => self.inner.validate_config(&c),
            None => self.inner.validate_config(ctx),
        }
    }
    fn args_command(&self) -> Option<clap::Command> {
        let c = self.inner.args_command()?;
        if self.own_skip || declares_skip_index(&c) {
            return Some(c);
        }
        Some(
            c.arg(
                clap::Arg::new("skip_index")
                    .long(&SKIP_INDEX[2..])
                    .action(clap::ArgAction::SetTrue)
                    .help("Do not sync the search index after the run"),
            ),
        )
    }
    async fn collect(&self, ctx: &CollectContext) -> Result<TrackerResult, BoxError> {
        match self.inner_ctx(ctx) {
            Some(c) => self.inner.collect(&c).await,
            None => self.inner.collect(ctx).await,
        }
    }
    fn index_name(&self) -> Option<&'static str> {
        Some("activity")
    }
    async fn sync_index(
        &self,
        ctx: &CollectContext,
        _result: &TrackerResult,
    ) -> Result<u64, BoxError> {
        bdc_search::sync_after_run(ctx, self.inner.name())
            .await
            .map_err(bdc_search::SearchError::into_box)
    }
}

/// Collectors whose data is not indexed (the index itself, derived
/// reports).
const NOT_INDEXED: &[&str] = &["search-index-sync", "library-usage-dashboard", "identities"];

/// Collectors a deployment switches off (`BDC_DISABLED_COLLECTORS`: names
/// or original command names, comma separated): they are reported as not
/// available (recorded `not_available`, refused by `--strict`), as if this
/// build did not provide them.
pub const DISABLED_ENV: &str = "BDC_DISABLED_COLLECTORS";

pub fn registry() -> Registry {
    let disabled: Vec<&'static str> = std::env::var(DISABLED_ENV)
        .unwrap_or_default()
        .split(',')
        .filter_map(|n| Registry::canonical(n.trim()))
        .collect();
    let mut all = Registry::new();
    let r = &mut all;
    r.register(Arc::new(bdc_collector_wg21::Wg21PapersCollector));
    r.register(Arc::new(bdc_collector_git::GitHistoryCollector));
    r.register(Arc::new(bdc_collector_mailing_list::MailingListCollector));
    r.register(Arc::new(
        bdc_collector_boost_libraries::BoostLibrariesCollector,
    ));
    r.register(Arc::new(bdc_collector_github::GithubCollector::activity()));
    r.register(Arc::new(bdc_collector_github::GithubCollector::clang()));
    r.register(Arc::new(bdc_collector_library_docs::LibraryDocsCollector));
    r.register(Arc::new(bdc_collector_identities::IdentitiesCollector));
    r.register(Arc::new(
        bdc_collector_repos_by_language::ReposByLanguageCollector::default(),
    ));
    r.register(Arc::new(
        bdc_collector_boost_usage::BoostUsageCollector::default(),
    ));
    r.register(Arc::new(bdc_collector_discord::DiscordBackfillCollector));
    r.register(Arc::new(bdc_collector_discord::DiscordCollector::new()));
    r.register(Arc::new(
        bdc_collector_youtube_transcripts::YoutubeCollector::default(),
    ));
    r.register(Arc::new(bdc_collector_slack::SlackCollector::new()));
    r.register(Arc::new(
        bdc_collector_library_usage_dashboard::LibraryUsageDashboardCollector::default(),
    ));
    r.register(Arc::new(bdc_search::SearchIndexSyncCollector));
    let mut kept = Registry::new();
    for name in all.available().collect::<Vec<_>>() {
        if !disabled.contains(&name)
            && let bdc_collector::Lookup::Available(c) = all.lookup(name)
        {
            if NOT_INDEXED.contains(&name) {
                kept.register(c);
            } else {
                kept.register(Arc::new(Indexed::new(c)));
            }
        }
    }
    kept
}
