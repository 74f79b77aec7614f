//! The audit trail of `bdc`: who or what changed a row, when, why, and what
//! it looked like before.
//!
//! * **Schema** ([`AUDIT`], a [`SchemaPart`] of its own): `audit_transactions`
//!   (one per database transaction that changed a covered table: actor,
//!   time, optional semantic action), `audit_changes` (table, primary key,
//!   op, new values, changed fields, previous values), `audit_actions`,
//!   `audit_covered_tables`.
//! * **Capture** by database triggers ([`triggers`]): PostgreSQL plpgsql,
//!   SQLite generated per table. Captures land in `audit_pending`
//!   (PostgreSQL: one row per bulk INSERT/DELETE statement; SQLite: one
//!   unindexed row per change) and are expanded into `audit_changes` by
//!   [`flush`] ([`pending`]), which every read here calls first. Changes of one database transaction group
//!   under one audit transaction; an UPDATE that changes nothing records
//!   nothing; redaction (exclude / mask) is decided in the trigger.
//! * **Actor**: the storage layer's actor bridge ([`bdc_storage::Storage::with_actor`]).
//! * **Semantic actions** ([`record_action`]), **timeline and export**
//!   ([`query`]), **retention** ([`retention`]), **coverage**
//!   ([`triggers::verify`]), **HTTP API** ([`http`]).
//! * **Time travel** ([`asof`]: a row or a table as of a time, row
//!   history), **revert** ([`revert`]) and **tamper evidence** ([`chain`]:
//!   a hash chain computed at flush time, signed checkpoints, offline
//!   verification of exports).
//!
//! See `docs/audit.md` for the operator's guide.

use bdc_storage::{Backend, SchemaPart, Storage, StorageError, Tx, on_tx};

pub mod asof;
pub mod chain;
pub mod config;
pub mod http;
pub mod pending;
pub mod query;
pub mod retention;
pub mod revert;
pub mod telemetry;
pub mod triggers;

pub use config::{AuditConfig, ConfigError};
pub use pending::flush;
pub use query::{ChangeRow, TimelineFilter};
pub use triggers::{Coverage, Covered};

/// The audit schema part (bookkeeping table `_bdc_migrations_audit`).
pub static AUDIT: SchemaPart = SchemaPart {
    name: "audit",
    migrations: &[
        bdc_storage::MigrationFile {
            version: 1,
            description: "audit trail",
            sqlite: include_str!("../migrations/sqlite/0001_audit.sql"),
            postgres: include_str!("../migrations/postgres/0001_audit.sql"),
        },
        bdc_storage::MigrationFile {
            version: 2,
            description: "statement-level capture of inserts and deletes",
            sqlite: include_str!("../migrations/sqlite/0002_statement_capture.sql"),
            postgres: include_str!("../migrations/postgres/0002_statement_capture.sql"),
        },
        bdc_storage::MigrationFile {
            version: 3,
            description: "pending statement captures, expanded by bdc_audit_flush()",
            sqlite: include_str!("../migrations/sqlite/0003_pending_capture.sql"),
            postgres: include_str!("../migrations/postgres/0003_pending_capture.sql"),
        },
        bdc_storage::MigrationFile {
            version: 4,
            description: "pending row captures on SQLite; chunked statement captures on PostgreSQL",
            sqlite: include_str!("../migrations/sqlite/0004_pending_capture.sql"),
            postgres: include_str!("../migrations/postgres/0004_pending_capture.sql"),
        },
        bdc_storage::MigrationFile {
            version: 5,
            description: "lz4 compression of pending statement captures (PostgreSQL)",
            sqlite: include_str!("../migrations/sqlite/0005_pending_lz4.sql"),
            postgres: include_str!("../migrations/postgres/0005_pending_lz4.sql"),
        },
        bdc_storage::MigrationFile {
            version: 6,
            description: "hash chain, purge records, horizons, row index (as-of)",
            sqlite: include_str!("../migrations/sqlite/0006_chain_asof.sql"),
            postgres: include_str!("../migrations/postgres/0006_chain_asof.sql"),
        },
        bdc_storage::MigrationFile {
            version: 7,
            description: "TRUNCATE capture and schema-change event triggers (PostgreSQL)",
            sqlite: include_str!("../migrations/sqlite/0007_truncate_schema.sql"),
            postgres: include_str!("../migrations/postgres/0007_truncate_schema.sql"),
        },
        bdc_storage::MigrationFile {
            version: 8,
            description: "audit transactions and UPDATE captures created at flush (PostgreSQL)",
            sqlite: include_str!("../migrations/sqlite/0008_deferred_transactions.sql"),
            postgres: include_str!("../migrations/postgres/0008_deferred_transactions.sql"),
        },
    ],
};

/// Errors of the audit trail. Each names the table, column or value.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("database error while {context}: {source}")]
    Query {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot cover table {table:?}: it does not exist")]
    NoSuchTable { table: String },
    #[error(
        "cannot cover table {table:?}: it has no primary key (the audit trail identifies rows by it)"
    )]
    NoPrimaryKey { table: String },
    #[error("audit configuration of table {table:?}: {what} column {column:?} does not exist")]
    UnknownColumn {
        table: String,
        column: String,
        what: &'static str,
    },
    #[error(
        "audit configuration of table {table:?}: primary-key column {column:?} cannot be excluded or masked"
    )]
    PrimaryKeyRedacted { table: String, column: String },
    #[error(
        "cannot cover table {table:?} on SQLite: {count} audited columns, at most {max} (exclude some)"
    )]
    TooManyColumns {
        table: String,
        count: usize,
        max: usize,
    },
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidFilter {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("stored audit data is invalid ({context}): {detail}")]
    Corrupt {
        context: &'static str,
        detail: String,
    },
    #[error("writing the export: {0}")]
    Write(String),
}

pub type Result<T, E = AuditError> = std::result::Result<T, E>;

pub(crate) trait Ctx<T> {
    fn ctx(self, context: &'static str) -> Result<T>;
}

impl<T> Ctx<T> for std::result::Result<T, sqlx::Error> {
    fn ctx(self, context: &'static str) -> Result<T> {
        self.map_err(|source| AuditError::Query { context, source })
    }
}

/// Create (or upgrade) the audit schema. Idempotent.
pub async fn install(storage: &Storage) -> Result<()> {
    storage.migrate_parts(&[&AUDIT]).await?;
    Ok(())
}

/// Status of a semantic action.
pub const STATUS_OK: &str = "ok";

/// Record a semantic action (`identity.merge`, `retention.purge`, ...) in
/// `tx`, linked to the audit transaction of that database transaction (the
/// changes it explains); creates the audit transaction when the action
/// comes first. The transaction's `action` is set to `name`. Returns the
/// action's id.
pub async fn record_action(
    tx: &mut Tx,
    name: &str,
    actor: Option<&bdc_core::Actor>,
    status: &str,
    reason: Option<&str>,
) -> Result<i64> {
    if name.trim().is_empty() {
        return Err(AuditError::InvalidFilter {
            field: "action name",
            value: name.to_owned(),
            reason: "must not be empty".into(),
        });
    }
    let actor_json = actor.map(|a| a.to_json());
    let atx: i64 = match tx {
        Tx::Postgres(t) => sqlx::query_scalar(
            "SELECT bdc_audit_tx_id(coalesce(nullif(current_setting('bdc.actor', true), '')::jsonb, $1::jsonb))",
        )
        .bind(actor_json.as_deref())
        .fetch_one(&mut **t)
        .await
        .ctx("opening the audit transaction")?,
        Tx::Sqlite(t) => {
            sqlx::query(
                "UPDATE bdc_tx_context SET actor = coalesce(actor, $1) WHERE id = 1 AND audit_tx IS NULL",
            )
            .bind(actor_json.as_deref())
            .execute(&mut **t)
            .await
            .ctx("opening the audit transaction")?;
            sqlx::raw_sql(triggers::SQLITE_OPEN_AUDIT_TX)
                .execute(&mut **t)
                .await
                .ctx("opening the audit transaction")?;
            sqlx::query_scalar::<_, Option<i64>>(
                "SELECT audit_tx FROM bdc_tx_context WHERE id = 1",
            )
            .fetch_one(&mut **t)
            .await
            .ctx("opening the audit transaction")?
            .ok_or(AuditError::Corrupt {
                context: "recording an action",
                detail: "bdc_tx_context.audit_tx is NULL after opening the audit transaction"
                    .into(),
            })?
        }
    };
    let backend = tx.backend();
    let (insert, update) = match backend {
        Backend::Postgres => (
            "INSERT INTO audit_actions (transaction_id, name, actor, status, reason) VALUES ($1, $2, $3::jsonb, $4, $5) RETURNING id",
            "UPDATE audit_transactions SET action = $2, actor = coalesce(actor, $3::jsonb),
               actor_type = coalesce(actor_type, $3::jsonb ->> 'type') WHERE id = $1",
        ),
        Backend::Sqlite => (
            "INSERT INTO audit_actions (transaction_id, name, actor, status, reason) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            "UPDATE audit_transactions SET action = $2, actor = coalesce(actor, $3),
               actor_type = coalesce(actor_type, json_extract($3, '$.type')) WHERE id = $1",
        ),
    };
    let id: i64 = on_tx!(tx, t => sqlx::query_scalar::<_, i64>(insert)
        .bind(atx)
        .bind(name)
        .bind(actor_json.as_deref())
        .bind(status)
        .bind(reason)
        .fetch_one(&mut **t)
        .await)
    .ctx("recording an action")?;
    on_tx!(tx, t => sqlx::query(update)
        .bind(atx)
        .bind(name)
        .bind(actor_json.as_deref())
        .execute(&mut **t)
        .await
        .map(|_| ()))
    .ctx("linking an action to its transaction")?;
    tracing::info!(
        action = name,
        status,
        audit_transaction = atx,
        "audit action recorded"
    );
    Ok(id)
}

/// Install the schema and cover every table of `cfg` (the platform's when
/// `cover_platform_tables`, and the configured ones); tables that do not
/// exist yet (e.g. a feature not migrated) are skipped with a log line.
pub async fn cover_configured(storage: &Storage, cfg: &AuditConfig) -> Result<Vec<Covered>> {
    install(storage).await?;
    let mut out = Vec::new();
    for table in cfg.covered_tables() {
        match triggers::cover_tables(storage, cfg, std::slice::from_ref(&table), false).await {
            Ok(mut c) => out.append(&mut c),
            Err(AuditError::NoSuchTable { table }) => {
                tracing::info!(table = %table, "audit: configured table does not exist (yet); not covered");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
