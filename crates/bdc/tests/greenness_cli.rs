//! `bdc greenness ...` as a process on SQLite and PostgreSQL: ingest,
//! drain, and the gating exit codes deploy scripts rely on.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;
use bdc_testsupport::{Kind, TestDb};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = StdCommand::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn commit(repo: &Path, path: &str, content: &str) -> String {
    let p = repo.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", path]);
    git(repo, &["rev-parse", "HEAD"])
}

struct Env {
    db: TestDb,
    tmp: tempfile::TempDir,
    repo: PathBuf,
    config: PathBuf,
}

impl Env {
    async fn new(kind: Kind) -> Env {
        let db = TestDb::new(kind).await;
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        let config = tmp.path().join("greenness.yaml");
        std::fs::write(
            &config,
            format!(
                "queues:\n  - name: main\n    repo: {}\n    ref: main\n    projects:\n      - name: lib\n        paths: [\"lib/**\"]\n        build: test ! -f lib/FAIL\n      - name: app\n        paths: [\"app/**\"]\n        build: test ! -f app/FAIL\n",
                repo.display()
            ),
        )
        .unwrap();
        let env = Env {
            db,
            tmp,
            repo,
            config,
        };
        if kind == Kind::Postgres {
            env.bdc().arg("migrate").assert().success();
        }
        env
    }

    fn bdc(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin!("bdc"));
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", self.db.url())
            .env("WORKSPACE_DIR", self.tmp.path().join("ws"))
            .env("BDC_LOG", "warn")
            .current_dir(self.tmp.path());
        c
    }

    fn out(&self, args: &[&str]) -> String {
        let o = self
            .bdc()
            .args(args)
            .assert()
            .success()
            .get_output()
            .clone();
        String::from_utf8(o.stdout).unwrap()
    }
}

async fn gating(kind: Kind) {
    let env = Env::new(kind).await;
    let cfg = env.config.display().to_string();
    let good = commit(&env.repo, "lib/a.c", "1");
    commit(&env.repo, "app/a.c", "1");
    let good = {
        let _ = good;
        git(&env.repo, &["rev-parse", "HEAD"])
    };
    assert_eq!(
        env.out(&["greenness", "ingest", "main", "--config", &cfg])
            .trim(),
        "request/main/1"
    );
    // Same head again: same request.
    assert_eq!(
        env.out(&["greenness", "ingest", "main", "--config", &cfg])
            .trim(),
        "request/main/1"
    );
    // Before the drain: not green yet (pending).
    env.bdc()
        .args([
            "greenness",
            "is-green",
            "--queue",
            "main",
            "--commit",
            &good,
        ])
        .assert()
        .code(1);
    // Config from the environment.
    env.bdc()
        .args(["greenness", "drain"])
        .env("BDC_GREENNESS_YAML", &cfg)
        .assert()
        .success();
    env.bdc()
        .args([
            "greenness",
            "is-green",
            "--queue",
            "main",
            "--commit",
            &good,
        ])
        .assert()
        .success();
    let lg = env.out(&["greenness", "last-green", "--queue", "main"]);
    assert!(lg.trim().ends_with(&format!("/ref/main/{good}")), "{lg}");
    // The URI form works too.
    env.bdc()
        .args([
            "greenness",
            "is-green",
            "--queue",
            "main",
            "--commit",
            lg.trim(),
            "--project",
            "app",
        ])
        .assert()
        .success();

    let bad = commit(&env.repo, "app/FAIL", "x");
    // `--queue Q` works like the positional form.
    assert_eq!(
        env.out(&["greenness", "ingest", "--queue", "main", "--config", &cfg])
            .trim(),
        "request/main/2"
    );
    env.out(&["greenness", "drain", "--jobs", "2", "--config", &cfg]);
    env.bdc()
        .args(["greenness", "is-green", "--queue", "main", "--commit", &bad])
        .assert()
        .code(1);
    env.bdc()
        .args([
            "greenness",
            "is-green",
            "--queue",
            "main",
            "--commit",
            &bad,
            "--project",
            "app",
        ])
        .assert()
        .code(1);
    // lib is unaffected by the change: still green at the bad commit.
    env.bdc()
        .args([
            "greenness",
            "is-green",
            "--queue",
            "main",
            "--commit",
            &bad,
            "--project",
            "lib",
        ])
        .assert()
        .success();
    // Unknown commit: not green.
    env.bdc()
        .args([
            "greenness",
            "is-green",
            "--queue",
            "main",
            "--commit",
            &"0".repeat(40),
        ])
        .assert()
        .code(1);
    // A failed commit can be validated again (still failing here).
    assert_eq!(
        env.out(&[
            "greenness",
            "revalidate",
            "--queue",
            "main",
            "--commit",
            &bad,
            "--config",
            &cfg
        ])
        .trim(),
        "request/main/2"
    );
    env.out(&["greenness", "drain", "--config", &cfg]);
    env.bdc()
        .args(["greenness", "is-green", "--queue", "main", "--commit", &bad])
        .assert()
        .code(1);
    // A green one is not.
    env.bdc()
        .args([
            "greenness",
            "revalidate",
            "--queue",
            "main",
            "--commit",
            &good,
            "--config",
            &cfg,
        ])
        .assert()
        .code(1);
    let lg2 = env.out(&["greenness", "last-green", "--queue", "main"]);
    assert_eq!(lg, lg2, "last green did not move to a failing commit");
    let status = env.out(&["greenness", "status", "--queue", "main"]);
    assert!(
        status.contains("request/main/2") && status.contains("failed"),
        "{status}"
    );
    let hist = env.out(&[
        "greenness",
        "history",
        "--queue",
        "main",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&hist).unwrap();
    // 3 records (repo + 2 projects) per attempt: good, bad, bad again.
    assert_eq!(v.as_array().unwrap().len(), 9);
    // No project has a last green for an unknown project.
    env.bdc()
        .args([
            "greenness",
            "last-green",
            "--queue",
            "main",
            "--project",
            "nope",
        ])
        .assert()
        .code(1);
    // Usage errors: unknown queue, missing config.
    env.bdc()
        .args(["greenness", "ingest", "nope", "--config", &cfg])
        .assert()
        .code(2);
    env.bdc().args(["greenness", "drain"]).assert().code(2);
    env.bdc()
        .args(["greenness", "ingest", "--config", &cfg])
        .assert()
        .code(2);
    env.bdc()
        .args([
            "greenness",
            "ingest",
            "main",
            "--queue",
            "main",
            "--config",
            &cfg,
        ])
        .assert()
        .code(2);
    env.bdc()
        .args(["greenness", "drain", "--jobs", "0", "--config", &cfg])
        .assert()
        .code(2);
}

#[tokio::test]
async fn greenness_gating_sqlite() {
    gating(Kind::Sqlite).await;
}

#[tokio::test]
async fn greenness_gating_postgres() {
    gating(Kind::Postgres).await;
}

/// `bdc serve` with `BDC_GREENNESS_YAML`: the poller ingests the head, the
/// worker validates it, the API answers (bearer `BDC_API_TOKEN`).
async fn serve_polls(kind: Kind) {
    serve_polls_on(kind, None).await;
}

/// With `greenness_url` (`BDC_GREENNESS_DATABASE_URL`) the greenness tables
/// live there and the main database stays out of it.
async fn serve_polls_on(kind: Kind, greenness_url: Option<&str>) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env = Env::new(kind).await;
    commit(&env.repo, "lib/a.c", "1");
    let sha = commit(&env.repo, "app/a.c", "1");
    let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin!("bdc"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", env.db.url())
        .env("WORKSPACE_DIR", env.tmp.path().join("ws"))
        .env("BDC_LOG", "warn")
        .env("BDC_API_TOKEN", "tok")
        .env("BDC_GREENNESS_YAML", &env.config)
        .current_dir(env.tmp.path())
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "0",
            "--no-scheduler",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(url) = greenness_url {
        cmd.env("BDC_GREENNESS_DATABASE_URL", url);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let base = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_end_matches("/health/")
        .to_owned();
    let client = reqwest::Client::new();
    let url = format!("{base}/api/greenness/queues/main/commits/{sha}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let verdict: serde_json::Value = loop {
        if let Ok(r) = client.get(&url).bearer_auth("tok").send().await
            && r.status() == 200
        {
            let v: serde_json::Value = r.json().await.unwrap();
            if v["green"] == true {
                break v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the poller never validated the head"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(verdict["status"], "green");
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let _ = child.kill();
    let _ = child.wait();
    if let Some(url) = greenness_url {
        // The record is in MySQL (the CLI reads it there) and not in the
        // main database.
        let lg = env
            .bdc()
            .env("BDC_GREENNESS_DATABASE_URL", url)
            .args(["greenness", "last-green", "--queue", "main"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        assert!(String::from_utf8_lossy(&lg).trim().ends_with(&sha));
        env.bdc()
            .args(["greenness", "last-green", "--queue", "main"])
            .assert()
            .failure();
    }
}

#[tokio::test]
async fn greenness_serve_polls_sqlite() {
    serve_polls(Kind::Sqlite).await;
}

#[tokio::test]
async fn greenness_serve_polls_postgres() {
    serve_polls(Kind::Postgres).await;
}

/// `BDC_GREENNESS_DATABASE_URL=mysql://…`: `bdc migrate` creates the
/// greenness tables in MariaDB/MySQL, and `bdc serve` (poller, worker,
/// API) keeps them there.
#[tokio::test]
async fn greenness_serve_polls_mysql() {
    let Some(my) = bdc_testsupport::MySqlTestDb::new().await else {
        return;
    };
    let env = Env::new(Kind::Sqlite).await;
    let out = env
        .bdc()
        .env("BDC_GREENNESS_DATABASE_URL", my.url())
        .arg("migrate")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.contains("mysql schema part greenness migrated to version 1"),
        "{out}"
    );
    let out = env
        .bdc()
        .env("BDC_GREENNESS_DATABASE_URL", my.url())
        .args(["migrate", "--status"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(
        String::from_utf8_lossy(&out).contains("mysql schema part greenness: version 1;"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    drop(env);
    serve_polls_on(Kind::Sqlite, Some(my.url())).await;
}

/// `bdc serve` with `BDC_GRPC_BIND`: the gRPC listener answers a real
/// tonic client (bearer `BDC_API_TOKEN`) while the poller validates.
async fn serve_grpc(kind: Kind) {
    use bdc_greenness_grpc::pb::IsGreenRequest;
    use bdc_greenness_grpc::pb::greenness_client::GreennessClient;
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let env = Env::new(kind).await;
    let sha = commit(&env.repo, "app/a.c", "1");
    let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin!("bdc"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", env.db.url())
        .env("WORKSPACE_DIR", env.tmp.path().join("ws"))
        .env("BDC_LOG", "warn")
        .env("BDC_API_TOKEN", "tok")
        .env("BDC_GREENNESS_YAML", &env.config)
        .env("BDC_GRPC_BIND", "127.0.0.1:0")
        .current_dir(env.tmp.path())
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "0",
            "--no-scheduler",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    let mut reader = BufReader::new(stdout);
    reader.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("bdc greenness gRPC listening on "),
        "{line}"
    );
    // Keep reading stdout (the HTTP line follows) so bdc never writes to a
    // closed pipe.
    let drain = std::thread::spawn(move || {
        let mut rest = String::new();
        while reader.read_line(&mut rest).is_ok_and(|n| n > 0) {}
    });
    let addr = line.trim().rsplit(' ').next().unwrap().to_owned();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = GreennessClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut req = tonic::Request::new(IsGreenRequest {
            queue: "main".into(),
            commit: sha.clone(),
            project: None,
        });
        req.metadata_mut()
            .insert("authorization", "Bearer tok".parse().unwrap());
        if let Ok(r) = c.is_green(req).await
            && r.get_ref().green
        {
            assert_eq!(r.get_ref().status, "green");
            break;
        }
        assert!(Instant::now() < deadline, "never green over gRPC");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let e = c
        .is_green(IsGreenRequest {
            queue: "main".into(),
            commit: sha.clone(),
            project: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    let _ = child.kill();
    let _ = child.wait();
    let _ = drain.join();
}

#[tokio::test]
async fn greenness_serve_grpc_sqlite() {
    serve_grpc(Kind::Sqlite).await;
}

#[tokio::test]
async fn greenness_serve_grpc_postgres() {
    serve_grpc(Kind::Postgres).await;
}
