//! Helpers shared by the `boost-libraries` test binaries.
#![allow(dead_code)]

use bdc_collector_boost_libraries::store::summary;
use bdc_core::TrackerResult;
use bdc_storage::Storage;
use bdc_storage::activity::ActivityFilter;

/// (external_id, kind) of every `boost-libraries` activity record, sorted.
pub async fn activity_kinds(storage: &Storage) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = storage
        .activity()
        .list(&ActivityFilter {
            source_system: Some("boost-libraries".into()),
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|a| {
            (
                a.record.external_id().to_owned(),
                a.record.kind().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The records of the two-release scenario both sources build: config,
/// json (+ json/ext) and a library without metadata in 1.0.0; json changed,
/// json/ext removed and beast added in 1.1.0.
pub fn two_release_kinds() -> Vec<(String, String)> {
    [
        ("boost-1.0.0/config", "library_added"),
        ("boost-1.0.0/json", "library_added"),
        ("boost-1.0.0/json/ext", "library_added"),
        ("boost-1.1.0/beast", "library_added"),
        ("boost-1.1.0/json", "library_changed"),
        ("boost-1.1.0/json/ext", "library_removed"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

/// What a first run over the two-release scenario reports and stores, for
/// either source.
pub async fn assert_two_releases(r: &TrackerResult, storage: &Storage) {
    assert_eq!(r.count("releases"), 2, "{r:?}");
    assert_eq!(r.count("no_meta"), 1, "{r:?}");
    assert_eq!(r.count("invalid_entries"), 1);
    assert_eq!(
        (r.count("added"), r.count("changed"), r.count("removed")),
        (4, 1, 1)
    );
    assert_eq!(summary(storage).await.unwrap(), (2, 6, 6));
    assert_eq!(activity_kinds(storage).await, two_release_kinds());
}

/// Checkpoint scopes, sorted.
pub async fn checkpoint_scopes(storage: &Storage) -> Vec<String> {
    bdc_storage::on_pool!(storage, p => sqlx::query_scalar(
        "SELECT scope FROM collector_checkpoints ORDER BY scope"
    ).fetch_all(p).await.unwrap())
}
