//! Where the catalog comes from: the [`CatalogSource`] extension point and
//! its two implementations, a git clone of the superproject
//! ([`git::GitCatalog`], the default) and the GitHub REST API
//! ([`github::GithubCatalog`], `--source github`: tags, trees and contents,
//! with conditional requests so an unchanged catalog costs no rate-limit
//! point).
//!
//! A source answers four questions; `lib.rs` turns the answers into
//! release rows, change records and checkpoints the same way for both.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::BoostLibrariesError;
use crate::deps::Includes;

pub mod git;
pub mod github;

/// The superproject at one release commit.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Committer date of the release commit.
    pub released_at: DateTime<Utc>,
    /// `.gitmodules` at that commit (empty when there is none).
    pub gitmodules: Vec<u8>,
    /// Gitlinks: submodule path → pinned commit.
    pub gitlinks: HashMap<String, String>,
}

/// What a submodule's `meta/libraries.json` lookup found. Everything but
/// [`MetaFetch::Found`] is recorded in `bl_submodules.meta_status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaFetch {
    /// The submodule repository could not be fetched (`fetch_failed`).
    FetchFailed,
    /// The pinned commit does not exist there (`commit_not_found`).
    CommitNotFound,
    /// No `meta/libraries.json` at the pinned commit (`no_meta`).
    NoMeta,
    /// The file's bytes.
    Found(Vec<u8>),
}

/// The extension point: a place the Boost superproject and its libraries
/// can be read from.
#[async_trait]
pub trait CatalogSource: Send {
    /// The URL relative submodule URLs (`../config.git`) resolve against.
    fn submodule_base(&self) -> String;

    /// Every `boost-X.Y.Z` tag (betas and release candidates excluded), in
    /// any order.
    async fn release_tags(&mut self) -> Result<Vec<String>, BoostLibrariesError>;

    /// The commit `release` (a tag or any ref) points at; `None` when it
    /// does not exist.
    async fn resolve(&mut self, release: &str) -> Result<Option<String>, BoostLibrariesError>;

    /// The superproject at `sha` (the commit `release` resolved to).
    async fn snapshot(&mut self, release: &str, sha: &str)
    -> Result<Snapshot, BoostLibrariesError>;

    /// `meta/libraries.json` of submodule `name` (repository `url`, already
    /// resolved) at commit `pin`. Problems with one submodule are a
    /// [`MetaFetch`] value, not an error; errors abort the run (nothing of
    /// the release being recorded is written).
    async fn library_meta(
        &mut self,
        name: &str,
        url: &str,
        pin: &str,
    ) -> Result<MetaFetch, BoostLibrariesError>;

    /// Whether [`includes`](Self::includes) reads anything (the dependency
    /// scan runs, and an unchanged release scanned by an older build is
    /// scanned once more).
    fn reads_includes(&self) -> bool {
        false
    }

    /// The `#include <boost/...>` lines under `include/` and `src/` of
    /// submodule `name` at `pin` (called after
    /// [`library_meta`](Self::library_meta) for the same submodule).
    /// `None` when this source does not read file contents: the GitHub
    /// source would need one request per file, so its releases keep no
    /// dependencies.
    async fn includes(
        &mut self,
        _name: &str,
        _pin: &str,
    ) -> Result<Option<Includes>, BoostLibrariesError> {
        Ok(None)
    }
}

/// A release commit's ISO 8601 date.
pub fn parse_release_date(release: &str, date: &str) -> Result<DateTime<Utc>, BoostLibrariesError> {
    DateTime::parse_from_rfc3339(date)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| BoostLibrariesError::Date {
            release: release.to_owned(),
            value: date.to_owned(),
        })
}

/// `boost-X.Y.Z` release tags only: betas and release candidates are not
/// releases.
pub fn is_release_tag(tag: &str) -> bool {
    tag.starts_with("boost-") && !tag.contains("beta") && !tag.contains("rc")
}
