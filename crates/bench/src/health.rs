//! `GET /health/` latency over loopback against an in-process server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bdc_config::Config;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};

use crate::{Row, backend_name, percentile_ms};

pub async fn run(kind: Kind, quick: bool) -> Result<Vec<Row>> {
    let mut rows = measure(kind, quick, Duration::from_secs(1), "cached 1 s").await?;
    rows.extend(measure(kind, quick, Duration::ZERO, "uncached").await?);
    Ok(rows)
}

async fn measure(kind: Kind, quick: bool, ttl: Duration, label: &str) -> Result<Vec<Row>> {
    let requests = if quick { 500 } else { 5_000 };
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    storage.migrate().await?;
    let config = Arc::new(Config::from_lookup(|k| match k {
        "HEALTH_CELERY_MIN_WORKERS" => Some("0".to_owned()),
        _ => None,
    })?);
    let state = bdc_server::AppState {
        storage: storage.clone(),
        config,
        schedule: None,
        schedule_error: None,
        metrics: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = bdc_server::ServerOptions {
        health_cache_ttl: ttl,
        ..Default::default()
    };
    let server = tokio::spawn(bdc_server::serve_with_options(
        listener,
        state,
        options,
        async {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/health/");
    let mut lat = Vec::with_capacity(requests);
    // Warm up the connection and the cache.
    client.get(&url).send().await.context("warm-up request")?;
    let start = Instant::now();
    for _ in 0..requests {
        let t = Instant::now();
        let resp = client.get(&url).send().await?;
        let _ = resp.bytes().await?;
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    let _ = stop.send(());
    let _ = server.await;
    storage.close().await;
    lat.sort();
    let backend = backend_name(kind);
    let size = format!("{requests} req");
    let mk = |bench: &str, value: f64, unit: &'static str| Row {
        bench: bench.to_owned(),
        backend,
        size: size.clone(),
        value,
        unit,
    };
    Ok(vec![
        mk(
            &format!("GET /health/ p50, 1 client, {label}"),
            percentile_ms(&lat, 50.0),
            "ms",
        ),
        mk(
            &format!("GET /health/ p99, 1 client, {label}"),
            percentile_ms(&lat, 99.0),
            "ms",
        ),
        mk(
            &format!("GET /health/ 1 client, {label}"),
            requests as f64
                / total
                    .as_secs_f64()
                    .max(Duration::from_micros(1).as_secs_f64()),
            "req/s",
        ),
    ])
}
