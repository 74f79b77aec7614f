//! Behavioural tests of the storage layer, run identically on SQLite and on
//! a real PostgreSQL server (a fresh database per test).

use std::collections::BTreeMap;

use bdc_core::{ActivityRecord, FailureCategory, IncrementalState};
use bdc_storage::activity::ActivityFilter;
use bdc_storage::checkpoints::CheckpointWrite;
use bdc_storage::runs::{NewRun, RunFilter, RunOutcome, RunStatus};
use bdc_storage::workers::WorkerInfo;
use bdc_storage::{ConnectOptions, Storage, StorageError};
use bdc_testsupport::{Kind, TestDb};
use chrono::{Duration, TimeZone, Utc};

async fn open(kind: Kind) -> (TestDb, Storage) {
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default())
        .await
        .unwrap();
    storage.migrate().await.unwrap();
    (db, storage)
}

fn rec(id: &str, day: u32, title: &str) -> ActivityRecord {
    ActivityRecord::new(
        "wg21",
        id,
        Utc.with_ymd_and_hms(2024, 1, day, 0, 0, 0).unwrap(),
        "paper",
    )
    .unwrap()
    .with_title(title)
    .with_actor(format!("author-{}", day % 2))
    .unwrap()
    .with_payload(serde_json::json!({"n": day}))
    .unwrap()
}

use bdc_testsupport::both_backends as both;

both!(migrate_is_idempotent_and_refuses_newer);
async fn migrate_is_idempotent_and_refuses_newer(kind: Kind) {
    let (_db, s) = open(kind).await;
    let known = bdc_storage::known_schema_version();
    assert_eq!(s.schema_version().await.unwrap(), known);
    let again = s.migrate().await.unwrap();
    assert!(again.applied.is_empty());
    assert_eq!(again.after, known);
    s.ensure_schema().await.unwrap();
    // Simulate a schema written by a newer binary.
    let checksum = match kind {
        Kind::Sqlite => "X'00'",
        Kind::Postgres => "'\\x00'::bytea",
    };
    s.execute_raw(format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ({}, 'from the future', TRUE, {checksum}, 1)",
        known + 1
    ))
    .await
    .unwrap();
    assert!(matches!(
        s.migrate().await,
        Err(StorageError::DatabaseNewer { .. })
    ));
    assert!(matches!(
        s.ensure_schema().await,
        Err(StorageError::DatabaseNewer { .. })
    ));
}

both!(activity_upsert_is_idempotent);
async fn activity_upsert_is_idempotent(kind: Kind) {
    let (_db, s) = open(kind).await;
    let batch: Vec<_> = (1..=20)
        .map(|d| rec(&format!("P{d:04}R0"), d, "t"))
        .collect();
    let c = s
        .activity()
        .upsert(&batch, Some("run-1"), None)
        .await
        .unwrap();
    assert_eq!((c.inserted, c.updated, c.unchanged), (20, 0, 0));
    let c = s
        .activity()
        .upsert(&batch, Some("run-2"), None)
        .await
        .unwrap();
    assert_eq!((c.inserted, c.updated, c.unchanged), (0, 0, 20));
    let mut changed = batch.clone();
    changed[3] = rec("P0004R0", 4, "new title");
    changed.push(rec("P0999R0", 28, "new"));
    let c = s
        .activity()
        .upsert(&changed, Some("run-3"), None)
        .await
        .unwrap();
    assert_eq!((c.inserted, c.updated, c.unchanged), (1, 1, 19));
    // Duplicates within one batch collapse to the last one.
    let dup = vec![rec("P0001R0", 1, "a"), rec("P0001R0", 1, "b")];
    let c = s.activity().upsert(&dup, None, None).await.unwrap();
    assert_eq!((c.inserted, c.updated, c.unchanged), (0, 1, 1));

    let all = s
        .activity()
        .list(&ActivityFilter {
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 21);
    assert!(
        all.windows(2)
            .all(|w| w[0].record.occurred_at() >= w[1].record.occurred_at())
    );
    let p4 = all
        .iter()
        .find(|a| a.record.external_id() == "P0004R0")
        .unwrap();
    assert_eq!(p4.revision, 2);
    assert_eq!(p4.record.title(), Some("new title"));
    assert_eq!(p4.run_id.as_deref(), Some("run-3"));
    let p5 = all
        .iter()
        .find(|a| a.record.external_id() == "P0005R0")
        .unwrap();
    assert_eq!(p5.revision, 1);
    assert_eq!(
        p5.run_id.as_deref(),
        Some("run-1"),
        "unchanged rows are not rewritten"
    );
    assert_eq!(p5.record, batch[4]);
}

both!(activity_filters_and_counts);
async fn activity_filters_and_counts(kind: Kind) {
    let (_db, s) = open(kind).await;
    let batch: Vec<_> = (1..=10).map(|d| rec(&format!("N{d}"), d, "t")).collect();
    s.activity().upsert(&batch, None, None).await.unwrap();
    let since = Utc.with_ymd_and_hms(2024, 1, 4, 0, 0, 0).unwrap();
    let f = ActivityFilter {
        since: Some(since),
        until: Some(since + Duration::days(4)),
        ..Default::default()
    };
    assert_eq!(s.activity().count(&f).await.unwrap(), 4);
    let f = ActivityFilter {
        actor: Some("author-0".into()),
        ..Default::default()
    };
    assert_eq!(s.activity().count(&f).await.unwrap(), 5);
    let f = ActivityFilter {
        source_system: Some("github".into()),
        ..Default::default()
    };
    assert_eq!(s.activity().count(&f).await.unwrap(), 0);
    let f = ActivityFilter {
        kind: Some("paper".into()),
        limit: Some(3),
        ..Default::default()
    };
    let listed = s.activity().list(&f).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|a| a.record.external_id())
            .collect::<Vec<_>>(),
        ["N10", "N9", "N8"]
    );
}

both!(checkpoint_moves_with_its_data);
async fn checkpoint_moves_with_its_data(kind: Kind) {
    let (_db, s) = open(kind).await;
    assert!(
        s.checkpoints()
            .get("wg21-papers", "index")
            .await
            .unwrap()
            .is_none()
    );
    let state = IncrementalState::new("abc", "2 papers").unwrap();
    let cp = CheckpointWrite {
        collector: "wg21-papers",
        scope: "index",
        state: &state,
        run_id: Some("r1"),
    };
    s.activity()
        .upsert(&[rec("A", 1, "t")], Some("r1"), Some(&cp))
        .await
        .unwrap();
    assert_eq!(
        s.checkpoints().get("wg21-papers", "index").await.unwrap(),
        Some(state.clone())
    );
    // A failing batch (violates NOT NULL via an oversized... use a broken
    // transaction: drop the table) must not move the checkpoint.
    let newer = IncrementalState::new("def", "3 papers").unwrap();
    s.execute_raw("ALTER TABLE activity_records RENAME TO activity_records_gone".into())
        .await
        .unwrap();
    let cp2 = CheckpointWrite {
        collector: "wg21-papers",
        scope: "index",
        state: &newer,
        run_id: Some("r2"),
    };
    assert!(
        s.activity()
            .upsert(&[rec("B", 2, "t")], Some("r2"), Some(&cp2))
            .await
            .is_err()
    );
    s.execute_raw("ALTER TABLE activity_records_gone RENAME TO activity_records".into())
        .await
        .unwrap();
    assert_eq!(
        s.checkpoints().get("wg21-papers", "index").await.unwrap(),
        Some(state)
    );
    s.checkpoints().put(&cp2).await.unwrap();
    assert_eq!(
        s.checkpoints().get("wg21-papers", "index").await.unwrap(),
        Some(newer)
    );
    assert!(s.checkpoints().reset("wg21-papers", "index").await.unwrap());
}

both!(runs_and_groups);
async fn runs_and_groups(kind: Kind) {
    let (_db, s) = open(kind).await;
    let args = vec!["--index".to_owned(), "x.json".to_owned()];
    let new = NewRun {
        run_id: "r1",
        collector: "wg21-papers",
        command: "run_wg21_paper_tracker",
        schedule_group: Some("daily"),
        args: &args,
        worker_id: Some("w1"),
        slot_task: None,
    };
    s.runs().start(&new).await.unwrap();
    let running = s.runs().get("r1").await.unwrap().unwrap();
    assert_eq!(running.status, RunStatus::Running);
    let mut counts = BTreeMap::new();
    counts.insert("inserted".to_owned(), 3);
    s.runs()
        .finish(
            "r1",
            &RunOutcome {
                status: RunStatus::Failed,
                failure_category: Some(FailureCategory::Network),
                error: Some("boom".into()),
                counts: counts.clone(),
            },
        )
        .await
        .unwrap();
    let done = s.runs().get("r1").await.unwrap().unwrap();
    assert_eq!(done.status, RunStatus::Failed);
    assert_eq!(done.failure_category, Some(FailureCategory::Network));
    assert_eq!(done.counts, counts);
    assert_eq!(done.args, args);
    assert!(done.finished_at.is_some());
    assert!(
        s.runs()
            .finish(
                "nope",
                &RunOutcome {
                    status: RunStatus::Success,
                    failure_category: None,
                    error: None,
                    counts: BTreeMap::new()
                }
            )
            .await
            .is_err()
    );
    let listed = s
        .runs()
        .list(&RunFilter {
            collector: Some("run_wg21_paper_tracker".into()),
            status: None,
            limit: None,
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);

    assert_eq!(s.runs().last_group_success("daily").await.unwrap(), None);
    let g = s.runs().start_group_run("daily").await.unwrap();
    s.runs().finish_group_run(g, 2, 1).await.unwrap();
    assert_eq!(s.runs().last_group_success("daily").await.unwrap(), None);
    // Nothing ran (e.g. only unavailable collectors): not a success.
    let g = s.runs().start_group_run("daily").await.unwrap();
    s.runs().finish_group_run(g, 0, 0).await.unwrap();
    assert_eq!(s.runs().last_group_success("daily").await.unwrap(), None);
    let g = s.runs().start_group_run("daily").await.unwrap();
    s.runs().finish_group_run(g, 2, 0).await.unwrap();
    assert!(
        s.runs()
            .last_group_success("daily")
            .await
            .unwrap()
            .is_some()
    );
}

both!(workers_and_index_syncs);
async fn workers_and_index_syncs(kind: Kind) {
    let (_db, s) = open(kind).await;
    let t = bdc_storage::now();
    let w = WorkerInfo {
        worker_id: "w1".into(),
        hostname: "h".into(),
        pid: 42,
        role: "serve".into(),
        version: "0.1.0".into(),
        started_at: t,
        last_seen_at: t,
    };
    s.workers().heartbeat(&w).await.unwrap();
    s.workers().heartbeat(&w).await.unwrap();
    assert_eq!(
        s.workers()
            .live_since(t - Duration::seconds(5))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.workers()
            .live_since(t + Duration::hours(1))
            .await
            .unwrap()
            .len(),
        0
    );
    s.workers().remove("w1").await.unwrap();
    assert!(
        s.workers()
            .live_since(t - Duration::seconds(5))
            .await
            .unwrap()
            .is_empty()
    );

    s.index_syncs()
        .record("papers", "wg21-papers", 10)
        .await
        .unwrap();
    s.index_syncs()
        .record("papers", "wg21-papers", 11)
        .await
        .unwrap();
    let l = s.index_syncs().list().await.unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].items, 11);
}

both!(transactions_carry_their_actor);
async fn transactions_carry_their_actor(kind: Kind) {
    let (_db, s) = open(kind).await;
    let actor = bdc_core::Actor::job("wg21-papers", "run-42");
    let with = s.with_actor(&actor);
    let mut tx = with.begin().await.unwrap();
    let seen: Option<String> = match &mut tx {
        bdc_storage::Tx::Sqlite(t) => sqlx_scalar_sqlite(t).await,
        bdc_storage::Tx::Postgres(t) => sqlx_scalar_pg(t).await,
    };
    assert_eq!(seen.as_deref(), Some(actor.to_json().as_str()));
    tx.commit().await.unwrap();
    // A transaction without an actor sees none: nothing leaks.
    let mut tx = s.begin().await.unwrap();
    let seen: Option<String> = match &mut tx {
        bdc_storage::Tx::Sqlite(t) => sqlx_scalar_sqlite(t).await,
        bdc_storage::Tx::Postgres(t) => sqlx_scalar_pg(t).await,
    };
    assert_eq!(seen.filter(|s| !s.is_empty()), None);
    tx.rollback().await.unwrap();
}

async fn sqlx_scalar_sqlite(t: &mut sqlx::Transaction<'static, sqlx::Sqlite>) -> Option<String> {
    sqlx::query_scalar::<_, Option<String>>("SELECT actor FROM bdc_tx_context WHERE id = 1")
        .fetch_one(&mut **t)
        .await
        .unwrap()
}

async fn sqlx_scalar_pg(t: &mut sqlx::Transaction<'static, sqlx::Postgres>) -> Option<String> {
    sqlx::query_scalar::<_, Option<String>>("SELECT current_setting('bdc.actor', true)")
        .fetch_one(&mut **t)
        .await
        .unwrap()
}

// More records than one PostgreSQL statement carries (5,000): the upsert
// runs in several batches, the checkpoint rides with the first, and the
// counts add up across them.
both!(large_activity_upsert_spans_batches_with_its_checkpoint);
async fn large_activity_upsert_spans_batches_with_its_checkpoint(kind: Kind) {
    let (_db, s) = open(kind).await;
    let batch: Vec<_> = (0..12_001)
        .map(|i| rec(&format!("P{i:05}R0"), 1 + (i % 28) as u32, "t"))
        .collect();
    let state = IncrementalState::new("tok", "12001 papers").unwrap();
    let cp = CheckpointWrite {
        collector: "wg21-papers",
        scope: "index",
        state: &state,
        run_id: Some("r1"),
    };
    let c = s
        .activity()
        .upsert(&batch, Some("r1"), Some(&cp))
        .await
        .unwrap();
    assert_eq!((c.inserted, c.updated, c.unchanged), (12_001, 0, 0));
    assert_eq!(
        s.checkpoints().get("wg21-papers", "index").await.unwrap(),
        Some(state.clone())
    );
    let mut changed = batch.clone();
    changed[11_000] = rec("P11000R0", 3, "changed");
    let c = s
        .activity()
        .upsert(&changed, Some("r2"), None)
        .await
        .unwrap();
    assert_eq!((c.inserted, c.updated, c.unchanged), (0, 1, 12_000));
}

/// Rows of `table` (PostgreSQL).
async fn pg_count(s: &Storage, table: &str) -> i64 {
    let bdc_storage::Pool::Postgres(p) = s.pool() else {
        panic!("a PostgreSQL pool");
    };
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(p)
        .await
        .unwrap()
}

// PostgreSQL only: parts of a PgBatch run as one statement; counts and
// returned values come back per part, and a failing part writes nothing
// of the others.
#[tokio::test(flavor = "multi_thread")]
async fn pg_batch_runs_its_parts_as_one_statement() {
    use bdc_storage::pg_batch::PgBatch;
    let db = TestDb::new(Kind::Postgres).await;
    let s = Storage::connect(db.url(), &ConnectOptions::default())
        .await
        .unwrap();
    s.execute_raw(
        "CREATE TABLE a (id bigint PRIMARY KEY); CREATE TABLE b (id bigint PRIMARY KEY, v text)"
            .into(),
    )
    .await
    .unwrap();
    let mut tx = s.begin().await.unwrap();
    let bdc_storage::Tx::Postgres(t) = &mut tx else {
        panic!("a PostgreSQL transaction");
    };
    let mut batch = PgBatch::new();
    assert!(batch.is_empty());
    let ids = batch.bind(vec![1_i64, 2, 3], "binding a").unwrap();
    let pa = batch.push_counted(
        format!(
            "INSERT INTO a SELECT * FROM UNNEST({ids}::bigint[]) ON CONFLICT DO NOTHING RETURNING 1"
        ),
        "inserting a",
    );
    let bid = batch.bind(vec![10_i64, 20], "binding b").unwrap();
    let bv = batch.bind(vec!["x", "y"], "binding b").unwrap();
    let pb = batch.push_int8s(
        format!("INSERT INTO b SELECT * FROM UNNEST({bid}::bigint[], {bv}::text[]) RETURNING id"),
        "inserting b",
    );
    let r = batch.execute(t).await.unwrap();
    assert_eq!(r.count(pa), 3);
    let mut got = r.int8s(pb).to_vec();
    got.sort_unstable();
    assert_eq!(got, vec![10, 20]);
    tx.commit().await.unwrap();

    // The second part violates b's key: the first part's rows do not land.
    let mut tx = s.begin().await.unwrap();
    let bdc_storage::Tx::Postgres(t) = &mut tx else {
        panic!("a PostgreSQL transaction");
    };
    let mut batch = PgBatch::new();
    let ids = batch.bind(vec![4_i64], "binding a").unwrap();
    batch.push_counted(
        format!("INSERT INTO a SELECT * FROM UNNEST({ids}::bigint[]) RETURNING 1"),
        "inserting a",
    );
    let bid = batch.bind(vec![10_i64], "binding b").unwrap();
    batch.push_counted(
        format!("INSERT INTO b (id) SELECT * FROM UNNEST({bid}::bigint[]) RETURNING 1"),
        "inserting b",
    );
    let err = batch.execute(t).await.unwrap_err();
    assert!(err.to_string().contains("b_pkey"), "{err}");
    tx.rollback().await.unwrap();
    assert_eq!(pg_count(&s, "a").await, 3);
    // An unreported part runs all the same; an empty batch runs nothing.
    let mut tx = s.begin().await.unwrap();
    let bdc_storage::Tx::Postgres(t) = &mut tx else {
        panic!("a PostgreSQL transaction");
    };
    let mut batch = PgBatch::new();
    let ids = batch.bind(vec![7_i64], "binding a").unwrap();
    batch.push_unreported(
        format!("INSERT INTO a SELECT * FROM UNNEST({ids}::bigint[])"),
        "inserting a",
    );
    batch.execute(t).await.unwrap();
    PgBatch::new().execute(t).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(pg_count(&s, "a").await, 4);
    s.close().await;
}
