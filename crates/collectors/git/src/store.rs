//! The git-history store: schema part `git_history` (tables `git_repos`,
//! `git_refs`, `git_commits`, `git_commit_files`) and its write path.
//!
//! Commits are immutable by sha: an upsert of a known, reachable commit
//! writes nothing. A commit that was marked unreachable (after a
//! force-push) and shows up again is marked reachable (revision + 1).
//! [`store_batch`] writes commits, files, their activity records, and
//! optionally the ref tip + unreachable marks + checkpoint in ONE
//! transaction.

use std::collections::BTreeMap;

use bdc_core::ActivityRecord;
use bdc_storage::activity::{UpsertCounts, upsert_in_tx};
use bdc_storage::checkpoints::CheckpointWrite;
use bdc_storage::{MigrationFile, QueryContext, SchemaPart, Storage, StorageError, now, on_pool};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::QueryBuilder;

use crate::log::Commit;

/// `source_system` of the activity records.
pub const SOURCE_SYSTEM: &str = "git";

/// The collector's schema part (registered in `crates/bdc/src/schema.rs`).
pub static SCHEMA: SchemaPart = SchemaPart {
    name: "git_history",
    migrations: &[MigrationFile {
        version: 1,
        description: "git repos, refs, commits, commit files",
        sqlite: include_str!("../migrations/sqlite_0001.sql"),
        postgres: include_str!("../migrations/postgres_0001.sql"),
    }],
};

const CHUNK: usize = 500;

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCounts {
    pub inserted: u64,
    /// Known commits made reachable again.
    pub revived: u64,
    pub unchanged: u64,
    pub files: u64,
    pub marked_unreachable: u64,
    pub activity: UpsertCounts,
}

impl BatchCounts {
    pub fn add(&mut self, o: BatchCounts) {
        self.inserted += o.inserted;
        self.revived += o.revived;
        self.unchanged += o.unchanged;
        self.files += o.files;
        self.marked_unreachable += o.marked_unreachable;
        self.activity.add(o.activity);
    }
}

/// The end-of-ref part of the last batch.
#[derive(Debug, Clone)]
pub struct RefUpdate<'a> {
    pub ref_name: &'a str,
    pub tip: &'a str,
    /// Commits no longer reachable from any tracked ref.
    pub gone: &'a [String],
    pub checkpoint: CheckpointWrite<'a>,
}

/// The activity record of a commit.
pub fn activity_record(repo: &str, c: &CommitRow) -> Option<ActivityRecord> {
    let title = c.message.lines().next().unwrap_or("").trim().to_owned();
    let mut rec = ActivityRecord::new(
        SOURCE_SYSTEM,
        format!("{repo}:{}", c.sha),
        c.authored_at,
        "commit",
    )
    .ok()?
    .with_title(title)
    .with_payload(json!({
        "repo": repo,
        "sha": c.sha,
        "parents": c.parents.split_whitespace().collect::<Vec<_>>(),
        "author_name": c.author_name,
        "committer_name": c.committer_name,
        "committer_email": c.committer_email,
        "committed_at": c.committed_at,
        "files_changed": c.files_changed,
        "insertions": c.insertions,
        "deletions": c.deletions,
        "reachable": c.reachable,
    }))
    .ok()?;
    let actor = c.author_email.trim();
    if !actor.is_empty() && actor.len() <= 256 {
        rec = rec.with_actor(actor.to_owned()).ok()?;
    }
    Some(rec)
}

/// A commit as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRow {
    pub sha: String,
    pub parents: String,
    pub author_name: String,
    pub author_email: String,
    pub authored_at: DateTime<Utc>,
    pub committer_name: String,
    pub committer_email: String,
    pub committed_at: DateTime<Utc>,
    pub message: String,
    pub files_changed: i64,
    pub insertions: i64,
    pub deletions: i64,
    pub reachable: bool,
}

impl CommitRow {
    pub fn from_commit(c: &Commit) -> CommitRow {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        CommitRow {
            sha: c.sha.clone(),
            parents: c.parents.join(" "),
            author_name: c.author_name.clone(),
            author_email: c.author_email.clone(),
            authored_at: bdc_storage::normalize_time(c.authored_at),
            committer_name: c.committer_name.clone(),
            committer_email: c.committer_email.clone(),
            committed_at: bdc_storage::normalize_time(c.committed_at),
            message: c.message.replace('\0', ""),
            files_changed: n(c.files.len() as u64),
            insertions: n(c.insertions()),
            deletions: n(c.deletions()),
            reachable: true,
        }
    }
}

type RowTuple = (
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    String,
    String,
    DateTime<Utc>,
    String,
    i64,
    i64,
    i64,
    bool,
);

fn from_tuple(t: RowTuple) -> CommitRow {
    CommitRow {
        sha: t.0,
        parents: t.1,
        author_name: t.2,
        author_email: t.3,
        authored_at: t.4,
        committer_name: t.5,
        committer_email: t.6,
        committed_at: t.7,
        message: t.8,
        files_changed: t.9,
        insertions: t.10,
        deletions: t.11,
        reachable: t.12,
    }
}

const COLS: &str = "sha, parents, author_name, author_email, authored_at, committer_name, \
    committer_email, committed_at, message, files_changed, insertions, deletions, reachable";

/// Write a batch of commits; with `end`, also the ref tip, the unreachable
/// marks and the checkpoint, all in one transaction.
pub async fn store_batch(
    storage: &Storage,
    repo: &str,
    source: &str,
    commits: &[Commit],
    run_id: &str,
    end: Option<&RefUpdate<'_>>,
) -> Result<BatchCounts, StorageError> {
    let stamp = now();
    let mut by_sha: BTreeMap<&str, &Commit> = BTreeMap::new();
    for c in commits {
        by_sha.insert(c.sha.as_str(), c);
    }
    let unique: Vec<&Commit> = by_sha.values().copied().collect();
    let mut counts = BatchCounts::default();
    let mut touched: Vec<(String, i64)> = Vec::new();
    let mut gone_rows: Vec<CommitRow> = Vec::new();
    let mut tx = storage.begin().await?;
    bdc_storage::on_tx!(&mut tx, t => {
        sqlx::query(
            "INSERT INTO git_repos (name, source, first_seen_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET source = excluded.source
             WHERE git_repos.source <> excluded.source",
        )
        .bind(repo)
        .bind(source)
        .bind(stamp)
        .execute(&mut **t)
        .await
        .ctx("upserting a git repository")?;
        for chunk in unique.chunks(CHUNK) {
            let mut qb = QueryBuilder::new(format!(
                "INSERT INTO git_commits (repo, {COLS}, run_id, first_seen_at, updated_at) "
            ));
            qb.push_values(chunk.iter(), |mut b, c| {
                let r = CommitRow::from_commit(c);
                b.push_bind(repo)
                    .push_bind(r.sha)
                    .push_bind(r.parents)
                    .push_bind(r.author_name)
                    .push_bind(r.author_email)
                    .push_bind(r.authored_at)
                    .push_bind(r.committer_name)
                    .push_bind(r.committer_email)
                    .push_bind(r.committed_at)
                    .push_bind(r.message)
                    .push_bind(r.files_changed)
                    .push_bind(r.insertions)
                    .push_bind(r.deletions)
                    .push_bind(true)
                    .push_bind(run_id)
                    .push_bind(stamp)
                    .push_bind(stamp);
            });
            qb.push(
                " ON CONFLICT (repo, sha) DO UPDATE SET reachable = TRUE, unreachable_since = NULL,
                    run_id = excluded.run_id, updated_at = excluded.updated_at,
                    revision = git_commits.revision + 1
                  WHERE NOT git_commits.reachable
                  RETURNING sha, revision",
            );
            let rows: Vec<(String, i64)> = qb
                .build_query_as()
                .fetch_all(&mut **t)
                .await
                .ctx("upserting git commits")?;
            touched.extend(rows);
        }
        let inserted: Vec<&Commit> = touched
            .iter()
            .filter(|(_, rev)| *rev == 1)
            .filter_map(|(sha, _)| by_sha.get(sha.as_str()).copied())
            .collect();
        let files: Vec<(&str, i64, &crate::log::FileChange)> = inserted
            .iter()
            .flat_map(|c| {
                c.files
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (c.sha.as_str(), i as i64, f))
            })
            .collect();
        counts.files = files.len() as u64;
        for chunk in files.chunks(CHUNK) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO git_commit_files (repo, sha, position, path, old_path, insertions, deletions) ",
            );
            qb.push_values(chunk.iter(), |mut b, (sha, pos, f)| {
                b.push_bind(repo)
                    .push_bind(*sha)
                    .push_bind(*pos)
                    .push_bind(f.path.as_str())
                    .push_bind(f.old_path.as_deref())
                    .push_bind(f.insertions.and_then(|v| i64::try_from(v).ok()))
                    .push_bind(f.deletions.and_then(|v| i64::try_from(v).ok()));
            });
            qb.push(" ON CONFLICT (repo, sha, position) DO NOTHING");
            qb.build()
                .execute(&mut **t)
                .await
                .ctx("inserting git commit files")?;
        }
        if let Some(end) = end {
            sqlx::query(
                "INSERT INTO git_refs (repo, ref_name, tip, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (repo, ref_name) DO UPDATE SET tip = excluded.tip, updated_at = excluded.updated_at
                 WHERE git_refs.tip <> excluded.tip",
            )
            .bind(repo)
            .bind(end.ref_name)
            .bind(end.tip)
            .bind(stamp)
            .execute(&mut **t)
            .await
            .ctx("moving a git ref tip")?;
            for chunk in end.gone.chunks(CHUNK) {
                let mut qb = QueryBuilder::new(
                    "UPDATE git_commits SET reachable = FALSE, unreachable_since = ",
                );
                qb.push_bind(stamp)
                    .push(", updated_at = ")
                    .push_bind(stamp)
                    .push(", run_id = ")
                    .push_bind(run_id)
                    .push(", revision = revision + 1 WHERE reachable AND repo = ")
                    .push_bind(repo)
                    .push(" AND sha IN (");
                let mut sep = qb.separated(", ");
                for sha in chunk {
                    sep.push_bind(sha.as_str());
                }
                qb.push(format!(") RETURNING {COLS}"));
                let rows: Vec<RowTuple> = qb
                    .build_query_as()
                    .fetch_all(&mut **t)
                    .await
                    .ctx("marking unreachable git commits")?;
                gone_rows.extend(rows.into_iter().map(from_tuple));
            }
        }
    });
    counts.inserted = touched.iter().filter(|(_, r)| *r == 1).count() as u64;
    counts.revived = touched.len() as u64 - counts.inserted;
    counts.unchanged = unique.len() as u64 - touched.len() as u64;
    counts.marked_unreachable = gone_rows.len() as u64;
    let mut records: Vec<ActivityRecord> = touched
        .iter()
        .filter_map(|(sha, _)| by_sha.get(sha.as_str()))
        .filter_map(|c| activity_record(repo, &CommitRow::from_commit(c)))
        .collect();
    records.extend(gone_rows.iter().filter_map(|r| activity_record(repo, r)));
    counts.activity =
        upsert_in_tx(&mut tx, &records, Some(run_id), end.map(|e| &e.checkpoint)).await?;
    bdc_identity::record_profiles(&mut tx, &author_profiles(&unique)).await?;
    tx.commit().await?;
    Ok(counts)
}

/// Tips of every tracked ref of `repo` (from `git_refs`).
pub async fn ref_tips(
    storage: &Storage,
    repo: &str,
) -> Result<Vec<(String, String)>, StorageError> {
    on_pool!(storage, p => sqlx::query_as::<_, (String, String)>(
        "SELECT ref_name, tip FROM git_refs WHERE repo = $1 ORDER BY ref_name",
    )
    .bind(repo)
    .fetch_all(p)
    .await
    .ctx("reading git ref tips"))
}

/// Shas of the commits of `repo` currently marked reachable.
pub async fn reachable_shas(storage: &Storage, repo: &str) -> Result<Vec<String>, StorageError> {
    on_pool!(storage, p => sqlx::query_scalar::<_, String>(
        "SELECT sha FROM git_commits WHERE repo = $1 AND reachable",
    )
    .bind(repo)
    .fetch_all(p)
    .await
    .ctx("reading reachable git commits"))
}

/// Commit counts of a repo: (total, reachable, files).
pub async fn repo_summary(storage: &Storage, repo: &str) -> Result<(u64, u64, u64), StorageError> {
    on_pool!(storage, p => {
        let (total, reachable): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN reachable THEN 1 ELSE 0 END), 0)
             FROM git_commits WHERE repo = $1",
        )
        .bind(repo)
        .fetch_one(p)
        .await
        .ctx("summarising a git repository")?;
        let files: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM git_commit_files WHERE repo = $1")
            .bind(repo)
            .fetch_one(p)
            .await
            .ctx("counting git commit files")?;
        Ok((
            u64::try_from(total).unwrap_or(0),
            u64::try_from(reachable).unwrap_or(0),
            u64::try_from(files).unwrap_or(0),
        ))
    })
}

/// One stored commit.
pub async fn get_commit(
    storage: &Storage,
    repo: &str,
    sha: &str,
) -> Result<Option<CommitRow>, StorageError> {
    let sql = format!("SELECT {COLS} FROM git_commits WHERE repo = $1 AND sha = $2");
    let row: Option<RowTuple> = on_pool!(storage, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(repo)
        .bind(sha)
        .fetch_optional(p)
        .await
        .ctx("reading a git commit"))?;
    Ok(row.map(from_tuple))
}

/// Identity-hub profiles of the commit authors (`git`, the address as written).
fn author_profiles(commits: &[&Commit]) -> Vec<bdc_identity::ProfileInput> {
    commits
        .iter()
        .map(|c| {
            let email = c.author_email.trim();
            bdc_identity::ProfileInput::new("git", email)
                .name(Some(c.author_name.as_str()))
                .email(Some(email))
                .acts_as(SOURCE_SYSTEM, Some(email))
        })
        .collect()
}

/// Names of every stored repository, sorted (public store function: the
/// library usage dashboard matches them to Boost submodules).
pub async fn repo_names(storage: &Storage) -> Result<Vec<String>, StorageError> {
    on_pool!(storage, p => sqlx::query_scalar::<_, String>("SELECT name FROM git_repos ORDER BY name")
        .fetch_all(p)
        .await
        .ctx("listing git repositories"))
}

/// When a reachable commit was made and how many files it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStat {
    pub committed_at: DateTime<Utc>,
    pub files_changed: u64,
    pub author_email: String,
}

/// Every reachable commit of `repo` (time, files changed, author), oldest
/// first (public store function: the library usage dashboard counts
/// contributions per release with it).
pub async fn commit_stats(storage: &Storage, repo: &str) -> Result<Vec<CommitStat>, StorageError> {
    let rows: Vec<(DateTime<Utc>, i64, String)> = on_pool!(storage, p => sqlx::query_as(
        "SELECT committed_at, files_changed, author_email FROM git_commits
         WHERE repo = $1 AND reachable ORDER BY committed_at",
    )
    .bind(repo)
    .fetch_all(p)
    .await
    .ctx("reading git commit stats"))?;
    Ok(rows
        .into_iter()
        .map(|(committed_at, files, author_email)| CommitStat {
            committed_at,
            files_changed: u64::try_from(files).unwrap_or(0),
            author_email,
        })
        .collect())
}
