//! `discord` (alias `run_discord_activity_tracker`): the live collector.
//!
//! ```text
//! bdc run discord [--since T] [--until T] [--channels ID,…] [--dry-run]
//!     [--skip-markdown-export] [--skip-remote-push] [--skip-index]
//!     [--from-archive [--archive-dir DIR]]
//! ```
//!
//! # Walk
//! `GET /guilds/{guild}`, `GET /guilds/{guild}/channels`,
//! `GET /guilds/{guild}/threads/active`, then per text / announcement /
//! forum channel `GET /channels/{id}/threads/archived/public` (paged with
//! `before` = the last thread's archive time while `has_more`), then per
//! text channel and thread `GET /channels/{id}/messages?limit=100`.
//!
//! # Checkpoints (scope `channel:<id>`)
//! The token is the newest stored message snowflake of the channel. A
//! default run pages forward with `after` from `max(token, newest stored
//! id)`; each page is stored with the checkpoint moved to its newest id in
//! ONE transaction, so a run that dies after some pages resumes after the
//! last stored page and ends with the same rows as an uninterrupted run.
//!
//! `--since/--until` (a date `YYYY-MM-DD`, UTC, or RFC 3339; `--until` of
//! a date includes that day) walk that window instead and leave the
//! checkpoint alone: with `--until`, pages go backward with `before` from
//! the `--until` snowflake down to `--since`; with `--since` only, forward
//! with `after` from the `--since` snowflake. Snowflake of an instant:
//! `(unix_ms - 1420070400000) << 22`.
//!
//! Bad input: an answer that is not the documented JSON fails the run with
//! the route named; a message that does not convert is counted
//! (`malformed`) and logged with channel and index; a channel the bot may
//! not read (`403`/`404`) is counted (`channels_skipped`) and logged.
//!
//! Counts: `channels`, `threads`, `messages`, `inserted`, `updated`,
//! `unchanged`, `malformed`, `channels_skipped`, `markdown_files`,
//! `requests`, `retries`, `pauses`, `replayed`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use bdc_collector::{CollectContext, Collector};
use bdc_core::{BoxError, IncrementalState, TrackerResult};
use bdc_http::{ClientOptions, Clock, HttpClient, RawArchive, SystemClock, TokenAuth};
use bdc_storage::checkpoints::CheckpointWrite;
use chrono::{DateTime, NaiveDate, Utc};
use clap::Parser;
use serde_json::Value;
use tracing::Instrument;

use crate::api::{
    self, ApiChannel, ApiGuild, DiscordApi, PAGE_LIMIT, ThreadList, channel_of, id_num, message_of,
    snowflake_of,
};
use crate::error::{DiscordError, http, storage_err};
use crate::export::{Channel, DcMessage, Guild};
use crate::markdown;
use crate::store::{self, BatchCounts};

/// Stable collector name.
pub const NAME: &str = "discord";

fn parse_time(s: &str, end: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let d = if end { d.succ_opt() } else { Some(d) };
        return d
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
            .ok_or_else(|| format!("{s:?}: date out of range"));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| {
            let t = t.with_timezone(&Utc);
            if end {
                t + chrono::Duration::milliseconds(1)
            } else {
                t
            }
        })
        .map_err(|_| format!("{s:?} is neither YYYY-MM-DD nor RFC 3339"))
}

fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time(s, false)
}

fn parse_until(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time(s, true)
}

/// `bdc run discord` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "discord",
    about = "Collect a Discord server (channels, threads, messages) from the REST API v10"
)]
pub struct LiveArgs {
    /// Messages from this time on (YYYY-MM-DD = start of that day, UTC, or RFC 3339) [default: after the newest stored message of each channel].
    #[arg(long, value_name = "TIME", visible_aliases = ["from-date", "start-time"], value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,
    /// Messages up to this time (YYYY-MM-DD includes that day) [default: now].
    #[arg(long, value_name = "TIME", visible_aliases = ["to-date", "end-time"], value_parser = parse_until)]
    pub until: Option<DateTime<Utc>>,
    /// Only these channels (comma-separated ids; a channel includes its threads) [default: DISCORD_CHANNEL_IDS, else every readable channel].
    #[arg(long, value_name = "ID,…", value_delimiter = ',')]
    pub channels: Vec<String>,
    /// Call the API and count; write nothing (no rows, archive, export).
    #[arg(long)]
    pub dry_run: bool,
    /// Do not write the Markdown export (DISCORD_CONTEXT_REPO_PATH).
    #[arg(long)]
    pub skip_markdown_export: bool,
    /// Commit the Markdown export but do not push it.
    #[arg(long)]
    pub skip_remote_push: bool,
    /// Accepted for compatibility: this build has no separate index step
    /// (indexers read `store::message_texts`).
    #[arg(long)]
    pub skip_index: bool,
    /// Re-parse the raw archive under WORKSPACE_DIR/raw/discord (no network).
    #[arg(long)]
    pub from_archive: bool,
    /// With --from-archive: replay this recorded archive instead.
    #[arg(long, value_name = "DIR", requires = "from_archive")]
    pub archive_dir: Option<PathBuf>,
}

impl LiveArgs {
    /// Parse and validate `args` (without the collector name).
    pub fn parse_args(args: &[String]) -> Result<Self, DiscordError> {
        let bad = |message: String| DiscordError::Args {
            command: NAME,
            message,
        };
        let a = Self::try_parse_from(std::iter::once(NAME.to_owned()).chain(args.iter().cloned()))
            .map_err(|e| bad(e.to_string().trim().to_owned()))?;
        if let (Some(s), Some(u)) = (a.since, a.until)
            && s >= u
        {
            return Err(bad(format!("--since {s} is not before --until {u}")));
        }
        for c in &a.channels {
            if !crate::export::is_snowflake(c) {
                return Err(bad(format!("--channels {c:?}: not a Discord channel id")));
            }
        }
        Ok(a)
    }

    fn windowed(&self) -> bool {
        self.since.is_some() || self.until.is_some()
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    pub channels: u64,
    pub threads: u64,
    pub messages: u64,
    pub malformed: u64,
    pub channels_skipped: u64,
    pub markdown_files: u64,
    pub stored: BatchCounts,
    pub requests: u64,
    pub retries: u64,
    pub pauses: u64,
    pub replayed: u64,
}

impl Totals {
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("channels", self.channels),
            ("threads", self.threads),
            ("messages", self.messages),
            ("inserted", self.stored.inserted),
            ("updated", self.stored.updated),
            ("unchanged", self.stored.unchanged),
            ("malformed", self.malformed),
            ("channels_skipped", self.channels_skipped),
            ("markdown_files", self.markdown_files),
            ("requests", self.requests),
            ("retries", self.retries),
            ("pauses", self.pauses),
            ("replayed", self.replayed),
        ]
    }
}

/// The collector.
#[derive(Debug, Clone, Default)]
pub struct DiscordCollector {
    clock: Option<Arc<dyn Clock>>,
    tune: Option<fn(&mut ClientOptions)>,
}

impl DiscordCollector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Use `clock` for every wait (tests: [`bdc_http::ManualClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Adjust the HTTP client options (tests: retries, timeouts).
    pub fn with_client_options(mut self, tune: fn(&mut ClientOptions)) -> Self {
        self.tune = Some(tune);
        self
    }

    fn missing(ctx: &CollectContext, args: &LiveArgs) -> Option<&'static str> {
        if args.from_archive {
            return None;
        }
        if ctx.config.discord.bot_token.is_none() {
            return Some("DISCORD_BOT_TOKEN");
        }
        if ctx.config.discord.guild_id.is_none() {
            return Some("DISCORD_GUILD_ID");
        }
        None
    }

    /// The configuration's ids must be snowflakes (they go into URLs).
    fn check_ids(ctx: &CollectContext) -> Result<(), DiscordError> {
        let d = &ctx.config.discord;
        if let Some(g) = &d.guild_id
            && !crate::export::is_snowflake(g)
        {
            return Err(DiscordError::Config(format!(
                "DISCORD_GUILD_ID {g:?} is not a Discord server id (a snowflake)"
            )));
        }
        if let Some(c) = d
            .channel_ids
            .iter()
            .find(|c| !crate::export::is_snowflake(c))
        {
            return Err(DiscordError::Config(format!(
                "DISCORD_CHANNEL_IDS: {c:?} is not a Discord channel id (a snowflake)"
            )));
        }
        Ok(())
    }

    async fn api(&self, ctx: &CollectContext, args: &LiveArgs) -> Result<DiscordApi, DiscordError> {
        let config = &ctx.config;
        let mut opts = ClientOptions::new(NAME, config.discord.api_url.clone());
        opts.auth = TokenAuth::Scheme("Bot");
        opts.token_rate_limit = false;
        if !args.from_archive
            && let Some(token) = config.discord.bot_token.clone()
        {
            opts.tokens = vec![token];
        }
        if let Some(tune) = self.tune {
            tune(&mut opts);
        }
        let archive = match args.archive_dir.as_ref() {
            Some(dir) if args.from_archive => RawArchive::at(dir),
            _ => RawArchive::new(&config.workspace_dir, NAME),
        };
        let client = if args.from_archive {
            HttpClient::replay(opts, archive).await
        } else if args.dry_run {
            HttpClient::new(opts)
        } else {
            HttpClient::new(opts).map(|c| c.with_archive(archive))
        }
        .map_err(http("setting up the HTTP client"))?;
        let clock: Arc<dyn Clock> = match &self.clock {
            Some(c) => Arc::clone(c),
            None => Arc::new(SystemClock),
        };
        Ok(DiscordApi::new(
            client.with_clock(Arc::clone(&clock)),
            clock,
        ))
    }
}

fn count(result: &mut TrackerResult, name: &str, n: u64) {
    if let Err(e) = result.add(name, n) {
        tracing::error!(count = name, error = %e, "invalid count name");
    }
}

#[async_trait::async_trait]
impl Collector for DiscordCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn args_command(&self) -> Option<clap::Command> {
        Some(<LiveArgs as clap::CommandFactory>::command())
    }

    fn validate_config(&self, ctx: &CollectContext) -> Result<(), BoxError> {
        let args = LiveArgs::parse_args(&ctx.args).map_err(DiscordError::into_box)?;
        Self::check_ids(ctx).map_err(DiscordError::into_box)?;
        if let Some(var) = Self::missing(ctx, &args) {
            return Err(DiscordError::Config(format!(
                "{var} is not set (see docs/collectors.md#discord); or replay the raw archive with --from-archive"
            ))
            .into_box());
        }
        Ok(())
    }

    async fn collect(&self, ctx: &CollectContext) -> Result<TrackerResult, BoxError> {
        let args = LiveArgs::parse_args(&ctx.args).map_err(DiscordError::into_box)?;
        Self::check_ids(ctx).map_err(DiscordError::into_box)?;
        if let Some(var) = Self::missing(ctx, &args) {
            return Err(DiscordError::Config(format!(
                "{var} is not set (see docs/collectors.md#discord); or replay the raw archive with --from-archive"
            ))
            .into_box());
        }
        let api = self.api(ctx, &args).await.map_err(DiscordError::into_box)?;
        let mut totals = Totals::default();
        let mut run = Run::new(ctx, &args, &api, &mut totals);
        let span = tracing::info_span!(
            "discord_run",
            collector = NAME,
            run_id = %ctx.run_id,
            from_archive = args.from_archive,
            dry_run = args.dry_run
        );
        let outcome = if args.from_archive {
            run.replay().instrument(span).await
        } else {
            run.live().instrument(span).await
        };
        let touched = std::mem::take(&mut run.touched);
        let stats = api.client().stats();
        totals.requests = stats.requests;
        totals.retries = stats.retries;
        totals.pauses = stats.pauses + api.bucket_waits();
        totals.replayed = stats.replayed;
        // What was stored stays stored: export it even after a failure.
        let exported = if args.dry_run || args.skip_markdown_export {
            Ok(0)
        } else {
            match &ctx.config.discord.context_repo_path {
                Some(repo) => {
                    markdown::export(&ctx.storage, repo, &touched, !args.skip_remote_push).await
                }
                None => {
                    tracing::info!(
                        collector = NAME,
                        "DISCORD_CONTEXT_REPO_PATH is not set; Markdown export skipped"
                    );
                    Ok(0)
                }
            }
        };
        if args.skip_index {
            tracing::debug!(
                collector = NAME,
                "--skip-index: no index step in this build"
            );
        }
        if args.dry_run {
            println!(
                "discord dry run: {} channels, {} threads, {} messages ({} malformed), {} requests; nothing written",
                totals.channels, totals.threads, totals.messages, totals.malformed, totals.requests
            );
        }
        tracing::info!(
            collector = NAME,
            channels = totals.channels,
            threads = totals.threads,
            messages = totals.messages,
            inserted = totals.stored.inserted,
            updated = totals.stored.updated,
            malformed = totals.malformed,
            requests = totals.requests,
            pauses = totals.pauses,
            ok = outcome.is_ok(),
            "discord run finished"
        );
        outcome.map_err(DiscordError::into_box)?;
        totals.markdown_files = exported.map_err(DiscordError::into_box)?;
        let mut r = TrackerResult::ok();
        for (k, v) in totals.counts() {
            count(&mut r, k, v);
        }
        Ok(r)
    }
}

/// A channel (or thread) whose messages are read.
#[derive(Debug, Clone)]
struct Target {
    channel: Channel,
}

/// One run against the API (live) or its archive (replay).
pub struct Run<'a> {
    ctx: &'a CollectContext,
    args: &'a LiveArgs,
    api: &'a DiscordApi,
    totals: &'a mut Totals,
    wanted: Vec<String>,
    /// (channel id, month) of every stored message: the Markdown files to
    /// rewrite.
    pub touched: BTreeSet<(String, String)>,
}

impl<'a> Run<'a> {
    pub fn new(
        ctx: &'a CollectContext,
        args: &'a LiveArgs,
        api: &'a DiscordApi,
        totals: &'a mut Totals,
    ) -> Self {
        let wanted = if args.channels.is_empty() {
            ctx.config.discord.channel_ids.clone()
        } else {
            args.channels.clone()
        };
        Run {
            ctx,
            args,
            api,
            totals,
            wanted,
            touched: BTreeSet::new(),
        }
    }

    /// Whether `c` (or, for a thread, its parent) is asked for.
    fn wants(&self, c: &ApiChannel) -> bool {
        self.wanted.is_empty()
            || self.wanted.contains(&c.id)
            || (c.is_thread()
                && c.parent_id
                    .as_ref()
                    .is_some_and(|p| self.wanted.contains(p)))
    }

    fn guild_id(&self) -> String {
        self.ctx.config.discord.guild_id.clone().unwrap_or_default()
    }

    /// Convert a page of message values, counting (and logging) the odd ones.
    fn convert(&mut self, channel_id: &str, values: Vec<Value>, origin: &str) -> Vec<DcMessage> {
        let mut out = Vec::with_capacity(values.len());
        for (i, v) in values.into_iter().enumerate() {
            match message_of(channel_id, v) {
                Ok(m) => out.push(m),
                Err(reason) => {
                    self.totals.malformed += 1;
                    metrics::counter!("bdc_discord_malformed_total", "source" => "api")
                        .increment(1);
                    tracing::warn!(collector = NAME, origin, channel = channel_id, index = i, reason = %reason, "malformed discord message skipped");
                }
            }
        }
        out
    }

    fn convert_channels(&mut self, values: Vec<Value>, origin: &str) -> Vec<ApiChannel> {
        let mut out = Vec::with_capacity(values.len());
        for (i, v) in values.into_iter().enumerate() {
            match serde_json::from_value::<ApiChannel>(v) {
                Ok(c) => out.push(c),
                Err(e) => {
                    self.totals.malformed += 1;
                    tracing::warn!(collector = NAME, origin, index = i, error = %e, "malformed discord channel skipped");
                }
            }
        }
        out
    }

    async fn store(
        &mut self,
        guild: &Guild,
        channel: &Channel,
        messages: &[DcMessage],
        checkpoint: Option<&IncrementalState>,
    ) -> Result<(), DiscordError> {
        self.totals.messages += messages.len() as u64;
        metrics::counter!("bdc_discord_messages_total", "source" => "api")
            .increment(messages.len() as u64);
        if self.args.dry_run || (messages.is_empty() && checkpoint.is_none()) {
            return Ok(());
        }
        let scope = format!("channel:{}", channel.id);
        let cp = checkpoint.map(|state| CheckpointWrite {
            collector: NAME,
            scope: &scope,
            state,
            run_id: Some(self.ctx.run_id.as_str()),
        });
        let n = store::store_page(
            &self.ctx.storage,
            guild,
            channel,
            messages,
            "api",
            &self.ctx.run_id,
            None,
            cp.as_ref(),
        )
        .await
        .map_err(storage_err("storing discord messages"))?;
        self.totals.stored.add(n);
        for m in messages {
            self.touched.insert((m.channel_id.clone(), m.month()));
        }
        Ok(())
    }

    /// Whether an HTTP error means "the bot may not read this".
    fn skippable(e: &DiscordError) -> bool {
        matches!(e, DiscordError::Http { source, .. } if matches!(source.status(), Some(403 | 404)))
    }

    /// The live walk.
    pub async fn live(&mut self) -> Result<(), DiscordError> {
        let g = self.guild_id();
        let (guild, _) = self
            .api
            .get::<ApiGuild>("GET /guilds/{guild.id}", &g, &format!("/guilds/{g}"))
            .await?;
        let guild = guild.into_guild();
        let (values, resp) = self
            .api
            .get::<Vec<Value>>(
                "GET /guilds/{guild.id}/channels",
                &g,
                &format!("/guilds/{g}/channels"),
            )
            .await?;
        let channels = self.convert_channels(values, &resp.url);
        let mut all: HashMap<String, ApiChannel> =
            channels.iter().map(|c| (c.id.clone(), c.clone())).collect();
        let (list, resp) = self
            .api
            .get::<ThreadList>(
                "GET /guilds/{guild.id}/threads/active",
                &g,
                &format!("/guilds/{g}/threads/active"),
            )
            .await?;
        let mut threads = self.convert_channels(list.threads, &resp.url);
        let mut parents: Vec<&ApiChannel> = channels
            .iter()
            .filter(|c| c.has_threads() && self.wants(c))
            .collect();
        parents.sort_by_key(|c| id_num(&c.id));
        for parent in parents {
            threads.extend(self.archived_threads(&parent.id).await?);
        }
        let mut seen = BTreeSet::new();
        threads.retain(|t| seen.insert(t.id.clone()));
        for t in &threads {
            all.insert(t.id.clone(), t.clone());
        }
        let mut targets: Vec<(u64, Target)> = Vec::new();
        for c in channels.iter().chain(threads.iter()) {
            if !c.has_messages() || !self.wants(c) {
                continue;
            }
            if c.is_thread() {
                self.totals.threads += 1;
            } else {
                self.totals.channels += 1;
            }
            targets.push((
                id_num(&c.id).unwrap_or(u64::MAX),
                Target {
                    channel: channel_of(c, &all),
                },
            ));
        }
        targets.sort_by_key(|(n, _)| *n);
        for (_, t) in &targets {
            let span = tracing::info_span!(
                "discord_channel",
                collector = NAME,
                channel = %t.channel.id,
                name = %t.channel.name
            );
            self.history(&guild, t).instrument(span).await?;
        }
        Ok(())
    }

    async fn archived_threads(&mut self, channel: &str) -> Result<Vec<ApiChannel>, DiscordError> {
        let mut out = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let mut path = format!("/channels/{channel}/threads/archived/public?limit=100");
            if let Some(b) = &before {
                let mut q = url::form_urlencoded::Serializer::new(String::new());
                q.append_pair("before", b);
                path.push('&');
                path.push_str(&q.finish());
            }
            let (list, resp) = match self
                .api
                .get::<ThreadList>(
                    "GET /channels/{channel.id}/threads/archived/public",
                    channel,
                    &path,
                )
                .await
            {
                Ok(x) => x,
                Err(e) if Self::skippable(&e) => {
                    tracing::warn!(collector = NAME, channel, error = %e, "archived threads not readable; skipped");
                    return Ok(out);
                }
                Err(e) => return Err(e),
            };
            let page = self.convert_channels(list.threads, &resp.url);
            let next = page
                .iter()
                .filter_map(|t| t.thread_metadata.as_ref()?.archive_timestamp.clone())
                .min();
            let empty = page.is_empty();
            out.extend(page);
            match next {
                Some(n) if list.has_more && !empty && before.as_ref() != Some(&n) => {
                    before = Some(n)
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// Where a default (checkpointed) walk starts: after max(token, newest
    /// stored id).
    async fn start_after(&self, channel: &str) -> Result<Option<u64>, DiscordError> {
        let cp = self
            .ctx
            .storage
            .checkpoints()
            .get(NAME, &format!("channel:{channel}"))
            .await
            .map_err(storage_err("reading a discord checkpoint"))?;
        let token = cp.as_ref().and_then(|c| id_num(c.checkpoint_token()));
        let stored = store::newest_id(&self.ctx.storage, channel)
            .await
            .map_err(storage_err("reading the newest discord message"))?
            .and_then(|s| id_num(&s));
        Ok(token.max(stored))
    }

    /// One page of messages (ascending ids) and whether it was the last;
    /// `None` when the bot may not read the channel.
    async fn page(
        &mut self,
        channel: &str,
        query: String,
    ) -> Result<Option<(Vec<DcMessage>, bool)>, DiscordError> {
        let path = format!("/channels/{channel}/messages?limit={PAGE_LIMIT}&{query}");
        match self
            .api
            .get::<Vec<Value>>("GET /channels/{channel.id}/messages", channel, &path)
            .await
        {
            Ok((values, resp)) => {
                // A short page is the last; the count is of the raw answer.
                let last = values.len() < PAGE_LIMIT;
                let mut msgs = self.convert(channel, values, &resp.url);
                msgs.sort_by_key(|m| id_num(&m.id));
                Ok(Some((msgs, last)))
            }
            Err(e) if Self::skippable(&e) => {
                self.totals.channels_skipped += 1;
                tracing::warn!(collector = NAME, channel, error = %e, "channel not readable (View Channel + Read Message History needed); skipped");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn history(&mut self, guild: &Guild, t: &Target) -> Result<(), DiscordError> {
        let id = t.channel.id.clone();
        let since = self.args.since.map(snowflake_of);
        if let Some(until) = self.args.until {
            // Backward from --until down to --since (window; no checkpoint).
            let mut before = snowflake_of(until);
            loop {
                let Some((mut msgs, last)) = self.page(&id, format!("before={before}")).await?
                else {
                    return Ok(());
                };
                let oldest = msgs.first().and_then(|m| id_num(&m.id));
                if let Some(s) = since {
                    msgs.retain(|m| id_num(&m.id).is_some_and(|n| n >= s));
                }
                self.store(guild, &t.channel, &msgs, None).await?;
                match oldest {
                    Some(o) if !last && since.is_none_or(|s| o > s) && o < before => before = o,
                    _ => return Ok(()),
                }
            }
        }
        let windowed = self.args.windowed();
        let mut after = match since {
            Some(s) => s.saturating_sub(1),
            None => self.start_after(&id).await?.unwrap_or(0),
        };
        loop {
            let Some((msgs, last)) = self.page(&id, format!("after={after}")).await? else {
                return Ok(());
            };
            let newest = msgs.last().and_then(|m| id_num(&m.id));
            let state = match newest {
                Some(n) if !windowed => Some(
                    IncrementalState::new(n.to_string(), format!("messages up to id {n}"))
                        .map_err(|e| DiscordError::Config(e.to_string()))?,
                ),
                _ => None,
            };
            self.store(guild, &t.channel, &msgs, state.as_ref()).await?;
            match newest {
                Some(n) if !last && n > after => after = n,
                _ => return Ok(()),
            }
        }
    }

    /// Re-parse the archive: guild, channels and threads first, then
    /// messages, in fetch order. Checkpoints are left alone.
    pub async fn replay(&mut self) -> Result<(), DiscordError> {
        let Some(index) = self.api.client().archive_index() else {
            return Ok(());
        };
        let mut entries: Vec<(String, Vec<String>)> = Vec::new();
        for e in index.entries() {
            let Ok(u) = url::Url::parse(&e.url) else {
                continue;
            };
            let segs: Vec<String> = u
                .path_segments()
                .map(|s| s.map(str::to_owned).collect())
                .unwrap_or_default();
            entries.push((e.url.clone(), segs));
        }
        let tail = |segs: &[String], n: usize| -> Vec<String> {
            segs[segs.len().saturating_sub(n)..].to_vec()
        };
        let mut guild: Option<Guild> = None;
        let mut all: HashMap<String, ApiChannel> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        for (url, segs) in &entries {
            let t2 = tail(segs, 2);
            let t3 = tail(segs, 3);
            let t4 = tail(segs, 4);
            let t5 = tail(segs, 5);
            let is = |v: &[String], pat: &[&str]| {
                v.len() == pat.len() && v.iter().zip(pat).all(|(a, b)| *b == "*" || a == b)
            };
            if is(&t2, &["guilds", "*"]) {
                let resp = self.get(url).await?;
                let g: ApiGuild = api::decode("GET /guilds/{guild.id}", &resp)?;
                guild = Some(g.into_guild());
            } else if is(&t3, &["guilds", "*", "channels"]) {
                let resp = self.get(url).await?;
                let v: Vec<Value> = api::decode("GET /guilds/{guild.id}/channels", &resp)?;
                for c in self.convert_channels(v, url) {
                    order.push(c.id.clone());
                    all.insert(c.id.clone(), c);
                }
            } else if is(&t4, &["guilds", "*", "threads", "active"])
                || is(&t5, &["channels", "*", "threads", "archived", "public"])
            {
                let resp = self.get(url).await?;
                let l: ThreadList = api::decode("GET …/threads", &resp)?;
                for c in self.convert_channels(l.threads, url) {
                    order.push(c.id.clone());
                    all.insert(c.id.clone(), c);
                }
            }
        }
        let guild = guild.unwrap_or_else(|| {
            let id = self
                .ctx
                .config
                .discord
                .guild_id
                .clone()
                .unwrap_or_else(|| "0".into());
            Guild {
                name: id.clone(),
                id,
                icon_url: None,
            }
        });
        let mut counted = BTreeSet::new();
        for id in &order {
            if let Some(c) = all.get(id)
                && c.has_messages()
                && self.wants(c)
                && counted.insert(id.clone())
            {
                if c.is_thread() {
                    self.totals.threads += 1;
                } else {
                    self.totals.channels += 1;
                }
            }
        }
        let mut by_channel: BTreeMap<String, Channel> = BTreeMap::new();
        for (url, segs) in &entries {
            let t3 = tail(segs, 3);
            if !(t3.len() == 3 && t3[0] == "channels" && t3[2] == "messages") {
                continue;
            }
            let channel_id = t3[1].clone();
            let api_channel = all.get(&channel_id).cloned().unwrap_or(ApiChannel {
                id: channel_id.clone(),
                kind: api::GUILD_TEXT,
                name: None,
                parent_id: None,
                topic: None,
                thread_metadata: None,
            });
            if !self.wants(&api_channel) {
                continue;
            }
            let channel = by_channel
                .entry(channel_id.clone())
                .or_insert_with(|| channel_of(&api_channel, &all))
                .clone();
            let resp = self.get(url).await?;
            let values: Vec<Value> = api::decode("GET /channels/{channel.id}/messages", &resp)?;
            let mut msgs = self.convert(&channel_id, values, url);
            if let Some(s) = self.args.since.map(snowflake_of) {
                msgs.retain(|m| id_num(&m.id).is_some_and(|n| n >= s));
            }
            if let Some(u) = self.args.until.map(snowflake_of) {
                msgs.retain(|m| id_num(&m.id).is_some_and(|n| n < u));
            }
            self.store(&guild, &channel, &msgs, None).await?;
        }
        Ok(())
    }

    async fn get(&self, url: &str) -> Result<bdc_http::Response, DiscordError> {
        self.api
            .client()
            .get(url)
            .await
            .map_err(http(format!("replaying {url}")))
    }
}
