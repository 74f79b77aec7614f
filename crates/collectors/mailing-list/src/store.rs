//! The mailing-list store: its own schema part (`mailing_list`: tables
//! `ml_lists`, `ml_messages`, `ml_thread_links`) and the one write path,
//! [`store_batch`], which writes a batch of messages, their thread links,
//! their activity records and (optionally) the checkpoint in ONE
//! transaction.
//!
//! Dedup by Message-ID: `(list, message_id)` is the primary key. When two
//! different messages share a Message-ID (resent or cross-posted mail), the
//! one with the smaller raw-content hash wins, whatever the order they are
//! read in, so re-runs converge and never flip a row back and forth. An
//! identical message is never rewritten (its revision and `updated_at`
//! stay). Activity records are written only for rows that were inserted or
//! updated.

use std::collections::BTreeMap;

use bdc_core::ActivityRecord;
use bdc_storage::activity::{UpsertCounts, upsert_in_tx};
use bdc_storage::checkpoints::CheckpointWrite;
use bdc_storage::{MigrationFile, QueryContext, SchemaPart, Storage, StorageError, now, on_pool};
use serde_json::json;
use sqlx::QueryBuilder;

use crate::parse::ParsedMessage;

/// `source_system` of the activity records.
pub const SOURCE_SYSTEM: &str = "mailing-list";

/// The collector's schema part (register in `crates/bdc/src/schema.rs`).
pub static SCHEMA: SchemaPart = SchemaPart {
    name: "mailing_list",
    migrations: &[
        MigrationFile {
            version: 1,
            description: "mailing-list lists, messages, thread links",
            sqlite: include_str!("../migrations/sqlite_0001.sql"),
            postgres: include_str!("../migrations/postgres_0001.sql"),
        },
        MigrationFile {
            version: 2,
            description: "mailing-list message change feed index",
            sqlite: include_str!("../migrations/sqlite_0002.sql"),
            postgres: include_str!("../migrations/postgres_0002.sql"),
        },
    ],
};

/// Rows per multi-row statement (17 binds per message row).
const CHUNK: usize = 500;

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Messages repeated (same Message-ID) inside the batch.
    pub duplicates: u64,
    /// Messages without any date: stored, but no activity record.
    pub no_activity: u64,
    pub activity: UpsertCounts,
}

impl BatchCounts {
    pub fn add(&mut self, o: BatchCounts) {
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.duplicates += o.duplicates;
        self.no_activity += o.no_activity;
        self.activity.add(o.activity);
    }
}

const MSG_HEAD: &str = "INSERT INTO ml_messages (list, message_id, id_synthesized, subject, from_name, \
    from_email, sent_at, month, parent_id, thread_root, body_text, attachments, size_bytes, \
    content_hash, malformed, run_id, first_seen_at, updated_at) ";

const MSG_TAIL: &str = " ON CONFLICT (list, message_id) DO UPDATE SET
        id_synthesized = excluded.id_synthesized,
        subject = excluded.subject,
        from_name = excluded.from_name,
        from_email = excluded.from_email,
        sent_at = excluded.sent_at,
        month = excluded.month,
        parent_id = excluded.parent_id,
        thread_root = excluded.thread_root,
        body_text = excluded.body_text,
        attachments = excluded.attachments,
        size_bytes = excluded.size_bytes,
        content_hash = excluded.content_hash,
        malformed = excluded.malformed,
        run_id = excluded.run_id,
        updated_at = excluded.updated_at,
        revision = ml_messages.revision + 1
     WHERE excluded.content_hash < ml_messages.content_hash
     RETURNING message_id, revision";

fn external_id(list: &str, message_id: &str) -> String {
    let id = format!("{list}:{message_id}");
    if id.len() <= 512 {
        id
    } else {
        use sha2::{Digest, Sha256};
        format!(
            "{list}:sha256-{}",
            hex::encode(Sha256::digest(message_id.as_bytes()))
        )
    }
}

/// The activity record of a message (`None` without any date).
pub fn activity_record(list: &str, m: &ParsedMessage) -> Option<ActivityRecord> {
    let at = m.sent_at?;
    let mut payload = json!({
        "list": list,
        "message_id": m.message_id,
        "thread_root": m.thread_root,
        "parent_id": m.parent_id,
        "from_name": m.from_name,
        "attachments": m.attachments,
        "size_bytes": m.size_bytes,
        "malformed": m.malformed,
    });
    if let Some(obj) = payload.as_object_mut() {
        if !m.reply_to.is_empty() {
            obj.insert("reply_to".into(), json!(m.reply_to));
        }
        if !m.cc.is_empty() {
            obj.insert("cc".into(), json!(m.cc));
        }
        if !m.charset_fallback.is_empty() {
            obj.insert("charset_fallback".into(), json!(m.charset_fallback));
        }
        if m.from_deobfuscated {
            obj.insert("from_deobfuscated".into(), json!(true));
        }
    }
    let mut rec = ActivityRecord::new(
        SOURCE_SYSTEM,
        external_id(list, &m.message_id),
        at,
        "message",
    )
    .ok()?
    .with_payload(payload)
    .ok()?;
    if let Some(s) = &m.subject {
        rec = rec.with_title(s.clone());
    }
    if let Some(e) = m.from_email.as_deref().filter(|e| e.len() <= 256) {
        rec = rec.with_actor(e.to_owned()).ok()?;
    }
    Some(rec)
}

/// Write one batch (and the checkpoint, when given) in one transaction.
pub async fn store_batch(
    storage: &Storage,
    list: &str,
    archive_url: Option<&str>,
    messages: &[ParsedMessage],
    run_id: &str,
    checkpoint: Option<&CheckpointWrite<'_>>,
) -> Result<BatchCounts, StorageError> {
    // Dedup inside the batch: the smallest content hash wins.
    let mut best: BTreeMap<&str, &ParsedMessage> = BTreeMap::new();
    for m in messages {
        best.entry(m.message_id.as_str())
            .and_modify(|cur| {
                if m.content_hash < cur.content_hash {
                    *cur = m;
                }
            })
            .or_insert(m);
    }
    let unique: Vec<&ParsedMessage> = best.into_values().collect();
    let mut counts = BatchCounts {
        duplicates: (messages.len() - unique.len()) as u64,
        ..BatchCounts::default()
    };
    let stamp = now();
    let mut tx = storage.begin().await?;
    let mut touched: Vec<(String, i64)> = Vec::new();
    bdc_storage::on_tx!(&mut tx, t => {
        sqlx::query(
            "INSERT INTO ml_lists (name, archive_url, first_seen_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET archive_url = excluded.archive_url
             WHERE excluded.archive_url IS NOT NULL
               AND ml_lists.archive_url IS DISTINCT FROM excluded.archive_url",
        )
        .bind(list)
        .bind(archive_url)
        .bind(stamp)
        .execute(&mut **t)
        .await
        .ctx("upserting a mailing list")?;
        for chunk in unique.chunks(CHUNK) {
            let mut qb = QueryBuilder::new(MSG_HEAD);
            qb.push_values(chunk.iter(), |mut b, m| {
                let malformed = (!m.malformed.is_empty()).then(|| m.malformed.join(","));
                b.push_bind(list)
                    .push_bind(m.message_id.as_str())
                    .push_bind(m.message_id_synthesized)
                    .push_bind(m.subject.as_deref())
                    .push_bind(m.from_name.as_deref())
                    .push_bind(m.from_email.as_deref())
                    .push_bind(m.sent_at.map(bdc_storage::normalize_time))
                    .push_bind(m.month())
                    .push_bind(m.parent_id.as_deref())
                    .push_bind(m.thread_root.as_str())
                    .push_bind(m.body_text.as_str())
                    .push_bind(i64::from(m.attachments))
                    .push_bind(i64::try_from(m.size_bytes).unwrap_or(i64::MAX))
                    .push_bind(m.content_hash.as_str())
                    .push_bind(malformed)
                    .push_bind(run_id)
                    .push_bind(stamp)
                    .push_bind(stamp);
            });
            qb.push(MSG_TAIL);
            let rows: Vec<(String, i64)> = qb
                .build_query_as()
                .fetch_all(&mut **t)
                .await
                .ctx("upserting mailing-list messages")?;
            touched.extend(rows);
        }
        for (id, revision) in &touched {
            if *revision > 1 {
                sqlx::query("DELETE FROM ml_thread_links WHERE list = $1 AND message_id = $2")
                    .bind(list)
                    .bind(id.as_str())
                    .execute(&mut **t)
                    .await
                    .ctx("replacing thread links")?;
            }
        }
    });
    counts.inserted = touched.iter().filter(|(_, r)| *r == 1).count() as u64;
    counts.updated = touched.len() as u64 - counts.inserted;
    counts.unchanged = unique.len() as u64 - touched.len() as u64;

    let by_id: BTreeMap<&str, &ParsedMessage> =
        unique.iter().map(|m| (m.message_id.as_str(), *m)).collect();
    let changed: Vec<&ParsedMessage> = touched
        .iter()
        .filter_map(|(id, _)| by_id.get(id.as_str()).copied())
        .collect();
    let links: Vec<(&str, i64, &str)> = changed
        .iter()
        .flat_map(|m| {
            m.links
                .iter()
                .enumerate()
                .map(|(i, l)| (m.message_id.as_str(), i as i64, l.as_str()))
        })
        .collect();
    bdc_storage::on_tx!(&mut tx, t => {
        for chunk in links.chunks(CHUNK * 2) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO ml_thread_links (list, message_id, position, referenced_id) ",
            );
            qb.push_values(chunk.iter(), |mut b, (id, pos, r)| {
                b.push_bind(list).push_bind(*id).push_bind(*pos).push_bind(*r);
            });
            qb.push(
                " ON CONFLICT (list, message_id, position) DO UPDATE SET referenced_id = excluded.referenced_id
                  WHERE ml_thread_links.referenced_id <> excluded.referenced_id",
            );
            qb.build()
                .execute(&mut **t)
                .await
                .ctx("inserting thread links")?;
        }
    });
    let records: Vec<ActivityRecord> = changed
        .iter()
        .filter_map(|m| activity_record(list, m))
        .collect();
    counts.no_activity = changed.len() as u64 - records.len() as u64;
    counts.activity = upsert_in_tx(&mut tx, &records, Some(run_id), checkpoint).await?;
    bdc_identity::record_profiles(&mut tx, &sender_profiles(&changed)).await?;
    tx.commit().await?;
    Ok(counts)
}

/// Identity-hub profiles of the senders (`mailing-list`, the address as written).
fn sender_profiles(messages: &[&ParsedMessage]) -> Vec<bdc_identity::ProfileInput> {
    messages
        .iter()
        .filter_map(|m| {
            let email = m.from_email.as_deref()?.trim();
            Some(
                bdc_identity::ProfileInput::new(SOURCE_SYSTEM, email)
                    .name(m.from_name.as_deref())
                    .email(Some(email))
                    .acts_as(SOURCE_SYSTEM, Some(email)),
            )
        })
        .collect()
}

/// Summary of a stored list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSummary {
    pub messages: u64,
    pub threads: u64,
    pub malformed: u64,
    pub links: u64,
}

/// Counts for one list (tests, reports).
pub async fn list_summary(storage: &Storage, list: &str) -> Result<ListSummary, StorageError> {
    on_pool!(storage, p => {
        let (messages, threads, malformed): (i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COUNT(DISTINCT thread_root),
                    COALESCE(SUM(CASE WHEN malformed IS NULL THEN 0 ELSE 1 END), 0)
             FROM ml_messages WHERE list = $1",
        )
        .bind(list)
        .fetch_one(p)
        .await
        .ctx("summarising a mailing list")?;
        let links: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ml_thread_links WHERE list = $1")
            .bind(list)
            .fetch_one(p)
            .await
            .ctx("counting thread links")?;
        Ok(ListSummary {
            messages: u64::try_from(messages).unwrap_or(0),
            threads: u64::try_from(threads).unwrap_or(0),
            malformed: u64::try_from(malformed).unwrap_or(0),
            links: u64::try_from(links).unwrap_or(0),
        })
    })
}

/// One stored message's main fields (tests, reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub message_id: String,
    pub subject: Option<String>,
    pub from_email: Option<String>,
    pub thread_root: String,
    pub parent_id: Option<String>,
    pub body_text: String,
    pub malformed: Option<String>,
    pub revision: i64,
}

/// A stored message by Message-ID.
pub async fn get_message(
    storage: &Storage,
    list: &str,
    message_id: &str,
) -> Result<Option<StoredMessage>, StorageError> {
    type Row = (
        String,
        Option<String>,
        Option<String>,
        String,
        Option<String>,
        String,
        Option<String>,
        i64,
    );
    let row: Option<Row> = on_pool!(storage, p => sqlx::query_as(
        "SELECT message_id, subject, from_email, thread_root, parent_id, body_text, malformed, revision
         FROM ml_messages WHERE list = $1 AND message_id = $2",
    )
    .bind(list)
    .bind(message_id)
    .fetch_optional(p)
    .await
    .ctx("reading a mailing-list message"))?;
    Ok(row.map(
        |(
            message_id,
            subject,
            from_email,
            thread_root,
            parent_id,
            body_text,
            malformed,
            revision,
        )| {
            StoredMessage {
                message_id,
                subject,
                from_email,
                thread_root,
                parent_id,
                body_text,
                malformed,
                revision,
            }
        },
    ))
}

/// A stored message with its body and its thread's subject: the search
/// index's read (never `ml_messages` directly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText {
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub list: String,
    pub message_id: String,
    pub subject: Option<String>,
    pub from_name: Option<String>,
    pub from_email: Option<String>,
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
    pub thread_root: String,
    /// The subject of the thread's first message (when stored).
    pub thread_subject: Option<String>,
    pub body_text: String,
    /// The list's archive (`ml_lists.archive_url`).
    pub archive_url: Option<String>,
}

/// Messages changed (written or rewritten) after `after`
/// (`(updated_at, list, message_id)`, exclusive), oldest change first, at
/// most `limit`.
pub async fn changed_messages(
    storage: &Storage,
    after: Option<(chrono::DateTime<chrono::Utc>, &str, &str)>,
    limit: u32,
) -> Result<Vec<MessageText>, StorageError> {
    type Row = (
        chrono::DateTime<chrono::Utc>,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<chrono::DateTime<chrono::Utc>>,
        String,
        Option<String>,
        String,
        Option<String>,
    );
    let (at, list, id) = after.unwrap_or((chrono::DateTime::<chrono::Utc>::UNIX_EPOCH, "", ""));
    let rows: Vec<Row> = on_pool!(storage, p => sqlx::query_as(
        "SELECT m.updated_at, m.list, m.message_id, m.subject, m.from_name, m.from_email,
                m.sent_at, m.thread_root, r.subject, m.body_text, l.archive_url
         FROM ml_messages m
         LEFT JOIN ml_messages r ON r.list = m.list AND r.message_id = m.thread_root
         LEFT JOIN ml_lists l ON l.name = m.list
         WHERE m.updated_at >= $1
           AND (m.updated_at > $1 OR m.list > $2 OR (m.list = $2 AND m.message_id > $3))
         ORDER BY m.updated_at, m.list, m.message_id LIMIT $4",
    )
    .bind(bdc_storage::normalize_time(at))
    .bind(list)
    .bind(id)
    .bind(i64::from(limit))
    .fetch_all(p)
    .await
    .ctx("reading changed mailing-list messages"))?;
    Ok(rows
        .into_iter()
        .map(
            |(
                updated_at,
                list,
                message_id,
                subject,
                from_name,
                from_email,
                sent_at,
                thread_root,
                thread_subject,
                body_text,
                archive_url,
            )| MessageText {
                updated_at,
                list,
                message_id,
                subject,
                from_name,
                from_email,
                sent_at,
                thread_root,
                thread_subject,
                body_text,
                archive_url,
            },
        )
        .collect())
}
