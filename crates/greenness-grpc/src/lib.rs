//! gRPC service of greenness tracking (`proto/bdc/greenness/v1/greenness.proto`,
//! Tier A): `Ingest`, `LastGreen`, `IsGreen` and the server-streaming
//! `WatchGreenness`, served by `bdc serve` on `BDC_GRPC_BIND` with
//! reflection (grpcurl works without the `.proto`).
//!
//! Every call of the `Greenness` service needs
//! `authorization: Bearer $BDC_API_TOKEN` (no token configured: every call
//! is refused, fail closed), like the HTTP API. Errors map to status codes:
//! unknown queue → `NOT_FOUND`, bad input (an empty or malformed queue,
//! commit or project; an ambiguous short sha) → `INVALID_ARGUMENT`, the
//! database or git unreachable → `UNAVAILABLE`, no greenness configuration
//! loaded (ingest) or a commit unknown to git → `FAILED_PRECONDITION`, a
//! missing or wrong token → `UNAUTHENTICATED`. A message that is not valid
//! protobuf is refused by the codec with `INTERNAL` (the gRPC status-code
//! specification's code for parse errors) before any handler runs.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bdc_greenness::engine::{Pipeline, PipelineError};
use bdc_greenness::model::{GreennessRecord, Scope};
use bdc_greenness::service::Gate;
use bdc_greenness::store::SqlStore;
use bdc_greenness::traits::{ScmError, StoreError};
use futures_util::Stream;
use tonic::{Request, Response, Status};

/// Generated messages and service (`bdc.greenness.v1`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("bdc.greenness.v1");

    /// The file descriptor set served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("greenness_descriptor");
}

use pb::greenness_server::{Greenness, GreennessServer};
use pb::{
    GreennessEvent, IngestRequest, IngestResponse, IsGreenRequest, IsGreenResponse,
    LastGreenRequest, LastGreenResponse, WatchGreennessRequest,
};

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("gRPC reflection: {0}")]
    Reflection(String),
    #[error("gRPC server: {0}")]
    Transport(String),
}

/// The `Greenness` service over the SQL store (and the pipeline, for
/// ingest; None when no greenness configuration is loaded).
#[derive(Clone)]
pub struct GreennessService {
    store: SqlStore,
    pipeline: Option<Pipeline>,
    /// How often `WatchGreenness` looks for new records.
    pub watch_poll: Duration,
}

impl GreennessService {
    pub fn new(store: SqlStore, pipeline: Option<Pipeline>) -> GreennessService {
        GreennessService {
            store,
            pipeline,
            watch_poll: Duration::from_millis(500),
        }
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn check_queue(queue: &str) -> Result<(), Status> {
    if valid_name(queue) {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "queue: {queue:?} is not a queue name (non-empty [A-Za-z0-9._-], at most 100)"
        )))
    }
}

fn check_project(project: Option<&str>) -> Result<(), Status> {
    match project {
        Some(p) if !valid_name(p) => Err(Status::invalid_argument(format!(
            "project: {p:?} is not a project name (non-empty [A-Za-z0-9._-], at most 100)"
        ))),
        _ => Ok(()),
    }
}

fn check_commit(commit: &str) -> Result<(), Status> {
    let sha =
        commit.len() >= 7 && commit.len() <= 64 && commit.bytes().all(|b| b.is_ascii_hexdigit());
    let uri = commit.contains("://") && commit.len() <= 4096;
    if sha || uri {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "commit: {commit:?} is neither a sha (7 to 64 hex digits) nor a commit URI"
        )))
    }
}

/// The status of a store error.
pub fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::UnknownQueue(q) => Status::not_found(format!("unknown queue {q:?}")),
        e @ StoreError::AmbiguousCommit { .. } => Status::invalid_argument(e.to_string()),
        StoreError::Storage(e) => {
            tracing::error!(error = %e, "greenness gRPC: storage error");
            Status::unavailable(format!("greenness storage unavailable: {e}"))
        }
        e @ StoreError::Corrupt { .. } => {
            tracing::error!(error = %e, "greenness gRPC: corrupt data");
            Status::internal(e.to_string())
        }
    }
}

/// The status of a pipeline error.
pub fn pipeline_status(e: PipelineError) -> Status {
    match e {
        PipelineError::UnknownQueue(q) => Status::not_found(format!(
            "unknown queue {q:?} (not in the greenness configuration)"
        )),
        PipelineError::Store(e) => store_status(e),
        PipelineError::Scm(e @ (ScmError::UnknownCommit { .. } | ScmError::InvalidUri { .. })) => {
            Status::failed_precondition(e.to_string())
        }
        PipelineError::Scm(e @ ScmError::Failed { .. }) => Status::unavailable(e.to_string()),
    }
}

fn event(rec: &GreennessRecord, previous_green: Option<bool>) -> GreennessEvent {
    let green = rec.outcome.is_green();
    GreennessEvent {
        record_id: rec.id,
        queue: rec.queue.clone(),
        request_id: rec.request_id.clone(),
        commit_uri: rec.commit_uri.clone(),
        scope: rec.scope.key(),
        outcome: rec.outcome.as_str().to_owned(),
        degree: rec.degree,
        green,
        previous_green,
        transition: previous_green.unwrap_or(false) != green,
        recorded_at: rec
            .recorded_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<GreennessEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Greenness for GreennessService {
    async fn ingest(
        &self,
        request: Request<IngestRequest>,
    ) -> Result<Response<IngestResponse>, Status> {
        let queue = request.into_inner().queue;
        check_queue(&queue)?;
        let Some(p) = &self.pipeline else {
            return Err(Status::failed_precondition(
                "no greenness configuration loaded (set BDC_GREENNESS_YAML)",
            ));
        };
        // The write is the gRPC caller's (audit actor).
        let mut p = p.clone();
        p.store = Arc::new(
            self.store
                .with_actor(&bdc_core::Actor::http("grpc-api-token")),
        );
        let out = p.ingest(&queue).await.map_err(pipeline_status)?;
        metrics::counter!("bdc_greenness_grpc_requests_total", "method" => "ingest").increment(1);
        Ok(Response::new(IngestResponse {
            id: out.request.id,
            commit_uri: out.request.commit_uri,
            created: out.created,
        }))
    }

    async fn last_green(
        &self,
        request: Request<LastGreenRequest>,
    ) -> Result<Response<LastGreenResponse>, Status> {
        let r = request.into_inner();
        check_queue(&r.queue)?;
        check_project(r.project.as_deref())?;
        let gate = Gate { store: &self.store };
        let lg = gate
            .last_green(&r.queue, r.project.as_deref())
            .await
            .map_err(store_status)?;
        Ok(Response::new(match lg {
            Some(g) => LastGreenResponse {
                found: true,
                commit_uri: g.commit_uri,
                seq: g.seq,
            },
            None => LastGreenResponse::default(),
        }))
    }

    async fn is_green(
        &self,
        request: Request<IsGreenRequest>,
    ) -> Result<Response<IsGreenResponse>, Status> {
        let r = request.into_inner();
        check_queue(&r.queue)?;
        check_commit(&r.commit)?;
        check_project(r.project.as_deref())?;
        let gate = Gate { store: &self.store };
        let v = gate
            .verdict(&r.queue, &r.commit, r.project.as_deref())
            .await
            .map_err(store_status)?;
        Ok(Response::new(IsGreenResponse {
            green: v.green,
            status: v.status,
            commit_uri: v.commit_uri.unwrap_or_default(),
            degree: v.degree,
        }))
    }

    type WatchGreennessStream = EventStream;

    async fn watch_greenness(
        &self,
        request: Request<WatchGreennessRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let r = request.into_inner();
        check_queue(&r.queue)?;
        check_project(r.project.as_deref())?;
        if r.after_record_id < 0 {
            return Err(Status::invalid_argument(
                "after_record_id: must not be negative",
            ));
        }
        // Unknown queue: NOT_FOUND before the stream starts.
        if !self
            .store
            .queue_exists(&r.queue)
            .await
            .map_err(store_status)?
        {
            return Err(Status::not_found(format!("unknown queue {:?}", r.queue)));
        }
        let after = if r.after_record_id > 0 {
            r.after_record_id
        } else {
            self.store
                .last_record_id(&r.queue)
                .await
                .map_err(store_status)?
        };
        let scope = r.project.as_deref().map(|p| Scope::Project(p.to_owned()));
        struct St {
            store: SqlStore,
            queue: String,
            scope: Option<Scope>,
            transitions_only: bool,
            after: i64,
            poll: Duration,
            buffered: VecDeque<GreennessEvent>,
            first: bool,
        }
        let st = St {
            store: self.store.clone(),
            queue: r.queue,
            scope,
            transitions_only: r.transitions_only,
            after,
            poll: self.watch_poll,
            buffered: VecDeque::new(),
            first: true,
        };
        let stream = futures_util::stream::unfold(st, |mut st| async move {
            loop {
                if let Some(e) = st.buffered.pop_front() {
                    return Some((Ok(e), st));
                }
                if !st.first {
                    tokio::time::sleep(st.poll).await;
                }
                st.first = false;
                let batch = match st.store.records_after(&st.queue, st.after, 500).await {
                    Ok(b) => b,
                    Err(e) => return Some((Err(store_status(e)), st)),
                };
                for rec in batch {
                    st.after = rec.id;
                    if st.scope.as_ref().is_some_and(|s| *s != rec.scope) {
                        continue;
                    }
                    let previous = match st
                        .store
                        .previous_scope_record(&st.queue, &rec.scope, rec.id)
                        .await
                    {
                        Ok(p) => p.map(|p| p.outcome.is_green()),
                        Err(e) => return Some((Err(store_status(e)), st)),
                    };
                    let ev = event(&rec, previous);
                    if st.transitions_only && !ev.transition {
                        continue;
                    }
                    st.buffered.push_back(ev);
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Check `authorization: Bearer <token>` in constant time; no token
/// configured refuses every call.
#[derive(Clone)]
pub struct BearerAuth {
    token: Option<Arc<str>>,
}

impl BearerAuth {
    pub fn new(token: Option<String>) -> BearerAuth {
        BearerAuth {
            token: token.filter(|t| !t.is_empty()).map(Arc::from),
        }
    }
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        use subtle::ConstantTimeEq;
        let Some(token) = &self.token else {
            return Err(Status::unauthenticated(
                "BDC_API_TOKEN is not set: the greenness gRPC API refuses every call",
            ));
        };
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("missing or wrong bearer token"))
        }
    }
}

/// Serve the `Greenness` service (bearer-token auth) and reflection on
/// `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: GreennessService,
    api_token: Option<String>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let greenness = GreennessServer::with_interceptor(service, BearerAuth::new(api_token));
    tracing::info!(addr = ?listener.local_addr().ok(), "greenness gRPC: listening");
    tonic::transport::Server::builder()
        .add_service(reflection)
        .add_service(greenness)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown,
        )
        .await
        .map_err(|e| ServeError::Transport(e.to_string()))
}
