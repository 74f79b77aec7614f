//! Activity-record upsert throughput, in batches, through the storage layer.

use std::time::Instant;

use anyhow::Result;
use bdc_core::ActivityRecord;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};
use chrono::{Duration, TimeZone, Utc};

use crate::{Row, backend_name};

fn records(n: usize, revision: u32) -> Result<Vec<ActivityRecord>> {
    let base = Utc
        .with_ymd_and_hms(2020, 1, 1, 0, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("bad base date"))?;
    (0..n)
        .map(|i| {
            Ok(ActivityRecord::new(
                "bench",
                format!("item-{i}"),
                base + Duration::minutes(i as i64),
                "event",
            )?
            .with_actor(format!("user-{}", i % 97))?
            .with_title(format!("Benchmark item {i} rev {revision}"))
            .with_url(format!("https://example.org/items/{i}"))?
            .with_payload(serde_json::json!({"i": i, "rev": revision, "labels": ["a", "b"]}))?)
        })
        .collect()
}

pub async fn run(kind: Kind, quick: bool) -> Result<Vec<Row>> {
    let n = if quick { 5_000 } else { 50_000 };
    let batch = 1_000;
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    storage.migrate().await?;
    let backend = backend_name(kind);
    let mut rows = Vec::new();
    for (label, data) in [
        ("insert (new rows)", records(n, 1)?),
        ("re-upsert (unchanged rows)", records(n, 1)?),
        ("upsert (every row changed)", records(n, 2)?),
    ] {
        let start = Instant::now();
        for chunk in data.chunks(batch) {
            storage
                .activity()
                .upsert(chunk, Some("bench"), None)
                .await?;
        }
        let secs = start.elapsed().as_secs_f64();
        rows.push(Row {
            bench: format!("activity upsert: {label}"),
            backend,
            size: format!("{n}/{batch}"),
            value: n as f64 / secs,
            unit: "records/s",
        });
    }
    storage.close().await;
    Ok(rows)
}
