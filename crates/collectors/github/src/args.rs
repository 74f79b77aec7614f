//! Command-line arguments and the two collector profiles.

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, ValueEnum};

use crate::error::GithubError;

/// The resources a run collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Resource {
    /// Issues and pull requests (`/issues`).
    Issues,
    /// Issue comments.
    Comments,
    /// Pull-request review comments.
    ReviewComments,
    /// Pull-request reviews (per changed pull request).
    Reviews,
    Commits,
    Releases,
    /// Public name/email of the users involved (`/users/{login}`, once per user).
    Users,
}

impl Resource {
    pub const ALL: [Resource; 7] = [
        Resource::Issues,
        Resource::Comments,
        Resource::ReviewComments,
        Resource::Reviews,
        Resource::Commits,
        Resource::Releases,
        Resource::Users,
    ];
}

/// `bdc run github-activity|clang-github [options]`.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(about = "Collect GitHub activity (REST API v3) incrementally")]
pub struct GithubArgs {
    /// A repository to collect (repeatable).
    #[arg(long = "repo", value_name = "OWNER/NAME")]
    pub repos: Vec<String>,
    /// Collect every repository of this organisation (repeatable).
    #[arg(long = "org", value_name = "ORG")]
    pub orgs: Vec<String>,
    /// Only issues/PRs with this label (repeatable; one stream per label;
    /// comments are then fetched per changed issue).
    #[arg(long = "label", value_name = "LABEL")]
    pub labels: Vec<String>,
    /// Only commits touching this path (repeatable; one stream per path).
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<String>,
    /// Resources to collect [default: all].
    #[arg(long, value_delimiter = ',', value_enum)]
    pub resources: Vec<Resource>,
    /// Start date when a stream has no checkpoint yet (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,
    /// Ignore checkpoints (start from --since or the beginning).
    #[arg(long)]
    pub full: bool,
    /// Re-parse the raw archive under WORKSPACE_DIR/raw/<collector> (no network).
    #[arg(long)]
    pub from_archive: bool,
    /// With --from-archive: replay this recorded archive (e.g.
    /// examples/github-activity/raw for the demo) instead of
    /// WORKSPACE_DIR/raw/<collector>.
    #[arg(long, value_name = "DIR", requires = "from_archive")]
    pub archive_dir: Option<std::path::PathBuf>,
    /// Stop after this many rate-limited requests (304s are free); the
    /// next run resumes from the checkpoints.
    #[arg(long, value_name = "N")]
    pub max_requests: Option<u64>,
    /// Page size (1-100).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub per_page: u32,
    /// Do not fetch per-commit details (files and line counts).
    #[arg(long)]
    pub no_commit_files: bool,
}

fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
        .ok_or_else(|| format!("{s:?} is not YYYY-MM-DD or an RFC 3339 time"))
}

/// A named configuration of the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    pub name: &'static str,
    /// Used when neither --repo nor --org is given.
    pub default_repos: &'static [&'static str],
    /// Used when neither --repo nor --org is given.
    pub default_orgs: &'static [&'static str],
    /// Used when no --label is given.
    pub default_labels: &'static [&'static str],
    /// Used when no --path is given.
    pub default_paths: &'static [&'static str],
}

/// `github-activity`: every repository of `boostorg` unless --repo/--org
/// say otherwise (so the original's scheduled command runs unchanged).
pub const GITHUB_ACTIVITY: Profile = Profile {
    name: "github-activity",
    default_repos: &[],
    default_orgs: &["boostorg"],
    default_labels: &[],
    default_paths: &[],
};

/// `clang-github`: `llvm/llvm-project`, issues/PRs labelled `clang`,
/// commits under `clang/`.
pub const CLANG_GITHUB: Profile = Profile {
    name: "clang-github",
    default_repos: &["llvm/llvm-project"],
    default_orgs: &[],
    default_labels: &["clang"],
    default_paths: &["clang/"],
};

/// Arguments with the profile's defaults applied and validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub args: GithubArgs,
    pub repos: Vec<String>,
    pub orgs: Vec<String>,
    pub labels: Vec<String>,
    pub paths: Vec<String>,
    pub resources: Vec<Resource>,
}

impl Settings {
    pub fn wants(&self, r: Resource) -> bool {
        self.resources.contains(&r)
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Profile {
    /// Parse and validate `args` (without the collector name).
    pub fn settings(&self, args: &[String]) -> Result<Settings, GithubError> {
        let bad = |message: String| GithubError::Args {
            collector: self.name,
            message,
        };
        let parsed = GithubArgs::try_parse_from(
            std::iter::once(self.name.to_owned()).chain(args.iter().cloned()),
        )
        .map_err(|e| bad(e.to_string().trim().to_owned()))?;
        for r in &parsed.repos {
            match r.split_once('/') {
                Some((o, n)) if valid_name(o) && valid_name(n) => {}
                _ => return Err(bad(format!("--repo {r:?}: expected OWNER/NAME"))),
            }
        }
        for o in &parsed.orgs {
            if !valid_name(o) {
                return Err(bad(format!("--org {o:?}: not an organisation name")));
            }
        }
        let own = |given: &Vec<String>, default: &[&str]| -> Vec<String> {
            if given.is_empty() {
                default.iter().map(|s| (*s).to_owned()).collect()
            } else {
                given.clone()
            }
        };
        let (repos, orgs) = if parsed.repos.is_empty() && parsed.orgs.is_empty() {
            (
                self.default_repos.iter().map(|s| (*s).to_owned()).collect(),
                self.default_orgs.iter().map(|s| (*s).to_owned()).collect(),
            )
        } else {
            (parsed.repos.clone(), parsed.orgs.clone())
        };
        if repos.is_empty() && orgs.is_empty() && !parsed.from_archive {
            return Err(bad(
                "give at least one --repo OWNER/NAME or --org ORG".into()
            ));
        }
        let labels = own(&parsed.labels, self.default_labels);
        let paths = own(&parsed.paths, self.default_paths);
        let resources = if parsed.resources.is_empty() {
            Resource::ALL.to_vec()
        } else {
            parsed.resources.clone()
        };
        Ok(Settings {
            args: parsed,
            repos,
            orgs,
            labels,
            paths,
            resources,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(p: &Profile, a: &[&str]) -> Result<Settings, GithubError> {
        p.settings(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn profiles_and_validation() {
        let d = s(&GITHUB_ACTIVITY, &[]).unwrap();
        assert_eq!(d.orgs, ["boostorg"]);
        assert!(d.repos.is_empty());
        let none = Profile {
            default_orgs: &[],
            ..GITHUB_ACTIVITY
        };
        assert!(s(&none, &[]).is_err());
        let g = s(
            &GITHUB_ACTIVITY,
            &["--repo", "boostorg/json", "--since", "2024-01-02"],
        )
        .unwrap();
        assert_eq!(g.repos, ["boostorg/json"]);
        assert!(g.labels.is_empty());
        assert_eq!(g.resources.len(), 7);
        assert_eq!(
            g.args.since.unwrap().to_rfc3339(),
            "2024-01-02T00:00:00+00:00"
        );
        let c = s(&CLANG_GITHUB, &[]).unwrap();
        assert_eq!(c.repos, ["llvm/llvm-project"]);
        assert_eq!(c.labels, ["clang"]);
        assert_eq!(c.paths, ["clang/"]);
        let c = s(
            &CLANG_GITHUB,
            &["--label", "clang:frontend", "--resources", "issues,commits"],
        )
        .unwrap();
        assert_eq!(c.labels, ["clang:frontend"]);
        assert_eq!(c.resources, [Resource::Issues, Resource::Commits]);
        for bad in [
            &["--repo", "nope"][..],
            &["--repo", "a/b/c"],
            &["--org", "a b"],
            &["--repo", "a/b", "--per-page", "0"],
            &["--bogus"],
        ] {
            let e = s(&GITHUB_ACTIVITY, bad).unwrap_err();
            assert_eq!(e.category(), bdc_core::FailureCategory::Config, "{bad:?}");
        }
    }
}
