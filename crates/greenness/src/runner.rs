//! [`BuildRunner`] that runs configured shell commands: the queue's
//! `build` (target `repo`) or each project's `build` (one target per
//! project), with the commit checked out as the working directory, a
//! timeout, the exit code, and the output captured to
//! `<log_dir>/<queue>/<build id>/<target>.log` (normally under
//! `WORKSPACE_DIR/greenness/logs`).
//!
//! Exit 0 is `passed`, another exit code `failed`; a timeout or a kill by
//! a signal is `undetermined` (never guessed). Failing to start the shell
//! at all is a runner error (retried, then dead-lettered).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::{GreennessConfig, ProjectSpec, QueueSpec};
use crate::model::{Outcome, TargetResult};
use crate::traits::{BuildContext, BuildRunner, RunnerError, Target};

/// Runs build commands from the configuration.
pub struct CommandRunner {
    pub config: Arc<GreennessConfig>,
    pub log_dir: PathBuf,
    /// Targets built at once (see [`crate::graph::default_jobs`]).
    pub jobs: usize,
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl CommandRunner {
    fn command_for(&self, spec: &QueueSpec, target: &str) -> Option<String> {
        if target == "repo" {
            return spec.build.clone();
        }
        spec.project(target)
            .and_then(|p| p.build.clone())
            .or_else(|| spec.build.clone())
    }

    async fn run_target(
        &self,
        ctx: &BuildContext,
        spec: &QueueSpec,
        dir: &std::path::Path,
        timeout: Duration,
        t: &Target,
    ) -> Result<TargetResult, RunnerError> {
        let Some(command) = self.command_for(spec, &t.name) else {
            return Err(RunnerError(format!(
                "queue {:?} has no build command for target {:?}",
                ctx.queue, t.name
            )));
        };
        let log = dir.join(format!("{}.log", sanitize(&t.name)));
        let file = std::fs::File::create(&log)
            .map_err(|e| RunnerError(format!("creating log {}: {e}", log.display())))?;
        let err_file = file
            .try_clone()
            .map_err(|e| RunnerError(format!("opening log {}: {e}", log.display())))?;
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&command)
            .env("BDC_GREENNESS_QUEUE", &ctx.queue)
            .env("BDC_GREENNESS_COMMIT", &ctx.commit_uri)
            .env("BDC_GREENNESS_BUILD_ID", &ctx.build_id)
            .env("BDC_GREENNESS_TARGET", &t.name)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err_file))
            .kill_on_drop(true);
        if let Some(w) = &ctx.workdir {
            cmd.current_dir(w);
        }
        let started = std::time::Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| RunnerError(format!("starting `{command}`: {e}")))?;
        let (outcome, exit_code, detail) = match tokio::time::timeout(timeout, child.wait()).await {
            Err(_) => {
                let _ = child.kill().await;
                (
                    Outcome::Undetermined,
                    None,
                    format!("timed out after {}s", timeout.as_secs()),
                )
            }
            Ok(Err(e)) => return Err(RunnerError(format!("waiting for `{command}`: {e}"))),
            Ok(Ok(status)) => match status.code() {
                Some(0) => (Outcome::Passed, Some(0), "exit 0".to_owned()),
                Some(c) => (Outcome::Failed, Some(c), format!("exit {c}")),
                None => (
                    Outcome::Undetermined,
                    None,
                    format!("killed by a signal ({status})"),
                ),
            },
        };
        tracing::info!(build = %ctx.build_id, target = %t.name, outcome = outcome.as_str(), elapsed_ms = started.elapsed().as_millis() as u64, "greenness: target built");
        metrics::counter!("bdc_greenness_target_builds_total", "outcome" => outcome.as_str())
            .increment(1);
        Ok(TargetResult {
            target: t.name.clone(),
            outcome,
            exit_code,
            log_location: Some(log.display().to_string()),
            detail,
            not_built: false,
        })
    }
}

#[async_trait]
impl BuildRunner for CommandRunner {
    fn target_graph(&self, spec: &QueueSpec, repo: bool, projects: &[String]) -> Vec<Target> {
        if repo {
            return vec![Target {
                name: "repo".into(),
                deps: Vec::new(),
            }];
        }
        projects
            .iter()
            .filter_map(|p| spec.project(p))
            .map(|p| Target {
                name: p.name.clone(),
                deps: p.deps.clone(),
            })
            .collect()
    }

    async fn build(
        &self,
        ctx: &BuildContext,
        spec: &QueueSpec,
        targets: &[Target],
    ) -> Result<Vec<TargetResult>, RunnerError> {
        let timeout = Duration::from_secs(spec.timeout_seconds);
        let dir = self
            .log_dir
            .join(sanitize(&ctx.queue))
            .join(sanitize(&ctx.build_id));
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| RunnerError(format!("creating log dir {}: {e}", dir.display())))?;
        let dir = &dir;
        crate::graph::run(targets, self.jobs, |t| {
            self.run_target(ctx, spec, dir, timeout, t)
        })
        .await
    }

    async fn list_projects(
        &self,
        spec: &QueueSpec,
        commit_uri: &str,
    ) -> Result<Option<Vec<ProjectSpec>>, RunnerError> {
        let (Some(command), Some(dir)) = (&spec.projects_command, &spec.projects_command_dir)
        else {
            return Ok(None);
        };
        let (command, dir) = (command.clone(), dir.clone());
        let env = [
            ("BDC_GREENNESS_QUEUE".to_owned(), spec.name.clone()),
            ("BDC_GREENNESS_COMMIT".to_owned(), commit_uri.to_owned()),
        ];
        let listed = tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            crate::config::list_projects(&command, &dir, &env)
        })
        .await
        .map_err(|e| RunnerError(format!("projects_command task: {e}")))?
        .map_err(|e| RunnerError(format!("projects_command of queue {:?}: {e}", spec.name)))?;
        Ok(Some(listed))
    }
}
