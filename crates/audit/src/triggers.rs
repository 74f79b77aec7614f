//! Trigger generation and installation (coverage of a table).
//!
//! * PostgreSQL: two generic capture functions and three triggers per
//!   covered table, whose arguments carry the primary-key columns, the
//!   excluded and masked columns and `require_actor`: the row trigger
//!   `bdc_audit_update` (`bdc_audit_capture()`, migration 1) and the
//!   statement triggers `bdc_audit_insert` / `bdc_audit_delete`
//!   (`bdc_audit_capture_rows()`, migration 2), which capture a whole
//!   multi-row statement with one `INSERT … SELECT` from its transition
//!   table. Partitioned and inherited tables get one row trigger
//!   `bdc_audit` for all three events.
//! * SQLite: three triggers per table (`bdc_audit_insert_<t>`,
//!   `…_update_<t>`, `…_delete_<t>`) with explicit column lists, because
//!   SQLite triggers cannot iterate columns. A column added or removed
//!   makes them stale: `bdc migrate` regenerates them and `bdc audit
//!   verify` reports stale ones.
//!
//! Every identifier is quoted (`"` doubled) and every name inside a string
//! literal has `'` doubled, so a table called `a"b; drop` is harmless.

use bdc_storage::{Backend, Storage, Tx, on_pool, on_tx};
use sqlx::AssertSqlSafe;

use crate::config::{AuditConfig, MASK, TableConfig};
use crate::{AuditError, Ctx, Result};

/// SQLite's limit on function arguments (127) allows 63 key/value pairs in
/// one `json_object`.
const SQLITE_MAX_COLUMNS: usize = 63;

/// Quote an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quote an SQL string literal.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// Declared type (SQLite) or type name (PostgreSQL), lower case.
    pub decl_type: String,
}

/// What the trigger generator needs to know about a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub name: String,
    pub columns: Vec<Column>,
    /// Primary-key columns, in key order.
    pub primary_key: Vec<String>,
    /// PostgreSQL: the table is partitioned, a partition, an inheritance
    /// parent or an inheritance child. Statement triggers are not cloned to
    /// partitions and fire only for the table a statement names (a `DELETE
    /// FROM parent` that removes child rows fires no statement trigger of
    /// the child), so such a table is captured by one row trigger for all
    /// three events.
    pub row_triggers_only: bool,
}

/// Read a table's columns and primary key; errors when the table does not
/// exist or has no primary key.
pub async fn table_info(storage: &Storage, table: &str) -> Result<TableInfo> {
    let (columns, primary_key, row_triggers_only): (Vec<Column>, Vec<String>, bool) = match storage
        .pool()
    {
        bdc_storage::Pool::Sqlite(p) => {
            let rows: Vec<(String, String, i64)> =
                sqlx::query_as("SELECT name, type, pk FROM pragma_table_info($1) ORDER BY cid")
                    .bind(table)
                    .fetch_all(p)
                    .await
                    .ctx("reading a table's columns")?;
            let kind: Option<String> =
                sqlx::query_scalar("SELECT type FROM sqlite_master WHERE name = $1")
                    .bind(table)
                    .fetch_optional(p)
                    .await
                    .ctx("reading a table's kind")?;
            if kind.as_deref() != Some("table") {
                return Err(AuditError::NoSuchTable {
                    table: table.to_owned(),
                });
            }
            let mut pk: Vec<(i64, String)> = rows
                .iter()
                .filter(|r| r.2 > 0)
                .map(|r| (r.2, r.0.clone()))
                .collect();
            pk.sort();
            (
                rows.into_iter()
                    .map(|(name, t, _)| Column {
                        name,
                        decl_type: t.to_lowercase(),
                    })
                    .collect(),
                pk.into_iter().map(|(_, n)| n).collect(),
                false,
            )
        }
        bdc_storage::Pool::Postgres(p) => {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
                   FROM pg_attribute a
                   JOIN pg_class c ON c.oid = a.attrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relname = $1 AND n.nspname = current_schema()
                    AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
                  ORDER BY a.attnum",
            )
            .bind(table)
            .fetch_all(p)
            .await
            .ctx("reading a table's columns")?;
            if rows.is_empty() {
                return Err(AuditError::NoSuchTable {
                    table: table.to_owned(),
                });
            }
            let pk: Vec<String> = sqlx::query_scalar(
                "SELECT a.attname::text
                   FROM pg_index i
                   JOIN pg_class c ON c.oid = i.indrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                  WHERE c.relname = $1 AND n.nspname = current_schema() AND i.indisprimary
                  ORDER BY array_position(i.indkey::int2[], a.attnum)",
            )
            .bind(table)
            .fetch_all(p)
            .await
            .ctx("reading a table's primary key")?;
            let row_only: bool = sqlx::query_scalar(
                "SELECT bool_or(c.relkind = 'p' OR c.relhassubclass OR c.relispartition
                                OR EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid))
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relname = $1 AND n.nspname = current_schema() AND c.relkind IN ('r', 'p')",
            )
            .bind(table)
            .fetch_one(p)
            .await
            .ctx("reading whether a table is partitioned")?;
            (
                rows.into_iter()
                    .map(|(name, t)| Column {
                        name,
                        decl_type: t.to_lowercase(),
                    })
                    .collect(),
                pk,
                row_only,
            )
        }
    };
    if primary_key.is_empty() {
        return Err(AuditError::NoPrimaryKey {
            table: table.to_owned(),
        });
    }
    Ok(TableInfo {
        name: table.to_owned(),
        columns,
        primary_key,
        row_triggers_only,
    })
}

/// Check the redaction of `info` against its columns.
fn check_redaction(info: &TableInfo, cfg: &TableConfig) -> Result<()> {
    for (list, what) in [(&cfg.exclude, "exclude"), (&cfg.mask, "mask")] {
        for col in list {
            if !info.columns.iter().any(|c| &c.name == col) {
                return Err(AuditError::UnknownColumn {
                    table: info.name.clone(),
                    column: col.clone(),
                    what,
                });
            }
            if info.primary_key.contains(col) {
                return Err(AuditError::PrimaryKeyRedacted {
                    table: info.name.clone(),
                    column: col.clone(),
                });
            }
        }
    }
    Ok(())
}

/// The SQLite trigger names of a table.
pub fn sqlite_trigger_names(table: &str) -> [String; 3] {
    [
        format!("bdc_audit_insert_{table}"),
        format!("bdc_audit_update_{table}"),
        format!("bdc_audit_delete_{table}"),
    ]
}

/// PostgreSQL row trigger capturing UPDATEs.
pub const PG_UPDATE_TRIGGER: &str = "bdc_audit_update";
/// PostgreSQL statement trigger capturing INSERTs.
pub const PG_INSERT_TRIGGER: &str = "bdc_audit_insert";
/// PostgreSQL statement trigger capturing DELETEs.
pub const PG_DELETE_TRIGGER: &str = "bdc_audit_delete";
/// PostgreSQL row trigger capturing all three events: partitioned and
/// inherited tables (see [`TableInfo::row_triggers_only`]), and every
/// covered table before audit migration 2.
pub const PG_ROW_TRIGGER: &str = "bdc_audit";
/// PostgreSQL BEFORE TRUNCATE statement trigger: records the rows a
/// TRUNCATE removes as DELETE changes (audit migration 7).
pub const PG_TRUNCATE_TRIGGER: &str = "bdc_audit_truncate";
/// Every PostgreSQL audit trigger name.
pub const PG_TRIGGERS: [&str; 5] = [
    PG_ROW_TRIGGER,
    PG_INSERT_TRIGGER,
    PG_UPDATE_TRIGGER,
    PG_DELETE_TRIGGER,
    PG_TRUNCATE_TRIGGER,
];

/// A PostgreSQL `text[]` literal (`'{"a","b"}'`) with every element quoted.
fn pg_array_literal(items: &[String]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    quote_literal(&format!("{{{}}}", parts.join(",")))
}

fn pg_text_array(items: &[String]) -> String {
    if items.is_empty() {
        "ARRAY[]::text[]".to_owned()
    } else {
        let parts: Vec<String> = items.iter().map(|s| quote_literal(s)).collect();
        format!("ARRAY[{}]::text[]", parts.join(", "))
    }
}

/// Everything needed to generate a table's trigger SQL.
#[derive(Debug, Clone)]
pub struct TriggerSpec {
    pub info: TableInfo,
    pub redaction: TableConfig,
    pub require_actor: bool,
}

impl TriggerSpec {
    pub fn new(info: TableInfo, cfg: &AuditConfig) -> Result<TriggerSpec> {
        let redaction = cfg.table(&info.name);
        check_redaction(&info, &redaction)?;
        Ok(TriggerSpec {
            info,
            redaction,
            require_actor: cfg.require_actor,
        })
    }

    fn audited(&self) -> impl Iterator<Item = &Column> {
        self.info
            .columns
            .iter()
            .filter(|c| !self.redaction.exclude.contains(&c.name))
    }

    /// The trigger SQL for `backend` (drops and recreates: idempotent).
    pub fn sql(&self, backend: Backend) -> Result<String> {
        match backend {
            Backend::Postgres => Ok(self.pg_sql()),
            Backend::Sqlite => self.sqlite_sql(),
        }
    }

    /// The PostgreSQL triggers this table gets, sorted by name.
    pub fn pg_trigger_names(&self) -> Vec<&'static str> {
        if self.info.row_triggers_only {
            vec![PG_ROW_TRIGGER, PG_TRUNCATE_TRIGGER]
        } else {
            vec![
                PG_DELETE_TRIGGER,
                PG_INSERT_TRIGGER,
                PG_TRUNCATE_TRIGGER,
                PG_UPDATE_TRIGGER,
            ]
        }
    }

    /// The arguments every PostgreSQL capture trigger of this table gets,
    /// as stored in `pg_trigger.tgargs` (unquoted).
    pub fn pg_trigger_args(&self) -> Vec<String> {
        let unquoted = |items: &[String]| {
            let lit = pg_array_literal(items);
            lit[1..lit.len() - 1].replace("''", "'")
        };
        vec![
            unquoted(&self.info.primary_key),
            unquoted(&self.redaction.exclude),
            unquoted(&self.redaction.mask),
            self.require_actor.to_string(),
        ]
    }

    fn pg_sql(&self) -> String {
        let t = quote_ident(&self.info.name);
        let args = format!(
            "{}, {}, {}, '{}'",
            pg_array_literal(&self.info.primary_key),
            pg_array_literal(&self.redaction.exclude),
            pg_array_literal(&self.redaction.mask),
            self.require_actor
        );
        let mut sql = String::new();
        for name in PG_TRIGGERS {
            sql.push_str(&format!("DROP TRIGGER IF EXISTS {name} ON {t};\n"));
        }
        if self.info.row_triggers_only {
            sql.push_str(&format!(
                "CREATE TRIGGER {PG_ROW_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON {t} FOR EACH ROW\n  \
                 EXECUTE FUNCTION bdc_audit_capture({args});\n"
            ));
        } else {
            sql.push_str(&format!(
                "CREATE TRIGGER {PG_UPDATE_TRIGGER} AFTER UPDATE ON {t} FOR EACH ROW\n  \
                 EXECUTE FUNCTION bdc_audit_capture({args});\n\
                 CREATE TRIGGER {PG_INSERT_TRIGGER} AFTER INSERT ON {t} REFERENCING NEW TABLE AS bdc_rows\n  \
                 FOR EACH STATEMENT EXECUTE FUNCTION bdc_audit_capture_rows({args});\n\
                 CREATE TRIGGER {PG_DELETE_TRIGGER} AFTER DELETE ON {t} REFERENCING OLD TABLE AS bdc_rows\n  \
                 FOR EACH STATEMENT EXECUTE FUNCTION bdc_audit_capture_rows({args});\n"
            ));
        }
        sql.push_str(&format!(
            "CREATE TRIGGER {PG_TRUNCATE_TRIGGER} BEFORE TRUNCATE ON {t}\n  \
             FOR EACH STATEMENT EXECUTE FUNCTION bdc_audit_capture_truncate({args});\n"
        ));
        sql
    }

    /// `r."col"` or, for a masked column, the mask when not NULL.
    fn sqlite_value(&self, prefix: &str, col: &Column) -> String {
        let v = format!("{prefix}.{}", quote_ident(&col.name));
        if self.redaction.mask.contains(&col.name) {
            format!(
                "CASE WHEN {v} IS NULL THEN NULL ELSE {} END",
                quote_literal(MASK)
            )
        } else if col.decl_type.is_empty() || col.decl_type.contains("blob") {
            // JSON cannot hold BLOBs: store their hex.
            format!("CASE WHEN typeof({v}) = 'blob' THEN hex({v}) ELSE {v} END")
        } else {
            v
        }
    }

    fn sqlite_row_json(&self, prefix: &str) -> String {
        let pairs: Vec<String> = self
            .audited()
            .map(|c| {
                format!(
                    "{}, {}",
                    quote_literal(&c.name),
                    self.sqlite_value(prefix, c)
                )
            })
            .collect();
        format!("json_object({})", pairs.join(", "))
    }

    fn sqlite_pk_json(&self, prefix: &str) -> String {
        let pairs: Vec<String> = self
            .info
            .primary_key
            .iter()
            .map(|c| format!("{}, {prefix}.{}", quote_literal(c), quote_ident(c)))
            .collect();
        format!("json_object({})", pairs.join(", "))
    }

    /// The statements every trigger (and a baseline) starts with: refuse an
    /// anonymous write when required, open the audit transaction once.
    fn sqlite_header(&self) -> String {
        let mut out = String::new();
        if self.require_actor {
            out.push_str(&format!(
                "  SELECT RAISE(ABORT, {}) WHERE (SELECT actor FROM bdc_tx_context WHERE id = 1) IS NULL;\n",
                quote_literal(&format!(
                    "bdc audit: write to table {} without an actor (require_actor is on)",
                    self.info.name
                ))
            ));
        }
        out.push_str(SQLITE_RESERVE_AUDIT_TX);
        out
    }

    fn sqlite_sql(&self) -> Result<String> {
        let n = self.audited().count();
        if n > SQLITE_MAX_COLUMNS {
            return Err(AuditError::TooManyColumns {
                table: self.info.name.clone(),
                count: n,
                max: SQLITE_MAX_COLUMNS,
            });
        }
        let t = quote_ident(&self.info.name);
        let tl = quote_literal(&self.info.name);
        let [ins, upd, del] = sqlite_trigger_names(&self.info.name).map(|n| quote_ident(&n));
        let header = self.sqlite_header();
        let mut sorted: Vec<&Column> = self.audited().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        let differs = |c: &Column| format!("OLD.{q} IS NOT NEW.{q}", q = quote_ident(&c.name));
        let when: Vec<String> = sorted.iter().map(|c| differs(c)).collect();
        let fields: Vec<String> = sorted
            .iter()
            .map(|c| {
                format!(
                    "SELECT {} AS f WHERE {}",
                    quote_literal(&c.name),
                    differs(c)
                )
            })
            .collect();
        let prev: Vec<String> = sorted
            .iter()
            .map(|c| {
                format!(
                    "SELECT {} AS f, {} AS v WHERE {}",
                    quote_literal(&c.name),
                    self.sqlite_value("OLD", c),
                    differs(c)
                )
            })
            .collect();
        let insert_change = |op: &str, pk: String, after: String, fields: String, from: String| {
            format!(
                "  INSERT INTO audit_pending (transaction_id, table_name, table_pk, op, data_after, changed_fields, changed_from)\n  \
                 VALUES ((SELECT audit_tx FROM bdc_tx_context WHERE id = 1), {tl}, {pk}, '{op}', {after}, {fields}, {from});\n"
            )
        };
        let mut sql = String::new();
        for name in [&ins, &upd, &del] {
            sql.push_str(&format!("DROP TRIGGER IF EXISTS {name};\n"));
        }
        sql.push_str(&format!(
            "CREATE TRIGGER {ins} AFTER INSERT ON {t} BEGIN\n{header}{}END;\n",
            insert_change(
                "INSERT",
                self.sqlite_pk_json("NEW"),
                self.sqlite_row_json("NEW"),
                "NULL".into(),
                "NULL".into()
            )
        ));
        sql.push_str(&format!(
            "CREATE TRIGGER {upd} AFTER UPDATE ON {t} WHEN {} BEGIN\n{header}{}END;\n",
            when.join(" OR "),
            insert_change(
                "UPDATE",
                self.sqlite_pk_json("NEW"),
                self.sqlite_row_json("NEW"),
                format!(
                    "(SELECT json_group_array(f) FROM ({}))",
                    fields.join(" UNION ALL ")
                ),
                format!(
                    "(SELECT json_group_object(f, v) FROM ({}))",
                    prev.join(" UNION ALL ")
                ),
            )
        ));
        sql.push_str(&format!(
            "CREATE TRIGGER {del} AFTER DELETE ON {t} BEGIN\n{header}{}END;\n",
            insert_change(
                "DELETE",
                self.sqlite_pk_json("OLD"),
                "NULL".into(),
                "NULL".into(),
                self.sqlite_row_json("OLD")
            )
        ));
        Ok(sql)
    }

    /// SQL inserting one baseline change per existing row (run inside the
    /// actor-carrying transaction).
    pub fn baseline_sql(&self, backend: Backend) -> String {
        let t = quote_ident(&self.info.name);
        let tl = quote_literal(&self.info.name);
        match backend {
            Backend::Postgres => {
                let pk: Vec<String> = self
                    .info
                    .primary_key
                    .iter()
                    .map(|c| format!("{}, r.{}", quote_literal(c), quote_ident(c)))
                    .collect();
                format!(
                    "INSERT INTO audit_changes (transaction_id, table_name, table_pk, op, is_baseline, data_after)\n\
                     SELECT bdc_audit_tx_id(nullif(current_setting('bdc.actor', true), '')::jsonb), {tl},\n  \
                     jsonb_build_object({}), 'INSERT', true,\n  \
                     bdc_audit_redact(to_jsonb(r) - {}, ARRAY[]::text[], {})\n\
                     FROM {t} AS r",
                    pk.join(", "),
                    pg_text_array(&self.redaction.exclude),
                    pg_text_array(&self.redaction.mask),
                )
            }
            Backend::Sqlite => format!(
                "{}INSERT INTO audit_pending (transaction_id, table_name, table_pk, op, is_baseline, data_after)\n\
                 SELECT (SELECT audit_tx FROM bdc_tx_context WHERE id = 1), {tl}, {}, 'INSERT', 1, {}\n\
                 FROM {t} AS r;\n",
                SQLITE_OPEN_AUDIT_TX,
                self.sqlite_pk_json("r"),
                self.sqlite_row_json("r"),
            ),
        }
    }
}

// The next audit transaction id on SQLite (as SQL over the
// bdc_tx_context row): the counter, never below the AUTOINCREMENT counter.
// A macro so the statements below (and retention's) can concat! it.
macro_rules! sqlite_next_audit_id {
    () => {
        "max(audit_next, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'audit_transactions'), 0)) + 1"
    };
}
pub(crate) use sqlite_next_audit_id;

// The text of SQLITE_RESERVE_AUDIT_TX: a macro, not a const, so
// SQLITE_OPEN_AUDIT_TX can extend it with concat!.
macro_rules! sqlite_reserve_audit_tx {
    () => {
        concat!(
            "  INSERT INTO audit_pending (transaction_id, table_name, table_pk, op, data_after)\n    SELECT ",
            sqlite_next_audit_id!(),
            ", '', '', 'TX', actor\n    FROM bdc_tx_context WHERE id = 1 AND audit_tx IS NULL;\n  \
             UPDATE bdc_tx_context SET audit_tx = ",
            sqlite_next_audit_id!(),
            ", audit_next = ",
            sqlite_next_audit_id!(),
            "\n    WHERE id = 1 AND audit_tx IS NULL;\n"
        )
    };
}
/// Reserve the audit transaction of the current SQLite write transaction
/// (once, at its first capture): take the next id from the counter
/// `bdc_tx_context.audit_next` (the row every write transaction already
/// writes, so the reservation dirties no other page; never below the
/// `audit_transactions` AUTOINCREMENT counter, so ids inserted before are
/// never reused), write a `TX` marker row into `audit_pending` holding the
/// actor (the flush creates the transaction from it) and remember the id.
/// Later rows of the transaction find `audit_tx` set and skip both. Every
/// other creator of `audit_transactions` rows on SQLite takes its id from
/// the same counter (actions and baselines through
/// [`SQLITE_OPEN_AUDIT_TX`], retention compaction). Creating the row here
/// instead (until audit migration 8) wrote its five index entries inside
/// every writing transaction.
pub(crate) const SQLITE_RESERVE_AUDIT_TX: &str = sqlite_reserve_audit_tx!();

/// Open the audit transaction of the current SQLite write transaction and
/// create its row now (semantic actions and baselines link to it): reserve
/// it as a capture would, then insert it (once).
pub(crate) const SQLITE_OPEN_AUDIT_TX: &str = concat!(
    sqlite_reserve_audit_tx!(),
    "  INSERT INTO audit_transactions (id, actor, actor_type, actor_id)\n    \
     SELECT audit_tx, actor, json_extract(actor, '$.type'), coalesce(json_extract(actor, '$.collector'), json_extract(actor, '$.user'), json_extract(actor, '$.caller'), json_extract(actor, '$.component'))\n    \
     FROM bdc_tx_context WHERE id = 1\n    \
     ON CONFLICT (id) DO NOTHING;\n"
);

/// The outcome of covering one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Covered {
    pub table: String,
    /// The trigger SQL (what `--dry-run` prints).
    pub sql: String,
    /// The SQL installed before, if the table was covered already.
    pub previous_sql: Option<String>,
    /// Whether anything changed (false: the same triggers were installed).
    pub changed: bool,
    /// Baseline changes recorded (first coverage of a table with rows).
    pub baseline_rows: u64,
}

impl Covered {
    /// A line diff of the previous and the new SQL (`-`/`+` lines).
    pub fn diff(&self) -> String {
        let old: Vec<&str> = self
            .previous_sql
            .as_deref()
            .map(|s| s.lines().collect())
            .unwrap_or_default();
        let new: Vec<&str> = self.sql.lines().collect();
        let mut out = String::new();
        for l in &old {
            if !new.contains(l) {
                out.push_str(&format!("-{l}\n"));
            }
        }
        for l in &new {
            if !old.contains(l) {
                out.push_str(&format!("+{l}\n"));
            }
        }
        out
    }
}

async fn registered_sql(tx: &mut Tx, table: &str) -> Result<Option<String>> {
    on_tx!(tx, t => sqlx::query_scalar::<_, String>(
        "SELECT trigger_sql FROM audit_covered_tables WHERE table_name = $1")
        .bind(table)
        .fetch_optional(&mut **t)
        .await)
    .ctx("reading the covered tables")
}

/// Generate (and unless `dry_run` install) the triggers of `tables`.
///
/// Each table is covered in its own transaction (carrying `storage`'s
/// actor): the trigger is (re)created, the table is registered, and when
/// it is covered for the first time and has rows, a baseline is recorded
/// in the same transaction. Idempotent: running it again changes nothing.
pub async fn cover_tables(
    storage: &Storage,
    cfg: &AuditConfig,
    tables: &[String],
    dry_run: bool,
) -> Result<Vec<Covered>> {
    let backend = storage.backend();
    let mut out = Vec::new();
    for table in tables {
        let info = table_info(storage, table).await?;
        let spec = TriggerSpec::new(info, cfg)?;
        let sql = spec.sql(backend)?;
        // A trigger re-pointed at another function or given other
        // arguments keeps its name: reinstall it too.
        let tampered = tampered(storage, &spec).await?.is_some();
        let mut tx = storage.begin().await?;
        let previous_sql = registered_sql(&mut tx, table).await?;
        let installed =
            installed_triggers(&mut tx, table).await? == expected_triggers(&spec, backend);
        let changed = previous_sql.as_deref() != Some(sql.as_str()) || !installed || tampered;
        let mut baseline_rows = 0;
        if dry_run {
            tx.rollback().await?;
        } else {
            if changed {
                on_tx!(&mut tx, t => sqlx::raw_sql(AssertSqlSafe(sql.clone())).execute(&mut **t).await.map(|_| ()))
                    .ctx("installing audit triggers")?;
                let upsert = match backend {
                    Backend::Postgres => {
                        "INSERT INTO audit_covered_tables (table_name, trigger_sql) VALUES ($1, $2)
                         ON CONFLICT (table_name) DO UPDATE SET trigger_sql = excluded.trigger_sql, installed_at = now()"
                    }
                    Backend::Sqlite => {
                        "INSERT INTO audit_covered_tables (table_name, trigger_sql) VALUES ($1, $2)
                         ON CONFLICT (table_name) DO UPDATE SET trigger_sql = excluded.trigger_sql,
                           installed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
                    }
                };
                on_tx!(&mut tx, t => sqlx::query(upsert).bind(table).bind(&sql).execute(&mut **t).await.map(|_| ()))
                    .ctx("registering a covered table")?;
            }
            if previous_sql.is_none() {
                baseline_rows = baseline_in(&mut tx, &spec).await?;
            }
            record_columns(&mut tx, &spec.info, &spec.redaction.exclude).await?;
            tx.commit().await?;
            tracing::info!(table = %table, changed, baseline_rows, "audit triggers installed");
        }
        out.push(Covered {
            table: table.clone(),
            sql,
            previous_sql,
            changed,
            baseline_rows,
        });
    }
    Ok(out)
}

/// Semantic actions that record a covered table's columns (the reason is
/// a JSON object `{table, columns: [{name, type}], statement?}`).
pub const SCHEMA_ACTIONS: [&str; 3] = [
    "schema.cover_table",
    "schema.alter_table",
    "schema.drop_table",
];

/// The columns of `table` as last recorded by a `schema.*` action.
async fn recorded_columns(tx: &mut Tx, table: &str) -> Result<Option<serde_json::Value>> {
    let reasons: Vec<Option<String>> = on_tx!(tx, t => sqlx::query_scalar::<_, Option<String>>(
        "SELECT reason FROM audit_actions WHERE name IN ($1, $2, $3) ORDER BY id DESC")
        .bind(SCHEMA_ACTIONS[0])
        .bind(SCHEMA_ACTIONS[1])
        .bind(SCHEMA_ACTIONS[2])
        .fetch_all(&mut **t)
        .await)
    .ctx("reading recorded schema changes")?;
    for reason in reasons.into_iter().flatten() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&reason) else {
            continue;
        };
        if v.get("table").and_then(|t| t.as_str()) == Some(table) {
            return Ok(v.get("columns").cloned());
        }
    }
    Ok(None)
}

/// Record the table's columns. First coverage (or the first regeneration
/// after upgrading) keeps them in `audit_covered_tables.columns` (the
/// coverage snapshot, no audit transaction); later, columns that differ
/// from the last record (the newest `schema.*` action, else the snapshot)
/// are recorded as the action `schema.alter_table`. On PostgreSQL with the
/// event triggers of audit migration 7 an ALTER TABLE was recorded when it
/// ran, so this finds the columns equal and records nothing; on SQLite
/// (and PostgreSQL without a superuser) this is where column changes are
/// recorded, when `bdc migrate` or `bdc audit gen-triggers` regenerates
/// the triggers.
async fn record_columns(tx: &mut Tx, info: &TableInfo, exclude: &[String]) -> Result<()> {
    // Excluded columns never reach the audit tables, not even by name.
    let columns: Vec<serde_json::Value> = info
        .columns
        .iter()
        .filter(|c| !exclude.contains(&c.name))
        .map(|c| serde_json::json!({"name": c.name, "type": c.decl_type}))
        .collect();
    let columns = serde_json::Value::Array(columns);
    let snapshot: Option<Option<String>> = on_tx!(tx, t => sqlx::query_scalar::<_, Option<String>>(
        "SELECT columns FROM audit_covered_tables WHERE table_name = $1")
        .bind(&info.name)
        .fetch_optional(&mut **t)
        .await)
    .ctx("reading a covered table's columns")?;
    let Some(snapshot) = snapshot else {
        return Ok(()); // not registered (dry run)
    };
    let Some(snapshot) = snapshot else {
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        on_tx!(tx, t => sqlx::query(
            "UPDATE audit_covered_tables SET columns = $2, columns_at = $3 WHERE table_name = $1")
            .bind(&info.name)
            .bind(columns.to_string())
            .bind(at)
            .execute(&mut **t)
            .await
            .map(|_| ()))
        .ctx("recording a covered table's columns")?;
        return Ok(());
    };
    let previous = match recorded_columns(tx, &info.name).await? {
        Some(p) => Some(p),
        None => serde_json::from_str::<serde_json::Value>(&snapshot).ok(),
    };
    if previous.as_ref() == Some(&columns) {
        return Ok(());
    }
    let reason = serde_json::json!({"table": info.name, "columns": columns}).to_string();
    crate::record_action(tx, SCHEMA_ACTIONS[1], None, crate::STATUS_OK, Some(&reason)).await?;
    Ok(())
}

/// How schema changes (ALTER/DROP) of covered tables are recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum SchemaCapture {
    /// PostgreSQL: event triggers record ALTER TABLE and DROP TABLE as
    /// they happen, in the DDL's transaction.
    EventTriggers,
    /// Column changes are recorded when gen-triggers (or `bdc migrate`)
    /// regenerates a table's triggers: SQLite, or PostgreSQL without the
    /// event triggers (creating them needs a superuser).
    OnRegeneration(String),
    /// The event triggers are disabled, missing in part, or run another
    /// function than the one bdc installs.
    Tampered(String),
}

/// Names of this schema's event triggers (audit migration 7).
fn event_trigger_names(schema: &str) -> [String; 2] {
    [
        format!("bdc_audit_ddl_{schema}"),
        format!("bdc_audit_drop_{schema}"),
    ]
}

/// Check how schema changes are captured (`bdc audit verify`).
pub async fn schema_capture(storage: &Storage) -> Result<SchemaCapture> {
    let p = match storage.pool() {
        bdc_storage::Pool::Sqlite(_) => {
            return Ok(SchemaCapture::OnRegeneration(
                "SQLite: column changes are recorded when `bdc migrate` or `bdc audit gen-triggers` regenerates the triggers".into(),
            ));
        }
        bdc_storage::Pool::Postgres(p) => p,
    };
    let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(p)
        .await
        .ctx("reading the current schema")?;
    let names = event_trigger_names(&schema);
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT e.evtname::text, e.evtenabled::text, p.proname::text, p.prosrc
           FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid
          WHERE e.evtname = ANY ($1) ORDER BY 1",
    )
    .bind(&names[..])
    .fetch_all(p)
    .await
    .ctx("reading the audit event triggers")?;
    if rows.is_empty() {
        return Ok(SchemaCapture::OnRegeneration(
            "no event trigger (creating one needs a superuser: run `bdc migrate` once as one); column changes are recorded when gen-triggers regenerates the triggers".into(),
        ));
    }
    let expected = expected_pg_body("bdc_audit_ddl");
    for name in &names {
        let Some((_, enabled, func, body)) = rows.iter().find(|r| &r.0 == name) else {
            return Ok(SchemaCapture::Tampered(format!(
                "event trigger {name} is missing (dropped by hand?)"
            )));
        };
        if enabled == "D" {
            return Ok(SchemaCapture::Tampered(format!(
                "event trigger {name} is disabled"
            )));
        }
        if func != "bdc_audit_ddl" || Some(body.as_str()) != expected {
            return Ok(SchemaCapture::Tampered(format!(
                "event trigger {name} runs {func}(), which differs from the function bdc installs"
            )));
        }
    }
    Ok(SchemaCapture::EventTriggers)
}

async fn baseline_in(tx: &mut Tx, spec: &TriggerSpec) -> Result<u64> {
    let backend = tx.backend();
    let count_sql = format!("SELECT COUNT(*) FROM {}", quote_ident(&spec.info.name));
    let rows: i64 = on_tx!(tx, t => sqlx::query_scalar::<_, i64>(AssertSqlSafe(count_sql))
        .fetch_one(&mut **t)
        .await)
    .ctx("counting rows for a baseline")?;
    // The table's audit horizon: history starts now (kept if set before).
    let horizon = match backend {
        Backend::Postgres => {
            "INSERT INTO audit_horizons (table_name, horizon) VALUES ($1, now()) ON CONFLICT (table_name) DO NOTHING"
        }
        Backend::Sqlite => {
            "INSERT INTO audit_horizons (table_name, horizon)
             VALUES ($1, coalesce((SELECT t.occurred_at FROM audit_transactions t JOIN bdc_tx_context x ON x.id = 1 AND t.id = x.audit_tx),
                                  strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))
             ON CONFLICT (table_name) DO NOTHING"
        }
    };
    if rows > 0 {
        let sql = spec.baseline_sql(backend);
        on_tx!(tx, t => sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut **t).await.map(|_| ()))
            .ctx("recording a baseline")?;
    }
    on_tx!(tx, t => sqlx::query(horizon).bind(&spec.info.name).execute(&mut **t).await.map(|_| ()))
        .ctx("recording the audit horizon of a table")?;
    Ok(rows.max(0) as u64)
}

/// Record a baseline of `table` explicitly (`bdc audit baseline`): one
/// synthetic INSERT change per existing row, marked as baseline, in one
/// transaction.
pub async fn baseline(storage: &Storage, cfg: &AuditConfig, table: &str) -> Result<u64> {
    let info = table_info(storage, table).await?;
    let spec = TriggerSpec::new(info, cfg)?;
    let mut tx = storage.begin().await?;
    let n = baseline_in(&mut tx, &spec).await?;
    tx.commit().await?;
    tracing::info!(table = %table, rows = n, "audit baseline recorded");
    Ok(n)
}

/// The audit triggers a table has, sorted by name.
async fn installed_triggers(tx: &mut Tx, table: &str) -> Result<Vec<String>> {
    match tx {
        Tx::Sqlite(t) => sqlite_triggers(t, table).await,
        Tx::Postgres(t) => pg_triggers(t, table).await,
    }
}

/// The expected audit triggers of `spec` on `backend`, sorted by name.
fn expected_triggers(spec: &TriggerSpec, backend: Backend) -> Vec<String> {
    let mut names: Vec<String> = match backend {
        Backend::Sqlite => sqlite_trigger_names(&spec.info.name).into(),
        Backend::Postgres => spec
            .pg_trigger_names()
            .into_iter()
            .map(str::to_owned)
            .collect(),
    };
    names.sort();
    names
}

/// The audit triggers of `table` (SQLite), sorted by name.
async fn sqlite_triggers(conn: &mut sqlx::SqliteConnection, table: &str) -> Result<Vec<String>> {
    let [a, b, c] = sqlite_trigger_names(table);
    sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = $1 \
         AND name IN ($2, $3, $4) ORDER BY name",
    )
    .bind(table)
    .bind(a)
    .bind(b)
    .bind(c)
    .fetch_all(conn)
    .await
    .ctx("looking for audit triggers")
}

/// The enabled audit triggers of `table` (PostgreSQL), sorted by name.
async fn pg_triggers(conn: &mut sqlx::PgConnection, table: &str) -> Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT g.tgname::text FROM pg_trigger g
           JOIN pg_class c ON c.oid = g.tgrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relname = $1 AND n.nspname = current_schema()
            AND g.tgname = ANY ($2) AND NOT g.tgisinternal AND g.tgenabled <> 'D'
          ORDER BY 1",
    )
    .bind(table)
    .bind(&PG_TRIGGERS[..])
    .fetch_all(conn)
    .await
    .ctx("looking for audit triggers")
}

/// Coverage of one table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum Coverage {
    /// Triggers present and current.
    Covered,
    /// No audit trigger on the table.
    Missing,
    /// Triggers present but generated for another column set or
    /// configuration: run `bdc audit gen-triggers`.
    Stale(String),
    /// The table does not exist.
    NoTable,
    /// The table cannot be covered (e.g. no primary key).
    Invalid(String),
}

impl Coverage {
    pub fn is_covered(&self) -> bool {
        matches!(self, Coverage::Covered)
    }
}

/// Check the capture of each of `tables`.
pub async fn verify(
    storage: &Storage,
    cfg: &AuditConfig,
    tables: &[String],
) -> Result<Vec<(String, Coverage)>> {
    let mut out = Vec::new();
    for table in tables {
        let cov = coverage_of(storage, cfg, table).await?;
        out.push((table.clone(), cov));
    }
    crate::telemetry::sample(storage).await;
    Ok(out)
}

async fn coverage_of(storage: &Storage, cfg: &AuditConfig, table: &str) -> Result<Coverage> {
    let info = match table_info(storage, table).await {
        Ok(i) => i,
        Err(AuditError::NoSuchTable { .. }) => return Ok(Coverage::NoTable),
        Err(AuditError::NoPrimaryKey { table }) => {
            return Ok(Coverage::Invalid(format!(
                "table {table:?} has no primary key"
            )));
        }
        Err(e) => return Err(e),
    };
    let spec = match TriggerSpec::new(info, cfg) {
        Ok(spec) => spec,
        Err(e) => return Ok(Coverage::Invalid(e.to_string())),
    };
    let found = match storage.pool() {
        bdc_storage::Pool::Sqlite(p) => {
            let mut conn = p.acquire().await.ctx("looking for audit triggers")?;
            sqlite_triggers(&mut conn, table).await?
        }
        bdc_storage::Pool::Postgres(p) => {
            let mut conn = p.acquire().await.ctx("looking for audit triggers")?;
            pg_triggers(&mut conn, table).await?
        }
    };
    if found.is_empty() {
        return Ok(Coverage::Missing);
    }
    if found != expected_triggers(&spec, storage.backend()) {
        return Ok(Coverage::Stale(format!(
            "audit triggers {} are from an older version or incomplete; run `bdc audit gen-triggers`",
            found.join(", ")
        )));
    }
    if let Some(why) = tampered(storage, &spec).await? {
        return Ok(Coverage::Stale(why));
    }
    let registered: Option<String> = on_pool!(storage, p => sqlx::query_scalar::<_, String>(
        "SELECT trigger_sql FROM audit_covered_tables WHERE table_name = $1")
        .bind(table)
        .fetch_optional(p)
        .await)
    .ctx("reading the covered tables")?;
    let expected = match spec.sql(storage.backend()) {
        Ok(sql) => sql,
        Err(e) => return Ok(Coverage::Invalid(e.to_string())),
    };
    Ok(match registered {
        Some(sql) if sql == expected => Coverage::Covered,
        Some(_) => Coverage::Stale(
            "the table's columns or its audit configuration changed since the triggers were generated; run `bdc audit gen-triggers`"
                .into(),
        ),
        None => Coverage::Stale("triggers present but not registered; run `bdc audit gen-triggers`".into()),
    })
}

/// The body of the newest definition of a capture function in the audit
/// migrations (what `pg_proc.prosrc` holds when nobody replaced it).
fn expected_pg_body(name: &str) -> Option<&'static str> {
    let marker = format!("FUNCTION {name}() RETURNS ");
    crate::AUDIT.migrations.iter().rev().find_map(|m| {
        let at = m.postgres.find(&marker)?;
        let rest = &m.postgres[at..];
        let start = rest.find("$fn$")? + 4;
        let end = rest[start..].find("$fn$")?;
        Some(&rest[start..start + end])
    })
}

/// Whether the installed capture code differs from what bdc generates:
/// on PostgreSQL the capture functions' bodies (a replaced function
/// captures whatever it likes under the expected trigger names), on
/// SQLite each trigger's stored SQL. `Some(reason)` when it does.
async fn tampered(storage: &Storage, spec: &TriggerSpec) -> Result<Option<String>> {
    match storage.pool() {
        bdc_storage::Pool::Postgres(p) => {
            // Each audit trigger's function as the trigger calls it (by
            // OID, whatever schema it lives in), and its arguments: a
            // trigger re-pointed at a look-alike function in another schema,
            // or given other arguments (say, every column excluded), is not
            // capture, whatever its name.
            let rows: Vec<(String, String, String, String, Vec<u8>)> = sqlx::query_as(
                "SELECT g.tgname::text, fn.nspname::text, pr.proname::text, pr.prosrc, g.tgargs
                   FROM pg_trigger g
                   JOIN pg_class c ON c.oid = g.tgrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                   JOIN pg_proc pr ON pr.oid = g.tgfoid
                   JOIN pg_namespace fn ON fn.oid = pr.pronamespace
                  WHERE c.relname = $1 AND n.nspname = current_schema()
                    AND g.tgname = ANY ($2) AND NOT g.tgisinternal
                  ORDER BY 1",
            )
            .bind(&spec.info.name)
            .bind(&PG_TRIGGERS[..])
            .fetch_all(p)
            .await
            .ctx("reading the audit triggers' functions")?;
            let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
                .fetch_one(p)
                .await
                .ctx("reading the current schema")?;
            let expected_args = spec.pg_trigger_args();
            for (trigger, fn_schema, func, body, args) in rows {
                let want = match trigger.as_str() {
                    PG_ROW_TRIGGER | PG_UPDATE_TRIGGER => "bdc_audit_capture",
                    PG_INSERT_TRIGGER | PG_DELETE_TRIGGER => "bdc_audit_capture_rows",
                    _ => "bdc_audit_capture_truncate",
                };
                if func != want || fn_schema != schema {
                    return Ok(Some(format!(
                        "audit trigger {trigger} calls {fn_schema}.{func}(), not {schema}.{want}(): run `bdc audit gen-triggers`"
                    )));
                }
                if expected_pg_body(want).is_some_and(|b| b != body) {
                    return Ok(Some(format!(
                        "the capture function {want}() differs from the one bdc installs (replaced by hand?): restore the definition of the newest audit migration"
                    )));
                }
                let got: Vec<String> = args
                    .split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                if got != expected_args {
                    return Ok(Some(format!(
                        "audit trigger {trigger} has other arguments than bdc generates ({}); run `bdc audit gen-triggers`",
                        got.join(", ")
                    )));
                }
            }
            Ok(None)
        }
        bdc_storage::Pool::Sqlite(p) => {
            let expected = spec.sql(Backend::Sqlite)?;
            let names = sqlite_trigger_names(&spec.info.name);
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = $1",
            )
            .bind(&spec.info.name)
            .fetch_all(p)
            .await
            .ctx("reading the audit triggers")?;
            for (name, sql) in rows {
                if names.contains(&name) && !expected.contains(&sql) {
                    return Ok(Some(format!(
                        "audit trigger {name} differs from the one bdc generates (edited by hand?); run `bdc audit gen-triggers`"
                    )));
                }
            }
            Ok(None)
        }
    }
}

/// Tables with audit triggers registered.
pub async fn registered_tables(storage: &Storage) -> Result<Vec<String>> {
    on_pool!(storage, p => sqlx::query_scalar::<_, String>(
        "SELECT table_name FROM audit_covered_tables ORDER BY table_name")
        .fetch_all(p)
        .await)
    .ctx("listing covered tables")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, cols: &[&str], mask: &[&str], exclude: &[&str]) -> TriggerSpec {
        TriggerSpec {
            info: TableInfo {
                name: name.into(),
                columns: cols
                    .iter()
                    .map(|c| Column {
                        name: (*c).into(),
                        decl_type: "text".into(),
                    })
                    .collect(),
                primary_key: vec![cols[0].into()],
                row_triggers_only: false,
            },
            redaction: TableConfig {
                exclude: exclude.iter().map(|s| (*s).into()).collect(),
                mask: mask.iter().map(|s| (*s).into()).collect(),
            },
            require_actor: false,
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b; drop"), "\"a\"\"b; drop\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn excluded_names_never_appear_in_sqlite_sql() {
        let s = spec("t", &["id", "name", "secret_col"], &[], &["secret_col"]);
        let sql = s.sql(Backend::Sqlite).unwrap();
        assert!(!sql.contains("secret_col"));
        assert!(sql.contains("'name'"));
    }

    #[test]
    fn hostile_names_are_quoted() {
        let s = spec("a\"b; drop", &["i'd", "x\"y"], &["x\"y"], &[]);
        let sql = s.sql(Backend::Postgres).unwrap();
        assert!(sql.contains("ON \"a\"\"b; drop\""));
        assert!(sql.contains("'{\"i''d\"}'"), "{sql}");
        let sql = s.sql(Backend::Sqlite).unwrap();
        assert!(sql.contains("\"bdc_audit_insert_a\"\"b; drop\""));
        assert!(sql.contains("NEW.\"x\"\"y\""));
    }

    #[test]
    fn diff_shows_changed_lines() {
        let c = Covered {
            table: "t".into(),
            sql: "a\nb\n".into(),
            previous_sql: Some("a\nc\n".into()),
            changed: true,
            baseline_rows: 0,
        };
        assert_eq!(c.diff(), "-c\n+b\n");
    }
}
