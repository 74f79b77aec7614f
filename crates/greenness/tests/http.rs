//! The greenness HTTP routes over a real listener: bearer auth (fail
//! closed), ingest → {id}, gating queries; on the three store backends.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use bdc_greenness::config::GreennessConfig;
use bdc_greenness::http::router;
use bdc_greenness::service::pipeline_on;
use common::{Db, Dbs};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn api(kind: Db) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(dbs) = Dbs::new(kind).await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("src/a.c"), "1").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    let sha = git(&repo, &["rev-parse", "HEAD"]);
    let yaml = format!(
        "queues:\n  - name: main\n    repo: {}\n    ref: main\n    build: \"true\"\n",
        repo.display()
    );
    let cfg = Arc::new(GreennessConfig::parse(&yaml, "t.yaml").unwrap());
    let p = pipeline_on(dbs.store(), cfg, &tmp.path().join("ws"), "http-test");
    let app = router(dbs.store(), Some(p.clone()), Some("tok".into()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum_serve(listener, app).await;
    });
    let base = format!("http://{addr}/api/greenness/queues/main");
    let c = reqwest::Client::new();

    let r = c.post(format!("{base}/ingest")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(format!("{base}/ingest"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(format!("{base}/ingest"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["id"], "request/main/1");
    let r = c
        .post(format!("{base}/ingest"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "dedup");
    let get = |path: String| {
        let c = c.clone();
        async move {
            let r = c.get(path).bearer_auth("tok").send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    assert_eq!(get(format!("{base}/last-green")).await.0, 404);
    let (s, v) = get(format!("{base}/commits/{sha}")).await;
    assert_eq!(
        (s, v["green"].as_bool(), v["status"].as_str()),
        (200, Some(false), Some("pending"))
    );
    p.drain().await.unwrap();
    let (s, v) = get(format!("{base}/commits/{sha}")).await;
    assert_eq!((s, v["green"].as_bool()), (200, Some(true)), "{v}");
    let (s, v) = get(format!("{base}/last-green")).await;
    assert_eq!(s, 200);
    assert!(v["commit_uri"].as_str().unwrap().ends_with(&sha));
    let (s, v) = get(format!("{base}/history")).await;
    assert_eq!((s, v.as_array().unwrap().len()), (200, 1));
    let (s, v) = get(base.clone()).await;
    assert_eq!(s, 200);
    assert_eq!(v["requests"][0]["state"], "done");
    let (s, _) = get(format!("http://{addr}/api/greenness/queues/nope")).await;
    assert_eq!(s, 404);

    // No token configured: everything is refused.
    let closed = router(dbs.store(), None, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr2 = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum_serve(listener, closed).await;
    });
    let r = c
        .get(format!("http://{addr2}/api/greenness/queues/main"))
        .bearer_auth("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn axum_serve(listener: tokio::net::TcpListener, app: bdc_greenness::http::Router) {
    let _ = bdc_server_serve(listener, app).await;
}

async fn bdc_server_serve(
    listener: tokio::net::TcpListener,
    app: bdc_greenness::http::Router,
) -> std::io::Result<()> {
    axum::serve(listener, app).await
}

#[tokio::test]
async fn http_api_sqlite() {
    api(Db::Sqlite).await;
}

#[tokio::test]
async fn http_api_postgres() {
    api(Db::Postgres).await;
}

#[tokio::test]
async fn http_api_mysql() {
    api(Db::MySql).await;
}
