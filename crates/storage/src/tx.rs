//! Write transactions that carry the actor (the audit trail's actor bridge).
//!
//! * PostgreSQL: `set_config('bdc.actor', $json, true)` sent with `BEGIN`
//!   in one round trip: transaction-local, reset by PostgreSQL at commit/rollback,
//!   so it never leaks to another client behind PgBouncer in transaction
//!   pooling mode.
//! * SQLite: one writer at a time; the actor is written into the single row
//!   of `bdc_tx_context` as the first statement (taking the write lock) and
//!   cleared just before commit. A rollback undoes the write as well. The
//!   audit trail keeps its open transaction (`audit_tx`) and, since audit
//!   migration 8, its id counter (`audit_next`) in the same row.

use sqlx::AssertSqlSafe;

use crate::{Pool, QueryContext, Result, Storage};

/// An open write transaction on either backend (see [`crate::on_tx!`]).
#[derive(Debug)]
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Storage {
    /// Begin a write transaction carrying this handle's actor.
    pub async fn begin(&self) -> Result<Tx> {
        match &self.pool {
            Pool::Sqlite(p) => {
                let mut tx = p.begin().await.ctx("beginning a transaction")?;
                sqlx::query("UPDATE bdc_tx_context SET actor = $1, audit_tx = NULL WHERE id = 1")
                    .bind(self.actor.as_deref())
                    .execute(&mut *tx)
                    .await
                    .ctx("setting the transaction actor")?;
                Ok(Tx::Sqlite(tx))
            }
            Pool::Postgres(p) => {
                let tx = match self.actor.as_deref() {
                    // BEGIN and the actor in one simple-query round trip
                    // (a write of 50 rows costs a handful of round trips;
                    // this saves one of them). The actor travels hex-encoded:
                    // no quoting of its JSON, whatever the server's
                    // standard_conforming_strings. Nothing in the SELECT
                    // can fail on its own (the hex is ours, set_config of a
                    // custom setting takes any text); only a cancel, a
                    // statement timeout or running out of memory could
                    // leave the connection in an aborted block, the same
                    // window sqlx's own BEGIN has when cancelled.
                    Some(actor) => p
                        .begin_with(AssertSqlSafe(format!(
                            "BEGIN; SELECT set_config('bdc.actor', \
                             convert_from(decode('{}', 'hex'), 'UTF8'), true)",
                            hex::encode(actor)
                        )))
                        .await
                        .ctx("beginning a transaction with its actor")?,
                    None => p.begin().await.ctx("beginning a transaction")?,
                };
                Ok(Tx::Postgres(tx))
            }
        }
    }
}

impl Tx {
    /// Commit (clearing the SQLite context row first).
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(mut tx) => {
                sqlx::query("UPDATE bdc_tx_context SET actor = NULL, audit_tx = NULL WHERE id = 1")
                    .execute(&mut *tx)
                    .await
                    .ctx("clearing the transaction actor")?;
                tx.commit().await.ctx("committing")
            }
            Tx::Postgres(tx) => tx.commit().await.ctx("committing"),
        }
    }

    /// Roll back explicitly (dropping a `Tx` also rolls back).
    pub async fn rollback(self) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => tx.rollback().await.ctx("rolling back"),
            Tx::Postgres(tx) => tx.rollback().await.ctx("rolling back"),
        }
    }

    pub fn backend(&self) -> crate::Backend {
        match self {
            Tx::Sqlite(_) => crate::Backend::Sqlite,
            Tx::Postgres(_) => crate::Backend::Postgres,
        }
    }
}
