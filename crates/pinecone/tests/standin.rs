//! The Pinecone client against a local stand-in answering in Pinecone's
//! documented shapes (control plane `GET /indexes/{name}`, data plane
//! `records/namespaces/{ns}/upsert` NDJSON, `vectors/delete`,
//! `records/namespaces/{ns}/search`).

use std::sync::Arc;
use std::time::Duration;

use bdc_config::Secret;
use bdc_http::ManualClock;
use bdc_pinecone::{
    FailureStore, Instance, Operation, PineconeClient, PineconeError, PineconeSettings, Record,
    SCHEMA, record_id,
};
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb, both_backends as both};
use serde_json::{Map, Value, json};
use url::Url;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "pcsk_secret_test_key";

async fn standin() -> MockServer {
    let server = MockServer::start().await;
    let host = server.uri();
    for (name, field) in [("boost", "chunk_text"), ("boost-sparse", "text")] {
        Mock::given(method("GET"))
            .and(path(format!("/indexes/{name}")))
            .and(header("Api-Key", KEY))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "name": name,
                "dimension": if name == "boost" { json!(1024) } else { Value::Null },
                "metric": if name == "boost" { "cosine" } else { "dotproduct" },
                "host": host,
                "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}},
                "status": {"ready": true, "state": "Ready"},
                "vector_type": if name == "boost" { "dense" } else { "sparse" },
                "embed": {
                    "model": if name == "boost" { "llama-text-embed-v2" } else { "pinecone-sparse-english-v0" },
                    "field_map": {"text": field}
                }
            })))
            .mount(&server)
            .await;
    }
    server
}

fn settings(server: &MockServer, batch: usize) -> PineconeSettings {
    PineconeSettings {
        instance: Instance::Public,
        api_key: Secret::new(KEY),
        index_name: "boost".into(),
        batch_size: batch,
        control_url: Url::parse(&server.uri()).unwrap(),
        api_version: "2025-04".into(),
    }
}

fn records(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let mut metadata = Map::new();
            metadata.insert("source".into(), json!("mailing-list"));
            metadata.insert("url".into(), json!(format!("https://lists.example/{i}")));
            metadata.insert("library".into(), Value::Null);
            Record {
                id: record_id(&format!("doc-{i}"), 0),
                text: format!("message {i} about boost asio"),
                metadata,
            }
        })
        .collect()
}

fn upserts(reqs: &[Request]) -> Vec<&Request> {
    reqs.iter()
        .filter(|r| r.url.path().ends_with("/upsert"))
        .collect()
}

#[tokio::test]
async fn upserts_in_batches_into_both_indexes_with_their_text_fields() {
    let server = standin().await;
    Mock::given(method("POST"))
        .and(path("/records/namespaces/mail%20list/upsert"))
        .and(header("Api-Key", KEY))
        .and(header("X-Pinecone-API-Version", "2025-04"))
        .and(header("content-type", "application/x-ndjson"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&server)
        .await;
    let client = PineconeClient::new(settings(&server, 96)).unwrap();
    let report = client.upsert("mail list", &records(200)).await.unwrap();
    assert_eq!(report.done.len(), 200);
    assert!(report.failed.is_empty());
    assert_eq!(report.requests, 6, "3 batches (96, 96, 8) × 2 indexes");

    let reqs = server.received_requests().await.unwrap();
    let ups = upserts(&reqs);
    assert_eq!(ups.len(), 6);
    let mut sizes: Vec<usize> = Vec::new();
    let mut dense_lines = 0;
    let mut sparse_lines = 0;
    for r in &ups {
        let body = String::from_utf8(r.body.clone()).unwrap();
        let lines: Vec<Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        sizes.push(lines.len());
        for l in &lines {
            assert!(l["_id"].as_str().unwrap().starts_with("doc-"));
            assert!(l.get("library").is_none(), "null metadata is dropped: {l}");
            if l.get("chunk_text").is_some() {
                dense_lines += 1;
            } else {
                assert!(l["text"].as_str().unwrap().contains("boost asio"));
                sparse_lines += 1;
            }
        }
    }
    sizes.sort_unstable();
    assert_eq!(sizes, vec![8, 8, 96, 96, 96, 96]);
    assert_eq!((dense_lines, sparse_lines), (200, 200));
    for r in &reqs {
        assert!(!r.url.as_str().contains(KEY), "the key is never in a URL");
    }
}

#[tokio::test]
async fn a_429_waits_retry_after_and_5xx_backs_off_then_succeeds() {
    let server = standin().await;
    Mock::given(method("POST"))
        .and(path("/records/namespaces/ns/upsert"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1.5"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/records/namespaces/ns/upsert"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/records/namespaces/ns/upsert"))
        .respond_with(ResponseTemplate::new(201))
        .with_priority(3)
        .mount(&server)
        .await;
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let client = PineconeClient::new(settings(&server, 96))
        .unwrap()
        .with_clock(clock.clone());
    let report = client.upsert("ns", &records(3)).await.unwrap();
    assert_eq!(report.done.len(), 3);
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 2, "{sleeps:?}");
    assert_eq!(
        sleeps[0],
        Duration::from_millis(1500),
        "Retry-After honoured"
    );
}

async fn storage(kind: Kind) -> (TestDb, Storage) {
    let db = TestDb::new(kind).await;
    let s = Storage::connect(db.url(), &ConnectOptions::default())
        .await
        .unwrap();
    s.migrate_parts(&[&SCHEMA]).await.unwrap();
    (db, s)
}

both!(failed_batches_are_kept_and_retried_on_the_next_run);
async fn failed_batches_are_kept_and_retried_on_the_next_run(kind: Kind) {
    let (_db, storage) = storage(kind).await;
    let server = standin().await;
    // The batch holding doc-5 fails on the sparse index for the three
    // attempts of this run (1 + 2 retries), then the stand-in recovers.
    Mock::given(method("POST"))
        .and(path("/records/namespaces/ns/upsert"))
        .and(body_string_contains("\"text\":\"message 5 "))
        .respond_with(ResponseTemplate::new(500).set_body_string("internal"))
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/records/namespaces/ns/upsert"))
        .respond_with(ResponseTemplate::new(201))
        .with_priority(2)
        .mount(&server)
        .await;
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let client = PineconeClient::new(settings(&server, 4))
        .unwrap()
        .with_clock(clock)
        .with_max_retries(2);
    let all = records(10);
    let report = client.upsert("ns", &all).await.unwrap();
    let failed: Vec<&str> = report.failed.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(failed, vec!["doc-4#0", "doc-5#0", "doc-6#0", "doc-7#0"]);
    assert_eq!(report.done.len(), 6);
    assert!(
        report.failed[0].error.contains("boost-sparse"),
        "{}",
        report.failed[0].error
    );

    let store = FailureStore::new(storage.clone(), "boost");
    store
        .keep("ns", Operation::Upsert, &report.failed)
        .await
        .unwrap();
    store
        .keep("ns", Operation::Upsert, &report.failed[..1])
        .await
        .unwrap();
    let pending = store.pending("ns").await.unwrap();
    assert_eq!(pending.len(), 4);
    assert_eq!(pending.iter().map(|p| p.attempts).max(), Some(2));
    assert!(store.pending("other").await.unwrap().is_empty());

    // Next run: the kept ids go first and clear.
    let retry: Vec<Record> = all
        .iter()
        .filter(|r| pending.iter().any(|p| p.record_id == r.id))
        .cloned()
        .collect();
    let report = client.upsert("ns", &retry).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    store.clear("ns", &report.done).await.unwrap();
    assert!(store.pending("ns").await.unwrap().is_empty());
}

#[tokio::test]
async fn deletes_by_id_from_both_indexes() {
    let server = standin().await;
    Mock::given(method("POST"))
        .and(path("/vectors/delete"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let client = PineconeClient::new(settings(&server, 96)).unwrap();
    let ids: Vec<String> = (0..1500).map(|i| record_id(&format!("d{i}"), 0)).collect();
    let report = client.delete("ns", &ids).await.unwrap();
    assert_eq!(report.done.len(), 1500);
    assert_eq!(report.requests, 4, "2 batches (1000, 500) × 2 indexes");
    let reqs = server.received_requests().await.unwrap();
    let first: Value = reqs
        .iter()
        .find(|r| r.url.path() == "/vectors/delete")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .unwrap();
    assert_eq!(first["namespace"], "ns");
    assert_eq!(first["ids"].as_array().unwrap().len(), 1000);
}

#[tokio::test]
async fn hybrid_search_merges_dense_and_sparse_by_rank() {
    let server = standin().await;
    // Both indexes share the stand-in host: answer the first call (dense)
    // and the second (sparse) differently.
    Mock::given(method("POST"))
        .and(path("/records/namespaces/ns/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "result": {"hits": [
                {"_id": "a#0", "_score": 0.9, "fields": {"title": "A"}},
                {"_id": "b#0", "_score": 0.8, "fields": {"title": "B"}}
            ]},
            "usage": {"read_units": 6, "embed_total_tokens": 4}
        })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/records/namespaces/ns/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "result": {"hits": [
                {"_id": "b#0", "_score": 12.0, "fields": {"title": "B"}},
                {"_id": "c#0", "_score": 3.0, "fields": {"title": "C"}}
            ]},
            "usage": {"read_units": 1}
        })))
        .with_priority(2)
        .mount(&server)
        .await;
    let client = PineconeClient::new(settings(&server, 96)).unwrap();
    let filter = json!({"source": {"$eq": "mailing-list"}});
    let hits = client
        .search("ns", "asio strand", 3, Some(&filter), &["title"])
        .await
        .unwrap();
    let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, vec!["b#0", "a#0", "c#0"], "b is in both lists");
    let reqs = server.received_requests().await.unwrap();
    let body: Value = reqs
        .iter()
        .find(|r| r.url.path().ends_with("/search"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .unwrap();
    assert_eq!(body["query"]["inputs"]["text"], "asio strand");
    assert_eq!(body["query"]["top_k"], 3);
    assert_eq!(body["query"]["filter"], filter);
}

#[tokio::test]
async fn a_missing_index_or_one_without_embedding_is_a_clear_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/indexes/boost"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "error": {"code": "NOT_FOUND", "message": "Resource boost not found"}, "status": 404
        })))
        .mount(&server)
        .await;
    let client = PineconeClient::new(settings(&server, 96)).unwrap();
    let e = client.upsert("ns", &records(1)).await.unwrap_err();
    assert!(
        matches!(e, PineconeError::IndexMissing { ref name } if name == "boost"),
        "{e}"
    );

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/indexes/boost"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "name": "boost", "host": "boost-abc.svc.pinecone.io", "dimension": 1024
        })))
        .mount(&server)
        .await;
    let client = PineconeClient::new(settings(&server, 96)).unwrap();
    let e = client
        .describe_index("boost")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no integrated embedding"), "{e}");
}

#[tokio::test]
async fn a_rejected_batch_is_not_retried_and_names_the_status() {
    let server = standin().await;
    Mock::given(method("POST"))
        .and(path("/records/namespaces/ns/upsert"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"code": "INVALID_ARGUMENT", "message": "Record too large"}, "status": 400
        })))
        .expect(1)
        .mount(&server)
        .await;
    let client = PineconeClient::new(settings(&server, 96)).unwrap();
    let report = client.upsert("ns", &records(2)).await.unwrap();
    assert_eq!(report.failed.len(), 2);
    assert!(
        report.failed[0].error.contains("400"),
        "{}",
        report.failed[0].error
    );
    assert!(report.failed[0].error.contains("Record too large"));
}
