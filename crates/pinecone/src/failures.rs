//! Record ids whose upsert or delete failed after retries, kept in the
//! database (`pinecone_failed_records`, schema part [`SCHEMA`]) so the
//! next sync retries them first.

use bdc_storage::{MigrationFile, QueryContext, SchemaPart, Storage, now, on_pool};
use sqlx::Row;

use crate::PineconeError;
use crate::client::FailedRecord;

/// The `pinecone` schema part (registered in the binary's schema list).
pub const SCHEMA: SchemaPart = SchemaPart {
    name: "pinecone",
    migrations: &[MigrationFile {
        version: 1,
        description: "failed pinecone records",
        sqlite: include_str!("../migrations/sqlite/0001_pinecone_failures.sql"),
        postgres: include_str!("../migrations/postgres/0001_pinecone_failures.sql"),
    }],
};

/// Upsert or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Upsert,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Upsert => "upsert",
            Operation::Delete => "delete",
        }
    }
}

/// A kept failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRecord {
    pub record_id: String,
    pub operation: Operation,
    pub error: String,
    pub attempts: i64,
}

/// The failed ids of one index.
#[derive(Debug, Clone)]
pub struct FailureStore {
    storage: Storage,
    index_name: String,
}

impl FailureStore {
    pub fn new(storage: Storage, index_name: impl Into<String>) -> Self {
        FailureStore {
            storage,
            index_name: index_name.into(),
        }
    }

    /// Keep `failed` (one transaction; a record failing again counts one
    /// more attempt and keeps the newest error and operation).
    pub async fn keep(
        &self,
        namespace: &str,
        operation: Operation,
        failed: &[FailedRecord],
    ) -> Result<(), PineconeError> {
        if failed.is_empty() {
            return Ok(());
        }
        let at = now();
        let mut tx = self.storage.begin().await?;
        for f in failed {
            bdc_storage::on_tx!(&mut tx, t => sqlx::query(
                "INSERT INTO pinecone_failed_records
                    (index_name, namespace, record_id, operation, error, attempts, failed_at)
                 VALUES ($1, $2, $3, $4, $5, 1, $6)
                 ON CONFLICT (index_name, namespace, record_id) DO UPDATE SET
                    operation = excluded.operation, error = excluded.error,
                    attempts = pinecone_failed_records.attempts + 1,
                    failed_at = excluded.failed_at",
            )
            .bind(&self.index_name)
            .bind(namespace)
            .bind(&f.id)
            .bind(operation.as_str())
            .bind(&f.error)
            .bind(at)
            .execute(&mut **t)
            .await
            .map(|_| ()))
            .ctx("keeping failed Pinecone records")?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The kept failures of `namespace`, oldest first.
    pub async fn pending(&self, namespace: &str) -> Result<Vec<PendingRecord>, PineconeError> {
        on_pool!(self.storage, p => {
            let rows = sqlx::query(
                "SELECT record_id, operation, error, attempts FROM pinecone_failed_records
                 WHERE index_name = $1 AND namespace = $2 ORDER BY failed_at, record_id",
            )
            .bind(&self.index_name)
            .bind(namespace)
            .fetch_all(p)
            .await
            .ctx("listing failed Pinecone records")?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let op: String = row.try_get("operation").ctx("decoding a failed Pinecone record")?;
                out.push(PendingRecord {
                    record_id: row.try_get("record_id").ctx("decoding a failed Pinecone record")?,
                    operation: if op == "delete" {
                        Operation::Delete
                    } else {
                        Operation::Upsert
                    },
                    error: row.try_get("error").ctx("decoding a failed Pinecone record")?,
                    attempts: i64::from(
                        row.try_get::<i32, _>("attempts")
                            .ctx("decoding a failed Pinecone record")?,
                    ),
                });
            }
            Ok(out)
        })
    }

    /// Forget `ids` (written at last).
    pub async fn clear(&self, namespace: &str, ids: &[String]) -> Result<(), PineconeError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.storage.begin().await?;
        for id in ids {
            bdc_storage::on_tx!(&mut tx, t => sqlx::query(
                "DELETE FROM pinecone_failed_records
                 WHERE index_name = $1 AND namespace = $2 AND record_id = $3",
            )
            .bind(&self.index_name)
            .bind(namespace)
            .bind(id)
            .execute(&mut **t)
            .await
            .map(|_| ()))
            .ctx("clearing failed Pinecone records")?;
        }
        tx.commit().await?;
        Ok(())
    }
}
