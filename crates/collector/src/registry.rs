//! Collector names: the stable catalog and which ones this build provides.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::Collector;

/// One stable collector name with the original's command names it answers
/// to (so an existing schedule YAML runs unchanged).
#[derive(Debug, Clone, Copy)]
pub struct CatalogEntry {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub summary: &'static str,
}

/// Every collector name `bdc` knows (Tier A once released). A name here
/// whose collector is not registered is reported as `not available`.
pub const CATALOG: &[CatalogEntry] = &[
    CatalogEntry {
        name: "github-activity",
        aliases: &["run_boost_github_activity_tracker"],
        summary: "GitHub issues, PRs, comments, reviews, commits and releases of the Boost repos",
    },
    CatalogEntry {
        name: "clang-github",
        aliases: &["run_clang_github_tracker"],
        summary: "GitHub activity of llvm/llvm-project filtered to Clang",
    },
    CatalogEntry {
        name: "boost-libraries",
        aliases: &["collect_boost_libraries"],
        summary: "Boost library catalog from the superproject and meta/libraries.json",
    },
    CatalogEntry {
        name: "repos-by-language",
        aliases: &["run_update_created_repos_by_language"],
        summary: "GitHub repositories created per language",
    },
    CatalogEntry {
        name: "boost-usage",
        aliases: &["run_boost_usage_tracker"],
        summary: "Boost usage in other repositories",
    },
    CatalogEntry {
        name: "library-usage-dashboard",
        aliases: &["run_boost_library_usage_dashboard"],
        summary: "Library usage dashboard data",
    },
    CatalogEntry {
        name: "library-docs",
        aliases: &["run_boost_library_docs_tracker"],
        summary: "Boost library documentation tracker",
    },
    CatalogEntry {
        name: "mailing-list",
        aliases: &["run_boost_mailing_list_tracker"],
        summary: "Mailing-list archives (HyperKitty mbox exports, mbox files)",
    },
    CatalogEntry {
        name: "git-history",
        aliases: &[],
        summary: "Commits of git repositories",
    },
    CatalogEntry {
        name: "slack",
        aliases: &["run_cppa_slack_tracker"],
        summary: "Slack workspace activity",
    },
    CatalogEntry {
        name: "discord",
        aliases: &["run_discord_activity_tracker"],
        summary: "Discord server activity",
    },
    CatalogEntry {
        name: "discord-backfill",
        aliases: &["backfill_discord_activity_tracker"],
        summary: "Discord history backfill",
    },
    CatalogEntry {
        name: "youtube-transcripts",
        aliases: &["run_cppa_youtube_script_tracker"],
        summary: "YouTube talk transcripts",
    },
    CatalogEntry {
        name: "wg21-papers",
        aliases: &["run_wg21_paper_tracker"],
        summary: "WG21 papers from the wg21.link index",
    },
    CatalogEntry {
        name: "identities",
        aliases: &["run_cppa_user_tracker"],
        summary: "Identity hub: one person across GitHub, mail, Slack and Discord",
    },
    CatalogEntry {
        name: "search-index-sync",
        aliases: &["run_cppa_pinecone_sync"],
        summary: "Search/vector index sync",
    },
];

/// Result of looking a name up.
#[derive(Clone)]
pub enum Lookup {
    /// Provided by this build.
    Available(Arc<dyn Collector>),
    /// A known name whose collector this build does not provide yet.
    NotAvailable { name: &'static str },
    /// Not a name `bdc` knows.
    Unknown,
}

/// The collectors this build provides.
#[derive(Default, Clone)]
pub struct Registry {
    collectors: BTreeMap<&'static str, Arc<dyn Collector>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a collector under its [`Collector::name`].
    pub fn register(&mut self, collector: Arc<dyn Collector>) -> &mut Self {
        self.collectors.insert(collector.name(), collector);
        self
    }

    /// The stable name for `name_or_alias`, if known.
    pub fn canonical(name_or_alias: &str) -> Option<&'static str> {
        CATALOG
            .iter()
            .find(|e| e.name == name_or_alias || e.aliases.contains(&name_or_alias))
            .map(|e| e.name)
    }

    pub fn lookup(&self, name_or_alias: &str) -> Lookup {
        let canonical = Self::canonical(name_or_alias).or_else(|| {
            self.collectors
                .get_key_value(name_or_alias)
                .map(|(k, _)| *k)
        });
        match canonical {
            Some(name) => match self.collectors.get(name) {
                Some(c) => Lookup::Available(Arc::clone(c)),
                None => Lookup::NotAvailable { name },
            },
            None => Lookup::Unknown,
        }
    }

    /// Names provided by this build.
    pub fn available(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.collectors.keys().copied()
    }

    pub fn is_available(&self, name: &str) -> bool {
        self.collectors.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_names_and_aliases_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for e in CATALOG {
            assert!(seen.insert(e.name), "duplicate {}", e.name);
            for a in e.aliases {
                assert!(seen.insert(a), "duplicate {a}");
            }
        }
    }

    #[test]
    fn every_seed_scheduled_command_is_an_alias() {
        for cmd in [
            "run_boost_usage_tracker",
            "run_update_created_repos_by_language",
            "run_boost_github_activity_tracker",
            "run_boost_library_usage_dashboard",
            "run_clang_github_tracker",
            "collect_boost_libraries",
            "run_wg21_paper_tracker",
            "run_cppa_slack_tracker",
            "run_discord_activity_tracker",
            "run_boost_mailing_list_tracker",
        ] {
            assert!(Registry::canonical(cmd).is_some(), "{cmd}");
        }
        assert_eq!(
            Registry::canonical("run_wg21_paper_tracker"),
            Some("wg21-papers")
        );
    }

    #[test]
    fn unknown_and_not_available() {
        let r = Registry::new();
        assert!(matches!(r.lookup("nope"), Lookup::Unknown));
        assert!(matches!(
            r.lookup("run_cppa_slack_tracker"),
            Lookup::NotAvailable { name: "slack" }
        ));
    }
}
