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
    /// The source row's version (its `updated_at` in microseconds; 0 when
    /// the source has none): a re-read of an already indexed version is
    /// skipped.
    pub version: u64,
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
        version: u64::try_from(a.updated_at.timestamp_micros()).unwrap_or(0),
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
        version: 0,
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
    let text = format!("{}\n\n{transcript}", v.title);
    SearchDoc {
        doc_id: format!("youtube:{}", v.video_id),
        source: "youtube".into(),
        kind: "talk".into(),
        title: v.title.clone(),
        url: Some(format!("https://www.youtube.com/watch?v={}", v.video_id)),
        actor: Some(v.channel_id.clone()),
        library: None,
        at: v.published_at,
        // Talks have no change time: the version is a hash of what is
        // indexed, so an unchanged talk is not sent again. (std's hasher
        // may change between Rust releases: that costs one re-send.)
        version: {
            use std::hash::{Hash, Hasher};
            let mut h = std::hash::DefaultHasher::new();
            (&v.title, &text, &v.channel_id, v.published_at).hash(&mut h);
            h.finish()
        },
        text,
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
        version: 0,
    }
}

/// A Discord reply chain (`discord`, `discord-backfill`): the root
/// message and its replies, one document under the root's id; deleted
/// messages are left out. None when nothing is left (then the document
/// is deleted).
pub fn from_discord_chain(
    chain: &[bdc_collector_discord::store::MessageText],
) -> Option<SearchDoc> {
    let root = chain.first()?;
    let live: Vec<&bdc_collector_discord::store::MessageText> =
        chain.iter().filter(|m| !m.deleted).collect();
    let first = live.first()?;
    let mut doc = from_discord(first);
    doc.doc_id = format!("discord:{}", root.id);
    if live.len() > 1 {
        doc.kind = "conversation".into();
        doc.text = live
            .iter()
            .map(|m| {
                let who = m.author_name.as_deref().unwrap_or(&m.author_id);
                format!("{who}: {}", m.content)
            })
            .collect::<Vec<_>>()
            .join("\n\n");
    }
    Some(doc)
}

/// The document id of one Slack user's messages in one channel within one
/// hour (`hour_start`: Unix seconds, a multiple of 3,600).
pub fn slack_doc_id(channel_id: &str, user_id: Option<&str>, hour_start: i64) -> String {
    format!("slack:{channel_id}:{}:{hour_start}", user_id.unwrap_or("-"))
}

/// What a Slack document needs besides its messages.
pub struct SlackGroup<'a> {
    pub channel_id: &'a str,
    pub channel_name: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub hour_start: i64,
    /// `<domain>.slack.com`, for the link back.
    pub domain: Option<&'a str>,
}

/// One Slack user's messages in one channel within one hour, as the
/// original groups them. None when no message is left.
pub fn from_slack_hour(
    g: &SlackGroup<'_>,
    messages: &[bdc_collector_slack::store::ConversationMessage],
) -> Option<SearchDoc> {
    let first = messages.first()?;
    let channel = g.channel_name.unwrap_or(g.channel_id);
    let who = g.actor.or(g.user_id).unwrap_or("unknown");
    let at = first.posted_at;
    Some(SearchDoc {
        doc_id: slack_doc_id(g.channel_id, g.user_id, g.hour_start),
        source: "slack".into(),
        kind: if messages.len() > 1 {
            "conversation".into()
        } else {
            "message".into()
        },
        title: format!("#{channel}: {who}, {}", at.format("%Y-%m-%d %H:00 UTC")),
        text: messages
            .iter()
            .map(|m| m.text.as_str())
            .collect::<Vec<_>>()
            .join("\n\n"),
        url: g.domain.map(|d| {
            format!(
                "https://{d}.slack.com/archives/{}/p{}",
                g.channel_id,
                first.ts.replace('.', "")
            )
        }),
        actor: g.actor.or(g.user_id).map(str::to_owned),
        library: None,
        at,
        version: 0,
    })
}

/// A mailing-list message with its body and its thread (`mailing-list`).
pub fn from_mail(m: &bdc_collector_mailing_list::store::MessageText) -> SearchDoc {
    let title = m
        .subject
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "(no subject)".into());
    let mut text = title.clone();
    if let Some(t) = m.thread_subject.as_deref().filter(|t| {
        !t.trim().is_empty() && t.trim_start_matches("Re: ") != title.trim_start_matches("Re: ")
    }) {
        text.push_str("\n\nThread: ");
        text.push_str(t);
    }
    if !m.body_text.trim().is_empty() {
        text.push_str("\n\n");
        text.push_str(&m.body_text);
    }
    SearchDoc {
        doc_id: mail_doc_id(&m.list, &m.message_id),
        source: "mailing-list".into(),
        kind: "message".into(),
        title,
        text,
        url: m.archive_url.clone(),
        actor: m.from_email.clone().or_else(|| m.from_name.clone()),
        library: None,
        at: m.sent_at.unwrap_or(m.updated_at),
        version: u64::try_from(m.updated_at.timestamp_micros()).unwrap_or(0),
    }
}

/// The document id of a mailing-list message.
pub fn mail_doc_id(list: &str, message_id: &str) -> String {
    format!("mailing-list:{list}:{message_id}")
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
