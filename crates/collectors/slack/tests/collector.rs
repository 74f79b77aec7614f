//! End-to-end tests of the `slack` collector on SQLite and PostgreSQL:
//! a wiremock stand-in of the Slack Web API in its documented shapes
//! (cursor pagination, `ok: false` errors, `429` + `Retry-After`),
//! generated workspace exports (folder and zip, with bad files), edits and
//! deletions, a crash after some pages, replay, and the token kept out of
//! every record.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bdc_collector::{CollectContext, Collector, Registry, RunReport, RunRequest, Runner};
use bdc_collector_slack::{SCHEMA, SlackCollector};
use bdc_config::Config;
use bdc_core::TrackerResult;
use bdc_http::{Clock, ManualClock};
use bdc_storage::activity::ActivityFilter;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb, both_backends as both};
use chrono::DateTime;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "xoxb-test-secret-token-1234";

// --- The Slack stand-in -----------------------------------------------------

#[derive(Debug, Default)]
struct State {
    users: Vec<Value>,
    channels: Vec<Value>,
    members: BTreeMap<String, Vec<String>>,
    /// Every message of a channel (thread replies too).
    messages: BTreeMap<String, Vec<Value>>,
    /// Methods answering `429 Retry-After: 3` once.
    limit_once: HashSet<String>,
    /// (method, n): the n-th call (1-based) of `method` answers 500.
    fail: Option<(String, usize)>,
    calls: Vec<(String, HashMap<String, String>)>,
    page: usize,
}

#[derive(Clone)]
struct FakeSlack(Arc<Mutex<State>>);

fn ts_f(v: &Value) -> f64 {
    v["ts"].as_str().unwrap_or("0").parse().unwrap_or(0.0)
}

fn page_of(items: Vec<Value>, q: &HashMap<String, String>, page: usize) -> (Vec<Value>, String) {
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100)
        .min(page);
    let start = q
        .get("cursor")
        .and_then(|c| c.strip_prefix("next:"))
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    let end = (start + limit).min(items.len());
    let next = if end < items.len() {
        format!("next:{end}")
    } else {
        String::new()
    };
    (items[start.min(end)..end].to_vec(), next)
}

impl Respond for FakeSlack {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let method = req.url.path().rsplit('/').next().unwrap_or("").to_owned();
        let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
        s.calls.push((method.clone(), q.clone()));
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if auth != format!("Bearer {TOKEN}") {
            return ResponseTemplate::new(200)
                .set_body_json(json!({"ok": false, "error": "invalid_auth"}));
        }
        if s.limit_once.remove(&method) {
            return ResponseTemplate::new(429).insert_header("Retry-After", "3");
        }
        let n = s.calls.iter().filter(|(m, _)| *m == method).count();
        if s.fail
            .as_ref()
            .is_some_and(|(m, k)| *m == method && *k == n)
        {
            return ResponseTemplate::new(500).set_body_string("boom");
        }
        let page = s.page;
        let channel = q.get("channel").cloned().unwrap_or_default();
        let body = match method.as_str() {
            "users.list" => {
                let (items, next) = page_of(s.users.clone(), &q, page);
                json!({"ok": true, "members": items, "response_metadata": {"next_cursor": next}})
            }
            "conversations.list" => {
                let (items, next) = page_of(s.channels.clone(), &q, page);
                json!({"ok": true, "channels": items, "response_metadata": {"next_cursor": next}})
            }
            "conversations.members" => {
                let Some(all) = s.members.get(&channel) else {
                    return ResponseTemplate::new(200)
                        .set_body_json(json!({"ok": false, "error": "channel_not_found"}));
                };
                let all: Vec<Value> = all.iter().map(|m| json!(m)).collect();
                let (items, next) = page_of(all, &q, page);
                json!({"ok": true, "members": items, "response_metadata": {"next_cursor": next}})
            }
            "conversations.history" => {
                let inclusive = q.get("inclusive").is_some_and(|v| v == "true");
                let oldest: Option<f64> = q.get("oldest").and_then(|v| v.parse().ok());
                let latest: Option<f64> = q.get("latest").and_then(|v| v.parse().ok());
                let mut top: Vec<Value> = s
                    .messages
                    .get(&channel)
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|m| {
                        m["thread_ts"].is_null()
                            || m["thread_ts"] == m["ts"]
                            || m["subtype"] == "message_deleted"
                    })
                    .filter(|m| {
                        let t = ts_f(m);
                        oldest.is_none_or(|o| if inclusive { t >= o } else { t > o })
                            && latest.is_none_or(|l| if inclusive { t <= l } else { t < l })
                    })
                    .collect();
                top.sort_by(|a, b| ts_f(b).total_cmp(&ts_f(a)));
                let (items, next) = page_of(top, &q, page);
                json!({"ok": true, "messages": items, "has_more": !next.is_empty(),
                       "response_metadata": {"next_cursor": next}})
            }
            "conversations.replies" => {
                let parent = q.get("ts").cloned().unwrap_or_default();
                let mut thread: Vec<Value> = s
                    .messages
                    .get(&channel)
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|m| m["thread_ts"] == json!(parent))
                    .collect();
                thread.sort_by(|a, b| ts_f(a).total_cmp(&ts_f(b)));
                let (items, next) = page_of(thread, &q, page);
                json!({"ok": true, "messages": items, "has_more": !next.is_empty(),
                       "response_metadata": {"next_cursor": next}})
            }
            _ => json!({"ok": false, "error": "unknown_method"}),
        };
        ResponseTemplate::new(200).set_body_json(body)
    }
}

fn user(id: &str, name: &str) -> Value {
    json!({"id": id, "team_id": "T1", "name": name, "deleted": false, "real_name": format!("{name} Real"),
           "is_bot": false, "tz": "UTC", "updated": 1_700_000_000,
           "profile": {"real_name": format!("{name} Real"), "display_name": name, "email": format!("{name}@example.org")}})
}

fn msg(user: &str, ts: &str, text: &str) -> Value {
    json!({"type": "message", "user": user, "ts": ts, "text": text})
}

/// Two channels: C1 with six top-level messages (one a thread parent with
/// two replies, one with a reaction and a file), C2 with three.
fn workspace() -> State {
    let mut s = State {
        page: 2,
        ..State::default()
    };
    s.users = vec![user("U1", "alice"), user("U2", "bob"), user("U3", "carol")];
    s.channels = vec![
        json!({"id": "C1", "name": "general", "is_channel": true, "is_private": false, "created": 1_700_000_000,
               "creator": "U1", "is_archived": false, "is_member": true, "topic": {"value": "hi"}, "purpose": {"value": "all"}, "num_members": 3}),
        json!({"id": "C2", "name": "secret", "is_channel": true, "is_private": true, "created": 1_700_000_100,
               "creator": "U2", "is_archived": false, "is_member": true, "num_members": 2}),
    ];
    s.members
        .insert("C1".into(), vec!["U1".into(), "U2".into(), "U3".into()]);
    s.members
        .insert("C2".into(), vec!["U1".into(), "U2".into()]);
    let mut c1 = Vec::new();
    for i in 1..=6 {
        let ts = format!("17040{i}0000.000100");
        let mut m = msg(["U1", "U2", "U3"][i % 3], &ts, &format!("message {i}"));
        if i == 2 {
            m["thread_ts"] = json!(ts);
            m["reply_count"] = json!(2);
        }
        if i == 4 {
            m["reactions"] = json!([{"name": "thumbsup", "users": ["U1", "U2"], "count": 2}]);
            m["files"] = json!([{"id": "F1", "name": "a.txt", "title": "A", "mimetype": "text/plain", "filetype": "text", "size": 3, "created": 1_704_040_000, "user": "U1"}]);
        }
        c1.push(m);
    }
    for (k, ts) in ["1704020000.000200", "1704020000.000300"]
        .iter()
        .enumerate()
    {
        let mut r = msg("U3", ts, &format!("reply {k}"));
        r["thread_ts"] = json!("1704020000.000100");
        c1.push(r);
    }
    s.messages.insert("C1".into(), c1);
    s.messages.insert(
        "C2".into(),
        (1..=3)
            .map(|i| {
                msg(
                    "U2",
                    &format!("17041{i}0000.000100"),
                    &format!("secret {i}"),
                )
            })
            .collect(),
    );
    s
}

async fn stand_in(state: State) -> (MockServer, Arc<Mutex<State>>) {
    let server = MockServer::start().await;
    let shared = Arc::new(Mutex::new(state));
    Mock::given(wiremock::matchers::path_regex("^/slack/.*"))
        .respond_with(FakeSlack(Arc::clone(&shared)))
        .mount(&server)
        .await;
    (server, shared)
}

// --- Environment --------------------------------------------------------------

struct Env {
    _db: TestDb,
    storage: Storage,
    workspace: tempfile::TempDir,
    config: Arc<Config>,
    clock: Arc<ManualClock>,
}

impl Env {
    async fn new(kind: Kind, api: Option<&str>) -> Env {
        Self::with_workspace(kind, api, tempfile::tempdir().unwrap()).await
    }

    async fn with_workspace(kind: Kind, api: Option<&str>, workspace: tempfile::TempDir) -> Env {
        let db = TestDb::new(kind).await;
        let storage = Storage::connect(db.url(), &ConnectOptions::default())
            .await
            .unwrap();
        storage.migrate().await.unwrap();
        storage
            .migrate_parts(&[&SCHEMA, &bdc_identity::SCHEMA])
            .await
            .unwrap();
        let ws = workspace.path().display().to_string();
        let url = db.url().to_owned();
        let api = api.map(|a| format!("{a}/slack"));
        let config = Config::from_lookup(|k| match k {
            "WORKSPACE_DIR" => Some(ws.clone()),
            "DATABASE_URL" => Some(url.clone()),
            "SLACK_BOT_TOKEN" => Some(TOKEN.into()),
            "SLACK_TEAM_ID" => Some("T1".into()),
            "SLACK_API_URL" => api.clone(),
            _ => None,
        })
        .unwrap();
        Env {
            _db: db,
            storage,
            workspace,
            config: Arc::new(config),
            clock: Arc::new(ManualClock::new(
                DateTime::from_timestamp(1_710_000_000, 0).unwrap(),
            )),
        }
    }

    fn collector(&self) -> SlackCollector {
        SlackCollector::new()
            .with_clock(Arc::clone(&self.clock) as Arc<dyn Clock>)
            .with_client_options(|o| {
                o.max_retries = 0;
                o.timeout = Duration::from_secs(10);
            })
    }

    fn ctx(&self, args: &[&str]) -> CollectContext {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        CollectContext {
            run_id: format!("test-{}", N.fetch_add(1, Ordering::Relaxed)),
            command: "slack".into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            schedule_group: None,
            storage: self.storage.clone(),
            config: Arc::clone(&self.config),
            interactive: false,
        }
    }

    async fn try_run(&self, args: &[&str]) -> Result<TrackerResult, String> {
        self.collector()
            .run(&self.ctx(args))
            .await
            .map_err(|e| e.to_string())
    }

    async fn run(&self, args: &[&str]) -> TrackerResult {
        match self.try_run(args).await {
            Ok(r) => r,
            Err(e) => panic!("run {args:?} failed: {e}"),
        }
    }

    async fn activity(&self) -> u64 {
        self.storage
            .activity()
            .count(&ActivityFilter {
                source_system: Some("slack".into()),
                ..Default::default()
            })
            .await
            .unwrap()
    }

    async fn rows(&self, sql: &'static str) -> Vec<(String, String, String)> {
        bdc_storage::on_pool!(self.storage, p => sqlx::query_as(sql).fetch_all(p).await.unwrap())
    }

    /// Everything a run leaves behind that two equivalent runs share.
    async fn fingerprint(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (a, b, c) in self
            .rows(
                "SELECT channel_id || ':' || ts, content_hash, CASE WHEN deleted THEN 'deleted' ELSE 'live' END
                 FROM sl_messages ORDER BY channel_id, ts",
            )
            .await
        {
            out.push(format!("msg {a} {b} {c}"));
        }
        for (a, b, c) in self
            .rows("SELECT id, COALESCE(name, ''), COALESCE(email, '') FROM sl_users ORDER BY id")
            .await
        {
            out.push(format!("user {a} {b} {c}"));
        }
        for (a, b, c) in self
            .rows("SELECT channel_id, user_id, '' FROM sl_channel_members ORDER BY channel_id, user_id")
            .await
        {
            out.push(format!("member {a} {b} {c}"));
        }
        for (a, b, c) in self
            .rows("SELECT channel_id, message_ts, name FROM sl_reactions ORDER BY 1, 2, 3")
            .await
        {
            out.push(format!("reaction {a} {b} {c}"));
        }
        for (a, b, c) in self
            .rows("SELECT id, channel_id, message_ts FROM sl_files ORDER BY id")
            .await
        {
            out.push(format!("file {a} {b} {c}"));
        }
        for scope in ["channel:C1", "channel:C2"] {
            let cp = self
                .storage
                .checkpoints()
                .get("slack", scope)
                .await
                .unwrap();
            out.push(format!(
                "checkpoint {scope} {:?}",
                cp.map(|c| (c.checkpoint_token().to_owned(), c.extras().len()))
            ));
        }
        out.push(format!("activity {}", self.activity().await));
        out
    }

    async fn one(&self, sql: &'static str) -> (String, String, String) {
        let mut r = self.rows(sql).await;
        assert_eq!(r.len(), 1, "{sql}");
        r.remove(0)
    }
}

fn c(r: &TrackerResult, k: &str) -> u64 {
    r.counts().get(k).copied().unwrap_or(0)
}

// --- API ------------------------------------------------------------------------

both!(api_sync_paginates_and_honours_retry_after);
async fn api_sync_paginates_and_honours_retry_after(kind: Kind) {
    let mut state = workspace();
    state.limit_once.insert("conversations.history".into());
    state.limit_once.insert("users.list".into());
    let (server, shared) = stand_in(state).await;
    let env = Env::new(kind, Some(&server.uri())).await;
    let r = env.run(&[]).await;
    assert_eq!(c(&r, "users"), 3);
    assert_eq!(c(&r, "users_inserted"), 3);
    assert_eq!(c(&r, "channels"), 2);
    assert_eq!(c(&r, "members"), 5);
    assert_eq!(c(&r, "members_added"), 5);
    assert_eq!(c(&r, "threads"), 1);
    assert_eq!(c(&r, "inserted"), 11, "{r:?}");
    assert_eq!(c(&r, "reactions"), 1);
    assert_eq!(c(&r, "files"), 1);
    // Two 429s waited out through the clock (Retry-After: 3), then retried.
    let sleeps = env.clock.sleeps();
    assert_eq!(
        sleeps
            .iter()
            .filter(|d| **d == Duration::from_secs(3))
            .count(),
        2,
        "{sleeps:?}"
    );
    {
        let s = shared.lock().unwrap();
        // Cursor pagination: users in 2 pages, history of C1 in 3 pages.
        let n = |m: &str| s.calls.iter().filter(|(x, _)| x == m).count();
        assert_eq!(n("users.list"), 3, "429 + 2 pages");
        assert!(s.calls.iter().any(|(m, q)| m == "conversations.list"
            && q.get("types").map(String::as_str) == Some("public_channel,private_channel")));
        assert!(s.calls.iter().any(|(m, q)| m == "conversations.history"
            && q.get("cursor").map(String::as_str) == Some("next:4")));
    }
    let (thread, user, text) = env
        .one("SELECT COALESCE(thread_ts, ''), COALESCE(user_id, ''), text FROM sl_messages WHERE ts = '1704020000.000300'")
        .await;
    assert_eq!(
        (thread.as_str(), user.as_str(), text.as_str()),
        ("1704020000.000100", "U3", "reply 1")
    );
    assert_eq!(env.activity().await, 11);
    let profiles = env
        .rows("SELECT source_id, COALESCE(login, ''), COALESCE(actor, '') FROM profiles WHERE source = 'slack' ORDER BY source_id")
        .await;
    assert_eq!(profiles.len(), 3);
    assert_eq!(profiles[0], ("U1".into(), "alice".into(), "alice".into()));
    let cp = env
        .storage
        .checkpoints()
        .get("slack", "channel:C1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cp.checkpoint_token(), "1704060000.000100");
    assert!(cp.extras().is_empty());

    // A second run asks only for newer messages and stores nothing new.
    let before = shared.lock().unwrap().calls.len();
    let r = env.run(&["--sync-messages"]).await;
    assert_eq!((c(&r, "inserted"), c(&r, "updated")), (0, 0));
    let s = shared.lock().unwrap();
    let hist: Vec<&HashMap<String, String>> = s.calls[before..]
        .iter()
        .filter(|(m, q)| {
            m == "conversations.history" && q.get("channel").map(String::as_str) == Some("C1")
        })
        .map(|(_, q)| q)
        .collect();
    assert_eq!(hist.len(), 1);
    assert_eq!(
        hist[0].get("oldest").map(String::as_str),
        Some("1704060000.000100")
    );
    assert!(!s.calls[before..].iter().any(|(m, _)| m == "users.list"));
}

both!(slack_errors_are_clear_and_channels_without_access_are_skipped);
async fn slack_errors_are_clear_and_channels_without_access_are_skipped(kind: Kind) {
    let mut state = workspace();
    state.members.remove("C2");
    let (server, _shared) = stand_in(state).await;
    let env = Env::new(kind, Some(&server.uri())).await;
    let r = env
        .run(&["--sync-channel-users", "--channel-id", "C1,C2"])
        .await;
    assert_eq!(c(&r, "members_added"), 3);
    assert_eq!(c(&r, "channels_skipped"), 1);
    // A wrong token: ok=false invalid_auth, categorised as auth.
    let mut cfg = (*env.config).clone();
    cfg.slack_bot_token = Some(bdc_config::Secret::new("xoxb-wrong"));
    let mut ctx = env.ctx(&["--sync-users"]);
    ctx.config = Arc::new(cfg);
    let err = env.collector().run(&ctx).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("users.list") && text.contains("invalid_auth"),
        "{text}"
    );
    assert_eq!(err.category, bdc_core::FailureCategory::Auth);
    // No token at all: a configuration error before any request.
    let mut cfg = (*env.config).clone();
    cfg.slack_bot_token = None;
    let mut ctx = env.ctx(&[]);
    ctx.config = Arc::new(cfg);
    let err = env.collector().run(&ctx).await.unwrap_err();
    assert!(err.to_string().contains("SLACK_BOT_TOKEN"), "{err}");
}

both!(edits_and_deletions_on_a_second_run);
async fn edits_and_deletions_on_a_second_run(kind: Kind) {
    let (server, shared) = stand_in(workspace()).await;
    let env = Env::new(kind, Some(&server.uri())).await;
    env.run(&[]).await;
    let (_, hash_before, _) = env
        .one("SELECT ts, content_hash, text FROM sl_messages WHERE ts = '1704030000.000100'")
        .await;
    {
        let mut s = shared.lock().unwrap();
        let c1 = s.messages.get_mut("C1").unwrap();
        for m in c1.iter_mut() {
            match m["ts"].as_str() {
                // Edited in place.
                Some("1704030000.000100") => {
                    m["text"] = json!("message 3 (edited)");
                    m["edited"] = json!({"user": "U1", "ts": "1704070000.000000"});
                }
                // The thread parent was deleted: Slack leaves a tombstone.
                Some("1704020000.000100") => {
                    *m = json!({"type": "message", "subtype": "tombstone", "ts": "1704020000.000100",
                                "thread_ts": "1704020000.000100", "text": "This message was deleted.",
                                "user": "USLACKBOT", "reply_count": 2});
                }
                _ => {}
            }
        }
        // Message 5 deleted: gone from history, a message_deleted event remains.
        c1.retain(|m| m["ts"] != "1704050000.000100");
        c1.push(json!({"type": "message", "subtype": "message_deleted", "hidden": true,
                       "ts": "1704080000.000001", "deleted_ts": "1704050000.000100",
                       "previous_message": {"type": "message", "user": "U2", "ts": "1704050000.000100", "text": "message 5"}}));
    }
    let activity_before = env.activity().await;
    // Re-sync the window: the edit, the tombstone and the deletion apply.
    let r = env
        .run(&[
            "--sync-messages",
            "--channel-id",
            "C1",
            "--start-date",
            "2023-12-31",
        ])
        .await;
    assert_eq!(c(&r, "updated"), 1, "{r:?}");
    assert_eq!(c(&r, "deleted"), 2, "{r:?}");
    let (text, hash_after, edited) = env
        .one("SELECT text, content_hash, COALESCE(edited_ts, '') FROM sl_messages WHERE ts = '1704030000.000100'")
        .await;
    assert_eq!(text, "message 3 (edited)");
    assert_eq!(edited, "1704070000.000000");
    assert_ne!(hash_after, hash_before);
    let rev: Vec<(i64,)> = bdc_storage::on_pool!(env.storage, p => sqlx::query_as(
        "SELECT revision FROM sl_messages WHERE ts = '1704030000.000100'").fetch_all(p).await.unwrap());
    assert_eq!(rev, [(2,)]);
    // Deleted rows are marked, never dropped; their last text stays.
    let deleted = env
        .rows("SELECT ts, text, CASE WHEN deleted THEN 'y' ELSE 'n' END FROM sl_messages WHERE deleted ORDER BY ts")
        .await;
    assert_eq!(
        deleted,
        [
            ("1704020000.000100".into(), "message 2".into(), "y".into()),
            ("1704050000.000100".into(), "message 5".into(), "y".into()),
        ]
    );
    let total: Vec<(i64,)> = bdc_storage::on_pool!(env.storage, p => sqlx::query_as(
        "SELECT COUNT(*) FROM sl_messages").fetch_all(p).await.unwrap());
    assert_eq!(total, [(11,)]);
    assert_eq!(env.activity().await, activity_before);
    // Again: nothing changes.
    let r = env
        .run(&[
            "--sync-messages",
            "--channel-id",
            "C1",
            "--start-date",
            "2023-12-31",
        ])
        .await;
    assert_eq!(
        (c(&r, "updated"), c(&r, "deleted"), c(&r, "inserted")),
        (0, 0, 0)
    );
}

both!(crash_after_some_pages_then_rerun_equals_one_run);
async fn crash_after_some_pages_then_rerun_equals_one_run(kind: Kind) {
    // Uninterrupted.
    let (server, _) = stand_in(workspace()).await;
    let whole = Env::new(kind, Some(&server.uri())).await;
    whole.run(&[]).await;
    let expected = whole.fingerprint().await;
    // The second history page of C1 fails (no retries): the run stops.
    let mut state = workspace();
    state.fail = Some(("conversations.history".into(), 2));
    let (server, shared) = stand_in(state).await;
    let env = Env::new(kind, Some(&server.uri())).await;
    let err = env.try_run(&[]).await.unwrap_err();
    assert!(err.contains("conversations.history"), "{err}");
    let partial: Vec<(i64,)> = bdc_storage::on_pool!(env.storage, p => sqlx::query_as(
        "SELECT COUNT(*) FROM sl_messages").fetch_all(p).await.unwrap());
    assert_eq!(partial, [(2,)], "the first page was written");
    let cp = env
        .storage
        .checkpoints()
        .get("slack", "channel:C1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cp.checkpoint_token(), "0");
    assert_eq!(
        cp.extras().get("walk_latest").and_then(Value::as_str),
        Some("1704050000.000100")
    );
    shared.lock().unwrap().fail = None;
    env.run(&[]).await;
    assert_eq!(env.fingerprint().await, expected);
    // And a third run changes nothing.
    let r = env.run(&[]).await;
    assert_eq!((c(&r, "inserted"), c(&r, "updated")), (0, 0));
    assert_eq!(env.fingerprint().await, expected);
}

both!(token_stays_out_of_archive_and_runs_and_replay_reparses);
async fn token_stays_out_of_archive_and_runs_and_replay_reparses(kind: Kind) {
    let (server, _) = stand_in(workspace()).await;
    let env = Env::new(kind, Some(&server.uri())).await;
    let mut registry = Registry::new();
    registry.register(Arc::new(env.collector()));
    let runner = Runner {
        registry,
        storage: env.storage.clone(),
        config: Arc::clone(&env.config),
        worker_id: None,
        interactive: false,
    };
    let ok = runner
        .run(&RunRequest {
            command: "run_cppa_slack_tracker".into(),
            args: vec![],
            schedule_group: None,
            slot_task: None,
        })
        .await
        .unwrap();
    assert!(ok.is_success(), "{ok:?}");
    let failed = runner
        .run(&RunRequest {
            command: "slack".into(),
            args: vec![
                "--channel-id".into(),
                "CNOPE".into(),
                "--sync-channel-users".into(),
            ],
            schedule_group: None,
            slot_task: None,
        })
        .await
        .unwrap();
    assert!(
        matches!(failed, RunReport::Succeeded { .. }),
        "skipped channel: {failed:?}"
    );
    // Every archived byte (index and gunzipped bodies) is token-free.
    let dir = env.workspace.path().join("raw").join("slack");
    let mut seen = 0;
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let bytes = std::fs::read(&p).unwrap();
            let text = if p.extension().is_some_and(|x| x == "gz") {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut flate2_gunzip(&bytes), &mut out).unwrap();
                out
            } else {
                bytes
            };
            assert!(
                !String::from_utf8_lossy(&text).contains(TOKEN),
                "{}",
                p.display()
            );
            assert!(
                !String::from_utf8_lossy(&text).contains("xoxb-"),
                "{}",
                p.display()
            );
            seen += 1;
        }
    }
    assert!(seen > 5, "archive files: {seen}");
    let runs: Vec<(String, String, String)> = bdc_storage::on_pool!(env.storage, p => sqlx::query_as(
        "SELECT collector, status, COALESCE(CAST(counts AS TEXT), '') || COALESCE(error, '') || COALESCE(CAST(args AS TEXT), '') FROM collector_runs")
        .fetch_all(p).await.unwrap());
    assert_eq!(runs.len(), 2);
    for r in &runs {
        assert!(!format!("{r:?}").contains("xoxb-"), "{r:?}");
    }
    // Replay the archive into a fresh database: the same rows.
    let expected: Vec<String> = env
        .fingerprint()
        .await
        .into_iter()
        .filter(|l| l.starts_with("msg ") || l.starts_with("user ") || l.starts_with("reaction "))
        .collect();
    let ws = env.workspace.path().to_path_buf();
    let other = Env::new(kind, None).await;
    let archive = ws.join("raw").join("slack");
    let r = other
        .run(&["--from-archive", "--archive-dir", archive.to_str().unwrap()])
        .await;
    assert!(c(&r, "replayed") > 5, "{r:?}");
    assert_eq!(c(&r, "requests"), 0);
    let got: Vec<String> = other
        .fingerprint()
        .await
        .into_iter()
        .filter(|l| l.starts_with("msg ") || l.starts_with("user ") || l.starts_with("reaction "))
        .collect();
    assert_eq!(got, expected);
}

fn flate2_gunzip(bytes: &[u8]) -> impl std::io::Read + '_ {
    GzReader(std::io::Cursor::new(
        bdc_http::archive::gunzip(bytes).unwrap_or_default(),
    ))
}

struct GzReader(std::io::Cursor<Vec<u8>>);

impl std::io::Read for GzReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

// --- Exports ----------------------------------------------------------------------

/// A workspace export with bad parts: `missing` listed without a folder,
/// a malformed day file, a malformed message, an unlisted folder.
fn write_export(root: &Path) {
    let w = |rel: &str, text: String| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w(
        "users.json",
        json!([user("U1", "alice"), user("U2", "bob")]).to_string(),
    );
    w(
        "channels.json",
        json!([
            {"id": "C1", "name": "general", "created": 1_700_000_000, "creator": "U1", "members": ["U1", "U2"],
             "topic": {"value": "t"}, "purpose": {"value": "p"}},
            {"id": "C2", "name": "random", "created": 1_700_000_000, "members": ["U2"]},
            {"id": "C3", "name": "missing", "created": 1_700_000_000, "members": []}
        ])
        .to_string(),
    );
    let mut parent = msg("U1", "1704067200.000100", "parent");
    parent["thread_ts"] = json!("1704067200.000100");
    parent["reply_count"] = json!(1);
    parent["user_profile"] = json!({"name": "alice", "real_name": "alice Real"});
    let mut reply = msg("U2", "1704067300.000100", "reply");
    reply["thread_ts"] = json!("1704067200.000100");
    let mut edited = msg("U2", "1704067400.000100", "edited text");
    edited["edited"] = json!({"user": "U2", "ts": "1704067500.000000"});
    edited["reactions"] = json!([{"name": "tada", "users": ["U1"], "count": 1}]);
    w(
        "general/2024-01-01.json",
        json!([parent, reply, edited]).to_string(),
    );
    w(
        "general/2024-01-02.json",
        "[{\"type\": \"message\", \"ts\": \"1704153600.0\",\n  \"text\": ".into(),
    );
    w(
        "random/2024-01-01.json",
        json!([msg("U2", "1704070000.000100", "hi"), {"type": "message", "text": "no ts"}])
            .to_string(),
    );
    w(
        "orphan/2024-01-01.json",
        json!([msg("U1", "1704080000.000100", "lost")]).to_string(),
    );
    w("orphan/2024-01-02.json", "[]".into());
}

fn zip_dir(src: &Path, zip_path: &Path, prefix: &str) {
    let file = std::fs::File::create(zip_path).unwrap();
    let mut z = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut stack = vec![src.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p
                .strip_prefix(src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            z.start_file(format!("{prefix}{rel}"), opts).unwrap();
            z.write_all(&std::fs::read(&p).unwrap()).unwrap();
        }
    }
    z.finish().unwrap();
}

both!(export_import_from_folder_and_zip_counts_bad_files);
async fn export_import_from_folder_and_zip_counts_bad_files(kind: Kind) {
    let env = Env::new(kind, None).await;
    let dir = env.workspace.path().join("export");
    write_export(&dir);
    let dir_s = dir.to_str().unwrap();
    // Dry run: counts, no rows.
    let r = env.run(&["--messages-json", dir_s, "--dry-run"]).await;
    assert_eq!(c(&r, "messages"), 4);
    assert_eq!(
        env.fingerprint()
            .await
            .iter()
            .filter(|l| l.starts_with("msg "))
            .count(),
        0
    );
    let r = env.run(&["--messages-json", dir_s]).await;
    assert_eq!(c(&r, "users_inserted"), 2);
    assert_eq!(c(&r, "channels_inserted"), 3);
    assert_eq!(c(&r, "day_files"), 3);
    assert_eq!(c(&r, "messages"), 4);
    assert_eq!(c(&r, "inserted"), 4);
    assert_eq!(c(&r, "missing_files"), 1);
    assert_eq!(c(&r, "skipped_files"), 1);
    assert_eq!(c(&r, "unplaced_files"), 2);
    assert_eq!(c(&r, "malformed"), 1);
    assert_eq!(c(&r, "reactions"), 1);
    assert_eq!(env.activity().await, 4);
    let (thread, _, _) = env
        .one("SELECT COALESCE(thread_ts, ''), text, '' FROM sl_messages WHERE ts = '1704067300.000100'")
        .await;
    assert_eq!(thread, "1704067200.000100");
    let members = env
        .rows("SELECT channel_id, user_id, '' FROM sl_channel_members ORDER BY 1, 2")
        .await;
    assert_eq!(members.len(), 3);
    let actors = env
        .rows("SELECT external_id, COALESCE(actor, ''), COALESCE(title, '') FROM activity_records WHERE source_system = 'slack' ORDER BY external_id")
        .await;
    assert_eq!(
        actors[0],
        (
            "C1:1704067200.000100".into(),
            "alice".into(),
            "#general".into()
        )
    );
    // Again: unchanged.
    let r = env.run(&["--messages-json", dir_s]).await;
    assert_eq!((c(&r, "inserted"), c(&r, "unchanged")), (0, 4));
    let from_folder = env.fingerprint().await;

    // The same export as a zip (root one folder down), into a fresh database.
    let zenv = Env::new(kind, None).await;
    let zip_path = zenv.workspace.path().join("slack-export.zip");
    zip_dir(&dir, &zip_path, "Boost Slack export Jan 1 2024/");
    let r = zenv
        .run(&["--messages-json", zip_path.to_str().unwrap()])
        .await;
    assert_eq!(
        (
            c(&r, "inserted"),
            c(&r, "missing_files"),
            c(&r, "skipped_files"),
            c(&r, "unplaced_files"),
            c(&r, "malformed")
        ),
        (4, 1, 1, 2, 1)
    );
    assert_eq!(zenv.fingerprint().await, from_folder);
    // A narrowed import: one channel, one day.
    let nenv = Env::new(kind, None).await;
    let r = nenv
        .run(&[
            "--messages-json",
            dir_s,
            "--channel-id",
            "C2",
            "--start-date",
            "2024-01-01",
            "--end-date",
            "2024-01-01",
        ])
        .await;
    assert_eq!(
        (
            c(&r, "messages"),
            c(&r, "day_files"),
            c(&r, "unplaced_files")
        ),
        (1, 1, 0)
    );
    // Not an export at all.
    let empty = tempfile::tempdir().unwrap();
    let err = nenv
        .try_run(&["--messages-json", empty.path().to_str().unwrap()])
        .await
        .unwrap_err();
    assert!(err.contains("not a Slack workspace export"), "{err}");
}

both!(newer_export_applies_edits_and_deletions);
async fn newer_export_applies_edits_and_deletions(kind: Kind) {
    let env = Env::new(kind, None).await;
    let dir = env.workspace.path().join("export");
    write_export(&dir);
    env.run(&["--messages-json", dir.to_str().unwrap()]).await;
    // A later export: the edit is newer, the reply deleted (message_deleted).
    let mut edited = msg("U2", "1704067400.000100", "edited again");
    edited["edited"] = json!({"user": "U2", "ts": "1704090000.000000"});
    let deleted = json!({"type": "message", "subtype": "message_deleted", "ts": "1704090001.000000",
                         "deleted_ts": "1704067300.000100"});
    // And an older version of the edited message (must not win).
    let older = msg("U2", "1704067400.000100", "original text");
    std::fs::write(
        dir.join("general/2024-01-01.json"),
        json!([older, edited, deleted]).to_string(),
    )
    .unwrap();
    let r = env.run(&["--messages-json", dir.to_str().unwrap()]).await;
    assert_eq!((c(&r, "updated"), c(&r, "deleted")), (1, 1), "{r:?}");
    let rows = env
        .rows("SELECT ts, text, CASE WHEN deleted THEN 'y' ELSE 'n' END FROM sl_messages WHERE channel_id = 'C1' ORDER BY ts")
        .await;
    assert_eq!(
        rows,
        [
            ("1704067200.000100".into(), "parent".into(), "n".into()),
            ("1704067300.000100".into(), "reply".into(), "y".into()),
            (
                "1704067400.000100".into(),
                "edited again".into(),
                "n".into()
            ),
        ]
    );
    // The reaction went with the edit (the new version has none).
    assert!(
        env.rows("SELECT channel_id, message_ts, name FROM sl_reactions")
            .await
            .is_empty()
    );
}
