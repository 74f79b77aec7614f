//! `bdc identities ...` (the identity hub, see docs/identities.md) and the
//! `--person` filter of `bdc activity`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bdc_config::Config;
use bdc_identity::{HubError, Rules};
use bdc_storage::Storage;
use bdc_storage::activity::{ActivityFilter, StoredActivity};
use clap::{Args, Subcommand, ValueEnum};

use crate::commands::UsageError;
use crate::output::{table, truncate};

#[derive(Debug, Args)]
pub struct IdentitiesArgs {
    /// Declarative file re-applied after a merge or split [default: BDC_IDENTITIES_YAML].
    #[arg(long, global = true, value_name = "PATH")]
    pub rules: Option<PathBuf>,
    #[command(subcommand)]
    pub command: IdentitiesCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum IdentitiesCommand {
    /// Identities with the most profiles first (people only unless --bots).
    List {
        #[arg(long)]
        bots: bool,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// One identity and its profiles: <id|email|login|source:source_id>.
    Show {
        reference: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Merge two identities (stored; survives re-collection).
    Merge { a: String, b: String },
    /// Split one profile off into its own identity (stored; automatic rules no longer merge it).
    Split { profile: String },
    /// Lock an identity: automatic rules never change it.
    Lock { identity: String },
    /// Unlock an identity.
    Unlock { identity: String },
    /// Name-only candidates (never merged automatically) for a person to confirm.
    Suggest,
}

fn hub(e: HubError) -> anyhow::Error {
    match e {
        HubError::NotFound(_)
        | HubError::Ambiguous { .. }
        | HubError::Locked(_)
        | HubError::Invalid(_)
        | HubError::Rules { .. } => UsageError(e.to_string()).into(),
        HubError::Storage(s) => anyhow::Error::new(s),
    }
}

fn rules(path: Option<PathBuf>) -> Result<Rules> {
    let path = path.or_else(|| {
        std::env::var_os(bdc_collector_identities::RULES_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    match path {
        Some(p) => Rules::load(&p).map_err(hub),
        None => Ok(Rules::default()),
    }
}

pub async fn run(config: &Config, args: IdentitiesArgs) -> Result<ExitCode> {
    let storage = crate::commands::connect_ready(config).await?;
    let mut out = std::io::stdout().lock();
    match args.command {
        IdentitiesCommand::List {
            bots,
            limit,
            format,
        } => {
            let rows = bdc_identity::hub::list_identities(&storage, bots, limit)
                .await
                .map_err(hub)?;
            match format {
                Format::Json => {
                    let v: Vec<_> = rows
                        .iter()
                        .map(|r| {
                            serde_json::json!({"id": r.id, "name": r.display_name, "bot": r.is_bot,
                                "locked": r.locked, "profiles": r.profiles, "sources": r.sources})
                        })
                        .collect();
                    writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                }
                Format::Table => {
                    let body: Vec<Vec<String>> = rows
                        .iter()
                        .map(|r| {
                            vec![
                                r.id.to_string(),
                                truncate(r.display_name.as_deref().unwrap_or("-"), 40),
                                r.profiles.to_string(),
                                r.sources.clone(),
                                if r.is_bot { "bot" } else { "" }.to_owned(),
                                if r.locked { "locked" } else { "" }.to_owned(),
                            ]
                        })
                        .collect();
                    write!(
                        out,
                        "{}",
                        table(&["ID", "NAME", "PROFILES", "SOURCES", "BOT", "LOCK"], &body)
                    )?;
                }
            }
        }
        IdentitiesCommand::Show { reference, format } => {
            let id = bdc_identity::hub::find_identity(&storage, &reference)
                .await
                .map_err(hub)?;
            let Some(i) = bdc_identity::hub::get_identity(&storage, id)
                .await
                .map_err(hub)?
            else {
                return Err(UsageError(format!("identity {id} vanished")).into());
            };
            match format {
                Format::Json => {
                    let profiles: Vec<_> = i
                        .profiles
                        .iter()
                        .map(|p| {
                            serde_json::json!({"profile": p.reference(), "name": p.display_name,
                                "login": p.login, "emails": p.emails, "bot": p.is_bot,
                                "activity_source": p.activity_source, "actor": p.actor})
                        })
                        .collect();
                    let v = serde_json::json!({"id": i.id, "name": i.display_name, "bot": i.is_bot,
                        "locked": i.locked, "profiles": profiles});
                    writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                }
                Format::Table => {
                    writeln!(
                        out,
                        "identity {}: {}{}{}",
                        i.id,
                        i.display_name.as_deref().unwrap_or("-"),
                        if i.is_bot { " [bot]" } else { "" },
                        if i.locked { " [locked]" } else { "" }
                    )?;
                    let body: Vec<Vec<String>> = i
                        .profiles
                        .iter()
                        .map(|p| {
                            vec![
                                truncate(&p.reference(), 50),
                                truncate(p.display_name.as_deref().unwrap_or("-"), 30),
                                p.login.clone().unwrap_or_else(|| "-".into()),
                                truncate(&p.emails.join(", "), 60),
                            ]
                        })
                        .collect();
                    write!(
                        out,
                        "{}",
                        table(&["PROFILE", "NAME", "LOGIN", "EMAILS"], &body)
                    )?;
                }
            }
        }
        IdentitiesCommand::Merge { a, b } => {
            let r = rules(args.rules)?;
            let id = bdc_identity::hub::merge(&storage, &a, &b, &r)
                .await
                .map_err(hub)?;
            writeln!(out, "merged into identity {id}")?;
        }
        IdentitiesCommand::Split { profile } => {
            let r = rules(args.rules)?;
            let id = bdc_identity::hub::split(&storage, &profile, &r)
                .await
                .map_err(hub)?;
            match id {
                Some(id) => writeln!(out, "split into identity {id}")?,
                None => writeln!(out, "split")?,
            }
        }
        IdentitiesCommand::Lock { identity } => {
            let id = bdc_identity::hub::find_identity(&storage, &identity)
                .await
                .map_err(hub)?;
            bdc_identity::hub::set_locked(&storage, id, true)
                .await
                .map_err(hub)?;
            writeln!(out, "identity {id} locked")?;
        }
        IdentitiesCommand::Unlock { identity } => {
            let id = bdc_identity::hub::find_identity(&storage, &identity)
                .await
                .map_err(hub)?;
            bdc_identity::hub::set_locked(&storage, id, false)
                .await
                .map_err(hub)?;
            writeln!(out, "identity {id} unlocked")?;
        }
        IdentitiesCommand::Suggest => {
            let s = bdc_identity::hub::suggest(&storage).await.map_err(hub)?;
            let body: Vec<Vec<String>> = s
                .iter()
                .map(|(name, ids)| {
                    vec![
                        name.clone(),
                        ids.iter().map(i64::to_string).collect::<Vec<_>>().join(","),
                    ]
                })
                .collect();
            write!(out, "{}", table(&["NAME", "IDENTITIES"], &body))?;
        }
    }
    storage.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Activity of the identity `person` names, newest first, across every
/// `(source_system, actor)` its profiles act as (other filters apply).
pub async fn person_activity(
    storage: &Storage,
    person: &str,
    filter: &ActivityFilter,
) -> Result<Vec<StoredActivity>> {
    let pairs = person_actors(storage, person, filter).await?;
    let mut rows: Vec<StoredActivity> = Vec::new();
    for f in &pairs {
        rows.extend(storage.activity().list(f).await?);
    }
    rows.sort_by_key(|a| std::cmp::Reverse(a.record.occurred_at()));
    rows.truncate(filter.limit.unwrap_or(50) as usize);
    Ok(rows)
}

/// Number of records of `person` matching `filter`.
pub async fn person_count(storage: &Storage, person: &str, filter: &ActivityFilter) -> Result<u64> {
    let mut n = 0;
    for f in person_actors(storage, person, filter).await? {
        n += storage.activity().count(&f).await?;
    }
    Ok(n)
}

async fn person_actors(
    storage: &Storage,
    person: &str,
    filter: &ActivityFilter,
) -> Result<Vec<ActivityFilter>> {
    let id = bdc_identity::hub::find_identity(storage, person)
        .await
        .map_err(hub)
        .with_context(|| format!("--person {person:?}"))?;
    let actors = bdc_identity::hub::actors_of(storage, id)
        .await
        .map_err(hub)?;
    Ok(actors
        .into_iter()
        .filter(|(s, _)| filter.source_system.as_ref().is_none_or(|f| f == s))
        .map(|(s, a)| ActivityFilter {
            source_system: Some(s),
            actor: Some(a),
            ..filter.clone()
        })
        .collect())
}
