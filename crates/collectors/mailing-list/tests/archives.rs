//! Real-archive defects, on generated files, on SQLite and PostgreSQL:
//! pipermail-obfuscated addresses, legacy 8-bit charsets (declared,
//! another part's, undeclared, unknown), exact malformed counts with and
//! without trailing blank lines, and pipermail monthly archives served by
//! wiremock.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bdc_collector::{CollectContext, Collector};
use bdc_collector_mailing_list::store::get_message;
use bdc_collector_mailing_list::{MailingListCollector, NAME, SCHEMA};
use bdc_config::Config;
use bdc_core::TrackerResult;
use bdc_storage::activity::ActivityFilter;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb, both_backends as both};

struct Env {
    _db: TestDb,
    storage: Storage,
    _workspace: tempfile::TempDir,
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
            _workspace: workspace,
            config: Arc::new(config),
        }
    }

    async fn run(&self, args: &[&str]) -> TrackerResult {
        let ctx = CollectContext {
            run_id: uuid_like(),
            command: NAME.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            schedule_group: None,
            storage: self.storage.clone(),
            config: Arc::clone(&self.config),
            interactive: false,
        };
        match MailingListCollector.run(&ctx).await {
            Ok(r) => r,
            Err(e) => panic!("run {args:?} failed: {e}"),
        }
    }

    async fn payload(&self, actor: &str) -> serde_json::Value {
        let rows = self
            .storage
            .activity()
            .list(&ActivityFilter {
                source_system: Some("mailing-list".into()),
                actor: Some(actor.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{actor}");
        rows[0].record.payload().clone()
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("archives-{}", N.fetch_add(1, Ordering::Relaxed))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

async fn obfuscated_addresses(kind: Kind) {
    let env = Env::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let mbox = "From goran at domain.com  Mon Jan  1 10:00:00 2024\n\
From: goran at domain.com (Goran Lastname)\n\
Reply-To: list at lists dot boost dot org\n\
Cc: a at b.com, c at d dot net\n\
Date: Mon, 1 Jan 2024 10:00:00 +0000\n\
Subject: [boost] pipermail\n\
Message-ID: <p1@domain.com>\n\
\n\
body\n\
\n\
From jane at example dot org  Mon Jan  1 11:00:00 2024\n\
From: jane at example dot org (Jane)\n\
Date: Mon, 1 Jan 2024 11:00:00 +0000\n\
Subject: Re: [boost] pipermail\n\
Message-ID: <p2@example.org>\n\
In-Reply-To: <p1@domain.com>\n\
\n\
reply\n";
    let f = write(dir.path(), "boost.txt", mbox.as_bytes());
    let r = env.run(&["--mbox", f.to_str().unwrap()]).await;
    assert_eq!((r.count("messages"), r.count("malformed")), (2, 0));
    let m = get_message(&env.storage, "boost", "p1@domain.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.from_email.as_deref(), Some("goran@domain.com"));
    assert_eq!(m.malformed, None);
    let p = env.payload("goran@domain.com").await;
    assert_eq!(p["from_name"], "Goran Lastname");
    assert_eq!(p["reply_to"], serde_json::json!(["list@lists.boost.org"]));
    assert_eq!(p["cc"], serde_json::json!(["a@b.com", "c@d.net"]));
    assert_eq!(p["from_deobfuscated"], true);
    let p = env.payload("jane@example.org").await;
    assert_eq!(p["from_name"], "Jane");
}
both!(obfuscated_addresses);

/// One message with `headers` (may hold raw 8-bit bytes) and `body`.
fn message(id: &str, headers: &[u8], body: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(b"From x@example.org Mon Jan  1 10:00:00 2024\n");
    m.extend_from_slice(
        format!("Message-ID: <{id}>\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n").as_bytes(),
    );
    m.extend_from_slice(headers);
    m.extend_from_slice(b"\n");
    m.extend_from_slice(body);
    m.extend_from_slice(b"\n\n");
    m
}

async fn legacy_charsets(kind: Kind) {
    let env = Env::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let mut mbox = Vec::new();
    // ISO-8859-1 declared: raw 8-bit header and body.
    mbox.extend(message(
        "latin1@x",
        b"From: Luc\xeda <lucia@x.org>\nSubject: Se\xf1or\nContent-Type: text/plain; charset=ISO-8859-1\nContent-Transfer-Encoding: 8bit\n",
        b"Luc\xeda escribe",
    ));
    // windows-1252, undeclared: curly quotes 0x93/0x94, euro 0x80.
    mbox.extend(message(
        "cp1252@x",
        b"From: Bob <bob@x.org>\nSubject: \x93quoted\x94\n",
        b"costs 5 \x80 \x93really\x94",
    ));
    // KOI8-R declared.
    mbox.extend(message(
        "koi8@x",
        b"From: \xf0\xd2\xc9\xd7\xc5\xd4 <ivan@x.org>\nSubject: koi8\nContent-Type: text/plain; charset=koi8-r\n",
        b"\xf0\xd2\xc9\xd7\xc5\xd4",
    ));
    // An unknown charset: windows-1252 as the last resort.
    mbox.extend(message(
        "unknown@x",
        b"From: Ren\xe9 <rene@x.org>\nSubject: unknown\nContent-Type: text/plain; charset=x-no-such-charset\n",
        b"d\xe9j\xe0 vu",
    ));
    // Multipart: 8-bit headers with no top-level charset, a part declares KOI8-R.
    mbox.extend(message(
        "multi@x",
        b"From: \xf0\xd2\xc9\xd7\xc5\xd4 <olga@x.org>\nSubject: multi\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"BB\"\n",
        b"--BB\nContent-Type: text/plain; charset=koi8-r\nContent-Transfer-Encoding: 8bit\n\n\xf0\xd2\xc9\xd7\xc5\xd4\n--BB--",
    ));
    let f = write(dir.path(), "legacy.mbox", &mbox);
    let r = env.run(&["--mbox", f.to_str().unwrap()]).await;
    assert_eq!((r.count("messages"), r.count("malformed")), (5, 0));

    let get = |id: &'static str| {
        let storage = env.storage.clone();
        async move { get_message(&storage, "legacy", id).await.unwrap().unwrap() }
    };
    let m = get("latin1@x").await;
    assert_eq!(m.subject.as_deref(), Some("Señor"));
    assert_eq!(m.body_text.trim(), "Lucía escribe");
    let p = env.payload("lucia@x.org").await;
    assert_eq!(p["from_name"], "Lucía");
    assert_eq!(
        p["charset_fallback"],
        serde_json::json!(["headers=windows-1252 (declared)"])
    );

    let m = get("cp1252@x").await;
    assert_eq!(m.subject.as_deref(), Some("\u{201c}quoted\u{201d}"));
    assert_eq!(m.body_text.trim(), "costs 5 € \u{201c}really\u{201d}");
    let p = env.payload("bob@x.org").await;
    assert_eq!(
        p["charset_fallback"],
        serde_json::json!([
            "headers=windows-1252 (last_resort)",
            "body=windows-1252 (last_resort)"
        ])
    );

    let m = get("koi8@x").await;
    assert_eq!(m.body_text.trim(), "Привет");
    assert_eq!(env.payload("ivan@x.org").await["from_name"], "Привет");

    let m = get("unknown@x").await;
    assert_eq!(m.body_text.trim(), "déjà vu");
    let p = env.payload("rene@x.org").await;
    assert_eq!(p["from_name"], "René");
    assert_eq!(
        p["charset_fallback"],
        serde_json::json!([
            "headers=windows-1252 (last_resort)",
            "body=windows-1252 (last_resort)"
        ])
    );

    let m = get("multi@x").await;
    assert_eq!(m.body_text.trim(), "Привет");
    let p = env.payload("olga@x.org").await;
    assert_eq!(p["from_name"], "Привет");
    assert_eq!(
        p["charset_fallback"],
        serde_json::json!(["headers=KOI8-R (other_part)"])
    );
    // No U+FFFD anywhere.
    let bad: i64 = bdc_storage::on_pool!(env.storage, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM ml_messages WHERE body_text LIKE '%\u{FFFD}%' OR subject LIKE '%\u{FFFD}%' OR from_name LIKE '%\u{FFFD}%'"
    ).fetch_one(p).await.unwrap());
    assert_eq!(bad, 0);
}
both!(legacy_charsets);

/// Multipart messages whose text parts declare no (or an unknown) charset:
/// each part is decoded by the same chain as a single-part body.
async fn multipart_parts_without_charset(kind: Kind) {
    let env = Env::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let mut mbox = Vec::new();
    // Part 1 undeclared, part 2 declares ISO-8859-15: part 1 by the other part's.
    mbox.extend(message(
        "other-part@x",
        b"From: Ana <ana@x.org>\nSubject: parts\nMIME-Version: 1.0\nContent-Type: multipart/mixed;\n\tboundary=\"=_Part_1\"\n",
        b"preamble\n--=_Part_1\nContent-Type: text/plain\nContent-Transfer-Encoding: 8bit\n\nS\xe9bastien \xa4\n--=_Part_1\nContent-Type: text/plain; charset=iso-8859-15\n\n\xa4uro\n--=_Part_1--\nepilogue",
    ));
    // No part declares a known charset: windows-1252 as the last resort,
    // for a part with no headers at all and one with an unknown charset;
    // a binary attachment is left alone.
    mbox.extend(message(
        "last-resort@x",
        b"From: Cleo <cleo@x.org>\nSubject: parts\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n",
        b"--XX\n\n\x93first\x94 caf\xe9\n--XX\nContent-Type: text/plain; charset=x-unknown\n\nna\xefve\n--XX\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=b.bin\n\n\xff\xfe\x00\x01\n--XX--",
    ));
    let f = write(dir.path(), "multipart.mbox", &mbox);
    let r = env.run(&["--mbox", f.to_str().unwrap()]).await;
    assert_eq!((r.count("messages"), r.count("malformed")), (2, 0));

    let m = get_message(&env.storage, "multipart", "other-part@x")
        .await
        .unwrap()
        .unwrap();
    assert!(m.body_text.contains("Sébastien €"), "{}", m.body_text);
    assert_eq!(
        env.payload("ana@x.org").await["charset_fallback"],
        serde_json::json!(["part1=ISO-8859-15 (other_part)"])
    );

    let m = get_message(&env.storage, "multipart", "last-resort@x")
        .await
        .unwrap()
        .unwrap();
    assert!(
        m.body_text.contains("\u{201c}first\u{201d} café"),
        "{}",
        m.body_text
    );
    let p = env.payload("cleo@x.org").await;
    assert_eq!(p["attachments"], 1);
    assert_eq!(
        p["charset_fallback"],
        serde_json::json!([
            "part1=windows-1252 (last_resort)",
            "part2=windows-1252 (last_resort)"
        ])
    );
    // No U+FFFD in what was stored.
    let bad: i64 = bdc_storage::on_pool!(env.storage, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM ml_messages WHERE body_text LIKE '%\u{FFFD}%'"
    ).fetch_one(p).await.unwrap());
    assert_eq!(bad, 0);
}
both!(multipart_parts_without_charset);

async fn exact_counts_with_and_without_trailing_blank_lines(kind: Kind) {
    let env = Env::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let one = "From a@x Mon Jan  1 00:00:00 2024\nMessage-ID: <one@x>\nFrom: A <a@x.org>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: hi\n\nbody";
    let three = format!(
        "{one}\n\nFrom b@x Mon Jan  1 00:00:00 2024\nMessage-ID: <two@x>\nFrom: B <b@x.org>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nb\n\nFrom c@x Mon Jan  1 00:00:00 2024\nMessage-ID: <three@x>\nFrom: C <c@x.org>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nc"
    );
    for (i, (text, n)) in [
        (one.to_owned(), 1),
        (format!("{one}\n"), 1),
        (format!("{one}\n\n"), 1),
        (format!("{one}\n\n\n\n"), 1),
        (format!("{one}\r\n\r\n"), 1),
        (three.clone(), 3),
        (format!("{three}\n\n\n"), 3),
        (format!("\n\n{three}\n"), 3),
    ]
    .into_iter()
    .enumerate()
    {
        let f = write(dir.path(), &format!("l{i}.mbox"), text.as_bytes());
        let r = env.run(&["--mbox", f.to_str().unwrap()]).await;
        assert_eq!(
            (
                r.count("messages"),
                r.count("malformed"),
                r.count("inserted")
            ),
            (n, 0, n),
            "case {i}: {text:?}"
        );
    }
}
both!(exact_counts_with_and_without_trailing_blank_lines);

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn pipermail_month(month: &str, n: usize) -> Vec<u8> {
    let mut out = String::new();
    for i in 0..n {
        out.push_str(&format!(
            "From user{i} at example.com  Mon Jan  1 10:00:00 2004\nFrom: user{i} at example dot com (User {i})\nDate: Mon, 1 Jan 2004 10:00:00 +0000\nSubject: [boost] {month} #{i}\nMessage-ID: <{month}-{i}@example.com>\n\nbody {i}\n\n"
        ));
    }
    out.into_bytes()
}

async fn pipermail_index(kind: Kind) {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let env = Env::new(kind).await;
    let server = MockServer::start().await;
    let index = r#"<html><body><table>
<tr><td>January 2004:</td><td><a href="2004-January/thread.html">[ Thread ]</a>
<a href="2004-January.txt.gz">[ Gzip'd Text 1 KB ]</a></td></tr>
<tr><td>February 2004:</td><td><a href="2004-February.txt">[ Text 1 KB ]</a></td></tr>
</table></body></html>"#;
    Mock::given(method("GET"))
        .and(path("/Archives/boost/"))
        .respond_with(ResponseTemplate::new(200).set_body_string(index))
        .mount(&server)
        .await;
    let jan = gz(&pipermail_month("2004-01", 3));
    let feb = pipermail_month("2004-02", 2);
    for (p, body, etag) in [
        ("/Archives/boost/2004-January.txt.gz", jan, "\"jan\""),
        ("/Archives/boost/2004-February.txt", feb, "\"feb\""),
    ] {
        Mock::given(method("GET"))
            .and(path(p))
            .and(header("if-none-match", etag))
            .respond_with(ResponseTemplate::new(304))
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("etag", etag)
                    .set_body_bytes(body),
            )
            .with_priority(2)
            .mount(&server)
            .await;
    }
    let root = format!("{}/Archives/boost/", server.uri());
    let r = env.run(&["--pipermail-url", &root]).await;
    assert_eq!(
        (
            r.count("months"),
            r.count("messages"),
            r.count("inserted"),
            r.count("malformed")
        ),
        (2, 5, 5, 0)
    );
    let m = get_message(&env.storage, "boost", "2004-01-2@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.from_email.as_deref(), Some("user2@example.com"));
    // Incremental per month: conditional requests, 304 writes nothing.
    let r = env.run(&["--pipermail-url", &root]).await;
    assert_eq!(
        (
            r.count("months"),
            r.count("months_not_modified"),
            r.count("messages")
        ),
        (2, 2, 0)
    );
    // --since limits the months; --from-archive re-reads without the network.
    let r = env
        .run(&["--pipermail-url", &root, "--since", "2004-02", "--full"])
        .await;
    assert_eq!(
        (r.count("months"), r.count("messages"), r.count("inserted")),
        (1, 2, 0)
    );
    drop(server);
    let r = env
        .run(&["--pipermail-url", &root, "--from-archive", "--full"])
        .await;
    assert_eq!(
        (r.count("months"), r.count("messages"), r.count("inserted")),
        (2, 5, 0)
    );
}
both!(pipermail_index);

/// With no arguments the collector does what the original's command does:
/// the three Boost lists from the list server's HyperKitty (here a local
/// stand-in through BDC_MAILING_LIST_ARCHIVE_URL).
async fn no_arguments_collect_the_boost_lists(kind: Kind) {
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let mut env = Env::new(kind).await;
    let ws = env._workspace.path().display().to_string();
    let base = format!("{}/archives", server.uri());
    env.config = Arc::new(
        Config::from_lookup(|k| match k {
            "WORKSPACE_DIR" => Some(ws.clone()),
            "BDC_MAILING_LIST_ARCHIVE_URL" => Some(base.clone()),
            _ => None,
        })
        .unwrap(),
    );
    for list in bdc_collector_mailing_list::DEFAULT_LISTS {
        let body = format!(
            "From a@x Mon Jan  1 00:00:00 2024\nMessage-ID: <{list}-1@x>\nFrom: A <a@x.org>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: hello {list}\n\nbody\n"
        );
        Mock::given(method("GET"))
            .and(path_regex(format!(
                "^/archives/list/{}/export/.*\\.mbox\\.gz$",
                regex_escape(list)
            )))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(gz(body.as_bytes())))
            .expect(1)
            .mount(&server)
            .await;
    }
    let r = env.run(&[]).await;
    assert_eq!((r.count("months"), r.count("inserted")), (3, 3));
    for list in bdc_collector_mailing_list::DEFAULT_LISTS {
        assert!(
            get_message(&env.storage, list, &format!("{list}-1@x"))
                .await
                .unwrap()
                .is_some(),
            "{list}"
        );
    }
}
both!(no_arguments_collect_the_boost_lists);

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '@' || c == '-' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}
