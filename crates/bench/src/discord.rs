//! Benchmark of `discord-backfill`: DiscordChatExporter JSON exports
//! generated here (`--quick`: 100k messages; full: 1M; override with
//! `BDC_BENCH_DISCORD_MESSAGES`), imported through the collector with audit
//! capture off and on (triggers on `dc_messages`, `dc_users`,
//! `activity_records`). Reported: messages stored per second, and the
//! process's peak resident memory (`VmHWM`) after a 100k-message import and
//! after the big one: a streaming importer keeps both about the same.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use bdc_audit::AuditConfig;
use bdc_collector::{CollectContext, Collector};
use bdc_config::Config;
use bdc_core::Actor;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};

use crate::collectors_mail_git::vm_hwm_mib;
use crate::{Row, backend_name};

/// Write an export of `n` messages (ids from `first`) in 7-author rotation.
fn generate(path: &Path, first: u64, n: u64) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    write!(
        w,
        r#"{{"guild":{{"id":"1","name":"Bench","iconUrl":null}},"channel":{{"id":"2","type":"GuildTextChat","categoryId":"3","category":"Text","name":"bench","topic":null}},"dateRange":{{"after":null,"before":null}},"exportedAt":"2024-04-01T00:00:00+00:00","messages":["#
    )?;
    for i in 0..n {
        let id = first + i;
        let a = 100 + id % 7;
        if i > 0 {
            w.write_all(b",")?;
        }
        write!(
            w,
            r#"{{"id":"{id}","type":"Default","timestamp":"2024-03-{:02}T{:02}:{:02}:00+00:00","timestampEdited":null,"isPinned":false,"content":"Message {id}: has anyone benchmarked Boost.Asio with io_uring on recent kernels? Results welcome.","author":{{"id":"{a}","name":"user{a}","discriminator":"0000","nickname":"User {a}","isBot":false,"avatarUrl":null}},"attachments":[],"embeds":[],"reactions":[{{"emoji":{{"id":null,"name":"+1"}},"count":1}}],"mentions":[],"reference":null}}"#,
            1 + id % 28,
            id % 24,
            id % 60
        )?;
    }
    write!(w, r#"],"messageCount":{n}}}"#)?;
    w.flush()?;
    Ok(())
}

fn ctx(storage: &Storage, config: &Arc<Config>, args: Vec<String>) -> CollectContext {
    CollectContext {
        run_id: "bench-discord".into(),
        command: "discord-backfill".into(),
        args,
        schedule_group: None,
        storage: storage.clone(),
        config: Arc::clone(config),
        interactive: false,
    }
}

/// Import `file` into a fresh database; returns messages/s.
async fn import(kind: Kind, file: &Path, expect: u64, audit: bool) -> Result<f64> {
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    storage
        .migrate_parts(&[&bdc_collector_discord::SCHEMA, &bdc_audit::AUDIT])
        .await?;
    let storage = storage.with_actor(&Actor::job("discord-backfill", "bench-discord"));
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
    let config = Arc::new(Config::from_lookup(|k| match k {
        "WORKSPACE_DIR" => Some(ws.clone()),
        "DATABASE_URL" => Some(url.clone()),
        _ => None,
    })?);
    let args = vec!["--path".to_owned(), file.display().to_string()];
    let start = Instant::now();
    let r = bdc_collector_discord::DiscordBackfillCollector
        .run(&ctx(&storage, &config, args))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        r.count("inserted") == expect,
        "stored {} of {expect}",
        r.count("inserted")
    );
    storage.close().await;
    Ok(expect as f64 / secs)
}

pub async fn run(kind: Kind, quick: bool) -> Result<Vec<Row>> {
    let n: u64 = std::env::var("BDC_BENCH_DISCORD_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 100_000 } else { 1_000_000 });
    let backend = backend_name(kind);
    let dir = tempfile::tempdir()?;
    let small = dir.path().join("small.json");
    let big = dir.path().join("big.json");
    generate(&small, 1_000_000_000, 100_000)?;
    generate(&big, 2_000_000_000, n)?;
    let mut rows = Vec::new();
    let rate = import(kind, &small, 100_000, false).await?;
    let hwm_small = vm_hwm_mib();
    rows.push(Row {
        bench: "discord-backfill import, audit off".into(),
        backend,
        size: "100k".into(),
        value: rate,
        unit: "messages/s",
    });
    let rate = import(kind, &big, n, false).await?;
    let hwm_big = vm_hwm_mib();
    rows.push(Row {
        bench: "discord-backfill import, audit off".into(),
        backend,
        size: n.to_string(),
        value: rate,
        unit: "messages/s",
    });
    let rate = import(kind, &small, 100_000, true).await?;
    rows.push(Row {
        bench: "discord-backfill import, audit on".into(),
        backend,
        size: "100k".into(),
        value: rate,
        unit: "messages/s",
    });
    rows.push(Row {
        bench: "discord-backfill peak RSS after 100k".into(),
        backend,
        size: "100k".into(),
        value: hwm_small,
        unit: "MiB VmHWM",
    });
    rows.push(Row {
        bench: "discord-backfill peak RSS after big".into(),
        backend,
        size: n.to_string(),
        value: hwm_big,
        unit: "MiB VmHWM",
    });
    Ok(rows)
}
