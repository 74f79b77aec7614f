//! Entities of greenness tracking: queues, requests, build results and
//! greenness records. Commit URIs are opaque strings owned by the
//! [`SourceControl`](crate::traits::SourceControl) implementation.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Result of building one target (or of a whole signal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Built and tested; the only outcome gating treats as green.
    Passed,
    /// The build ran and failed (exit code non-zero).
    Failed,
    /// Infrastructure gave up (timeout, runner crash, dead letter): not
    /// green, never guessed, may be validated again later.
    Undetermined,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Undetermined => "undetermined",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "passed" => Some(Outcome::Passed),
            "failed" => Some(Outcome::Failed),
            "undetermined" => Some(Outcome::Undetermined),
            _ => None,
        }
    }

    pub fn is_green(self) -> bool {
        self == Outcome::Passed
    }
}

/// What a greenness record covers: the whole repository or one project.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Scope {
    Repo,
    Project(String),
}

impl Scope {
    /// Stored form: `repo` or `project:<name>`.
    pub fn key(&self) -> String {
        match self {
            Scope::Repo => "repo".to_owned(),
            Scope::Project(p) => format!("project:{p}"),
        }
    }

    pub fn from_key(s: &str) -> Option<Scope> {
        if s == "repo" {
            Some(Scope::Repo)
        } else {
            s.strip_prefix("project:")
                .map(|p| Scope::Project(p.to_owned()))
        }
    }

    pub fn for_project(project: Option<&str>) -> Scope {
        match project {
            Some(p) => Scope::Project(p.to_owned()),
            None => Scope::Repo,
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key())
    }
}

/// A pointer to the last green commit of a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GreenPointer {
    pub commit_uri: String,
    /// Sequence (counter) of the request that made it green; the pointer
    /// only ever moves to a higher sequence.
    pub seq: i64,
}

/// A queue: the validation namespace (a named repo + ref).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queue {
    pub name: String,
    pub repo: String,
    pub ref_name: String,
    pub last_green: Option<GreenPointer>,
    /// Last green per project.
    pub projects: BTreeMap<String, GreenPointer>,
}

/// Lifecycle of a request; each state names the last completed stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Accepted,
    Processed,
    Built,
    Signalled,
    Recorded,
    Analyzed,
    ProjectsBuilt,
    ProjectsSignalled,
    /// Every record written.
    Done,
    /// A newer head was ingested before this one was processed: reported
    /// as `not validated`, never green.
    Superseded,
    /// A stage gave up (dead letter): recorded `undetermined` (fail closed).
    DeadLettered,
}

impl RequestState {
    pub const ALL: [RequestState; 11] = [
        RequestState::Accepted,
        RequestState::Processed,
        RequestState::Built,
        RequestState::Signalled,
        RequestState::Recorded,
        RequestState::Analyzed,
        RequestState::ProjectsBuilt,
        RequestState::ProjectsSignalled,
        RequestState::Done,
        RequestState::Superseded,
        RequestState::DeadLettered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Accepted => "accepted",
            RequestState::Processed => "processed",
            RequestState::Built => "built",
            RequestState::Signalled => "signalled",
            RequestState::Recorded => "recorded",
            RequestState::Analyzed => "analyzed",
            RequestState::ProjectsBuilt => "projects_built",
            RequestState::ProjectsSignalled => "projects_signalled",
            RequestState::Done => "done",
            RequestState::Superseded => "superseded",
            RequestState::DeadLettered => "dead_lettered",
        }
    }

    pub fn parse(s: &str) -> Option<RequestState> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// No more stages will run.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RequestState::Done | RequestState::Superseded | RequestState::DeadLettered
        )
    }

    /// What gating reports for a request in this state before any record.
    pub fn validation_label(self) -> &'static str {
        match self {
            RequestState::Superseded => "not validated",
            RequestState::DeadLettered => "undetermined",
            RequestState::Done => "validated",
            _ => "pending",
        }
    }
}

/// Full or incremental build, decided by `process`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildMode {
    Full,
    Incremental,
}

/// The decision of `process`, stored on the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub mode: BuildMode,
    pub reason: String,
    /// The last green commit the incremental build is relative to.
    pub base: Option<String>,
    pub changed_paths: Vec<String>,
    /// Projects affected by the change (all projects for a full build).
    pub affected: Vec<String>,
}

/// Result of one target of a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetResult {
    pub target: String,
    pub outcome: Outcome,
    pub exit_code: Option<i32>,
    pub log_location: Option<String>,
    pub detail: String,
    /// Not run because a dependency did not pass (outcome `undetermined`:
    /// never green, never a guessed red; status `not built`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_built: bool,
}

/// One build (a set of targets) of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildAttempt {
    pub build_id: String,
    pub results: Vec<TargetResult>,
}

/// What the build signal says about a scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub outcome: Outcome,
    /// 0.0 = green … 1.0 = fully broken.
    pub degree: f64,
    pub evidence: Evidence,
}

/// Why a record says what it says.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Evidence {
    pub build_id: Option<String>,
    pub failing_targets: Vec<String>,
    pub log_location: Option<String>,
    /// Green inherited unchanged from this (ancestor, green) commit.
    pub inherited_from: Option<String>,
    pub reason: String,
    /// Targets not built because a dependency did not pass (not decided:
    /// left out of the degree).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_built: Vec<String>,
}

/// Stage data accumulated on a request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RequestData {
    pub plan: Option<Plan>,
    pub repo_build: Option<BuildAttempt>,
    pub repo_signal: Option<Signal>,
    /// Projects the per-project phase builds.
    pub project_targets: Vec<String>,
    /// Projects whose green is inherited from the plan's base.
    pub inherited: Vec<String>,
    pub project_build: Option<BuildAttempt>,
    pub project_signals: BTreeMap<String, Signal>,
    pub error: Option<String>,
    /// Projects listed by the queue's `projects_command` for this request
    /// (evaluated once, by `process`; None: the command is not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed_projects: Option<Vec<crate::config::ProjectSpec>>,
    /// A deliberate new attempt at an already validated commit (not
    /// superseded by newer heads).
    #[serde(default)]
    pub revalidation: bool,
}

/// One validation of a queue at a commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// `request/<queue>/<counter>`.
    pub id: String,
    pub queue: String,
    pub seq: i64,
    pub commit_uri: String,
    pub state: RequestState,
    /// Optimistic lock: bumped by every update.
    pub version: i64,
    pub data: RequestData,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A request ID from its parts.
pub fn request_id(queue: &str, seq: i64) -> String {
    format!("request/{queue}/{seq}")
}

/// Errors decoding stored entities.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode a {what} from bytes: {source}")]
pub struct DecodeError {
    pub what: &'static str,
    #[source]
    pub source: serde_json::Error,
}

macro_rules! bytes_impl {
    ($t:ty, $what:literal) => {
        impl $t {
            /// Serialise to bytes (JSON).
            pub fn to_bytes(&self) -> Vec<u8> {
                // Serialising these plain data types cannot fail (string
                // keys, finite or JSON-representable values).
                serde_json::to_vec(self).unwrap_or_default()
            }

            /// Deserialise from [`Self::to_bytes`] output.
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
                serde_json::from_slice(bytes).map_err(|source| DecodeError {
                    what: $what,
                    source,
                })
            }
        }
    };
}

bytes_impl!(Request, "request");
bytes_impl!(Queue, "queue");
bytes_impl!(GreennessRecord, "greenness record");

/// An appended, never modified, greenness fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GreennessRecord {
    pub id: i64,
    pub queue: String,
    pub request_id: String,
    pub seq: i64,
    pub commit_uri: String,
    pub scope: Scope,
    pub degree: f64,
    pub outcome: Outcome,
    pub evidence: Evidence,
    pub recorded_at: DateTime<Utc>,
}

/// A record about to be appended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRecord {
    pub request_id: String,
    pub seq: i64,
    pub commit_uri: String,
    pub scope: Scope,
    pub degree: f64,
    pub outcome: Outcome,
    pub evidence: Evidence,
}

/// Result of an ingest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestOutcome {
    pub request: Request,
    /// False when the (queue, head) was already ingested (dedup).
    pub created: bool,
}

/// A request update under optimistic locking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestUpdate {
    pub id: String,
    pub expected_version: i64,
    pub state: RequestState,
    pub data: RequestData,
}

/// The output of a stage handler: everything that changes, applied
/// atomically with the message's ack.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Transition {
    pub request: Option<RequestUpdate>,
    pub records: Vec<NewRecord>,
    /// Move these last-green pointers (only ever forward, by sequence).
    pub last_green: Vec<(Scope, GreenPointer)>,
    pub enqueue: Vec<NewMessage>,
}

/// The pipeline stages carried by durable messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Process,
    Build,
    BuildSignal,
    Record,
    Analyze,
    ProjectBuild,
    ProjectSignal,
    ProjectRecord,
    /// Deliver one hook event (the outbox of the hooks).
    Notify,
}

impl Stage {
    pub const ALL: [Stage; 9] = [
        Stage::Process,
        Stage::Build,
        Stage::BuildSignal,
        Stage::Record,
        Stage::Analyze,
        Stage::ProjectBuild,
        Stage::ProjectSignal,
        Stage::ProjectRecord,
        Stage::Notify,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Process => "process",
            Stage::Build => "build",
            Stage::BuildSignal => "buildsignal",
            Stage::Record => "record",
            Stage::Analyze => "analyze",
            Stage::ProjectBuild => "project_build",
            Stage::ProjectSignal => "project_buildsignal",
            Stage::ProjectRecord => "project_record",
            Stage::Notify => "notify",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The request state a message of this stage expects.
    pub fn expects(self) -> Option<RequestState> {
        Some(match self {
            Stage::Process => RequestState::Accepted,
            Stage::Build => RequestState::Processed,
            Stage::BuildSignal => RequestState::Built,
            Stage::Record => RequestState::Signalled,
            Stage::Analyze => RequestState::Recorded,
            Stage::ProjectBuild => RequestState::Analyzed,
            Stage::ProjectSignal => RequestState::ProjectsBuilt,
            Stage::ProjectRecord => RequestState::ProjectsSignalled,
            Stage::Notify => return None,
        })
    }
}

/// A claimed stage message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: i64,
    pub queue: String,
    pub request_id: String,
    pub stage: Stage,
    pub payload: Option<String>,
    /// Deliveries so far, including this one.
    pub attempts: i64,
}

/// A message to enqueue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    pub stage: Stage,
    pub payload: Option<String>,
}

/// Kind of a hook event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A scope changed between green and not green.
    Transition,
    /// A degree was recorded.
    Degree,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Transition => "transition",
            EventKind::Degree => "degree",
        }
    }
}

/// The JSON body of a webhook (and the stdin of a command hook).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookEvent {
    pub event: EventKind,
    pub queue: String,
    pub request_id: String,
    pub commit_uri: String,
    pub scope: Scope,
    pub outcome: Outcome,
    pub degree: f64,
    pub green: bool,
    /// Green-ness of the previous record of the scope (None: never recorded).
    pub previous_green: Option<bool>,
    pub recorded_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_request() -> Request {
        let now = Utc::now();
        Request {
            id: request_id("main", 7),
            queue: "main".into(),
            seq: 7,
            commit_uri: "git://local/repo/ref/main/abc".into(),
            state: RequestState::Signalled,
            version: 3,
            data: RequestData {
                plan: Some(Plan {
                    mode: BuildMode::Incremental,
                    reason: "ancestor".into(),
                    base: Some("git://local/repo/ref/main/000".into()),
                    changed_paths: vec!["a/b.rs".into()],
                    affected: vec!["a".into()],
                }),
                repo_build: Some(BuildAttempt {
                    build_id: "b1".into(),
                    results: vec![TargetResult {
                        target: "a".into(),
                        outcome: Outcome::Failed,
                        exit_code: Some(1),
                        log_location: Some("/tmp/x.log".into()),
                        detail: "exit 1".into(),
                        not_built: false,
                    }],
                }),
                repo_signal: Some(Signal {
                    outcome: Outcome::Failed,
                    degree: 0.5,
                    evidence: Evidence::default(),
                }),
                ..RequestData::default()
            },
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn request_round_trips_through_bytes() {
        let r = sample_request();
        let back = Request::from_bytes(&r.to_bytes()).unwrap();
        assert_eq!(r, back);
        assert!(Request::from_bytes(b"{").is_err());
    }

    #[test]
    fn queue_and_record_round_trip() {
        let q = Queue {
            name: "main".into(),
            repo: "/tmp/r".into(),
            ref_name: "main".into(),
            last_green: Some(GreenPointer {
                commit_uri: "u".into(),
                seq: 2,
            }),
            projects: BTreeMap::from([(
                "p".to_owned(),
                GreenPointer {
                    commit_uri: "u".into(),
                    seq: 2,
                },
            )]),
        };
        assert_eq!(Queue::from_bytes(&q.to_bytes()).unwrap(), q);
        let rec = GreennessRecord {
            id: 1,
            queue: "main".into(),
            request_id: "request/main/1".into(),
            seq: 1,
            commit_uri: "u".into(),
            scope: Scope::Project("p".into()),
            degree: 0.0,
            outcome: Outcome::Passed,
            evidence: Evidence::default(),
            recorded_at: Utc::now(),
        };
        assert_eq!(GreennessRecord::from_bytes(&rec.to_bytes()).unwrap(), rec);
    }

    #[test]
    fn names_parse_back() {
        for s in RequestState::ALL {
            assert_eq!(RequestState::parse(s.as_str()), Some(s));
        }
        for s in Stage::ALL {
            assert_eq!(Stage::parse(s.as_str()), Some(s));
        }
        for o in [Outcome::Passed, Outcome::Failed, Outcome::Undetermined] {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        for sc in [Scope::Repo, Scope::Project("x:y".into())] {
            assert_eq!(Scope::from_key(&sc.key()), Some(sc));
        }
        assert_eq!(request_id("q", 3), "request/q/3");
    }
}
