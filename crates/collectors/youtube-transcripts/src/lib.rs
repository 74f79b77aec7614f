//! The `youtube-transcripts` collector (alias
//! `run_cppa_youtube_script_tracker`): the talks of configured YouTube
//! channels (CppCon, C++Now, Meeting C++, ...) and their transcripts.
//!
//! ```text
//! bdc run youtube-transcripts [--start-time T] [--end-time T] [--channel-title TITLE]…
//!                             [--language en] [--skip-transcript] [--dry-run]
//!                             [--quota-budget UNITS] [--from-archive [--archive-dir DIR]]
//! ```
//!
//! For each channel of the channel map (`YOUTUBE_CHANNELS_FILE`, YAML
//! `title: channel id`):
//!
//! 1. `channels.list` (1 quota unit, once per channel: the uploads playlist
//!    is stored) → the uploads playlist;
//! 2. `playlistItems.list` of that playlist (1 unit per page of 50, newest
//!    first) back to `--start-time`, else to the channel's checkpoint (the
//!    newest upload stored); never `search.list` (100 units);
//! 3. `videos.list` for each page's ids (1 unit): duration, tags,
//!    statistics; the page is stored in one transaction, the last one
//!    with the channel's checkpoint;
//! 4. transcripts (no quota): the caption track from the timed-text
//!    endpoint (`YOUTUBE_TIMEDTEXT_URL?v=ID&lang=en&fmt=vtt`), WebVTT or
//!    timed-text XML ([`captions`]), stored as timed segments. A video
//!    without captions is recorded as such and asked again after 1, 2, 4,
//!    8 days, at most [`store::MAX_TRANSCRIPT_ATTEMPTS`] times in all.
//!
//! **Quota.** The Data API allows 10,000 units a day. Each call's cost is
//! counted before it is made; when the next call would exceed the run's
//! budget (`--quota-budget`, else `YOUTUBE_QUOTA_BUDGET`, else 10,000) the
//! run stops cleanly: what was stored stays, the unfinished channel keeps
//! its old checkpoint, `quota_stopped` is 1. Spent units are in the run's
//! counts and in `/metrics` (`bdc_youtube_quota_units_total`).
//!
//! **Secrets.** `YOUTUBE_API_KEY` travels as the `X-Goog-Api-Key` header:
//! never in a URL, so never in the HTTP cache keys, the raw archive
//! (`WORKSPACE_DIR/raw/youtube-transcripts/`), logs or run records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bdc_collector::{CollectContext, Collector};
use bdc_core::{BoxError, Categorized, FailureCategory, TrackerResult};
use bdc_http::{
    ClientOptions, Clock, HttpCache, HttpClient, HttpError, RawArchive, SystemClock, TokenAuth,
};
use bdc_storage::StorageError;
use chrono::{DateTime, NaiveDate, Utc};
use clap::Parser;
use serde::Deserialize;

pub mod captions;
pub mod store;

pub use store::SCHEMA;
use store::{TranscriptOutcome, Video};

/// Stable collector name.
pub const NAME: &str = "youtube-transcripts";
/// Quota units of the Data API methods this collector calls.
pub const COST_CHANNELS_LIST: u64 = 1;
pub const COST_PLAYLIST_ITEMS_LIST: u64 = 1;
pub const COST_VIDEOS_LIST: u64 = 1;

/// Errors of the `youtube-transcripts` collector.
#[derive(Debug, thiserror::Error)]
pub enum YoutubeError {
    #[error("invalid arguments for youtube-transcripts: {message}")]
    Args { message: String },
    #[error("youtube-transcripts configuration: {message}")]
    Config { message: String },
    #[error("channel map {path}: {message}", path = path.display())]
    ChannelMap { path: PathBuf, message: String },
    #[error("{what}: {source}")]
    Http {
        what: String,
        #[source]
        source: HttpError,
    },
    #[error("{what}: the answer is not the documented shape: {detail}")]
    Answer { what: String, detail: String },
    #[error("database error while {what}: {source}")]
    Storage {
        what: &'static str,
        #[source]
        source: StorageError,
    },
}

impl YoutubeError {
    pub fn into_box(self) -> BoxError {
        let category = match &self {
            YoutubeError::Args { .. }
            | YoutubeError::Config { .. }
            | YoutubeError::ChannelMap { .. } => Some(FailureCategory::Config),
            YoutubeError::Http { source, .. } => Some(source.category()),
            YoutubeError::Answer { .. } => Some(FailureCategory::Parse),
            YoutubeError::Storage { .. } => None,
        };
        match category {
            Some(c) => {
                let message = self.to_string();
                Box::new(Categorized::with_source(c, message, self))
            }
            None => Box::new(self),
        }
    }
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{s:?} is neither YYYY-MM-DD nor RFC 3339"))
}

/// `bdc run youtube-transcripts` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "youtube-transcripts",
    about = "Talks of the configured YouTube channels and their transcripts"
)]
pub struct YoutubeArgs {
    /// Only videos published at or after T (YYYY-MM-DD or RFC 3339)
    /// [default: each channel's newest stored video].
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub start_time: Option<DateTime<Utc>>,
    /// Only videos published before T.
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub end_time: Option<DateTime<Utc>>,
    /// Only the channel with this title in the channel map (repeatable;
    /// case-insensitive).
    #[arg(long, value_name = "TITLE")]
    pub channel_title: Vec<String>,
    /// Caption language asked for.
    #[arg(long, value_name = "LANG", default_value = "en")]
    pub language: String,
    /// Store videos only; fetch no transcript (they are fetched later).
    #[arg(long)]
    pub skip_transcript: bool,
    /// Read and parse everything, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Data API quota units this run may spend [default:
    /// YOUTUBE_QUOTA_BUDGET, else 10000].
    #[arg(long, value_name = "UNITS")]
    pub quota_budget: Option<u64>,
    /// Re-read the raw archive of an earlier run without any network request.
    #[arg(long)]
    pub from_archive: bool,
    /// With `--from-archive`: replay the archive in DIR instead of
    /// `WORKSPACE_DIR/raw/youtube-transcripts/`.
    #[arg(long, value_name = "DIR", requires = "from_archive")]
    pub archive_dir: Option<PathBuf>,
}

impl YoutubeArgs {
    pub fn parse_args(args: &[String]) -> Result<Self, YoutubeError> {
        let a = Self::try_parse_from(std::iter::once(NAME.to_owned()).chain(args.iter().cloned()))
            .map_err(|e| YoutubeError::Args {
                message: e.to_string().trim().to_owned(),
            })?;
        if let (Some(s), Some(e)) = (a.start_time, a.end_time)
            && e <= s
        {
            return Err(YoutubeError::Args {
                message: format!("--end-time {e} is not after --start-time {s}"),
            });
        }
        if a.language.is_empty()
            || !a
                .language
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(YoutubeError::Args {
                message: format!("--language {:?} is not a language code", a.language),
            });
        }
        Ok(a)
    }
}

/// A channel of the channel map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelEntry {
    pub title: String,
    pub channel_id: String,
}

/// Read the channel map: a YAML mapping `title: channel id` (the ids
/// start with `UC`, 24 characters).
pub fn load_channel_map(path: &Path) -> Result<Vec<ChannelEntry>, YoutubeError> {
    let err = |message: String| YoutubeError::ChannelMap {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        err(format!(
            "cannot read it ({e}); set YOUTUBE_CHANNELS_FILE or create it (see docs/collectors.md#youtube-transcripts)"
        ))
    })?;
    let map: BTreeMap<String, String> = serde_saphyr::from_str(&text)
        .map_err(|e| err(format!("not a YAML map of title: channel id ({e})")))?;
    let mut out = Vec::new();
    for (title, id) in map {
        let id = id.trim().to_owned();
        if !(id.starts_with("UC")
            && id.len() == 24
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(err(format!(
                "channel {title:?}: {id:?} is not a channel id (UC + 22 characters)"
            )));
        }
        out.push(ChannelEntry {
            title,
            channel_id: id,
        });
    }
    if out.is_empty() {
        return Err(err("no channel in the map".into()));
    }
    Ok(out)
}

/// The `youtube-transcripts` collector. Tests inject a clock.
#[derive(Debug, Clone, Default)]
pub struct YoutubeCollector {
    clock: Option<Arc<dyn Clock>>,
}

impl YoutubeCollector {
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        YoutubeCollector { clock: Some(clock) }
    }
}

#[async_trait]
impl Collector for YoutubeCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn args_command(&self) -> Option<clap::Command> {
        Some(<YoutubeArgs as clap::CommandFactory>::command())
    }

    fn validate_config(&self, ctx: &CollectContext) -> Result<(), BoxError> {
        let args = YoutubeArgs::parse_args(&ctx.args).map_err(YoutubeError::into_box)?;
        if ctx.config.youtube.api_key.is_none() && !args.from_archive {
            return Err(YoutubeError::Config {
                message: "YOUTUBE_API_KEY is not set (a YouTube Data API v3 key; see docs/collectors.md#youtube-transcripts)".into(),
            }
            .into_box());
        }
        load_channel_map(&ctx.config.youtube.channels_file).map_err(YoutubeError::into_box)?;
        Ok(())
    }

    async fn collect(&self, ctx: &CollectContext) -> Result<TrackerResult, BoxError> {
        let args = YoutubeArgs::parse_args(&ctx.args).map_err(YoutubeError::into_box)?;
        let clock = self.clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
        collect(ctx, &args, clock)
            .await
            .map_err(YoutubeError::into_box)
    }
}

// ----- Data API shapes (only the fields used) -----

#[derive(Debug, Deserialize)]
struct ChannelsAnswer {
    #[serde(default)]
    items: Vec<ChannelItem>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChannelItem {
    id: String,
    content_details: ChannelDetails,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChannelDetails {
    related_playlists: RelatedPlaylists,
}

#[derive(Debug, Deserialize)]
struct RelatedPlaylists {
    uploads: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlaylistAnswer {
    next_page_token: Option<String>,
    #[serde(default)]
    items: Vec<PlaylistItem>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlaylistItem {
    content_details: PlaylistItemDetails,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlaylistItemDetails {
    video_id: String,
    /// Absent for private or deleted videos.
    video_published_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
struct VideosAnswer {
    #[serde(default)]
    items: Vec<VideoItem>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VideoItem {
    id: String,
    snippet: VideoSnippet,
    content_details: Option<VideoDetails>,
    statistics: Option<VideoStatistics>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VideoSnippet {
    published_at: DateTime<Utc>,
    channel_id: String,
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct VideoDetails {
    duration: Option<String>,
}

/// The API sends counts as strings.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VideoStatistics {
    view_count: Option<String>,
    like_count: Option<String>,
    comment_count: Option<String>,
}

/// ISO 8601 duration (`PT1H2M3S`, `P1DT2H`) in seconds.
pub fn iso_duration_seconds(s: &str) -> Option<i64> {
    let rest = s.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut total: i64 = 0;
    let mut num = String::new();
    for (part, units) in [(days, "WD"), (time, "HMS")] {
        for c in part.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            if !units.contains(c) || num.is_empty() {
                return None;
            }
            let n: i64 = num.parse().ok()?;
            num.clear();
            total += n * match c {
                'W' => 7 * 86_400,
                'D' => 86_400,
                'H' => 3600,
                'M' => 60,
                _ => 1,
            };
        }
        if !num.is_empty() {
            return None;
        }
    }
    Some(total)
}

// ----- the run -----

#[derive(Debug, Default)]
struct Counts(BTreeMap<&'static str, u64>);

/// Count names, in the order the run record shows them.
const COUNT_NAMES: &[&str] = &[
    "channels",
    "pages",
    "videos_seen",
    "inserted",
    "updated",
    "unchanged",
    "would_write",
    "quota_units",
    "quota_stopped",
    "transcripts_ok",
    "transcripts_missing",
    "transcripts_invalid",
    "segments",
    "cues_skipped",
    "requests",
    "not_modified",
    "replayed",
];

impl Counts {
    fn add(&mut self, k: &'static str, n: u64) {
        *self.0.entry(k).or_insert(0) += n;
    }
    fn result(&self) -> TrackerResult {
        let mut r = TrackerResult::ok();
        for k in COUNT_NAMES {
            if let Err(e) = r.add(k, self.0.get(k).copied().unwrap_or(0)) {
                tracing::error!(count = k, error = %e, "invalid count name");
            }
        }
        r
    }
}

/// The run's quota account: a call is made only when it fits the budget.
struct Quota {
    budget: u64,
    used: u64,
}

impl Quota {
    fn try_spend(&mut self, cost: u64) -> bool {
        if self.used + cost > self.budget {
            return false;
        }
        self.used += cost;
        metrics::counter!("bdc_youtube_quota_units_total").increment(cost);
        true
    }
}

/// Stop signal: the budget would be exceeded.
struct QuotaStop;

struct Api<'a> {
    client: &'a HttpClient,
    quota: std::sync::Mutex<Quota>,
}

impl Api<'_> {
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        cost: u64,
        what: &str,
    ) -> Result<Result<T, QuotaStop>, YoutubeError> {
        let fits = match self.quota.lock() {
            Ok(mut q) => q.try_spend(cost),
            Err(_) => false,
        };
        if !fits {
            return Ok(Err(QuotaStop));
        }
        let body = self
            .client
            .get(path)
            .await
            .map_err(|source| YoutubeError::Http {
                what: what.to_owned(),
                source,
            })?;
        serde_json::from_slice(&body.body)
            .map(Ok)
            .map_err(|e| YoutubeError::Answer {
                what: what.to_owned(),
                detail: format!("{e} (line {}, column {})", e.line(), e.column()),
            })
    }

    fn used(&self) -> u64 {
        self.quota.lock().map(|q| q.used).unwrap_or(0)
    }
}

fn query(path: &str, params: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    format!("{path}?{}", s.finish())
}

async fn client(
    ctx: &CollectContext,
    args: &YoutubeArgs,
    opts: ClientOptions,
    clock: Arc<dyn Clock>,
) -> Result<HttpClient, YoutubeError> {
    let c = if args.from_archive {
        let archive = match &args.archive_dir {
            Some(dir) => RawArchive::at(dir.clone()),
            None => RawArchive::new(&ctx.config.workspace_dir, NAME),
        };
        // Both clients replay from the same archive (their URLs differ).
        HttpClient::replay(opts, archive).await
    } else {
        HttpClient::new(opts).map(|c| {
            let c = c.with_archive(RawArchive::new(&ctx.config.workspace_dir, NAME));
            if args.dry_run {
                c
            } else {
                c.with_cache(HttpCache::new(ctx.storage.clone()))
            }
        })
    };
    c.map(|c| c.with_clock(clock))
        .map_err(|source| YoutubeError::Http {
            what: "setting up the HTTP client".into(),
            source,
        })
}

async fn collect(
    ctx: &CollectContext,
    args: &YoutubeArgs,
    clock: Arc<dyn Clock>,
) -> Result<TrackerResult, YoutubeError> {
    let cfg = &ctx.config.youtube;
    let mut channels = load_channel_map(&cfg.channels_file)?;
    if !args.channel_title.is_empty() {
        let wanted: Vec<String> = args
            .channel_title
            .iter()
            .map(|t| t.to_lowercase())
            .collect();
        channels.retain(|c| wanted.contains(&c.title.to_lowercase()));
        if channels.is_empty() {
            return Err(YoutubeError::Args {
                message: format!(
                    "no channel titled {} in {}",
                    args.channel_title.join(", "),
                    cfg.channels_file.display()
                ),
            });
        }
    }
    let mut api_opts = ClientOptions::new(NAME, cfg.api_url.clone());
    api_opts.tokens = cfg.api_key.iter().cloned().collect();
    api_opts.auth = TokenAuth::Header("X-Goog-Api-Key");
    let api_client = client(ctx, args, api_opts, clock.clone()).await?;
    let mut tt_opts = ClientOptions::new(NAME, cfg.timedtext_url.clone());
    tt_opts.accept = "text/vtt, application/xml;q=0.9, */*;q=0.5".into();
    tt_opts.archive_not_found = true;
    let tt_client = client(ctx, args, tt_opts, clock.clone()).await?;
    let api = Api {
        client: &api_client,
        quota: std::sync::Mutex::new(Quota {
            budget: args.quota_budget.unwrap_or(cfg.quota_budget),
            used: 0,
        }),
    };
    let mut counts = Counts::default();
    let mut stopped = false;
    for ch in &channels {
        let span = tracing::info_span!("channel", collector = NAME, channel = %ch.title);
        let _enter = span.enter();
        counts.add("channels", 1);
        if walk_channel(ctx, args, &api, ch, &mut counts).await? {
            stopped = true;
            tracing::warn!(
                collector = NAME,
                channel = %ch.title,
                quota_units = api.used(),
                "quota budget reached: stopping cleanly (the channel keeps its checkpoint)"
            );
            break;
        }
    }
    if !args.skip_transcript {
        let ids: Vec<String> = channels.iter().map(|c| c.channel_id.clone()).collect();
        let base = cfg.timedtext_url.as_str();
        transcripts(ctx, args, &tt_client, base, &ids, clock.now(), &mut counts).await?;
    }
    counts.add("quota_units", api.used());
    counts.add("quota_stopped", u64::from(stopped));
    metrics::gauge!("bdc_youtube_quota_units_last_run").set(api.used() as f64);
    for c in [&api_client, &tt_client] {
        let s = c.stats();
        counts.add("requests", s.requests);
        counts.add("not_modified", s.not_modified);
        counts.add("replayed", s.replayed);
    }
    Ok(counts.result())
}

/// Walk one channel's uploads; `Ok(true)` when the quota stopped it.
async fn walk_channel(
    ctx: &CollectContext,
    args: &YoutubeArgs,
    api: &Api<'_>,
    ch: &ChannelEntry,
    counts: &mut Counts,
) -> Result<bool, YoutubeError> {
    let storage_err = |what: &'static str| move |source| YoutubeError::Storage { what, source };
    let stored = store::channel(&ctx.storage, &ch.channel_id)
        .await
        .map_err(storage_err("reading a channel"))?;
    let (uploads, checkpoint) = match stored {
        Some((Some(u), cp)) => (u, cp),
        other => {
            let cp = other.and_then(|o| o.1);
            let path = query(
                "channels",
                &[("part", "contentDetails"), ("id", &ch.channel_id)],
            );
            let answer: ChannelsAnswer = match api
                .get(
                    &path,
                    COST_CHANNELS_LIST,
                    &format!("channels.list {}", ch.channel_id),
                )
                .await?
            {
                Ok(a) => a,
                Err(QuotaStop) => return Ok(true),
            };
            let Some(item) = answer.items.into_iter().find(|i| i.id == ch.channel_id) else {
                return Err(YoutubeError::Answer {
                    what: format!("channels.list {}", ch.channel_id),
                    detail: "no such channel in the answer".into(),
                });
            };
            let uploads = item.content_details.related_playlists.uploads;
            if !args.dry_run {
                store::upsert_channel(&ctx.storage, &ch.channel_id, &ch.title, Some(&uploads))
                    .await
                    .map_err(storage_err("recording a channel"))?;
            }
            (uploads, cp)
        }
    };
    let since = args.start_time.or(checkpoint);
    let mut page_token: Option<String> = None;
    let mut newest: Option<DateTime<Utc>> = None;
    loop {
        let mut params = vec![
            ("part", "contentDetails"),
            ("playlistId", uploads.as_str()),
            ("maxResults", "50"),
        ];
        if let Some(t) = &page_token {
            params.push(("pageToken", t.as_str()));
        }
        let path = query("playlistItems", &params);
        let page: PlaylistAnswer = match api
            .get(
                &path,
                COST_PLAYLIST_ITEMS_LIST,
                &format!("playlistItems.list {uploads}"),
            )
            .await?
        {
            Ok(p) => p,
            Err(QuotaStop) => return Ok(true),
        };
        counts.add("pages", 1);
        let mut reached_end = false;
        let mut ids = Vec::new();
        for item in &page.items {
            let Some(published) = item.content_details.video_published_at else {
                continue; // private or deleted
            };
            if since.is_some_and(|s| published <= s) {
                reached_end = true;
                continue;
            }
            if args.end_time.is_some_and(|e| published >= e) {
                continue;
            }
            newest = Some(newest.map_or(published, |n| n.max(published)));
            ids.push(item.content_details.video_id.clone());
        }
        let last = reached_end || page.next_page_token.is_none();
        let videos = if ids.is_empty() {
            Vec::new()
        } else {
            let joined = ids.join(",");
            let path = query(
                "videos",
                &[
                    ("part", "snippet,contentDetails,statistics"),
                    ("id", &joined),
                ],
            );
            let answer: VideosAnswer = match api
                .get(
                    &path,
                    COST_VIDEOS_LIST,
                    &format!("videos.list ({} ids)", ids.len()),
                )
                .await?
            {
                Ok(a) => a,
                Err(QuotaStop) => return Ok(true),
            };
            answer
                .items
                .into_iter()
                .map(|v| {
                    let parse_count = |c: Option<String>| c.and_then(|c| c.parse::<i64>().ok());
                    let stats = v.statistics;
                    Video {
                        video_id: v.id,
                        channel_id: v.snippet.channel_id,
                        title: v.snippet.title,
                        description: v.snippet.description,
                        published_at: v.snippet.published_at,
                        duration_seconds: v
                            .content_details
                            .and_then(|d| d.duration)
                            .as_deref()
                            .and_then(iso_duration_seconds),
                        tags: v.snippet.tags,
                        view_count: stats
                            .as_ref()
                            .and_then(|s| parse_count(s.view_count.clone())),
                        like_count: stats
                            .as_ref()
                            .and_then(|s| parse_count(s.like_count.clone())),
                        comment_count: stats
                            .as_ref()
                            .and_then(|s| parse_count(s.comment_count.clone())),
                    }
                })
                .collect()
        };
        counts.add("videos_seen", videos.len() as u64);
        if args.dry_run {
            counts.add("would_write", videos.len() as u64);
        } else if !videos.is_empty() || last {
            let w = store::store_videos(
                &ctx.storage,
                &ch.channel_id,
                &videos,
                if last { newest } else { None },
            )
            .await
            .map_err(storage_err("storing videos"))?;
            counts.add("inserted", w.inserted);
            counts.add("updated", w.updated);
            counts.add("unchanged", w.unchanged);
        }
        if last {
            return Ok(false);
        }
        page_token = page.next_page_token;
    }
}

async fn transcripts(
    ctx: &CollectContext,
    args: &YoutubeArgs,
    client: &HttpClient,
    timedtext_url: &str,
    channel_ids: &[String],
    now: DateTime<Utc>,
    counts: &mut Counts,
) -> Result<(), YoutubeError> {
    let due = store::transcripts_due(&ctx.storage, channel_ids, now)
        .await
        .map_err(|source| YoutubeError::Storage {
            what: "listing videos without a transcript",
            source,
        })?;
    for (video_id, _attempts) in due {
        let path = query(
            timedtext_url,
            &[("v", &video_id), ("lang", &args.language), ("fmt", "vtt")],
        );
        let body = match client.get(&path).await {
            Ok(r) => Some(r.body),
            Err(e) if matches!(e.status(), Some(404) | Some(410)) => None,
            Err(source) => {
                return Err(YoutubeError::Http {
                    what: format!("caption track of {video_id}"),
                    source,
                });
            }
        };
        let text = body.map(|b| String::from_utf8_lossy(&b).into_owned());
        let outcome = match text.as_deref().map(captions::parse) {
            None | Some(Err(captions::CaptionError::Empty)) => {
                counts.add("transcripts_missing", 1);
                None
            }
            Some(Err(e)) => {
                counts.add("transcripts_invalid", 1);
                tracing::warn!(collector = NAME, video = %video_id, error = %e, "caption track skipped");
                Some(Err(()))
            }
            Some(Ok(track)) => {
                for s in &track.skipped {
                    tracing::warn!(
                        collector = NAME,
                        video = %video_id,
                        position = %s.position,
                        reason = %s.reason,
                        "caption cue skipped"
                    );
                }
                counts.add("cues_skipped", track.skipped.len() as u64);
                if track.segments.is_empty() {
                    counts.add("transcripts_invalid", 1);
                    Some(Err(()))
                } else {
                    counts.add("transcripts_ok", 1);
                    counts.add("segments", track.segments.len() as u64);
                    Some(Ok(track))
                }
            }
        };
        if args.dry_run {
            continue;
        }
        let stored = match &outcome {
            None => store::store_transcript(
                &ctx.storage,
                &video_id,
                TranscriptOutcome::Missing { invalid: false },
                now,
            ),
            Some(Err(())) => store::store_transcript(
                &ctx.storage,
                &video_id,
                TranscriptOutcome::Missing { invalid: true },
                now,
            ),
            Some(Ok(track)) => store::store_transcript(
                &ctx.storage,
                &video_id,
                TranscriptOutcome::Found {
                    format: track.format,
                    segments: &track.segments,
                },
                now,
            ),
        };
        stored.await.map_err(|source| YoutubeError::Storage {
            what: "storing a transcript",
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(iso_duration_seconds("PT1H2M3S"), Some(3723));
        assert_eq!(iso_duration_seconds("PT59S"), Some(59));
        assert_eq!(iso_duration_seconds("P1DT1S"), Some(86_401));
        assert_eq!(iso_duration_seconds("P0D"), Some(0));
        assert_eq!(iso_duration_seconds("PT1X"), None);
        assert_eq!(iso_duration_seconds("1H"), None);
        assert_eq!(iso_duration_seconds("PT5"), None);
    }

    #[test]
    fn args() {
        let a = |v: &[&str]| {
            YoutubeArgs::parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert!(a(&["--start-time", "2024-01-01", "--end-time", "2023-01-01"]).is_err());
        assert!(a(&["--start-time", "yesterday"]).is_err());
        assert!(a(&["--language", "en;drop"]).is_err());
        let ok = a(&["--channel-title", "CppCon", "--skip-transcript"]).unwrap();
        assert_eq!(ok.channel_title, ["CppCon"]);
    }
}
