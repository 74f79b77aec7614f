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

use crate::config::GreennessConfig;
use crate::model::{Outcome, TargetResult};
use crate::traits::{BuildContext, BuildRunner, RunnerError, Target};

/// Runs build commands from the configuration.
pub struct CommandRunner {
    pub config: Arc<GreennessConfig>,
    pub log_dir: PathBuf,
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
    fn command_for(&self, queue: &str, target: &str) -> Option<String> {
        let q = self.config.queue(queue)?;
        if target == "repo" {
            return q.build.clone();
        }
        q.project(target)
            .and_then(|p| p.build.clone())
            .or_else(|| q.build.clone())
    }
}

#[async_trait]
impl BuildRunner for CommandRunner {
    fn target_graph(&self, queue: &str, repo: bool, projects: &[String]) -> Vec<Target> {
        if repo {
            return vec![Target {
                name: "repo".into(),
                deps: Vec::new(),
            }];
        }
        projects
            .iter()
            .filter(|p| {
                self.config
                    .queue(queue)
                    .is_some_and(|q| q.project(p).is_some())
            })
            .map(|p| Target {
                name: p.clone(),
                deps: Vec::new(),
            })
            .collect()
    }

    async fn build(
        &self,
        ctx: &BuildContext,
        targets: &[Target],
    ) -> Result<Vec<TargetResult>, RunnerError> {
        let timeout = Duration::from_secs(
            self.config
                .queue(&ctx.queue)
                .map_or(3600, |q| q.timeout_seconds),
        );
        let dir = self
            .log_dir
            .join(sanitize(&ctx.queue))
            .join(sanitize(&ctx.build_id));
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| RunnerError(format!("creating log dir {}: {e}", dir.display())))?;
        let mut results = Vec::new();
        for t in targets {
            let Some(command) = self.command_for(&ctx.queue, &t.name) else {
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
            let (outcome, exit_code, detail) =
                match tokio::time::timeout(timeout, child.wait()).await {
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
            results.push(TargetResult {
                target: t.name.clone(),
                outcome,
                exit_code,
                log_location: Some(log.display().to_string()),
                detail,
            });
        }
        Ok(results)
    }
}
