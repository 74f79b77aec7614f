//! As-of reconstruction, row history, the hash chain, checkpoints and
//! offline export verification, each on SQLite and on PostgreSQL.

use std::time::Duration;

use bdc_audit::asof::{self, ColumnFilter, RowState};
use bdc_audit::chain::{self, Checkpoint, VerifyFrom};
use bdc_audit::config::AuditConfig;
use bdc_audit::query::ExportFormat;
use bdc_audit::retention::{PurgeOptions, purge};
use bdc_audit::{AUDIT, AuditError, triggers};
use bdc_core::Actor;
use bdc_storage::{ConnectOptions, Storage, Tx, on_pool, on_tx};
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

fn no_platform() -> AuditConfig {
    AuditConfig::parse("cover_platform_tables: false\n", "test.yaml").unwrap()
}

async fn covered_items(s: &Storage) -> Storage {
    let id_type = match s.backend() {
        bdc_storage::Backend::Sqlite => "INTEGER",
        bdc_storage::Backend::Postgres => "BIGINT",
    };
    s.execute_raw(format!(
        "CREATE TABLE items (id {id_type} PRIMARY KEY, name TEXT, repo TEXT)"
    ))
    .await
    .unwrap();
    s.execute_raw("CREATE TABLE uncovered (id INTEGER PRIMARY KEY, name TEXT)".into())
        .await
        .unwrap();
    triggers::cover_tables(s, &no_platform(), &["items".into()], false)
        .await
        .unwrap();
    s.with_actor(&Actor::job("test", "run-1"))
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

async fn tick() -> DateTime<Utc> {
    tokio::time::sleep(Duration::from_millis(25)).await;
    let t = Utc::now();
    tokio::time::sleep(Duration::from_millis(25)).await;
    t
}

async fn raw(s: &Storage, sql: &str) {
    s.execute_raw(sql.to_owned()).await.unwrap();
}

fn invalid(e: AuditError, field: &str) {
    match e {
        AuditError::InvalidFilter { field: f, .. } => assert_eq!(f, field),
        other => panic!("expected an invalid {field}, got {other}"),
    }
}

both!(as_of_one_row_and_whole_table);
async fn as_of_one_row_and_whole_table(kind: Kind) {
    let (_db, s) = open(kind).await;
    let before_cover = Utc::now() - chrono::Duration::seconds(5);
    let w = covered_items(&s).await;
    let t0 = tick().await;
    write(
        &w,
        &[
            "INSERT INTO items (id, name, repo) VALUES (1, 'a', 'boost/json')",
            "INSERT INTO items (id, name, repo) VALUES (2, 'x', 'boost/asio')",
        ],
    )
    .await;
    let t1 = tick().await;
    write(&w, &["UPDATE items SET name = 'b' WHERE id = 1"]).await;
    let t2 = tick().await;
    write(&w, &["DELETE FROM items WHERE id = 1"]).await;
    let t3 = tick().await;

    let pk = r#"{"id": 1}"#;
    let r = asof::row_as_of(&s, "items", pk, before_cover)
        .await
        .unwrap();
    assert_eq!(r.state, RowState::BeforeHorizon, "{r:?}");
    let r = asof::row_as_of(&s, "items", pk, t0).await.unwrap();
    assert_eq!(r.state, RowState::NotYet, "{r:?}");
    let r = asof::row_as_of(&s, "items", pk, t1).await.unwrap();
    assert_eq!(r.state, RowState::Exists);
    assert_eq!(r.row.as_ref().unwrap()["name"], "a");
    // A string key for an integer column is read as the integer.
    let r = asof::row_as_of(&s, "items", r#"{"id": "1"}"#, t2)
        .await
        .unwrap();
    assert_eq!(r.row.as_ref().unwrap()["name"], "b");
    let r = asof::row_as_of(&s, "items", pk, t3).await.unwrap();
    assert_eq!(r.state, RowState::Deleted);
    let r = asof::row_as_of(&s, "items", r#"{"id": 99}"#, t3)
        .await
        .unwrap();
    assert_eq!(r.state, RowState::NoHistory);

    // Bad input: clear errors.
    for bad in [
        r#"{"id": "1; DROP TABLE items"}"#,
        r#"{"id": 1, "name": "a"}"#,
        r#"[1]"#,
        r#"{"id": {"$gt": 0}}"#,
        "not json",
    ] {
        invalid(
            asof::row_as_of(&s, "items", bad, t3).await.unwrap_err(),
            "pk",
        );
    }
    invalid(
        asof::row_as_of(&s, "uncovered", pk, t3).await.unwrap_err(),
        "table",
    );
    invalid(
        asof::row_as_of(&s, "items", pk, Utc::now() + chrono::Duration::days(1))
            .await
            .unwrap_err(),
        "at",
    );
    let n: i64 = on_pool!(s, p => sqlx::query_scalar::<_, i64>("SELECT count(*) FROM items").fetch_one(p).await).unwrap();
    assert_eq!(n, 1, "bad input wrote nothing");

    // The whole table, NDJSON and CSV, with a column filter.
    let mut out = Vec::new();
    let n = asof::table_as_of(&s, "items", t2, None, ExportFormat::Ndjson, &mut out)
        .await
        .unwrap();
    assert_eq!(n, 2);
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["name"], "b");
    assert_eq!(lines[1]["name"], "x");
    let mut out = Vec::new();
    let f = ColumnFilter {
        column: "repo".into(),
        value: "boost/asio".into(),
    };
    let n = asof::table_as_of(&s, "items", t3, Some(&f), ExportFormat::Csv, &mut out)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "id,name,repo\n2,x,boost/asio\n"
    );
    let bad = ColumnFilter {
        column: "nope".into(),
        value: "x".into(),
    };
    invalid(
        asof::table_as_of(&s, "items", t3, Some(&bad), ExportFormat::Csv, Vec::new())
            .await
            .unwrap_err(),
        "where",
    );

    // Row history: every version with the difference to the previous one.
    let h = asof::history(&s, "items", pk, 100).await.unwrap();
    assert_eq!(
        h.iter().map(|v| v.op.as_str()).collect::<Vec<_>>(),
        ["INSERT", "UPDATE", "DELETE"]
    );
    assert_eq!(h[1].diff.len(), 1);
    assert_eq!(h[1].diff[0].column, "name");
    assert_eq!(h[1].diff[0].before, "a");
    assert_eq!(h[1].diff[0].after, "b");
    assert!(h[2].row.is_none());
}

/// Move the transactions with these ids to a time (before anything is
/// chained: tests only).
async fn set_time(s: &Storage, ids: &str, t: &str) {
    // Captured transactions exist once expanded (audit migration 8).
    bdc_audit::pending::expand_best_effort(s).await;
    let sql = match s.backend() {
        bdc_storage::Backend::Sqlite => {
            format!("UPDATE audit_transactions SET occurred_at = '{t}' WHERE id IN ({ids})")
        }
        bdc_storage::Backend::Postgres => format!(
            "UPDATE audit_transactions SET occurred_at = '{t}'::timestamptz WHERE id IN ({ids})"
        ),
    };
    raw(s, &sql).await;
}

both!(purge_compacts_so_as_of_stays_exact);
async fn purge_compacts_so_as_of_stays_exact(kind: Kind) {
    let (_db, s) = open(kind).await;
    let w = covered_items(&s).await;
    // tx 1: insert 1, 2; tx 2: update 1; tx 3: delete 2; tx 4: update 1 again (recent).
    write(
        &w,
        &[
            "INSERT INTO items (id, name) VALUES (1, 'a')",
            "INSERT INTO items (id, name) VALUES (2, 'z')",
        ],
    )
    .await;
    write(&w, &["UPDATE items SET name = 'b' WHERE id = 1"]).await;
    write(&w, &["DELETE FROM items WHERE id = 2"]).await;
    write(&w, &["UPDATE items SET name = 'c' WHERE id = 1"]).await;
    raw(&s, "DELETE FROM audit_horizons").await;
    set_time(&s, "1", "2025-01-01T00:00:00.000Z").await;
    set_time(&s, "2", "2025-02-01T00:00:00.000Z").await;
    set_time(&s, "3", "2025-03-01T00:00:00.000Z").await;
    set_time(&s, "4", "2025-12-01T00:00:00.000Z").await;
    bdc_audit::flush(&s).await.unwrap();
    assert!(chain::verify(&s, &VerifyFrom::default()).await.unwrap().ok);

    let mut policy =
        AuditConfig::parse("retention:\n  enabled: true\n  keep_days: 200\n", "t.yaml")
            .unwrap()
            .retention;
    policy.enabled = true;
    // now = 2025-10-01: cutoff 2025-03-15.
    let now: DateTime<Utc> = "2025-10-01T00:00:00Z".parse().unwrap();
    let r = purge(
        &s,
        &policy,
        &PurgeOptions {
            execute: true,
            now: Some(now),
            ..PurgeOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(r.compacted_rows, 1, "{r:?}");
    assert_eq!(r.deleted_changes, 3, "{r:?}");
    let at = |t: &str| t.parse::<DateTime<Utc>>().unwrap();
    let r1 = asof::row_as_of(&s, "items", r#"{"id":1}"#, at("2025-06-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(r1.state, RowState::Exists);
    assert_eq!(r1.row.unwrap()["name"], "b");
    let r1 = asof::row_as_of(&s, "items", r#"{"id":1}"#, at("2025-12-02T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(r1.row.unwrap()["name"], "c");
    let r1 = asof::row_as_of(&s, "items", r#"{"id":1}"#, at("2025-02-15T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(r1.state, RowState::BeforeHorizon);
    let r2 = asof::row_as_of(&s, "items", r#"{"id":2}"#, at("2025-06-01T00:00:00Z"))
        .await
        .unwrap();
    assert_ne!(r2.state, RowState::Exists);
    invalid(
        asof::table_as_of(
            &s,
            "items",
            at("2025-02-15T00:00:00Z"),
            None,
            ExportFormat::Ndjson,
            Vec::new(),
        )
        .await
        .unwrap_err(),
        "at",
    );
    // The chain resumes after the purge and stays verifiable.
    let v = chain::verify(&s, &VerifyFrom::default()).await.unwrap();
    assert!(v.ok, "{v:?}");
    assert!(v.anchor.starts_with("purge record"), "{v:?}");
    // Editing the purge record is detected.
    raw(&s, "UPDATE audit_purges SET through_seq = through_seq + 1").await;
    let v = chain::verify(&s, &VerifyFrom::default()).await.unwrap();
    assert!(!v.ok, "{v:?}");
}

/// Three chained transactions on `items`.
async fn chained(kind: Kind) -> (TestDb, Storage) {
    let (db, s) = open(kind).await;
    let w = covered_items(&s).await;
    write(&w, &["INSERT INTO items (id, name) VALUES (1, 'a')"]).await;
    write(&w, &["UPDATE items SET name = 'b' WHERE id = 1"]).await;
    write(&w, &["INSERT INTO items (id, name) VALUES (2, 'c')"]).await;
    bdc_audit::flush(&s).await.unwrap();
    let v = chain::verify(&s, &VerifyFrom::default()).await.unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.links, 3, "{v:?}");
    (db, s)
}

both!(chain_detects_an_edited_change);
async fn chain_detects_an_edited_change(kind: Kind) {
    let (_db, s) = chained(kind).await;
    let sql = match kind {
        Kind::Sqlite => {
            "UPDATE audit_changes SET data_after = '{\"id\":1,\"name\":\"EVIL\",\"repo\":null}' WHERE op = 'UPDATE'"
        }
        Kind::Postgres => {
            "UPDATE audit_changes SET data_after = '{\"id\":1,\"name\":\"EVIL\",\"repo\":null}'::jsonb WHERE op = 'UPDATE'"
        }
    };
    raw(&s, sql).await;
    let v = chain::verify(&s, &VerifyFrom::default()).await.unwrap();
    assert!(!v.ok);
    let b = v.first_break.unwrap();
    assert_eq!(b.seq, 2, "{b:?}");
    assert!(b.reason.contains("does not match its hash"), "{b:?}");
    // An edited actor too.
    let (_db2, s2) = chained(kind).await;
    raw(
        &s2,
        "UPDATE audit_transactions SET actor_type = 'x', actor = NULL WHERE chain_seq = 2",
    )
    .await;
    let v = chain::verify(&s2, &VerifyFrom::default()).await.unwrap();
    assert_eq!(v.first_break.unwrap().seq, 2);
}

both!(chain_detects_a_deleted_row);
async fn chain_detects_a_deleted_row(kind: Kind) {
    let (_db, s) = chained(kind).await;
    raw(&s, "DELETE FROM audit_changes WHERE op = 'UPDATE'").await;
    let v = chain::verify(&s, &VerifyFrom::default()).await.unwrap();
    assert_eq!(v.first_break.unwrap().seq, 2);
    let (_db2, s2) = chained(kind).await;
    raw(&s2, "DELETE FROM audit_transactions WHERE chain_seq = 2").await;
    let v = chain::verify(&s2, &VerifyFrom::default()).await.unwrap();
    let b = v.first_break.unwrap();
    assert_eq!(b.seq, 3, "{b:?}");
    // The newest link deleted: the head says more.
    let (_db3, s3) = chained(kind).await;
    raw(&s3, "DELETE FROM audit_transactions WHERE chain_seq = 3").await;
    let v = chain::verify(&s3, &VerifyFrom::default()).await.unwrap();
    assert!(!v.ok, "{v:?}");
}

both!(chain_detects_an_inserted_row);
async fn chain_detects_an_inserted_row(kind: Kind) {
    let (_db, s) = chained(kind).await;
    let sql = match kind {
        Kind::Sqlite => {
            "INSERT INTO audit_changes (transaction_id, table_name, table_pk, op, data_after)
             SELECT id, 'items', '{\"id\":3}', 'INSERT', '{\"id\":3,\"name\":\"forged\",\"repo\":null}'
               FROM audit_transactions WHERE chain_seq = 2"
        }
        Kind::Postgres => {
            "INSERT INTO audit_changes (transaction_id, table_name, table_pk, op, data_after)
             SELECT id, 'items', '{\"id\":3}'::jsonb, 'INSERT', '{\"id\":3,\"name\":\"forged\",\"repo\":null}'::jsonb
               FROM audit_transactions WHERE chain_seq = 2"
        }
    };
    raw(&s, sql).await;
    let v = chain::verify(&s, &VerifyFrom::default()).await.unwrap();
    assert_eq!(v.first_break.unwrap().seq, 2);
    // A forged transaction slotted into the chain.
    let (_db2, s2) = chained(kind).await;
    raw(
        &s2,
        "INSERT INTO audit_transactions (occurred_at, chain_seq, prev_hash, hash)
         SELECT occurred_at, 99, hash, hash FROM audit_transactions WHERE chain_seq = 3",
    )
    .await;
    let v = chain::verify(&s2, &VerifyFrom::default()).await.unwrap();
    assert!(!v.ok, "{v:?}");
}

both!(checkpoints_and_offline_export);
async fn checkpoints_and_offline_export(kind: Kind) {
    let (_db, s) = chained(kind).await;
    let key = chain::signing_key_from_hex(&"2a".repeat(32)).unwrap();
    let cp = chain::checkpoint(&s, &key).await.unwrap();
    assert_eq!(cp.seq, 3);
    let text = serde_json::to_string_pretty(&cp).unwrap();
    let cp = Checkpoint::parse(&text, "cp.json").unwrap();
    // More writes after the checkpoint: still verifies against it.
    let w = s.with_actor(&Actor::http("alice"));
    write(&w, &["UPDATE items SET name = 'd' WHERE id = 2"]).await;
    let from = VerifyFrom {
        checkpoint: Some(cp.clone()),
        ..VerifyFrom::default()
    };
    let v = chain::verify(&s, &from).await.unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!((v.from_seq, v.to_seq), (4, 4));
    // A corrupted checkpoint file is refused.
    let forged = text.replace("\"seq\": 3", "\"seq\": 2");
    invalid(
        Checkpoint::parse(&forged, "cp.json").unwrap_err(),
        "checkpoint",
    );
    invalid(
        Checkpoint::parse("{\"format\": 1", "cp.json").unwrap_err(),
        "checkpoint",
    );
    invalid(
        chain::signing_key_from_hex("abc").unwrap_err(),
        "BDC_AUDIT_SIGNING_KEY",
    );

    // Export with hashes, verified offline.
    let mut out = Vec::new();
    let n = chain::export_chain(&s, None, &mut out).await.unwrap();
    assert_eq!(n, 4);
    let text = String::from_utf8(out).unwrap();
    let v = chain::verify_export(text.as_bytes(), Some(&cp)).unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.links, 4);
    let edited = text.replacen("\"name\":\"b\"", "\"name\":\"B\"", 1);
    assert_ne!(edited, text);
    let v = chain::verify_export(edited.as_bytes(), None).unwrap();
    assert!(!v.ok);
    let dropped: String = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let v = chain::verify_export(dropped.as_bytes(), None).unwrap();
    assert!(!v.ok);
    assert!(v.first_break.unwrap().reason.contains("missing"));

    // The trail rewritten behind the checkpoint (every hash recomputed by
    // a superuser would look like this link's new hash).
    raw(
        &s,
        "UPDATE audit_transactions SET hash = 'ffff' WHERE chain_seq = 3",
    )
    .await;
    let v = chain::verify(&s, &from).await.unwrap();
    assert!(!v.ok);
    assert!(
        v.first_break.unwrap().reason.contains("rewritten"),
        "checkpoint mismatch is named"
    );
}

both!(http_as_of_and_history);
async fn http_as_of_and_history(kind: Kind) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (_db, s) = open(kind).await;
    let w = covered_items(&s).await;
    write(&w, &["INSERT INTO items (id, name) VALUES (7, 'a')"]).await;
    write(&w, &["UPDATE items SET name = 'b' WHERE id = 7"]).await;
    let app = bdc_audit::http::router(s.clone(), Some("tok".into()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let url = format!("http://{addr}/api/audit/as-of");
    let get = |q: Vec<(&'static str, String)>| {
        client
            .get(reqwest::Url::parse_with_params(&url, &q).unwrap())
            .bearer_auth("tok")
            .send()
    };
    let r = get(vec![
        ("table", "items".into()),
        ("pk", r#"{"id":7}"#.into()),
        ("at", now.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["state"], "exists");
    assert_eq!(body["row"]["name"], "b");
    let r = get(vec![("table", "items".into()), ("at", now.clone())])
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap().lines().count(), 1);
    for bad in [
        vec![("table", "uncovered".into()), ("at", now.clone())],
        vec![
            ("table", "items".into()),
            ("pk", "{\"id\":\"x' OR 1=1\"}".into()),
            ("at", now.clone()),
        ],
        vec![
            ("table", "items".into()),
            ("at", "2999-01-01T00:00:00Z".into()),
        ],
        vec![("table", "items".into())],
    ] {
        assert_eq!(get(bad).await.unwrap().status(), 400);
    }
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        401,
        "needs the token"
    );
    let r = client
        .get(
            reqwest::Url::parse_with_params(
                &format!("http://{addr}/api/audit/history"),
                &[("table", "items"), ("pk", r#"{"id":7}"#)],
            )
            .unwrap(),
        )
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["versions"].as_array().unwrap().len(), 2);
    assert_eq!(body["versions"][1]["diff"][0]["column"], "name");
}

async fn last_tx(s: &Storage) -> i64 {
    bdc_audit::flush(s).await.unwrap();
    on_pool!(s, p => sqlx::query_scalar::<_, i64>("SELECT max(transaction_id) FROM audit_changes").fetch_one(p).await).unwrap()
}

async fn items(s: &Storage) -> Vec<(i64, String)> {
    on_pool!(s, p => sqlx::query_as::<_, (i64, String)>("SELECT id, name FROM items ORDER BY id").fetch_all(p).await).unwrap()
}

both!(revert_with_plan_conflicts_and_force);
async fn revert_with_plan_conflicts_and_force(kind: Kind) {
    use bdc_audit::revert::revert;
    let (_db, s) = open(kind).await;
    let w = covered_items(&s).await;
    let cfg = no_platform();
    write(
        &w,
        &[
            "INSERT INTO items (id, name) VALUES (1, 'a')",
            "INSERT INTO items (id, name) VALUES (2, 'b')",
        ],
    )
    .await;
    let tx_a = last_tx(&s).await;
    write(
        &w,
        &[
            "UPDATE items SET name = 'x' WHERE id = 1",
            "DELETE FROM items WHERE id = 2",
            "INSERT INTO items (id, name) VALUES (3, 'c')",
        ],
    )
    .await;
    let tx_b = last_tx(&s).await;
    let operator = s.with_actor(&Actor::http("ops-alice"));
    let plan = revert(&operator, &cfg, tx_b, false, true).await.unwrap();
    assert!(!plan.applied);
    let mut actions: Vec<&str> = plan.steps.iter().map(|st| st.action).collect();
    actions.sort();
    assert_eq!(actions, ["delete", "insert", "update"]);
    assert!(plan.conflicts.is_empty());
    assert_eq!(
        items(&s).await,
        [(1, "x".into()), (3, "c".into())],
        "dry run wrote nothing"
    );
    let plan = revert(&operator, &cfg, tx_b, false, false).await.unwrap();
    assert!(plan.applied);
    assert_eq!(items(&s).await, [(1, "a".into()), (2, "b".into())]);
    let rtx = plan.revert_transaction_id.unwrap();
    let (name, reason, actor_id): (String, String, String) = on_pool!(s, p => sqlx::query_as::<_, (String, String, String)>(
        "SELECT a.name, a.reason, t.actor_id FROM audit_actions a JOIN audit_transactions t ON t.id = a.transaction_id WHERE a.transaction_id = $1")
        .bind(rtx).fetch_one(p).await).unwrap();
    assert_eq!(name, "audit.revert");
    assert!(
        reason.contains(&format!("\"reverted_transaction\":{tx_b}")),
        "{reason}"
    );
    assert_eq!(actor_id, "ops-alice");

    // Reverting A now conflicts with B and with the revert of B.
    let err = revert(&operator, &cfg, tx_a, false, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(
        items(&s).await,
        [(1, "a".into()), (2, "b".into())],
        "nothing written"
    );
    let plan = revert(&operator, &cfg, tx_a, false, true).await.unwrap();
    assert_eq!(plan.conflicts.len(), 2);
    let plan = revert(&operator, &cfg, tx_a, true, false).await.unwrap();
    assert!(plan.applied);
    assert!(items(&s).await.is_empty());
    // The chain still verifies over the reverts.
    assert!(chain::verify(&s, &VerifyFrom::default()).await.unwrap().ok);

    // Unknown transaction, table no longer covered: clear errors, nothing written.
    invalid(
        revert(&operator, &cfg, 424242, false, false)
            .await
            .unwrap_err(),
        "transaction",
    );
    raw(
        &s,
        "DELETE FROM audit_covered_tables WHERE table_name = 'items'",
    )
    .await;
    invalid(
        revert(&operator, &cfg, tx_b, true, false)
            .await
            .unwrap_err(),
        "table",
    );
    assert!(items(&s).await.is_empty());
}

both!(coverage_detects_replaced_capture_code);
async fn coverage_detects_replaced_capture_code(kind: Kind) {
    let (_db, s) = open(kind).await;
    covered_items(&s).await;
    let cfg = no_platform();
    let v = triggers::verify(&s, &cfg, &["items".into()]).await.unwrap();
    assert_eq!(v[0].1, triggers::Coverage::Covered, "{v:?}");
    let tamper = match kind {
        Kind::Postgres => {
            "CREATE OR REPLACE FUNCTION bdc_audit_capture() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN RETURN NULL; END $fn$"
        }
        Kind::Sqlite => {
            "DROP TRIGGER bdc_audit_update_items;
             CREATE TRIGGER bdc_audit_update_items AFTER UPDATE ON items BEGIN SELECT 1; END"
        }
    };
    raw(&s, tamper).await;
    let v = triggers::verify(&s, &cfg, &["items".into()]).await.unwrap();
    match &v[0].1 {
        triggers::Coverage::Stale(why) => assert!(why.contains("differs"), "{why}"),
        other => panic!("expected stale, got {other:?}"),
    }
}
