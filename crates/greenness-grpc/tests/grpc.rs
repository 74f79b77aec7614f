//! The gRPC service over loopback with a real tonic client, on SQLite,
//! PostgreSQL and MySQL/MariaDB: auth, ingest (dedup), gating reads, the WatchGreenness
//! stream, status codes for bad input, unknown queues, a malformed
//! protobuf message and storage going away, and reflection.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bdc_greenness::config::GreennessConfig;
use bdc_greenness::service::pipeline_on;
use bdc_greenness_grpc::pb::greenness_client::GreennessClient;
use bdc_greenness_grpc::pb::*;
use bdc_greenness_grpc::{GreennessService, serve};
use common::{Db, Dbs};
use futures_util::StreamExt;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

// The greenness crate's three-backend fixture (one source of truth).
#[path = "../../greenness/tests/common/mod.rs"]
mod common;

const TOKEN: &str = "grpc-secret";

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
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn authed<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    r
}

fn q(queue: &str) -> IngestRequest {
    IngestRequest {
        queue: queue.into(),
    }
}

fn lg(queue: &str, project: Option<&str>) -> LastGreenRequest {
    LastGreenRequest {
        queue: queue.into(),
        project: project.map(str::to_owned),
    }
}

fn ig(commit: &str) -> IsGreenRequest {
    IsGreenRequest {
        queue: "main".into(),
        commit: commit.into(),
        project: None,
    }
}

async fn flow(kind: Db) {
    let Some(dbs) = Dbs::new(kind).await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("a")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("a/x"), "1").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    let sha = git(&repo, &["rev-parse", "HEAD"]);
    let yaml = format!(
        "queues:\n  - name: main\n    repo: {}\n    ref: main\n    projects:\n      - name: a\n        paths: [\"a/**\"]\n        build: \"true\"\n",
        repo.display()
    );
    let config = Arc::new(GreennessConfig::parse(&yaml, "g.yaml").unwrap());
    let p = pipeline_on(dbs.store(), config, &tmp.path().join("ws"), "t");
    p.ensure_queues().await.unwrap();
    let mut service = GreennessService::new(dbs.store(), Some(p.clone()));
    service.watch_poll = Duration::from_millis(50);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        service,
        Some(TOKEN.to_owned()),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let channel: Channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = GreennessClient::new(channel.clone());

    // Auth: no token, wrong token.
    let e = c.ingest(q("main")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let mut wrong = tonic::Request::new(q("main"));
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    assert_eq!(
        c.ingest(wrong).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    // Bad input and unknown queues.
    let e = c.ingest(authed(q(""))).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("queue"), "{}", e.message());
    let e = c.ingest(authed(q("nope"))).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = c.last_green(authed(lg("nope", None))).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .last_green(authed(lg("main", Some("a b"))))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c.is_green(authed(ig("not a commit"))).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .watch_greenness(authed(WatchGreennessRequest {
            queue: "nope".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Nothing green yet.
    let none = c
        .last_green(authed(lg("main", None)))
        .await
        .unwrap()
        .into_inner();
    assert!(!none.found);

    // Watch before anything is recorded.
    let mut watch = c
        .watch_greenness(authed(WatchGreennessRequest {
            queue: "main".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();

    // Ingest, dedup.
    let r1 = c.ingest(authed(q("main"))).await.unwrap().into_inner();
    assert_eq!(r1.id, "request/main/1");
    assert!(r1.created);
    assert!(r1.commit_uri.ends_with(&sha));
    let again = c.ingest(authed(q("main"))).await.unwrap().into_inner();
    assert_eq!(again.id, r1.id);
    assert!(!again.created);

    // A malformed protobuf message: refused by the codec, nothing written.
    {
        let mut raw = tonic::client::Grpc::new(channel.clone());
        raw.ready().await.unwrap();
        // Field 1 (queue, a string) sent as a varint: invalid wire type.
        let e = raw
            .unary(
                authed(LastGreenResponse {
                    found: true,
                    ..Default::default()
                }),
                "/bdc.greenness.v1.Greenness/Ingest".parse().unwrap(),
                tonic_prost::ProstCodec::<LastGreenResponse, IngestResponse>::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Internal, "{e:?}");
        assert!(e.message().contains("decode"), "{}", e.message());
    }

    p.drain().await.unwrap();

    // The stream sends each record: repo then project, both transitions
    // (never recorded → green).
    let mut events = Vec::new();
    while events.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .unwrap();
        events.push(ev);
    }
    assert_eq!(events[0].scope, "repo");
    assert_eq!(events[1].scope, "project:a");
    for ev in &events {
        assert!(
            ev.green && ev.transition && ev.previous_green.is_none(),
            "{ev:?}"
        );
        assert_eq!(ev.outcome, "passed");
        assert_eq!(ev.request_id, "request/main/1");
    }

    // Gating reads.
    let found = c
        .last_green(authed(lg("main", Some("a"))))
        .await
        .unwrap()
        .into_inner();
    assert!(
        found.found && found.commit_uri.ends_with(&sha) && found.seq == 1,
        "{found:?}"
    );
    let v = c.is_green(authed(ig(&sha))).await.unwrap().into_inner();
    assert!(v.green, "{v:?}");
    assert_eq!(v.status, "green");
    assert_eq!(v.degree, Some(0.0));
    let v = c
        .is_green(authed(ig(&"f".repeat(40))))
        .await
        .unwrap()
        .into_inner();
    assert!(!v.green);
    assert_eq!(v.status, "not recorded");
    assert!(v.commit_uri.is_empty());

    // Resuming from a record id replays what followed it.
    let mut resumed = c
        .watch_greenness(authed(WatchGreennessRequest {
            queue: "main".into(),
            after_record_id: events[0].record_id,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let ev = tokio::time::timeout(Duration::from_secs(10), resumed.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ev.record_id, events[1].record_id);

    // Reflection lists the service.
    {
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        let mut rc = ServerReflectionClient::new(channel.clone());
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut resp = rc
            .server_reflection_info(futures_util::stream::iter(vec![req]))
            .await
            .unwrap()
            .into_inner();
        let first = resp.next().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
            panic!("{first:?}");
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        assert!(
            names.contains(&"bdc.greenness.v1.Greenness".to_owned()),
            "{names:?}"
        );
    }

    // Storage goes away: UNAVAILABLE.
    match &dbs.mysql {
        Some((_, my)) => my.pool.close().await,
        None => dbs.storage.close().await,
    }
    let e = c.last_green(authed(lg("main", None))).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");

    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn grpc_sqlite() {
    flow(Db::Sqlite).await;
}

#[tokio::test]
async fn grpc_postgres() {
    flow(Db::Postgres).await;
}

#[tokio::test]
async fn grpc_mysql() {
    flow(Db::MySql).await;
}
