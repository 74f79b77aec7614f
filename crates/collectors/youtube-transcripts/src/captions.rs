//! Caption tracks → timed segments.
//!
//! Two formats, told apart by their first bytes:
//!
//! * **WebVTT** (`WEBVTT` header, W3C WebVTT): cues `HH:MM:SS.mmm -->
//!   HH:MM:SS.mmm [settings]` followed by text lines up to a blank line;
//!   `NOTE`, `STYLE` and `REGION` blocks skipped; inline tags (`<c>`,
//!   `<00:00:01.000>`, `<v Speaker>`) removed; entities unescaped.
//!   Hand-written: the format is a few lines of grammar, and the crates
//!   that parse it are either unmaintained or pull a parser framework for
//!   what is a line loop.
//! * **Timed text XML**: YouTube's `<transcript><text start="1.2"
//!   dur="3.4">…</text></transcript>` (seconds) and format 3
//!   `<timedtext format="3"><body><p t="1200" d="3400">…</p></body>` (ms),
//!   read with `quick-xml`. Text is unescaped twice when needed (YouTube
//!   escapes `&#39;` as `&amp;#39;`).
//!
//! A cue that cannot be read (bad timestamp, end before start, empty
//! text) is skipped and reported with its position; the rest is kept.

use std::borrow::Cow;

use quick_xml::events::Event;

/// One timed piece of a transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub start_ms: i64,
    pub end_ms: i64,
    pub text: String,
}

/// Format of a caption track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Vtt,
    TimedText,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Vtt => "vtt",
            Format::TimedText => "timedtext",
        }
    }
}

/// A skipped cue: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// `line N` (WebVTT) or `byte N` (XML).
    pub position: String,
    pub reason: String,
}

/// A parsed track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub format: Format,
    pub segments: Vec<Segment>,
    pub skipped: Vec<Skipped>,
}

/// Why a body is not a caption track at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptionError {
    /// Empty body: the video has no caption track in that language.
    #[error("empty caption body (no track)")]
    Empty,
    #[error("not a caption track (neither WEBVTT nor timed-text XML): starts with {0:?}")]
    Unknown(String),
    #[error("malformed timed-text XML at byte {position}: {reason}")]
    Xml { position: u64, reason: String },
}

/// Parse a caption body in either format.
pub fn parse(body: &str) -> Result<Track, CaptionError> {
    let trimmed = body.trim_start_matches('\u{feff}').trim_start();
    if trimmed.is_empty() {
        return Err(CaptionError::Empty);
    }
    if trimmed.starts_with("WEBVTT") {
        return Ok(parse_vtt(trimmed));
    }
    if trimmed.starts_with('<') {
        return parse_timedtext(trimmed);
    }
    Err(CaptionError::Unknown(trimmed.chars().take(20).collect()))
}

/// `HH:MM:SS.mmm` or `MM:SS.mmm` (WebVTT) in milliseconds.
fn vtt_time(s: &str) -> Option<i64> {
    let (hms, ms) = s.split_once('.')?;
    if ms.len() != 3 || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let parts: Vec<&str> = hms.split(':').collect();
    let nums: Option<Vec<i64>> = parts
        .iter()
        .map(|p| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                p.parse().ok()
            }
        })
        .collect();
    let nums = nums?;
    let (h, m, sec) = match nums.as_slice() {
        [h, m, s] => (*h, *m, *s),
        [m, s] => (0, *m, *s),
        _ => return None,
    };
    if m >= 60 || sec >= 60 {
        return None;
    }
    Some(((h * 60 + m) * 60 + sec) * 1000 + ms.parse::<i64>().ok()?)
}

/// Remove WebVTT inline tags (`<c.x>`, `</c>`, `<v Name>`, timestamps).
fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for ch in s.chars() {
        match ch {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Unescape entities (tolerant: text that is not valid escaping stays).
fn unescape(s: &str) -> String {
    let once: Cow<'_, str> = quick_xml::escape::unescape(s).unwrap_or(Cow::Borrowed(s));
    if once.contains('&') {
        // YouTube double-escapes (`&amp;#39;`).
        match quick_xml::escape::unescape(&once) {
            Ok(twice) => twice.into_owned(),
            Err(_) => once.into_owned(),
        }
    } else {
        once.into_owned()
    }
}

fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn parse_vtt(body: &str) -> Track {
    let mut segments = Vec::new();
    let mut skipped = Vec::new();
    let lines: Vec<&str> = body.lines().collect();
    let mut i = 1; // after the WEBVTT line
    // Header lines up to the first blank line.
    while i < lines.len() && !lines[i].trim().is_empty() {
        i += 1;
    }
    while i < lines.len() {
        // Skip blank lines between blocks.
        while i < lines.len() && lines[i].trim().is_empty() {
            i += 1;
        }
        if i >= lines.len() {
            break;
        }
        let block_start = i;
        let mut block: Vec<&str> = Vec::new();
        while i < lines.len() && !lines[i].trim().is_empty() {
            block.push(lines[i]);
            i += 1;
        }
        let first = block.first().copied().unwrap_or_default();
        if first.starts_with("NOTE") || first.starts_with("STYLE") || first.starts_with("REGION") {
            continue;
        }
        // An optional cue identifier line precedes the timing line.
        let (timing_at, timing) = match block.iter().position(|l| l.contains("-->")) {
            Some(p) if p <= 1 => (p, block[p]),
            _ => {
                skipped.push(Skipped {
                    position: format!("line {}", block_start + 1),
                    reason: "block without a cue timing line".into(),
                });
                continue;
            }
        };
        let line_no = block_start + timing_at + 1;
        let mut parts = timing.split("-->");
        let start = parts.next().map(str::trim).and_then(vtt_time);
        let end = parts
            .next()
            .and_then(|r| r.split_whitespace().next())
            .and_then(vtt_time);
        let (Some(start_ms), Some(end_ms)) = (start, end) else {
            skipped.push(Skipped {
                position: format!("line {line_no}"),
                reason: format!("bad cue timing {:?}", timing.trim()),
            });
            continue;
        };
        if end_ms < start_ms {
            skipped.push(Skipped {
                position: format!("line {line_no}"),
                reason: format!("cue ends before it starts ({:?})", timing.trim()),
            });
            continue;
        }
        let raw: Vec<String> = block[timing_at + 1..]
            .iter()
            .map(|l| strip_tags(l))
            .collect();
        let text = normalize(&unescape(&raw.join(" ")));
        if text.is_empty() {
            continue;
        }
        // Auto-generated tracks repeat the previous line as the first line
        // of the next cue ("rolling" captions): keep only what is new.
        let text = match segments.last() {
            Some(Segment { text: prev, .. }) if text.starts_with(prev.as_str()) => {
                text[prev.len()..].trim().to_owned()
            }
            _ => text,
        };
        if text.is_empty() {
            continue;
        }
        segments.push(Segment {
            start_ms,
            end_ms,
            text,
        });
    }
    Track {
        format: Format::Vtt,
        segments,
        skipped,
    }
}

/// Seconds (`"1.25"`) → ms.
fn seconds_ms(s: &str) -> Option<i64> {
    let v: f64 = s.trim().parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    Some((v * 1000.0).round() as i64)
}

fn ms(s: &str) -> Option<i64> {
    let v: i64 = s.trim().parse().ok()?;
    (v >= 0).then_some(v)
}

/// A cue being read: (byte position, start, end, raw text, nesting depth).
type OpenCue = (u64, Option<i64>, Option<i64>, String, usize);

fn parse_timedtext(body: &str) -> Result<Track, CaptionError> {
    let mut reader = quick_xml::Reader::from_str(body);
    let mut segments = Vec::new();
    let mut skipped = Vec::new();
    // The open cue: (position, start, end, text so far, depth).
    let mut open: Option<OpenCue> = None;
    let mut saw_root = false;
    loop {
        let position = reader.buffer_position();
        let event = reader.read_event().map_err(|e| CaptionError::Xml {
            position: reader.error_position(),
            reason: e.to_string(),
        })?;
        match event {
            Event::Start(e) => {
                let name = e.local_name();
                let name = name.as_ref();
                if !saw_root {
                    if name != b"transcript" && name != b"timedtext" {
                        return Err(CaptionError::Unknown(
                            String::from_utf8_lossy(name).into_owned(),
                        ));
                    }
                    saw_root = true;
                    continue;
                }
                if let Some(cue) = open.as_mut() {
                    cue.4 += 1; // nested (<s> word pieces)
                    continue;
                }
                let attr = |key: &[u8]| -> Option<String> {
                    e.try_get_attribute(key)
                        .ok()
                        .flatten()
                        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
                };
                let (start, end) = match name {
                    b"text" => {
                        let start = attr(b"start").as_deref().and_then(seconds_ms);
                        let dur = attr(b"dur").as_deref().and_then(seconds_ms).unwrap_or(0);
                        (start, start.map(|s| s + dur))
                    }
                    b"p" => {
                        let start = attr(b"t").as_deref().and_then(ms);
                        let dur = attr(b"d").as_deref().and_then(ms).unwrap_or(0);
                        (start, start.map(|s| s + dur))
                    }
                    _ => continue,
                };
                open = Some((position, start, end, String::new(), 0));
            }
            Event::Text(t) => {
                if let Some(cue) = open.as_mut() {
                    cue.3.push_str(&String::from_utf8_lossy(&t.into_inner()));
                }
            }
            Event::CData(t) => {
                if let Some(cue) = open.as_mut() {
                    // CDATA is literal: escape so the final unescape keeps it.
                    let raw = String::from_utf8_lossy(&t.into_inner()).into_owned();
                    cue.3.push_str(&quick_xml::escape::escape(raw.as_str()));
                }
            }
            Event::GeneralRef(r) => {
                if let Some(cue) = open.as_mut() {
                    cue.3.push('&');
                    cue.3.push_str(&String::from_utf8_lossy(&r.into_inner()));
                    cue.3.push(';');
                }
            }
            Event::Empty(e) => {
                // <br/> inside a cue
                if let Some(cue) = open.as_mut()
                    && e.local_name().as_ref() == b"br"
                {
                    cue.3.push(' ');
                }
            }
            Event::End(_) => {
                if let Some(cue) = open.as_mut() {
                    if cue.4 > 0 {
                        cue.4 -= 1;
                        continue;
                    }
                    let Some((pos, start, end, raw, _)) = open.take() else {
                        continue;
                    };
                    let text = normalize(&unescape(&raw));
                    match (start, end) {
                        (Some(start_ms), Some(end_ms)) if !text.is_empty() => {
                            segments.push(Segment {
                                start_ms,
                                end_ms,
                                text,
                            });
                        }
                        (Some(_), Some(_)) => {} // empty cue: nothing to keep
                        _ => skipped.push(Skipped {
                            position: format!("byte {pos}"),
                            reason: "cue without a valid start time".into(),
                        }),
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err(CaptionError::Unknown(body.chars().take(20).collect()));
    }
    Ok(Track {
        format: Format::TimedText,
        segments,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vtt_cues_tags_entities_and_bad_cues() {
        let body = "WEBVTT\nKind: captions\nLanguage: en\n\nNOTE a comment\nspanning lines\n\n1\n00:00:01.000 --> 00:00:03.500 align:start position:0%\nHello <c.colorE5E5E5>world</c> &amp; friends\n\n00:03.500 --> 00:05.000\n<v Bjarne>Templates</v>\nare &lt;fun&gt;\n\n00:00:07.000 --> 00:00:06.000\nbackwards\n\n00:00:xx.000 --> 00:00:09.000\nbroken\n\n00:00:09.000 --> 00:00:10.000\n\n";
        let t = parse(body).unwrap();
        assert_eq!(t.format, Format::Vtt);
        assert_eq!(
            t.segments,
            vec![
                Segment {
                    start_ms: 1000,
                    end_ms: 3500,
                    text: "Hello world & friends".into()
                },
                Segment {
                    start_ms: 3500,
                    end_ms: 5000,
                    text: "Templates are <fun>".into()
                },
            ]
        );
        // The empty last cue is nothing to keep, not a problem.
        assert_eq!(t.skipped.len(), 2, "{:?}", t.skipped);
        assert!(t.skipped[0].reason.contains("ends before"));
        assert_eq!(t.skipped[1].position, "line 19");
        assert!(t.skipped[1].reason.contains("bad cue timing"));
    }

    #[test]
    fn vtt_rolling_auto_captions_keep_only_new_text() {
        let body = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nso today we\n\n00:00:02.000 --> 00:00:04.000\nso today we\ntalk about ranges\n";
        let t = parse(body).unwrap();
        let texts: Vec<&str> = t.segments.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["so today we", "talk about ranges"]);
    }

    #[test]
    fn timedtext_classic_and_format3() {
        let classic = r#"<?xml version="1.0" encoding="utf-8" ?><transcript><text start="0.5" dur="2.25">It&amp;#39;s C++</text><text start="3" dur="1">a &amp;amp; b</text><text start="x" dur="1">bad</text></transcript>"#;
        let t = parse(classic).unwrap();
        assert_eq!(t.format, Format::TimedText);
        assert_eq!(
            t.segments,
            vec![
                Segment {
                    start_ms: 500,
                    end_ms: 2750,
                    text: "It's C++".into()
                },
                Segment {
                    start_ms: 3000,
                    end_ms: 4000,
                    text: "a & b".into()
                },
            ]
        );
        assert_eq!(t.skipped.len(), 1);
        let f3 = r#"<timedtext format="3"><body><p t="1200" d="800"><s>hello</s><s t="300"> there</s></p><p t="2000" d="500">line<br/>two</p></body></timedtext>"#;
        let t = parse(f3).unwrap();
        let texts: Vec<(i64, &str)> = t
            .segments
            .iter()
            .map(|s| (s.start_ms, s.text.as_str()))
            .collect();
        assert_eq!(texts, [(1200, "hello there"), (2000, "line two")]);
    }

    #[test]
    fn not_a_track() {
        assert_eq!(parse("  \n"), Err(CaptionError::Empty));
        assert!(matches!(parse("{\"a\":1}"), Err(CaptionError::Unknown(_))));
        assert!(matches!(
            parse("<html><body>x</body></html>"),
            Err(CaptionError::Unknown(_))
        ));
        assert!(matches!(
            parse("<transcript><text start=\"1\">a</txt></transcript>"),
            Err(CaptionError::Xml { .. })
        ));
    }
}
