//! What gets indexed: [`SearchDoc`]s built from the collectors' public
//! store reads (never their tables).

use chrono::{DateTime, Utc};
use serde_json::Value;

use bdc_storage::activity::StoredActivity;

/// One searchable document (chunked when indexed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchDoc {
    /// Stable id: `<app_type>:<id within the source>`.
    pub doc_id: String,
    /// The source (`source_system` of activity records, or the app type).
    pub source: String,
    pub kind: String,
    pub title: String,
    /// The long text (chunked); the title alone when empty.
    pub text: String,
    pub url: Option<String>,
    pub actor: Option<String>,
    pub library: Option<String>,
    pub at: DateTime<Utc>,
}

/// Payload strings worth searching: long string values (bodies,
/// descriptions, subjects), not ids or states.
fn payload_text(payload: &Value) -> String {
    let mut out = String::new();
    if let Value::Object(m) = payload {
        for (k, v) in m {
            if let Value::String(s) = v
                && s.chars().count() >= 24
                && !k.ends_with("_id")
                && !k.ends_with("url")
                && !s.starts_with("http")
            {
                out.push_str("\n\n");
                out.push_str(s);
            }
        }
    }
    out
}

/// An activity record (every collector writes them): title, kind, actor,
/// URL and the long strings of its payload.
pub fn from_activity(a: &StoredActivity) -> SearchDoc {
    let r = &a.record;
    let title = r.title().unwrap_or(r.kind()).to_owned();
    let payload = r.payload();
    let text = format!("{title}{}", payload_text(payload));
    let library = payload
        .get("library")
        .and_then(Value::as_str)
        .map(str::to_owned);
    SearchDoc {
        doc_id: format!("activity:{}:{}", r.source_system(), r.external_id()),
        source: r.source_system().to_owned(),
        kind: r.kind().to_owned(),
        title,
        text,
        url: r.url().map(str::to_owned),
        actor: r.actor().map(str::to_owned),
        library,
        at: r.occurred_at(),
    }
}

/// A documentation page of one library and version (`library-docs`).
pub fn from_doc_page(p: &bdc_collector_library_docs::store::DocPage) -> SearchDoc {
    SearchDoc {
        doc_id: doc_page_id(p),
        source: "library-docs".into(),
        kind: "doc_page".into(),
        title: format!("{} ({} {})", p.title, p.library, p.version),
        text: p.markdown.clone(),
        url: Some(p.url.clone()),
        actor: None,
        library: Some(p.library.clone()),
        at: p.updated_at,
    }
}

pub fn doc_page_id(p: &bdc_collector_library_docs::store::DocPage) -> String {
    format!("library-docs:{}/{}/{}", p.version, p.library, p.url)
}

/// A talk: title, channel and the transcript (`youtube-transcripts`).
pub fn from_talk(
    v: &bdc_collector_youtube_transcripts::store::StoredVideo,
    transcript: &str,
) -> SearchDoc {
    SearchDoc {
        doc_id: format!("youtube:{}", v.video_id),
        source: "youtube".into(),
        kind: "talk".into(),
        title: v.title.clone(),
        text: format!("{}\n\n{transcript}", v.title),
        url: Some(format!("https://www.youtube.com/watch?v={}", v.video_id)),
        actor: Some(v.channel_id.clone()),
        library: None,
        at: v.published_at,
    }
}

/// A Discord message (`discord`, `discord-backfill`).
pub fn from_discord(m: &bdc_collector_discord::store::MessageText) -> SearchDoc {
    let channel = m
        .channel_name
        .clone()
        .unwrap_or_else(|| m.channel_id.clone());
    let first_line: String = m
        .content
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(80)
        .collect();
    SearchDoc {
        doc_id: format!("discord:{}", m.id),
        source: "discord".into(),
        kind: "message".into(),
        title: format!("#{channel}: {first_line}"),
        text: m.content.clone(),
        url: Some(format!(
            "https://discord.com/channels/{}/{}/{}",
            m.guild_id, m.channel_id, m.id
        )),
        actor: Some(m.author_id.clone()),
        library: None,
        at: m.created_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_text_keeps_long_prose_only() {
        let p = serde_json::json!({
            "body": "A long body about strands and executors in asio.",
            "state": "open",
            "html_url": "https://github.com/boostorg/asio/issues/1",
            "node_id": "MDU6SXNzdWUxMjM0NTY3ODkwMTIzNDU2Nzg5MA==",
        });
        let t = payload_text(&p);
        assert!(t.contains("strands"));
        assert!(!t.contains("open") && !t.contains("github.com") && !t.contains("MDU6"));
    }
}
