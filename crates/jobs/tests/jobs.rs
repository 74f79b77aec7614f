//! Behaviour of the durable job queue on SQLite and PostgreSQL.

use std::time::Duration;

use bdc_jobs::{FailOutcome, JobQueue, JobStatus, NewJob};
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};

async fn open(kind: Kind) -> (TestDb, JobQueue) {
    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default())
        .await
        .unwrap();
    storage.migrate_parts(&[&bdc_jobs::SCHEMA]).await.unwrap();
    (db, JobQueue::new(storage))
}

fn job(slot: Option<&str>) -> NewJob {
    NewJob {
        kind: "noop".into(),
        payload: serde_json::json!({"n": 1}),
        slot_key: slot.map(str::to_owned),
        run_at: bdc_storage::now(),
        max_attempts: 2,
    }
}

use bdc_testsupport::both_backends as both;

both!(slots_enqueue_once);
async fn slots_enqueue_once(kind: Kind) {
    let (_db, q) = open(kind).await;
    assert!(
        q.enqueue(&job(Some("cal:g:2026-11-24")))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        q.enqueue(&job(Some("cal:g:2026-11-24")))
            .await
            .unwrap()
            .is_none()
    );
    assert!(q.enqueue(&job(None)).await.unwrap().is_some());
    assert!(q.enqueue(&job(None)).await.unwrap().is_some());
    assert_eq!(q.stats().await.unwrap().queued, 3);
}

both!(claim_complete_and_leases);
async fn claim_complete_and_leases(kind: Kind) {
    let (_db, q) = open(kind).await;
    q.enqueue(&job(Some("a"))).await.unwrap();
    let j = q
        .claim("w1", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(j.attempts, 1);
    // Nobody else gets it while the lease holds.
    assert!(
        q.claim("w2", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none()
    );
    assert!(q.renew(j.id, "w1", Duration::from_secs(60)).await.unwrap());
    assert!(!q.renew(j.id, "w2", Duration::from_secs(60)).await.unwrap());
    assert!(!q.complete(j.id, "w2").await.unwrap());
    assert!(q.complete(j.id, "w1").await.unwrap());
    assert!(
        q.claim("w2", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none()
    );
    let done = q.list(Some(JobStatus::Succeeded), 10).await.unwrap();
    assert_eq!(done.len(), 1);
}

both!(expired_lease_is_taken_over_then_buried);
async fn expired_lease_is_taken_over_then_buried(kind: Kind) {
    let (_db, q) = open(kind).await;
    q.enqueue(&job(None)).await.unwrap();
    // w1 "dies" holding a very short lease.
    let j1 = q
        .claim("w1", Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let j2 = q
        .claim("w2", Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(j1.id, j2.id);
    assert_eq!(j2.attempts, 2);
    // The dead worker can no longer complete it.
    assert!(!q.complete(j1.id, "w1").await.unwrap());
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Lease expired on the last attempt: buried, not claimed again.
    assert!(
        q.claim("w3", Duration::from_secs(5))
            .await
            .unwrap()
            .is_none()
    );
    let dead = q.list(Some(JobStatus::Dead), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("lease expired")
    );
}

both!(failures_retry_with_backoff_then_die);
async fn failures_retry_with_backoff_then_die(kind: Kind) {
    let (_db, q) = open(kind).await;
    q.enqueue(&job(None)).await.unwrap();
    let j = q
        .claim("w", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let out = q
        .fail(&j, "w", "boom", Duration::from_millis(30))
        .await
        .unwrap();
    assert!(matches!(out, FailOutcome::Retry { .. }));
    // Not due before the backoff.
    assert!(
        q.claim("w", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    let j = q
        .claim("w", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(j.attempts, 2);
    let out = q
        .fail(&j, "w", "boom again", Duration::from_millis(1))
        .await
        .unwrap();
    assert_eq!(out, FailOutcome::Dead);
    let dead = q.list(Some(JobStatus::Dead), 10).await.unwrap();
    assert_eq!(dead[0].last_error.as_deref(), Some("boom again"));
    assert_eq!(q.stats().await.unwrap().dead, 1);
}

both!(release_gives_the_job_back);
async fn release_gives_the_job_back(kind: Kind) {
    let (_db, q) = open(kind).await;
    q.enqueue(&job(None)).await.unwrap();
    let j = q
        .claim("w1", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(q.release(j.id, "w1").await.unwrap());
    let j = q
        .claim("w2", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(j.attempts, 1, "a released attempt does not count");
}

both!(concurrent_workers_never_share_a_job);
async fn concurrent_workers_never_share_a_job(kind: Kind) {
    let (_db, q) = open(kind).await;
    for i in 0..40 {
        q.enqueue(&job(Some(&format!("s{i}")))).await.unwrap();
    }
    let mut handles = Vec::new();
    for w in 0..4 {
        let q = q.clone();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            let me = format!("w{w}");
            while let Some(j) = q.claim(&me, Duration::from_secs(60)).await.unwrap() {
                assert!(q.complete(j.id, &me).await.unwrap());
                got.push(j.id);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all.sort_unstable();
    let n = all.len();
    all.dedup();
    assert_eq!(n, 40);
    assert_eq!(all.len(), 40, "each job ran exactly once");
}
