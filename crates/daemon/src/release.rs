//! The release watcher: new tags of a git repository trigger `on_release`
//! tasks once per release.

use bdc_core::IncrementalState;
use bdc_storage::Storage;
use bdc_storage::checkpoints::CheckpointWrite;

use crate::DaemonError;

/// Watches `repo` (a local path or URL `git ls-remote` understands) for tags
/// matching `prefix` (e.g. `boost-`). Seen tags are kept as a checkpoint
/// (collector `release-watcher`, scope = repo), so each release fires once
/// across restarts and processes (the slot key dedups concurrent watchers).
#[derive(Debug, Clone)]
pub struct ReleaseWatcher {
    pub repo: String,
    pub prefix: String,
    pub storage: Storage,
}

const COLLECTOR: &str = "release-watcher";

/// Order release tags by their numeric parts (`boost-1.10.0` after `boost-1.9.0`).
fn version_key(tag: &str) -> Vec<u64> {
    tag.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u64>().unwrap_or(0))
        .collect()
}

/// Tags from `git ls-remote --tags` output (peeled `^{}` entries folded).
pub fn parse_ls_remote(out: &str, prefix: &str) -> Vec<String> {
    let mut tags: Vec<String> = out
        .lines()
        .filter_map(|l| l.split('\t').nth(1))
        .filter_map(|r| r.strip_prefix("refs/tags/"))
        .map(|t| t.trim_end_matches("^{}").to_owned())
        .filter(|t| t.starts_with(prefix) && !t.contains("beta") && !t.contains("rc"))
        .collect();
    tags.sort_by_key(|t| version_key(t));
    tags.dedup();
    tags
}

impl ReleaseWatcher {
    async fn list_tags(&self) -> Result<Vec<String>, DaemonError> {
        let out = tokio::process::Command::new("git")
            .args(["ls-remote", "--tags", &self.repo])
            .output()
            .await
            .map_err(|e| {
                DaemonError::Release(format!("running git ls-remote {}: {e}", self.repo))
            })?;
        if !out.status.success() {
            return Err(DaemonError::Release(format!(
                "git ls-remote {} failed: {}",
                self.repo,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(parse_ls_remote(
            &String::from_utf8_lossy(&out.stdout),
            &self.prefix,
        ))
    }

    /// Release tags newer than the last acknowledged one. The first check
    /// of a repository only records the newest tag (no back-fill of
    /// history).
    pub async fn new_tags(&self) -> Result<Vec<String>, DaemonError> {
        let tags = self.list_tags().await?;
        let Some(newest) = tags.last() else {
            return Ok(Vec::new());
        };
        let seen = self
            .storage
            .checkpoints()
            .get(COLLECTOR, &self.repo)
            .await?;
        match seen {
            None => {
                self.acknowledge(newest).await?;
                Ok(Vec::new())
            }
            Some(state) => {
                let last = version_key(state.checkpoint_token());
                Ok(tags.into_iter().filter(|t| version_key(t) > last).collect())
            }
        }
    }

    /// Remember `tag` as handled.
    pub async fn acknowledge(&self, tag: &str) -> Result<(), DaemonError> {
        let state = IncrementalState::new(tag, format!("last release seen: {tag}"))
            .map_err(|e| DaemonError::Release(e.to_string()))?;
        self.storage
            .checkpoints()
            .put(&CheckpointWrite {
                collector: COLLECTOR,
                scope: &self.repo,
                state: &state,
                run_id: None,
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_tags() {
        let out = "a1\trefs/tags/boost-1.9.0\na2\trefs/tags/boost-1.10.0\na3\trefs/tags/boost-1.10.0^{}\na4\trefs/tags/boost-1.11.0.beta1\na5\trefs/tags/other\n";
        assert_eq!(
            parse_ls_remote(out, "boost-"),
            ["boost-1.9.0", "boost-1.10.0"]
        );
    }
}
