//! The `library-docs` collector: the documentation pages of each Boost
//! library per release, converted to Markdown and stored under
//! `WORKSPACE_DIR/library-docs/pages/`, with one row per page (title, URL,
//! library, version, file, SHA-256 of the Markdown) in `ld_pages`.
//!
//! ```text
//! bdc run library-docs [--versions 1.86.0,…] [--library KEY]… [--max-pages N]
//!                      [--use-local [--source-dir DIR] [--cleanup-extract]]
//!                      [--base-url URL] [--from-archive] [--dry-run] [--skip-index]
//! ```
//!
//! * Pages: breadth-first from `<base>/<1_NN_0>/libs/<key>/index.html`,
//!   following `<a href>` and `<meta http-equiv=refresh>` links that stay
//!   inside that library's prefix and name an `.html`/`.htm` page (a
//!   directory link means its `index.html`), at most `--max-pages`
//!   converted pages per library and version (default 10, 0 = no limit).
//! * Web (default): through the shared HTTP client (`bdc-http`):
//!   conditional requests from the HTTP cache, retries with backoff, every
//!   body in the raw archive (`WORKSPACE_DIR/raw/library-docs/`),
//!   `--from-archive` replays it without network. The base URL is
//!   `--base-url`, else `BDC_BOOST_DOCS_BASE_URL`, else
//!   `https://www.boost.org/doc/libs/`.
//! * `--use-local`: the same walk over the HTML of a release source
//!   archive `boost_<1_NN_0>.{tar.gz,tgz,tar.bz2,tar.xz,zip}` in
//!   `--source-dir` (default `WORKSPACE_DIR/library-docs/archives`),
//!   extracted safely ([`archive`]) to
//!   `WORKSPACE_DIR/library-docs/extract/<1_NN_0>/` (reused by later
//!   runs; removed after the run with `--cleanup-extract`). Pages keep
//!   their boost.org URL, so both sources give the same rows.
//! * Versions default to the newest release in the `boost-libraries`
//!   catalog; libraries default to that release's catalog
//!   ([`bdc_collector_boost_libraries::store::release_libraries`]).
//! * A page whose Markdown hash, title and file are unchanged is neither
//!   rewritten on disk nor in the database. Markdown files are written to a
//!   temporary name and renamed; the row follows the file, so a crash in
//!   between is repaired by the next run (same rows as an uninterrupted
//!   run).
//! * Bad input is counted, never fatal: `not_html` (a body that is not an
//!   HTML document), `undecodable` (unknown or violated charset),
//!   `not_found` (404/410, a missing local file, a URL missing from the
//!   archive in a replay), `unsafe_entries` (archive paths escaping the
//!   root, links), `too_large`.
//! * `--dry-run` crawls and converts but writes nothing (no file, row,
//!   checkpoint or HTTP cache entry): `would_write` counts what a real run
//!   would write. `--skip-index` is accepted for the original's command
//!   line: this build has no search index to update yet; the search index
//!   reads pages through [`store::doc_pages`].
//!
//! Checkpoints: one per version and library (scope `<1_NN_0>/<key>`,
//! token = SHA-256 over the (URL, hash) pairs of the walk), written once
//! the library's walk completed.
//!
//! Counts: `versions`, `libraries`, `pages`, `inserted`, `updated`,
//! `unchanged`, `repaired`, `would_write`, `not_html`, `undecodable`,
//! `not_found`, `extracted`, `unsafe_entries`, `too_large`, `requests`,
//! `not_modified`, `replayed`.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bdc_collector::{CollectContext, Collector};
use bdc_core::{BoxError, Categorized, FailureCategory, IncrementalState, TrackerResult};
use bdc_http::{ClientOptions, HttpCache, HttpClient, HttpError, RawArchive};
use bdc_storage::checkpoints::CheckpointWrite;
use bdc_storage::{Storage, StorageError};
use clap::Parser;
use sha2::{Digest, Sha256};
use tracing::Instrument;
use url::Url;

pub mod archive;
pub mod html;
pub mod store;

pub use store::{DocPage, PageQuery, SCHEMA, doc_pages};

/// Stable collector name.
pub const NAME: &str = "library-docs";
/// Default documentation root.
pub const DEFAULT_BASE_URL: &str = "https://www.boost.org/doc/libs/";
/// Environment variable naming another documentation root (tests, mirrors).
pub const BASE_URL_ENV: &str = "BDC_BOOST_DOCS_BASE_URL";

/// Errors of the `library-docs` collector.
#[derive(Debug, thiserror::Error)]
pub enum LibraryDocsError {
    #[error("invalid arguments for library-docs: {message}")]
    Args { message: String },
    #[error("{url}: {source}")]
    Http {
        url: String,
        #[source]
        source: HttpError,
    },
    #[error("database error while {what}: {source}")]
    Storage {
        what: &'static str,
        #[source]
        source: StorageError,
    },
    #[error("{path}: {action}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("archive {path}: {message}", path = path.display())]
    Archive { path: PathBuf, message: String },
    #[error(
        "--use-local: no source archive for {version} in {dir} (expected boost_{version}.tar.gz, .tgz, .tar.bz2, .tar.xz or .zip)",
        dir = dir.display()
    )]
    NoArchive { version: String, dir: PathBuf },
    #[error("{0}")]
    NoCatalog(String),
    #[error("a worker thread failed: {0}")]
    Join(String),
}

impl LibraryDocsError {
    pub fn category(&self) -> Option<FailureCategory> {
        match self {
            LibraryDocsError::Args { .. } | LibraryDocsError::NoCatalog(_) => {
                Some(FailureCategory::Config)
            }
            LibraryDocsError::NoArchive { .. } => Some(FailureCategory::NotFound),
            LibraryDocsError::Archive { .. } => Some(FailureCategory::Parse),
            LibraryDocsError::Http { source, .. } => Some(source.category()),
            _ => None,
        }
    }

    pub fn into_box(self) -> BoxError {
        match self.category() {
            Some(c) => {
                let message = self.to_string();
                Box::new(Categorized::with_source(c, message, self))
            }
            None => Box::new(self),
        }
    }
}

fn storage_err(what: &'static str) -> impl FnOnce(StorageError) -> LibraryDocsError {
    move |source| LibraryDocsError::Storage { what, source }
}

fn io_err(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> LibraryDocsError {
    let path = path.to_path_buf();
    move |source| LibraryDocsError::Io {
        path,
        action,
        source,
    }
}

/// `sha256:<hex>` of a page's Markdown.
pub fn content_hash(markdown: &str) -> String {
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(markdown.as_bytes()))
    )
}

/// `bdc run library-docs` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "library-docs",
    about = "Collect Boost library documentation pages as Markdown"
)]
pub struct DocsArgs {
    /// Boost versions (`1.86.0`, `1_86_0` or `boost-1.86.0`), comma
    /// separated or repeated [default: the newest release in the
    /// boost-libraries catalog].
    #[arg(long, value_name = "VERSION,…", value_delimiter = ',')]
    pub versions: Vec<String>,
    /// Library keys (`json`, `algorithm/minmax`), comma separated or
    /// repeated [default: every library of the catalog].
    #[arg(long, value_name = "KEY", value_delimiter = ',')]
    pub library: Vec<String>,
    /// Converted pages per library and version (0 = no limit).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_pages: u64,
    /// Read the pages from the release source archive instead of boost.org.
    #[arg(long)]
    pub use_local: bool,
    /// `--use-local`: the folder holding `boost_<1_NN_0>.tar.gz|.tar.bz2|.tar.xz|.zip`
    /// [default: WORKSPACE_DIR/library-docs/archives].
    #[arg(long, value_name = "DIR", requires = "use_local")]
    pub source_dir: Option<PathBuf>,
    /// `--use-local`: remove the extracted tree after the run.
    #[arg(long, requires = "use_local")]
    pub cleanup_extract: bool,
    /// The documentation root [default: BDC_BOOST_DOCS_BASE_URL, else
    /// https://www.boost.org/doc/libs/].
    #[arg(long, value_name = "URL", env = BASE_URL_ENV)]
    pub base_url: Option<String>,
    /// Re-read the raw archive of earlier runs instead of the network.
    #[arg(long, conflicts_with = "use_local")]
    pub from_archive: bool,
    /// Crawl and convert, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not update the search index (this build has none to update yet).
    #[arg(long)]
    pub skip_index: bool,
}

/// `1.86.0`, `1_86_0`, `boost-1.86.0`, `boost_1_86_0`, `1.86` → `1_86_0`.
pub fn normalize_version(v: &str) -> Option<String> {
    let t = v.trim();
    let t = t
        .strip_prefix("boost-")
        .or_else(|| t.strip_prefix("boost_"))
        .unwrap_or(t);
    let nums: Vec<&str> = t.split(['.', '_']).collect();
    if !(2..=3).contains(&nums.len())
        || nums
            .iter()
            .any(|n| n.is_empty() || n.len() > 4 || !n.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let n: Vec<u64> = nums.iter().filter_map(|n| n.parse().ok()).collect();
    Some(format!(
        "{}_{}_{}",
        n[0],
        n[1],
        n.get(2).copied().unwrap_or(0)
    ))
}

/// `1_86_0` → `boost-1.86.0` (the catalog's release tag).
pub fn release_tag(version: &str) -> String {
    format!("boost-{}", version.replace('_', "."))
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        })
}

impl DocsArgs {
    pub fn parse_args(args: &[String]) -> Result<Self, LibraryDocsError> {
        let mut a =
            Self::try_parse_from(std::iter::once(NAME.to_owned()).chain(args.iter().cloned()))
                .map_err(|e| LibraryDocsError::Args {
                    message: e.to_string().trim().to_owned(),
                })?;
        let mut versions = Vec::new();
        for v in &a.versions {
            let Some(n) = normalize_version(v) else {
                return Err(LibraryDocsError::Args {
                    message: format!("--versions: {v:?} is not a Boost version such as 1.86.0"),
                });
            };
            if !versions.contains(&n) {
                versions.push(n);
            }
        }
        a.versions = versions;
        for k in &a.library {
            if !valid_key(k) {
                return Err(LibraryDocsError::Args {
                    message: format!(
                        "--library: {k:?} is not a library key such as json or algorithm/minmax"
                    ),
                });
            }
        }
        a.library.dedup();
        a.base()?;
        Ok(a)
    }

    /// The documentation root, with a trailing `/`.
    pub fn base(&self) -> Result<Url, LibraryDocsError> {
        let raw = self.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL).trim();
        let text = if raw.ends_with('/') {
            raw.to_owned()
        } else {
            format!("{raw}/")
        };
        let url = Url::parse(&text).map_err(|e| LibraryDocsError::Args {
            message: format!("--base-url / {BASE_URL_ENV} {raw:?} is not a URL: {e}"),
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(LibraryDocsError::Args {
                message: format!("--base-url / {BASE_URL_ENV} {raw:?} must be an http(s) URL"),
            });
        }
        Ok(url)
    }
}

/// The `library-docs` collector.
#[derive(Debug, Clone, Copy, Default)]
pub struct LibraryDocsCollector;

#[async_trait]
impl Collector for LibraryDocsCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn args_command(&self) -> Option<clap::Command> {
        Some(<DocsArgs as clap::CommandFactory>::command())
    }

    fn validate_config(&self, ctx: &CollectContext) -> Result<(), BoxError> {
        DocsArgs::parse_args(&ctx.args).map_err(LibraryDocsError::into_box)?;
        Ok(())
    }

    async fn collect(&self, ctx: &CollectContext) -> Result<TrackerResult, BoxError> {
        let args = DocsArgs::parse_args(&ctx.args).map_err(LibraryDocsError::into_box)?;
        collect(ctx, &args)
            .await
            .map_err(LibraryDocsError::into_box)
    }
}

/// Run counts.
#[derive(Debug, Default)]
pub struct Counts(BTreeMap<&'static str, u64>);

/// Every count name, in report order.
pub const COUNT_NAMES: &[&str] = &[
    "versions",
    "libraries",
    "pages",
    "inserted",
    "updated",
    "unchanged",
    "repaired",
    "would_write",
    "vanished",
    "not_html",
    "undecodable",
    "not_found",
    "extracted",
    "unsafe_entries",
    "too_large",
    "requests",
    "not_modified",
    "replayed",
];

impl Counts {
    pub fn add(&mut self, k: &'static str, n: u64) {
        *self.0.entry(k).or_insert(0) += n;
    }
    pub fn get(&self, k: &str) -> u64 {
        self.0.get(k).copied().unwrap_or(0)
    }
    fn result(&self) -> TrackerResult {
        let mut r = TrackerResult::ok();
        for k in COUNT_NAMES {
            if let Err(e) = r.add(k, self.get(k)) {
                tracing::error!(count = k, error = %e, "invalid count name");
            }
        }
        r
    }
}

/// Where page bodies come from.
enum PageSource {
    Web(Box<HttpClient>),
    /// The extracted release tree (its root holds `libs/`).
    Local(PathBuf),
}

/// A fetched body, or why there is none (counted).
enum Fetch {
    Body(Vec<u8>),
    NotFound,
    /// A replay whose archive lacks the page: says nothing about the
    /// live docs, so the walk cannot tell that a page vanished.
    NotArchived,
}

impl PageSource {
    async fn fetch(&self, base_version: &Url, url: &Url) -> Result<Fetch, LibraryDocsError> {
        match self {
            PageSource::Web(client) => match client.get(url.as_str()).await {
                Ok(r) => Ok(Fetch::Body(r.body)),
                Err(HttpError::NotArchived { .. }) => Ok(Fetch::NotArchived),
                Err(e) if matches!(e.status(), Some(404 | 410)) => Ok(Fetch::NotFound),
                Err(source) => Err(LibraryDocsError::Http {
                    url: url.to_string(),
                    source,
                }),
            },
            PageSource::Local(root) => {
                let Some(rel) = base_version.make_relative(url) else {
                    return Ok(Fetch::NotFound);
                };
                if rel.split('/').any(|s| s == ".." || s.is_empty()) || rel.contains(':') {
                    return Ok(Fetch::NotFound);
                }
                let path = root.join(&rel);
                match tokio::fs::read(&path).await {
                    Ok(b) => Ok(Fetch::Body(b)),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                        ) =>
                    {
                        Ok(Fetch::NotFound)
                    }
                    Err(e) => Err(io_err(&path, "reading a documentation page")(e)),
                }
            }
        }
    }
}

/// The page URL a link leads to, when it stays inside `prefix` and names
/// a page: fragment and query dropped, a directory means its `index.html`.
pub fn follow(page: &Url, href: &str, prefix: &str) -> Option<Url> {
    let href = href.trim();
    if href.is_empty() || href.starts_with('#') {
        return None;
    }
    let mut u = page.join(href).ok()?;
    u.set_fragment(None);
    u.set_query(None);
    if !u.as_str().starts_with(prefix) {
        return None;
    }
    if u.path().ends_with('/') {
        u = u.join("index.html").ok()?;
    }
    let last = u
        .path()
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    (last.ends_with(".html") || last.ends_with(".htm")).then_some(u)
}

/// Where a page's Markdown goes, relative to WORKSPACE_DIR:
/// `library-docs/pages/<version>/<key with / as ~>/<path under the
/// prefix, .html → .md>`.
pub fn page_file(version: &str, library: &str, prefix: &str, url: &Url) -> String {
    let rest = url.as_str().strip_prefix(prefix).unwrap_or(url.path());
    let mut segs: Vec<String> = rest
        .split('/')
        .map(|s| {
            let clean: String = s
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "._-+~%".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if clean.is_empty() || clean == "." || clean == ".." {
                "_".to_owned()
            } else {
                clean
            }
        })
        .collect();
    if let Some(last) = segs.last_mut() {
        let stem = last
            .strip_suffix(".html")
            .or_else(|| last.strip_suffix(".htm"))
            .unwrap_or(last)
            .to_owned();
        *last = format!("{stem}.md");
    }
    format!(
        "library-docs/pages/{version}/{}/{}",
        library.replace('/', "~"),
        segs.join("/")
    )
}

/// Write `text` to `path` through a temporary file in the same folder and
/// a rename: a reader never sees half a page.
pub async fn write_atomic(path: &Path, text: &str) -> Result<(), LibraryDocsError> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(io_err(parent, "creating a directory"))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    tokio::fs::write(&tmp, text.as_bytes())
        .await
        .map_err(io_err(&tmp, "writing"))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(io_err(path, "renaming into place"))
}

/// What to walk.
struct Plan {
    versions: Vec<String>,
    /// Per version: library keys.
    libraries: BTreeMap<String, Vec<String>>,
}

async fn plan(storage: &Storage, args: &DocsArgs) -> Result<Plan, LibraryDocsError> {
    use bdc_collector_boost_libraries::store as catalog;
    let newest = catalog::newest_release(storage)
        .await
        .map_err(storage_err("reading the boost-libraries catalog"))?;
    let versions = if args.versions.is_empty() {
        let Some(tag) = newest.as_deref() else {
            return Err(LibraryDocsError::NoCatalog(
                "no --versions given and the boost-libraries catalog is empty: run `bdc run boost-libraries` first or pass --versions".into(),
            ));
        };
        let Some(v) = normalize_version(tag) else {
            return Err(LibraryDocsError::NoCatalog(format!(
                "the newest catalog release {tag:?} is not a Boost version"
            )));
        };
        vec![v]
    } else {
        args.versions.clone()
    };
    let mut libraries = BTreeMap::new();
    for v in &versions {
        let keys = if args.library.is_empty() {
            let mut libs = catalog::release_libraries(storage, &release_tag(v))
                .await
                .map_err(storage_err("reading the boost-libraries catalog"))?;
            if libs.is_empty()
                && let Some(tag) = newest.as_deref()
            {
                libs = catalog::release_libraries(storage, tag)
                    .await
                    .map_err(storage_err("reading the boost-libraries catalog"))?;
            }
            if libs.is_empty() {
                return Err(LibraryDocsError::NoCatalog(format!(
                    "no --library given and the boost-libraries catalog has no libraries for {v}: run `bdc run boost-libraries` first or pass --library"
                )));
            }
            libs.into_iter().map(|l| l.key).collect()
        } else {
            args.library.clone()
        };
        libraries.insert(v.clone(), keys);
    }
    Ok(Plan {
        versions,
        libraries,
    })
}

async fn web_client(ctx: &CollectContext, args: &DocsArgs) -> Result<HttpClient, LibraryDocsError> {
    let base = args.base()?;
    let mut opts = ClientOptions::new(NAME, base.clone());
    opts.accept = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5".into();
    opts.archive_not_found = true;
    let archive = RawArchive::new(&ctx.config.workspace_dir, NAME);
    let http = |source| LibraryDocsError::Http {
        url: base.to_string(),
        source,
    };
    if args.from_archive {
        return HttpClient::replay(opts, archive).await.map_err(http);
    }
    let client = HttpClient::new(opts).map_err(http)?;
    Ok(if args.dry_run {
        client
    } else {
        client
            .with_cache(HttpCache::new(ctx.storage.clone()))
            .with_archive(archive)
    })
}

async fn collect(ctx: &CollectContext, args: &DocsArgs) -> Result<TrackerResult, LibraryDocsError> {
    let plan = plan(&ctx.storage, args).await?;
    let mut counts = Counts::default();
    let base = args.base()?;
    let ws = ctx.config.workspace_dir.clone();
    if args.use_local {
        let src_dir = args
            .source_dir
            .clone()
            .unwrap_or_else(|| ws.join("library-docs").join("archives"));
        for v in &plan.versions {
            let dest = ws.join("library-docs").join("extract").join(v);
            if !dest.is_dir() {
                let Some((path, kind)) = archive::find_archive(&src_dir, v) else {
                    return Err(LibraryDocsError::NoArchive {
                        version: v.clone(),
                        dir: src_dir,
                    });
                };
                tracing::info!(collector = NAME, archive = %path.display(), "extracting the release HTML");
                let d = dest.clone();
                let stats = tokio::task::spawn_blocking(move || archive::extract(&path, kind, &d))
                    .await
                    .map_err(|e| LibraryDocsError::Join(e.to_string()))??;
                counts.add("extracted", stats.extracted);
                counts.add("unsafe_entries", stats.unsafe_entries);
                counts.add("too_large", stats.too_large);
            }
            let source = PageSource::Local(dest.clone());
            let outcome = walk_version(ctx, args, &base, &source, v, &plan, &mut counts).await;
            if args.cleanup_extract {
                tokio::fs::remove_dir_all(&dest)
                    .await
                    .map_err(io_err(&dest, "removing the extracted tree"))?;
            }
            outcome?;
        }
    } else {
        let client = web_client(ctx, args).await?;
        let source = PageSource::Web(Box::new(client));
        let mut outcome = Ok(());
        for v in &plan.versions {
            outcome = walk_version(ctx, args, &base, &source, v, &plan, &mut counts).await;
            if outcome.is_err() {
                break;
            }
        }
        if let PageSource::Web(client) = &source {
            let s = client.stats();
            counts.add("requests", s.requests);
            counts.add("not_modified", s.not_modified);
            counts.add("replayed", s.replayed);
        }
        outcome?;
    }
    Ok(counts.result())
}

async fn walk_version(
    ctx: &CollectContext,
    args: &DocsArgs,
    base: &Url,
    source: &PageSource,
    version: &str,
    plan: &Plan,
    counts: &mut Counts,
) -> Result<(), LibraryDocsError> {
    counts.add("versions", 1);
    let base_version = base
        .join(&format!("{version}/"))
        .map_err(|e| LibraryDocsError::Args {
            message: format!("version {version:?} does not fit the base URL {base}: {e}"),
        })?;
    let keys = plan.libraries.get(version).cloned().unwrap_or_default();
    for key in keys {
        let span = tracing::info_span!("library_docs", collector = NAME, version, library = %key);
        walk_library(ctx, args, &base_version, source, version, &key, counts)
            .instrument(span)
            .await?;
    }
    Ok(())
}

async fn walk_library(
    ctx: &CollectContext,
    args: &DocsArgs,
    base_version: &Url,
    source: &PageSource,
    version: &str,
    key: &str,
    counts: &mut Counts,
) -> Result<(), LibraryDocsError> {
    counts.add("libraries", 1);
    let prefix_url =
        base_version
            .join(&format!("libs/{key}/"))
            .map_err(|e| LibraryDocsError::Args {
                message: format!("library {key:?}: {e}"),
            })?;
    let prefix = prefix_url.to_string();
    let start = prefix_url
        .join("index.html")
        .map_err(|e| LibraryDocsError::Args {
            message: format!("library {key:?}: {e}"),
        })?;
    let stored = if args.dry_run {
        Default::default()
    } else {
        store::library_state(&ctx.storage, version, key)
            .await
            .map_err(storage_err("reading stored documentation pages"))?
    };
    let conv = html::converter();
    let mut queue = VecDeque::from([start.clone()]);
    let mut seen: HashSet<String> = HashSet::from([start.to_string()]);
    let mut walked: Vec<(String, String)> = Vec::new();
    let mut converted = 0u64;
    // Only a walk that ran out of links (not stopped by --max-pages) can
    // tell that a stored page vanished.
    let mut complete = true;
    while let Some(url) = queue.pop_front() {
        if args.max_pages > 0 && converted >= args.max_pages {
            complete = false;
            break;
        }
        let body = match source.fetch(base_version, &url).await? {
            Fetch::Body(b) => b,
            Fetch::NotFound => {
                counts.add("not_found", 1);
                tracing::debug!(url = %url, "page not found");
                continue;
            }
            Fetch::NotArchived => {
                counts.add("not_found", 1);
                tracing::debug!(url = %url, "page not in the archive");
                complete = false;
                continue;
            }
        };
        let page = match html::convert(&conv, &body) {
            Ok(p) => p,
            Err(skip) => {
                counts.add(
                    match skip {
                        html::PageSkip::NotHtml(_) => "not_html",
                        html::PageSkip::Undecodable(_) => "undecodable",
                    },
                    1,
                );
                tracing::warn!(url = %url, reason = %skip, "page skipped");
                continue;
            }
        };
        drop(body);
        converted += 1;
        counts.add("pages", 1);
        for href in &page.links {
            if let Some(next) = follow(&url, href, &prefix)
                && seen.insert(next.to_string())
            {
                queue.push_back(next);
            }
        }
        let row = store::PageRow {
            version: version.to_owned(),
            library: key.to_owned(),
            url: url.to_string(),
            title: page.title,
            file_path: page_file(version, key, &prefix, &url),
            content_hash: content_hash(&page.markdown),
            bytes: page.markdown.len() as u64,
        };
        walked.push((row.url.clone(), row.content_hash.clone()));
        if args.dry_run {
            let same = stored.get(&row.url).is_some_and(|(t, f, h, v)| {
                *t == row.title && *f == row.file_path && *h == row.content_hash && !*v
            });
            if !same {
                counts.add("would_write", 1);
            }
            continue;
        }
        store_page(ctx, &stored, &row, &page.markdown, counts).await?;
    }
    // A dry run reads no stored state (`stored` is empty): nothing to mark.
    // A walk that converted nothing (the start page missing, the site
    // down behind a 404 page) proves nothing either: it keeps every page.
    if complete && converted > 0 && !args.dry_run {
        let reached: HashSet<&str> = walked.iter().map(|(u, _)| u.as_str()).collect();
        let gone: Vec<String> = stored
            .iter()
            .filter(|(u, (_, _, _, vanished))| !*vanished && !reached.contains(u.as_str()))
            .map(|(u, _)| u.clone())
            .collect();
        if !gone.is_empty() {
            let n = store::mark_vanished(&ctx.storage, version, key, &gone, &ctx.run_id)
                .await
                .map_err(storage_err("marking vanished documentation pages"))?;
            counts.add("vanished", n);
            tracing::info!(pages = n, "pages no longer reached: marked vanished");
        }
    }
    if !args.dry_run {
        let mut h = Sha256::new();
        for (u, c) in &walked {
            h.update(u.as_bytes());
            h.update([0]);
            h.update(c.as_bytes());
            h.update([0]);
        }
        let state = IncrementalState::new(
            format!("sha256:{}", hex::encode(h.finalize())),
            format!("{} page(s) of {key} {version}", walked.len()),
        )
        .map_err(|e| LibraryDocsError::Args {
            message: e.to_string(),
        })?;
        let scope = format!("{version}/{key}");
        ctx.storage
            .checkpoints()
            .put(&CheckpointWrite {
                collector: NAME,
                scope: &scope,
                state: &state,
                run_id: Some(&ctx.run_id),
            })
            .await
            .map_err(storage_err("writing a library-docs checkpoint"))?;
    }
    metrics::counter!("bdc_library_docs_pages_total").increment(converted);
    tracing::info!(pages = converted, "library walked");
    Ok(())
}

async fn store_page(
    ctx: &CollectContext,
    stored: &std::collections::HashMap<String, store::StoredState>,
    row: &store::PageRow,
    markdown: &str,
    counts: &mut Counts,
) -> Result<(), LibraryDocsError> {
    let path = ctx.config.workspace_dir.join(&row.file_path);
    let same_row = stored.get(&row.url).is_some_and(|(t, f, h, v)| {
        *t == row.title && *f == row.file_path && *h == row.content_hash && !*v
    });
    let file_ok = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes == markdown.as_bytes(),
        Err(_) => false,
    };
    if same_row && file_ok {
        counts.add("unchanged", 1);
        return Ok(());
    }
    if !file_ok {
        write_atomic(&path, markdown).await?;
        if same_row {
            counts.add("repaired", 1);
            return Ok(());
        }
    }
    let inserted = store::upsert_page(&ctx.storage, row, &ctx.run_id)
        .await
        .map_err(storage_err("storing a documentation page"))?;
    counts.add(if inserted { "inserted" } else { "updated" }, 1);
    Ok(())
}
