//! An in-memory [`PipelineStore`] for simulations and tests, with fault
//! injection (lost acks, concurrent version bumps). Same semantics as the
//! SQL store.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::model::{
    GreenPointer, GreennessRecord, IngestOutcome, Message, Queue, Request, RequestData,
    RequestState, Scope, Stage, Transition, request_id,
};
use crate::traits::{Applied, Counter, Pending, PipelineStore, StoreError};

/// A stored message.
#[derive(Debug, Clone)]
pub struct MemMessage {
    pub msg: Message,
    pub available_us: i64,
    pub lease: Option<(String, i64)>,
    pub last_error: Option<String>,
}

/// Everything the store holds (public for invariant checks).
#[derive(Debug, Default, Clone)]
pub struct MemState {
    pub queues: BTreeMap<String, Queue>,
    pub counters: BTreeMap<String, i64>,
    pub requests: BTreeMap<String, Request>,
    pub heads: BTreeMap<(String, String), String>,
    pub records: Vec<GreennessRecord>,
    pub messages: BTreeMap<i64, MemMessage>,
    pub dead: Vec<(Message, String)>,
    pub next_message: i64,
    /// Fault: the next successful apply commits but keeps the message
    /// (its ack is lost), so it is delivered again after the lease.
    pub lose_next_ack: bool,
}

/// In-memory store.
#[derive(Debug, Default)]
pub struct MemStore {
    pub state: Mutex<MemState>,
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A snapshot of the state.
    pub fn snapshot(&self) -> MemState {
        self.lock().clone()
    }

    /// Fault: another writer updates the request (bumping its version).
    pub fn bump_version(&self, id: &str) {
        if let Some(r) = self.lock().requests.get_mut(id) {
            r.version += 1;
        }
    }

    /// Fault: lose the ack of the next applied message.
    pub fn lose_next_ack(&self) {
        self.lock().lose_next_ack = true;
    }

    /// Fault: a worker crashed holding `id`: its lease expires at once.
    pub fn expire_lease(&self, id: i64) {
        if let Some(m) = self.lock().messages.get_mut(&id) {
            m.lease = None;
        }
    }
}

fn apply_locked(s: &mut MemState, t: &Transition, now_us: i64, forced: bool) -> Applied {
    if let Some(u) = &t.request {
        let Some(r) = s.requests.get(&u.id) else {
            return Applied::Conflict;
        };
        if !forced && r.version != u.expected_version {
            return Applied::Conflict;
        }
    }
    let now = chrono::DateTime::from_timestamp_micros(now_us).unwrap_or_default();
    let mut queue_name = None;
    if let Some(u) = &t.request
        && let Some(r) = s.requests.get_mut(&u.id)
    {
        r.state = u.state;
        r.data = u.data.clone();
        r.version += 1;
        r.updated_at = now;
        queue_name = Some((r.queue.clone(), r.id.clone()));
    }
    let (queue, req_id) = queue_name.unwrap_or_default();
    for rec in &t.records {
        let id = i64::try_from(s.records.len()).unwrap_or(i64::MAX) + 1;
        s.records.push(GreennessRecord {
            id,
            queue: queue.clone(),
            request_id: rec.request_id.clone(),
            seq: rec.seq,
            commit_uri: rec.commit_uri.clone(),
            scope: rec.scope.clone(),
            degree: rec.degree,
            outcome: rec.outcome,
            evidence: rec.evidence.clone(),
            recorded_at: now,
        });
    }
    if let Some(q) = s.queues.get_mut(&queue) {
        for (scope, ptr) in &t.last_green {
            let slot = match scope {
                Scope::Repo => &mut q.last_green,
                Scope::Project(p) => {
                    let cur = q.projects.get(p).cloned();
                    if cur.as_ref().is_none_or(|c| c.seq < ptr.seq) {
                        q.projects.insert(p.clone(), ptr.clone());
                    }
                    continue;
                }
            };
            if slot.as_ref().is_none_or(|c: &GreenPointer| c.seq < ptr.seq) {
                *slot = Some(ptr.clone());
            }
        }
    }
    for m in &t.enqueue {
        s.next_message += 1;
        let id = s.next_message;
        s.messages.insert(
            id,
            MemMessage {
                msg: Message {
                    id,
                    queue: queue.clone(),
                    request_id: req_id.clone(),
                    stage: m.stage,
                    payload: m.payload.clone(),
                    attempts: 0,
                },
                available_us: now_us,
                lease: None,
                last_error: None,
            },
        );
    }
    Applied::Ok
}

fn holds(s: &MemState, msg: &Message, owner: &str) -> bool {
    s.messages
        .get(&msg.id)
        .and_then(|m| m.lease.as_ref())
        .is_some_and(|(o, _)| o == owner)
}

#[async_trait]
impl Counter for MemStore {
    async fn next(&self, queue: &str) -> Result<i64, StoreError> {
        let mut s = self.lock();
        let c = s.counters.entry(queue.to_owned()).or_insert(0);
        *c += 1;
        Ok(*c)
    }
}

#[async_trait]
impl PipelineStore for MemStore {
    async fn ensure_queue(&self, name: &str, repo: &str, ref_name: &str) -> Result<(), StoreError> {
        let mut s = self.lock();
        let q = s.queues.entry(name.to_owned()).or_insert_with(|| Queue {
            name: name.to_owned(),
            repo: repo.to_owned(),
            ref_name: ref_name.to_owned(),
            last_green: None,
            projects: BTreeMap::new(),
        });
        q.repo = repo.to_owned();
        q.ref_name = ref_name.to_owned();
        Ok(())
    }

    async fn queue(&self, name: &str) -> Result<Option<Queue>, StoreError> {
        Ok(self.lock().queues.get(name).cloned())
    }

    async fn ingest(
        &self,
        queue: &str,
        head_uri: &str,
        now_us: i64,
    ) -> Result<IngestOutcome, StoreError> {
        let mut s = self.lock();
        if !s.queues.contains_key(queue) {
            return Err(StoreError::UnknownQueue(queue.to_owned()));
        }
        if let Some(id) = s.heads.get(&(queue.to_owned(), head_uri.to_owned()))
            && let Some(r) = s.requests.get(id)
        {
            return Ok(IngestOutcome {
                request: r.clone(),
                created: false,
            });
        }
        let c = s.counters.entry(queue.to_owned()).or_insert(0);
        *c += 1;
        let seq = *c;
        let now = chrono::DateTime::from_timestamp_micros(now_us).unwrap_or_default();
        let req = Request {
            id: request_id(queue, seq),
            queue: queue.to_owned(),
            seq,
            commit_uri: head_uri.to_owned(),
            state: RequestState::Accepted,
            version: 1,
            data: RequestData::default(),
            created_at: now,
            updated_at: now,
        };
        s.heads
            .insert((queue.to_owned(), head_uri.to_owned()), req.id.clone());
        s.requests.insert(req.id.clone(), req.clone());
        s.next_message += 1;
        let id = s.next_message;
        s.messages.insert(
            id,
            MemMessage {
                msg: Message {
                    id,
                    queue: queue.to_owned(),
                    request_id: req.id.clone(),
                    stage: Stage::Process,
                    payload: None,
                    attempts: 0,
                },
                available_us: now_us,
                lease: None,
                last_error: None,
            },
        );
        Ok(IngestOutcome {
            request: req,
            created: true,
        })
    }

    async fn request(&self, id: &str) -> Result<Option<Request>, StoreError> {
        Ok(self.lock().requests.get(id).cloned())
    }

    async fn newer_request_exists(&self, queue: &str, seq: i64) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .requests
            .values()
            .any(|r| r.queue == queue && r.seq > seq))
    }

    async fn latest_record(
        &self,
        queue: &str,
        commit_uri: &str,
        scope: &Scope,
    ) -> Result<Option<GreennessRecord>, StoreError> {
        Ok(self
            .lock()
            .records
            .iter()
            .rev()
            .find(|r| r.queue == queue && r.commit_uri == commit_uri && &r.scope == scope)
            .cloned())
    }

    async fn latest_scope_record(
        &self,
        queue: &str,
        scope: &Scope,
    ) -> Result<Option<GreennessRecord>, StoreError> {
        Ok(self
            .lock()
            .records
            .iter()
            .rev()
            .find(|r| r.queue == queue && &r.scope == scope)
            .cloned())
    }

    async fn claim(
        &self,
        owner: &str,
        now_us: i64,
        lease_us: i64,
    ) -> Result<Option<Message>, StoreError> {
        let mut s = self.lock();
        let due = s.messages.values_mut().find(|m| {
            m.available_us <= now_us && m.lease.as_ref().is_none_or(|(_, u)| *u < now_us)
        });
        Ok(due.map(|m| {
            m.lease = Some((owner.to_owned(), now_us.saturating_add(lease_us)));
            m.msg.attempts += 1;
            m.msg.clone()
        }))
    }

    async fn renew(&self, msg: &Message, owner: &str, until_us: i64) -> Result<bool, StoreError> {
        let mut s = self.lock();
        match s.messages.get_mut(&msg.id) {
            Some(m) if m.lease.as_ref().is_some_and(|(o, _)| o == owner) => {
                m.lease = Some((owner.to_owned(), until_us));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn apply(
        &self,
        msg: &Message,
        owner: &str,
        transition: &Transition,
        now_us: i64,
    ) -> Result<Applied, StoreError> {
        let mut s = self.lock();
        if !holds(&s, msg, owner) {
            return Ok(Applied::LeaseLost);
        }
        let mut scratch = s.clone();
        let res = apply_locked(&mut scratch, transition, now_us, false);
        if res != Applied::Ok {
            return Ok(res);
        }
        *s = scratch;
        if s.lose_next_ack {
            s.lose_next_ack = false;
        } else {
            s.messages.remove(&msg.id);
        }
        Ok(Applied::Ok)
    }

    async fn retry(
        &self,
        msg: &Message,
        owner: &str,
        error: &str,
        available_us: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.lock();
        if !holds(&s, msg, owner) {
            return Ok(());
        }
        if let Some(m) = s.messages.get_mut(&msg.id) {
            m.lease = None;
            m.available_us = available_us;
            m.last_error = Some(error.to_owned());
        }
        Ok(())
    }

    async fn dead_letter(
        &self,
        msg: &Message,
        owner: &str,
        error: &str,
        reconcile: &Transition,
        now_us: i64,
    ) -> Result<Applied, StoreError> {
        let mut s = self.lock();
        if !holds(&s, msg, owner) {
            return Ok(Applied::LeaseLost);
        }
        let res = apply_locked(&mut s, reconcile, now_us, true);
        s.messages.remove(&msg.id);
        s.dead.push((msg.clone(), error.to_owned()));
        Ok(res)
    }

    async fn revalidate(&self, id: &str, now_us: i64) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let Some(r) = s.requests.get_mut(id) else {
            return Ok(false);
        };
        if !r.state.is_terminal() {
            return Ok(false);
        }
        r.state = RequestState::Accepted;
        r.data = RequestData {
            revalidation: true,
            ..RequestData::default()
        };
        r.version += 1;
        let (queue, rid) = (r.queue.clone(), r.id.clone());
        s.next_message += 1;
        let mid = s.next_message;
        s.messages.insert(
            mid,
            MemMessage {
                msg: Message {
                    id: mid,
                    queue,
                    request_id: rid,
                    stage: Stage::Process,
                    payload: None,
                    attempts: 0,
                },
                available_us: now_us,
                lease: None,
                last_error: None,
            },
        );
        Ok(true)
    }

    async fn pending(&self) -> Result<Pending, StoreError> {
        let s = self.lock();
        Ok(Pending {
            total: i64::try_from(s.messages.len()).unwrap_or(i64::MAX),
            next_available_us: s
                .messages
                .values()
                .map(|m| {
                    m.lease
                        .as_ref()
                        .map_or(m.available_us, |(_, u)| (*u).max(m.available_us))
                })
                .min(),
        })
    }
}
