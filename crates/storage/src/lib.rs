//! The storage layer of `bdc`.
//!
//! One [`Storage`] handle wraps a SQLite (embedded default) or PostgreSQL
//! pool, chosen by the `DATABASE_URL` scheme. Schema changes are versioned
//! migrations per backend (`migrations/{sqlite,postgres}`), kept in step so
//! both backends behave the same. Every write the platform makes goes
//! through one store per domain:
//!
//! | store | tables |
//! | --- | --- |
//! | [`runs::RunStore`] | `collector_runs`, `schedule_group_runs` |
//! | [`activity::ActivityStore`] | `activity_records` (+ checkpoints in the same transaction) |
//! | [`checkpoints::CheckpointStore`] | `collector_checkpoints` |
//! | [`workers::WorkerStore`] | `worker_heartbeats` |
//! | [`index_syncs::IndexSyncStore`] | `index_syncs` |
//!
//! SQL is written once with `$N` placeholders (both backends accept them)
//! and dispatched per backend by the `on_pool!` macro, so each query is
//! type-checked against the concrete driver rather than sqlx's lossy `Any`.

use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, SqlSafeStr};

pub mod activity;
pub mod checkpoints;
pub mod index_syncs;
pub mod runs;
pub mod workers;

/// Run `$body` with `$p` bound to the concrete pool of either backend.
macro_rules! on_pool {
    ($storage:expr, $p:ident => $body:expr) => {
        match &$storage.pool {
            $crate::Pool::Sqlite($p) => $body,
            $crate::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Errors of the storage layer. Each names what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("unsupported DATABASE_URL scheme in {url:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl { url: String },
    #[error("invalid DATABASE_URL {url:?}: {source}")]
    InvalidUrl {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot create the directory {path} for the SQLite database: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to the {backend} database: {source}")]
    Connect {
        backend: Backend,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the database schema is at version {applied}, newer than this binary knows (up to {known}); \
         upgrade bdc instead of running an older binary against it"
    )]
    DatabaseNewer { applied: i64, known: i64 },
    #[error(
        "the database schema is at version {applied}, this binary needs {known}: run `bdc migrate`"
    )]
    SchemaBehind { applied: i64, known: i64 },
    #[error("migration failed: {0}")]
    Migrate(#[source] MigrateError),
    #[error("database error while {context}: {source}")]
    Query {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("stored data is invalid while {context}: {detail}")]
    Corrupt {
        context: &'static str,
        detail: String,
    },
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Attach context to sqlx results.
pub(crate) trait QueryContext<T> {
    fn ctx(self, context: &'static str) -> Result<T>;
}

impl<T> QueryContext<T> for std::result::Result<T, sqlx::Error> {
    fn ctx(self, context: &'static str) -> Result<T> {
        self.map_err(|source| StorageError::Query { context, source })
    }
}

/// Which database engine a [`Storage`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        })
    }
}

impl Backend {
    /// Backend implied by a database URL's scheme.
    pub fn from_url(url: &str) -> Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StorageError::UnsupportedUrl {
                url: redact_url(url),
            })
        }
    }
}

/// Hide a password in a URL for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Connection options beyond the URL.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// A handle on the database. Cheap to clone (pools are reference counted).
#[derive(Debug, Clone)]
pub struct Storage {
    pub(crate) pool: Pool,
}

/// Outcome of [`Storage::migrate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateReport {
    pub backend: Backend,
    pub before: i64,
    pub after: i64,
    pub applied: Vec<i64>,
}

fn migrations(backend: Backend) -> Vec<Migration> {
    let files: &[(i64, &str, &'static str)] = match backend {
        Backend::Sqlite => &[(
            1,
            "foundation",
            include_str!("../migrations/sqlite/0001_foundation.sql"),
        )],
        Backend::Postgres => &[(
            1,
            "foundation",
            include_str!("../migrations/postgres/0001_foundation.sql"),
        )],
    };
    files
        .iter()
        .map(|(v, d, sql)| {
            Migration::new(
                *v,
                (*d).into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect()
}

/// Highest schema version this binary knows.
pub fn known_schema_version() -> i64 {
    migrations(Backend::Sqlite)
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

/// Truncate to microseconds: PostgreSQL's precision, so both backends store
/// and return identical instants.
pub fn normalize_time(t: DateTime<Utc>) -> DateTime<Utc> {
    let micros = t.nanosecond() / 1_000 * 1_000;
    t.with_nanosecond(micros).unwrap_or(t)
}

/// Current time at storage precision.
pub fn now() -> DateTime<Utc> {
    normalize_time(Utc::now())
}

impl Storage {
    /// Connect to `url` (`sqlite://PATH` creates the file and its directory;
    /// `postgres://…`). Does not migrate.
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Storage> {
        let backend = Backend::from_url(url)?;
        let pool = match backend {
            Backend::Sqlite => {
                let opts = SqliteConnectOptions::from_str(url)
                    .map_err(|source| StorageError::InvalidUrl {
                        url: url.to_owned(),
                        source,
                    })?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true);
                let file = opts.get_filename();
                if let Some(dir) = file.parent()
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir {
                        path: dir.display().to_string(),
                        source,
                    })?;
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(options.max_connections.max(1))
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(opts)
                    .await
                    .map_err(|source| StorageError::Connect { backend, source })?;
                Pool::Sqlite(pool)
            }
            Backend::Postgres => {
                let opts =
                    PgConnectOptions::from_str(url).map_err(|source| StorageError::InvalidUrl {
                        url: redact_url(url),
                        source,
                    })?;
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections.max(1))
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(opts)
                    .await
                    .map_err(|source| StorageError::Connect { backend, source })?;
                Pool::Postgres(pool)
            }
        };
        Ok(Storage { pool })
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Round-trip a trivial query; returns its latency.
    pub async fn ping(&self) -> Result<Duration> {
        let start = Instant::now();
        on_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()))
            .ctx("pinging the database")?;
        Ok(start.elapsed())
    }

    /// Schema version recorded in the database (0 when never migrated).
    pub async fn schema_version(&self) -> Result<i64> {
        let exists: bool = match &self.pool {
            Pool::Sqlite(p) => sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            )
            .fetch_one(p)
            .await
            .map(|n| n > 0),
            Pool::Postgres(p) => {
                sqlx::query_scalar::<_, bool>("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                    .fetch_one(p)
                    .await
            }
        }
        .ctx("reading the schema version")?;
        if !exists {
            return Ok(0);
        }
        on_pool!(self, p => sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MAX(version) FROM _sqlx_migrations WHERE success"
        )
        .fetch_one(p)
        .await)
        .ctx("reading the schema version")
        .map(|v| v.unwrap_or(0))
    }

    /// Apply pending migrations. Idempotent; refuses a database whose
    /// schema is newer than this binary.
    pub async fn migrate(&self) -> Result<MigrateReport> {
        let backend = self.backend();
        let before = self.schema_version().await?;
        let known = known_schema_version();
        if before > known {
            return Err(StorageError::DatabaseNewer {
                applied: before,
                known,
            });
        }
        let migrator = Migrator::with_migrations(migrations(backend));
        let res = on_pool!(self, p => migrator.run(p).await);
        res.map_err(|e| match e {
            MigrateError::VersionMissing(v) => StorageError::DatabaseNewer { applied: v, known },
            other => StorageError::Migrate(other),
        })?;
        let after = self.schema_version().await?;
        let applied = migrations(backend)
            .iter()
            .map(|m| m.version)
            .filter(|v| *v > before && *v <= after)
            .collect();
        tracing::info!(%backend, before, after, "database migrated");
        Ok(MigrateReport {
            backend,
            before,
            after,
            applied,
        })
    }

    /// Make sure the schema is usable by this binary: the embedded SQLite
    /// default migrates itself (zero set-up); PostgreSQL must be migrated
    /// explicitly with `bdc migrate` (so a rolling upgrade is deliberate),
    /// and a newer schema is always refused.
    pub async fn ensure_schema(&self) -> Result<()> {
        let applied = self.schema_version().await?;
        let known = known_schema_version();
        if applied > known {
            return Err(StorageError::DatabaseNewer { applied, known });
        }
        if applied < known {
            match self.backend() {
                Backend::Sqlite => {
                    self.migrate().await?;
                }
                Backend::Postgres => return Err(StorageError::SchemaBehind { applied, known }),
            }
        }
        Ok(())
    }

    /// Close the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        on_pool!(self, p => p.close().await);
    }

    pub fn runs(&self) -> runs::RunStore<'_> {
        runs::RunStore { storage: self }
    }
    pub fn activity(&self) -> activity::ActivityStore<'_> {
        activity::ActivityStore { storage: self }
    }
    pub fn checkpoints(&self) -> checkpoints::CheckpointStore<'_> {
        checkpoints::CheckpointStore { storage: self }
    }
    pub fn workers(&self) -> workers::WorkerStore<'_> {
        workers::WorkerStore { storage: self }
    }
    pub fn index_syncs(&self) -> index_syncs::IndexSyncStore<'_> {
        index_syncs::IndexSyncStore { storage: self }
    }

    /// Test/bench support: run a raw statement (e.g. to simulate a schema
    /// from the future). Not for application code.
    #[doc(hidden)]
    pub async fn execute_raw(&self, sql: String) -> Result<u64> {
        on_pool!(self, p => sqlx::raw_sql(AssertSqlSafe(sql)).execute(p).await.map(|r| r.rows_affected()))
            .ctx("executing a raw statement")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_from_url() {
        assert_eq!(
            Backend::from_url("sqlite://x.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("postgresql://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert!(Backend::from_url("mysql://x").is_err());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://a.db"), "sqlite://a.db");
    }

    #[test]
    fn normalizes_to_microseconds() {
        let t = DateTime::parse_from_rfc3339("2024-01-01T00:00:00.123456789Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(normalize_time(t).nanosecond(), 123_456_000);
    }
}
