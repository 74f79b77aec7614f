//! The boost-libraries store: schema part `boost_libraries` (tables
//! `bl_releases`, `bl_submodules`, `bl_libraries`). One release is written
//! in ONE transaction with its activity records and checkpoint; rows of the
//! release that are no longer present (a moved tag) are deleted.

use std::collections::BTreeMap;

use bdc_core::ActivityRecord;
use bdc_storage::activity::{UpsertCounts, upsert_in_tx};
use bdc_storage::checkpoints::CheckpointWrite;
use bdc_storage::{MigrationFile, QueryContext, SchemaPart, Storage, StorageError, now, on_pool};
use chrono::{DateTime, Utc};

use crate::deps::Dependency;
use crate::meta::{Library, release_order};

/// `source_system` of the activity records.
pub const SOURCE_SYSTEM: &str = "boost-libraries";

/// The collector's schema part (registered in `crates/bdc/src/schema.rs`).
pub static SCHEMA: SchemaPart = SchemaPart {
    name: "boost_libraries",
    migrations: &[
        MigrationFile {
            version: 1,
            description: "boost releases, submodules, libraries",
            sqlite: include_str!("../migrations/sqlite_0001.sql"),
            postgres: include_str!("../migrations/postgres_0001.sql"),
        },
        MigrationFile {
            version: 2,
            description: "library dependencies",
            sqlite: include_str!("../migrations/sqlite_0002.sql"),
            postgres: include_str!("../migrations/postgres_0002.sql"),
        },
    ],
};

/// A submodule at a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmoduleRow {
    pub name: String,
    pub path: String,
    pub url: String,
    pub sha: Option<String>,
    /// `ok`, `no_meta`, `invalid_json`, `commit_not_found`, `fetch_failed`.
    pub meta_status: String,
}

/// Everything recorded for one release.
#[derive(Debug, Clone)]
pub struct ReleaseData {
    pub release: String,
    pub superproject_sha: String,
    pub released_at: DateTime<Utc>,
    pub submodules: Vec<SubmoduleRow>,
    /// (submodule name, library)
    pub libraries: Vec<(String, Library)>,
    /// The dependency scan ([`crate::deps`]); `None` when the source does
    /// not read includes (the stored edges, if any, are kept).
    pub dependencies: Option<Vec<Dependency>>,
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Comparable form of a stored library (for change detection).
pub fn library_fingerprint(l: &Library) -> String {
    serde_json::json!([
        l.name,
        l.authors,
        l.maintainers,
        l.description,
        l.category,
        l.cxxstd,
        l.status
    ])
    .to_string()
}

/// The libraries of the newest stored release older than `release`.
pub async fn previous_release(
    storage: &Storage,
    release: &str,
) -> Result<Option<(String, BTreeMap<String, String>)>, StorageError> {
    let releases: Vec<String> = on_pool!(storage, p => sqlx::query_scalar("SELECT release FROM bl_releases")
        .fetch_all(p)
        .await
        .ctx("listing boost releases"))?;
    let me = release_order(release);
    let Some(prev) = releases
        .into_iter()
        .filter(|r| release_order(r) < me)
        .max_by_key(|r| release_order(r))
    else {
        return Ok(None);
    };
    type Row = (
        String,
        Option<String>,
        String,
        String,
        Option<String>,
        String,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = on_pool!(storage, p => sqlx::query_as(
        "SELECT key, name, authors, maintainers, description, category, cxxstd, status
         FROM bl_libraries WHERE release = $1",
    )
    .bind(prev.as_str())
    .fetch_all(p)
    .await
    .ctx("reading the previous release's libraries"))?;
    let parse = |s: &str| serde_json::from_str::<Vec<String>>(s).unwrap_or_default();
    let map = rows
        .into_iter()
        .map(
            |(key, name, authors, maintainers, description, category, cxxstd, status)| {
                let lib = Library {
                    key: key.clone(),
                    name,
                    authors: parse(&authors),
                    maintainers: parse(&maintainers),
                    description,
                    category: parse(&category),
                    cxxstd,
                    status,
                };
                (key, library_fingerprint(&lib))
            },
        )
        .collect();
    Ok(Some((prev, map)))
}

/// Write one release with its activity records and checkpoint.
pub async fn store_release(
    storage: &Storage,
    data: &ReleaseData,
    records: &[ActivityRecord],
    run_id: &str,
    checkpoint: &CheckpointWrite<'_>,
) -> Result<UpsertCounts, StorageError> {
    let stamp = now();
    let mut tx = storage.begin().await?;
    bdc_storage::on_tx!(&mut tx, t => {
        sqlx::query(
            "INSERT INTO bl_releases (release, superproject_sha, released_at, submodules, libraries, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (release) DO UPDATE SET superproject_sha = excluded.superproject_sha,
                released_at = excluded.released_at, submodules = excluded.submodules,
                libraries = excluded.libraries, updated_at = excluded.updated_at
             WHERE bl_releases.superproject_sha <> excluded.superproject_sha
                OR bl_releases.submodules <> excluded.submodules
                OR bl_releases.libraries <> excluded.libraries",
        )
        .bind(data.release.as_str())
        .bind(data.superproject_sha.as_str())
        .bind(bdc_storage::normalize_time(data.released_at))
        .bind(data.submodules.len() as i64)
        .bind(data.libraries.len() as i64)
        .bind(stamp)
        .execute(&mut **t)
        .await
        .ctx("upserting a boost release")?;
        for s in &data.submodules {
            sqlx::query(
                "INSERT INTO bl_submodules (release, name, path, url, sha, meta_status)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (release, name) DO UPDATE SET path = excluded.path, url = excluded.url,
                    sha = excluded.sha, meta_status = excluded.meta_status
                 WHERE bl_submodules.path <> excluded.path OR bl_submodules.url <> excluded.url
                    OR bl_submodules.sha IS DISTINCT FROM excluded.sha
                    OR bl_submodules.meta_status <> excluded.meta_status",
            )
            .bind(data.release.as_str())
            .bind(s.name.as_str())
            .bind(s.path.as_str())
            .bind(s.url.as_str())
            .bind(s.sha.as_deref())
            .bind(s.meta_status.as_str())
            .execute(&mut **t)
            .await
            .ctx("upserting a boost submodule")?;
        }
        let stored_subs: Vec<String> = sqlx::query_scalar("SELECT name FROM bl_submodules WHERE release = $1")
            .bind(data.release.as_str())
            .fetch_all(&mut **t)
            .await
            .ctx("listing boost submodules")?;
        for name in stored_subs.iter().filter(|n| !data.submodules.iter().any(|s| &s.name == *n)) {
            sqlx::query("DELETE FROM bl_submodules WHERE release = $1 AND name = $2")
                .bind(data.release.as_str())
                .bind(name.as_str())
                .execute(&mut **t)
                .await
                .ctx("deleting a removed boost submodule")?;
        }
        for (sub, l) in &data.libraries {
            sqlx::query(
                "INSERT INTO bl_libraries (release, key, submodule, name, authors, maintainers, description, category, cxxstd, status)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (release, key) DO UPDATE SET submodule = excluded.submodule, name = excluded.name,
                    authors = excluded.authors, maintainers = excluded.maintainers,
                    description = excluded.description, category = excluded.category,
                    cxxstd = excluded.cxxstd, status = excluded.status
                 WHERE bl_libraries.submodule <> excluded.submodule
                    OR bl_libraries.name IS DISTINCT FROM excluded.name
                    OR bl_libraries.authors <> excluded.authors
                    OR bl_libraries.maintainers <> excluded.maintainers
                    OR bl_libraries.description IS DISTINCT FROM excluded.description
                    OR bl_libraries.category <> excluded.category
                    OR bl_libraries.cxxstd IS DISTINCT FROM excluded.cxxstd
                    OR bl_libraries.status IS DISTINCT FROM excluded.status",
            )
            .bind(data.release.as_str())
            .bind(l.key.as_str())
            .bind(sub.as_str())
            .bind(l.name.as_deref())
            .bind(json_list(&l.authors))
            .bind(json_list(&l.maintainers))
            .bind(l.description.as_deref())
            .bind(json_list(&l.category))
            .bind(l.cxxstd.as_deref())
            .bind(l.status.as_deref())
            .execute(&mut **t)
            .await
            .ctx("upserting a boost library")?;
        }
        let stored_libs: Vec<String> = sqlx::query_scalar("SELECT key FROM bl_libraries WHERE release = $1")
            .bind(data.release.as_str())
            .fetch_all(&mut **t)
            .await
            .ctx("listing boost libraries")?;
        for key in stored_libs.iter().filter(|k| !data.libraries.iter().any(|(_, l)| &l.key == *k)) {
            sqlx::query("DELETE FROM bl_libraries WHERE release = $1 AND key = $2")
                .bind(data.release.as_str())
                .bind(key.as_str())
                .execute(&mut **t)
                .await
                .ctx("deleting a removed boost library")?;
        }
        if let Some(deps) = &data.dependencies {
            for d in deps {
                sqlx::query(
                    "INSERT INTO bl_dependencies (release, library_key, depends_on, includes)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (release, library_key, depends_on) DO UPDATE SET includes = excluded.includes
                     WHERE bl_dependencies.includes <> excluded.includes",
                )
                .bind(data.release.as_str())
                .bind(d.library.as_str())
                .bind(d.depends_on.as_str())
                .bind(i64::try_from(d.includes).unwrap_or(i64::MAX))
                .execute(&mut **t)
                .await
                .ctx("upserting a boost library dependency")?;
            }
            let stored: Vec<(String, String)> = sqlx::query_as(
                "SELECT library_key, depends_on FROM bl_dependencies WHERE release = $1",
            )
            .bind(data.release.as_str())
            .fetch_all(&mut **t)
            .await
            .ctx("listing boost library dependencies")?;
            for (lib, dep) in stored.iter().filter(|(l, d)| {
                !deps.iter().any(|x| &x.library == l && &x.depends_on == d)
            }) {
                sqlx::query(
                    "DELETE FROM bl_dependencies WHERE release = $1 AND library_key = $2 AND depends_on = $3",
                )
                .bind(data.release.as_str())
                .bind(lib.as_str())
                .bind(dep.as_str())
                .execute(&mut **t)
                .await
                .ctx("deleting a removed boost library dependency")?;
            }
            sqlx::query(
                "UPDATE bl_releases SET dependencies_scanned = 1
                 WHERE release = $1 AND dependencies_scanned = 0",
            )
            .bind(data.release.as_str())
            .execute(&mut **t)
            .await
            .ctx("marking a boost release's dependencies scanned")?;
        }
    });
    let counts = upsert_in_tx(&mut tx, records, Some(run_id), Some(checkpoint)).await?;
    tx.commit().await?;
    Ok(counts)
}

/// (releases, submodules, libraries) stored.
pub async fn summary(storage: &Storage) -> Result<(u64, u64, u64), StorageError> {
    on_pool!(storage, p => {
        let mut out = [0u64; 3];
        for (i, table) in ["bl_releases", "bl_submodules", "bl_libraries"].iter().enumerate() {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(p)
                .await
                .ctx("counting boost catalog rows")?;
            out[i] = u64::try_from(n).unwrap_or(0);
        }
        Ok((out[0], out[1], out[2]))
    })
}

/// One library of a stored release, as other collectors need it
/// (`library-docs`, usage mapping): key, display name, submodule and the
/// documentation path of the library on boost.org (`libs/<key>/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogLibrary {
    pub key: String,
    pub name: Option<String>,
    pub submodule: String,
    /// `libs/<key>/`, relative to `https://www.boost.org/doc/libs/<1_NN_0>/`.
    pub doc_path: String,
}

/// The newest stored release tag in version order (`boost-X.Y.Z` tags
/// only, e.g. `boost-1.86.0`), if any such release was recorded.
pub async fn newest_release(storage: &Storage) -> Result<Option<String>, StorageError> {
    let releases: Vec<String> = on_pool!(storage, p => sqlx::query_scalar("SELECT release FROM bl_releases")
        .fetch_all(p)
        .await
        .ctx("listing boost releases"))?;
    Ok(releases
        .into_iter()
        .filter(|r| release_order(r).0 != u64::MAX)
        .max_by_key(|r| release_order(r)))
}

/// The libraries recorded for `release` (sorted by key; empty when the
/// release is not stored).
pub async fn release_libraries(
    storage: &Storage,
    release: &str,
) -> Result<Vec<CatalogLibrary>, StorageError> {
    let rows: Vec<(String, Option<String>, String)> = on_pool!(storage, p => sqlx::query_as(
        "SELECT key, name, submodule FROM bl_libraries WHERE release = $1 ORDER BY key",
    )
    .bind(release)
    .fetch_all(p)
    .await
    .ctx("listing a release's libraries"))?;
    Ok(rows
        .into_iter()
        .map(|(key, name, submodule)| CatalogLibrary {
            doc_path: format!("libs/{key}/"),
            key,
            name,
            submodule,
        })
        .collect())
}

/// Every library key in the catalog (any stored release), sorted: the
/// public store function other collectors map Boost headers with
/// (`boost/<key>/...`, `boost/<key>.hpp`; keys may have a `/`, e.g.
/// `numeric/conversion`).
pub async fn library_keys(storage: &Storage) -> Result<Vec<String>, StorageError> {
    on_pool!(storage, p => sqlx::query_scalar("SELECT DISTINCT key FROM bl_libraries ORDER BY key")
        .fetch_all(p)
        .await
        .ctx("listing boost library keys"))
}

/// Every stored release with its date, oldest first (public store
/// function: the library usage dashboard splits git history by release).
pub async fn releases(storage: &Storage) -> Result<Vec<(String, DateTime<Utc>)>, StorageError> {
    let mut rows: Vec<(String, DateTime<Utc>)> = on_pool!(storage, p => sqlx::query_as(
        "SELECT release, released_at FROM bl_releases",
    )
    .fetch_all(p)
    .await
    .ctx("listing boost releases with dates"))?;
    rows.sort_by(|a, b| {
        a.1.cmp(&b.1)
            .then_with(|| release_order(&a.0).cmp(&release_order(&b.0)))
    });
    Ok(rows)
}

/// Whether `release` was stored with a dependency scan.
pub async fn dependencies_scanned(storage: &Storage, release: &str) -> Result<bool, StorageError> {
    let n: Option<i64> = on_pool!(storage, p => sqlx::query_scalar(
        "SELECT CAST(dependencies_scanned AS BIGINT) FROM bl_releases WHERE release = $1",
    )
    .bind(release)
    .fetch_optional(p)
    .await
    .ctx("reading a boost release's scan flag"))?;
    Ok(n.unwrap_or(0) != 0)
}

/// The library dependencies of `release` (public store function: the
/// usage dashboard's internal consumers), sorted; `None` when the release
/// was not scanned (stored from the GitHub source, or not stored).
pub async fn dependencies(
    storage: &Storage,
    release: &str,
) -> Result<Option<Vec<Dependency>>, StorageError> {
    if !dependencies_scanned(storage, release).await? {
        return Ok(None);
    }
    let rows: Vec<(String, String, i64)> = on_pool!(storage, p => sqlx::query_as(
        "SELECT library_key, depends_on, includes FROM bl_dependencies
         WHERE release = $1 ORDER BY library_key, depends_on",
    )
    .bind(release)
    .fetch_all(p)
    .await
    .ctx("listing a release's library dependencies"))?;
    Ok(Some(
        rows.into_iter()
            .map(|(library, depends_on, includes)| Dependency {
                library,
                depends_on,
                includes: u64::try_from(includes).unwrap_or(0),
            })
            .collect(),
    ))
}
