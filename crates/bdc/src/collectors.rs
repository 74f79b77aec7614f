//! The collectors this build provides. Adding one: implement
//! `bdc_collector::Collector` in `crates/collectors/<name>` and register it
//! here (its stable name must be in `bdc_collector::CATALOG`).

use std::sync::Arc;

use bdc_collector::Registry;

pub fn registry() -> Registry {
    let mut r = Registry::new();
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
    r
}
