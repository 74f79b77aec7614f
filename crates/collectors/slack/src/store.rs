//! The Slack store: schema part `slack` (tables `sl_team`, `sl_users`,
//! `sl_channels`, `sl_channel_members`, `sl_messages`, `sl_reactions`,
//! `sl_files`) and its write paths. Each write is ONE transaction with
//! multi-row statements of at most [`CHUNK`] rows; a message page's
//! checkpoint moves in the same transaction ([`write_messages`]).
//!
//! * A message row is rewritten only when its content hash changed and the
//!   incoming version (edit time, else post time) is not older than the
//!   stored one: re-imports converge and an old export never undoes an
//!   edit. Reactions and files of a rewritten message are replaced.
//! * A deleted message (`message_deleted`, `tombstone`) sets `deleted`;
//!   the row (with its last text) stays. Deletion is final.
//! * Users record identity profiles (source `slack`) through
//!   [`bdc_identity::record_profiles`] in the same transaction.
//! * Activity records (`source_system = slack`, `kind = message`,
//!   `external_id = CHANNEL:TS`) are written for inserted, updated and
//!   newly deleted rows only.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bdc_core::ActivityRecord;
use bdc_identity::ProfileInput;
use bdc_storage::activity::{UpsertCounts, upsert_in_tx};
use bdc_storage::checkpoints::CheckpointWrite;
use bdc_storage::{
    MigrationFile, QueryContext, SchemaPart, Storage, StorageError, Tx, now, on_pool, on_tx,
};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::QueryBuilder;

use crate::model::{Channel, SlMessage, User, ts_time};

/// `source_system` of the activity records and `source` of the profiles.
pub const SOURCE_SYSTEM: &str = "slack";

/// The collector's schema part (registered in `crates/bdc/src/schema.rs`).
pub static SCHEMA: SchemaPart = SchemaPart {
    name: "slack",
    migrations: &[
        MigrationFile {
            version: 1,
            description: "slack team, users, channels, memberships, messages, reactions, files",
            sqlite: include_str!("../migrations/sqlite_0001.sql"),
            postgres: include_str!("../migrations/postgres_0001.sql"),
        },
        MigrationFile {
            version: 2,
            description: "slack message change feed index",
            sqlite: include_str!("../migrations/sqlite_0002.sql"),
            postgres: include_str!("../migrations/postgres_0002.sql"),
        },
    ],
};

/// Rows per multi-row statement (at most 18 binds a row).
pub const CHUNK: usize = 500;

/// Inserted / updated / unchanged rows of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl RowCounts {
    pub fn add(&mut self, o: RowCounts) {
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
    }
}

/// What one message write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageCounts {
    pub rows: RowCounts,
    /// Rows newly marked deleted (or stored deleted).
    pub deleted: u64,
    pub reactions: u64,
    pub files: u64,
    pub activity: UpsertCounts,
}

impl MessageCounts {
    pub fn add(&mut self, o: MessageCounts) {
        self.rows.add(o.rows);
        self.deleted += o.deleted;
        self.reactions += o.reactions;
        self.files += o.files;
        self.activity.add(o.activity);
    }
}

fn time(secs: Option<i64>) -> Option<DateTime<Utc>> {
    secs.filter(|s| *s > 0)
        .and_then(|s| DateTime::from_timestamp(s, 0))
}

fn split(rows: &[(String, DateTime<Utc>, DateTime<Utc>)], total: usize) -> RowCounts {
    let inserted = rows.iter().filter(|(_, f, u)| f == u).count() as u64;
    RowCounts {
        inserted,
        updated: rows.len() as u64 - inserted,
        unchanged: total as u64 - rows.len() as u64,
    }
}

async fn team_in_tx(tx: &mut Tx, team_id: Option<&str>) -> Result<(), StorageError> {
    let Some(team) = team_id.filter(|t| !t.trim().is_empty()) else {
        return Ok(());
    };
    let stamp = now();
    on_tx!(tx, t => {
        sqlx::query(
            "INSERT INTO sl_team (id, name, domain, first_seen_at, updated_at) VALUES ($1, NULL, NULL, $2, $2)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(team)
        .bind(stamp)
        .execute(&mut **t)
        .await
        .ctx("upserting the slack team")?;
    });
    Ok(())
}

/// The identity profile of a user.
pub fn profile(u: &User) -> ProfileInput {
    ProfileInput::new(SOURCE_SYSTEM, u.id.clone())
        .name(u.real_name().or(u.display_name()))
        .login(u.name.as_deref())
        .email(u.profile.email.as_deref())
        .acts_as(SOURCE_SYSTEM, Some(u.actor()))
}

/// Upsert `users` (one page of `users.list`, or `users.json`) with their
/// identity profiles, in one transaction.
pub async fn write_users(
    storage: &Storage,
    team_id: Option<&str>,
    users: &[User],
) -> Result<RowCounts, StorageError> {
    let mut unique: BTreeMap<&str, &User> = BTreeMap::new();
    for u in users {
        unique.insert(u.id.as_str(), u);
    }
    let rows: Vec<&User> = unique.into_values().collect();
    let stamp = now();
    let mut tx = storage.begin().await?;
    team_in_tx(
        &mut tx,
        team_id.or_else(|| rows.iter().find_map(|u| u.team_id.as_deref())),
    )
    .await?;
    let mut touched: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    on_tx!(&mut tx, t => {
        for chunk in rows.chunks(CHUNK) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO sl_users (id, team_id, name, real_name, display_name, email, title, is_bot, \
                 deleted, tz, profile_updated, first_seen_at, updated_at) ",
            );
            qb.push_values(chunk.iter(), |mut b, u| {
                b.push_bind(u.id.as_str())
                    .push_bind(u.team_id.as_deref().or(team_id))
                    .push_bind(u.name.as_deref())
                    .push_bind(u.real_name())
                    .push_bind(u.display_name())
                    .push_bind(u.profile.email.as_deref())
                    .push_bind(u.profile.title.as_deref())
                    .push_bind(u.is_bot)
                    .push_bind(u.deleted)
                    .push_bind(u.tz.as_deref())
                    .push_bind(u.updated)
                    .push_bind(stamp)
                    .push_bind(stamp);
            });
            qb.push(
                " ON CONFLICT (id) DO UPDATE SET team_id = excluded.team_id, name = excluded.name,
                    real_name = excluded.real_name, display_name = excluded.display_name,
                    email = COALESCE(excluded.email, sl_users.email), title = excluded.title,
                    is_bot = excluded.is_bot, deleted = excluded.deleted, tz = excluded.tz,
                    profile_updated = excluded.profile_updated, updated_at = excluded.updated_at
                  WHERE sl_users.team_id IS DISTINCT FROM excluded.team_id
                     OR sl_users.name IS DISTINCT FROM excluded.name
                     OR sl_users.real_name IS DISTINCT FROM excluded.real_name
                     OR sl_users.display_name IS DISTINCT FROM excluded.display_name
                     OR (excluded.email IS NOT NULL AND sl_users.email IS DISTINCT FROM excluded.email)
                     OR sl_users.title IS DISTINCT FROM excluded.title
                     OR sl_users.is_bot <> excluded.is_bot
                     OR sl_users.deleted <> excluded.deleted
                     OR sl_users.tz IS DISTINCT FROM excluded.tz
                  RETURNING id, first_seen_at, updated_at",
            );
            let r: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = qb
                .build_query_as()
                .fetch_all(&mut **t)
                .await
                .ctx("upserting slack users")?;
            touched.extend(r);
        }
    });
    let profiles: Vec<ProfileInput> = rows.iter().map(|u| profile(u)).collect();
    bdc_identity::record_profiles(&mut tx, &profiles).await?;
    tx.commit().await?;
    Ok(split(&touched, rows.len()))
}

/// Upsert `channels` (a `conversations.list` page, or `channels.json`);
/// members listed inline (exports) are added to `sl_channel_members`.
pub async fn write_channels(
    storage: &Storage,
    team_id: Option<&str>,
    channels: &[Channel],
) -> Result<RowCounts, StorageError> {
    let mut unique: BTreeMap<&str, &Channel> = BTreeMap::new();
    for c in channels {
        unique.insert(c.id.as_str(), c);
    }
    let rows: Vec<&Channel> = unique.into_values().collect();
    let members: Vec<(&str, &str)> = rows
        .iter()
        .flat_map(|c| {
            c.members
                .iter()
                .flatten()
                .map(move |m| (c.id.as_str(), m.as_str()))
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let stamp = now();
    let mut tx = storage.begin().await?;
    team_in_tx(
        &mut tx,
        team_id.or_else(|| rows.iter().find_map(|c| c.context_team_id.as_deref())),
    )
    .await?;
    let mut touched: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    on_tx!(&mut tx, t => {
        for chunk in rows.chunks(CHUNK) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO sl_channels (id, team_id, name, is_private, is_archived, created_at, creator, \
                 topic, purpose, num_members, first_seen_at, updated_at) ",
            );
            qb.push_values(chunk.iter(), |mut b, c| {
                b.push_bind(c.id.as_str())
                    .push_bind(c.context_team_id.as_deref().or(team_id))
                    .push_bind(c.name.as_str())
                    .push_bind(c.private())
                    .push_bind(c.is_archived)
                    .push_bind(time(c.created))
                    .push_bind(c.creator.as_deref())
                    .push_bind(c.topic.as_ref().map(|t| t.value.as_str()))
                    .push_bind(c.purpose.as_ref().map(|t| t.value.as_str()))
                    .push_bind(c.num_members.or(c.members.as_ref().map(|m| m.len() as i64)))
                    .push_bind(stamp)
                    .push_bind(stamp);
            });
            qb.push(
                " ON CONFLICT (id) DO UPDATE SET team_id = COALESCE(excluded.team_id, sl_channels.team_id),
                    name = excluded.name, is_private = excluded.is_private,
                    is_archived = excluded.is_archived, created_at = excluded.created_at,
                    creator = excluded.creator, topic = excluded.topic, purpose = excluded.purpose,
                    num_members = excluded.num_members, updated_at = excluded.updated_at
                  WHERE sl_channels.name <> excluded.name
                     OR sl_channels.is_private <> excluded.is_private
                     OR sl_channels.is_archived <> excluded.is_archived
                     OR sl_channels.created_at IS DISTINCT FROM excluded.created_at
                     OR sl_channels.creator IS DISTINCT FROM excluded.creator
                     OR sl_channels.topic IS DISTINCT FROM excluded.topic
                     OR sl_channels.purpose IS DISTINCT FROM excluded.purpose
                     OR sl_channels.num_members IS DISTINCT FROM excluded.num_members
                  RETURNING id, first_seen_at, updated_at",
            );
            let r: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = qb
                .build_query_as()
                .fetch_all(&mut **t)
                .await
                .ctx("upserting slack channels")?;
            touched.extend(r);
        }
        for chunk in members.chunks(CHUNK) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO sl_channel_members (channel_id, user_id, first_seen_at) ",
            );
            qb.push_values(chunk.iter(), |mut b, (c, u)| {
                b.push_bind(*c).push_bind(*u).push_bind(stamp);
            });
            qb.push(" ON CONFLICT (channel_id, user_id) DO NOTHING");
            qb.build().execute(&mut **t).await.ctx("adding slack channel members")?;
        }
    });
    tx.commit().await?;
    Ok(split(&touched, rows.len()))
}

/// Make `members` the member list of `channel_id` (a complete
/// `conversations.members` walk): new ones added, departed ones removed,
/// in one transaction. Returns (added, removed).
pub async fn replace_members(
    storage: &Storage,
    channel_id: &str,
    members: &[String],
) -> Result<(u64, u64), StorageError> {
    let wanted: BTreeSet<&str> = members.iter().map(String::as_str).collect();
    let stamp = now();
    let mut tx = storage.begin().await?;
    let (mut added, mut removed) = (0u64, 0u64);
    on_tx!(&mut tx, t => {
        let current: Vec<(String,)> = sqlx::query_as(
            "SELECT user_id FROM sl_channel_members WHERE channel_id = $1",
        )
        .bind(channel_id)
        .fetch_all(&mut **t)
        .await
        .ctx("reading slack channel members")?;
        let current: BTreeSet<String> = current.into_iter().map(|(u,)| u).collect();
        let stale: Vec<&String> = current.iter().filter(|u| !wanted.contains(u.as_str())).collect();
        let new: Vec<&str> = wanted.iter().copied().filter(|u| !current.contains(*u)).collect();
        for chunk in new.chunks(CHUNK) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO sl_channel_members (channel_id, user_id, first_seen_at) ",
            );
            qb.push_values(chunk.iter(), |mut b, u| {
                b.push_bind(channel_id).push_bind(*u).push_bind(stamp);
            });
            qb.push(" ON CONFLICT (channel_id, user_id) DO NOTHING");
            added += qb.build().execute(&mut **t).await.ctx("adding slack channel members")?.rows_affected();
        }
        for chunk in stale.chunks(CHUNK) {
            let mut qb = QueryBuilder::new("DELETE FROM sl_channel_members WHERE channel_id = ");
            qb.push_bind(channel_id);
            qb.push(" AND user_id IN (");
            let mut sep = qb.separated(", ");
            for u in chunk {
                sep.push_bind(u.as_str());
            }
            qb.push(")");
            removed += qb.build().execute(&mut **t).await.ctx("removing slack channel members")?.rows_affected();
        }
    });
    tx.commit().await?;
    Ok((added, removed))
}

const MSG_HEAD: &str = "INSERT INTO sl_messages (channel_id, ts, thread_ts, user_id, text, subtype, \
    edited_ts, reply_count, posted_at, version_at, deleted, content_hash, source, run_id, \
    first_seen_at, updated_at) ";

const MSG_TAIL: &str = " ON CONFLICT (channel_id, ts) DO UPDATE SET
        thread_ts = excluded.thread_ts,
        user_id = excluded.user_id,
        text = excluded.text,
        subtype = excluded.subtype,
        edited_ts = excluded.edited_ts,
        reply_count = excluded.reply_count,
        version_at = excluded.version_at,
        content_hash = excluded.content_hash,
        source = excluded.source,
        run_id = excluded.run_id,
        updated_at = excluded.updated_at,
        revision = sl_messages.revision + 1
     WHERE sl_messages.content_hash <> excluded.content_hash
       AND excluded.version_at >= sl_messages.version_at
     RETURNING channel_id, ts, revision";

const DEL_TAIL: &str = " ON CONFLICT (channel_id, ts) DO UPDATE SET
        deleted = TRUE,
        run_id = excluded.run_id,
        updated_at = excluded.updated_at,
        revision = sl_messages.revision + 1
     WHERE NOT sl_messages.deleted
     RETURNING channel_id, ts, revision";

/// The activity record of a message.
pub fn activity_record(
    m: &SlMessage,
    channel_name: Option<&str>,
    actor: Option<&str>,
) -> Option<ActivityRecord> {
    let mut rec = ActivityRecord::new(
        SOURCE_SYSTEM,
        format!("{}:{}", m.channel_id, m.ts),
        m.posted_at,
        "message",
    )
    .ok()?
    .with_payload(json!({
        "channel_id": m.channel_id,
        "channel": channel_name,
        "ts": m.ts,
        "thread_ts": m.thread_ts,
        "user_id": m.user_id,
        "subtype": m.subtype,
        "edited": m.edited_ts.is_some(),
        "deleted": m.deleted,
        "reply_count": m.reply_count,
        "reactions": m.reactions.iter().map(|r| r.count).sum::<i64>(),
        "files": m.files.len(),
    }))
    .ok()?;
    if let Some(name) = channel_name {
        rec = rec.with_title(format!("#{name}"));
    }
    if let Some(a) = actor
        && let Ok(r) = rec.clone().with_actor(a)
    {
        rec = r;
    }
    Some(rec)
}

/// Names for activity records: user id → actor, channel id → name.
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub actors: HashMap<String, String>,
    pub channels: HashMap<String, String>,
}

impl Names {
    fn actor<'a>(&'a self, m: &'a SlMessage) -> Option<&'a str> {
        m.user_id
            .as_deref()
            .and_then(|u| self.actors.get(u).map(String::as_str))
            .or(m.user_name.as_deref())
            .or(m.user_id.as_deref())
    }
}

/// Stored actors and channel names.
pub async fn names(storage: &Storage) -> Result<Names, StorageError> {
    let users: Vec<(String, Option<String>)> = on_pool!(storage, p => sqlx::query_as(
        "SELECT id, name FROM sl_users",
    )
    .fetch_all(p)
    .await
    .ctx("reading slack user names"))?;
    let channels: Vec<(String, String)> = on_pool!(storage, p => sqlx::query_as(
        "SELECT id, name FROM sl_channels",
    )
    .fetch_all(p)
    .await
    .ctx("reading slack channel names"))?;
    Ok(Names {
        actors: users
            .into_iter()
            .map(|(id, name)| {
                let actor = name
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| id.clone());
                (id, actor)
            })
            .collect(),
        channels: channels.into_iter().collect(),
    })
}

/// Stored channels (id, name), by name.
pub async fn stored_channels(storage: &Storage) -> Result<Vec<(String, String)>, StorageError> {
    on_pool!(storage, p => sqlx::query_as(
        "SELECT id, name FROM sl_channels ORDER BY name, id",
    )
    .fetch_all(p)
    .await
    .ctx("reading slack channels"))
}

/// The `ts` of the newest stored message of a channel.
pub async fn newest_ts(
    storage: &Storage,
    channel_id: &str,
) -> Result<Option<String>, StorageError> {
    let row: Option<(String,)> = on_pool!(storage, p => sqlx::query_as(
        "SELECT ts FROM sl_messages WHERE channel_id = $1 ORDER BY posted_at DESC, ts DESC LIMIT 1",
    )
    .bind(channel_id)
    .fetch_optional(p)
    .await
    .ctx("reading the newest slack message"))?;
    Ok(row.map(|(t,)| t))
}

/// Keep one version per (channel, ts): the newest; a deletion wins.
fn dedup(messages: &[SlMessage]) -> Vec<SlMessage> {
    let mut by_key: BTreeMap<(&str, &str), SlMessage> = BTreeMap::new();
    for m in messages {
        let key = (m.channel_id.as_str(), m.ts.as_str());
        match by_key.get_mut(&key) {
            None => {
                by_key.insert(key, m.clone());
            }
            Some(cur) => {
                let deleted = cur.deleted || m.deleted;
                let newer = ts_time(m.version_ts()) >= ts_time(cur.version_ts());
                if newer && (m.deleted || !cur.deleted) {
                    *cur = m.clone();
                }
                cur.deleted = deleted;
            }
        }
    }
    by_key.into_values().collect()
}

/// Write a batch of messages (a history page with its threads, or a part
/// of an export) and, when given, the checkpoint, in ONE transaction.
pub async fn write_messages(
    storage: &Storage,
    messages: &[SlMessage],
    names: &Names,
    source: &str,
    run_id: &str,
    checkpoint: Option<&CheckpointWrite<'_>>,
) -> Result<MessageCounts, StorageError> {
    let unique = dedup(messages);
    let (gone, live): (Vec<&SlMessage>, Vec<&SlMessage>) = unique.iter().partition(|m| m.deleted);
    let live_hashes: Vec<String> = live.iter().map(|m| m.content_hash()).collect();
    let gone_hashes: Vec<String> = gone.iter().map(|m| m.content_hash()).collect();
    let stamp = now();
    let mut tx = storage.begin().await?;
    let mut touched_live: Vec<(String, String, i64)> = Vec::new();
    let mut touched_gone: Vec<(String, String, i64)> = Vec::new();
    let mut reactions = 0u64;
    let mut files = 0u64;
    on_tx!(&mut tx, t => {
        for (rows, hashes, tail, out) in [
            (&live, &live_hashes, MSG_TAIL, &mut touched_live),
            (&gone, &gone_hashes, DEL_TAIL, &mut touched_gone),
        ] {
            for (chunk, hchunk) in rows.chunks(CHUNK).zip(hashes.chunks(CHUNK)) {
                let mut qb = QueryBuilder::new(MSG_HEAD);
                qb.push_values(chunk.iter().zip(hchunk), |mut b, (m, h)| {
                    b.push_bind(m.channel_id.as_str())
                        .push_bind(m.ts.as_str())
                        .push_bind(m.thread_ts.as_deref())
                        .push_bind(m.user_id.as_deref())
                        .push_bind(m.text.as_str())
                        .push_bind(m.subtype.as_deref())
                        .push_bind(m.edited_ts.as_deref())
                        .push_bind(m.reply_count)
                        .push_bind(m.posted_at)
                        .push_bind(ts_time(m.version_ts()).unwrap_or(m.posted_at))
                        .push_bind(m.deleted)
                        .push_bind(h.as_str())
                        .push_bind(source)
                        .push_bind(run_id)
                        .push_bind(stamp)
                        .push_bind(stamp);
                });
                qb.push(tail);
                let r: Vec<(String, String, i64)> = qb
                    .build_query_as()
                    .fetch_all(&mut **t)
                    .await
                    .ctx("upserting slack messages")?;
                out.extend(r);
            }
        }
        // Reactions and files of the rewritten (or new) live messages.
        let keys: BTreeSet<(&str, &str)> = touched_live
            .iter()
            .map(|(c, ts, _)| (c.as_str(), ts.as_str()))
            .collect();
        let rewritten: Vec<&SlMessage> = live
            .iter()
            .copied()
            .filter(|m| keys.contains(&(m.channel_id.as_str(), m.ts.as_str())))
            .collect();
        let mut per_channel: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (c, ts, rev) in &touched_live {
            if *rev > 1 {
                per_channel.entry(c.as_str()).or_default().push(ts.as_str());
            }
        }
        for (channel, tss) in &per_channel {
            for chunk in tss.chunks(CHUNK) {
                let mut qb = QueryBuilder::new("DELETE FROM sl_reactions WHERE channel_id = ");
                qb.push_bind(*channel);
                qb.push(" AND message_ts IN (");
                let mut sep = qb.separated(", ");
                for ts in chunk {
                    sep.push_bind(*ts);
                }
                qb.push(")");
                qb.build().execute(&mut **t).await.ctx("replacing slack reactions")?;
            }
        }
        let rx: Vec<(&SlMessage, &crate::model::Reaction)> = rewritten
            .iter()
            .flat_map(|m| {
                m.reactions
                    .iter()
                    .filter(|r| !r.name.is_empty())
                    .map(move |r| ((m.channel_id.as_str(), m.ts.as_str(), r.name.as_str()), (*m, r)))
            })
            .collect::<BTreeMap<_, _>>()
            .into_values()
            .collect();
        for chunk in rx.chunks(CHUNK) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO sl_reactions (channel_id, message_ts, name, count, users) ",
            );
            qb.push_values(chunk.iter(), |mut b, (m, r)| {
                b.push_bind(m.channel_id.as_str())
                    .push_bind(m.ts.as_str())
                    .push_bind(r.name.as_str())
                    .push_bind(r.count.max(r.users.len() as i64))
                    .push_bind(serde_json::to_string(&r.users).unwrap_or_else(|_| "[]".into()));
            });
            qb.push(" ON CONFLICT (channel_id, message_ts, name) DO UPDATE SET count = excluded.count, users = excluded.users");
            reactions += qb.build().execute(&mut **t).await.ctx("inserting slack reactions")?.rows_affected();
        }
        let fl: Vec<(&SlMessage, &crate::model::File)> = rewritten
            .iter()
            .flat_map(|m| m.files.iter().map(move |f| (f.id.as_str(), (*m, f))))
            .collect::<BTreeMap<_, _>>()
            .into_values()
            .collect();
        for chunk in fl.chunks(CHUNK) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO sl_files (id, channel_id, message_ts, user_id, name, title, mimetype, \
                 filetype, size_bytes, created_at, permalink, first_seen_at, updated_at) ",
            );
            qb.push_values(chunk.iter(), |mut b, (m, f)| {
                b.push_bind(f.id.as_str())
                    .push_bind(m.channel_id.as_str())
                    .push_bind(m.ts.as_str())
                    .push_bind(f.user.as_deref().or(m.user_id.as_deref()))
                    .push_bind(f.name.as_deref())
                    .push_bind(f.title.as_deref())
                    .push_bind(f.mimetype.as_deref())
                    .push_bind(f.filetype.as_deref())
                    .push_bind(f.size)
                    .push_bind(time(f.created))
                    .push_bind(f.permalink.as_deref())
                    .push_bind(stamp)
                    .push_bind(stamp);
            });
            qb.push(
                " ON CONFLICT (id) DO UPDATE SET channel_id = excluded.channel_id,
                    message_ts = excluded.message_ts, user_id = excluded.user_id, name = excluded.name,
                    title = excluded.title, mimetype = excluded.mimetype, filetype = excluded.filetype,
                    size_bytes = excluded.size_bytes, created_at = excluded.created_at,
                    permalink = excluded.permalink, updated_at = excluded.updated_at",
            );
            files += qb.build().execute(&mut **t).await.ctx("upserting slack files")?.rows_affected();
        }
    });
    let inserted = touched_live.iter().filter(|(_, _, r)| *r == 1).count() as u64;
    let mut counts = MessageCounts {
        rows: RowCounts {
            inserted,
            updated: touched_live.len() as u64 - inserted,
            unchanged: (live.len() - touched_live.len()) as u64,
        },
        deleted: touched_gone.len() as u64,
        reactions,
        files,
        ..MessageCounts::default()
    };
    counts.rows.unchanged += (gone.len() - touched_gone.len()) as u64;
    let by_key: BTreeMap<(&str, &str), &SlMessage> = unique
        .iter()
        .map(|m| ((m.channel_id.as_str(), m.ts.as_str()), m))
        .collect();
    let records: Vec<ActivityRecord> = touched_live
        .iter()
        .chain(touched_gone.iter())
        .filter_map(|(c, ts, _)| by_key.get(&(c.as_str(), ts.as_str())))
        .filter_map(|m| {
            activity_record(
                m,
                names.channels.get(&m.channel_id).map(String::as_str),
                names.actor(m),
            )
        })
        .collect();
    if !records.is_empty() || checkpoint.is_some() {
        counts.activity = upsert_in_tx(&mut tx, &records, Some(run_id), checkpoint).await?;
    }
    tx.commit().await?;
    Ok(counts)
}

/// A message row that changed (written, edited or deleted) at
/// `updated_at`: the change feed of the search index, read through this
/// crate (never `sl_messages` directly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedMessage {
    pub updated_at: DateTime<Utc>,
    pub channel_id: String,
    pub ts: String,
    pub user_id: Option<String>,
    pub posted_at: DateTime<Utc>,
}

/// Messages changed after `after` (`(updated_at, channel_id, ts)`,
/// exclusive), oldest change first, at most `limit`.
pub async fn changed_messages(
    storage: &Storage,
    after: Option<(DateTime<Utc>, &str, &str)>,
    limit: u32,
) -> Result<Vec<ChangedMessage>, StorageError> {
    let (at, channel, ts) = after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, "", ""));
    type Row = (DateTime<Utc>, String, String, Option<String>, DateTime<Utc>);
    let rows: Vec<Row> = on_pool!(storage, p => sqlx::query_as(
        "SELECT updated_at, channel_id, ts, user_id, posted_at FROM sl_messages
         WHERE updated_at >= $1
           AND (updated_at > $1 OR channel_id > $2 OR (channel_id = $2 AND ts > $3))
         ORDER BY updated_at, channel_id, ts LIMIT $4",
    )
    .bind(bdc_storage::normalize_time(at))
    .bind(channel)
    .bind(ts)
    .bind(i64::from(limit))
    .fetch_all(p)
    .await
    .ctx("reading changed slack messages"))?;
    Ok(rows
        .into_iter()
        .map(
            |(updated_at, channel_id, ts, user_id, posted_at)| ChangedMessage {
                updated_at,
                channel_id,
                ts,
                user_id,
                posted_at,
            },
        )
        .collect())
}

/// One message of a [`conversation`] (not deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationMessage {
    pub ts: String,
    pub thread_ts: Option<String>,
    pub text: String,
    pub posted_at: DateTime<Utc>,
}

/// The live (not deleted) messages of one user (`None`: messages without
/// a user, such as bot posts) in one channel with `from <= ts < to`
/// (Slack `ts` strings, `SECONDS.MICROS`), in time order: the search
/// index's per-user, per-channel, per-hour documents.
pub async fn conversation(
    storage: &Storage,
    channel_id: &str,
    user_id: Option<&str>,
    from_ts: &str,
    to_ts: &str,
) -> Result<Vec<ConversationMessage>, StorageError> {
    type Row = (String, Option<String>, String, DateTime<Utc>);
    let rows: Vec<Row> = on_pool!(storage, p => sqlx::query_as(
        "SELECT ts, thread_ts, text, posted_at FROM sl_messages
         WHERE channel_id = $1 AND ts >= $2 AND ts < $3 AND NOT deleted
           AND COALESCE(user_id, '') = $4
         ORDER BY ts",
    )
    .bind(channel_id)
    .bind(from_ts)
    .bind(to_ts)
    .bind(user_id.unwrap_or(""))
    .fetch_all(p)
    .await
    .ctx("reading a slack conversation"))?;
    Ok(rows
        .into_iter()
        .map(|(ts, thread_ts, text, posted_at)| ConversationMessage {
            ts,
            thread_ts,
            text,
            posted_at,
        })
        .collect())
}

/// The workspace's domain (`<domain>.slack.com`), for links back.
pub async fn team_domain(storage: &Storage) -> Result<Option<String>, StorageError> {
    let row: Option<(Option<String>,)> = on_pool!(storage, p => sqlx::query_as(
        "SELECT domain FROM sl_team WHERE domain IS NOT NULL ORDER BY id LIMIT 1",
    )
    .fetch_optional(p)
    .await
    .ctx("reading the slack team domain"))?;
    Ok(row.and_then(|(d,)| d).filter(|d| !d.is_empty()))
}
