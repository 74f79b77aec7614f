//! Tables (`identities`, `profiles`, `profile_emails`,
//! `identity_decisions`) and the write path collectors call:
//! [`record_profiles`], inside their own write transaction.

use std::collections::BTreeMap;

use bdc_storage::{MigrationFile, QueryContext, SchemaPart, StorageError, Tx, now, on_tx};
use sqlx::QueryBuilder;

use crate::normalize::normalize_email;

/// The identity hub's schema part (registered in `crates/bdc/src/schema.rs`).
pub static SCHEMA: SchemaPart = SchemaPart {
    name: "identity",
    migrations: &[MigrationFile {
        version: 1,
        description: "identities, profiles, profile emails, identity decisions",
        sqlite: include_str!("../migrations/sqlite_0001.sql"),
        postgres: include_str!("../migrations/postgres_0001.sql"),
    }],
};

/// Rows per multi-row statement.
const CHUNK: usize = 500;

/// One account as a collector saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileInput {
    /// `github`, `git`, `mailing-list`, `slack`, `discord`, …
    pub source: String,
    /// The account's id within the source (GitHub user id, an address, …).
    pub source_id: String,
    pub display_name: Option<String>,
    pub login: Option<String>,
    /// Addresses as written (normalised for matching, kept as seen).
    pub emails: Vec<String>,
    /// `source_system` of the activity records this account acts in …
    pub activity_source: Option<String>,
    /// … and the `actor` value they carry.
    pub actor: Option<String>,
}

impl ProfileInput {
    pub fn new(source: impl Into<String>, source_id: impl Into<String>) -> Self {
        ProfileInput {
            source: source.into(),
            source_id: source_id.into(),
            ..Default::default()
        }
    }

    pub fn name(mut self, name: Option<&str>) -> Self {
        self.display_name = clean(name);
        self
    }

    pub fn login(mut self, login: Option<&str>) -> Self {
        self.login = clean(login);
        self
    }

    pub fn email(mut self, email: Option<&str>) -> Self {
        if let Some(e) = clean(email) {
            self.emails.push(e);
        }
        self
    }

    pub fn acts_as(mut self, activity_source: &str, actor: Option<&str>) -> Self {
        self.activity_source = Some(activity_source.to_owned());
        self.actor = clean(actor);
        self
    }
}

fn clean(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= 512)
        .map(str::to_owned)
}

/// Record (insert or refresh) `profiles` inside the caller's transaction.
/// Names and logins are refreshed when given; addresses accumulate. Profiles
/// repeated in `profiles` are merged. Returns the number of profiles given.
pub async fn record_profiles(tx: &mut Tx, profiles: &[ProfileInput]) -> Result<u64, StorageError> {
    let mut merged: BTreeMap<(&str, &str), ProfileInput> = BTreeMap::new();
    for p in profiles {
        if p.source.is_empty() || p.source_id.trim().is_empty() || p.source_id.len() > 512 {
            continue;
        }
        merged
            .entry((p.source.as_str(), p.source_id.as_str()))
            .and_modify(|cur| {
                if p.display_name.is_some() {
                    cur.display_name.clone_from(&p.display_name);
                }
                if p.login.is_some() {
                    cur.login.clone_from(&p.login);
                }
                if p.actor.is_some() {
                    cur.actor.clone_from(&p.actor);
                    cur.activity_source.clone_from(&p.activity_source);
                }
                cur.emails.extend(p.emails.iter().cloned());
            })
            .or_insert_with(|| p.clone());
    }
    if merged.is_empty() {
        return Ok(0);
    }
    let rows: Vec<&ProfileInput> = merged.values().collect();
    let mut emails: Vec<(&str, &str, &str, Option<String>)> = Vec::new();
    for p in &rows {
        for e in &p.emails {
            emails.push((&p.source, &p.source_id, e, normalize_email(e)));
        }
    }
    emails.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
    emails.dedup_by(|a, b| (a.0, a.1, a.2) == (b.0, b.1, b.2));
    let stamp = now();
    on_tx!(tx, t => {
        for chunk in rows.chunks(CHUNK) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO profiles (source, source_id, display_name, login, activity_source, actor, \
                 first_seen_at, updated_at) ",
            );
            qb.push_values(chunk.iter(), |mut b, p| {
                b.push_bind(p.source.as_str())
                    .push_bind(p.source_id.as_str())
                    .push_bind(p.display_name.as_deref())
                    .push_bind(p.login.as_deref())
                    .push_bind(p.activity_source.as_deref())
                    .push_bind(p.actor.as_deref())
                    .push_bind(stamp)
                    .push_bind(stamp);
            });
            qb.push(
                " ON CONFLICT (source, source_id) DO UPDATE SET
                   display_name = COALESCE(excluded.display_name, profiles.display_name),
                   login = COALESCE(excluded.login, profiles.login),
                   activity_source = COALESCE(excluded.activity_source, profiles.activity_source),
                   actor = COALESCE(excluded.actor, profiles.actor),
                   updated_at = excluded.updated_at
                 WHERE (excluded.display_name IS NOT NULL AND profiles.display_name IS DISTINCT FROM excluded.display_name)
                    OR (excluded.login IS NOT NULL AND profiles.login IS DISTINCT FROM excluded.login)
                    OR (excluded.activity_source IS NOT NULL AND profiles.activity_source IS DISTINCT FROM excluded.activity_source)
                    OR (excluded.actor IS NOT NULL AND profiles.actor IS DISTINCT FROM excluded.actor)",
            );
            qb.build().execute(&mut **t).await.ctx("recording identity profiles")?;
        }
        for chunk in emails.chunks(CHUNK) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO profile_emails (source, source_id, email, email_norm) ",
            );
            qb.push_values(chunk.iter(), |mut b, e| {
                b.push_bind(e.0).push_bind(e.1).push_bind(e.2).push_bind(e.3.as_deref());
            });
            qb.push(" ON CONFLICT (source, source_id, email) DO NOTHING");
            qb.build().execute(&mut **t).await.ctx("recording profile addresses")?;
        }
    });
    Ok(rows.len() as u64)
}
