//! The `identities` collector (alias `run_cppa_user_tracker`): merges the
//! profiles other collectors record (`bdc_identity::record_profiles`) into
//! identities, applying the automatic rules, the stored manual decisions,
//! locks and the declarative file (`BDC_IDENTITIES_YAML` or `--rules`).
//!
//! `bdc run identities [--rules PATH] [--suggest]`
//!
//! Counts: `profiles`, `identities`, `people`, `bots`, `reassigned`,
//! `created`, `removed`, `unresolved` (file references matching no
//! profile yet) and, with `--suggest`, `suggestions` (name-only candidates,
//! also printed on stdout for a person to confirm).

use std::path::PathBuf;

use async_trait::async_trait;
use bdc_collector::{CollectContext, Collector};
use bdc_core::{BoxError, Categorized, FailureCategory, TrackerResult};
use bdc_identity::{HubError, Rules};
use clap::Parser;

/// Stable collector name.
pub const NAME: &str = "identities";
/// Environment variable naming the declarative file.
pub const RULES_ENV: &str = "BDC_IDENTITIES_YAML";

/// `bdc run identities [--rules PATH] [--suggest]`.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "identities", about = "Merge recorded profiles into identities")]
pub struct IdentitiesArgs {
    /// Declarative file of merges, splits and bot names [default: BDC_IDENTITIES_YAML].
    #[arg(long, value_name = "PATH")]
    pub rules: Option<PathBuf>,
    /// Also list name-only candidates (never merged automatically).
    #[arg(long)]
    pub suggest: bool,
}

impl IdentitiesArgs {
    pub fn parse_args(args: &[String]) -> Result<Self, BoxError> {
        Self::try_parse_from(std::iter::once(NAME.to_owned()).chain(args.iter().cloned())).map_err(
            |e| -> BoxError {
                Box::new(Categorized::new(
                    FailureCategory::Config,
                    e.to_string().trim().to_owned(),
                ))
            },
        )
    }

    /// The declarative file in effect (`--rules`, else `BDC_IDENTITIES_YAML`).
    pub fn rules_path(&self) -> Option<PathBuf> {
        self.rules.clone().or_else(|| {
            std::env::var_os(RULES_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
    }
}

/// Load the declarative file in effect (empty rules without one).
pub fn load_rules(path: Option<&std::path::Path>) -> Result<Rules, BoxError> {
    match path {
        Some(p) => Rules::load(p).map_err(|e| -> BoxError {
            let message = e.to_string();
            Box::new(Categorized::with_source(
                FailureCategory::Config,
                message,
                e,
            ))
        }),
        None => Ok(Rules::default()),
    }
}

fn hub_err(e: HubError) -> BoxError {
    Box::new(e)
}

/// The `identities` collector.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdentitiesCollector;

#[async_trait]
impl Collector for IdentitiesCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn args_command(&self) -> Option<clap::Command> {
        Some(<IdentitiesArgs as clap::CommandFactory>::command())
    }

    fn validate_config(&self, ctx: &CollectContext) -> Result<(), BoxError> {
        let args = IdentitiesArgs::parse_args(&ctx.args)?;
        load_rules(args.rules_path().as_deref())?;
        Ok(())
    }

    async fn collect(&self, ctx: &CollectContext) -> Result<TrackerResult, BoxError> {
        let args = IdentitiesArgs::parse_args(&ctx.args)?;
        let rules = load_rules(args.rules_path().as_deref())?;
        let span = tracing::info_span!("identities", run_id = %ctx.run_id);
        let _g = span.enter();
        let c = bdc_identity::resolve(&ctx.storage, &rules)
            .await
            .map_err(hub_err)?;
        let mut r = TrackerResult::ok();
        for (name, n) in [
            ("profiles", c.profiles),
            ("identities", c.identities),
            ("people", c.people),
            ("bots", c.bots),
            ("reassigned", c.reassigned),
            ("created", c.created),
            ("removed", c.removed),
            ("unresolved", c.unresolved),
        ] {
            r.add(name, n)?;
        }
        if args.suggest {
            let s = bdc_identity::hub::suggest(&ctx.storage)
                .await
                .map_err(hub_err)?;
            for (name, ids) in &s {
                let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
                println!("suggest\t{name}\t{}", ids.join(","));
            }
            r.add("suggestions", s.len() as u64)?;
        }
        tracing::info!(
            profiles = c.profiles,
            identities = c.identities,
            people = c.people,
            bots = c.bots,
            reassigned = c.reassigned,
            "identities resolved"
        );
        Ok(r)
    }
}
