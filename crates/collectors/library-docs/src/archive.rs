//! Release source archives (`--use-local`): finding `boost_<1_NN_0>.*`,
//! and extracting the HTML under `libs/` safely. An entry whose path
//! escapes the destination (`../`, an absolute path, a drive letter) and
//! every link entry (symbolic or hard) is refused and counted, never
//! written; files are written to a temporary name and renamed, and the
//! whole tree is extracted into `<dest>.partial` and renamed to `<dest>`
//! only once complete, so an interrupted extraction is never mistaken for
//! a finished one.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::LibraryDocsError;

/// Supported archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Zip,
    TarGz,
    TarBz2,
    TarXz,
}

/// File name suffixes tried, in this order.
pub const SUFFIXES: &[(&str, ArchiveKind)] = &[
    (".tar.gz", ArchiveKind::TarGz),
    (".tgz", ArchiveKind::TarGz),
    (".tar.bz2", ArchiveKind::TarBz2),
    (".tar.xz", ArchiveKind::TarXz),
    (".zip", ArchiveKind::Zip),
];

/// Largest single file extracted (a bigger "HTML page" is skipped).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// `boost_<version>.<suffix>` in `dir`, if present.
pub fn find_archive(dir: &Path, version: &str) -> Option<(PathBuf, ArchiveKind)> {
    SUFFIXES.iter().find_map(|(suffix, kind)| {
        let p = dir.join(format!("boost_{version}{suffix}"));
        p.is_file().then_some((p, *kind))
    })
}

/// What an extraction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// HTML files written.
    pub extracted: u64,
    /// Entries refused: paths escaping the root, symbolic or hard links.
    pub unsafe_entries: u64,
    /// HTML files over [`MAX_FILE_BYTES`].
    pub too_large: u64,
}

/// The entry path relative to the release root, or `None` when it
/// escapes the root (absolute, drive letter, `..`). The release root is
/// the archive's top folder (`boost_1_86_0/`) when there is one.
pub fn safe_relative(raw: &str) -> Option<String> {
    if raw.starts_with('/') || raw.starts_with('\\') {
        return None;
    }
    let parts: Vec<&str> = raw
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.iter().any(|p| *p == ".." || p.contains(':')) {
        return None;
    }
    let parts = match parts.first() {
        Some(first) if first.starts_with("boost_") || first.starts_with("boost-") => &parts[1..],
        _ => &parts[..],
    };
    Some(parts.join("/"))
}

/// True for the entries `--use-local` needs: HTML under `libs/`.
pub fn wanted(rel: &str) -> bool {
    let lower = rel.to_ascii_lowercase();
    lower.starts_with("libs/") && (lower.ends_with(".html") || lower.ends_with(".htm"))
}

fn io_err(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> LibraryDocsError {
    let path = path.to_path_buf();
    move |source| LibraryDocsError::Io {
        path,
        action,
        source,
    }
}

fn bad_archive(path: &Path, e: impl std::fmt::Display) -> LibraryDocsError {
    LibraryDocsError::Archive {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Write `reader` to `root/rel` through a temporary file and a rename.
fn write_entry(root: &Path, rel: &str, reader: &mut dyn Read) -> Result<(), LibraryDocsError> {
    let target = root.join(rel);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent, "creating a directory"))?;
    }
    let tmp = target.with_extension("part~");
    {
        let mut f = File::create(&tmp).map_err(io_err(&tmp, "creating"))?;
        std::io::copy(reader, &mut f).map_err(io_err(&tmp, "writing"))?;
        f.flush().map_err(io_err(&tmp, "writing"))?;
    }
    std::fs::rename(&tmp, &target).map_err(io_err(&target, "renaming into place"))
}

/// Extract the HTML under `libs/` of `archive` into `dest` (replacing a
/// leftover `<dest>.partial` of an interrupted run). Blocking.
pub fn extract(
    archive: &Path,
    kind: ArchiveKind,
    dest: &Path,
) -> Result<ExtractStats, LibraryDocsError> {
    let mut partial = dest.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .map_err(io_err(&partial, "removing a partial extraction"))?;
    }
    std::fs::create_dir_all(&partial).map_err(io_err(&partial, "creating"))?;
    let stats = extract_into(archive, kind, &partial).inspect_err(|_| {
        // Best effort: a later run removes a leftover `.partial` anyway.
        let _ = std::fs::remove_dir_all(&partial);
    })?;
    std::fs::rename(&partial, dest).map_err(io_err(dest, "moving the extraction into place"))?;
    Ok(stats)
}

fn extract_into(
    archive: &Path,
    kind: ArchiveKind,
    partial: &Path,
) -> Result<ExtractStats, LibraryDocsError> {
    let file = File::open(archive).map_err(io_err(archive, "opening"))?;
    let stats = match kind {
        ArchiveKind::Zip => extract_zip(archive, file, partial)?,
        ArchiveKind::TarGz => extract_tar(
            archive,
            flate2::read::MultiGzDecoder::new(BufReader::new(file)),
            partial,
        )?,
        ArchiveKind::TarBz2 => extract_tar(
            archive,
            bzip2::read::MultiBzDecoder::new(BufReader::new(file)),
            partial,
        )?,
        ArchiveKind::TarXz => extract_tar(
            archive,
            lzma_rust2::XzReader::new(BufReader::new(file), true),
            partial,
        )?,
    };
    Ok(stats)
}

fn extract_tar(
    archive: &Path,
    reader: impl Read,
    root: &Path,
) -> Result<ExtractStats, LibraryDocsError> {
    let mut stats = ExtractStats::default();
    let mut ar = tar::Archive::new(reader);
    let entries = ar.entries().map_err(|e| bad_archive(archive, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad_archive(archive, e))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let ty = entry.header().entry_type();
        let Some(rel) = safe_relative(&raw) else {
            stats.unsafe_entries += 1;
            tracing::warn!(archive = %archive.display(), entry = %raw, "archive entry escapes the root; refused");
            continue;
        };
        if ty.is_symlink() || ty.is_hard_link() {
            stats.unsafe_entries += 1;
            tracing::warn!(archive = %archive.display(), entry = %raw, "link entry in the archive; refused");
            continue;
        }
        if !ty.is_file() || !wanted(&rel) {
            continue;
        }
        if entry.size() > MAX_FILE_BYTES {
            stats.too_large += 1;
            continue;
        }
        write_entry(root, &rel, &mut (&mut entry).take(MAX_FILE_BYTES))?;
        stats.extracted += 1;
    }
    Ok(stats)
}

fn extract_zip(archive: &Path, file: File, root: &Path) -> Result<ExtractStats, LibraryDocsError> {
    let mut stats = ExtractStats::default();
    let mut zip =
        zip::ZipArchive::new(BufReader::new(file)).map_err(|e| bad_archive(archive, e))?;
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).map_err(|e| bad_archive(archive, e))?;
        let raw = String::from_utf8_lossy(f.name_raw()).into_owned();
        let Some(rel) = safe_relative(&raw) else {
            stats.unsafe_entries += 1;
            tracing::warn!(archive = %archive.display(), entry = %raw, "archive entry escapes the root; refused");
            continue;
        };
        if f.is_symlink() {
            stats.unsafe_entries += 1;
            tracing::warn!(archive = %archive.display(), entry = %raw, "link entry in the archive; refused");
            continue;
        }
        if f.is_dir() || !wanted(&rel) {
            continue;
        }
        if f.size() > MAX_FILE_BYTES {
            stats.too_large += 1;
            continue;
        }
        write_entry(root, &rel, &mut (&mut f).take(MAX_FILE_BYTES)).map_err(|e| match e {
            LibraryDocsError::Io {
                source,
                path,
                action,
            } if source.kind() == std::io::ErrorKind::InvalidData => {
                bad_archive(archive, format!("{action} {}: {source}", path.display()))
            }
            other => other,
        })?;
        stats.extracted += 1;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            safe_relative("boost_1_86_0/libs/json/index.html").as_deref(),
            Some("libs/json/index.html")
        );
        assert_eq!(
            safe_relative("libs/./json/x.html").as_deref(),
            Some("libs/json/x.html")
        );
        for bad in [
            "/etc/passwd",
            "../x.html",
            "boost_1_86_0/../../x.html",
            "boost_1_86_0/libs/..\\..\\x.html",
            "C:/x.html",
            "\\\\server\\x",
        ] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
        assert!(wanted("libs/json/doc/html/index.html"));
        assert!(!wanted("boost/json.hpp"));
        assert!(!wanted("doc/html/json.html"));
    }
}
