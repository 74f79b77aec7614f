//! One run of the collector: the live walk over repositories and
//! resources, and the replay of the raw archive.
//!
//! # Streams and checkpoints
//! Each repository + resource is a stream with its own checkpoint (scope
//! `owner/name:issues`, `owner/name:issues:label=L`,
//! `owner/name:issue_comments`, `owner/name:review_comments`,
//! `owner/name:commits`, `owner/name:commits:path=P`,
//! `owner/name:releases`). The token is the newest `updated_at` (commit
//! date for commits) stored; `extras.request_since` is the `since` the next
//! run sends.
//!
//! * Issues and comments are read oldest-update first
//!   (`sort=updated&direction=asc&since=…`); each page is written with its
//!   checkpoint in one transaction, so a run that stops anywhere resumes
//!   after the last written page.
//! * Commits come newest first; their checkpoint moves with the last page.
//! * `request_since` only moves when a run needed more than one page: a run
//!   that fits in one page keeps the same URL, so the next run gets a `304`
//!   (zero rate-limit points) unless something changed upstream.
//! * Reviews (and, with label filters, comments) are fetched per issue/PR
//!   whose `updated_at` differs from the stored one, in the same
//!   transaction as that page.

use std::collections::{BTreeSet, HashMap};

use bdc_core::IncrementalState;
use bdc_http::HttpClient;
use bdc_storage::activity::UpsertCounts;
use bdc_storage::normalize_time;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::args::{Resource, Settings};
use crate::error::{GithubError, http, storage};
use crate::model::{Comment, Commit, Issue, Release, Repo, Review, User};
use crate::records;
use crate::store::{Batch, GithubStore, UserRow};

/// What a run did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub repos: u64,
    pub issues: u64,
    pub pulls: u64,
    pub issue_comments: u64,
    pub review_comments: u64,
    pub reviews: u64,
    pub commits: u64,
    pub commit_details: u64,
    pub releases: u64,
    pub user_details: u64,
    pub typed_rows: u64,
    pub activity: UpsertCounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct StreamState {
    watermark: Option<DateTime<Utc>>,
    request_since: Option<DateTime<Utc>>,
}

fn since_param(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| format!("&since={}", t.format("%Y-%m-%dT%H:%M:%SZ")))
        .unwrap_or_default()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn protocol(what: String) -> impl FnOnce(bdc_core::ProtocolError) -> GithubError {
    move |source| GithubError::Protocol { what, source }
}

/// Add GitHub commit payloads (list items or `GET /commits/{sha}` details
/// with `files`) to `batch`: the commit rows, their author and committer
/// accounts, files and file changes (from `files`), and activity records.
/// This is the whole commit sync path; [`GithubStore::write`] stores it.
pub fn add_commits(
    batch: &mut Batch,
    repo_full_name: &str,
    repo_id: i64,
    commits: Vec<Commit>,
) -> Result<(), GithubError> {
    for c in &commits {
        batch.user(c.author.as_ref());
        batch.user(c.committer.as_ref());
        if let Some(rec) = records::commit(repo_full_name, repo_id, c)
            .map_err(protocol(format!("the record of commit {}", c.sha)))?
        {
            batch.activity.push(rec);
        }
    }
    batch
        .commits
        .extend(commits.into_iter().map(|c| (repo_id, c)));
    Ok(())
}

/// Which ascending `since` stream.
#[derive(Debug, Clone, Copy)]
enum AscKind<'l> {
    Issues(Option<&'l str>),
    IssueComments,
    ReviewComments,
}

/// One run.
pub struct Run<'a> {
    pub name: &'static str,
    pub settings: &'a Settings,
    pub store: GithubStore,
    pub client: &'a HttpClient,
    pub run_id: Option<&'a str>,
    pub counts: Counts,
    users_seen: BTreeSet<i64>,
    bar: Option<indicatif::ProgressBar>,
}

impl<'a> Run<'a> {
    pub fn new(
        name: &'static str,
        settings: &'a Settings,
        store: GithubStore,
        client: &'a HttpClient,
        run_id: Option<&'a str>,
        interactive: bool,
    ) -> Self {
        let bar = interactive.then(|| {
            let bar = bdc_collector::progress::add(indicatif::ProgressBar::new(0));
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} repos {msg}")
            {
                bar.set_style(style);
            }
            bar.set_prefix(name);
            bar
        });
        Run {
            name,
            settings,
            store,
            client,
            run_id,
            counts: Counts::default(),
            users_seen: BTreeSet::new(),
            bar,
        }
    }

    fn seen(&mut self, batch: &mut Batch, user: Option<&User>) {
        if let Some(u) = user {
            self.users_seen.insert(u.id);
        }
        batch.user(user);
    }

    async fn write(&mut self, batch: &Batch) -> Result<(), GithubError> {
        if batch.is_empty() {
            return Ok(());
        }
        let c = self
            .store
            .write(batch, self.run_id)
            .await
            .map_err(storage("writing GitHub data"))?;
        self.counts.typed_rows += c.typed_rows;
        self.counts.activity.add(c.activity);
        Ok(())
    }

    async fn read_state(&self, scope: &str) -> Result<StreamState, GithubError> {
        let initial = StreamState {
            watermark: None,
            request_since: self.settings.args.since,
        };
        if self.settings.args.full {
            return Ok(initial);
        }
        let Some(cp) = self
            .store
            .storage()
            .checkpoints()
            .get(self.name, scope)
            .await
            .map_err(storage("reading a checkpoint"))?
        else {
            return Ok(initial);
        };
        let parse = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        };
        Ok(StreamState {
            watermark: parse(cp.checkpoint_token()),
            request_since: cp
                .extras()
                .get("request_since")
                .and_then(Value::as_str)
                .and_then(parse),
        })
    }

    fn checkpoint(
        scope: &str,
        state: StreamState,
    ) -> Result<Option<(String, IncrementalState)>, GithubError> {
        let Some(w) = state.watermark else {
            return Ok(None);
        };
        let mut extras = Map::new();
        extras.insert(
            "request_since".into(),
            json!(state.request_since.map(|t| t.to_rfc3339())),
        );
        let st = IncrementalState::new(w.to_rfc3339(), format!("{scope} updated up to {w}"))
            .map_err(protocol(format!("the checkpoint of {scope}")))?
            .with_extras(extras);
        Ok(Some((scope.to_owned(), st)))
    }

    /// The live walk.
    pub async fn live(&mut self) -> Result<(), GithubError> {
        let repos = self.resolve_repos().await?;
        if let Some(bar) = &self.bar {
            bar.set_length(repos.len() as u64);
        }
        for repo in &repos {
            if let Some(bar) = &self.bar {
                bar.set_message(repo.full_name.clone());
            }
            let before = self.counts;
            self.collect_repo(repo).await?;
            match &self.bar {
                Some(bar) => bar.inc(1),
                None => tracing::info!(
                    collector = self.name,
                    repo = %repo.full_name,
                    issues = self.counts.issues - before.issues,
                    pulls = self.counts.pulls - before.pulls,
                    comments = (self.counts.issue_comments + self.counts.review_comments)
                        - (before.issue_comments + before.review_comments),
                    reviews = self.counts.reviews - before.reviews,
                    commits = self.counts.commits - before.commits,
                    releases = self.counts.releases - before.releases,
                    "repository collected"
                ),
            }
        }
        if self.settings.wants(Resource::Users) {
            self.user_details().await?;
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        Ok(())
    }

    async fn resolve_repos(&mut self) -> Result<Vec<Repo>, GithubError> {
        let mut out: Vec<Repo> = Vec::new();
        let mut batch = Batch::default();
        for full in &self.settings.repos {
            let repo: Repo = self
                .client
                .get_json(&format!("/repos/{full}"))
                .await
                .map_err(http(format!("fetching the repository {full}")))?;
            out.push(repo);
        }
        for org in &self.settings.orgs {
            let first = format!(
                "/orgs/{org}/repos?type=all&per_page={}",
                self.settings.args.per_page
            );
            let mut pager = self.client.pages(&first);
            while let Some(resp) = pager
                .next_page()
                .await
                .map_err(http(format!("listing the repositories of {org}")))?
            {
                let page: Vec<Repo> = resp
                    .json()
                    .map_err(http(format!("listing the repositories of {org}")))?;
                out.extend(page);
            }
        }
        let mut seen = BTreeSet::new();
        out.retain(|r| seen.insert(r.id));
        for r in &out {
            self.seen(&mut batch, Some(&r.owner));
        }
        self.counts.repos = out.len() as u64;
        batch.repos = out.clone();
        self.write(&batch).await?;
        Ok(out)
    }

    async fn collect_repo(&mut self, repo: &Repo) -> Result<(), GithubError> {
        let labels = self.settings.labels.clone();
        let paths = self.settings.paths.clone();
        if self.settings.wants(Resource::Issues) {
            if labels.is_empty() {
                self.asc_stream(repo, AscKind::Issues(None)).await?;
            } else {
                for l in &labels {
                    self.asc_stream(repo, AscKind::Issues(Some(l))).await?;
                }
            }
        }
        if labels.is_empty() {
            if self.settings.wants(Resource::Comments) {
                self.asc_stream(repo, AscKind::IssueComments).await?;
            }
            if self.settings.wants(Resource::ReviewComments) {
                self.asc_stream(repo, AscKind::ReviewComments).await?;
            }
        }
        if self.settings.wants(Resource::Commits) {
            if paths.is_empty() {
                self.commits_stream(repo, None).await?;
            } else {
                for p in &paths {
                    self.commits_stream(repo, Some(p)).await?;
                }
            }
        }
        if self.settings.wants(Resource::Releases) {
            self.releases(repo).await?;
        }
        Ok(())
    }

    fn key(repo: &Repo) -> String {
        repo.full_name.to_ascii_lowercase()
    }

    async fn asc_stream(&mut self, repo: &Repo, kind: AscKind<'_>) -> Result<(), GithubError> {
        let full = repo.full_name.as_str();
        let pp = self.settings.args.per_page;
        let (scope, path, what) = match kind {
            AscKind::Issues(None) => (
                format!("{}:issues", Self::key(repo)),
                format!("/repos/{full}/issues?state=all&sort=updated&direction=asc&per_page={pp}"),
                "issues",
            ),
            AscKind::Issues(Some(l)) => (
                format!("{}:issues:label={l}", Self::key(repo)),
                format!(
                    "/repos/{full}/issues?state=all&labels={}&sort=updated&direction=asc&per_page={pp}",
                    enc(l)
                ),
                "issues",
            ),
            AscKind::IssueComments => (
                format!("{}:issue_comments", Self::key(repo)),
                format!("/repos/{full}/issues/comments?sort=updated&direction=asc&per_page={pp}"),
                "issue comments",
            ),
            AscKind::ReviewComments => (
                format!("{}:review_comments", Self::key(repo)),
                format!("/repos/{full}/pulls/comments?sort=updated&direction=asc&per_page={pp}"),
                "review comments",
            ),
        };
        let start = self.read_state(&scope).await?;
        let first = format!("{path}{}", since_param(start.request_since));
        let what = format!("fetching the {what} of {full}");
        let mut pager = self.client.pages(&first);
        let mut state = start;
        let mut pages = 0u32;
        while let Some(resp) = pager.next_page().await.map_err(http(what.clone()))? {
            pages += 1;
            let has_next = resp.next_url().is_some();
            let mut batch = Batch::default();
            let page_max = match kind {
                AscKind::Issues(label) => {
                    let items: Vec<Issue> = resp.json().map_err(http(what.clone()))?;
                    self.issues_page(repo, items, label.is_some(), &mut batch)
                        .await?
                }
                AscKind::IssueComments | AscKind::ReviewComments => {
                    let items: Vec<Comment> = resp.json().map_err(http(what.clone()))?;
                    let k = if matches!(kind, AscKind::ReviewComments) {
                        "review"
                    } else {
                        "issue"
                    };
                    self.comments_page(repo, k, items, &mut batch)?
                }
            };
            if let Some(m) = page_max {
                state.watermark = Some(state.watermark.map_or(m, |w| w.max(m)));
            }
            if has_next || pages > 1 {
                state.request_since = state.watermark;
            }
            if state != start
                && let Some(cp) = Self::checkpoint(&scope, state)?
            {
                batch.checkpoints.push(cp);
            }
            self.write(&batch).await?;
        }
        Ok(())
    }

    /// Fill `batch` with one page of issues (and the sub-resources of the
    /// changed ones); returns the newest `updated_at`.
    async fn issues_page(
        &mut self,
        repo: &Repo,
        items: Vec<Issue>,
        filtered: bool,
        batch: &mut Batch,
    ) -> Result<Option<DateTime<Utc>>, GithubError> {
        let full = repo.full_name.clone();
        let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
        let stored = self
            .store
            .issue_updated_at(&ids)
            .await
            .map_err(storage("reading stored issues"))?;
        let mut max = None;
        for i in &items {
            if i.pull_request.is_some() {
                self.counts.pulls += 1;
            } else {
                self.counts.issues += 1;
            }
            self.seen(batch, i.user.as_ref());
            batch.activity.push(
                records::issue(&full, i)
                    .map_err(protocol(format!("the record of {full}#{}", i.number)))?,
            );
            max = Some(max.map_or(i.updated_at, |m: DateTime<Utc>| m.max(i.updated_at)));
            let changed = stored.get(&i.id) != Some(&normalize_time(i.updated_at));
            if !changed || self.client.is_replay() {
                continue;
            }
            let is_pull = i.pull_request.is_some();
            if is_pull && self.settings.wants(Resource::Reviews) {
                self.reviews(repo, i.number, batch).await?;
            }
            if filtered && self.settings.wants(Resource::Comments) && i.comments > 0 {
                self.sub_comments(repo, i.number, "issue", batch).await?;
            }
            if filtered && is_pull && self.settings.wants(Resource::ReviewComments) {
                self.sub_comments(repo, i.number, "review", batch).await?;
            }
        }
        batch.issues.extend(items.into_iter().map(|i| (repo.id, i)));
        Ok(max)
    }

    fn comments_page(
        &mut self,
        repo: &Repo,
        kind: &'static str,
        items: Vec<Comment>,
        batch: &mut Batch,
    ) -> Result<Option<DateTime<Utc>>, GithubError> {
        let full = repo.full_name.clone();
        let mut max = None;
        for c in &items {
            if kind == "review" {
                self.counts.review_comments += 1;
            } else {
                self.counts.issue_comments += 1;
            }
            self.seen(batch, c.user.as_ref());
            batch.activity.push(
                records::comment(&full, kind, c)
                    .map_err(protocol(format!("the record of comment {}", c.id)))?,
            );
            max = Some(max.map_or(c.updated_at, |m: DateTime<Utc>| m.max(c.updated_at)));
        }
        batch
            .comments
            .extend(items.into_iter().map(|c| (repo.id, kind, c)));
        Ok(max)
    }

    async fn sub_comments(
        &mut self,
        repo: &Repo,
        number: i64,
        kind: &'static str,
        batch: &mut Batch,
    ) -> Result<(), GithubError> {
        let full = &repo.full_name;
        let pp = self.settings.args.per_page;
        let first = if kind == "review" {
            format!("/repos/{full}/pulls/{number}/comments?per_page={pp}")
        } else {
            format!("/repos/{full}/issues/{number}/comments?per_page={pp}")
        };
        let what = format!("fetching the comments of {full}#{number}");
        let mut pager = self.client.pages(&first);
        while let Some(resp) = pager.next_page().await.map_err(http(what.clone()))? {
            let items: Vec<Comment> = resp.json().map_err(http(what.clone()))?;
            self.comments_page(repo, kind, items, batch)?;
        }
        Ok(())
    }

    async fn reviews(
        &mut self,
        repo: &Repo,
        number: i64,
        batch: &mut Batch,
    ) -> Result<(), GithubError> {
        let full = repo.full_name.clone();
        let first = format!(
            "/repos/{full}/pulls/{number}/reviews?per_page={}",
            self.settings.args.per_page
        );
        let what = format!("fetching the reviews of {full}#{number}");
        let mut pager = self.client.pages(&first);
        while let Some(resp) = pager.next_page().await.map_err(http(what.clone()))? {
            let items: Vec<Review> = resp.json().map_err(http(what.clone()))?;
            self.reviews_page(repo, number, items, batch)?;
        }
        Ok(())
    }

    fn reviews_page(
        &mut self,
        repo: &Repo,
        number: i64,
        items: Vec<Review>,
        batch: &mut Batch,
    ) -> Result<(), GithubError> {
        let full = repo.full_name.clone();
        for r in &items {
            self.counts.reviews += 1;
            self.seen(batch, r.user.as_ref());
            if let Some(rec) = records::review(&full, number, r)
                .map_err(protocol(format!("the record of review {}", r.id)))?
            {
                batch.activity.push(rec);
            }
        }
        batch
            .reviews
            .extend(items.into_iter().map(|r| (repo.id, number, r)));
        Ok(())
    }

    async fn commits_stream(&mut self, repo: &Repo, path: Option<&str>) -> Result<(), GithubError> {
        let full = repo.full_name.clone();
        let scope = match path {
            Some(p) => format!("{}:commits:path={p}", Self::key(repo)),
            None => format!("{}:commits", Self::key(repo)),
        };
        let start = self.read_state(&scope).await?;
        let path_param = path
            .map(|p| format!("&path={}", enc(p)))
            .unwrap_or_default();
        let first = format!(
            "/repos/{full}/commits?per_page={}{path_param}{}",
            self.settings.args.per_page,
            since_param(start.request_since)
        );
        let what = format!("fetching the commits of {full}");
        let mut pager = self.client.pages(&first);
        let mut state = start;
        let mut pages = 0u32;
        loop {
            let resp = match pager.next_page().await {
                Ok(Some(r)) => r,
                Ok(None) => break,
                // An empty repository answers 409 Conflict.
                Err(e) if e.status() == Some(409) => break,
                Err(e) => return Err(http(what)(e)),
            };
            pages += 1;
            let has_next = resp.next_url().is_some();
            let items: Vec<Commit> = resp.json().map_err(http(what.clone()))?;
            let mut batch = Batch::default();
            self.commits_page(repo, items, &mut batch, &mut state)
                .await?;
            if !has_next {
                if pages > 1 {
                    state.request_since = state.watermark;
                }
                if state != start
                    && let Some(cp) = Self::checkpoint(&scope, state)?
                {
                    batch.checkpoints.push(cp);
                }
            }
            self.write(&batch).await?;
        }
        Ok(())
    }

    async fn commits_page(
        &mut self,
        repo: &Repo,
        items: Vec<Commit>,
        batch: &mut Batch,
        state: &mut StreamState,
    ) -> Result<(), GithubError> {
        let full = repo.full_name.clone();
        let need_details = !self.settings.args.no_commit_files && !self.client.is_replay();
        let with_files = if need_details {
            let shas: Vec<&str> = items.iter().map(|c| c.sha.as_str()).collect();
            self.store
                .commits_with_files(repo.id, &shas)
                .await
                .map_err(storage("reading stored commits"))?
        } else {
            Default::default()
        };
        let mut commits = Vec::with_capacity(items.len());
        for c in items {
            let c = if need_details && c.files.is_none() && !with_files.contains(&c.sha) {
                self.counts.commit_details += 1;
                self.client
                    .get_json::<Commit>(&format!("/repos/{full}/commits/{}", c.sha))
                    .await
                    .map_err(http(format!("fetching the commit {full}@{}", c.sha)))?
            } else {
                c
            };
            commits.push(c);
        }
        for c in &commits {
            self.counts.commits += 1;
            for u in [c.author.as_ref(), c.committer.as_ref()]
                .into_iter()
                .flatten()
            {
                self.users_seen.insert(u.id);
            }
            if let Some(t) = c.committed_at() {
                state.watermark = Some(state.watermark.map_or(t, |w| w.max(t)));
            }
        }
        add_commits(batch, &full, repo.id, commits)
    }

    async fn releases(&mut self, repo: &Repo) -> Result<(), GithubError> {
        let full = repo.full_name.clone();
        let scope = format!("{}:releases", Self::key(repo));
        let start = self.read_state(&scope).await?;
        let first = format!(
            "/repos/{full}/releases?per_page={}",
            self.settings.args.per_page
        );
        let what = format!("fetching the releases of {full}");
        let mut pager = self.client.pages(&first);
        let mut state = start;
        while let Some(resp) = pager.next_page().await.map_err(http(what.clone()))? {
            let has_next = resp.next_url().is_some();
            let items: Vec<Release> = resp.json().map_err(http(what.clone()))?;
            let mut batch = Batch::default();
            self.releases_page(repo, items, &mut batch, Some(&mut state))?;
            if !has_next
                && state != start
                && let Some(cp) = Self::checkpoint(&scope, state)?
            {
                batch.checkpoints.push(cp);
            }
            self.write(&batch).await?;
        }
        Ok(())
    }

    fn releases_page(
        &mut self,
        repo: &Repo,
        items: Vec<Release>,
        batch: &mut Batch,
        state: Option<&mut StreamState>,
    ) -> Result<(), GithubError> {
        let full = repo.full_name.clone();
        let mut newest = None;
        for r in &items {
            self.counts.releases += 1;
            self.seen(batch, r.author.as_ref());
            if let Some(rec) = records::release(&full, r)
                .map_err(protocol(format!("the record of release {}", r.id)))?
            {
                batch.activity.push(rec);
            }
            if let Some(t) = r.published_at.or(r.created_at) {
                newest = Some(newest.map_or(t, |n: DateTime<Utc>| n.max(t)));
            }
        }
        if let (Some(state), Some(n)) = (state, newest) {
            state.watermark = Some(state.watermark.map_or(n, |w| w.max(n)));
        }
        batch
            .releases
            .extend(items.into_iter().map(|r| (repo.id, r)));
        Ok(())
    }

    /// `GET /users/{login}` once per user seen in this run whose details
    /// were never fetched.
    async fn user_details(&mut self) -> Result<(), GithubError> {
        let ids: Vec<i64> = self.users_seen.iter().copied().collect();
        let todo = self
            .store
            .users_without_details(&ids)
            .await
            .map_err(storage("reading users without details"))?;
        let mut batch = Batch::default();
        for (id, login) in todo {
            let now = Utc::now();
            let user = match self
                .client
                .get_json::<User>(&format!("/users/{login}"))
                .await
            {
                Ok(u) => u,
                // A deleted or renamed account: remember we tried.
                Err(e) if e.status() == Some(404) => User {
                    id,
                    login: login.clone(),
                    user_type: None,
                    html_url: None,
                    name: None,
                    email: None,
                },
                Err(e) => return Err(http(format!("fetching the user {login}"))(e)),
            };
            self.counts.user_details += 1;
            batch.users.push(UserRow {
                user,
                details_fetched_at: Some(now),
            });
            if batch.users.len() >= 100 {
                let full = std::mem::take(&mut batch);
                self.write(&full).await?;
            }
        }
        self.write(&batch).await
    }

    /// Re-parse every archived response (newest per URL) without the
    /// network. Checkpoints are not moved.
    pub async fn replay(&mut self) -> Result<(), GithubError> {
        let Some(index) = self.client.archive_index() else {
            return Ok(());
        };
        let base = self
            .client
            .options()
            .base_url
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        let mut repos_by_name: HashMap<String, Repo> = HashMap::new();
        let mut rest = Vec::new();
        // Pass 1: repositories (every other resource needs their ids).
        for entry in index.entries() {
            let Some(path) = entry.url.strip_prefix(&base) else {
                continue;
            };
            let path_only = path.split('?').next().unwrap_or("");
            let parts: Vec<&str> = path_only.trim_matches('/').split('/').collect();
            let what = format!("replaying {}", entry.url);
            match parts.as_slice() {
                ["orgs", _, "repos"] | ["repos", _, _] => {
                    let resp = self
                        .client
                        .get(&entry.url)
                        .await
                        .map_err(http(what.clone()))?;
                    let repos: Vec<Repo> = if parts[0] == "orgs" {
                        resp.json().map_err(http(what))?
                    } else {
                        vec![resp.json().map_err(http(what))?]
                    };
                    for r in repos {
                        repos_by_name.insert(r.full_name.to_ascii_lowercase(), r);
                    }
                }
                _ => rest.push((
                    entry.url.clone(),
                    parts.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
                )),
            }
        }
        let mut batch = Batch::default();
        for r in repos_by_name.values() {
            self.seen(&mut batch, Some(&r.owner));
        }
        self.counts.repos = repos_by_name.len() as u64;
        batch.repos = repos_by_name.values().cloned().collect();
        self.write(&batch).await?;
        // Pass 2: everything else, in fetch order.
        for (url, parts) in rest {
            let what = format!("replaying {url}");
            let p: Vec<&str> = parts.iter().map(String::as_str).collect();
            if let ["users", _] = p.as_slice() {
                let resp = self.client.get(&url).await.map_err(http(what.clone()))?;
                let user: User = resp.json().map_err(http(what))?;
                self.counts.user_details += 1;
                let mut b = Batch::default();
                b.users.push(UserRow {
                    user,
                    details_fetched_at: Some(Utc::now()),
                });
                self.write(&b).await?;
                continue;
            }
            let (owner, name) = match p.as_slice() {
                ["repos", o, n, ..] => (*o, *n),
                _ => continue,
            };
            let Some(repo) = repos_by_name
                .get(&format!("{owner}/{name}").to_ascii_lowercase())
                .cloned()
            else {
                tracing::warn!(collector = self.name, url = %url, "archived response of an unknown repository skipped");
                continue;
            };
            let resp = self.client.get(&url).await.map_err(http(what.clone()))?;
            let mut b = Batch::default();
            match &p[3..] {
                ["issues"] => {
                    let items: Vec<Issue> = resp.json().map_err(http(what))?;
                    self.issues_page(&repo, items, false, &mut b).await?;
                }
                ["issues", "comments"] | ["issues", _, "comments"] => {
                    let items: Vec<Comment> = resp.json().map_err(http(what))?;
                    self.comments_page(&repo, "issue", items, &mut b)?;
                }
                ["pulls", "comments"] | ["pulls", _, "comments"] => {
                    let items: Vec<Comment> = resp.json().map_err(http(what))?;
                    self.comments_page(&repo, "review", items, &mut b)?;
                }
                ["pulls", n, "reviews"] => {
                    let Ok(number) = n.parse::<i64>() else {
                        continue;
                    };
                    let items: Vec<Review> = resp.json().map_err(http(what))?;
                    self.reviews_page(&repo, number, items, &mut b)?;
                }
                ["commits"] => {
                    let items: Vec<Commit> = resp.json().map_err(http(what))?;
                    let mut st = StreamState::default();
                    self.commits_page(&repo, items, &mut b, &mut st).await?;
                }
                ["commits", _] => {
                    let item: Commit = resp.json().map_err(http(what))?;
                    let mut st = StreamState::default();
                    self.commits_page(&repo, vec![item], &mut b, &mut st)
                        .await?;
                }
                ["releases"] => {
                    let items: Vec<Release> = resp.json().map_err(http(what))?;
                    self.releases_page(&repo, items, &mut b, None)?;
                }
                _ => continue,
            }
            self.write(&b).await?;
        }
        Ok(())
    }
}
