//! Versioned schema parts.
//!
//! The platform's schema is split into parts that evolve independently: the
//! foundation (this crate's tables) and one part per domain crate (audit,
//! greenness, each collector's typed tables). Each part has its own version
//! sequence and its own bookkeeping table (`_sqlx_migrations` for the
//! foundation, `_bdc_migrations_<part>` for the others), so two crates can add
//! migrations without coordinating version numbers. Every migration has a
//! SQLite and a PostgreSQL text with the same version.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};

use crate::{Backend, MigrateReport, Pool, QueryContext, Result, Storage, StorageError};

/// One migration, in both dialects.
#[derive(Debug, Clone, Copy)]
pub struct MigrationFile {
    pub version: i64,
    pub description: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// A named, independently versioned part of the schema.
#[derive(Debug, Clone, Copy)]
pub struct SchemaPart {
    /// `[a-z0-9_]+`; names the bookkeeping table.
    pub name: &'static str,
    pub migrations: &'static [MigrationFile],
}

impl SchemaPart {
    /// Highest version this binary knows.
    pub fn latest(&self) -> i64 {
        self.migrations.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// Name of the part's bookkeeping table.
    pub fn table(&self) -> Cow<'static, str> {
        if self.name == FOUNDATION.name {
            Cow::Borrowed("_sqlx_migrations")
        } else {
            Cow::Owned(format!("_bdc_migrations_{}", self.name))
        }
    }

    fn migrator(&self, backend: Backend) -> Migrator {
        let migrations = self
            .migrations
            .iter()
            .map(|m| {
                let sql = match backend {
                    Backend::Sqlite => m.sqlite,
                    Backend::Postgres => m.postgres,
                };
                Migration::new(
                    m.version,
                    m.description.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        let mut migrator = Migrator::with_migrations(migrations);
        migrator.dangerous_set_table_name(self.table());
        migrator
    }
}

/// The foundation: runs, checkpoints, activity records, workers, index syncs.
pub const FOUNDATION: SchemaPart = SchemaPart {
    name: "foundation",
    migrations: &[
        MigrationFile {
            version: 1,
            description: "foundation",
            sqlite: include_str!("../migrations/sqlite/0001_foundation.sql"),
            postgres: include_str!("../migrations/postgres/0001_foundation.sql"),
        },
        MigrationFile {
            version: 2,
            description: "tx context",
            sqlite: include_str!("../migrations/sqlite/0002_tx_context.sql"),
            postgres: include_str!("../migrations/postgres/0002_tx_context.sql"),
        },
        MigrationFile {
            version: 3,
            description: "run slot task",
            sqlite: include_str!("../migrations/sqlite/0003_run_slot.sql"),
            postgres: include_str!("../migrations/postgres/0003_run_slot.sql"),
        },
        MigrationFile {
            version: 4,
            description: "activity change feed index",
            sqlite: include_str!("../migrations/sqlite/0004_activity_feed.sql"),
            postgres: include_str!("../migrations/postgres/0004_activity_feed.sql"),
        },
    ],
};

fn valid_part_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Storage {
    /// Version of `part` recorded in the database (0 when never migrated).
    pub async fn part_version(&self, part: &SchemaPart) -> Result<i64> {
        if !valid_part_name(part.name) {
            return Err(StorageError::Corrupt {
                context: "reading a schema version",
                detail: format!("invalid schema part name {:?}", part.name),
            });
        }
        let table = part.table();
        let exists: bool = match &self.pool {
            Pool::Sqlite(p) => sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
            )
            .bind(table.as_ref())
            .fetch_one(p)
            .await
            .map(|n| n > 0),
            Pool::Postgres(p) => {
                sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
                    .bind(table.as_ref())
                    .fetch_one(p)
                    .await
            }
        }
        .ctx("reading the schema version")?;
        if !exists {
            return Ok(0);
        }
        // The table name is validated above (`[a-z0-9_]`), never user input.
        let sql = format!("SELECT MAX(version) FROM {table} WHERE success");
        crate::on_pool!(self, p => sqlx::query_scalar::<_, Option<i64>>(sqlx::AssertSqlSafe(sql))
            .fetch_one(p)
            .await)
        .ctx("reading the schema version")
        .map(|v| v.unwrap_or(0))
    }

    /// Apply pending migrations of the foundation and then of `parts`, in
    /// order. Idempotent; refuses a part whose schema is newer than this
    /// binary (nothing of that part is changed).
    pub async fn migrate_parts(&self, parts: &[&SchemaPart]) -> Result<Vec<MigrateReport>> {
        let backend = self.backend();
        let mut reports = Vec::new();
        for part in std::iter::once(&FOUNDATION).chain(parts.iter().copied()) {
            let before = self.part_version(part).await?;
            let known = part.latest();
            if before > known {
                return Err(StorageError::DatabaseNewer {
                    part: part.name,
                    applied: before,
                    known,
                });
            }
            let migrator = part.migrator(backend);
            let res = crate::on_pool!(self, p => migrator.run(p).await);
            res.map_err(|e| match e {
                MigrateError::VersionMissing(v) => StorageError::DatabaseNewer {
                    part: part.name,
                    applied: v,
                    known,
                },
                other => StorageError::Migrate(other),
            })?;
            let after = self.part_version(part).await?;
            let applied = part
                .migrations
                .iter()
                .map(|m| m.version)
                .filter(|v| *v > before && *v <= after)
                .collect();
            tracing::info!(%backend, part = part.name, before, after, "database migrated");
            reports.push(MigrateReport {
                part: part.name,
                backend,
                before,
                after,
                applied,
            });
        }
        Ok(reports)
    }

    /// Make sure the foundation and `parts` are usable by this binary: the
    /// embedded SQLite default migrates itself (zero set-up); PostgreSQL
    /// must be migrated explicitly with `bdc migrate` (so a rolling upgrade
    /// is deliberate); a newer schema is always refused.
    pub async fn ensure_parts(&self, parts: &[&SchemaPart]) -> Result<()> {
        let mut behind = None;
        for part in std::iter::once(&FOUNDATION).chain(parts.iter().copied()) {
            let applied = self.part_version(part).await?;
            let known = part.latest();
            if applied > known {
                return Err(StorageError::DatabaseNewer {
                    part: part.name,
                    applied,
                    known,
                });
            }
            if applied < known && behind.is_none() {
                behind = Some((part.name, applied, known));
            }
        }
        if let Some((part, applied, known)) = behind {
            match self.backend() {
                Backend::Sqlite => {
                    self.migrate_parts(parts).await?;
                }
                Backend::Postgres => {
                    return Err(StorageError::SchemaBehind {
                        part,
                        applied,
                        known,
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_tables() {
        assert_eq!(FOUNDATION.latest(), 4);
        assert_eq!(FOUNDATION.table(), "_sqlx_migrations");
        let p = SchemaPart {
            name: "audit",
            migrations: &[],
        };
        assert_eq!(p.table(), "_bdc_migrations_audit");
        assert_eq!(p.latest(), 0);
        assert!(valid_part_name("git_history"));
        assert!(!valid_part_name("a-b"));
        assert!(!valid_part_name(""));
    }
}
