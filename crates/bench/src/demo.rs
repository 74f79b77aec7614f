//! `bdc demo` wall time (the README's first command; issue target: under
//! 10 s on a warm build): a fresh database, then a re-run. Runs the `bdc`
//! binary next to this one (`cargo build --release -p bdc` first).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bdc_testsupport::{Kind, TestDb};

use crate::{Row, backend_name};

fn bdc_binary() -> Result<PathBuf> {
    let me = std::env::current_exe().context("locating bdc-bench")?;
    let bin = me
        .parent()
        .map(|d| d.join(format!("bdc{}", std::env::consts::EXE_SUFFIX)))
        .context("the bench binary has no directory")?;
    if !bin.exists() {
        bail!(
            "{} not found: build it first (cargo build --release -p bdc)",
            bin.display()
        );
    }
    Ok(bin)
}

fn demo_once(bin: &Path, url: &str, ws: &Path) -> Result<f64> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let started = Instant::now();
    let out = std::process::Command::new(bin)
        .arg("demo")
        .env("DATABASE_URL", url)
        .env("WORKSPACE_DIR", ws)
        .env("BDC_WG21_INDEX_URL", "http://127.0.0.1:9/unreachable.json")
        .env(
            "BDC_MAILING_LIST_ARCHIVE_URL",
            "http://127.0.0.1:9/archives",
        )
        .current_dir(root)
        .output()
        .context("running bdc demo")?;
    let secs = started.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "bdc demo failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(secs)
}

pub async fn run(kind: Kind, _quick: bool) -> Result<Vec<Row>> {
    let bin = bdc_binary()?;
    let db = TestDb::new(kind).await;
    let ws = tempfile::tempdir()?;
    if kind == Kind::Postgres {
        let st = std::process::Command::new(&bin)
            .arg("migrate")
            .env("DATABASE_URL", db.url())
            .env("WORKSPACE_DIR", ws.path())
            .output()?;
        if !st.status.success() {
            bail!(
                "bdc migrate failed: {}",
                String::from_utf8_lossy(&st.stderr)
            );
        }
    }
    let url = db.url().to_owned();
    let path = ws.path().to_path_buf();
    let (first, again) = tokio::task::spawn_blocking(move || -> Result<(f64, f64)> {
        Ok((demo_once(&bin, &url, &path)?, demo_once(&bin, &url, &path)?))
    })
    .await??;
    let mk = |bench: &str, value: f64| Row {
        bench: bench.to_owned(),
        backend: backend_name(kind),
        size: "demo".into(),
        value,
        unit: "s",
    };
    Ok(vec![
        mk("demo: bdc demo, fresh database (wall)", first),
        mk("demo: bdc demo, re-run (wall)", again),
    ])
}
