//! The youtube-transcripts store: schema part `youtube_transcripts`
//! (tables `yt_channels`, `yt_videos`, `yt_segments`).
//!
//! * A page of videos is written in ONE transaction with the channel's
//!   checkpoint (`yt_channels.newest_published_at`) when the page is the
//!   last of the channel's walk; a crash before it leaves the old
//!   checkpoint and the re-run re-reads the pages (idempotent upserts).
//! * A video whose fields did not change is not rewritten
//!   (`content_hash`); its transcript state is kept across updates.
//! * A transcript replaces the video's segments in one transaction with
//!   its status, so a video never has half a transcript.

use bdc_storage::{MigrationFile, QueryContext, SchemaPart, Storage, StorageError, on_pool, on_tx};
use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

use crate::captions::{Format, Segment};

/// The collector's schema part (registered in `crates/bdc/src/schema.rs`).
pub static SCHEMA: SchemaPart = SchemaPart {
    name: "youtube_transcripts",
    migrations: &[MigrationFile {
        version: 1,
        description: "YouTube channels, videos and transcript segments",
        sqlite: include_str!("../migrations/sqlite_0001.sql"),
        postgres: include_str!("../migrations/postgres_0001.sql"),
    }],
};

/// A video with its details (`videos.list` snippet, contentDetails,
/// statistics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Video {
    pub video_id: String,
    pub channel_id: String,
    pub title: String,
    pub description: String,
    pub published_at: DateTime<Utc>,
    pub duration_seconds: Option<i64>,
    pub tags: Vec<String>,
    pub view_count: Option<i64>,
    pub like_count: Option<i64>,
    pub comment_count: Option<i64>,
}

impl Video {
    fn content_hash(&self) -> String {
        let canonical = serde_json::json!([
            self.channel_id,
            self.title,
            self.description,
            self.published_at.to_rfc3339(),
            self.duration_seconds,
            self.tags,
            self.view_count,
            self.like_count,
            self.comment_count,
        ])
        .to_string();
        format!("{:016x}", bdc_http::fnv1a64(canonical.as_bytes()))
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// Transcript state of a video.
pub const STATUS_PENDING: &str = "pending";
pub const STATUS_OK: &str = "ok";
pub const STATUS_NONE: &str = "none";
pub const STATUS_INVALID: &str = "invalid";

/// A video without captions is asked again at most this many times in
/// all, with growing gaps ([`retry_gap`]), then left alone.
pub const MAX_TRANSCRIPT_ATTEMPTS: i64 = 5;

/// Wait before asking again after `attempts` failed tries: 1, 2, 4, 8 days.
pub fn retry_gap(attempts: i64) -> chrono::Duration {
    chrono::Duration::days(1i64 << (attempts.clamp(1, 4) - 1))
}

/// Record a channel (title and uploads playlist).
pub async fn upsert_channel(
    storage: &Storage,
    channel_id: &str,
    title: &str,
    uploads_playlist: Option<&str>,
) -> Result<(), StorageError> {
    let now = bdc_storage::now();
    let mut tx = storage.begin().await?;
    on_tx!(&mut tx, t => sqlx::query(
        "INSERT INTO yt_channels (channel_id, title, uploads_playlist, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (channel_id) DO UPDATE SET title = excluded.title,
            uploads_playlist = coalesce(excluded.uploads_playlist, yt_channels.uploads_playlist),
            updated_at = excluded.updated_at
         WHERE yt_channels.title <> excluded.title
            OR yt_channels.uploads_playlist IS DISTINCT FROM coalesce(excluded.uploads_playlist, yt_channels.uploads_playlist)")
        .bind(channel_id)
        .bind(title)
        .bind(uploads_playlist)
        .bind(now)
        .execute(&mut **t)
        .await
        .ctx("recording a YouTube channel")
        .map(|_| ()))?;
    tx.commit().await?;
    Ok(())
}

/// A stored channel: (uploads playlist, checkpoint).
pub async fn channel(
    storage: &Storage,
    channel_id: &str,
) -> Result<Option<(Option<String>, Option<DateTime<Utc>>)>, StorageError> {
    on_pool!(storage, p => sqlx::query_as::<_, (Option<String>, Option<DateTime<Utc>>)>(
        "SELECT uploads_playlist, newest_published_at FROM yt_channels WHERE channel_id = $1")
        .bind(channel_id)
        .fetch_optional(p)
        .await
        .ctx("reading a YouTube channel"))
}

/// Upsert one page of videos; with `checkpoint`, move the channel's
/// checkpoint forward in the same transaction.
pub async fn store_videos(
    storage: &Storage,
    channel_id: &str,
    videos: &[Video],
    checkpoint: Option<DateTime<Utc>>,
) -> Result<WriteCounts, StorageError> {
    let now = bdc_storage::now();
    let mut out = WriteCounts::default();
    let mut tx = storage.begin().await?;
    for v in videos {
        let hash = v.content_hash();
        let stored: Option<String> = on_tx!(&mut tx, t => sqlx::query_scalar::<_, String>(
            "SELECT content_hash FROM yt_videos WHERE video_id = $1")
            .bind(&v.video_id)
            .fetch_optional(&mut **t)
            .await
            .ctx("reading a stored video"))?;
        match stored {
            Some(h) if h == hash => {
                out.unchanged += 1;
                continue;
            }
            Some(_) => out.updated += 1,
            None => out.inserted += 1,
        }
        let tags = serde_json::to_string(&v.tags).unwrap_or_else(|_| "[]".into());
        on_tx!(&mut tx, t => sqlx::query(
            "INSERT INTO yt_videos (video_id, channel_id, title, description, published_at,
                 duration_seconds, tags, view_count, like_count, comment_count,
                 transcript_status, transcript_attempts, content_hash, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', 0, $11, $12)
             ON CONFLICT (video_id) DO UPDATE SET channel_id = excluded.channel_id,
                title = excluded.title, description = excluded.description,
                published_at = excluded.published_at, duration_seconds = excluded.duration_seconds,
                tags = excluded.tags, view_count = excluded.view_count,
                like_count = excluded.like_count, comment_count = excluded.comment_count,
                content_hash = excluded.content_hash, updated_at = excluded.updated_at")
            .bind(&v.video_id)
            .bind(&v.channel_id)
            .bind(&v.title)
            .bind(&v.description)
            .bind(v.published_at)
            .bind(v.duration_seconds)
            .bind(&tags)
            .bind(v.view_count)
            .bind(v.like_count)
            .bind(v.comment_count)
            .bind(&hash)
            .bind(now)
            .execute(&mut **t)
            .await
            .ctx("upserting a video")
            .map(|_| ()))?;
    }
    if let Some(cp) = checkpoint {
        on_tx!(&mut tx, t => sqlx::query(
            "UPDATE yt_channels SET newest_published_at = $2, updated_at = $3
             WHERE channel_id = $1 AND (newest_published_at IS NULL OR newest_published_at < $2)")
            .bind(channel_id)
            .bind(cp)
            .bind(now)
            .execute(&mut **t)
            .await
            .ctx("moving a channel's checkpoint")
            .map(|_| ()))?;
    }
    tx.commit().await?;
    Ok(out)
}

/// Videos of `channel_ids` whose transcript is due at `now`: never
/// asked, or without captions last time and due for a retry (fewer than
/// [`MAX_TRANSCRIPT_ATTEMPTS`] tries). Oldest first.
pub async fn transcripts_due(
    storage: &Storage,
    channel_ids: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<(String, i64)>, StorageError> {
    type Due = (String, String, String, i64, Option<DateTime<Utc>>);
    let rows: Vec<Due> = on_pool!(storage, p => sqlx::query_as(
        "SELECT video_id, channel_id, transcript_status, transcript_attempts, transcript_checked_at
           FROM yt_videos WHERE transcript_status IN ('pending', 'none', 'invalid')
          ORDER BY published_at, video_id")
        .fetch_all(p)
        .await
        .ctx("listing videos without a transcript"))?;
    Ok(rows
        .into_iter()
        .filter(|(_, ch, ..)| channel_ids.iter().any(|c| c == ch))
        .filter(|(_, _, status, attempts, checked)| {
            status == STATUS_PENDING
                || (*attempts < MAX_TRANSCRIPT_ATTEMPTS
                    && checked.is_none_or(|c| c + retry_gap(*attempts) <= now))
        })
        .map(|(id, _, _, attempts, _)| (id, attempts))
        .collect())
}

/// The outcome of asking for a video's transcript.
#[derive(Debug, Clone)]
pub enum TranscriptOutcome<'a> {
    Found {
        format: Format,
        segments: &'a [Segment],
    },
    /// No caption track (or nothing usable): asked again later.
    Missing { invalid: bool },
}

/// Record a transcript (segments replace the old ones) or its absence, in
/// one transaction.
pub async fn store_transcript(
    storage: &Storage,
    video_id: &str,
    outcome: TranscriptOutcome<'_>,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let mut tx = storage.begin().await?;
    match outcome {
        TranscriptOutcome::Found { format, segments } => {
            on_tx!(&mut tx, t => sqlx::query("DELETE FROM yt_segments WHERE video_id = $1")
                .bind(video_id)
                .execute(&mut **t)
                .await
                .ctx("replacing transcript segments")
                .map(|_| ()))?;
            for (chunk_no, chunk) in segments.chunks(200).enumerate() {
                let base = chunk_no * 200;
                match &mut tx {
                    bdc_storage::Tx::Sqlite(t) => {
                        let mut qb = QueryBuilder::<sqlx::Sqlite>::new(
                            "INSERT INTO yt_segments (video_id, seq, start_ms, end_ms, text) ",
                        );
                        qb.push_values(chunk.iter().enumerate(), |mut b, (i, s)| {
                            b.push_bind(video_id)
                                .push_bind((base + i) as i64)
                                .push_bind(s.start_ms)
                                .push_bind(s.end_ms)
                                .push_bind(&s.text);
                        });
                        qb.build()
                            .execute(&mut **t)
                            .await
                            .ctx("storing transcript segments")?;
                    }
                    bdc_storage::Tx::Postgres(t) => {
                        let mut qb = QueryBuilder::<sqlx::Postgres>::new(
                            "INSERT INTO yt_segments (video_id, seq, start_ms, end_ms, text) ",
                        );
                        qb.push_values(chunk.iter().enumerate(), |mut b, (i, s)| {
                            b.push_bind(video_id)
                                .push_bind((base + i) as i64)
                                .push_bind(s.start_ms)
                                .push_bind(s.end_ms)
                                .push_bind(&s.text);
                        });
                        qb.build()
                            .execute(&mut **t)
                            .await
                            .ctx("storing transcript segments")?;
                    }
                }
            }
            on_tx!(&mut tx, t => sqlx::query(
                "UPDATE yt_videos SET transcript_status = 'ok', transcript_format = $2,
                    transcript_attempts = transcript_attempts + 1, transcript_checked_at = $3
                 WHERE video_id = $1")
                .bind(video_id)
                .bind(format.as_str())
                .bind(now)
                .execute(&mut **t)
                .await
                .ctx("recording a transcript")
                .map(|_| ()))?;
        }
        TranscriptOutcome::Missing { invalid } => {
            on_tx!(&mut tx, t => sqlx::query(
                "UPDATE yt_videos SET transcript_status = $2,
                    transcript_attempts = transcript_attempts + 1, transcript_checked_at = $3
                 WHERE video_id = $1")
                .bind(video_id)
                .bind(if invalid { STATUS_INVALID } else { STATUS_NONE })
                .bind(now)
                .execute(&mut **t)
                .await
                .ctx("recording a missing transcript")
                .map(|_| ()))?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// A stored video with its transcript state (public read: the search
/// index reads talks here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVideo {
    pub video_id: String,
    pub channel_id: String,
    pub title: String,
    pub published_at: DateTime<Utc>,
    pub transcript_status: String,
    pub transcript_attempts: i64,
}

/// Every stored video, oldest first.
pub async fn videos(storage: &Storage) -> Result<Vec<StoredVideo>, StorageError> {
    let rows: Vec<(String, String, String, DateTime<Utc>, String, i64)> = on_pool!(storage, p => sqlx::query_as(
        "SELECT video_id, channel_id, title, published_at, transcript_status, transcript_attempts
           FROM yt_videos ORDER BY published_at, video_id")
        .fetch_all(p)
        .await
        .ctx("listing videos"))?;
    Ok(rows
        .into_iter()
        .map(
            |(
                video_id,
                channel_id,
                title,
                published_at,
                transcript_status,
                transcript_attempts,
            )| {
                StoredVideo {
                    video_id,
                    channel_id,
                    title,
                    published_at,
                    transcript_status,
                    transcript_attempts,
                }
            },
        )
        .collect())
}

/// A video's transcript segments in order (public read for the search
/// index).
pub async fn segments(storage: &Storage, video_id: &str) -> Result<Vec<Segment>, StorageError> {
    let rows: Vec<(i64, i64, String)> = on_pool!(storage, p => sqlx::query_as(
        "SELECT start_ms, end_ms, text FROM yt_segments WHERE video_id = $1 ORDER BY seq")
        .bind(video_id)
        .fetch_all(p)
        .await
        .ctx("reading transcript segments"))?;
    Ok(rows
        .into_iter()
        .map(|(start_ms, end_ms, text)| Segment {
            start_ms,
            end_ms,
            text,
        })
        .collect())
}
