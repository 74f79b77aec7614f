//! Benchmark of the embedded search index (`search-index-sync`, `bdc
//! search`): `BDC_BENCH_SEARCH_DOCS` generated messages (default
//! 1,000,000; `--quick`: 20,000): nine in ten mailing-list messages stored
//! as the collector stores them (bodies, threads of five), one in ten
//! GitHub comments as activity records; then
//! * the full sync: documents indexed per second;
//! * an incremental sync after 1 % of the messages changed;
//! * the index size on disk per 1 M documents;
//! * query latency p50/p99 over 200 queries each: one term, three terms, a
//!   phrase, and one term filtered by source.

use std::time::{Duration, Instant};

use anyhow::Result;
use bdc_collector_mailing_list::parse::ParsedMessage;
use bdc_core::ActivityRecord;
use bdc_search::sync::{self, SyncOptions};
use bdc_search::{ChunkConfig, SearchIndex, SearchQuery, index_dir};
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};
use chrono::{TimeZone, Utc};

use crate::{Row, backend_name, percentile_ms};

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
    "strand",
    "executor",
    "coroutine",
    "channel",
    "serializer",
    "archive",
    "variant",
    "optional",
    "filesystem",
    "regex",
    "spirit",
    "phoenix",
    "fusion",
    "hana",
    "beast",
    "json",
    "url",
    "process",
    "interprocess",
    "locale",
    "log",
    "math",
    "multiprecision",
    "numeric",
];

fn word(i: usize, k: usize) -> &'static str {
    WORDS[(i.wrapping_mul(2_654_435_761) >> (k * 3)) % WORDS.len()]
}

fn base() -> Result<chrono::DateTime<Utc>> {
    Utc.with_ymd_and_hms(2015, 1, 1, 0, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("bad base date"))
}

fn body(i: usize, rev: u32) -> String {
    format!(
        "Hello list, I am using {} with {} and the {} {} fails to compile when the {} is a {}. \
         Revision {rev}. Has anyone seen this with {} or {}? Thanks.",
        word(i, 0),
        word(i, 1),
        word(i, 2),
        word(i, 3),
        word(i, 4),
        word(i, 5),
        word(i, 6),
        word(i, 7)
    )
}

/// Message `i` (nine in ten): a mailing-list message in threads of five,
/// stored as the collector stores it (`ml_messages`).
fn mail(i: usize, rev: u32) -> Result<ParsedMessage> {
    let id = format!("m{i}@lists.example");
    let text = body(i, rev);
    Ok(ParsedMessage {
        message_id: id.clone(),
        message_id_synthesized: false,
        subject: Some(format!("[boost] {} and {}", word(i, 8), word(i, 9))),
        from_name: None,
        from_email: Some(format!("user{}@example.org", i % 5000)),
        sent_at: Some(base()? + chrono::Duration::minutes(i as i64)),
        parent_id: None,
        thread_root: format!("m{}@lists.example", i - i % 5),
        links: Vec::new(),
        size_bytes: text.len() as u64,
        body_text: text,
        attachments: 0,
        // The store keeps the smallest hash of a message id (converging
        // re-imports): a later revision gets a smaller one.
        content_hash: format!("sha256:{}-{i}", 9 - rev.min(9)),
        malformed: Vec::new(),
        reply_to: Vec::new(),
        cc: Vec::new(),
        charset_fallback: Vec::new(),
        from_deobfuscated: false,
    })
}

/// Message `i` (one in ten): an issue comment's activity record (another
/// source, for the source filter).
fn other(i: usize, rev: u32) -> Result<ActivityRecord> {
    Ok(ActivityRecord::new(
        "github",
        format!("comment-{i}"),
        base()? + chrono::Duration::minutes(i as i64),
        "issue_comment",
    )?
    .with_title(format!("{} and {}", word(i, 8), word(i, 9)))
    .with_actor(format!("user{}", i % 5000))?
    .with_url(format!("https://github.com/boostorg/x/issues/{i}"))?
    .with_payload(serde_json::json!({"body": body(i, rev)}))?)
}

/// Store messages `ids` at revision `rev`, in batches.
async fn store(storage: &Storage, ids: &[usize], rev: u32) -> Result<()> {
    for part in ids.chunks(5000) {
        let mut mails = Vec::with_capacity(part.len());
        let mut others = Vec::new();
        for &i in part {
            if i.is_multiple_of(10) {
                others.push(other(i, rev)?);
            } else {
                mails.push(mail(i, rev)?);
            }
        }
        bdc_collector_mailing_list::store::store_batch(
            storage,
            "boost",
            Some("https://lists.example/boost/"),
            &mails,
            "bench",
            None,
        )
        .await?;
        storage.activity().upsert(&others, None, None).await?;
    }
    Ok(())
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

pub async fn run(kind: Kind, quick: bool) -> Result<Vec<Row>> {
    let backend = backend_name(kind);
    let n: usize = std::env::var("BDC_BENCH_SEARCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 20_000 } else { 1_000_000 });
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    storage
        .migrate_parts(&[
            &bdc_search::SCHEMA,
            &bdc_collector_library_docs::SCHEMA,
            &bdc_collector_youtube_transcripts::SCHEMA,
            &bdc_collector_discord::SCHEMA,
            &bdc_collector_slack::SCHEMA,
            &bdc_collector_mailing_list::SCHEMA,
            &bdc_identity::SCHEMA,
        ])
        .await?;
    let all: Vec<usize> = (0..n).collect();
    store(&storage, &all, 0).await?;
    let ws = tempfile::tempdir()?;
    let opts = SyncOptions {
        app_types: vec!["activity".into(), "mailing-list".into()],
        chunk: ChunkConfig::default(),
        pinecone: None,
        reindex: false,
    };
    let start = Instant::now();
    let c = sync::sync(&storage, ws.path(), &opts).await?;
    let build_rate = c.documents as f64 / start.elapsed().as_secs_f64();

    let changed = (n / 100).max(1);
    let edited: Vec<usize> = (0..changed).map(|k| k * 100 + 1).collect();
    store(&storage, &edited, 1).await?;
    let start = Instant::now();
    let c2 = sync::sync(&storage, ws.path(), &opts).await?;
    let incr = start.elapsed();
    anyhow::ensure!(
        c2.documents as usize == changed,
        "incremental sync saw {c2:?}"
    );
    let size = dir_size(&index_dir(ws.path()));
    let per_million = size as f64 * 1_000_000.0 / n as f64 / (1024.0 * 1024.0);

    let index = SearchIndex::open(&index_dir(ws.path()))?;
    let mut rows = vec![
        Row {
            bench: "search: full sync (documents indexed)".into(),
            backend,
            size: n.to_string(),
            value: build_rate,
            unit: "docs/s",
        },
        Row {
            bench: "search: incremental sync, 1% changed".into(),
            backend,
            size: changed.to_string(),
            value: incr.as_secs_f64() * 1000.0,
            unit: "ms",
        },
        Row {
            bench: "search: index size per 1M documents".into(),
            backend,
            size: n.to_string(),
            value: per_million,
            unit: "MiB",
        },
    ];
    let cases: [(&str, &dyn Fn(usize) -> SearchQuery); 4] = [
        ("one term", &|i| SearchQuery {
            text: word(i, 0).into(),
            limit: 20,
            ..Default::default()
        }),
        ("three terms", &|i| SearchQuery {
            text: format!("{} {} {}", word(i, 0), word(i, 1), word(i, 2)),
            limit: 20,
            ..Default::default()
        }),
        ("phrase", &|i| SearchQuery {
            text: format!("\"{} and the {}\"", word(i, 1), word(i, 2)),
            limit: 20,
            ..Default::default()
        }),
        ("one term, source filter", &|i| SearchQuery {
            text: word(i, 3).into(),
            source: Some("github".into()),
            limit: 20,
            ..Default::default()
        }),
    ];
    for (name, make) in cases {
        let mut times: Vec<Duration> = Vec::with_capacity(200);
        for i in 0..200 {
            let q = make(i * 7919);
            let t = Instant::now();
            let hits = index.search(&q)?;
            times.push(t.elapsed());
            std::hint::black_box(hits);
        }
        times.sort();
        for (p, label) in [(50.0, "p50"), (99.0, "p99")] {
            rows.push(Row {
                bench: format!("search: query {name} {label}"),
                backend,
                size: n.to_string(),
                value: percentile_ms(&times, p),
                unit: "ms",
            });
        }
    }
    storage.close().await;
    drop(db);
    Ok(rows)
}
