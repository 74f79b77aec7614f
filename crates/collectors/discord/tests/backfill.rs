//! End-to-end tests of `discord-backfill` on SQLite and PostgreSQL with
//! generated DiscordChatExporter files: batches, re-runs, edits, a cut
//! file, a non-export, a malformed message, dry runs, resume after a crash.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bdc_collector::{CollectContext, Collector};
use bdc_collector_discord::export::{DcMessage, ExportMessage};
use bdc_collector_discord::store::{self, message_texts, profiles};
use bdc_collector_discord::{DiscordBackfillCollector, SCHEMA};
use bdc_config::Config;
use bdc_core::TrackerResult;
use bdc_storage::activity::ActivityFilter;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};
use serde_json::{Value, json};

use bdc_testsupport::both_backends as both;

struct Env {
    _db: TestDb,
    storage: Storage,
    workspace: tempfile::TempDir,
    config: Arc<Config>,
}

impl Env {
    async fn new(kind: Kind) -> Env {
        let workspace = tempfile::tempdir().unwrap();
        let db = TestDb::new(kind).await;
        let storage = Storage::connect(db.url(), &ConnectOptions::default())
            .await
            .unwrap();
        storage.migrate_parts(&[&SCHEMA]).await.unwrap();
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
            command: "discord-backfill".into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            schedule_group: None,
            storage: self.storage.clone(),
            config: Arc::clone(&self.config),
            interactive: false,
        }
    }

    async fn run(&self, args: &[&str]) -> TrackerResult {
        match DiscordBackfillCollector.run(&self.ctx(args)).await {
            Ok(r) => r,
            Err(e) => panic!("run {args:?} failed: {e}"),
        }
    }

    fn dir(&self) -> PathBuf {
        let d = self.workspace.path().join("discord").join("exports");
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    async fn activity(&self) -> u64 {
        self.storage
            .activity()
            .count(&ActivityFilter {
                source_system: Some("discord".into()),
                ..Default::default()
            })
            .await
            .unwrap()
    }

    async fn fingerprint(&self) -> (Vec<(String, String, String)>, u64, usize) {
        let rows: Vec<(String, String, String)> = bdc_storage::on_pool!(self.storage, p => sqlx::query_as(
            "SELECT id, channel_id, content_hash FROM dc_messages ORDER BY id"
        ).fetch_all(p).await.unwrap());
        (
            rows,
            self.activity().await,
            profiles(&self.storage).await.unwrap().len(),
        )
    }
}

fn c(r: &TrackerResult, k: &str) -> u64 {
    r.counts().get(k).copied().unwrap_or(0)
}

fn message(id: u64, author: u64, content: &str, edited: Option<&str>) -> Value {
    json!({
        "id": id.to_string(),
        "type": "Default",
        "timestamp": format!("2024-03-{:02}T10:{:02}:00+00:00", 1 + (id % 28), id % 60),
        "timestampEdited": edited,
        "isPinned": false,
        "content": content,
        "author": {"id": author.to_string(), "name": format!("user{author}"),
                   "discriminator": "0000", "nickname": format!("User {author}"), "isBot": false,
                   "avatarUrl": null},
        "attachments": [{"id": "9", "url": "https://cdn.example/a.png", "fileName": "a.png", "fileSizeBytes": 12}],
        "reactions": [{"emoji": {"id": null, "name": "👍"}, "count": 1}],
        "mentions": [],
        "reference": if id > 1000 { json!({"messageId": "1000", "channelId": "20", "guildId": "1"}) } else { Value::Null },
    })
}

fn export(channel: &str, messages: Vec<Value>) -> String {
    let n = messages.len();
    serde_json::to_string_pretty(&json!({
        "guild": {"id": "1", "name": "C++ Alliance", "iconUrl": null},
        "channel": {"id": channel, "type": "GuildTextChat", "categoryId": "3", "category": "Text",
                    "name": format!("chan-{channel}"), "topic": null},
        "dateRange": {"after": null, "before": null},
        "exportedAt": "2024-04-01T00:00:00+00:00",
        "messages": messages,
        "messageCount": n,
    }))
    .unwrap()
}

fn big(channel: &str, from: u64, n: u64) -> String {
    export(
        channel,
        (from..from + n)
            .map(|i| message(i, 100 + i % 7, &format!("message {i}"), None))
            .collect(),
    )
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

async fn imports_once_and_counts_bad_input(kind: Kind) {
    let env = Env::new(kind).await;
    let dir = env.dir();
    write(&dir, "a.json", &big("20", 1000, 4500));
    // one malformed message (id not a snowflake) among good ones
    let mut msgs = vec![message(9001, 5, "ok", None)];
    let mut bad = message(9002, 5, "bad", None);
    bad["id"] = json!("x-9002");
    msgs.push(bad);
    msgs.push(json!({"id": "9003", "author": {"id": "5", "name": "u"}}));
    msgs.push(message(9004, 5, "ok too", None));
    write(&dir, "b.json", &export("21", msgs));
    // a cut file: the first 3 messages complete, then the cut
    let full = big("22", 20_000, 10);
    let at = full.find("\"20003\"").unwrap();
    write(&dir, "c.json", &full[..at + 30]);
    write(&dir, "notes.json", "{\"hello\": [1, 2");

    let dry = env.run(&["--dry-run"]).await;
    assert_eq!(c(&dry, "would_import"), 4);
    assert_eq!(env.fingerprint().await.0.len(), 0);

    let r = env.run(&[]).await;
    assert_eq!(c(&r, "files"), 4);
    assert_eq!(c(&r, "files_imported"), 2);
    assert_eq!(c(&r, "files_cut"), 1);
    assert_eq!(c(&r, "files_invalid"), 1);
    assert_eq!(c(&r, "malformed"), 2);
    assert_eq!(c(&r, "inserted"), 4500 + 2 + 3);
    assert_eq!(env.activity().await, 4505);
    let (rows, _, users) = env.fingerprint().await;
    assert_eq!(rows.len(), 4505);
    assert_eq!(users, 8);

    let again = env.run(&[]).await;
    assert_eq!(c(&again, "files_already_imported"), 4);
    assert_eq!(c(&again, "messages"), 0);
    let dry = env.run(&["--dry-run"]).await;
    assert_eq!(c(&dry, "would_import"), 0);

    // the same bytes under another name are not imported again
    std::fs::copy(dir.join("a.json"), dir.join("a-copy.json")).unwrap();
    let r = env
        .run(&["--path", dir.join("a-copy.json").to_str().unwrap()])
        .await;
    assert_eq!(c(&r, "files_already_imported"), 1);

    let texts = message_texts(&env.storage, None, 3).await.unwrap();
    assert_eq!(texts[0].id, "1000");
    assert_eq!(texts[0].author_name.as_deref(), Some("user106"));
    assert_eq!(texts[0].channel_name.as_deref(), Some("chan-20"));
    let next = message_texts(&env.storage, Some(&texts[2].id), 10_000)
        .await
        .unwrap();
    assert_eq!(next.len(), 4505 - 3);
    let reply: Option<String> = bdc_storage::on_pool!(env.storage, p => sqlx::query_scalar(
        "SELECT reply_to_id FROM dc_messages WHERE id = '1001'"
    ).fetch_one(p).await.unwrap());
    assert_eq!(reply.as_deref(), Some("1000"));
}
both!(imports_once_and_counts_bad_input);

async fn edits_update_and_old_exports_do_not_undo(kind: Kind) {
    let env = Env::new(kind).await;
    let dir = env.dir();
    write(
        &dir,
        "1.json",
        &export("30", vec![message(500, 1, "first", None)]),
    );
    env.run(&[]).await;
    write(
        &dir,
        "2.json",
        &export(
            "30",
            vec![message(
                500,
                1,
                "first (edited)",
                Some("2024-05-01T00:00:00+00:00"),
            )],
        ),
    );
    let r = env.run(&[]).await;
    assert_eq!(c(&r, "updated"), 1);
    // an older export under new bytes: not applied
    write(
        &dir,
        "3.json",
        &export("30", vec![message(500, 1, "first ", None)]),
    );
    let r = env.run(&[]).await;
    assert_eq!(c(&r, "unchanged"), 1);
    let t = message_texts(&env.storage, None, 10).await.unwrap();
    assert_eq!(t[0].content, "first (edited)");
    let rev: i64 = bdc_storage::on_pool!(env.storage, p => sqlx::query_scalar(
        "SELECT revision FROM dc_messages WHERE id = '500'"
    ).fetch_one(p).await.unwrap());
    assert_eq!(rev, 2);
}
both!(edits_update_and_old_exports_do_not_undo);

async fn crash_then_rerun_equals_one_run(kind: Kind) {
    let body = big("40", 1000, 5000);
    // one uninterrupted run
    let clean = Env::new(kind).await;
    write(&clean.dir(), "x.json", &body);
    clean.run(&[]).await;
    // a run that stored the first two batches, then died before the
    // file's last batch (no file record)
    let crashed = Env::new(kind).await;
    write(&crashed.dir(), "x.json", &body);
    let v: Value = serde_json::from_str(&body).unwrap();
    let guild = serde_json::from_value(v["guild"].clone()).unwrap();
    let channel = serde_json::from_value(v["channel"].clone()).unwrap();
    let msgs: Vec<DcMessage> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .take(4000)
        .map(|m| {
            serde_json::from_value::<ExportMessage>(m.clone())
                .unwrap()
                .into_message("40")
                .unwrap()
        })
        .collect();
    for chunk in msgs.chunks(2000) {
        store::store_batch(
            &crashed.storage,
            &guild,
            &channel,
            chunk,
            "export",
            "dead",
            None,
        )
        .await
        .unwrap();
    }
    let r = crashed.run(&[]).await;
    assert_eq!(c(&r, "files_imported"), 1);
    assert_eq!(c(&r, "unchanged"), 4000);
    assert_eq!(c(&r, "inserted"), 1000);
    assert_eq!(crashed.fingerprint().await, clean.fingerprint().await);
}
both!(crash_then_rerun_equals_one_run);

#[tokio::test]
async fn bad_arguments_are_config_errors() {
    let env = Env::new(Kind::Sqlite).await;
    let err = DiscordBackfillCollector
        .run(&env.ctx(&["--nope"]))
        .await
        .unwrap_err();
    assert_eq!(err.category.as_str(), "config");
    let err = DiscordBackfillCollector
        .run(&env.ctx(&["--path", "/definitely/not/here"]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/definitely/not/here"), "{err}");
}
