//! Benchmark of `youtube-transcripts`' transcript path: WebVTT caption
//! tracks generated here (`BDC_BENCH_YOUTUBE_SEGMENTS` cues in all, default
//! 200,000; `--quick`: 20,000), 1,000 cues per video, parsed
//! ([`captions::parse`]) and stored ([`store::store_transcript`], one
//! transaction per video) on each backend. Reported: segments parsed per
//! second (parse only) and parsed + stored per second.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Context, Result};
use bdc_collector_youtube_transcripts::captions;
use bdc_collector_youtube_transcripts::store::{self, TranscriptOutcome, Video};
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::{Kind, TestDb};
use chrono::{TimeZone, Utc};

use crate::{Row, backend_name};

const CUES_PER_VIDEO: usize = 1000;

fn vtt(video: usize) -> String {
    let mut s = String::from("WEBVTT\nKind: captions\nLanguage: en\n\n");
    for i in 0..CUES_PER_VIDEO {
        let start = i as u64 * 2500;
        let end = start + 2400;
        let t = |ms: u64| {
            format!(
                "{:02}:{:02}:{:02}.{:03}",
                ms / 3_600_000,
                ms / 60_000 % 60,
                ms / 1000 % 60,
                ms % 1000
            )
        };
        let _ = write!(
            s,
            "{}\n{} --> {} align:start position:0%\nvideo {video} cue {i}: <c>templates</c> &amp; ranges in C++\n\n",
            i + 1,
            t(start),
            t(end)
        );
    }
    s
}

pub async fn run(kind: Kind, quick: bool) -> Result<Vec<Row>> {
    let backend = backend_name(kind);
    let total: usize = std::env::var("BDC_BENCH_YOUTUBE_SEGMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 20_000 } else { 200_000 });
    let videos = total.div_ceil(CUES_PER_VIDEO).max(1);
    let tracks: Vec<String> = (0..videos).map(vtt).collect();

    let start = Instant::now();
    let mut parsed = 0usize;
    for t in &tracks {
        parsed += captions::parse(t)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .segments
            .len();
    }
    let parse_rate = parsed as f64 / start.elapsed().as_secs_f64();

    let db = TestDb::new(kind).await;
    let storage = Storage::connect(db.url(), &ConnectOptions::default()).await?;
    storage.migrate_parts(&[&store::SCHEMA]).await?;
    store::upsert_channel(&storage, "UCbench", "Bench", Some("UUbench")).await?;
    let base = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .context("bad base date")?;
    let rows: Vec<Video> = (0..videos)
        .map(|i| Video {
            video_id: format!("v{i:06}"),
            channel_id: "UCbench".into(),
            title: format!("Talk {i}"),
            description: String::new(),
            published_at: base + chrono::Duration::minutes(i as i64),
            duration_seconds: Some(3600),
            tags: vec![],
            view_count: None,
            like_count: None,
            comment_count: None,
        })
        .collect();
    for chunk in rows.chunks(50) {
        store::store_videos(&storage, "UCbench", chunk, None).await?;
    }
    let now = Utc::now();
    let start = Instant::now();
    let mut stored = 0usize;
    for (i, t) in tracks.iter().enumerate() {
        let track = captions::parse(t).map_err(|e| anyhow::anyhow!("{e}"))?;
        stored += track.segments.len();
        store::store_transcript(
            &storage,
            &format!("v{i:06}"),
            TranscriptOutcome::Found {
                format: track.format,
                segments: &track.segments,
            },
            now,
        )
        .await?;
    }
    let store_rate = stored as f64 / start.elapsed().as_secs_f64();
    storage.close().await;
    drop(db);
    Ok(vec![
        Row {
            bench: "youtube-transcripts: WebVTT segments parsed".into(),
            backend,
            size: parsed.to_string(),
            value: parse_rate,
            unit: "segments/s",
        },
        Row {
            bench: "youtube-transcripts: segments parsed + stored".into(),
            backend,
            size: stored.to_string(),
            value: store_rate,
            unit: "segments/s",
        },
    ])
}
