//! `/dashboard/usage` and `/dashboard/usage/<library>` in `bdc serve`'s
//! dashboard router: behind the sign-in, rendered from the newest snapshot.

use std::sync::Arc;

use bdc_collector_library_usage_dashboard::metrics::{Inputs, LibraryIn, RepoIn, UsageIn, compute};
use bdc_collector_library_usage_dashboard::{SCHEMA, UsageSection, store};
use bdc_dashboard::{DashboardState, router};
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::both_backends as both;
use bdc_testsupport::{Kind, TestDb};
use chrono::NaiveDate;

async fn pages_behind_sign_in(kind: Kind) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default())
        .await
        .unwrap();
    storage.migrate_parts(&[&SCHEMA]).await.unwrap();
    let config = Arc::new(
        bdc_config::Config::from_lookup(|k| (k == "BDC_API_TOKEN").then(|| "s3cret".to_owned()))
            .unwrap(),
    );
    let dash = router(DashboardState {
        storage: storage.clone(),
        config: Arc::clone(&config),
        schedule: None,
        available: vec![],
        sections: vec![Arc::new(UsageSection::new(storage.clone()))],
        version: "test".into(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = bdc_server::AppState {
        storage: storage.clone(),
        config,
        schedule: None,
        schedule_error: None,
        metrics: None,
    };
    let options = bdc_server::ServerOptions {
        extra_routes: vec![dash],
        ..Default::default()
    };
    tokio::spawn(bdc_server::serve_with_options(
        listener,
        state,
        options,
        std::future::pending(),
    ));
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("{base}{path}"))
            .bearer_auth("s3cret")
            .send()
    };
    // Signed out: refused.
    let r = reqwest::get(format!("{base}/dashboard/usage"))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = reqwest::get(format!("{base}/dashboard/usage/asio"))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // No snapshot yet: a hint, and no library pages.
    let r = get("/dashboard/usage").await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("No library usage data yet")
    );
    assert_eq!(get("/dashboard/usage/asio").await.unwrap().status(), 404);

    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    let data = compute(&Inputs {
        today: d("2026-06-01"),
        stars_min: 10,
        repos: vec![RepoIn {
            full_name: "a/one".into(),
            stars: 42,
            created: d("2024-01-01"),
            pushed: d("2026-01-01"),
            first_seen: None,
            last_seen: None,
            uses_boost: true,
            boost_version: Some("1.85.0".into()),
            gone: false,
        }],
        usages: vec![UsageIn {
            repo: "a/one".into(),
            header: "boost/numeric/conversion/cast.hpp".into(),
            library: "numeric/conversion".into(),
        }],
        libraries: vec![LibraryIn {
            key: "numeric/conversion".into(),
            name: Some("Conversion <&>".into()),
        }],
        ..Default::default()
    });
    let json = serde_json::to_string(&data).unwrap();
    assert!(
        store::store_snapshot(&storage, &data.generated_on, &json)
            .await
            .unwrap()
    );
    assert!(
        !store::store_snapshot(&storage, &data.generated_on, &json)
            .await
            .unwrap()
    );

    let r = get("/dashboard/usage").await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("<svg class=\"chart boost-years\""), "{body}");
    assert!(
        body.contains("href=\"/dashboard/usage/numeric/conversion\""),
        "{body}"
    );
    assert!(
        body.contains("Conversion &#60;&#38;&#62;"),
        "escaped: {body}"
    );
    assert!(body.contains("href=\"/dashboard/usage\""), "nav link");
    let r = get("/dashboard/usage/numeric/conversion").await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("boost/numeric/conversion/cast.hpp"), "{body}");
    assert!(body.contains("<svg class=\"chart library-years\""));
    assert_eq!(get("/dashboard/usage/nope").await.unwrap().status(), 404);
}
both!(pages_behind_sign_in);
