//! The repos-by-language store: schema part `repos_by_language` (table
//! `rbl_counts`, one row per language and year). One language is written in
//! ONE transaction; a row whose counts did not change is not rewritten.

use std::collections::BTreeMap;

use bdc_storage::{MigrationFile, QueryContext, SchemaPart, Storage, StorageError, now, on_pool};

/// The collector's schema part (registered in `crates/bdc/src/schema.rs`).
pub static SCHEMA: SchemaPart = SchemaPart {
    name: "repos_by_language",
    migrations: &[MigrationFile {
        version: 1,
        description: "repositories created per language and year",
        sqlite: include_str!("../migrations/sqlite_0001.sql"),
        postgres: include_str!("../migrations/postgres_0001.sql"),
    }],
};

/// Repositories created in one year in one language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YearCount {
    pub year: i32,
    /// The star threshold `starred_repos` was counted with (`stars:>=N`).
    pub stars_min: u64,
    /// Every repository created that year (`total_count`).
    pub created_repos: u64,
    /// Those with at least `stars_min` stars.
    pub starred_repos: u64,
}

/// One stored row (what the dashboard reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageYearCount {
    pub language: String,
    pub count: YearCount,
}

/// What a write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

type Row = (String, i64, i64, i64, i64);

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn from_row((language, year, stars_min, created, starred): Row) -> LanguageYearCount {
    LanguageYearCount {
        language,
        count: YearCount {
            year: i32::try_from(year).unwrap_or(0),
            stars_min: to_u64(stars_min),
            created_repos: to_u64(created),
            starred_repos: to_u64(starred),
        },
    }
}

/// Every stored count, ordered by language and year (public store
/// function: the library usage dashboard reads its denominators here).
pub async fn counts(storage: &Storage) -> Result<Vec<LanguageYearCount>, StorageError> {
    let rows: Vec<Row> = on_pool!(storage, p => sqlx::query_as(
        "SELECT language, year, stars_min, created_repos, starred_repos FROM rbl_counts
         ORDER BY language, year",
    )
    .fetch_all(p)
    .await
    .ctx("listing repository counts per language"))?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// The stored counts of one language, by year.
pub async fn language_counts(
    storage: &Storage,
    language: &str,
) -> Result<BTreeMap<i32, YearCount>, StorageError> {
    let rows: Vec<Row> = on_pool!(storage, p => sqlx::query_as(
        "SELECT language, year, stars_min, created_repos, starred_repos FROM rbl_counts
         WHERE language = $1",
    )
    .bind(language)
    .fetch_all(p)
    .await
    .ctx("reading repository counts of a language"))?;
    Ok(rows
        .into_iter()
        .map(from_row)
        .map(|r| (r.count.year, r.count))
        .collect())
}

/// Upsert the counts of one language in one transaction; rows equal to
/// the stored ones are not written.
pub async fn store_language(
    storage: &Storage,
    language: &str,
    years: &[YearCount],
) -> Result<WriteCounts, StorageError> {
    let stored = language_counts(storage, language).await?;
    let mut out = WriteCounts::default();
    let changed: Vec<&YearCount> = years
        .iter()
        .filter(|y| match stored.get(&y.year) {
            Some(s) if s == *y => {
                out.unchanged += 1;
                false
            }
            Some(_) => {
                out.updated += 1;
                true
            }
            None => {
                out.inserted += 1;
                true
            }
        })
        .collect();
    if changed.is_empty() {
        return Ok(out);
    }
    let stamp = now();
    let mut tx = storage.begin().await?;
    bdc_storage::on_tx!(&mut tx, t => {
        for y in &changed {
            sqlx::query(
                "INSERT INTO rbl_counts (language, year, stars_min, created_repos, starred_repos, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (language, year) DO UPDATE SET stars_min = excluded.stars_min,
                    created_repos = excluded.created_repos, starred_repos = excluded.starred_repos,
                    updated_at = excluded.updated_at
                 WHERE rbl_counts.stars_min <> excluded.stars_min
                    OR rbl_counts.created_repos <> excluded.created_repos
                    OR rbl_counts.starred_repos <> excluded.starred_repos",
            )
            .bind(language)
            .bind(i64::from(y.year))
            .bind(to_i64(y.stars_min))
            .bind(to_i64(y.created_repos))
            .bind(to_i64(y.starred_repos))
            .bind(stamp)
            .execute(&mut **t)
            .await
            .ctx("upserting a repository count")?;
        }
    });
    tx.commit().await?;
    Ok(out)
}
