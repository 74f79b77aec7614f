//! Benchmark of the identity hub's merge (`bdc run identities`): generated
//! profiles (`BDC_BENCH_IDENTITY_PROFILES`, default 1,000,000; `--quick`:
//! 50,000) from four sources for one person per four profiles — a GitHub
//! account with its public address, git author addresses (a quarter of them GitHub `noreply`
//! addresses of that account), a mailing-list address written obfuscated
//! (`user at example.org`) and a Slack profile with the same address; every
//! tenth person shares a display name with another (never merged on names).
//! Reported: profiles resolved per second on the first resolution (every
//! identity created) and on an unchanged re-resolution.

use std::time::Instant;

use anyhow::Result;
use bdc_identity::{ProfileInput, Rules, record_profiles};
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};

use crate::{Row, backend_name};

fn profiles(n: usize) -> Vec<ProfileInput> {
    (0..n)
        .map(|k| {
            let p = k / 4;
            let name = format!("Person {}", if p % 10 == 0 { p + 1 } else { p });
            let addr = format!("user{p}@example.org");
            match k % 4 {
                0 => ProfileInput::new("github", (1_000_000 + p).to_string())
                    .name(Some(&name))
                    .login(Some(&format!("user{p}")))
                    .email(Some(&addr))
                    .acts_as("github", Some(&format!("user{p}"))),
                1 => {
                    let email = if p % 4 == 0 {
                        format!("{}+user{p}@users.noreply.github.com", 1_000_000 + p)
                    } else {
                        addr.clone()
                    };
                    ProfileInput::new("git", email.clone())
                        .name(Some(&name))
                        .email(Some(&email))
                        .acts_as("git", Some(&email))
                }
                2 => {
                    let shown = format!("user{p} at example.org");
                    ProfileInput::new("mailing-list", shown.clone())
                        .name(Some(&name))
                        .email(Some(&shown))
                        .acts_as("mailing-list", Some(&shown))
                }
                _ => ProfileInput::new("slack", format!("U{p:09}"))
                    .name(Some(&name))
                    .email(Some(&addr))
                    .acts_as("slack", Some(&format!("U{p:09}"))),
            }
        })
        .collect()
}

pub async fn run(kind: Kind, quick: bool) -> Result<Vec<Row>> {
    let backend = backend_name(kind);
    let n: usize = std::env::var("BDC_BENCH_IDENTITY_PROFILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 50_000 } else { 1_000_000 });
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    storage.migrate_parts(&[&bdc_identity::SCHEMA]).await?;
    let all = profiles(n);
    let start = Instant::now();
    for chunk in all.chunks(10_000) {
        let mut tx = storage.begin().await?;
        record_profiles(&mut tx, chunk).await?;
        tx.commit().await?;
    }
    let record_rate = n as f64 / start.elapsed().as_secs_f64();
    drop(all);
    let rules = Rules::default();
    let start = Instant::now();
    let first = bdc_identity::resolve(&storage, &rules)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let first_rate = n as f64 / start.elapsed().as_secs_f64();
    anyhow::ensure!(
        first.people as usize == n / 4,
        "expected {} people, resolved {first:?}",
        n / 4
    );
    let start = Instant::now();
    bdc_identity::resolve(&storage, &rules)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let again_rate = n as f64 / start.elapsed().as_secs_f64();
    storage.close().await;
    drop(db);
    let size = n.to_string();
    Ok(vec![
        Row {
            bench: "identities: profiles recorded".into(),
            backend,
            size: size.clone(),
            value: record_rate,
            unit: "profiles/s",
        },
        Row {
            bench: "identities: first resolution (all merged)".into(),
            backend,
            size: size.clone(),
            value: first_rate,
            unit: "profiles/s",
        },
        Row {
            bench: "identities: unchanged re-resolution".into(),
            backend,
            size,
            value: again_rate,
            unit: "profiles/s",
        },
    ])
}
