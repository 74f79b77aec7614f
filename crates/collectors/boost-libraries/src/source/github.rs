//! The catalog from the GitHub REST API (`--source github`), through the
//! shared HTTP client ([`bdc_http::HttpClient`]: conditional requests,
//! token rotation, rate-limit pauses, retries, budget, raw archive and
//! replay). Requests, all with URLs that stay the same between runs so
//! stored ETags match:
//!
//! | question | request |
//! |---|---|
//! | release tags | `GET /repos/{o}/{r}/tags?per_page=100` (every page) |
//! | one ref (`--release`) | `GET /repos/{o}/{r}/commits/{ref}` |
//! | release date | `GET /repos/{o}/{r}/commits/{sha}` |
//! | `.gitmodules` | `GET /repos/{o}/{r}/contents/.gitmodules?ref={sha}` |
//! | gitlinks | `GET /repos/{o}/{r}/git/trees/{sha}?recursive=1` |
//! | library metadata | `GET /repos/{lo}/{lr}/contents/meta/libraries.json?ref={pin}` |
//!
//! A steady-state run (no new or moved tag) makes only the tag-listing
//! requests, answered `304` for free. A `404` for a library's metadata is
//! `commit_not_found` when GitHub says "No commit found", `fetch_failed`
//! when the repository itself does not exist (one `GET /repos/{lo}/{lr}`
//! tells), `no_meta` otherwise. Each (repository, commit) is looked up once
//! per run: releases share most pins.
//!
//! Replay (`--from-archive`) answers from the raw archive, which for this
//! collector also keeps `404` answers
//! ([`bdc_http::ClientOptions::archive_not_found`]), so a replay classifies
//! every submodule as the live run did. A URL the archive does not hold
//! (the live run stopped early, or its answers were all `304`) stops the
//! replay with a `not_found` error before the release is written.

use std::collections::HashMap;

use async_trait::async_trait;
use base64::Engine;
use bdc_http::{HttpClient, HttpError};
use serde::Deserialize;

use super::{CatalogSource, MetaFetch, Snapshot, is_release_tag, parse_release_date};
use crate::{BoostLibrariesError, NAME};

/// `OWNER/NAME`, a GitHub URL (`https://github.com/OWNER/NAME.git`) or an
/// scp-like address (`git@github.com:OWNER/NAME.git`) → (owner, name).
/// `hosts` lists the hosts a URL may name (GitHub and the API's own host);
/// `None` for anything else.
pub fn repo_slug(s: &str, hosts: &[String]) -> Option<(String, String)> {
    let t = s.trim().trim_end_matches('/');
    let t = t.strip_suffix(".git").unwrap_or(t);
    let path = if let Some((_, rest)) = t.split_once("://") {
        let (authority, path) = rest.split_once('/')?;
        let host = authority.rsplit('@').next()?.split(':').next()?;
        hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
            .then_some(path)?
    } else if let Some((authority, path)) = t.split_once(':') {
        let host = authority.rsplit('@').next()?;
        hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
            .then_some(path)?
    } else {
        t
    };
    let mut parts = path.split('/');
    let (owner, name) = (parts.next()?, parts.next()?);
    let ok = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    (parts.next().is_none() && ok(owner) && ok(name)).then(|| (owner.to_owned(), name.to_owned()))
}

/// Hosts a submodule URL may name for `api` (`https://api.github.com` →
/// `github.com`; GitHub Enterprise `https://ghe.example/api/v3` →
/// `ghe.example`).
pub fn github_hosts(api: &url::Url) -> Vec<String> {
    let mut hosts = vec!["github.com".to_owned()];
    if let Some(h) = api.host_str() {
        hosts.push(h.to_owned());
        if let Some(web) = h.strip_prefix("api.") {
            hosts.push(web.to_owned());
        }
    }
    hosts
}

#[derive(Debug, Deserialize)]
struct Tag {
    name: String,
    commit: TagCommit,
}

#[derive(Debug, Deserialize)]
struct TagCommit {
    sha: String,
}

#[derive(Debug, Deserialize)]
struct CommitResponse {
    sha: String,
    commit: CommitInner,
}

#[derive(Debug, Deserialize)]
struct CommitInner {
    committer: Option<Signature>,
    author: Option<Signature>,
}

#[derive(Debug, Deserialize)]
struct Signature {
    date: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Contents {
    #[serde(rename = "type")]
    kind: String,
    encoding: Option<String>,
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
    sha: String,
}

/// See the module docs.
#[derive(Debug)]
pub struct GithubCatalog {
    client: HttpClient,
    owner: String,
    repo: String,
    hosts: Vec<String>,
    web: String,
    /// Tag name → commit, from the tag listing.
    tags: HashMap<String, String>,
    /// Commit → committer date, from `commits/{ref}` answers.
    dates: HashMap<String, String>,
    /// (owner/name, pin) → result, once per run.
    metas: HashMap<(String, String), MetaFetch>,
    /// owner/name → whether the repository exists.
    repos: HashMap<String, bool>,
}

fn http(what: String) -> impl FnOnce(HttpError) -> BoostLibrariesError {
    move |source| BoostLibrariesError::Http { what, source }
}

/// GitHub's "does not exist" answers. On replay these come from the
/// archive (the client archives `404`s for this collector); a URL that was
/// never fetched is [`HttpError::NotArchived`], an error, so a replay never
/// records a release from an incomplete archive.
fn is_missing(e: &HttpError) -> bool {
    matches!(e.status(), Some(404 | 410 | 422))
}

/// The web address repositories are cloned from for API `api`
/// (`https://api.github.com` → `https://github.com`; GitHub Enterprise
/// `https://ghe.example/api/v3` → `https://ghe.example`).
pub fn web_base(api: &url::Url) -> String {
    let host = api.host_str().unwrap_or("github.com");
    let host = host.strip_prefix("api.").unwrap_or(host);
    match api.port() {
        Some(p) => format!("{}://{host}:{p}", api.scheme()),
        None => format!("{}://{host}", api.scheme()),
    }
}

impl GithubCatalog {
    /// A catalog of `owner/repo` read through `client`.
    pub fn new(client: HttpClient, owner: String, repo: String) -> Self {
        let hosts = github_hosts(&client.options().base_url);
        let web = web_base(&client.options().base_url);
        GithubCatalog {
            client,
            owner,
            repo,
            hosts,
            web,
            tags: HashMap::new(),
            dates: HashMap::new(),
            metas: HashMap::new(),
            repos: HashMap::new(),
        }
    }

    /// Requests made so far (counts of the run).
    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    fn base(&self) -> String {
        format!("/repos/{}/{}", self.owner, self.repo)
    }

    /// Fetch `commits/{reference}`: its sha and date; `None` if missing.
    async fn commit(
        &mut self,
        reference: &str,
    ) -> Result<Option<(String, String)>, BoostLibrariesError> {
        let path = format!("{}/commits/{reference}", self.base());
        let c: CommitResponse = match self.client.get(&path).await {
            Ok(r) => r
                .json()
                .map_err(http(format!("reading commit {reference}")))?,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(http(format!("fetching commit {reference}"))(e)),
        };
        let date = c
            .commit
            .committer
            .and_then(|s| s.date)
            .or_else(|| c.commit.author.and_then(|s| s.date))
            .unwrap_or_default();
        self.dates.insert(c.sha.clone(), date.clone());
        Ok(Some((c.sha, date)))
    }

    async fn repo_exists(&mut self, slug: &str) -> Result<bool, BoostLibrariesError> {
        if let Some(b) = self.repos.get(slug) {
            return Ok(*b);
        }
        let exists = match self.client.get(&format!("/repos/{slug}")).await {
            Ok(_) => true,
            Err(e) if is_missing(&e) => false,
            Err(e) => return Err(http(format!("checking repository {slug}"))(e)),
        };
        self.repos.insert(slug.to_owned(), exists);
        Ok(exists)
    }
}

/// Base64 `content` of a contents answer (GitHub wraps it at 60 columns).
fn decode_content(c: &Contents) -> Option<Vec<u8>> {
    if c.encoding.as_deref() != Some("base64") {
        return None;
    }
    let text: String = c
        .content
        .as_deref()
        .unwrap_or_default()
        .chars()
        .filter(|ch| !ch.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .ok()
}

#[async_trait]
impl CatalogSource for GithubCatalog {
    fn submodule_base(&self) -> String {
        format!("{}/{}/{}.git", self.web, self.owner, self.repo)
    }

    async fn release_tags(&mut self) -> Result<Vec<String>, BoostLibrariesError> {
        let first = format!("{}/tags?per_page=100", self.base());
        let mut pages = self.client.pages(&first);
        let mut out = Vec::new();
        while let Some(page) = pages
            .next_page()
            .await
            .map_err(http("listing the superproject's tags".into()))?
        {
            let tags: Vec<Tag> = page
                .json()
                .map_err(http("reading the superproject's tags".into()))?;
            for t in tags {
                if is_release_tag(&t.name) {
                    out.push(t.name.clone());
                }
                self.tags.insert(t.name, t.commit.sha);
            }
        }
        Ok(out)
    }

    async fn resolve(&mut self, release: &str) -> Result<Option<String>, BoostLibrariesError> {
        if let Some(sha) = self.tags.get(release) {
            return Ok(Some(sha.clone()));
        }
        Ok(self.commit(release).await?.map(|(sha, _)| sha))
    }

    async fn snapshot(
        &mut self,
        release: &str,
        sha: &str,
    ) -> Result<Snapshot, BoostLibrariesError> {
        let date = match self.dates.get(sha) {
            Some(d) => d.clone(),
            None => match self.commit(sha).await? {
                Some((_, d)) => d,
                None => {
                    return Err(BoostLibrariesError::NoRelease {
                        release: release.to_owned(),
                    });
                }
            },
        };
        let released_at = parse_release_date(release, &date)?;
        let gm_path = format!("{}/contents/.gitmodules?ref={sha}", self.base());
        let gitmodules = match self.client.get(&gm_path).await {
            Ok(r) => {
                let c: Contents = r
                    .json()
                    .map_err(http(format!("reading .gitmodules of {release}")))?;
                decode_content(&c).ok_or_else(|| BoostLibrariesError::Api {
                    url: r.url.clone(),
                    message: "`.gitmodules` is not a base64-encoded file".into(),
                })?
            }
            Err(e) if is_missing(&e) => Vec::new(),
            Err(e) => return Err(http(format!("fetching .gitmodules of {release}"))(e)),
        };
        let tree_path = format!("{}/git/trees/{sha}?recursive=1", self.base());
        let r = self
            .client
            .get(&tree_path)
            .await
            .map_err(http(format!("fetching the tree of {release}")))?;
        let tree: Tree = r
            .json()
            .map_err(http(format!("reading the tree of {release}")))?;
        if tree.truncated {
            return Err(BoostLibrariesError::Api {
                url: r.url,
                message: "GitHub truncated the recursive tree; use `--source git`".into(),
            });
        }
        let gitlinks = tree
            .tree
            .into_iter()
            .filter(|e| e.kind == "commit")
            .map(|e| (e.path, e.sha))
            .collect();
        Ok(Snapshot {
            released_at,
            gitmodules,
            gitlinks,
        })
    }

    async fn library_meta(
        &mut self,
        name: &str,
        url: &str,
        pin: &str,
    ) -> Result<MetaFetch, BoostLibrariesError> {
        let Some((owner, repo)) = repo_slug(url, &self.hosts) else {
            tracing::warn!(collector = NAME, submodule = %name, url = %url, "the submodule URL does not name a GitHub repository");
            return Ok(MetaFetch::FetchFailed);
        };
        let slug = format!("{owner}/{repo}");
        let key = (slug.clone(), pin.to_owned());
        if let Some(m) = self.metas.get(&key) {
            return Ok(m.clone());
        }
        let path = format!("/repos/{slug}/contents/meta/libraries.json?ref={pin}");
        let found = match self.client.get(&path).await {
            // A directory at that path is listed as a JSON array.
            Ok(r) if r.body.trim_ascii_start().starts_with(b"[") => MetaFetch::NoMeta,
            Ok(r) => {
                let c: Contents = r
                    .json()
                    .map_err(http(format!("reading {slug} meta/libraries.json")))?;
                if c.kind != "file" {
                    MetaFetch::NoMeta
                } else if let Some(bytes) = decode_content(&c) {
                    MetaFetch::Found(bytes)
                } else {
                    tracing::warn!(collector = NAME, submodule = %name, url = %r.url, "meta/libraries.json is not served base64-encoded (too large?)");
                    MetaFetch::FetchFailed
                }
            }
            Err(e) if is_missing(&e) => {
                let no_commit = matches!(&e, HttpError::Status { detail, .. } if detail.contains("No commit found"));
                if no_commit {
                    MetaFetch::CommitNotFound
                } else if self.repo_exists(&slug).await? {
                    MetaFetch::NoMeta
                } else {
                    tracing::warn!(collector = NAME, submodule = %name, repository = %slug, "the submodule's repository does not exist on GitHub");
                    MetaFetch::FetchFailed
                }
            }
            Err(e) => return Err(http(format!("fetching {slug} meta/libraries.json"))(e)),
        };
        self.metas.insert(key, found.clone());
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        let api = url::Url::parse("https://api.github.com").unwrap();
        assert_eq!(web_base(&api), "https://github.com");
        let hosts = github_hosts(&api);
        let s = |x: &str| repo_slug(x, &hosts);
        let bb = Some(("boostorg".to_owned(), "boost".to_owned()));
        assert_eq!(s("boostorg/boost"), bb);
        assert_eq!(s("https://github.com/boostorg/boost.git"), bb);
        assert_eq!(s("https://github.com/boostorg/boost/"), bb);
        assert_eq!(s("git@github.com:boostorg/boost.git"), bb);
        assert_eq!(s("https://gitlab.com/boostorg/boost.git"), None);
        assert_eq!(s("https://github.com/a/b/c"), None);
        assert_eq!(s("../config.git"), None);
        assert_eq!(s("boost"), None);
        let ghe_api = url::Url::parse("https://ghe.example/api/v3").unwrap();
        assert_eq!(web_base(&ghe_api), "https://ghe.example");
        let ghe = github_hosts(&ghe_api);
        assert!(repo_slug("https://ghe.example/o/r.git", &ghe).is_some());
    }

    #[test]
    fn base64_content_wrapped_at_60_columns() {
        let c = Contents {
            kind: "file".into(),
            encoding: Some("base64".into()),
            content: Some("eyJrZXkiOiJh\nIn0=\n".into()),
        };
        assert_eq!(decode_content(&c).unwrap(), br#"{"key":"a"}"#);
        let none = Contents {
            kind: "file".into(),
            encoding: Some("none".into()),
            content: Some(String::new()),
        };
        assert!(decode_content(&none).is_none());
    }
}
