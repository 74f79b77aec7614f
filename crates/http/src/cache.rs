//! The conditional-request cache: validators, `Link` header and body of the
//! last successful response per URL, in the `http_cache` table (schema part
//! [`SCHEMA`]). Bodies are stored gzip-compressed.

use bdc_storage::{MigrationFile, QueryContext, SchemaPart, Storage, normalize_time, on_pool};
use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::archive::{gunzip, gzip};
use crate::error::HttpError;

/// The `http_cache` schema part (register it in the binary's schema list).
pub const SCHEMA: SchemaPart = SchemaPart {
    name: "http_cache",
    migrations: &[MigrationFile {
        version: 1,
        description: "http cache",
        sqlite: include_str!("../migrations/sqlite/0001_http_cache.sql"),
        postgres: include_str!("../migrations/postgres/0001_http_cache.sql"),
    }],
};

/// One cached response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedResponse {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub link: Option<String>,
    pub status: u16,
    pub body: Vec<u8>,
    pub fetched_at: DateTime<Utc>,
}

/// Store of [`CachedResponse`]s keyed by absolute URL.
#[derive(Debug, Clone)]
pub struct HttpCache {
    storage: Storage,
}

const UPSERT: &str =
    "INSERT INTO http_cache (url, etag, last_modified, link, status, body_gz, fetched_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (url) DO UPDATE SET
        etag = excluded.etag,
        last_modified = excluded.last_modified,
        link = excluded.link,
        status = excluded.status,
        body_gz = excluded.body_gz,
        fetched_at = excluded.fetched_at";

impl HttpCache {
    pub fn new(storage: Storage) -> Self {
        HttpCache { storage }
    }

    /// The cached response for `url`, if any.
    pub async fn get(&self, url: &str) -> Result<Option<CachedResponse>, HttpError> {
        let row = on_pool!(self.storage, p => {
            let row = sqlx::query(
                "SELECT etag, last_modified, link, status, body_gz, fetched_at FROM http_cache WHERE url = $1",
            )
            .bind(url)
            .fetch_optional(p)
            .await
            .ctx("reading the HTTP cache")
            .map_err(HttpError::Cache)?;
            match row {
                None => None,
                Some(row) => {
                    let get = |e: sqlx::Error| HttpError::Cache(bdc_storage::StorageError::Query {
                        context: "decoding an HTTP cache row",
                        source: e,
                    });
                    let status: i32 = row.try_get("status").map_err(get)?;
                    let body_gz: Vec<u8> = row.try_get("body_gz").map_err(get)?;
                    Some((
                        row.try_get::<Option<String>, _>("etag").map_err(get)?,
                        row.try_get::<Option<String>, _>("last_modified").map_err(get)?,
                        row.try_get::<Option<String>, _>("link").map_err(get)?,
                        status,
                        body_gz,
                        row.try_get::<DateTime<Utc>, _>("fetched_at").map_err(get)?,
                    ))
                }
            }
        });
        let Some((etag, last_modified, link, status, body_gz, fetched_at)) = row else {
            return Ok(None);
        };
        let body = match gunzip(&body_gz) {
            Ok(b) => b,
            Err(e) => {
                // A damaged entry is only a lost optimisation: refetch.
                tracing::warn!(url, error = %e, "damaged HTTP cache entry ignored");
                return Ok(None);
            }
        };
        Ok(Some(CachedResponse {
            etag,
            last_modified,
            link,
            status: u16::try_from(status).unwrap_or(200),
            body,
            fetched_at,
        }))
    }

    /// Remember `response` for `url` (replacing any previous entry).
    pub async fn put(&self, url: &str, response: &CachedResponse) -> Result<(), HttpError> {
        let body_gz = gzip(&response.body).map_err(|source| HttpError::Archive {
            path: "http_cache".into(),
            action: "compressing a body",
            source,
        })?;
        let mut tx = self.storage.begin().await.map_err(HttpError::Cache)?;
        bdc_storage::on_tx!(&mut tx, t => sqlx::query(UPSERT)
            .bind(url)
            .bind(response.etag.as_deref())
            .bind(response.last_modified.as_deref())
            .bind(response.link.as_deref())
            .bind(i32::from(response.status))
            .bind(&body_gz)
            .bind(normalize_time(response.fetched_at))
            .execute(&mut **t)
            .await
            .map(|_| ()))
        .ctx("writing the HTTP cache")
        .map_err(HttpError::Cache)?;
        tx.commit().await.map_err(HttpError::Cache)
    }

    /// Number of cached URLs.
    pub async fn len(&self) -> Result<u64, HttpError> {
        let n: i64 =
            on_pool!(self.storage, p => sqlx::query_scalar("SELECT COUNT(*) FROM http_cache")
            .fetch_one(p)
            .await)
            .ctx("counting the HTTP cache")
            .map_err(HttpError::Cache)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Whether the cache is empty.
    pub async fn is_empty(&self) -> Result<bool, HttpError> {
        Ok(self.len().await? == 0)
    }
}
