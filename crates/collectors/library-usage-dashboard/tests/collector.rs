//! `library-usage-dashboard` end to end on SQLite and PostgreSQL: the
//! other collectors' rows are seeded through their own store functions
//! (catalog, boost-usage scans, repos-by-language counts) and by running
//! `git-history` on a local repository; the dashboard is built, checked
//! (JSON, CSV, Markdown, site, snapshot, `/dashboard/usage` section), and
//! published to a local bare git repository.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bdc_collector::{CollectContext, Collector};
use bdc_collector_boost_libraries::deps::Dependency;
use bdc_collector_boost_libraries::meta::Library;
use bdc_collector_boost_libraries::store::{ReleaseData, store_release};
use bdc_collector_boost_usage::store::{FileScan, RepoRow, RepoScan, store_scan};
use bdc_collector_library_usage_dashboard::metrics::DashboardData;
use bdc_collector_library_usage_dashboard::{
    LibraryUsageDashboardCollector, NAME, SCHEMA, UsageSection, store,
};
use bdc_collector_repos_by_language::store::{YearCount, store_language};
use bdc_config::Config;
use bdc_core::{FailureCategory, IncrementalState, TrackerResult};
use bdc_dashboard::Section;
use bdc_storage::checkpoints::CheckpointWrite;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::both_backends as both;
use bdc_testsupport::{Kind, TestDb};
use chrono::{NaiveDate, TimeZone, Utc};

fn git(dir: &Path, args: &[&str], date: Option<&str>) -> String {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Tester")
        .env("GIT_AUTHOR_EMAIL", "tester@example.org")
        .env("GIT_COMMITTER_NAME", "Tester")
        .env("GIT_COMMITTER_EMAIL", "tester@example.org");
    if let Some(d) = date {
        c.env("GIT_AUTHOR_DATE", d).env("GIT_COMMITTER_DATE", d);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

struct Env {
    _db: TestDb,
    storage: Storage,
    workspace: tempfile::TempDir,
    bare: tempfile::TempDir,
    _json_src: tempfile::TempDir,
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

const TODAY: &str = "2026-06-01";

fn lib(key: &str, name: &str) -> Library {
    Library {
        key: key.into(),
        name: Some(name.into()),
        authors: vec![],
        maintainers: vec![],
        description: None,
        category: vec![],
        cxxstd: None,
        status: None,
    }
}

fn repo(name: &str, stars: u64, created: &str, version: Option<&str>) -> RepoRow {
    RepoRow {
        full_name: name.into(),
        stars,
        language: Some("C++".into()),
        created_at: Some(format!("{created}T10:00:00Z")),
        pushed_at: Some(format!("{created}T12:00:00Z")),
        uses_boost: true,
        boost_version: version.map(str::to_owned),
        version_source: version.map(|_| "boost/version.hpp".to_owned()),
        boost_mode: "dependency".into(),
        gone: false,
        first_seen: "2026-05-01".into(),
        last_seen: "2026-05-01".into(),
    }
}

fn scan(r: RepoRow, headers: &[(&str, &str)]) -> RepoScan {
    RepoScan {
        repo: r,
        files: vec![FileScan {
            path: "src/main.cpp".into(),
            sha: "abc".into(),
            headers: Some(
                headers
                    .iter()
                    .map(|(h, l)| ((*h).to_owned(), (*l).to_owned()))
                    .collect(),
            ),
        }],
        complete: true,
    }
}

impl Env {
    async fn new(kind: Kind) -> Env {
        let db = TestDb::new(kind).await;
        let storage = Storage::connect(db.url(), &ConnectOptions::default())
            .await
            .unwrap();
        storage
            .migrate_parts(&[
                &bdc_identity::SCHEMA,
                &bdc_collector_git::SCHEMA,
                &bdc_collector_boost_libraries::SCHEMA,
                &bdc_collector_boost_usage::SCHEMA,
                &bdc_collector_repos_by_language::SCHEMA,
                &SCHEMA,
            ])
            .await
            .unwrap();
        let bare = tempfile::tempdir().unwrap();
        git(bare.path(), &["init", "-q", "--bare", "-b", "main"], None);
        let json_src = tempfile::tempdir().unwrap();
        let env = Env {
            _db: db,
            storage,
            workspace: tempfile::tempdir().unwrap(),
            bare,
            _json_src: json_src,
        };
        env.seed().await;
        env
    }

    async fn seed(&self) {
        // Catalog: two releases.
        let libs = vec![
            ("asio".to_owned(), lib("asio", "Asio")),
            ("json".to_owned(), lib("json", "JSON")),
            ("yap".to_owned(), lib("yap", "YAP")),
            (
                "numeric_conversion".to_owned(),
                lib("numeric/conversion", "Conversion"),
            ),
        ];
        for (release, at) in [
            (
                "boost-1.80.0",
                Utc.with_ymd_and_hms(2022, 8, 10, 0, 0, 0).unwrap(),
            ),
            (
                "boost-1.85.0",
                Utc.with_ymd_and_hms(2024, 4, 15, 0, 0, 0).unwrap(),
            ),
        ] {
            let state = IncrementalState::new(release, release).unwrap();
            store_release(
                &self.storage,
                &ReleaseData {
                    release: release.into(),
                    superproject_sha: "f".repeat(40),
                    released_at: at,
                    submodules: vec![],
                    libraries: libs.clone(),
                    // The newest release carries a dependency scan.
                    dependencies: (release == "boost-1.85.0").then(|| {
                        [
                            ("asio", "numeric/conversion"),
                            ("json", "asio"),
                            ("yap", "json"),
                        ]
                        .map(|(a, b)| Dependency {
                            library: a.into(),
                            depends_on: b.into(),
                            includes: 1,
                        })
                        .to_vec()
                    }),
                },
                &[],
                "seed",
                &CheckpointWrite {
                    collector: "boost-libraries",
                    scope: release,
                    state: &state,
                    run_id: None,
                },
            )
            .await
            .unwrap();
        }
        // boost-usage: three repositories.
        for s in [
            scan(
                repo("a/one", 100, "2019-03-01", Some("1.70.0")),
                &[
                    ("boost/asio.hpp", "asio"),
                    ("boost/asio/ip/tcp.hpp", "asio"),
                ],
            ),
            scan(
                repo("b/two", 5, "2024-02-01", None),
                &[("boost/asio.hpp", "asio")],
            ),
            scan(
                repo("c/three", 50, "2025-05-01", None),
                &[
                    ("boost/json.hpp", "json"),
                    ("boost/asio.hpp", "asio"),
                    ("boost/numeric/conversion/cast.hpp", "numeric/conversion"),
                ],
            ),
        ] {
            store_scan(&self.storage, &s, "2026-05-01", false)
                .await
                .unwrap();
        }
        // repos-by-language: C++ per year.
        store_language(
            &self.storage,
            "C++",
            &[
                YearCount {
                    year: 2024,
                    stars_min: 10,
                    created_repos: 1000,
                    starred_repos: 40,
                },
                YearCount {
                    year: 2025,
                    stars_min: 10,
                    created_repos: 2000,
                    starred_repos: 80,
                },
            ],
        )
        .await
        .unwrap();
        // git-history of the json library (submodule `json`).
        let src = self._json_src.path();
        git(src, &["init", "-q", "-b", "develop"], None);
        for (i, date) in [
            "2022-01-01T00:00:00Z",
            "2023-01-01T00:00:00Z",
            "2024-01-01T00:00:00Z",
        ]
        .iter()
        .enumerate()
        {
            std::fs::write(src.join(format!("f{i}.hpp")), format!("// {i}\n")).unwrap();
            git(src, &["add", "-A"], None);
            git(src, &["commit", "-q", "-m", "work"], Some(date));
        }
        let ctx = self.context_with(
            "git-history",
            &["--repo", src.to_str().unwrap(), "--name", "json"],
            &[],
        );
        bdc_collector_git::GitHistoryCollector
            .run(&ctx)
            .await
            .unwrap();
    }

    fn bare_url(&self) -> String {
        self.bare.path().display().to_string()
    }

    fn context_with(&self, command: &str, args: &[&str], env: &[(&str, &str)]) -> CollectContext {
        let mut vars: HashMap<String, String> = HashMap::new();
        vars.insert(
            "WORKSPACE_DIR".into(),
            self.workspace.path().display().to_string(),
        );
        vars.insert("DATABASE_URL".into(), "sqlite::memory:".into());
        for (k, v) in env {
            vars.insert((*k).into(), (*v).into());
        }
        let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
        CollectContext {
            run_id: "test-run".into(),
            command: command.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            schedule_group: None,
            storage: self.storage.clone(),
            config: Arc::new(config),
            interactive: false,
        }
    }

    fn publish_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("BOOST_LIBRARY_USAGE_DASHBOARD_PUBLISH_URL", self.bare_url()),
            ("GITHUB_TOKEN_WRITE", "tok-secret-123".into()),
        ]
    }

    async fn try_run(
        &self,
        args: &[&str],
        env: &[(&str, String)],
    ) -> Result<TrackerResult, bdc_collector::CollectorFailure> {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        LibraryUsageDashboardCollector::with_today(day(TODAY))
            .run(&self.context_with(NAME, args, &env))
            .await
    }

    async fn run(&self, args: &[&str], env: &[(&str, String)]) -> TrackerResult {
        match self.try_run(args, env).await {
            Ok(r) => r,
            Err(e) => panic!("run {args:?} failed: {e}"),
        }
    }

    fn out(&self) -> PathBuf {
        self.workspace.path().join("dashboard")
    }

    fn data(&self) -> DashboardData {
        serde_json::from_str(
            &std::fs::read_to_string(self.out().join("dashboard_data.json")).unwrap(),
        )
        .unwrap()
    }

    fn published_files(&self) -> Vec<String> {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(self.bare.path())
            .args(["ls-tree", "-r", "--name-only", "main"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn published_commits(&self) -> usize {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(self.bare.path())
            .args(["rev-list", "--count", "main"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }
}

/// Every file under `dir` (relative path → bytes).
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

async fn builds_metrics_files_site_and_publishes(kind: Kind) {
    let env = Env::new(kind).await;
    let r = env.run(&[], &env.publish_env()).await;
    assert_eq!(r.count("libraries"), 4);
    assert_eq!(r.count("repos"), 3);
    assert_eq!(r.count("header_uses"), 6);
    assert_eq!(r.count("site_pages"), 5);
    assert_eq!(r.count("snapshot_written"), 1);
    assert_eq!(r.count("published"), 1);
    // json + 10 csv + report + 5 pages
    assert_eq!(r.count("files_written"), 17);

    // Metrics.
    let d = env.data();
    assert_eq!(d.generated_on, TODAY);
    assert_eq!(d.overview.repos_using_boost, 3);
    assert_eq!(d.overview.libraries_in_catalog, 4);
    assert_eq!(d.overview.libraries_used, 3);
    assert_eq!(d.never_used, vec!["yap".to_owned()]);
    let asio = d.libraries.iter().find(|l| l.key == "asio").unwrap();
    assert_eq!(asio.name, "Asio");
    assert_eq!(
        (
            asio.repos_total,
            asio.repos_starred,
            asio.usage_last_5_years,
            asio.usage_earlier
        ),
        (3, 2, 2, 1)
    );
    assert_eq!(asio.first_use.as_deref(), Some("2019-03-01"));
    assert_eq!(asio.last_use.as_deref(), Some("2025-05-01"));
    assert_eq!(asio.average_stars, 51.6667);
    assert_eq!(asio.headers[0].header, "boost/asio.hpp");
    assert_eq!(asio.headers[0].repos, 3);
    // Yearly 2019..2026 = [1,0,0,0,0,1,1,0]: derivative -1, slope
    // 2/42·… — just the sign and determinism here; the formula is
    // unit-tested in `metrics`.
    assert!(asio.activity_score.is_finite());
    let cpp: Vec<(i32, u64, u64, u64, Option<f64>)> = d
        .cpp_repos_per_year
        .iter()
        .map(|c| (c.year, c.all, c.starred, c.using_boost, c.share_percent))
        .collect();
    assert_eq!(
        cpp,
        vec![
            (2024, 1000, 40, 0, Some(0.0)),
            (2025, 2000, 80, 1, Some(1.25))
        ]
    );
    let versions: Vec<(String, u64, u64)> = d
        .versions
        .iter()
        .map(|v| (v.version.clone(), v.detected, v.guessed))
        .collect();
    // b/two (2024-02-01) → 1.80.0, c/three (2025-05-01) → 1.85.0.
    assert_eq!(
        versions,
        vec![
            ("1.70.0".into(), 1, 0),
            ("1.80.0".into(), 0, 1),
            ("1.85.0".into(), 0, 1)
        ]
    );
    assert_eq!(d.top_repos[0].full_name, "a/one");
    assert_eq!(d.top_repos.len(), 3);
    // Contributions of json from git-history, split by release date.
    assert!(d.contributions_available);
    let json = d.libraries.iter().find(|l| l.key == "json").unwrap();
    let c: Vec<(String, u64, u64)> = json
        .contributions
        .iter()
        .map(|c| (c.release.clone(), c.commits, c.authors))
        .collect();
    assert_eq!(
        c,
        vec![("boost-1.80.0".into(), 1, 1), ("boost-1.85.0".into(), 2, 1)]
    );
    // Internal consumers: transitive, with depth, from the newest
    // release's dependency scan.
    assert!(d.internal_consumers_available);
    let conv = d
        .libraries
        .iter()
        .find(|l| l.key == "numeric/conversion")
        .unwrap();
    let consumers: Vec<(String, u32)> = conv
        .internal_consumers
        .iter()
        .map(|c| (c.library.clone(), c.depth))
        .collect();
    assert_eq!(
        consumers,
        vec![("asio".into(), 1), ("json".into(), 2), ("yap".into(), 3)]
    );

    // CSV, Markdown.
    let csv = std::fs::read_to_string(env.out().join("csv/libraries.csv")).unwrap();
    assert!(csv.starts_with("library,name,repos_total,"), "{csv}");
    assert!(
        csv.contains("\nasio,Asio,3,2,2,1,2019-03-01,2025-05-01,51.6667,"),
        "{csv}"
    );
    let cpp_csv = std::fs::read_to_string(env.out().join("csv/cpp_repos_per_year.csv")).unwrap();
    assert!(cpp_csv.contains("2025,2000,80,1,1.25"), "{cpp_csv}");
    let contrib =
        std::fs::read_to_string(env.out().join("csv/contributions_per_release.csv")).unwrap();
    assert!(contrib.contains("json,boost-1.85.0,2,"), "{contrib}");
    let md = std::fs::read_to_string(env.out().join("report.md")).unwrap();
    for h in [
        "## Overview",
        "## Top libraries",
        "## Never used",
        "## Version distribution",
        "## Counts by year",
        "| asio | 3 | 2 | 2 | 1 |",
        "`yap`",
        "| 1.85.0 | 0 | 1 | 1 |",
        "| 2025 | 1 | 2000 | 80 | 1 | 1.25 % |",
    ] {
        assert!(md.contains(h), "{h} missing in\n{md}");
    }

    // Site: index + one page per library, inline SVG, no script.
    let site = env.out().join("site");
    let index = std::fs::read_to_string(site.join("index.html")).unwrap();
    assert!(
        index.contains("<svg class=\"chart boost-years\""),
        "{index}"
    );
    assert!(index.contains("<svg class=\"chart cpp-years\""));
    assert!(index.contains("href=\"libraries/numeric-conversion.html\""));
    assert!(!index.contains("<script"));
    let page = std::fs::read_to_string(site.join("libraries/asio.html")).unwrap();
    assert!(page.contains("<svg class=\"chart library-years\""));
    assert!(page.contains("boost/asio/ip/tcp.hpp"));
    let json_page = std::fs::read_to_string(site.join("libraries/json.html")).unwrap();
    assert!(json_page.contains("<svg class=\"chart contributions\""));
    assert!(site.join("libraries/numeric-conversion.html").exists());
    assert!(site.join("libraries/yap.html").exists());

    // Published into develop/ of the bare repository.
    let files = env.published_files();
    for f in [
        "develop/index.html",
        "develop/libraries/asio.html",
        "develop/libraries/numeric-conversion.html",
    ] {
        assert!(files.contains(&f.to_owned()), "{f} not in {files:?}");
    }
    assert_eq!(env.published_commits(), 1);

    // The serve section reads the snapshot.
    let section = UsageSection::new(env.storage.clone());
    let body = section.render(&HashMap::new()).await.unwrap();
    assert!(body.contains("href=\"/dashboard/usage/asio\""), "{body}");
    assert!(body.contains("<svg"));
    let (heading, sub) = section
        .render_sub("numeric/conversion", &HashMap::new())
        .await
        .unwrap()
        .unwrap();
    assert!(heading.contains("Conversion"), "{heading}");
    assert!(sub.contains("boost/numeric/conversion/cast.hpp"));
    assert!(
        section
            .render_sub("nope", &HashMap::new())
            .await
            .unwrap()
            .is_none()
    );

    // A re-run changes nothing: no file, no row, no commit.
    let before = tree(&env.out());
    let r = env.run(&[], &env.publish_env()).await;
    assert_eq!(r.count("files_written"), 0);
    assert_eq!(r.count("files_unchanged"), 17);
    assert_eq!(r.count("snapshot_written"), 0);
    assert_eq!(r.count("published"), 0);
    assert_eq!(r.count("publish_unchanged"), 1);
    assert_eq!(tree(&env.out()), before);
    assert_eq!(env.published_commits(), 1);
    assert_eq!(store::snapshot_count(&env.storage).await.unwrap(), 1);

    // New data: a new day's run makes a new snapshot and a new commit.
    store_scan(
        &env.storage,
        &scan(
            repo("d/four", 500, "2026-01-10", Some("1.85.0")),
            &[("boost/yap.hpp", "yap")],
        ),
        "2026-06-01",
        false,
    )
    .await
    .unwrap();
    let r = env.run(&[], &env.publish_env()).await;
    assert_eq!(r.count("published"), 1);
    assert_eq!(env.published_commits(), 2);
    assert!(env.data().never_used.is_empty());
}
both!(builds_metrics_files_site_and_publishes);

async fn skip_flags_are_honoured(kind: Kind) {
    let env = Env::new(kind).await;
    // --skip-collect with nothing collected before: a config error.
    let e = env
        .try_run(&["--skip-collect", "--skip-publish"], &[])
        .await
        .unwrap_err();
    assert_eq!(e.category, FailureCategory::Config, "{e}");
    // Collect only.
    let r = env.run(&["--skip-render", "--skip-publish"], &[]).await;
    assert_eq!(r.count("site_pages"), 0);
    assert!(env.out().join("dashboard_data.json").exists());
    assert!(env.out().join("report.md").exists());
    assert!(!env.out().join("site").exists());
    // Render only, from the JSON.
    std::fs::remove_file(env.out().join("report.md")).unwrap();
    let r = env.run(&["--skip-collect", "--skip-publish"], &[]).await;
    assert_eq!((r.count("site_pages"), r.count("files_written")), (5, 5));
    assert_eq!(r.count("snapshot_written"), 0);
    assert!(!env.out().join("report.md").exists(), "collect was skipped");
    assert!(env.out().join("site/index.html").exists());
    assert!(env.published_files().is_empty());
    // Publish only; without a target it is skipped, not failed.
    let r = env.run(&["--skip-collect", "--skip-render"], &[]).await;
    assert_eq!(r.count("publish_skipped"), 1);
    let r = env
        .run(
            &["--skip-collect", "--skip-render", "--branch", "gh-pages"],
            &env.publish_env(),
        )
        .await;
    assert_eq!((r.count("published"), r.count("files_written")), (1, 0));
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(env.bare.path())
        .args(["ls-tree", "-r", "--name-only", "gh-pages"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("develop/index.html"));
    // Bad flags: usage errors.
    let e = env.try_run(&["--owner", "a b"], &[]).await.unwrap_err();
    assert_eq!(e.category, FailureCategory::Config);
    let e = env.try_run(&["--bogus"], &[]).await.unwrap_err();
    assert_eq!(e.category, FailureCategory::Config);
}
both!(skip_flags_are_honoured);

async fn interrupted_run_then_rerun_equals_uninterrupted(kind: Kind) {
    let env = Env::new(kind).await;
    env.run(&[], &env.publish_env()).await;
    let clean = tree(&env.out());
    // A crash mid-write: half a JSON, a missing CSV, a left-over temporary
    // file is not ours to keep… and a page of a library that left the
    // catalog; a publish checkout left behind.
    std::fs::write(env.out().join("dashboard_data.json"), "{\"generated_on\":").unwrap();
    std::fs::remove_file(env.out().join("csv/versions.csv")).unwrap();
    std::fs::write(env.out().join("site/libraries/gone.html"), "<html>").unwrap();
    std::fs::write(env.out().join("site/index.html"), "<ht").unwrap();
    std::fs::create_dir_all(env.workspace.path().join("dashboard-publish/junk")).unwrap();
    let r = env.run(&[], &env.publish_env()).await;
    assert_eq!(r.count("files_written"), 3);
    assert_eq!(r.count("pages_removed"), 1);
    assert_eq!(r.count("snapshot_written"), 0);
    assert_eq!(r.count("publish_unchanged"), 1);
    assert_eq!(tree(&env.out()), clean);
    assert_eq!(env.published_commits(), 1);
}
both!(interrupted_run_then_rerun_equals_uninterrupted);

async fn weights_come_from_the_environment(kind: Kind) {
    let env = Env::new(kind).await;
    let only_derivative = [
        ("BOOST_DASHBOARD_ACTIVITY_DERIVATIVE_WEIGHT", "1".to_owned()),
        ("BOOST_DASHBOARD_ACTIVITY_REGRESSION_WEIGHT", "0".to_owned()),
        ("BOOST_DASHBOARD_ACTIVITY_MOMENTUM_WEIGHT", "0".to_owned()),
    ];
    env.run(&["--skip-render", "--skip-publish"], &only_derivative)
        .await;
    let d = env.data();
    assert_eq!(d.weights.derivative, 1.0);
    // asio per year 2019..=2026: [1,0,0,0,0,1,1,0]: derivative -1, total 3.
    let asio = d.libraries.iter().find(|l| l.key == "asio").unwrap();
    assert_eq!(asio.activity_score, -0.6021, "-log10(4)");
    let json = d.libraries.iter().find(|l| l.key == "json").unwrap();
    // json: [1 (2025), 0 (2026)] → -1 · log10(2)
    assert_eq!(json.activity_score, -0.301);
}
both!(weights_come_from_the_environment);

async fn the_token_is_never_shown(kind: Kind) {
    let env = Env::new(kind).await;
    // An https remote nobody listens on: the push fails; the error names
    // the command, never the token.
    let e = env
        .try_run(
            &[],
            &[
                (
                    "BOOST_LIBRARY_USAGE_DASHBOARD_PUBLISH_URL",
                    "https://127.0.0.1:9/owner/repo.git".to_owned(),
                ),
                ("GITHUB_TOKEN_WRITE", "tok-secret-123".to_owned()),
            ],
        )
        .await
        .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(!text.contains("tok-secret-123"), "{text}");
    assert!(text.contains("ls-remote"), "{text}");
    assert_eq!(e.category, FailureCategory::Command);
}
both!(the_token_is_never_shown);
