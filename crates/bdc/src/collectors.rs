//! The collectors this build provides. Adding one: implement
//! `bdc_collector::Collector` in `crates/collectors/<name>` and register it
//! here (its stable name must be in `bdc_collector::CATALOG`).

use std::sync::Arc;

use async_trait::async_trait;
use bdc_collector::{CollectContext, Collector, Registry};
use bdc_core::{BoxError, TrackerResult};

/// A collector whose successful runs end with the search index's sync
/// (its `sync_index` step, see `bdc_search::sync_after_run`): a schedule
/// keeps the index current without a separate task.
struct Indexed(Arc<dyn Collector>);

#[async_trait]
impl Collector for Indexed {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn validate_config(&self, ctx: &CollectContext) -> Result<(), BoxError> {
        self.0.validate_config(ctx)
    }
    fn args_command(&self) -> Option<clap::Command> {
        self.0.args_command()
    }
    async fn collect(&self, ctx: &CollectContext) -> Result<TrackerResult, BoxError> {
        self.0.collect(ctx).await
    }
    fn index_name(&self) -> Option<&'static str> {
        Some("activity")
    }
    async fn sync_index(
        &self,
        ctx: &CollectContext,
        _result: &TrackerResult,
    ) -> Result<u64, BoxError> {
        bdc_search::sync_after_run(ctx, self.0.name())
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
                kept.register(Arc::new(Indexed(c)));
            }
        }
    }
    kept
}
