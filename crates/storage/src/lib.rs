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
use sqlx::AssertSqlSafe;
use sqlx::migrate::MigrateError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub mod activity;
pub mod checkpoints;
pub mod index_syncs;
mod nodelay;
pub mod pg_batch;
pub mod runs;
pub mod workers;

pub mod schema;
pub mod tx;

pub use schema::{MigrationFile, SchemaPart};
pub use tx::Tx;

/// Run `$body` with `$p` bound to the concrete pool (`&SqlitePool` or
/// `&PgPool`) of a [`Storage`]. The body is compiled once per backend, so
/// queries are checked against each concrete driver. Use for reads; writes
/// go through [`Storage::begin`] and [`on_tx!`] so they carry the actor.
#[macro_export]
macro_rules! on_pool {
    ($storage:expr, $p:ident => $body:expr) => {
        match $storage.pool() {
            $crate::Pool::Sqlite($p) => $body,
            $crate::Pool::Postgres($p) => $body,
        }
    };
}

/// Run one write in its own actor-carrying transaction: begin, run
/// `$body` with `$p` bound to the concrete connection, commit. Evaluates to
/// the body's value; errors return early with `$ctx`.
#[doc(hidden)]
#[macro_export]
macro_rules! in_write_tx {
    ($storage:expr, $ctx:literal, $p:ident => $body:expr) => {{
        let mut tx = $storage.begin().await?;
        let out = $crate::on_tx!(&mut tx, $p => {
            let $p = &mut **$p;
            $body
        });
        let out = $crate::QueryContext::ctx(out, $ctx)?;
        tx.commit().await?;
        out
    }};
}

/// Run `$body` with `$t` bound to the concrete transaction
/// (`&mut sqlx::Transaction<'static, _>`) of a [`Tx`]; use `&mut **$t` as
/// the executor.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $t:ident => $body:expr) => {
        match $tx {
            $crate::Tx::Sqlite($t) => $body,
            $crate::Tx::Postgres($t) => $body,
        }
    };
}

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
        "the database schema ({part}) is at version {applied}, newer than this binary knows (up to {known}); \
         upgrade bdc instead of running an older binary against it"
    )]
    DatabaseNewer {
        part: &'static str,
        applied: i64,
        known: i64,
    },
    #[error(
        "the database schema ({part}) is at version {applied}, this binary needs {known}: run `bdc migrate`"
    )]
    SchemaBehind {
        part: &'static str,
        applied: i64,
        known: i64,
    },
    #[error("migration failed: {0}")]
    Migrate(#[source] MigrateError),
    #[error("database error while {context}: {source}")]
    Query {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("database error while {parts} (one statement): {source}")]
    Batch {
        /// What the statement's parts do, joined (`upserting github users, …`).
        parts: String,
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
pub trait QueryContext<T> {
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

/// The concrete pool of a [`Storage`] (see [`on_pool!`]).
#[derive(Debug, Clone)]
pub enum Pool {
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
///
/// A handle may carry an [`Actor`](bdc_core::Actor) ([`Storage::with_actor`]):
/// every transaction it begins records that actor for the audit trail.
#[derive(Debug, Clone)]
pub struct Storage {
    pub(crate) pool: Pool,
    pub(crate) actor: Option<std::sync::Arc<str>>,
}

/// Outcome of migrating one schema part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateReport {
    pub part: &'static str,
    pub backend: Backend,
    pub before: i64,
    pub after: i64,
    pub applied: Vec<i64>,
}

/// Highest schema version this binary knows.
pub fn known_schema_version() -> i64 {
    schema::FOUNDATION.latest()
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
                    .synchronous(SqliteSynchronous::Normal)
                    .pragma("cache_size", "-65536")
                    // Statement journals in memory: a multi-row upsert inside
                    // a transaction keeps one (it may have to undo itself
                    // halfway), and past 64 KiB SQLite spills it to a
                    // temporary file; in memory a 50-commit sync runs
                    // ~25 % faster (CHANGELOG). Sorts, DISTINCT/UNION sets,
                    // materialized subqueries and temporary tables live
                    // there too, without spilling (ARCHITECTURE.md).
                    .pragma("temp_store", "memory")
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
                // Over TCP (not a Unix socket), see `nodelay`.
                let tcp_port = (opts.get_socket().is_none() && !opts.get_host().starts_with('/'))
                    .then(|| opts.get_port());
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections.max(1))
                    .acquire_timeout(options.acquire_timeout)
                    .after_connect(move |_conn, _meta| {
                        Box::pin(async move {
                            if let Some(port) = tcp_port {
                                let set = nodelay::set_for_peer_port(port);
                                tracing::debug!(
                                    port,
                                    sockets = set,
                                    "TCP_NODELAY set on database sockets"
                                );
                            }
                            Ok(())
                        })
                    })
                    .connect_with(opts)
                    .await
                    .map_err(|source| StorageError::Connect { backend, source })?;
                Pool::Postgres(pool)
            }
        };
        Ok(Storage { pool, actor: None })
    }

    /// The concrete pool (for [`on_pool!`]).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A handle whose transactions record `actor` (the audit actor bridge).
    pub fn with_actor(&self, actor: &bdc_core::Actor) -> Storage {
        Storage {
            pool: self.pool.clone(),
            actor: Some(actor.to_json().into()),
        }
    }

    /// The actor JSON this handle writes with, if any.
    pub fn actor_json(&self) -> Option<&str> {
        self.actor.as_deref()
    }

    /// When the oldest transaction still open on this database (other than
    /// the asking connection's) began; None when there is none, and always
    /// on SQLite (one writer at a time). A change feed read by `updated_at`
    /// must not move its cursor past this time: such a transaction may
    /// still commit rows stamped before the rows already read.
    pub async fn oldest_open_transaction(&self) -> Result<Option<DateTime<Utc>>> {
        match &self.pool {
            Pool::Sqlite(_) => Ok(None),
            Pool::Postgres(p) => sqlx::query_scalar(
                "SELECT min(xact_start) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()
                   AND backend_type = 'client backend' AND xact_start IS NOT NULL",
            )
            .fetch_one(p)
            .await
            .ctx("reading the oldest open transaction"),
        }
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

    /// Schema version of the foundation part (0 when never migrated).
    pub async fn schema_version(&self) -> Result<i64> {
        self.part_version(&schema::FOUNDATION).await
    }

    /// Apply pending foundation migrations (see [`Storage::migrate_parts`]).
    pub async fn migrate(&self) -> Result<MigrateReport> {
        let mut reports = self.migrate_parts(&[]).await?;
        reports.truncate(1);
        reports.pop().ok_or_else(|| StorageError::Corrupt {
            context: "migrating",
            detail: "no foundation report".into(),
        })
    }

    /// Make sure the foundation schema is usable (see [`Storage::ensure_parts`]).
    pub async fn ensure_schema(&self) -> Result<()> {
        self.ensure_parts(&[]).await
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
