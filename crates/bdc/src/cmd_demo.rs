//! `bdc demo`: the whole product on bundled sample data, offline.
//!
//! 1. Creates a tiny git repository under `$WORKSPACE_DIR/demo/` (fixed
//!    authors and dates, so its commits are the same on every machine).
//! 2. Installs recorded API responses (`examples/<collector>/raw/`) into
//!    `$WORKSPACE_DIR/raw/<collector>/` unless an archive is already there,
//!    then runs the `demo` group of `examples/schedule.yaml` (every collector
//!    this build provides, on sample data under `examples/`), with
//!    `$BDC_DEMO_DIR` in task args replaced by that directory.
//! 3. Tracks commit greenness of the generated repository (one queue, two
//!    projects whose builds are shell commands).
//! 4. Prints a short summary and three next steps.
//!
//! Adding a collector to the demo: one task in the schedule's `demo` group
//! and its sample files under `examples/<collector>/`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bdc_collector::RunReport;
use bdc_collector::scheduled::{ScheduledOptions, TaskOutcome, run_scheduled};
use bdc_config::Config;
use bdc_schedule::{DueContext, Schedule};
use clap::Args;

use crate::output::truncate;

/// Placeholder in the demo schedule's args.
pub const DEMO_DIR_VAR: &str = "$BDC_DEMO_DIR";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The schedule holding the demo group.
    #[arg(long, default_value = "examples/schedule.yaml")]
    pub schedule: PathBuf,
    /// The group to run.
    #[arg(long, default_value = "demo")]
    pub group: String,
}

/// The demo repository's commits: (path, content, message).
const COMMITS: &[(&str, &str, &str)] = &[
    (
        "README.md",
        "# demo-repo\n\nA tiny repository made by `bdc demo`.\n",
        "Initial commit",
    ),
    (
        "core/parse.cpp",
        "int parse() { return 0; }\n",
        "core: add the parser",
    ),
    (
        "doc/index.md",
        "# Docs\n\nHow to parse.\n",
        "doc: first page",
    ),
    (
        "core/parse.cpp",
        "int parse() { return 42; }\n",
        "core: parse the answer",
    ),
    (
        "test/parse_test.cpp",
        "int main() { return 0; }\n",
        "test: cover the parser",
    ),
];

fn git(dir: &Path, args: &[&str], i: usize) -> Result<()> {
    // 2024-01-08 09:00 UTC plus one hour per commit.
    let date = format!("{} +0000", 1_704_704_400 + 3600 * i as i64);
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Demo Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.org")
        .env("GIT_COMMITTER_NAME", "Demo Author")
        .env("GIT_COMMITTER_EMAIL", "author@example.org")
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("LC_ALL", "C")
        .output()
        .with_context(|| format!("running git {args:?} (is git installed?)"))?;
    if !out.status.success() {
        bail!(
            "git {args:?} in {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Create (or recreate) the demo repository; returns its path.
pub fn make_repo(demo_dir: &Path) -> Result<PathBuf> {
    let repo =
        std::path::absolute(demo_dir.join("demo-repo")).context("resolving the demo directory")?;
    if repo.exists() {
        std::fs::remove_dir_all(&repo)
            .with_context(|| format!("removing the old demo repository {}", repo.display()))?;
    }
    std::fs::create_dir_all(&repo).with_context(|| format!("creating {}", repo.display()))?;
    git(&repo, &["init", "--quiet", "--initial-branch=main"], 0)?;
    for (i, (path, content, message)) in COMMITS.iter().enumerate() {
        let file = repo.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&file, content).with_context(|| format!("writing {}", file.display()))?;
        git(&repo, &["add", path], i)?;
        git(&repo, &["commit", "--quiet", "-m", message], i)?;
    }
    Ok(repo)
}

/// Copy each `examples/<collector>/raw/` (recorded responses) to
/// `$WORKSPACE_DIR/raw/<collector>/`, where `--from-archive` replays them;
/// an existing archive there is left alone (it may be real data).
fn install_recorded_archives(workspace: &Path) -> Result<()> {
    fn copy(src: &Path, dst: &Path) -> Result<()> {
        std::fs::create_dir_all(dst).with_context(|| format!("creating {}", dst.display()))?;
        for e in std::fs::read_dir(src).with_context(|| format!("listing {}", src.display()))? {
            let e = e.with_context(|| format!("listing {}", src.display()))?;
            let to = dst.join(e.file_name());
            if e.path().is_dir() {
                copy(&e.path(), &to)?;
            } else {
                std::fs::copy(e.path(), &to)
                    .with_context(|| format!("copying {}", e.path().display()))?;
            }
        }
        Ok(())
    }
    let Ok(entries) = std::fs::read_dir("examples") else {
        return Ok(());
    };
    for e in entries.flatten() {
        let raw = e.path().join("raw");
        let dst = workspace.join("raw").join(e.file_name());
        if raw.join("index.jsonl").is_file() && !dst.join("index.jsonl").exists() {
            copy(&raw, &dst)?;
        }
    }
    Ok(())
}

fn greenness_yaml(repo: &Path) -> String {
    format!(
        "queues:\n  - name: demo-repo\n    repo: {}\n    ref: main\n    timeout_seconds: 60\n    projects:\n      - name: core\n        paths: [\"core/**\", \"test/**\"]\n        build: test -f core/parse.cpp\n      - name: docs\n        paths: [\"doc/**\"]\n        build: test -f doc/index.md\n",
        repo.display()
    )
}

async fn greenness(config: &Config, storage: &bdc_storage::Storage, repo: &Path) -> Result<String> {
    let cfg = bdc_greenness::GreennessConfig::parse(&greenness_yaml(repo), "bdc demo")
        .map_err(|e| anyhow::anyhow!("the demo greenness configuration: {e}"))?;
    // Builds run in checkouts under the workspace: an absolute path, so
    // their working directory does not depend on where git ran.
    let workspace =
        std::path::absolute(&config.workspace_dir).context("resolving WORKSPACE_DIR")?;
    let p =
        bdc_greenness::service::pipeline(storage.clone(), Arc::new(cfg), &workspace, "bdc-demo");
    p.ensure_queues().await?;
    let ingested = p
        .ingest("demo-repo")
        .await
        .context("ingesting the demo repository")?;
    p.drain().await.context("validating the demo commit")?;
    let store = bdc_greenness::store::SqlStore::new(storage.clone());
    let gate = bdc_greenness::service::Gate { store: &store };
    let status = gate.status("demo-repo", 5).await?;
    let sha = ingested
        .request
        .commit_uri
        .rsplit('/')
        .next()
        .unwrap_or("")
        .chars()
        .take(12)
        .collect::<String>();
    Ok(match status.last_green {
        Some(g) if g.commit_uri == ingested.request.commit_uri => format!(
            "commit {sha} of demo-repo is green ({} projects passed)",
            status.projects.len()
        ),
        _ => format!(
            "commit {sha} of demo-repo is not green (see `bdc greenness status --queue demo-repo`)"
        ),
    })
}

pub async fn run(config: Arc<Config>, args: DemoArgs) -> Result<ExitCode> {
    let mut schedule = Schedule::from_path(&args.schedule)?;
    let demo_dir = config.workspace_dir.join("demo");
    let repo = make_repo(&demo_dir)?;
    let demo_dir_text = repo.parent().unwrap_or(&demo_dir).display().to_string();
    for group in &mut schedule.groups {
        for task in &mut group.tasks {
            for a in &mut task.args {
                *a = a.replace(DEMO_DIR_VAR, &demo_dir_text);
            }
        }
    }
    install_recorded_archives(&config.workspace_dir)?;
    let storage = crate::commands::connect_ready(&config).await?;
    let runner = crate::commands::runner(Arc::clone(&config), storage.clone());
    let date = chrono::Utc::now().date_naive();
    let opts = ScheduledOptions {
        group: Some(args.group.clone()),
        strict: false,
        due: DueContext::for_date(date, None, false),
        file_label: args.schedule.display().to_string(),
        kinds: None,
        slot_key: None,
    };
    let report = match run_scheduled(&runner, &schedule, &opts).await {
        Ok(r) => r,
        Err(e @ bdc_collector::scheduled::ScheduledError::UnknownGroup { .. }) => {
            return Err(crate::commands::UsageError(e.to_string()).into());
        }
        Err(e) => return Err(e.into()),
    };
    let green = greenness(&config, &storage, &repo).await;
    bdc_audit::pending::flush_best_effort(&storage).await;
    storage.close().await;
    println!(
        "bdc demo: the `{}` group of {} on bundled sample data (no network)\n",
        args.group,
        args.schedule.display()
    );
    for t in &report.tasks {
        let line = match &t.outcome {
            TaskOutcome::Ran(RunReport::Succeeded {
                collector, result, ..
            }) => {
                format!("{collector:<23} ok      {}", summary(result.counts()))
            }
            TaskOutcome::Ran(RunReport::Failed {
                collector,
                category,
                error,
                ..
            }) => {
                format!(
                    "{collector:<23} FAILED  ({category}) {}",
                    truncate(error, 120)
                )
            }
            TaskOutcome::Ran(RunReport::NotAvailable { name, .. }) => {
                format!("{name:<23} not available in this build")
            }
            other => format!(
                "{:<23} {}",
                t.command,
                match other {
                    TaskOutcome::NotDue(r) => *r,
                    TaskOutcome::Disabled => "disabled",
                    _ => "skipped",
                }
            ),
        };
        println!("  {line}");
    }
    match &green {
        Ok(line) => println!("  {:<23} {line}", "greenness"),
        Err(e) => println!("  {:<23} FAILED  {e:#}", "greenness"),
    }
    let bind = config.bind;
    println!(
        "\nNext steps:\n  bdc activity --limit 10    the newest collected activity, all sources\n  bdc runs                   every run with its status and counts\n  bdc search asio            full-text search over everything collected\n  bdc serve                  then open http://{bind}/dashboard/"
    );
    if report.failed > 0 || green.is_err() {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The counts a newcomer cares about: what was found and stored.
fn summary(counts: &std::collections::BTreeMap<String, u64>) -> String {
    const KEYS: &[&str] = &[
        "fetched",
        "messages",
        "users_inserted",
        "channels_inserted",
        "commits",
        "papers",
        "libraries",
        "site_pages",
        "issues",
        "pulls",
        "repos_scanned",
        "repos_using_boost",
        "headers_new",
        "profiles",
        "identities",
        "people",
        "inserted",
        "updated",
        "unchanged",
        "transcripts_ok",
        "segments",
        "malformed",
        "documents",
        "chunks",
        "index_documents",
    ];
    let shown: Vec<String> = KEYS
        .iter()
        .filter_map(|k| counts.get(*k).map(|v| format!("{k}={v}")))
        .collect();
    if shown.is_empty() {
        counts
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        shown.join(" ")
    }
}
