//! The Discord store: schema part `discord` (tables `dc_guilds`,
//! `dc_channels`, `dc_users`, `dc_messages`, `dc_imported_files`) and the
//! one write path, [`store_batch`]: guild, channel, authors, messages,
//! their activity records and (for the last batch of an export file) the
//! file's import record, in ONE transaction.
//!
//! A message row is rewritten only when its content hash changed and the
//! incoming version is not older (edit time, else creation time) than the
//! stored one, so re-imports converge and an old export never undoes an
//! edit. Activity records are written for inserted/updated rows only.

use std::collections::BTreeMap;

use bdc_core::ActivityRecord;
use bdc_storage::activity::{UpsertCounts, upsert_in_tx};
use bdc_storage::checkpoints::CheckpointWrite;
use bdc_storage::{MigrationFile, QueryContext, SchemaPart, Storage, StorageError, now, on_pool};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::QueryBuilder;

use crate::export::{Channel, DcMessage, Guild, User};

/// `source_system` of the activity records.
pub const SOURCE_SYSTEM: &str = "discord";

/// The collector's schema part (register in `crates/bdc/src/schema.rs`).
pub static SCHEMA: SchemaPart = SchemaPart {
    name: "discord",
    migrations: &[
        MigrationFile {
            version: 1,
            description: "discord guilds, channels, users, messages, imported export files",
            sqlite: include_str!("../migrations/sqlite_0001.sql"),
            postgres: include_str!("../migrations/postgres_0001.sql"),
        },
        MigrationFile {
            version: 2,
            description: "discord message change feed and reply indexes",
            sqlite: include_str!("../migrations/sqlite_0002.sql"),
            postgres: include_str!("../migrations/postgres_0002.sql"),
        },
    ],
};

/// Rows per multi-row statement (20 binds per message row).
const CHUNK: usize = 400;

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub activity: UpsertCounts,
}

impl BatchCounts {
    pub fn add(&mut self, o: BatchCounts) {
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.activity.add(o.activity);
    }
}

/// The import record of one export file, written with its last batch.
#[derive(Debug, Clone)]
pub struct FileRecord {
    pub content_hash: String,
    pub path: String,
    pub size_bytes: u64,
    pub channel_id: Option<String>,
    pub messages: u64,
    pub malformed: u64,
    /// `imported` or `cut` (read up to a cut; see `problem`).
    pub status: &'static str,
    pub problem: Option<String>,
}

const MSG_HEAD: &str = "INSERT INTO dc_messages (id, channel_id, guild_id, author_id, kind, content, \
    created_at, edited_at, month, reply_to_id, is_pinned, attachments, reactions, mentions, \
    content_hash, source, run_id, first_seen_at, updated_at) ";

const MSG_TAIL: &str = " ON CONFLICT (id) DO UPDATE SET
        channel_id = excluded.channel_id,
        guild_id = excluded.guild_id,
        author_id = excluded.author_id,
        kind = excluded.kind,
        content = excluded.content,
        created_at = excluded.created_at,
        edited_at = excluded.edited_at,
        month = excluded.month,
        reply_to_id = excluded.reply_to_id,
        is_pinned = excluded.is_pinned,
        attachments = excluded.attachments,
        reactions = excluded.reactions,
        mentions = excluded.mentions,
        content_hash = excluded.content_hash,
        deleted = FALSE,
        source = excluded.source,
        run_id = excluded.run_id,
        updated_at = excluded.updated_at,
        revision = dc_messages.revision + 1
     WHERE dc_messages.content_hash <> excluded.content_hash
       AND COALESCE(excluded.edited_at, excluded.created_at)
           >= COALESCE(dc_messages.edited_at, dc_messages.created_at)
     RETURNING id, revision";

/// The activity record of a message.
pub fn activity_record(guild: &Guild, channel: &Channel, m: &DcMessage) -> Option<ActivityRecord> {
    let mut rec = ActivityRecord::new(SOURCE_SYSTEM, m.id.clone(), m.created_at, "message")
        .ok()?
        .with_title(format!("#{}", channel.name))
        .with_payload(json!({
            "guild_id": guild.id,
            "channel_id": m.channel_id,
            "channel": channel.name,
            "author_id": m.author.id,
            "reply_to_id": m.reply_to_id,
            "edited": m.edited_at.is_some(),
            "attachments": m.attachments.len(),
            "reactions": m.reactions.iter().map(|r| r.count).sum::<u64>(),
        }))
        .ok()?;
    if let Ok(r) = rec.clone().with_url(format!(
        "https://discord.com/channels/{}/{}/{}",
        guild.id, m.channel_id, m.id
    )) {
        rec = r;
    }
    if let Ok(r) = rec.clone().with_actor(m.author.name.clone()) {
        rec = r;
    }
    Some(rec)
}

/// Write one batch of messages of `channel` (and the file record, when
/// given) in one transaction.
pub async fn store_batch(
    storage: &Storage,
    guild: &Guild,
    channel: &Channel,
    messages: &[DcMessage],
    source: &str,
    run_id: &str,
    file: Option<&FileRecord>,
) -> Result<BatchCounts, StorageError> {
    store_page(
        storage, guild, channel, messages, source, run_id, file, None,
    )
    .await
}

/// [`store_batch`] that also moves `checkpoint` in the same transaction
/// (one page of the live collector).
#[allow(clippy::too_many_arguments)]
pub async fn store_page(
    storage: &Storage,
    guild: &Guild,
    channel: &Channel,
    messages: &[DcMessage],
    source: &str,
    run_id: &str,
    file: Option<&FileRecord>,
    checkpoint: Option<&CheckpointWrite<'_>>,
) -> Result<BatchCounts, StorageError> {
    let mut unique: BTreeMap<&str, &DcMessage> = BTreeMap::new();
    for m in messages {
        unique.insert(m.id.as_str(), m);
    }
    let mut users: BTreeMap<&str, &User> = BTreeMap::new();
    for m in unique.values() {
        users.insert(m.author.id.as_str(), &m.author);
    }
    let unique: Vec<&DcMessage> = unique.into_values().collect();
    let hashes: Vec<String> = unique.iter().map(|m| m.content_hash()).collect();
    let stamp = now();
    let mut tx = storage.begin().await?;
    let mut touched: Vec<(String, i64)> = Vec::new();
    bdc_storage::on_tx!(&mut tx, t => {
        sqlx::query(
            "INSERT INTO dc_guilds (id, name, icon_url, first_seen_at, updated_at) VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, icon_url = excluded.icon_url,
                 updated_at = excluded.updated_at
             WHERE dc_guilds.name <> excluded.name
                OR dc_guilds.icon_url IS DISTINCT FROM excluded.icon_url",
        )
        .bind(&guild.id)
        .bind(&guild.name)
        .bind(guild.icon_url.as_deref())
        .bind(stamp)
        .execute(&mut **t)
        .await
        .ctx("upserting a discord guild")?;
        sqlx::query(
            "INSERT INTO dc_channels (id, guild_id, name, kind, category, parent_id, topic, first_seen_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
             ON CONFLICT (id) DO UPDATE SET guild_id = excluded.guild_id, name = excluded.name,
                 kind = excluded.kind, category = excluded.category, parent_id = excluded.parent_id,
                 topic = excluded.topic, updated_at = excluded.updated_at
             WHERE dc_channels.name <> excluded.name
                OR dc_channels.kind IS DISTINCT FROM excluded.kind
                OR dc_channels.category IS DISTINCT FROM excluded.category
                OR dc_channels.parent_id IS DISTINCT FROM excluded.parent_id
                OR dc_channels.topic IS DISTINCT FROM excluded.topic",
        )
        .bind(&channel.id)
        .bind(&guild.id)
        .bind(&channel.name)
        .bind(channel.kind.as_deref())
        .bind(channel.category.as_deref())
        .bind(channel.category_id.as_deref())
        .bind(channel.topic.as_deref())
        .bind(stamp)
        .execute(&mut **t)
        .await
        .ctx("upserting a discord channel")?;
        let users: Vec<&User> = users.into_values().collect();
        for chunk in users.chunks(CHUNK) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO dc_users (id, name, discriminator, nickname, is_bot, avatar_url, first_seen_at, updated_at) ",
            );
            qb.push_values(chunk.iter(), |mut b, u| {
                b.push_bind(u.id.as_str())
                    .push_bind(u.name.as_str())
                    .push_bind(u.discriminator.as_deref())
                    .push_bind(u.nickname.as_deref())
                    .push_bind(u.is_bot)
                    .push_bind(u.avatar_url.as_deref())
                    .push_bind(stamp)
                    .push_bind(stamp);
            });
            qb.push(
                " ON CONFLICT (id) DO UPDATE SET name = excluded.name,
                    discriminator = excluded.discriminator, nickname = excluded.nickname,
                    is_bot = excluded.is_bot, avatar_url = excluded.avatar_url,
                    updated_at = excluded.updated_at
                  WHERE dc_users.name <> excluded.name
                     OR dc_users.discriminator IS DISTINCT FROM excluded.discriminator
                     OR dc_users.nickname IS DISTINCT FROM excluded.nickname
                     OR dc_users.is_bot <> excluded.is_bot
                     OR dc_users.avatar_url IS DISTINCT FROM excluded.avatar_url",
            );
            qb.build().execute(&mut **t).await.ctx("upserting discord users")?;
        }
        for (chunk, hchunk) in unique.chunks(CHUNK).zip(hashes.chunks(CHUNK)) {
            let mut qb = QueryBuilder::new(MSG_HEAD);
            qb.push_values(chunk.iter().zip(hchunk), |mut b, (m, h)| {
                b.push_bind(m.id.as_str())
                    .push_bind(m.channel_id.as_str())
                    .push_bind(guild.id.as_str())
                    .push_bind(m.author.id.as_str())
                    .push_bind(m.kind.as_str())
                    .push_bind(m.content.as_str())
                    .push_bind(m.created_at)
                    .push_bind(m.edited_at)
                    .push_bind(m.month())
                    .push_bind(m.reply_to_id.as_deref())
                    .push_bind(m.is_pinned)
                    .push_bind(DcMessage::json(&m.attachments))
                    .push_bind(DcMessage::json(&m.reactions))
                    .push_bind(DcMessage::json(&m.mentions))
                    .push_bind(h.as_str())
                    .push_bind(source)
                    .push_bind(run_id)
                    .push_bind(stamp)
                    .push_bind(stamp);
            });
            qb.push(MSG_TAIL);
            let rows: Vec<(String, i64)> = qb
                .build_query_as()
                .fetch_all(&mut **t)
                .await
                .ctx("upserting discord messages")?;
            touched.extend(rows);
        }
        if let Some(f) = file {
            sqlx::query(
                "INSERT INTO dc_imported_files (content_hash, path, size_bytes, channel_id, messages,
                     malformed, status, problem, run_id, imported_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (content_hash) DO NOTHING",
            )
            .bind(&f.content_hash)
            .bind(&f.path)
            .bind(i64::try_from(f.size_bytes).unwrap_or(i64::MAX))
            .bind(f.channel_id.as_deref())
            .bind(i64::try_from(f.messages).unwrap_or(i64::MAX))
            .bind(i64::try_from(f.malformed).unwrap_or(i64::MAX))
            .bind(f.status)
            .bind(f.problem.as_deref())
            .bind(run_id)
            .bind(stamp)
            .execute(&mut **t)
            .await
            .ctx("recording an imported discord export")?;
        }
    });
    let mut counts = BatchCounts {
        inserted: touched.iter().filter(|(_, r)| *r == 1).count() as u64,
        ..BatchCounts::default()
    };
    counts.updated = touched.len() as u64 - counts.inserted;
    counts.unchanged = unique.len() as u64 - touched.len() as u64;
    let by_id: BTreeMap<&str, &DcMessage> = unique.iter().map(|m| (m.id.as_str(), *m)).collect();
    let records: Vec<ActivityRecord> = touched
        .iter()
        .filter_map(|(id, _)| by_id.get(id.as_str()))
        .filter_map(|m| activity_record(guild, channel, m))
        .collect();
    counts.activity = upsert_in_tx(&mut tx, &records, Some(run_id), checkpoint).await?;
    tx.commit().await?;
    Ok(counts)
}

/// Record a file that yielded nothing to store (not an export, or cut
/// before its channel header), so the same bytes are not read again.
pub async fn record_file(
    storage: &Storage,
    file: &FileRecord,
    run_id: &str,
) -> Result<(), StorageError> {
    on_pool!(storage, p => sqlx::query(
        "INSERT INTO dc_imported_files (content_hash, path, size_bytes, channel_id, messages,
             malformed, status, problem, run_id, imported_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (content_hash) DO NOTHING",
    )
    .bind(&file.content_hash)
    .bind(&file.path)
    .bind(i64::try_from(file.size_bytes).unwrap_or(i64::MAX))
    .bind(file.channel_id.as_deref())
    .bind(i64::try_from(file.messages).unwrap_or(i64::MAX))
    .bind(i64::try_from(file.malformed).unwrap_or(i64::MAX))
    .bind(file.status)
    .bind(file.problem.as_deref())
    .bind(run_id)
    .bind(now())
    .execute(p)
    .await
    .map(|_| ())
    .ctx("recording a discord export"))?;
    Ok(())
}

/// The import record of a file's bytes, if they were read before.
pub async fn imported_file(
    storage: &Storage,
    content_hash: &str,
) -> Result<Option<(String, String)>, StorageError> {
    on_pool!(storage, p => sqlx::query_as::<_, (String, String)>(
        "SELECT path, status FROM dc_imported_files WHERE content_hash = $1",
    )
    .bind(content_hash)
    .fetch_optional(p)
    .await
    .ctx("reading a discord export record"))
}

/// One message's long text with its author, for search indexing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText {
    pub id: String,
    pub guild_id: String,
    pub channel_id: String,
    pub channel_name: Option<String>,
    pub author_id: String,
    pub author_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub content: String,
    pub deleted: bool,
    /// The message this one replies to.
    pub reply_to_id: Option<String>,
}

const TEXT_SELECT: &str = "SELECT m.id, m.guild_id, m.channel_id, c.name, m.author_id, u.name,
        m.created_at, m.content, m.deleted, m.reply_to_id
     FROM dc_messages m
     LEFT JOIN dc_channels c ON c.id = m.channel_id
     LEFT JOIN dc_users u ON u.id = m.author_id";

type TextRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    DateTime<Utc>,
    String,
    bool,
    Option<String>,
);

fn text_of(r: TextRow) -> MessageText {
    let (
        id,
        guild_id,
        channel_id,
        channel_name,
        author_id,
        author_name,
        created_at,
        content,
        deleted,
        reply_to_id,
    ) = r;
    MessageText {
        id,
        guild_id,
        channel_id,
        channel_name,
        author_id,
        author_name,
        created_at,
        content,
        deleted,
        reply_to_id,
    }
}

/// Stored message texts in id (snowflake, i.e. time) order after
/// `after_id`, at most `limit`: the public read path for indexers and the
/// identity hub (which must not read `dc_*` tables directly). Snowflakes
/// are compared as numbers (by length, then text).
pub async fn message_texts(
    storage: &Storage,
    after_id: Option<&str>,
    limit: u32,
) -> Result<Vec<MessageText>, StorageError> {
    let after = after_id.unwrap_or("");
    let sql = format!(
        "{TEXT_SELECT}
         WHERE LENGTH(m.id) > LENGTH($1) OR (LENGTH(m.id) = LENGTH($1) AND m.id > $1)
         ORDER BY LENGTH(m.id), m.id
         LIMIT $2"
    );
    let rows: Vec<TextRow> = on_pool!(storage, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(p)
    .await
    .ctx("reading discord message texts"))?;
    Ok(rows.into_iter().map(text_of).collect())
}

/// Messages changed (written, edited, deleted) after `after`
/// (`(updated_at, id)`, exclusive), oldest change first, at most `limit`:
/// `(updated_at, id)`. The search index's change feed.
pub async fn changed_messages(
    storage: &Storage,
    after: Option<(DateTime<Utc>, &str)>,
    limit: u32,
) -> Result<Vec<(DateTime<Utc>, String)>, StorageError> {
    let (at, id) = after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, ""));
    on_pool!(storage, p => sqlx::query_as(
        "SELECT updated_at, id FROM dc_messages
         WHERE updated_at >= $1 AND (updated_at > $1 OR id > $2)
         ORDER BY updated_at, id LIMIT $3",
    )
    .bind(bdc_storage::normalize_time(at))
    .bind(id)
    .bind(i64::from(limit))
    .fetch_all(p)
    .await
    .ctx("reading changed discord messages"))
}

/// Longest reply chain followed (a guard against cycles in bad data).
const MAX_CHAIN: usize = 256;

/// The first message of the reply chain `id` belongs to: follow
/// `reply_to_id` up while the parent is stored (a reply to a message that
/// was never collected starts its own chain).
pub async fn chain_root(storage: &Storage, id: &str) -> Result<String, StorageError> {
    let mut cur = id.to_owned();
    for _ in 0..MAX_CHAIN {
        let parent: Option<(Option<String>,)> = on_pool!(storage, p => sqlx::query_as(
            "SELECT m.reply_to_id FROM dc_messages m
             WHERE m.id = $1 AND EXISTS (SELECT 1 FROM dc_messages r WHERE r.id = m.reply_to_id)",
        )
        .bind(&cur)
        .fetch_optional(p)
        .await
        .ctx("following a discord reply chain"))?;
        match parent.and_then(|(r,)| r) {
            Some(r) if r != cur && r != id => cur = r,
            _ => break,
        }
    }
    Ok(cur)
}

/// A reply chain: the root message and every stored reply to it, directly
/// or through other replies (deleted ones included, flagged), in time
/// order. At most [`MAX_CHAIN`] rounds of replies are followed.
pub async fn reply_chain(storage: &Storage, root: &str) -> Result<Vec<MessageText>, StorageError> {
    let by_id = format!("{TEXT_SELECT} WHERE m.id = $1");
    let replies = format!("{TEXT_SELECT} WHERE m.reply_to_id = $1 ORDER BY m.created_at, m.id");
    let mut out: Vec<MessageText> = Vec::new();
    let first: Option<TextRow> = on_pool!(storage, p => sqlx::query_as(sqlx::AssertSqlSafe(by_id.clone()))
    .bind(root)
    .fetch_optional(p)
    .await
    .ctx("reading a discord message"))?;
    let Some(first) = first else {
        return Ok(out);
    };
    out.push(text_of(first));
    let mut seen: std::collections::HashSet<String> =
        std::collections::HashSet::from([root.to_owned()]);
    let mut frontier = vec![root.to_owned()];
    for _ in 0..MAX_CHAIN {
        let mut next = Vec::new();
        for parent in &frontier {
            let rows: Vec<TextRow> = on_pool!(storage, p => sqlx::query_as(sqlx::AssertSqlSafe(replies.clone()))
            .bind(parent)
            .fetch_all(p)
            .await
            .ctx("reading discord replies"))?;
            for r in rows {
                let m = text_of(r);
                if seen.insert(m.id.clone()) {
                    next.push(m.id.clone());
                    out.push(m);
                }
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    out.sort_by(|a, b| (a.created_at, a.id.len(), &a.id).cmp(&(b.created_at, b.id.len(), &b.id)));
    Ok(out)
}

/// A Discord actor profile (for the identity hub).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub id: String,
    pub name: String,
    pub nickname: Option<String>,
    pub is_bot: bool,
}

/// Every stored user profile, by id.
pub async fn profiles(storage: &Storage) -> Result<Vec<Profile>, StorageError> {
    let rows: Vec<(String, String, Option<String>, bool)> = on_pool!(storage, p => sqlx::query_as(
        "SELECT id, name, nickname, is_bot FROM dc_users ORDER BY id",
    )
    .fetch_all(p)
    .await
    .ctx("reading discord users"))?;
    Ok(rows
        .into_iter()
        .map(|(id, name, nickname, is_bot)| Profile {
            id,
            name,
            nickname,
            is_bot,
        })
        .collect())
}

/// The newest stored message id of a channel (snowflake order).
pub async fn newest_id(
    storage: &Storage,
    channel_id: &str,
) -> Result<Option<String>, StorageError> {
    let row: Option<(String,)> = on_pool!(storage, p => sqlx::query_as(
        "SELECT id FROM dc_messages WHERE channel_id = $1 ORDER BY LENGTH(id) DESC, id DESC LIMIT 1",
    )
    .bind(channel_id)
    .fetch_optional(p)
    .await
    .ctx("reading the newest discord message"))?;
    Ok(row.map(|(id,)| id))
}

/// Names of a stored channel: (guild id, guild name, channel name).
pub async fn channel_names(
    storage: &Storage,
    channel_id: &str,
) -> Result<Option<(String, Option<String>, String)>, StorageError> {
    on_pool!(storage, p => sqlx::query_as::<_, (String, Option<String>, String)>(
        "SELECT c.guild_id, g.name, c.name FROM dc_channels c
         LEFT JOIN dc_guilds g ON g.id = c.guild_id WHERE c.id = $1",
    )
    .bind(channel_id)
    .fetch_optional(p)
    .await
    .ctx("reading a discord channel"))
}

/// One message of a month file of the Markdown export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthMessage {
    pub id: String,
    pub author_id: String,
    pub author_name: Option<String>,
    pub author_nickname: Option<String>,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub content: String,
    pub reply_to_id: Option<String>,
    /// JSON text of the attachments (`[{"id", "url", "fileName", …}]`).
    pub attachments: String,
    pub deleted: bool,
}

/// The messages of `channel_id` in `month` (`YYYY-MM`), in time order.
pub async fn month_messages(
    storage: &Storage,
    channel_id: &str,
    month: &str,
) -> Result<Vec<MonthMessage>, StorageError> {
    type Row = (
        String,
        String,
        Option<String>,
        Option<String>,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        String,
        Option<String>,
        String,
        bool,
    );
    let rows: Vec<Row> = on_pool!(storage, p => sqlx::query_as(
        "SELECT m.id, m.author_id, u.name, u.nickname, m.created_at, m.edited_at, m.content,
                m.reply_to_id, m.attachments, m.deleted
         FROM dc_messages m LEFT JOIN dc_users u ON u.id = m.author_id
         WHERE m.channel_id = $1 AND m.month = $2
         ORDER BY m.created_at, LENGTH(m.id), m.id",
    )
    .bind(channel_id)
    .bind(month)
    .fetch_all(p)
    .await
    .ctx("reading a discord month"))?;
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                author_id,
                author_name,
                author_nickname,
                created_at,
                edited_at,
                content,
                reply_to_id,
                attachments,
                deleted,
            )| MonthMessage {
                id,
                author_id,
                author_name,
                author_nickname,
                created_at,
                edited_at,
                content,
                reply_to_id,
                attachments,
                deleted,
            },
        )
        .collect())
}
