//! [`SourceControl`] for git, through the `git` command-line tool.
//!
//! Why the CLI and not `gix`: we need fetch from local paths and remote
//! URLs, ancestry, tree diffs and *worktrees* to build in. gix's worktree
//! checkout plus fetch pulls in a large feature set (and its blocking API
//! needs `spawn_blocking` anyway), adding minutes to a clean build on the
//! 2-core CI machine, while `git` is already required on every machine
//! that builds code. Each operation is one short `git` process run with
//! `tokio::process` (no blocking of the runtime).
//!
//! Layout under `<workspace>` (normally `WORKSPACE_DIR/greenness`):
//! `mirrors/<key>.git` (a bare repository fetched from the queue's repo)
//! and `checkouts/<key>/<sha>` (detached worktrees, removed after a build).
//!
//! Commit URIs: `git://<remote>/<repo>/ref/<ref>/<sha>`, where `<remote>`
//! is the host (`local` for a path) and `<repo>` the path on it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::config::{GreennessConfig, QueueSpec};
use crate::traits::{ScmError, SourceControl};

/// Git source control over local mirrors.
pub struct GitScm {
    workspace: PathBuf,
    /// `git://<remote>/<repo>` → (mirror dir, fetch URL).
    repos: Mutex<BTreeMap<String, (PathBuf, String)>>,
}

/// The `git://<remote>/<repo>` prefix of a repository location.
pub fn repo_prefix(repo: &str) -> String {
    let (remote, path) = if let Some(rest) = repo.split_once("://").map(|(_, r)| r) {
        let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
        match rest.split_once('/') {
            Some((host, path)) => (
                host.split(':').next().unwrap_or(host).to_owned(),
                path.to_owned(),
            ),
            None => (rest.to_owned(), String::new()),
        }
    } else if let Some((host, path)) = repo
        .split_once(':')
        .filter(|(h, _)| h.contains('@') && !h.contains('/'))
    {
        (
            host.rsplit_once('@').map_or(host, |(_, h)| h).to_owned(),
            path.to_owned(),
        )
    } else {
        ("local".to_owned(), repo.to_owned())
    };
    format!("git://{}/{}", remote, path.trim_matches('/'))
}

/// Split a commit URI into (repo prefix, ref, sha).
pub fn parse_uri(uri: &str) -> Result<(String, String, String), ScmError> {
    let bad = |detail: &str| ScmError::InvalidUri {
        uri: uri.to_owned(),
        detail: detail.to_owned(),
    };
    if !uri.starts_with("git://") {
        return Err(bad("expected git://<remote>/<repo>/ref/<ref>/<sha>"));
    }
    let (prefix, rest) = uri
        .rsplit_once("/ref/")
        .ok_or_else(|| bad("no /ref/ segment"))?;
    let (reference, sha) = rest.rsplit_once('/').ok_or_else(|| bad("no sha"))?;
    if sha.len() < 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("the last segment is not a full sha"));
    }
    Ok((prefix.to_owned(), reference.to_owned(), sha.to_owned()))
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

async fn git(dir: Option<&Path>, args: &[&str]) -> Result<(i32, String, String), ScmError> {
    let mut cmd = tokio::process::Command::new("git");
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = cmd.output().await.map_err(|e| ScmError::Failed {
        context: format!("running git {}", args.first().copied().unwrap_or_default()),
        detail: e.to_string(),
    })?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    ))
}

async fn git_ok(dir: Option<&Path>, args: &[&str]) -> Result<String, ScmError> {
    let (code, out, err) = git(dir, args).await?;
    if code != 0 {
        return Err(ScmError::Failed {
            context: format!("git {}", args.join(" ")),
            detail: format!("exit {code}: {err}"),
        });
    }
    Ok(out)
}

impl GitScm {
    /// Git source control for the queues of `config`, keeping mirrors and
    /// checkouts under `workspace`.
    pub fn new(workspace: PathBuf, config: &GreennessConfig) -> GitScm {
        let scm = GitScm {
            workspace,
            repos: Mutex::new(BTreeMap::new()),
        };
        for q in &config.queues {
            scm.register(&q.repo);
        }
        scm
    }

    fn register(&self, repo: &str) -> (String, PathBuf) {
        let prefix = repo_prefix(repo);
        let dir = self.workspace.join("mirrors").join(format!(
            "{}.git",
            sanitize(prefix.trim_start_matches("git://"))
        ));
        let mut repos = self.repos.lock().unwrap_or_else(|e| e.into_inner());
        repos
            .entry(prefix.clone())
            .or_insert_with(|| (dir.clone(), repo.to_owned()));
        (prefix, dir)
    }

    fn mirror_of(&self, uri: &str) -> Result<(PathBuf, String), ScmError> {
        let (prefix, _, sha) = parse_uri(uri)?;
        let repos = self.repos.lock().unwrap_or_else(|e| e.into_inner());
        let (dir, _) = repos.get(&prefix).ok_or_else(|| ScmError::InvalidUri {
            uri: uri.to_owned(),
            detail: "no configured queue uses this repository".into(),
        })?;
        Ok((dir.clone(), sha))
    }

    async fn ensure_mirror(&self, dir: &Path) -> Result<(), ScmError> {
        if dir.join("HEAD").exists() {
            return Ok(());
        }
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| ScmError::Failed {
                context: format!("creating {}", dir.display()),
                detail: e.to_string(),
            })?;
        let d = dir.display().to_string();
        git_ok(None, &["init", "--bare", "--quiet", &d]).await?;
        Ok(())
    }

    async fn known(&self, dir: &Path, sha: &str, uri: &str) -> Result<(), ScmError> {
        let spec = format!("{sha}^{{commit}}");
        let (code, _, err) = git(Some(dir), &["cat-file", "-e", &spec]).await?;
        if code != 0 {
            return Err(ScmError::UnknownCommit {
                uri: uri.to_owned(),
                detail: err,
            });
        }
        Ok(())
    }

    fn checkout_dir(&self, uri: &str, key: &str) -> Result<(PathBuf, PathBuf, String), ScmError> {
        let (prefix, _, sha) = parse_uri(uri)?;
        let (mirror, _) = self.mirror_of(uri)?;
        let dir = self
            .workspace
            .join("checkouts")
            .join(sanitize(prefix.trim_start_matches("git://")))
            .join(&sha)
            .join(sanitize(key));
        Ok((mirror, dir, sha))
    }
}

#[async_trait]
impl SourceControl for GitScm {
    async fn head(&self, queue: &QueueSpec) -> Result<String, ScmError> {
        let (prefix, dir) = self.register(&queue.repo);
        self.ensure_mirror(&dir).await?;
        let src = if queue.ref_name.starts_with("refs/") {
            queue.ref_name.clone()
        } else {
            format!("refs/heads/{}", queue.ref_name)
        };
        let dst = format!("refs/bdc/{}", queue.name);
        let refspec = format!("+{src}:{dst}");
        git_ok(
            Some(&dir),
            &[
                "fetch",
                "--quiet",
                "--no-tags",
                "--force",
                &queue.repo,
                &refspec,
            ],
        )
        .await?;
        let sha = git_ok(
            Some(&dir),
            &["rev-parse", "--verify", &format!("{dst}^{{commit}}")],
        )
        .await?
        .trim()
        .to_owned();
        Ok(format!("{prefix}/ref/{}/{sha}", queue.ref_name))
    }

    async fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool, ScmError> {
        let (dir, a) = self.mirror_of(ancestor)?;
        let (_, b) = self.mirror_of(descendant)?;
        self.known(&dir, &a, ancestor).await?;
        self.known(&dir, &b, descendant).await?;
        match git(Some(&dir), &["merge-base", "--is-ancestor", &a, &b]).await? {
            (0, _, _) => Ok(true),
            (1, _, _) => Ok(false),
            (code, _, err) => Err(ScmError::Failed {
                context: "git merge-base --is-ancestor".into(),
                detail: format!("exit {code}: {err}"),
            }),
        }
    }

    async fn changed_paths(&self, from: &str, to: &str) -> Result<Vec<String>, ScmError> {
        let (dir, a) = self.mirror_of(from)?;
        let (_, b) = self.mirror_of(to)?;
        let out = git_ok(
            Some(&dir),
            &["diff", "--name-only", "--no-renames", "-z", &a, &b],
        )
        .await?;
        Ok(out
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect())
    }

    async fn checkout(&self, commit: &str, key: &str) -> Result<Option<PathBuf>, ScmError> {
        let (mirror, dir, sha) = self.checkout_dir(commit, key)?;
        if dir.exists() {
            // Left over by a crash of this very build (the key is the build
            // id, private to one attempt): start clean.
            self.release(commit, key).await?;
        }
        if let Some(parent) = dir.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| ScmError::Failed {
                    context: format!("creating {}", parent.display()),
                    detail: e.to_string(),
                })?;
        }
        let d = dir.display().to_string();
        git_ok(
            Some(&mirror),
            &[
                "worktree", "add", "--quiet", "--force", "--detach", &d, &sha,
            ],
        )
        .await?;
        Ok(Some(dir))
    }

    async fn release(&self, commit: &str, key: &str) -> Result<(), ScmError> {
        let (mirror, dir, _) = self.checkout_dir(commit, key)?;
        let d = dir.display().to_string();
        let _ = git(Some(&mirror), &["worktree", "remove", "--force", &d]).await?;
        if dir.exists() {
            tokio::fs::remove_dir_all(&dir)
                .await
                .map_err(|e| ScmError::Failed {
                    context: format!("removing {}", dir.display()),
                    detail: e.to_string(),
                })?;
        }
        // Drop the commit's directory once its last build released it
        // (fails harmlessly while another build of the commit still runs).
        if let Some(parent) = dir.parent() {
            let _ = tokio::fs::remove_dir(parent).await;
        }
        let _ = git(Some(&mirror), &["worktree", "prune"]).await?;
        Ok(())
    }

    fn same_commit(&self, input: &str, commit_uri: &str) -> bool {
        input == commit_uri
            || parse_uri(commit_uri).is_ok_and(|(_, _, sha)| {
                input.len() >= 7 && sha.starts_with(&input.to_ascii_lowercase())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_uris() {
        assert_eq!(repo_prefix("/tmp/a/repo"), "git://local/tmp/a/repo");
        assert_eq!(
            repo_prefix("https://github.com/boostorg/json.git"),
            "git://github.com/boostorg/json.git"
        );
        assert_eq!(
            repo_prefix("git@github.com:boostorg/json"),
            "git://github.com/boostorg/json"
        );
        let sha = "a".repeat(40);
        let uri = format!("git://local/tmp/r/ref/feature/x/{sha}");
        let (p, r, s) = parse_uri(&uri).unwrap();
        assert_eq!(
            (p.as_str(), r.as_str(), s.as_str()),
            ("git://local/tmp/r", "feature/x", sha.as_str())
        );
        assert!(parse_uri("git://local/x/ref/main/zz").is_err());
        assert!(parse_uri("http://x").is_err());
    }
}
