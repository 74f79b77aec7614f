//! Schema part `search` (table `search_cursors`): where each app type's
//! sync stopped.

use bdc_storage::{MigrationFile, QueryContext, SchemaPart, Storage, StorageError, now, on_pool};

/// The search index's schema part (registered in `crates/bdc/src/schema.rs`).
pub static SCHEMA: SchemaPart = SchemaPart {
    name: "search",
    migrations: &[MigrationFile {
        version: 1,
        description: "search sync cursors",
        sqlite: include_str!("../migrations/sqlite_0001.sql"),
        postgres: include_str!("../migrations/postgres_0001.sql"),
    }],
};

/// The stored position of `app_type` (`None`: never synced).
pub async fn cursor(storage: &Storage, app_type: &str) -> Result<Option<String>, StorageError> {
    on_pool!(storage, p => sqlx::query_scalar("SELECT position FROM search_cursors WHERE app_type = $1")
        .bind(app_type)
        .fetch_optional(p)
        .await
        .ctx("reading a search cursor"))
}

/// Move `app_type`'s cursor (after the index commit).
pub async fn set_cursor(
    storage: &Storage,
    app_type: &str,
    position: &str,
    documents: u64,
) -> Result<(), StorageError> {
    bdc_storage::in_write_tx!(storage, "moving a search cursor", p => sqlx::query(
        "INSERT INTO search_cursors (app_type, position, documents, synced_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (app_type) DO UPDATE SET position = excluded.position,
            documents = search_cursors.documents + excluded.documents, synced_at = excluded.synced_at",
    )
    .bind(app_type)
    .bind(position)
    .bind(i64::try_from(documents).unwrap_or(i64::MAX))
    .bind(now())
    .execute(p)
    .await
    .map(|_| ()));
    Ok(())
}

/// Forget every cursor (a rebuild starts from the beginning).
pub async fn reset(storage: &Storage) -> Result<(), StorageError> {
    bdc_storage::in_write_tx!(storage, "resetting search cursors", p => sqlx::query("DELETE FROM search_cursors")
        .execute(p)
        .await
        .map(|_| ()));
    Ok(())
}
