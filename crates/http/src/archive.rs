//! The raw archive: every fetched response body, gzip-compressed, under
//! `<WORKSPACE_DIR>/raw/<collector>/bodies/<YYYYMMDD>/<stamp>-<urlhash>.gz`,
//! with one JSON line per body in `<WORKSPACE_DIR>/raw/<collector>/index.jsonl`
//! ([`ArchiveEntry`]: URL, status, headers, fetch time, file, size).
//!
//! The body file is written (to a temporary name, then renamed) before its
//! index line is appended, so every indexed entry has its body; a torn last
//! line (a crash mid-append) is skipped with a warning when reading.
//! [`ArchiveIndex`] keeps the newest entry per URL, in fetch order, so a
//! replay re-parses exactly what the last runs saw, without the network.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::error::HttpError;

/// Gzip-compress `bytes` (pure-Rust miniz_oxide backend).
pub fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    enc.write_all(bytes)?;
    enc.finish()
}

/// Decompress a gzip stream.
pub fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() * 4);
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

/// One archived response (one line of `index.jsonl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveEntry {
    pub url: String,
    pub status: u16,
    /// Selected response headers (lower-case names): `etag`,
    /// `last-modified`, `link`, `content-type`, `x-ratelimit-*`, `date`.
    pub headers: BTreeMap<String, String>,
    pub fetched_at: DateTime<Utc>,
    /// Body file, relative to the collector's archive directory.
    pub file: String,
    /// Uncompressed body size.
    pub bytes: u64,
}

/// The archive of one collector.
#[derive(Debug)]
pub struct RawArchive {
    dir: PathBuf,
    lock: tokio::sync::Mutex<u64>,
}

impl RawArchive {
    /// `<workspace>/raw/<collector>`.
    pub fn new(workspace: &Path, collector: &str) -> Self {
        RawArchive {
            dir: workspace.join("raw").join(collector),
            lock: tokio::sync::Mutex::new(0),
        }
    }

    /// An archive in `dir` itself (e.g. recorded responses bundled with
    /// the examples, replayed with `--archive-dir`).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        RawArchive {
            dir: dir.into(),
            lock: tokio::sync::Mutex::new(0),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.jsonl")
    }

    /// Store one body with its metadata; returns the entry.
    pub async fn store(
        &self,
        url: &str,
        status: u16,
        headers: BTreeMap<String, String>,
        body: &[u8],
        fetched_at: DateTime<Utc>,
    ) -> Result<ArchiveEntry, HttpError> {
        let mut seq = self.lock.lock().await;
        *seq += 1;
        let day = fetched_at.format("%Y%m%d").to_string();
        let stamp = fetched_at.format("%Y%m%dT%H%M%S%.6fZ");
        let file = format!(
            "bodies/{day}/{stamp}-{:016x}-{}.gz",
            crate::fnv1a64(url.as_bytes()),
            *seq
        );
        let path = self.dir.join(&file);
        let io = |path: &Path, action: &'static str| {
            let path = path.to_path_buf();
            move |source| HttpError::Archive {
                path,
                action,
                source,
            }
        };
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(io(parent, "creating the directory"))?;
        }
        let gz = gzip(body).map_err(io(&path, "compressing"))?;
        let tmp = path.with_extension("tmp");
        tokio::fs::write(&tmp, &gz)
            .await
            .map_err(io(&tmp, "writing"))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(io(&path, "renaming into place"))?;
        let entry = ArchiveEntry {
            url: url.to_owned(),
            status,
            headers,
            fetched_at,
            file,
            bytes: body.len() as u64,
        };
        let index = self.index_path();
        let mut line = serde_json::to_vec(&entry).map_err(|source| HttpError::ArchiveMeta {
            path: index.clone(),
            source,
        })?;
        line.push(b'\n');
        let mut f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&index)
            .await
            .map_err(io(&index, "opening"))?;
        f.write_all(&line).await.map_err(io(&index, "appending"))?;
        f.flush().await.map_err(io(&index, "flushing"))?;
        Ok(entry)
    }

    /// Read the index: the newest entry per URL, in fetch order. An
    /// archive that does not exist yet is empty.
    pub async fn index(&self) -> Result<ArchiveIndex, HttpError> {
        let path = self.index_path();
        let text = match tokio::fs::read(&path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(HttpError::Archive {
                    path,
                    action: "reading",
                    source,
                });
            }
        };
        let mut entries: Vec<ArchiveEntry> = Vec::new();
        let mut skipped = 0u64;
        for (n, line) in text.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<ArchiveEntry>(line) {
                Ok(e) => entries.push(e),
                Err(e) => {
                    skipped += 1;
                    tracing::warn!(path = %path.display(), line = n + 1, error = %e, "unreadable archive index line skipped");
                }
            }
        }
        let mut newest: HashMap<String, usize> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            newest.insert(e.url.clone(), i);
        }
        let mut latest: Vec<ArchiveEntry> = Vec::with_capacity(newest.len());
        for (i, e) in entries.into_iter().enumerate() {
            if newest.get(&e.url) == Some(&i) {
                latest.push(e);
            }
        }
        let by_url = latest
            .iter()
            .enumerate()
            .map(|(i, e)| (e.url.clone(), i))
            .collect();
        Ok(ArchiveIndex {
            entries: latest,
            by_url,
            skipped_lines: skipped,
        })
    }

    /// The (decompressed) body of an entry.
    pub async fn body(&self, entry: &ArchiveEntry) -> Result<Vec<u8>, HttpError> {
        let path = self.dir.join(&entry.file);
        let gz = tokio::fs::read(&path)
            .await
            .map_err(|source| HttpError::Archive {
                path: path.clone(),
                action: "reading",
                source,
            })?;
        gunzip(&gz).map_err(|source| HttpError::Archive {
            path,
            action: "decompressing",
            source,
        })
    }
}

/// The newest archived response per URL.
#[derive(Debug, Clone, Default)]
pub struct ArchiveIndex {
    entries: Vec<ArchiveEntry>,
    by_url: HashMap<String, usize>,
    /// Index lines that could not be read (a torn write).
    pub skipped_lines: u64,
}

impl ArchiveIndex {
    /// Entries in fetch order (oldest first), one per URL.
    pub fn entries(&self) -> &[ArchiveEntry] {
        &self.entries
    }

    pub fn get(&self, url: &str) -> Option<&ArchiveEntry> {
        self.by_url.get(url).and_then(|i| self.entries.get(*i))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn store_and_index() {
        let tmp = tempfile::tempdir().unwrap();
        let a = RawArchive::new(tmp.path(), "x");
        assert!(a.index().await.unwrap().is_empty());
        let t = Utc::now();
        let mut h = BTreeMap::new();
        h.insert("etag".to_owned(), "\"1\"".to_owned());
        a.store("http://h/a", 200, h.clone(), b"[1]", t)
            .await
            .unwrap();
        a.store("http://h/b", 200, h.clone(), b"[2]", t)
            .await
            .unwrap();
        a.store("http://h/a", 200, h, b"[3]", t).await.unwrap();
        // A torn line is skipped.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(a.dir().join("index.jsonl"))
            .unwrap();
        f.write_all(b"{\"url\":").unwrap();
        let idx = a.index().await.unwrap();
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.skipped_lines, 1);
        assert_eq!(idx.entries()[0].url, "http://h/b");
        let e = idx.get("http://h/a").unwrap();
        assert_eq!(a.body(e).await.unwrap(), b"[3]");
        assert_eq!(e.headers["etag"], "\"1\"");
    }

    #[test]
    fn gzip_round_trip() {
        let data = b"hello hello hello hello".repeat(100);
        let gz = gzip(&data).unwrap();
        assert!(gz.len() < data.len());
        assert_eq!(gunzip(&gz).unwrap(), data);
    }
}
