//! The boost-usage store: schema part `boost_usage` (tables `bu_repos`,
//! `bu_files`, `bu_usages`). One scanned repository (its row, files and
//! headers) is written in ONE transaction; rows that did not change are
//! not rewritten; a header that disappears from a file, or a file that
//! disappears from a repository, is marked gone (`gone_at`), never deleted.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use bdc_storage::{MigrationFile, QueryContext, SchemaPart, Storage, StorageError, on_pool};

/// The collector's schema part (registered in `crates/bdc/src/schema.rs`).
pub static SCHEMA: SchemaPart = SchemaPart {
    name: "boost_usage",
    migrations: &[MigrationFile {
        version: 1,
        description: "repositories, files and Boost headers they include",
        sqlite: include_str!("../migrations/sqlite_0001.sql"),
        postgres: include_str!("../migrations/postgres_0001.sql"),
    }],
};

/// A repository as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRow {
    pub full_name: String,
    pub stars: u64,
    pub language: Option<String>,
    pub created_at: Option<String>,
    pub pushed_at: Option<String>,
    pub uses_boost: bool,
    pub boost_version: Option<String>,
    /// Where the version was read (`boost/version.hpp`, `CMakeLists.txt`, …).
    pub version_source: Option<String>,
    /// `embedded`, `dependency` or `unknown`.
    pub boost_mode: String,
    /// The repository answered 404 at the last star refresh.
    pub gone: bool,
    pub first_seen: String,
    pub last_seen: String,
}

/// One header included by one file, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    pub repo: String,
    pub path: String,
    pub header: String,
    pub library: String,
    pub first_seen: String,
    pub last_seen: String,
    pub gone_at: Option<String>,
}

/// A file seen in a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileScan {
    pub path: String,
    pub sha: String,
    /// header → library; `None`: the file could not be read this time
    /// (what is stored for it stays as it is).
    pub headers: Option<BTreeMap<String, String>>,
}

/// Everything one scan found for one repository.
#[derive(Debug, Clone)]
pub struct RepoScan {
    pub repo: RepoRow,
    pub files: Vec<FileScan>,
    /// The code search listed every match of the repository (not capped),
    /// so files it no longer lists are gone.
    pub complete: bool,
}

/// What a write did (or would do, in a dry run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanCounts {
    pub repos_inserted: u64,
    pub repos_updated: u64,
    pub files_new: u64,
    pub files_gone: u64,
    pub headers_new: u64,
    pub headers_gone: u64,
    pub headers_back: u64,
}

fn b(v: bool) -> i64 {
    i64::from(v)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

type RepoTuple = (
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    Option<String>,
    Option<String>,
    String,
    i64,
    String,
    String,
);

const REPO_COLUMNS: &str = "full_name, stars, language, created_at, pushed_at, uses_boost, boost_version, version_source, boost_mode, gone, first_seen, last_seen";

fn repo_from(t: RepoTuple) -> RepoRow {
    RepoRow {
        full_name: t.0,
        stars: u64::try_from(t.1).unwrap_or(0),
        language: t.2,
        created_at: t.3,
        pushed_at: t.4,
        uses_boost: t.5 != 0,
        boost_version: t.6,
        version_source: t.7,
        boost_mode: t.8,
        gone: t.9 != 0,
        first_seen: t.10,
        last_seen: t.11,
    }
}

/// Every stored repository, by name (public store function: the library
/// usage dashboard reads it).
pub async fn repos(storage: &Storage) -> Result<Vec<RepoRow>, StorageError> {
    let sql = format!("SELECT {REPO_COLUMNS} FROM bu_repos ORDER BY full_name");
    let rows: Vec<RepoTuple> = on_pool!(storage, p => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(p)
        .await
        .ctx("listing boost-usage repositories"))?;
    Ok(rows.into_iter().map(repo_from).collect())
}

/// One stored repository.
pub async fn repo(storage: &Storage, full_name: &str) -> Result<Option<RepoRow>, StorageError> {
    let sql = format!("SELECT {REPO_COLUMNS} FROM bu_repos WHERE full_name = $1");
    let row: Option<RepoTuple> = on_pool!(storage, p => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(full_name)
        .fetch_optional(p)
        .await
        .ctx("reading a boost-usage repository"))?;
    Ok(row.map(repo_from))
}

/// Names of every tracked repository (scanned at least once).
pub async fn tracked(storage: &Storage) -> Result<HashSet<String>, StorageError> {
    let rows: Vec<String> = on_pool!(storage, p => sqlx::query_scalar("SELECT full_name FROM bu_repos")
        .fetch_all(p)
        .await
        .ctx("listing tracked repositories"))?;
    Ok(rows.into_iter().collect())
}

/// Every stored header use, gone ones included (public store function:
/// the library usage dashboard reads it).
pub async fn usages(storage: &Storage) -> Result<Vec<UsageRow>, StorageError> {
    type Row = (
        String,
        String,
        String,
        String,
        String,
        String,
        Option<String>,
    );
    let rows: Vec<Row> = on_pool!(storage, p => sqlx::query_as(
        "SELECT repo, path, header, library, first_seen, last_seen, gone_at FROM bu_usages
         ORDER BY repo, path, header",
    )
    .fetch_all(p)
    .await
    .ctx("listing boost header uses"))?;
    Ok(rows
        .into_iter()
        .map(|r| UsageRow {
            repo: r.0,
            path: r.1,
            header: r.2,
            library: r.3,
            first_seen: r.4,
            last_seen: r.5,
            gone_at: r.6,
        })
        .collect())
}

/// A stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub sha: String,
    pub gone: bool,
    pub last_seen: String,
}

/// Stored files of one repository, by path.
pub async fn files(
    storage: &Storage,
    repo: &str,
) -> Result<BTreeMap<String, StoredFile>, StorageError> {
    let rows: Vec<(String, String, Option<String>, String)> = on_pool!(storage, p => sqlx::query_as(
        "SELECT path, sha, gone_at, last_seen FROM bu_files WHERE repo = $1",
    )
    .bind(repo)
    .fetch_all(p)
    .await
    .ctx("listing the files of a repository"))?;
    Ok(rows
        .into_iter()
        .map(|(p, sha, g, last_seen)| {
            (
                p,
                StoredFile {
                    sha,
                    gone: g.is_some(),
                    last_seen,
                },
            )
        })
        .collect())
}

/// The current (not gone) headers of one stored file, header → library.
pub async fn file_headers(
    storage: &Storage,
    repo: &str,
    path: &str,
) -> Result<BTreeMap<String, String>, StorageError> {
    let rows: Vec<(String, String)> = on_pool!(storage, p => sqlx::query_as(
        "SELECT header, library FROM bu_usages WHERE repo = $1 AND path = $2 AND gone_at IS NULL",
    )
    .bind(repo)
    .bind(path)
    .fetch_all(p)
    .await
    .ctx("reading the headers of a file"))?;
    Ok(rows.into_iter().collect())
}

/// Write one scan (or, with `dry_run`, only count what it would write).
pub async fn store_scan(
    storage: &Storage,
    scan: &RepoScan,
    today: &str,
    dry_run: bool,
) -> Result<ScanCounts, StorageError> {
    let name = scan.repo.full_name.as_str();
    let mut c = ScanCounts::default();
    let stored_repo = repo(storage, name).await?;
    match &stored_repo {
        None => c.repos_inserted += 1,
        Some(s) => {
            let mut same = s.clone();
            same.first_seen.clone_from(&scan.repo.first_seen);
            if same != scan.repo {
                c.repos_updated += 1;
            }
        }
    }
    let stored_files = files(storage, name).await?;
    // All current and gone uses of the repository: (path, header) → gone?
    type UseRow = (String, String, String, Option<String>);
    let uses: Vec<UseRow> = on_pool!(storage, p => sqlx::query_as(
        "SELECT path, header, library, gone_at FROM bu_usages WHERE repo = $1",
    )
    .bind(name)
    .fetch_all(p)
    .await
    .ctx("reading the header uses of a repository"))?;
    let mut stored_uses: BTreeMap<(String, String), (String, bool)> = BTreeMap::new();
    for (p, h, l, g) in uses {
        stored_uses.insert((p, h), (l, g.is_some()));
    }

    // Statements to run, planned first (counts also serve the dry run).
    let mut file_upserts: Vec<&FileScan> = Vec::new();
    let mut use_upserts: Vec<(&str, &str, &str)> = Vec::new();
    let mut use_gone: Vec<(String, String)> = Vec::new();
    let mut file_gone: Vec<String> = Vec::new();
    let seen: BTreeSet<&str> = scan.files.iter().map(|f| f.path.as_str()).collect();
    for f in &scan.files {
        let Some(headers) = &f.headers else { continue };
        match stored_files.get(&f.path) {
            None => {
                c.files_new += 1;
                file_upserts.push(f);
            }
            Some(s) if s.sha != f.sha || s.gone || s.last_seen != today => file_upserts.push(f),
            Some(_) => {}
        }
        for (h, lib) in headers {
            match stored_uses.get(&(f.path.clone(), h.clone())) {
                None => {
                    c.headers_new += 1;
                    use_upserts.push((&f.path, h, lib));
                }
                Some((_, true)) => {
                    c.headers_back += 1;
                    use_upserts.push((&f.path, h, lib));
                }
                Some((l, false)) if l != lib => use_upserts.push((&f.path, h, lib)),
                Some(_) => {}
            }
        }
        for ((p, h), (_, gone)) in &stored_uses {
            if p == &f.path && !gone && !headers.contains_key(h) {
                c.headers_gone += 1;
                use_gone.push((p.clone(), h.clone()));
            }
        }
    }
    if scan.complete {
        for (p, sf) in &stored_files {
            if !sf.gone && !seen.contains(p.as_str()) {
                c.files_gone += 1;
                file_gone.push(p.clone());
                for ((up, h), (_, ugone)) in &stored_uses {
                    if up == p && !ugone {
                        c.headers_gone += 1;
                        use_gone.push((up.clone(), h.clone()));
                    }
                }
            }
        }
    }
    if dry_run {
        return Ok(c);
    }
    let r = &scan.repo;
    let mut tx = storage.begin().await?;
    bdc_storage::on_tx!(&mut tx, t => {
        sqlx::query(
            "INSERT INTO bu_repos (full_name, stars, language, created_at, pushed_at, uses_boost,
                boost_version, version_source, boost_mode, gone, first_seen, last_seen)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (full_name) DO UPDATE SET stars = excluded.stars, language = excluded.language,
                created_at = excluded.created_at, pushed_at = excluded.pushed_at,
                uses_boost = excluded.uses_boost, boost_version = excluded.boost_version,
                version_source = excluded.version_source, boost_mode = excluded.boost_mode,
                gone = excluded.gone, last_seen = excluded.last_seen
             WHERE bu_repos.stars <> excluded.stars
                OR bu_repos.language IS DISTINCT FROM excluded.language
                OR bu_repos.created_at IS DISTINCT FROM excluded.created_at
                OR bu_repos.pushed_at IS DISTINCT FROM excluded.pushed_at
                OR bu_repos.uses_boost <> excluded.uses_boost
                OR bu_repos.boost_version IS DISTINCT FROM excluded.boost_version
                OR bu_repos.version_source IS DISTINCT FROM excluded.version_source
                OR bu_repos.boost_mode <> excluded.boost_mode
                OR bu_repos.gone <> excluded.gone
                OR bu_repos.last_seen <> excluded.last_seen",
        )
        .bind(name)
        .bind(to_i64(r.stars))
        .bind(r.language.as_deref())
        .bind(r.created_at.as_deref())
        .bind(r.pushed_at.as_deref())
        .bind(b(r.uses_boost))
        .bind(r.boost_version.as_deref())
        .bind(r.version_source.as_deref())
        .bind(r.boost_mode.as_str())
        .bind(b(r.gone))
        .bind(r.first_seen.as_str())
        .bind(r.last_seen.as_str())
        .execute(&mut **t)
        .await
        .ctx("upserting a boost-usage repository")?;
        for f in &file_upserts {
            sqlx::query(
                "INSERT INTO bu_files (repo, path, sha, first_seen, last_seen, gone_at)
                 VALUES ($1, $2, $3, $4, $4, NULL)
                 ON CONFLICT (repo, path) DO UPDATE SET sha = excluded.sha,
                    last_seen = excluded.last_seen, gone_at = NULL",
            )
            .bind(name)
            .bind(f.path.as_str())
            .bind(f.sha.as_str())
            .bind(today)
            .execute(&mut **t)
            .await
            .ctx("upserting a boost-usage file")?;
        }
        for (path, header, lib) in &use_upserts {
            sqlx::query(
                "INSERT INTO bu_usages (repo, path, header, library, first_seen, last_seen, gone_at)
                 VALUES ($1, $2, $3, $4, $5, $5, NULL)
                 ON CONFLICT (repo, path, header) DO UPDATE SET library = excluded.library,
                    last_seen = excluded.last_seen, gone_at = NULL",
            )
            .bind(name)
            .bind(*path)
            .bind(*header)
            .bind(*lib)
            .bind(today)
            .execute(&mut **t)
            .await
            .ctx("upserting a boost header use")?;
        }
        // Still-present headers and files of changed files: last seen today.
        for f in &file_upserts {
            sqlx::query(
                "UPDATE bu_usages SET last_seen = $3
                 WHERE repo = $1 AND path = $2 AND gone_at IS NULL AND last_seen <> $3",
            )
            .bind(name)
            .bind(f.path.as_str())
            .bind(today)
            .execute(&mut **t)
            .await
            .ctx("touching the header uses of a file")?;
        }
        for (path, header) in &use_gone {
            sqlx::query(
                "UPDATE bu_usages SET gone_at = $4
                 WHERE repo = $1 AND path = $2 AND header = $3 AND gone_at IS NULL",
            )
            .bind(name)
            .bind(path.as_str())
            .bind(header.as_str())
            .bind(today)
            .execute(&mut **t)
            .await
            .ctx("marking a header use gone")?;
        }
        for path in &file_gone {
            sqlx::query(
                "UPDATE bu_files SET gone_at = $3 WHERE repo = $1 AND path = $2 AND gone_at IS NULL",
            )
            .bind(name)
            .bind(path.as_str())
            .bind(today)
            .execute(&mut **t)
            .await
            .ctx("marking a file gone")?;
        }
    });
    tx.commit().await?;
    Ok(c)
}

/// Refresh a tracked repository's stars (and what else the repository
/// endpoint says); `None` marks it gone. Returns whether a row changed.
pub async fn refresh_repo(
    storage: &Storage,
    full_name: &str,
    fresh: Option<(u64, Option<&str>, Option<&str>)>,
    dry_run: bool,
) -> Result<bool, StorageError> {
    let Some(stored) = repo(storage, full_name).await? else {
        return Ok(false);
    };
    let changed = match fresh {
        Some((stars, language, pushed)) => {
            stored.stars != stars
                || stored.language.as_deref() != language
                || stored.pushed_at.as_deref() != pushed
                || stored.gone
        }
        None => !stored.gone,
    };
    if !changed || dry_run {
        return Ok(changed);
    }
    let mut tx = storage.begin().await?;
    bdc_storage::on_tx!(&mut tx, t => {
        match fresh {
            Some((stars, language, pushed)) => sqlx::query(
                "UPDATE bu_repos SET stars = $2, language = $3, pushed_at = $4, gone = 0 WHERE full_name = $1",
            )
            .bind(full_name)
            .bind(to_i64(stars))
            .bind(language)
            .bind(pushed)
            .execute(&mut **t)
            .await
            .ctx("refreshing a repository's stars")?,
            None => sqlx::query("UPDATE bu_repos SET gone = 1 WHERE full_name = $1")
                .bind(full_name)
                .execute(&mut **t)
                .await
                .ctx("marking a repository gone")?,
        };
    });
    tx.commit().await?;
    Ok(true)
}
