//! The MySQL 8 / MariaDB ≥ 10.6 store of greenness tracking: the same
//! tables, optimistic lock and leases as the SQLite/PostgreSQL store, on a
//! `sqlx::MySqlPool` of its own (`BDC_GREENNESS_DATABASE_URL=mysql://…`).
//!
//! Dialect differences: `?` placeholders (a parameter used twice is bound
//! twice), `ON DUPLICATE KEY UPDATE` instead of `ON CONFLICT`, counters
//! through `LAST_INSERT_ID(expr)` instead of `RETURNING`, claims with
//! `SELECT … FOR UPDATE SKIP LOCKED` then `UPDATE` in one transaction,
//! timestamps as `DATETIME(6)` in UTC.

use std::collections::BTreeMap;

use bdc_storage::{QueryContext, StorageError};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{MySql, Row, Transaction};

use super::{RECORD_COLUMNS, REQUEST_COLUMNS, corrupt, ts};
use crate::model::{
    Evidence, GreenPointer, GreennessRecord, IngestOutcome, Message, Outcome, Queue, Request,
    RequestData, RequestState, Scope, Stage, Transition, request_id,
};
use crate::traits::{Applied, Pending, StoreError};

/// The MySQL migrations of the `greenness` part (version, description, SQL).
pub const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "greenness",
    include_str!("../../migrations/mysql/0001_greenness.sql"),
)];

/// Whether `url` names a MySQL/MariaDB database.
pub fn is_mysql_url(url: &str) -> bool {
    url.starts_with("mysql://") || url.starts_with("mariadb://")
}

/// The MySQL store.
#[derive(Debug, Clone)]
pub struct MySqlStore {
    pub pool: MySqlPool,
}

type Tx = Transaction<'static, MySql>;

impl MySqlStore {
    /// Connect to `url` (`mysql://user[:pass]@host[:port]/db`); the session
    /// time zone is UTC.
    pub async fn connect(url: &str) -> Result<MySqlStore, StoreError> {
        let url = url.replacen("mariadb://", "mysql://", 1);
        let opts: MySqlConnectOptions = url.parse().map_err(|e: sqlx::Error| {
            StoreError::Storage(StorageError::Query {
                context: "parsing BDC_GREENNESS_DATABASE_URL (mysql://…)",
                source: e,
            })
        })?;
        let opts = opts.timezone(Some("+00:00".to_owned()));
        let pool = MySqlPoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await
            .ctx("connecting to the greenness MySQL database")?;
        Ok(MySqlStore { pool })
    }

    /// Apply the pending MySQL migrations (DDL is not transactional in
    /// MySQL: every statement is `IF NOT EXISTS`, so a half-applied
    /// migration is simply re-run). Returns the versions applied now.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        let mut applied = Vec::new();
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS greenness_schema_migrations (version BIGINT NOT NULL PRIMARY KEY, \
             description VARCHAR(255) NOT NULL, applied_at DATETIME(6) NOT NULL)",
        )
        .execute(&self.pool)
        .await
        .ctx("creating greenness_schema_migrations")?;
        for (version, description, sql) in MIGRATIONS {
            let done: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM greenness_schema_migrations WHERE version = ?",
            )
            .bind(version)
            .fetch_one(&self.pool)
            .await
            .ctx("reading greenness_schema_migrations")?;
            if done > 0 {
                continue;
            }
            // Comments first (they may hold `;`), then one statement at a time.
            let sql: String = sql
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            for body in sql.split(';') {
                let body = body.trim().to_owned();
                if body.is_empty() {
                    continue;
                }
                sqlx::raw_sql(sqlx::AssertSqlSafe(body))
                    .execute(&self.pool)
                    .await
                    .ctx("applying a greenness MySQL migration")?;
            }
            sqlx::query(
                "INSERT INTO greenness_schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
            )
            .bind(version)
            .bind(description)
            .bind(bdc_storage::now())
            .execute(&self.pool)
            .await
            .ctx("recording a greenness MySQL migration")?;
            applied.push(*version);
        }
        Ok(applied)
    }

    /// The highest applied migration version (0: none).
    pub async fn version(&self) -> Result<i64, StoreError> {
        let exists: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name = 'greenness_schema_migrations'",
        )
        .fetch_one(&self.pool)
        .await
        .ctx("reading greenness_schema_migrations")?;
        if exists == 0 {
            return Ok(0);
        }
        let v: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM greenness_schema_migrations")
                .fetch_one(&self.pool)
                .await
                .ctx("reading greenness_schema_migrations")?;
        Ok(v.unwrap_or(0))
    }

    /// The newest version this binary knows.
    pub fn latest() -> i64 {
        MIGRATIONS.iter().map(|m| m.0).max().unwrap_or(0)
    }

    async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(self
            .pool
            .begin()
            .await
            .ctx("starting a greenness MySQL transaction")?)
    }

    async fn rows_requests(
        &self,
        sql: String,
        binds: &[&str],
        ints: &[i64],
    ) -> Result<Vec<Request>, StoreError> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(*b);
        }
        for i in ints {
            q = q.bind(*i);
        }
        let mut out = Vec::new();
        for row in q
            .fetch_all(&self.pool)
            .await
            .ctx("listing greenness requests")?
        {
            out.push(request_from_row!(row));
        }
        Ok(out)
    }

    async fn rows_records(
        &self,
        sql: String,
        binds: &[&str],
        ints: &[i64],
    ) -> Result<Vec<GreennessRecord>, StoreError> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(*b);
        }
        for i in ints {
            q = q.bind(*i);
        }
        let mut out = Vec::new();
        for row in q
            .fetch_all(&self.pool)
            .await
            .ctx("listing greenness records")?
        {
            out.push(record_from_row!(row));
        }
        Ok(out)
    }

    pub async fn requests(&self, queue: &str, limit: i64) -> Result<Vec<Request>, StoreError> {
        self.rows_requests(
            format!("SELECT {REQUEST_COLUMNS} FROM greenness_requests WHERE queue = ? ORDER BY seq DESC LIMIT ?"),
            &[queue],
            &[limit],
        )
        .await
    }

    pub async fn history(
        &self,
        queue: &str,
        scope: Option<&Scope>,
        limit: i64,
    ) -> Result<Vec<GreennessRecord>, StoreError> {
        match scope {
            Some(s) => {
                self.rows_records(
                    format!("SELECT {RECORD_COLUMNS} FROM greenness_records WHERE queue = ? AND scope = ? ORDER BY id DESC LIMIT ?"),
                    &[queue, &s.key()],
                    &[limit],
                )
                .await
            }
            None => {
                self.rows_records(
                    format!("SELECT {RECORD_COLUMNS} FROM greenness_records WHERE queue = ? ORDER BY id DESC LIMIT ?"),
                    &[queue],
                    &[limit],
                )
                .await
            }
        }
    }

    pub async fn records_after(
        &self,
        queue: &str,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<GreennessRecord>, StoreError> {
        self.rows_records(
            format!("SELECT {RECORD_COLUMNS} FROM greenness_records WHERE queue = ? AND id > ? ORDER BY id LIMIT ?"),
            &[queue],
            &[after_id, limit],
        )
        .await
    }

    pub async fn previous_scope_record(
        &self,
        queue: &str,
        scope: &Scope,
        before_id: i64,
    ) -> Result<Option<GreennessRecord>, StoreError> {
        Ok(self
            .rows_records(
                format!("SELECT {RECORD_COLUMNS} FROM greenness_records WHERE queue = ? AND scope = ? AND id < ? ORDER BY id DESC LIMIT 1"),
                &[queue, &scope.key()],
                &[before_id],
            )
            .await?
            .into_iter()
            .next())
    }

    pub async fn queue_exists(&self, queue: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM greenness_queues WHERE name = ?")
            .bind(queue)
            .fetch_one(&self.pool)
            .await
            .ctx("checking a greenness queue")?;
        Ok(n > 0)
    }

    pub async fn last_record_id(&self, queue: &str) -> Result<i64, StoreError> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT MAX(id) FROM greenness_records WHERE queue = ?")
                .bind(queue)
                .fetch_one(&self.pool)
                .await
                .ctx("reading the last greenness record id")?;
        Ok(v.unwrap_or(0))
    }

    pub async fn commit_records(
        &self,
        queue: &str,
        commit_uri: &str,
    ) -> Result<Vec<GreennessRecord>, StoreError> {
        self.rows_records(
            format!("SELECT {RECORD_COLUMNS} FROM greenness_records WHERE queue = ? AND commit_uri = ? ORDER BY id"),
            &[queue, commit_uri],
            &[],
        )
        .await
    }

    /// Candidate requests of `find_request` (exact URI or LIKE pattern).
    pub async fn find_candidates(
        &self,
        queue: &str,
        commit: &str,
        pattern: &str,
    ) -> Result<Vec<Request>, StoreError> {
        self.rows_requests(
            format!("SELECT {REQUEST_COLUMNS} FROM greenness_requests WHERE queue = ? AND (head_uri = ? OR (? <> '' AND head_uri LIKE ?)) ORDER BY seq DESC LIMIT 200"),
            &[queue, commit, pattern, pattern],
            &[],
        )
        .await
    }

    pub async fn dead_letters(
        &self,
        queue: &str,
    ) -> Result<Vec<(i64, String, String, i64, String)>, StoreError> {
        let rows = sqlx::query("SELECT message_id, request_id, stage, attempts, error FROM greenness_dead_letters WHERE queue = ? ORDER BY id")
            .bind(queue).fetch_all(&self.pool).await.ctx("listing dead letters")?;
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
        Ok(out)
    }

    pub async fn queue_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar::<_, String>("SELECT name FROM greenness_queues ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .ctx("listing greenness queues")?,
        )
    }

    async fn mint(t: &mut Tx, queue: &str) -> Result<i64, StoreError> {
        sqlx::query(
            "INSERT INTO greenness_counters (queue, value) VALUES (?, LAST_INSERT_ID(1)) \
             ON DUPLICATE KEY UPDATE value = LAST_INSERT_ID(value + 1)",
        )
        .bind(queue)
        .execute(&mut **t)
        .await
        .ctx("minting a counter")?;
        let v: i64 = sqlx::query_scalar("SELECT CAST(LAST_INSERT_ID() AS SIGNED)")
            .fetch_one(&mut **t)
            .await
            .ctx("reading a minted counter")?;
        Ok(v)
    }

    pub async fn next(&self, queue: &str) -> Result<i64, StoreError> {
        let mut tx = self.begin().await?;
        let v = Self::mint(&mut tx, queue).await?;
        tx.commit().await.ctx("committing a counter")?;
        Ok(v)
    }

    pub async fn ensure_queue(
        &self,
        name: &str,
        repo: &str,
        ref_name: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO greenness_queues (name, repo, ref_name, updated_at) VALUES (?, ?, ?, ?) \
             ON DUPLICATE KEY UPDATE repo = VALUES(repo), ref_name = VALUES(ref_name), updated_at = VALUES(updated_at)",
        )
        .bind(name)
        .bind(repo)
        .bind(ref_name)
        .bind(bdc_storage::now())
        .execute(&self.pool)
        .await
        .ctx("creating a queue")?;
        Ok(())
    }

    pub async fn queue(&self, name: &str) -> Result<Option<Queue>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT name, repo, ref_name, last_green_uri, last_green_seq FROM greenness_queues WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .ctx("reading a queue")?
        else {
            return Ok(None);
        };
        let uri: Option<String> = row.try_get("last_green_uri").ctx("decoding a queue")?;
        let seq: Option<i64> = row.try_get("last_green_seq").ctx("decoding a queue")?;
        let mut projects = BTreeMap::new();
        for p in sqlx::query(
            "SELECT project, last_green_uri, last_green_seq FROM greenness_project_green WHERE queue = ?",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .ctx("reading project greenness")?
        {
            projects.insert(
                p.try_get::<String, _>("project")
                    .ctx("decoding project greenness")?,
                GreenPointer {
                    commit_uri: p
                        .try_get("last_green_uri")
                        .ctx("decoding project greenness")?,
                    seq: p
                        .try_get("last_green_seq")
                        .ctx("decoding project greenness")?,
                },
            );
        }
        Ok(Some(Queue {
            name: name.to_owned(),
            repo: row.try_get("repo").ctx("decoding a queue")?,
            ref_name: row.try_get("ref_name").ctx("decoding a queue")?,
            last_green: uri
                .zip(seq)
                .map(|(commit_uri, seq)| GreenPointer { commit_uri, seq }),
            projects,
        }))
    }

    pub async fn ingest(
        &self,
        queue: &str,
        head_uri: &str,
        now_us: i64,
    ) -> Result<IngestOutcome, StoreError> {
        let find = format!(
            "SELECT {REQUEST_COLUMNS} FROM greenness_requests WHERE queue = ? AND head_uri = ?"
        );
        let now = ts(now_us);
        let mut tx = self.begin().await?;
        let existing = match sqlx::query(sqlx::AssertSqlSafe(find.clone()))
            .bind(queue)
            .bind(head_uri)
            .fetch_optional(&mut *tx)
            .await
            .ctx("deduplicating an ingest")?
        {
            Some(row) => Some(request_from_row!(row)),
            None => None,
        };
        if existing.is_none() {
            let seq = Self::mint(&mut tx, queue).await?;
            let id = request_id(queue, seq);
            let data =
                serde_json::to_string(&RequestData::default()).unwrap_or_else(|_| "{}".into());
            let inserted = sqlx::query(
                "INSERT INTO greenness_requests (id, queue, seq, head_uri, state, version, data, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?) ON DUPLICATE KEY UPDATE id = id",
            )
            .bind(&id)
            .bind(queue)
            .bind(seq)
            .bind(head_uri)
            .bind(RequestState::Accepted.as_str())
            .bind(&data)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await
            .ctx("inserting a greenness request")?;
            if inserted.rows_affected() == 1 {
                sqlx::query(
                    "INSERT INTO greenness_messages (queue, request_id, stage, available_us, created_us) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(queue)
                .bind(&id)
                .bind(Stage::Process.as_str())
                .bind(now_us)
                .bind(now_us)
                .execute(&mut *tx)
                .await
                .ctx("enqueueing process")?;
            }
        }
        tx.commit().await.ctx("committing an ingest")?;
        if let Some(request) = existing {
            return Ok(IngestOutcome {
                request,
                created: false,
            });
        }
        let request = match sqlx::query(sqlx::AssertSqlSafe(find))
            .bind(queue)
            .bind(head_uri)
            .fetch_optional(&self.pool)
            .await
            .ctx("reading an ingested request")?
        {
            Some(row) => request_from_row!(row),
            None => {
                return Err(corrupt(
                    "request",
                    format!("ingested {head_uri} in {queue} but cannot read it back"),
                ));
            }
        };
        let created = request.created_at == bdc_storage::normalize_time(now);
        Ok(IngestOutcome { request, created })
    }

    pub async fn request(&self, id: &str) -> Result<Option<Request>, StoreError> {
        Ok(self
            .rows_requests(
                format!("SELECT {REQUEST_COLUMNS} FROM greenness_requests WHERE id = ?"),
                &[id],
                &[],
            )
            .await?
            .into_iter()
            .next())
    }

    pub async fn newer_request_exists(&self, queue: &str, seq: i64) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM greenness_requests WHERE queue = ? AND seq > ?",
        )
        .bind(queue)
        .bind(seq)
        .fetch_one(&self.pool)
        .await
        .ctx("checking for newer requests")?;
        Ok(n > 0)
    }

    pub async fn latest_record(
        &self,
        queue: &str,
        commit_uri: &str,
        scope: &Scope,
    ) -> Result<Option<GreennessRecord>, StoreError> {
        Ok(self
            .rows_records(
                format!("SELECT {RECORD_COLUMNS} FROM greenness_records WHERE queue = ? AND commit_uri = ? AND scope = ? ORDER BY id DESC LIMIT 1"),
                &[queue, commit_uri, &scope.key()],
                &[],
            )
            .await?
            .into_iter()
            .next())
    }

    pub async fn latest_scope_record(
        &self,
        queue: &str,
        scope: &Scope,
    ) -> Result<Option<GreennessRecord>, StoreError> {
        Ok(self
            .rows_records(
                format!("SELECT {RECORD_COLUMNS} FROM greenness_records WHERE queue = ? AND scope = ? ORDER BY id DESC LIMIT 1"),
                &[queue, &scope.key()],
                &[],
            )
            .await?
            .into_iter()
            .next())
    }

    /// Claim: `SELECT … FOR UPDATE SKIP LOCKED` picks a due message no
    /// other worker holds, the `UPDATE` takes the lease, in one transaction.
    pub async fn claim(
        &self,
        owner: &str,
        now_us: i64,
        lease_us: i64,
    ) -> Result<Option<Message>, StoreError> {
        let until = now_us.saturating_add(lease_us);
        let mut tx = self.begin().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM greenness_messages WHERE available_us <= ? \
             AND (lease_until_us IS NULL OR lease_until_us < ?) ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .bind(now_us)
        .bind(now_us)
        .fetch_optional(&mut *tx)
        .await
        .ctx("claiming a stage message")?;
        let Some(id) = id else {
            tx.commit().await.ctx("committing a claim")?;
            return Ok(None);
        };
        sqlx::query(
            "UPDATE greenness_messages SET lease_owner = ?, lease_until_us = ?, attempts = attempts + 1 WHERE id = ?",
        )
        .bind(owner)
        .bind(until)
        .bind(id)
        .execute(&mut *tx)
        .await
        .ctx("claiming a stage message")?;
        let row = sqlx::query(
            "SELECT id, queue, request_id, stage, payload, attempts FROM greenness_messages WHERE id = ?",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .ctx("reading a claimed stage message")?;
        let msg = message_from_row!(row);
        tx.commit().await.ctx("committing a claim")?;
        Ok(Some(msg))
    }

    pub async fn renew(
        &self,
        msg: &Message,
        owner: &str,
        until_us: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE greenness_messages SET lease_until_us = ? WHERE id = ? AND lease_owner = ?",
        )
        .bind(until_us)
        .bind(msg.id)
        .bind(owner)
        .execute(&self.pool)
        .await
        .ctx("renewing a stage lease")?
        .rows_affected();
        // MySQL reports changed rows: an unchanged lease is still held.
        if n == 1 {
            return Ok(true);
        }
        let held: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM greenness_messages WHERE id = ? AND lease_owner = ?",
        )
        .bind(msg.id)
        .bind(owner)
        .fetch_one(&self.pool)
        .await
        .ctx("renewing a stage lease")?;
        Ok(held == 1)
    }

    async fn apply_in_tx(
        t: &mut Tx,
        msg: &Message,
        transition: &Transition,
        now_us: i64,
        forced: bool,
    ) -> Result<Applied, StoreError> {
        let now = ts(now_us);
        if let Some(u) = &transition.request {
            let data = serde_json::to_string(&u.data)
                .map_err(|e| corrupt("request", format!("{}: {e}", u.id)))?;
            let q = if forced {
                sqlx::query(
                    "UPDATE greenness_requests SET state = ?, data = ?, version = version + 1, updated_at = ? WHERE id = ?",
                )
                .bind(u.state.as_str())
                .bind(data)
                .bind(now)
                .bind(u.id.clone())
            } else {
                sqlx::query(
                    "UPDATE greenness_requests SET state = ?, data = ?, version = version + 1, updated_at = ? \
                     WHERE id = ? AND version = ?",
                )
                .bind(u.state.as_str())
                .bind(data)
                .bind(now)
                .bind(u.id.clone())
                .bind(u.expected_version)
            };
            // version always changes, so affected rows = matched rows.
            let done = q
                .execute(&mut **t)
                .await
                .ctx("updating a greenness request")?;
            if done.rows_affected() != 1 {
                return Ok(Applied::Conflict);
            }
        }
        for r in &transition.records {
            let evidence = serde_json::to_string(&r.evidence)
                .map_err(|e| corrupt("record", format!("{}: {e}", r.request_id)))?;
            let failing = serde_json::to_string(&r.evidence.failing_targets)
                .map_err(|e| corrupt("record", format!("{}: {e}", r.request_id)))?;
            sqlx::query(
                "INSERT INTO greenness_records (queue, request_id, seq, commit_uri, scope, degree, \
                 outcome, build_id, failing_targets, log_location, evidence, recorded_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            .execute(&mut **t)
            .await
            .ctx("appending a greenness record")?;
        }
        for (scope, ptr) in &transition.last_green {
            match scope {
                Scope::Repo => sqlx::query(
                    "UPDATE greenness_queues SET last_green_uri = ?, last_green_seq = ?, updated_at = ? \
                     WHERE name = ? AND (last_green_seq IS NULL OR last_green_seq < ?)",
                )
                .bind(&ptr.commit_uri)
                .bind(ptr.seq)
                .bind(now)
                .bind(&msg.queue)
                .bind(ptr.seq)
                .execute(&mut **t)
                .await,
                // Assignments run left to right: the URI is chosen against
                // the old sequence, then the sequence moves forward only.
                Scope::Project(p) => sqlx::query(
                    "INSERT INTO greenness_project_green (queue, project, last_green_uri, last_green_seq) \
                     VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE \
                     last_green_uri = IF(last_green_seq < VALUES(last_green_seq), VALUES(last_green_uri), last_green_uri), \
                     last_green_seq = GREATEST(last_green_seq, VALUES(last_green_seq))",
                )
                .bind(&msg.queue)
                .bind(p)
                .bind(&ptr.commit_uri)
                .bind(ptr.seq)
                .execute(&mut **t)
                .await,
            }
            .ctx("moving last green")?;
        }
        for m in &transition.enqueue {
            sqlx::query(
                "INSERT INTO greenness_messages (queue, request_id, stage, payload, available_us, created_us) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&msg.queue)
            .bind(&msg.request_id)
            .bind(m.stage.as_str())
            .bind(m.payload.as_deref())
            .bind(now_us)
            .bind(now_us)
            .execute(&mut **t)
            .await
            .ctx("enqueueing a stage message")?;
        }
        Ok(Applied::Ok)
    }

    async fn finish(tx: Tx, res: Applied) -> Result<Applied, StoreError> {
        if res == Applied::Ok {
            tx.commit().await.ctx("committing a stage transition")?;
        } else {
            tx.rollback().await.ctx("rolling back a stage transition")?;
        }
        Ok(res)
    }

    pub async fn apply(
        &self,
        msg: &Message,
        owner: &str,
        transition: &Transition,
        now_us: i64,
    ) -> Result<Applied, StoreError> {
        let mut tx = self.begin().await?;
        let acked = sqlx::query("DELETE FROM greenness_messages WHERE id = ? AND lease_owner = ?")
            .bind(msg.id)
            .bind(owner)
            .execute(&mut *tx)
            .await
            .ctx("acknowledging a stage message")?;
        let res = if acked.rows_affected() != 1 {
            Applied::LeaseLost
        } else {
            Self::apply_in_tx(&mut tx, msg, transition, now_us, false).await?
        };
        Self::finish(tx, res).await
    }

    pub async fn retry(
        &self,
        msg: &Message,
        owner: &str,
        error: &str,
        available_us: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE greenness_messages SET lease_owner = NULL, lease_until_us = NULL, available_us = ?, last_error = ? \
             WHERE id = ? AND lease_owner = ?",
        )
        .bind(available_us)
        .bind(error)
        .bind(msg.id)
        .bind(owner)
        .execute(&self.pool)
        .await
        .ctx("releasing a stage message")?;
        Ok(())
    }

    pub async fn dead_letter(
        &self,
        msg: &Message,
        owner: &str,
        error: &str,
        reconcile: &Transition,
        now_us: i64,
    ) -> Result<Applied, StoreError> {
        let mut tx = self.begin().await?;
        let acked = sqlx::query("DELETE FROM greenness_messages WHERE id = ? AND lease_owner = ?")
            .bind(msg.id)
            .bind(owner)
            .execute(&mut *tx)
            .await
            .ctx("dead-lettering a stage message")?;
        let res = if acked.rows_affected() != 1 {
            Applied::LeaseLost
        } else {
            sqlx::query(
                "INSERT INTO greenness_dead_letters (message_id, queue, request_id, stage, payload, attempts, error, dead_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(msg.id)
            .bind(&msg.queue)
            .bind(&msg.request_id)
            .bind(msg.stage.as_str())
            .bind(msg.payload.as_deref())
            .bind(msg.attempts)
            .bind(error)
            .bind(ts(now_us))
            .execute(&mut *tx)
            .await
            .ctx("inserting a dead letter")?;
            Self::apply_in_tx(&mut tx, msg, reconcile, now_us, true).await?
        };
        let res = Self::finish(tx, res).await?;
        if res == Applied::Ok {
            metrics::counter!("bdc_greenness_dead_letters_total", "stage" => msg.stage.as_str())
                .increment(1);
        }
        Ok(res)
    }

    pub async fn revalidate(&self, id: &str, now_us: i64) -> Result<bool, StoreError> {
        let data = serde_json::to_string(&RequestData {
            revalidation: true,
            ..RequestData::default()
        })
        .map_err(|e| corrupt("request", format!("{id}: {e}")))?;
        let mut tx = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE greenness_requests SET state = ?, data = ?, version = version + 1, updated_at = ? \
             WHERE id = ? AND state IN ('done', 'dead_lettered', 'superseded')",
        )
        .bind(RequestState::Accepted.as_str())
        .bind(&data)
        .bind(ts(now_us))
        .bind(id)
        .execute(&mut *tx)
        .await
        .ctx("revalidating a request")?;
        let done = updated.rows_affected() == 1;
        if done {
            sqlx::query(
                "INSERT INTO greenness_messages (queue, request_id, stage, available_us, created_us) \
                 SELECT queue, id, ?, ?, ? FROM greenness_requests WHERE id = ?",
            )
            .bind(Stage::Process.as_str())
            .bind(now_us)
            .bind(now_us)
            .bind(id)
            .execute(&mut *tx)
            .await
            .ctx("enqueueing a revalidation")?;
        }
        tx.commit().await.ctx("committing a revalidation")?;
        Ok(done)
    }

    pub async fn pending(&self) -> Result<Pending, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS total, CAST(MIN(CASE WHEN lease_until_us IS NOT NULL AND lease_until_us > available_us \
             THEN lease_until_us ELSE available_us END) AS SIGNED) AS next FROM greenness_messages",
        )
        .fetch_one(&self.pool)
        .await
        .ctx("counting pending stage messages")?;
        Ok(Pending {
            total: row
                .try_get::<i64, _>("total")
                .ctx("counting pending stage messages")?,
            next_available_us: row
                .try_get::<Option<i64>, _>("next")
                .ctx("counting pending stage messages")?,
        })
    }
}
