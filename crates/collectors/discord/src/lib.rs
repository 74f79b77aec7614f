//! Discord collectors.
//!
//! * `discord` ([`live`], alias `run_discord_activity_tracker`): the
//!   Discord REST API v10 with a bot token (`DISCORD_BOT_TOKEN`, a secret:
//!   never logged, archived or recorded), guild channels, active and
//!   archived threads, messages paged with `after`/`before` snowflakes,
//!   per-route rate-limit buckets and `429`s ([`api`]), raw archive under
//!   `WORKSPACE_DIR/raw/discord` replayed by `--from-archive`, Markdown
//!   export to `DISCORD_CONTEXT_REPO_PATH` ([`markdown`]);
//! * `discord-backfill` ([`backfill`], alias
//!   `backfill_discord_activity_tracker`): DiscordChatExporter JSON exports.
//!
//! Both write typed tables (`dc_guilds`, `dc_channels`, `dc_users`,
//! `dc_messages`, `dc_imported_files`; see [`store`]) and
//! [`ActivityRecord`](bdc_core::ActivityRecord)s with
//! `source_system = "discord"`, `kind = "message"`, `external_id` = the
//! message snowflake. Message texts for indexing: [`store::message_texts`];
//! actor profiles: [`store::profiles`].

use async_trait::async_trait;
use bdc_collector::{CollectContext, Collector};
use bdc_core::{BoxError, TrackerResult};

pub mod api;
pub mod backfill;
mod error;
pub mod export;
pub mod live;
pub mod markdown;
pub mod store;

pub use backfill::BackfillArgs;
pub use error::DiscordError;
pub use live::{DiscordCollector, LiveArgs};
pub use store::{SCHEMA, SOURCE_SYSTEM};

/// The `discord-backfill` collector.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscordBackfillCollector;

#[async_trait]
impl Collector for DiscordBackfillCollector {
    fn name(&self) -> &'static str {
        backfill::NAME
    }

    fn args_command(&self) -> Option<clap::Command> {
        Some(<backfill::BackfillArgs as clap::CommandFactory>::command())
    }

    fn validate_config(&self, ctx: &CollectContext) -> Result<(), BoxError> {
        BackfillArgs::parse_args(&ctx.args).map_err(DiscordError::into_box)?;
        Ok(())
    }

    async fn collect(&self, ctx: &CollectContext) -> Result<TrackerResult, BoxError> {
        let args = BackfillArgs::parse_args(&ctx.args).map_err(DiscordError::into_box)?;
        let totals = backfill::collect(ctx, &args)
            .await
            .map_err(DiscordError::into_box)?;
        Ok(totals.result())
    }
}
