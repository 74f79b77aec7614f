//! The catalog from a git clone of the superproject (the `git-history`
//! machinery, [`bdc_collector_git::sync_mirror`]); each submodule is
//! fetched once per run into `<WORKSPACE_DIR>/git/boost-libraries/`.

use std::collections::HashMap;
use std::path::PathBuf;

use async_trait::async_trait;
use bdc_collector_git::{Git, GitError, normalize_source, sync_mirror};

use super::{CatalogSource, MetaFetch, Snapshot, is_release_tag, parse_release_date};
use crate::deps::{Includes, parse_git_grep};
use crate::{BoostLibrariesError, NAME};

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, GitError> + Send + 'static,
) -> Result<T, BoostLibrariesError> {
    Ok(tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BoostLibrariesError::Join(e.to_string()))??)
}

fn safe_name(n: &str) -> String {
    n.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned()
}

/// See the module docs.
#[derive(Debug)]
pub struct GitCatalog {
    workspace: PathBuf,
    source: String,
    sup: Git,
    /// Submodule name → its mirror (`None`: the fetch failed this run).
    mirrors: HashMap<String, Option<Git>>,
}

impl GitCatalog {
    /// Fetch the superproject `repo` (a local path or a git URL).
    pub async fn open(workspace: PathBuf, repo: &str) -> Result<Self, BoostLibrariesError> {
        let source = normalize_source(repo);
        tracing::info!(collector = NAME, source = %source, "fetching the superproject");
        let sup = sync_mirror(&workspace, "boost-libraries/superproject", &source).await?;
        Ok(GitCatalog {
            workspace,
            source,
            sup,
            mirrors: HashMap::new(),
        })
    }
}

#[async_trait]
impl CatalogSource for GitCatalog {
    fn submodule_base(&self) -> String {
        self.source.clone()
    }

    async fn release_tags(&mut self) -> Result<Vec<String>, BoostLibrariesError> {
        let g = self.sup.clone();
        let out = blocking(move || {
            g.text(&[
                "for-each-ref",
                "--format=%(refname:short)",
                "refs/tags/boost-*",
            ])
        })
        .await?;
        Ok(out
            .lines()
            .map(str::trim)
            .filter(|t| is_release_tag(t))
            .map(str::to_owned)
            .collect())
    }

    async fn resolve(&mut self, release: &str) -> Result<Option<String>, BoostLibrariesError> {
        let g = self.sup.clone();
        let r = release.to_owned();
        Ok(blocking(move || g.resolve_ref(&r))
            .await?
            .map(|(_, sha)| sha))
    }

    async fn snapshot(
        &mut self,
        release: &str,
        sha: &str,
    ) -> Result<Snapshot, BoostLibrariesError> {
        let g = self.sup.clone();
        let s = sha.to_owned();
        let (date, gitmodules, tree) = blocking(move || {
            let date = g.text(&["log", "-1", "--format=%cI", &s])?;
            let gm = g.show_file(&s, ".gitmodules")?;
            let tree = g.run(&["ls-tree", "-r", "-z", &s])?;
            Ok((date, gm, tree))
        })
        .await?;
        let released_at = parse_release_date(release, &date)?;
        // Gitlinks: `160000 commit <sha>\t<path>` entries.
        let mut gitlinks = HashMap::new();
        for entry in tree.split(|b| *b == 0) {
            let e = String::from_utf8_lossy(entry);
            if let Some((head, path)) = e.split_once('\t') {
                let f: Vec<&str> = head.split_whitespace().collect();
                if f.len() == 3 && f[0] == "160000" {
                    gitlinks.insert(path.to_owned(), f[2].to_owned());
                }
            }
        }
        Ok(Snapshot {
            released_at,
            gitmodules: gitmodules.unwrap_or_default(),
            gitlinks,
        })
    }

    async fn library_meta(
        &mut self,
        name: &str,
        url: &str,
        pin: &str,
    ) -> Result<MetaFetch, BoostLibrariesError> {
        if !self.mirrors.contains_key(name) {
            let dir = format!("boost-libraries/{}", safe_name(name));
            let git = match sync_mirror(&self.workspace, &dir, url).await {
                Ok(g) => Some(g),
                Err(e) => {
                    tracing::warn!(collector = NAME, submodule = %name, url = %url, error = %e, "cannot fetch the submodule");
                    None
                }
            };
            self.mirrors.insert(name.to_owned(), git);
        }
        let Some(git) = self.mirrors.get(name).cloned().flatten() else {
            return Ok(MetaFetch::FetchFailed);
        };
        let (u, p) = (url.to_owned(), pin.to_owned());
        let file = blocking(move || {
            if !git.has_commit(&p)? {
                // Not on any branch or tag: ask for the commit itself.
                let _ = git.run(&["fetch", "--quiet", "--no-write-fetch-head", &u, &p]);
                if !git.has_commit(&p)? {
                    return Ok(None);
                }
            }
            git.show_file(&p, "meta/libraries.json").map(Some)
        })
        .await?;
        Ok(match file {
            None => MetaFetch::CommitNotFound,
            Some(None) => MetaFetch::NoMeta,
            Some(Some(bytes)) => MetaFetch::Found(bytes),
        })
    }

    fn reads_includes(&self) -> bool {
        true
    }

    async fn includes(
        &mut self,
        name: &str,
        pin: &str,
    ) -> Result<Option<Includes>, BoostLibrariesError> {
        let Some(git) = self.mirrors.get(name).cloned().flatten() else {
            // The fetch failed (recorded as `fetch_failed`): nothing to read.
            return Ok(Some(Includes::new()));
        };
        let p = pin.to_owned();
        let out = blocking(move || {
            if !git.has_commit(&p)? {
                return Ok(Vec::new());
            }
            git.grep(&[
                "-I",
                "-z",
                "-E",
                r#"^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]boost/"#,
                &p,
                "--",
                "include",
                "src",
            ])
        })
        .await?;
        Ok(Some(parse_git_grep(&out, pin)))
    }
}
