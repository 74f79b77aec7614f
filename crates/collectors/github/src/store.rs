//! The collector's storage layer: its schema part and every SQL statement
//! it runs. A [`Batch`] (one page of one resource, with its sub-resources
//! and checkpoint) is written in ONE transaction: typed rows, activity
//! records and checkpoints land together or not at all.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use bdc_core::{ActivityRecord, IncrementalState};
use bdc_storage::activity::{PgActivityUpsert, UpsertCounts};
use bdc_storage::checkpoints::CheckpointWrite;
use bdc_storage::pg_batch::PgBatch;
use bdc_storage::{
    MigrationFile, QueryContext, SchemaPart, Storage, StorageError, Tx, normalize_time, on_pool,
};
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};

use crate::model::{Comment, Commit, Issue, Release, Repo, Review, User};

/// The `github_activity` schema part (typed tables).
pub const SCHEMA: SchemaPart = SchemaPart {
    name: "github_activity",
    migrations: &[MigrationFile {
        version: 1,
        description: "github activity tables",
        sqlite: include_str!("../migrations/sqlite/0001_github.sql"),
        postgres: include_str!("../migrations/postgres/0001_github.sql"),
    }],
};

/// Rows per multi-row statement (≤ 15 binds per row stays far below both
/// backends' parameter limits).
const CHUNK: usize = 1000;

/// A user row: the embedded account, or details from `GET /users/{login}`.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub user: User,
    pub details_fetched_at: Option<DateTime<Utc>>,
}

/// Everything one transaction writes.
#[derive(Debug, Default)]
pub struct Batch {
    pub repos: Vec<Repo>,
    pub users: Vec<UserRow>,
    pub issues: Vec<(i64, Issue)>,
    /// `(repo_id, kind, comment)`: kind `issue` or `review`.
    pub comments: Vec<(i64, &'static str, Comment)>,
    /// `(repo_id, pull_number, review)`.
    pub reviews: Vec<(i64, i64, Review)>,
    pub commits: Vec<(i64, Commit)>,
    pub releases: Vec<(i64, Release)>,
    pub activity: Vec<ActivityRecord>,
    /// `(scope, state)` under the collector's name.
    pub checkpoints: Vec<(String, IncrementalState)>,
}

impl Batch {
    /// Add an embedded account (deduplicated at write time).
    pub fn user(&mut self, user: Option<&User>) {
        if let Some(u) = user {
            self.users.push(UserRow {
                user: u.clone(),
                details_fetched_at: None,
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.repos.is_empty()
            && self.users.is_empty()
            && self.issues.is_empty()
            && self.comments.is_empty()
            && self.reviews.is_empty()
            && self.commits.is_empty()
            && self.releases.is_empty()
            && self.activity.is_empty()
            && self.checkpoints.is_empty()
    }
}

/// Rows written (inserted or really changed) per table, and the activity
/// upsert counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteCounts {
    pub typed_rows: u64,
    pub activity: UpsertCounts,
}

/// Keep the last item per key: one statement may not touch a row twice.
fn last_by_key<T, K: Hash + Eq>(items: &[T], key: impl Fn(&T) -> K) -> Vec<&T> {
    let mut last: HashMap<K, usize> = HashMap::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        last.insert(key(it), i);
    }
    items
        .iter()
        .enumerate()
        .filter(|(i, it)| last.get(&key(it)) == Some(i))
        .map(|(_, it)| it)
        .collect()
}

fn t(d: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    d.map(normalize_time)
}

const REPOS_HEAD: &str = "INSERT INTO github_repos (id, full_name, owner_login, name, private, fork, archived, \
     default_branch, description, html_url, created_at, updated_at, pushed_at) ";
const REPOS_TAIL: &str = " ON CONFLICT (id) DO UPDATE SET full_name = excluded.full_name, owner_login = excluded.owner_login,
     name = excluded.name, private = excluded.private, fork = excluded.fork, archived = excluded.archived,
     default_branch = excluded.default_branch, description = excluded.description, html_url = excluded.html_url,
     created_at = excluded.created_at, updated_at = excluded.updated_at, pushed_at = excluded.pushed_at
     WHERE github_repos.full_name IS DISTINCT FROM excluded.full_name
        OR github_repos.private IS DISTINCT FROM excluded.private
        OR github_repos.fork IS DISTINCT FROM excluded.fork
        OR github_repos.archived IS DISTINCT FROM excluded.archived
        OR github_repos.default_branch IS DISTINCT FROM excluded.default_branch
        OR github_repos.description IS DISTINCT FROM excluded.description
        OR github_repos.html_url IS DISTINCT FROM excluded.html_url
        OR github_repos.updated_at IS DISTINCT FROM excluded.updated_at
        OR github_repos.pushed_at IS DISTINCT FROM excluded.pushed_at";

const USERS_HEAD: &str =
    "INSERT INTO github_users (id, login, user_type, name, email, html_url, details_fetched_at) ";
const USERS_TAIL: &str = " ON CONFLICT (id) DO UPDATE SET login = excluded.login,
     user_type = COALESCE(excluded.user_type, github_users.user_type),
     name = CASE WHEN excluded.details_fetched_at IS NULL THEN github_users.name ELSE excluded.name END,
     email = CASE WHEN excluded.details_fetched_at IS NULL THEN github_users.email ELSE excluded.email END,
     html_url = COALESCE(excluded.html_url, github_users.html_url),
     details_fetched_at = COALESCE(excluded.details_fetched_at, github_users.details_fetched_at)
     WHERE github_users.login IS DISTINCT FROM excluded.login
        OR (excluded.user_type IS NOT NULL AND github_users.user_type IS DISTINCT FROM excluded.user_type)
        OR (excluded.html_url IS NOT NULL AND github_users.html_url IS DISTINCT FROM excluded.html_url)
        OR (excluded.details_fetched_at IS NOT NULL AND (github_users.details_fetched_at IS NULL
            OR github_users.name IS DISTINCT FROM excluded.name
            OR github_users.email IS DISTINCT FROM excluded.email))";

const ISSUES_HEAD: &str = "INSERT INTO github_issues (id, repo_id, number, is_pull, title, state, user_id, labels, \
     comments, created_at, updated_at, closed_at, html_url) ";
const ISSUES_TAIL: &str = " ON CONFLICT (id) DO UPDATE SET repo_id = excluded.repo_id, number = excluded.number,
     is_pull = excluded.is_pull, title = excluded.title, state = excluded.state, user_id = excluded.user_id,
     labels = excluded.labels, comments = excluded.comments, created_at = excluded.created_at,
     updated_at = excluded.updated_at, closed_at = excluded.closed_at, html_url = excluded.html_url
     WHERE github_issues.updated_at IS DISTINCT FROM excluded.updated_at
        OR github_issues.title IS DISTINCT FROM excluded.title
        OR github_issues.state IS DISTINCT FROM excluded.state
        OR github_issues.labels IS DISTINCT FROM excluded.labels
        OR github_issues.comments IS DISTINCT FROM excluded.comments
        OR github_issues.closed_at IS DISTINCT FROM excluded.closed_at";

const PULLS_HEAD: &str =
    "INSERT INTO github_pulls (id, repo_id, number, draft, merged_at, updated_at) ";
const PULLS_TAIL: &str =
    " ON CONFLICT (id) DO UPDATE SET draft = excluded.draft, merged_at = excluded.merged_at,
     updated_at = excluded.updated_at
     WHERE github_pulls.draft IS DISTINCT FROM excluded.draft
        OR github_pulls.merged_at IS DISTINCT FROM excluded.merged_at
        OR github_pulls.updated_at IS DISTINCT FROM excluded.updated_at";

const COMMENTS_HEAD: &str = "INSERT INTO github_comments (id, repo_id, kind, issue_number, user_id, review_id, path, \
     commit_id, body, created_at, updated_at, html_url) ";
const COMMENTS_TAIL: &str = " ON CONFLICT (id) DO UPDATE SET issue_number = excluded.issue_number,
     user_id = excluded.user_id, review_id = excluded.review_id, path = excluded.path, commit_id = excluded.commit_id,
     body = excluded.body, updated_at = excluded.updated_at, html_url = excluded.html_url
     WHERE github_comments.updated_at IS DISTINCT FROM excluded.updated_at
        OR github_comments.body IS DISTINCT FROM excluded.body
        OR github_comments.path IS DISTINCT FROM excluded.path";

const REVIEWS_HEAD: &str = "INSERT INTO github_reviews (id, repo_id, pull_number, user_id, state, body, commit_id, \
     submitted_at, html_url) ";
const REVIEWS_TAIL: &str = " ON CONFLICT (id) DO UPDATE SET state = excluded.state, body = excluded.body,
     commit_id = excluded.commit_id, submitted_at = excluded.submitted_at, html_url = excluded.html_url
     WHERE github_reviews.state IS DISTINCT FROM excluded.state
        OR github_reviews.body IS DISTINCT FROM excluded.body
        OR github_reviews.submitted_at IS DISTINCT FROM excluded.submitted_at";

const COMMITS_HEAD: &str = "INSERT INTO github_commits (repo_id, sha, author_id, committer_id, author_name, \
     author_email, authored_at, committer_name, committer_email, committed_at, message, html_url, additions, \
     deletions, files_fetched) ";
const COMMITS_TAIL: &str = " ON CONFLICT (repo_id, sha) DO UPDATE SET
     author_id = COALESCE(excluded.author_id, github_commits.author_id),
     committer_id = COALESCE(excluded.committer_id, github_commits.committer_id),
     additions = COALESCE(excluded.additions, github_commits.additions),
     deletions = COALESCE(excluded.deletions, github_commits.deletions),
     files_fetched = (github_commits.files_fetched OR excluded.files_fetched)
     WHERE (excluded.author_id IS NOT NULL AND github_commits.author_id IS DISTINCT FROM excluded.author_id)
        OR (excluded.committer_id IS NOT NULL AND github_commits.committer_id IS DISTINCT FROM excluded.committer_id)
        OR (excluded.additions IS NOT NULL AND github_commits.additions IS DISTINCT FROM excluded.additions)
        OR (excluded.files_fetched AND NOT github_commits.files_fetched)";

const FILES_HEAD: &str = "INSERT INTO github_files (repo_id, path) ";
const FILES_TAIL: &str = " ON CONFLICT (repo_id, path) DO NOTHING";

const CHANGES_HEAD: &str = "INSERT INTO github_file_changes (repo_id, sha, path, status, additions, deletions, \
     previous_path) ";
const CHANGES_TAIL: &str = " ON CONFLICT (repo_id, sha, path) DO UPDATE SET status = excluded.status,
     additions = excluded.additions, deletions = excluded.deletions, previous_path = excluded.previous_path
     WHERE github_file_changes.status IS DISTINCT FROM excluded.status
        OR github_file_changes.additions IS DISTINCT FROM excluded.additions
        OR github_file_changes.deletions IS DISTINCT FROM excluded.deletions
        OR github_file_changes.previous_path IS DISTINCT FROM excluded.previous_path";

const RELEASES_HEAD: &str = "INSERT INTO github_releases (id, repo_id, tag_name, name, draft, prerelease, author_id, \
     created_at, published_at, html_url) ";
const RELEASES_TAIL: &str = " ON CONFLICT (id) DO UPDATE SET tag_name = excluded.tag_name, name = excluded.name,
     draft = excluded.draft, prerelease = excluded.prerelease, author_id = excluded.author_id,
     created_at = excluded.created_at, published_at = excluded.published_at, html_url = excluded.html_url
     WHERE github_releases.tag_name IS DISTINCT FROM excluded.tag_name
        OR github_releases.name IS DISTINCT FROM excluded.name
        OR github_releases.draft IS DISTINCT FROM excluded.draft
        OR github_releases.prerelease IS DISTINCT FROM excluded.prerelease
        OR github_releases.published_at IS DISTINCT FROM excluded.published_at";

/// Rows per `UNNEST` part on PostgreSQL (bounds what one statement carries
/// of each table).
const PG_CHUNK: usize = 5000;

/// Run `$head VALUES … $tail` over `$rows` in chunks, binding each row with
/// `$bind`, adding rows affected to `$n`.
macro_rules! upsert_chunks {
    ($t:ident, $rows:expr, $head:expr, $tail:expr, $what:literal, $n:ident, |$b:ident, $r:ident| $bind:block) => {
        for chunk in $rows.chunks(CHUNK) {
            let mut qb = QueryBuilder::new($head);
            qb.push_values(chunk.iter(), |mut $b, $r| $bind);
            qb.push($tail);
            let res = qb.build().execute(&mut **$t).await.ctx($what)?;
            $n += res.rows_affected();
        }
    };
}

/// The collector's store.
#[derive(Debug, Clone)]
pub struct GithubStore {
    storage: Storage,
    collector: &'static str,
}

impl GithubStore {
    pub fn new(storage: Storage, collector: &'static str) -> Self {
        GithubStore { storage, collector }
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Write `batch` in one transaction (see the module docs).
    pub async fn write(
        &self,
        batch: &Batch,
        run_id: Option<&str>,
    ) -> Result<WriteCounts, StorageError> {
        let mut tx = self.storage.begin().await?;
        let mut n: u64 = 0;
        let repos = last_by_key(&batch.repos, |r| r.id);
        let users = last_by_key(&batch.users, |u| u.user.id);
        let issues = last_by_key(&batch.issues, |(_, i)| i.id);
        let pulls: Vec<&(i64, Issue)> = issues
            .iter()
            .copied()
            .filter(|(_, i)| i.pull_request.is_some())
            .collect();
        let comments = last_by_key(&batch.comments, |(_, _, c)| c.id);
        let reviews = last_by_key(&batch.reviews, |(_, _, r)| r.id);
        let commits = last_by_key(&batch.commits, |(repo, c)| (*repo, c.sha.clone()));
        let mut files: Vec<(i64, &str)> = Vec::new();
        let mut changes: Vec<(i64, &str, &crate::model::CommitFile)> = Vec::new();
        for (repo, c) in &commits {
            for f in c.files.iter().flatten() {
                files.push((*repo, f.filename.as_str()));
                changes.push((*repo, c.sha.as_str(), f));
            }
        }
        let files = last_by_key(&files, |(r, p)| (*r, *p));
        let changes = last_by_key(&changes, |(r, s, f)| (*r, *s, f.filename.as_str()));
        let releases = last_by_key(&batch.releases, |(_, r)| r.id);

        // The tables have no foreign keys between them, so the order is free.
        // SQLite writes them in dependency order, one multi-row VALUES
        // statement per table and chunk. PostgreSQL writes repos, issues,
        // pulls, comments, reviews and releases the same way, then the
        // high-volume tables (users, commits, files, file changes) with the
        // activity records and the first checkpoint as one statement per
        // chunk (`pg_write_chunk`); with more than PG_CHUNK rows in a table,
        // chunk i of each table travels together.
        bdc_storage::on_tx!(&mut tx, tx_ => {
            upsert_chunks!(tx_, repos, REPOS_HEAD, REPOS_TAIL, "upserting github repos", n, |b, r| {
                b.push_bind(r.id).push_bind(r.full_name.as_str()).push_bind(r.owner.login.as_str())
                    .push_bind(r.name.as_str()).push_bind(r.private).push_bind(r.fork).push_bind(r.archived)
                    .push_bind(r.default_branch.as_deref()).push_bind(r.description.as_deref())
                    .push_bind(r.html_url.as_deref()).push_bind(t(r.created_at)).push_bind(t(r.updated_at))
                    .push_bind(t(r.pushed_at));
            });
        });
        if let Tx::Sqlite(tx_) = &mut tx {
            upsert_chunks!(
                tx_,
                users,
                USERS_HEAD,
                USERS_TAIL,
                "upserting github users",
                n,
                |b, u| {
                    b.push_bind(u.user.id)
                        .push_bind(u.user.login.as_str())
                        .push_bind(u.user.user_type.as_deref())
                        .push_bind(u.user.name.as_deref())
                        .push_bind(u.user.email.as_deref())
                        .push_bind(u.user.html_url.as_deref())
                        .push_bind(t(u.details_fetched_at));
                }
            );
        }
        bdc_storage::on_tx!(&mut tx, tx_ => {
            upsert_chunks!(tx_, issues, ISSUES_HEAD, ISSUES_TAIL, "upserting github issues", n, |b, row| {
                let (repo, i) = row;
                let labels = serde_json::Value::from(i.labels.iter().map(|l| l.name.clone()).collect::<Vec<_>>()).to_string();
                b.push_bind(i.id).push_bind(*repo).push_bind(i.number).push_bind(i.pull_request.is_some())
                    .push_bind(i.title.as_str()).push_bind(i.state.as_str()).push_bind(i.user.as_ref().map(|u| u.id))
                    .push_bind(labels).push_bind(i.comments).push_bind(normalize_time(i.created_at))
                    .push_bind(normalize_time(i.updated_at)).push_bind(t(i.closed_at)).push_bind(i.html_url.as_str());
            });
            upsert_chunks!(tx_, pulls, PULLS_HEAD, PULLS_TAIL, "upserting github pulls", n, |b, row| {
                let (repo, i) = row;
                b.push_bind(i.id).push_bind(*repo).push_bind(i.number).push_bind(i.draft)
                    .push_bind(t(i.pull_request.as_ref().and_then(|p| p.merged_at)))
                    .push_bind(normalize_time(i.updated_at));
            });
            upsert_chunks!(tx_, comments, COMMENTS_HEAD, COMMENTS_TAIL, "upserting github comments", n, |b, row| {
                let (repo, kind, c) = row;
                b.push_bind(c.id).push_bind(*repo).push_bind(*kind).push_bind(c.number())
                    .push_bind(c.user.as_ref().map(|u| u.id)).push_bind(c.pull_request_review_id)
                    .push_bind(c.path.as_deref()).push_bind(c.commit_id.as_deref()).push_bind(c.body.as_deref())
                    .push_bind(normalize_time(c.created_at)).push_bind(normalize_time(c.updated_at))
                    .push_bind(c.html_url.as_deref());
            });
            upsert_chunks!(tx_, reviews, REVIEWS_HEAD, REVIEWS_TAIL, "upserting github reviews", n, |b, row| {
                let (repo, number, r) = row;
                b.push_bind(r.id).push_bind(*repo).push_bind(*number).push_bind(r.user.as_ref().map(|u| u.id))
                    .push_bind(r.state.as_str()).push_bind(r.body.as_deref()).push_bind(r.commit_id.as_deref())
                    .push_bind(t(r.submitted_at)).push_bind(r.html_url.as_deref());
            });
        });
        if let Tx::Sqlite(tx_) = &mut tx {
            upsert_chunks!(
                tx_,
                commits,
                COMMITS_HEAD,
                COMMITS_TAIL,
                "upserting github commits",
                n,
                |b, row| {
                    let (repo, c) = row;
                    let a = c.commit.author.as_ref();
                    let m = c.commit.committer.as_ref();
                    b.push_bind(*repo)
                        .push_bind(c.sha.as_str())
                        .push_bind(c.author.as_ref().map(|u| u.id))
                        .push_bind(c.committer.as_ref().map(|u| u.id))
                        .push_bind(a.and_then(|p| p.name.as_deref()))
                        .push_bind(a.and_then(|p| p.email.as_deref()))
                        .push_bind(t(a.and_then(|p| p.date)))
                        .push_bind(m.and_then(|p| p.name.as_deref()))
                        .push_bind(m.and_then(|p| p.email.as_deref()))
                        .push_bind(t(m.and_then(|p| p.date)))
                        .push_bind(c.commit.message.as_str())
                        .push_bind(c.html_url.as_deref())
                        .push_bind(c.stats.as_ref().map(|s| s.additions))
                        .push_bind(c.stats.as_ref().map(|s| s.deletions))
                        .push_bind(c.files.is_some());
                }
            );
            upsert_chunks!(
                tx_,
                files,
                FILES_HEAD,
                FILES_TAIL,
                "upserting github files",
                n,
                |b, row| {
                    let (repo, path) = row;
                    b.push_bind(*repo).push_bind(*path);
                }
            );
            upsert_chunks!(
                tx_,
                changes,
                CHANGES_HEAD,
                CHANGES_TAIL,
                "upserting github file changes",
                n,
                |b, row| {
                    let (repo, sha, f) = row;
                    b.push_bind(*repo)
                        .push_bind(*sha)
                        .push_bind(f.filename.as_str())
                        .push_bind(f.status.as_str())
                        .push_bind(f.additions)
                        .push_bind(f.deletions)
                        .push_bind(f.previous_filename.as_deref());
                }
            );
        }
        bdc_storage::on_tx!(&mut tx, tx_ => {
            upsert_chunks!(tx_, releases, RELEASES_HEAD, RELEASES_TAIL, "upserting github releases", n, |b, row| {
                let (repo, r) = row;
                b.push_bind(r.id).push_bind(*repo).push_bind(r.tag_name.as_str()).push_bind(r.name.as_deref())
                    .push_bind(r.draft).push_bind(r.prerelease).push_bind(r.author.as_ref().map(|u| u.id))
                    .push_bind(t(r.created_at)).push_bind(t(r.published_at)).push_bind(r.html_url.as_deref());
            });
        });
        let mut activity = UpsertCounts::default();
        let mut checkpoints = batch.checkpoints.iter();
        // The first checkpoint travels with the activity records; the rest
        // follow in the same transaction.
        let first = checkpoints.next().map(|(scope, state)| CheckpointWrite {
            collector: self.collector,
            scope,
            state,
            run_id,
        });
        match &mut tx {
            Tx::Postgres(t) => {
                let rows = PgRows {
                    users: &users,
                    commits: &commits,
                    files: &files,
                    changes: &changes,
                };
                let mut up = PgActivityUpsert::new(&batch.activity, first.as_ref());
                for i in 0..rows.chunks().max(up.batches()) {
                    n += pg_write_chunk(t, i, &rows, &mut up, run_id).await?;
                }
                activity = up.counts();
            }
            Tx::Sqlite(_) => {
                if !batch.activity.is_empty() || first.is_some() {
                    activity = bdc_storage::activity::upsert_in_tx(
                        &mut tx,
                        &batch.activity,
                        run_id,
                        first.as_ref(),
                    )
                    .await?;
                }
            }
        }
        for (scope, state) in checkpoints {
            let cp = CheckpointWrite {
                collector: self.collector,
                scope,
                state,
                run_id,
            };
            bdc_storage::activity::upsert_in_tx(&mut tx, &[], run_id, Some(&cp)).await?;
        }
        bdc_identity::record_profiles(&mut tx, &profiles(&users, &commits)).await?;
        tx.commit().await?;
        Ok(WriteCounts {
            typed_rows: n,
            activity,
        })
    }

    /// Stored `updated_at` of the given issues.
    pub async fn issue_updated_at(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, DateTime<Utc>>, StorageError> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(CHUNK) {
            on_pool!(self.storage, p => {
                let mut qb = QueryBuilder::new("SELECT id, updated_at FROM github_issues WHERE id IN (");
                let mut sep = qb.separated(", ");
                for id in chunk {
                    sep.push_bind(*id);
                }
                qb.push(")");
                let rows = qb.build().fetch_all(p).await.ctx("reading stored issues")?;
                for row in rows {
                    let id: i64 = row.try_get("id").ctx("decoding a stored issue")?;
                    let at: DateTime<Utc> = row.try_get("updated_at").ctx("decoding a stored issue")?;
                    out.insert(id, at);
                }
            });
        }
        Ok(out)
    }

    /// The commits of `repo_id` among `shas` whose files are stored.
    pub async fn commits_with_files(
        &self,
        repo_id: i64,
        shas: &[&str],
    ) -> Result<HashSet<String>, StorageError> {
        let mut out = HashSet::new();
        for chunk in shas.chunks(CHUNK) {
            on_pool!(self.storage, p => {
                let mut qb = QueryBuilder::new("SELECT sha FROM github_commits WHERE files_fetched AND repo_id = ");
                qb.push_bind(repo_id).push(" AND sha IN (");
                let mut sep = qb.separated(", ");
                for s in chunk {
                    sep.push_bind(*s);
                }
                qb.push(")");
                let rows = qb.build().fetch_all(p).await.ctx("reading stored commits")?;
                for row in rows {
                    out.insert(row.try_get::<String, _>("sha").ctx("decoding a stored commit")?);
                }
            });
        }
        Ok(out)
    }

    /// Of `ids`, the users whose details were never fetched: `(id, login)`.
    pub async fn users_without_details(
        &self,
        ids: &[i64],
    ) -> Result<Vec<(i64, String)>, StorageError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            on_pool!(self.storage, p => {
                let mut qb = QueryBuilder::new(
                    "SELECT id, login FROM github_users WHERE details_fetched_at IS NULL AND id IN (",
                );
                let mut sep = qb.separated(", ");
                for id in chunk {
                    sep.push_bind(*id);
                }
                qb.push(") ORDER BY id");
                let rows = qb.build().fetch_all(p).await.ctx("reading users without details")?;
                for row in rows {
                    out.push((
                        row.try_get::<i64, _>("id").ctx("decoding a user")?,
                        row.try_get::<String, _>("login").ctx("decoding a user")?,
                    ));
                }
            });
        }
        Ok(out)
    }

    /// Id of a stored repository by `owner/name` (case-insensitive).
    pub async fn repo_id(&self, full_name: &str) -> Result<Option<i64>, StorageError> {
        on_pool!(self.storage, p => sqlx::query_scalar::<_, i64>(
            "SELECT id FROM github_repos WHERE LOWER(full_name) = LOWER($1) ORDER BY id LIMIT 1",
        )
        .bind(full_name)
        .fetch_optional(p)
        .await)
        .ctx("reading a stored repository")
    }

    /// Row counts of every typed table, by table name (tests, `bdc` output).
    pub async fn table_counts(&self) -> Result<Vec<(&'static str, i64)>, StorageError> {
        let mut out = Vec::new();
        for table in TABLES {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let n: i64 = on_pool!(self.storage, p => sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_one(p)
                .await)
            .ctx("counting rows")?;
            out.push((*table, n));
        }
        Ok(out)
    }
}

/// PostgreSQL: bind each column of `rows` as one array (`UNNEST`) and
/// push the upsert onto `b`; each `"type" => |row| value` entry gives a
/// column's element type and how to read it off a row.
macro_rules! pg_unnest_part {
    ($b:ident, $rows:expr, $head:expr, $tail:expr, $what:literal, [$($ty:literal => |$r:ident| $val:expr),+ $(,)?]) => {{
        const BIND: &str = concat!("binding ", $what);
        let arrays = [$(
            format!("{}::{}[]", $b.bind($rows.iter().map(|$r| $val).collect::<Vec<_>>(), BIND)?, $ty)
        ),+];
        let sql = format!("{}SELECT * FROM UNNEST({}){} RETURNING 1", $head, arrays.join(", "), $tail);
        $b.push_counted(sql, $what)
    }};
}

/// PostgreSQL: chunk `i` of the users, commits, files and file changes,
/// the activity records and (with the first chunk) a checkpoint, as ONE
/// statement ([`PgBatch`]): one round trip and one executor run for what
/// took one per table. Returns the typed rows written.
async fn pg_write_chunk(
    tx: &mut sqlx::PgConnection,
    i: usize,
    rows: &PgRows<'_>,
    activity: &mut PgActivityUpsert<'_>,
    run_id: Option<&str>,
) -> Result<u64, StorageError> {
    let mut b = PgBatch::new();
    let mut parts = Vec::new();
    if let Some(users) = rows.users.chunks(PG_CHUNK).nth(i) {
        parts.push(
            pg_unnest_part!(b, users, USERS_HEAD, USERS_TAIL, "upserting github users", [
                "bigint" => |u| u.user.id,
                "text" => |u| u.user.login.as_str(),
                "text" => |u| u.user.user_type.as_deref(),
                "text" => |u| u.user.name.as_deref(),
                "text" => |u| u.user.email.as_deref(),
                "text" => |u| u.user.html_url.as_deref(),
                "timestamptz" => |u| t(u.details_fetched_at),
            ]),
        );
    }
    if let Some(commits) = rows.commits.chunks(PG_CHUNK).nth(i) {
        parts.push(
            pg_unnest_part!(b, commits, COMMITS_HEAD, COMMITS_TAIL, "upserting github commits", [
                "bigint" => |c| c.0,
                "text" => |c| c.1.sha.as_str(),
                "bigint" => |c| c.1.author.as_ref().map(|u| u.id),
                "bigint" => |c| c.1.committer.as_ref().map(|u| u.id),
                "text" => |c| c.1.commit.author.as_ref().and_then(|p| p.name.as_deref()),
                "text" => |c| c.1.commit.author.as_ref().and_then(|p| p.email.as_deref()),
                "timestamptz" => |c| t(c.1.commit.author.as_ref().and_then(|p| p.date)),
                "text" => |c| c.1.commit.committer.as_ref().and_then(|p| p.name.as_deref()),
                "text" => |c| c.1.commit.committer.as_ref().and_then(|p| p.email.as_deref()),
                "timestamptz" => |c| t(c.1.commit.committer.as_ref().and_then(|p| p.date)),
                "text" => |c| c.1.commit.message.as_str(),
                "text" => |c| c.1.html_url.as_deref(),
                "bigint" => |c| c.1.stats.as_ref().map(|s| s.additions),
                "bigint" => |c| c.1.stats.as_ref().map(|s| s.deletions),
                "boolean" => |c| c.1.files.is_some(),
            ]),
        );
    }
    if let Some(files) = rows.files.chunks(PG_CHUNK).nth(i) {
        parts.push(
            pg_unnest_part!(b, files, FILES_HEAD, FILES_TAIL, "upserting github files", [
                "bigint" => |f| f.0,
                "text" => |f| f.1,
            ]),
        );
    }
    if let Some(changes) = rows.changes.chunks(PG_CHUNK).nth(i) {
        parts.push(pg_unnest_part!(b, changes, CHANGES_HEAD, CHANGES_TAIL, "upserting github file changes", [
            "bigint" => |c| c.0,
            "text" => |c| c.1,
            "text" => |c| c.2.filename.as_str(),
            "text" => |c| c.2.status.as_str(),
            "bigint" => |c| c.2.additions,
            "bigint" => |c| c.2.deletions,
            "text" => |c| c.2.previous_filename.as_deref(),
        ]));
    }
    let act = activity.push_chunk(&mut b, i, run_id)?;
    let results = b.execute(tx).await?;
    if let Some(act) = act {
        activity.record(&results, act);
    }
    Ok(parts.iter().map(|p| results.count(*p)).sum())
}

/// The rows [`pg_write_chunk`] writes, deduplicated.
struct PgRows<'a> {
    users: &'a [&'a UserRow],
    commits: &'a [&'a (i64, Commit)],
    files: &'a [&'a (i64, &'a str)],
    changes: &'a [&'a (i64, &'a str, &'a crate::model::CommitFile)],
}

impl PgRows<'_> {
    /// Statements needed for the largest of the tables.
    fn chunks(&self) -> usize {
        [
            self.users.len(),
            self.commits.len(),
            self.files.len(),
            self.changes.len(),
        ]
        .into_iter()
        .map(|n| n.div_ceil(PG_CHUNK))
        .max()
        .unwrap_or(0)
    }
}

/// The typed tables, in dependency order.
pub const TABLES: &[&str] = &[
    "github_repos",
    "github_users",
    "github_issues",
    "github_pulls",
    "github_comments",
    "github_reviews",
    "github_commits",
    "github_files",
    "github_file_changes",
    "github_releases",
];

/// Identity-hub profiles of a batch: every account (`github`, user id),
/// with the author addresses its commits carry.
fn profiles(users: &[&UserRow], commits: &[&(i64, Commit)]) -> Vec<bdc_identity::ProfileInput> {
    use bdc_identity::ProfileInput;
    let account = |u: &User| {
        ProfileInput::new("github", u.id.to_string())
            .login(Some(u.login.as_str()))
            .acts_as(crate::records::SOURCE_SYSTEM, Some(u.login.as_str()))
    };
    let mut out: Vec<ProfileInput> = users
        .iter()
        .map(|u| {
            account(&u.user)
                .name(u.user.name.as_deref())
                .email(u.user.email.as_deref())
        })
        .collect();
    for (_, c) in commits {
        if let Some(u) = &c.author {
            let email = c.commit.author.as_ref().and_then(|p| p.email.as_deref());
            out.push(account(u).email(email));
        }
    }
    out
}
