//! Benchmarks of the `mailing-list` and `git-history` collectors.
//!
//! * `mbox`: a generated archive (`--quick`: 50 MB; full: 1 GB; override
//!   with `BDC_BENCH_MBOX_MB`) with plain, quoted-printable, base64 and
//!   multipart messages in threads of 10. Measured: parse + thread only
//!   (MB/s, messages/s), then parse + thread + store through the collector
//!   (MB/s, messages/s) per backend, and the process's peak resident memory
//!   (`VmHWM` from `/proc/self/status`) after a small archive and after the
//!   big one: a flat pipeline keeps both the same.
//! * `git-history`: a repository generated with `git fast-import`
//!   (`--quick`: 10k commits; full: 100k), collected in full, then after
//!   1,000 more commits (incremental), then unchanged (steady state).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use bdc_collector::{CollectContext, Collector};
use bdc_config::Config;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};

use crate::{Row, backend_name};

/// Peak resident set size of this process in MiB (`VmHWM`).
pub fn vm_hwm_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Write an mbox of about `bytes` bytes; returns the message count.
fn generate_mbox(path: &Path, bytes: u64) -> Result<u64> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let filler =
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\n"
            .repeat(20);
    let mut written = 0u64;
    let mut i = 0u64;
    while written < bytes {
        let mut m = Vec::with_capacity(2400);
        let day = 1 + (i / 5000) % 28;
        writeln!(
            m,
            "From user{}@example.org Mon Jan {day:>2} 10:00:00 2024",
            i % 500
        )?;
        writeln!(m, "Message-ID: <m{i}@bench.example>")?;
        writeln!(m, "From: User {} <user{}@example.org>", i % 500, i % 500)?;
        writeln!(
            m,
            "Date: Mon, {day} Jan 2024 10:{:02}:{:02} +0000",
            (i / 60) % 60,
            i % 60
        )?;
        let root = i - i % 10;
        if i.is_multiple_of(10) {
            writeln!(m, "Subject: topic {i}")?;
        } else {
            writeln!(m, "Subject: Re: topic {root}")?;
            writeln!(m, "In-Reply-To: <m{}@bench.example>", i - 1)?;
            writeln!(
                m,
                "References: <m{root}@bench.example> <m{}@bench.example>",
                i - 1
            )?;
        }
        match i % 4 {
            0 => {
                writeln!(m, "Content-Type: text/plain; charset=ISO-8859-1")?;
                writeln!(m, "Content-Transfer-Encoding: quoted-printable\n")?;
                writeln!(m, "Gr=FC=DFe {i}\n{filler}")?;
            }
            1 => {
                writeln!(
                    m,
                    "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b{i}\"\n"
                )?;
                writeln!(
                    m,
                    "--b{i}\nContent-Type: text/plain; charset=utf-8\n\nbody {i}\n{filler}"
                )?;
                writeln!(
                    m,
                    "--b{i}\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAECAwQFBgcICQ==\n--b{i}--"
                )?;
            }
            _ => {
                writeln!(m, "\nPlain body {i}.\n>From an escaped line\n{filler}")?;
            }
        }
        writeln!(m)?;
        written += m.len() as u64;
        w.write_all(&m)?;
        i += 1;
    }
    w.flush()?;
    Ok(i)
}

fn config(db_url: &str, workspace: &Path) -> Result<Arc<Config>> {
    let ws = workspace.display().to_string();
    let url = db_url.to_owned();
    Ok(Arc::new(Config::from_lookup(|k| match k {
        "WORKSPACE_DIR" => Some(ws.clone()),
        "DATABASE_URL" => Some(url.clone()),
        _ => None,
    })?))
}

fn ctx(storage: &Storage, config: &Arc<Config>, name: &str, args: &[String]) -> CollectContext {
    CollectContext {
        run_id: format!("bench-{name}"),
        command: name.into(),
        args: args.to_vec(),
        schedule_group: None,
        storage: storage.clone(),
        config: Arc::clone(config),
        interactive: false,
    }
}

/// Parse + thread only; returns (messages, seconds).
fn parse_only(path: &Path) -> Result<(u64, f64)> {
    use bdc_collector_mailing_list::{mbox::MboxReader, parse::parse_message};
    let start = Instant::now();
    let file = std::fs::File::open(path)?;
    let mut r = MboxReader::new(std::io::BufReader::with_capacity(256 * 1024, file));
    let mut n = 0u64;
    let mut roots = 0u64;
    while let Some(raw) = r.next_message()? {
        let m = parse_message(&raw);
        if m.thread_root == m.message_id {
            roots += 1;
        }
        n += 1;
    }
    std::hint::black_box(roots);
    Ok((n, start.elapsed().as_secs_f64()))
}

pub async fn mbox(kind: Kind, quick: bool) -> Result<Vec<Row>> {
    let mb: u64 = std::env::var("BDC_BENCH_MBOX_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 50 } else { 1024 });
    let backend = backend_name(kind);
    let dir = tempfile::tempdir()?;
    let small = dir.path().join("small.mbox");
    let big = dir.path().join("big.mbox");
    let mut rows = Vec::new();
    generate_mbox(&small, 5 << 20)?;
    let msgs = generate_mbox(&big, mb << 20)?;
    let size_mb = std::fs::metadata(&big)?.len() as f64 / (1 << 20) as f64;
    let size = format!("{size_mb:.0} MB");

    // Peak memory: a small archive first, then the big one (VmHWM only grows).
    let (_, _) = parse_only(&small)?;
    let hwm_small = vm_hwm_mib();
    let (n, secs) = parse_only(&big)?;
    let hwm_big = vm_hwm_mib();
    rows.push(Row {
        bench: "mbox parse+thread".into(),
        backend: "-",
        size: size.clone(),
        value: size_mb / secs,
        unit: "MB/s",
    });
    rows.push(Row {
        bench: "mbox parse+thread".into(),
        backend: "-",
        size: size.clone(),
        value: n as f64 / secs,
        unit: "messages/s",
    });

    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    storage
        .migrate_parts(&[&bdc_collector_mailing_list::SCHEMA, &bdc_identity::SCHEMA])
        .await?;
    let workspace = tempfile::tempdir()?;
    let cfg = config(db.url(), workspace.path())?;
    let args = vec![
        "--mbox".to_owned(),
        big.display().to_string(),
        "--list".into(),
        "bench".into(),
    ];
    let start = Instant::now();
    let r = bdc_collector_mailing_list::MailingListCollector
        .run(&ctx(&storage, &cfg, "mailing-list", &args))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        r.count("messages") == msgs,
        "stored {} of {msgs}",
        r.count("messages")
    );
    let hwm_store = vm_hwm_mib();
    rows.push(Row {
        bench: "mbox parse+thread+store".into(),
        backend,
        size: size.clone(),
        value: size_mb / secs,
        unit: "MB/s",
    });
    rows.push(Row {
        bench: "mbox parse+thread+store".into(),
        backend,
        size: size.clone(),
        value: msgs as f64 / secs,
        unit: "messages/s",
    });
    rows.push(Row {
        bench: "mbox peak RSS after 5 MB parse".into(),
        backend: "-",
        size: "5 MB".into(),
        value: hwm_small,
        unit: "MiB VmHWM",
    });
    rows.push(Row {
        bench: "mbox peak RSS after big parse".into(),
        backend: "-",
        size: size.clone(),
        value: hwm_big,
        unit: "MiB VmHWM",
    });
    rows.push(Row {
        bench: "mbox peak RSS after store".into(),
        backend,
        size,
        value: hwm_store,
        unit: "MiB VmHWM",
    });
    storage.close().await;
    Ok(rows)
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let st = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .status()?;
    anyhow::ensure!(st.success(), "git {args:?} failed");
    Ok(())
}

pub async fn git_history(kind: Kind, quick: bool) -> Result<Vec<Row>> {
    let n = if quick { 10_000 } else { 100_000 };
    let backend = backend_name(kind);
    let src = tempfile::tempdir()?;
    git(src.path(), &["init", "-q", "--bare"])?;
    let start = Instant::now();
    bdc_collector_git::fixtures::fast_import(src.path(), "main", n, 1_600_000_000, false);
    git(src.path(), &["symbolic-ref", "HEAD", "refs/heads/main"])?;
    let gen_secs = start.elapsed().as_secs_f64();

    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    storage
        .migrate_parts(&[&bdc_collector_git::SCHEMA, &bdc_identity::SCHEMA])
        .await?;
    let workspace = tempfile::tempdir()?;
    let cfg = config(db.url(), workspace.path())?;
    let args = vec![
        "--repo".to_owned(),
        src.path().display().to_string(),
        "--name".into(),
        "bench".into(),
    ];
    let mut rows = vec![Row {
        bench: "git fast-import generate".into(),
        backend: "-",
        size: format!("{n}"),
        value: n as f64 / gen_secs,
        unit: "commits/s",
    }];
    for (label, extra) in [
        ("full", 0usize),
        ("incremental +1000", 1000),
        ("unchanged re-run", 0),
    ] {
        if extra > 0 {
            bdc_collector_git::fixtures::fast_import(
                src.path(),
                "main",
                extra,
                1_700_000_000,
                true,
            );
        }
        let start = Instant::now();
        let r = bdc_collector_git::GitHistoryCollector
            .run(&ctx(&storage, &cfg, "git-history", &args))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let secs = start.elapsed().as_secs_f64();
        let walked = r.count("commits");
        if label == "unchanged re-run" {
            rows.push(Row {
                bench: format!("git-history {label}"),
                backend,
                size: format!("{n}"),
                value: secs * 1000.0,
                unit: "ms",
            });
        } else {
            rows.push(Row {
                bench: format!("git-history {label}"),
                backend,
                size: format!("{walked}"),
                value: walked as f64 / secs,
                unit: "commits/s",
            });
        }
    }
    storage.close().await;
    Ok(rows)
}
