//! End-to-end tests of the `mailing-list` collector on SQLite and
//! PostgreSQL: mbox files built here (MIME, charsets, broken headers,
//! `>From ` lines, a 10,000-message archive), HyperKitty exports served by
//! a local wiremock server, idempotent re-runs and resume after failures.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bdc_collector::{CollectContext, Collector};
use bdc_collector_mailing_list::store::{get_message, list_summary};
use bdc_collector_mailing_list::{MailingListCollector, NAME, SCHEMA};
use bdc_config::Config;
use bdc_core::TrackerResult;
use bdc_storage::activity::ActivityFilter;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Env {
    _db: TestDb,
    storage: Storage,
    workspace: tempfile::TempDir,
    config: Arc<Config>,
}

impl Env {
    async fn new(kind: Kind) -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let workspace = tempfile::tempdir().unwrap();
        let db = TestDb::new(kind).await;
        let storage = Storage::connect(db.url(), &ConnectOptions::default())
            .await
            .unwrap();
        storage
            .migrate_parts(&[&SCHEMA, &bdc_identity::SCHEMA])
            .await
            .unwrap();
        let ws = workspace.path().display().to_string();
        let url = db.url().to_owned();
        let config = Config::from_lookup(|k| match k {
            "WORKSPACE_DIR" => Some(ws.clone()),
            "DATABASE_URL" => Some(url.clone()),
            _ => None,
        })
        .unwrap();
        Env {
            _db: db,
            storage,
            workspace,
            config: Arc::new(config),
        }
    }

    fn ctx(&self, args: &[&str]) -> CollectContext {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        CollectContext {
            run_id: format!("test-{}", N.fetch_add(1, Ordering::Relaxed)),
            command: NAME.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            schedule_group: None,
            storage: self.storage.clone(),
            config: Arc::clone(&self.config),
            interactive: false,
        }
    }

    async fn run(&self, args: &[&str]) -> TrackerResult {
        match MailingListCollector.run(&self.ctx(args)).await {
            Ok(r) => r,
            Err(e) => panic!("run {args:?} failed: {e}"),
        }
    }

    async fn activity(&self) -> u64 {
        self.storage
            .activity()
            .count(&ActivityFilter {
                source_system: Some("mailing-list".into()),
                ..Default::default()
            })
            .await
            .unwrap()
    }

    /// Every stored message and link, sorted, for comparing databases.
    async fn fingerprint(&self) -> (Vec<(String, String, String, String)>, i64, u64) {
        let rows: Vec<(String, String, String, String)> = bdc_storage::on_pool!(self.storage, p => sqlx::query_as(
            "SELECT list, message_id, content_hash, thread_root FROM ml_messages ORDER BY list, message_id"
        ).fetch_all(p).await.unwrap());
        let links: i64 = bdc_storage::on_pool!(self.storage, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM ml_thread_links"
        ).fetch_one(p).await.unwrap());
        (rows, links, self.activity().await)
    }

    async fn checkpoint_updates(&self) -> Vec<(String, String)> {
        bdc_storage::on_pool!(self.storage, p => sqlx::query_as::<_, (String, String)>(
            "SELECT scope, checkpoint_token FROM collector_checkpoints ORDER BY scope"
        ).fetch_all(p).await.unwrap())
    }
}

use bdc_testsupport::both_backends as both;

/// A hand-built archive covering the MIME and mbox corner cases.
fn fixture_mbox() -> Vec<u8> {
    let mut m: Vec<u8> = Vec::new();
    // 1. plain, thread root, with a `>From ` escaped body line
    m.extend_from_slice(
        b"From alice@example.org Mon Jan  1 10:00:00 2024\n\
Message-ID: <root@example.org>\n\
From: Alice Example <alice@example.org>\n\
Date: Mon, 1 Jan 2024 10:00:00 +0000\n\
Subject: [boost] Proposal\n\
\n\
Hello list.\n\
\n",
    );
    // 2. reply, quoted-printable, ISO-8859-1, RFC 2047 subject
    m.extend_from_slice(
        b"From bob@example.org Mon Jan  1 11:00:00 2024\n\
Message-ID: <r1@example.org>\n\
In-Reply-To: <root@example.org>\n\
References: <root@example.org>\n\
From: =?ISO-8859-1?Q?Bj=F6rn?= <bob@example.org>\n\
Date: Mon, 1 Jan 2024 11:00:00 +0000\n\
Subject: Re: [boost] Proposal\n\
MIME-Version: 1.0\n\
Content-Type: text/plain; charset=ISO-8859-1\n\
Content-Transfer-Encoding: quoted-printable\n\
\n\
Gr=FC=DFe aus K=F6ln\n\
\n",
    );
    // 3. multipart with base64 KOI8-R text and a base64 attachment
    m.extend_from_slice(
        b"From carol@example.org Mon Jan  1 12:00:00 2024\n\
Message-ID: <r2@example.org>\n\
In-Reply-To: <r1@example.org>\n\
References: <root@example.org> <r1@example.org>\n\
From: carol@example.org\n\
Date: Mon, 1 Jan 2024 12:00:00 +0000\n\
Subject: Re: Proposal\n\
MIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"XYZ\"\n\
\n\
--XYZ\n\
Content-Type: text/plain; charset=KOI8-R\n\
Content-Transfer-Encoding: base64\n\
\n\
8NLJ18XU\n\
--XYZ\n\
Content-Type: application/octet-stream; name=\"a.bin\"\n\
Content-Disposition: attachment; filename=\"a.bin\"\n\
Content-Transfer-Encoding: base64\n\
\n\
AAECAw==\n\
--XYZ--\n\
\n",
    );
    // 4. broken headers: no Message-ID, garbage date, no From; raw 8-bit
    m.extend_from_slice(
        b"From ??? Mon Jan  1 13:00:00 2024\n\
Subject: broken \xe9 header\n\
Date: not a date\n\
X-Garbage\n\
\n\
body of a broken message\n\
>From the start, this was escaped.\n\
>>From deeper.\n\
\n",
    );
    // 5. a duplicate of message 1 (same Message-ID, different bytes)
    m.extend_from_slice(
        b"From alice@example.org Mon Jan  1 10:05:00 2024\n\
Message-ID: <root@example.org>\n\
From: Alice Example <alice@example.org>\n\
Date: Mon, 1 Jan 2024 10:05:00 +0000\n\
Subject: [boost] Proposal (resent)\n\
\n\
Hello again.\n",
    );
    m
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

async fn mime_and_charsets(kind: Kind) {
    let env = Env::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "boost.mbox", &fixture_mbox());
    let f = file.to_str().unwrap();
    let r = env.run(&["--mbox", f]).await;
    assert_eq!(r.count("messages"), 5);
    assert_eq!(r.count("inserted"), 4);
    assert_eq!(r.count("duplicates"), 1);
    assert_eq!(r.count("malformed"), 1);
    assert_eq!(r.count("no_date"), 0, "the From_ line date is the fallback");

    let s = list_summary(&env.storage, "boost").await.unwrap();
    assert_eq!(s.messages, 4);
    assert_eq!(s.malformed, 1);
    assert_eq!(s.threads, 2, "the thread of root + the broken one");
    assert_eq!(s.links, 1 + 2);

    let root = get_message(&env.storage, "boost", "root@example.org")
        .await
        .unwrap()
        .unwrap();
    // The copy with the smaller content hash wins, whatever the order.
    assert!(
        root.subject
            .as_deref()
            .unwrap()
            .starts_with("[boost] Proposal")
    );
    let r1 = get_message(&env.storage, "boost", "r1@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r1.body_text.trim(), "Grüße aus Köln");
    assert_eq!(r1.parent_id.as_deref(), Some("root@example.org"));
    assert_eq!(r1.thread_root, "root@example.org");
    let r2 = get_message(&env.storage, "boost", "r2@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r2.body_text.trim(), "Привет");
    assert_eq!(r2.parent_id.as_deref(), Some("r1@example.org"));
    assert_eq!(r2.thread_root, "root@example.org");
    assert_eq!(env.activity().await, 4);

    // The escaped body lines were unescaped once.
    let text: String = bdc_storage::on_pool!(env.storage, p => sqlx::query_scalar(
        "SELECT body_text FROM ml_messages WHERE body_text LIKE '%escaped%'"
    ).fetch_one(p).await.unwrap());
    assert!(
        text.contains("\nFrom the start, this was escaped."),
        "{text:?}"
    );
    assert!(text.contains("\n>From deeper."), "{text:?}");
    let broken: (String, Option<String>) = bdc_storage::on_pool!(env.storage, p => sqlx::query_as(
        "SELECT message_id, malformed FROM ml_messages WHERE id_synthesized"
    ).fetch_one(p).await.unwrap());
    assert!(broken.0.ends_with("@bdc.invalid"));
    assert!(broken.1.unwrap().contains("no_message_id"));

    // Steady state: unchanged file is not even read; checkpoint unchanged.
    let before = env.checkpoint_updates().await;
    let fp = env.fingerprint().await;
    let r = env.run(&["--mbox", f]).await;
    assert_eq!((r.count("files_unchanged"), r.count("messages")), (1, 0));
    assert_eq!(env.checkpoint_updates().await, before);
    // --full re-reads and writes nothing.
    let r = env.run(&["--mbox", f, "--full"]).await;
    assert_eq!(r.count("messages"), 5);
    assert_eq!((r.count("inserted"), r.count("updated")), (0, 0));
    assert_eq!(env.fingerprint().await, fp);
    let revs: i64 = bdc_storage::on_pool!(env.storage, p => sqlx::query_scalar(
        "SELECT MAX(revision) FROM ml_messages"
    ).fetch_one(p).await.unwrap());
    assert_eq!(revs, 1);
}
both!(mime_and_charsets);

/// `n` messages in threads of 10, some with `From ` in bodies.
fn generated(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 400);
    for i in 0..n {
        let day = 1 + (i / 1000) % 28;
        writeln!(
            out,
            "From user{}@example.org Mon Jan {day:>2} 10:00:00 2024",
            i % 50
        )
        .unwrap();
        writeln!(out, "Message-ID: <m{i}@gen.example>").unwrap();
        writeln!(out, "From: User {} <user{}@example.org>", i % 50, i % 50).unwrap();
        writeln!(
            out,
            "Date: Mon, {day} Jan 2024 10:{:02}:{:02} +0000",
            (i / 60) % 60,
            i % 60
        )
        .unwrap();
        let root = i - i % 10;
        if i % 10 == 0 {
            writeln!(out, "Subject: topic {i}").unwrap();
        } else {
            writeln!(out, "Subject: Re: topic {root}").unwrap();
            writeln!(out, "In-Reply-To: <m{}@gen.example>", i - 1).unwrap();
            writeln!(
                out,
                "References: <m{root}@gen.example> <m{}@gen.example>",
                i - 1
            )
            .unwrap();
        }
        writeln!(out).unwrap();
        writeln!(out, "Message body {i}.").unwrap();
        writeln!(out, ">From a quoted line").unwrap();
        writeln!(out).unwrap();
    }
    out
}

async fn ten_thousand(kind: Kind) {
    let env = Env::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "gen.mbox", &generated(10_000));
    let f = file.to_str().unwrap();
    let r = env.run(&["--mbox", f, "--list", "gen"]).await;
    assert_eq!(r.count("messages"), 10_000);
    assert_eq!(r.count("inserted"), 10_000);
    assert_eq!(r.count("malformed"), 0);
    let s = list_summary(&env.storage, "gen").await.unwrap();
    assert_eq!((s.messages, s.threads), (10_000, 1_000));
    assert_eq!(env.activity().await, 10_000);
    let r = env.run(&["--mbox", f, "--list", "gen", "--full"]).await;
    assert_eq!((r.count("inserted"), r.count("unchanged")), (0, 10_000));
}
both!(ten_thousand);

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A crash mid-stream (a truncated .gz after several stored batches) then a
/// resume with the fixed file ends with exactly the rows of a clean run.
async fn resume_after_failure(kind: Kind) {
    let data = generated(3_500);
    let good = gz(&data);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gen.mbox.gz");
    let f = file.to_str().unwrap();

    let clean = Env::new(kind).await;
    std::fs::write(&file, &good).unwrap();
    clean.run(&["--mbox", f]).await;
    let expected = clean.fingerprint().await;
    assert_eq!(expected.0.len(), 3_500);

    let env = Env::new(kind).await;
    std::fs::write(&file, &good[..good.len() * 2 / 3]).unwrap();
    let err = MailingListCollector
        .run(&env.ctx(&["--mbox", f]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("gen.mbox.gz"), "{err}");
    let partial = env.fingerprint().await;
    assert!(
        !partial.0.is_empty() && partial.0.len() < 3_500,
        "{}",
        partial.0.len()
    );
    assert!(
        env.checkpoint_updates().await.is_empty(),
        "no checkpoint for a failed file"
    );

    std::fs::write(&file, &good).unwrap();
    env.run(&["--mbox", f]).await;
    assert_eq!(env.fingerprint().await, expected);
}
both!(resume_after_failure);

async fn hyperkitty(kind: Kind) {
    let env = Env::new(kind).await;
    let server = MockServer::start().await;
    let list = "boost@lists.example.org";
    let jan = gz(&fixture_mbox());
    let feb = gz(&generated(30));
    for (month, start, end, body, etag) in [
        (
            "2024-01",
            "2024-01-01",
            "2024-02-01",
            jan.clone(),
            "\"jan\"",
        ),
        (
            "2024-02",
            "2024-02-01",
            "2024-03-01",
            feb.clone(),
            "\"feb\"",
        ),
    ] {
        let p = format!("/archives/list/{list}/export/{list}-{month}.mbox.gz");
        Mock::given(method("GET"))
            .and(path(p.clone()))
            .and(header("if-none-match", etag))
            .respond_with(ResponseTemplate::new(304))
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(p))
            .and(query_param("start", start))
            .and(query_param("end", end))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("etag", etag)
                    .insert_header("content-type", "application/gzip")
                    .set_body_bytes(body),
            )
            .with_priority(2)
            .mount(&server)
            .await;
    }
    let base = format!("{}/archives", server.uri());
    let args = [
        "--list",
        list,
        "--archive-url",
        &base,
        "--since",
        "2024-01",
        "--until",
        "2024-02",
    ];
    let r = env.run(&args).await;
    assert_eq!(r.count("months"), 2);
    assert_eq!(r.count("messages"), 35);
    assert_eq!(r.count("inserted"), 34);
    let fp = env.fingerprint().await;
    let cps = env.checkpoint_updates().await;
    assert!(
        cps.iter()
            .any(|(s, t)| s == &format!("hyperkitty:{list}") && t == "2024-02")
    );

    // Re-run: both months answer 304 to the stored ETags; nothing moves.
    let r = env.run(&args).await;
    assert_eq!(r.count("months_not_modified"), 2);
    assert_eq!(r.count("messages"), 0);
    assert_eq!(env.checkpoint_updates().await, cps);
    assert_eq!(env.fingerprint().await, fp);

    // Without --since the run starts at the newest month seen.
    let r = env
        .run(&["--list", list, "--archive-url", &base, "--until", "2024-02"])
        .await;
    assert_eq!((r.count("months"), r.count("months_not_modified")), (1, 1));

    // Replay from the raw archive: no network, same rows.
    server.reset().await;
    let r = env
        .run(&[&args[..], &["--from-archive", "--full"]].concat())
        .await;
    assert_eq!(r.count("messages"), 35);
    assert_eq!((r.count("inserted"), r.count("updated")), (0, 0));
    assert_eq!(env.fingerprint().await, fp);
    assert!(env.workspace.path().join("raw/mailing-list").exists());

    // A server error is a failed run, classified, with nothing half-written.
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let err = MailingListCollector
        .run(&env.ctx(&[&args[..], &["--full"]].concat()))
        .await
        .unwrap_err();
    assert_eq!(err.category, bdc_core::FailureCategory::Network, "{err}");
    assert_eq!(env.fingerprint().await, fp);
}
both!(hyperkitty);

#[tokio::test]
async fn bad_arguments_are_config_errors() {
    let env = Env::new(Kind::Sqlite).await;
    for args in [
        vec!["--mbox", "x.mbox", "--from-archive"],
        vec!["--pipermail-url", "ftp://x.example/Archives/boost/"],
        vec!["--archive-url", "https://x.example/archives"],
        vec!["--list", "l", "--archive-url", "ftp://x"],
        vec![
            "--list",
            "l",
            "--archive-url",
            "https://x.example",
            "--since",
            "2024-13",
        ],
    ] {
        let err = MailingListCollector.run(&env.ctx(&args)).await.unwrap_err();
        assert_eq!(
            err.category,
            bdc_core::FailureCategory::Config,
            "{args:?}: {err}"
        );
    }
    let err = MailingListCollector
        .run(&env.ctx(&["--mbox", "/nonexistent/x.mbox"]))
        .await
        .unwrap_err();
    assert_eq!(err.category, bdc_core::FailureCategory::NotFound, "{err}");
}

/// February fails with a 500 on the first run (January is stored with its
/// checkpoint); the next run resumes and ends with the rows of a clean run.
async fn hyperkitty_resume(kind: Kind) {
    let list = "dev@lists.example.org";
    let months = [
        ("2024-01", gz(&fixture_mbox())),
        ("2024-02", gz(&generated(1_500))),
    ];
    async fn serve(server: &MockServer, list: &str, months: &[(&str, Vec<u8>)], fail_feb: bool) {
        for (month, body) in months {
            let p = format!("/hk/list/{list}/export/{list}-{month}.mbox.gz");
            if fail_feb && *month == "2024-02" {
                // Fails every attempt of the first run (retries included).
                Mock::given(method("GET"))
                    .and(path(p.clone()))
                    .respond_with(ResponseTemplate::new(500))
                    .up_to_n_times(bdc_collector_mailing_list::hyperkitty::ATTEMPTS as u64)
                    .with_priority(1)
                    .mount(server)
                    .await;
            }
            Mock::given(method("GET"))
                .and(path(p))
                .respond_with(ResponseTemplate::new(200).set_body_bytes(body.clone()))
                .with_priority(2)
                .mount(server)
                .await;
        }
    }
    let clean_server = MockServer::start().await;
    serve(&clean_server, list, &months, false).await;
    let clean = Env::new(kind).await;
    let base = format!("{}/hk", clean_server.uri());
    let args = [
        "--list",
        list,
        "--archive-url",
        &base,
        "--since",
        "2024-01",
        "--until",
        "2024-02",
    ];
    clean.run(&args).await;
    let expected = clean.fingerprint().await;

    let server = MockServer::start().await;
    serve(&server, list, &months, true).await;
    let env = Env::new(kind).await;
    let base = format!("{}/hk", server.uri());
    let args = [
        "--list",
        list,
        "--archive-url",
        &base,
        "--since",
        "2024-01",
        "--until",
        "2024-02",
    ];
    let err = MailingListCollector.run(&env.ctx(&args)).await.unwrap_err();
    assert_eq!(err.category, bdc_core::FailureCategory::Network, "{err}");
    let scopes: Vec<String> = env
        .checkpoint_updates()
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(scopes, vec![format!("hyperkitty:{list}:2024-01")]);
    let r = env.run(&args).await;
    assert_eq!(
        r.count("months_unchanged"),
        1,
        "January's body did not change"
    );
    assert_eq!(r.count("messages"), 1_500);
    assert_eq!(env.fingerprint().await, expected);
}
both!(hyperkitty_resume);

/// A transient server error (500, then 503 with Retry-After) is retried
/// within the run, which then succeeds with every message.
async fn hyperkitty_retries_transient_errors(kind: Kind) {
    let list = "dev@lists.example.org";
    let server = MockServer::start().await;
    let p = format!("/hk/list/{list}/export/{list}-2024-01.mbox.gz");
    Mock::given(method("GET"))
        .and(path(p.clone()))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p.clone()))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(gz(&fixture_mbox())))
        .with_priority(3)
        .mount(&server)
        .await;
    let env = Env::new(kind).await;
    let base = format!("{}/hk", server.uri());
    let args = [
        "--list",
        list,
        "--archive-url",
        &base,
        "--since",
        "2024-01",
        "--until",
        "2024-01",
    ];
    let r = env.run(&args).await;
    assert!(r.count("messages") > 0);
    let requests = server.received_requests().await.unwrap_or_default();
    assert_eq!(requests.len(), 3, "500, 503, then 200");
}
both!(hyperkitty_retries_transient_errors);
