//! Parsing `git log -z --numstat` records produced with [`LOG_ARGS`].
//!
//! One record (the bytes after a `\x1e` marker):
//! `sha \x1f parents \x1f an \x1f ae \x1f aI \x1f cn \x1f ce \x1f cI \x1f body \x1f \0`
//! then, when the commit has a diff, `\n` and numstat entries, each
//! `added \t deleted \t path \0` or, for a rename,
//! `added \t deleted \t \0 old \0 new \0`; binary files have `-` counts.
//! Merge commits have no numstat (git shows no diff for merges by default).

use chrono::{DateTime, Utc};

/// Arguments that produce the records [`parse_record`] reads.
pub const LOG_ARGS: &[&str] = &[
    "-z",
    "--numstat",
    "-M",
    "--no-color",
    "--encoding=UTF-8",
    "--format=%x1e%H%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%cn%x1f%ce%x1f%cI%x1f%B%x1f",
];

/// One changed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    /// The path before a rename.
    pub old_path: Option<String>,
    /// `None` for binary files.
    pub insertions: Option<u64>,
    pub deletions: Option<u64>,
}

/// One commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub sha: String,
    pub parents: Vec<String>,
    pub author_name: String,
    pub author_email: String,
    pub authored_at: DateTime<Utc>,
    pub committer_name: String,
    pub committer_email: String,
    pub committed_at: DateTime<Utc>,
    pub message: String,
    pub files: Vec<FileChange>,
}

impl Commit {
    pub fn insertions(&self) -> u64 {
        self.files.iter().filter_map(|f| f.insertions).sum()
    }
    pub fn deletions(&self) -> u64 {
        self.files.iter().filter_map(|f| f.deletions).sum()
    }
    /// First line of the message.
    pub fn summary(&self) -> &str {
        self.message.lines().next().unwrap_or("").trim()
    }
}

/// A record that could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("git log record {sha}: {detail}")]
pub struct RecordError {
    pub sha: String,
    pub detail: String,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn date(sha: &str, field: &str, b: &[u8]) -> Result<DateTime<Utc>, RecordError> {
    let s = text(b);
    DateTime::parse_from_rfc3339(s.trim())
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| RecordError {
            sha: sha.to_owned(),
            detail: format!("{field} {s:?} is not an ISO 8601 date: {e}"),
        })
}

fn count(b: &str) -> Option<u64> {
    b.parse().ok()
}

/// Parse one record (without its `\x1e` marker).
pub fn parse_record(rec: &[u8]) -> Result<Commit, RecordError> {
    let mut parts = rec.splitn(10, |b| *b == 0x1f);
    let mut next = || parts.next().unwrap_or(&[]);
    let sha = text(next()).trim().to_owned();
    let err = |detail: String| RecordError {
        sha: sha.clone(),
        detail,
    };
    if sha.len() < 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err(format!("bad commit id {sha:?}")));
    }
    let parents = text(next()).split_whitespace().map(str::to_owned).collect();
    let author_name = text(next());
    let author_email = text(next());
    let authored_at = date(&sha, "author date", next())?;
    let committer_name = text(next());
    let committer_email = text(next());
    let committed_at = date(&sha, "committer date", next())?;
    let message = text(next()).trim_end().to_owned();
    let rest = next();
    let mut files = Vec::new();
    let mut tokens = rest
        .split(|b| *b == 0)
        .map(|t| t.strip_prefix(b"\n").unwrap_or(t))
        .filter(|t| !t.is_empty());
    while let Some(tok) = tokens.next() {
        let t = text(tok);
        let mut f = t.splitn(3, '\t');
        let (Some(a), Some(d), Some(p)) = (f.next(), f.next(), f.next()) else {
            return Err(err(format!("bad numstat entry {t:?}")));
        };
        let (path, old_path) = if p.is_empty() {
            let old = tokens.next().map(text);
            let new = tokens.next().map(text);
            match (old, new) {
                (Some(o), Some(n)) => (n, Some(o)),
                _ => return Err(err(format!("truncated rename entry {t:?}"))),
            }
        } else {
            (p.to_owned(), None)
        };
        files.push(FileChange {
            path,
            old_path,
            insertions: count(a),
            deletions: count(d),
        });
    }
    Ok(Commit {
        sha,
        parents,
        author_name,
        author_email,
        authored_at,
        committer_name,
        committer_email,
        committed_at,
        message,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_rename_binary_and_merge() {
        let sha = "a".repeat(40);
        let rec = format!(
            "{sha}\x1f{p}\x1fA B\x1fa@b\x1f2024-01-02T03:04:05+01:00\x1fC\x1fc@d\x1f2024-01-02T03:04:06Z\x1ffirst\n\nbody\n\x1f\0\n2\t1\t\0old.txt\0new.txt\0-\t-\tb.bin\03\t0\tx y.txt\0",
            p = "b".repeat(40)
        );
        let c = parse_record(rec.as_bytes()).unwrap();
        assert_eq!(c.parents.len(), 1);
        assert_eq!(c.summary(), "first");
        assert_eq!(c.message, "first\n\nbody");
        assert_eq!(c.authored_at.to_rfc3339(), "2024-01-02T02:04:05+00:00");
        assert_eq!(c.files.len(), 3);
        assert_eq!(c.files[0].old_path.as_deref(), Some("old.txt"));
        assert_eq!(c.files[0].path, "new.txt");
        assert_eq!(c.files[1].insertions, None);
        assert_eq!(c.files[2].path, "x y.txt");
        assert_eq!((c.insertions(), c.deletions()), (5, 1));
        let merge = format!(
            "{sha}\x1f{sha} {sha}\x1fA\x1fa\x1f2024-01-02T03:04:05Z\x1fA\x1fa\x1f2024-01-02T03:04:05Z\x1fMerge\n\x1f\0"
        );
        assert!(parse_record(merge.as_bytes()).unwrap().files.is_empty());
        assert!(parse_record(b"nonsense").is_err());
    }
}
