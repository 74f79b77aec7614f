//! End-to-end tests of the live `discord` collector on SQLite and
//! PostgreSQL: a wiremock stand-in of the Discord REST API v10 in its
//! documented shapes (guild channels, active and archived threads, message
//! pages with `after`/`before`, rate-limit bucket headers, per-route and
//! global `429`s), checkpoints and incremental re-runs, a crash after some
//! pages, `--dry-run`, windows, replay of the raw archive, the token kept
//! out of every archive, and the Markdown export pushed to a local bare
//! repository.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bdc_collector::{CollectContext, Collector};
use bdc_collector_discord::api::{snowflake_of, time_of};
use bdc_collector_discord::{DiscordCollector, SCHEMA};
use bdc_config::Config;
use bdc_core::TrackerResult;
use bdc_http::{Clock, ManualClock};
use bdc_storage::activity::ActivityFilter;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb, both_backends as both};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "discord-test-secret-token-9876";
const GUILD: &str = "100";

// --- The Discord stand-in ---------------------------------------------------

#[derive(Debug, Default)]
struct State {
    /// `GET /guilds/{id}` (default: guild 100, "Boost Dev").
    guild: Option<Value>,
    channels: Vec<Value>,
    active_threads: Vec<Value>,
    /// Archived public threads per parent channel.
    archived: BTreeMap<String, Vec<Value>>,
    /// Messages per channel, ascending ids.
    messages: BTreeMap<String, Vec<Value>>,
    /// Channel ids answering 403 to message reads.
    forbidden: Vec<String>,
    /// Route kinds answering one 429 (per-route; body `retry_after` only).
    limit_once: Vec<String>,
    /// Route kinds answering one global 429 (`Retry-After` header).
    global_once: Vec<String>,
    /// The n-th (1-based) messages call answers 500.
    fail_messages_call: Option<usize>,
    /// Answer `GET /guilds/{id}/channels` with this non-JSON body.
    bad_channels: Option<String>,
    calls: Vec<(String, HashMap<String, String>)>,
    remaining: u64,
}

#[derive(Clone)]
struct FakeDiscord(Arc<Mutex<State>>);

fn id_of(v: &Value) -> u64 {
    v["id"].as_str().unwrap().parse().unwrap()
}

impl Respond for FakeDiscord {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let path = req.url.path().trim_start_matches("/api/v10").to_owned();
        let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
        s.calls.push((path.clone(), q.clone()));
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if auth != format!("Bot {TOKEN}") {
            return ResponseTemplate::new(401)
                .set_body_json(json!({"message": "401: Unauthorized", "code": 0}));
        }
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let kind = match segs.as_slice() {
            ["guilds", _] => "guild",
            ["guilds", _, "channels"] => "channels",
            ["guilds", _, "threads", "active"] => "active",
            ["channels", _, "threads", "archived", "public"] => "archived",
            ["channels", _, "messages"] => "messages",
            _ => "unknown",
        };
        if let Some(i) = s.global_once.iter().position(|k| k == kind) {
            s.global_once.remove(i);
            return ResponseTemplate::new(429)
                .insert_header("Retry-After", "3")
                .insert_header("X-RateLimit-Global", "true")
                .insert_header("X-RateLimit-Scope", "global")
                .set_body_json(json!({"message": "You are being rate limited.", "retry_after": 3.0, "global": true}));
        }
        if let Some(i) = s.limit_once.iter().position(|k| k == kind) {
            s.limit_once.remove(i);
            return ResponseTemplate::new(429)
                .insert_header("X-RateLimit-Bucket", format!("bucket-{kind}"))
                .insert_header("X-RateLimit-Scope", "user")
                .set_body_json(json!({"message": "You are being rate limited.", "retry_after": 0.75, "global": false}));
        }
        let bucket = |t: ResponseTemplate, remaining: u64| {
            t.insert_header("X-RateLimit-Bucket", format!("bucket-{kind}"))
                .insert_header("X-RateLimit-Limit", "5")
                .insert_header("X-RateLimit-Remaining", remaining.to_string())
                .insert_header("X-RateLimit-Reset-After", "1.5")
        };
        let body = match (kind, segs.as_slice()) {
            ("guild", _) => s
                .guild
                .clone()
                .unwrap_or_else(|| json!({"id": GUILD, "name": "Boost Dev", "icon": null})),
            ("channels", _) => {
                if let Some(b) = &s.bad_channels {
                    return ResponseTemplate::new(200)
                        .set_body_raw(b.clone().into_bytes(), "text/html");
                }
                json!(s.channels)
            }
            ("active", _) => json!({"threads": s.active_threads, "members": []}),
            ("archived", [_, ch, ..]) => {
                let before = q.get("before").cloned();
                let mut all: Vec<Value> = s.archived.get(*ch).cloned().unwrap_or_default();
                all.sort_by(|a, b| {
                    b["thread_metadata"]["archive_timestamp"]
                        .as_str()
                        .cmp(&a["thread_metadata"]["archive_timestamp"].as_str())
                });
                all.retain(|t| {
                    before.as_deref().is_none_or(|b| {
                        t["thread_metadata"]["archive_timestamp"]
                            .as_str()
                            .is_some_and(|a| a < b)
                    })
                });
                // One thread per page.
                let has_more = all.len() > 1;
                all.truncate(1);
                json!({"threads": all, "members": [], "has_more": has_more})
            }
            ("messages", [_, ch, ..]) => {
                let ch = ch.to_string();
                if s.forbidden.contains(&ch) {
                    return ResponseTemplate::new(403)
                        .set_body_json(json!({"message": "Missing Access", "code": 50001}));
                }
                let n = s
                    .calls
                    .iter()
                    .filter(|(p, _)| p.ends_with("/messages"))
                    .count();
                if s.fail_messages_call == Some(n) {
                    return ResponseTemplate::new(500).set_body_string("boom");
                }
                let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(50);
                let all = s.messages.get(&ch).cloned().unwrap_or_default();
                let mut page: Vec<Value> = if let Some(a) = q.get("after") {
                    let a: u64 = a.parse().unwrap();
                    all.into_iter()
                        .filter(|m| id_of(m) > a)
                        .take(limit)
                        .collect()
                } else {
                    let b: u64 = q
                        .get("before")
                        .map(|b| b.parse().unwrap())
                        .unwrap_or(u64::MAX);
                    let mut older: Vec<Value> = all.into_iter().filter(|m| id_of(m) < b).collect();
                    older.reverse();
                    older.truncate(limit);
                    older
                };
                // Discord answers newest first.
                page.sort_by_key(|m| std::cmp::Reverse(id_of(m)));
                // The first message page spends its bucket.
                let remaining = if s.remaining == 0 {
                    s.remaining = 4;
                    0
                } else {
                    s.remaining
                };
                return bucket(
                    ResponseTemplate::new(200).set_body_json(json!(page)),
                    remaining,
                );
            }
            _ => {
                return ResponseTemplate::new(404)
                    .set_body_json(json!({"message": "404: Not Found", "code": 0}));
            }
        };
        bucket(ResponseTemplate::new(200).set_body_json(body), 4)
    }
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn user(id: &str, name: &str) -> Value {
    json!({"id": id, "username": name, "global_name": format!("{name} G"), "discriminator": "0", "avatar": null, "bot": false})
}

/// A message `k` minutes after 2024-01-01 (the id encodes the time).
fn msg(channel: &str, k: i64, author: &Value, text: &str) -> Value {
    let t = t0() + chrono::Duration::minutes(k);
    let id = snowflake_of(t) + (k as u64 % 4096);
    json!({"id": id.to_string(), "channel_id": channel, "type": 0, "content": text,
           "timestamp": time_of(id).unwrap().to_rfc3339(), "edited_timestamp": null, "pinned": false,
           "author": author, "attachments": [], "reactions": [], "mentions": []})
}

fn thread(id: &str, parent: &str, name: &str, archived: Option<&str>) -> Value {
    json!({"id": id, "type": 11, "guild_id": GUILD, "parent_id": parent, "name": name,
           "thread_metadata": {"archived": archived.is_some(), "archive_timestamp": archived.unwrap_or("2024-03-01T00:00:00+00:00")}})
}

/// Category 200; text channels 301 `general` (250 messages: three pages,
/// one malformed, a reply, an attachment) and 302 `help` (3 messages);
/// voice channel 303; active thread 401 of 301; archived threads 402, 403
/// of 301 (two archive pages).
fn guild() -> State {
    let (ann, bob) = (user("900", "ann"), user("901", "bob"));
    let mut s = State {
        remaining: 0,
        ..State::default()
    };
    s.channels = vec![
        json!({"id": "200", "type": 4, "guild_id": GUILD, "name": "Text", "parent_id": null}),
        json!({"id": "301", "type": 0, "guild_id": GUILD, "name": "general", "parent_id": "200", "topic": "all things"}),
        json!({"id": "302", "type": 0, "guild_id": GUILD, "name": "help", "parent_id": "200", "topic": null}),
        json!({"id": "303", "type": 2, "guild_id": GUILD, "name": "Voice", "parent_id": null}),
    ];
    s.active_threads = vec![thread("401", "301", "thread-a", None)];
    s.archived.insert(
        "301".into(),
        vec![
            thread("402", "301", "old-b", Some("2024-02-01T00:00:00+00:00")),
            thread("403", "301", "old-c", Some("2024-02-02T00:00:00+00:00")),
        ],
    );
    let mut general: Vec<Value> = (0..250)
        .map(|k| {
            msg(
                "301",
                k * 10,
                if k % 2 == 0 { &ann } else { &bob },
                &format!("general {k}"),
            )
        })
        .collect();
    general[5]["message_reference"] = json!({"message_id": general[4]["id"], "channel_id": "301"});
    general[5]["type"] = json!(19);
    general[6]["attachments"] = json!([{"id": "77", "filename": "log.txt", "size": 12, "url": "https://cdn.discordapp.com/attachments/301/77/log.txt"}]);
    general[7]["author"]["id"] = json!("not-a-snowflake");
    s.messages.insert("301".into(), general);
    s.messages.insert(
        "302".into(),
        (0..3)
            .map(|k| msg("302", 3000 + k, &bob, &format!("help {k}")))
            .collect(),
    );
    s.messages
        .insert("401".into(), vec![msg("401", 4000, &ann, "in thread a")]);
    s.messages
        .insert("402".into(), vec![msg("402", 4001, &bob, "in thread b")]);
    s.messages
        .insert("403".into(), vec![msg("403", 4002, &ann, "in thread c")]);
    s
}

async fn stand_in(state: State) -> (MockServer, Arc<Mutex<State>>) {
    let server = MockServer::start().await;
    let shared = Arc::new(Mutex::new(state));
    Mock::given(wiremock::matchers::path_regex("^/api/v10/.*"))
        .respond_with(FakeDiscord(Arc::clone(&shared)))
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
    async fn new(kind: Kind, api: &str) -> Env {
        Self::build(kind, api, tempfile::tempdir().unwrap(), None).await
    }

    async fn build(
        kind: Kind,
        api: &str,
        workspace: tempfile::TempDir,
        repo: Option<&Path>,
    ) -> Env {
        let db = TestDb::new(kind).await;
        let storage = Storage::connect(db.url(), &ConnectOptions::default())
            .await
            .unwrap();
        storage.migrate().await.unwrap();
        storage.migrate_parts(&[&SCHEMA]).await.unwrap();
        let ws = workspace.path().display().to_string();
        let url = db.url().to_owned();
        let api = format!("{api}/api/v10");
        let repo = repo.map(|r| r.display().to_string());
        let config = Config::from_lookup(|k| match k {
            "WORKSPACE_DIR" => Some(ws.clone()),
            "DATABASE_URL" => Some(url.clone()),
            "DISCORD_BOT_TOKEN" => Some(TOKEN.into()),
            "DISCORD_GUILD_ID" => Some(GUILD.into()),
            "DISCORD_API_URL" => Some(api.clone()),
            "DISCORD_CONTEXT_REPO_PATH" => repo.clone(),
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

    fn ctx(&self, args: &[&str]) -> CollectContext {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        CollectContext {
            run_id: format!("test-{}", N.fetch_add(1, Ordering::Relaxed)),
            command: "discord".into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            schedule_group: None,
            storage: self.storage.clone(),
            config: Arc::clone(&self.config),
            interactive: false,
        }
    }

    async fn try_run(&self, args: &[&str]) -> Result<TrackerResult, String> {
        DiscordCollector::new()
            .with_clock(Arc::clone(&self.clock) as Arc<dyn Clock>)
            .with_client_options(|o| {
                o.max_retries = 0;
                o.timeout = Duration::from_secs(10);
            })
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
                source_system: Some("discord".into()),
                ..Default::default()
            })
            .await
            .unwrap()
    }

    async fn rows(&self, sql: &'static str) -> Vec<(String, String)> {
        bdc_storage::on_pool!(self.storage, p => sqlx::query_as(sql).fetch_all(p).await.unwrap())
    }

    async fn fingerprint(&self, checkpoints: bool) -> Vec<String> {
        let mut out = Vec::new();
        for (a, b) in self
            .rows("SELECT channel_id || ':' || id, content_hash FROM dc_messages ORDER BY LENGTH(id), id")
            .await
        {
            out.push(format!("msg {a} {b}"));
        }
        for (a, b) in self
            .rows("SELECT id, name || '/' || COALESCE(nickname, '') FROM dc_users ORDER BY id")
            .await
        {
            out.push(format!("user {a} {b}"));
        }
        for (a, b) in self
            .rows("SELECT id, name || '/' || COALESCE(kind, '') || '/' || COALESCE(parent_id, '') FROM dc_channels ORDER BY id")
            .await
        {
            out.push(format!("channel {a} {b}"));
        }
        if checkpoints {
            for ch in ["301", "302", "401", "402", "403"] {
                let cp = self
                    .storage
                    .checkpoints()
                    .get("discord", &format!("channel:{ch}"))
                    .await
                    .unwrap();
                out.push(format!(
                    "checkpoint {ch} {:?}",
                    cp.map(|c| c.checkpoint_token().to_owned())
                ));
            }
        }
        out.push(format!("activity {}", self.activity().await));
        out
    }

    fn archive_text(&self) -> String {
        let mut all = String::new();
        let mut stack = vec![self.workspace.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_none_or(|e| e != "sqlite3") {
                    let bytes = std::fs::read(&p).unwrap();
                    let text = bdc_http::archive::gunzip(&bytes).unwrap_or(bytes);
                    all.push_str(&String::from_utf8_lossy(&text));
                }
            }
        }
        all
    }
}

fn c(r: &TrackerResult, k: &str) -> u64 {
    r.counts().get(k).copied().unwrap_or(0)
}

fn message_calls(s: &Arc<Mutex<State>>, ch: &str) -> Vec<HashMap<String, String>> {
    s.lock()
        .unwrap()
        .calls
        .iter()
        .filter(|(p, _)| p == &format!("/channels/{ch}/messages"))
        .map(|(_, q)| q.clone())
        .collect()
}

// --- Tests ----------------------------------------------------------------------

both!(live_walk_pages_threads_and_rate_limits);
async fn live_walk_pages_threads_and_rate_limits(kind: Kind) {
    let mut state = guild();
    state.limit_once.push("active".into());
    state.global_once.push("messages".into());
    let (server, shared) = stand_in(state).await;
    let env = Env::new(kind, &server.uri()).await;
    let r = env.run(&[]).await;
    assert_eq!(c(&r, "channels"), 2, "{r:?}");
    assert_eq!(c(&r, "threads"), 3, "{r:?}");
    assert_eq!(c(&r, "messages"), 249 + 3 + 3);
    assert_eq!(c(&r, "malformed"), 1);
    assert_eq!(c(&r, "inserted"), 255);
    assert_eq!(env.activity().await, 255);
    // Rate limits: the global 429 (Retry-After 3), the per-route 429 (body
    // retry_after 0.75) and the spent message bucket (Reset-After 1.5).
    let sleeps = env.clock.sleeps();
    for want in [3.0, 0.75, 1.5] {
        assert!(
            sleeps.iter().any(|d| (d.as_secs_f64() - want).abs() < 1e-6),
            "no {want}s wait in {sleeps:?}"
        );
    }
    assert!(c(&r, "pauses") >= 3, "{r:?}");
    // Three pages of general, forward with `after`.
    let calls = message_calls(&shared, "301");
    assert_eq!(calls.len(), 3 + 1, "{calls:?}"); // + the global 429 retry
    assert!(
        calls
            .iter()
            .all(|q| q.contains_key("after") && q["limit"] == "100")
    );
    // Both archive pages of 301 were read.
    let archived = shared
        .lock()
        .unwrap()
        .calls
        .iter()
        .filter(|(p, _)| p == "/channels/301/threads/archived/public")
        .count();
    assert_eq!(archived, 2);
    // Typed rows as discord-backfill writes them.
    let ch = env
        .rows("SELECT name, COALESCE(kind, '') || '/' || COALESCE(parent_id, '') FROM dc_channels WHERE id = '401'")
        .await;
    assert_eq!(
        ch,
        [("thread-a".to_owned(), "GuildPublicThread/301".to_owned())]
    );
    let reply = env
        .rows("SELECT kind, COALESCE(reply_to_id, '') FROM dc_messages WHERE content = 'general 5'")
        .await;
    assert_eq!(reply[0].0, "Reply");
    assert!(!reply[0].1.is_empty());
    let profiles = bdc_collector_discord::store::profiles(&env.storage)
        .await
        .unwrap();
    assert_eq!(profiles.len(), 2);
    assert_eq!(profiles[0].nickname.as_deref(), Some("ann G"));
    // Checkpoint = newest id of each channel.
    let newest = env
        .rows("SELECT channel_id, MAX(id) FROM dc_messages WHERE channel_id = '301' GROUP BY channel_id")
        .await;
    let cp = env
        .storage
        .checkpoints()
        .get("discord", "channel:301")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cp.checkpoint_token(), newest[0].1);
    // The token is in no archived body, header or index.
    let archive = env.archive_text();
    assert!(
        archive.contains("general 1"),
        "the archive holds the bodies"
    );
    assert!(!archive.contains(TOKEN));
    assert!(!format!("{r:?}").contains(TOKEN));
}

both!(incremental_rerun_reads_only_after_the_checkpoint);
async fn incremental_rerun_reads_only_after_the_checkpoint(kind: Kind) {
    let (server, shared) = stand_in(guild()).await;
    let env = Env::new(kind, &server.uri()).await;
    env.run(&[]).await;
    let before = env.fingerprint(true).await;
    let cp302 = env
        .storage
        .checkpoints()
        .get("discord", "channel:302")
        .await
        .unwrap()
        .unwrap()
        .checkpoint_token()
        .to_owned();
    {
        let mut s = shared.lock().unwrap();
        s.calls.clear();
        let bob = user("901", "bob");
        let extra = [
            msg("302", 5000, &bob, "new 1"),
            msg("302", 5001, &bob, "new 2"),
        ];
        s.messages.get_mut("302").unwrap().extend(extra);
    }
    let r = env.run(&[]).await;
    assert_eq!(c(&r, "inserted"), 2, "{r:?}");
    assert_eq!(c(&r, "messages"), 2);
    let calls = message_calls(&shared, "302");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["after"], cp302);
    // General is asked from its checkpoint and gets nothing.
    assert_eq!(message_calls(&shared, "301").len(), 1);
    let after = env.fingerprint(true).await;
    assert_eq!(after.len(), before.len() + 2);
    // A third run changes nothing.
    let r = env.run(&[]).await;
    assert_eq!(c(&r, "inserted") + c(&r, "updated"), 0);
    assert_eq!(env.fingerprint(true).await, after);
    // An edit of an older message: the forward walk does not see it, a
    // window re-run rewrites the row (checkpoint untouched).
    {
        let mut s = shared.lock().unwrap();
        let m = &mut s.messages.get_mut("302").unwrap()[0];
        m["content"] = json!("help 0 (edited)");
        m["edited_timestamp"] = json!("2024-02-01T00:00:00+00:00");
    }
    let r = env.run(&[]).await;
    assert_eq!(c(&r, "updated"), 0);
    let r = env
        .run(&["--since", "2024-01-03", "--channels", "302"])
        .await;
    assert_eq!((c(&r, "updated"), c(&r, "unchanged")), (1, 4), "{r:?}");
    let edited = env
        .rows("SELECT content, COALESCE(CAST(edited_at AS TEXT), '') FROM dc_messages WHERE content LIKE 'help 0%'")
        .await;
    assert_eq!(edited[0].0, "help 0 (edited)");
    assert_eq!(
        env.storage
            .checkpoints()
            .get("discord", "channel:302")
            .await
            .unwrap()
            .unwrap()
            .checkpoint_token(),
        after_cp302(&env).await
    );
}

async fn after_cp302(env: &Env) -> String {
    env.rows("SELECT channel_id, id FROM dc_messages WHERE channel_id = '302' ORDER BY LENGTH(id) DESC, id DESC LIMIT 1")
        .await
        .remove(0)
        .1
}

both!(crash_after_some_pages_then_rerun_equals_one_run);
async fn crash_after_some_pages_then_rerun_equals_one_run(kind: Kind) {
    let (server, _) = stand_in(guild()).await;
    let whole = Env::new(kind, &server.uri()).await;
    whole.run(&[]).await;
    let want = whole.fingerprint(true).await;

    let mut state = guild();
    // The third messages call is general's third page.
    state.fail_messages_call = Some(3);
    let (server, shared) = stand_in(state).await;
    let env = Env::new(kind, &server.uri()).await;
    let e = env.try_run(&[]).await.unwrap_err();
    assert!(e.contains("GET /channels/{channel.id}/messages"), "{e}");
    let partial = env.fingerprint(true).await;
    assert!(
        partial.iter().filter(|l| l.starts_with("msg ")).count() == 199,
        "{partial:?}"
    );
    shared.lock().unwrap().fail_messages_call = None;
    shared.lock().unwrap().calls.clear();
    env.run(&[]).await;
    // Resumed after the two stored pages.
    let calls = message_calls(&shared, "301");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(env.fingerprint(true).await, want);
}

both!(dry_run_writes_nothing);
async fn dry_run_writes_nothing(kind: Kind) {
    let (server, _) = stand_in(guild()).await;
    let env = Env::new(kind, &server.uri()).await;
    let r = env.run(&["--dry-run"]).await;
    assert_eq!(c(&r, "messages"), 255);
    assert_eq!(c(&r, "inserted"), 0);
    let fp = env.fingerprint(true).await;
    assert!(fp.iter().all(|l| !l.starts_with("msg ")), "{fp:?}");
    assert!(fp.iter().any(|l| l == "checkpoint 301 None"));
    assert_eq!(env.activity().await, 0);
    assert!(!env.workspace.path().join("raw").exists());
}

both!(window_walks_backward_and_leaves_the_checkpoint);
async fn window_walks_backward_and_leaves_the_checkpoint(kind: Kind) {
    let (server, shared) = stand_in(guild()).await;
    let env = Env::new(kind, &server.uri()).await;
    // General: one message every 10 minutes from 2024-01-01; the window is
    // 00:00–10:00 (inclusive end: `until` is RFC 3339).
    let r = env
        .run(&[
            "--from-date",
            "2024-01-01",
            "--end-time",
            "2024-01-01T10:00:00Z",
            "--channels",
            "301",
        ])
        .await;
    assert_eq!(c(&r, "inserted"), 61 - 1, "{r:?}"); // one malformed
    assert_eq!(c(&r, "threads"), 3); // threads of 301 come along
    let calls = message_calls(&shared, "301");
    assert!(calls.iter().all(|q| q.contains_key("before")), "{calls:?}");
    assert!(message_calls(&shared, "302").is_empty());
    let fp = env.fingerprint(true).await;
    assert!(fp.iter().any(|l| l == "checkpoint 301 None"), "{fp:?}");
    // Since only: forward from the since snowflake.
    let r = env
        .run(&["--since", "2024-01-02", "--channels", "302"])
        .await;
    assert_eq!(c(&r, "inserted"), 3, "{r:?}");
    let calls = message_calls(&shared, "302");
    assert_eq!(
        calls[0]["after"],
        (snowflake_of(t0() + chrono::Duration::days(1)) - 1).to_string()
    );
    let mut cfg = (*env.config).clone();
    cfg.discord.channel_ids = vec!["general".into()];
    let bad_env = Env {
        config: Arc::new(cfg),
        ..Env::new(kind, &server.uri()).await
    };
    let e = bad_env.try_run(&[]).await.unwrap_err();
    assert!(e.contains("DISCORD_CHANNEL_IDS"), "{e}");
    for bad in [
        &["--since", "2024-02-01", "--until", "2024-01-01"][..],
        &["--since", "yesterday"],
        &["--channels", "general"],
    ] {
        assert!(env.try_run(bad).await.is_err(), "{bad:?}");
    }
}

both!(replay_of_the_archive_gives_the_same_rows);
async fn replay_of_the_archive_gives_the_same_rows(kind: Kind) {
    let (server, _) = stand_in(guild()).await;
    let env = Env::new(kind, &server.uri()).await;
    env.run(&[]).await;
    let want = env.fingerprint(false).await;
    let archive = env.workspace.path().join("raw").join("discord");
    assert!(archive.is_dir());
    let other = Env::new(kind, "http://127.0.0.1:9").await;
    let r = other
        .run(&["--from-archive", "--archive-dir", archive.to_str().unwrap()])
        .await;
    assert!(c(&r, "replayed") > 0);
    assert_eq!(c(&r, "requests"), 0);
    assert_eq!(other.fingerprint(false).await, want);
}

both!(bad_answers_name_the_route_and_forbidden_channels_are_skipped);
async fn bad_answers_name_the_route_and_forbidden_channels_are_skipped(kind: Kind) {
    let mut state = guild();
    state.bad_channels = Some("<html>maintenance</html>".into());
    let (server, shared) = stand_in(state).await;
    let env = Env::new(kind, &server.uri()).await;
    let e = env.try_run(&[]).await.unwrap_err();
    assert!(e.contains("GET /guilds/{guild.id}/channels"), "{e}");
    {
        let mut s = shared.lock().unwrap();
        s.bad_channels = None;
        s.forbidden.push("302".into());
    }
    let r = env.run(&[]).await;
    assert_eq!(c(&r, "channels_skipped"), 1);
    assert_eq!(c(&r, "inserted"), 252);
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

both!(markdown_export_is_committed_and_pushed);
async fn markdown_export_is_committed_and_pushed(kind: Kind) {
    let tmp = tempfile::tempdir().unwrap();
    let bare = tmp.path().join("context.git");
    let work = tmp.path().join("context");
    std::fs::create_dir_all(&bare).unwrap();
    git(&bare, &["init", "--quiet", "--bare"]);
    git(
        tmp.path(),
        &[
            "clone",
            "--quiet",
            bare.to_str().unwrap(),
            work.to_str().unwrap(),
        ],
    );
    git(&work, &["config", "user.name", "Test"]);
    git(&work, &["config", "user.email", "test@example.org"]);
    let (server, shared) = stand_in(guild()).await;
    let env = Env::build(
        kind,
        &server.uri(),
        tempfile::tempdir().unwrap(),
        Some(&work),
    )
    .await;
    let r = env.run(&[]).await;
    // general spans 2024-01-01 .. 2024-01-02 (one month); help, threads too.
    assert_eq!(c(&r, "markdown_files"), 5, "{r:?}");
    let log = git(&bare, &["log", "--oneline", "--all"]);
    assert_eq!(log.lines().count(), 1, "{log}");
    let files = git(&bare, &["ls-tree", "-r", "--name-only", "HEAD"]);
    assert!(
        files.lines().any(|f| f == "Boost-Dev/general/2024-01.md"),
        "{files}"
    );
    let md = std::fs::read_to_string(work.join("Boost-Dev/general/2024-01.md")).unwrap();
    assert!(md.starts_with("# #general — 2024-01\n"), "{md}");
    assert!(md.contains("ann G (@ann)"));
    assert!(md.contains("> reply to [message "));
    assert!(md.contains(
        "- attachment: [log.txt](https://cdn.discordapp.com/attachments/301/77/log.txt)"
    ));
    let first = md.find("general 0\n").unwrap();
    assert!(first < md.find("general 1\n").unwrap(), "time order");
    // Nothing new: no commit.
    let r = env.run(&[]).await;
    assert_eq!(c(&r, "markdown_files"), 0);
    assert_eq!(
        git(&bare, &["log", "--oneline", "--all"]).lines().count(),
        1
    );
    // A new message with --skip-remote-push: committed, not pushed.
    {
        let bob = user("901", "bob");
        shared
            .lock()
            .unwrap()
            .messages
            .get_mut("302")
            .unwrap()
            .push(msg("302", 50_000, &bob, "february"));
    }
    let r = env.run(&["--skip-remote-push"]).await;
    assert_eq!(c(&r, "markdown_files"), 1);
    assert_eq!(git(&work, &["log", "--oneline"]).lines().count(), 2);
    assert_eq!(
        git(&bare, &["log", "--oneline", "--all"]).lines().count(),
        1
    );
    assert!(work.join("Boost-Dev/help/2024-02.md").is_file());
    // --skip-markdown-export and --dry-run touch nothing.
    let r = env.run(&["--skip-markdown-export"]).await;
    assert_eq!(c(&r, "markdown_files"), 0);
    assert!(git(&work, &["status", "--porcelain"]).is_empty());
}

/// Regenerates `examples/discord/raw`, the recorded archive the README demo
/// replays (`bdc run discord --from-archive`): the sample server of
/// `examples/discord/boost-general-2024-03.json`, April 2024.
/// `cargo test -p bdc-collector-discord --test live -- --ignored record_demo_archive`
#[tokio::test(flavor = "multi_thread")]
#[ignore = "writes examples/discord/raw"]
async fn record_demo_archive() {
    let g = "1214000000000000001";
    let at = |d: u32, h: u32, m: u32| {
        DateTime::parse_from_rfc3339(&format!("2024-04-{d:02}T{h:02}:{m:02}:00Z"))
            .unwrap()
            .with_timezone(&Utc)
    };
    let alice = json!({"id": "331718482485837825", "username": "alice", "global_name": "Alice", "discriminator": "0", "avatar": null, "bot": false});
    let bob = json!({"id": "331718482485837826", "username": "bob", "global_name": "Bob", "discriminator": "0", "avatar": null, "bot": false});
    let m = |ch: &str, t: DateTime<Utc>, a: &Value, text: &str| {
        let id = snowflake_of(t) + 1;
        json!({"id": id.to_string(), "channel_id": ch, "type": 0, "content": text,
               "timestamp": time_of(id).unwrap().to_rfc3339(), "edited_timestamp": null, "pinned": false,
               "author": a, "attachments": [], "reactions": [], "mentions": []})
    };
    let mut s = State {
        remaining: 4,
        guild: Some(json!({"id": g, "name": "C++ Alliance (sample)", "icon": null})),
        ..State::default()
    };
    s.channels = vec![
        json!({"id": "1214000000000000002", "type": 4, "guild_id": g, "name": "Boost", "parent_id": null}),
        json!({"id": "1214000000000000010", "type": 0, "guild_id": g, "name": "boost-general", "parent_id": "1214000000000000002", "topic": "Sample data for the offline demo"}),
        json!({"id": "1214000000000000011", "type": 0, "guild_id": g, "name": "boost-help", "parent_id": "1214000000000000002", "topic": null}),
    ];
    s.active_threads = vec![
        json!({"id": "1214000000000000020", "type": 11, "guild_id": g,
        "parent_id": "1214000000000000011", "name": "cmake-find-package",
        "thread_metadata": {"archived": false, "archive_timestamp": "2024-04-03T10:00:00+00:00"}}),
    ];
    let mut general = vec![
        m(
            "1214000000000000010",
            at(2, 9, 0),
            &alice,
            "Boost 1.85 beta is out: please test the new Boost.Charconv and Boost.Scope.",
        ),
        m(
            "1214000000000000010",
            at(2, 9, 30),
            &bob,
            "Built it with GCC 14 and Clang 18, all green here.",
        ),
    ];
    general[1]["type"] = json!(19);
    general[1]["message_reference"] =
        json!({"message_id": general[0]["id"], "channel_id": "1214000000000000010"});
    s.messages.insert("1214000000000000010".into(), general);
    let mut help = vec![m(
        "1214000000000000011",
        at(3, 10, 0),
        &bob,
        "find_package(Boost CONFIG) cannot find Boost.Json on Windows; any hints?",
    )];
    help[0]["attachments"] = json!([{"id": "1214000000000000900", "filename": "cmake-output.txt", "size": 2048,
        "url": "https://cdn.discordapp.com/attachments/1214000000000000011/1214000000000000900/cmake-output.txt"}]);
    s.messages.insert("1214000000000000011".into(), help);
    s.messages.insert(
        "1214000000000000020".into(),
        vec![
            m(
                "1214000000000000020",
                at(3, 10, 5),
                &alice,
                "Set Boost_DIR to the lib/cmake/Boost-1.85.0 folder of your install.",
            ),
            m(
                "1214000000000000020",
                at(3, 10, 20),
                &bob,
                "That did it, thanks!",
            ),
        ],
    );
    let (server, _) = stand_in(s).await;
    let mut env = Env::new(Kind::Sqlite, &server.uri()).await;
    env.clock = Arc::new(ManualClock::new(at(10, 0, 0)));
    let cfg = (*env.config).clone();
    let mut cfg = cfg;
    cfg.discord.guild_id = Some(g.into());
    env.config = Arc::new(cfg);
    let r = env.run(&[]).await;
    assert_eq!(c(&r, "inserted"), 5, "{r:?}");
    let src = env.workspace.path().join("raw").join("discord");
    let dst = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../examples/discord/raw");
    let _ = std::fs::remove_dir_all(&dst);
    let mut stack = vec![src.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let to = dst.join(p.strip_prefix(&src).unwrap());
            if p.is_dir() {
                stack.push(p);
            } else {
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(&p, &to).unwrap();
            }
        }
    }
    // Real URLs, no wall-clock dates: the bundle is the same on every run.
    let local = format!("{}/api/v10", server.uri());
    let index = std::fs::read_to_string(dst.join("index.jsonl")).unwrap();
    let mut out = String::new();
    for line in index.lines() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        let url = v["url"]
            .as_str()
            .unwrap()
            .replace(&local, "https://discord.com/api/v10");
        v["url"] = json!(url);
        if let Some(h) = v["headers"].as_object_mut() {
            h.remove("date");
        }
        out.push_str(&serde_json::to_string(&v).unwrap());
        out.push('\n');
    }
    std::fs::write(dst.join("index.jsonl"), out).unwrap();
}

both!(backfill_writes_the_markdown_export_too);
async fn backfill_writes_the_markdown_export_too(kind: Kind) {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("context");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "--quiet"]);
    let env = Env::build(
        kind,
        "http://127.0.0.1:9",
        tempfile::tempdir().unwrap(),
        Some(&work),
    )
    .await;
    let export = tmp.path().join("export.json");
    std::fs::write(
        &export,
        // DiscordChatExporter's key order: guild first.
        r#"{"guild": {"id": "1", "name": "Sample", "iconUrl": null},
            "channel": {"id": "2", "type": "GuildTextChat", "categoryId": null, "category": null, "name": "chat", "topic": null},
            "messages": [
                {"id": "10", "type": "Default", "timestamp": "2024-03-05T09:00:00+00:00", "content": "hello",
                 "author": {"id": "5", "name": "ann", "discriminator": "0000", "nickname": "Ann", "isBot": false}}
            ]}"#,
    )
    .unwrap();
    let r = bdc_collector_discord::DiscordBackfillCollector
        .run(&env.ctx(&["--path", export.to_str().unwrap(), "--skip-remote-push"]))
        .await
        .unwrap();
    assert_eq!(c(&r, "inserted"), 1);
    let md = std::fs::read_to_string(work.join("Sample/chat/2024-03.md")).unwrap();
    assert!(md.contains("hello") && md.contains("Ann (@ann)"), "{md}");
    assert_eq!(git(&work, &["log", "--oneline"]).lines().count(), 1);
}
