//! Wiring and gating: build a [`Pipeline`] over SQL storage, git and the
//! command runner; answer "last green" and "is this commit green".

use std::path::Path;
use std::sync::Arc;

use bdc_storage::Storage;
use serde::Serialize;

use crate::config::GreennessConfig;
use crate::engine::{Pipeline, RetryPolicy, SystemClock};
use crate::git::GitScm;
use crate::hooks::ConfigHooks;
use crate::model::{GreenPointer, GreennessRecord, Outcome, Request, RequestState, Scope};
use crate::runner::CommandRunner;
use crate::store::SqlStore;
use crate::traits::StoreError;

/// The production pipeline: SQL store, git, command runner, configured
/// hooks; mirrors, checkouts and logs under `<workspace_dir>/greenness`.
pub fn pipeline(
    storage: Storage,
    config: Arc<GreennessConfig>,
    workspace_dir: &Path,
    owner: &str,
) -> Pipeline {
    pipeline_on(SqlStore::new(storage), config, workspace_dir, owner)
}

/// Open the greenness store: on `storage` (the main database), or on
/// MySQL/MariaDB when `greenness_url` (`BDC_GREENNESS_DATABASE_URL`) is a
/// `mysql://` URL, migrating its tables first.
pub async fn open_store(
    storage: Storage,
    greenness_url: Option<&str>,
) -> Result<SqlStore, StoreError> {
    match greenness_url {
        Some(url) if crate::store::mysql::is_mysql_url(url) => {
            let my = crate::store::mysql::MySqlStore::connect(url).await?;
            my.migrate().await?;
            Ok(SqlStore::with_mysql(storage, my))
        }
        _ => Ok(SqlStore::new(storage)),
    }
}

/// [`pipeline`] over an already opened store (see [`open_store`]).
pub fn pipeline_on(
    store: SqlStore,
    config: Arc<GreennessConfig>,
    workspace_dir: &Path,
    owner: &str,
) -> Pipeline {
    let base = workspace_dir.join("greenness");
    Pipeline {
        store: Arc::new(store),
        scm: Arc::new(GitScm::new(base.clone(), &config)),
        runner: Arc::new(CommandRunner {
            config: Arc::clone(&config),
            log_dir: base.join("logs"),
            jobs: config.jobs.unwrap_or_else(crate::graph::default_jobs),
        }),
        hooks: Arc::new(ConfigHooks::new(config.hooks.clone())),
        config,
        policy: RetryPolicy::default(),
        clock: Arc::new(SystemClock),
        owner: owner.to_owned(),
    }
}

/// The gating answer for one commit and scope.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub queue: String,
    pub commit_uri: Option<String>,
    pub scope: Scope,
    pub green: bool,
    /// `green`, `failed`, `undetermined`, `not validated` (superseded),
    /// `pending`, or `not recorded` (not green).
    pub status: String,
    pub degree: Option<f64>,
    pub record: Option<GreennessRecord>,
}

/// Status of a queue.
#[derive(Debug, Clone, Serialize)]
pub struct QueueStatus {
    pub queue: String,
    pub last_green: Option<GreenPointer>,
    pub projects: Vec<ProjectStatus>,
    pub requests: Vec<RequestSummary>,
    pub pending_messages: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectStatus {
    pub project: String,
    pub last_green: Option<GreenPointer>,
    pub latest: Option<GreennessRecord>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestSummary {
    pub id: String,
    pub commit_uri: String,
    pub state: RequestState,
    pub validation: &'static str,
    pub mode: Option<String>,
    pub reason: Option<String>,
    pub degree: Option<f64>,
    pub outcome: Option<Outcome>,
}

/// Gating queries over the SQL store.
pub struct Gate<'a> {
    pub store: &'a SqlStore,
}

impl Gate<'_> {
    /// Last green commit of the queue (or of a project).
    pub async fn last_green(
        &self,
        queue: &str,
        project: Option<&str>,
    ) -> Result<Option<GreenPointer>, StoreError> {
        use crate::traits::PipelineStore;
        let Some(q) = self.store.queue(queue).await? else {
            return Err(StoreError::UnknownQueue(queue.to_owned()));
        };
        Ok(match project {
            None => q.last_green,
            Some(p) => q.projects.get(p).cloned(),
        })
    }

    /// Is `commit` (full sha or URI) green for the queue (or a project)?
    pub async fn verdict(
        &self,
        queue: &str,
        commit: &str,
        project: Option<&str>,
    ) -> Result<Verdict, StoreError> {
        use crate::traits::PipelineStore;
        if self.store.queue(queue).await?.is_none() {
            return Err(StoreError::UnknownQueue(queue.to_owned()));
        }
        let scope = Scope::for_project(project);
        let request: Option<Request> = self.store.find_request(queue, commit).await?;
        let Some(request) = request else {
            return Ok(Verdict {
                queue: queue.to_owned(),
                commit_uri: None,
                scope,
                green: false,
                status: "not recorded".into(),
                degree: None,
                record: None,
            });
        };
        let record = self
            .store
            .latest_record(queue, &request.commit_uri, &scope)
            .await?;
        let status = match (&record, request.state) {
            (Some(r), _) if r.outcome == Outcome::Passed => "green".to_owned(),
            (Some(r), _)
                if r.outcome == Outcome::Undetermined
                    && r.evidence.failing_targets.is_empty()
                    && !r.evidence.not_built.is_empty() =>
            {
                "not built".to_owned()
            }
            (Some(r), _) => r.outcome.as_str().to_owned(),
            (None, RequestState::Superseded) => "not validated".into(),
            (None, s) if s.is_terminal() => "not recorded".into(),
            (None, _) => "pending".into(),
        };
        Ok(Verdict {
            queue: queue.to_owned(),
            commit_uri: Some(request.commit_uri.clone()),
            scope,
            green: record.as_ref().is_some_and(|r| r.outcome.is_green()),
            status,
            degree: record.as_ref().map(|r| r.degree),
            record,
        })
    }

    /// Last green, recent requests with state and degree, projects.
    pub async fn status(&self, queue: &str, limit: i64) -> Result<QueueStatus, StoreError> {
        use crate::traits::PipelineStore;
        let Some(q) = self.store.queue(queue).await? else {
            return Err(StoreError::UnknownQueue(queue.to_owned()));
        };
        let mut requests = Vec::new();
        for r in self.store.requests(queue, limit).await? {
            let rec = self
                .store
                .latest_record(queue, &r.commit_uri, &Scope::Repo)
                .await?;
            requests.push(RequestSummary {
                validation: r.state.validation_label(),
                mode: r
                    .data
                    .plan
                    .as_ref()
                    .map(|p| format!("{:?}", p.mode).to_lowercase()),
                reason: r.data.plan.as_ref().map(|p| p.reason.clone()),
                degree: rec.as_ref().map(|x| x.degree),
                outcome: rec.as_ref().map(|x| x.outcome),
                id: r.id,
                commit_uri: r.commit_uri,
                state: r.state,
            });
        }
        let mut names: std::collections::BTreeSet<String> = q.projects.keys().cloned().collect();
        for rec in self.store.history(queue, None, 500).await? {
            if let Scope::Project(p) = rec.scope {
                names.insert(p);
            }
        }
        let mut projects = Vec::new();
        for p in names {
            projects.push(ProjectStatus {
                last_green: q.projects.get(&p).cloned(),
                latest: self
                    .store
                    .latest_scope_record(queue, &Scope::Project(p.clone()))
                    .await?,
                project: p,
            });
        }
        Ok(QueueStatus {
            queue: queue.to_owned(),
            last_green: q.last_green,
            projects,
            requests,
            pending_messages: self.store.pending().await?.total,
        })
    }
}
