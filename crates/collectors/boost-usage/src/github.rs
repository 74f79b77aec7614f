//! The GitHub REST calls of `boost-usage`, all through `bdc-http`:
//! repository search (with date-range halving under the 1,000-result cap),
//! code search, contents, trees and the repository endpoint; search and
//! code search paced to their per-minute limits.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use bdc_http::{HttpClient, HttpError, RateWindow, WaitMeter};
use chrono::NaiveDate;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::{BoostUsageError, Counts};

/// GitHub search answers at most this many results per query.
pub const SEARCH_CAP: u64 = 1000;
/// Results per search page (GitHub's maximum).
pub const PER_PAGE: u64 = 100;
/// GitHub's limit on the length of a search query.
pub const MAX_QUERY_LEN: usize = 256;
/// Search API requests per minute per token.
pub const SEARCH_PER_MINUTE: usize = 30;
/// Code search requests per minute per token.
pub const CODE_SEARCH_PER_MINUTE: usize = 10;
/// The code search text.
pub const INCLUDE_QUERY: &str = "\"#include <boost/\"";

/// A repository as search and the repository endpoint describe it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RepoItem {
    pub full_name: String,
    #[serde(default)]
    pub stargazers_count: u64,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub pushed_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SearchPage<T> {
    total_count: u64,
    #[serde(default)]
    incomplete_results: bool,
    items: Vec<T>,
}

/// A code search match.
#[derive(Debug, Clone, Deserialize)]
pub struct CodeItem {
    pub path: String,
    pub sha: String,
    pub repository: CodeRepo,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CodeRepo {
    pub full_name: String,
}

#[derive(Debug, Deserialize)]
struct Contents {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    content: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Tree {
    tree: Vec<TreeEntry>,
    #[serde(default)]
    truncated: bool,
}

#[derive(Debug, Deserialize)]
struct TreeEntry {
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

/// Paths per GraphQL blob batch (aliases `f0`…`f49`).
pub const BLOB_BATCH: usize = 50;

#[derive(Debug, Deserialize)]
struct GraphqlBlobs {
    #[serde(default)]
    data: Option<GraphqlData>,
}

#[derive(Debug, Deserialize)]
struct GraphqlData {
    #[serde(default)]
    repository: Option<BTreeMap<String, Option<Blob>>>,
}

#[derive(Debug, Default, Deserialize)]
struct Blob {
    #[serde(default)]
    text: Option<String>,
    #[serde(default, rename = "isBinary")]
    is_binary: Option<bool>,
    #[serde(default, rename = "isTruncated")]
    is_truncated: Option<bool>,
}

/// A file's text, or why it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileText {
    Text(String),
    /// Not found (deleted since the search indexed it).
    Missing,
    /// Over the contents API's 1 MB limit (`encoding: none`).
    TooLarge,
    /// Not decodable (bad base64, not a file).
    Undecodable(String),
}

/// Percent-encode a repository path for a URL (segments kept).
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn q_param(q: &str) -> String {
    form_urlencoded::byte_serialize(q.as_bytes()).collect()
}

/// Code search queries over `repos`: `INCLUDE_QUERY repo:a/b repo:c/d …`,
/// each shorter than [`MAX_QUERY_LEN`].
pub fn code_queries(repos: &[String]) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut q = INCLUDE_QUERY.to_owned();
    let mut batch: Vec<String> = Vec::new();
    for r in repos {
        let term = format!(" repo:{r}");
        if INCLUDE_QUERY.len() + term.len() >= MAX_QUERY_LEN {
            continue; // a name that cannot fit any query (never on GitHub)
        }
        if q.len() + term.len() >= MAX_QUERY_LEN {
            out.push((
                std::mem::replace(&mut q, INCLUDE_QUERY.to_owned()),
                std::mem::take(&mut batch),
            ));
        }
        q.push_str(&term);
        batch.push(r.clone());
    }
    if !batch.is_empty() {
        out.push((q, batch));
    }
    out
}

/// The API, its pacers and its wait meter.
pub struct Api {
    pub client: HttpClient,
    pub meter: Arc<WaitMeter>,
    search_pace: RateWindow,
    code_pace: RateWindow,
}

impl Api {
    pub fn new(client: HttpClient, meter: Arc<WaitMeter>) -> Self {
        let tokens = client.options().tokens.len();
        Api {
            client,
            meter,
            search_pace: RateWindow::per_minute(SEARCH_PER_MINUTE, tokens),
            code_pace: RateWindow::per_minute(CODE_SEARCH_PER_MINUTE, tokens),
        }
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, HttpError> {
        self.client.get_json(path).await
    }

    fn http(what: String) -> impl FnOnce(HttpError) -> BoostUsageError {
        move |source| BoostUsageError::Http { what, source }
    }

    /// One page of a search; `Ok(None)`: the page is past what GitHub
    /// serves (`422`, or not in a replayed archive).
    async fn search_page<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        q: &str,
        page: u64,
        code: bool,
        counts: &mut Counts,
    ) -> Result<Option<SearchPage<T>>, BoostUsageError> {
        if !self.client.is_replay() {
            let pacer = if code {
                &self.code_pace
            } else {
                &self.search_pace
            };
            pacer.pace(&*self.meter).await;
        }
        counts.add(
            if code {
                "code_queries"
            } else {
                "search_queries"
            },
            1,
        );
        let path = format!(
            "/search/{endpoint}?q={}&per_page={PER_PAGE}&page={page}",
            q_param(q)
        );
        match self.get_json::<SearchPage<T>>(&path).await {
            Ok(p) => {
                if p.incomplete_results {
                    counts.add("incomplete_results", 1);
                    tracing::warn!(query = q, page, "GitHub reported incomplete search results");
                }
                Ok(Some(p))
            }
            Err(e)
                if page > 1
                    && (e.status() == Some(422) || matches!(e, HttpError::NotArchived { .. })) =>
            {
                counts.add("too_deep", 1);
                tracing::warn!(query = q, page, error = %e, "search page too deep; stopping there");
                Ok(None)
            }
            Err(e) => Err(Self::http(format!(
                "searching {endpoint} ({q}, page {page})"
            ))(e)),
        }
    }

    /// Every page of a search up to the cap: (total_count, items,
    /// complete?).
    async fn search_all<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        q: &str,
        code: bool,
        counts: &mut Counts,
    ) -> Result<(u64, Vec<T>, bool), BoostUsageError> {
        let Some(first) = self.search_page::<T>(endpoint, q, 1, code, counts).await? else {
            return Ok((0, Vec::new(), false));
        };
        let total = first.total_count;
        let mut complete = !first.incomplete_results;
        let mut items = first.items;
        let want = total.min(SEARCH_CAP);
        let mut page = 1;
        while (items.len() as u64) < want && page < SEARCH_CAP / PER_PAGE {
            page += 1;
            match self
                .search_page::<T>(endpoint, q, page, code, counts)
                .await?
            {
                Some(p) => {
                    if p.items.is_empty() {
                        break;
                    }
                    complete &= !p.incomplete_results;
                    items.extend(p.items);
                }
                None => {
                    complete = false;
                    break;
                }
            }
        }
        if total > SEARCH_CAP {
            complete = false;
        }
        Ok((total, items, complete))
    }

    /// Repositories matching `base` with `field:A..B` over `[from, to]`,
    /// halving the date range while a part has more than 1,000 results.
    pub async fn search_windows(
        &self,
        base: &str,
        field: &str,
        from: NaiveDate,
        to: NaiveDate,
        counts: &mut Counts,
    ) -> Result<Vec<RepoItem>, BoostUsageError> {
        let mut out = Vec::new();
        let mut stack = vec![(from, to)];
        while let Some((a, b)) = stack.pop() {
            let q = format!("{base} {field}:{a}..{b}");
            let Some(first) = self
                .search_page::<RepoItem>("repositories", &q, 1, false, counts)
                .await?
            else {
                continue;
            };
            if first.total_count > SEARCH_CAP && a < b {
                let days = (b - a).num_days();
                let mid = a + chrono::Duration::days(days / 2);
                let next = mid + chrono::Duration::days(1);
                counts.add("window_splits", 1);
                tracing::debug!(query = %q, total = first.total_count, "over the search cap; halving the range");
                // Older half first (popped last-in first-out).
                stack.push((next, b));
                stack.push((a, mid));
                continue;
            }
            counts.add("windows", 1);
            if first.total_count > SEARCH_CAP {
                counts.add("capped", 1);
                tracing::warn!(query = %q, total = first.total_count, "one day has more than 1,000 results; the rest is out of reach of the search API");
            }
            let want = first.total_count.min(SEARCH_CAP);
            let mut items = first.items;
            let mut page = 1;
            while (items.len() as u64) < want && page < SEARCH_CAP / PER_PAGE {
                page += 1;
                match self
                    .search_page::<RepoItem>("repositories", &q, page, false, counts)
                    .await?
                {
                    Some(p) if !p.items.is_empty() => items.extend(p.items),
                    _ => break,
                }
            }
            out.extend(items);
        }
        Ok(out)
    }

    /// Code search for Boost includes in `repos` (one query):
    /// (matches, complete?).
    pub async fn code_search(
        &self,
        q: &str,
        counts: &mut Counts,
    ) -> Result<(Vec<CodeItem>, bool), BoostUsageError> {
        let (_, items, complete) = self.search_all::<CodeItem>("code", q, true, counts).await?;
        Ok((items, complete))
    }

    /// A file's text through the contents API.
    pub async fn file_text(&self, repo: &str, path: &str) -> Result<FileText, BoostUsageError> {
        let url = format!("/repos/{repo}/contents/{}", encode_path(path));
        let c: Contents = match self.get_json(&url).await {
            Ok(c) => c,
            Err(e) if matches!(e.status(), Some(404 | 410)) => return Ok(FileText::Missing),
            Err(e @ HttpError::Json { .. }) => {
                return Ok(FileText::Undecodable(e.to_string()));
            }
            Err(e) => return Err(Self::http(format!("reading {repo}:{path}"))(e)),
        };
        if c.kind != "file" {
            return Ok(FileText::Undecodable(format!(
                "not a file but {:?}",
                c.kind
            )));
        }
        match (c.encoding.as_deref(), c.content) {
            (Some("base64"), Some(text)) => {
                let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
                match base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) {
                    Ok(bytes) => Ok(FileText::Text(String::from_utf8_lossy(&bytes).into_owned())),
                    Err(e) => Ok(FileText::Undecodable(format!("invalid base64: {e}"))),
                }
            }
            (Some("none"), _) => Ok(FileText::TooLarge),
            (enc, _) => Ok(FileText::Undecodable(format!(
                "unsupported encoding {enc:?}"
            ))),
        }
    }

    /// The GraphQL endpoint next to the REST base URL:
    /// `https://api.github.com` → `/graphql`, GitHub Enterprise
    /// `https://ghe/api/v3` → `https://ghe/api/graphql`.
    pub fn graphql_url(&self) -> String {
        let base = self
            .client
            .options()
            .base_url
            .as_str()
            .trim_end_matches('/');
        match base.strip_suffix("/v3") {
            Some(root) => format!("{root}/graphql"),
            None => format!("{base}/graphql"),
        }
    }

    /// The texts of `paths` at the default branch of `repo`, in GraphQL
    /// batches of [`BLOB_BATCH`] (`object(expression: "HEAD:<path>")` per
    /// path, one rate-limit point per batch instead of one REST request
    /// per file). A path missing from the answer (no such blob, binary,
    /// truncated) is left out: the caller reads it through the contents
    /// API. A batch GraphQL cannot answer (no token, an error status, an
    /// `errors` answer without data, a replay that did not record it) is
    /// left out the same way, so REST is the fallback for everything.
    pub async fn blobs(
        &self,
        repo: &str,
        paths: &[String],
        counts: &mut Counts,
    ) -> BTreeMap<String, FileText> {
        let mut out = BTreeMap::new();
        if self.client.options().tokens.is_empty() && !self.client.is_replay() {
            return out; // GraphQL has no anonymous access.
        }
        let Some((owner, name)) = repo.split_once('/') else {
            return out;
        };
        let url = self.graphql_url();
        for batch in paths.chunks(BLOB_BATCH) {
            let mut decls = vec!["$owner: String!".to_owned(), "$name: String!".to_owned()];
            let mut fields = String::new();
            let mut vars = serde_json::Map::new();
            vars.insert("owner".into(), owner.into());
            vars.insert("name".into(), name.into());
            for (i, p) in batch.iter().enumerate() {
                decls.push(format!("$e{i}: String!"));
                fields.push_str(&format!(
                    " f{i}: object(expression: $e{i}) {{ ... on Blob {{ text isBinary isTruncated }} }}"
                ));
                vars.insert(format!("e{i}"), format!("HEAD:{p}").into());
            }
            let query = format!(
                "query({}) {{ repository(owner: $owner, name: $name) {{{fields} }} }}",
                decls.join(", ")
            );
            let body = serde_json::json!({"query": query, "variables": vars});
            let body = serde_json::to_vec(&body).unwrap_or_default();
            counts.add("graphql_batches", 1);
            let resp = match self.client.post(&url, "application/json", body).await {
                Ok(r) => r,
                Err(e) => {
                    counts.add("graphql_fallbacks", batch.len() as u64);
                    tracing::debug!(repo, error = %e, "GraphQL blob batch unavailable; the contents API is used");
                    continue;
                }
            };
            let parsed: GraphqlBlobs = match serde_json::from_slice(&resp.body) {
                Ok(p) => p,
                Err(e) => {
                    counts.add("graphql_fallbacks", batch.len() as u64);
                    tracing::warn!(repo, error = %e, "GraphQL answer is not the documented JSON; the contents API is used");
                    continue;
                }
            };
            let repo_obj = parsed.data.and_then(|d| d.repository).unwrap_or_default();
            for (i, p) in batch.iter().enumerate() {
                match repo_obj.get(&format!("f{i}")) {
                    Some(Some(Blob {
                        text: Some(text),
                        is_binary: Some(false) | None,
                        is_truncated: Some(false) | None,
                    })) => {
                        out.insert(p.clone(), FileText::Text(text.clone()));
                    }
                    _ => counts.add("graphql_fallbacks", 1),
                }
            }
        }
        counts.add("graphql_files", out.len() as u64);
        out
    }

    /// The blob paths of the default branch (`None`: empty or missing
    /// repository).
    pub async fn tree(&self, repo: &str) -> Result<Option<Vec<String>>, BoostUsageError> {
        let url = format!("/repos/{repo}/git/trees/HEAD?recursive=1");
        match self.get_json::<Tree>(&url).await {
            Ok(t) => {
                if t.truncated {
                    tracing::debug!(repo, "tree listing truncated by GitHub");
                }
                Ok(Some(
                    t.tree
                        .into_iter()
                        .filter(|e| e.kind == "blob")
                        .map(|e| e.path)
                        .collect(),
                ))
            }
            Err(e) if matches!(e.status(), Some(404 | 409 | 410)) => Ok(None),
            Err(e) => Err(Self::http(format!("listing the tree of {repo}"))(e)),
        }
    }

    /// The repository endpoint (`None`: gone).
    pub async fn repo(&self, repo: &str) -> Result<Option<RepoItem>, BoostUsageError> {
        match self.get_json::<RepoItem>(&format!("/repos/{repo}")).await {
            Ok(r) => Ok(Some(r)),
            Err(e) if matches!(e.status(), Some(404 | 410 | 451)) => Ok(None),
            Err(e) => Err(Self::http(format!("reading repository {repo}"))(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_queries_stay_under_the_limit() {
        let repos: Vec<String> = (0..40).map(|i| format!("owner{i}/project-{i}")).collect();
        let qs = code_queries(&repos);
        assert!(qs.len() > 1);
        let mut all = Vec::new();
        for (q, batch) in &qs {
            assert!(q.len() < MAX_QUERY_LEN, "{q}");
            assert!(q.starts_with(INCLUDE_QUERY));
            all.extend(batch.clone());
        }
        assert_eq!(all, repos);
        assert_eq!(encode_path("src/a b/c+d.cpp"), "src/a%20b/c%2Bd.cpp");
    }
}
