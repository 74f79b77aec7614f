//! Benchmark of the `slack` collector's workspace-export import
//! (`--messages-json`): a standard export generated here (50 users, 10
//! channels, day files of 1,000 messages, one thread reply in ten, one
//! reaction in five; `BDC_BENCH_SLACK_MESSAGES` messages, default 100k,
//! `--quick` 20k), imported through the collector with audit capture off and
//! on (triggers on `sl_messages`, `sl_users`, `activity_records`). Reported:
//! messages stored per second, and the process's peak resident memory
//! (`VmHWM`) after the import: the importer streams day files in batches,
//! so it stays flat as the export grows.

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

const CHANNELS: u64 = 10;
const USERS: u64 = 50;
const PER_DAY: u64 = 1000;

/// Write an export of `n` messages under `root`.
fn generate(root: &Path, n: u64) -> Result<()> {
    std::fs::create_dir_all(root)?;
    let users: Vec<serde_json::Value> = (0..USERS)
        .map(|u| {
            serde_json::json!({"id": format!("U{u:05}"), "team_id": "TBENCH", "name": format!("user{u}"),
                "real_name": format!("User {u}"), "deleted": false, "is_bot": false,
                "profile": {"real_name": format!("User {u}"), "display_name": format!("user{u}"),
                            "email": format!("user{u}@example.org")}})
        })
        .collect();
    std::fs::write(root.join("users.json"), serde_json::to_vec(&users)?)?;
    let channels: Vec<serde_json::Value> = (0..CHANNELS)
        .map(|c| {
            serde_json::json!({"id": format!("C{c:05}"), "name": format!("chan-{c}"), "created": 1_700_000_000,
                "creator": "U00000", "members": (0..USERS).map(|u| format!("U{u:05}")).collect::<Vec<_>>()})
        })
        .collect();
    std::fs::write(root.join("channels.json"), serde_json::to_vec(&channels)?)?;
    let per_channel = n.div_ceil(CHANNELS);
    let base: i64 = 1_704_067_200; // 2024-01-01
    let mut written = 0u64;
    for c in 0..CHANNELS {
        let dir = root.join(format!("chan-{c}"));
        std::fs::create_dir_all(&dir)?;
        let mut i = 0u64;
        let mut day = 0i64;
        while i < per_channel && written < n {
            let date = chrono::DateTime::from_timestamp(base + day * 86_400, 0)
                .context("date")?
                .format("%Y-%m-%d");
            let path = dir.join(format!("{date}.json"));
            let file = std::fs::File::create(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            w.write_all(b"[")?;
            let mut k = 0u64;
            while k < PER_DAY && i < per_channel && written < n {
                if k > 0 {
                    w.write_all(b",")?;
                }
                let ts = format!("{}.{:06}", base + day * 86_400 + (k as i64) * 60, c);
                let user = (i + c) % USERS;
                let thread = if i % 10 == 9 {
                    let parent = format!(
                        "{}.{:06}",
                        base + day * 86_400 + (k.saturating_sub(1) as i64) * 60,
                        c
                    );
                    format!(r#","thread_ts":"{parent}""#)
                } else {
                    String::new()
                };
                let reaction = if i.is_multiple_of(5) {
                    r#","reactions":[{"name":"+1","users":["U00001"],"count":1}]"#
                } else {
                    ""
                };
                write!(
                    w,
                    r#"{{"type":"message","user":"U{user:05}","ts":"{ts}","text":"Message {i} in chan-{c}: has anyone benchmarked Boost.Asio with io_uring on recent kernels? Results welcome."{thread}{reaction},"team":"TBENCH","user_profile":{{"name":"user{user}"}}}}"#
                )?;
                k += 1;
                i += 1;
                written += 1;
            }
            w.write_all(b"]")?;
            w.flush()?;
            day += 1;
        }
    }
    Ok(())
}

fn ctx(storage: &Storage, config: &Arc<Config>, args: Vec<String>) -> CollectContext {
    CollectContext {
        run_id: "bench-slack".into(),
        command: "slack".into(),
        args,
        schedule_group: None,
        storage: storage.clone(),
        config: Arc::clone(config),
        interactive: false,
    }
}

/// Import the export at `root` into a fresh database; returns messages/s.
async fn import(kind: Kind, root: &Path, expect: u64, audit: bool) -> Result<f64> {
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    storage
        .migrate_parts(&[
            &bdc_collector_slack::SCHEMA,
            &bdc_identity::SCHEMA,
            &bdc_audit::AUDIT,
        ])
        .await?;
    let storage = storage.with_actor(&Actor::job("slack", "bench-slack"));
    if audit {
        let cfg = AuditConfig::parse("cover_platform_tables: false\n", "bench")?;
        bdc_audit::triggers::cover_tables(
            &storage,
            &cfg,
            &[
                "sl_messages".into(),
                "sl_users".into(),
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
    let args = vec!["--messages-json".to_owned(), root.display().to_string()];
    let start = Instant::now();
    let r = bdc_collector_slack::SlackCollector::new()
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
    let n: u64 = std::env::var("BDC_BENCH_SLACK_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 20_000 } else { 100_000 });
    let backend = backend_name(kind);
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("export");
    generate(&root, n)?;
    let size = if n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    };
    let mut rows = Vec::new();
    let rate = import(kind, &root, n, false).await?;
    let hwm = vm_hwm_mib();
    rows.push(Row {
        bench: "slack export import, audit off".into(),
        backend,
        size: size.clone(),
        value: rate,
        unit: "messages/s",
    });
    let rate = import(kind, &root, n, true).await?;
    rows.push(Row {
        bench: "slack export import, audit on".into(),
        backend,
        size: size.clone(),
        value: rate,
        unit: "messages/s",
    });
    rows.push(Row {
        bench: "slack export import peak RSS".into(),
        backend,
        size,
        value: hwm,
        unit: "MiB VmHWM",
    });
    Ok(rows)
}
