//! The library-docs store: schema part `library_docs` (table `ld_pages`)
//! and [`doc_pages`], the one public read of the stored pages (title, URL,
//! library, version and Markdown text) for the search index and anyone
//! else.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bdc_storage::{MigrationFile, QueryContext, SchemaPart, Storage, StorageError, now, on_pool};
use chrono::{DateTime, Utc};

/// The collector's schema part (registered in `crates/bdc/src/schema.rs`).
pub static SCHEMA: SchemaPart = SchemaPart {
    name: "library_docs",
    migrations: &[
        MigrationFile {
            version: 1,
            description: "library documentation pages",
            sqlite: include_str!("../migrations/sqlite_0001.sql"),
            postgres: include_str!("../migrations/postgres_0001.sql"),
        },
        MigrationFile {
            version: 2,
            description: "vanished documentation pages",
            sqlite: include_str!("../migrations/sqlite_0002.sql"),
            postgres: include_str!("../migrations/postgres_0002.sql"),
        },
    ],
};

/// What is stored about a page (besides its Markdown file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRow {
    pub version: String,
    pub library: String,
    pub url: String,
    pub title: String,
    /// Relative to WORKSPACE_DIR, `/`-separated.
    pub file_path: String,
    /// `sha256:<hex>` of the Markdown.
    pub content_hash: String,
    pub bytes: u64,
}

/// The stored state of a page: (title, file_path, content_hash,
/// vanished).
pub type StoredState = (String, String, String, bool);

/// Stored pages of one library and version, by URL.
pub async fn library_state(
    storage: &Storage,
    version: &str,
    library: &str,
) -> Result<HashMap<String, StoredState>, StorageError> {
    type Row = (String, String, String, String, Option<DateTime<Utc>>);
    let rows: Vec<Row> = on_pool!(storage, p => sqlx::query_as(
        "SELECT url, title, file_path, content_hash, vanished_at FROM ld_pages
         WHERE version = $1 AND library = $2",
    )
    .bind(version)
    .bind(library)
    .fetch_all(p)
    .await
    .ctx("reading stored documentation pages"))?;
    Ok(rows
        .into_iter()
        .map(|(u, t, f, h, v)| (u, (t, f, h, v.is_some())))
        .collect())
}

/// Mark `urls` of one library and version vanished (a complete walk no
/// longer reaches them); pages already marked keep their first date.
/// Returns how many were newly marked. One transaction.
pub async fn mark_vanished(
    storage: &Storage,
    version: &str,
    library: &str,
    urls: &[String],
    run_id: &str,
) -> Result<u64, StorageError> {
    if urls.is_empty() {
        return Ok(0);
    }
    let stamp = now();
    let mut tx = storage.begin().await?;
    let mut marked = 0u64;
    for url in urls {
        let n = bdc_storage::on_tx!(&mut tx, t => sqlx::query(
            "UPDATE ld_pages SET vanished_at = $1, updated_at = $1, run_id = $2
             WHERE version = $3 AND library = $4 AND url = $5 AND vanished_at IS NULL",
        )
        .bind(stamp)
        .bind(run_id)
        .bind(version)
        .bind(library)
        .bind(url.as_str())
        .execute(&mut **t)
        .await
        .map(|r| r.rows_affected()))
        .ctx("marking a documentation page vanished")?;
        marked += n;
    }
    tx.commit().await?;
    Ok(marked)
}

/// Insert or update one page row (one transaction); `true` when it was
/// inserted. An identical row is not rewritten.
pub async fn upsert_page(
    storage: &Storage,
    row: &PageRow,
    run_id: &str,
) -> Result<bool, StorageError> {
    let stamp = now();
    let bytes = i64::try_from(row.bytes).unwrap_or(i64::MAX);
    let mut tx = storage.begin().await?;
    let inserted = bdc_storage::on_tx!(&mut tx, t => {
        let existed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM ld_pages WHERE version = $1 AND library = $2 AND url = $3",
        )
        .bind(row.version.as_str())
        .bind(row.library.as_str())
        .bind(row.url.as_str())
        .fetch_one(&mut **t)
        .await
        .ctx("looking up a documentation page")?;
        sqlx::query(
            "INSERT INTO ld_pages (version, library, url, title, file_path, content_hash, bytes,
                                   first_seen_at, updated_at, run_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)
             ON CONFLICT (version, library, url) DO UPDATE SET title = excluded.title,
                file_path = excluded.file_path, content_hash = excluded.content_hash,
                bytes = excluded.bytes, updated_at = excluded.updated_at, run_id = excluded.run_id,
                vanished_at = NULL
             WHERE ld_pages.title <> excluded.title OR ld_pages.file_path <> excluded.file_path
                OR ld_pages.content_hash <> excluded.content_hash
                OR ld_pages.vanished_at IS NOT NULL",
        )
        .bind(row.version.as_str())
        .bind(row.library.as_str())
        .bind(row.url.as_str())
        .bind(row.title.as_str())
        .bind(row.file_path.as_str())
        .bind(row.content_hash.as_str())
        .bind(bytes)
        .bind(stamp)
        .bind(run_id)
        .execute(&mut **t)
        .await
        .ctx("upserting a documentation page")?;
        existed == 0
    });
    tx.commit().await?;
    Ok(inserted)
}

/// Which pages [`doc_pages`] returns. Pages come in (version, library,
/// url) order; `after` continues after that key (keyset paging).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageQuery {
    pub version: Option<String>,
    pub library: Option<String>,
    /// (version, library, url) of the last page of the previous batch.
    pub after: Option<(String, String, String)>,
    /// At most this many pages (0 = 1000).
    pub limit: u64,
    /// Also pages that vanished from the docs (with
    /// [`DocPage::vanished_at`] set): an index sync uses them to drop the
    /// page. Off: only live pages.
    pub include_vanished: bool,
    /// Only pages written (or marked vanished) after this time: an index
    /// sync reads what changed, not every page file.
    pub updated_after: Option<DateTime<Utc>>,
}

/// One stored documentation page with its Markdown text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocPage {
    pub version: String,
    pub library: String,
    pub url: String,
    pub title: String,
    pub markdown: String,
    pub content_hash: String,
    pub updated_at: DateTime<Utc>,
    /// When a complete walk stopped reaching the page (`None`: live).
    pub vanished_at: Option<DateTime<Utc>>,
}

/// Errors of [`doc_pages`].
#[derive(Debug, thiserror::Error)]
pub enum DocPagesError {
    #[error("reading documentation pages: {0}")]
    Storage(#[from] StorageError),
    #[error("documentation page {url}: reading {path}: {source}", path = path.display())]
    File {
        url: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("documentation page {url}: {path} is not the stored Markdown (hash {found}, expected {expected})", path = path.display())]
    Mismatch {
        url: String,
        path: PathBuf,
        found: String,
        expected: String,
    },
}

/// The stored pages (title, URL, library, version and Markdown text read
/// from `workspace_dir`): the one way to read what `library-docs`
/// collected. A Markdown file that is missing or does not match its
/// stored hash is an error naming the file.
pub async fn doc_pages(
    storage: &Storage,
    workspace_dir: &Path,
    query: &PageQuery,
) -> Result<Vec<DocPage>, DocPagesError> {
    let limit = i64::try_from(if query.limit == 0 { 1000 } else { query.limit }).unwrap_or(1000);
    let (av, al, au) = query.after.clone().unwrap_or_default();
    let has_after = query.after.is_some();
    type Row = (
        String,
        String,
        String,
        String,
        String,
        String,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<Row> = on_pool!(storage, p => sqlx::query_as(
        "SELECT version, library, url, title, file_path, content_hash, updated_at, vanished_at
         FROM ld_pages
         WHERE ($1 IS NULL OR version = $1) AND ($2 IS NULL OR library = $2)
           AND ($8 OR vanished_at IS NULL)
           AND (NOT $9 OR updated_at > $10)
           AND (NOT $3 OR version > $4 OR (version = $4 AND library > $5)
                OR (version = $4 AND library = $5 AND url > $6))
         ORDER BY version, library, url LIMIT $7",
    )
    .bind(query.version.as_deref())
    .bind(query.library.as_deref())
    .bind(has_after)
    .bind(av.as_str())
    .bind(al.as_str())
    .bind(au.as_str())
    .bind(limit)
    .bind(query.include_vanished)
    .bind(query.updated_after.is_some())
    .bind(query.updated_after.map(bdc_storage::normalize_time).unwrap_or(DateTime::<Utc>::UNIX_EPOCH))
    .fetch_all(p)
    .await
    .ctx("listing documentation pages"))?;
    let mut out = Vec::with_capacity(rows.len());
    for (version, library, url, title, file_path, content_hash, updated_at, vanished_at) in rows {
        let path = workspace_dir.join(&file_path);
        let markdown =
            tokio::fs::read_to_string(&path)
                .await
                .map_err(|source| DocPagesError::File {
                    url: url.clone(),
                    path: path.clone(),
                    source,
                })?;
        let found = crate::content_hash(&markdown);
        if found != content_hash {
            return Err(DocPagesError::Mismatch {
                url,
                path,
                found,
                expected: content_hash,
            });
        }
        out.push(DocPage {
            version,
            library,
            url,
            title,
            markdown,
            content_hash,
            updated_at,
            vanished_at,
        });
    }
    Ok(out)
}

/// Number of stored pages (vanished ones included).
pub async fn page_count(storage: &Storage) -> Result<u64, StorageError> {
    let n: i64 = on_pool!(storage, p => sqlx::query_scalar("SELECT COUNT(*) FROM ld_pages")
        .fetch_one(p)
        .await
        .ctx("counting documentation pages"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}
