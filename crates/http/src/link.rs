//! `Link` header parsing (RFC 8288, as GitHub uses it for pagination).

/// The URL of relation `rel` in a `Link` header value, e.g.
/// `<https://api.github.com/…&page=2>; rel="next", <…>; rel="last"`.
pub fn find_rel(header: &str, rel: &str) -> Option<String> {
    for part in header.split(',') {
        let part = part.trim();
        let Some(end) = part.find('>') else { continue };
        let Some(url) = part.get(..end).and_then(|s| s.strip_prefix('<')) else {
            continue;
        };
        let params = part.get(end + 1..).unwrap_or("");
        let matches = params.split(';').any(|p| {
            let p = p.trim();
            p.strip_prefix("rel=")
                .map(|v| v.trim_matches('"'))
                .is_some_and(|v| v.split_whitespace().any(|r| r == rel))
        });
        if matches {
            return Some(url.trim().to_owned());
        }
    }
    None
}

/// The `rel="next"` URL.
pub fn next(header: &str) -> Option<String> {
    find_rel(header, "next")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_style() {
        let h = r#"<https://api.github.com/repositories/1/issues?page=2>; rel="next", <https://api.github.com/repositories/1/issues?page=5>; rel="last""#;
        assert_eq!(
            next(h).as_deref(),
            Some("https://api.github.com/repositories/1/issues?page=2")
        );
        assert_eq!(
            find_rel(h, "last").as_deref(),
            Some("https://api.github.com/repositories/1/issues?page=5")
        );
        assert_eq!(find_rel(h, "prev"), None);
        assert_eq!(next(""), None);
        assert_eq!(next("garbage"), None);
        assert_eq!(
            next(r#"<http://a/b>; rel="prev next""#).as_deref(),
            Some("http://a/b")
        );
    }
}
