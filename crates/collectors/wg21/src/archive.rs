//! Raw archive: every fetched index body is kept under
//! `<WORKSPACE_DIR>/raw/wg21-papers/<UTC timestamp>-index.json` with a
//! sidecar `<UTC timestamp>-index.meta.json`
//! (`{url, status, etag, last_modified, fetched_at, content_hash, bytes}`),
//! so a run can be replayed with `--from-archive` without the network.
//!
//! A body byte-identical to the newest archived one (same content hash) is
//! not stored again: a daily run against an unchanged index would otherwise
//! pile up identical copies. Files are written to a `.tmp` name and renamed,
//! the sidecar before the body, so a listed body always has its sidecar.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::source::Fetched;
use crate::{NAME, Wg21Error};

const BODY_SUFFIX: &str = "-index.json";
const META_SUFFIX: &str = "-index.meta.json";

/// The sidecar of one archived body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveMeta {
    pub url: String,
    pub status: Option<u16>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub fetched_at: DateTime<Utc>,
    #[serde(default)]
    pub content_hash: Option<String>,
    #[serde(default)]
    pub bytes: Option<u64>,
}

/// `<workspace>/raw/wg21-papers`.
pub fn archive_dir(workspace: &Path) -> PathBuf {
    workspace.join("raw").join(NAME)
}

fn meta_path_for(body: &Path) -> Option<PathBuf> {
    let name = body.file_name()?.to_str()?;
    let stem = name.strip_suffix(BODY_SUFFIX)?;
    Some(body.with_file_name(format!("{stem}{META_SUFFIX}")))
}

/// Bodies in `dir`, newest last (names start with a sortable UTC timestamp).
async fn list_bodies(dir: &Path) -> Result<Vec<PathBuf>, Wg21Error> {
    let io_err = |action, source| Wg21Error::Archive {
        path: dir.to_path_buf(),
        action,
        source,
    };
    let mut rd = match tokio::fs::read_dir(dir).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("listing", e)),
    };
    let mut out = Vec::new();
    while let Some(entry) = rd.next_entry().await.map_err(|e| io_err("listing", e))? {
        let path = entry.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(BODY_SUFFIX))
        {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

async fn read_meta(path: &Path) -> Result<ArchiveMeta, Wg21Error> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|source| Wg21Error::Archive {
            path: path.to_path_buf(),
            action: "reading",
            source,
        })?;
    serde_json::from_slice(&bytes).map_err(|source| Wg21Error::ArchiveMeta {
        path: path.to_path_buf(),
        source,
    })
}

async fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Wg21Error> {
    let tmp = path.with_extension("tmp");
    let err = |action, source| Wg21Error::Archive {
        path: path.to_path_buf(),
        action,
        source,
    };
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(|e| err("writing", e))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| err("renaming into place", e))
}

/// Store `fetched` unless the newest archived body has the same content
/// hash. Returns the body's path when something was written.
pub async fn store(
    dir: &Path,
    fetched: &Fetched,
    content_hash: &str,
) -> Result<Option<PathBuf>, Wg21Error> {
    if let Some(newest) = list_bodies(dir).await?.pop()
        && let Some(meta_path) = meta_path_for(&newest)
        && let Ok(meta) = read_meta(&meta_path).await
        && meta.content_hash.as_deref() == Some(content_hash)
    {
        tracing::debug!(path = %newest.display(), "index body identical to the newest archive; not stored again");
        return Ok(None);
    }
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|source| Wg21Error::Archive {
            path: dir.to_path_buf(),
            action: "creating the directory",
            source,
        })?;
    let stamp = fetched.fetched_at.format("%Y%m%dT%H%M%S%.6fZ").to_string();
    let body_path = dir.join(format!("{stamp}{BODY_SUFFIX}"));
    let meta_path = dir.join(format!("{stamp}{META_SUFFIX}"));
    let meta = ArchiveMeta {
        url: fetched.url.clone(),
        status: fetched.status,
        etag: fetched.etag.clone(),
        last_modified: fetched.last_modified.clone(),
        fetched_at: fetched.fetched_at,
        content_hash: Some(content_hash.to_owned()),
        bytes: Some(fetched.body.len() as u64),
    };
    let meta_json = serde_json::to_vec_pretty(&meta).map_err(|source| Wg21Error::ArchiveMeta {
        path: meta_path.clone(),
        source,
    })?;
    write_atomically(&meta_path, &meta_json).await?;
    write_atomically(&body_path, &fetched.body).await?;
    tracing::debug!(path = %body_path.display(), bytes = fetched.body.len(), "index body archived");
    Ok(Some(body_path))
}

/// The newest archived body with its metadata, as a [`Fetched`].
pub async fn newest(dir: &Path) -> Result<(PathBuf, Fetched), Wg21Error> {
    let Some(body_path) = list_bodies(dir).await?.pop() else {
        return Err(Wg21Error::NoArchive {
            dir: dir.to_path_buf(),
        });
    };
    let meta_path = meta_path_for(&body_path).ok_or_else(|| Wg21Error::NoArchive {
        dir: dir.to_path_buf(),
    })?;
    let meta = read_meta(&meta_path).await?;
    let body = tokio::fs::read(&body_path)
        .await
        .map_err(|source| Wg21Error::Archive {
            path: body_path.clone(),
            action: "reading",
            source,
        })?;
    Ok((
        body_path,
        Fetched {
            body,
            url: meta.url,
            status: meta.status,
            etag: meta.etag,
            last_modified: meta.last_modified,
            fetched_at: meta.fetched_at,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetched(body: &[u8], secs: i64) -> Fetched {
        Fetched {
            body: body.to_vec(),
            url: "https://example.invalid/index.json".into(),
            status: Some(200),
            etag: Some("\"v1\"".into()),
            last_modified: None,
            fetched_at: DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap(),
        }
    }

    #[tokio::test]
    async fn stores_dedupes_and_returns_newest() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = archive_dir(tmp.path());
        assert!(matches!(
            newest(&dir).await,
            Err(Wg21Error::NoArchive { .. })
        ));
        let first = store(&dir, &fetched(b"{}", 0), "h1").await.unwrap();
        assert!(first.is_some());
        assert!(
            store(&dir, &fetched(b"{}", 1), "h1")
                .await
                .unwrap()
                .is_none()
        );
        let second = store(&dir, &fetched(b"{\"a\":1}", 2), "h2")
            .await
            .unwrap()
            .unwrap();
        let (path, f) = newest(&dir).await.unwrap();
        assert_eq!(path, second);
        assert_eq!(f.body, b"{\"a\":1}");
        assert_eq!(f.etag.as_deref(), Some("\"v1\""));
        assert!(
            path.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("20231114T22"),
            "{path:?}"
        );
        let meta = meta_path_for(&path).unwrap();
        assert!(meta.exists());
    }
}
