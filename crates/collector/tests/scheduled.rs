//! `run_scheduled` against a real database with a test collector.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bdc_collector::scheduled::{ScheduledOptions, TaskOutcome, run_scheduled};
use bdc_collector::{CollectContext, Collector, Registry, Runner};
use bdc_core::{BoxError, TrackerResult};
use bdc_schedule::{DueContext, Schedule};
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};

/// Counts its runs; fails when its first argument is `fail`.
struct Counting(Arc<AtomicUsize>);

#[async_trait]
impl Collector for Counting {
    fn name(&self) -> &'static str {
        "wg21-papers"
    }
    fn validate_config(&self, _ctx: &CollectContext) -> Result<(), BoxError> {
        Ok(())
    }
    async fn collect(&self, ctx: &CollectContext) -> Result<TrackerResult, BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        if ctx.args.first().map(String::as_str) == Some("fail") {
            return Err("boom".into());
        }
        Ok(TrackerResult::ok())
    }
}

async fn retried_slot_skips_tasks_that_succeeded(kind: Kind) {
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default())
        .await
        .unwrap();
    storage.migrate().await.unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::new();
    registry.register(Arc::new(Counting(Arc::clone(&runs))));
    let runner = Runner {
        registry,
        storage: storage.clone(),
        config: Arc::new(bdc_config::Config::from_lookup(|_| None).unwrap()),
        worker_id: Some("w".into()),
        interactive: false,
    };
    let schedule = Schedule::parse(
        "groups:\n  g:\n    tasks:\n      - command: wg21-papers\n        schedule: daily\n      - command: wg21-papers\n        schedule: daily\n        args: [fail]\n",
        "s.yaml",
    )
    .unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
    let opts = ScheduledOptions {
        group: Some("g".into()),
        strict: false,
        due: DueContext::for_date(date, None, false),
        file_label: "s.yaml".into(),
        kinds: None,
        slot_key: Some("cal:g:2026-11-24".into()),
    };
    let first = run_scheduled(&runner, &schedule, &opts).await.unwrap();
    assert_eq!((first.ran, first.failed), (2, 1));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    // The same slot again (a retried job): the task that succeeded is not
    // run again, the one that failed is.
    let second = run_scheduled(&runner, &schedule, &opts).await.unwrap();
    assert!(matches!(second.tasks[0].outcome, TaskOutcome::AlreadyDone));
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    // Without a slot key (a manual run-scheduled) everything runs.
    let manual = ScheduledOptions {
        slot_key: None,
        ..opts
    };
    run_scheduled(&runner, &schedule, &manual).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn retried_slot_skips_tasks_that_succeeded_sqlite() {
    retried_slot_skips_tasks_that_succeeded(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retried_slot_skips_tasks_that_succeeded_postgres() {
    retried_slot_skips_tasks_that_succeeded(Kind::Postgres).await;
}

/// Describes its flags (`--ok`), counts its runs.
struct Flagged(Arc<AtomicUsize>);

#[derive(Debug, clap::Parser)]
struct FlaggedArgs {
    #[arg(long)]
    ok: bool,
}

#[async_trait]
impl Collector for Flagged {
    fn name(&self) -> &'static str {
        "mailing-list"
    }
    fn args_command(&self) -> Option<clap::Command> {
        Some(<FlaggedArgs as clap::CommandFactory>::command())
    }
    fn validate_config(&self, _ctx: &CollectContext) -> Result<(), BoxError> {
        Ok(())
    }
    async fn collect(&self, _ctx: &CollectContext) -> Result<TrackerResult, BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(TrackerResult::ok())
    }
}

async fn wrong_schedule_args_are_config_failures_naming_file_and_line(kind: Kind) {
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default())
        .await
        .unwrap();
    storage.migrate().await.unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::new();
    registry.register(Arc::new(Flagged(Arc::clone(&runs))));
    let runner = Runner {
        registry,
        storage: storage.clone(),
        config: Arc::new(bdc_config::Config::from_lookup(|_| None).unwrap()),
        worker_id: None,
        interactive: false,
    };
    let schedule = Schedule::parse(
        "groups:\n  g:\n    tasks:\n      - command: run_boost_mailing_list_tracker\n        schedule: daily\n        args: [--ok]\n      - command: mailing-list\n        schedule: daily\n        args: [--bogus]\n      - command: mailing-list\n        schedule: daily\n        args: [--help]\n",
        "sched.yaml",
    )
    .unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
    let opts = ScheduledOptions {
        group: None,
        strict: false,
        due: DueContext::for_date(date, None, false),
        file_label: "sched.yaml".into(),
        kinds: None,
        slot_key: None,
    };
    // Strict: nothing runs, both wrong tasks are named with file and line.
    let strict = ScheduledOptions {
        strict: true,
        ..opts.clone()
    };
    let err = run_scheduled(&runner, &schedule, &strict)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sched.yaml:7:") && err.contains("--bogus"),
        "{err}"
    );
    assert!(
        err.contains("sched.yaml:10:") && err.contains("help"),
        "{err}"
    );
    assert!(!err.contains("sched.yaml:4:"), "{err}");
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let none = storage
        .runs()
        .list(&bdc_storage::runs::RunFilter::default())
        .await
        .unwrap();
    assert!(none.is_empty());
    // Non-strict: the good task runs, the wrong ones are recorded as
    // failed `config` runs naming the file and line; the collector never starts.
    let report = run_scheduled(&runner, &schedule, &opts).await.unwrap();
    assert_eq!((report.ran, report.failed), (3, 2));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let recorded = storage
        .runs()
        .list(&bdc_storage::runs::RunFilter::default())
        .await
        .unwrap();
    let failed: Vec<_> = recorded
        .iter()
        .filter(|r| r.status == bdc_storage::runs::RunStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 2);
    for r in failed {
        assert_eq!(
            r.failure_category,
            Some(bdc_core::FailureCategory::Config),
            "{r:?}"
        );
        assert!(
            r.error.as_deref().unwrap_or("").starts_with("sched.yaml:"),
            "{r:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_schedule_args_are_config_failures_sqlite() {
    wrong_schedule_args_are_config_failures_naming_file_and_line(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_schedule_args_are_config_failures_postgres() {
    wrong_schedule_args_are_config_failures_naming_file_and_line(Kind::Postgres).await;
}
