//! One API run: the live walk and the replay of the raw archive.
//!
//! # Order
//! `users.list` (each page with its profiles in one transaction), then
//! `conversations.list` (public and private channels), then per channel
//! `conversations.members` (the whole list, replaced in one transaction)
//! and `conversations.history` with `conversations.replies` for every
//! thread parent of a page.
//!
//! # Checkpoints (scope `channel:<id>`)
//! The token is the newest message `ts` of the channel whose walk
//! completed (`0` before the first). A default run asks for messages after
//! `max(token, newest stored ts)`; history comes newest first, so while a
//! walk is under way each page's transaction also stores `walk_oldest`,
//! `walk_latest` (the oldest `ts` written so far) and `walk_newest` in the
//! checkpoint's extras. A run that stops after some pages resumes the walk
//! below `walk_latest` down to `walk_oldest`; the last page moves the token
//! to `walk_newest` and drops the extras. A re-run therefore ends with the
//! same rows as one uninterrupted run.
//!
//! `--start-date/--end-date` walk that window (inclusive) instead and leave
//! the checkpoint alone (a re-sync: edits and deletions in the window are
//! applied). Edits of older messages outside the window are not seen.

use std::collections::{BTreeMap, HashMap};

use bdc_collector::CollectContext;
use bdc_core::IncrementalState;
use bdc_storage::checkpoints::CheckpointWrite;
use serde_json::{Map, Value, json};

use crate::api::{PAGE_LIMIT, SlackApi};
use crate::error::{SlackError, storage};
use crate::model::{
    Channel, ConversationsList, MembersList, MessagesList, SlMessage, User, UsersList, ts_cmp,
};
use crate::store::{self, MessageCounts, Names};
use crate::{NAME, SlackArgs};

/// What a run did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    pub users: u64,
    pub users_inserted: u64,
    pub users_updated: u64,
    pub channels: u64,
    pub channels_inserted: u64,
    pub channels_updated: u64,
    pub members: u64,
    pub members_added: u64,
    pub members_removed: u64,
    pub messages: u64,
    pub threads: u64,
    pub malformed: u64,
    pub channels_skipped: u64,
    pub day_files: u64,
    pub missing_files: u64,
    pub skipped_files: u64,
    pub unplaced_files: u64,
    pub stored: MessageCounts,
    pub requests: u64,
    pub retries: u64,
    pub pauses: u64,
    pub replayed: u64,
}

impl Totals {
    /// The run's counts (see the crate docs): an export import leaves out
    /// the HTTP counts, an API run the export file counts.
    pub fn counts(&self, export: bool) -> Vec<(&'static str, u64)> {
        const EXPORT_ONLY: &[&str] = &[
            "day_files",
            "missing_files",
            "skipped_files",
            "unplaced_files",
        ];
        const API_ONLY: &[&str] = &[
            "threads",
            "members_added",
            "members_removed",
            "channels_skipped",
            "requests",
            "retries",
            "pauses",
            "replayed",
        ];
        let all = vec![
            ("users", self.users),
            ("users_inserted", self.users_inserted),
            ("users_updated", self.users_updated),
            ("channels", self.channels),
            ("channels_inserted", self.channels_inserted),
            ("channels_updated", self.channels_updated),
            ("members", self.members),
            ("members_added", self.members_added),
            ("members_removed", self.members_removed),
            ("messages", self.messages),
            ("threads", self.threads),
            ("inserted", self.stored.rows.inserted),
            ("updated", self.stored.rows.updated),
            ("unchanged", self.stored.rows.unchanged),
            ("deleted", self.stored.deleted),
            ("reactions", self.stored.reactions),
            ("files", self.stored.files),
            ("malformed", self.malformed),
            ("channels_skipped", self.channels_skipped),
            ("day_files", self.day_files),
            ("missing_files", self.missing_files),
            ("skipped_files", self.skipped_files),
            ("unplaced_files", self.unplaced_files),
            ("requests", self.requests),
            ("retries", self.retries),
            ("pauses", self.pauses),
            ("replayed", self.replayed),
        ];
        let skip = if export { API_ONLY } else { EXPORT_ONLY };
        all.into_iter().filter(|(k, _)| !skip.contains(k)).collect()
    }
}

/// Convert a page of message values, counting (and logging) the odd ones.
pub fn convert(
    channel_id: &str,
    values: Vec<Value>,
    malformed: &mut u64,
    origin: &str,
) -> Vec<SlMessage> {
    let mut out = Vec::with_capacity(values.len());
    for (i, v) in values.into_iter().enumerate() {
        match SlMessage::from_value(channel_id, v) {
            Ok(m) => out.push(m),
            Err(reason) => {
                *malformed += 1;
                tracing::warn!(collector = NAME, origin, channel = channel_id, index = i, reason = %reason, "malformed slack message skipped");
            }
        }
    }
    out
}

/// Convert user / channel values, counting the odd ones.
pub fn convert_items<T: serde::de::DeserializeOwned>(
    values: Vec<Value>,
    malformed: &mut u64,
    what: &str,
    origin: &str,
) -> Vec<T> {
    let mut out = Vec::with_capacity(values.len());
    for (i, v) in values.into_iter().enumerate() {
        match serde_json::from_value::<T>(v) {
            Ok(x) => out.push(x),
            Err(e) => {
                *malformed += 1;
                tracing::warn!(collector = NAME, origin, index = i, error = %e, "malformed slack {what} skipped");
            }
        }
    }
    out
}

fn ts_of(t: chrono::DateTime<chrono::Utc>) -> String {
    format!("{}.{:06}", t.timestamp(), t.timestamp_subsec_micros())
}

fn later(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => match ts_cmp(&a, &b) {
            Some(std::cmp::Ordering::Less) => Some(b),
            _ => Some(a),
        },
        (a, b) => a.or(b),
    }
}

/// The state of one channel's history walk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Walk {
    watermark: Option<String>,
    oldest: Option<String>,
    latest: Option<String>,
    newest: Option<String>,
}

impl Walk {
    fn in_progress(&self) -> Result<IncrementalState, SlackError> {
        let mut extras = Map::new();
        extras.insert("walk_oldest".into(), json!(self.oldest));
        extras.insert("walk_latest".into(), json!(self.latest));
        extras.insert("walk_newest".into(), json!(self.newest));
        let token = self.watermark.clone().unwrap_or_else(|| "0".into());
        Ok(IncrementalState::new(
            token,
            format!(
                "walk under way: below {} down to {}",
                self.latest.as_deref().unwrap_or("now"),
                self.oldest.as_deref().unwrap_or("the beginning")
            ),
        )
        .map_err(|e| SlackError::Config(e.to_string()))?
        .with_extras(extras))
    }

    fn done(&self) -> Result<Option<IncrementalState>, SlackError> {
        let Some(top) = later(self.watermark.clone(), self.newest.clone()) else {
            return Ok(None);
        };
        Ok(Some(
            IncrementalState::new(top.clone(), format!("messages up to ts {top}"))
                .map_err(|e| SlackError::Config(e.to_string()))?,
        ))
    }
}

/// One run against the API (live) or its archive (replay).
pub struct Run<'a> {
    ctx: &'a CollectContext,
    args: &'a SlackArgs,
    team_id: Option<&'a str>,
    api: &'a SlackApi,
    pub totals: &'a mut Totals,
    names: Names,
}

impl<'a> Run<'a> {
    pub fn new(
        ctx: &'a CollectContext,
        args: &'a SlackArgs,
        team_id: Option<&'a str>,
        api: &'a SlackApi,
        totals: &'a mut Totals,
    ) -> Self {
        Run {
            ctx,
            args,
            team_id,
            api,
            totals,
            names: Names::default(),
        }
    }

    fn team_param(&self) -> Vec<(&'static str, String)> {
        self.team_id
            .map(|t| vec![("team_id", t.to_owned())])
            .unwrap_or_default()
    }

    async fn store_users(&mut self, users: &[User]) -> Result<(), SlackError> {
        self.totals.users += users.len() as u64;
        if self.args.dry_run || users.is_empty() {
            return Ok(());
        }
        let c = store::write_users(&self.ctx.storage, self.team_id, users)
            .await
            .map_err(storage("storing slack users"))?;
        self.totals.users_inserted += c.inserted;
        self.totals.users_updated += c.updated;
        Ok(())
    }

    async fn store_channels(&mut self, channels: &[Channel]) -> Result<(), SlackError> {
        self.totals.channels += channels.len() as u64;
        if self.args.dry_run || channels.is_empty() {
            return Ok(());
        }
        let c = store::write_channels(&self.ctx.storage, self.team_id, channels)
            .await
            .map_err(storage("storing slack channels"))?;
        self.totals.channels_inserted += c.inserted;
        self.totals.channels_updated += c.updated;
        Ok(())
    }

    async fn store_members(&mut self, channel: &str, members: &[String]) -> Result<(), SlackError> {
        self.totals.members += members.len() as u64;
        if self.args.dry_run {
            return Ok(());
        }
        let (added, removed) = store::replace_members(&self.ctx.storage, channel, members)
            .await
            .map_err(storage("storing slack channel members"))?;
        self.totals.members_added += added;
        self.totals.members_removed += removed;
        Ok(())
    }

    async fn store_messages(
        &mut self,
        messages: &[SlMessage],
        checkpoint: Option<(&str, &IncrementalState)>,
    ) -> Result<(), SlackError> {
        self.totals.messages += messages.len() as u64;
        metrics::counter!("bdc_slack_messages_total", "source" => "api")
            .increment(messages.len() as u64);
        if self.args.dry_run || (messages.is_empty() && checkpoint.is_none()) {
            return Ok(());
        }
        let cp = checkpoint.map(|(scope, state)| CheckpointWrite {
            collector: NAME,
            scope,
            state,
            run_id: Some(self.ctx.run_id.as_str()),
        });
        let c = store::write_messages(
            &self.ctx.storage,
            messages,
            &self.names,
            "api",
            &self.ctx.run_id,
            cp.as_ref(),
        )
        .await
        .map_err(storage("storing slack messages"))?;
        self.totals.stored.add(c);
        Ok(())
    }

    async fn refresh_names(&mut self) -> Result<(), SlackError> {
        self.names = store::names(&self.ctx.storage)
            .await
            .map_err(storage("reading slack names"))?;
        Ok(())
    }

    /// The live walk.
    pub async fn live(&mut self) -> Result<(), SlackError> {
        let parts = self.args.parts();
        if parts.users {
            self.users().await?;
        }
        let mut channels: Vec<(String, String)> = Vec::new();
        if parts.channels || ((parts.members || parts.messages) && self.args.channel_ids.is_empty())
        {
            let stored = if parts.channels {
                Vec::new()
            } else {
                store::stored_channels(&self.ctx.storage)
                    .await
                    .map_err(storage("reading slack channels"))?
            };
            channels = if parts.channels || stored.is_empty() {
                self.channels().await?
            } else {
                stored
            };
        }
        for id in &self.args.channel_ids {
            if !channels.iter().any(|(c, _)| c == id) {
                channels.push((id.clone(), id.clone()));
            }
        }
        channels.retain(|(id, _)| self.args.wants_channel(id));
        if parts.members {
            for (id, name) in &channels {
                self.members(id, name).await?;
            }
        }
        if parts.messages {
            self.refresh_names().await?;
            for (id, name) in &channels {
                self.history(id, name).await?;
            }
        }
        Ok(())
    }

    async fn users(&mut self) -> Result<(), SlackError> {
        let mut params = vec![("limit", PAGE_LIMIT.to_string())];
        params.extend(self.team_param());
        let mut pages = self.api.pages("users.list", params);
        while let Some(page) = pages.next::<UsersList>().await? {
            let users: Vec<User> = convert_items(
                page.data.members,
                &mut self.totals.malformed,
                "user",
                &page.response.url,
            );
            self.store_users(&users).await?;
        }
        Ok(())
    }

    /// List (and store) the channels; returns (id, name) of each.
    async fn channels(&mut self) -> Result<Vec<(String, String)>, SlackError> {
        let mut params = vec![
            ("types", "public_channel,private_channel".to_owned()),
            ("exclude_archived", "false".to_owned()),
            ("limit", PAGE_LIMIT.to_string()),
        ];
        params.extend(self.team_param());
        let mut out = Vec::new();
        let mut pages = self.api.pages("conversations.list", params);
        while let Some(page) = pages.next::<ConversationsList>().await? {
            let channels: Vec<Channel> = convert_items(
                page.data.channels,
                &mut self.totals.malformed,
                "channel",
                &page.response.url,
            );
            out.extend(channels.iter().map(|c| (c.id.clone(), c.name.clone())));
            if self.args.parts().channels {
                self.store_channels(&channels).await?;
            }
        }
        Ok(out)
    }

    /// Channel errors that skip the channel instead of failing the run.
    fn skippable(e: &SlackError) -> bool {
        matches!(e, SlackError::Api { error, .. }
            if matches!(error.as_str(), "not_in_channel" | "channel_not_found" | "is_archived"))
    }

    async fn members(&mut self, id: &str, name: &str) -> Result<(), SlackError> {
        let params = vec![
            ("channel", id.to_owned()),
            ("limit", PAGE_LIMIT.to_string()),
        ];
        let mut all = Vec::new();
        let mut pages = self.api.pages("conversations.members", params);
        loop {
            match pages.next::<MembersList>().await {
                Ok(Some(page)) => all.extend(page.data.members),
                Ok(None) => break,
                Err(e) if Self::skippable(&e) => {
                    self.totals.channels_skipped += 1;
                    tracing::warn!(collector = NAME, channel = id, name, error = %e, "channel members not readable; skipped");
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        self.store_members(id, &all).await
    }

    async fn read_walk(&self, scope: &str, id: &str) -> Result<(Walk, bool), SlackError> {
        if self.args.start_date.is_some() || self.args.end_date.is_some() {
            return Ok((
                Walk {
                    oldest: self.args.oldest().map(ts_of),
                    latest: self.args.latest().map(ts_of),
                    ..Walk::default()
                },
                false,
            ));
        }
        let cp = self
            .ctx
            .storage
            .checkpoints()
            .get(NAME, scope)
            .await
            .map_err(storage("reading a slack checkpoint"))?;
        let str_of = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        if let Some(cp) = &cp {
            let watermark = Some(cp.checkpoint_token().to_owned()).filter(|t| t != "0");
            let ex = cp.extras();
            if let Some(latest) = str_of(ex.get("walk_latest")) {
                return Ok((
                    Walk {
                        watermark,
                        oldest: str_of(ex.get("walk_oldest")),
                        latest: Some(latest),
                        newest: str_of(ex.get("walk_newest")),
                    },
                    true,
                ));
            }
            let stored = store::newest_ts(&self.ctx.storage, id)
                .await
                .map_err(storage("reading the newest slack message"))?;
            return Ok((
                Walk {
                    oldest: later(watermark.clone(), stored),
                    watermark,
                    ..Walk::default()
                },
                true,
            ));
        }
        let stored = store::newest_ts(&self.ctx.storage, id)
            .await
            .map_err(storage("reading the newest slack message"))?;
        Ok((
            Walk {
                oldest: stored,
                ..Walk::default()
            },
            true,
        ))
    }

    async fn replies(&mut self, id: &str, parent: &str) -> Result<Vec<SlMessage>, SlackError> {
        let params = vec![
            ("channel", id.to_owned()),
            ("ts", parent.to_owned()),
            ("limit", PAGE_LIMIT.to_string()),
        ];
        let mut out = Vec::new();
        let mut pages = self.api.pages("conversations.replies", params);
        loop {
            match pages.next::<MessagesList>().await {
                Ok(Some(page)) => out.extend(convert(
                    id,
                    page.data.messages,
                    &mut self.totals.malformed,
                    &page.response.url,
                )),
                Ok(None) => break,
                Err(SlackError::Api { error, .. }) if error == "thread_not_found" => {
                    tracing::warn!(
                        collector = NAME,
                        channel = id,
                        thread_ts = parent,
                        "thread not found; skipped"
                    );
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        self.totals.threads += 1;
        Ok(out)
    }

    async fn history(&mut self, id: &str, name: &str) -> Result<(), SlackError> {
        let scope = format!("channel:{id}");
        let (mut walk, checkpointed) = self.read_walk(&scope, id).await?;
        let windowed = !checkpointed;
        let mut params = vec![
            ("channel", id.to_owned()),
            ("limit", PAGE_LIMIT.to_string()),
        ];
        if let Some(o) = &walk.oldest {
            params.push(("oldest", o.clone()));
        }
        if let Some(l) = &walk.latest {
            params.push(("latest", l.clone()));
        }
        if windowed {
            params.push(("inclusive", "true".to_owned()));
        }
        let resumed = walk.latest.is_some() && !windowed;
        let mut pages = self.api.pages("conversations.history", params);
        let mut any = false;
        loop {
            let page = match pages.next::<MessagesList>().await {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) if Self::skippable(&e) => {
                    self.totals.channels_skipped += 1;
                    tracing::warn!(collector = NAME, channel = id, name, error = %e, "channel history not readable (invite the bot to the channel); skipped");
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            any = true;
            let top = convert(
                id,
                page.data.messages,
                &mut self.totals.malformed,
                &page.response.url,
            );
            let mut batch = Vec::with_capacity(top.len());
            let mut page_oldest: Option<String> = None;
            for m in &top {
                walk.newest = later(walk.newest.take(), Some(m.ts.clone()));
                page_oldest = match page_oldest {
                    Some(o) if ts_cmp(&o, &m.ts) == Some(std::cmp::Ordering::Less) => Some(o),
                    _ => Some(m.ts.clone()),
                };
            }
            for m in &top {
                if m.has_replies() {
                    batch.extend(self.replies(id, &m.ts).await?);
                }
            }
            batch.extend(top);
            if page_oldest.is_some() {
                walk.latest = page_oldest;
            }
            let state = if windowed {
                None
            } else if pages.has_next() {
                Some(walk.in_progress()?)
            } else {
                walk.done()?
            };
            self.store_messages(&batch, state.as_ref().map(|s| (scope.as_str(), s)))
                .await?;
        }
        if !any && resumed {
            // The resumed walk had nothing left: close it.
            if let Some(state) = walk.done()? {
                self.store_messages(&[], Some((scope.as_str(), &state)))
                    .await?;
            }
        }
        Ok(())
    }

    /// Re-parse the archive: users, channels and members first, then
    /// messages, in fetch order. Checkpoints are left alone.
    pub async fn replay(&mut self) -> Result<(), SlackError> {
        let Some(index) = self.api.client().archive_index() else {
            return Ok(());
        };
        // The method is the URL's last path segment, whatever the base URL
        // was when it was recorded (a replay needs no SLACK_API_URL).
        let mut entries: Vec<(String, String, HashMap<String, String>)> = Vec::new();
        for e in index.entries() {
            let Ok(u) = url::Url::parse(&e.url) else {
                continue;
            };
            let method = u
                .path_segments()
                .and_then(|mut s| s.next_back())
                .unwrap_or("")
                .to_owned();
            let params: HashMap<String, String> = u.query_pairs().into_owned().collect();
            entries.push((e.url.clone(), method, params));
        }
        let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let parts = self.args.parts();
        for (url, method, params) in &entries {
            let channel = params.get("channel").cloned().unwrap_or_default();
            match method.as_str() {
                "users.list" if parts.users => {
                    let resp = self.get(url, method).await?;
                    let page = SlackApi::decode::<UsersList>(method, resp)?;
                    let users: Vec<User> =
                        convert_items(page.data.members, &mut self.totals.malformed, "user", url);
                    self.store_users(&users).await?;
                }
                "conversations.list" if parts.channels => {
                    let resp = self.get(url, method).await?;
                    let page = SlackApi::decode::<ConversationsList>(method, resp)?;
                    let mut channels: Vec<Channel> = convert_items(
                        page.data.channels,
                        &mut self.totals.malformed,
                        "channel",
                        url,
                    );
                    channels.retain(|c| self.args.wants_channel(&c.id));
                    self.store_channels(&channels).await?;
                }
                "conversations.members" if parts.members && self.args.wants_channel(&channel) => {
                    let resp = self.get(url, method).await?;
                    match SlackApi::decode::<MembersList>(method, resp) {
                        Ok(page) => members
                            .entry(channel)
                            .or_default()
                            .extend(page.data.members),
                        Err(e) if Self::skippable(&e) => {
                            self.totals.channels_skipped += 1;
                            tracing::warn!(collector = NAME, url = %url, error = %e, "archived answer without members; skipped");
                        }
                        Err(e) => return Err(e),
                    }
                }
                _ => {}
            }
        }
        for (channel, list) in &members {
            self.store_members(channel, list).await?;
        }
        if !parts.messages {
            return Ok(());
        }
        self.refresh_names().await?;
        for (url, method, params) in &entries {
            let channel = params.get("channel").cloned().unwrap_or_default();
            if !matches!(
                method.as_str(),
                "conversations.history" | "conversations.replies"
            ) || !self.args.wants_channel(&channel)
            {
                continue;
            }
            let resp = self.get(url, method).await?;
            let page = match SlackApi::decode::<MessagesList>(method, resp) {
                Ok(p) => p,
                Err(e)
                    if Self::skippable(&e)
                        || matches!(&e, SlackError::Api { error, .. } if error == "thread_not_found") =>
                {
                    self.totals.channels_skipped += 1;
                    tracing::warn!(collector = NAME, url = %url, error = %e, "archived answer without messages; skipped");
                    continue;
                }
                Err(e) => return Err(e),
            };
            if method == "conversations.replies" {
                self.totals.threads += 1;
            }
            let batch = convert(
                &channel,
                page.data.messages,
                &mut self.totals.malformed,
                url,
            );
            self.store_messages(&batch, None).await?;
        }
        Ok(())
    }

    async fn get(&self, url: &str, method: &str) -> Result<bdc_http::Response, SlackError> {
        self.api
            .client()
            .get(url)
            .await
            .map_err(crate::error::http(format!("replaying Slack {method}")))
    }
}
