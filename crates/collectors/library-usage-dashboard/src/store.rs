//! The library-usage-dashboard store: schema part `library_usage_dashboard`
//! (table `lud_snapshots`: the computed dashboard data as JSON, one row per
//! day it was generated). `bdc serve`'s `/dashboard/usage` pages read the
//! newest. A re-run that computes the same data writes nothing.

use bdc_storage::{MigrationFile, QueryContext, SchemaPart, Storage, StorageError, on_pool};
use sha2::Digest;

/// The collector's schema part (registered in `crates/bdc/src/schema.rs`).
pub static SCHEMA: SchemaPart = SchemaPart {
    name: "library_usage_dashboard",
    migrations: &[MigrationFile {
        version: 1,
        description: "computed library usage dashboard data",
        sqlite: include_str!("../migrations/sqlite_0001.sql"),
        postgres: include_str!("../migrations/postgres_0001.sql"),
    }],
};

/// Store the data of `generated_on` (a `YYYY-MM-DD` day); returns whether
/// a row was written (false: the same data was already stored).
pub async fn store_snapshot(
    storage: &Storage,
    generated_on: &str,
    json: &str,
) -> Result<bool, StorageError> {
    let hash = hex::encode(sha2::Sha256::digest(json.as_bytes()));
    let stored: Option<String> = on_pool!(storage, p => sqlx::query_scalar(
        "SELECT data_hash FROM lud_snapshots WHERE generated_on = $1",
    )
    .bind(generated_on)
    .fetch_optional(p)
    .await
    .ctx("reading a dashboard snapshot hash"))?;
    if stored.as_deref() == Some(hash.as_str()) {
        return Ok(false);
    }
    let mut tx = storage.begin().await?;
    bdc_storage::on_tx!(&mut tx, t => {
        sqlx::query(
            "INSERT INTO lud_snapshots (generated_on, data_hash, data) VALUES ($1, $2, $3)
             ON CONFLICT (generated_on) DO UPDATE SET data_hash = excluded.data_hash, data = excluded.data
             WHERE lud_snapshots.data_hash <> excluded.data_hash",
        )
        .bind(generated_on)
        .bind(hash.as_str())
        .bind(json)
        .execute(&mut **t)
        .await
        .ctx("storing a dashboard snapshot")?;
    });
    tx.commit().await?;
    Ok(true)
}

/// The newest stored snapshot: (generated_on, JSON).
pub async fn latest_snapshot(storage: &Storage) -> Result<Option<(String, String)>, StorageError> {
    on_pool!(storage, p => sqlx::query_as::<_, (String, String)>(
        "SELECT generated_on, data FROM lud_snapshots ORDER BY generated_on DESC LIMIT 1",
    )
    .fetch_optional(p)
    .await
    .ctx("reading the newest dashboard snapshot"))
}

/// How many snapshots are stored.
pub async fn snapshot_count(storage: &Storage) -> Result<u64, StorageError> {
    let n: i64 = on_pool!(storage, p => sqlx::query_scalar("SELECT COUNT(*) FROM lud_snapshots")
        .fetch_one(p)
        .await
        .ctx("counting dashboard snapshots"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}
