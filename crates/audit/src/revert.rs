//! Revert one audit transaction: compute the compensating writes
//! (re-insert deleted rows, restore changed columns, delete inserted rows),
//! refuse when a later transaction changed the same rows (unless forced),
//! and apply them in one database transaction recorded as the semantic
//! action `audit.revert`.

use std::collections::BTreeMap;

use bdc_storage::{Backend, Storage, on_tx};
use serde::Serialize;
use serde_json::Value;
use sqlx::AssertSqlSafe;

use crate::asof::{canonical_pk, covered_table};
use crate::config::{AuditConfig, MASK};
use crate::triggers::{TableInfo, quote_ident};
use crate::{AuditError, Ctx, Result};

/// One compensating write.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub table: String,
    pub pk: Value,
    /// `delete` (undo an insert), `insert` (undo a delete) or `update`
    /// (restore changed columns).
    pub action: &'static str,
    /// The values written (insert: the whole row; update: the restored columns).
    pub values: Value,
}

/// A later change of a row the reverted transaction changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conflict {
    pub table: String,
    pub pk: Value,
    pub later_transactions: Vec<i64>,
}

/// What a revert does (or would do).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RevertPlan {
    pub transaction_id: i64,
    pub steps: Vec<Step>,
    pub conflicts: Vec<Conflict>,
    /// True when the steps were applied.
    pub applied: bool,
    /// The audit transaction of the revert, when applied.
    pub revert_transaction_id: Option<i64>,
}

fn invalid(field: &'static str, value: String, reason: impl Into<String>) -> AuditError {
    AuditError::InvalidFilter {
        field,
        value,
        reason: reason.into(),
    }
}

struct RowNet {
    info_idx: usize,
    pk: Value,
    pk_text: String,
    before: Option<Value>,
    after: Option<Value>,
    last_change: i64,
}

/// Plan (and unless `dry_run`, apply) the revert of audit transaction `tx`.
/// `storage` should carry the operator as actor. Conflicts refuse the
/// revert unless `force`; nothing is written on any error.
pub async fn revert(
    storage: &Storage,
    cfg: &AuditConfig,
    tx: i64,
    force: bool,
    dry_run: bool,
) -> Result<RevertPlan> {
    let detail = crate::query::transaction_changes(storage, tx)
        .await?
        .ok_or_else(|| invalid("transaction", tx.to_string(), "no such audit transaction"))?;
    if detail.changes.is_empty() {
        return Err(invalid(
            "transaction",
            tx.to_string(),
            "it changed no row (nothing to revert)",
        ));
    }
    let mut infos: Vec<TableInfo> = Vec::new();
    let mut rows: BTreeMap<(String, String), RowNet> = BTreeMap::new();
    for c in &detail.changes {
        if c.baseline {
            return Err(invalid(
                "transaction",
                tx.to_string(),
                "it is a baseline or retention compaction, not a write: nothing to revert",
            ));
        }
        let idx = match infos.iter().position(|i| i.name == c.table_name) {
            Some(i) => i,
            None => {
                // Refuse an uncovered (or dropped) table before anything is written.
                let info = covered_table(storage, &c.table_name).await?;
                let t = cfg.table(&c.table_name);
                if !t.mask.is_empty() || !t.exclude.is_empty() {
                    return Err(invalid(
                        "transaction",
                        tx.to_string(),
                        format!(
                            "table {:?} has redacted columns ({}): the trail does not hold their values, a revert cannot restore them",
                            c.table_name,
                            t.mask
                                .iter()
                                .chain(t.exclude.iter())
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                infos.push(info);
                infos.len() - 1
            }
        };
        let (pk, pk_text) = canonical_pk(&infos[idx], &c.pk.to_string())?;
        let after = match c.op.as_str() {
            "DELETE" => None,
            _ => c.data_after.clone(),
        };
        let key = (c.table_name.clone(), pk_text.clone());
        let entry = rows.entry(key).or_insert_with(|| {
            let before = match c.op.as_str() {
                "INSERT" => None,
                "DELETE" => c.changed_from.clone(),
                _ => {
                    let mut b = c.data_after.clone().unwrap_or(Value::Null);
                    if let (Some(m), Some(Value::Object(f))) = (b.as_object_mut(), &c.changed_from)
                    {
                        for (k, v) in f {
                            m.insert(k.clone(), v.clone());
                        }
                    }
                    Some(b)
                }
            };
            RowNet {
                info_idx: idx,
                pk: pk.clone(),
                pk_text: pk_text.clone(),
                before,
                after: None,
                last_change: c.change_id,
            }
        });
        entry.after = after;
        entry.last_change = c.change_id;
    }
    // Conflicts: a later change of the same row.
    let mut conflicts = Vec::new();
    for ((table, _), r) in &rows {
        let sql = match storage.backend() {
            Backend::Postgres => {
                "SELECT DISTINCT transaction_id FROM audit_changes
                  WHERE table_name = $1 AND table_pk = $2::jsonb AND id > $3 AND transaction_id <> $4
                  ORDER BY transaction_id"
            }
            Backend::Sqlite => {
                "SELECT DISTINCT transaction_id FROM audit_changes
                  WHERE table_name = $1 AND table_pk = $2 AND id > $3 AND transaction_id <> $4
                  ORDER BY transaction_id"
            }
        };
        let pk_bind = match storage.backend() {
            Backend::Postgres => r.pk.to_string(),
            Backend::Sqlite => r.pk_text.clone(),
        };
        let later: Vec<i64> = bdc_storage::on_pool!(storage, p => sqlx::query_scalar::<_, i64>(sql)
            .bind(table)
            .bind(&pk_bind)
            .bind(r.last_change)
            .bind(tx)
            .fetch_all(p)
            .await)
        .ctx("looking for later changes")?;
        if !later.is_empty() {
            conflicts.push(Conflict {
                table: table.clone(),
                pk: r.pk.clone(),
                later_transactions: later,
            });
        }
    }
    let mut steps = Vec::new();
    let mut step_infos: Vec<usize> = Vec::new();
    for ((table, _), r) in &rows {
        let step = match (&r.before, &r.after) {
            (None, None) => continue,
            (None, Some(_)) => Step {
                table: table.clone(),
                pk: r.pk.clone(),
                action: "delete",
                values: Value::Null,
            },
            (Some(b), None) => Step {
                table: table.clone(),
                pk: r.pk.clone(),
                action: "insert",
                values: b.clone(),
            },
            (Some(b), Some(a)) => {
                let mut set = serde_json::Map::new();
                if let (Some(bm), Some(am)) = (b.as_object(), a.as_object()) {
                    for (k, v) in bm {
                        if am.get(k) != Some(v) {
                            set.insert(k.clone(), v.clone());
                        }
                    }
                }
                if set.is_empty() {
                    continue;
                }
                Step {
                    table: table.clone(),
                    pk: r.pk.clone(),
                    action: "update",
                    values: Value::Object(set),
                }
            }
        };
        if step
            .values
            .as_object()
            .is_some_and(|m| m.values().any(|v| v == MASK))
        {
            return Err(invalid(
                "transaction",
                tx.to_string(),
                format!("a value of {table:?} is the redaction mask: it cannot be restored"),
            ));
        }
        steps.push(step);
        step_infos.push(r.info_idx);
    }
    let mut plan = RevertPlan {
        transaction_id: tx,
        steps,
        conflicts,
        applied: false,
        revert_transaction_id: None,
    };
    if dry_run {
        return Ok(plan);
    }
    if !plan.conflicts.is_empty() && !force {
        return Err(invalid(
            "transaction",
            tx.to_string(),
            format!(
                "later transactions changed the same rows: {}; re-run with --force to overwrite them",
                plan.conflicts
                    .iter()
                    .map(|c| format!(
                        "{} {} (transactions {:?})",
                        c.table, c.pk, c.later_transactions
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    }
    let backend = storage.backend();
    let mut t = storage.begin().await?;
    for (step, idx) in plan.steps.iter().zip(step_infos) {
        apply(&mut t, backend, &infos[idx], step).await?;
    }
    let actor = storage
        .actor_json()
        .and_then(|j| serde_json::from_str::<bdc_core::Actor>(j).ok());
    let reason = serde_json::json!({
        "reverted_transaction": tx,
        "steps": plan.steps.len(),
        "forced_over": plan.conflicts.iter().flat_map(|c| c.later_transactions.clone()).collect::<Vec<_>>(),
    })
    .to_string();
    let action = crate::record_action(
        &mut t,
        "audit.revert",
        actor.as_ref(),
        crate::STATUS_OK,
        Some(&reason),
    )
    .await?;
    let atx: i64 = on_tx!(&mut t, x => sqlx::query_scalar::<_, i64>("SELECT transaction_id FROM audit_actions WHERE id = $1")
        .bind(action)
        .fetch_one(&mut **x)
        .await)
    .ctx("reading the revert's audit transaction")?;
    t.commit().await?;
    plan.applied = true;
    plan.revert_transaction_id = Some(atx);
    tracing::info!(
        reverted = tx,
        steps = plan.steps.len(),
        "audit: transaction reverted"
    );
    Ok(plan)
}

enum Bind {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
}

fn bind_of(backend: Backend, v: &Value) -> Bind {
    match v {
        Value::Null => Bind::Null,
        Value::Bool(b) if backend == Backend::Sqlite => Bind::Int(i64::from(*b)),
        Value::Bool(b) => Bind::Text(b.to_string()),
        Value::Number(n) if backend == Backend::Sqlite => match n.as_i64() {
            Some(i) => Bind::Int(i),
            None => Bind::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::Number(n) => Bind::Text(n.to_string()),
        Value::String(s) => Bind::Text(s.clone()),
        other => Bind::Text(other.to_string()),
    }
}

/// `$n` (SQLite) or `CAST($n AS type)` (PostgreSQL: the column's type).
fn placeholder(backend: Backend, info: &TableInfo, col: &str, n: usize) -> String {
    match backend {
        Backend::Sqlite => format!("${n}"),
        Backend::Postgres => {
            let ty = info
                .columns
                .iter()
                .find(|c| c.name == col)
                .map(|c| c.decl_type.clone())
                .unwrap_or_else(|| "text".into());
            format!("CAST(${n}::text AS {ty})")
        }
    }
}

async fn apply(
    tx: &mut bdc_storage::Tx,
    backend: Backend,
    info: &TableInfo,
    step: &Step,
) -> Result<()> {
    let t = quote_ident(&info.name);
    let mut binds: Vec<Bind> = Vec::new();
    let mut where_ = Vec::new();
    let sql = match step.action {
        "delete" | "update" => {
            let mut sets = Vec::new();
            if let Some(m) = step.values.as_object() {
                for (k, v) in m {
                    if !info.columns.iter().any(|c| &c.name == k) {
                        return Err(invalid(
                            "transaction",
                            step.table.clone(),
                            format!("column {k:?} no longer exists in {:?}", info.name),
                        ));
                    }
                    binds.push(bind_of(backend, v));
                    sets.push(format!(
                        "{} = {}",
                        quote_ident(k),
                        placeholder(backend, info, k, binds.len())
                    ));
                }
            }
            for c in &info.primary_key {
                binds.push(bind_of(backend, step.pk.get(c).unwrap_or(&Value::Null)));
                where_.push(format!(
                    "{} = {}",
                    quote_ident(c),
                    placeholder(backend, info, c, binds.len())
                ));
            }
            if step.action == "delete" {
                format!("DELETE FROM {t} WHERE {}", where_.join(" AND "))
            } else {
                format!(
                    "UPDATE {t} SET {} WHERE {}",
                    sets.join(", "),
                    where_.join(" AND ")
                )
            }
        }
        _ => {
            let mut cols = Vec::new();
            let mut vals = Vec::new();
            if let Some(m) = step.values.as_object() {
                for (k, v) in m {
                    if !info.columns.iter().any(|c| &c.name == k) {
                        continue; // a column dropped since: the rest is restored
                    }
                    binds.push(bind_of(backend, v));
                    cols.push(quote_ident(k));
                    vals.push(placeholder(backend, info, k, binds.len()));
                }
            }
            format!(
                "INSERT INTO {t} ({}) VALUES ({})",
                cols.join(", "),
                vals.join(", ")
            )
        }
    };
    let n = on_tx!(tx, x => {
        let mut q = sqlx::query(AssertSqlSafe(sql.clone()));
        for b in &binds {
            q = match b {
                Bind::Null => q.bind(None::<String>),
                Bind::Int(i) => q.bind(*i),
                Bind::Float(f) => q.bind(*f),
                Bind::Text(s) => q.bind(s.clone()),
            };
        }
        q.execute(&mut **x).await.map(|r| r.rows_affected())
    })
    .map_err(|e| {
        invalid(
            "transaction",
            step.table.clone(),
            format!(
                "the compensating {} of {} {} failed: {e}",
                step.action, step.table, step.pk
            ),
        )
    })?;
    if n != 1 {
        tracing::warn!(table = %step.table, pk = %step.pk, action = step.action, rows = n, "audit revert: a compensating write matched no row");
    }
    Ok(())
}
