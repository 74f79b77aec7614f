//! Serde types of the Slack JSON this collector reads: Web API answers
//! (`users.list`, `conversations.list`, `conversations.members`,
//! `conversations.history`, `conversations.replies`) and the files of a
//! standard workspace export (`users.json`, `channels.json`, day files),
//! which use the same object shapes. Every field not needed to identify a
//! row is optional: Slack omits what does not apply.
//!
//! Messages are read as [`serde_json::Value`] first and converted one by
//! one ([`SlMessage::from_value`]), so one odd message is counted and
//! skipped instead of failing its page.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The envelope every Web API answer shares.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Meta {
    #[serde(default)]
    pub ok: bool,
    #[serde(default)]
    pub error: Option<String>,
    /// The scope a `missing_scope` error needs.
    #[serde(default)]
    pub needed: Option<String>,
    #[serde(default)]
    pub response_metadata: Option<ResponseMetadata>,
}

impl Meta {
    /// The cursor of the next page (`None` when empty or absent).
    pub fn next_cursor(&self) -> Option<&str> {
        self.response_metadata
            .as_ref()
            .and_then(|m| m.next_cursor.as_deref())
            .filter(|c| !c.is_empty())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResponseMetadata {
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `users.list`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UsersList {
    #[serde(default)]
    pub members: Vec<Value>,
}

/// `conversations.list`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConversationsList {
    #[serde(default)]
    pub channels: Vec<Value>,
}

/// `conversations.members`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MembersList {
    #[serde(default)]
    pub members: Vec<String>,
}

/// `conversations.history` / `conversations.replies`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessagesList {
    #[serde(default)]
    pub messages: Vec<Value>,
    #[serde(default)]
    pub has_more: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    #[serde(default)]
    pub real_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
}

/// A user (`users.list` member, `users.json` entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub real_name: Option<String>,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub is_bot: bool,
    #[serde(default)]
    pub tz: Option<String>,
    /// Unix seconds of the last profile change.
    #[serde(default)]
    pub updated: Option<i64>,
    #[serde(default)]
    pub profile: Profile,
}

impl User {
    /// The handle activity records carry as `actor`.
    pub fn actor(&self) -> &str {
        self.name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or(self.id.as_str())
    }

    pub fn display_name(&self) -> Option<&str> {
        self.profile
            .display_name
            .as_deref()
            .filter(|s| !s.trim().is_empty())
    }

    pub fn real_name(&self) -> Option<&str> {
        self.real_name
            .as_deref()
            .or(self.profile.real_name.as_deref())
            .filter(|s| !s.trim().is_empty())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextValue {
    #[serde(default)]
    pub value: String,
}

/// A channel (`conversations.list` entry, `channels.json` / `groups.json`
/// entry; exports list `members` inline).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub is_private: bool,
    #[serde(default)]
    pub is_group: bool,
    #[serde(default)]
    pub is_archived: bool,
    #[serde(default)]
    pub is_member: Option<bool>,
    /// Unix seconds.
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub creator: Option<String>,
    #[serde(default)]
    pub topic: Option<TextValue>,
    #[serde(default)]
    pub purpose: Option<TextValue>,
    #[serde(default)]
    pub num_members: Option<i64>,
    #[serde(default)]
    pub members: Option<Vec<String>>,
    #[serde(default)]
    pub context_team_id: Option<String>,
}

impl Channel {
    pub fn private(&self) -> bool {
        self.is_private || self.is_group
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edited {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub ts: Option<String>,
}

/// One reaction of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub name: String,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub count: i64,
}

/// A file shared in a message (metadata only; never downloaded).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct File {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub mimetype: Option<String>,
    #[serde(default)]
    pub filetype: Option<String>,
    #[serde(default)]
    pub size: Option<i64>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub permalink: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserProfile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub real_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// A message as Slack sends it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawMessage {
    #[serde(default)]
    pub subtype: Option<String>,
    #[serde(default)]
    pub ts: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub bot_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub thread_ts: Option<String>,
    #[serde(default)]
    pub reply_count: Option<i64>,
    #[serde(default)]
    pub edited: Option<Edited>,
    #[serde(default)]
    pub reactions: Option<Vec<Reaction>>,
    #[serde(default)]
    pub files: Option<Vec<File>>,
    #[serde(default)]
    pub user_profile: Option<UserProfile>,
    /// `message_changed`: the new version.
    #[serde(default)]
    pub message: Option<Box<RawMessage>>,
    /// `message_changed` / `message_deleted`: the version before.
    #[serde(default)]
    pub previous_message: Option<Box<RawMessage>>,
    /// `message_deleted`: the deleted message's `ts`.
    #[serde(default)]
    pub deleted_ts: Option<String>,
}

/// A message ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlMessage {
    pub channel_id: String,
    pub ts: String,
    pub posted_at: DateTime<Utc>,
    /// The thread parent's `ts` (equal to `ts` on a parent with replies).
    pub thread_ts: Option<String>,
    pub user_id: Option<String>,
    /// `user_profile.name` (exports), or the bot's `username`.
    pub user_name: Option<String>,
    pub text: String,
    pub subtype: Option<String>,
    pub edited_ts: Option<String>,
    pub reply_count: i64,
    pub reactions: Vec<Reaction>,
    pub files: Vec<File>,
    /// `message_deleted` / `tombstone`: mark the stored row deleted.
    pub deleted: bool,
}

/// A Slack `ts` (`"1704067200.000100"`) as a time (microseconds).
pub fn ts_time(ts: &str) -> Option<DateTime<Utc>> {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, "0"));
    let secs: i64 = secs.parse().ok()?;
    if frac.is_empty() || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros: u32 = format!("{frac:0<6}").parse().ok()?;
    DateTime::from_timestamp(secs, micros * 1000)
}

/// Whether `ts` is a well-formed Slack timestamp.
pub fn valid_ts(ts: &str) -> bool {
    ts_time(ts).is_some()
}

/// Compare two Slack timestamps as times (`None` when one is malformed).
pub fn ts_cmp(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    Some(ts_time(a)?.cmp(&ts_time(b)?))
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

impl SlMessage {
    /// Convert one message of `channel_id` (API page item or export day
    /// file item). `message_changed` yields the new version;
    /// `message_deleted` yields the deleted message marked deleted.
    pub fn from_value(channel_id: &str, v: Value) -> Result<SlMessage, String> {
        let raw: RawMessage = serde_json::from_value(v).map_err(|e| e.to_string())?;
        Self::from_raw(channel_id, raw)
    }

    pub fn from_raw(channel_id: &str, raw: RawMessage) -> Result<SlMessage, String> {
        match raw.subtype.as_deref() {
            Some("message_changed") => {
                let Some(new) = raw.message else {
                    return Err("message_changed without `message`".into());
                };
                let mut m = Self::from_raw(channel_id, *new)?;
                if m.edited_ts.is_none() {
                    m.edited_ts = raw.ts;
                }
                Ok(m)
            }
            Some("message_deleted") => {
                let Some(ts) = raw
                    .deleted_ts
                    .or_else(|| raw.previous_message.as_ref().and_then(|p| p.ts.clone()))
                else {
                    return Err("message_deleted without `deleted_ts`".into());
                };
                let mut m = match raw.previous_message {
                    Some(prev) => Self::from_raw(channel_id, *prev)?,
                    None => Self::plain(channel_id, RawMessage::default(), ts.clone())?,
                };
                m.ts = ts;
                m.posted_at = ts_time(&m.ts).ok_or_else(|| format!("bad ts {:?}", m.ts))?;
                m.deleted = true;
                Ok(m)
            }
            _ => {
                let Some(ts) = raw.ts.clone() else {
                    return Err("message without `ts`".into());
                };
                let tomb = raw.subtype.as_deref() == Some("tombstone");
                let mut m = Self::plain(channel_id, raw, ts)?;
                m.deleted = tomb;
                Ok(m)
            }
        }
    }

    fn plain(channel_id: &str, raw: RawMessage, ts: String) -> Result<SlMessage, String> {
        let posted_at = ts_time(&ts).ok_or_else(|| format!("bad ts {ts:?}"))?;
        let thread_ts = nonempty(raw.thread_ts);
        if let Some(t) = &thread_ts
            && !valid_ts(t)
        {
            return Err(format!("bad thread_ts {t:?}"));
        }
        let user_name = raw
            .user_profile
            .and_then(|p| nonempty(p.name))
            .or_else(|| nonempty(raw.username));
        Ok(SlMessage {
            channel_id: channel_id.to_owned(),
            ts,
            posted_at,
            thread_ts,
            user_id: nonempty(raw.user).or_else(|| nonempty(raw.bot_id)),
            user_name,
            text: raw.text.unwrap_or_default(),
            subtype: nonempty(raw.subtype),
            edited_ts: raw.edited.and_then(|e| nonempty(e.ts)),
            reply_count: raw.reply_count.unwrap_or(0),
            reactions: raw.reactions.unwrap_or_default(),
            files: raw
                .files
                .unwrap_or_default()
                .into_iter()
                .filter(|f| !f.id.is_empty())
                .collect(),
            deleted: false,
        })
    }

    /// A thread parent whose replies are worth fetching.
    pub fn has_replies(&self) -> bool {
        self.reply_count > 0 && self.thread_ts.as_deref().is_none_or(|t| t == self.ts)
    }

    /// The version time: edit time, else post time.
    pub fn version_ts(&self) -> &str {
        self.edited_ts.as_deref().unwrap_or(&self.ts)
    }

    /// SHA-256 of what a stored row shows (text, author, thread, edit,
    /// reactions, files): an edit or a new reaction changes it.
    pub fn content_hash(&self) -> String {
        let files: Vec<&str> = self.files.iter().map(|f| f.id.as_str()).collect();
        let repr = serde_json::json!([
            self.user_id,
            self.text,
            self.subtype,
            self.thread_ts,
            self.edited_ts,
            self.reply_count,
            self.reactions,
            files,
        ]);
        let mut h = Sha256::new();
        h.update(repr.to_string().as_bytes());
        format!("sha256:{}", hex::encode(h.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps() {
        let t = ts_time("1704067200.000100").unwrap();
        assert_eq!(t.timestamp(), 1_704_067_200);
        assert_eq!(t.timestamp_subsec_micros(), 100);
        assert!(ts_time("x.1").is_none());
        assert!(ts_time("1.1234567").is_none());
        assert_eq!(ts_cmp("9.000001", "10.0"), Some(std::cmp::Ordering::Less));
    }

    #[test]
    fn subtypes() {
        let m = SlMessage::from_value(
            "C1",
            json!({"type":"message","subtype":"message_changed","ts":"5.000000",
                   "message":{"ts":"1.000000","user":"U1","text":"new","edited":{"user":"U1","ts":"5.000000"}}}),
        )
        .unwrap();
        assert_eq!(
            (m.ts.as_str(), m.text.as_str(), m.edited_ts.as_deref()),
            ("1.000000", "new", Some("5.000000"))
        );
        let d = SlMessage::from_value(
            "C1",
            json!({"type":"message","subtype":"message_deleted","ts":"6.0","deleted_ts":"2.000000",
                   "previous_message":{"ts":"2.000000","user":"U2","text":"old"}}),
        )
        .unwrap();
        assert!(d.deleted && d.ts == "2.000000" && d.text == "old");
        let t = SlMessage::from_value("C1", json!({"subtype":"tombstone","ts":"3.0","text":"This message was deleted.","reply_count":2,"thread_ts":"3.0"})).unwrap();
        assert!(t.deleted && t.has_replies());
        assert!(SlMessage::from_value("C1", json!({"text":"no ts"})).is_err());
        assert!(SlMessage::from_value("C1", json!({"ts": 5})).is_err());
    }
}
