//! DiscordChatExporter JSON exports, read as a stream.
//!
//! The documented shape (DiscordChatExporter `JsonMessageWriter`):
//!
//! ```json
//! { "guild": {"id": "…", "name": "…", "iconUrl": "…"},
//!   "channel": {"id": "…", "type": "GuildTextChat", "categoryId": "…",
//!               "category": "…", "name": "…", "topic": null},
//!   "dateRange": {…}, "exportedAt": "…",
//!   "messages": [ {"id": "…", "type": "Default", "timestamp": "…",
//!                  "timestampEdited": null, "isPinned": false, "content": "…",
//!                  "author": {"id", "name", "discriminator", "nickname", "isBot", "avatarUrl"},
//!                  "attachments": [{"id", "url", "fileName", "fileSizeBytes"}],
//!                  "reactions": [{"emoji": {"id", "name"}, "count"}],
//!                  "mentions": [{"id", "name", "nickname"}],
//!                  "reference": {"messageId", "channelId", "guildId"} } ],
//!   "messageCount": 1 }
//! ```
//!
//! [`read_export`] walks the file with a serde visitor and hands each
//! message to a callback as soon as it is parsed, so memory stays flat
//! whatever the export size. A message that does not fit the shape is
//! reported (index and reason) and the walk goes on; a file cut in the
//! middle ends the walk with the position (line, column) of the cut, after
//! every message before it was handed over.

use std::fmt;
use std::io::Read;

use chrono::{DateTime, Utc};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

/// `guild` of an export.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Guild {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub icon_url: Option<String>,
}

/// `channel` of an export (or a channel/thread from the REST API).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub id: String,
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub category_id: Option<String>,
    #[serde(default)]
    pub topic: Option<String>,
}

/// A message author / mentioned user.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub discriminator: Option<String>,
    #[serde(default)]
    pub nickname: Option<String>,
    #[serde(default)]
    pub is_bot: bool,
    #[serde(default)]
    pub avatar_url: Option<String>,
}

/// An attachment (metadata only).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub file_name: Option<String>,
    #[serde(default)]
    pub file_size_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Emoji {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reaction {
    pub emoji: Emoji,
    #[serde(default)]
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mention {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub nickname: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub channel_id: Option<String>,
    #[serde(default)]
    pub guild_id: Option<String>,
}

/// One exported message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportMessage {
    pub id: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    pub timestamp: DateTime<Utc>,
    #[serde(default)]
    pub timestamp_edited: Option<DateTime<Utc>>,
    #[serde(default)]
    pub is_pinned: bool,
    #[serde(default)]
    pub content: String,
    pub author: User,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub reactions: Vec<Reaction>,
    #[serde(default)]
    pub mentions: Vec<Mention>,
    #[serde(default)]
    pub reference: Option<Reference>,
}

/// A message ready for the store (from an export or the REST API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcMessage {
    pub id: String,
    pub channel_id: String,
    pub author: User,
    pub kind: String,
    pub content: String,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub reply_to_id: Option<String>,
    pub is_pinned: bool,
    pub attachments: Vec<Attachment>,
    pub reactions: Vec<Reaction>,
    pub mentions: Vec<Mention>,
}

impl DcMessage {
    /// `YYYY-MM` of the creation time.
    pub fn month(&self) -> String {
        self.created_at.format("%Y-%m").to_string()
    }

    /// JSON text of a list field (`[]` when it cannot be serialised).
    pub fn json<T: Serialize>(v: &[T]) -> String {
        serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
    }

    /// `sha256:<hex>` over every stored field: a changed hash means the
    /// row must be rewritten.
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            self.id.as_str(),
            self.channel_id.as_str(),
            self.author.id.as_str(),
            self.kind.as_str(),
            self.content.as_str(),
            &self.created_at.to_rfc3339(),
            &self.edited_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            self.reply_to_id.as_deref().unwrap_or(""),
            if self.is_pinned { "1" } else { "0" },
            &Self::json(&self.attachments),
            &Self::json(&self.reactions),
            &Self::json(&self.mentions),
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        format!("sha256:{}", hex::encode(h.finalize()))
    }
}

/// Whether `s` is a Discord snowflake (decimal digits, at most 20).
pub fn is_snowflake(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

impl ExportMessage {
    /// Into a store message of `channel_id`; `Err` names the bad field.
    pub fn into_message(self, channel_id: &str) -> Result<DcMessage, String> {
        if !is_snowflake(&self.id) {
            return Err(format!("id {:?} is not a snowflake", self.id));
        }
        if !is_snowflake(&self.author.id) {
            return Err(format!("author.id {:?} is not a snowflake", self.author.id));
        }
        Ok(DcMessage {
            id: self.id,
            channel_id: channel_id.to_owned(),
            author: self.author,
            kind: self.kind.unwrap_or_else(|| "Default".into()),
            content: self.content,
            created_at: bdc_storage::normalize_time(self.timestamp),
            edited_at: self.timestamp_edited.map(bdc_storage::normalize_time),
            reply_to_id: self.reference.and_then(|r| r.message_id),
            is_pinned: self.is_pinned,
            attachments: self.attachments,
            reactions: self.reactions,
            mentions: self.mentions,
        })
    }
}

/// What the reader hands over, in file order.
#[derive(Debug)]
pub enum Event {
    Guild(Guild),
    Channel(Channel),
    /// Message number `index` (0-based position in `messages`).
    Message {
        index: u64,
        message: Box<ExportMessage>,
    },
    /// Message number `index` does not fit the documented shape.
    Malformed {
        index: u64,
        reason: String,
    },
}

/// Where and why a file could not be read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    pub line: usize,
    pub column: usize,
    /// Messages handed over before the cut.
    pub after_messages: u64,
    pub reason: String,
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} column {} (after {} messages): {}",
            self.line, self.column, self.after_messages, self.reason
        )
    }
}

/// Walk an export, calling `sink` per event. `Err` when the file stops
/// being JSON of the documented shape (cut, not JSON, no `messages`).
pub fn read_export<R: Read>(input: R, sink: &mut dyn FnMut(Event)) -> Result<u64, Cut> {
    let mut de = serde_json::Deserializer::from_reader(input);
    let mut count = 0u64;
    let res = Root {
        sink,
        count: &mut count,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match res {
        Ok(()) => Ok(count),
        Err(e) => Err(Cut {
            line: e.line(),
            column: e.column(),
            after_messages: count,
            reason: e.to_string(),
        }),
    }
}

struct Root<'a> {
    sink: &'a mut dyn FnMut(Event),
    count: &'a mut u64,
}

impl<'de> DeserializeSeed<'de> for Root<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Root<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a DiscordChatExporter JSON export object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut saw_messages = false;
        let mut saw_channel = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "guild" => (self.sink)(Event::Guild(map.next_value()?)),
                "channel" => {
                    saw_channel = true;
                    (self.sink)(Event::Channel(map.next_value()?));
                }
                "messages" => {
                    if !saw_channel {
                        return Err(serde::de::Error::custom(
                            "`messages` before `channel`: not a DiscordChatExporter export",
                        ));
                    }
                    saw_messages = true;
                    map.next_value_seed(Messages {
                        sink: &mut *self.sink,
                        count: &mut *self.count,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !saw_messages {
            return Err(serde::de::Error::missing_field("messages"));
        }
        Ok(())
    }
}

struct Messages<'a> {
    sink: &'a mut dyn FnMut(Event),
    count: &'a mut u64,
}

impl<'de> DeserializeSeed<'de> for Messages<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Messages<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of messages")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0u64;
        while let Some(value) = seq.next_element::<serde_json::Value>()? {
            match ExportMessage::deserialize(value) {
                Ok(m) => (self.sink)(Event::Message {
                    index,
                    message: Box::new(m),
                }),
                Err(e) => (self.sink)(Event::Malformed {
                    index,
                    reason: e.to_string(),
                }),
            }
            index += 1;
            *self.count = index;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{"guild":{"id":"1","name":"G","iconUrl":null},
      "channel":{"id":"2","type":"GuildTextChat","category":"c","name":"general","topic":null},
      "dateRange":{"after":null,"before":null},
      "messages":[
        {"id":"10","type":"Default","timestamp":"2024-01-02T03:04:05.678+01:00","timestampEdited":null,
         "isPinned":false,"content":"hi","author":{"id":"5","name":"ann","discriminator":"0000","nickname":"Ann","isBot":false},
         "attachments":[],"reactions":[{"emoji":{"id":null,"name":"👍"},"count":2}],"mentions":[],"reference":null},
        {"id":"11","timestamp":"not a time","author":{"id":"5","name":"ann"}},
        {"id":"12","timestamp":"2024-01-02T03:05:00+00:00","content":"re","author":{"id":"6","name":"bob"},
         "reference":{"messageId":"10","channelId":"2","guildId":"1"}}
      ],"messageCount":3}"#;

    fn events(s: &str) -> (Vec<Event>, Result<u64, Cut>) {
        let mut ev = Vec::new();
        let r = read_export(s.as_bytes(), &mut |e| ev.push(e));
        (ev, r)
    }

    #[test]
    fn reads_the_documented_shape_and_names_a_bad_message() {
        let (ev, r) = events(ONE);
        assert_eq!(r, Ok(3));
        assert!(matches!(&ev[0], Event::Guild(g) if g.name == "G"));
        assert!(matches!(&ev[1], Event::Channel(c) if c.name == "general"));
        assert!(matches!(&ev[2], Event::Message { index: 0, message } if message.content == "hi"));
        assert!(
            matches!(&ev[3], Event::Malformed { index: 1, reason } if reason.contains("input contains invalid characters") || reason.contains("premature end") || !reason.is_empty())
        );
        let Event::Message { message, .. } = &ev[4] else {
            panic!("{:?}", ev[4])
        };
        let m = (**message).clone().into_message("2").unwrap();
        assert_eq!(m.reply_to_id.as_deref(), Some("10"));
    }

    #[test]
    fn a_cut_file_reports_its_position_after_the_messages_before_it() {
        let cut = &ONE[..ONE.find(r#"{"id":"12""#).unwrap() + 20];
        let (ev, r) = events(cut);
        let cut = r.unwrap_err();
        assert_eq!(cut.after_messages, 2);
        assert!(cut.line >= 8, "{cut}");
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, Event::Message { .. }))
                .count(),
            1
        );
    }

    #[test]
    fn not_an_export() {
        assert!(events("[1,2]").1.is_err());
        assert!(events(r#"{"guild":{"id":"1","name":"G"}}"#).1.is_err());
    }
}
