//! Deterministic simulation of the pipeline: in-memory implementations of
//! every extension trait, a seeded PRNG choosing the schedule, and injected
//! faults (redeliveries, lost acks, version conflicts, crashes between
//! stages, runner crashes ending in the DLQ). After every step the
//! invariants are checked:
//!
//! 1. a fact (greenness record) never changes and is never removed;
//! 2. last-green only moves forward (by request sequence), per scope;
//! 3. nothing is green without a passing build (or an unchanged green
//!    ancestor), and a green record is true to the simulated tree;
//! 4. every admitted request ends (after faults stop, a drain terminates
//!    every request and leaves no message).
//!
//! `BDC_SIM_SCHEDULES` sets the number of seeds (default 2000) on the
//! in-memory store. The same simulation runs on the SQL store on SQLite,
//! PostgreSQL and MySQL/MariaDB (`BDC_SIM_SQL_SCHEDULES` seeds each,
//! default 8, one fresh database per seed), with the faults a SQL store
//! can suffer (crashes before commit, concurrent version bumps; a lost ack
//! cannot happen there: the transition and the ack are one transaction).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bdc_greenness::config::{GreennessConfig, ProjectSpec, QueueSpec};
use bdc_greenness::engine::{Clock, Pipeline, RetryPolicy};
use bdc_greenness::mem::MemStore;
use bdc_greenness::model::*;
use bdc_greenness::store::SqlStore;
use bdc_greenness::traits::*;
use common::{Db, Dbs};

/// xorshift64*: small, seeded, deterministic.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const PROJECTS: usize = 4;

#[derive(Debug, Clone)]
struct Commit {
    parent: Option<usize>,
    changed: Vec<String>,
    broken: BTreeSet<String>,
}

/// A synthetic history: commits form a tree; each commit touches some
/// projects and may break or fix them.
#[derive(Default)]
struct World {
    commits: Vec<Commit>,
    head: usize,
    /// build id → results (what the runner really reported).
    builds: BTreeMap<String, Vec<TargetResult>>,
}

fn uri(n: usize) -> String {
    format!("sim://repo/ref/main/{n:08x}")
}

fn index(uri: &str) -> Option<usize> {
    usize::from_str_radix(uri.rsplit('/').next()?, 16).ok()
}

struct SimScm {
    world: Arc<Mutex<World>>,
}

#[async_trait]
impl SourceControl for SimScm {
    async fn head(&self, _q: &QueueSpec) -> Result<String, ScmError> {
        Ok(uri(self.world.lock().unwrap().head))
    }
    async fn is_ancestor(&self, a: &str, b: &str) -> Result<bool, ScmError> {
        let w = self.world.lock().unwrap();
        let (Some(a), Some(mut b)) = (index(a), index(b)) else {
            return Err(ScmError::UnknownCommit {
                uri: a.into(),
                detail: "bad".into(),
            });
        };
        loop {
            if a == b {
                return Ok(true);
            }
            match w.commits[b].parent {
                Some(p) => b = p,
                None => return Ok(false),
            }
        }
    }
    async fn changed_paths(&self, a: &str, b: &str) -> Result<Vec<String>, ScmError> {
        let w = self.world.lock().unwrap();
        let (Some(a), Some(mut b)) = (index(a), index(b)) else {
            return Ok(Vec::new());
        };
        let mut out = BTreeSet::new();
        while b != a {
            out.extend(w.commits[b].changed.iter().cloned());
            match w.commits[b].parent {
                Some(p) => b = p,
                None => break,
            }
        }
        Ok(out.into_iter().collect())
    }
    async fn checkout(&self, _c: &str, _key: &str) -> Result<Option<std::path::PathBuf>, ScmError> {
        Ok(None)
    }
    async fn release(&self, _c: &str, _key: &str) -> Result<(), ScmError> {
        Ok(())
    }
}

struct SimRunner {
    world: Arc<Mutex<World>>,
    rng: Mutex<Rng>,
    faults: Arc<Mutex<bool>>,
}

#[async_trait]
impl BuildRunner for SimRunner {
    fn target_graph(&self, _q: &QueueSpec, repo: bool, projects: &[String]) -> Vec<Target> {
        if repo {
            vec![Target {
                name: "repo".into(),
                deps: vec![],
            }]
        } else {
            projects
                .iter()
                .map(|p| Target {
                    name: p.clone(),
                    deps: _q.project(p).map(|s| s.deps.clone()).unwrap_or_default(),
                })
                .collect()
        }
    }
    async fn build(
        &self,
        ctx: &BuildContext,
        _spec: &QueueSpec,
        targets: &[Target],
    ) -> Result<Vec<TargetResult>, RunnerError> {
        let faults = *self.faults.lock().unwrap();
        let (crash, timeout) = {
            let mut r = self.rng.lock().unwrap();
            (faults && r.chance(20), faults && r.chance(10))
        };
        if crash {
            return Err(RunnerError("simulated runner crash".into()));
        }
        let broken = {
            let w = self.world.lock().unwrap();
            let n = index(&ctx.commit_uri).unwrap();
            w.commits[n].broken.clone()
        };
        // The target graph: dependents of a target that does not pass are
        // not built.
        let broken = &broken;
        let results = bdc_greenness::graph::run(targets, 3, |t| async move {
            let bad = if t.name == "repo" {
                !broken.is_empty()
            } else {
                broken.contains(&t.name)
            };
            Ok(TargetResult {
                target: t.name.clone(),
                outcome: if timeout {
                    Outcome::Undetermined
                } else if bad {
                    Outcome::Failed
                } else {
                    Outcome::Passed
                },
                exit_code: None,
                log_location: None,
                detail: String::new(),
                not_built: false,
            })
        })
        .await?;
        let mut w = self.world.lock().unwrap();
        w.builds.insert(ctx.build_id.clone(), results.clone());
        Ok(results)
    }
}

/// What the checker reads of a store after every step.
struct State {
    queue: Queue,
    /// Every record, in id order.
    records: Vec<GreennessRecord>,
    requests: Vec<Request>,
    /// Stage messages left.
    messages: usize,
    dead: usize,
}

/// A store the simulation can inject faults into and observe.
#[async_trait]
trait SimStore: PipelineStore + Counter + Send + Sync + 'static {
    /// The worker holding `id` died: its lease ends now.
    async fn expire_lease(&self, id: i64);
    /// Another writer updated the request (its version moves).
    async fn bump_version(&self, request_id: &str);
    /// The next applied message keeps its lease (lost ack); false when the
    /// backend cannot lose one.
    fn lose_next_ack(&self) -> bool;
    async fn message_exists(&self, id: i64) -> bool;
    async fn state(&self) -> State;
}

#[async_trait]
impl SimStore for MemStore {
    async fn expire_lease(&self, id: i64) {
        MemStore::expire_lease(self, id);
    }
    async fn bump_version(&self, request_id: &str) {
        MemStore::bump_version(self, request_id);
    }
    fn lose_next_ack(&self) -> bool {
        MemStore::lose_next_ack(self);
        true
    }
    async fn message_exists(&self, id: i64) -> bool {
        self.snapshot().messages.contains_key(&id)
    }
    async fn state(&self) -> State {
        let s = self.snapshot();
        State {
            queue: s.queues.get("main").unwrap().clone(),
            records: s.records.clone(),
            requests: s.requests.values().cloned().collect(),
            messages: s.messages.len(),
            dead: s.dead.len(),
        }
    }
}

/// One raw statement on the SQL store's backend (`$1`-style placeholders
/// are rewritten to `?` for MySQL).
async fn sql(store: &SqlStore, q: &'static str, q_mysql: &'static str, arg: SqlArg<'_>) {
    match &store.mysql {
        Some(my) => {
            let query = sqlx::query(q_mysql);
            let query = match arg {
                SqlArg::Id(i) => query.bind(i),
                SqlArg::Text(t) => query.bind(t.to_owned()),
            };
            query.execute(&my.pool).await.unwrap();
        }
        None => {
            bdc_storage::on_pool!(store.storage, p => {
                let query = sqlx::query(q);
                let query = match arg {
                    SqlArg::Id(i) => query.bind(i),
                    SqlArg::Text(t) => query.bind(t.to_owned()),
                };
                query.execute(p).await.unwrap();
            });
        }
    }
}

#[derive(Clone, Copy)]
enum SqlArg<'a> {
    Id(i64),
    Text(&'a str),
}

#[async_trait]
impl SimStore for SqlStore {
    async fn expire_lease(&self, id: i64) {
        sql(
            self,
            "UPDATE greenness_messages SET lease_owner = NULL, lease_until_us = NULL WHERE id = $1",
            "UPDATE greenness_messages SET lease_owner = NULL, lease_until_us = NULL WHERE id = ?",
            SqlArg::Id(id),
        )
        .await;
    }
    async fn bump_version(&self, request_id: &str) {
        sql(
            self,
            "UPDATE greenness_requests SET version = version + 1 WHERE id = $1",
            "UPDATE greenness_requests SET version = version + 1 WHERE id = ?",
            SqlArg::Text(request_id),
        )
        .await;
    }
    fn lose_next_ack(&self) -> bool {
        false
    }
    async fn message_exists(&self, id: i64) -> bool {
        let n: i64 = match &self.mysql {
            Some(my) => sqlx::query_scalar("SELECT COUNT(*) FROM greenness_messages WHERE id = ?")
                .bind(id)
                .fetch_one(&my.pool)
                .await
                .unwrap(),
            None => bdc_storage::on_pool!(self.storage, p => {
                sqlx::query_scalar("SELECT COUNT(*) FROM greenness_messages WHERE id = $1")
                    .bind(id)
                    .fetch_one(p)
                    .await
                    .unwrap()
            }),
        };
        n > 0
    }
    async fn state(&self) -> State {
        let queue = PipelineStore::queue(self, "main").await.unwrap().unwrap();
        let records = self.records_after("main", 0, i64::MAX).await.unwrap();
        let requests = self.requests("main", i64::MAX).await.unwrap();
        let messages = self.pending().await.unwrap().total as usize;
        let dead = self.dead_letters("main").await.unwrap().len();
        State {
            queue,
            records,
            requests,
            messages,
            dead,
        }
    }
}

/// Fault-injecting wrapper of a store.
struct FaultStore<S: SimStore> {
    inner: Arc<S>,
    rng: Mutex<Rng>,
    faults: Arc<Mutex<bool>>,
}

#[async_trait]
impl<S: SimStore> Counter for FaultStore<S> {
    async fn next(&self, queue: &str) -> Result<i64, StoreError> {
        self.inner.next(queue).await
    }
}

#[async_trait]
impl<S: SimStore> PipelineStore for FaultStore<S> {
    async fn ensure_queue(&self, n: &str, r: &str, f: &str) -> Result<(), StoreError> {
        self.inner.ensure_queue(n, r, f).await
    }
    async fn queue(&self, n: &str) -> Result<Option<Queue>, StoreError> {
        self.inner.queue(n).await
    }
    async fn ingest(&self, q: &str, h: &str, now: i64) -> Result<IngestOutcome, StoreError> {
        self.inner.ingest(q, h, now).await
    }
    async fn request(&self, id: &str) -> Result<Option<Request>, StoreError> {
        self.inner.request(id).await
    }
    async fn newer_request_exists(&self, q: &str, s: i64) -> Result<bool, StoreError> {
        self.inner.newer_request_exists(q, s).await
    }
    async fn latest_record(
        &self,
        q: &str,
        c: &str,
        s: &Scope,
    ) -> Result<Option<GreennessRecord>, StoreError> {
        self.inner.latest_record(q, c, s).await
    }
    async fn latest_scope_record(
        &self,
        q: &str,
        s: &Scope,
    ) -> Result<Option<GreennessRecord>, StoreError> {
        self.inner.latest_scope_record(q, s).await
    }
    async fn claim(&self, o: &str, now: i64, l: i64) -> Result<Option<Message>, StoreError> {
        self.inner.claim(o, now, l).await
    }
    async fn renew(&self, m: &Message, o: &str, until: i64) -> Result<bool, StoreError> {
        self.inner.renew(m, o, until).await
    }
    async fn apply(
        &self,
        msg: &Message,
        owner: &str,
        t: &Transition,
        now: i64,
    ) -> Result<Applied, StoreError> {
        if *self.faults.lock().unwrap() {
            let (crash, conflict, lose) = {
                let mut r = self.rng.lock().unwrap();
                (r.chance(5), r.chance(5), r.chance(5))
            };
            if crash {
                // The worker dies before committing: the lease expires and
                // the message is delivered again.
                self.inner.expire_lease(msg.id).await;
                return Err(StoreError::Corrupt {
                    what: "simulation",
                    detail: "crash before commit".into(),
                });
            }
            if conflict {
                self.inner.bump_version(&msg.request_id).await;
            }
            if lose {
                self.inner.lose_next_ack();
            }
        }
        let res = self.inner.apply(msg, owner, t, now).await;
        // A lost ack leaves the message leased; the lease runs out.
        if self.inner.message_exists(msg.id).await {
            self.inner.expire_lease(msg.id).await;
        }
        res
    }
    async fn retry(&self, m: &Message, o: &str, e: &str, a: i64) -> Result<(), StoreError> {
        self.inner.retry(m, o, e, a).await
    }
    async fn dead_letter(
        &self,
        m: &Message,
        o: &str,
        e: &str,
        r: &Transition,
        now: i64,
    ) -> Result<Applied, StoreError> {
        self.inner.dead_letter(m, o, e, r, now).await
    }
    async fn pending(&self) -> Result<Pending, StoreError> {
        self.inner.pending().await
    }
    async fn revalidate(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        self.inner.revalidate(id, now).await
    }
}

struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now_us(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct CountingHooks(Mutex<Vec<HookEvent>>);

#[async_trait]
impl Hooks for CountingHooks {
    async fn notify(&self, e: &HookEvent) -> Result<(), HookError> {
        self.0.lock().unwrap().push(e.clone());
        Ok(())
    }
}

fn config(repo_build: bool) -> GreennessConfig {
    GreennessConfig {
        queues: vec![QueueSpec {
            name: "main".into(),
            repo: "sim".into(),
            ref_name: "main".into(),
            poll_interval_seconds: 1,
            build: repo_build.then(|| "build".to_owned()),
            timeout_seconds: 10,
            projects: (0..PROJECTS)
                .map(|i| ProjectSpec {
                    name: format!("p{i}"),
                    paths: vec![format!("p{i}/**")],
                    build: None,
                    // Odd projects depend on the one before: a broken
                    // dependency leaves its dependent not built.
                    deps: if i % 2 == 1 {
                        vec![format!("p{}", i - 1)]
                    } else {
                        vec![]
                    },
                    from_command: false,
                })
                .collect(),
            projects_command: None,
            projects_command_dir: None,
        }],
        hooks: vec![],
        jobs: None,
    }
}

struct Checker {
    seen_records: Vec<GreennessRecord>,
    last_green: BTreeMap<Scope, i64>,
}

impl Checker {
    fn check(&mut self, seed: u64, s: &State, world: &World) {
        // 1. facts never change.
        assert!(
            s.records.len() >= self.seen_records.len(),
            "seed {seed}: records were removed"
        );
        for (old, new) in self.seen_records.iter().zip(&s.records) {
            assert_eq!(old, new, "seed {seed}: a fact changed");
        }
        self.seen_records = s.records.clone();
        // 2. last green moves forward only, and points at a green record.
        let q = &s.queue;
        let mut pointers: Vec<(Scope, &GreenPointer)> = Vec::new();
        if let Some(p) = &q.last_green {
            pointers.push((Scope::Repo, p));
        }
        for (name, p) in &q.projects {
            pointers.push((Scope::Project(name.clone()), p));
        }
        for (scope, p) in pointers {
            let prev = self.last_green.insert(scope.clone(), p.seq);
            assert!(
                prev.is_none_or(|prev| prev <= p.seq),
                "seed {seed}: last green of {scope} moved back from {prev:?} to {}",
                p.seq
            );
            assert!(
                s.records.iter().any(|r| r.scope == scope
                    && r.commit_uri == p.commit_uri
                    && r.outcome == Outcome::Passed),
                "seed {seed}: last green of {scope} has no passing record"
            );
        }
        // 3. nothing green without a passing build; green is true; a
        // project not built (a dependency did not pass) is never green.
        for r in &s.records {
            if let Scope::Project(p) = &r.scope
                && r.evidence.not_built.contains(p)
            {
                assert_eq!(
                    r.outcome,
                    Outcome::Undetermined,
                    "seed {seed}: not-built project {p} recorded {:?}",
                    r.outcome
                );
            }
            if r.outcome != Outcome::Passed {
                continue;
            }
            assert_eq!(r.degree, 0.0, "seed {seed}: green with degree");
            let n = index(&r.commit_uri).unwrap();
            let broken = &world.commits[n].broken;
            match &r.scope {
                Scope::Repo => assert!(broken.is_empty(), "seed {seed}: broken commit {n} green"),
                Scope::Project(p) => {
                    assert!(
                        !broken.contains(p),
                        "seed {seed}: broken project {p}@{n} green"
                    )
                }
            }
            if let Some(base) = &r.evidence.inherited_from {
                assert!(
                    s.records.iter().any(|b| &b.commit_uri == base
                        && b.scope == r.scope
                        && b.outcome == Outcome::Passed
                        && b.id < r.id),
                    "seed {seed}: inherited green from a commit that was not green"
                );
            } else {
                let id = r.evidence.build_id.as_deref().unwrap_or_default();
                let results = world.builds.get(id).unwrap_or_else(|| {
                    panic!("seed {seed}: green record cites unknown build {id}")
                });
                let relevant: Vec<&TargetResult> = match &r.scope {
                    Scope::Repo => results.iter().collect(),
                    Scope::Project(p) => results.iter().filter(|t| &t.target == p).collect(),
                };
                assert!(
                    !relevant.is_empty() && relevant.iter().all(|t| t.outcome == Outcome::Passed),
                    "seed {seed}: green without a passing build"
                );
            }
        }
    }
}

async fn simulate<S: SimStore>(seed: u64, mem: Arc<S>) -> (usize, usize, usize) {
    let mut rng = Rng::new(seed);
    let world = Arc::new(Mutex::new(World {
        commits: vec![Commit {
            parent: None,
            changed: (0..PROJECTS).map(|i| format!("p{i}/src.c")).collect(),
            broken: BTreeSet::new(),
        }],
        ..World::default()
    }));
    let faults = Arc::new(Mutex::new(true));
    let clock = Arc::new(ManualClock(AtomicI64::new(1_700_000_000_000_000)));
    let hooks = Arc::new(CountingHooks(Mutex::new(Vec::new())));
    let pipeline = Pipeline {
        store: Arc::new(FaultStore {
            inner: mem.clone(),
            rng: Mutex::new(Rng::new(seed ^ 0xABCD)),
            faults: faults.clone(),
        }),
        scm: Arc::new(SimScm {
            world: world.clone(),
        }),
        runner: Arc::new(SimRunner {
            world: world.clone(),
            rng: Mutex::new(Rng::new(seed ^ 0x1234)),
            faults: faults.clone(),
        }),
        hooks: hooks.clone(),
        config: Arc::new(config(rng.chance(30))),
        policy: RetryPolicy {
            max_attempts: 3,
            backoff_base: std::time::Duration::from_secs(1),
            backoff_max: std::time::Duration::from_secs(8),
            lease: std::time::Duration::from_secs(30),
        },
        clock: clock.clone(),
        owner: "sim".into(),
    };
    pipeline.ensure_queues().await.unwrap();
    let mut checker = Checker {
        seen_records: Vec::new(),
        last_green: BTreeMap::new(),
    };
    let steps = 60 + rng.below(140);
    for _ in 0..steps {
        if rng.chance(20) {
            // A new commit on the ref (sometimes a history rewrite).
            {
                let mut w = world.lock().unwrap();
                let parent = if rng.chance(10) && w.commits.len() > 1 {
                    rng.below(w.commits.len() as u64) as usize
                } else {
                    w.head
                };
                let mut broken = w.commits[parent].broken.clone();
                let mut changed = Vec::new();
                for i in 0..PROJECTS {
                    if rng.chance(35) {
                        let p = format!("p{i}");
                        changed.push(format!("{p}/f{}.c", rng.below(5)));
                        if rng.chance(30) {
                            broken.insert(p);
                        } else if rng.chance(50) {
                            broken.remove(&p);
                        }
                    }
                }
                w.commits.push(Commit {
                    parent: Some(parent),
                    changed,
                    broken,
                });
                w.head = w.commits.len() - 1;
            }
            let first = pipeline.ingest("main").await.unwrap();
            if rng.chance(20) {
                let again = pipeline.ingest("main").await.unwrap();
                assert!(!again.created && again.request.id == first.request.id);
            }
        } else if rng.chance(3) {
            // A new attempt at some finished, not green request.
            let ids: Vec<String> = mem
                .state()
                .await
                .requests
                .iter()
                .map(|r| r.id.clone())
                .collect();
            if !ids.is_empty() {
                let id = &ids[rng.below(ids.len() as u64) as usize];
                let _ = pipeline.revalidate(id).await.unwrap();
            }
        } else {
            clock
                .0
                .fetch_add(rng.below(3_000_000) as i64, Ordering::SeqCst);
            // A crashed worker surfaces as an error; the lease was released.
            let _ = pipeline.step().await;
        }
        let state = mem.state().await;
        checker.check(seed, &state, &world.lock().unwrap());
    }
    // Faults stop: everything admitted must end.
    *faults.lock().unwrap() = false;
    for _ in 0..10_000 {
        match pipeline.step().await.unwrap() {
            Some(_) => {}
            None => {
                let p = mem.pending().await.unwrap();
                if p.total == 0 {
                    break;
                }
                let next = p.next_available_us.unwrap();
                clock.0.fetch_max(next + 1, Ordering::SeqCst);
            }
        }
        let state = mem.state().await;
        checker.check(seed, &state, &world.lock().unwrap());
    }
    let s = mem.state().await;
    assert_eq!(s.messages, 0, "seed {seed}: messages left");
    for r in &s.requests {
        assert!(
            r.state.is_terminal(),
            "seed {seed}: request {} ended in {:?}",
            r.id,
            r.state
        );
        if r.state == RequestState::DeadLettered {
            // Fail closed: a dead-lettered request has a non-green record.
            assert!(
                s.records
                    .iter()
                    .any(|x| x.request_id == r.id && x.outcome == Outcome::Undetermined),
                "seed {seed}: DLQ without an undetermined record"
            );
        }
        if r.state == RequestState::Superseded {
            assert!(!s.records.iter().any(|x| x.request_id == r.id));
        }
    }
    (s.requests.len(), s.dead, s.records.len())
}

#[tokio::test(flavor = "current_thread")]
async fn invariants_hold_over_thousands_of_schedules() {
    let n: u64 = std::env::var("BDC_SIM_SCHEDULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let (mut requests, mut dead, mut records) = (0, 0, 0);
    for seed in 0..n {
        let (r, d, c) = simulate(seed, Arc::new(MemStore::new())).await;
        requests += r;
        dead += d;
        records += c;
    }
    // The faults must actually have been exercised.
    assert!(requests > 0 && dead > 0 && records > 0);
    eprintln!("{n} schedules: {requests} requests, {dead} dead letters, {records} records");
}

/// The simulation on the SQL store: a fresh database per seed.
async fn on_sql(db: Db) {
    let n: u64 = std::env::var("BDC_SIM_SQL_SCHEDULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let (mut requests, mut records) = (0, 0);
    for seed in 0..n {
        let Some(dbs) = Dbs::new(db).await else {
            return;
        };
        let (r, _, c) = simulate(seed, Arc::new(dbs.store())).await;
        requests += r;
        records += c;
    }
    assert!(n == 0 || (requests > 0 && records > 0));
    eprintln!("{db:?}: {n} schedules: {requests} requests, {records} records");
}

#[tokio::test]
async fn invariants_hold_on_sqlite() {
    on_sql(Db::Sqlite).await;
}

#[tokio::test]
async fn invariants_hold_on_postgres() {
    on_sql(Db::Postgres).await;
}

#[tokio::test]
async fn invariants_hold_on_mysql() {
    on_sql(Db::MySql).await;
}
