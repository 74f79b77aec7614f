//! Search/vector index syncs: when each index was last fully synced
//! (`/health/`'s `pinecone_sync` check).

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{QueryContext, Result, Storage, now, on_pool};

#[derive(Debug, Clone, serde::Serialize)]
pub struct IndexSync {
    pub index_name: String,
    pub collector: String,
    pub items: i64,
    pub final_sync_at: DateTime<Utc>,
}

pub struct IndexSyncStore<'s> {
    pub(crate) storage: &'s Storage,
}

impl IndexSyncStore<'_> {
    /// Record a completed sync of `index_name` with `items` items.
    pub async fn record(&self, index_name: &str, collector: &str, items: i64) -> Result<()> {
        crate::in_write_tx!(self.storage, "recording an index sync", p => sqlx::query(
            "INSERT INTO index_syncs (index_name, collector, items, final_sync_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (index_name) DO UPDATE SET collector = excluded.collector,
                items = excluded.items, final_sync_at = excluded.final_sync_at",
        )
        .bind(index_name)
        .bind(collector)
        .bind(items)
        .bind(now())
        .execute(p)
        .await
        .map(|_| ()));
        Ok(())
    }

    pub async fn list(&self) -> Result<Vec<IndexSync>> {
        on_pool!(self.storage, p => {
            let rows = sqlx::query(
                "SELECT index_name, collector, items, final_sync_at FROM index_syncs ORDER BY index_name",
            )
            .fetch_all(p)
            .await
            .ctx("listing index syncs")?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(IndexSync {
                    index_name: row.try_get("index_name").ctx("decoding an index sync")?,
                    collector: row.try_get("collector").ctx("decoding an index sync")?,
                    items: row.try_get("items").ctx("decoding an index sync")?,
                    final_sync_at: row.try_get("final_sync_at").ctx("decoding an index sync")?,
                });
            }
            Ok(out)
        })
    }
}
