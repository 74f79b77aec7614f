//! Benchmark of the live `discord` collector: a wiremock stand-in of the
//! Discord REST API v10 serving one guild with one text channel of
//! `BDC_BENCH_DISCORD_LIVE_MESSAGES` messages (default 100,000; `--quick`:
//! 20,000) in pages of 100 (`after` paging, bucket headers never spent),
//! collected through `DiscordCollector` (HTTP, JSON, conversion, one
//! transaction per page with its checkpoint; archive on). Reported:
//! messages stored per second, audit capture off and on.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use bdc_audit::AuditConfig;
use bdc_collector::{CollectContext, Collector};
use bdc_collector_discord::DiscordCollector;
use bdc_collector_discord::api::{snowflake_of, time_of};
use bdc_config::Config;
use bdc_core::Actor;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::{Row, backend_name};

const TOKEN: &str = "bench-discord-token";

/// Pre-rendered message pages keyed by the `after` id that asks for them.
struct Pages {
    ids: Vec<u64>,
    bodies: Vec<Vec<u8>>,
}

struct Fake(Arc<Pages>);

impl Respond for Fake {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let path = req.url.path();
        let ok = |body: Value| {
            ResponseTemplate::new(200)
                .insert_header("X-RateLimit-Bucket", "bench")
                .insert_header("X-RateLimit-Remaining", "49")
                .insert_header("X-RateLimit-Reset-After", "1.0")
                .set_body_json(body)
        };
        if path.ends_with("/channels") {
            return ok(json!([
                {"id": "2", "type": 0, "guild_id": "1", "name": "bench", "parent_id": null}
            ]));
        }
        if path.ends_with("/threads/active") {
            return ok(json!({"threads": [], "members": []}));
        }
        if path.ends_with("/threads/archived/public") {
            return ok(json!({"threads": [], "members": [], "has_more": false}));
        }
        if path.ends_with("/messages") {
            let after: u64 = req
                .url
                .query_pairs()
                .find(|(k, _)| k == "after")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let i = self.0.ids.partition_point(|id| *id <= after);
            let page = i / 100;
            let body = self
                .0
                .bodies
                .get(page)
                .cloned()
                .unwrap_or_else(|| b"[]".to_vec());
            return ResponseTemplate::new(200)
                .insert_header("X-RateLimit-Bucket", "bench-messages")
                .insert_header("X-RateLimit-Remaining", "49")
                .insert_header("X-RateLimit-Reset-After", "1.0")
                .set_body_raw(body, "application/json");
        }
        ok(json!({"id": "1", "name": "Bench", "icon": null}))
    }
}

fn pages(n: u64) -> Pages {
    let start = chrono::DateTime::parse_from_rfc3339("2024-03-01T00:00:00Z")
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_default();
    let ids: Vec<u64> = (0..n)
        .map(|i| snowflake_of(start + chrono::Duration::seconds(i as i64)) + (i % 4096))
        .collect();
    let bodies = ids
        .chunks(100)
        .map(|chunk| {
            let msgs: Vec<Value> = chunk
                .iter()
                .rev()
                .map(|id| {
                    let a = 100 + id % 7;
                    json!({"id": id.to_string(), "channel_id": "2", "type": 0,
                           "content": format!("Message {id}: has anyone benchmarked Boost.Asio with io_uring on recent kernels?"),
                           "timestamp": time_of(*id).map(|t| t.to_rfc3339()).unwrap_or_default(),
                           "edited_timestamp": null, "pinned": false,
                           "author": {"id": a.to_string(), "username": format!("user{a}"), "global_name": format!("User {a}"), "discriminator": "0"},
                           "attachments": [], "reactions": [{"count": 1, "emoji": {"id": null, "name": "+1"}}], "mentions": []})
                })
                .collect();
            serde_json::to_vec(&msgs).unwrap_or_default()
        })
        .collect();
    Pages { ids, bodies }
}

async fn collect(kind: Kind, server: &str, n: u64, audit: bool) -> Result<f64> {
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    storage.migrate().await?;
    storage
        .migrate_parts(&[&bdc_collector_discord::SCHEMA, &bdc_audit::AUDIT])
        .await?;
    let storage = storage.with_actor(&Actor::job("discord", "bench-discord-live"));
    if audit {
        let cfg = AuditConfig::parse("cover_platform_tables: false\n", "bench")?;
        bdc_audit::triggers::cover_tables(
            &storage,
            &cfg,
            &[
                "dc_messages".into(),
                "dc_users".into(),
                "activity_records".into(),
            ],
            false,
        )
        .await?;
    }
    let workspace = tempfile::tempdir()?;
    let ws = workspace.path().display().to_string();
    let url = db.url().to_owned();
    let api = format!("{server}/api/v10");
    let config = Arc::new(Config::from_lookup(|k| match k {
        "WORKSPACE_DIR" => Some(ws.clone()),
        "DATABASE_URL" => Some(url.clone()),
        "DISCORD_BOT_TOKEN" => Some(TOKEN.into()),
        "DISCORD_GUILD_ID" => Some("1".into()),
        "DISCORD_API_URL" => Some(api.clone()),
        _ => None,
    })?);
    let ctx = CollectContext {
        run_id: "bench-discord-live".into(),
        command: "discord".into(),
        args: Vec::new(),
        schedule_group: None,
        storage: storage.clone(),
        config,
        interactive: false,
    };
    let start = Instant::now();
    let r = DiscordCollector::new()
        .run(&ctx)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        r.count("inserted") == n,
        "stored {} of {n}",
        r.count("inserted")
    );
    storage.close().await;
    Ok(n as f64 / secs)
}

pub async fn run(kind: Kind, quick: bool) -> Result<Vec<Row>> {
    let n: u64 = std::env::var("BDC_BENCH_DISCORD_LIVE_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 20_000 } else { 100_000 });
    let backend = backend_name(kind);
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::path_regex("^/api/v10/.*"))
        .respond_with(Fake(Arc::new(pages(n))))
        .mount(&server)
        .await;
    let mut rows = Vec::new();
    for audit in [false, true] {
        let rate = collect(kind, &server.uri(), n, audit).await?;
        rows.push(Row {
            bench: format!(
                "discord live (stand-in), audit {}",
                if audit { "on" } else { "off" }
            ),
            backend,
            size: n.to_string(),
            value: rate,
            unit: "messages/s",
        });
    }
    Ok(rows)
}
