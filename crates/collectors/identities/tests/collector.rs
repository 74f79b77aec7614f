//! The `identities` collector end to end on SQLite and PostgreSQL.

use std::sync::Arc;

use bdc_collector::{CollectContext, Collector};
use bdc_collector_identities::{IdentitiesCollector, NAME};
use bdc_config::Config;
use bdc_identity::{ProfileInput, SCHEMA, record_profiles};
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};

async fn scenario(kind: Kind) {
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default())
        .await
        .unwrap();
    storage.migrate_parts(&[&SCHEMA]).await.unwrap();
    let ws = tempfile::tempdir().unwrap();
    let wsp = ws.path().display().to_string();
    let url = db.url().to_owned();
    let config = Arc::new(
        Config::from_lookup(|k| match k {
            "WORKSPACE_DIR" => Some(wsp.clone()),
            "DATABASE_URL" => Some(url.clone()),
            _ => None,
        })
        .unwrap(),
    );
    let mut tx = storage.begin().await.unwrap();
    record_profiles(
        &mut tx,
        &[
            ProfileInput::new("github", "1")
                .login(Some("alice"))
                .name(Some("Alice A")),
            ProfileInput::new("git", "1+alice@users.noreply.github.com")
                .email(Some("1+alice@users.noreply.github.com")),
            ProfileInput::new("mailing-list", "alice at x.org")
                .name(Some("Alice A"))
                .email(Some("alice at x.org")),
            ProfileInput::new("git", "ci")
                .name(Some("Jenkins"))
                .email(Some("jenkins@x.org")),
        ],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let rules = ws.path().join("identities.yaml");
    std::fs::write(
        &rules,
        "bots: [jenkins]\nmerges:\n  - [alice, \"alice@x.org\"]\n",
    )
    .unwrap();
    let ctx = |args: Vec<String>| CollectContext {
        run_id: "test-run".into(),
        command: NAME.into(),
        args,
        schedule_group: None,
        storage: storage.clone(),
        config: Arc::clone(&config),
        interactive: false,
    };
    let r = IdentitiesCollector
        .run(&ctx(vec![
            "--rules".into(),
            rules.display().to_string(),
            "--suggest".into(),
        ]))
        .await
        .unwrap();
    let get = |n: &str| r.counts().get(n).copied();
    assert_eq!(get("profiles"), Some(4));
    assert_eq!(get("identities"), Some(2));
    assert_eq!(get("people"), Some(1));
    assert_eq!(get("bots"), Some(1));
    assert_eq!(get("suggestions"), Some(0));

    // a broken file is a config failure naming file and line
    std::fs::write(&rules, "merges:\n  - [alice]\n").unwrap();
    let e = IdentitiesCollector
        .run(&ctx(vec!["--rules".into(), rules.display().to_string()]))
        .await
        .unwrap_err();
    let msg = e.source.to_string();
    assert!(msg.contains("identities.yaml:2"), "{msg}");
    assert_eq!(e.category, bdc_core::FailureCategory::Config);
}
bdc_testsupport::both_backends!(scenario);
