//! `bdc audit as-of | history | verify-chain | checkpoint | verify-export`
//! and `export --with-hashes` end to end (the real binary), on SQLite and
//! PostgreSQL.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use bdc_testsupport::{Kind, TestDb};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Env {
    db: TestDb,
    workspace: tempfile::TempDir,
}

impl Env {
    fn bdc(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin!("bdc"));
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", self.db.url())
            .env("WORKSPACE_DIR", self.workspace.path())
            .env("BDC_LOG", "warn")
            .env("USER", "tester")
            .env("BDC_AUDIT_SIGNING_KEY", "11".repeat(32))
            .current_dir(repo_root());
        c
    }

    fn stdout(&self, args: &[&str]) -> String {
        let out = self
            .bdc()
            .args(args)
            .assert()
            .success()
            .get_output()
            .clone();
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `args`, expects exit `code`, returns stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self
            .bdc()
            .args(args)
            .assert()
            .code(code)
            .get_output()
            .clone();
        assert!(out.stdout.is_empty() || code == 1, "{out:?}");
        String::from_utf8(out.stderr).unwrap()
    }
}

use bdc_testsupport::both_backends as both;

both!(time_travel_and_tamper_evidence_end_to_end);
async fn time_travel_and_tamper_evidence_end_to_end(kind: Kind) {
    let env = Env {
        db: TestDb::new(kind).await,
        workspace: tempfile::tempdir().unwrap(),
    };
    env.stdout(&["migrate"]);
    let index = repo_root().join("examples/wg21/index.json");
    env.stdout(&[
        "run",
        "wg21-papers",
        "--index",
        &index.display().to_string(),
    ]);
    let now = chrono::Utc::now().to_rfc3339();

    // One row as of now: the run record exists.
    let out = env.stdout(&[
        "audit",
        "as-of",
        "--table",
        "collector_runs",
        "--pk",
        r#"{"id": 1}"#,
        "--at",
        &now,
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["state"], "exists", "{out}");
    assert_eq!(v["row"]["collector"], "wg21-papers");
    // Before the audit horizon.
    let out = env.stdout(&[
        "audit",
        "as-of",
        "--table",
        "collector_runs",
        "--pk",
        r#"{"id": 1}"#,
        "--at",
        "2001-01-01",
    ]);
    assert!(out.contains("before_horizon"), "{out}");
    // The whole table, CSV, filtered.
    let out = env.stdout(&[
        "audit",
        "as-of",
        "--table",
        "collector_runs",
        "--at",
        &now,
        "--format",
        "csv",
        "--where",
        "collector=wg21-papers",
    ]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.starts_with("id,"), "{out}");
    let out = env.stdout(&[
        "audit",
        "history",
        "--table",
        "collector_runs",
        "--pk",
        r#"{"id":1}"#,
    ]);
    assert!(out.contains("INSERT"), "{out}");

    // Bad input: exit 2, clear message.
    let err = env.fails(
        &[
            "audit",
            "as-of",
            "--table",
            "collector_runs",
            "--pk",
            r#"{"id": "1 OR 1=1"}"#,
            "--at",
            &now,
        ],
        2,
    );
    assert!(err.contains("pk"), "{err}");
    let err = env.fails(
        &[
            "audit",
            "as-of",
            "--table",
            "_bdc_migrations_audit",
            "--pk",
            r#"{"part": 1}"#,
            "--at",
            &now,
        ],
        2,
    );
    assert!(err.contains("not covered"), "{err}");
    let err = env.fails(
        &[
            "audit",
            "as-of",
            "--table",
            "collector_runs",
            "--pk",
            r#"{"id": 1}"#,
            "--at",
            "2999-01-01",
        ],
        2,
    );
    assert!(err.contains("future"), "{err}");

    // The chain, a signed checkpoint, an export verified offline.
    let out = env.stdout(&["audit", "verify-chain"]);
    assert!(out.contains("chain intact"), "{out}");
    let cp = env.workspace.path().join("cp.json");
    env.stdout(&["audit", "checkpoint", "-o", &cp.display().to_string()]);
    let out = env.stdout(&[
        "audit",
        "verify-chain",
        "--checkpoint",
        &cp.display().to_string(),
    ]);
    assert!(out.contains("chain intact"), "{out}");
    let bad = env.workspace.path().join("bad.json");
    let text = std::fs::read_to_string(&cp).unwrap();
    std::fs::write(
        &bad,
        text.replace("\"created_at\": \"2", "\"created_at\": \"1"),
    )
    .unwrap();
    let err = env.fails(
        &[
            "audit",
            "verify-chain",
            "--checkpoint",
            &bad.display().to_string(),
        ],
        2,
    );
    assert!(err.contains("signature"), "{err}");
    let export = env.workspace.path().join("chain.ndjson");
    env.stdout(&[
        "audit",
        "export",
        "--format",
        "ndjson",
        "--with-hashes",
        "-o",
        &export.display().to_string(),
    ]);
    let out = env.stdout(&[
        "audit",
        "verify-export",
        &export.display().to_string(),
        "--checkpoint",
        &cp.display().to_string(),
    ]);
    assert!(out.contains("chain intact"), "{out}");
    let text = std::fs::read_to_string(&export).unwrap();
    let edited = env.workspace.path().join("edited.ndjson");
    std::fs::write(&edited, text.replacen("wg21-papers", "evil-papers", 1)).unwrap();
    let err = env.fails(
        &["audit", "verify-export", &edited.display().to_string()],
        1,
    );
    assert!(err.contains("broken link"), "{err}");
    env.fails(&["audit", "export", "--format", "csv", "--with-hashes"], 2);

    // Revert: a dry-run plan, then the real thing, recorded as audit.revert.
    let tl = env.stdout(&[
        "audit",
        "timeline",
        "--table",
        "collector_runs",
        "--limit",
        "1",
        "--format",
        "json",
    ]);
    let tl: serde_json::Value = serde_json::from_str(&tl).unwrap();
    let max_tx = tl["items"][0]["transaction_id"].as_i64().unwrap();
    let tx = max_tx.to_string();
    let out = env.stdout(&["audit", "revert", &tx, "--dry-run"]);
    assert!(out.contains("plan to revert"), "{out}");
    let out = env.stdout(&["audit", "revert", &tx, "--force"]);
    assert!(out.contains("action audit.revert"), "{out}");
    env.fails(&["audit", "revert", "987654"], 2);

    // A hand edit in the database is caught.
    let edit = match kind {
        Kind::Sqlite => {
            "UPDATE audit_transactions SET actor_id = 'someone-else', actor = '{}' WHERE id = 1"
        }
        Kind::Postgres => {
            "UPDATE audit_transactions SET actor_id = 'someone-else', actor = '{}'::jsonb WHERE id = 1"
        }
    };
    let storage =
        bdc_storage::Storage::connect(env.db.url(), &bdc_storage::ConnectOptions::default())
            .await
            .unwrap();
    storage.execute_raw(edit.to_owned()).await.unwrap();
    storage.close().await;
    let err = env.fails(&["audit", "verify-chain"], 1);
    assert!(err.contains("broken link at position 1"), "{err}");
}
