//! The Discord REST API v10 client: GET `{DISCORD_API_URL}{path}` through
//! [`bdc_http::HttpClient`] (`Authorization: Bot <token>` header, never in
//! the URL, so the raw archive and logs never hold it; retries; raw
//! archive; replay), plus Discord's rate limits:
//!
//! * **per-route buckets**: every answer names its bucket
//!   (`X-RateLimit-Bucket`) with `X-RateLimit-Remaining` and
//!   `X-RateLimit-Reset-After` (fractional seconds). When a bucket (per
//!   major parameter: guild or channel id) has nothing left, the next call
//!   on it waits `Reset-After` first ([`DiscordApi::get`]);
//! * **`429`**: `Retry-After` (or the body's `retry_after`, fractional
//!   seconds) is waited through the injectable clock and the call retried
//!   by the HTTP client. Calls are made one at a time, so the wait of a
//!   global `429` (`"global": true`) holds every route.
//!
//! Also: snowflakes ([`snowflake_of`]) and the conversion of the API's
//! channel / message objects into the store's types ([`channel_of`],
//! [`message_of`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bdc_http::{Clock, HttpClient, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{DiscordError, http};
use crate::export::{
    Attachment, Channel, DcMessage, Emoji, Guild, Mention, Reaction, User, is_snowflake,
};

/// Messages per page (Discord's maximum).
pub const PAGE_LIMIT: usize = 100;
/// The Discord epoch (2015-01-01T00:00:00Z) in Unix milliseconds.
pub const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;

/// The smallest snowflake of instant `t`: `(ms - DISCORD_EPOCH) << 22`.
pub fn snowflake_of(t: DateTime<Utc>) -> u64 {
    let ms = (t.timestamp_millis() - DISCORD_EPOCH_MS).max(0);
    (ms as u64) << 22
}

/// The creation time of a snowflake.
pub fn time_of(id: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(i64::try_from(id >> 22).ok()? + DISCORD_EPOCH_MS)
}

/// A snowflake as a number (`None` if it is not one).
pub fn id_num(id: &str) -> Option<u64> {
    if is_snowflake(id) {
        id.parse().ok()
    } else {
        None
    }
}

#[derive(Debug, Clone, Default)]
struct BucketState {
    remaining: u64,
    reset_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct Buckets {
    /// Route (method + template) → bucket hash.
    route_bucket: HashMap<String, String>,
    /// `bucket:major` (or `route:major` before the hash is known) → state.
    state: HashMap<String, BucketState>,
}

/// The REST API of one run.
#[derive(Debug)]
pub struct DiscordApi {
    client: HttpClient,
    clock: Arc<dyn Clock>,
    buckets: Mutex<Buckets>,
    bucket_waits: AtomicU64,
}

impl DiscordApi {
    pub fn new(client: HttpClient, clock: Arc<dyn Clock>) -> Self {
        DiscordApi {
            client,
            clock,
            buckets: Mutex::new(Buckets::default()),
            bucket_waits: AtomicU64::new(0),
        }
    }

    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    /// Waits made because a bucket had no requests left.
    pub fn bucket_waits(&self) -> u64 {
        self.bucket_waits.load(Ordering::Relaxed)
    }

    fn key(b: &Buckets, route: &str, major: &str) -> String {
        match b.route_bucket.get(route) {
            Some(bucket) => format!("{bucket}:{major}"),
            None => format!("{route}:{major}"),
        }
    }

    /// Wait for `route`'s bucket if it has nothing left.
    async fn pace(&self, route: &str, major: &str) {
        let now = self.clock.now();
        let wait = {
            let Ok(b) = self.buckets.lock() else { return };
            let key = Self::key(&b, route, major);
            match b.state.get(&key) {
                Some(s) if s.remaining == 0 => s
                    .reset_at
                    .and_then(|r| (r - now).to_std().ok())
                    .filter(|d| !d.is_zero()),
                _ => None,
            }
        };
        if let Some(wait) = wait {
            self.bucket_waits.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("bdc_discord_rate_limit_waits_total").increment(1);
            tracing::info!(
                collector = crate::live::NAME,
                route,
                wait_s = wait.as_secs_f64(),
                "rate-limit bucket spent; waiting for its reset"
            );
            self.clock.sleep(wait).await;
        }
    }

    /// Note the bucket headers of an answer.
    fn note(&self, route: &str, major: &str, resp: &Response) {
        let h = &resp.headers;
        let remaining = h
            .get("x-ratelimit-remaining")
            .and_then(|v| v.trim().parse::<u64>().ok());
        let reset_after = h
            .get("x-ratelimit-reset-after")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        let Ok(mut b) = self.buckets.lock() else {
            return;
        };
        if let Some(bucket) = h.get("x-ratelimit-bucket") {
            b.route_bucket.insert(route.to_owned(), bucket.clone());
        }
        let Some(remaining) = remaining else { return };
        let reset_at = reset_after
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| self.clock.now() + d);
        let key = Self::key(&b, route, major);
        b.state.insert(
            key,
            BucketState {
                remaining,
                reset_at,
            },
        );
    }

    /// GET `path` on `route` (e.g. `GET /channels/{id}/messages`; `major`
    /// is the guild or channel id) and decode `T`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        route: &str,
        major: &str,
        path: &str,
    ) -> Result<(T, Response), DiscordError> {
        if !self.client.is_replay() {
            self.pace(route, major).await;
        }
        let resp = self
            .client
            .get(path)
            .await
            .map_err(http(format!("calling Discord {route}")))?;
        self.note(route, major, &resp);
        let data = decode(route, &resp)?;
        Ok((data, resp))
    }
}

/// Decode an answer of `route`, naming the route on failure.
pub fn decode<T: DeserializeOwned>(route: &str, resp: &Response) -> Result<T, DiscordError> {
    serde_json::from_slice(&resp.body).map_err(|source| DiscordError::Json {
        route: route.to_owned(),
        url: resp.url.clone(),
        source,
    })
}

/// `GET /guilds/{id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiGuild {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub icon: Option<String>,
}

impl ApiGuild {
    pub fn into_guild(self) -> Guild {
        let icon_url = self
            .icon
            .map(|h| format!("https://cdn.discordapp.com/icons/{}/{h}.png", self.id));
        Guild {
            id: self.id,
            name: self.name,
            icon_url,
        }
    }
}

/// A channel or thread object.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiChannel {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub thread_metadata: Option<ThreadMetadata>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ThreadMetadata {
    #[serde(default)]
    pub archive_timestamp: Option<String>,
}

/// `GET …/threads/active` and `…/threads/archived/public`.
#[derive(Debug, Clone, Deserialize)]
pub struct ThreadList {
    pub threads: Vec<Value>,
    #[serde(default)]
    pub has_more: bool,
}

/// Channel types.
pub const GUILD_TEXT: i64 = 0;
pub const GUILD_CATEGORY: i64 = 4;
pub const GUILD_ANNOUNCEMENT: i64 = 5;
pub const ANNOUNCEMENT_THREAD: i64 = 10;
pub const PUBLIC_THREAD: i64 = 11;
pub const PRIVATE_THREAD: i64 = 12;
pub const GUILD_FORUM: i64 = 15;
pub const GUILD_MEDIA: i64 = 16;

impl ApiChannel {
    /// Text channels and threads hold messages.
    pub fn has_messages(&self) -> bool {
        matches!(
            self.kind,
            GUILD_TEXT | GUILD_ANNOUNCEMENT | ANNOUNCEMENT_THREAD | PUBLIC_THREAD | PRIVATE_THREAD
        )
    }

    /// Channels whose archived threads are listed.
    pub fn has_threads(&self) -> bool {
        matches!(
            self.kind,
            GUILD_TEXT | GUILD_ANNOUNCEMENT | GUILD_FORUM | GUILD_MEDIA
        )
    }

    pub fn is_thread(&self) -> bool {
        matches!(
            self.kind,
            ANNOUNCEMENT_THREAD | PUBLIC_THREAD | PRIVATE_THREAD
        )
    }

    /// DiscordChatExporter's name of the type (what `discord-backfill`
    /// stores).
    pub fn kind_name(&self) -> String {
        match self.kind {
            GUILD_TEXT => "GuildTextChat".into(),
            2 => "GuildVoiceChat".into(),
            GUILD_CATEGORY => "GuildCategory".into(),
            GUILD_ANNOUNCEMENT => "GuildNews".into(),
            ANNOUNCEMENT_THREAD => "GuildNewsThread".into(),
            PUBLIC_THREAD => "GuildPublicThread".into(),
            PRIVATE_THREAD => "GuildPrivateThread".into(),
            13 => "GuildStageVoice".into(),
            GUILD_FORUM => "GuildForum".into(),
            n => format!("Type{n}"),
        }
    }
}

/// The store's channel of `c`: `category`/`category_id` are the parent
/// (category of a channel, channel of a thread), as in exports.
pub fn channel_of(c: &ApiChannel, all: &HashMap<String, ApiChannel>) -> Channel {
    let parent_name = c
        .parent_id
        .as_ref()
        .and_then(|p| all.get(p))
        .and_then(|p| p.name.clone());
    Channel {
        id: c.id.clone(),
        name: c.name.clone().unwrap_or_else(|| c.id.clone()),
        kind: Some(c.kind_name()),
        category: parent_name,
        category_id: c.parent_id.clone(),
        topic: c.topic.clone(),
    }
}

#[derive(Debug, Deserialize)]
struct ApiUser {
    id: String,
    username: String,
    #[serde(default)]
    global_name: Option<String>,
    #[serde(default)]
    discriminator: Option<String>,
    #[serde(default)]
    bot: bool,
    #[serde(default)]
    avatar: Option<String>,
}

impl ApiUser {
    fn into_user(self) -> User {
        let avatar_url = self
            .avatar
            .map(|h| format!("https://cdn.discordapp.com/avatars/{}/{h}.png", self.id));
        User {
            id: self.id,
            name: self.username,
            discriminator: self.discriminator,
            nickname: self.global_name,
            is_bot: self.bot,
            avatar_url,
        }
    }
}

#[derive(Debug, Deserialize)]
struct ApiAttachment {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApiEmoji {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApiReaction {
    #[serde(default)]
    count: u64,
    emoji: ApiEmoji,
}

#[derive(Debug, Deserialize)]
struct ApiReference {
    #[serde(default)]
    message_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApiMessage {
    id: String,
    #[serde(default)]
    channel_id: Option<String>,
    author: ApiUser,
    #[serde(default)]
    content: String,
    timestamp: DateTime<Utc>,
    #[serde(default)]
    edited_timestamp: Option<DateTime<Utc>>,
    #[serde(default, rename = "type")]
    kind: i64,
    #[serde(default)]
    pinned: bool,
    #[serde(default)]
    attachments: Vec<ApiAttachment>,
    #[serde(default)]
    reactions: Vec<ApiReaction>,
    #[serde(default)]
    mentions: Vec<ApiUser>,
    #[serde(default)]
    message_reference: Option<ApiReference>,
}

/// DiscordChatExporter's name of a message type.
fn message_kind(n: i64) -> String {
    match n {
        0 => "Default".into(),
        1 => "RecipientAdd".into(),
        2 => "RecipientRemove".into(),
        3 => "Call".into(),
        4 => "ChannelNameChange".into(),
        5 => "ChannelIconChange".into(),
        6 => "ChannelPinnedMessage".into(),
        7 => "GuildMemberJoin".into(),
        18 => "ThreadCreated".into(),
        19 => "Reply".into(),
        n => format!("Type{n}"),
    }
}

/// A message object of channel `channel_id` into the store's message;
/// `Err` names the bad field.
pub fn message_of(channel_id: &str, v: Value) -> Result<DcMessage, String> {
    let m: ApiMessage = serde_json::from_value(v).map_err(|e| e.to_string())?;
    if !is_snowflake(&m.id) {
        return Err(format!("id {:?} is not a snowflake", m.id));
    }
    if !is_snowflake(&m.author.id) {
        return Err(format!("author.id {:?} is not a snowflake", m.author.id));
    }
    if let Some(c) = &m.channel_id
        && c != channel_id
    {
        return Err(format!(
            "channel_id {c:?} is not the channel asked for ({channel_id})"
        ));
    }
    Ok(DcMessage {
        id: m.id,
        channel_id: channel_id.to_owned(),
        author: m.author.into_user(),
        kind: message_kind(m.kind),
        content: m.content,
        created_at: bdc_storage::normalize_time(m.timestamp),
        edited_at: m.edited_timestamp.map(bdc_storage::normalize_time),
        reply_to_id: m.message_reference.and_then(|r| r.message_id),
        is_pinned: m.pinned,
        attachments: m
            .attachments
            .into_iter()
            .map(|a| Attachment {
                id: a.id,
                url: a.url,
                file_name: a.filename,
                file_size_bytes: a.size,
            })
            .collect(),
        reactions: m
            .reactions
            .into_iter()
            .map(|r| Reaction {
                emoji: Emoji {
                    id: r.emoji.id,
                    name: r.emoji.name.unwrap_or_default(),
                },
                count: r.count,
            })
            .collect(),
        mentions: m
            .mentions
            .into_iter()
            .map(|u| Mention {
                id: u.id,
                name: Some(u.username),
                nickname: u.global_name,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn snowflakes() {
        let t = DateTime::parse_from_rfc3339("2015-01-01T00:00:01Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(snowflake_of(t), 1000 << 22);
        assert_eq!(time_of(1000 << 22), Some(t));
        // The documented example: 175928847299117063 = 2016-04-30T11:18:25.796Z.
        let t = time_of(175_928_847_299_117_063).unwrap();
        assert_eq!(t.to_rfc3339(), "2016-04-30T11:18:25.796+00:00");
        assert_eq!(snowflake_of(t), 175_928_847_299_117_063 >> 22 << 22);
        assert_eq!(id_num("12"), Some(12));
        assert_eq!(id_num("x"), None);
    }

    #[test]
    fn messages() {
        let m = message_of(
            "10",
            json!({"id": "5", "channel_id": "10", "type": 19, "content": "hi",
                   "timestamp": "2024-01-02T03:04:05.000000+00:00", "edited_timestamp": null,
                   "pinned": false,
                   "author": {"id": "7", "username": "ann", "global_name": "Ann", "discriminator": "0", "avatar": "abc"},
                   "attachments": [{"id": "1", "filename": "a.txt", "size": 3, "url": "https://cdn/a.txt"}],
                   "reactions": [{"count": 2, "emoji": {"id": null, "name": "👍"}}],
                   "mentions": [{"id": "8", "username": "bob"}],
                   "message_reference": {"message_id": "4", "channel_id": "10"}}),
        )
        .unwrap();
        assert_eq!(m.kind, "Reply");
        assert_eq!(m.reply_to_id.as_deref(), Some("4"));
        assert_eq!(m.author.nickname.as_deref(), Some("Ann"));
        assert_eq!(m.attachments[0].file_name.as_deref(), Some("a.txt"));
        assert!(message_of("10", json!({"id": "x"})).is_err());
        assert!(
            message_of(
                "10",
                json!({"id": "x1", "author": {"id": "7", "username": "a"}, "timestamp": "2024-01-02T03:04:05Z"})
            )
            .unwrap_err()
            .contains("snowflake")
        );
    }
}
