//! Time travel: a row or a whole table as it was at a given time, and a
//! row's history (every version with the difference to the previous one),
//! reconstructed from the captured changes.
//!
//! Every captured INSERT and UPDATE stores the whole (redacted) new row,
//! so the row at `T` is the last change of that row captured in a
//! transaction that occurred at or before `T`: its `data_after`, or
//! nothing when it was a DELETE. The table's **audit horizon**
//! (`audit_horizons`: when it was first covered, moved forward by each
//! purge to its cutoff) bounds what can be answered: before it, the answer
//! is "before the audit horizon". A purge first compacts each row's last
//! change before the cutoff into a baseline at the cutoff, so answers at
//! or after the horizon stay exact.

use std::io::Write;

use bdc_storage::{Backend, Storage, on_pool};
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::TryStreamExt;
use serde::Serialize;
use serde_json::Value;
use sqlx::AssertSqlSafe;

use crate::query::{ExportFormat, sqlite_time};
use crate::triggers::{self, TableInfo};
use crate::{AuditError, Ctx, Result};

/// What a row was at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowState {
    /// The row existed; `row` holds it.
    Exists,
    /// The row had been deleted.
    Deleted,
    /// The row did not exist yet (its first captured change is a later INSERT).
    NotYet,
    /// The time lies before the audit horizon (before the table was
    /// covered, or history purged): the trail cannot tell.
    BeforeHorizon,
    /// The trail has no change of this row at all.
    NoHistory,
}

/// The answer of [`row_as_of`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowAsOf {
    pub table: String,
    pub pk: Value,
    pub at: String,
    pub state: RowState,
    /// The row (redacted as captured) when `state` is `exists`.
    pub row: Option<Value>,
    /// The change that set this state, if any.
    pub change_id: Option<i64>,
    pub transaction_id: Option<i64>,
    pub changed_at: Option<String>,
    /// The table's audit horizon, if known.
    pub horizon: Option<String>,
    /// A sentence for people.
    pub message: String,
}

fn invalid(field: &'static str, value: &str, reason: impl Into<String>) -> AuditError {
    AuditError::InvalidFilter {
        field,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

fn time_arg(backend: Backend, t: DateTime<Utc>) -> String {
    match backend {
        Backend::Postgres => t.to_rfc3339_opts(SecondsFormat::Micros, true),
        Backend::Sqlite => sqlite_time(t),
    }
}

fn ts(backend: Backend, p: &str) -> String {
    match backend {
        Backend::Postgres => format!("{p}::timestamptz"),
        Backend::Sqlite => p.to_owned(),
    }
}

fn pg_time(col: &str) -> String {
    format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
}

fn time_col(backend: Backend, col: &str) -> String {
    match backend {
        Backend::Postgres => pg_time(col),
        Backend::Sqlite => col.to_owned(),
    }
}

/// Refuse a time in the future (a second of clock skew allowed).
pub fn check_not_future(at: DateTime<Utc>) -> Result<()> {
    if at > Utc::now() + chrono::Duration::seconds(1) {
        return Err(invalid(
            "at",
            &at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "is in the future: the trail only knows the past",
        ));
    }
    Ok(())
}

/// The table must be covered (and exist); returns its columns and key.
pub async fn covered_table(storage: &Storage, table: &str) -> Result<TableInfo> {
    let covered: i64 = on_pool!(storage, p => sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM audit_covered_tables WHERE table_name = $1")
        .bind(table)
        .fetch_one(p)
        .await)
    .ctx("checking audit coverage")?;
    if covered == 0 {
        return Err(invalid(
            "table",
            table,
            "is not covered by the audit trail (bdc audit gen-triggers --table ...); it has no history",
        ));
    }
    triggers::table_info(storage, table).await
}

/// Validate a primary-key JSON object against the table's key columns and
/// return (the parsed object, its canonical stored text on SQLite: the
/// trigger's `json_object` in key order).
pub fn canonical_pk(info: &TableInfo, pk: &str) -> Result<(Value, String)> {
    let v: Value =
        serde_json::from_str(pk).map_err(|e| invalid("pk", pk, format!("not JSON: {e}")))?;
    let Value::Object(obj) = &v else {
        return Err(invalid(
            "pk",
            pk,
            "must be a JSON object such as {\"id\": 7}",
        ));
    };
    let mut want: Vec<&String> = info.primary_key.iter().collect();
    want.sort();
    let mut got: Vec<&String> = obj.keys().collect();
    got.sort();
    if want != got {
        return Err(invalid(
            "pk",
            pk,
            format!(
                "must have exactly the primary-key columns of {:?}: {}",
                info.name,
                info.primary_key.join(", ")
            ),
        ));
    }
    let mut text = String::from("{");
    let mut fixed = serde_json::Map::new();
    for (i, col) in info.primary_key.iter().enumerate() {
        let mut val = obj.get(col).cloned().unwrap_or(Value::Null);
        let decl = info
            .columns
            .iter()
            .find(|c| &c.name == col)
            .map(|c| c.decl_type.as_str())
            .unwrap_or("");
        match &val {
            Value::String(s) if decl.contains("int") || decl.contains("serial") => {
                let n: i64 = s.parse().map_err(|_| {
                    invalid(
                        "pk",
                        pk,
                        format!("column {col:?} is an integer, {s:?} is not one"),
                    )
                })?;
                val = Value::from(n);
            }
            Value::String(_) | Value::Number(_) | Value::Bool(_) => {}
            _ => {
                return Err(invalid(
                    "pk",
                    pk,
                    format!("the value of {col:?} must be a string, number or boolean"),
                ));
            }
        }
        if i > 0 {
            text.push(',');
        }
        text.push_str(&Value::String(col.clone()).to_string());
        text.push(':');
        text.push_str(&val.to_string());
        fixed.insert(col.clone(), val);
    }
    text.push('}');
    Ok((Value::Object(fixed), text))
}

/// The table's audit horizon (RFC 3339 as stored), if known.
pub async fn horizon(storage: &Storage, table: &str) -> Result<Option<(String, DateTime<Utc>)>> {
    let sql = format!(
        "SELECT {} FROM audit_horizons WHERE table_name = $1",
        time_col(storage.backend(), "horizon")
    );
    let h: Option<String> =
        on_pool!(storage, p => sqlx::query_scalar::<_, String>(AssertSqlSafe(sql))
        .bind(table)
        .fetch_optional(p)
        .await)
        .ctx("reading the audit horizon")?;
    Ok(match h {
        Some(s) => {
            let t = DateTime::parse_from_rfc3339(&s)
                .map_err(|e| AuditError::Corrupt {
                    context: "audit_horizons.horizon",
                    detail: format!("{s:?}: {e}"),
                })?
                .with_timezone(&Utc);
            Some((s, t))
        }
        None => None,
    })
}

/// One row's changes are read with `ORDER BY table_name, table_pk, id`
/// (both fixed by the WHERE, so the order is by id): the order of
/// `audit_changes_row_idx`, so the planner walks that index whatever its
/// statistics say.
fn pk_cond(backend: Backend, p: &str) -> String {
    match backend {
        Backend::Postgres => format!("c.table_pk = {p}::jsonb"),
        Backend::Sqlite => format!("c.table_pk = {p}"),
    }
}

fn pk_bind(backend: Backend, parsed: &Value, text: &str) -> String {
    match backend {
        Backend::Postgres => parsed.to_string(),
        Backend::Sqlite => text.to_owned(),
    }
}

/// The row of `table` with primary key `pk` (JSON object) as it was at `at`.
pub async fn row_as_of(
    storage: &Storage,
    table: &str,
    pk: &str,
    at: DateTime<Utc>,
) -> Result<RowAsOf> {
    check_not_future(at)?;
    let info = covered_table(storage, table).await?;
    let (pk_value, pk_text) = canonical_pk(&info, pk)?;
    crate::pending::expand_best_effort(storage).await;
    let backend = storage.backend();
    let at_s = at.to_rfc3339_opts(SecondsFormat::Micros, true);
    let mut out = RowAsOf {
        table: table.to_owned(),
        pk: pk_value.clone(),
        at: at_s.clone(),
        state: RowState::NoHistory,
        row: None,
        change_id: None,
        transaction_id: None,
        changed_at: None,
        horizon: None,
        message: String::new(),
    };
    let hz = horizon(storage, table).await?;
    out.horizon = hz.as_ref().map(|h| h.0.clone());
    if let Some((hs, ht)) = &hz
        && at < *ht
    {
        out.state = RowState::BeforeHorizon;
        out.message = format!(
            "{at_s} lies before the audit horizon of {table:?} ({hs}): history before it was not captured or was purged"
        );
        return Ok(out);
    }
    let bind_pk = pk_bind(backend, &pk_value, &pk_text);
    let last_sql = format!(
        "SELECT c.id, c.transaction_id, c.op, {after}, {occ}
           FROM audit_changes c JOIN audit_transactions t ON t.id = c.transaction_id
          WHERE c.table_name = $1 AND {pk} AND t.occurred_at <= {at}
          ORDER BY c.table_name DESC, c.table_pk DESC, c.id DESC LIMIT 1",
        after = if backend == Backend::Postgres {
            "c.data_after::text"
        } else {
            "c.data_after"
        },
        occ = time_col(backend, "t.occurred_at"),
        pk = pk_cond(backend, "$2"),
        at = ts(backend, "$3"),
    );
    type Last = (i64, i64, String, Option<String>, String);
    let last: Option<Last> =
        on_pool!(storage, p => sqlx::query_as::<_, Last>(AssertSqlSafe(last_sql))
        .bind(table)
        .bind(&bind_pk)
        .bind(time_arg(backend, at))
        .fetch_optional(p)
        .await)
        .ctx("reading a row's change at a time")?;
    if let Some((id, tx, op, after, occ)) = last {
        out.change_id = Some(id);
        out.transaction_id = Some(tx);
        out.changed_at = Some(occ.clone());
        if op == "DELETE" {
            out.state = RowState::Deleted;
            out.message = format!(
                "the row was deleted at {occ} (audit transaction {tx}) and not re-inserted by {at_s}"
            );
        } else {
            out.state = RowState::Exists;
            out.row = match after {
                Some(s) => Some(serde_json::from_str(&s).map_err(|e| AuditError::Corrupt {
                    context: "audit_changes.data_after",
                    detail: format!("change {id}: {e}"),
                })?),
                None => None,
            };
            out.message =
                format!("the row as of {at_s}, last changed at {occ} (audit transaction {tx})");
        }
        return Ok(out);
    }
    let first_sql = format!(
        "SELECT c.op, {base}, {occ}
           FROM audit_changes c JOIN audit_transactions t ON t.id = c.transaction_id
          WHERE c.table_name = $1 AND {pk}
          ORDER BY c.table_name, c.table_pk, c.id LIMIT 1",
        base = if backend == Backend::Postgres {
            "CASE WHEN c.is_baseline THEN 1::int8 ELSE 0::int8 END"
        } else {
            "c.is_baseline"
        },
        occ = time_col(backend, "t.occurred_at"),
        pk = pk_cond(backend, "$2"),
    );
    let first: Option<(String, i64, String)> =
        on_pool!(storage, p => sqlx::query_as::<_, (String, i64, String)>(AssertSqlSafe(first_sql))
        .bind(table)
        .bind(&bind_pk)
        .fetch_optional(p)
        .await)
        .ctx("reading a row's first change")?;
    match first {
        None => {
            out.state = RowState::NoHistory;
            out.message = format!(
                "no change of this row was ever captured: it did not exist at {at_s} or since {table:?} was covered"
            );
        }
        Some((op, base, occ)) if op == "INSERT" && base == 0 => {
            out.state = RowState::NotYet;
            out.message = format!("the row did not exist yet at {at_s}: it was inserted at {occ}");
        }
        Some((_, _, occ)) => {
            out.state = RowState::BeforeHorizon;
            out.message = format!(
                "{at_s} lies before the row's audit history, which starts at {occ} (baseline or purge)"
            );
        }
    }
    Ok(out)
}

/// Only rows whose column `column` (as text) equals `value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnFilter {
    pub column: String,
    pub value: String,
}

/// Stream every row of `table` as it was at `at` (optionally only rows
/// whose `filter` column equals the value) into `out`: NDJSON (one row
/// object per line) or CSV (the table's current columns). Rows stream from
/// a database cursor: memory stays flat. Returns the number of rows.
pub async fn table_as_of<W: Write + Send>(
    storage: &Storage,
    table: &str,
    at: DateTime<Utc>,
    filter: Option<&ColumnFilter>,
    format: ExportFormat,
    out: W,
) -> Result<u64> {
    check_not_future(at)?;
    let info = covered_table(storage, table).await?;
    if let Some(f) = filter
        && !info.columns.iter().any(|c| c.name == f.column)
    {
        return Err(invalid(
            "where",
            &f.column,
            format!("{table:?} has no such column"),
        ));
    }
    if let Some((hs, ht)) = horizon(storage, table).await?
        && at < ht
    {
        return Err(invalid(
            "at",
            &at.to_rfc3339_opts(SecondsFormat::Micros, true),
            format!(
                "lies before the audit horizon of {table:?} ({hs}): the table cannot be reconstructed there"
            ),
        ));
    }
    crate::pending::expand_best_effort(storage).await;
    let backend = storage.backend();
    let (sql, with_filter) = match backend {
        Backend::Postgres => (
            format!(
                "SELECT s.d::text FROM (
                   SELECT DISTINCT ON (c.table_pk) c.table_pk, c.op, c.data_after AS d
                     FROM audit_changes c JOIN audit_transactions t ON t.id = c.transaction_id
                    WHERE c.table_name = $1 AND t.occurred_at <= $2::timestamptz
                    ORDER BY c.table_pk, c.id DESC) s
                  WHERE s.op <> 'DELETE' {}
                  ORDER BY s.table_pk",
                if filter.is_some() {
                    "AND s.d ->> $3 = $4"
                } else {
                    ""
                }
            ),
            filter.is_some(),
        ),
        Backend::Sqlite => (
            format!(
                "SELECT s.d FROM (
                   SELECT c.table_pk AS pk, max(c.id) AS mid, c.op AS op, c.data_after AS d
                     FROM audit_changes c JOIN audit_transactions t ON t.id = c.transaction_id
                    WHERE c.table_name = $1 AND t.occurred_at <= $2
                    GROUP BY c.table_pk) s
                  WHERE s.op <> 'DELETE' {}
                  ORDER BY s.pk",
                if filter.is_some() {
                    "AND (SELECT CAST(j.value AS TEXT) FROM json_each(s.d) j WHERE j.key = $3) = $4"
                } else {
                    ""
                }
            ),
            filter.is_some(),
        ),
    };
    let cols: Vec<String> = info.columns.iter().map(|c| c.name.clone()).collect();
    let mut csv_out = None;
    let mut nd_out = None;
    match format {
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(&cols)
                .map_err(|e| AuditError::Write(e.to_string()))?;
            csv_out = Some(w);
        }
        ExportFormat::Ndjson => nd_out = Some(std::io::BufWriter::new(out)),
    }
    let mut n = 0u64;
    let mut write_row = |s: Option<String>| -> Result<()> {
        let Some(s) = s else { return Ok(()) };
        if let Some(w) = nd_out.as_mut() {
            w.write_all(s.as_bytes())
                .and_then(|_| w.write_all(b"\n"))
                .map_err(|e| AuditError::Write(e.to_string()))?;
        }
        if let Some(w) = csv_out.as_mut() {
            let v: Value = serde_json::from_str(&s).map_err(|e| AuditError::Corrupt {
                context: "audit_changes.data_after",
                detail: e.to_string(),
            })?;
            let rec: Vec<String> = cols
                .iter()
                .map(|c| match v.get(c) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                })
                .collect();
            w.write_record(&rec)
                .map_err(|e| AuditError::Write(e.to_string()))?;
        }
        n += 1;
        Ok(())
    };
    let (fc, fv) = filter
        .map(|f| (f.column.clone(), f.value.clone()))
        .unwrap_or_default();
    on_pool!(storage, p => {
        let mut q = sqlx::query_scalar::<_, Option<String>>(AssertSqlSafe(sql))
            .bind(table)
            .bind(time_arg(backend, at));
        if with_filter {
            q = q.bind(fc.clone()).bind(fv.clone());
        }
        let mut rows = q.fetch(p);
        while let Some(s) = rows.try_next().await.ctx("streaming a table as of a time")? {
            write_row(s)?;
        }
    });
    if let Some(mut w) = csv_out {
        w.flush().map_err(|e| AuditError::Write(e.to_string()))?;
    }
    if let Some(mut w) = nd_out {
        w.flush().map_err(|e| AuditError::Write(e.to_string()))?;
    }
    tracing::info!(table = %table, rows = n, "audit: table reconstructed as of a time");
    Ok(n)
}

/// One version of a row (row history).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Version {
    pub change_id: i64,
    pub transaction_id: i64,
    pub occurred_at: String,
    pub actor: Option<Value>,
    pub action: Option<String>,
    pub op: String,
    pub baseline: bool,
    /// The row after this change (`None` after a DELETE).
    pub row: Option<Value>,
    /// Columns that differ from the previous version: (column, before, after).
    pub diff: Vec<FieldDiff>,
}

/// One column's difference between consecutive versions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDiff {
    pub column: String,
    pub before: Value,
    pub after: Value,
}

fn diff(before: Option<&Value>, after: Option<&Value>) -> Vec<FieldDiff> {
    let empty = serde_json::Map::new();
    let b = before.and_then(Value::as_object).unwrap_or(&empty);
    let a = after.and_then(Value::as_object).unwrap_or(&empty);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let x = b.get(k).cloned().unwrap_or(Value::Null);
            let y = a.get(k).cloned().unwrap_or(Value::Null);
            (x != y).then(|| FieldDiff {
                column: k.clone(),
                before: x,
                after: y,
            })
        })
        .collect()
}

/// Every captured version of one row, oldest first, with the difference
/// to the previous version (at most `limit` newest versions).
pub async fn history(storage: &Storage, table: &str, pk: &str, limit: u64) -> Result<Vec<Version>> {
    let info = covered_table(storage, table).await?;
    let (pk_value, pk_text) = canonical_pk(&info, pk)?;
    crate::pending::expand_best_effort(storage).await;
    let backend = storage.backend();
    let sql = format!(
        "SELECT c.id, c.transaction_id, {occ}, {actor}, t.action, c.op, {base}, {after}, {from}
           FROM audit_changes c JOIN audit_transactions t ON t.id = c.transaction_id
          WHERE c.table_name = $1 AND {pk}
          ORDER BY c.table_name DESC, c.table_pk DESC, c.id DESC LIMIT $3",
        occ = time_col(backend, "t.occurred_at"),
        actor = if backend == Backend::Postgres {
            "t.actor::text"
        } else {
            "t.actor"
        },
        base = if backend == Backend::Postgres {
            "CASE WHEN c.is_baseline THEN 1::int8 ELSE 0::int8 END"
        } else {
            "c.is_baseline"
        },
        after = if backend == Backend::Postgres {
            "c.data_after::text"
        } else {
            "c.data_after"
        },
        from = if backend == Backend::Postgres {
            "c.changed_from::text"
        } else {
            "c.changed_from"
        },
        pk = pk_cond(backend, "$2"),
    );
    type Row = (
        i64,
        i64,
        String,
        Option<String>,
        Option<String>,
        String,
        i64,
        Option<String>,
        Option<String>,
    );
    let limit = i64::try_from(limit.clamp(1, 100_000)).unwrap_or(100_000);
    let mut rows: Vec<Row> = on_pool!(storage, p => sqlx::query_as::<_, Row>(AssertSqlSafe(sql))
        .bind(table)
        .bind(pk_bind(backend, &pk_value, &pk_text))
        .bind(limit)
        .fetch_all(p)
        .await)
    .ctx("reading a row's history")?;
    rows.reverse();
    let parse = |ctx: &'static str, s: Option<String>| -> Result<Option<Value>> {
        s.map(|s| {
            serde_json::from_str(&s).map_err(|e| AuditError::Corrupt {
                context: ctx,
                detail: e.to_string(),
            })
        })
        .transpose()
    };
    let mut out: Vec<Version> = Vec::with_capacity(rows.len());
    let mut prev: Option<Value> = None;
    for (i, (id, tx, occ, actor, action, op, base, after, from)) in rows.into_iter().enumerate() {
        let after = parse("audit_changes.data_after", after)?;
        let from = parse("audit_changes.changed_from", from)?;
        // The first version shown: its predecessor is known from changed_from.
        let before = if i == 0 {
            match (&op[..], &after, &from) {
                ("UPDATE", Some(a), Some(Value::Object(f))) => {
                    let mut b = a.clone();
                    if let Some(m) = b.as_object_mut() {
                        for (k, v) in f {
                            m.insert(k.clone(), v.clone());
                        }
                    }
                    Some(b)
                }
                ("DELETE", _, f) => f.clone(),
                _ => None,
            }
        } else {
            prev.clone()
        };
        let d = diff(before.as_ref(), after.as_ref());
        prev = after.clone();
        out.push(Version {
            change_id: id,
            transaction_id: tx,
            occurred_at: occ,
            actor: parse("audit_transactions.actor", actor)?,
            action,
            op,
            baseline: base != 0,
            row: after,
            diff: d,
        });
    }
    Ok(out)
}
