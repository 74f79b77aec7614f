//! One raw message → a [`ParsedMessage`]: MIME decoding and charsets by
//! `mail-parser` (RFC 2047 encoded words, base64, quoted-printable, and
//! ISO-8859-*, KOI8-R, windows-125x, UTF-8 and the multi-byte charsets of
//! `encoding_rs`), threading fields, and a list of what was malformed.
//!
//! Nothing is ever dropped: a message mail-parser cannot parse at all, or
//! one without a Message-ID, date or sender, is still returned (with a
//! synthesized `<sha256@bdc.invalid>` Message-ID when it has none) and its
//! problems are listed in [`ParsedMessage::malformed`].
//!
//! Threading (deterministic, a pure function of the message, so a re-run
//! never changes a stored row): the parent is `In-Reply-To` (first id), else
//! the last `References` id; the thread root is the first `References` id,
//! else the parent, else the message itself. The full reference chain is
//! kept as thread links for exact traversal.

use chrono::{DateTime, Utc};
use mail_parser::{HeaderValue, MessageParser};
use sha2::{Digest, Sha256};

use crate::mbox::RawMessage;

/// Stored body text is cut at this many bytes (on a char boundary).
pub const MAX_BODY_TEXT: usize = 256 * 1024;
/// Longest Message-ID kept as is (longer ones are hashed).
const MAX_ID: usize = 400;

/// A decoded message, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedMessage {
    /// Without angle brackets.
    pub message_id: String,
    pub message_id_synthesized: bool,
    pub subject: Option<String>,
    pub from_name: Option<String>,
    pub from_email: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    /// Direct parent (In-Reply-To, else last References id).
    pub parent_id: Option<String>,
    pub thread_root: String,
    /// References ids in order, then the In-Reply-To id if not among them.
    pub links: Vec<String>,
    pub body_text: String,
    pub attachments: u32,
    pub size_bytes: u64,
    /// `sha256:<hex>` of the raw bytes.
    pub content_hash: String,
    /// What is wrong with it (empty when well-formed).
    pub malformed: Vec<&'static str>,
    /// `Reply-To:` addresses (lowercased; pipermail obfuscation undone).
    pub reply_to: Vec<String>,
    /// `Cc:` addresses (lowercased; pipermail obfuscation undone).
    pub cc: Vec<String>,
    /// Charset fallbacks used (e.g. `headers=windows-1252 (last_resort)`),
    /// empty when every byte was declared or UTF-8.
    pub charset_fallback: Vec<String>,
    /// The sender address was pipermail-obfuscated (`local at domain`).
    pub from_deobfuscated: bool,
}

impl ParsedMessage {
    /// `YYYY-MM` of the date, when known.
    pub fn month(&self) -> Option<String> {
        self.sent_at.map(|d| d.format("%Y-%m").to_string())
    }
}

fn clean_id(raw: &str) -> Option<String> {
    let s = raw
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    if s.is_empty() || s.chars().any(char::is_control) {
        return None;
    }
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if s.len() > MAX_ID {
        return Some(format!(
            "sha256-{}@bdc.invalid",
            hex::encode(Sha256::digest(s.as_bytes()))
        ));
    }
    Some(s)
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => t.split_whitespace().filter_map(clean_id).collect(),
        HeaderValue::TextList(list) => list
            .iter()
            .flat_map(|t| t.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .filter_map(|t| clean_id(&t))
            .collect(),
        _ => Vec::new(),
    }
}

fn truncate_utf8(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().filter(|c| !c.is_control()).collect())
}

/// Date from the mbox separator (`sender Mon Jan  1 00:00:00 2024`).
fn from_line_date(from_line: &str) -> Option<DateTime<Utc>> {
    let mut fields = from_line.split_whitespace();
    fields.next()?;
    let rest: Vec<&str> = fields.collect();
    let text = rest.join(" ");
    chrono::NaiveDateTime::parse_from_str(&text, "%a %b %e %H:%M:%S %Y")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(&text, "%a %b %d %H:%M:%S %Y"))
        .ok()
        .map(|d| d.and_utc())
}

/// `(email, display name)`.
type EmailName = (Option<String>, Option<String>);

/// Addresses of an address header: parsed, or (pipermail) de-obfuscated
/// from the raw value first. Returns `(email, name)` pairs and whether
/// de-obfuscation was needed.
fn addresses(
    msg: &mail_parser::Message<'_>,
    header: &str,
    parsed: Option<&mail_parser::Address<'_>>,
) -> (Vec<EmailName>, bool) {
    let direct: Vec<_> = parsed
        .map(|a| {
            a.iter()
                .map(|x| (non_empty(x.address()), non_empty(x.name())))
                .collect()
        })
        .unwrap_or_default();
    if direct.iter().any(|(e, _)| e.is_some()) {
        return (direct, false);
    }
    let Some(fixed) = msg
        .header_raw(header)
        .and_then(|raw| crate::legacy::deobfuscate(raw.trim()))
    else {
        return (direct, false);
    };
    let mini = format!("From: {fixed}\r\n\r\n");
    let again = MessageParser::default()
        .parse(mini.as_bytes())
        .and_then(|m| {
            m.from().map(|a| {
                a.iter()
                    .map(|x| (non_empty(x.address()), non_empty(x.name())))
                    .collect::<Vec<_>>()
            })
        })
        .unwrap_or_default();
    if again.iter().any(|(e, _)| e.is_some()) {
        (again, true)
    } else {
        (direct, false)
    }
}

/// Parse one raw message. Never fails: problems go to `malformed`.
pub fn parse_message(raw: &RawMessage) -> ParsedMessage {
    let content_hash = format!("sha256:{}", hex::encode(Sha256::digest(&raw.bytes)));
    let mut malformed = Vec::new();
    if raw.truncated {
        malformed.push("truncated");
    }
    let (bytes, charset_fallback) = match crate::legacy::repair_charsets(&raw.bytes) {
        Some((b, f)) => (
            std::borrow::Cow::Owned(b),
            f.iter().map(ToString::to_string).collect(),
        ),
        None => (std::borrow::Cow::Borrowed(&raw.bytes[..]), Vec::new()),
    };
    let parsed = MessageParser::default().parse(&bytes[..]);
    let Some(msg) = parsed.filter(|m| !m.headers().is_empty()) else {
        malformed.push("unparseable");
        let id = format!("{}@bdc.invalid", content_hash.replace(':', "-"));
        let text = String::from_utf8_lossy(&bytes).into_owned();
        return ParsedMessage {
            thread_root: id.clone(),
            message_id: id,
            message_id_synthesized: true,
            subject: None,
            from_name: None,
            from_email: None,
            sent_at: from_line_date(&raw.from_line),
            parent_id: None,
            links: Vec::new(),
            body_text: truncate_utf8(text, MAX_BODY_TEXT),
            attachments: 0,
            size_bytes: raw.bytes.len() as u64,
            content_hash,
            malformed,
            reply_to: Vec::new(),
            cc: Vec::new(),
            charset_fallback,
            from_deobfuscated: false,
        };
    };

    let (message_id, synthesized) = match msg.message_id().and_then(clean_id) {
        Some(id) => (id, false),
        None => {
            malformed.push("no_message_id");
            (
                format!("{}@bdc.invalid", content_hash.replace(':', "-")),
                true,
            )
        }
    };
    let sent_at = match msg.date().filter(|d| d.is_valid()) {
        Some(d) => DateTime::from_timestamp(d.to_timestamp(), 0),
        None => None,
    };
    let sent_at = match sent_at {
        Some(d) => Some(d),
        None => {
            malformed.push("no_date");
            from_line_date(&raw.from_line)
        }
    };
    let (from, from_deobfuscated) = addresses(&msg, "From", msg.from());
    let from = from.into_iter().next();
    let from_email = from.as_ref().and_then(|(e, _)| e.clone());
    let from_name = from.and_then(|(_, n)| n);
    let emails = |header: &str, parsed| {
        addresses(&msg, header, parsed)
            .0
            .into_iter()
            .filter_map(|(e, _)| e.map(|e| e.to_lowercase()))
            .collect::<Vec<_>>()
    };
    let reply_to = emails("Reply-To", msg.reply_to());
    let cc = emails("Cc", msg.cc());
    if from_email.is_none() {
        malformed.push("no_from");
    }
    let references = ids(msg.references());
    let in_reply_to = ids(msg.in_reply_to());
    let parent_id = in_reply_to
        .first()
        .or(references.last())
        .filter(|p| **p != message_id)
        .cloned();
    let thread_root = references
        .first()
        .or(parent_id.as_ref())
        .cloned()
        .unwrap_or_else(|| message_id.clone());
    let mut links = references;
    for id in in_reply_to {
        if !links.contains(&id) {
            links.push(id);
        }
    }
    links.retain(|l| *l != message_id);
    let body_text = msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
    ParsedMessage {
        message_id,
        message_id_synthesized: synthesized,
        subject: non_empty(msg.subject()),
        from_name,
        from_email: from_email.map(|e| e.to_lowercase()),
        sent_at,
        parent_id,
        thread_root,
        links,
        body_text: truncate_utf8(body_text.replace('\0', ""), MAX_BODY_TEXT),
        attachments: u32::try_from(msg.attachment_count()).unwrap_or(u32::MAX),
        size_bytes: raw.bytes.len() as u64,
        content_hash,
        malformed,
        reply_to,
        cc,
        charset_fallback,
        from_deobfuscated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &[u8]) -> RawMessage {
        RawMessage {
            from_line: "x@y Mon Jan  1 00:00:00 2024".into(),
            bytes: text.to_vec(),
            offset: 0,
            truncated: false,
        }
    }

    #[test]
    fn threading_fields() {
        let m = parse_message(&raw(
            b"Message-ID: <c@x>\r\nFrom: A <A@X.org>\r\nDate: Tue, 2 Jan 2024 10:00:00 +0100\r\n\
References: <a@x>\r\n  <b@x>\r\nIn-Reply-To: <b@x>\r\nSubject: Re: hi\r\n\r\nbody\r\n",
        ));
        assert_eq!(m.message_id, "c@x");
        assert_eq!(m.parent_id.as_deref(), Some("b@x"));
        assert_eq!(m.thread_root, "a@x");
        assert_eq!(m.links, vec!["a@x", "b@x"]);
        assert_eq!(m.from_email.as_deref(), Some("a@x.org"));
        assert_eq!(m.sent_at.unwrap().to_rfc3339(), "2024-01-02T09:00:00+00:00");
        assert!(m.malformed.is_empty(), "{:?}", m.malformed);
    }

    #[test]
    fn missing_everything_is_kept() {
        let m = parse_message(&raw(b"garbage without headers"));
        assert!(m.message_id_synthesized);
        assert!(!m.malformed.is_empty());
        assert_eq!(m.sent_at.unwrap().to_rfc3339(), "2024-01-01T00:00:00+00:00");
    }
}
