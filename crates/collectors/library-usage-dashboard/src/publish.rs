//! Publish the static site: clone the target branch (or start it), replace
//! its `develop/` folder with the site, commit, push; all with the `git`
//! CLI (blocking: call from `spawn_blocking`).
//!
//! The token never appears on a command line, in a URL or in a message:
//! it travels as an `http.extraHeader` set through git's
//! `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n` environment
//! (only for `https://` remotes), and any error text is scrubbed of it.
//! A site identical to what the branch already holds makes no commit.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;

/// The folder of the target repository the site goes to.
pub const SITE_FOLDER: &str = "develop";

/// Where and how to publish.
#[derive(Clone)]
pub struct Target {
    /// Remote URL or path (no credentials in it).
    pub url: String,
    pub branch: String,
    /// `GITHUB_TOKEN_WRITE`.
    pub token: Option<String>,
    /// Commit author (`GIT_AUTHOR_NAME` / `GIT_AUTHOR_EMAIL` if set).
    pub author_name: String,
    pub author_email: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("branch", &self.branch)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A commit was pushed.
    Pushed { commit: String },
    /// The branch already held this site.
    Unchanged,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot run `git {args}`: {message}; is git installed and on PATH?")]
    Spawn { args: String, message: String },
    #[error("`git {args}` failed ({status}): {stderr}")]
    Failed {
        args: String,
        status: String,
        stderr: String,
    },
    #[error("preparing the publish checkout {path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid publish branch {0:?}")]
    Branch(String),
}

struct GitCli<'a> {
    dir: &'a Path,
    target: &'a Target,
}

impl GitCli<'_> {
    fn scrub(&self, s: &str) -> String {
        let mut s = s.to_owned();
        if let Some(t) = self.target.token.as_deref().filter(|t| !t.is_empty()) {
            s = s.replace(t, "***");
            s = s.replace(&basic_auth(t), "***");
        }
        s
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("git");
        c.arg("-C")
            .arg(self.dir)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .env("GIT_AUTHOR_NAME", &self.target.author_name)
            .env("GIT_AUTHOR_EMAIL", &self.target.author_email)
            .env("GIT_COMMITTER_NAME", &self.target.author_name)
            .env("GIT_COMMITTER_EMAIL", &self.target.author_email)
            .stdin(Stdio::null());
        if let Some(t) = self.target.token.as_deref().filter(|t| !t.is_empty())
            && self.target.url.starts_with("https://")
        {
            c.env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env(
                    "GIT_CONFIG_VALUE_0",
                    format!("Authorization: Basic {}", basic_auth(t)),
                );
        }
        c
    }

    fn output(&self, args: &[&str]) -> Result<std::process::Output, PublishError> {
        self.command(args)
            .output()
            .map_err(|e| PublishError::Spawn {
                args: self.scrub(&args.join(" ")),
                message: self.scrub(&e.to_string()),
            })
    }

    fn run(&self, args: &[&str]) -> Result<String, PublishError> {
        let out = self.output(args)?;
        if !out.status.success() {
            return Err(PublishError::Failed {
                args: self.scrub(&args.join(" ")),
                status: out.status.to_string(),
                stderr: self.scrub(String::from_utf8_lossy(&out.stderr).trim()),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

fn basic_auth(token: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"))
}

fn valid_branch(b: &str) -> bool {
    !b.is_empty()
        && !b.starts_with('-')
        && !b.contains("..")
        && b.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let ty = e.file_type()?;
        let dest = to.join(e.file_name());
        if ty.is_dir() {
            copy_dir(&e.path(), &dest)?;
        } else if ty.is_file() {
            std::fs::copy(e.path(), &dest)?;
        }
    }
    Ok(())
}

/// Publish `site` into `<branch>:develop/` of the target, using `work` as
/// the (re-created) checkout directory.
pub fn publish(
    site: &Path,
    work: &Path,
    target: &Target,
    message: &str,
) -> Result<Outcome, PublishError> {
    if !valid_branch(&target.branch) {
        return Err(PublishError::Branch(target.branch.clone()));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PublishError::Io { path, source }
    };
    if work.exists() {
        std::fs::remove_dir_all(work).map_err(io(work))?;
    }
    std::fs::create_dir_all(work).map_err(io(work))?;
    let git = GitCli { dir: work, target };
    git.run(&["init", "-q"])?;
    git.run(&["remote", "add", "origin", &target.url])?;
    let heads = git.run(&["ls-remote", "--heads", "origin", &target.branch])?;
    let want = format!("refs/heads/{}", target.branch);
    let exists = heads
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(want.as_str()));
    if exists {
        git.run(&["fetch", "-q", "--depth", "1", "origin", &want])?;
        git.run(&["checkout", "-q", "-B", &target.branch, "FETCH_HEAD"])?;
    } else {
        git.run(&["checkout", "-q", "--orphan", &target.branch])?;
    }
    let dest = work.join(SITE_FOLDER);
    if dest.exists() {
        std::fs::remove_dir_all(&dest).map_err(io(&dest))?;
    }
    copy_dir(site, &dest).map_err(io(&dest))?;
    git.run(&["add", "-A", "--", SITE_FOLDER])?;
    let staged = git.output(&["diff", "--cached", "--quiet"])?;
    if staged.status.success() && exists {
        return Ok(Outcome::Unchanged);
    }
    git.run(&[
        "commit",
        "-q",
        "--no-gpg-sign",
        "--allow-empty",
        "-m",
        message,
    ])?;
    let commit = git.run(&["rev-parse", "HEAD"])?;
    git.run(&["push", "-q", "origin", &format!("HEAD:{want}")])?;
    Ok(Outcome::Pushed { commit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_are_checked_and_token_hidden() {
        assert!(valid_branch("main"));
        assert!(valid_branch("gh-pages/x"));
        assert!(!valid_branch("--upload-pack=x"));
        assert!(!valid_branch("a..b"));
        assert!(!valid_branch(""));
        let t = Target {
            url: "https://example.invalid/a/b.git".into(),
            branch: "main".into(),
            token: Some("s3cr3t".into()),
            author_name: "a".into(),
            author_email: "a@b".into(),
        };
        assert!(!format!("{t:?}").contains("s3cr3t"));
        let dir = PathBuf::from("/tmp");
        let g = GitCli {
            dir: &dir,
            target: &t,
        };
        assert_eq!(g.scrub("x s3cr3t y"), "x *** y");
        assert_eq!(g.scrub(&basic_auth("s3cr3t")), "***");
    }
}
