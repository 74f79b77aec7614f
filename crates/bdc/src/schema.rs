//! The schema parts this build uses beyond the foundation (each domain
//! crate that owns tables exports one). `bdc migrate` applies them in this
//! order; every command checks them before touching the database.

use bdc_storage::SchemaPart;

pub fn parts() -> Vec<&'static SchemaPart> {
    vec![
        &bdc_jobs::SCHEMA,
        &bdc_http::SCHEMA,
        &bdc_collector_github::SCHEMA,
        &bdc_collector_git::SCHEMA,
        &bdc_collector_mailing_list::SCHEMA,
        &bdc_collector_boost_libraries::SCHEMA,
        &bdc_collector_library_docs::SCHEMA,
        &bdc_identity::SCHEMA,
        &bdc_collector_repos_by_language::SCHEMA,
        &bdc_collector_youtube_transcripts::SCHEMA,
        &bdc_collector_boost_usage::SCHEMA,
        &bdc_collector_discord::SCHEMA,
        &bdc_collector_slack::SCHEMA,
        &bdc_collector_library_usage_dashboard::SCHEMA,
        &bdc_search::SCHEMA,
        &bdc_pinecone::SCHEMA,
        &bdc_audit::AUDIT,
        &bdc_greenness::store::SCHEMA,
    ]
}
