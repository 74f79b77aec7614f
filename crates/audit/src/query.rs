//! Timeline, drill-down and streaming export. The timeline and the export
//! run the same query with the same filters (newest change first), so an
//! export equals the timeline it was filtered like.

use std::io::Write;

use bdc_storage::{Backend, Storage, on_pool};
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;

use crate::{AuditError, Ctx, Result};

/// Timeline filters (all optional; combined with AND).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineFilter {
    /// Only changes of this table.
    pub table: Option<String>,
    /// Only changes of the row with this primary key (JSON object, e.g.
    /// `{"id": 7}`); needs `table`.
    pub pk: Option<String>,
    /// Actor type (`job`, `cli`, `http`, `system`).
    pub actor_type: Option<String>,
    /// Actor id within the type (collector, user, caller, component).
    pub actor_id: Option<String>,
    /// Semantic action name of the transaction.
    pub action: Option<String>,
    /// Only transactions at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only transactions before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only this audit transaction.
    pub transaction_id: Option<i64>,
    /// Only changes with an id below this (the previous page's `next_cursor`).
    pub cursor: Option<i64>,
    /// At most this many changes (timeline default 100).
    pub limit: Option<u64>,
}

/// One captured change with its transaction (one timeline / export row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRow {
    pub change_id: i64,
    pub transaction_id: i64,
    /// When the transaction started (RFC 3339, UTC).
    pub occurred_at: String,
    pub actor: Option<serde_json::Value>,
    pub actor_type: Option<String>,
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub table_name: String,
    pub pk: serde_json::Value,
    pub op: String,
    pub baseline: bool,
    pub data_after: Option<serde_json::Value>,
    pub changed_fields: Option<serde_json::Value>,
    pub changed_from: Option<serde_json::Value>,
    pub captured_at: String,
}

type RawTuple = (
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

struct RawRow {
    change_id: i64,
    transaction_id: i64,
    occurred_at: String,
    actor: Option<String>,
    actor_type: Option<String>,
    actor_id: Option<String>,
    action: Option<String>,
    table_name: String,
    pk: String,
    op: String,
    baseline: i64,
    data_after: Option<String>,
    changed_fields: Option<String>,
    changed_from: Option<String>,
    captured_at: String,
}

fn json(field: &'static str, s: Option<String>) -> Result<Option<serde_json::Value>> {
    s.map(|s| {
        serde_json::from_str(&s).map_err(|e| AuditError::Corrupt {
            context: field,
            detail: format!("invalid JSON {s:?}: {e}"),
        })
    })
    .transpose()
}

impl From<RawTuple> for RawRow {
    fn from(t: RawTuple) -> RawRow {
        RawRow {
            change_id: t.0,
            transaction_id: t.1,
            occurred_at: t.2,
            actor: t.3,
            actor_type: t.4,
            actor_id: t.5,
            action: t.6,
            table_name: t.7,
            pk: t.8,
            op: t.9,
            baseline: t.10,
            data_after: t.11,
            changed_fields: t.12,
            changed_from: t.13,
            captured_at: t.14,
        }
    }
}

impl TryFrom<RawRow> for ChangeRow {
    type Error = AuditError;
    fn try_from(r: RawRow) -> Result<ChangeRow> {
        Ok(ChangeRow {
            change_id: r.change_id,
            transaction_id: r.transaction_id,
            occurred_at: r.occurred_at,
            actor: json("actor", r.actor)?,
            actor_type: r.actor_type,
            actor_id: r.actor_id,
            action: r.action,
            table_name: r.table_name,
            pk: json("table_pk", Some(r.pk))?.unwrap_or(serde_json::Value::Null),
            op: r.op,
            baseline: r.baseline != 0,
            data_after: json("data_after", r.data_after)?,
            changed_fields: json("changed_fields", r.changed_fields)?,
            changed_from: json("changed_from", r.changed_from)?,
            captured_at: r.captured_at,
        })
    }
}

/// A time as stored by SQLite (`YYYY-MM-DDTHH:MM:SS.sssZ`, sortable as text).
pub fn sqlite_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn pg_time_text(col: &str) -> String {
    format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
}

/// A bind value.
#[derive(Debug, Clone)]
enum Arg {
    Text(String),
    Int(i64),
}

/// Build the query: SQL text with `$N` placeholders and the arguments.
fn build(
    backend: Backend,
    f: &TimelineFilter,
    limit: Option<u64>,
    count: bool,
) -> Result<(String, Vec<Arg>)> {
    let pg = backend == Backend::Postgres;
    let mut args = Vec::new();
    let mut conds: Vec<String> = Vec::new();
    let push = |args: &mut Vec<Arg>, a: Arg| {
        args.push(a);
        format!("${}", args.len())
    };
    if let Some(t) = &f.table {
        let p = push(&mut args, Arg::Text(t.clone()));
        conds.push(format!("c.table_name = {p}"));
    }
    if let Some(pk) = &f.pk {
        let v: serde_json::Value =
            serde_json::from_str(pk).map_err(|e| AuditError::InvalidFilter {
                field: "pk",
                value: pk.clone(),
                reason: format!("not JSON: {e}"),
            })?;
        if !v.is_object() {
            return Err(AuditError::InvalidFilter {
                field: "pk",
                value: pk.clone(),
                reason: "must be a JSON object such as {\"id\": 7}".into(),
            });
        }
        let p = push(&mut args, Arg::Text(v.to_string()));
        if pg {
            conds.push(format!("c.table_pk = {p}::jsonb"));
        } else {
            // Compare as JSON values key by key (the stored text is json_object's).
            conds.push(format!(
                "NOT EXISTS (SELECT 1 FROM json_each({p}) j WHERE j.value IS NOT json_extract(c.table_pk, '$.\"' || j.key || '\"'))
                 AND (SELECT COUNT(*) FROM json_each(c.table_pk)) = (SELECT COUNT(*) FROM json_each({p}))"
            ));
        }
    }
    if let Some(v) = &f.actor_type {
        let p = push(&mut args, Arg::Text(v.clone()));
        conds.push(format!("t.actor_type = {p}"));
    }
    if let Some(v) = &f.actor_id {
        let p = push(&mut args, Arg::Text(v.clone()));
        conds.push(format!("t.actor_id = {p}"));
    }
    if let Some(v) = &f.action {
        let p = push(&mut args, Arg::Text(v.clone()));
        conds.push(format!("t.action = {p}"));
    }
    for (t, op) in [(&f.since, ">="), (&f.until, "<")] {
        if let Some(t) = t {
            if pg {
                let p = push(
                    &mut args,
                    Arg::Text(t.to_rfc3339_opts(SecondsFormat::Micros, true)),
                );
                conds.push(format!("t.occurred_at {op} {p}::timestamptz"));
            } else {
                let p = push(&mut args, Arg::Text(sqlite_time(*t)));
                conds.push(format!("t.occurred_at {op} {p}"));
            }
        }
    }
    if let Some(v) = f.transaction_id {
        let p = push(&mut args, Arg::Int(v));
        conds.push(format!("c.transaction_id = {p}"));
    }
    if let Some(v) = f.cursor {
        let p = push(&mut args, Arg::Int(v));
        conds.push(format!("c.id < {p}"));
    }
    let where_ = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    if count {
        return Ok((
            format!(
                "SELECT COUNT(*) FROM audit_changes c JOIN audit_transactions t ON t.id = c.transaction_id{where_}"
            ),
            args,
        ));
    }
    let cols = if pg {
        format!(
            "c.id AS change_id, c.transaction_id, {} AS occurred_at, t.actor::text AS actor, t.actor_type, t.actor_id,
             t.action, c.table_name, c.table_pk::text AS pk, c.op, CASE WHEN c.is_baseline THEN 1::int8 ELSE 0::int8 END AS baseline,
             c.data_after::text AS data_after, c.changed_fields::text AS changed_fields, c.changed_from::text AS changed_from,
             {} AS captured_at",
            pg_time_text("t.occurred_at"),
            pg_time_text("c.captured_at")
        )
    } else {
        "c.id AS change_id, c.transaction_id, t.occurred_at, t.actor, t.actor_type, t.actor_id,
         t.action, c.table_name, c.table_pk AS pk, c.op, c.is_baseline AS baseline,
         c.data_after, c.changed_fields, c.changed_from, c.captured_at"
            .to_owned()
    };
    let mut sql = format!(
        "SELECT {cols} FROM audit_changes c JOIN audit_transactions t ON t.id = c.transaction_id{where_} ORDER BY c.id DESC"
    );
    if let Some(l) = limit {
        let l = i64::try_from(l).unwrap_or(i64::MAX);
        let p = push(&mut args, Arg::Int(l));
        sql.push_str(&format!(" LIMIT {p}"));
    }
    Ok((sql, args))
}

macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

/// Default page size of the timeline.
pub const DEFAULT_LIMIT: u64 = 100;
/// Largest page of the timeline.
pub const MAX_LIMIT: u64 = 10_000;

/// A page of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    pub items: Vec<ChangeRow>,
    /// Pass as `cursor` for the next (older) page; `None` at the end.
    pub next_cursor: Option<i64>,
}

/// The timeline: changes (with their transactions) matching `filter`,
/// newest first, one page.
pub async fn timeline(storage: &Storage, filter: &TimelineFilter) -> Result<Page> {
    crate::pending::flush_best_effort(storage).await;
    let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let (sql, args) = build(storage.backend(), filter, Some(limit), false)?;
    let raw: Vec<RawTuple> =
        on_pool!(storage, p => bind_all!(sqlx::query_as::<_, RawTuple>(AssertSqlSafe(sql)), &args)
        .fetch_all(p)
        .await)
        .ctx("reading the audit timeline")?;
    let items = raw
        .into_iter()
        .map(|t| ChangeRow::try_from(RawRow::from(t)))
        .collect::<Result<Vec<_>>>()?;
    let next_cursor = if items.len() as u64 == limit {
        items.last().map(|r| r.change_id)
    } else {
        None
    };
    crate::telemetry::sample(storage).await;
    Ok(Page { items, next_cursor })
}

/// How many changes match `filter` (ignoring `limit`).
pub async fn count(storage: &Storage, filter: &TimelineFilter) -> Result<u64> {
    crate::pending::flush_best_effort(storage).await;
    let (sql, args) = build(storage.backend(), filter, None, true)?;
    let n: i64 =
        on_pool!(storage, p => bind_all!(sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql)), &args)
        .fetch_one(p)
        .await)
        .ctx("counting audit changes")?;
    Ok(n.max(0) as u64)
}

/// A transaction and its changes (drill-down).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransactionDetail {
    pub transaction_id: i64,
    pub occurred_at: Option<String>,
    pub actor: Option<serde_json::Value>,
    pub action: Option<String>,
    pub actions: Vec<ActionRow>,
    pub changes: Vec<ChangeRow>,
}

/// A semantic action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionRow {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub reason: Option<String>,
}

/// The changes and actions of one audit transaction (oldest change first);
/// `None` when there is no such transaction.
pub async fn transaction_changes(storage: &Storage, id: i64) -> Result<Option<TransactionDetail>> {
    crate::pending::flush_best_effort(storage).await;
    let head_sql = match storage.backend() {
        Backend::Postgres => format!(
            "SELECT {} , actor::text, action FROM audit_transactions WHERE id = $1",
            pg_time_text("occurred_at")
        ),
        Backend::Sqlite => {
            "SELECT occurred_at, actor, action FROM audit_transactions WHERE id = $1".to_owned()
        }
    };
    let head: Option<(String, Option<String>, Option<String>)> = on_pool!(storage, p => sqlx::query_as::<_, (String, Option<String>, Option<String>)>(AssertSqlSafe(head_sql))
        .bind(id)
        .fetch_optional(p)
        .await)
    .ctx("reading an audit transaction")?;
    let Some((occurred_at, actor, action)) = head else {
        return Ok(None);
    };
    let actions: Vec<(i64, String, String, Option<String>)> =
        on_pool!(storage, p => sqlx::query_as::<_, (i64, String, String, Option<String>)>(
        "SELECT id, name, status, reason FROM audit_actions WHERE transaction_id = $1 ORDER BY id")
        .bind(id)
        .fetch_all(p)
        .await)
        .ctx("reading audit actions")?;
    let actions = actions
        .into_iter()
        .map(|(id, name, status, reason)| ActionRow {
            id,
            name,
            status,
            reason,
        })
        .collect();
    let filter = TimelineFilter {
        transaction_id: Some(id),
        ..TimelineFilter::default()
    };
    let (sql, args) = build(storage.backend(), &filter, None, false)?;
    let raw: Vec<RawTuple> =
        on_pool!(storage, p => bind_all!(sqlx::query_as::<_, RawTuple>(AssertSqlSafe(sql)), &args)
        .fetch_all(p)
        .await)
        .ctx("reading audit changes")?;
    let mut changes = raw
        .into_iter()
        .map(|t| ChangeRow::try_from(RawRow::from(t)))
        .collect::<Result<Vec<_>>>()?;
    changes.reverse();
    Ok(Some(TransactionDetail {
        transaction_id: id,
        occurred_at: Some(occurred_at),
        actor: json("actor", actor)?,
        action,
        actions,
        changes,
    }))
}

/// Export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Ndjson,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Ndjson => "ndjson",
        }
    }
}

/// CSV columns of an export.
pub const CSV_HEADER: &[&str] = &[
    "change_id",
    "transaction_id",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor",
    "action",
    "table_name",
    "pk",
    "op",
    "baseline",
    "data_after",
    "changed_fields",
    "changed_from",
    "captured_at",
];

fn opt_json(v: &Option<serde_json::Value>) -> String {
    v.as_ref().map(|v| v.to_string()).unwrap_or_default()
}

/// Stream the changes matching `filter` (newest first, at most `max_rows`)
/// into `out`, row by row from a database cursor: memory stays flat in the
/// number of rows. `progress` is called with the running row count.
/// Returns the number of rows written.
pub async fn export<W: Write + Send>(
    storage: &Storage,
    filter: &TimelineFilter,
    format: ExportFormat,
    max_rows: Option<u64>,
    out: W,
    mut progress: impl FnMut(u64) + Send,
) -> Result<u64> {
    crate::pending::flush_best_effort(storage).await;
    let (sql, args) = build(storage.backend(), filter, max_rows, false)?;
    let mut csv_out = None;
    let mut nd_out = None;
    match format {
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(CSV_HEADER)
                .map_err(|e| AuditError::Write(e.to_string()))?;
            csv_out = Some(w);
        }
        ExportFormat::Ndjson => nd_out = Some(std::io::BufWriter::new(out)),
    }
    let mut n: u64 = 0;
    let mut write_row = |raw: RawRow| -> Result<()> {
        let r = ChangeRow::try_from(raw)?;
        if let Some(w) = csv_out.as_mut() {
            w.write_record([
                r.change_id.to_string(),
                r.transaction_id.to_string(),
                r.occurred_at.clone(),
                r.actor_type.clone().unwrap_or_default(),
                r.actor_id.clone().unwrap_or_default(),
                opt_json(&r.actor),
                r.action.clone().unwrap_or_default(),
                r.table_name.clone(),
                r.pk.to_string(),
                r.op.clone(),
                r.baseline.to_string(),
                opt_json(&r.data_after),
                opt_json(&r.changed_fields),
                opt_json(&r.changed_from),
                r.captured_at.clone(),
            ])
            .map_err(|e| AuditError::Write(e.to_string()))?;
        }
        if let Some(w) = nd_out.as_mut() {
            serde_json::to_writer(&mut *w, &r).map_err(|e| AuditError::Write(e.to_string()))?;
            w.write_all(b"\n")
                .map_err(|e| AuditError::Write(e.to_string()))?;
        }
        n += 1;
        if n.is_multiple_of(1024) {
            progress(n);
        }
        Ok(())
    };
    on_pool!(storage, p => {
        let mut rows = bind_all!(sqlx::query_as::<_, RawTuple>(AssertSqlSafe(sql)), &args).fetch(p);
        while let Some(raw) = rows.try_next().await.ctx("streaming audit changes")? {
            write_row(RawRow::from(raw))?;
        }
    });
    progress(n);
    if let Some(mut w) = csv_out {
        w.flush().map_err(|e| AuditError::Write(e.to_string()))?;
    }
    if let Some(mut w) = nd_out {
        w.flush().map_err(|e| AuditError::Write(e.to_string()))?;
    }
    metrics::counter!("bdc_audit_exports_total", "format" => format.as_str()).increment(1);
    metrics::counter!("bdc_audit_exported_rows_total", "format" => format.as_str()).increment(n);
    tracing::info!(format = format.as_str(), rows = n, "audit export finished");
    Ok(n)
}

/// One recorded schema state of a covered table (`bdc audit
/// schema-history`): `schema.cover_table` (the coverage snapshot kept in
/// `audit_covered_tables`, no audit transaction) or an action
/// (`schema.alter_table`, `schema.drop_table`) with its audit transaction;
/// the time and the columns after the change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaChange {
    pub transaction_id: Option<i64>,
    pub occurred_at: String,
    pub action: String,
    pub table: String,
    pub columns: serde_json::Value,
    /// The DDL command (`ALTER TABLE`, `DROP TABLE`) when recorded by the
    /// PostgreSQL event trigger.
    pub command: Option<String>,
}

/// The schema changes recorded for covered tables (or one table), oldest
/// first.
pub async fn schema_history(storage: &Storage, table: Option<&str>) -> Result<Vec<SchemaChange>> {
    crate::pending::flush_best_effort(storage).await;
    let sql = match storage.backend() {
        Backend::Postgres => format!(
            "SELECT a.transaction_id, {}, a.name, a.reason
               FROM audit_actions a JOIN audit_transactions t ON t.id = a.transaction_id
              WHERE a.name IN ($1, $2, $3) ORDER BY a.id",
            pg_time_text("t.occurred_at")
        ),
        Backend::Sqlite => "SELECT a.transaction_id, t.occurred_at, a.name, a.reason
               FROM audit_actions a JOIN audit_transactions t ON t.id = a.transaction_id
              WHERE a.name IN ($1, $2, $3) ORDER BY a.id"
            .to_owned(),
    };
    let [a, b, c] = crate::triggers::SCHEMA_ACTIONS;
    let rows: Vec<(i64, String, String, Option<String>)> =
        on_pool!(storage, p => sqlx::query_as::<_, (i64, String, String, Option<String>)>(AssertSqlSafe(sql))
        .bind(a)
        .bind(b)
        .bind(c)
        .fetch_all(p)
        .await)
        .ctx("reading recorded schema changes")?;
    let snapshots: Vec<(String, Option<String>, Option<String>)> =
        on_pool!(storage, p => sqlx::query_as::<_, (String, Option<String>, Option<String>)>(
        "SELECT table_name, columns, columns_at FROM audit_covered_tables
          WHERE columns IS NOT NULL ORDER BY table_name")
        .fetch_all(p)
        .await)
        .ctx("reading covered tables' columns")?;
    let mut out = Vec::new();
    for (name, columns, at) in snapshots {
        if table.is_some_and(|t| t != name) {
            continue;
        }
        let columns = columns
            .as_deref()
            .map(serde_json::from_str::<serde_json::Value>)
            .transpose()
            .map_err(|e| AuditError::Corrupt {
                context: "reading covered tables' columns",
                detail: format!("table {name}: columns are not JSON: {e}"),
            })?
            .unwrap_or(serde_json::Value::Null);
        out.push(SchemaChange {
            transaction_id: None,
            occurred_at: at.unwrap_or_default(),
            action: "schema.cover_table".into(),
            table: name,
            columns,
            command: None,
        });
    }
    for (transaction_id, occurred_at, action, reason) in rows {
        let detail: serde_json::Value = match reason.as_deref().map(serde_json::from_str) {
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                return Err(AuditError::Corrupt {
                    context: "reading recorded schema changes",
                    detail: format!(
                        "action {action} of transaction {transaction_id}: reason is not JSON: {e}"
                    ),
                });
            }
            None => serde_json::Value::Null,
        };
        let name = detail
            .get("table")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_owned();
        if table.is_some_and(|t| t != name) {
            continue;
        }
        out.push(SchemaChange {
            transaction_id: Some(transaction_id),
            occurred_at,
            action,
            table: name,
            columns: detail
                .get("columns")
                .cloned()
                .unwrap_or(serde_json::Value::Null),
            command: detail
                .get("command")
                .and_then(|s| s.as_str())
                .map(str::to_owned),
        });
    }
    Ok(out)
}
