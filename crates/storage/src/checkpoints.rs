//! Incremental checkpoints: one [`IncrementalState`] per collector + scope.
//!
//! Collectors move a checkpoint in the same transaction as the data it
//! covers (see [`crate::activity::ActivityStore::upsert`]), so a crash never
//! skips or duplicates work.

use bdc_core::IncrementalState;
use sqlx::Row;
use sqlx::types::Json;

use crate::pg_batch::{Part, PgBatch};
use crate::{QueryContext, Result, Storage, StorageError, now, on_pool};

/// A checkpoint to write alongside data.
#[derive(Debug, Clone)]
pub struct CheckpointWrite<'a> {
    pub collector: &'a str,
    pub scope: &'a str,
    pub state: &'a IncrementalState,
    pub run_id: Option<&'a str>,
}

pub struct CheckpointStore<'s> {
    pub(crate) storage: &'s Storage,
}

/// The checkpoint upsert: head and tail around the `VALUES` row, shared by
/// the standalone, in-transaction and batched paths.
const UPSERT_HEAD: &str = "INSERT INTO collector_checkpoints
        (collector, scope, checkpoint_token, human_readable_marker, extras, run_id, updated_at)
     VALUES ";
const UPSERT_TAIL: &str = "
     ON CONFLICT (collector, scope) DO UPDATE SET
        checkpoint_token = excluded.checkpoint_token,
        human_readable_marker = excluded.human_readable_marker,
        extras = excluded.extras,
        run_id = excluded.run_id,
        updated_at = excluded.updated_at
     WHERE collector_checkpoints.checkpoint_token IS DISTINCT FROM excluded.checkpoint_token
        OR collector_checkpoints.human_readable_marker IS DISTINCT FROM excluded.human_readable_marker
        OR collector_checkpoints.extras IS DISTINCT FROM excluded.extras";
pub(crate) static UPSERT_SQL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{UPSERT_HEAD}($1, $2, $3, $4, $5, $6, $7){UPSERT_TAIL}"));

/// PostgreSQL: the checkpoint upsert as a part of `batch`, so it travels in
/// the same statement as the data it covers, stamped `stamp` (the time of
/// that data's write). One checkpoint per batch: two parts may not touch
/// the same row.
pub fn push_pg(
    batch: &mut PgBatch,
    cp: &CheckpointWrite<'_>,
    stamp: chrono::DateTime<chrono::Utc>,
) -> Result<Part> {
    const W: &str = "binding a checkpoint";
    let p = [
        batch.bind(cp.collector, W)?,
        batch.bind(cp.scope, W)?,
        batch.bind(cp.state.checkpoint_token(), W)?,
        batch.bind(cp.state.human_readable_marker(), W)?,
        batch.bind(Json(cp.state.extras()), W)?,
        batch.bind(cp.run_id, W)?,
        batch.bind(stamp, W)?,
    ];
    let sql = format!("{UPSERT_HEAD}({}){UPSERT_TAIL}", p.join(", "));
    Ok(batch.push_unreported(sql, "writing a checkpoint with its data"))
}

/// Upsert `cp` (stamped `stamp`) in the caller's open transaction, as one
/// statement of its own (PostgreSQL batches use [`push_pg`] instead).
pub(crate) async fn write_in_tx(
    tx: &mut crate::Tx,
    cp: &CheckpointWrite<'_>,
    stamp: chrono::DateTime<chrono::Utc>,
    what: &'static str,
) -> Result<()> {
    crate::on_tx!(tx, t => sqlx::query(UPSERT_SQL.as_str())
        .bind(cp.collector)
        .bind(cp.scope)
        .bind(cp.state.checkpoint_token())
        .bind(cp.state.human_readable_marker())
        .bind(Json(cp.state.extras()))
        .bind(cp.run_id)
        .bind(stamp)
        .execute(&mut **t)
        .await
        .map(|_| ())
        .ctx(what))
}

impl CheckpointStore<'_> {
    pub async fn get(&self, collector: &str, scope: &str) -> Result<Option<IncrementalState>> {
        on_pool!(self.storage, p => {
            let row = sqlx::query(
                "SELECT checkpoint_token, human_readable_marker, extras FROM collector_checkpoints
                 WHERE collector = $1 AND scope = $2",
            )
            .bind(collector)
            .bind(scope)
            .fetch_optional(p)
            .await
            .ctx("reading a checkpoint")?;
            match row {
                None => Ok(None),
                Some(row) => {
                    let token: String = row.try_get("checkpoint_token").ctx("decoding a checkpoint")?;
                    let marker: String = row.try_get("human_readable_marker").ctx("decoding a checkpoint")?;
                    let extras: Json<serde_json::Map<String, serde_json::Value>> =
                        row.try_get("extras").ctx("decoding a checkpoint")?;
                    let state = IncrementalState::new(token, marker)
                        .map_err(|e| StorageError::Corrupt { context: "decoding a checkpoint", detail: e.to_string() })?
                        .with_extras(extras.0);
                    Ok(Some(state))
                }
            }
        })
    }

    /// Write a checkpoint on its own (no data with it).
    pub async fn put(&self, write: &CheckpointWrite<'_>) -> Result<()> {
        let mut tx = self.storage.begin().await?;
        write_in_tx(&mut tx, write, now(), "writing a checkpoint").await?;
        tx.commit().await
    }

    /// Forget a checkpoint (the next run starts from scratch).
    pub async fn reset(&self, collector: &str, scope: &str) -> Result<bool> {
        Ok(
            crate::in_write_tx!(self.storage, "resetting a checkpoint", p => sqlx::query(
            "DELETE FROM collector_checkpoints WHERE collector = $1 AND scope = $2",
        )
        .bind(collector)
        .bind(scope)
        .execute(p)
        .await
        .map(|r| r.rows_affected() > 0)),
        )
    }
}
