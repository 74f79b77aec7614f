//! Real-archive repairs before and after MIME parsing.
//!
//! * **Obfuscated addresses** (Mailman 2 / pipermail): `From: goran at
//!   domain.com (Göran Lastname)`, also `local at domain dot tld`, become
//!   `goran@domain.com (Göran Lastname)` ([`deobfuscate`]).
//! * **Undeclared 8-bit charsets**: a header block, or the body of a
//!   single-part `8bit`/`7bit` message, that is not valid UTF-8 and whose
//!   charset is not declared (or unknown) is decoded by the first of: the
//!   message's declared charset, another part's declared charset,
//!   windows-1252 ([`repair_charsets`]). Which one was used is returned so
//!   the payload records it. The raw bytes are archived untouched.

use encoding_rs::{Encoding, WINDOWS_1252};

/// Rewrite `local at domain[ dot tld]…` as `local@domain[.tld]…` in an
/// address header value; `None` when nothing looks obfuscated.
pub fn deobfuscate(value: &str) -> Option<String> {
    if !value.contains(" at ") || value.contains('@') {
        return None;
    }
    let words: Vec<&str> = value.split(' ').collect();
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    let mut changed = false;
    let is_part = |w: &str| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_alphanumeric() || "._+-=!#$%&'*/?^`{|}~".contains(c))
    };
    while i < words.len() {
        if i + 2 < words.len()
            && words[i + 1] == "at"
            && is_part(words[i].trim_start_matches(['<', ',']))
            && is_part(words[i + 2].trim_end_matches(['>', ',']))
        {
            let mut addr = format!("{}@{}", words[i], words[i + 2]);
            i += 3;
            while i + 1 < words.len()
                && words[i] == "dot"
                && is_part(words[i + 1].trim_end_matches(['>', ',']))
            {
                addr.push('.');
                addr.push_str(words[i + 1]);
                i += 2;
            }
            out.push(addr);
            changed = true;
        } else {
            out.push(words[i].to_owned());
            i += 1;
        }
    }
    changed.then(|| out.join(" "))
}

/// Where a fallback decoding was used and which encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// `headers` or `body`.
    pub part: &'static str,
    /// WHATWG encoding name, e.g. `windows-1252`.
    pub encoding: &'static str,
    /// `declared`, `other_part` or `last_resort`.
    pub via: &'static str,
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={} ({})", self.part, self.encoding, self.via)
    }
}

/// End of the header block (index of the blank line's first byte) and
/// start of the body.
fn split_headers(bytes: &[u8]) -> (usize, usize) {
    for i in 0..bytes.len() {
        if bytes[i] == b'\n' {
            if bytes.get(i + 1) == Some(&b'\n') {
                return (i + 1, i + 2);
            }
            if bytes.get(i + 1) == Some(&b'\r') && bytes.get(i + 2) == Some(&b'\n') {
                return (i + 1, i + 3);
            }
        }
    }
    (bytes.len(), bytes.len())
}

/// Every `charset=` label in `bytes`, in order.
fn charset_labels(bytes: &[u8]) -> Vec<String> {
    let lower = bytes.to_ascii_lowercase();
    let needle = b"charset=";
    let mut out = Vec::new();
    let mut i = 0;
    while i + needle.len() <= lower.len() {
        if &lower[i..i + needle.len()] == needle {
            let mut j = i + needle.len();
            if lower.get(j) == Some(&b'"') {
                j += 1;
            }
            let start = j;
            while j < lower.len()
                && (lower[j].is_ascii_alphanumeric() || b"-_.:".contains(&lower[j]))
            {
                j += 1;
            }
            if j > start {
                out.push(String::from_utf8_lossy(&lower[start..j]).into_owned());
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

fn header_value<'a>(headers: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let name = name.as_bytes();
    headers.split(|b| *b == b'\n').find_map(|line| {
        (line.len() > name.len()
            && line[..name.len()].eq_ignore_ascii_case(name)
            && line[name.len()] == b':')
            .then(|| &line[name.len() + 1..])
    })
}

/// Pick the encoding: declared, then another part's, then windows-1252.
fn choose(declared: Option<&str>, others: &[String]) -> (&'static Encoding, &'static str) {
    let known = |l: &str| Encoding::for_label(l.as_bytes()).filter(|e| *e != encoding_rs::UTF_8);
    if let Some(e) = declared.and_then(known) {
        return (e, "declared");
    }
    if let Some(e) = others.iter().find_map(|l| known(l)) {
        return (e, "other_part");
    }
    (WINDOWS_1252, "last_resort")
}

/// Transcode undeclared 8-bit header and (single-part) body bytes to UTF-8;
/// `None` when nothing needed repair.
pub fn repair_charsets(bytes: &[u8]) -> Option<(Vec<u8>, Vec<Fallback>)> {
    if std::str::from_utf8(bytes).is_ok() {
        return None;
    }
    let (hend, bstart) = split_headers(bytes);
    let headers = &bytes[..hend];
    let body = &bytes[bstart..];
    let content_type = header_value(headers, "content-type").map(|v| v.to_ascii_lowercase());
    let declared = content_type
        .as_deref()
        .and_then(|ct| charset_labels(ct).into_iter().next());
    let others = charset_labels(body);
    let multipart = content_type
        .as_deref()
        .is_some_and(|ct| String::from_utf8_lossy(ct).contains("multipart/"));
    let mut fallbacks = Vec::new();
    let mut out = Vec::with_capacity(bytes.len() + 64);
    if std::str::from_utf8(headers).is_ok() {
        out.extend_from_slice(headers);
    } else {
        let (enc, via) = choose(declared.as_deref(), &others);
        let (text, _, _) = enc.decode(headers);
        out.extend_from_slice(text.as_bytes());
        fallbacks.push(Fallback {
            part: "headers",
            encoding: enc.name(),
            via,
        });
    }
    let declared_known = declared
        .as_deref()
        .and_then(|l| Encoding::for_label(l.as_bytes()))
        .is_some();
    let transfer = header_value(headers, "content-transfer-encoding")
        .map(|v| String::from_utf8_lossy(v).trim().to_ascii_lowercase());
    let plain_transfer = transfer
        .as_deref()
        .is_none_or(|t| matches!(t, "7bit" | "8bit" | "binary"));
    let body_needs =
        !multipart && !declared_known && plain_transfer && std::str::from_utf8(body).is_err();
    if body_needs {
        let (enc, via) = choose(None, &others);
        let (text, _, _) = enc.decode(body);
        // Say what the body now is, so the MIME parser reads it as UTF-8.
        let ct_line = b"Content-Type: text/plain; charset=utf-8\n";
        let mut new_headers: Vec<u8> = Vec::with_capacity(out.len() + ct_line.len());
        let mut skipping = false;
        for line in out.split_inclusive(|b| *b == b'\n') {
            let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
            if continuation && skipping {
                continue;
            }
            skipping = line.len() > 13 && line[..13].eq_ignore_ascii_case(b"content-type:");
            if !skipping {
                new_headers.extend_from_slice(line);
            }
        }
        out = new_headers;
        out.extend_from_slice(ct_line);
        out.extend_from_slice(b"\n");
        out.extend_from_slice(text.as_bytes());
        fallbacks.push(Fallback {
            part: "body",
            encoding: enc.name(),
            via,
        });
    } else {
        out.extend_from_slice(&bytes[hend..]);
    }
    if fallbacks.is_empty() {
        None
    } else {
        Some((out, fallbacks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipermail_addresses() {
        assert_eq!(
            deobfuscate("goran at domain.com (Göran Lastname)").as_deref(),
            Some("goran@domain.com (Göran Lastname)")
        );
        assert_eq!(
            deobfuscate("a.b at lists dot boost dot org").as_deref(),
            Some("a.b@lists.boost.org")
        );
        assert_eq!(
            deobfuscate("x at y.org, z at w dot net").as_deref(),
            Some("x@y.org, z@w.net")
        );
        assert_eq!(deobfuscate("a@b.org"), None);
    }
}
