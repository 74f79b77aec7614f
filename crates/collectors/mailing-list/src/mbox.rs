//! A streaming mbox splitter over any [`BufRead`]: one message in memory at
//! a time, so a 1 GB archive is read with flat memory.
//!
//! * A message starts at a `From ` line at the start of the input or after
//!   an empty line, that looks like a real separator
//!   (`From <sender> <date>`: at least three fields and a time `hh:mm` or a
//!   four-digit year). A `From ` line in a body that does not look like one
//!   is kept as body text (mboxo writers that forgot to escape).
//! * mboxo/mboxrd escaping: a body line `>From `, `>>From `, ... loses one
//!   `>` (mboxrd's rule; for mboxo it restores the escaped `From ` lines).
//! * The empty line before the next separator belongs to the mbox format,
//!   not to the message, and is dropped.
//! * Line endings (`\n` or `\r\n`) are kept as they are.
//! * A message larger than [`MboxReader::max_message_bytes`] keeps its first
//!   bytes and is flagged `truncated` (counted as malformed by the caller).
//! * Text before the first separator is reported as `leading_garbage` bytes.

use std::io::{self, BufRead};

/// Default cap on one message (64 MiB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// One message cut out of an mbox.
#[derive(Debug, Clone, Default)]
pub struct RawMessage {
    /// The separator line without `From ` and the line ending.
    pub from_line: String,
    /// The message (headers and body), unescaped.
    pub bytes: Vec<u8>,
    /// Byte offset of the separator line in the input.
    pub offset: u64,
    /// The message exceeded the size cap and was cut.
    pub truncated: bool,
}

/// Splits an mbox stream into messages.
pub struct MboxReader<R> {
    input: R,
    line: Vec<u8>,
    /// The separator line that starts the next message, if already read.
    pending: Option<(String, u64)>,
    /// Bytes consumed so far.
    pos: u64,
    /// Whether the previous line was empty (or we are at the start).
    prev_empty: bool,
    done: bool,
    /// Bytes before the first separator (not a message).
    pub leading_garbage: u64,
    /// Size cap per message.
    pub max_message_bytes: usize,
}

impl<R: BufRead> MboxReader<R> {
    pub fn new(input: R) -> Self {
        MboxReader {
            input,
            line: Vec::with_capacity(256),
            pending: None,
            pos: 0,
            prev_empty: true,
            done: false,
            leading_garbage: 0,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }

    /// Bytes read so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Read one line into `self.line`; false at end of input.
    fn read_line(&mut self) -> io::Result<bool> {
        self.line.clear();
        let n = self.input.read_until(b'\n', &mut self.line)?;
        self.pos += n as u64;
        Ok(n > 0)
    }

    /// The next message, `None` at the end.
    pub fn next_message(&mut self) -> io::Result<Option<RawMessage>> {
        if self.done {
            return Ok(None);
        }
        // Find the first separator.
        while self.pending.is_none() {
            let start = self.pos;
            if !self.read_line()? {
                self.done = true;
                return Ok(None);
            }
            if self.prev_empty
                && let Some(sep) = separator(&self.line)
            {
                self.pending = Some((sep, start));
            } else {
                self.leading_garbage += self.line.len() as u64;
                self.prev_empty = is_empty_line(&self.line);
            }
        }
        let Some((from_line, offset)) = self.pending.take() else {
            return Ok(None);
        };
        let mut msg = RawMessage {
            from_line,
            offset,
            ..RawMessage::default()
        };
        // An empty line is held back: it is dropped if a separator follows.
        let mut held_empty: Option<Vec<u8>> = None;
        self.prev_empty = false;
        loop {
            let start = self.pos;
            if !self.read_line()? {
                self.done = true;
                // A trailing empty line at the end of the file is the
                // format's, not the message's.
                break;
            }
            if self.prev_empty
                && let Some(sep) = separator(&self.line)
            {
                self.pending = Some((sep, start));
                break;
            }
            if let Some(empty) = held_empty.take() {
                push_capped(&mut msg, &empty, self.max_message_bytes);
            }
            if is_empty_line(&self.line) {
                held_empty = Some(self.line.clone());
                self.prev_empty = true;
                continue;
            }
            self.prev_empty = false;
            let line = unescape_from(&self.line);
            push_capped(&mut msg, line, self.max_message_bytes);
        }
        Ok(Some(msg))
    }
}

impl<R: BufRead> Iterator for MboxReader<R> {
    type Item = io::Result<RawMessage>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_message().transpose()
    }
}

fn push_capped(msg: &mut RawMessage, bytes: &[u8], cap: usize) {
    if msg.truncated {
        return;
    }
    if msg.bytes.len() + bytes.len() > cap {
        let room = cap.saturating_sub(msg.bytes.len());
        msg.bytes.extend_from_slice(&bytes[..room.min(bytes.len())]);
        msg.truncated = true;
    } else {
        msg.bytes.extend_from_slice(bytes);
    }
}

fn is_empty_line(line: &[u8]) -> bool {
    line == b"\n" || line == b"\r\n"
}

/// `>From `, `>>From `, … lose one `>`.
fn unescape_from(line: &[u8]) -> &[u8] {
    let quotes = line.iter().take_while(|b| **b == b'>').count();
    if quotes > 0 && line[quotes..].starts_with(b"From ") {
        &line[1..]
    } else {
        line
    }
}

/// The separator text (after `From `) when `line` looks like a real mbox
/// separator.
fn separator(line: &[u8]) -> Option<String> {
    let rest = line.strip_prefix(b"From ")?;
    let text = String::from_utf8_lossy(rest);
    let text = text.trim_end_matches(['\r', '\n']).to_owned();
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() < 2 {
        return None;
    }
    let has_time = fields.iter().any(|f| {
        let b = f.as_bytes();
        b.len() >= 5
            && b[0].is_ascii_digit()
            && b[1].is_ascii_digit()
            && b[2] == b':'
            && b[3].is_ascii_digit()
    });
    let has_year = fields
        .iter()
        .any(|f| f.len() == 4 && f.bytes().all(|b| b.is_ascii_digit()));
    (has_time || has_year).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &str) -> Vec<RawMessage> {
        MboxReader::new(input.as_bytes())
            .collect::<io::Result<Vec<_>>>()
            .unwrap()
    }

    #[test]
    fn splits_and_unescapes() {
        let mbox = "From a@x Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody\n>From here\n>>From there\n\nFrom b@x Tue Jan  2 00:00:00 2024\nSubject: two\n\nFrom is not a separator here\n\n";
        let msgs = split(mbox);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].from_line, "a@x Mon Jan  1 00:00:00 2024");
        assert_eq!(
            String::from_utf8_lossy(&msgs[0].bytes),
            "Subject: one\n\nbody\nFrom here\n>From there\n"
        );
        assert_eq!(
            String::from_utf8_lossy(&msgs[1].bytes),
            "Subject: two\n\nFrom is not a separator here\n"
        );
        assert_eq!(msgs[1].offset, mbox.find("From b@x").unwrap() as u64);
    }

    #[test]
    fn body_from_without_blank_line_is_kept() {
        let mbox = "From a@x Mon Jan  1 00:00:00 2024\nSubject: one\n\nline\nFrom b@x Tue Jan  2 00:00:00 2024\n";
        let msgs = split(mbox);
        assert_eq!(msgs.len(), 1);
        assert!(String::from_utf8_lossy(&msgs[0].bytes).contains("From b@x"));
    }

    #[test]
    fn crlf_garbage_and_truncation() {
        let mbox =
            "junk\r\n\r\nFrom a@x Mon Jan  1 00:00:00 2024\r\nSubject: x\r\n\r\n0123456789\r\n";
        let mut r = MboxReader::new(mbox.as_bytes());
        r.max_message_bytes = 20;
        let m = r.next_message().unwrap().unwrap();
        assert!(m.truncated);
        assert_eq!(m.bytes.len(), 20);
        assert!(r.next_message().unwrap().is_none());
        assert_eq!(r.leading_garbage, 8);
        assert!(split("").is_empty());
    }
}
