//! The GitHub REST v3 payloads the collector reads (only the fields it
//! stores; unknown fields are ignored, so GitHub adding fields is harmless).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

/// A GitHub account as embedded in other objects (`user`, `author`, …) or
/// from `GET /users/{login}` (then `name`/`email` are set when public).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    pub id: i64,
    pub login: String,
    #[serde(rename = "type", default)]
    pub user_type: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// GitHub sends `null` and sometimes `{}` for accounts it cannot resolve
/// (e.g. a commit author email without an account): both become `None`.
fn lenient_user<'de, D: Deserializer<'de>>(d: D) -> Result<Option<User>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(v @ serde_json::Value::Object(_)) if v.get("id").is_some() => {
            Some(User::deserialize(v).map_err(serde::de::Error::custom)?)
        }
        _ => None,
    })
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repo {
    pub id: i64,
    pub name: String,
    pub full_name: String,
    pub owner: User,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub fork: bool,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub default_branch: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub pushed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    pub name: String,
}

/// The `pull_request` object of an issue that is a pull request.
#[derive(Debug, Clone, Deserialize)]
pub struct IssuePullRef {
    #[serde(default)]
    pub merged_at: Option<DateTime<Utc>>,
}

/// An item of `GET /repos/{o}/{r}/issues` (issues and pull requests).
#[derive(Debug, Clone, Deserialize)]
pub struct Issue {
    pub id: i64,
    pub number: i64,
    pub title: String,
    pub state: String,
    /// The description (Markdown); kept in the activity record's payload
    /// so the search index finds it.
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default, deserialize_with = "lenient_user")]
    pub user: Option<User>,
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(default)]
    pub comments: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub closed_at: Option<DateTime<Utc>>,
    pub html_url: String,
    #[serde(default)]
    pub pull_request: Option<IssuePullRef>,
    #[serde(default)]
    pub draft: Option<bool>,
}

/// An issue comment or a pull-request review comment.
#[derive(Debug, Clone, Deserialize)]
pub struct Comment {
    pub id: i64,
    #[serde(default, deserialize_with = "lenient_user")]
    pub user: Option<User>,
    #[serde(default)]
    pub body: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub html_url: Option<String>,
    /// Issue comments: `…/issues/{number}`.
    #[serde(default)]
    pub issue_url: Option<String>,
    /// Review comments: `…/pulls/{number}`.
    #[serde(default)]
    pub pull_request_url: Option<String>,
    #[serde(default)]
    pub pull_request_review_id: Option<i64>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub commit_id: Option<String>,
}

impl Comment {
    /// The issue / pull request number from `issue_url` or
    /// `pull_request_url`.
    pub fn number(&self) -> Option<i64> {
        self.issue_url
            .as_deref()
            .or(self.pull_request_url.as_deref())
            .and_then(|u| u.rsplit('/').next())
            .and_then(|n| n.parse().ok())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Review {
    pub id: i64,
    #[serde(default, deserialize_with = "lenient_user")]
    pub user: Option<User>,
    pub state: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub commit_id: Option<String>,
    #[serde(default)]
    pub submitted_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub html_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GitPerson {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub date: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GitCommit {
    #[serde(default)]
    pub author: Option<GitPerson>,
    #[serde(default)]
    pub committer: Option<GitPerson>,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CommitStats {
    #[serde(default)]
    pub additions: i64,
    #[serde(default)]
    pub deletions: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CommitFile {
    pub filename: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub additions: i64,
    #[serde(default)]
    pub deletions: i64,
    #[serde(default)]
    pub previous_filename: Option<String>,
}

/// An item of `GET /repos/{o}/{r}/commits` or the body of
/// `GET /repos/{o}/{r}/commits/{sha}` (which adds `stats` and `files`).
#[derive(Debug, Clone, Deserialize)]
pub struct Commit {
    pub sha: String,
    pub commit: GitCommit,
    #[serde(default, deserialize_with = "lenient_user")]
    pub author: Option<User>,
    #[serde(default, deserialize_with = "lenient_user")]
    pub committer: Option<User>,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub stats: Option<CommitStats>,
    #[serde(default)]
    pub files: Option<Vec<CommitFile>>,
}

impl Commit {
    /// Committer date, else author date.
    pub fn committed_at(&self) -> Option<DateTime<Utc>> {
        self.commit
            .committer
            .as_ref()
            .and_then(|p| p.date)
            .or_else(|| self.commit.author.as_ref().and_then(|p| p.date))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Release {
    pub id: i64,
    pub tag_name: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub draft: bool,
    #[serde(default)]
    pub prerelease: bool,
    #[serde(default, deserialize_with = "lenient_user")]
    pub author: Option<User>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub published_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub html_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_author_object_is_none() {
        let c: Commit = serde_json::from_str(
            r#"{"sha":"a","commit":{"message":"m","author":{"name":"n","email":"e","date":"2024-01-01T00:00:00Z"}},"author":{},"committer":null}"#,
        )
        .unwrap();
        assert!(c.author.is_none());
        assert!(c.committer.is_none());
        assert_eq!(
            c.committed_at().unwrap().to_rfc3339(),
            "2024-01-01T00:00:00+00:00"
        );
    }

    #[test]
    fn comment_numbers() {
        let c: Comment = serde_json::from_str(
            r#"{"id":1,"created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-01T00:00:00Z","issue_url":"https://api.github.com/repos/o/r/issues/42"}"#,
        )
        .unwrap();
        assert_eq!(c.number(), Some(42));
    }
}
