//! `library-docs` end to end on SQLite and PostgreSQL: a local HTTP server
//! (wiremock) serving a small generated Boost documentation tree (meta
//! refresh index, pages inside and outside the library prefix, a 404, a
//! binary page, a page violating its charset; ETags and `304`s), and
//! generated release source archives (tar.gz and zip) with entries that
//! escape the root and links. Covers: breadth-first walk and
//! `--max-pages`, Markdown files + hashes, unchanged pages not rewritten,
//! changed pages updated, repair after a crash between file and row,
//! an interrupted run followed by a re-run giving the rows of an
//! uninterrupted run, `--dry-run`, catalog defaults, and the one public
//! read (`doc_pages`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bdc_collector::{CollectContext, Collector};
use bdc_collector_library_docs::store::page_count;
use bdc_collector_library_docs::{LibraryDocsCollector, NAME, PageQuery, SCHEMA, doc_pages};
use bdc_config::Config;
use bdc_core::{FailureCategory, TrackerResult};
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb, both_backends as both};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const V: &str = "1_86_0";

/// The generated tree: path under the release root → body.
fn tree() -> BTreeMap<String, Vec<u8>> {
    let mut t = BTreeMap::new();
    let mut add = |p: &str, body: &[u8]| {
        t.insert(p.to_owned(), body.to_vec());
    };
    add(
        "libs/json/index.html",
        b"<html><head><meta http-equiv=\"refresh\" content=\"0; URL=doc/html/index.html\"></head>\
          <body>Automatic redirection failed, please go to <a href=\"doc/html/index.html\">doc/html/index.html</a></body></html>",
    );
    add(
        "libs/json/doc/html/index.html",
        b"<!DOCTYPE html><html><head><title>Chapter 1. Boost.JSON</title></head><body>\
          <h1>Boost.JSON</h1><p>A JSON library. <a href=\"intro.html\">Introduction</a>, \
          <a href=\"ref/values.html#top\">values</a>, <a href=\"sub/\">more</a>, \
          <a href=\"../../../../doc/html/other.html\">outside the prefix</a>, \
          <a href=\"https://example.com/\">elsewhere</a>, <a href=\"spec.pdf\">pdf</a>, \
          <a href=\"missing.html\">gone</a>, <a href=\"binary.html\">bin</a>, \
          <a href=\"bad-charset.html\">bad</a></p></body></html>",
    );
    add(
        "libs/json/doc/html/intro.html",
        b"<html><head><title>Introduction</title></head><body><h2>Why</h2>\
          <ul><li>fast</li><li>small</li></ul><pre><code>json::value v;</code></pre>\
          <a href=\"index.html\">home</a></body></html>",
    );
    add(
        "libs/json/doc/html/ref/values.html",
        b"<html><head><title>Values</title></head><body><table><tr><td>x</td></tr></table>\
          <a href=\"../index.html\">up</a></body></html>",
    );
    add(
        "libs/json/doc/html/sub/index.html",
        b"<html><head><title>Sub</title></head><body><p>Deeper page.</p></body></html>",
    );
    add(
        "libs/json/doc/html/binary.html",
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
    );
    add(
        "libs/json/doc/html/bad-charset.html",
        b"<html><head><meta charset=\"utf-8\"><title>Bad</title></head><body>\xff\xfe</body></html>",
    );
    add(
        "libs/core/index.html",
        b"<html><head><title>Core</title></head><body><a href=\"doc/a.html\">a</a></body></html>",
    );
    add(
        "libs/core/doc/a.html",
        b"<html><head><meta charset=\"iso-8859-1\"><title>Core A</title></head><body><p>Caf\xe9</p></body></html>",
    );
    t
}

#[derive(Default)]
struct Model {
    files: BTreeMap<String, Vec<u8>>,
    served: Vec<String>,
    not_modified: u64,
    /// Answer requests after this many with a long delay (a hung run).
    stall_after: Option<usize>,
}

#[derive(Clone, Default)]
struct Site(Arc<Mutex<Model>>, Arc<AtomicUsize>);

fn etag(body: &[u8]) -> String {
    format!("\"{:016x}\"", bdc_http::fnv1a64(body))
}

impl Respond for Site {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let n = self.1.fetch_add(1, Ordering::SeqCst);
        let mut m = self.0.lock().unwrap();
        if m.stall_after.is_some_and(|s| n >= s) {
            return ResponseTemplate::new(503).set_delay(Duration::from_secs(60));
        }
        let path = req.url.path().to_owned();
        m.served.push(path.clone());
        let rel = path.strip_prefix(&format!("/doc/libs/{V}/")).unwrap_or("");
        let Some(body) = m.files.get(rel).cloned() else {
            return ResponseTemplate::new(404).set_body_string("<html>Not Found</html>");
        };
        let tag = etag(&body);
        if req
            .headers
            .get("if-none-match")
            .and_then(|v| v.to_str().ok())
            == Some(tag.as_str())
        {
            m.not_modified += 1;
            return ResponseTemplate::new(304).insert_header("etag", tag.as_str());
        }
        ResponseTemplate::new(200)
            .insert_header("etag", tag.as_str())
            .insert_header("content-type", "text/html")
            .set_body_bytes(body)
    }
}

struct Env {
    _db: TestDb,
    storage: Storage,
    workspace: tempfile::TempDir,
    site: Site,
    base: String,
    _server: MockServer,
}

impl Env {
    async fn new(kind: Kind) -> Env {
        let db = TestDb::new(kind).await;
        let storage = Storage::connect(db.url(), &ConnectOptions::default())
            .await
            .unwrap();
        storage
            .migrate_parts(&[
                &bdc_http::SCHEMA,
                &bdc_collector_boost_libraries::SCHEMA,
                &SCHEMA,
            ])
            .await
            .unwrap();
        let server = MockServer::start().await;
        let site = Site::default();
        site.0.lock().unwrap().files = tree();
        Mock::given(wiremock::matchers::any())
            .respond_with(site.clone())
            .mount(&server)
            .await;
        Env {
            _db: db,
            storage,
            workspace: tempfile::tempdir().unwrap(),
            base: format!("{}/doc/libs/", server.uri()),
            site,
            _server: server,
        }
    }

    fn context(&self, args: &[&str]) -> CollectContext {
        let ws = self.workspace.path().display().to_string();
        let config = Config::from_lookup(|k| match k {
            "WORKSPACE_DIR" => Some(ws.clone()),
            "DATABASE_URL" => Some("sqlite::memory:".into()),
            _ => None,
        })
        .unwrap();
        let mut all = vec!["--base-url".to_owned(), self.base.clone()];
        all.extend(args.iter().map(|s| s.to_string()));
        CollectContext {
            run_id: "test-run".into(),
            command: NAME.into(),
            args: all,
            schedule_group: None,
            storage: self.storage.clone(),
            config: Arc::new(config),
            interactive: false,
        }
    }

    async fn run(&self, args: &[&str]) -> TrackerResult {
        match LibraryDocsCollector.run(&self.context(args)).await {
            Ok(r) => r,
            Err(e) => panic!("run {args:?} failed: {}", e.source),
        }
    }

    async fn rows(&self) -> Vec<(String, String, String, String, String, String)> {
        bdc_storage::on_pool!(self.storage, p => sqlx::query_as(
            "SELECT version, library, url, title, file_path, content_hash FROM ld_pages
             ORDER BY version, library, url"
        ).fetch_all(p).await.unwrap())
    }

    fn served(&self) -> usize {
        self.site.0.lock().unwrap().served.len()
    }
}

const ALL: &[&str] = &[
    "--versions",
    "1.86.0",
    "--library",
    "json,core",
    "--max-pages",
    "0",
];

both!(crawl_store_and_rerun);
async fn crawl_store_and_rerun(kind: Kind) {
    let env = Env::new(kind).await;
    let r = env.run(ALL).await;
    assert_eq!(r.count("libraries"), 2, "{r:?}");
    assert_eq!(r.count("pages"), 7, "{r:?}");
    assert_eq!(r.count("inserted"), 7, "{r:?}");
    assert_eq!(
        (
            r.count("not_found"),
            r.count("not_html"),
            r.count("undecodable")
        ),
        (1, 1, 1),
        "{r:?}"
    );
    // Nothing outside the prefix or non-HTML was requested.
    let served = env.site.0.lock().unwrap().served.clone();
    assert!(
        served
            .iter()
            .all(|p| p.starts_with(&format!("/doc/libs/{V}/libs/"))),
        "{served:?}"
    );
    assert!(!served.iter().any(|p| p.ends_with(".pdf")), "{served:?}");

    let rows = env.rows().await;
    let base = format!("{}{V}/libs/", env.base);
    let urls: Vec<String> = rows.iter().map(|r| r.2.replace(&base, "")).collect();
    assert_eq!(
        urls,
        vec![
            "core/doc/a.html",
            "core/index.html",
            "json/doc/html/index.html",
            "json/doc/html/intro.html",
            "json/doc/html/ref/values.html",
            "json/doc/html/sub/index.html",
            "json/index.html",
        ]
    );
    // Markdown on disk under the workspace, hash in the row.
    let intro = rows.iter().find(|r| r.2.ends_with("intro.html")).unwrap();
    assert_eq!(intro.3, "Introduction");
    assert_eq!(
        intro.4,
        format!("library-docs/pages/{V}/json/doc/html/intro.md")
    );
    let md = std::fs::read_to_string(env.workspace.path().join(&intro.4)).unwrap();
    assert!(
        md.contains("## Why") && md.contains("json::value v;"),
        "{md}"
    );
    assert_eq!(bdc_collector_library_docs::content_hash(&md), intro.5);
    let core_a = rows
        .iter()
        .find(|r| r.2.ends_with("core/doc/a.html"))
        .unwrap();
    let md = std::fs::read_to_string(env.workspace.path().join(&core_a.4)).unwrap();
    assert!(md.contains("Café"), "{md}");

    // The one public read: title, URL, library, version and Markdown.
    let pages = doc_pages(
        &env.storage,
        env.workspace.path(),
        &PageQuery {
            library: Some("json".into()),
            limit: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(pages.len(), 2);
    assert_eq!(
        (pages[0].version.as_str(), pages[0].library.as_str()),
        (V, "json")
    );
    assert_eq!(pages[0].title, "Chapter 1. Boost.JSON");
    assert!(
        pages[0].markdown.contains("# Boost.JSON"),
        "{}",
        pages[0].markdown
    );
    let last = pages.last().unwrap();
    let rest = doc_pages(
        &env.storage,
        env.workspace.path(),
        &PageQuery {
            library: Some("json".into()),
            after: Some((last.version.clone(), last.library.clone(), last.url.clone())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(rest.len(), 3);

    // Unchanged re-run: conditional requests, nothing rewritten.
    let mtime = std::fs::metadata(env.workspace.path().join(&intro.4))
        .unwrap()
        .modified()
        .unwrap();
    let r = env.run(ALL).await;
    assert_eq!(r.count("unchanged"), 7, "{r:?}");
    assert_eq!(
        r.count("inserted") + r.count("updated") + r.count("repaired"),
        0,
        "{r:?}"
    );
    assert!(r.count("not_modified") >= 7, "{r:?}");
    assert_eq!(
        std::fs::metadata(env.workspace.path().join(&intro.4))
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );
    assert_eq!(env.rows().await, rows);

    // Replay of the raw archive: no request, same rows.
    let before = env.served();
    let mut replay = ALL.to_vec();
    replay.push("--from-archive");
    let r = env.run(&replay).await;
    assert_eq!(
        (r.count("unchanged"), r.count("replayed") > 0),
        (7, true),
        "{r:?}"
    );
    assert_eq!(
        r.count("not_found"),
        1,
        "the archived 404 replays as a 404: {r:?}"
    );
    assert_eq!(env.served(), before);
    assert_eq!(env.rows().await, rows);

    // A changed page is updated (file and row), nothing else.
    env.site.0.lock().unwrap().files.insert(
        "libs/json/doc/html/intro.html".into(),
        b"<html><head><title>Introduction</title></head><body><h2>Why not</h2></body></html>"
            .to_vec(),
    );
    let r = env.run(ALL).await;
    assert_eq!((r.count("updated"), r.count("unchanged")), (1, 6), "{r:?}");
    let md = std::fs::read_to_string(env.workspace.path().join(&intro.4)).unwrap();
    assert!(md.contains("Why not"), "{md}");

    // Crash windows: a file written without its row (row missing) and a
    // row without its file (file missing) are both repaired.
    bdc_storage::on_pool!(env.storage, p => sqlx::query("DELETE FROM ld_pages WHERE url LIKE '%values.html'")
        .execute(p).await.map(|_| ()).unwrap());
    let values_file = env.workspace.path().join(format!(
        "library-docs/pages/{V}/json/doc/html/ref/values.md"
    ));
    let sub_file = env
        .workspace
        .path()
        .join(format!("library-docs/pages/{V}/json/doc/html/sub/index.md"));
    std::fs::remove_file(&sub_file).unwrap();
    let r = env.run(ALL).await;
    assert_eq!((r.count("inserted"), r.count("repaired")), (1, 1), "{r:?}");
    assert!(values_file.is_file() && sub_file.is_file());
    assert_eq!(page_count(&env.storage).await.unwrap(), 7);

    // A page gone from the site is marked vanished (row and file kept),
    // left out of the public read unless asked for, and revived when it
    // comes back. A walk cut by --max-pages marks nothing.
    let sub = env
        .site
        .0
        .lock()
        .unwrap()
        .files
        .remove("libs/json/doc/html/sub/index.html")
        .unwrap();
    let capped = [
        "--versions",
        "1.86.0",
        "--library",
        "json,core",
        "--max-pages",
        "2",
    ];
    let r = env.run(&capped).await;
    assert_eq!(r.count("vanished"), 0, "{r:?}");
    let r = env.run(ALL).await;
    assert_eq!(r.count("vanished"), 1, "{r:?}");
    let r = env.run(ALL).await;
    assert_eq!(r.count("vanished"), 0, "already marked: {r:?}");
    assert_eq!(page_count(&env.storage).await.unwrap(), 7);
    assert!(sub_file.is_file(), "the Markdown stays");
    let json_pages = |include_vanished| PageQuery {
        library: Some("json".into()),
        include_vanished,
        ..Default::default()
    };
    let live = doc_pages(&env.storage, env.workspace.path(), &json_pages(false))
        .await
        .unwrap();
    assert_eq!(live.len(), 4);
    assert!(live.iter().all(|p| p.vanished_at.is_none()));
    let all = doc_pages(&env.storage, env.workspace.path(), &json_pages(true))
        .await
        .unwrap();
    let gone: Vec<&str> = all
        .iter()
        .filter(|p| p.vanished_at.is_some())
        .map(|p| p.url.as_str())
        .collect();
    assert_eq!(gone.len(), 1);
    assert!(gone[0].ends_with("sub/index.html"), "{gone:?}");
    env.site
        .0
        .lock()
        .unwrap()
        .files
        .insert("libs/json/doc/html/sub/index.html".into(), sub);
    let r = env.run(ALL).await;
    assert_eq!((r.count("updated"), r.count("vanished")), (1, 0), "{r:?}");
    let live = doc_pages(&env.storage, env.workspace.path(), &json_pages(false))
        .await
        .unwrap();
    assert_eq!(live.len(), 5);
}

both!(max_pages_dry_run_and_catalog_defaults);
async fn max_pages_dry_run_and_catalog_defaults(kind: Kind) {
    let env = Env::new(kind).await;
    // Without a catalog and without --versions: a config error.
    let err = LibraryDocsCollector
        .run(&env.context(&[]))
        .await
        .err()
        .unwrap();
    assert_eq!(err.category, FailureCategory::Config, "{}", err.source);
    assert!(
        err.source.to_string().contains("boost-libraries"),
        "{}",
        err.source
    );

    // Dry run: crawled and converted, nothing written.
    let r = env
        .run(&["--versions", "1_86_0", "--library", "json", "--dry-run"])
        .await;
    assert_eq!((r.count("pages"), r.count("would_write")), (5, 5), "{r:?}");
    assert_eq!(page_count(&env.storage).await.unwrap(), 0);
    assert!(!env.workspace.path().join("library-docs/pages").exists());

    // Catalog defaults: newest release, its libraries; --max-pages bounds
    // converted pages per library, breadth first.
    seed_catalog(
        &env.storage,
        &[
            ("boost-1.85.0", &["json"]),
            ("boost-1.86.0", &["core", "json"]),
        ],
    )
    .await;
    let r = env.run(&["--max-pages", "2"]).await;
    assert_eq!((r.count("versions"), r.count("libraries")), (1, 2), "{r:?}");
    assert_eq!(r.count("pages"), 4, "{r:?}");
    let rows = env.rows().await;
    let json: Vec<&str> = rows
        .iter()
        .filter(|r| r.1 == "json")
        .map(|r| r.2.rsplit(&format!("{V}/")).next().unwrap())
        .collect();
    assert_eq!(
        json,
        vec!["libs/json/doc/html/index.html", "libs/json/index.html"]
    );
    let scopes: Vec<String> = bdc_storage::on_pool!(env.storage, p => sqlx::query_scalar(
        "SELECT scope FROM collector_checkpoints WHERE collector = 'library-docs' ORDER BY scope"
    ).fetch_all(p).await.unwrap());
    assert_eq!(scopes, vec![format!("{V}/core"), format!("{V}/json")]);

    // Bad arguments.
    for bad in [
        &["--versions", "latest"][..],
        &["--library", "../etc"],
        &["--cleanup-extract"],
        &["--max-pages", "-1"],
    ] {
        let err = LibraryDocsCollector
            .run(&env.context(bad))
            .await
            .err()
            .unwrap();
        assert_eq!(
            err.category,
            FailureCategory::Config,
            "{bad:?}: {}",
            err.source
        );
    }
}

async fn seed_catalog(storage: &Storage, releases: &[(&str, &[&str])]) {
    use bdc_collector_boost_libraries::meta::Library;
    use bdc_collector_boost_libraries::store::{ReleaseData, store_release};
    for (i, (tag, keys)) in releases.iter().enumerate() {
        let data = ReleaseData {
            release: tag.to_string(),
            superproject_sha: format!("{i:040x}"),
            released_at: chrono::Utc::now(),
            submodules: Vec::new(),
            libraries: keys
                .iter()
                .map(|k| {
                    (
                        k.to_string(),
                        Library {
                            key: k.to_string(),
                            name: Some(k.to_string()),
                            authors: Vec::new(),
                            maintainers: Vec::new(),
                            description: None,
                            category: Vec::new(),
                            cxxstd: None,
                            status: None,
                        },
                    )
                })
                .collect(),
            dependencies: None,
        };
        let state = bdc_core::IncrementalState::new("t", "m").unwrap();
        let scope = format!("release:{tag}");
        let cp = bdc_storage::checkpoints::CheckpointWrite {
            collector: "boost-libraries",
            scope: &scope,
            state: &state,
            run_id: None,
        };
        store_release(storage, &data, &[], "seed", &cp)
            .await
            .unwrap();
    }
}

both!(interrupted_run_then_rerun_matches_uninterrupted);
async fn interrupted_run_then_rerun_matches_uninterrupted(kind: Kind) {
    let reference = Env::new(kind).await;
    reference.run(ALL).await;
    let expected = reference.rows().await;
    let expected_files = files(reference.workspace.path());

    let env = Env::new(kind).await;
    env.site.0.lock().unwrap().stall_after = Some(4);
    let ctx = env.context(ALL);
    let task = tokio::spawn(async move { LibraryDocsCollector.run(&ctx).await });
    while env.site.1.load(Ordering::SeqCst) <= 4 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    task.abort();
    let _ = task.await;
    let partial = env.rows().await;
    assert!(
        !partial.is_empty() && partial.len() < expected.len(),
        "{partial:?}"
    );
    env.site.0.lock().unwrap().stall_after = None;
    let r = env.run(ALL).await;
    assert_eq!(r.count("pages"), 7, "{r:?}");
    assert_eq!(
        env.rows().await,
        with_base(&expected, &reference.base, &env.base)
    );
    assert_eq!(files(env.workspace.path()), expected_files);
    // No temporary files left behind.
    assert!(
        files(env.workspace.path())
            .keys()
            .all(|p| p.ends_with(".md"))
    );
}

/// Rows of another server: the same with its base URL.
fn with_base(
    rows: &[(String, String, String, String, String, String)],
    from: &str,
    to: &str,
) -> Vec<(String, String, String, String, String, String)> {
    rows.iter()
        .map(|r| {
            let mut r = r.clone();
            r.2 = r.2.replace(from, to);
            r
        })
        .collect()
}

/// Relative path → contents of every file under `library-docs/pages`.
fn files(ws: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    let mut out = BTreeMap::new();
    let root = ws.join("library-docs/pages");
    walk(&root, &root, &mut out);
    out
}

fn tar_gz(path: &Path, evil: bool) {
    let f = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    tar_into(gz, evil).finish().unwrap();
}

fn tar_bz2(path: &Path) {
    let f = std::fs::File::create(path).unwrap();
    let bz = bzip2::write::BzEncoder::new(f, bzip2::Compression::fast());
    tar_into(bz, true).finish().unwrap();
}

fn tar_into<W: Write>(w: W, evil: bool) -> W {
    let mut b = tar::Builder::new(w);
    for (rel, body) in tree() {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, format!("boost_{V}/{rel}"), body.as_slice())
            .unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_size(12);
    h.set_mode(0o644);
    b.append_data(
        &mut h,
        format!("boost_{V}/boost/json.hpp"),
        &b"#pragma once"[..],
    )
    .unwrap();
    if evil {
        for raw in [
            format!("boost_{V}/../../evil.html"),
            "/tmp/absolute-evil.html".to_owned(),
        ] {
            let mut h = tar::Header::new_gnu();
            let name = &mut h.as_gnu_mut().unwrap().name;
            name[..raw.len()].copy_from_slice(raw.as_bytes());
            h.set_size(4);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            b.append(&h, &b"evil"[..]).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(
            &mut h,
            format!("boost_{V}/libs/json/doc/html/link.html"),
            "/etc/passwd",
        )
        .unwrap();
    }
    b.into_inner().unwrap()
}

fn zip_file(path: &Path) {
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default();
    for (rel, body) in tree() {
        z.start_file(format!("boost_{V}/{rel}"), opts).unwrap();
        z.write_all(&body).unwrap();
    }
    z.start_file(format!("boost_{V}/../../zip-evil.html"), opts)
        .unwrap();
    z.write_all(b"evil").unwrap();
    z.add_symlink(
        format!("boost_{V}/libs/json/doc/html/link.html"),
        "/etc/passwd",
        opts,
    )
    .unwrap();
    z.finish().unwrap();
}

both!(local_archives_match_the_web_rows);
async fn local_archives_match_the_web_rows(kind: Kind) {
    let web = Env::new(kind).await;
    web.run(ALL).await;
    let web_rows = web.rows().await;
    for format in ["tar.gz", "tar.bz2", "zip"] {
        let env = Env::new(kind).await;
        let src = tempfile::tempdir().unwrap();
        let archive = src.path().join(format!("boost_{V}.{format}"));
        match format {
            "zip" => zip_file(&archive),
            "tar.bz2" => tar_bz2(&archive),
            _ => tar_gz(&archive, true),
        }
        let src_dir = src.path().display().to_string();
        let mut args = ALL.to_vec();
        args.extend(["--use-local", "--source-dir", &src_dir]);
        let r = env.run(&args).await;
        assert_eq!(
            r.count("unsafe_entries"),
            if format == "zip" { 2 } else { 3 },
            "{format}: {r:?}"
        );
        assert_eq!(r.count("extracted"), 9, "{format}: {r:?}");
        assert_eq!(r.count("pages"), 7, "{format}: {r:?}");
        assert_eq!(env.served(), 0, "--use-local never uses the network");
        // Same identity (boost.org-shaped URLs) and content as the crawl.
        assert_eq!(
            env.rows().await,
            with_base(&web_rows, &web.base, &env.base),
            "{format}"
        );
        // Nothing escaped the extraction root.
        assert!(!src.path().join("evil.html").exists());
        assert!(!Path::new("/tmp/absolute-evil.html").exists());
        let extract = env
            .workspace
            .path()
            .join(format!("library-docs/extract/{V}"));
        assert!(extract.join("libs/json/doc/html/intro.html").is_file());
        assert!(!extract.join("libs/json/doc/html/link.html").exists());
        assert!(!extract.join("boost/json.hpp").exists());
        // Re-run reuses the extraction; --cleanup-extract removes it.
        let mut again = args.clone();
        again.push("--cleanup-extract");
        let r = env.run(&again).await;
        assert_eq!(
            (r.count("extracted"), r.count("unchanged")),
            (0, 7),
            "{r:?}"
        );
        assert!(!extract.exists());
    }
    // tar.xz (fixture made with Python's lzma module): pages and a refused
    // entry.
    let env = Env::new(kind).await;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let dir = fixtures.display().to_string();
    let r = env
        .run(&[
            "--versions",
            "1.86.0",
            "--library",
            "json",
            "--use-local",
            "--source-dir",
            &dir,
            "--cleanup-extract",
        ])
        .await;
    assert_eq!(
        (r.count("pages"), r.count("unsafe_entries")),
        (2, 1),
        "{r:?}"
    );
    let titles: Vec<String> = env.rows().await.into_iter().map(|r| r.3).collect();
    assert_eq!(titles, vec!["X", "JSON xz"]);
    assert!(!fixtures.join("escape.html").exists());

    // A corrupt archive is a parse error naming it; nothing is left
    // half-extracted as if complete.
    let env = Env::new(kind).await;
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(
        bad.path().join(format!("boost_{V}.tar.gz")),
        b"\x1f\x8b\x08garbage",
    )
    .unwrap();
    let dir = bad.path().display().to_string();
    let err = LibraryDocsCollector
        .run(&env.context(&[
            "--versions",
            "1.86.0",
            "--library",
            "json",
            "--use-local",
            "--source-dir",
            &dir,
        ]))
        .await
        .err()
        .unwrap();
    assert_eq!(err.category, FailureCategory::Parse, "{}", err.source);
    assert!(
        err.source.to_string().contains("boost_1_86_0.tar.gz"),
        "{}",
        err.source
    );
    assert!(
        !env.workspace
            .path()
            .join(format!("library-docs/extract/{V}"))
            .exists()
    );

    // A missing archive is a clear not-found error naming the folder.
    let env = Env::new(kind).await;
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().display().to_string();
    let err = LibraryDocsCollector
        .run(&env.context(&[
            "--versions",
            "1.86.0",
            "--library",
            "json",
            "--use-local",
            "--source-dir",
            &dir,
        ]))
        .await
        .err()
        .unwrap();
    assert_eq!(err.category, FailureCategory::NotFound);
    assert!(err.source.to_string().contains(&dir), "{}", err.source);
}
