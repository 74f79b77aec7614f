//! Scale-out behaviour with real `bdc` processes: several schedulers and
//! workers against one PostgreSQL database (and the same functional checks
//! single-process on SQLite).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use bdc_testsupport::{Kind, TestDb};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Env {
    db: TestDb,
    dir: tempfile::TempDir,
}

impl Env {
    async fn new(kind: Kind) -> Env {
        let env = Env {
            db: TestDb::new(kind).await,
            dir: tempfile::tempdir().unwrap(),
        };
        env.bdc().arg("migrate").assert().success();
        env
    }

    fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("DATABASE_URL", self.db.url().to_owned()),
            ("WORKSPACE_DIR", self.dir.path().display().to_string()),
            ("BDC_LOG", "warn".to_owned()),
            ("BDC_JOB_LEASE_SECONDS", "2".to_owned()),
            ("BDC_WORKER_POLL_SECONDS", "0.1".to_owned()),
            ("BDC_SCHEDULER_TICK_SECONDS", "0.2".to_owned()),
            ("BDC_RELEASE_POLL_SECONDS", "0.3".to_owned()),
            ("BDC_JOB_RETRY_BASE_SECONDS", "0.1".to_owned()),
        ]
    }

    fn bdc(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin!("bdc"));
        c.env_clear().envs(self.vars()).current_dir(repo_root());
        c
    }

    fn spawn(&self, args: &[&str], extra: &[(&str, &str)]) -> Child {
        let mut c = StdCommand::new(assert_cmd::cargo::cargo_bin!("bdc"));
        c.env_clear()
            .envs(self.vars())
            .envs(extra.iter().copied())
            .current_dir(repo_root())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        c.spawn().unwrap()
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn jobs(&self) -> Vec<serde_json::Value> {
        let out = self
            .bdc()
            .args(["jobs", "--limit", "1000", "--format", "json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice::<serde_json::Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    fn runs(&self) -> Vec<serde_json::Value> {
        let out = self
            .bdc()
            .args(["runs", "--limit", "1000", "--format", "json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice::<serde_json::Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }
}

/// A schedule with `groups` groups, each with one daily task and one
/// interval task (every 15 minutes) reading the example index.
fn many_slots_schedule(groups: usize) -> String {
    let index = repo_root().join("examples/wg21/index.json");
    let mut s = String::from("groups:\n");
    for g in 0..groups {
        s.push_str(&format!(
            "  g{g}:\n    default_time: \"01:00\"\n    tasks:\n      - command: wg21-papers\n        schedule: daily\n        args: [\"--index\", \"{0}\"]\n      - command: wg21-papers\n        schedule: interval\n        minutes: 15\n        args: [\"--index\", \"{0}\"]\n",
            index.display()
        ));
    }
    s
}

async fn every_slot_runs_exactly_once(kind: Kind, processes: usize) {
    let env = Env::new(kind).await;
    let schedule = env.write("schedule.yaml", &many_slots_schedule(8));
    // 02:00 UTC: every group's calendar slot (01:00) and interval minute 120.
    let at = "2026-11-24T02:00:10Z";
    let schedulers: Vec<_> = (0..processes)
        .map(|_| {
            let mut c = env.bdc();
            c.args(["scheduler", "--once", "--at", at, "--schedule", &schedule]);
            std::thread::spawn(move || c.assert().success())
        })
        .collect();
    for s in schedulers {
        s.join().unwrap();
    }
    let jobs = env.jobs();
    assert_eq!(jobs.len(), 16, "8 calendar + 8 interval slots, once each");
    let workers: Vec<_> = (0..processes)
        .map(|_| {
            let mut c = env.bdc();
            c.args(["worker", "--drain", "--schedule", &schedule]);
            std::thread::spawn(move || c.assert().success())
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let jobs = env.jobs();
    assert!(
        jobs.iter()
            .all(|j| j["status"] == "succeeded" && j["attempts"] == 1),
        "{jobs:#?}"
    );
    // One collector run per slot task: no slot ran twice.
    let runs = env.runs();
    assert_eq!(runs.len(), 16, "{runs:#?}");
    assert!(runs.iter().all(|r| r["status"] == "success"));
    // Only the calendar slot (the daily task) makes a group fresh.
    let storage = bdc_storage::Storage::connect(env.db.url(), &Default::default())
        .await
        .unwrap();
    assert!(
        storage
            .runs()
            .last_group_success("g0")
            .await
            .unwrap()
            .is_some()
    );
    storage.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn interval_slots_do_not_make_a_group_fresh() {
    let env = Env::new(Kind::Sqlite).await;
    let index = repo_root().join("examples/wg21/index.json");
    let schedule = env.write(
        "interval.yaml",
        &format!(
            "groups:\n  g:\n    default_time: \"23:59\"\n    tasks:\n      - command: wg21-papers\n        schedule: daily\n        args: [\"--index\", \"{0}\"]\n      - command: wg21-papers\n        schedule: interval\n        minutes: 15\n        args: [\"--index\", \"{0}\"]\n",
            index.display()
        ),
    );
    // 10:30: the interval slot is due, the 23:59 calendar slot is not.
    env.bdc()
        .args([
            "scheduler",
            "--once",
            "--at",
            "2026-11-24T10:30:05Z",
            "--schedule",
            &schedule,
        ])
        .assert()
        .success();
    env.bdc()
        .args(["worker", "--drain", "--schedule", &schedule])
        .assert()
        .success();
    let jobs = env.jobs();
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    assert_eq!(env.runs().len(), 1);
    let storage = bdc_storage::Storage::connect(env.db.url(), &Default::default())
        .await
        .unwrap();
    assert_eq!(storage.runs().last_group_success("g").await.unwrap(), None);
    storage.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn three_processes_run_every_slot_exactly_once_on_postgres() {
    every_slot_runs_exactly_once(Kind::Postgres, 3).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn single_process_runs_every_slot_exactly_once_on_sqlite() {
    every_slot_runs_exactly_once(Kind::Sqlite, 1).await;
}

/// An HTTP server that answers every request after `delay` with the
/// example index.
fn slow_index_server(delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let body = std::fs::read(repo_root().join("examples/wg21/index.json")).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let body = body.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                std::thread::sleep(delay);
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            });
        }
    });
    format!("http://{addr}/index.json")
}

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_workers_job_completes_elsewhere() {
    let env = Env::new(Kind::Postgres).await;
    let url = slow_index_server(Duration::from_secs(3));
    let schedule = env.write(
        "slow.yaml",
        &format!(
            "groups:\n  slow:\n    tasks:\n      - command: wg21-papers\n        schedule: daily\n        args: [\"--index\", \"{url}\"]\n"
        ),
    );
    env.bdc()
        .args(["scheduler", "--once", "--schedule", &schedule])
        .assert()
        .success();
    let mut a = env.spawn(&["worker", "--schedule", &schedule], &[]);
    wait_for("worker A to claim the job", Duration::from_secs(20), || {
        env.jobs().iter().any(|j| j["status"] == "running")
    });
    a.kill().unwrap(); // SIGKILL: no cleanup, the lease must expire.
    let _ = a.wait();
    let mut b = env.spawn(&["worker", "--schedule", &schedule], &[]);
    wait_for(
        "the job to complete on worker B",
        Duration::from_secs(40),
        || env.jobs().iter().any(|j| j["status"] == "succeeded"),
    );
    let _ = b.kill();
    let _ = b.wait();
    let jobs = env.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["attempts"], 2, "{jobs:#?}");
    let runs = env.runs();
    assert!(runs.iter().any(|r| r["status"] == "success"), "{runs:#?}");
}

fn git(dir: &Path, args: &[&str]) {
    let ok = StdCommand::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduler_failover_and_release_slots_fire_once_per_release() {
    let env = Env::new(Kind::Postgres).await;
    let repo = env.dir.path().join("boost");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    git(&repo, &["commit", "-q", "--allow-empty", "-m", "one"]);
    git(&repo, &["tag", "boost-1.89.0"]);
    let index = repo_root().join("examples/wg21/index.json");
    let schedule = env.write(
        "rel.yaml",
        &format!(
            "groups:\n  releases:\n    tasks:\n      - command: wg21-papers\n        schedule: on_release\n        args: [\"--index\", \"{}\"]\n",
            index.display()
        ),
    );
    let repo_s = repo.display().to_string();
    let extra = [("BDC_RELEASE_REPO", repo_s.as_str())];
    let mut a = env.spawn(&["scheduler", "--schedule", &schedule], &extra);
    let mut b = env.spawn(&["scheduler", "--schedule", &schedule], &extra);
    // Give both time to record the existing release (no back-fill).
    std::thread::sleep(Duration::from_secs(2));
    assert!(env.jobs().is_empty());
    a.kill().unwrap(); // failover: B must carry on alone
    let _ = a.wait();
    git(&repo, &["commit", "-q", "--allow-empty", "-m", "two"]);
    git(&repo, &["tag", "boost-1.90.0"]);
    wait_for("the release slot", Duration::from_secs(20), || {
        !env.jobs().is_empty()
    });
    std::thread::sleep(Duration::from_secs(1));
    let jobs = env.jobs();
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    assert_eq!(jobs[0]["slot_key"], "rel:releases:boost-1.90.0");
    let _ = b.kill();
    let _ = b.wait();
    env.bdc()
        .args(["worker", "--drain", "--schedule", &schedule])
        .assert()
        .success();
    assert_eq!(env.runs().len(), 1);
}
