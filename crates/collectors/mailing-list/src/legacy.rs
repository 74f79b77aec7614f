//! Real-archive repairs before and after MIME parsing.
//!
//! * **Obfuscated addresses** (Mailman 2 / pipermail): `From: goran at
//!   domain.com (Göran Lastname)`, also `local at domain dot tld`, become
//!   `goran@domain.com (Göran Lastname)` ([`deobfuscate`]).
//! * **Undeclared 8-bit charsets**: a header block, or a text body (of a
//!   single-part `8bit`/`7bit` message or of each such part of a multipart
//!   one), that is not valid UTF-8 and whose
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
    /// `headers`, `body`, or a part of a multipart message: `part2`
    /// (its body), `part2.headers`, `part2.1` (nested).
    pub part: String,
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

/// The value of header `name` with its continuation lines joined.
fn unfolded(headers: &[u8], name: &str) -> Option<Vec<u8>> {
    let name = name.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    for line in headers.split(|b| *b == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        match &mut out {
            Some(v) if continuation => v.extend_from_slice(line),
            Some(_) => break,
            None => {
                if line.len() > name.len()
                    && line[..name.len()].eq_ignore_ascii_case(name)
                    && line[name.len()] == b':'
                {
                    out = Some(line[name.len() + 1..].to_vec());
                }
            }
        }
    }
    out.map(|mut v| {
        v.retain(|b| *b != b'\r');
        v
    })
}

/// The `boundary=` parameter of a Content-Type value (case kept).
fn boundary(ct: &[u8]) -> Option<Vec<u8>> {
    let lower = ct.to_ascii_lowercase();
    let at = lower.windows(9).position(|w| w == b"boundary=")? + 9;
    let rest = &ct[at..];
    let b = if let Some(q) = rest.strip_prefix(b"\"") {
        q.split(|b| *b == b'"').next().unwrap_or(q)
    } else {
        rest.split(|b| *b == b';' || b.is_ascii_whitespace())
            .next()
            .unwrap_or(rest)
    };
    (!b.is_empty()).then(|| b.to_vec())
}

/// Labels of the payload's `charset_fallback` entries for one entity.
struct Labels {
    headers: String,
    body: String,
    /// Prefix of the child parts' labels (`part`, `part2.`).
    child: String,
}

/// Repair one MIME entity (a whole message or one part): 8-bit headers by
/// the chain, a text body with no known charset (plain transfer encoding)
/// by the chain, a multipart body part by part.
fn repair_entity(
    bytes: &[u8],
    others: &[String],
    labels: &Labels,
    fallbacks: &mut Vec<Fallback>,
) -> Vec<u8> {
    let (hend, bstart) = if bytes.starts_with(b"\n") {
        (0, 1)
    } else if bytes.starts_with(b"\r\n") {
        (0, 2)
    } else {
        split_headers(bytes)
    };
    let headers = &bytes[..hend];
    let body = &bytes[bstart..];
    let content_type = unfolded(headers, "content-type");
    let ct_lower = content_type.as_deref().map(<[u8]>::to_ascii_lowercase);
    let declared = ct_lower
        .as_deref()
        .and_then(|ct| charset_labels(ct).into_iter().next());
    let media = ct_lower
        .as_deref()
        .map(|ct| {
            String::from_utf8_lossy(ct.split(|b| *b == b';').next().unwrap_or(ct))
                .trim()
                .to_owned()
        })
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "text/plain".to_owned());
    let mut out = Vec::with_capacity(bytes.len() + 64);
    if std::str::from_utf8(headers).is_ok() {
        out.extend_from_slice(headers);
    } else {
        let (enc, via) = choose(declared.as_deref(), others);
        let (text, _, _) = enc.decode(headers);
        out.extend_from_slice(text.as_bytes());
        fallbacks.push(Fallback {
            part: labels.headers.clone(),
            encoding: enc.name(),
            via,
        });
    }
    if std::str::from_utf8(body).is_ok() {
        out.extend_from_slice(&bytes[hend..]);
        return out;
    }
    if media.starts_with("multipart/") {
        if let Some(b) = content_type.as_deref().and_then(boundary) {
            out.extend_from_slice(&bytes[hend..bstart]);
            out.extend(repair_multipart(body, &b, others, &labels.child, fallbacks));
            return out;
        }
        out.extend_from_slice(&bytes[hend..]);
        return out;
    }
    let declared_known = declared
        .as_deref()
        .and_then(|l| Encoding::for_label(l.as_bytes()))
        .is_some();
    let transfer = unfolded(headers, "content-transfer-encoding")
        .map(|v| String::from_utf8_lossy(&v).trim().to_ascii_lowercase());
    let plain_transfer = transfer
        .as_deref()
        .is_none_or(|t| matches!(t, "7bit" | "8bit" | "binary"));
    if declared_known || !plain_transfer || !media.starts_with("text/") {
        out.extend_from_slice(&bytes[hend..]);
        return out;
    }
    let (enc, via) = choose(None, others);
    let (text, _, _) = enc.decode(body);
    // Say what the body now is, so the MIME parser reads it as UTF-8.
    let ct_line = format!("Content-Type: {media}; charset=utf-8\n");
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
    if new_headers.last().is_some_and(|b| *b != b'\n') {
        new_headers.push(b'\n');
    }
    new_headers.extend_from_slice(ct_line.as_bytes());
    new_headers.extend_from_slice(b"\n");
    new_headers.extend_from_slice(text.as_bytes());
    fallbacks.push(Fallback {
        part: labels.body.clone(),
        encoding: enc.name(),
        via,
    });
    new_headers
}

/// Repair each part between `--boundary` lines; preamble, delimiters and
/// epilogue are kept as they are.
fn repair_multipart(
    body: &[u8],
    boundary: &[u8],
    others: &[String],
    prefix: &str,
    fallbacks: &mut Vec<Fallback>,
) -> Vec<u8> {
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(boundary);
    let mut out = Vec::with_capacity(body.len() + 64);
    let mut part: Option<Vec<u8>> = None;
    let mut n = 0usize;
    let mut closed = false;
    let flush = |p: Vec<u8>, n: usize, out: &mut Vec<u8>, fallbacks: &mut Vec<Fallback>| {
        let labels = Labels {
            headers: format!("{prefix}{n}.headers"),
            body: format!("{prefix}{n}"),
            child: format!("{prefix}{n}."),
        };
        out.extend(repair_entity(&p, others, &labels, fallbacks));
    };
    for line in body.split_inclusive(|b| *b == b'\n') {
        let t = line.trim_ascii_end();
        if !closed && t.starts_with(&delim) {
            let tail = &t[delim.len()..];
            if tail.is_empty() || tail == b"--" {
                if let Some(p) = part.take() {
                    flush(p, n, &mut out, fallbacks);
                }
                out.extend_from_slice(line);
                if tail.is_empty() {
                    n += 1;
                    part = Some(Vec::new());
                } else {
                    closed = true;
                }
                continue;
            }
        }
        match &mut part {
            Some(p) => p.extend_from_slice(line),
            None => out.extend_from_slice(line),
        }
    }
    if let Some(p) = part.take() {
        flush(p, n, &mut out, fallbacks);
    }
    out
}

/// Transcode undeclared 8-bit headers and text bodies (of a single-part
/// message or of each part of a multipart one) to UTF-8; `None` when
/// nothing needed repair.
pub fn repair_charsets(bytes: &[u8]) -> Option<(Vec<u8>, Vec<Fallback>)> {
    if std::str::from_utf8(bytes).is_ok() {
        return None;
    }
    let (hend, bstart) = split_headers(bytes);
    let declared = unfolded(&bytes[..hend], "content-type")
        .and_then(|ct| charset_labels(&ct).into_iter().next());
    // Another part's charset: every label of the message, declared first.
    let mut others: Vec<String> = declared.into_iter().collect();
    others.extend(charset_labels(&bytes[bstart..]));
    let labels = Labels {
        headers: "headers".into(),
        body: "body".into(),
        child: "part".into(),
    };
    let mut fallbacks = Vec::new();
    let out = repair_entity(bytes, &others, &labels, &mut fallbacks);
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
