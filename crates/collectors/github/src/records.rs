//! Activity records (`source_system = github`) built from GitHub payloads.
//! `external_id`s are GitHub ids (`issue:<id>`, `issue_comment:<id>`,
//! `review_comment:<id>`, `review:<id>`, `release:<id>`) or, for commits,
//! `commit:<repo id>:<sha>`. Payloads only hold fields that every source
//! of the same object carries, so re-reading an unchanged object never
//! rewrites its record.

use bdc_core::{ActivityRecord, ProtocolError};
use serde_json::json;

use crate::model::{Comment, Commit, Issue, Release, Review, User};

pub const SOURCE_SYSTEM: &str = "github";

fn actor(rec: ActivityRecord, user: Option<&User>) -> Result<ActivityRecord, ProtocolError> {
    match user {
        Some(u) if !u.login.trim().is_empty() => rec.with_actor(u.login.as_str()),
        _ => Ok(rec),
    }
}

fn url(rec: ActivityRecord, url: Option<&str>) -> Result<ActivityRecord, ProtocolError> {
    match url {
        Some(u) if !u.is_empty() => rec.with_url(u),
        _ => Ok(rec),
    }
}

pub fn issue(repo: &str, i: &Issue) -> Result<ActivityRecord, ProtocolError> {
    let kind = if i.pull_request.is_some() {
        "pull_request"
    } else {
        "issue"
    };
    let rec = ActivityRecord::new(SOURCE_SYSTEM, format!("issue:{}", i.id), i.created_at, kind)?
        .with_title(i.title.clone());
    let rec = url(actor(rec, i.user.as_ref())?, Some(&i.html_url))?;
    rec.with_payload(json!({
        "repo": repo,
        "number": i.number,
        "state": i.state,
        "labels": i.labels.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
        "comments": i.comments,
        "updated_at": i.updated_at,
        "closed_at": i.closed_at,
        "merged_at": i.pull_request.as_ref().and_then(|p| p.merged_at),
        "body": i.body,
    }))
}

pub fn comment(repo: &str, kind: &str, c: &Comment) -> Result<ActivityRecord, ProtocolError> {
    let (prefix, kind_name) = if kind == "review" {
        ("review_comment", "review_comment")
    } else {
        ("issue_comment", "issue_comment")
    };
    let number = c.number();
    let title = match number {
        Some(n) => format!("Comment on {repo}#{n}"),
        None => format!("Comment on {repo}"),
    };
    let rec = ActivityRecord::new(
        SOURCE_SYSTEM,
        format!("{prefix}:{}", c.id),
        c.created_at,
        kind_name,
    )?
    .with_title(title);
    let rec = url(actor(rec, c.user.as_ref())?, c.html_url.as_deref())?;
    rec.with_payload(json!({
        "repo": repo,
        "number": number,
        "updated_at": c.updated_at,
        "path": c.path,
        "body": c.body,
    }))
}

/// `None` for a pending review (no `submitted_at`).
pub fn review(
    repo: &str,
    number: i64,
    r: &Review,
) -> Result<Option<ActivityRecord>, ProtocolError> {
    let Some(at) = r.submitted_at else {
        return Ok(None);
    };
    let rec =
        ActivityRecord::new(SOURCE_SYSTEM, format!("review:{}", r.id), at, "review")?.with_title(
            format!("Review of {repo}#{number}: {}", r.state.to_lowercase()),
        );
    let rec = url(actor(rec, r.user.as_ref())?, r.html_url.as_deref())?;
    rec.with_payload(json!({"repo": repo, "number": number, "state": r.state, "body": r.body}))
        .map(Some)
}

/// `None` when the commit carries no date at all.
pub fn commit(
    repo: &str,
    repo_id: i64,
    c: &Commit,
) -> Result<Option<ActivityRecord>, ProtocolError> {
    let authored = c.commit.author.as_ref().and_then(|p| p.date);
    let Some(at) = authored.or_else(|| c.committed_at()) else {
        return Ok(None);
    };
    let title = c.commit.message.lines().next().unwrap_or("").to_owned();
    let rec = ActivityRecord::new(
        SOURCE_SYSTEM,
        format!("commit:{repo_id}:{}", c.sha),
        at,
        "commit",
    )?
    .with_title(title);
    let rec = match (
        &c.author,
        c.commit.author.as_ref().and_then(|p| p.name.as_deref()),
    ) {
        (Some(u), _) => actor(rec, Some(u))?,
        (None, Some(name)) if !name.trim().is_empty() => rec.with_actor(name)?,
        _ => rec,
    };
    let rec = url(rec, c.html_url.as_deref())?;
    rec.with_payload(json!({"repo": repo, "sha": c.sha, "committed_at": c.committed_at()}))
        .map(Some)
}

pub fn release(repo: &str, r: &Release) -> Result<Option<ActivityRecord>, ProtocolError> {
    let Some(at) = r.published_at.or(r.created_at) else {
        return Ok(None);
    };
    let title = r
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| r.tag_name.clone());
    let rec = ActivityRecord::new(SOURCE_SYSTEM, format!("release:{}", r.id), at, "release")?
        .with_title(title);
    let rec = url(actor(rec, r.author.as_ref())?, r.html_url.as_deref())?;
    rec.with_payload(json!({
        "repo": repo,
        "tag": r.tag_name,
        "draft": r.draft,
        "prerelease": r.prerelease,
    }))
    .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue, comment and review texts travel in the payload (the search
    /// index reads them there).
    #[test]
    fn bodies_are_kept_in_the_payload() {
        let i: Issue =
            serde_json::from_str(include_str!("../tests/fixtures/issue.json")).expect("fixture");
        let r = issue("boostorg/json", &i).expect("record");
        assert_eq!(r.payload()["body"], "Steps to reproduce ...");
        let c: Comment = serde_json::from_str(include_str!("../tests/fixtures/issue_comment.json"))
            .expect("fixture");
        let r = comment("boostorg/json", "issue", &c).expect("record");
        assert_eq!(r.payload()["body"], "Confirmed.");
    }
}
