//! Behavioural tests of the audit trail, each run on SQLite and on a real
//! PostgreSQL server (a fresh database per test).

use bdc_audit::config::AuditConfig;
use bdc_audit::query::{self, ExportFormat, TimelineFilter};
use bdc_audit::retention::{PurgeOptions, purge};
use bdc_audit::triggers::{self, Coverage};
use bdc_audit::{AUDIT, AuditError, record_action};
use bdc_core::Actor;
use bdc_storage::{ConnectOptions, Storage, Tx, on_pool, on_tx};
use bdc_testsupport::{Kind, TestDb};
use chrono::{TimeZone, Utc};
use sqlx::AssertSqlSafe;

use bdc_testsupport::both_backends as both;

async fn open(kind: Kind) -> (TestDb, Storage) {
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default())
        .await
        .unwrap();
    storage.migrate_parts(&[&AUDIT]).await.unwrap();
    (db, storage)
}

/// Create a test table `name` (id integer primary key + text columns).
async fn create_table(s: &Storage, name: &str, cols: &[&str]) {
    let id_type = match s.backend() {
        bdc_storage::Backend::Sqlite => "INTEGER",
        bdc_storage::Backend::Postgres => "BIGINT",
    };
    let mut defs = vec![format!("id {id_type} PRIMARY KEY")];
    for c in cols {
        defs.push(format!("{} TEXT", triggers::quote_ident(c)));
    }
    s.execute_raw(format!(
        "CREATE TABLE {} ({})",
        triggers::quote_ident(name),
        defs.join(", ")
    ))
    .await
    .unwrap();
}

async fn exec(tx: &mut Tx, sql: &str) {
    let sql = sql.to_owned();
    on_tx!(tx, t => sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut **t).await.map(|_| ())).unwrap();
}

async fn write(s: &Storage, sqls: &[&str]) {
    let mut tx = s.begin().await.unwrap();
    for q in sqls {
        exec(&mut tx, q).await;
    }
    tx.commit().await.unwrap();
}

/// `sql`'s single value, after expanding pending captures (PostgreSQL).
async fn scalar(s: &Storage, sql: &str) -> i64 {
    bdc_audit::flush(s).await.unwrap();
    scalar_now(s, sql).await
}

/// `sql`'s single value as it stands (pending captures left pending).
async fn scalar_now(s: &Storage, sql: &str) -> i64 {
    let sql = sql.to_owned();
    on_pool!(s, p => sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql)).fetch_one(p).await).unwrap()
}

async fn all(s: &Storage, table: &str) -> Vec<query::ChangeRow> {
    let mut page = query::timeline(
        s,
        &TimelineFilter {
            table: Some(table.into()),
            limit: Some(10_000),
            ..TimelineFilter::default()
        },
    )
    .await
    .unwrap();
    page.items.reverse();
    page.items
}

/// Create and cover the table `items` (id, name); returns a handle writing
/// as the job `test`/`run-1`.
async fn covered_items(s: &Storage) -> Storage {
    create_table(s, "items", &["name"]).await;
    triggers::cover_tables(s, &no_platform(), &["items".into()], false)
        .await
        .unwrap();
    s.with_actor(&Actor::job("test", "run-1"))
}

fn cfg(yaml: &str) -> AuditConfig {
    AuditConfig::parse(yaml, "test.yaml").unwrap()
}

fn no_platform() -> AuditConfig {
    cfg("cover_platform_tables: false\n")
}

both!(captures_each_op_grouped_per_transaction);
async fn captures_each_op_grouped_per_transaction(kind: Kind) {
    let (_db, s) = open(kind).await;
    create_table(&s, "items", &["name", "qty"]).await;
    let c = triggers::cover_tables(&s, &no_platform(), &["items".into()], false)
        .await
        .unwrap();
    assert!(c[0].changed);
    // Idempotent: a second run changes nothing.
    let again = triggers::cover_tables(&s, &no_platform(), &["items".into()], false)
        .await
        .unwrap();
    assert!(!again[0].changed);

    let job = s.with_actor(&Actor::job("wg21-papers", "run-1"));
    write(
        &job,
        &[
            "INSERT INTO items (id, name, qty) VALUES (1, 'a', '1')",
            "INSERT INTO items (id, name, qty) VALUES (2, 'b', '2')",
            "UPDATE items SET qty = '5' WHERE id = 1",
        ],
    )
    .await;
    let rows = all(&s, "items").await;
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r.transaction_id == rows[0].transaction_id)
    );
    assert_eq!(rows[0].op, "INSERT");
    assert_eq!(rows[0].pk, serde_json::json!({"id": 1}));
    assert_eq!(rows[0].data_after.as_ref().unwrap()["name"], "a");
    assert_eq!(rows[0].actor_type.as_deref(), Some("job"));
    assert_eq!(rows[0].actor_id.as_deref(), Some("wg21-papers"));
    assert_eq!(rows[0].actor.as_ref().unwrap()["run_id"], "run-1");
    assert_eq!(rows[2].op, "UPDATE");
    assert_eq!(rows[2].changed_fields, Some(serde_json::json!(["qty"])));
    assert_eq!(rows[2].changed_from, Some(serde_json::json!({"qty": "1"})));

    // An UPDATE that changes nothing records nothing (no audit transaction either).
    let cli = s.with_actor(&Actor::Cli {
        user: "alice".into(),
    });
    let txs_before = scalar(&s, "SELECT COUNT(*) FROM audit_transactions").await;
    write(&cli, &["UPDATE items SET name = name, qty = qty"]).await;
    assert_eq!(all(&s, "items").await.len(), 3);
    assert_eq!(
        scalar(&s, "SELECT COUNT(*) FROM audit_transactions").await,
        txs_before
    );

    write(&cli, &["DELETE FROM items WHERE id = 2"]).await;
    let rows = all(&s, "items").await;
    let del = rows.last().unwrap();
    assert_eq!(del.op, "DELETE");
    assert_eq!(del.pk, serde_json::json!({"id": 2}));
    assert!(del.data_after.is_none());
    assert_eq!(del.changed_from.as_ref().unwrap()["name"], "b");
    assert_eq!(del.actor_id.as_deref(), Some("alice"));
    assert_ne!(del.transaction_id, rows[0].transaction_id);

    // A write without an actor is recorded anonymously (require_actor off) and
    // does not inherit the previous transaction's actor.
    write(&s, &["UPDATE items SET qty = '9' WHERE id = 1"]).await;
    let last = all(&s, "items").await.pop().unwrap();
    assert!(last.actor.is_none());
    assert!(last.actor_type.is_none());

    // A rolled-back transaction leaves nothing.
    let mut tx = job.begin().await.unwrap();
    exec(
        &mut tx,
        "INSERT INTO items (id, name, qty) VALUES (3, 'c', '3')",
    )
    .await;
    tx.rollback().await.unwrap();
    assert_eq!(all(&s, "items").await.len(), 5);

    // Drill-down.
    let detail = query::transaction_changes(&s, rows[0].transaction_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.changes.len(), 3);
    assert!(
        query::transaction_changes(&s, 999_999)
            .await
            .unwrap()
            .is_none()
    );
}

both!(platform_tables_are_captured_through_the_stores);
async fn platform_tables_are_captured_through_the_stores(kind: Kind) {
    let (_db, s) = open(kind).await;
    let covered = bdc_audit::cover_configured(&s, &AuditConfig::default())
        .await
        .unwrap();
    assert_eq!(covered.len(), 4);
    let job = s.with_actor(&Actor::job("wg21-papers", "run-7"));
    let rec = bdc_core::ActivityRecord::new(
        "wg21",
        "P1000",
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        "paper",
    )
    .unwrap()
    .with_title("t");
    job.activity()
        .upsert(std::slice::from_ref(&rec), Some("run-7"), None)
        .await
        .unwrap();
    // Unchanged upsert: no new change.
    job.activity()
        .upsert(&[rec], Some("run-7"), None)
        .await
        .unwrap();
    let rows = all(&s, "activity_records").await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].actor_id.as_deref(), Some("wg21-papers"));
    let report = triggers::verify(
        &s,
        &AuditConfig::default(),
        // This database has only the foundation part: the greenness and
        // identity tables of PLATFORM_TABLES do not exist here.
        &bdc_audit::config::PLATFORM_TABLES
            .iter()
            .filter(|t| !t.starts_with("greenness_"))
            .filter(|t| !["identities", "profiles", "identity_decisions"].contains(t))
            .map(|t| (*t).to_owned())
            .collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    assert!(report.iter().all(|(_, c)| c.is_covered()), "{report:?}");
}

both!(require_actor_refuses_anonymous_writes);
async fn require_actor_refuses_anonymous_writes(kind: Kind) {
    let (_db, s) = open(kind).await;
    create_table(&s, "items", &["name"]).await;
    let c = cfg("cover_platform_tables: false\nrequire_actor: true\ntables:\n  items:\n");
    triggers::cover_tables(&s, &c, &["items".into()], false)
        .await
        .unwrap();
    let mut tx = s.begin().await.unwrap();
    let sql = "INSERT INTO items (id, name) VALUES (1, 'x')";
    let res =
        on_tx!(&mut tx, t => sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut **t).await.map(|_| ()));
    let err = res.unwrap_err().to_string();
    assert!(err.contains("without an actor"), "{err}");
    drop(tx);
    assert_eq!(scalar(&s, "SELECT COUNT(*) FROM items").await, 0);
    assert_eq!(scalar(&s, "SELECT COUNT(*) FROM audit_changes").await, 0);
    let ok = s.with_actor(&Actor::system("test"));
    write(&ok, &[sql]).await;
    assert_eq!(all(&s, "items").await.len(), 1);
}

both!(redacted_values_never_reach_the_audit_tables);
async fn redacted_values_never_reach_the_audit_tables(kind: Kind) {
    let (_db, s) = open(kind).await;
    create_table(&s, "accounts", &["name", "token_hash", "password", "meta"]).await;
    let yaml = "cover_platform_tables: false\ntables:\n  accounts:\n    exclude: [token_hash]\n    mask: [password, meta]\n";
    let c = cfg(yaml);
    // Dry run shows SQL and changes nothing.
    let dry = triggers::cover_tables(&s, &c, &["accounts".into()], true)
        .await
        .unwrap();
    assert!(dry[0].changed);
    if kind == Kind::Sqlite {
        // SQLite's generated triggers never name an excluded column.
        assert!(!dry[0].sql.contains("token_hash"));
    }
    assert_eq!(
        triggers::verify(&s, &c, &["accounts".into()])
            .await
            .unwrap()[0]
            .1,
        Coverage::Missing
    );
    triggers::cover_tables(&s, &c, &["accounts".into()], false)
        .await
        .unwrap();
    let actor = s.with_actor(&Actor::system("test"));
    write(
        &actor,
        &[
            "INSERT INTO accounts (id, name, token_hash, password, meta) VALUES (1, 'n', 'SECRET-tok-1', 'SECRET-pw-1', '{\"k\":\"SECRET-json\"}')",
            "UPDATE accounts SET password = 'SECRET-pw-2', meta = '{\"k\":\"SECRET-json-2\"}' WHERE id = 1",
            "DELETE FROM accounts WHERE id = 1",
        ],
    )
    .await;
    {
        // Pending captures are stored redacted, before any flush.
        let sql = match kind {
            Kind::Postgres => "SELECT coalesce(string_agg(p::text, ' '), '') FROM audit_pending p",
            Kind::Sqlite => {
                "SELECT coalesce(group_concat(coalesce(data_after,'') || coalesce(changed_fields,'') || coalesce(changed_from,'') || table_pk, ' '), '') FROM audit_pending"
            }
        };
        let pending: String = on_pool!(s, p => sqlx::query_scalar::<_, String>(sql)
            .fetch_one(p).await)
        .unwrap();
        assert!(pending.contains("***"), "{pending}");
        assert!(!pending.contains("SECRET"), "{pending}");
        assert!(!pending.contains("token_hash"), "{pending}");
    }
    // Only the excluded column changes: nothing recorded.
    write(
        &actor,
        &["INSERT INTO accounts (id, name, token_hash) VALUES (2, 'm', 'SECRET-tok-2')"],
    )
    .await;
    let n = all(&s, "accounts").await.len();
    write(
        &actor,
        &["UPDATE accounts SET token_hash = 'SECRET-tok-3' WHERE id = 2"],
    )
    .await;
    assert_eq!(all(&s, "accounts").await.len(), n);

    let rows = all(&s, "accounts").await;
    assert_eq!(rows[0].data_after.as_ref().unwrap()["password"], "***");
    assert_eq!(rows[0].data_after.as_ref().unwrap()["meta"], "***");
    assert_eq!(rows[1].changed_from.as_ref().unwrap()["password"], "***");
    assert_eq!(
        rows[1].changed_fields,
        Some(serde_json::json!(["meta", "password"]))
    );
    // Search the raw text of every audit table for the secrets and the
    // excluded column's name.
    let raw_text = match kind {
        Kind::Postgres => {
            "SELECT (SELECT string_agg(c::text, ' ') FROM audit_changes c) || ' ' ||
                    coalesce((SELECT string_agg(t::text, ' ') FROM audit_transactions t), '') || ' ' ||
                    coalesce((SELECT string_agg(a::text, ' ') FROM audit_actions a), '')"
        }
        Kind::Sqlite => {
            "SELECT (SELECT group_concat(coalesce(data_after,'') || coalesce(changed_fields,'') || coalesce(changed_from,'') || table_pk || table_name, ' ') FROM audit_changes)
                 || coalesce((SELECT group_concat(coalesce(actor,''), ' ') FROM audit_transactions), '')"
        }
    };
    let text: String =
        on_pool!(s, p => sqlx::query_scalar::<_, String>(raw_text).fetch_one(p).await).unwrap();
    assert!(text.contains("***"));
    assert!(!text.contains("SECRET"), "{text}");
    assert!(!text.contains("token_hash"), "{text}");

    // Changing the configuration makes the triggers stale; the dry run shows
    // the difference; gen-triggers fixes it.
    let c2 = cfg(
        "cover_platform_tables: false\ntables:\n  accounts:\n    exclude: [token_hash, meta]\n    mask: [password]\n",
    );
    assert!(matches!(
        triggers::verify(&s, &c2, &["accounts".into()])
            .await
            .unwrap()[0]
            .1,
        Coverage::Stale(_)
    ));
    let dry = triggers::cover_tables(&s, &c2, &["accounts".into()], true)
        .await
        .unwrap();
    assert!(dry[0].changed);
    assert!(!dry[0].diff().is_empty());
    triggers::cover_tables(&s, &c2, &["accounts".into()], false)
        .await
        .unwrap();
    assert!(
        triggers::verify(&s, &c2, &["accounts".into()])
            .await
            .unwrap()[0]
            .1
            .is_covered()
    );
}

both!(concurrent_transactions_keep_their_own_actors);
async fn concurrent_transactions_keep_their_own_actors(kind: Kind) {
    let (_db, s) = open(kind).await;
    create_table(&s, "items", &["name"]).await;
    triggers::cover_tables(&s, &no_platform(), &["items".into()], false)
        .await
        .unwrap();
    concurrent_actor_check(&s, &s, 24).await;
}

/// `n` clients, each with its own actor, write concurrently (several
/// statements per transaction); every change must carry its writer's
/// actor, and a later write without actor must be anonymous.
async fn concurrent_actor_check(w: &Storage, s: &Storage, n: i64) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let h = w.with_actor(&Actor::http(format!("caller-{i}")));
        tasks.push(tokio::spawn(async move {
            let mut tx = h.begin().await.unwrap();
            exec(
                &mut tx,
                &format!("INSERT INTO items (id, name) VALUES ({i}, 'x{i}')"),
            )
            .await;
            tokio::task::yield_now().await;
            exec(
                &mut tx,
                &format!("UPDATE items SET name = 'y{i}' WHERE id = {i}"),
            )
            .await;
            tx.commit().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rows = all(s, "items").await;
    assert_eq!(rows.len() as i64, 2 * n);
    for r in &rows {
        let id = r.pk["id"].as_i64().unwrap();
        assert_eq!(
            r.actor_id.as_deref(),
            Some(format!("caller-{id}").as_str()),
            "{r:?}"
        );
        assert_eq!(r.actor_type.as_deref(), Some("http"));
    }
    // Both changes of a client share one transaction, distinct per client.
    let mut txs: Vec<i64> = rows.iter().map(|r| r.transaction_id).collect();
    txs.sort();
    txs.dedup();
    assert_eq!(txs.len() as i64, n);
    // No leak into a later transaction without an actor.
    write(w, &["UPDATE items SET name = 'anon' WHERE id = 0"]).await;
    let last = all(s, "items").await.pop().unwrap();
    assert!(last.actor.is_none(), "{last:?}");
}

both!(purge_respects_the_cutoff_exactly);
async fn purge_respects_the_cutoff_exactly(kind: Kind) {
    let (_db, s) = open(kind).await;
    create_table(&s, "items", &["name"]).await;
    create_table(&s, "keep_longer", &["name"]).await;
    triggers::cover_tables(
        &s,
        &no_platform(),
        &["items".into(), "keep_longer".into()],
        false,
    )
    .await
    .unwrap();
    // Covering records each table's columns (one action transaction each).
    let offset = scalar(&s, "SELECT COUNT(*) FROM audit_transactions").await;
    let a = s.with_actor(&Actor::system("t"));
    // Item 1 is inserted and deleted (nothing to keep), item 4 inserted
    // and updated (its state at the cutoff is kept as a baseline).
    write(
        &a,
        &[
            "INSERT INTO items (id, name) VALUES (1, 'n')",
            "DELETE FROM items WHERE id = 1",
        ],
    )
    .await;
    for i in 2..=3 {
        write(
            &a,
            &[&format!("INSERT INTO items (id, name) VALUES ({i}, 'n')")],
        )
        .await;
    }
    write(
        &a,
        &[
            "INSERT INTO items (id, name) VALUES (4, 'n')",
            "UPDATE items SET name = 'm' WHERE id = 4",
        ],
    )
    .await;
    write(&a, &["INSERT INTO keep_longer (id, name) VALUES (1, 'n')"]).await;
    // The flush creates the captured transactions (not chained here: the
    // test dates them by hand below).
    bdc_audit::pending::expand_best_effort(&s).await;
    let now = Utc.with_ymd_and_hms(2026, 1, 11, 0, 0, 0).unwrap();
    // keep_days 10 -> cutoff 2026-01-01T00:00:00Z.
    let times = [
        (1, "2025-12-31T23:59:59.999"), // 1 ms before the cutoff: purged
        (2, "2026-01-01T00:00:00.000"), // exactly at the cutoff: kept
        (3, "2026-01-05T00:00:00.000"), // newer: kept
        (4, "2025-06-01T00:00:00.000"), // old: purged
        (5, "2025-06-01T00:00:00.000"), // old, but its table keeps 400 days
    ];
    for (id, t) in times {
        let id = id + offset;
        let sql = match kind {
            Kind::Sqlite => {
                format!("UPDATE audit_transactions SET occurred_at = '{t}Z' WHERE id = {id}")
            }
            Kind::Postgres => format!(
                "UPDATE audit_transactions SET occurred_at = '{t}Z'::timestamptz WHERE id = {id}"
            ),
        };
        s.execute_raw(sql).await.unwrap();
    }
    let mut policy = cfg("retention:\n  enabled: false\n  keep_days: 10\n  tables:\n    keep_longer: {keep_days: 400}\n").retention;
    let opts = PurgeOptions {
        now: Some(now),
        batch_size: 1,
        ..PurgeOptions::default()
    };
    // Dry run by default.
    let r = purge(&s, &policy, &opts).await.unwrap();
    assert!(!r.executed);
    assert_eq!(r.eligible_changes, 4);
    // --execute without enabled: still nothing.
    let exec_opts = PurgeOptions {
        execute: true,
        ..opts.clone()
    };
    let r = purge(&s, &policy, &exec_opts).await.unwrap();
    assert!(!r.executed);
    assert_eq!(scalar(&s, "SELECT COUNT(*) FROM audit_changes").await, 7);
    policy.enabled = true;
    // max_batches stops early.
    let r = purge(
        &s,
        &policy,
        &PurgeOptions {
            max_batches: Some(1),
            ..exec_opts.clone()
        },
    )
    .await
    .unwrap();
    assert!(r.stopped_early);
    assert_eq!(r.compacted_rows, 1);
    assert_eq!(r.deleted_changes, 1);
    let r = purge(&s, &policy, &exec_opts).await.unwrap();
    assert!(r.executed);
    assert_eq!(r.compacted_rows, 0);
    assert_eq!(r.deleted_changes, 2);
    bdc_audit::flush(&s).await.unwrap();
    let left: Vec<i64> = on_pool!(s, p => sqlx::query_scalar::<_, i64>(
        "SELECT transaction_id FROM audit_changes ORDER BY transaction_id").fetch_all(p).await)
    .unwrap();
    // Item 4's update survives as a baseline in the compaction transaction (6).
    assert_eq!(
        left,
        [2, 3, 5, 6].iter().map(|i| i + offset).collect::<Vec<_>>()
    );
    // Empty old transactions are gone, the purge recorded its own action.
    assert_eq!(
        scalar(
            &s,
            &format!(
                "SELECT COUNT(*) FROM audit_transactions WHERE id IN ({}, {})",
                1 + offset,
                4 + offset
            )
        )
        .await,
        0
    );
    let actions = query::timeline(&s, &TimelineFilter::default())
        .await
        .unwrap();
    assert!(
        actions
            .items
            .iter()
            .all(|r| r.action.is_none() || r.action.as_deref() == Some("retention.compact"))
    );
    assert_eq!(
        scalar(
            &s,
            "SELECT COUNT(*) FROM audit_actions WHERE name = 'retention.purge'"
        )
        .await,
        2
    );
}

both!(export_equals_timeline);
async fn export_equals_timeline(kind: Kind) {
    let (_db, s) = open(kind).await;
    create_table(&s, "items", &["name"]).await;
    triggers::cover_tables(&s, &no_platform(), &["items".into()], false)
        .await
        .unwrap();
    for i in 0..30 {
        let h = s.with_actor(&Actor::job(
            if i % 2 == 0 { "even" } else { "odd" },
            format!("r{i}"),
        ));
        write(
            &h,
            &[&format!(
                "INSERT INTO items (id, name) VALUES ({i}, 'n,\"{i}\"\n')"
            )],
        )
        .await;
    }
    let filter = TimelineFilter {
        table: Some("items".into()),
        actor_type: Some("job".into()),
        actor_id: Some("even".into()),
        limit: Some(10),
        ..TimelineFilter::default()
    };
    let page = query::timeline(&s, &filter).await.unwrap();
    assert_eq!(page.items.len(), 10);
    let mut buf = Vec::new();
    let n = query::export(
        &s,
        &filter,
        ExportFormat::Ndjson,
        Some(10),
        &mut buf,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(n, 10);
    let exported: Vec<query::ChangeRow> = String::from_utf8(buf)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported, page.items);
    // Paging with the cursor covers the rest.
    let next = query::timeline(
        &s,
        &TimelineFilter {
            cursor: page.next_cursor,
            ..filter.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(next.items.len(), 5);
    assert_eq!(query::count(&s, &filter).await.unwrap(), 15);
    // CSV: header + 15 records (fields with commas, quotes and newlines quoted).
    let mut csv_buf = Vec::new();
    let n = query::export(&s, &filter, ExportFormat::Csv, None, &mut csv_buf, |_| {})
        .await
        .unwrap();
    assert_eq!(n, 15);
    let mut rdr = csv::Reader::from_reader(csv_buf.as_slice());
    let recs: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(recs.len(), 15);
    assert_eq!(recs[0][0], page.items[0].change_id.to_string());
    // pk filter.
    let one = query::timeline(
        &s,
        &TimelineFilter {
            table: Some("items".into()),
            pk: Some("{\"id\": 4}".into()),
            ..TimelineFilter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(one.items.len(), 1);
    assert_eq!(one.items[0].pk, serde_json::json!({"id": 4}));
    assert!(matches!(
        query::timeline(
            &s,
            &TimelineFilter {
                pk: Some("[1]".into()),
                ..TimelineFilter::default()
            }
        )
        .await,
        Err(AuditError::InvalidFilter { .. })
    ));
}

both!(baseline_and_later_changes_reconstruct_the_row);
async fn baseline_and_later_changes_reconstruct_the_row(kind: Kind) {
    let (_db, s) = open(kind).await;
    create_table(&s, "legacy", &["name", "qty"]).await;
    write(
        &s,
        &[
            "INSERT INTO legacy (id, name, qty) VALUES (1, 'a', '1')",
            "INSERT INTO legacy (id, name, qty) VALUES (2, 'b', '2')",
        ],
    )
    .await;
    let actor = s.with_actor(&Actor::system("audit"));
    let c = triggers::cover_tables(&actor, &no_platform(), &["legacy".into()], false)
        .await
        .unwrap();
    assert_eq!(c[0].baseline_rows, 2);
    let rows = all(&s, "legacy").await;
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.baseline && r.op == "INSERT"));
    // Covering again records no second baseline.
    let c = triggers::cover_tables(&actor, &no_platform(), &["legacy".into()], false)
        .await
        .unwrap();
    assert_eq!(c[0].baseline_rows, 0);
    write(
        &actor,
        &[
            "UPDATE legacy SET qty = '7' WHERE id = 1",
            "UPDATE legacy SET name = 'z' WHERE id = 1",
            "INSERT INTO legacy (id, name, qty) VALUES (3, 'c', '3')",
            "DELETE FROM legacy WHERE id = 2",
        ],
    )
    .await;
    // Replay: baseline + changes = current table.
    let mut state: std::collections::BTreeMap<String, serde_json::Value> = Default::default();
    for r in all(&s, "legacy").await {
        let key = r.pk.to_string();
        match r.op.as_str() {
            "INSERT" => {
                state.insert(key, r.data_after.unwrap());
            }
            "UPDATE" => {
                let row = state.get_mut(&key).unwrap();
                let after = r.data_after.unwrap();
                for f in r.changed_fields.unwrap().as_array().unwrap() {
                    let f = f.as_str().unwrap();
                    row[f] = after[f].clone();
                }
            }
            "DELETE" => {
                state.remove(&key);
            }
            other => panic!("op {other}"),
        }
    }
    let current_sql = match kind {
        Kind::Sqlite => {
            "SELECT json_object('id', id, 'name', name, 'qty', qty) FROM legacy ORDER BY id"
        }
        Kind::Postgres => "SELECT to_jsonb(l)::text FROM legacy l ORDER BY id",
    };
    let current: Vec<String> =
        on_pool!(s, p => sqlx::query_scalar::<_, String>(current_sql).fetch_all(p).await).unwrap();
    let current: Vec<serde_json::Value> = current
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    let replayed: Vec<serde_json::Value> = state.into_values().collect();
    assert_eq!(replayed, current);
    // Explicit baseline.
    assert_eq!(
        triggers::baseline(&actor, &no_platform(), "legacy")
            .await
            .unwrap(),
        2
    );
}

both!(hostile_names_and_refusals);
async fn hostile_names_and_refusals(kind: Kind) {
    let (_db, s) = open(kind).await;
    let hostile = "a\"b; drop table items; --";
    create_table(&s, hostile, &["we'ird \"col\"", "x"]).await;
    create_table(&s, "items", &["name"]).await;
    let yaml = "cover_platform_tables: false\ntables:\n  'a\"b; drop table items; --':\n    mask: [\"we'ird \\\"col\\\"\"]\n";
    let c = cfg(yaml);
    triggers::cover_tables(&s, &c, &[hostile.into()], false)
        .await
        .unwrap();
    let q = triggers::quote_ident(hostile);
    let a = s.with_actor(&Actor::system("t"));
    write(
        &a,
        &[
            &format!("INSERT INTO {q} (id, \"we'ird \"\"col\"\"\", x) VALUES (1, 'secret', 'v')"),
            &format!("UPDATE {q} SET x = 'w' WHERE id = 1"),
        ],
    )
    .await;
    let rows = all(&s, hostile).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].data_after.as_ref().unwrap()["we'ird \"col\""],
        "***"
    );
    assert_eq!(rows[1].changed_fields, Some(serde_json::json!(["x"])));
    assert_eq!(scalar(&s, "SELECT COUNT(*) FROM items").await, 0);
    assert!(
        triggers::verify(&s, &c, &[hostile.into()]).await.unwrap()[0]
            .1
            .is_covered()
    );

    let err = triggers::cover_tables(&s, &c, &["nope".into()], false)
        .await
        .unwrap_err();
    assert!(matches!(err, AuditError::NoSuchTable { .. }), "{err}");
    s.execute_raw("CREATE TABLE nopk (a TEXT)".into())
        .await
        .unwrap();
    let err = triggers::cover_tables(&s, &c, &["nopk".into()], false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no primary key"), "{err}");
    let bad = cfg("tables:\n  items:\n    mask: [nosuch]\n");
    let err = triggers::cover_tables(&s, &bad, &["items".into()], false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nosuch"), "{err}");
    let v = triggers::verify(&s, &c, &["nope".into(), "nopk".into(), "items".into()])
        .await
        .unwrap();
    assert_eq!(v[0].1, Coverage::NoTable);
    assert!(matches!(v[1].1, Coverage::Invalid(_)));
    assert_eq!(v[2].1, Coverage::Missing);
}

both!(stale_triggers_are_detected_and_regenerated);
async fn stale_triggers_are_detected_and_regenerated(kind: Kind) {
    let (_db, s) = open(kind).await;
    create_table(&s, "items", &["name"]).await;
    let c = no_platform();
    triggers::cover_tables(&s, &c, &["items".into()], false)
        .await
        .unwrap();
    s.execute_raw("ALTER TABLE items ADD COLUMN extra TEXT".into())
        .await
        .unwrap();
    let v = triggers::verify(&s, &c, &["items".into()]).await.unwrap();
    match kind {
        // SQLite triggers list columns: stale until regenerated.
        Kind::Sqlite => assert!(matches!(v[0].1, Coverage::Stale(_)), "{v:?}"),
        // The PostgreSQL trigger reads the whole row: still current.
        Kind::Postgres => assert!(v[0].1.is_covered(), "{v:?}"),
    }
    triggers::cover_tables(&s, &c, &["items".into()], false)
        .await
        .unwrap();
    assert!(
        triggers::verify(&s, &c, &["items".into()]).await.unwrap()[0]
            .1
            .is_covered()
    );
    write(
        &s.with_actor(&Actor::system("t")),
        &["INSERT INTO items (id, name, extra) VALUES (1, 'a', 'new')"],
    )
    .await;
    assert_eq!(
        all(&s, "items").await[0].data_after.as_ref().unwrap()["extra"],
        "new"
    );
}

both!(actions_link_to_their_transaction);
async fn actions_link_to_their_transaction(kind: Kind) {
    let (_db, s) = open(kind).await;
    create_table(&s, "items", &["name"]).await;
    triggers::cover_tables(&s, &no_platform(), &["items".into()], false)
        .await
        .unwrap();
    let actor = Actor::Cli { user: "bob".into() };
    let h = s.with_actor(&actor);
    let mut tx = h.begin().await.unwrap();
    exec(&mut tx, "INSERT INTO items (id, name) VALUES (1, 'a')").await;
    record_action(
        &mut tx,
        "identity.merge",
        Some(&actor),
        "ok",
        Some("duplicate person"),
    )
    .await
    .unwrap();
    exec(&mut tx, "INSERT INTO items (id, name) VALUES (2, 'b')").await;
    tx.commit().await.unwrap();
    let page = query::timeline(
        &s,
        &TimelineFilter {
            action: Some("identity.merge".into()),
            ..TimelineFilter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(page.items.len(), 2);
    let detail = query::transaction_changes(&s, page.items[0].transaction_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.actions.len(), 1);
    assert_eq!(detail.actions[0].name, "identity.merge");
    assert_eq!(
        detail.actions[0].reason.as_deref(),
        Some("duplicate person")
    );
    // An action alone (no changes) opens its own transaction.
    let mut tx = s.begin().await.unwrap();
    record_action(
        &mut tx,
        "retention.purge",
        Some(&Actor::system("retention")),
        "ok",
        None,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        scalar(&s, "SELECT COUNT(*) FROM audit_transactions WHERE action = 'retention.purge' AND actor_type = 'system'").await,
        1
    );
}

both!(http_api_needs_the_bearer_token);
async fn http_api_needs_the_bearer_token(kind: Kind) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (_db, s) = open(kind).await;
    create_table(&s, "items", &["name"]).await;
    triggers::cover_tables(&s, &no_platform(), &["items".into()], false)
        .await
        .unwrap();
    write(
        &s.with_actor(&Actor::http("carol")),
        &["INSERT INTO items (id, name) VALUES (1, 'a')"],
    )
    .await;
    let app = bdc_audit::http::router(s.clone(), Some("tok".into()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let url = format!(
        "http://{addr}/api/audit/timeline?table=items&actor_id=carol&limit=5&since=2020-01-01T00:00:00Z"
    );
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = client.get(&url).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = client.get(&url).bearer_auth("tok").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    let tx = body["items"][0]["transaction_id"].as_i64().unwrap();
    let url = format!("http://{addr}/api/audit/transactions/{tx}/changes");
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    let r = client.get(&url).bearer_auth("tok").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["changes"][0]["data_after"]["name"], "a");
    let r = client
        .get(format!(
            "http://{addr}/api/audit/transactions/424242/changes"
        ))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client
        .get(format!("http://{addr}/api/audit/timeline?bogus=1"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // No token configured: fail closed.
    let closed = bdc_audit::http::router(s.clone(), None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr2 = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, closed).await });
    let r = client
        .get(format!("http://{addr2}/api/audit/timeline"))
        .bearer_auth("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// The actor bridge through a real PgBouncer in `pool_mode = transaction`
/// (`scripts/pgbouncer` exports `BDC_TEST_PGBOUNCER_URL`; `scripts/test`
/// always starts it): many concurrent clients with different actors share
/// few server connections, each change keeps its own actor and nothing
/// leaks into a later transaction without actor.
#[tokio::test(flavor = "multi_thread")]
async fn actor_bridge_through_pgbouncer_transaction_pooling() {
    let Ok(pgb) = std::env::var("BDC_TEST_PGBOUNCER_URL") else {
        assert!(
            std::env::var_os("BDC_REQUIRE_PGBOUNCER").is_none(),
            "BDC_REQUIRE_PGBOUNCER is set but BDC_TEST_PGBOUNCER_URL is not (source scripts/pgbouncer)"
        );
        eprintln!(
            "SKIPPED: BDC_TEST_PGBOUNCER_URL is not set (scripts/test sets it via scripts/pgbouncer)"
        );
        return;
    };
    let (db, direct) = open(Kind::Postgres).await;
    create_table(&direct, "items", &["name"]).await;
    triggers::cover_tables(&direct, &no_platform(), &["items".into()], false)
        .await
        .unwrap();
    // Same database, through the pooler.
    let db_name = db
        .url()
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let (base, query) = pgb.split_once('?').unwrap_or((pgb.as_str(), ""));
    let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
    let url = if query.is_empty() {
        format!("{base}/{db_name}")
    } else {
        format!("{base}/{db_name}?{query}")
    };
    let pooled = Storage::connect(
        &url,
        &ConnectOptions {
            max_connections: 48,
            ..ConnectOptions::default()
        },
    )
    .await
    .unwrap();
    // Several rounds so server connections are reused by different clients.
    concurrent_actor_check(&pooled, &direct, 48).await;
    for round in 0..3 {
        let mut tasks = Vec::new();
        for i in 0..48_i64 {
            let h = if i % 3 == 0 {
                pooled.clone()
            } else {
                pooled.with_actor(&Actor::job(format!("c{i}"), format!("r{round}")))
            };
            tasks.push(tokio::spawn(async move {
                let mut tx = h.begin().await.unwrap();
                exec(
                    &mut tx,
                    &format!("UPDATE items SET name = 'r{round}-{i}' WHERE id = {i}"),
                )
                .await;
                tx.commit().await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    let rows = all(&direct, "items").await;
    let updates: Vec<&query::ChangeRow> = rows
        .iter()
        .filter(|r| {
            r.data_after
                .as_ref()
                .is_some_and(|d| d["name"].as_str().is_some_and(|n| n.starts_with('r')))
        })
        .collect();
    assert_eq!(updates.len(), 3 * 48);
    for r in updates {
        let id = r.pk["id"].as_i64().unwrap();
        if id % 3 == 0 {
            assert!(
                r.actor.is_none(),
                "leaked actor into an anonymous transaction: {r:?}"
            );
        } else {
            assert_eq!(
                r.actor_id.as_deref(),
                Some(format!("c{id}").as_str()),
                "{r:?}"
            );
        }
    }
    pooled.close().await;
}

both!(health_coverage_check_lists_covered_and_uncovered);
async fn health_coverage_check_lists_covered_and_uncovered(kind: Kind) {
    let (_db, s) = open(kind).await;
    create_table(&s, "items", &["name"]).await;
    let c =
        cfg("cover_platform_tables: false\ntables:\n  items:\nexpected_tables: [missing_table]\n");
    let v = bdc_audit::http::coverage_check(&s, &c).await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["covered"], serde_json::json!([]));
    triggers::cover_tables(&s, &c, &["items".into()], false)
        .await
        .unwrap();
    let v = bdc_audit::http::coverage_check(&s, &c).await;
    assert_eq!(v["covered"], serde_json::json!(["items"]), "{v}");
    assert_eq!(v["uncovered"][0]["table"], "missing_table", "{v}");
    assert_eq!(v["uncovered"][0]["coverage"]["status"], "no_table", "{v}");
}

both!(multi_row_statements_capture_every_row_with_composite_keys);
async fn multi_row_statements_capture_every_row_with_composite_keys(kind: Kind) {
    let (_db, s) = open(kind).await;
    s.execute_raw(
        "CREATE TABLE pairs (repo BIGINT NOT NULL, sha TEXT NOT NULL, note TEXT, secret TEXT, \
         PRIMARY KEY (repo, sha))"
            .to_owned(),
    )
    .await
    .unwrap();
    let config = cfg("cover_platform_tables: false\ntables:\n  pairs:\n    mask: [secret]\n");
    triggers::cover_tables(&s, &config, &["pairs".into()], false)
        .await
        .unwrap();
    let job = s.with_actor(&Actor::job("github-activity", "run-9"));
    let txs_before = scalar(&s, "SELECT COUNT(*) FROM audit_transactions").await;
    // A statement touching no row records nothing and opens no audit transaction.
    write(
        &job,
        &[
            "DELETE FROM pairs WHERE repo = 0",
            "INSERT INTO pairs SELECT * FROM pairs",
        ],
    )
    .await;
    assert_eq!(
        scalar(&s, "SELECT COUNT(*) FROM audit_transactions").await,
        txs_before
    );
    // One statement inserting 3 rows, an upsert inserting 1 and updating 1,
    // and a 2-row delete: one audit transaction each, every row captured.
    write(
        &job,
        &["INSERT INTO pairs (repo, sha, note, secret) VALUES (1, 'a', 'x', 's1'), (1, 'b', 'y', NULL), (2, 'a', 'z', 's3')"],
    )
    .await;
    write(
        &job,
        &[
            "INSERT INTO pairs (repo, sha, note) VALUES (1, 'a', 'x2'), (3, 'c', 'w') \
           ON CONFLICT (repo, sha) DO UPDATE SET note = excluded.note",
        ],
    )
    .await;
    write(&job, &["DELETE FROM pairs WHERE repo = 1"]).await;
    let rows = all(&s, "pairs").await;
    let summary: Vec<(String, serde_json::Value)> =
        rows.iter().map(|r| (r.op.clone(), r.pk.clone())).collect();
    let pk = |repo: i64, sha: &str| serde_json::json!({"repo": repo, "sha": sha});
    let mut inserts: Vec<&serde_json::Value> = summary
        .iter()
        .filter(|(op, _)| op == "INSERT")
        .map(|(_, pk)| pk)
        .collect();
    inserts.sort_by_key(|v| v.to_string());
    assert_eq!(
        inserts,
        vec![&pk(1, "a"), &pk(1, "b"), &pk(2, "a"), &pk(3, "c")]
    );
    let updates: Vec<&(String, serde_json::Value)> =
        summary.iter().filter(|(op, _)| op == "UPDATE").collect();
    assert_eq!(updates, vec![&("UPDATE".to_owned(), pk(1, "a"))]);
    let deletes = summary.iter().filter(|(op, _)| op == "DELETE").count();
    assert_eq!(deletes, 2);
    let first = rows
        .iter()
        .find(|r| r.op == "INSERT" && r.pk == pk(1, "a"))
        .unwrap();
    assert_eq!(first.data_after.as_ref().unwrap()["secret"], "***");
    assert_eq!(first.data_after.as_ref().unwrap()["note"], "x");
    let no_secret = rows
        .iter()
        .find(|r| r.op == "INSERT" && r.pk == pk(1, "b"))
        .unwrap();
    assert!(no_secret.data_after.as_ref().unwrap()["secret"].is_null());
    let deleted = rows
        .iter()
        .find(|r| r.op == "DELETE" && r.pk == pk(1, "a"))
        .unwrap();
    assert_eq!(deleted.changed_from.as_ref().unwrap()["note"], "x2");
    assert_eq!(deleted.changed_from.as_ref().unwrap()["secret"], "***");
    let txs: std::collections::BTreeSet<i64> = rows.iter().map(|r| r.transaction_id).collect();
    assert_eq!(txs.len(), 3);
    assert_eq!(
        scalar(&s, "SELECT COUNT(*) FROM audit_transactions").await,
        txs_before + 3
    );
    // Row history by composite key.
    let history = query::timeline(
        &s,
        &TimelineFilter {
            table: Some("pairs".into()),
            pk: Some(r#"{"sha": "a", "repo": 1}"#.into()),
            limit: Some(100),
            ..TimelineFilter::default()
        },
    )
    .await
    .unwrap();
    let ops: Vec<&str> = history.items.iter().map(|r| r.op.as_str()).collect();
    assert_eq!(ops, vec!["DELETE", "UPDATE", "INSERT"]);
}

/// PostgreSQL: partitioned tables keep one row trigger for all events, so
/// writes through the parent and straight into a partition are captured.
#[tokio::test(flavor = "multi_thread")]
async fn partitioned_table_is_captured_through_parent_and_partition() {
    let (_db, s) = open(Kind::Postgres).await;
    s.execute_raw(
        "CREATE TABLE events (id BIGINT NOT NULL, year INT NOT NULL, what TEXT, PRIMARY KEY (id, year)) \
         PARTITION BY LIST (year); \
         CREATE TABLE events_2026 PARTITION OF events FOR VALUES IN (2026);"
            .to_owned(),
    )
    .await
    .unwrap();
    let covered = triggers::cover_tables(&s, &no_platform(), &["events".into()], false)
        .await
        .unwrap();
    assert!(covered[0].sql.contains("AFTER INSERT OR UPDATE OR DELETE"));
    let job = s.with_actor(&Actor::job("test", "run-1"));
    write(
        &job,
        &[
            "INSERT INTO events VALUES (1, 2026, 'a'), (2, 2026, 'b')",
            "INSERT INTO events_2026 VALUES (3, 2026, 'c')",
            "UPDATE events SET what = 'a2' WHERE id = 1",
            "DELETE FROM events_2026 WHERE id = 2",
        ],
    )
    .await;
    let n = scalar(&s, "SELECT COUNT(*) FROM audit_changes").await;
    assert_eq!(n, 5);
    let verified = triggers::verify(&s, &no_platform(), &["events".into()])
        .await
        .unwrap();
    assert_eq!(verified[0].1, Coverage::Covered);
}

/// PostgreSQL: with table inheritance, a statement on the parent that
/// reaches child rows fires no statement trigger of the child, so parent
/// and child both get the row trigger and every row change is captured.
#[tokio::test(flavor = "multi_thread")]
async fn inheritance_child_rows_changed_through_the_parent_are_captured() {
    let (_db, s) = open(Kind::Postgres).await;
    s.execute_raw(
        "CREATE TABLE animals (id BIGINT PRIMARY KEY, name TEXT); \
         CREATE TABLE cats (id BIGINT PRIMARY KEY, lives INT) INHERITS (animals);"
            .to_owned(),
    )
    .await
    .unwrap();
    let covered = triggers::cover_tables(
        &s,
        &no_platform(),
        &["animals".into(), "cats".into()],
        false,
    )
    .await
    .unwrap();
    for c in &covered {
        assert!(
            c.sql.contains("AFTER INSERT OR UPDATE OR DELETE"),
            "{}",
            c.sql
        );
    }
    let job = s.with_actor(&Actor::job("test", "run-1"));
    write(
        &job,
        &[
            "INSERT INTO animals VALUES (1, 'dog')",
            "INSERT INTO cats VALUES (2, 'tom', 9), (3, 'kit', 9)",
            "UPDATE animals SET name = 'tom2' WHERE id = 2",
            "DELETE FROM animals WHERE id IN (1, 3)",
        ],
    )
    .await;
    bdc_audit::flush(&s).await.unwrap();
    let rows: Vec<(String, String)> = bdc_storage::on_pool!(s, p => sqlx::query_as(
        "SELECT table_name, op FROM audit_changes ORDER BY id"
    ).fetch_all(p).await.unwrap());
    let count = |t: &str, op: &str| rows.iter().filter(|(a, b)| a == t && b == op).count();
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert_eq!(
        (
            count("cats", "INSERT"),
            count("cats", "UPDATE"),
            count("cats", "DELETE")
        ),
        (2, 1, 1),
        "{rows:?}"
    );
    assert_eq!(
        (count("animals", "INSERT"), count("animals", "DELETE")),
        (1, 1),
        "{rows:?}"
    );
}

/// PostgreSQL: a table covered before audit migration 2 (one row trigger
/// `bdc_audit` for all events) is reported stale, and regenerating it
/// leaves exactly the four new triggers and one change per row.
#[tokio::test(flavor = "multi_thread")]
async fn triggers_from_before_statement_capture_are_stale_and_regenerated() {
    let (_db, s) = open(Kind::Postgres).await;
    create_table(&s, "old_items", &["name"]).await;
    triggers::cover_tables(&s, &no_platform(), &["old_items".into()], false)
        .await
        .unwrap();
    s.execute_raw(
        "DROP TRIGGER bdc_audit_insert ON old_items; DROP TRIGGER bdc_audit_update ON old_items; \
         DROP TRIGGER bdc_audit_delete ON old_items; \
         CREATE TRIGGER bdc_audit AFTER INSERT OR UPDATE OR DELETE ON old_items FOR EACH ROW \
         EXECUTE FUNCTION bdc_audit_capture('{\"id\"}', '{}', '{}', 'false');"
            .to_owned(),
    )
    .await
    .unwrap();
    let verified = triggers::verify(&s, &no_platform(), &["old_items".into()])
        .await
        .unwrap();
    assert!(
        matches!(&verified[0].1, Coverage::Stale(d) if d.contains("bdc_audit")),
        "{:?}",
        verified[0].1
    );
    let again = triggers::cover_tables(&s, &no_platform(), &["old_items".into()], false)
        .await
        .unwrap();
    assert!(again[0].changed);
    let names = scalar(
        &s,
        "SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = 'old_items'::regclass AND NOT tgisinternal",
    )
    .await;
    assert_eq!(names, 4, "insert, update, delete and truncate triggers");
    let job = s.with_actor(&Actor::job("test", "run-1"));
    write(&job, &["INSERT INTO old_items (id, name) VALUES (1, 'a')"]).await;
    assert_eq!(all(&s, "old_items").await.len(), 1);
    let verified = triggers::verify(&s, &no_platform(), &["old_items".into()])
        .await
        .unwrap();
    assert_eq!(verified[0].1, Coverage::Covered);
}

/// PostgreSQL: bulk statements are captured as pending rows that keep
/// their place in the order of changes; a rolled-back statement leaves
/// nothing pending; concurrent flushes expand every change exactly once;
/// every read flushes first.
#[tokio::test(flavor = "multi_thread")]
async fn pending_captures_keep_order_and_flush_exactly_once() {
    let (_db, s) = open(Kind::Postgres).await;
    let job = covered_items(&s).await;
    // INSERT (statement), UPDATE (row trigger), INSERT, DELETE
    // (statement) in one transaction: four pending rows.
    write(
        &job,
        &[
            "INSERT INTO items SELECT g, 'a' || g FROM generate_series(1, 3) g",
            "UPDATE items SET name = 'b2' WHERE id = 2",
            "INSERT INTO items VALUES (4, 'a4')",
            "DELETE FROM items WHERE id IN (1, 4)",
        ],
    )
    .await;
    // A rolled-back bulk insert leaves nothing.
    let mut tx = job.begin().await.unwrap();
    exec(&mut tx, "INSERT INTO items VALUES (9, 'never')").await;
    tx.rollback().await.unwrap();
    let pending = |sql: &'static str| scalar_now(&s, sql);
    assert_eq!(pending("SELECT COUNT(*) FROM audit_pending").await, 4);
    assert_eq!(pending("SELECT COUNT(*) FROM audit_changes").await, 0);
    assert_eq!(
        pending("SELECT COUNT(*) FROM audit_transactions WHERE actor_type = 'job'").await,
        0
    );
    // The timeline flushes first; changes come in capture order.
    let rows = all(&s, "items").await;
    let seen: Vec<(String, i64)> = rows
        .iter()
        .map(|r| (r.op.clone(), r.pk["id"].as_i64().unwrap()))
        .collect();
    let want: Vec<(String, i64)> = [
        ("INSERT", 1),
        ("INSERT", 2),
        ("INSERT", 3),
        ("UPDATE", 2),
        ("INSERT", 4),
        ("DELETE", 1),
        ("DELETE", 4),
    ]
    .iter()
    .map(|(o, i)| ((*o).to_owned(), *i))
    .collect();
    assert_eq!(seen, want);
    assert_eq!(rows[6].changed_from.as_ref().unwrap()["name"], "a4");
    assert_eq!(rows[4].data_after.as_ref().unwrap()["name"], "a4");
    assert!(
        rows.iter()
            .all(|r| r.transaction_id == rows[0].transaction_id)
    );
    assert_eq!(pending("SELECT COUNT(*) FROM audit_pending").await, 0);

    // Many statements, then four concurrent flushes: each change once.
    for b in 0..40 {
        write(
            &job,
            &[&format!(
                "INSERT INTO items SELECT g, 'x' FROM generate_series({}, {}) g",
                1000 + b * 100,
                1000 + b * 100 + 99
            )],
        )
        .await;
    }
    let flushes: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { bdc_audit::flush(&s).await.unwrap() })
        })
        .collect();
    let mut flushed = 0;
    for f in flushes {
        flushed += f.await.unwrap();
    }
    assert_eq!(flushed, 4000);
    assert_eq!(
        pending("SELECT COUNT(*) FROM audit_changes WHERE (table_pk ->> 'id')::bigint >= 1000")
            .await,
        4000
    );
    assert_eq!(bdc_audit::flush(&s).await.unwrap(), 0);
}

/// PostgreSQL: pending captures are lz4-compressed when the server has lz4
/// (audit migration 5), and a capture far past the TOAST threshold comes
/// back out of the flush value for value.
#[tokio::test(flavor = "multi_thread")]
async fn large_pending_captures_are_lz4_compressed_and_round_trip() {
    let (_db, s) = open(Kind::Postgres).await;
    // Column compression exists from PostgreSQL 14; lz4 when built with it.
    let version = scalar_now(&s, "SELECT current_setting('server_version_num')::bigint").await;
    let has_lz4 = scalar_now(
        &s,
        "SELECT count(*) FROM pg_settings \
         WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)",
    )
    .await
        == 1;
    if version >= 140_000 {
        let lz4_column = scalar_now(
            &s,
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'audit_pending'::regclass \
             AND attname = 'rows' AND attcompression = 'l' AND attstorage = 'x'",
        )
        .await;
        assert_eq!(lz4_column, i64::from(has_lz4));
    }

    let job = covered_items(&s).await;
    // 200 rows of ~1 KB each: one ~220 KB pending value.
    write(
        &job,
        &["INSERT INTO items SELECT g, repeat(md5(g::text), 32) FROM generate_series(1, 200) g"],
    )
    .await;
    let pending = |sql: &'static str| scalar_now(&s, sql);
    assert_eq!(pending("SELECT count(*) FROM audit_pending").await, 1);
    if has_lz4 {
        let lz4_rows = pending(
            "SELECT count(*) FROM audit_pending \
             WHERE table_name = 'items' AND pg_column_compression(rows) = 'lz4'",
        )
        .await;
        assert_eq!(lz4_rows, 1);
    }
    let rows = all(&s, "items").await;
    assert_eq!(rows.len(), 200);
    let same = scalar(
        &s,
        "SELECT count(*) FROM items i JOIN audit_changes c \
         ON c.table_name = 'items' AND (c.table_pk ->> 'id')::bigint = i.id \
         WHERE c.data_after ->> 'name' = i.name AND length(i.name) = 1024",
    )
    .await;
    assert_eq!(same, 200);
}

// Flushing is a no-op when nothing is pending and on a database without
// the audit schema.
both!(flush_without_pending_captures_is_a_no_op);
async fn flush_without_pending_captures_is_a_no_op(kind: Kind) {
    let (_db, s) = open(kind).await;
    assert_eq!(bdc_audit::flush(&s).await.unwrap(), 0);
    let db = TestDb::new(kind).await;
    let bare = Storage::connect(db.url(), &ConnectOptions::default())
        .await
        .unwrap();
    assert_eq!(bdc_audit::flush(&bare).await.unwrap(), 0);
}

// SQLite captures into audit_pending; a flush moves the rows in capture
// order and a second flush finds nothing.
both!(flush_moves_pending_rows_in_capture_order);
async fn flush_moves_pending_rows_in_capture_order(kind: Kind) {
    let (_db, s) = open(kind).await;
    create_table(&s, "logs", &["msg"]).await;
    triggers::cover_tables(&s, &no_platform(), &["logs".into()], false)
        .await
        .unwrap();
    let job = s.with_actor(&Actor::job("test", "run-1"));
    for i in 0..5 {
        write(
            &job,
            &[
                &format!("INSERT INTO logs VALUES ({i}, 'm{i}')"),
                &format!("UPDATE logs SET msg = 'u{i}' WHERE id = {i}"),
            ],
        )
        .await;
    }
    let before = on_pool!(s, p => sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM audit_changes").fetch_one(p).await)
    .unwrap();
    // Every capture waits in audit_pending (UPDATEs too, since audit
    // migration 8), and so do the transactions.
    assert_eq!(before, 0);
    let txs = on_pool!(s, p => sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM audit_transactions WHERE actor_type = 'job'").fetch_one(p).await)
    .unwrap();
    assert_eq!(txs, 0);
    let moved = bdc_audit::flush(&s).await.unwrap();
    assert_eq!(moved, 10);
    let txs = on_pool!(s, p => sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM audit_transactions WHERE actor_type = 'job' AND actor_id = 'test'").fetch_one(p).await)
    .unwrap();
    assert_eq!(txs, 5);
    assert_eq!(bdc_audit::flush(&s).await.unwrap(), 0);
    let rows = all(&s, "logs").await;
    let seen: Vec<String> = rows
        .iter()
        .map(|r| format!("{}{}", r.op, r.pk["id"]))
        .collect();
    let want: Vec<String> = (0..5)
        .flat_map(|i| [format!("INSERT{i}"), format!("UPDATE{i}")])
        .collect();
    assert_eq!(seen, want);
}

/// PostgreSQL: composite primary keys (2 and 4 columns: the specialised
/// and the general path of bdc_audit_flush) come out whole and typed.
#[tokio::test(flavor = "multi_thread")]
async fn pending_captures_expand_composite_keys() {
    let (_db, s) = open(Kind::Postgres).await;
    s.execute_raw(
        "CREATE TABLE pairs (a BIGINT, b TEXT, v TEXT, PRIMARY KEY (a, b)); \
         CREATE TABLE quads (a BIGINT, b TEXT, c BOOLEAN, d BIGINT, v TEXT, PRIMARY KEY (a, b, c, d));"
            .to_owned(),
    )
    .await
    .unwrap();
    triggers::cover_tables(&s, &no_platform(), &["pairs".into(), "quads".into()], false)
        .await
        .unwrap();
    let job = s.with_actor(&Actor::job("test", "run-1"));
    write(
        &job,
        &[
            "INSERT INTO pairs VALUES (1, 'x', 'v1'), (2, 'y', 'v2')",
            "INSERT INTO quads VALUES (7, 'q', true, 9, 'v')",
            "DELETE FROM pairs WHERE a = 2",
        ],
    )
    .await;
    let pairs = all(&s, "pairs").await;
    let keys: Vec<(String, serde_json::Value)> =
        pairs.iter().map(|r| (r.op.clone(), r.pk.clone())).collect();
    assert_eq!(
        keys,
        vec![
            ("INSERT".to_owned(), serde_json::json!({"a": 1, "b": "x"})),
            ("INSERT".to_owned(), serde_json::json!({"a": 2, "b": "y"})),
            ("DELETE".to_owned(), serde_json::json!({"a": 2, "b": "y"})),
        ]
    );
    assert_eq!(pairs[2].changed_from.as_ref().unwrap()["v"], "v2");
    let quads = all(&s, "quads").await;
    assert_eq!(
        quads[0].pk,
        serde_json::json!({"a": 7, "b": "q", "c": true, "d": 9})
    );
    assert_eq!(quads[0].data_after.as_ref().unwrap()["v"], "v");
}

// Actors with quotes, backslashes, dollar signs and non-ASCII text reach
// the trail unchanged (PostgreSQL sends the actor with BEGIN, hex-encoded).
both!(actor_text_survives_quoting);
async fn actor_text_survives_quoting(kind: Kind) {
    let (_db, s) = open(kind).await;
    create_table(&s, "notes", &["body"]).await;
    triggers::cover_tables(&s, &no_platform(), &["notes".into()], false)
        .await
        .unwrap();
    let caller = "o'brien \\ \"ü\" $$ '; DROP TABLE notes; --";
    let h = s.with_actor(&Actor::http(caller));
    write(&h, &["INSERT INTO notes VALUES (1, 'x')"]).await;
    let rows = all(&s, "notes").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].actor_id.as_deref(), Some(caller));
    assert_eq!(rows[0].actor.as_ref().unwrap()["caller"], caller);
}

/// PostgreSQL: a statement of more than 20,000 rows is captured in chunks
/// of 10,000 (a `json` value is limited to 1 GB); each row keeps its own
/// reserved id and key after the flush, redacted or not.
#[tokio::test(flavor = "multi_thread")]
async fn large_statements_are_captured_in_chunks() {
    let (_db, s) = open(Kind::Postgres).await;
    create_table(&s, "big", &["name", "secret"]).await;
    create_table(&s, "small", &["name"]).await;
    let c = cfg("cover_platform_tables: false\ntables:\n  big:\n    mask: [secret]\n");
    triggers::cover_tables(&s, &c, &["big".into(), "small".into()], false)
        .await
        .unwrap();
    let job = s.with_actor(&Actor::job("test", "run-1"));
    write(
        &job,
        &[
            "INSERT INTO small SELECT g, 'n' || g FROM generate_series(1, 25000) g",
            "INSERT INTO big SELECT g, 'n' || g, 'SECRET' || g FROM generate_series(1, 20001) g",
            "INSERT INTO small VALUES (0, 'last')",
        ],
    )
    .await;
    for (table, chunks) in [("small", "10000,10000,5000,1"), ("big", "10000,10000,1")] {
        let got = on_pool!(s, p => sqlx::query_scalar::<_, String>(
            "SELECT coalesce(string_agg(cardinality(change_ids)::text, ',' ORDER BY id), '') FROM audit_pending WHERE table_name = $1")
            .bind(table)
            .fetch_one(p).await)
        .unwrap();
        assert_eq!(got, chunks, "{table}");
    }
    let secrets = scalar(
        &s,
        "SELECT count(*) FROM audit_changes WHERE data_after::text LIKE '%SECRET%'",
    )
    .await;
    assert_eq!(secrets, 0);
    // Every row once, its key matching its values; ids distinct.
    for (table, rows) in [("small", 25_001i64), ("big", 20_001)] {
        let n = scalar(
            &s,
            &format!(
                "SELECT count(DISTINCT id) FROM audit_changes WHERE table_name = '{table}' \
                 AND (table_pk ->> 'id') = (data_after ->> 'id') \
                 AND (data_after ->> 'name' = 'n' || (data_after ->> 'id') OR data_after ->> 'name' = 'last')"
            ),
        )
        .await;
        assert_eq!(n, rows, "{table}");
        let keys = scalar(
            &s,
            &format!(
                "SELECT count(DISTINCT table_pk ->> 'id') FROM audit_changes WHERE table_name = '{table}'"
            ),
        )
        .await;
        assert_eq!(keys, rows, "{table}");
    }
    // The single-row statement after the chunked one sorts after all of it.
    let last_is_max = scalar(
        &s,
        "SELECT CASE WHEN max(id) FILTER (WHERE data_after ->> 'name' = 'last') \
               > max(id) FILTER (WHERE data_after ->> 'name' <> 'last') THEN 1::int8 ELSE 0 END \
           FROM audit_changes WHERE table_name = 'small'",
    )
    .await;
    assert_eq!(last_is_max, 1);
}

/// PostgreSQL: a pending capture that cannot be expanded (a `json` column
/// holding text `jsonb` refuses) is set aside whole in
/// `audit_pending_failed`; the changes around it still reach the trail and
/// reads keep working.
#[tokio::test(flavor = "multi_thread")]
async fn unexpandable_capture_is_set_aside_not_blocking() {
    let (_db, s) = open(Kind::Postgres).await;
    s.execute_raw("CREATE TABLE docs (id BIGINT PRIMARY KEY, body JSON)".to_owned())
        .await
        .unwrap();
    triggers::cover_tables(&s, &no_platform(), &["docs".into()], false)
        .await
        .unwrap();
    let job = s.with_actor(&Actor::job("test", "run-1"));
    write(
        &job,
        &[
            "INSERT INTO docs VALUES (1, '{\"ok\": 1}')",
            "INSERT INTO docs VALUES (2, '\"\\u0000\"')",
            "INSERT INTO docs VALUES (3, '{\"ok\": 3}')",
        ],
    )
    .await;
    // Reads flush first; the bad capture does not fail them.
    let rows = all(&s, "docs").await;
    let ids: Vec<serde_json::Value> = rows.iter().map(|r| r.pk["id"].clone()).collect();
    assert_eq!(ids, vec![serde_json::json!(1), serde_json::json!(3)]);
    assert_eq!(bdc_audit::pending::failed(&s).await.unwrap(), (1, 1));
    let (error, kept): (String, String) = on_pool!(s, p => sqlx::query_as::<_, (String, String)>(
        "SELECT error, rows::text FROM audit_pending_failed")
        .fetch_one(p).await)
    .unwrap();
    assert!(error.contains("Unicode escape"), "{error}");
    assert!(kept.contains("\\u0000"), "{kept}");
    assert_eq!(scalar(&s, "SELECT count(*) FROM audit_pending").await, 0);
    // Retention keeps the audit transaction of a set-aside capture.
    let report = purge(
        &s,
        &bdc_audit::config::Retention {
            enabled: true,
            keep_days: 0,
            ..Default::default()
        },
        &PurgeOptions {
            execute: true,
            now: Some(Utc::now() + chrono::Duration::days(1)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // Rows still present are compacted (kept at the cutoff), not deleted.
    assert!(
        report.deleted_changes + report.compacted_rows >= 2,
        "{report:?}"
    );
    assert_eq!(
        scalar(
            &s,
            "SELECT count(*) FROM audit_transactions t JOIN audit_pending_failed f ON f.transaction_id = t.id"
        )
        .await,
        1
    );
}

/// PostgreSQL: a reader without write access (a read-only transaction
/// default, as on a hot standby) still reads the trail while captures
/// are pending; it sees what is already expanded.
#[tokio::test(flavor = "multi_thread")]
async fn read_only_reader_reads_while_captures_are_pending() {
    let (db, s) = open(Kind::Postgres).await;
    let job = covered_items(&s).await;
    write(&job, &["INSERT INTO items VALUES (1, 'a')"]).await;
    assert_eq!(all(&s, "items").await.len(), 1);
    write(&job, &["INSERT INTO items VALUES (2, 'b')"]).await;
    let sep = if db.url().contains('?') { '&' } else { '?' };
    let ro_url = format!(
        "{}{sep}options=-c%20default_transaction_read_only%3Don",
        db.url()
    );
    let ro = Storage::connect(&ro_url, &ConnectOptions::default())
        .await
        .unwrap();
    assert!(bdc_audit::flush(&ro).await.is_err());
    let seen = all(&ro, "items").await;
    assert_eq!(seen.len(), 1, "only the expanded change");
    ro.close().await;
    assert_eq!(all(&s, "items").await.len(), 2);
}

// Audit migration 8: a capture only reserves its transaction's id; the
// flush creates the row with the capture's actor and time. A transaction
// created at once in between (an action) gets a later id, never a
// reserved one.
both!(captured_transactions_are_created_by_the_flush);
async fn captured_transactions_are_created_by_the_flush(kind: Kind) {
    let (_db, s) = open(kind).await;
    let job = covered_items(&s).await;
    write(&job, &["INSERT INTO items (id, name) VALUES (1, 'a')"]).await;
    write(&job, &["UPDATE items SET name = 'b' WHERE id = 1"]).await;
    let jobs = "SELECT COUNT(*) FROM audit_transactions WHERE actor_type = 'job'";
    assert_eq!(scalar_now(&s, jobs).await, 0);
    // An action alone creates its transaction at once.
    let mut tx = s.begin().await.unwrap();
    record_action(&mut tx, "test.note", Some(&Actor::system("t")), "ok", None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    write(&job, &["DELETE FROM items WHERE id = 1"]).await;
    assert_eq!(scalar_now(&s, jobs).await, 0);
    bdc_audit::flush(&s).await.unwrap();
    let rows = all(&s, "items").await;
    let ops: Vec<&str> = rows.iter().map(|r| r.op.as_str()).collect();
    assert_eq!(ops, ["INSERT", "UPDATE", "DELETE"]);
    let action_tx = scalar_now(
        &s,
        "SELECT id FROM audit_transactions WHERE action = 'test.note'",
    )
    .await;
    // Three captured transactions, ids in first-write order around the
    // action's.
    assert!(rows[0].transaction_id < rows[1].transaction_id);
    assert!(rows[1].transaction_id < action_tx);
    assert!(action_tx < rows[2].transaction_id);
    assert_eq!(scalar_now(&s, jobs).await, 3);
    let with_actor = "SELECT COUNT(*) FROM audit_transactions \
         WHERE actor_type = 'job' AND actor_id = 'test' AND occurred_at IS NOT NULL";
    assert_eq!(scalar_now(&s, with_actor).await, 3);
    let report = bdc_audit::chain::verify(&s, &bdc_audit::chain::VerifyFrom::default())
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.changes, 3);
    // Nothing is left pending, markers included.
    assert_eq!(
        scalar_now(&s, "SELECT COUNT(*) FROM audit_pending").await,
        0
    );
}

/// PostgreSQL: an UPDATE whose row changed only in its binary form (a
/// numeric's scale) changes no audited value: the flush drops it and
/// creates no transaction for it.
#[tokio::test(flavor = "multi_thread")]
async fn update_without_a_value_change_records_nothing() {
    let (_db, s) = open(Kind::Postgres).await;
    s.execute_raw("CREATE TABLE prices (id BIGINT PRIMARY KEY, amount NUMERIC)".into())
        .await
        .unwrap();
    triggers::cover_tables(&s, &no_platform(), &["prices".into()], false)
        .await
        .unwrap();
    let job = s.with_actor(&Actor::job("test", "run-1"));
    write(&job, &["INSERT INTO prices VALUES (1, 1.0)"]).await;
    write(&job, &["UPDATE prices SET amount = 1.00 WHERE id = 1"]).await;
    write(&job, &["UPDATE prices SET amount = amount WHERE id = 1"]).await;
    assert_eq!(
        scalar_now(&s, "SELECT COUNT(*) FROM audit_pending").await,
        2,
        "the identical UPDATE is skipped in the trigger"
    );
    let rows = all(&s, "prices").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].op, "INSERT");
    assert_eq!(
        scalar_now(
            &s,
            "SELECT COUNT(*) FROM audit_transactions WHERE actor_type = 'job'"
        )
        .await,
        1
    );
    assert_eq!(
        scalar_now(&s, "SELECT COUNT(*) FROM audit_pending").await,
        0
    );
}

/// PostgreSQL: a flush call stops after ~100,000 changes however many
/// pending rows that is (a bulk UPDATE is one pending row per row), and
/// the calls together expand every change exactly once, in capture order.
#[tokio::test(flavor = "multi_thread")]
async fn large_flushes_are_cut_by_changes() {
    let (_db, s) = open(Kind::Postgres).await;
    let job = covered_items(&s).await;
    write(
        &job,
        &["INSERT INTO items SELECT g, 'a' || g FROM generate_series(1, 120000) g"],
    )
    .await;
    write(
        &job,
        &["UPDATE items SET name = 'b' || id WHERE id <= 5000"],
    )
    .await;
    assert_eq!(
        scalar_now(&s, "SELECT count(*) FROM audit_pending").await,
        12 + 5000
    );
    let first = scalar_now(&s, "SELECT bdc_audit_flush(4096, 9223372036854775807)").await;
    assert_eq!(first, 100_000, "the first call stops at the cap");
    assert_eq!(bdc_audit::flush(&s).await.unwrap(), 25_000);
    assert_eq!(
        scalar_now(
            &s,
            "SELECT count(*) FROM audit_changes WHERE table_name = 'items'"
        )
        .await,
        125_000
    );
    assert_eq!(
        scalar_now(
            &s,
            "SELECT count(DISTINCT transaction_id) FROM audit_changes WHERE table_name = 'items'"
        )
        .await,
        2
    );
    // The UPDATEs come after the INSERTs, each with its changed column.
    assert_eq!(
        scalar_now(
            &s,
            "SELECT count(*) FROM audit_changes u JOIN audit_changes i
                ON i.table_name = 'items' AND i.op = 'INSERT' AND i.table_pk = u.table_pk
             WHERE u.table_name = 'items' AND u.op = 'UPDATE' AND u.id > i.id
               AND u.changed_fields = '[\"name\"]'::jsonb"
        )
        .await,
        5000
    );
}

/// SQLite: the id counter captures reserve from never goes below ids
/// inserted by other means (an AUTOINCREMENT insert, a retention
/// compaction), so a flushed capture never merges into another
/// transaction.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_reserved_ids_never_reuse_existing_ones() {
    let (_db, s) = open(Kind::Sqlite).await;
    let job = covered_items(&s).await;
    // Rows inserted behind the counter's back (AUTOINCREMENT).
    s.execute_raw(
        "INSERT INTO audit_transactions (actor, actor_type, action) VALUES (NULL, 'system', 'outside.a');
         INSERT INTO audit_transactions (actor, actor_type, action) VALUES (NULL, 'system', 'outside.b');"
            .into(),
    )
    .await
    .unwrap();
    let outside = scalar_now(&s, "SELECT max(id) FROM audit_transactions").await;
    write(&job, &["INSERT INTO items (id, name) VALUES (1, 'a')"]).await;
    write(&job, &["UPDATE items SET name = 'b' WHERE id = 1"]).await;
    bdc_audit::flush(&s).await.unwrap();
    let rows = all(&s, "items").await;
    assert_eq!(rows.len(), 2);
    assert!(rows[0].transaction_id > outside, "{rows:?}");
    assert!(rows[1].transaction_id > rows[0].transaction_id);
    assert_eq!(
        scalar_now(
            &s,
            "SELECT count(*) FROM audit_transactions WHERE actor_type = 'job' AND action IS NULL"
        )
        .await,
        2
    );
    assert_eq!(
        scalar_now(
            &s,
            "SELECT count(*) FROM audit_transactions WHERE action LIKE 'outside.%'"
        )
        .await,
        2
    );
}
