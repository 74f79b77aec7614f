//! Mailman 2 / pipermail monthly archives.
//!
//! A list's archive root (e.g. `https://lists.boost.org/Archives/boost/`)
//! serves an index page linking one file per month, `YYYY-Month.txt.gz`
//! (or plain `YYYY-Month.txt`), each an mbox with obfuscated addresses
//! (`local at domain`, undone by [`crate::legacy::deobfuscate`]).
//!
//! `--pipermail-url URL` reads the index, then fetches each month like the
//! HyperKitty path: conditional requests (`If-None-Match` /
//! `If-Modified-Since` from the month's checkpoint, scope
//! `pipermail:<list>:<YYYY-MM>`), gzip or plain bodies, one checkpoint per
//! month moved with its last batch, raw bodies archived under
//! `<WORKSPACE_DIR>/raw/mailing-list/pipermail-<list>/` for `--from-archive`.

use std::collections::BTreeMap;

use crate::MailError;
use crate::hyperkitty::Month;

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// `2004-March.txt.gz` → (2004-03, gzipped).
fn month_file(name: &str) -> Option<(Month, bool)> {
    let (stem, gz) = match name.strip_suffix(".txt.gz") {
        Some(s) => (s, true),
        None => (name.strip_suffix(".txt")?, false),
    };
    let (y, m) = stem.split_once('-')?;
    if y.len() != 4 || !y.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = y.parse().ok()?;
    let lower = m.to_ascii_lowercase();
    let month = MONTHS.iter().position(|n| *n == lower)? as u32 + 1;
    Some((Month { year, month }, gz))
}

/// The monthly files linked from an index page, oldest first, as
/// (month, absolute URL); a `.txt.gz` link wins over a `.txt` one.
pub fn parse_index(base: &str, html: &str) -> Vec<(Month, String)> {
    let mut found: BTreeMap<Month, (bool, String)> = BTreeMap::new();
    let lower = html.to_ascii_lowercase();
    let mut rest = 0;
    while let Some(i) = lower[rest..].find("href=") {
        let start = rest + i + 5;
        let bytes = html.as_bytes();
        let (open, close) = match bytes.get(start) {
            Some(b'"') => (start + 1, b'"'),
            Some(b'\'') => (start + 1, b'\''),
            _ => (start, b'>'),
        };
        let end = html[open..]
            .bytes()
            .position(|b| b == close || (close == b'>' && b.is_ascii_whitespace()))
            .map_or(html.len(), |p| open + p);
        let href = html[open..end].trim();
        let name = href.rsplit('/').next().unwrap_or(href);
        if let Some((month, gz)) = month_file(name) {
            let url = if href.starts_with("http://") || href.starts_with("https://") {
                href.to_owned()
            } else {
                format!(
                    "{}/{}",
                    base.trim_end_matches('/'),
                    href.trim_start_matches("./")
                )
            };
            let keep = found.get(&month).is_none_or(|(had_gz, _)| gz && !had_gz);
            if keep {
                found.insert(month, (gz, url));
            }
        }
        rest = end.max(start);
    }
    found.into_iter().map(|(m, (_, u))| (m, u)).collect()
}

/// The list name of a pipermail root: its last path segment
/// (`…/Archives/boost-users/` → `boost-users`).
pub fn list_from_url(url: &str) -> Result<String, MailError> {
    let name = url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_owned();
    if name.is_empty() || name.contains(':') {
        return Err(MailError::Value {
            field: "--pipermail-url",
            value: url.to_owned(),
            reason: "cannot take the list name from it; give --list NAME".into(),
        });
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_links() {
        let html = r#"<table><tr><td>March 2004:</td><td><A href="2004-March/thread.html">[ Thread ]</a>
<A href="2004-March.txt.gz">[ Gzip'd Text 2 KB ]</a></td></tr>
<tr><td><a href="2003-December.txt">text</a> <a href='2003-December.txt.gz'>gz</a>
<a href="https://x.org/a/2003-November.txt">abs</a> <a href=2003-October.txt>bare</a>
<a href="2003-Foo.txt.gz">bad</a></td></tr></table>"#;
        let months: Vec<(String, String)> = parse_index("http://h/Archives/boost/", html)
            .into_iter()
            .map(|(m, u)| (m.to_string(), u))
            .collect();
        assert_eq!(
            months,
            vec![
                (
                    "2003-10".into(),
                    "http://h/Archives/boost/2003-October.txt".into()
                ),
                ("2003-11".into(), "https://x.org/a/2003-November.txt".into()),
                (
                    "2003-12".into(),
                    "http://h/Archives/boost/2003-December.txt.gz".into()
                ),
                (
                    "2004-03".into(),
                    "http://h/Archives/boost/2004-March.txt.gz".into()
                ),
            ]
        );
        assert_eq!(
            list_from_url("https://lists.boost.org/Archives/boost/").unwrap(),
            "boost"
        );
    }
}
