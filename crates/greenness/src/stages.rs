//! The stage handlers: pure state transitions over the extension traits.
//!
//! A handler reads the request (and what it needs) through the traits, may
//! run a build, and returns a [`Step`]: the [`Transition`] to apply
//! atomically with the message's ack. Handlers never write; the engine
//! applies the transition under the request's optimistic lock, so a
//! redelivered message (at-least-once delivery) finds the request already
//! past its stage and is acknowledged without effect.

use std::collections::BTreeSet;

use crate::config::QueueSpec;
use crate::model::{
    BuildAttempt, BuildMode, EventKind, Evidence, GreenPointer, HookEvent, Message, NewMessage,
    NewRecord, Outcome, Plan, Request, RequestData, RequestState, RequestUpdate, Scope, Signal,
    Stage, TargetResult, Transition,
};
use crate::traits::{
    BuildContext, BuildRunner, HookError, Hooks, PipelineStore, RunnerError, ScmError,
    SourceControl, StoreError,
};

/// What the extension traits a handler may use.
pub struct Env<'a> {
    pub store: &'a dyn PipelineStore,
    pub scm: &'a dyn SourceControl,
    pub runner: &'a dyn BuildRunner,
    pub hooks: &'a dyn Hooks,
    pub spec: &'a QueueSpec,
    pub now: chrono::DateTime<chrono::Utc>,
}

/// A handler's decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Apply this transition and ack.
    Apply(Box<Transition>),
    /// Nothing to do (a redelivery, or a delivered hook): ack only.
    Ack(String),
}

/// Why a stage failed (the message is retried, then dead-lettered).
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Scm(#[from] ScmError),
    #[error(transparent)]
    Runner(#[from] RunnerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error("{0}")]
    Invalid(String),
}

/// Handle one message.
pub async fn handle(env: &Env<'_>, msg: &Message) -> Result<Step, StageError> {
    if msg.stage == Stage::Notify {
        let payload = msg.payload.as_deref().unwrap_or_default();
        let event: HookEvent = serde_json::from_str(payload).map_err(|e| {
            StageError::Invalid(format!("notify message {} has a bad payload: {e}", msg.id))
        })?;
        env.hooks.notify(&event).await?;
        return Ok(Step::Ack("hook delivered".into()));
    }
    let req = env
        .store
        .request(&msg.request_id)
        .await?
        .ok_or_else(|| StageError::Invalid(format!("unknown request {}", msg.request_id)))?;
    let expected = msg.stage.expects();
    if Some(req.state) != expected {
        return Ok(Step::Ack(format!(
            "request {} is {} (stage {} already applied)",
            req.id,
            req.state.as_str(),
            msg.stage.as_str()
        )));
    }
    let spec = effective_spec(env.spec, &req)?;
    let env = &Env {
        spec: &spec,
        ..*env
    };
    let t = match msg.stage {
        Stage::Process => process(env, &req).await?,
        Stage::Build => build(env, &req, msg.attempts).await?,
        Stage::BuildSignal => build_signal(env, &req)?,
        Stage::Record => record(env, &req).await?,
        Stage::Analyze => analyze(env, &req).await?,
        Stage::ProjectBuild => project_build(env, &req, msg.attempts).await?,
        Stage::ProjectSignal => project_signal(env, &req)?,
        Stage::ProjectRecord => project_record(env, &req).await?,
        Stage::Notify => return Ok(Step::Ack(String::new())),
    };
    Ok(Step::Apply(Box::new(t)))
}

/// The queue as this request sees it: the YAML projects plus the ones its
/// `projects_command` listed when the request was processed.
pub fn effective_spec(spec: &QueueSpec, req: &Request) -> Result<QueueSpec, StageError> {
    match &req.data.listed_projects {
        None => Ok(spec.clone()),
        Some(listed) => spec
            .with_listed_projects(listed.clone())
            .map_err(|e| StageError::Invalid(format!("request {}: listed projects: {e}", req.id))),
    }
}

fn update(req: &Request, state: RequestState, data: RequestData) -> Option<RequestUpdate> {
    Some(RequestUpdate {
        id: req.id.clone(),
        expected_version: req.version,
        state,
        data,
    })
}

fn next(stage: Stage) -> Vec<NewMessage> {
    vec![NewMessage {
        stage,
        payload: None,
    }]
}

fn plan_of(req: &Request) -> Result<&Plan, StageError> {
    req.data
        .plan
        .as_ref()
        .ok_or_else(|| StageError::Invalid(format!("request {} has no plan", req.id)))
}

async fn process(env: &Env<'_>, req: &Request) -> Result<Transition, StageError> {
    let mut data = req.data.clone();
    if !req.data.revalidation && env.store.newer_request_exists(&req.queue, req.seq).await? {
        data.error = Some("superseded by a newer head before processing: not validated".into());
        return Ok(Transition {
            request: update(req, RequestState::Superseded, data),
            ..Transition::default()
        });
    }
    let queue = env
        .store
        .queue(&req.queue)
        .await?
        .ok_or_else(|| StoreError::UnknownQueue(req.queue.clone()))?;
    // Re-list the projects for this request (a project added in the
    // repository is picked up without a restart).
    let listed_spec;
    let env = match env.runner.list_projects(env.spec, &req.commit_uri).await? {
        Some(listed) => {
            listed_spec = env
                .spec
                .with_listed_projects(listed.clone())
                .map_err(|e| StageError::Invalid(format!("projects_command: {e}")))?;
            data.listed_projects = Some(listed);
            &Env {
                spec: &listed_spec,
                ..*env
            }
        }
        None => env,
    };
    let all = env.spec.project_names();
    let full = |reason: String| Plan {
        mode: BuildMode::Full,
        reason,
        base: None,
        changed_paths: Vec::new(),
        affected: all.clone(),
    };
    let plan = match &queue.last_green {
        None => full("no last green commit: full build".into()),
        Some(lg) => match env.scm.is_ancestor(&lg.commit_uri, &req.commit_uri).await {
            Ok(true) => {
                let changed = if lg.commit_uri == req.commit_uri {
                    Vec::new()
                } else {
                    env.scm
                        .changed_paths(&lg.commit_uri, &req.commit_uri)
                        .await?
                };
                let affected = env.spec.affected_projects(&changed);
                Plan {
                    mode: BuildMode::Incremental,
                    reason: format!(
                        "last green {} is an ancestor of head: {} paths changed, {} of {} projects affected",
                        lg.commit_uri,
                        changed.len(),
                        affected.len(),
                        all.len()
                    ),
                    base: Some(lg.commit_uri.clone()),
                    changed_paths: changed,
                    affected,
                }
            }
            Ok(false) => full(format!(
                "last green {} is not an ancestor of head (history rewrite): full build",
                lg.commit_uri
            )),
            Err(ScmError::UnknownCommit { .. } | ScmError::InvalidUri { .. }) => full(format!(
                "last green {} is unknown to source control (history rewrite or another repository): full build",
                lg.commit_uri
            )),
            Err(e) => return Err(e.into()),
        },
    };
    tracing::info!(request = %req.id, mode = ?plan.mode, reason = %plan.reason, "greenness: processed");
    data.plan = Some(plan);
    Ok(Transition {
        request: update(req, RequestState::Processed, data),
        enqueue: next(Stage::Build),
        ..Transition::default()
    })
}

async fn run_build(
    env: &Env<'_>,
    req: &Request,
    build_id: String,
    repo: bool,
    names: &[String],
) -> Result<BuildAttempt, StageError> {
    let targets = env.runner.target_graph(env.spec, repo, names);
    if targets.is_empty() {
        return Ok(BuildAttempt {
            build_id,
            results: Vec::new(),
        });
    }
    let workdir = env.scm.checkout(&req.commit_uri, &build_id).await?;
    let ctx = BuildContext {
        queue: req.queue.clone(),
        request_id: req.id.clone(),
        commit_uri: req.commit_uri.clone(),
        build_id: build_id.clone(),
        workdir,
    };
    let results = env.runner.build(&ctx, env.spec, &targets).await;
    if let Err(e) = env.scm.release(&req.commit_uri, &ctx.build_id).await {
        tracing::warn!(request = %req.id, error = %e, "greenness: cannot release a checkout");
    }
    Ok(BuildAttempt {
        build_id,
        results: results?,
    })
}

async fn build(env: &Env<'_>, req: &Request, attempt: i64) -> Result<Transition, StageError> {
    let plan = plan_of(req)?;
    let (repo, names) = if env.spec.build.is_some() {
        (true, Vec::new())
    } else {
        (false, plan.affected.clone())
    };
    let attempt = run_build(
        env,
        req,
        format!("{}/v{}/repo/{attempt}", req.id, req.version),
        repo,
        &names,
    )
    .await?;
    let mut data = req.data.clone();
    data.repo_build = Some(attempt);
    Ok(Transition {
        request: update(req, RequestState::Built, data),
        enqueue: next(Stage::BuildSignal),
        ..Transition::default()
    })
}

/// The signal of a set of target results over `units` units. Targets not
/// built (a dependency did not pass) are not decided: they are left out of
/// the degree, never counted green or red.
fn signal(build_id: &str, results: &[&TargetResult], units: usize) -> Signal {
    let not_built: Vec<&TargetResult> = results.iter().copied().filter(|r| r.not_built).collect();
    let failing: Vec<&TargetResult> = results
        .iter()
        .copied()
        .filter(|r| r.outcome != Outcome::Passed && !r.not_built)
        .collect();
    let failed = failing
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .count();
    let undetermined = failing.iter().any(|r| r.outcome == Outcome::Undetermined);
    let outcome = if undetermined {
        Outcome::Undetermined
    } else if failed > 0 {
        Outcome::Failed
    } else if !not_built.is_empty() {
        Outcome::Undetermined
    } else {
        Outcome::Passed
    };
    let units = units.max(results.len()).max(1);
    let decided = units.saturating_sub(not_built.len());
    let degree = if outcome == Outcome::Passed {
        0.0
    } else if decided == 0 {
        1.0
    } else {
        (failing.len() as f64 / decided as f64).clamp(0.0, 1.0)
    };
    let mut reason = format!(
        "{} of {} targets passed",
        results.len() - failing.len() - not_built.len(),
        results.len() - not_built.len()
    );
    if !not_built.is_empty() {
        reason.push_str(&format!(
            "; {} not built (a dependency did not pass)",
            not_built.len()
        ));
    }
    Signal {
        outcome,
        degree,
        evidence: Evidence {
            build_id: Some(build_id.to_owned()),
            failing_targets: failing.iter().map(|r| r.target.clone()).collect(),
            log_location: failing
                .first()
                .or(results.first())
                .and_then(|r| r.log_location.clone()),
            inherited_from: None,
            reason,
            not_built: not_built.iter().map(|r| r.target.clone()).collect(),
        },
    }
}

fn inherited(base: &str) -> Signal {
    Signal {
        outcome: Outcome::Passed,
        degree: 0.0,
        evidence: Evidence {
            inherited_from: Some(base.to_owned()),
            reason: format!("unchanged since green {base}"),
            ..Evidence::default()
        },
    }
}

fn build_signal(env: &Env<'_>, req: &Request) -> Result<Transition, StageError> {
    let plan = plan_of(req)?;
    let attempt = req
        .data
        .repo_build
        .as_ref()
        .ok_or_else(|| StageError::Invalid(format!("request {} has no build", req.id)))?;
    let sig = if attempt.results.is_empty() {
        match (&plan.base, plan.mode) {
            (Some(base), BuildMode::Incremental) => inherited(base),
            _ => Signal {
                outcome: Outcome::Undetermined,
                degree: 1.0,
                evidence: Evidence {
                    build_id: Some(attempt.build_id.clone()),
                    reason: "nothing was built".into(),
                    ..Evidence::default()
                },
            },
        }
    } else {
        let units = if env.spec.build.is_some() {
            1
        } else {
            env.spec.projects.len()
        };
        let results: Vec<&TargetResult> = attempt.results.iter().collect();
        signal(&attempt.build_id, &results, units)
    };
    let mut data = req.data.clone();
    data.repo_signal = Some(sig);
    Ok(Transition {
        request: update(req, RequestState::Signalled, data),
        enqueue: next(Stage::Record),
        ..Transition::default()
    })
}

/// The record, last-green move and hook events for one scope.
pub async fn record_scope(
    env: &Env<'_>,
    req: &Request,
    scope: Scope,
    sig: &Signal,
    t: &mut Transition,
) -> Result<(), StageError> {
    let previous = env
        .store
        .latest_scope_record(&req.queue, &scope)
        .await?
        .map(|r| r.outcome.is_green());
    let green = sig.outcome.is_green();
    t.records.push(NewRecord {
        request_id: req.id.clone(),
        seq: req.seq,
        commit_uri: req.commit_uri.clone(),
        scope: scope.clone(),
        degree: sig.degree,
        outcome: sig.outcome,
        evidence: sig.evidence.clone(),
    });
    if green {
        t.last_green.push((
            scope.clone(),
            GreenPointer {
                commit_uri: req.commit_uri.clone(),
                seq: req.seq,
            },
        ));
    }
    let mut kinds = vec![EventKind::Degree];
    if previous.unwrap_or(false) != green {
        kinds.push(EventKind::Transition);
    }
    for kind in kinds.into_iter().filter(|k| env.hooks.wants(*k)) {
        let event = HookEvent {
            event: kind,
            queue: req.queue.clone(),
            request_id: req.id.clone(),
            commit_uri: req.commit_uri.clone(),
            scope: scope.clone(),
            outcome: sig.outcome,
            degree: sig.degree,
            green,
            previous_green: previous,
            recorded_at: env.now,
        };
        t.enqueue.push(NewMessage {
            stage: Stage::Notify,
            payload: Some(serde_json::to_string(&event).unwrap_or_default()),
        });
    }
    metrics::counter!("bdc_greenness_records_total", "scope" => if scope == Scope::Repo { "repo" } else { "project" }, "outcome" => sig.outcome.as_str()).increment(1);
    Ok(())
}

async fn record(env: &Env<'_>, req: &Request) -> Result<Transition, StageError> {
    let sig = req
        .data
        .repo_signal
        .clone()
        .ok_or_else(|| StageError::Invalid(format!("request {} has no signal", req.id)))?;
    let mut t = Transition::default();
    record_scope(env, req, Scope::Repo, &sig, &mut t).await?;
    if env.spec.projects.is_empty() {
        t.request = update(req, RequestState::Done, req.data.clone());
    } else {
        t.request = update(req, RequestState::Recorded, req.data.clone());
        t.enqueue.extend(next(Stage::Analyze));
    }
    tracing::info!(request = %req.id, outcome = sig.outcome.as_str(), degree = sig.degree, "greenness: recorded repo");
    Ok(t)
}

fn phase1_projects(env: &Env<'_>, req: &Request) -> BTreeSet<String> {
    if env.spec.build.is_some() {
        return BTreeSet::new();
    }
    req.data
        .repo_build
        .iter()
        .flat_map(|b| b.results.iter().map(|r| r.target.clone()))
        .collect()
}

async fn analyze(env: &Env<'_>, req: &Request) -> Result<Transition, StageError> {
    let plan = plan_of(req)?;
    let reused = phase1_projects(env, req);
    let mut data = req.data.clone();
    data.project_targets.clear();
    data.inherited.clear();
    for p in env.spec.project_names() {
        if reused.contains(&p) {
            continue;
        }
        let unaffected = plan.mode == BuildMode::Incremental && !plan.affected.contains(&p);
        let base_green = match (&plan.base, unaffected) {
            (Some(base), true) => env
                .store
                .latest_record(&req.queue, base, &Scope::Project(p.clone()))
                .await?
                .is_some_and(|r| r.outcome.is_green()),
            _ => false,
        };
        if base_green {
            data.inherited.push(p);
        } else {
            data.project_targets.push(p);
        }
    }
    Ok(Transition {
        request: update(req, RequestState::Analyzed, data),
        enqueue: next(Stage::ProjectBuild),
        ..Transition::default()
    })
}

async fn project_build(
    env: &Env<'_>,
    req: &Request,
    attempt: i64,
) -> Result<Transition, StageError> {
    let names = req.data.project_targets.clone();
    let attempt = run_build(
        env,
        req,
        format!("{}/v{}/projects/{attempt}", req.id, req.version),
        false,
        &names,
    )
    .await?;
    let mut data = req.data.clone();
    data.project_build = Some(attempt);
    Ok(Transition {
        request: update(req, RequestState::ProjectsBuilt, data),
        enqueue: next(Stage::ProjectSignal),
        ..Transition::default()
    })
}

fn project_signal(env: &Env<'_>, req: &Request) -> Result<Transition, StageError> {
    let plan = plan_of(req)?;
    let mut data = req.data.clone();
    data.project_signals.clear();
    let find = |b: &Option<BuildAttempt>, p: &str| {
        b.as_ref().and_then(|b| {
            b.results
                .iter()
                .find(|r| r.target == p)
                .map(|r| signal(&b.build_id, &[r], 1))
        })
    };
    for p in env.spec.project_names() {
        let sig = if env.spec.build.is_none()
            && let Some(s) = find(&req.data.repo_build, &p)
        {
            s
        } else if let Some(s) = find(&req.data.project_build, &p) {
            s
        } else if req.data.inherited.contains(&p)
            && let Some(base) = &plan.base
        {
            inherited(base)
        } else {
            Signal {
                outcome: Outcome::Undetermined,
                degree: 1.0,
                evidence: Evidence {
                    reason: "no build result for the project".into(),
                    ..Evidence::default()
                },
            }
        };
        data.project_signals.insert(p, sig);
    }
    Ok(Transition {
        request: update(req, RequestState::ProjectsSignalled, data),
        enqueue: next(Stage::ProjectRecord),
        ..Transition::default()
    })
}

async fn project_record(env: &Env<'_>, req: &Request) -> Result<Transition, StageError> {
    let mut t = Transition::default();
    for (p, sig) in &req.data.project_signals {
        record_scope(env, req, Scope::Project(p.clone()), sig, &mut t).await?;
    }
    t.request = update(req, RequestState::Done, req.data.clone());
    tracing::info!(request = %req.id, projects = req.data.project_signals.len(), "greenness: recorded projects");
    Ok(t)
}

/// DLQ reconciliation: fail closed. Every scope of the request not yet
/// recorded gets an `undetermined` record; the request ends dead-lettered.
pub async fn reconcile(
    env: &Env<'_>,
    msg: &Message,
    error: &str,
) -> Result<Transition, StageError> {
    let Some(req) = env.store.request(&msg.request_id).await? else {
        return Ok(Transition::default());
    };
    if msg.stage == Stage::Notify || req.state.is_terminal() {
        return Ok(Transition::default());
    }
    let undetermined = Signal {
        outcome: Outcome::Undetermined,
        degree: 1.0,
        evidence: Evidence {
            reason: format!(
                "dead-lettered at stage {} after {} attempts: {error}",
                msg.stage.as_str(),
                msg.attempts
            ),
            ..Evidence::default()
        },
    };
    let mut t = Transition::default();
    let repo_recorded = !matches!(
        req.state,
        RequestState::Accepted
            | RequestState::Processed
            | RequestState::Built
            | RequestState::Signalled
    );
    if !repo_recorded {
        record_scope(env, &req, Scope::Repo, &undetermined, &mut t).await?;
    }
    // The request's own project list when it has one (else the YAML's).
    let spec = effective_spec(env.spec, &req).unwrap_or_else(|_| env.spec.clone());
    for p in spec.project_names() {
        record_scope(env, &req, Scope::Project(p), &undetermined, &mut t).await?;
    }
    let mut data = req.data.clone();
    data.error = Some(undetermined.evidence.reason.clone());
    t.request = update(&req, RequestState::DeadLettered, data);
    Ok(t)
}
