//! PostgreSQL: several data-modifying statements sent as ONE statement.
//!
//! A collector's page of data touches several tables (a commit sync writes
//! users, commits, files, file changes and activity records). Sent one
//! statement per table, each costs a network round trip and its own
//! executor start-up, and sqlx cannot pipeline. [`PgBatch`] joins them as
//! data-modifying CTEs of one statement,
//!
//! ```sql
//! WITH p0 AS (INSERT … RETURNING 1), p1 AS (INSERT … RETURNING revision)
//! SELECT (SELECT count(*) FROM p0), (SELECT array_agg(v) FROM p1 AS t(v))
//! ```
//!
//! which PostgreSQL plans and runs once (measured with pgbench on five
//! 50-row upserts: 20–25 % less server time than five statements). The
//! semantics are those of the separate statements as long as each part
//! writes its own table: all parts see the snapshot taken when the
//! statement starts, so two parts touching the same row would fail
//! (`ON CONFLICT DO UPDATE`: "command cannot affect row a second time") or
//! skip it (`DO NOTHING`), and two parts on one table share one firing of
//! its statement triggers. Audit statement triggers (and the row triggers
//! of updated rows) fire at the end of the statement, in the writing
//! transaction, with its actor, as they did per statement.
//!
//! Values are bound as they are pushed ([`PgBatch::bind`] returns the
//! placeholder), so each part's SQL can be written where its table's
//! knowledge lives and the batch can be assembled across crates.

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Arguments, AssertSqlSafe, Encode, Postgres, Row, Type};

use crate::{QueryContext, Result, StorageError};

/// What the final `SELECT` reports of one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    /// The number of rows its `RETURNING` clause produced.
    Count,
    /// Its single `RETURNING` column (`bigint`) as an array.
    Int8s,
    /// Nothing: the part runs to completion all the same (PostgreSQL
    /// executes every data-modifying CTE whether or not it is read).
    Nothing,
}

/// A part's handle, to read its result after [`PgBatch::execute`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    index: usize,
    report: Report,
}

/// Data-modifying statements to run as one PostgreSQL statement.
#[derive(Default)]
pub struct PgBatch {
    parts: Vec<(String, Report)>,
    args: PgArguments,
    context: Vec<&'static str>,
}

impl std::fmt::Debug for PgBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBatch")
            .field("parts", &self.context)
            .field("arguments", &self.args.len())
            .finish()
    }
}

/// The results of an executed batch, per part.
#[derive(Debug)]
pub struct BatchResults {
    counts: Vec<Option<u64>>,
    int8s: Vec<Option<Vec<i64>>>,
}

impl BatchResults {
    /// Rows returned by a part pushed with [`PgBatch::push_counted`] onto
    /// the batch these are the results of.
    pub fn count(&self, part: Part) -> u64 {
        debug_assert_eq!(
            part.report,
            Report::Count,
            "count() of a part that is not counted"
        );
        self.counts.get(part.index).copied().flatten().unwrap_or(0)
    }

    /// The values returned by a part pushed with [`PgBatch::push_int8s`]
    /// onto the batch these are the results of (in no particular order).
    pub fn int8s(&self, part: Part) -> &[i64] {
        debug_assert_eq!(
            part.report,
            Report::Int8s,
            "int8s() of a part that returns no values"
        );
        self.int8s
            .get(part.index)
            .and_then(|v| v.as_deref())
            .unwrap_or(&[])
    }
}

impl PgBatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Nothing pushed yet.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Bind `value` and return its placeholder (`$n`) for a part's SQL.
    pub fn bind<'t, T>(&mut self, value: T, context: &'static str) -> Result<String>
    where
        T: Encode<'t, Postgres> + Type<Postgres>,
    {
        self.args.add(value).map_err(|e| StorageError::Query {
            context,
            source: sqlx::Error::Encode(e),
        })?;
        Ok(format!("${}", self.args.len()))
    }

    /// Add a data-modifying statement ending in a `RETURNING` clause; the
    /// batch reports how many rows it returned.
    pub fn push_counted(&mut self, sql: String, context: &'static str) -> Part {
        self.push(sql, Report::Count, context)
    }

    /// Add a data-modifying statement whose `RETURNING` clause yields one
    /// `bigint` column; the batch reports the values.
    pub fn push_int8s(&mut self, sql: String, context: &'static str) -> Part {
        self.push(sql, Report::Int8s, context)
    }

    /// Add a data-modifying statement whose result nobody reads.
    pub fn push_unreported(&mut self, sql: String, context: &'static str) -> Part {
        self.push(sql, Report::Nothing, context)
    }

    fn push(&mut self, sql: String, report: Report, context: &'static str) -> Part {
        self.parts.push((sql, report));
        self.context.push(context);
        Part {
            index: self.parts.len() - 1,
            report,
        }
    }

    /// The statement's text. It depends only on the parts' SQL, not on the
    /// bound values, so sqlx prepares it once per connection.
    fn sql(&self) -> String {
        let ctes: Vec<String> = self
            .parts
            .iter()
            .enumerate()
            .map(|(i, (sql, _))| format!("p{i} AS ({sql})"))
            .collect();
        let reports: Vec<String> = self
            .parts
            .iter()
            .enumerate()
            .filter_map(|(i, (_, report))| match report {
                Report::Count => Some(format!("(SELECT count(*) FROM p{i})")),
                Report::Int8s => Some(format!("(SELECT array_agg(v) FROM p{i} AS t(v))")),
                Report::Nothing => None,
            })
            .collect();
        // A SELECT needs a column: a batch of unreported parts selects 1.
        let select = if reports.is_empty() {
            "1".to_owned()
        } else {
            reports.join(", ")
        };
        format!("WITH {} SELECT {select}", ctes.join(", "))
    }

    /// Run the batch in `conn` (a transaction's connection).
    pub async fn execute(self, conn: &mut sqlx::PgConnection) -> Result<BatchResults> {
        let n = self.parts.len();
        let mut out = BatchResults {
            counts: vec![None; n],
            int8s: vec![None; n],
        };
        if n == 0 {
            return Ok(out);
        }
        let sql = self.sql();
        let row: PgRow = sqlx::query_with(AssertSqlSafe(sql), self.args)
            .fetch_one(conn)
            .await
            .map_err(|source| StorageError::Batch {
                parts: self.context.join(", "),
                source,
            })?;
        // Reported parts are the result's columns, in part order.
        let mut column = 0;
        for (i, (_, report)) in self.parts.iter().enumerate() {
            match report {
                Report::Count => {
                    let c: i64 = row.try_get(column).ctx("decoding a batch's row counts")?;
                    out.counts[i] = Some(u64::try_from(c).unwrap_or(0));
                    column += 1;
                }
                Report::Int8s => {
                    let v: Option<Vec<i64>> = row
                        .try_get(column)
                        .ctx("decoding a batch's returned values")?;
                    out.int8s[i] = Some(v.unwrap_or_default());
                    column += 1;
                }
                Report::Nothing => {}
            }
        }
        Ok(out)
    }
}
