//! Tamper evidence: a hash chain over the audit transactions, signed
//! checkpoints, and exports an auditor can verify offline.
//!
//! * When a flush first sees an audit transaction complete (no capture of
//!   it pending), [`extend`] gives it the next position in the chain
//!   (`chain_seq`), the previous link's hash (`prev_hash`) and its own
//!   `hash`: SHA-256 over the previous hash and the transaction's
//!   canonical content (header: position, id, time, actor, action; its
//!   semantic actions; its changes in capture order), see [`TxHasher`].
//!   The write path is unchanged: hashing happens at flush time.
//! * A purge removes links: its record (`audit_purges`) names the last
//!   link it may have touched (`through_seq`) and that link's hash
//!   (`boundary_hash`); verification resumes there. The record is repeated
//!   in the reason of the purge's own `retention.purge` action, which is
//!   itself a link of the chain.
//! * [`verify`] recomputes every link and reports the first broken one.
//! * [`Checkpoint`]: the head (position + hash) with a timestamp, signed
//!   with Ed25519, to be kept elsewhere; [`verify`] with a checkpoint
//!   proves the trail since then is intact.
//! * [`export_chain`] writes the links as NDJSON; [`verify_export`] checks
//!   such a file without a database.
//!
//! What it proves: nobody changed, removed or inserted audit rows of
//! chained transactions without recomputing every later hash. A database
//! superuser can recompute them; only a checkpoint kept elsewhere fixes the
//! head as of its time.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::time::Instant;

use bdc_storage::{Backend, Pool, Storage};
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::AssertSqlSafe;

use crate::{AuditError, Ctx, Result};

/// The hash before the first link.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Links hashed per database transaction of [`extend`] / read per batch.
const LINKS_PER_BATCH: i64 = 200;

/// The env var holding the Ed25519 signing key of checkpoints (64 hex
/// digits: the 32-byte secret key seed).
pub const SIGNING_KEY_ENV: &str = "BDC_AUDIT_SIGNING_KEY";

/// Canonical JSON: object keys sorted, no whitespace (independent of how
/// the database or `serde_json` orders keys).
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(x) = m.get(*k) {
                    write_canonical(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Incremental hash of one link: previous hash, header, actions, changes
/// (in that order).
pub struct TxHasher(Sha256);

impl TxHasher {
    pub fn new(prev_hash: &str, header: &Value) -> TxHasher {
        let mut h = Sha256::new();
        h.update(b"bdc-audit-chain-v1\n");
        h.update(prev_hash.as_bytes());
        h.update(b"\nH");
        h.update(canonical(header).as_bytes());
        h.update(b"\n");
        TxHasher(h)
    }
    pub fn action(&mut self, a: &Value) {
        self.0.update(b"A");
        self.0.update(canonical(a).as_bytes());
        self.0.update(b"\n");
    }
    pub fn change(&mut self, c: &Value) {
        self.0.update(b"C");
        self.0.update(canonical(c).as_bytes());
        self.0.update(b"\n");
    }
    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// The header of a link.
pub fn header(seq: i64, tx: &TxHead) -> Value {
    json!({
        "seq": seq,
        "transaction_id": tx.id,
        "occurred_at": tx.occurred_at,
        "actor": tx.actor,
        "action": tx.action,
    })
}

/// An audit transaction's own columns.
#[derive(Debug, Clone)]
pub struct TxHead {
    pub id: i64,
    pub occurred_at: String,
    pub actor: Option<Value>,
    pub action: Option<String>,
}

fn parse_json(context: &'static str, s: &str) -> Result<Value> {
    serde_json::from_str(s).map_err(|e| AuditError::Corrupt {
        context,
        detail: format!("invalid JSON {s:?}: {e}"),
    })
}

fn parse_opt(context: &'static str, s: Option<String>) -> Result<Value> {
    match s {
        Some(s) => parse_json(context, &s),
        None => Ok(Value::Null),
    }
}

type HeadRow = (i64, String, Option<String>, Option<String>);
type ActionRowT = (
    i64,
    i64,
    String,
    Option<String>,
    String,
    Option<String>,
    String,
);
type ChangeRowT = (
    i64,
    i64,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

fn change_value(r: ChangeRowT) -> Result<(i64, Value)> {
    Ok((
        r.0,
        json!({
            "id": r.1,
            "table": r.2,
            "pk": parse_json("audit_changes.table_pk", &r.3)?,
            "op": r.4,
            "baseline": r.5 != 0,
            "after": parse_opt("audit_changes.data_after", r.6)?,
            "fields": parse_opt("audit_changes.changed_fields", r.7)?,
            "from": parse_opt("audit_changes.changed_from", r.8)?,
            "captured_at": r.9,
        }),
    ))
}

fn action_value(r: ActionRowT) -> Result<(i64, Value)> {
    Ok((
        r.0,
        json!({
            "id": r.1,
            "name": r.2,
            "actor": parse_opt("audit_actions.actor", r.3)?,
            "status": r.4,
            "reason": r.5,
            "occurred_at": r.6,
        }),
    ))
}

/// Receives the content of links, in order.
pub(crate) trait Visitor {
    fn begin(&mut self, tx: &TxHead, actions: &[Value]) -> Result<()>;
    fn change(&mut self, change: Value) -> Result<()>;
    fn end(&mut self) -> Result<()>;
}

fn pg_time(col: &str) -> String {
    format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
}

struct Sqls {
    heads: String,
    actions: String,
    changes: String,
}

fn sqls(backend: Backend) -> Sqls {
    match backend {
        Backend::Postgres => Sqls {
            heads: format!(
                "SELECT id, {}, actor::text, action FROM audit_transactions WHERE id = ANY($1)",
                pg_time("occurred_at")
            ),
            actions: format!(
                "SELECT transaction_id, id, name, actor::text, status, reason, {}
                   FROM audit_actions WHERE transaction_id = ANY($1) ORDER BY transaction_id, id",
                pg_time("occurred_at")
            ),
            changes: format!(
                "SELECT c.transaction_id, c.id, c.table_name, c.table_pk::text, c.op,
                        CASE WHEN c.is_baseline THEN 1::int8 ELSE 0::int8 END,
                        c.data_after::text, c.changed_fields::text, c.changed_from::text, {}
                   FROM unnest($1::bigint[]) WITH ORDINALITY AS u(id, ord)
                   JOIN audit_changes c ON c.transaction_id = u.id
                  ORDER BY u.ord, c.id",
                pg_time("c.captured_at")
            ),
        },
        Backend::Sqlite => Sqls {
            heads: "SELECT id, occurred_at, actor, action FROM audit_transactions
                     WHERE id IN (SELECT value FROM json_each($1))"
                .into(),
            actions: "SELECT transaction_id, id, name, actor, status, reason, occurred_at
                        FROM audit_actions WHERE transaction_id IN (SELECT value FROM json_each($1))
                       ORDER BY transaction_id, id"
                .into(),
            changes: "SELECT c.transaction_id, c.id, c.table_name, c.table_pk, c.op, c.is_baseline,
                             c.data_after, c.changed_fields, c.changed_from, c.captured_at
                        FROM json_each($1) AS u
                        JOIN audit_changes c ON c.transaction_id = u.value
                       ORDER BY u.key, c.id"
                .into(),
        },
    }
}

/// Feed the links `ids` (in this order, no duplicates) to `v`.
macro_rules! walk_body {
    ($conn:expr, $backend:expr, $ids:expr, $bind:expr, $v:expr) => {{
        let ids: &[i64] = $ids;
        let s = sqls($backend);
        let heads: Vec<HeadRow> = sqlx::query_as::<_, HeadRow>(AssertSqlSafe(s.heads))
            .bind($bind)
            .fetch_all(&mut *$conn)
            .await
            .ctx("reading audit transactions")?;
        let mut heads: HashMap<i64, TxHead> = heads
            .into_iter()
            .map(|(id, occurred_at, actor, action)| {
                Ok((
                    id,
                    TxHead {
                        id,
                        occurred_at,
                        actor: match actor {
                            Some(a) => Some(parse_json("audit_transactions.actor", &a)?),
                            None => None,
                        },
                        action,
                    },
                ))
            })
            .collect::<Result<_>>()?;
        let arows: Vec<ActionRowT> = sqlx::query_as::<_, ActionRowT>(AssertSqlSafe(s.actions))
            .bind($bind)
            .fetch_all(&mut *$conn)
            .await
            .ctx("reading audit actions")?;
        let mut actions: HashMap<i64, Vec<Value>> = HashMap::new();
        for r in arows {
            let (tx, a) = action_value(r)?;
            actions.entry(tx).or_default().push(a);
        }
        let no_actions: Vec<Value> = Vec::new();
        let mut i = 0usize;
        let mut started = false;
        let mut begin = |i: usize, v: &mut dyn Visitor| -> Result<()> {
            let id = ids[i];
            let head = heads.remove(&id).ok_or(AuditError::Corrupt {
                context: "walking the audit chain",
                detail: format!("audit transaction {id} disappeared while it was read"),
            })?;
            v.begin(&head, actions.get(&id).unwrap_or(&no_actions))
        };
        {
            let mut rows = sqlx::query_as::<_, ChangeRowT>(AssertSqlSafe(s.changes))
                .bind($bind)
                .fetch(&mut *$conn);
            while let Some(r) = rows.try_next().await.ctx("reading audit changes")? {
                let (tx, c) = change_value(r)?;
                while i < ids.len() && ids[i] != tx {
                    if !started {
                        begin(i, $v)?;
                    }
                    $v.end()?;
                    started = false;
                    i += 1;
                }
                if i >= ids.len() {
                    return Err(AuditError::Corrupt {
                        context: "walking the audit chain",
                        detail: format!("change of unexpected audit transaction {tx}"),
                    });
                }
                if !started {
                    begin(i, $v)?;
                    started = true;
                }
                $v.change(c)?;
            }
        }
        while i < ids.len() {
            if !started {
                begin(i, $v)?;
            }
            $v.end()?;
            started = false;
            i += 1;
        }
        Ok(())
    }};
}

async fn walk_pg(
    conn: &mut sqlx::PgConnection,
    ids: &[i64],
    v: &mut (dyn Visitor + Send),
) -> Result<()> {
    let bind = ids.to_vec();
    walk_body!(conn, Backend::Postgres, ids, bind.clone(), v)
}

async fn walk_sqlite(
    conn: &mut sqlx::SqliteConnection,
    ids: &[i64],
    v: &mut (dyn Visitor + Send),
) -> Result<()> {
    let bind = serde_json::to_string(ids).map_err(|e| AuditError::Write(e.to_string()))?;
    walk_body!(conn, Backend::Sqlite, ids, bind.clone(), v)
}

/// Computes the hashes of new links.
struct Extender {
    seq: i64,
    prev: String,
    cur: Option<(i64, TxHasher)>,
    out: Vec<(i64, i64, String, String)>,
}

impl Visitor for Extender {
    fn begin(&mut self, tx: &TxHead, actions: &[Value]) -> Result<()> {
        let seq = self.seq + 1;
        let mut h = TxHasher::new(&self.prev, &header(seq, tx));
        for a in actions {
            h.action(a);
        }
        self.cur = Some((tx.id, h));
        Ok(())
    }
    fn change(&mut self, change: Value) -> Result<()> {
        if let Some((_, h)) = self.cur.as_mut() {
            h.change(&change);
        }
        Ok(())
    }
    fn end(&mut self) -> Result<()> {
        if let Some((id, h)) = self.cur.take() {
            let hash = h.finish();
            self.seq += 1;
            self.out.push((
                id,
                self.seq,
                std::mem::replace(&mut self.prev, hash.clone()),
                hash,
            ));
        }
        Ok(())
    }
}

/// Unchained, complete transactions after id `$2`, in id order. One
/// [`extend`] call walks forward from the last id of its previous batch:
/// starting each batch from the beginning scanned every entry the partial
/// index still holds for rows chained since the last VACUUM, once per
/// batch. A transaction that completes behind the walk is chained by the
/// next call.
const UNCHAINED: &str = "SELECT t.id FROM audit_transactions t
  WHERE t.chain_seq IS NULL AND t.id > $2
    AND NOT EXISTS (SELECT 1 FROM audit_pending p WHERE p.transaction_id = t.id)
    AND NOT EXISTS (SELECT 1 FROM audit_pending_failed f WHERE f.transaction_id = t.id)
  ORDER BY t.id LIMIT $1";

/// Chain every complete, not yet chained audit transaction (in id order);
/// returns the number of links added. Called by [`crate::flush`]. A no-op
/// before audit migration 6.
pub async fn extend(storage: &Storage) -> Result<u64> {
    let start = Instant::now();
    let any = bdc_storage::on_pool!(storage, p => sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM (SELECT 1 FROM audit_transactions WHERE chain_seq IS NULL LIMIT 1) s")
        .fetch_one(p)
        .await);
    match any {
        Ok(0) => return Ok(0),
        Ok(_) => {}
        Err(sqlx::Error::Database(e))
            if e.message().contains("no such column")
                || e.code().as_deref() == Some("42703")
                || e.code().as_deref() == Some("42P01")
                || e.message().contains("no such table") =>
        {
            return Ok(0);
        }
        Err(e) => return Err(e).ctx("looking for unchained audit transactions"),
    }
    let mut total = 0u64;
    let mut after = 0i64;
    loop {
        let n = match storage.pool() {
            Pool::Postgres(p) => {
                let mut tx = p.begin().await.ctx("beginning an audit chain extension")?;
                let (seq, prev): (i64, String) = sqlx::query_as(
                    "UPDATE audit_chain_head SET seq = seq WHERE id = 1 RETURNING seq, hash",
                )
                .fetch_one(&mut *tx)
                .await
                .ctx("locking the audit chain head")?;
                let ids: Vec<i64> = sqlx::query_scalar(UNCHAINED)
                    .bind(LINKS_PER_BATCH)
                    .bind(after)
                    .fetch_all(&mut *tx)
                    .await
                    .ctx("listing unchained audit transactions")?;
                let mut ext = Extender {
                    seq,
                    prev,
                    cur: None,
                    out: Vec::new(),
                };
                walk_pg(&mut tx, &ids, &mut ext).await?;
                let (mut a, mut b, mut c, mut d) = (vec![], vec![], vec![], vec![]);
                for (id, seq, prev, hash) in &ext.out {
                    a.push(*id);
                    b.push(*seq);
                    c.push(prev.clone());
                    d.push(hash.clone());
                }
                sqlx::query(
                    "UPDATE audit_transactions AS t SET chain_seq = u.seq, prev_hash = u.prev, hash = u.hash
                       FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[]) AS u(id, seq, prev, hash)
                      WHERE t.id = u.id",
                )
                .bind(&a)
                .bind(&b)
                .bind(&c)
                .bind(&d)
                .execute(&mut *tx)
                .await
                .ctx("recording audit chain links")?;
                sqlx::query("UPDATE audit_chain_head SET seq = $1, hash = $2 WHERE id = 1")
                    .bind(ext.seq)
                    .bind(&ext.prev)
                    .execute(&mut *tx)
                    .await
                    .ctx("moving the audit chain head")?;
                tx.commit().await.ctx("committing audit chain links")?;
                after = ids.last().copied().unwrap_or(after);
                ids.len()
            }
            Pool::Sqlite(p) => {
                let mut tx = p.begin().await.ctx("beginning an audit chain extension")?;
                // A write first: take SQLite's write lock before reading.
                let (seq, prev): (i64, String) = sqlx::query_as(
                    "UPDATE audit_chain_head SET seq = seq WHERE id = 1 RETURNING seq, hash",
                )
                .fetch_one(&mut *tx)
                .await
                .ctx("locking the audit chain head")?;
                let ids: Vec<i64> = sqlx::query_scalar(UNCHAINED)
                    .bind(LINKS_PER_BATCH)
                    .bind(after)
                    .fetch_all(&mut *tx)
                    .await
                    .ctx("listing unchained audit transactions")?;
                let mut ext = Extender {
                    seq,
                    prev,
                    cur: None,
                    out: Vec::new(),
                };
                walk_sqlite(&mut tx, &ids, &mut ext).await?;
                for (id, seq, prev, hash) in &ext.out {
                    sqlx::query(
                        "UPDATE audit_transactions SET chain_seq = $2, prev_hash = $3, hash = $4 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(seq)
                    .bind(prev)
                    .bind(hash)
                    .execute(&mut *tx)
                    .await
                    .ctx("recording audit chain links")?;
                }
                sqlx::query("UPDATE audit_chain_head SET seq = $1, hash = $2 WHERE id = 1")
                    .bind(ext.seq)
                    .bind(&ext.prev)
                    .execute(&mut *tx)
                    .await
                    .ctx("moving the audit chain head")?;
                tx.commit().await.ctx("committing audit chain links")?;
                after = ids.last().copied().unwrap_or(after);
                ids.len()
            }
        };
        total += n as u64;
        if (n as i64) < LINKS_PER_BATCH {
            break;
        }
    }
    if total > 0 {
        metrics::counter!("bdc_audit_chained_transactions_total").increment(total);
        tracing::debug!(
            links = total,
            ms = start.elapsed().as_millis() as u64,
            "audit: chain extended"
        );
    }
    Ok(total)
}

/// The latest purge record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeRecord {
    pub id: i64,
    pub transaction_id: i64,
    pub through_seq: i64,
    pub boundary_hash: String,
}

/// The latest purge record, if any.
pub async fn latest_purge(storage: &Storage) -> Result<Option<PurgeRecord>> {
    let r: Option<(i64, i64, i64, String)> = bdc_storage::on_pool!(storage, p => sqlx::query_as(
        "SELECT id, transaction_id, through_seq, boundary_hash FROM audit_purges ORDER BY id DESC LIMIT 1")
        .fetch_optional(p)
        .await)
    .ctx("reading the latest audit purge")?;
    Ok(r.map(
        |(id, transaction_id, through_seq, boundary_hash)| PurgeRecord {
            id,
            transaction_id,
            through_seq,
            boundary_hash,
        },
    ))
}

/// The chain head: (position, hash).
pub async fn head(storage: &Storage) -> Result<(i64, String)> {
    bdc_storage::on_pool!(storage, p => sqlx::query_as::<_, (i64, String)>(
        "SELECT seq, hash FROM audit_chain_head WHERE id = 1")
        .fetch_one(p)
        .await)
    .ctx("reading the audit chain head")
}

/// The first broken link found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    /// Chain position (or line number of an export).
    pub seq: i64,
    pub transaction_id: Option<i64>,
    pub reason: String,
}

/// Outcome of a verification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    /// First and last position checked (0 when none).
    pub from_seq: i64,
    pub to_seq: i64,
    pub links: u64,
    pub changes: u64,
    pub head_hash: String,
    pub first_break: Option<Break>,
    /// What the verification started from (genesis, purge record, --since, checkpoint).
    pub anchor: String,
    pub seconds: f64,
}

/// Checks links against their stored hashes.
struct Checker {
    expected_prev: Option<String>,
    expected_seq: Option<i64>,
    links: Vec<(i64, i64, Option<String>, Option<String>)>, // id, seq, prev, hash
    idx: usize,
    cur: Option<TxHasher>,
    changes: u64,
    last_hash: Option<String>,
    last_seq: i64,
    first_break: Option<Break>,
}

impl Checker {
    fn broken(&mut self, seq: i64, id: i64, reason: String) {
        if self.first_break.is_none() {
            self.first_break = Some(Break {
                seq,
                transaction_id: Some(id),
                reason,
            });
        }
    }
}

impl Visitor for Checker {
    fn begin(&mut self, tx: &TxHead, actions: &[Value]) -> Result<()> {
        let (_, seq, prev, _) = self.links[self.idx].clone();
        let prev = prev.unwrap_or_default();
        if let Some(e) = self.expected_seq
            && e != seq
        {
            self.broken(
                seq,
                tx.id,
                format!("chain position {seq} follows {}: links are missing", e - 1),
            );
        }
        if let Some(e) = &self.expected_prev
            && *e != prev
        {
            let e = e.clone();
            self.broken(
                seq,
                tx.id,
                format!("prev_hash {prev} does not match the previous link's hash {e}"),
            );
        }
        let mut h = TxHasher::new(&prev, &header(seq, tx));
        for a in actions {
            h.action(a);
        }
        self.cur = Some(h);
        Ok(())
    }
    fn change(&mut self, change: Value) -> Result<()> {
        self.changes += 1;
        if let Some(h) = self.cur.as_mut() {
            h.change(&change);
        }
        Ok(())
    }
    fn end(&mut self) -> Result<()> {
        let (id, seq, _, stored) = self.links[self.idx].clone();
        if let Some(h) = self.cur.take() {
            let hash = h.finish();
            let stored = stored.unwrap_or_default();
            if hash != stored {
                self.broken(
                    seq,
                    id,
                    format!(
                        "content does not match its hash (stored {stored}, recomputed {hash}): the transaction, its actions or its changes were edited, removed or inserted"
                    ),
                );
            }
            self.expected_prev = Some(stored);
            self.last_hash = self.expected_prev.clone();
        }
        self.expected_seq = Some(seq + 1);
        self.last_seq = seq;
        self.idx += 1;
        Ok(())
    }
}

/// Where verification starts.
#[derive(Debug, Clone, Default)]
pub struct VerifyFrom {
    /// Only links of transactions at or after this time (trusting the
    /// first one's `prev_hash`).
    pub since: Option<DateTime<Utc>>,
    /// A checkpoint that must match the chain.
    pub checkpoint: Option<Checkpoint>,
}

/// Recompute the chain (flushing first) and report the first broken link.
pub async fn verify(storage: &Storage, from: &VerifyFrom) -> Result<VerifyReport> {
    let started = Instant::now();
    crate::pending::flush(storage).await?;
    let purge = latest_purge(storage).await?;
    let (mut start_seq, mut expected_prev, mut anchor) = match &purge {
        Some(p) => (
            p.through_seq + 1,
            Some(p.boundary_hash.clone()),
            format!(
                "purge record {} (links up to {} purged)",
                p.id, p.through_seq
            ),
        ),
        None => (1, Some(GENESIS.to_owned()), "genesis".to_owned()),
    };
    let mut pre_break: Option<Break> = None;
    if let Some(t) = from.since {
        let (sql, arg) = match storage.backend() {
            Backend::Postgres => (
                "SELECT min(chain_seq) FROM audit_transactions WHERE occurred_at >= $1::timestamptz",
                t.to_rfc3339_opts(SecondsFormat::Micros, true),
            ),
            Backend::Sqlite => (
                "SELECT min(chain_seq) FROM audit_transactions WHERE occurred_at >= $1",
                crate::query::sqlite_time(t),
            ),
        };
        let s: Option<i64> = bdc_storage::on_pool!(storage, p => sqlx::query_scalar(sql)
            .bind(&arg)
            .fetch_one(p)
            .await)
        .ctx("finding the first link since a time")?;
        if let Some(s) = s
            && s > start_seq
        {
            start_seq = s;
            expected_prev = None;
            anchor = format!("--since {}", t.to_rfc3339_opts(SecondsFormat::Secs, true));
        }
    }
    if let Some(cp) = &from.checkpoint {
        cp.verify_signature()?;
        let stored: Option<Option<String>> =
            bdc_storage::on_pool!(storage, p => sqlx::query_scalar(
            "SELECT hash FROM audit_transactions WHERE chain_seq = $1")
            .bind(cp.seq)
            .fetch_optional(p)
            .await)
            .ctx("reading the checkpointed link")?;
        if cp.seq < start_seq - 1 {
            pre_break = Some(Break {
                seq: cp.seq,
                transaction_id: None,
                reason: format!(
                    "the checkpoint (position {}) predates the last purge (links up to {} removed): it cannot be checked",
                    cp.seq,
                    start_seq - 1
                ),
            });
        } else if cp.seq == 0 {
            // A checkpoint of the empty chain: everything since genesis.
        } else if cp.seq == start_seq - 1 {
            if expected_prev.as_deref() != Some(cp.head_hash.as_str()) {
                pre_break = Some(Break {
                    seq: cp.seq,
                    transaction_id: None,
                    reason: format!(
                        "the checkpoint's hash {} differs from the purge boundary's {}",
                        cp.head_hash,
                        expected_prev.clone().unwrap_or_default()
                    ),
                });
            }
        } else {
            match stored {
                Some(Some(h)) if h == cp.head_hash => {
                    start_seq = cp.seq + 1;
                    expected_prev = Some(h);
                    anchor = format!("checkpoint at position {} ({})", cp.seq, cp.created_at);
                }
                Some(Some(h)) => {
                    pre_break = Some(Break {
                        seq: cp.seq,
                        transaction_id: None,
                        reason: format!(
                            "link {} has hash {h}, the checkpoint says {}: the trail was rewritten since the checkpoint",
                            cp.seq, cp.head_hash
                        ),
                    })
                }
                _ => {
                    pre_break = Some(Break {
                        seq: cp.seq,
                        transaction_id: None,
                        reason: format!(
                            "link {} of the checkpoint is missing from the trail",
                            cp.seq
                        ),
                    })
                }
            }
        }
    }
    let mut checker = Checker {
        expected_prev,
        expected_seq: Some(start_seq),
        links: Vec::new(),
        idx: 0,
        cur: None,
        changes: 0,
        last_hash: None,
        last_seq: start_seq - 1,
        first_break: pre_break,
    };
    let mut next = start_seq;
    let mut links = 0u64;
    loop {
        let batch: Vec<(i64, i64, Option<String>, Option<String>)> =
            bdc_storage::on_pool!(storage, p => sqlx::query_as(
            "SELECT id, chain_seq, prev_hash, hash FROM audit_transactions
              WHERE chain_seq >= $1 ORDER BY chain_seq LIMIT $2")
            .bind(next)
            .bind(LINKS_PER_BATCH)
            .fetch_all(p)
            .await)
            .ctx("reading audit chain links")?;
        if batch.is_empty() {
            break;
        }
        let ids: Vec<i64> = batch.iter().map(|l| l.0).collect();
        next = batch.last().map(|l| l.1 + 1).unwrap_or(next);
        links += batch.len() as u64;
        checker.links = batch;
        checker.idx = 0;
        match storage.pool() {
            Pool::Postgres(p) => {
                let mut c = p.acquire().await.ctx("verifying the audit chain")?;
                walk_pg(&mut c, &ids, &mut checker).await?;
            }
            Pool::Sqlite(p) => {
                let mut c = p.acquire().await.ctx("verifying the audit chain")?;
                walk_sqlite(&mut c, &ids, &mut checker).await?;
            }
        }
        if (ids.len() as i64) < LINKS_PER_BATCH {
            break;
        }
    }
    let (head_seq, head_hash) = head(storage).await?;
    if checker.first_break.is_none() {
        if head_seq != checker.last_seq && !(links == 0 && head_seq < start_seq) {
            checker.first_break = Some(Break {
                seq: checker.last_seq + 1,
                transaction_id: None,
                reason: format!(
                    "the chain head is at position {head_seq}, the last link found is {}: links were removed",
                    checker.last_seq
                ),
            });
        } else if let Some(h) = &checker.last_hash
            && *h != head_hash
        {
            checker.first_break = Some(Break {
                seq: head_seq,
                transaction_id: None,
                reason: format!(
                    "the chain head's hash {head_hash} differs from the last link's {h}"
                ),
            });
        }
    }
    // The purge record must match what its own (chained) action says.
    if checker.first_break.is_none()
        && let Some(p) = &purge
    {
        let reason: Option<Option<String>> = bdc_storage::on_pool!(storage, pl => sqlx::query_scalar(
            "SELECT reason FROM audit_actions WHERE transaction_id = $1 AND name = 'retention.purge' ORDER BY id LIMIT 1")
            .bind(p.transaction_id)
            .fetch_optional(pl)
            .await)
        .ctx("reading the purge action")?;
        let needle = format!(
            "through_seq={} boundary_hash={}",
            p.through_seq, p.boundary_hash
        );
        if !reason.flatten().is_some_and(|r| r.contains(&needle)) {
            checker.first_break = Some(Break {
                seq: p.through_seq,
                transaction_id: Some(p.transaction_id),
                reason: format!(
                    "purge record {} does not match the reason of its retention.purge action",
                    p.id
                ),
            });
        }
    }
    let secs = started.elapsed().as_secs_f64();
    metrics::counter!("bdc_audit_chain_verifications_total").increment(1);
    Ok(VerifyReport {
        ok: checker.first_break.is_none(),
        from_seq: if links > 0 { start_seq } else { 0 },
        to_seq: if links > 0 { checker.last_seq } else { 0 },
        links,
        changes: checker.changes,
        head_hash,
        first_break: checker.first_break,
        anchor,
        seconds: secs,
    })
}

// ---------------------------------------------------------------- checkpoints

/// A signed statement of the chain head at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// `bdc-audit-checkpoint-v1`.
    pub format: String,
    /// Chain position of the head.
    pub seq: i64,
    /// Hash of the head link (64 hex digits).
    pub head_hash: String,
    /// When the checkpoint was made (RFC 3339, UTC).
    pub created_at: String,
    /// Ed25519 public key (64 hex digits).
    pub public_key: String,
    /// Ed25519 signature of [`Checkpoint::message`] (128 hex digits).
    pub signature: String,
}

pub const CHECKPOINT_FORMAT: &str = "bdc-audit-checkpoint-v1";

fn bad_checkpoint(detail: String) -> AuditError {
    AuditError::InvalidFilter {
        field: "checkpoint",
        value: String::new(),
        reason: detail,
    }
}

/// Parse an Ed25519 signing key: 64 hex digits (the 32-byte secret seed).
pub fn signing_key_from_hex(s: &str) -> Result<SigningKey> {
    let bytes = hex::decode(s.trim()).map_err(|e| AuditError::InvalidFilter {
        field: "BDC_AUDIT_SIGNING_KEY",
        value: "(not shown)".into(),
        reason: format!("not hex: {e}; expected 64 hex digits (openssl rand -hex 32)"),
    })?;
    let arr: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| AuditError::InvalidFilter {
            field: "BDC_AUDIT_SIGNING_KEY",
            value: "(not shown)".into(),
            reason: format!(
                "{} bytes, expected 32 (64 hex digits: openssl rand -hex 32)",
                bytes.len()
            ),
        })?;
    Ok(SigningKey::from_bytes(&arr))
}

impl Checkpoint {
    /// The signed bytes.
    pub fn message(seq: i64, head_hash: &str, created_at: &str) -> String {
        format!("{CHECKPOINT_FORMAT}\nseq={seq}\nhead_hash={head_hash}\ncreated_at={created_at}\n")
    }

    /// Sign the head `(seq, hash)` now.
    pub fn sign(key: &SigningKey, seq: i64, head_hash: &str, now: DateTime<Utc>) -> Checkpoint {
        let created_at = now.to_rfc3339_opts(SecondsFormat::Secs, true);
        let sig = key.sign(Self::message(seq, head_hash, &created_at).as_bytes());
        Checkpoint {
            format: CHECKPOINT_FORMAT.into(),
            seq,
            head_hash: head_hash.into(),
            created_at,
            public_key: hex::encode(key.verifying_key().to_bytes()),
            signature: hex::encode(sig.to_bytes()),
        }
    }

    /// Parse a checkpoint file's text (`source` names it in errors).
    pub fn parse(text: &str, source: &str) -> Result<Checkpoint> {
        let cp: Checkpoint = serde_json::from_str(text).map_err(|e| {
            bad_checkpoint(format!(
                "{source}: not a checkpoint (line {}, column {}): {e}",
                e.line(),
                e.column()
            ))
        })?;
        if cp.format != CHECKPOINT_FORMAT {
            return Err(bad_checkpoint(format!(
                "{source}: field format is {:?}, expected {CHECKPOINT_FORMAT:?}",
                cp.format
            )));
        }
        cp.verify_signature()
            .map_err(|e| bad_checkpoint(format!("{source}: {e}")))?;
        Ok(cp)
    }

    /// Check the signature with the checkpoint's own public key.
    pub fn verify_signature(&self) -> Result<()> {
        let pk: [u8; 32] = hex::decode(&self.public_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                bad_checkpoint(format!(
                    "field public_key {:?} is not 64 hex digits",
                    self.public_key
                ))
            })?;
        let sig: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad_checkpoint("field signature is not 128 hex digits".into()))?;
        let vk = VerifyingKey::from_bytes(&pk)
            .map_err(|e| bad_checkpoint(format!("field public_key is not an Ed25519 key: {e}")))?;
        vk.verify(
            Self::message(self.seq, &self.head_hash, &self.created_at).as_bytes(),
            &Signature::from_bytes(&sig),
        )
        .map_err(|_| {
            bad_checkpoint(
                "the signature does not match seq, head_hash and created_at: the file was altered or signed by another key"
                    .into(),
            )
        })
    }
}

/// Flush, then sign the chain head with `key`.
pub async fn checkpoint(storage: &Storage, key: &SigningKey) -> Result<Checkpoint> {
    crate::pending::flush(storage).await?;
    let (seq, hash) = head(storage).await?;
    Ok(Checkpoint::sign(key, seq, &hash, Utc::now()))
}

// ---------------------------------------------------------------- export

/// One line of a chain export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportLink {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
    pub header: Value,
    pub actions: Vec<Value>,
    pub changes: Vec<Value>,
}

struct Exporter<'w, W: Write> {
    out: &'w mut W,
    links: Vec<(i64, i64, Option<String>, Option<String>)>,
    idx: usize,
    cur: Option<ExportLink>,
    written: u64,
}

impl<W: Write> Visitor for Exporter<'_, W> {
    fn begin(&mut self, tx: &TxHead, actions: &[Value]) -> Result<()> {
        let (_, seq, prev, hash) = self.links[self.idx].clone();
        self.cur = Some(ExportLink {
            seq,
            prev_hash: prev.unwrap_or_default(),
            hash: hash.unwrap_or_default(),
            header: header(seq, tx),
            actions: actions.to_vec(),
            changes: Vec::new(),
        });
        Ok(())
    }
    fn change(&mut self, change: Value) -> Result<()> {
        if let Some(l) = self.cur.as_mut() {
            l.changes.push(change);
        }
        Ok(())
    }
    fn end(&mut self) -> Result<()> {
        if let Some(l) = self.cur.take() {
            serde_json::to_writer(&mut *self.out, &l)
                .map_err(|e| AuditError::Write(e.to_string()))?;
            self.out
                .write_all(b"\n")
                .map_err(|e| AuditError::Write(e.to_string()))?;
            self.written += 1;
        }
        self.idx += 1;
        Ok(())
    }
}

/// Write the chain's links (from the verification start, or the first link
/// at or after `since`) as NDJSON, one line per audit transaction with its
/// actions, changes and hashes. Returns the number of links.
pub async fn export_chain<W: Write + Send>(
    storage: &Storage,
    since: Option<DateTime<Utc>>,
    out: W,
) -> Result<u64> {
    crate::pending::flush(storage).await?;
    let mut start = latest_purge(storage)
        .await?
        .map_or(1, |p| p.through_seq + 1);
    if let Some(t) = since {
        let (sql, arg) = match storage.backend() {
            Backend::Postgres => (
                "SELECT min(chain_seq) FROM audit_transactions WHERE occurred_at >= $1::timestamptz",
                t.to_rfc3339_opts(SecondsFormat::Micros, true),
            ),
            Backend::Sqlite => (
                "SELECT min(chain_seq) FROM audit_transactions WHERE occurred_at >= $1",
                crate::query::sqlite_time(t),
            ),
        };
        let s: Option<i64> = bdc_storage::on_pool!(storage, p => sqlx::query_scalar(sql)
            .bind(&arg).fetch_one(p).await)
        .ctx("finding the first link since a time")?;
        start = start.max(s.unwrap_or(i64::MAX));
    }
    let mut out = std::io::BufWriter::new(out);
    let mut ex = Exporter {
        out: &mut out,
        links: Vec::new(),
        idx: 0,
        cur: None,
        written: 0,
    };
    let mut next = start;
    loop {
        let batch: Vec<(i64, i64, Option<String>, Option<String>)> =
            bdc_storage::on_pool!(storage, p => sqlx::query_as(
            "SELECT id, chain_seq, prev_hash, hash FROM audit_transactions
              WHERE chain_seq >= $1 ORDER BY chain_seq LIMIT $2")
            .bind(next)
            .bind(LINKS_PER_BATCH)
            .fetch_all(p)
            .await)
            .ctx("reading audit chain links")?;
        if batch.is_empty() {
            break;
        }
        let ids: Vec<i64> = batch.iter().map(|l| l.0).collect();
        next = batch.last().map(|l| l.1 + 1).unwrap_or(next);
        ex.links = batch;
        ex.idx = 0;
        match storage.pool() {
            Pool::Postgres(p) => {
                let mut c = p.acquire().await.ctx("exporting the audit chain")?;
                walk_pg(&mut c, &ids, &mut ex).await?;
            }
            Pool::Sqlite(p) => {
                let mut c = p.acquire().await.ctx("exporting the audit chain")?;
                walk_sqlite(&mut c, &ids, &mut ex).await?;
            }
        }
        if (ids.len() as i64) < LINKS_PER_BATCH {
            break;
        }
    }
    let n = ex.written;
    out.flush().map_err(|e| AuditError::Write(e.to_string()))?;
    metrics::counter!("bdc_audit_exports_total", "format" => "chain").increment(1);
    Ok(n)
}

/// Verify a chain export offline: every line's hash, the links between
/// consecutive lines, and (optionally) a checkpoint's position and hash.
pub fn verify_export<R: BufRead>(
    input: R,
    checkpoint: Option<&Checkpoint>,
) -> Result<VerifyReport> {
    let started = Instant::now();
    let mut prev: Option<(i64, String)> = None;
    let mut first_break: Option<Break> = None;
    let (mut from, mut to, mut links, mut changes) = (0i64, 0i64, 0u64, 0u64);
    let mut checkpoint_seen = false;
    for (i, line) in input.lines().enumerate() {
        let lineno = i as i64 + 1;
        let line = line.map_err(|e| AuditError::Write(format!("reading line {lineno}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let l: ExportLink = match serde_json::from_str(&line) {
            Ok(l) => l,
            Err(e) => {
                first_break.get_or_insert(Break {
                    seq: lineno,
                    transaction_id: None,
                    reason: format!("line {lineno} is not a chain link: {e}"),
                });
                break;
            }
        };
        let tx_id = l.header.get("transaction_id").and_then(Value::as_i64);
        let mut h = TxHasher::new(&l.prev_hash, &l.header);
        for a in &l.actions {
            h.action(a);
        }
        for c in &l.changes {
            h.change(c);
        }
        changes += l.changes.len() as u64;
        let hash = h.finish();
        let mut fail = |reason: String| {
            first_break.get_or_insert(Break {
                seq: l.seq,
                transaction_id: tx_id,
                reason: format!("line {lineno}: {reason}"),
            });
        };
        if l.header.get("seq").and_then(Value::as_i64) != Some(l.seq) {
            fail("the header's seq differs from the line's".into());
        }
        if hash != l.hash {
            fail(format!(
                "content does not match its hash (stored {}, recomputed {hash})",
                l.hash
            ));
        }
        if let Some((ps, ph)) = &prev {
            if l.seq != ps + 1 {
                fail(format!(
                    "position {} follows {ps}: links are missing",
                    l.seq
                ));
            }
            if l.prev_hash != *ph {
                fail(format!(
                    "prev_hash {} does not match the previous line's hash {ph}",
                    l.prev_hash
                ));
            }
        } else {
            from = l.seq;
        }
        if let Some(cp) = checkpoint {
            if cp.seq == l.seq {
                checkpoint_seen = true;
                if cp.head_hash != l.hash {
                    fail(format!(
                        "the checkpoint says hash {} for position {}",
                        cp.head_hash, cp.seq
                    ));
                }
            } else if cp.seq + 1 == l.seq && prev.is_none() {
                checkpoint_seen = true;
                if cp.head_hash != l.prev_hash {
                    fail(format!(
                        "the checkpoint says hash {} for position {}",
                        cp.head_hash, cp.seq
                    ));
                }
            }
        }
        to = l.seq;
        links += 1;
        prev = Some((l.seq, l.hash));
    }
    if let Some(cp) = checkpoint
        && !checkpoint_seen
        && first_break.is_none()
    {
        first_break = Some(Break {
            seq: cp.seq,
            transaction_id: None,
            reason: format!(
                "the export does not contain position {} of the checkpoint (it covers {from}..{to})",
                cp.seq
            ),
        });
    }
    Ok(VerifyReport {
        ok: first_break.is_none(),
        from_seq: from,
        to_seq: to,
        links,
        changes,
        head_hash: prev.map(|p| p.1).unwrap_or_default(),
        first_break,
        anchor: "the export's first line".into(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sorts_keys() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"d":[1,{"z":2,"y":3}],"c":"x\"y"}}"#)
            .unwrap_or_default();
        assert_eq!(
            canonical(&a),
            r#"{"a":{"c":"x\"y","d":[1,{"y":3,"z":2}]},"b":1}"#
        );
    }

    #[test]
    fn checkpoint_roundtrip_and_tamper() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let cp = Checkpoint::sign(&key, 5, GENESIS, Utc::now());
        let text = serde_json::to_string(&cp).unwrap_or_default();
        assert!(Checkpoint::parse(&text, "f").is_ok());
        let bad = text.replace("\"seq\":5", "\"seq\":6");
        assert!(Checkpoint::parse(&bad, "f").is_err());
        assert!(Checkpoint::parse("{nope", "f").is_err());
    }
}
