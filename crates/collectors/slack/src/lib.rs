//! The `slack` collector (alias `run_cppa_slack_tracker`).
//!
//! ```text
//! bdc run slack [--team-id T…] [--channel-id C… …] [--start-date YYYY-MM-DD] [--end-date YYYY-MM-DD]
//!     [--sync-users] [--sync-channels] [--sync-channel-users] [--sync-messages]   # none given: all
//!     [--messages-json EXPORT.zip|DIR] [--from-archive [--archive-dir DIR]] [--dry-run]
//! ```
//!
//! Two sources, one store ([`store`], schema part `slack`, tables `sl_*`):
//!
//! * the **Slack Web API** ([`api`], [`sync`]) with a bot token
//!   (`SLACK_BOT_TOKEN`, a secret: never logged, archived or recorded):
//!   `users.list`, `conversations.list` (public and private channels),
//!   `conversations.members`, `conversations.history` and, for threads,
//!   `conversations.replies`; cursor pagination, per-tier pacing, `429` +
//!   `Retry-After`, raw archive under `WORKSPACE_DIR/raw/slack` replayed by
//!   `--from-archive`; incremental per channel (checkpoint scope
//!   `channel:<id>`, moved with each page);
//! * a **standard workspace export** ([`export`], `--messages-json`):
//!   the zip or its folder (`users.json`, `channels.json`, one folder per
//!   channel with `YYYY-MM-DD.json` day files).
//!
//! Activity records: `source_system = slack`, `kind = message`,
//! `external_id = CHANNEL:TS`. Identity profiles: source `slack`.
//!
//! Counts: `users`, `users_inserted`, `users_updated`, `channels`,
//! `channels_inserted`, `channels_updated`, `members`, `members_added`,
//! `members_removed`, `messages`, `threads`, `inserted`, `updated`,
//! `unchanged` (message rows), `deleted`, `reactions`, `files`,
//! `malformed`, `channels_skipped`, `day_files`, `missing_files`,
//! `skipped_files`, `unplaced_files`, `requests`, `retries`, `pauses`,
//! `replayed`.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bdc_collector::{CollectContext, Collector};
use bdc_core::{BoxError, TrackerResult};
use bdc_http::{ClientOptions, Clock, HttpClient, RawArchive, SystemClock};
use chrono::{DateTime, NaiveDate, Utc};
use clap::Parser;

pub mod api;
mod error;
pub mod export;
pub mod model;
pub mod store;
pub mod sync;

pub use error::SlackError;
pub use store::{SCHEMA, SOURCE_SYSTEM};

/// Stable collector name.
pub const NAME: &str = "slack";

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("{s:?} is not YYYY-MM-DD"))
}

/// `bdc run slack` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "slack",
    about = "Collect a Slack workspace (users, channels, members, messages, threads) from the Web API or a workspace export"
)]
pub struct SlackArgs {
    /// Workspace id (T…) [default: SLACK_TEAM_ID].
    #[arg(long, value_name = "ID")]
    pub team_id: Option<String>,
    /// Only these channels (repeatable or comma-separated ids) [default: every channel the token sees].
    #[arg(long = "channel-id", value_name = "ID", value_delimiter = ',')]
    pub channel_ids: Vec<String>,
    /// Messages from this day on (UTC) [default: after the newest stored message of each channel].
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub start_date: Option<NaiveDate>,
    /// Messages up to and including this day (UTC) [default: now].
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub end_date: Option<NaiveDate>,
    /// Sync users (users.list). None of the --sync-* flags given: all.
    #[arg(long)]
    pub sync_users: bool,
    /// Sync channels (conversations.list, public and private).
    #[arg(long)]
    pub sync_channels: bool,
    /// Sync channel memberships (conversations.members).
    #[arg(long)]
    pub sync_channel_users: bool,
    /// Sync messages and threads (conversations.history, conversations.replies).
    #[arg(long)]
    pub sync_messages: bool,
    /// Import a standard Slack workspace export (the zip or its folder) instead of calling the API.
    #[arg(long, value_name = "PATH")]
    pub messages_json: Option<PathBuf>,
    /// Re-parse the raw archive under WORKSPACE_DIR/raw/slack (no network).
    #[arg(long, conflicts_with = "messages_json")]
    pub from_archive: bool,
    /// With --from-archive: replay this recorded archive instead.
    #[arg(long, value_name = "DIR", requires = "from_archive")]
    pub archive_dir: Option<PathBuf>,
    /// Read and count everything; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// What to sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub users: bool,
    pub channels: bool,
    pub members: bool,
    pub messages: bool,
}

impl SlackArgs {
    /// Parse and validate `args` (without the collector name).
    pub fn parse_args(args: &[String]) -> Result<Self, SlackError> {
        let bad = |message: String| SlackError::Args { message };
        let a = Self::try_parse_from(std::iter::once(NAME.to_owned()).chain(args.iter().cloned()))
            .map_err(|e| bad(e.to_string().trim().to_owned()))?;
        if let (Some(s), Some(e)) = (a.start_date, a.end_date)
            && s > e
        {
            return Err(bad(format!("--start-date {s} is after --end-date {e}")));
        }
        let id_ok = |s: &str| {
            !s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_alphanumeric())
        };
        for c in &a.channel_ids {
            if !id_ok(c) {
                return Err(bad(format!("--channel-id {c:?}: not a Slack channel id")));
            }
        }
        if let Some(t) = &a.team_id
            && !id_ok(t)
        {
            return Err(bad(format!("--team-id {t:?}: not a Slack team id")));
        }
        Ok(a)
    }

    pub fn parts(&self) -> Parts {
        let none = !(self.sync_users
            || self.sync_channels
            || self.sync_channel_users
            || self.sync_messages);
        Parts {
            users: none || self.sync_users,
            channels: none || self.sync_channels,
            members: none || self.sync_channel_users,
            messages: none || self.sync_messages,
        }
    }

    /// `oldest` bound (start of --start-date, UTC).
    pub fn oldest(&self) -> Option<DateTime<Utc>> {
        self.start_date
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc())
    }

    /// `latest` bound (end of --end-date, UTC).
    pub fn latest(&self) -> Option<DateTime<Utc>> {
        self.end_date
            .and_then(|d| d.succ_opt())
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc())
    }

    pub fn wants_channel(&self, id: &str) -> bool {
        self.channel_ids.is_empty() || self.channel_ids.iter().any(|c| c == id)
    }
}

/// The collector.
#[derive(Debug, Clone, Default)]
pub struct SlackCollector {
    clock: Option<Arc<dyn Clock>>,
    tune: Option<fn(&mut ClientOptions)>,
}

impl SlackCollector {
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

    async fn api(
        &self,
        ctx: &CollectContext,
        args: &SlackArgs,
    ) -> Result<api::SlackApi, SlackError> {
        let config = &ctx.config;
        let mut opts = ClientOptions::new(NAME, config.slack_api_url.clone());
        if !args.from_archive {
            let Some(token) = config.slack_bot_token.clone() else {
                return Err(SlackError::Config(
                    "SLACK_BOT_TOKEN is not set (a bot token with the scopes in docs/collectors.md#slack); \
                     or import an export with --messages-json PATH"
                        .into(),
                ));
            };
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
        .map_err(error::http("setting up the HTTP client"))?;
        let clock: Arc<dyn Clock> = match &self.clock {
            Some(c) => Arc::clone(c),
            None => Arc::new(SystemClock),
        };
        Ok(api::SlackApi::new(
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

#[async_trait]
impl Collector for SlackCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn args_command(&self) -> Option<clap::Command> {
        Some(<SlackArgs as clap::CommandFactory>::command())
    }

    fn validate_config(&self, ctx: &CollectContext) -> Result<(), BoxError> {
        let args = SlackArgs::parse_args(&ctx.args).map_err(SlackError::into_box)?;
        if args.messages_json.is_none()
            && !args.from_archive
            && ctx.config.slack_bot_token.is_none()
        {
            return Err(SlackError::Config(
                "SLACK_BOT_TOKEN is not set (a bot token with the scopes in docs/collectors.md#slack); \
                 or import an export with --messages-json PATH"
                    .into(),
            )
            .into_box());
        }
        Ok(())
    }

    async fn collect(&self, ctx: &CollectContext) -> Result<TrackerResult, BoxError> {
        let args = SlackArgs::parse_args(&ctx.args).map_err(SlackError::into_box)?;
        let team_id = args
            .team_id
            .clone()
            .or_else(|| ctx.config.slack_team_id.clone());
        let mut totals = sync::Totals::default();
        let outcome = if let Some(path) = &args.messages_json {
            export::import(ctx, &args, team_id.as_deref(), path, &mut totals).await
        } else {
            let api = self.api(ctx, &args).await.map_err(SlackError::into_box)?;
            let mut run = sync::Run::new(ctx, &args, team_id.as_deref(), &api, &mut totals);
            let r = if args.from_archive {
                run.replay().await
            } else {
                run.live().await
            };
            let stats = api.client().stats();
            totals.requests = stats.requests;
            totals.retries = stats.retries;
            totals.pauses = stats.pauses;
            totals.replayed = stats.replayed;
            r
        };
        tracing::info!(
            collector = NAME,
            users = totals.users,
            channels = totals.channels,
            messages = totals.messages,
            inserted = totals.stored.rows.inserted,
            updated = totals.stored.rows.updated,
            deleted = totals.stored.deleted,
            requests = totals.requests,
            ok = outcome.is_ok(),
            "slack run finished"
        );
        outcome.map_err(SlackError::into_box)?;
        let mut r = TrackerResult::ok();
        for (k, v) in totals.counts(args.messages_json.is_some()) {
            count(&mut r, k, v);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<SlackArgs, SlackError> {
        SlackArgs::parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn args() {
        let a = p(&[]).unwrap();
        assert_eq!(
            a.parts(),
            Parts {
                users: true,
                channels: true,
                members: true,
                messages: true
            }
        );
        let a = p(&[
            "--sync-messages",
            "--channel-id",
            "C1,C2",
            "--channel-id",
            "C3",
            "--start-date",
            "2024-01-01",
            "--end-date",
            "2024-01-31",
        ])
        .unwrap();
        assert!(a.parts().messages && !a.parts().users);
        assert_eq!(a.channel_ids, ["C1", "C2", "C3"]);
        assert_eq!(a.oldest().unwrap().timestamp(), 1_704_067_200);
        assert_eq!(
            a.latest().unwrap().to_rfc3339(),
            "2024-02-01T00:00:00+00:00"
        );
        for bad in [
            &["--start-date", "2024-02-01", "--end-date", "2024-01-01"][..],
            &["--start-date", "yesterday"],
            &["--channel-id", "C 1"],
            &["--archive-dir", "x"],
            &["--from-archive", "--messages-json", "x"],
            &["--bogus"],
        ] {
            let e = p(bad).unwrap_err();
            assert_eq!(e.category(), bdc_core::FailureCategory::Config, "{bad:?}");
        }
    }
}
