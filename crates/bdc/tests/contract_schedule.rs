//! Contract: the original's schedule (groups `github`, `slack`,
//! `mailing_list`, tasks with no `args`) runs unchanged under `--strict`
//! against local stand-ins of GitHub, the Slack Web API and the Boost list
//! server, on SQLite and PostgreSQL. Every collector with no arguments does
//! what the original's command does. The production template's daily
//! (GitHub, clang, WG21, mailing list, Slack, Discord), weekly and monthly
//! groups (`config/boost_collector_schedule.yaml.example`) too.

use std::io::Write;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use bdc_testsupport::{Kind, TestDb, both_backends as both};
use wiremock::matchers::{method, method as method_matcher, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/original_schedule.yaml")
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

async fn stand_ins() -> MockServer {
    stand_ins_expecting(&["boost", "boost-users", "boost-announce"]).await
}

/// The stand-ins; the HyperKitty lists in `lists` must be asked for.
async fn stand_ins_expecting(lists: &[&str]) -> MockServer {
    let server = MockServer::start().await;
    // GitHub: the boostorg organisation (the original's default), empty here.
    Mock::given(method("GET"))
        .and(path("/orgs/boostorg/repos"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .expect(1..)
        .mount(&server)
        .await;
    // Slack: an empty workspace (the slack collector's own tests cover the rest).
    for (method, key) in [
        ("users.list", "members"),
        ("conversations.list", "channels"),
    ] {
        Mock::given(method_matcher("GET"))
            .and(path(format!("/slack/{method}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"ok": true, key: [], "response_metadata": {"next_cursor": ""}}),
            ))
            .expect(1..)
            .mount(&server)
            .await;
    }
    // The Boost list server's HyperKitty: the three lists, current month.
    for list in ["boost", "boost-users", "boost-announce"] {
        let addr = format!("{list}@lists.boost.org");
        let mbox = format!(
            "From a@x Mon Jan  1 00:00:00 2024\nMessage-ID: <{list}-1@x>\nFrom: A <a@x.org>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: [{list}] hello\n\nbody\n"
        );
        Mock::given(method("GET"))
            .and(path_regex(format!(
                "^/archives/list/{}/export/.*",
                addr.replace('.', "\\.")
            )))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(gz(mbox.as_bytes())))
            .expect(if lists.contains(&list) { 1.. } else { 0.. })
            .mount(&server)
            .await;
    }
    server
}

fn bdc(db: &str, ws: &Path, server: &str) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin!("bdc"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db)
        .env("WORKSPACE_DIR", ws)
        .env("GITHUB_API_URL", server)
        .env("GITHUB_TOKEN", "test-token")
        .env("SLACK_API_URL", format!("{server}/slack"))
        .env("SLACK_BOT_TOKEN", "xoxb-test-token")
        .env("SLACK_TEAM_ID", "T0TEST")
        .env("BDC_MAILING_LIST_ARCHIVE_URL", format!("{server}/archives"));
    c
}

both!(original_schedule_runs_under_strict);
async fn original_schedule_runs_under_strict(kind: Kind) {
    let server = stand_ins().await;
    let db = TestDb::new(kind).await;
    let ws = tempfile::tempdir().unwrap();
    let uri = server.uri();
    let schedule = fixture().display().to_string();
    let (db_url, ws_path) = (db.url().to_owned(), ws.path().to_path_buf());
    let out = tokio::task::spawn_blocking(move || {
        let db = db_url.as_str();
        let mut results = Vec::new();
        if kind == Kind::Postgres {
            bdc(db, &ws_path, &uri).arg("migrate").assert().success();
        }
        for group in ["github", "slack", "mailing_list"] {
            let o = bdc(db, &ws_path, &uri)
                .args([
                    "run-scheduled",
                    "--strict",
                    "--schedule",
                    &schedule,
                    "--group",
                    group,
                ])
                .assert()
                .success()
                .get_output()
                .clone();
            results.push(String::from_utf8_lossy(&o.stdout).into_owned());
        }
        let runs = bdc(db, &ws_path, &uri)
            .args(["runs", "--format", "json"])
            .assert()
            .success()
            .get_output()
            .clone();
        results.push(String::from_utf8_lossy(&runs.stdout).into_owned());
        results
    })
    .await
    .unwrap();
    assert!(
        out[0].contains("run_boost_github_activity_tracker") && out[0].contains("ok"),
        "{}",
        out[0]
    );
    assert!(out[0].contains("1 task(s) ran, 0 failed"), "{}", out[0]);
    assert!(
        out[1].contains("run_cppa_slack_tracker") && out[1].contains("ok"),
        "{}",
        out[1]
    );
    assert!(out[1].contains("1 task(s) ran, 0 failed"), "{}", out[1]);
    assert!(
        out[2].contains("run_boost_mailing_list_tracker") && out[2].contains("inserted=3"),
        "{}",
        out[2]
    );
    let runs: serde_json::Value = serde_json::from_str(&out[3]).unwrap();
    assert!(!out[3].contains("xoxb-"), "{}", out[3]);
    let statuses: Vec<(&str, &str)> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["collector"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("mailing-list", "success"),
            ("slack", "success"),
            ("github-activity", "success")
        ]
    );
}

// The weekly and monthly groups of the production template
// (`config/boost_collector_schedule.yaml.example`: boost-usage and
// repos-by-language weekly, the library usage dashboard monthly), every
// task with no args, under `--strict`, against a GitHub search stand-in.
both!(production_weekly_and_monthly_groups_run_under_strict);
async fn production_weekly_and_monthly_groups_run_under_strict(kind: Kind) {
    let server = MockServer::start().await;
    for p in ["/search/repositories", "/search/code"] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "total_count": 0, "incomplete_results": false, "items": []
            })))
            .mount(&server)
            .await;
    }
    let db = TestDb::new(kind).await;
    let ws = tempfile::tempdir().unwrap();
    let uri = server.uri();
    let schedule = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../config/boost_collector_schedule.yaml.example")
        .display()
        .to_string();
    let (db_url, ws_path) = (db.url().to_owned(), ws.path().to_path_buf());
    let out = tokio::task::spawn_blocking(move || {
        let db = db_url.as_str();
        if kind == Kind::Postgres {
            bdc(db, &ws_path, &uri).arg("migrate").assert().success();
        }
        let mut results = Vec::new();
        // Sunday (6) and Saturday (5) for the two weekly tasks, the 1st for
        // the monthly one.
        for (group, day_flag, day) in [
            ("weekly_collectors", "--day-of-week", "6"),
            ("weekly_collectors", "--day-of-week", "5"),
            ("monthly_collectors", "--day-of-month", "1"),
        ] {
            let o = bdc(db, &ws_path, &uri)
                // Three tokens: repos-by-language's 34 searches fit the
                // search API's 30 per minute and token without waiting.
                .env("GITHUB_TOKENS_SCRAPING", "t1,t2,t3")
                .args([
                    "run-scheduled",
                    "--strict",
                    "--schedule",
                    &schedule,
                    "--group",
                    group,
                    day_flag,
                    day,
                ])
                .assert()
                .success()
                .get_output()
                .clone();
            results.push(String::from_utf8_lossy(&o.stdout).into_owned());
        }
        results
    })
    .await
    .unwrap();
    for (o, task) in [
        (&out[0], "run_boost_usage_tracker"),
        (&out[1], "run_update_created_repos_by_language"),
        (&out[2], "run_boost_library_usage_dashboard"),
    ] {
        assert!(o.contains(task) && o.contains(" ok "), "{o}");
        assert!(o.contains("1 task(s) ran, 0 failed"), "{o}");
    }
}

// The production template's daily group (`daily_collectors`: github
// activity, clang, WG21, the mailing list, Slack and Discord), every task as
// written (only the mailing list's `--archive-url`, which names the real
// server, is pointed at the stand-in), under `--strict`, against stand-ins
// of GitHub, the WG21 index, HyperKitty, the Slack Web API and the Discord
// REST API.
both!(production_daily_group_runs_under_strict);
async fn production_daily_group_runs_under_strict(kind: Kind) {
    let server = stand_ins_expecting(&["boost"]).await;
    let uri = server.uri();
    // GitHub: llvm/llvm-project for clang-github, empty.
    Mock::given(method("GET"))
        .and(path("/repos/llvm/llvm-project"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": 1, "full_name": "llvm/llvm-project", "name": "llvm-project",
            "owner": {"login": "llvm", "id": 2}, "private": false, "fork": false,
            "default_branch": "main", "stargazers_count": 1, "language": "C++",
            "created_at": "2016-12-01T00:00:00Z", "pushed_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z", "html_url": "https://github.com/llvm/llvm-project"
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/repos/llvm/llvm-project/.+"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&server)
        .await;
    // The boost list on HyperKitty (the template names boost@lists.boost.org).
    // WG21: the bundled index.
    let index =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/wg21/index.json"))
            .unwrap();
    Mock::given(method("GET"))
        .and(path("/wg21/index.json"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(index))
        .mount(&server)
        .await;
    // Discord: a guild with no channels.
    Mock::given(method("GET"))
        .and(path("/discord/guilds/1214000000000000001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"id": "1214000000000000001", "name": "Boost", "icon": null}),
        ))
        .expect(1..)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/discord/guilds/1214000000000000001/channels"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/discord/guilds/1214000000000000001/threads/active"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"threads": [], "members": []})),
        )
        .mount(&server)
        .await;
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../config/boost_collector_schedule.yaml.example"),
    )
    .unwrap();
    let ws = tempfile::tempdir().unwrap();
    let schedule = ws.path().join("schedule.yaml");
    std::fs::write(
        &schedule,
        template.replace(
            "https://lists.boost.org/archives",
            &format!("{uri}/archives"),
        ),
    )
    .unwrap();
    let db = TestDb::new(kind).await;
    let (db_url, ws_path) = (db.url().to_owned(), ws.path().to_path_buf());
    let schedule = schedule.display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        let db = db_url.as_str();
        if kind == Kind::Postgres {
            bdc(db, &ws_path, &uri).arg("migrate").assert().success();
        }
        let o = bdc(db, &ws_path, &uri)
            .env("BDC_WG21_INDEX_URL", format!("{uri}/wg21/index.json"))
            .env("DISCORD_API_URL", format!("{uri}/discord"))
            .env("DISCORD_BOT_TOKEN", "discord-test-token")
            .env("DISCORD_GUILD_ID", "1214000000000000001")
            .args([
                "run-scheduled",
                "--strict",
                "--schedule",
                &schedule,
                "--group",
                "daily_collectors",
            ])
            .assert()
            .success()
            .get_output()
            .clone();
        String::from_utf8_lossy(&o.stdout).into_owned()
    })
    .await
    .unwrap();
    for task in [
        "run_boost_github_activity_tracker",
        "run_clang_github_tracker",
        "run_wg21_paper_tracker",
        "run_boost_mailing_list_tracker",
        "run_cppa_slack_tracker",
        "run_discord_activity_tracker",
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(task))
            .unwrap_or_else(|| panic!("{task} missing: {out}"));
        assert!(line.contains(" ok "), "{line}\n{out}");
    }
    assert!(out.contains("6 task(s) ran, 0 failed"), "{out}");
    assert!(!out.contains("discord-test-token"), "{out}");
}
