//! End-to-end tests of `boost-libraries` on SQLite and PostgreSQL with a
//! superproject and library repositories built here: `.gitmodules` with
//! relative URLs, gitlinks, `meta/libraries.json` as an object and as an
//! array, a missing and an invalid one, two releases, a moved tag, and
//! steady-state re-runs.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use bdc_collector::{CollectContext, Collector};
use bdc_collector_boost_libraries::store::summary;
use bdc_collector_boost_libraries::{BoostLibrariesCollector, NAME, SCHEMA};
use bdc_config::Config;
use bdc_core::TrackerResult;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};

struct Env {
    _db: TestDb,
    storage: Storage,
    _workspace: tempfile::TempDir,
    config: Arc<Config>,
}

impl Env {
    async fn new(kind: Kind) -> Env {
        let workspace = tempfile::tempdir().unwrap();
        let db = TestDb::new(kind).await;
        let storage = Storage::connect(db.url(), &ConnectOptions::default())
            .await
            .unwrap();
        storage.migrate_parts(&[&SCHEMA]).await.unwrap();
        let ws = workspace.path().display().to_string();
        let url = db.url().to_owned();
        let config = Config::from_lookup(|k| match k {
            "WORKSPACE_DIR" => Some(ws.clone()),
            "DATABASE_URL" => Some(url.clone()),
            _ => None,
        })
        .unwrap();
        Env {
            _db: db,
            storage,
            _workspace: workspace,
            config: Arc::new(config),
        }
    }

    async fn run(&self, args: &[&str]) -> TrackerResult {
        let ctx = CollectContext {
            run_id: "test-run".into(),
            command: NAME.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            schedule_group: None,
            storage: self.storage.clone(),
            config: Arc::clone(&self.config),
            interactive: false,
        };
        match BoostLibrariesCollector.run(&ctx).await {
            Ok(r) => r,
            Err(e) => panic!("run {args:?} failed: {e}"),
        }
    }

    async fn checkpoints(&self) -> Vec<(String, String)> {
        bdc_storage::on_pool!(self.storage, p => sqlx::query_as::<_, (String, String)>(
            "SELECT scope, checkpoint_token FROM collector_checkpoints ORDER BY scope"
        ).fetch_all(p).await.unwrap())
    }
}

use bdc_testsupport::both_backends as both;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A library repo at `root/<name>` with one commit holding `meta` (if any).
fn library(root: &Path, name: &str, meta: Option<&str>) -> String {
    let dir = root.join(name);
    if !dir.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q", "-b", "develop"]);
    }
    std::fs::write(dir.join("README"), format!("{name} {meta:?}")).unwrap();
    if let Some(m) = meta {
        std::fs::create_dir_all(dir.join("meta")).unwrap();
        std::fs::write(dir.join("meta/libraries.json"), m).unwrap();
    }
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "update"]);
    git(&dir, &["rev-parse", "HEAD"])
}

/// Commit a superproject state: `.gitmodules` + gitlinks, then tag it.
fn release(sup: &Path, libs: &[(&str, &str)], tag: &str) {
    let mut gm = String::new();
    for (name, _) in libs {
        gm.push_str(&format!(
            "[submodule \"{name}\"]\n\tpath = libs/{name}\n\turl = ../{name}\n"
        ));
    }
    git(
        sup,
        &["rm", "-r", "-q", "--cached", "--ignore-unmatch", "libs"],
    );
    std::fs::write(sup.join(".gitmodules"), gm).unwrap();
    for (name, sha) in libs {
        git(
            sup,
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("160000,{sha},libs/{name}"),
            ],
        );
    }
    git(sup, &["add", ".gitmodules"]);
    git(sup, &["commit", "-q", "--allow-empty", "-m", tag]);
    git(sup, &["tag", "-f", tag]);
}

async fn catalog_across_releases(kind: Kind) {
    let env = Env::new(kind).await;
    let root = tempfile::tempdir().unwrap();
    let sup = root.path().join("boost");
    std::fs::create_dir_all(&sup).unwrap();
    git(&sup, &["init", "-q", "-b", "master"]);

    let config = library(
        root.path(),
        "config",
        Some(
            r#"{"key":"config","name":"Config","authors":"John","maintainers":["M <m@example.org>"],"description":"Configuration","category":["Workarounds"],"cxxstd":"03"}"#,
        ),
    );
    let json1 = library(
        root.path(),
        "json",
        Some(
            r#"[{"key":"json","name":"JSON","authors":["V"],"maintainers":["V"],"category":["IO"],"cxxstd":"11"},{"key":"json/ext","name":"JSON ext"},{"name":"no key"}]"#,
        ),
    );
    let nometa = library(root.path(), "nometa", None);
    release(
        &sup,
        &[("config", &config), ("json", &json1), ("nometa", &nometa)],
        "boost-1.0.0",
    );

    let json2 = library(
        root.path(),
        "json",
        Some(
            r#"[{"key":"json","name":"JSON","authors":["V"],"maintainers":["V","W"],"category":["IO"],"cxxstd":"11"}]"#,
        ),
    );
    let beast = library(
        root.path(),
        "beast",
        Some(r#"{"key":"beast","name":"Beast","cxxstd":11}"#),
    );
    release(
        &sup,
        &[("config", &config), ("json", &json2), ("beast", &beast)],
        "boost-1.1.0",
    );
    git(&sup, &["tag", "boost-1.1.0.beta1"]);

    let s = sup.to_str().unwrap();
    let r = env.run(&["--repo", s]).await;
    common::assert_two_releases(&r, &env.storage).await;

    // Steady state: tags did not move, nothing is fetched or written.
    let cps = env.checkpoints().await;
    let r = env.run(&["--repo", s]).await;
    assert_eq!(r.count("releases_unchanged"), 2);
    assert_eq!(r.count("inserted") + r.count("updated"), 0);
    assert_eq!(env.checkpoints().await, cps);

    // A moved tag is re-recorded: config's meta is now invalid JSON.
    let config2 = library(root.path(), "config", Some("{ not json"));
    release(
        &sup,
        &[("config", &config2), ("json", &json2), ("beast", &beast)],
        "boost-1.1.0",
    );
    let r = env.run(&["--repo", s, "--release", "boost-1.1.0"]).await;
    assert_eq!(
        (r.count("releases"), r.count("invalid_json")),
        (1, 1),
        "{r:?}"
    );
    assert_eq!(
        r.count("removed"),
        2,
        "config and json/ext are not in 1.1.0 any more"
    );
    assert_eq!(summary(&env.storage).await.unwrap(), (2, 6, 5));
    // The public key list spans every stored release.
    assert_eq!(
        bdc_collector_boost_libraries::store::library_keys(&env.storage)
            .await
            .unwrap(),
        ["beast", "config", "json", "json/ext"]
    );
    let status: String = bdc_storage::on_pool!(env.storage, p => sqlx::query_scalar(
        "SELECT meta_status FROM bl_submodules WHERE release = 'boost-1.1.0' AND name = 'config'"
    ).fetch_one(p).await.unwrap());
    assert_eq!(status, "invalid_json");
    let cps2 = env.checkpoints().await;
    assert_ne!(cps2, cps);
    let r = env.run(&["--repo", s]).await;
    assert_eq!(r.count("releases_unchanged"), 2);
}
both!(catalog_across_releases);

#[tokio::test]
async fn unknown_release_is_not_found() {
    let env = Env::new(Kind::Sqlite).await;
    let root = tempfile::tempdir().unwrap();
    let sup = root.path().join("boost");
    std::fs::create_dir_all(&sup).unwrap();
    git(&sup, &["init", "-q", "-b", "master"]);
    release(&sup, &[], "boost-1.0.0");
    let ctx = CollectContext {
        run_id: "t".into(),
        command: NAME.into(),
        args: vec![
            "--repo".into(),
            sup.display().to_string(),
            "--release".into(),
            "boost-9.9.9".into(),
        ],
        schedule_group: None,
        storage: env.storage.clone(),
        config: Arc::clone(&env.config),
        interactive: false,
    };
    let err = BoostLibrariesCollector.run(&ctx).await.unwrap_err();
    assert_eq!(err.category, bdc_core::FailureCategory::NotFound, "{err}");
}

/// A library repo with `meta` and extra files (path, contents).
fn library_with_files(root: &Path, name: &str, meta: &str, files: &[(&str, &str)]) -> String {
    let dir = root.join(name);
    if !dir.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q", "-b", "develop"]);
    }
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    library(root, name, Some(meta))
}

/// The dependency scan: each library's `include/` and `src/` includes
/// become edges of the release (multi-library submodules split by header
/// prefix, unknown headers counted), re-scanned when a tag moves, read
/// through the public store function.
async fn dependencies_from_the_libraries_own_includes(kind: Kind) {
    let env = Env::new(kind).await;
    let root = tempfile::tempdir().unwrap();
    let sup = root.path().join("boost");
    std::fs::create_dir_all(&sup).unwrap();
    git(&sup, &["init", "-q", "-b", "master"]);
    let config = library_with_files(
        root.path(),
        "config",
        r#"{"key":"config"}"#,
        &[("include/boost/config.hpp", "#pragma once\n")],
    );
    let assert = library_with_files(
        root.path(),
        "assert",
        r#"{"key":"assert"}"#,
        &[("include/boost/assert.hpp", "#include <boost/config.hpp>\n")],
    );
    let numeric = library_with_files(
        root.path(),
        "numeric",
        r#"[{"key":"numeric/conversion"},{"key":"numeric/ublas"}]"#,
        &[
            (
                "include/boost/numeric/conversion/cast.hpp",
                "#include <boost/config.hpp>\n",
            ),
            (
                "include/boost/numeric/ublas/matrix.hpp",
                "#include <boost/numeric/conversion/cast.hpp>\n#include <boost/detail/nowhere.hpp>\n",
            ),
        ],
    );
    let json = library_with_files(
        root.path(),
        "json",
        r#"{"key":"json"}"#,
        &[
            (
                "include/boost/json/value.hpp",
                "#include <boost/assert.hpp>\n#include <boost/json/detail/x.hpp>\n#include <vector>\n",
            ),
            (
                "src/src.cpp",
                "  #  include \"boost/numeric/ublas/matrix.hpp\"\n",
            ),
        ],
    );
    release(
        &sup,
        &[
            ("config", &config),
            ("assert", &assert),
            ("numeric", &numeric),
            ("json", &json),
        ],
        "boost-1.0.0",
    );
    let s = sup.to_str().unwrap();
    let r = env.run(&["--repo", s]).await;
    assert_eq!(
        (r.count("dependencies"), r.count("unknown_includes")),
        (5, 1),
        "{r:?}"
    );
    let edges = |deps: Vec<bdc_collector_boost_libraries::deps::Dependency>| -> Vec<String> {
        deps.into_iter()
            .map(|d| format!("{}->{}", d.library, d.depends_on))
            .collect()
    };
    let got = bdc_collector_boost_libraries::store::dependencies(&env.storage, "boost-1.0.0")
        .await
        .unwrap()
        .expect("scanned");
    assert_eq!(
        edges(got),
        [
            "assert->config",
            "json->assert",
            "json->numeric/ublas",
            "numeric/conversion->config",
            "numeric/ublas->numeric/conversion",
        ]
    );

    // The tag moves: json stops including assert.
    let json2 = library_with_files(
        root.path(),
        "json",
        r#"{"key":"json"}"#,
        &[(
            "include/boost/json/value.hpp",
            "#include <boost/config.hpp>\n",
        )],
    );
    release(
        &sup,
        &[
            ("config", &config),
            ("assert", &assert),
            ("numeric", &numeric),
            ("json", &json2),
        ],
        "boost-1.0.0",
    );
    env.run(&["--repo", s]).await;
    let got = bdc_collector_boost_libraries::store::dependencies(&env.storage, "boost-1.0.0")
        .await
        .unwrap()
        .expect("scanned");
    assert!(
        edges(got.clone()).contains(&"json->config".to_owned()),
        "{got:?}"
    );
    assert!(
        !edges(got.clone()).contains(&"json->assert".to_owned()),
        "{got:?}"
    );

    // Steady state: nothing re-read.
    let r = env.run(&["--repo", s]).await;
    assert_eq!(r.count("releases_unchanged"), 1);
    assert_eq!(
        bdc_collector_boost_libraries::store::dependencies(&env.storage, "boost-9.9.9")
            .await
            .unwrap(),
        None,
        "an unknown release has no scan"
    );
}
both!(dependencies_from_the_libraries_own_includes);
