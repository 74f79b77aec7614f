//! The collectors this build provides. Adding one: implement
//! `bdc_collector::Collector` in `crates/collectors/<name>` and register it
//! here (its stable name must be in `bdc_collector::CATALOG`).

use std::sync::Arc;

use bdc_collector::Registry;

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
    if disabled.is_empty() {
        return all;
    }
    let mut kept = Registry::new();
    for name in all.available().collect::<Vec<_>>() {
        if !disabled.contains(&name)
            && let bdc_collector::Lookup::Available(c) = all.lookup(name)
        {
            kept.register(c);
        }
    }
    kept
}
