//! Tracker protocols (seed 001, `core.protocols`): the typed data that crosses
//! crate boundaries. Every type validates at construction and on
//! deserialisation, so an invalid value cannot exist.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A value violated a protocol invariant. Names the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {type_name}.{field} = {value:?}: {reason}")]
pub struct ProtocolError {
    pub type_name: &'static str,
    pub field: &'static str,
    pub value: String,
    pub reason: &'static str,
}

fn invalid(
    type_name: &'static str,
    field: &'static str,
    value: &str,
    reason: &'static str,
) -> ProtocolError {
    let mut value = value.to_owned();
    if value.len() > 120 {
        let mut cut = 117;
        while !value.is_char_boundary(cut) {
            cut -= 1;
        }
        value.truncate(cut);
        value.push_str("...");
    }
    ProtocolError {
        type_name,
        field,
        value,
        reason,
    }
}

/// Lower-case identifier: `[a-z0-9][a-z0-9_.-]*`, at most 64 bytes.
fn is_slug(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
}

/// Outcome of one collector run: `success` and named counts
/// (e.g. `inserted`, `updated`, `unchanged`, `fetched`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TrackerResultRaw")]
pub struct TrackerResult {
    success: bool,
    counts: BTreeMap<String, u64>,
}

#[derive(Deserialize)]
struct TrackerResultRaw {
    success: bool,
    #[serde(default)]
    counts: BTreeMap<String, u64>,
}

impl TryFrom<TrackerResultRaw> for TrackerResult {
    type Error = ProtocolError;
    fn try_from(raw: TrackerResultRaw) -> Result<Self, Self::Error> {
        Self::new(raw.success, raw.counts)
    }
}

impl TrackerResult {
    pub fn new(success: bool, counts: BTreeMap<String, u64>) -> Result<Self, ProtocolError> {
        for key in counts.keys() {
            if !is_slug(key) {
                return Err(invalid(
                    "TrackerResult",
                    "counts",
                    key,
                    "count names must be lower-case identifiers",
                ));
            }
        }
        Ok(Self { success, counts })
    }

    /// A successful result with no counts yet.
    pub fn ok() -> Self {
        Self {
            success: true,
            counts: BTreeMap::new(),
        }
    }

    pub fn success(&self) -> bool {
        self.success
    }

    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }

    pub fn count(&self, name: &str) -> u64 {
        self.counts.get(name).copied().unwrap_or(0)
    }

    /// Add `n` to the count `name`.
    pub fn add(&mut self, name: &str, n: u64) -> Result<(), ProtocolError> {
        if !is_slug(name) {
            return Err(invalid(
                "TrackerResult",
                "counts",
                name,
                "count names must be lower-case identifiers",
            ));
        }
        *self.counts.entry(name.to_owned()).or_insert(0) += n;
        Ok(())
    }

    pub fn set_success(&mut self, success: bool) {
        self.success = success;
    }
}

/// One portable activity event (an issue opened, a mail sent, a paper
/// published), keyed by `(source_system, external_id)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ActivityRecordRaw")]
pub struct ActivityRecord {
    source_system: String,
    external_id: String,
    occurred_at: DateTime<Utc>,
    actor: Option<String>,
    kind: String,
    title: Option<String>,
    url: Option<String>,
    payload: serde_json::Value,
}

#[derive(Deserialize)]
struct ActivityRecordRaw {
    source_system: String,
    external_id: String,
    occurred_at: DateTime<Utc>,
    #[serde(default)]
    actor: Option<String>,
    kind: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default = "empty_object")]
    payload: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

impl TryFrom<ActivityRecordRaw> for ActivityRecord {
    type Error = ProtocolError;
    fn try_from(raw: ActivityRecordRaw) -> Result<Self, Self::Error> {
        let mut rec = Self::new(
            raw.source_system,
            raw.external_id,
            raw.occurred_at,
            raw.kind,
        )?;
        if let Some(actor) = raw.actor {
            rec = rec.with_actor(actor)?;
        }
        if let Some(title) = raw.title {
            rec = rec.with_title(title);
        }
        if let Some(url) = raw.url {
            rec = rec.with_url(url)?;
        }
        rec.with_payload(raw.payload)
    }
}

impl ActivityRecord {
    /// `source_system` and `kind` are lower-case identifiers
    /// (`[a-z0-9][a-z0-9_.-]*`); `external_id` is non-empty, at most 512
    /// bytes, without control characters.
    pub fn new(
        source_system: impl Into<String>,
        external_id: impl Into<String>,
        occurred_at: DateTime<Utc>,
        kind: impl Into<String>,
    ) -> Result<Self, ProtocolError> {
        const T: &str = "ActivityRecord";
        let source_system = source_system.into();
        let external_id = external_id.into();
        let kind = kind.into();
        if !is_slug(&source_system) {
            return Err(invalid(
                T,
                "source_system",
                &source_system,
                "must be a lower-case identifier like `github`",
            ));
        }
        if external_id.trim().is_empty()
            || external_id.len() > 512
            || external_id.chars().any(char::is_control)
        {
            return Err(invalid(
                T,
                "external_id",
                &external_id,
                "must be non-empty, at most 512 bytes, without control characters",
            ));
        }
        if !is_slug(&kind) {
            return Err(invalid(
                T,
                "kind",
                &kind,
                "must be a lower-case identifier like `issue_opened`",
            ));
        }
        Ok(Self {
            source_system,
            external_id,
            occurred_at,
            actor: None,
            kind,
            title: None,
            url: None,
            payload: empty_object(),
        })
    }

    pub fn with_actor(mut self, actor: impl Into<String>) -> Result<Self, ProtocolError> {
        let actor = actor.into();
        if actor.trim().is_empty() || actor.len() > 256 {
            return Err(invalid(
                "ActivityRecord",
                "actor",
                &actor,
                "must be non-empty and at most 256 bytes",
            ));
        }
        self.actor = Some(actor);
        Ok(self)
    }

    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        let title: String = title.into();
        self.title = if title.trim().is_empty() {
            None
        } else {
            Some(title)
        };
        self
    }

    pub fn with_url(mut self, url: impl Into<String>) -> Result<Self, ProtocolError> {
        let url = url.into();
        let scheme_ok = ["http://", "https://", "mailto:", "file://", "git://"]
            .iter()
            .any(|p| url.starts_with(p));
        if !scheme_ok || url.chars().any(char::is_whitespace) {
            return Err(invalid(
                "ActivityRecord",
                "url",
                &url,
                "must be an absolute http(s)/mailto/file/git URL without spaces",
            ));
        }
        self.url = Some(url);
        Ok(self)
    }

    /// Source-specific details; must be a JSON object.
    pub fn with_payload(mut self, payload: serde_json::Value) -> Result<Self, ProtocolError> {
        if !payload.is_object() {
            return Err(invalid(
                "ActivityRecord",
                "payload",
                &payload.to_string(),
                "must be a JSON object",
            ));
        }
        self.payload = payload;
        Ok(self)
    }

    pub fn source_system(&self) -> &str {
        &self.source_system
    }
    pub fn external_id(&self) -> &str {
        &self.external_id
    }
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.occurred_at
    }
    pub fn actor(&self) -> Option<&str> {
        self.actor.as_deref()
    }
    pub fn kind(&self) -> &str {
        &self.kind
    }
    pub fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }
    pub fn payload(&self) -> &serde_json::Value {
        &self.payload
    }
}

/// A resumable checkpoint: an opaque `checkpoint_token` the collector
/// understands, a `human_readable_marker` for operators, and `extras`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "IncrementalStateRaw")]
pub struct IncrementalState {
    checkpoint_token: String,
    human_readable_marker: String,
    extras: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct IncrementalStateRaw {
    checkpoint_token: String,
    #[serde(default)]
    human_readable_marker: String,
    #[serde(default)]
    extras: serde_json::Map<String, serde_json::Value>,
}

impl TryFrom<IncrementalStateRaw> for IncrementalState {
    type Error = ProtocolError;
    fn try_from(raw: IncrementalStateRaw) -> Result<Self, Self::Error> {
        Ok(Self::new(raw.checkpoint_token, raw.human_readable_marker)?.with_extras(raw.extras))
    }
}

impl IncrementalState {
    pub fn new(
        checkpoint_token: impl Into<String>,
        human_readable_marker: impl Into<String>,
    ) -> Result<Self, ProtocolError> {
        let checkpoint_token = checkpoint_token.into();
        if checkpoint_token.is_empty() || checkpoint_token.len() > 4096 {
            return Err(invalid(
                "IncrementalState",
                "checkpoint_token",
                &checkpoint_token,
                "must be non-empty and at most 4096 bytes",
            ));
        }
        Ok(Self {
            checkpoint_token,
            human_readable_marker: human_readable_marker.into(),
            extras: serde_json::Map::new(),
        })
    }

    pub fn with_extras(mut self, extras: serde_json::Map<String, serde_json::Value>) -> Self {
        self.extras = extras;
        self
    }

    pub fn checkpoint_token(&self) -> &str {
        &self.checkpoint_token
    }
    pub fn human_readable_marker(&self) -> &str {
        &self.human_readable_marker
    }
    pub fn extras(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.extras
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn tracker_result_round_trip_and_validation() {
        let mut r = TrackerResult::ok();
        r.add("inserted", 3).unwrap();
        r.add("inserted", 2).unwrap();
        assert_eq!(r.count("inserted"), 5);
        assert!(r.add("Bad Name", 1).is_err());
        let json = serde_json::to_string(&r).unwrap();
        let back: TrackerResult = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let bad = serde_json::from_str::<TrackerResult>(r#"{"success":true,"counts":{"":1}}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn activity_record_round_trip() {
        let rec = ActivityRecord::new("wg21", "P2300R10", t0(), "paper_published")
            .unwrap()
            .with_actor("Michał Dominiak")
            .unwrap()
            .with_title("std::execution")
            .with_url("https://wg21.link/p2300r10")
            .unwrap()
            .with_payload(serde_json::json!({"subgroup": "LEWG"}))
            .unwrap();
        let json = serde_json::to_string(&rec).unwrap();
        let back: ActivityRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rec);
    }

    #[test]
    fn activity_record_rejects_bad_fields_naming_them() {
        let e = ActivityRecord::new("GitHub", "1", t0(), "x").unwrap_err();
        assert_eq!(e.field, "source_system");
        assert!(e.to_string().contains("\"GitHub\""));
        assert_eq!(
            ActivityRecord::new("github", " ", t0(), "x")
                .unwrap_err()
                .field,
            "external_id"
        );
        assert_eq!(
            ActivityRecord::new("github", "1", t0(), "")
                .unwrap_err()
                .field,
            "kind"
        );
        let rec = ActivityRecord::new("github", "1", t0(), "issue").unwrap();
        assert_eq!(rec.clone().with_url("ftp://x").unwrap_err().field, "url");
        assert_eq!(
            rec.clone()
                .with_payload(serde_json::json!([1]))
                .unwrap_err()
                .field,
            "payload"
        );
        let bad_json = r#"{"source_system":"github","external_id":"","occurred_at":"2024-01-01T00:00:00Z","kind":"x"}"#;
        let err = serde_json::from_str::<ActivityRecord>(bad_json).unwrap_err();
        assert!(err.to_string().contains("external_id"), "{err}");
    }

    #[test]
    fn incremental_state_round_trip() {
        let mut extras = serde_json::Map::new();
        extras.insert("etag".into(), serde_json::json!("W/\"abc\""));
        let s = IncrementalState::new("2024-05-01T12:00:00Z", "papers up to P3000R0")
            .unwrap()
            .with_extras(extras);
        let back: IncrementalState =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert!(IncrementalState::new("", "x").is_err());
    }
}
