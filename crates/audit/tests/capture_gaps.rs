//! Capture gaps closed (issue #17, part 4): TRUNCATE of a covered table,
//! schema changes of covered tables, and coverage that notices a disabled
//! trigger or a replaced function. Each on SQLite and PostgreSQL where the
//! database has the feature.

use std::time::Duration;

use bdc_audit::asof::{self, RowState};
use bdc_audit::chain::{self, VerifyFrom};
use bdc_audit::config::AuditConfig;
use bdc_audit::query;
use bdc_audit::revert::revert;
use bdc_audit::triggers::{self, Coverage, SchemaCapture};
use bdc_audit::{AUDIT, flush};
use bdc_core::Actor;
use bdc_storage::{ConnectOptions, Storage, on_pool, on_tx};
use bdc_testsupport::{Kind, TestDb};
use chrono::{DateTime, Utc};
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

fn cfg() -> AuditConfig {
    AuditConfig::parse("cover_platform_tables: false\n", "test.yaml").unwrap()
}

async fn raw(s: &Storage, sql: &str) {
    s.execute_raw(sql.to_owned()).await.unwrap();
}

/// One write transaction carrying `s`'s actor.
async fn write(s: &Storage, sql: &str) {
    let mut tx = s.begin().await.unwrap();
    let sql = sql.to_owned();
    on_tx!(&mut tx, t => sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut **t).await.map(|_| ()))
        .unwrap();
    tx.commit().await.unwrap();
}

async fn count(s: &Storage, sql: &str) -> i64 {
    let sql = sql.to_owned();
    on_pool!(s, p => sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql)).fetch_one(p).await).unwrap()
}

async fn tick() -> DateTime<Utc> {
    tokio::time::sleep(Duration::from_millis(25)).await;
    let t = Utc::now();
    tokio::time::sleep(Duration::from_millis(25)).await;
    t
}

async fn items(s: &Storage) -> Storage {
    raw(
        s,
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, secret TEXT)",
    )
    .await;
    let cfg = AuditConfig::parse(
        "cover_platform_tables: false\ntables:\n  items:\n    mask: [secret]\n",
        "test.yaml",
    )
    .unwrap();
    triggers::cover_tables(s, &cfg, &["items".into()], false)
        .await
        .unwrap();
    s.with_actor(&Actor::job("test", "run-1"))
}

// PostgreSQL: TRUNCATE is captured as one DELETE change per removed row
// (masked columns stay masked) plus the action `sql.truncate`; as-of says
// deleted afterwards, the chain verifies, and revert restores the rows.
// SQLite has no TRUNCATE; `DELETE FROM t` (its equivalent) is captured by
// the row triggers.
both!(truncate_is_captured);
async fn truncate_is_captured(kind: Kind) {
    let (_db, s) = open(kind).await;
    let w = items(&s).await;
    write(
        &w,
        "INSERT INTO items (id, name, secret) VALUES (1, 'a', 'pw1'), (2, 'b', 'pw2'), (3, 'c', NULL)",
    )
    .await;
    let before = tick().await;
    let stmt = match kind {
        Kind::Postgres => "TRUNCATE items",
        Kind::Sqlite => "DELETE FROM items",
    };
    write(&w, stmt).await;
    let after = tick().await;
    flush(&s).await.unwrap();
    assert_eq!(count(&s, "SELECT count(*) FROM items").await, 0);
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM audit_changes WHERE table_name = 'items' AND op = 'DELETE'"
        )
        .await,
        3
    );
    let masked = count(
        &s,
        "SELECT count(*) FROM audit_changes WHERE op = 'DELETE' AND changed_from IS NOT NULL",
    )
    .await;
    assert_eq!(masked, 3);
    let leaked = match kind {
        Kind::Postgres => {
            count(
                &s,
                "SELECT count(*) FROM audit_changes WHERE changed_from::text LIKE '%pw1%'",
            )
            .await
        }
        Kind::Sqlite => {
            count(
                &s,
                "SELECT count(*) FROM audit_changes WHERE changed_from LIKE '%pw1%'",
            )
            .await
        }
    };
    assert_eq!(
        leaked, 0,
        "masked column leaked through the TRUNCATE capture"
    );
    if kind == Kind::Postgres {
        assert_eq!(
            count(
                &s,
                "SELECT count(*) FROM audit_actions WHERE name = 'sql.truncate'"
            )
            .await,
            1
        );
    }
    let r = asof::row_as_of(&s, "items", r#"{"id": 2}"#, before)
        .await
        .unwrap();
    assert_eq!(r.state, RowState::Exists);
    assert_eq!(r.row.as_ref().unwrap()["name"], "b");
    let r = asof::row_as_of(&s, "items", r#"{"id": 2}"#, after)
        .await
        .unwrap();
    assert_eq!(r.state, RowState::Deleted);
    assert!(chain::verify(&s, &VerifyFrom::default()).await.unwrap().ok);

    // A table with masked columns cannot be reverted (the trail does not
    // hold the secrets): a clear refusal, nothing written.
    let tx = truncate_tx(&s).await;
    let operator = s.with_actor(&Actor::Cli {
        user: "auditor".into(),
    });
    let err = revert(&operator, &cfg_masked(), tx, false, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("redacted"), "{err}");
    assert_eq!(count(&s, "SELECT count(*) FROM items").await, 0);
}

async fn truncate_tx(s: &Storage) -> i64 {
    flush(s).await.unwrap();
    count(
        s,
        "SELECT max(transaction_id) FROM audit_changes WHERE op = 'DELETE'",
    )
    .await
}

// Revert of a TRUNCATE (PostgreSQL) or of its SQLite equivalent re-inserts
// every row.
both!(truncate_can_be_reverted);
async fn truncate_can_be_reverted(kind: Kind) {
    let (_db, s) = open(kind).await;
    raw(&s, "CREATE TABLE plain (id INTEGER PRIMARY KEY, name TEXT)").await;
    triggers::cover_tables(&s, &cfg(), &["plain".into()], false)
        .await
        .unwrap();
    let w = s.with_actor(&Actor::job("test", "run-1"));
    write(&w, "INSERT INTO plain VALUES (1, 'a'), (2, 'b'), (3, 'c')").await;
    let stmt = match kind {
        Kind::Postgres => "TRUNCATE plain",
        Kind::Sqlite => "DELETE FROM plain",
    };
    write(&w, stmt).await;
    let tx = truncate_tx(&s).await;
    let operator = s.with_actor(&Actor::Cli {
        user: "auditor".into(),
    });
    let plan = revert(&operator, &cfg(), tx, false, false).await.unwrap();
    assert!(plan.applied, "{plan:?}");
    assert_eq!(count(&s, "SELECT count(*) FROM plain").await, 3);
    assert!(chain::verify(&s, &VerifyFrom::default()).await.unwrap().ok);
}

fn cfg_masked() -> AuditConfig {
    AuditConfig::parse(
        "cover_platform_tables: false\ntables:\n  items:\n    mask: [secret]\n",
        "test.yaml",
    )
    .unwrap()
}

// A TRUNCATE of an empty table or of an uncovered table records nothing
// odd, and a covered table on PostgreSQL has the truncate trigger in its
// coverage (dropping it by hand makes the table stale).
#[tokio::test]
async fn truncate_trigger_is_part_of_coverage_pg() {
    let (_db, s) = open(Kind::Postgres).await;
    let w = items(&s).await;
    raw(&w, "TRUNCATE items").await;
    flush(&s).await.unwrap();
    assert_eq!(count(&s, "SELECT count(*) FROM audit_changes").await, 0);
    let report = triggers::verify(&s, &cfg_masked(), &["items".into()])
        .await
        .unwrap();
    assert_eq!(report[0].1, Coverage::Covered, "{report:?}");
    raw(&s, "DROP TRIGGER bdc_audit_truncate ON items").await;
    let report = triggers::verify(&s, &cfg_masked(), &["items".into()])
        .await
        .unwrap();
    assert!(matches!(report[0].1, Coverage::Stale(_)), "{report:?}");
    // A disabled trigger is not capture either.
    triggers::cover_tables(&s, &cfg_masked(), &["items".into()], false)
        .await
        .unwrap();
    raw(&s, "ALTER TABLE items DISABLE TRIGGER bdc_audit_truncate").await;
    let report = triggers::verify(&s, &cfg_masked(), &["items".into()])
        .await
        .unwrap();
    assert!(matches!(report[0].1, Coverage::Stale(_)), "{report:?}");
    // A replaced truncate function is reported.
    raw(&s, "ALTER TABLE items ENABLE TRIGGER bdc_audit_truncate").await;
    raw(
        &s,
        "CREATE OR REPLACE FUNCTION bdc_audit_capture_truncate() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
    )
    .await;
    let report = triggers::verify(&s, &cfg_masked(), &["items".into()])
        .await
        .unwrap();
    match &report[0].1 {
        Coverage::Stale(why) => assert!(why.contains("bdc_audit_capture_truncate"), "{why}"),
        other => panic!("expected stale, got {other:?}"),
    }
}

// Coverage looks at the function each trigger really calls (by OID, in any
// schema) and at its arguments, not only at trigger names.
#[tokio::test]
async fn coverage_sees_look_alike_functions_and_arguments_pg() {
    let (_db, s) = open(Kind::Postgres).await;
    let _w = items(&s).await;
    let verify = || async {
        triggers::verify(&s, &cfg_masked(), &["items".into()])
            .await
            .unwrap()
            .remove(0)
            .1
    };
    assert_eq!(verify().await, Coverage::Covered);
    // A look-alike in another schema, the trigger re-pointed at it.
    raw(
        &s,
        "CREATE SCHEMA evil;
         CREATE FUNCTION evil.bdc_audit_capture_rows() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
         DROP TRIGGER bdc_audit_insert ON items;
         CREATE TRIGGER bdc_audit_insert AFTER INSERT ON items REFERENCING NEW TABLE AS bdc_rows
           FOR EACH STATEMENT EXECUTE FUNCTION evil.bdc_audit_capture_rows('{\"id\"}', '{}', '{\"secret\"}', 'false');",
    )
    .await;
    match verify().await {
        Coverage::Stale(why) => assert!(why.contains("evil.bdc_audit_capture_rows"), "{why}"),
        other => panic!("expected stale, got {other:?}"),
    }
    triggers::cover_tables(&s, &cfg_masked(), &["items".into()], false)
        .await
        .unwrap();
    assert_eq!(verify().await, Coverage::Covered);
    // The right function, other arguments (the mask dropped).
    raw(
        &s,
        "DROP TRIGGER bdc_audit_update ON items;
         CREATE TRIGGER bdc_audit_update AFTER UPDATE ON items FOR EACH ROW
           EXECUTE FUNCTION bdc_audit_capture('{\"id\"}', '{}', '{}', 'false');",
    )
    .await;
    match verify().await {
        Coverage::Stale(why) => assert!(why.contains("other arguments"), "{why}"),
        other => panic!("expected stale, got {other:?}"),
    }
}

// Partitioned table: TRUNCATE of the parent captures the partitions' rows
// under the partition that held them (as the row trigger does).
#[tokio::test]
async fn truncate_of_a_partitioned_table_pg() {
    let (_db, s) = open(Kind::Postgres).await;
    raw(
        &s,
        "CREATE TABLE parts (id INTEGER PRIMARY KEY, v TEXT) PARTITION BY RANGE (id);
         CREATE TABLE parts_a PARTITION OF parts FOR VALUES FROM (0) TO (100);
         CREATE TABLE parts_b PARTITION OF parts FOR VALUES FROM (100) TO (200);",
    )
    .await;
    triggers::cover_tables(&s, &cfg(), &["parts".into()], false)
        .await
        .unwrap();
    let w = s.with_actor(&Actor::job("test", "run-1"));
    raw(&w, "INSERT INTO parts VALUES (1, 'x'), (150, 'y')").await;
    raw(&w, "TRUNCATE parts").await;
    flush(&s).await.unwrap();
    assert_eq!(
        count(&s, "SELECT count(*) FROM audit_changes WHERE op = 'DELETE'").await,
        2
    );
}

// Schema changes: on PostgreSQL the event triggers record ALTER TABLE and
// DROP TABLE of covered tables (with the columns after and the command)
// in the DDL's transaction; uncovered tables are not recorded. On SQLite
// the column change is recorded when gen-triggers regenerates the
// triggers. Both start with the columns at first coverage.
both!(schema_changes_are_recorded);
async fn schema_changes_are_recorded(kind: Kind) {
    let (_db, s) = open(kind).await;
    let w = items(&s).await;
    raw(&s, "CREATE TABLE other (id INTEGER PRIMARY KEY)").await;
    let hist = query::schema_history(&s, Some("items")).await.unwrap();
    assert_eq!(hist.len(), 1, "{hist:?}");
    assert_eq!(hist[0].action, "schema.cover_table");
    assert_eq!(hist[0].columns.as_array().unwrap().len(), 3);

    raw(&w, "ALTER TABLE items ADD COLUMN stars INTEGER").await;
    raw(&w, "ALTER TABLE other ADD COLUMN x INTEGER").await;
    let capture = triggers::schema_capture(&s).await.unwrap();
    match kind {
        Kind::Postgres => {
            assert_eq!(capture, SchemaCapture::EventTriggers);
            let hist = query::schema_history(&s, Some("items")).await.unwrap();
            assert_eq!(hist.len(), 2, "{hist:?}");
            assert_eq!(hist[1].action, "schema.alter_table");
            let cols = hist[1].columns.as_array().unwrap();
            assert_eq!(cols.len(), 4);
            assert_eq!(cols[3]["name"], "stars");
            assert_eq!(hist[1].command.as_deref(), Some("ALTER TABLE"));
            // Regenerating the triggers records nothing more.
            triggers::cover_tables(&s, &cfg_masked(), &["items".into()], false)
                .await
                .unwrap();
            assert_eq!(
                query::schema_history(&s, Some("items"))
                    .await
                    .unwrap()
                    .len(),
                2
            );
        }
        Kind::Sqlite => {
            assert!(matches!(capture, SchemaCapture::OnRegeneration(_)));
            // The triggers are stale until regenerated; regeneration
            // records the new columns.
            let report = triggers::verify(&s, &cfg_masked(), &["items".into()])
                .await
                .unwrap();
            assert!(matches!(report[0].1, Coverage::Stale(_)), "{report:?}");
            triggers::cover_tables(&s, &cfg_masked(), &["items".into()], false)
                .await
                .unwrap();
            let hist = query::schema_history(&s, Some("items")).await.unwrap();
            assert_eq!(hist.len(), 2, "{hist:?}");
            assert_eq!(hist[1].action, "schema.alter_table");
            assert_eq!(hist[1].columns.as_array().unwrap().len(), 4);
        }
    }
    assert!(
        query::schema_history(&s, Some("other"))
            .await
            .unwrap()
            .is_empty()
    );
    if kind == Kind::Postgres {
        raw(&w, "DROP TABLE items").await;
        let hist = query::schema_history(&s, Some("items")).await.unwrap();
        assert_eq!(hist.last().unwrap().action, "schema.drop_table");
        // Disabling an event trigger is reported as tampering.
        let schema: String = on_pool!(&s, p => sqlx::query_scalar::<_, String>(
            "SELECT current_schema()::text").fetch_one(p).await)
        .unwrap();
        raw(
            &s,
            &format!("ALTER EVENT TRIGGER bdc_audit_ddl_{schema} DISABLE"),
        )
        .await;
        assert!(matches!(
            triggers::schema_capture(&s).await.unwrap(),
            SchemaCapture::Tampered(_)
        ));
        // Leave the database droppable by later tests: event triggers are
        // per database, dropped with it.
    }
    // The recorded schema actions are part of the hash chain.
    assert!(chain::verify(&s, &VerifyFrom::default()).await.unwrap().ok);
}
