//! The SQL store of greenness tracking (SQLite and PostgreSQL): queues,
//! requests (optimistic lock on `version`, dedup on `(queue, head_uri)`),
//! per-queue counters, append-only greenness records, and the durable
//! stage-message queue with its dead-letter table.
//!
//! Reads use `on_pool!`; every write runs in `storage.begin()` + `on_tx!`
//! so the audit actor travels with it. Claims take a lease with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL (many workers) and a plain
//! `UPDATE … RETURNING` on SQLite (one writer at a time).

use std::collections::BTreeMap;

use async_trait::async_trait;
use bdc_storage::{MigrationFile, QueryContext, SchemaPart, Storage, StorageError, on_pool, on_tx};
use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::model::{
    Evidence, GreenPointer, GreennessRecord, IngestOutcome, Message, Outcome, Queue, Request,
    RequestData, RequestState, Scope, Stage, Transition, request_id,
};
use crate::traits::{Applied, Counter, Pending, PipelineStore, StoreError};

/// The `greenness` schema part (register it in `bdc`'s `schema::parts()`).
pub const SCHEMA: SchemaPart = SchemaPart {
    name: "greenness",
    migrations: &[MigrationFile {
        version: 1,
        description: "greenness",
        sqlite: include_str!("../migrations/sqlite/0001_greenness.sql"),
        postgres: include_str!("../migrations/postgres/0001_greenness.sql"),
    }],
};

/// The SQL store.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pub storage: Storage,
    /// When set (`BDC_GREENNESS_DATABASE_URL=mysql://…`), every method
    /// runs on this MySQL/MariaDB store instead of `storage`.
    pub mysql: Option<mysql::MySqlStore>,
}

pub(crate) fn corrupt(what: &'static str, detail: String) -> StoreError {
    StoreError::Corrupt { what, detail }
}

pub(crate) fn ts(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

pub(crate) const REQUEST_COLUMNS: &str =
    "id, queue, seq, head_uri, state, version, data, created_at, updated_at";
pub(crate) const RECORD_COLUMNS: &str =
    "id, queue, request_id, seq, commit_uri, scope, degree, outcome, evidence, recorded_at";

macro_rules! request_from_row {
    ($row:expr) => {{
        let row = $row;
        let state: String = row.try_get("state").ctx("decoding a request")?;
        let data: String = row.try_get("data").ctx("decoding a request")?;
        let id: String = row.try_get("id").ctx("decoding a request")?;
        Request {
            state: RequestState::parse(&state)
                .ok_or_else(|| corrupt("request", format!("{id}: unknown state {state:?}")))?,
            data: serde_json::from_str::<RequestData>(&data)
                .map_err(|e| corrupt("request", format!("{id}: data: {e}")))?,
            queue: row.try_get("queue").ctx("decoding a request")?,
            seq: row.try_get("seq").ctx("decoding a request")?,
            commit_uri: row.try_get("head_uri").ctx("decoding a request")?,
            version: row.try_get("version").ctx("decoding a request")?,
            created_at: row.try_get("created_at").ctx("decoding a request")?,
            updated_at: row.try_get("updated_at").ctx("decoding a request")?,
            id,
        }
    }};
}

macro_rules! record_from_row {
    ($row:expr) => {{
        let row = $row;
        let id: i64 = row.try_get("id").ctx("decoding a record")?;
        let scope: String = row.try_get("scope").ctx("decoding a record")?;
        let outcome: String = row.try_get("outcome").ctx("decoding a record")?;
        let evidence: String = row.try_get("evidence").ctx("decoding a record")?;
        GreennessRecord {
            id,
            queue: row.try_get("queue").ctx("decoding a record")?,
            request_id: row.try_get("request_id").ctx("decoding a record")?,
            seq: row.try_get("seq").ctx("decoding a record")?,
            commit_uri: row.try_get("commit_uri").ctx("decoding a record")?,
            scope: Scope::from_key(&scope)
                .ok_or_else(|| corrupt("record", format!("{id}: scope {scope:?}")))?,
            degree: row.try_get("degree").ctx("decoding a record")?,
            outcome: Outcome::parse(&outcome)
                .ok_or_else(|| corrupt("record", format!("{id}: outcome {outcome:?}")))?,
            evidence: serde_json::from_str::<Evidence>(&evidence)
                .map_err(|e| corrupt("record", format!("{id}: evidence: {e}")))?,
            recorded_at: row.try_get("recorded_at").ctx("decoding a record")?,
        }
    }};
}

macro_rules! message_from_row {
    ($row:expr) => {{
        let row = $row;
        let id: i64 = row.try_get("id").ctx("decoding a message")?;
        let stage: String = row.try_get("stage").ctx("decoding a message")?;
        Message {
            id,
            queue: row.try_get("queue").ctx("decoding a message")?,
            request_id: row.try_get("request_id").ctx("decoding a message")?,
            stage: Stage::parse(&stage)
                .ok_or_else(|| corrupt("message", format!("{id}: stage {stage:?}")))?,
            payload: row.try_get("payload").ctx("decoding a message")?,
            attempts: row.try_get("attempts").ctx("decoding a message")?,
        }
    }};
}

/// Apply a transition inside an open transaction (`$t`: the concrete
/// transaction). Evaluates to `Result<Applied, StoreError>`.
macro_rules! apply_in_tx {
    ($t:ident, $msg:expr, $transition:expr, $now_us:expr, $forced:expr) => {{
        let msg: &Message = $msg;
        let transition: &Transition = $transition;
        let now = ts($now_us);
        let mut conflict = false;
        if let Some(u) = &transition.request {
            let data = serde_json::to_string(&u.data)
                .map_err(|e| corrupt("request", format!("{}: {e}", u.id)))?;
            let done = if $forced {
                sqlx::query(
                    "UPDATE greenness_requests SET state = $1, data = $2, version = version + 1, \
                     updated_at = $3 WHERE id = $4",
                )
                .bind(u.state.as_str())
                .bind(&data)
                .bind(now)
                .bind(&u.id)
                .execute(&mut **$t)
                .await
            } else {
                sqlx::query(
                    "UPDATE greenness_requests SET state = $1, data = $2, version = version + 1, \
                     updated_at = $3 WHERE id = $4 AND version = $5",
                )
                .bind(u.state.as_str())
                .bind(&data)
                .bind(now)
                .bind(&u.id)
                .bind(u.expected_version)
                .execute(&mut **$t)
                .await
            }
            .ctx("updating a greenness request")?;
            conflict = done.rows_affected() != 1;
        }
        if conflict {
            Ok::<Applied, StoreError>(Applied::Conflict)
        } else {
            for r in &transition.records {
                let evidence = serde_json::to_string(&r.evidence)
                    .map_err(|e| corrupt("record", format!("{}: {e}", r.request_id)))?;
                let failing = serde_json::to_string(&r.evidence.failing_targets)
                    .map_err(|e| corrupt("record", format!("{}: {e}", r.request_id)))?;
                sqlx::query(
                    "INSERT INTO greenness_records (queue, request_id, seq, commit_uri, scope, degree, \
                     outcome, build_id, failing_targets, log_location, evidence, recorded_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(&msg.queue)
                .bind(&r.request_id)
                .bind(r.seq)
                .bind(&r.commit_uri)
                .bind(r.scope.key())
                .bind(r.degree.clamp(0.0, 1.0))
                .bind(r.outcome.as_str())
                .bind(r.evidence.build_id.as_deref())
                .bind(&failing)
                .bind(r.evidence.log_location.as_deref())
                .bind(&evidence)
                .bind(now)
                .execute(&mut **$t)
                .await
                .ctx("appending a greenness record")?;
            }
            for (scope, ptr) in &transition.last_green {
                match scope {
                    Scope::Repo => sqlx::query(
                        "UPDATE greenness_queues SET last_green_uri = $1, last_green_seq = $2, \
                         updated_at = $3 WHERE name = $4 AND (last_green_seq IS NULL OR last_green_seq < $2)",
                    )
                    .bind(&ptr.commit_uri)
                    .bind(ptr.seq)
                    .bind(now)
                    .bind(&msg.queue)
                    .execute(&mut **$t)
                    .await,
                    Scope::Project(p) => sqlx::query(
                        "INSERT INTO greenness_project_green (queue, project, last_green_uri, last_green_seq) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (queue, project) DO UPDATE SET \
                         last_green_uri = excluded.last_green_uri, last_green_seq = excluded.last_green_seq \
                         WHERE greenness_project_green.last_green_seq < excluded.last_green_seq",
                    )
                    .bind(&msg.queue)
                    .bind(p)
                    .bind(&ptr.commit_uri)
                    .bind(ptr.seq)
                    .execute(&mut **$t)
                    .await,
                }
                .ctx("moving last green")?;
            }
            for m in &transition.enqueue {
                sqlx::query(
                    "INSERT INTO greenness_messages (queue, request_id, stage, payload, available_us, created_us) \
                     VALUES ($1, $2, $3, $4, $5, $5)",
                )
                .bind(&msg.queue)
                .bind(&msg.request_id)
                .bind(m.stage.as_str())
                .bind(m.payload.as_deref())
                .bind($now_us)
                .execute(&mut **$t)
                .await
                .ctx("enqueueing a stage message")?;
            }
            Ok(Applied::Ok)
        }
    }};
}

/// The MySQL/MariaDB implementation (uses the row macros above).
pub mod mysql;

impl SqlStore {
    pub fn new(storage: Storage) -> SqlStore {
        SqlStore {
            storage,
            mysql: None,
        }
    }

    /// The same store writing as `actor` (the audit trail's actor of the
    /// main database; the MySQL store, when set, is shared).
    pub fn with_actor(&self, actor: &bdc_core::Actor) -> SqlStore {
        SqlStore {
            storage: self.storage.with_actor(actor),
            mysql: self.mysql.clone(),
        }
    }

    /// A store whose greenness tables live in MySQL/MariaDB (`storage`
    /// stays the main database of the rest of bdc).
    pub fn with_mysql(storage: Storage, mysql: mysql::MySqlStore) -> SqlStore {
        SqlStore {
            storage,
            mysql: Some(mysql),
        }
    }

    /// Recent requests of a queue, newest first.
    pub async fn requests(&self, queue: &str, limit: i64) -> Result<Vec<Request>, StoreError> {
        if let Some(m) = &self.mysql {
            return m.requests(queue, limit).await;
        }
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM greenness_requests WHERE queue = $1 ORDER BY seq DESC LIMIT $2"
        );
        let rows = on_pool!(self.storage, p => {
            let mut out = Vec::new();
            for row in sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(queue).bind(limit).fetch_all(p).await.ctx("listing greenness requests")? {
                out.push(request_from_row!(row));
            }
            out
        });
        Ok(rows)
    }

    /// Records of a queue, newest first (the history).
    pub async fn history(
        &self,
        queue: &str,
        scope: Option<&Scope>,
        limit: i64,
    ) -> Result<Vec<GreennessRecord>, StoreError> {
        if let Some(m) = &self.mysql {
            return m.history(queue, scope, limit).await;
        }
        let scope = scope.map(Scope::key);
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM greenness_records WHERE queue = $1 AND ($2 IS NULL OR scope = $2) \
             ORDER BY id DESC LIMIT $3"
        );
        Ok(on_pool!(self.storage, p => {
            let mut out = Vec::new();
            for row in sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(queue).bind(scope.clone()).bind(limit).fetch_all(p).await.ctx("listing greenness records")? {
                out.push(record_from_row!(row));
            }
            out
        }))
    }

    /// Records of a queue with an id above `after_id`, oldest first (a
    /// watcher's next batch).
    pub async fn records_after(
        &self,
        queue: &str,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<GreennessRecord>, StoreError> {
        if let Some(m) = &self.mysql {
            return m.records_after(queue, after_id, limit).await;
        }
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM greenness_records WHERE queue = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        Ok(on_pool!(self.storage, p => {
            let mut out = Vec::new();
            for row in sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(queue).bind(after_id).bind(limit).fetch_all(p).await.ctx("listing new greenness records")? {
                out.push(record_from_row!(row));
            }
            out
        }))
    }

    /// The record of `scope` just before record `before_id` (None: the
    /// scope was never recorded before).
    pub async fn previous_scope_record(
        &self,
        queue: &str,
        scope: &Scope,
        before_id: i64,
    ) -> Result<Option<GreennessRecord>, StoreError> {
        if let Some(m) = &self.mysql {
            return m.previous_scope_record(queue, scope, before_id).await;
        }
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM greenness_records WHERE queue = $1 AND scope = $2 AND id < $3 ORDER BY id DESC LIMIT 1"
        );
        let scope = scope.key();
        Ok(on_pool!(self.storage, p => {
            match sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(queue).bind(&scope).bind(before_id).fetch_optional(p).await.ctx("reading a previous greenness record")? {
                Some(row) => Some(record_from_row!(row)),
                None => None,
            }
        }))
    }

    /// Whether the queue row exists.
    pub async fn queue_exists(&self, queue: &str) -> Result<bool, StoreError> {
        if let Some(m) = &self.mysql {
            return m.queue_exists(queue).await;
        }
        let n = on_pool!(self.storage, p => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM greenness_queues WHERE name = $1")
            .bind(queue).fetch_one(p).await.ctx("checking a greenness queue")?);
        Ok(n > 0)
    }

    /// The highest record id of a queue (0 when none).
    pub async fn last_record_id(&self, queue: &str) -> Result<i64, StoreError> {
        if let Some(m) = &self.mysql {
            return m.last_record_id(queue).await;
        }
        Ok(
            on_pool!(self.storage, p => sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MAX(id) FROM greenness_records WHERE queue = $1")
            .bind(queue).fetch_one(p).await.ctx("reading the last greenness record id")?)
            .unwrap_or(0),
        )
    }

    /// Every record of one commit, oldest first.
    pub async fn commit_records(
        &self,
        queue: &str,
        commit_uri: &str,
    ) -> Result<Vec<GreennessRecord>, StoreError> {
        if let Some(m) = &self.mysql {
            return m.commit_records(queue, commit_uri).await;
        }
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM greenness_records WHERE queue = $1 AND commit_uri = $2 ORDER BY id"
        );
        Ok(on_pool!(self.storage, p => {
            let mut out = Vec::new();
            for row in sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(queue).bind(commit_uri).fetch_all(p).await.ctx("listing commit records")? {
                out.push(record_from_row!(row));
            }
            out
        }))
    }

    /// The request of a commit given as a URI or a (full or abbreviated,
    /// ≥ 7 hex digits) sha.
    pub async fn find_request(
        &self,
        queue: &str,
        commit: &str,
    ) -> Result<Option<Request>, StoreError> {
        let is_sha = commit.len() >= 7
            && commit.len() <= 64
            && commit.bytes().all(|b| b.is_ascii_hexdigit());
        let sha = commit.to_ascii_lowercase();
        let pattern = if is_sha {
            format!("%/{sha}%")
        } else {
            String::new()
        };
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM greenness_requests WHERE queue = $1 AND (head_uri = $2 OR ($3 <> '' AND head_uri LIKE $3)) \
             ORDER BY seq DESC LIMIT 200"
        );
        let rows: Vec<Request> = if let Some(m) = &self.mysql {
            m.find_candidates(queue, commit, &pattern).await?
        } else {
            on_pool!(self.storage, p => {
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(queue)
                    .bind(commit)
                    .bind(&pattern)
                    .fetch_all(p)
                    .await
                    .ctx("finding a greenness request")?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(request_from_row!(row));
                }
                out
            })
        };
        // An exact URI wins; a sha must be a prefix of the URI's last
        // segment (the commit), never of the remote, repo or ref name.
        if let Some(exact) = rows.iter().find(|r| r.commit_uri == commit) {
            return Ok(Some(exact.clone()));
        }
        if !is_sha {
            return Ok(None);
        }
        let matching: Vec<&Request> = rows
            .iter()
            .filter(|r| {
                r.commit_uri
                    .rsplit('/')
                    .next()
                    .is_some_and(|last| last.to_ascii_lowercase().starts_with(&sha))
            })
            .collect();
        let mut heads: Vec<&str> = matching.iter().map(|r| r.commit_uri.as_str()).collect();
        heads.sort_unstable();
        heads.dedup();
        if heads.len() > 1 {
            return Err(StoreError::AmbiguousCommit {
                queue: queue.to_owned(),
                commit: commit.to_owned(),
                candidates: heads.join(", "),
            });
        }
        // Newest request of that head (rows are ordered by seq, newest first).
        Ok(matching.first().map(|r| (*r).clone()))
    }

    /// Dead letters: (message id, request id, stage, attempts, error).
    pub async fn dead_letters(
        &self,
        queue: &str,
    ) -> Result<Vec<(i64, String, String, i64, String)>, StoreError> {
        if let Some(m) = &self.mysql {
            return m.dead_letters(queue).await;
        }
        Ok(on_pool!(self.storage, p => {
            let rows = sqlx::query("SELECT message_id, request_id, stage, attempts, error FROM greenness_dead_letters WHERE queue = $1 ORDER BY id")
                .bind(queue).fetch_all(p).await.ctx("listing dead letters")?;
            let mut out = Vec::new();
            for row in rows {
                out.push((
                    row.try_get("message_id").ctx("decoding a dead letter")?,
                    row.try_get("request_id").ctx("decoding a dead letter")?,
                    row.try_get("stage").ctx("decoding a dead letter")?,
                    row.try_get("attempts").ctx("decoding a dead letter")?,
                    row.try_get("error").ctx("decoding a dead letter")?,
                ));
            }
            out
        }))
    }

    /// Queue names known to the database.
    pub async fn queue_names(&self) -> Result<Vec<String>, StoreError> {
        if let Some(m) = &self.mysql {
            return m.queue_names().await;
        }
        Ok(
            on_pool!(self.storage, p => sqlx::query_scalar::<_, String>("SELECT name FROM greenness_queues ORDER BY name")
            .fetch_all(p).await.ctx("listing greenness queues")?),
        )
    }
}

#[async_trait]
impl Counter for SqlStore {
    async fn next(&self, queue: &str) -> Result<i64, StoreError> {
        if let Some(m) = &self.mysql {
            return m.next(queue).await;
        }
        let mut tx = self.storage.begin().await?;
        let v = on_tx!(&mut tx, t => sqlx::query_scalar::<_, i64>(
            "INSERT INTO greenness_counters (queue, value) VALUES ($1, 1) ON CONFLICT (queue) \
             DO UPDATE SET value = greenness_counters.value + 1 RETURNING value")
            .bind(queue).fetch_one(&mut **t).await.ctx("minting a counter")?);
        tx.commit().await?;
        Ok(v)
    }
}

#[async_trait]
impl PipelineStore for SqlStore {
    async fn ensure_queue(&self, name: &str, repo: &str, ref_name: &str) -> Result<(), StoreError> {
        if let Some(m) = &self.mysql {
            return m.ensure_queue(name, repo, ref_name).await;
        }
        let exists = on_pool!(self.storage, p => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM greenness_queues WHERE name = $1 AND repo = $2 AND ref_name = $3")
            .bind(name).bind(repo).bind(ref_name).fetch_one(p).await.ctx("reading a queue")?);
        if exists > 0 {
            return Ok(());
        }
        let mut tx = self.storage.begin().await?;
        on_tx!(&mut tx, t => sqlx::query(
            "INSERT INTO greenness_queues (name, repo, ref_name, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET repo = excluded.repo, ref_name = excluded.ref_name, updated_at = excluded.updated_at")
            .bind(name).bind(repo).bind(ref_name).bind(bdc_storage::now())
            .execute(&mut **t).await.ctx("creating a queue")?.rows_affected());
        tx.commit().await?;
        Ok(())
    }

    async fn queue(&self, name: &str) -> Result<Option<Queue>, StoreError> {
        if let Some(m) = &self.mysql {
            return m.queue(name).await;
        }
        let row = on_pool!(self.storage, p => {
            match sqlx::query("SELECT name, repo, ref_name, last_green_uri, last_green_seq FROM greenness_queues WHERE name = $1")
                .bind(name).fetch_optional(p).await.ctx("reading a queue")? {
                None => None,
                Some(row) => {
                    let uri: Option<String> = row.try_get("last_green_uri").ctx("decoding a queue")?;
                    let seq: Option<i64> = row.try_get("last_green_seq").ctx("decoding a queue")?;
                    Some((
                        row.try_get::<String, _>("repo").ctx("decoding a queue")?,
                        row.try_get::<String, _>("ref_name").ctx("decoding a queue")?,
                        uri.zip(seq).map(|(commit_uri, seq)| GreenPointer { commit_uri, seq }),
                    ))
                }
            }
        });
        let Some((repo, ref_name, last_green)) = row else {
            return Ok(None);
        };
        let projects = on_pool!(self.storage, p => {
            let mut out = BTreeMap::new();
            for row in sqlx::query("SELECT project, last_green_uri, last_green_seq FROM greenness_project_green WHERE queue = $1")
                .bind(name).fetch_all(p).await.ctx("reading project greenness")? {
                out.insert(
                    row.try_get::<String, _>("project").ctx("decoding project greenness")?,
                    GreenPointer {
                        commit_uri: row.try_get("last_green_uri").ctx("decoding project greenness")?,
                        seq: row.try_get("last_green_seq").ctx("decoding project greenness")?,
                    },
                );
            }
            out
        });
        Ok(Some(Queue {
            name: name.to_owned(),
            repo,
            ref_name,
            last_green,
            projects,
        }))
    }

    async fn ingest(
        &self,
        queue: &str,
        head_uri: &str,
        now_us: i64,
    ) -> Result<IngestOutcome, StoreError> {
        if let Some(m) = &self.mysql {
            return m.ingest(queue, head_uri, now_us).await;
        }
        let find = format!(
            "SELECT {REQUEST_COLUMNS} FROM greenness_requests WHERE queue = $1 AND head_uri = $2"
        );
        let now = ts(now_us);
        let mut tx = self.storage.begin().await?;
        let out: Option<Request> = on_tx!(&mut tx, t => {
            let existing = match sqlx::query(sqlx::AssertSqlSafe(find.clone())).bind(queue).bind(head_uri)
                .fetch_optional(&mut **t).await.ctx("deduplicating an ingest")? {
                Some(row) => Some(request_from_row!(row)),
                None => None,
            };
            if existing.is_some() {
                existing
            } else {
                let seq: i64 = sqlx::query_scalar(
                    "INSERT INTO greenness_counters (queue, value) VALUES ($1, 1) ON CONFLICT (queue) \
                     DO UPDATE SET value = greenness_counters.value + 1 RETURNING value")
                    .bind(queue).fetch_one(&mut **t).await.ctx("minting a request counter")?;
                let id = request_id(queue, seq);
                let data = serde_json::to_string(&RequestData::default()).unwrap_or_else(|_| "{}".into());
                let inserted = sqlx::query(
                    "INSERT INTO greenness_requests (id, queue, seq, head_uri, state, version, data, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $7) ON CONFLICT (queue, head_uri) DO NOTHING")
                    .bind(&id).bind(queue).bind(seq).bind(head_uri).bind(RequestState::Accepted.as_str())
                    .bind(&data).bind(now)
                    .execute(&mut **t).await.ctx("inserting a greenness request")?;
                if inserted.rows_affected() == 1 {
                    sqlx::query(
                        "INSERT INTO greenness_messages (queue, request_id, stage, available_us, created_us) VALUES ($1, $2, $3, $4, $4)")
                        .bind(queue).bind(&id).bind(Stage::Process.as_str()).bind(now_us)
                        .execute(&mut **t).await.ctx("enqueueing process")?;
                }
                None
            }
        });
        tx.commit().await?;
        if let Some(request) = out {
            return Ok(IngestOutcome {
                request,
                created: false,
            });
        }
        // Read back (a concurrent ingest of the same head may have won).
        let request = on_pool!(self.storage, p => {
            match sqlx::query(sqlx::AssertSqlSafe(find.clone())).bind(queue).bind(head_uri).fetch_optional(p).await.ctx("reading an ingested request")? {
                Some(row) => Some(request_from_row!(row)),
                None => None,
            }
        })
        .ok_or_else(|| corrupt("request", format!("ingested {head_uri} in {queue} but cannot read it back")))?;
        let created = request.created_at == bdc_storage::normalize_time(now);
        Ok(IngestOutcome { request, created })
    }

    async fn request(&self, id: &str) -> Result<Option<Request>, StoreError> {
        if let Some(m) = &self.mysql {
            return m.request(id).await;
        }
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM greenness_requests WHERE id = $1");
        Ok(on_pool!(self.storage, p => {
            match sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(p).await.ctx("reading a greenness request")? {
                Some(row) => Some(request_from_row!(row)),
                None => None,
            }
        }))
    }

    async fn newer_request_exists(&self, queue: &str, seq: i64) -> Result<bool, StoreError> {
        if let Some(m) = &self.mysql {
            return m.newer_request_exists(queue, seq).await;
        }
        let n = on_pool!(self.storage, p => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM greenness_requests WHERE queue = $1 AND seq > $2")
            .bind(queue).bind(seq).fetch_one(p).await.ctx("checking for newer requests")?);
        Ok(n > 0)
    }

    async fn latest_record(
        &self,
        queue: &str,
        commit_uri: &str,
        scope: &Scope,
    ) -> Result<Option<GreennessRecord>, StoreError> {
        if let Some(m) = &self.mysql {
            return m.latest_record(queue, commit_uri, scope).await;
        }
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM greenness_records WHERE queue = $1 AND commit_uri = $2 AND scope = $3 \
             ORDER BY id DESC LIMIT 1"
        );
        let scope = scope.key();
        Ok(on_pool!(self.storage, p => {
            match sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(queue).bind(commit_uri).bind(&scope).fetch_optional(p).await.ctx("reading a greenness record")? {
                Some(row) => Some(record_from_row!(row)),
                None => None,
            }
        }))
    }

    async fn latest_scope_record(
        &self,
        queue: &str,
        scope: &Scope,
    ) -> Result<Option<GreennessRecord>, StoreError> {
        if let Some(m) = &self.mysql {
            return m.latest_scope_record(queue, scope).await;
        }
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM greenness_records WHERE queue = $1 AND scope = $2 ORDER BY id DESC LIMIT 1"
        );
        let scope = scope.key();
        Ok(on_pool!(self.storage, p => {
            match sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(queue).bind(&scope).fetch_optional(p).await.ctx("reading a greenness record")? {
                Some(row) => Some(record_from_row!(row)),
                None => None,
            }
        }))
    }

    async fn claim(
        &self,
        owner: &str,
        now_us: i64,
        lease_us: i64,
    ) -> Result<Option<Message>, StoreError> {
        if let Some(m) = &self.mysql {
            return m.claim(owner, now_us, lease_us).await;
        }
        let until = now_us.saturating_add(lease_us);
        let mut tx = self.storage.begin().await?;
        let msg = match &mut tx {
            bdc_storage::Tx::Sqlite(t) => {
                match sqlx::query(
                    "UPDATE greenness_messages SET lease_owner = $1, lease_until_us = $2, attempts = attempts + 1 \
                     WHERE id = (SELECT id FROM greenness_messages WHERE available_us <= $3 \
                     AND (lease_until_us IS NULL OR lease_until_us < $3) ORDER BY id LIMIT 1) \
                     RETURNING id, queue, request_id, stage, payload, attempts",
                )
                .bind(owner)
                .bind(until)
                .bind(now_us)
                .fetch_optional(&mut **t)
                .await
                .ctx("claiming a stage message")?
                {
                    Some(row) => Some(message_from_row!(row)),
                    None => None,
                }
            }
            bdc_storage::Tx::Postgres(t) => {
                // A lease needs no durability: if the commit is lost in a
                // crash the message is simply claimable again
                // (at-least-once), so skip the WAL flush wait.
                sqlx::query("SET LOCAL synchronous_commit = off")
                    .execute(&mut **t)
                    .await
                    .ctx("relaxing commit durability of a claim")?;
                match sqlx::query(
                    "UPDATE greenness_messages SET lease_owner = $1, lease_until_us = $2, attempts = attempts + 1 \
                     WHERE id = (SELECT id FROM greenness_messages WHERE available_us <= $3 \
                     AND (lease_until_us IS NULL OR lease_until_us < $3) ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                     RETURNING id, queue, request_id, stage, payload, attempts",
                )
                .bind(owner)
                .bind(until)
                .bind(now_us)
                .fetch_optional(&mut **t)
                .await
                .ctx("claiming a stage message")?
                {
                    Some(row) => Some(message_from_row!(row)),
                    None => None,
                }
            }
        };
        tx.commit().await?;
        Ok(msg)
    }

    async fn renew(&self, msg: &Message, owner: &str, until_us: i64) -> Result<bool, StoreError> {
        if let Some(m) = &self.mysql {
            return m.renew(msg, owner, until_us).await;
        }
        let mut tx = self.storage.begin().await?;
        let n = on_tx!(&mut tx, t => sqlx::query(
            "UPDATE greenness_messages SET lease_until_us = $1 WHERE id = $2 AND lease_owner = $3")
            .bind(until_us).bind(msg.id).bind(owner)
            .execute(&mut **t).await.ctx("renewing a stage lease")?.rows_affected());
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn apply(
        &self,
        msg: &Message,
        owner: &str,
        transition: &Transition,
        now_us: i64,
    ) -> Result<Applied, StoreError> {
        if let Some(m) = &self.mysql {
            return m.apply(msg, owner, transition, now_us).await;
        }
        let mut tx = self.storage.begin().await?;
        let res = on_tx!(&mut tx, t => {
            let acked = sqlx::query("DELETE FROM greenness_messages WHERE id = $1 AND lease_owner = $2")
                .bind(msg.id).bind(owner).execute(&mut **t).await.ctx("acknowledging a stage message")?;
            if acked.rows_affected() != 1 {
                Applied::LeaseLost
            } else {
                apply_in_tx!(t, msg, transition, now_us, false)?
            }
        });
        if res == Applied::Ok {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(res)
    }

    async fn retry(
        &self,
        msg: &Message,
        owner: &str,
        error: &str,
        available_us: i64,
    ) -> Result<(), StoreError> {
        if let Some(m) = &self.mysql {
            return m.retry(msg, owner, error, available_us).await;
        }
        let mut tx = self.storage.begin().await?;
        on_tx!(&mut tx, t => sqlx::query(
            "UPDATE greenness_messages SET lease_owner = NULL, lease_until_us = NULL, available_us = $1, last_error = $2 \
             WHERE id = $3 AND lease_owner = $4")
            .bind(available_us).bind(error).bind(msg.id).bind(owner)
            .execute(&mut **t).await.ctx("releasing a stage message")?.rows_affected());
        tx.commit().await?;
        Ok(())
    }

    async fn dead_letter(
        &self,
        msg: &Message,
        owner: &str,
        error: &str,
        reconcile: &Transition,
        now_us: i64,
    ) -> Result<Applied, StoreError> {
        if let Some(m) = &self.mysql {
            return m.dead_letter(msg, owner, error, reconcile, now_us).await;
        }
        let mut tx = self.storage.begin().await?;
        let res = on_tx!(&mut tx, t => {
            let acked = sqlx::query("DELETE FROM greenness_messages WHERE id = $1 AND lease_owner = $2")
                .bind(msg.id).bind(owner).execute(&mut **t).await.ctx("dead-lettering a stage message")?;
            if acked.rows_affected() != 1 {
                Applied::LeaseLost
            } else {
                sqlx::query(
                    "INSERT INTO greenness_dead_letters (message_id, queue, request_id, stage, payload, attempts, error, dead_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                    .bind(msg.id).bind(&msg.queue).bind(&msg.request_id).bind(msg.stage.as_str())
                    .bind(msg.payload.as_deref()).bind(msg.attempts).bind(error).bind(ts(now_us))
                    .execute(&mut **t).await.ctx("inserting a dead letter")?;
                apply_in_tx!(t, msg, reconcile, now_us, true)?
            }
        });
        if res == Applied::Ok {
            tx.commit().await?;
            metrics::counter!("bdc_greenness_dead_letters_total", "stage" => msg.stage.as_str())
                .increment(1);
        } else {
            tx.rollback().await?;
        }
        Ok(res)
    }

    async fn revalidate(&self, id: &str, now_us: i64) -> Result<bool, StoreError> {
        if let Some(m) = &self.mysql {
            return m.revalidate(id, now_us).await;
        }
        let data = serde_json::to_string(&RequestData {
            revalidation: true,
            ..RequestData::default()
        })
        .map_err(|e| corrupt("request", format!("{id}: {e}")))?;
        let mut tx = self.storage.begin().await?;
        let done = on_tx!(&mut tx, t => {
            let updated = sqlx::query(
                "UPDATE greenness_requests SET state = $1, data = $2, version = version + 1, updated_at = $3 \
                 WHERE id = $4 AND state IN ('done', 'dead_lettered', 'superseded')")
                .bind(RequestState::Accepted.as_str()).bind(&data).bind(ts(now_us)).bind(id)
                .execute(&mut **t).await.ctx("revalidating a request")?;
            if updated.rows_affected() == 1 {
                sqlx::query(
                    "INSERT INTO greenness_messages (queue, request_id, stage, available_us, created_us) \
                     SELECT queue, id, $1, $2, $2 FROM greenness_requests WHERE id = $3")
                    .bind(Stage::Process.as_str()).bind(now_us).bind(id)
                    .execute(&mut **t).await.ctx("enqueueing a revalidation")?;
                true
            } else {
                false
            }
        });
        tx.commit().await?;
        Ok(done)
    }

    async fn pending(&self) -> Result<Pending, StoreError> {
        if let Some(m) = &self.mysql {
            return m.pending().await;
        }
        let (total, next) = on_pool!(self.storage, p => {
            let row = sqlx::query(
                "SELECT COUNT(*) AS total, MIN(CASE WHEN lease_until_us IS NOT NULL AND lease_until_us > available_us \
                 THEN lease_until_us ELSE available_us END) AS next FROM greenness_messages")
                .fetch_one(p).await.ctx("counting pending stage messages")?;
            (
                row.try_get::<i64, _>("total").ctx("counting pending stage messages")?,
                row.try_get::<Option<i64>, _>("next").ctx("counting pending stage messages")?,
            )
        });
        Ok(Pending {
            total,
            next_available_us: next,
        })
    }
}

impl From<StoreError> for StorageError {
    fn from(e: StoreError) -> StorageError {
        match e {
            StoreError::Storage(s) => s,
            other => StorageError::Corrupt {
                context: "greenness",
                detail: other.to_string(),
            },
        }
    }
}
