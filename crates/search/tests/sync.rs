//! The embedded index end to end on SQLite and PostgreSQL: relevance on a
//! generated corpus, incremental sync after edits and deletions, queries
//! with search syntax, a rebuild after the index directory is lost, the
//! `/health/` sync records, Slack and Discord grouped documents (hours,
//! reply chains) following edits and deletions, and Pinecone as a second sink (a local
//! stand-in in Pinecone's documented shapes).

use std::path::Path;

use bdc_config::Secret;
use bdc_core::ActivityRecord;
use bdc_search::sync::{self, PineconeSink, SyncOptions};
use bdc_search::{ChunkConfig, SearchIndex, SearchQuery, index_dir};
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::both_backends as both;
use bdc_testsupport::{Kind, TestDb};
use chrono::{Duration, TimeZone, Utc};
use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn storage(kind: Kind) -> (TestDb, Storage) {
    let db = TestDb::new(kind).await;
    let s = Storage::connect(db.url(), &ConnectOptions::default())
        .await
        .unwrap();
    s.migrate_parts(&[
        &bdc_collector_mailing_list::SCHEMA,
        &bdc_search::SCHEMA,
        &bdc_pinecone::SCHEMA,
        &bdc_collector_library_docs::SCHEMA,
        &bdc_collector_youtube_transcripts::store::SCHEMA,
        &bdc_collector_discord::SCHEMA,
        &bdc_collector_slack::SCHEMA,
    ])
    .await
    .unwrap();
    (db, s)
}

const WORDS: &[&str] = &[
    "allocator",
    "iterator",
    "container",
    "lambda",
    "template",
    "thread",
    "mutex",
    "future",
    "buffer",
    "socket",
    "parser",
    "grammar",
    "graph",
    "matrix",
    "vector",
    "signal",
];

/// `n` records with bodies (issue-like, a source indexed by its activity
/// records); record 37 has all of "asio strand
/// executor" in its title, others have them scattered in their bodies.
fn corpus(n: usize) -> Vec<ActivityRecord> {
    let base = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    (0..n)
        .map(|i| {
            let w = |k: usize| WORDS[(i * 7 + k * 3) % WORDS.len()];
            let title = if i == 37 {
                "Asio strand executor semantics".to_owned()
            } else {
                format!("Re: {} and {}", w(0), w(1))
            };
            let mut body = format!(
                "I tried the {} with a {} but the {} keeps failing in the {}.",
                w(2),
                w(3),
                w(4),
                w(5)
            );
            if i % 5 == 0 {
                body.push_str(" Maybe an asio strand would help.");
            }
            if i % 7 == 0 {
                body.push_str(" The executor model is new to me.");
            }
            ActivityRecord::new(
                "github",
                format!("<m{i}@lists.example>"),
                base + Duration::hours(i as i64),
                "message",
            )
            .unwrap()
            .with_title(title)
            .with_actor(format!("user{}@example.org", i % 10))
            .unwrap()
            .with_url(format!("https://lists.example/boost/m{i}"))
            .unwrap()
            .with_payload(json!({"list": "boost", "body": body}))
            .unwrap()
        })
        .collect()
}

fn opts() -> SyncOptions {
    SyncOptions {
        app_types: Vec::new(),
        chunk: ChunkConfig::default(),
        pinecone: None,
        reindex: false,
    }
}

fn find(ws: &Path, text: &str) -> Vec<bdc_search::Hit> {
    let index = SearchIndex::open(&index_dir(ws)).unwrap();
    index
        .search(&SearchQuery {
            text: text.into(),
            limit: 10,
            ..Default::default()
        })
        .unwrap()
}

both!(relevance_incremental_edits_and_rebuild);
async fn relevance_incremental_edits_and_rebuild(kind: Kind) {
    let (_db, s) = storage(kind).await;
    let ws = tempfile::tempdir().unwrap();
    let records = corpus(300);
    s.activity().upsert(&records, None, None).await.unwrap();
    let c = sync::sync(&s, ws.path(), &opts()).await.unwrap();
    assert_eq!(c.documents, 300, "{c:?}");

    let hits = find(ws.path(), "asio strand executor");
    assert_eq!(hits[0].title, "Asio strand executor semantics", "{hits:#?}");
    assert_eq!(hits[0].source, "github");
    assert_eq!(
        hits[0].url.as_deref(),
        Some("https://lists.example/boost/m37")
    );
    // Filters: source, since, actors.
    let index = SearchIndex::open(&index_dir(ws.path())).unwrap();
    let q = |f: &dyn Fn(&mut SearchQuery)| {
        let mut q = SearchQuery {
            text: "asio".into(),
            limit: 500,
            ..Default::default()
        };
        f(&mut q);
        index.search(&q).unwrap()
    };
    assert!(q(&|q| q.source = Some("slack".into())).is_empty());
    let since = Utc.with_ymd_and_hms(2025, 1, 10, 0, 0, 0).unwrap();
    let recent = q(&|q| q.since = Some(since));
    assert!(!recent.is_empty() && recent.iter().all(|h| h.at >= since));
    let by_user = q(&|q| q.actors = Some(vec!["user0@example.org".into()]));
    assert!(!by_user.is_empty());
    assert!(
        by_user
            .iter()
            .all(|h| h.actor.as_deref() == Some("user0@example.org"))
    );
    assert!(
        recent.iter().any(|h| h.snippet_html.contains("<b>")),
        "highlighted"
    );

    // Search syntax never errors out.
    for text in ["\"foo(", "a AND OR", ":::", "title:", "asio)", "+-", "*"] {
        index
            .search(&SearchQuery {
                text: text.into(),
                limit: 5,
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("{text:?}: {e}"));
    }
    drop(index);

    // Nothing changed: nothing indexed again.
    let c = sync::sync(&s, ws.path(), &opts()).await.unwrap();
    assert_eq!(c.documents + c.deleted, 0, "{c:?}");

    // An edit reaches the index: the new title is found, the old one gone.
    let mut edited = records[37].clone();
    edited = edited.with_title("Coroutines with cobalt channels");
    s.activity().upsert(&[edited], None, None).await.unwrap();
    let c = sync::sync(&s, ws.path(), &opts()).await.unwrap();
    assert_eq!(c.documents, 1, "{c:?}");
    assert_eq!(
        find(ws.path(), "cobalt channels")[0].url.as_deref(),
        Some("https://lists.example/boost/m37")
    );
    assert!(
        find(ws.path(), "asio strand executor semantics")
            .iter()
            .all(|h| h.title != "Asio strand executor semantics")
    );

    // A documentation page that vanishes leaves the index.
    use bdc_collector_library_docs::store::{PageRow, mark_vanished, upsert_page};
    let md = "# Strands\n\nA strand serialises handlers: the asio executor runs one at a time.";
    let file = "library-docs/pages/1_86_0/asio/strands.md";
    std::fs::create_dir_all(ws.path().join("library-docs/pages/1_86_0/asio")).unwrap();
    std::fs::write(ws.path().join(file), md).unwrap();
    let row = PageRow {
        version: "1.86.0".into(),
        library: "asio".into(),
        url: "https://www.boost.org/doc/libs/1_86_0/libs/asio/strands.html".into(),
        title: "Strands".into(),
        file_path: file.into(),
        content_hash: bdc_collector_library_docs::content_hash(md),
        bytes: md.len() as u64,
    };
    upsert_page(&s, &row, "r1").await.unwrap();
    sync::sync(&s, ws.path(), &opts()).await.unwrap();
    let index = SearchIndex::open(&index_dir(ws.path())).unwrap();
    let docs = index
        .search(&SearchQuery {
            text: "strand serialises handlers".into(),
            library: Some("asio".into()),
            limit: 5,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(docs[0].source, "library-docs", "{docs:#?}");
    drop(index);
    mark_vanished(&s, "1.86.0", "asio", std::slice::from_ref(&row.url), "r2")
        .await
        .unwrap();
    let c = sync::sync(&s, ws.path(), &opts()).await.unwrap();
    assert_eq!(c.deleted, 1, "{c:?}");
    assert!(find(ws.path(), "serialises handlers").is_empty());

    // /health/'s pinecone_sync: one entry per app type.
    let syncs = s.index_syncs().list().await.unwrap();
    let names: Vec<&str> = syncs.iter().map(|x| x.index_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "activity",
            "discord",
            "library-docs",
            "mailing-list",
            "slack",
            "youtube"
        ]
    );

    // The index directory is lost: --reindex rebuilds it from the database.
    let ids = |ws: &Path| {
        let index = SearchIndex::open(&index_dir(ws)).unwrap();
        let mut v: Vec<String> = index
            .search(&SearchQuery {
                text: "asio".into(),
                limit: 1000,
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .map(|h| h.doc_id)
            .collect();
        v.sort();
        v
    };
    let before = ids(ws.path());
    std::fs::remove_dir_all(index_dir(ws.path())).unwrap();
    let mut o = opts();
    o.reindex = true;
    let c = sync::sync(&s, ws.path(), &o).await.unwrap();
    assert_eq!(c.documents, 300, "{c:?}");
    assert_eq!(ids(ws.path()), before);
    assert!(before.len() > 50);
}

/// A sync killed after its index commit but before its cursor moved redoes
/// the batch: replacing by document id leaves nothing twice.
#[tokio::test]
async fn a_batch_redone_after_a_crash_indexes_nothing_twice() {
    let (_db, s) = storage(Kind::Sqlite).await;
    let ws = tempfile::tempdir().unwrap();
    s.activity().upsert(&corpus(50), None, None).await.unwrap();
    sync::sync(&s, ws.path(), &opts()).await.unwrap();
    let chunks = SearchIndex::open(&index_dir(ws.path()))
        .unwrap()
        .chunks()
        .unwrap();
    // Forget the cursor (as if the process died right after the commit).
    bdc_search::store::reset(&s).await.unwrap();
    let c = sync::sync(&s, ws.path(), &opts()).await.unwrap();
    assert_eq!(c.documents, 50);
    assert_eq!(
        SearchIndex::open(&index_dir(ws.path()))
            .unwrap()
            .chunks()
            .unwrap(),
        chunks
    );
}

async fn pinecone_standin() -> MockServer {
    let server = MockServer::start().await;
    for (name, field) in [("boost", "chunk_text"), ("boost-sparse", "chunk_text")] {
        Mock::given(method("GET"))
            .and(path(format!("/indexes/{name}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "name": name, "host": server.uri(),
                "embed": {"model": "m", "field_map": {"text": field}},
                "status": {"ready": true, "state": "Ready"}
            })))
            .mount(&server)
            .await;
    }
    server
}

both!(pinecone_gets_the_same_chunks_and_failures_are_retried);
async fn pinecone_gets_the_same_chunks_and_failures_are_retried(kind: Kind) {
    let (_db, s) = storage(kind).await;
    let ws = tempfile::tempdir().unwrap();
    s.activity().upsert(&corpus(120), None, None).await.unwrap();
    let server = pinecone_standin().await;
    // The first two upserts fail for good (one batch); then it recovers.
    Mock::given(method("POST"))
        .and(path_regex("^/records/namespaces/activity/upsert$"))
        .respond_with(ResponseTemplate::new(400).set_body_string("rejected"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("^/records/namespaces/[^/]+/upsert$"))
        .respond_with(ResponseTemplate::new(201))
        .with_priority(2)
        .mount(&server)
        .await;
    let settings = bdc_pinecone::PineconeSettings {
        instance: bdc_pinecone::Instance::Public,
        api_key: Secret::new("k"),
        index_name: "boost".into(),
        batch_size: 96,
        control_url: url::Url::parse(&server.uri()).unwrap(),
        api_version: "2025-04".into(),
    };
    let sink = || PineconeSink {
        client: bdc_pinecone::PineconeClient::new(settings.clone()).unwrap(),
        failures: bdc_pinecone::FailureStore::new(s.clone(), "boost"),
        namespace: None,
    };
    let mut o = opts();
    o.app_types = vec!["activity".into()];
    o.pinecone = Some(sink());
    let c = sync::sync(&s, ws.path(), &o).await.unwrap();
    assert_eq!(c.chunks, 120);
    assert_eq!((c.pinecone_upserted, c.pinecone_failed), (24, 96), "{c:?}");
    let c = sync::sync(&s, ws.path(), &o).await.unwrap();
    assert_eq!((c.documents, c.pinecone_retried), (0, 96), "{c:?}");
    let pending = bdc_pinecone::FailureStore::new(s.clone(), "boost")
        .pending("activity")
        .await
        .unwrap();
    assert!(pending.is_empty());
    // Record ids are stable: <doc id>#<chunk start>.
    let reqs = server.received_requests().await.unwrap();
    let body = reqs
        .iter()
        .rev()
        .find(|r| r.url.path().ends_with("/upsert"))
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .unwrap();
    assert!(body.contains("\"_id\":\"activity:github:<m"), "{body}");
    assert!(body.contains("#0\""), "{body}");
}

/// Raw rows for the grouping test (the collectors' own write paths are
/// tested in their crates; here only the read side matters).
async fn exec(
    s: &Storage,
    sql: &'static str,
    binds: Vec<serde_json::Value>,
    times: Vec<chrono::DateTime<Utc>>,
) {
    // Strings first, then timestamps, in placeholder order.
    bdc_storage::on_pool!(s, p => {
        let mut q = sqlx::query(sql);
        for b in &binds {
            q = match b {
                serde_json::Value::Null => q.bind(None::<String>),
                serde_json::Value::Bool(v) => q.bind(*v),
                v => q.bind(v.as_str().unwrap().to_owned()),
            };
        }
        for t in &times {
            q = q.bind(bdc_storage::normalize_time(*t));
        }
        q.execute(p).await.unwrap();
    });
}

async fn slack_msg(
    s: &Storage,
    ts: &str,
    user: &str,
    text: &str,
    deleted: bool,
    updated: chrono::DateTime<Utc>,
) {
    let secs: i64 = ts.split('.').next().unwrap().parse().unwrap();
    let posted = chrono::DateTime::from_timestamp(secs, 0).unwrap();
    let sql = "INSERT INTO sl_messages (channel_id, ts, user_id, text, deleted, content_hash, source, posted_at, version_at, first_seen_at, updated_at)
         VALUES ('C1', $1, $2, $3, $4, 'h', 'api', $5, $6, $7, $8)
         ON CONFLICT (channel_id, ts) DO UPDATE SET text = excluded.text, deleted = excluded.deleted, updated_at = excluded.updated_at";
    exec(
        s,
        sql,
        vec![json!(ts), json!(user), json!(text), json!(deleted)],
        vec![posted, posted, posted, updated],
    )
    .await;
}

async fn discord_msg(
    s: &Storage,
    id: &str,
    reply_to: Option<&str>,
    text: &str,
    deleted: bool,
    updated: chrono::DateTime<Utc>,
) {
    let created = Utc.with_ymd_and_hms(2025, 2, 1, 9, 0, 0).unwrap()
        + Duration::minutes(id.trim_start_matches('m').parse::<i64>().unwrap());
    exec(
        s,
        "INSERT INTO dc_messages (id, channel_id, guild_id, author_id, kind, content, month, reply_to_id, deleted, content_hash, source, created_at, first_seen_at, updated_at)
         VALUES ($1, 'ch', 'g', 'a1', 'Default', $2, '2025-02', $3, $4, 'h', 'api', $5, $6, $7)
         ON CONFLICT (id) DO UPDATE SET content = excluded.content, deleted = excluded.deleted, updated_at = excluded.updated_at",
        vec![json!(id), json!(text), json!(reply_to), json!(deleted)],
        vec![created, created, updated],
    )
    .await;
}

fn ids_of(ws: &Path, source: &str) -> Vec<(String, String)> {
    let index = SearchIndex::open(&index_dir(ws)).unwrap();
    let mut v: Vec<(String, String)> = index
        .search(&SearchQuery {
            text: "boost".into(),
            source: Some(source.into()),
            limit: 100,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|h| (h.doc_id, h.kind))
        .collect();
    v.sort();
    v
}

/// Slack messages are grouped per user, channel and hour; Discord messages
/// per reply chain; edits and deletions after indexing reach both.
async fn grouped_documents(kind: Kind) {
    let (_db, s) = storage(kind).await;
    let ws = tempfile::tempdir().unwrap();
    let t0 = Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap();
    exec(
        &s,
        "INSERT INTO sl_channels (id, name, first_seen_at, updated_at) VALUES ('C1', 'general', $1, $2)",
        vec![],
        vec![t0, t0],
    )
    .await;
    exec(
        &s,
        "INSERT INTO sl_users (id, name, first_seen_at, updated_at) VALUES ('U1', 'alice', $1, $2)",
        vec![],
        vec![t0, t0],
    )
    .await;
    // 2025-01-01 10:00 UTC = 1735725600.
    slack_msg(
        &s,
        "1735725900.000100",
        "U1",
        "boost asio first message here",
        false,
        t0,
    )
    .await;
    slack_msg(
        &s,
        "1735727900.000200",
        "U1",
        "boost strand second message here",
        false,
        t0,
    )
    .await;
    slack_msg(
        &s,
        "1735729800.000300",
        "U1",
        "boost next hour message here",
        false,
        t0,
    )
    .await;
    slack_msg(
        &s,
        "1735726800.000400",
        "U2",
        "boost other user message here",
        false,
        t0,
    )
    .await;
    discord_msg(&s, "m1", None, "boost root question about asio", false, t0).await;
    discord_msg(
        &s,
        "m2",
        Some("m1"),
        "boost first answer to the question",
        false,
        t0,
    )
    .await;
    discord_msg(
        &s,
        "m3",
        Some("m2"),
        "boost follow-up with more details",
        false,
        t0,
    )
    .await;
    discord_msg(
        &s,
        "m4",
        None,
        "boost unrelated message in channel",
        false,
        t0,
    )
    .await;

    let c = sync::sync(&s, ws.path(), &opts()).await.unwrap();
    assert_eq!(c.per_app_type.get("slack"), Some(&3), "{c:?}");
    assert_eq!(c.per_app_type.get("discord"), Some(&2), "{c:?}");
    assert_eq!(c.index_documents, 5, "{c:?}");
    assert_eq!(
        ids_of(ws.path(), "slack"),
        [
            (
                "slack:C1:U1:1735725600".to_owned(),
                "conversation".to_owned()
            ),
            ("slack:C1:U1:1735729200".to_owned(), "message".to_owned()),
            ("slack:C1:U2:1735725600".to_owned(), "message".to_owned()),
        ]
    );
    assert_eq!(
        ids_of(ws.path(), "discord"),
        [
            ("discord:m1".to_owned(), "conversation".to_owned()),
            ("discord:m4".to_owned(), "message".to_owned()),
        ]
    );
    let hit = &find(ws.path(), "strand second")[0];
    assert_eq!(hit.doc_id, "slack:C1:U1:1735725600");
    assert!(hit.title.contains("#general: alice"), "{}", hit.title);

    // Nothing changed: nothing indexed again.
    let c = sync::sync(&s, ws.path(), &opts()).await.unwrap();
    assert_eq!(c.documents + c.deleted, 0, "{c:?}");

    // Edits and deletions after indexing.
    let t1 = t0 + Duration::hours(1);
    slack_msg(
        &s,
        "1735727900.000200",
        "U1",
        "boost cobalt edited message here",
        false,
        t1,
    )
    .await;
    slack_msg(
        &s,
        "1735729800.000300",
        "U1",
        "boost next hour message here",
        true,
        t1,
    )
    .await;
    discord_msg(
        &s,
        "m3",
        Some("m2"),
        "boost coroutine follow-up with details",
        false,
        t1,
    )
    .await;
    discord_msg(
        &s,
        "m4",
        None,
        "boost unrelated message in channel",
        true,
        t1,
    )
    .await;
    let c = sync::sync(&s, ws.path(), &opts()).await.unwrap();
    assert_eq!((c.documents, c.deleted), (2, 2), "{c:?}");
    assert_eq!(c.index_documents, 3, "{c:?}");
    assert_eq!(
        find(ws.path(), "cobalt edited")[0].doc_id,
        "slack:C1:U1:1735725600"
    );
    assert!(find(ws.path(), "strand second").is_empty());
    assert_eq!(
        find(ws.path(), "coroutine follow-up")[0].doc_id,
        "discord:m1"
    );
    assert_eq!(ids_of(ws.path(), "slack").len(), 2);
    assert_eq!(ids_of(ws.path(), "discord").len(), 1);
}

#[tokio::test]
async fn grouped_documents_sqlite() {
    grouped_documents(Kind::Sqlite).await;
}

#[tokio::test]
async fn grouped_documents_postgres() {
    grouped_documents(Kind::Postgres).await;
}

/// PostgreSQL with several writers: a transaction that stamped its rows
/// before a sync read later rows, but committed after it, is still
/// indexed by the next sync (the cursor is held behind open transactions),
/// and the rows read twice are not indexed twice.
#[tokio::test]
async fn a_late_committing_transaction_is_not_skipped() {
    let (_db, s) = storage(Kind::Postgres).await;
    let ws = tempfile::tempdir().unwrap();
    let records = corpus(3);
    s.activity()
        .upsert(&records[..1], None, None)
        .await
        .unwrap();
    let c = sync::sync(&s, ws.path(), &opts()).await.unwrap();
    assert_eq!(c.documents, 1, "{c:?}");
    // A writer stamps record 1 and stays open...
    let mut tx = s.begin().await.unwrap();
    bdc_storage::activity::upsert_in_tx(&mut tx, &records[1..2], None, None)
        .await
        .unwrap();
    // ...while another commits record 2, stamped later, and a sync runs.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    s.activity()
        .upsert(&records[2..3], None, None)
        .await
        .unwrap();
    let c = sync::sync(&s, ws.path(), &opts()).await.unwrap();
    assert_eq!(c.documents, 1, "{c:?}");
    tx.commit().await.unwrap();
    // The late commit is found; record 2 is not indexed again.
    let c = sync::sync(&s, ws.path(), &opts()).await.unwrap();
    assert_eq!((c.documents, c.deleted), (1, 0), "{c:?}");
    let c = sync::sync(&s, ws.path(), &opts()).await.unwrap();
    assert_eq!((c.documents, c.deleted), (0, 0), "{c:?}");
    let index = SearchIndex::open(&index_dir(ws.path())).unwrap();
    for i in 0..3 {
        let id = format!("activity:github:<m{i}@lists.example>");
        assert!(index.contains(&id).unwrap(), "{id}");
    }
}

/// A Pinecone call that fails as a whole (the index cannot be described):
/// the embedded index and its cursor move on, every id is kept, and the
/// sync reports the error; once Pinecone answers, the kept ids are sent.
#[tokio::test]
async fn a_whole_pinecone_failure_keeps_every_id_and_is_reported() {
    let (_db, s) = storage(Kind::Sqlite).await;
    let ws = tempfile::tempdir().unwrap();
    s.activity().upsert(&corpus(10), None, None).await.unwrap();
    let down = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_string("no such index"))
        .mount(&down)
        .await;
    let sink = |uri: &str| PineconeSink {
        client: bdc_pinecone::PineconeClient::new(bdc_pinecone::PineconeSettings {
            instance: bdc_pinecone::Instance::Public,
            api_key: Secret::new("k"),
            index_name: "boost".into(),
            batch_size: 96,
            control_url: url::Url::parse(uri).unwrap(),
            api_version: "2025-04".into(),
        })
        .unwrap(),
        failures: bdc_pinecone::FailureStore::new(s.clone(), "boost"),
        namespace: None,
    };
    let mut o = opts();
    o.app_types = vec!["activity".into()];
    o.pinecone = Some(sink(&down.uri()));
    let c = sync::sync(&s, ws.path(), &o).await.unwrap();
    assert_eq!(c.documents, 10, "{c:?}");
    assert_eq!(c.pinecone_failed, 10, "{c:?}");
    assert!(c.pinecone_error.is_some(), "{c:?}");
    let kept = bdc_pinecone::FailureStore::new(s.clone(), "boost")
        .pending("activity")
        .await
        .unwrap();
    assert_eq!(kept.len(), 10);
    // Pinecone is back: the kept ids go first, nothing else to index.
    let up = pinecone_standin().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&up)
        .await;
    o.pinecone = Some(sink(&up.uri()));
    let c = sync::sync(&s, ws.path(), &o).await.unwrap();
    assert_eq!((c.documents, c.pinecone_retried), (0, 10), "{c:?}");
    assert!(c.pinecone_error.is_none(), "{c:?}");
    assert!(
        bdc_pinecone::FailureStore::new(s.clone(), "boost")
            .pending("activity")
            .await
            .unwrap()
            .is_empty()
    );
}
