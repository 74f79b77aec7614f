//! The audit configuration file (`config/audit.yaml`, `--config`,
//! `BDC_AUDIT_CONFIG`).
//!
//! ```yaml
//! require_actor: false          # true: a write without an actor fails
//! cover_platform_tables: true   # bdc migrate covers the platform's tables
//! tables:                       # covered tables beyond the platform's
//!   activity_records:
//!     exclude: [internal_notes] # never stored, not even the name
//!     mask: [payload]           # stored as "***" (JSON masked whole)
//! retention:
//!   enabled: false              # bdc audit purge --execute needs true
//!   keep_days: 365
//!   tables:
//!     activity_records: {keep_days: 90}
//! expected_tables: [collector_runs, activity_records]
//! ```
//!
//! Unknown keys and bad values are errors naming the file, line and key.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// The fixed string that replaces masked values.
pub const MASK: &str = "***";

/// The platform's own tables, covered by `bdc migrate` by default.
pub const PLATFORM_TABLES: &[&str] = &[
    "collector_runs",
    "schedule_group_runs",
    "collector_checkpoints",
    "activity_records",
    // Greenness facts and pointers (covered once the greenness part is
    // migrated; skipped while the tables do not exist). The stage-message
    // queue and counters are operational state, not facts, and stay out.
    "greenness_queues",
    "greenness_project_green",
    "greenness_requests",
    "greenness_records",
    "greenness_dead_letters",
    // Identity hub: who merged or split whom, and when.
    "identities",
    "profiles",
    "identity_decisions",
];

/// An invalid configuration file.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {key}: {message}")]
pub struct ConfigError {
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: usize,
    pub key: String,
    pub message: String,
}

/// Per-table redaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableConfig {
    pub exclude: Vec<String>,
    pub mask: Vec<String>,
}

/// Retention policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub enabled: bool,
    pub keep_days: u32,
    pub tables: BTreeMap<String, u32>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            enabled: false,
            keep_days: 365,
            tables: BTreeMap::new(),
        }
    }
}

impl Retention {
    /// Days to keep the changes of `table`.
    pub fn keep_days_for(&self, table: &str) -> u32 {
        self.tables.get(table).copied().unwrap_or(self.keep_days)
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    pub require_actor: bool,
    pub cover_platform_tables: bool,
    pub tables: BTreeMap<String, TableConfig>,
    pub retention: Retention,
    pub expected_tables: Vec<String>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            require_actor: false,
            cover_platform_tables: true,
            tables: BTreeMap::new(),
            retention: Retention::default(),
            expected_tables: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    require_actor: Option<bool>,
    #[serde(default)]
    cover_platform_tables: Option<bool>,
    #[serde(default)]
    tables: Option<BTreeMap<String, Option<Spanned<RawTable>>>>,
    #[serde(default)]
    retention: Option<RawRetention>,
    #[serde(default)]
    expected_tables: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    #[serde(default)]
    mask: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    keep_days: Option<Spanned<i64>>,
    #[serde(default)]
    tables: Option<BTreeMap<String, Spanned<RawTableRetention>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTableRetention {
    keep_days: i64,
}

fn line_of(loc: &serde_saphyr::Location) -> usize {
    loc.line() as usize
}

impl AuditConfig {
    /// Every table the configuration covers: the platform's (when
    /// `cover_platform_tables`) and the listed ones, sorted, unique.
    pub fn covered_tables(&self) -> Vec<String> {
        let mut out: Vec<String> = if self.cover_platform_tables {
            PLATFORM_TABLES.iter().map(|t| (*t).to_owned()).collect()
        } else {
            Vec::new()
        };
        out.extend(self.tables.keys().cloned());
        out.sort();
        out.dedup();
        out
    }

    /// Redaction of `table` (empty when not configured).
    pub fn table(&self, table: &str) -> TableConfig {
        self.tables.get(table).cloned().unwrap_or_default()
    }

    /// Read a file; a missing file is an error.
    pub fn load(path: &Path) -> Result<AuditConfig, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: 0,
            key: "(file)".into(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &file)
    }

    /// Parse YAML text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<AuditConfig, ConfigError> {
        if text.trim().is_empty() {
            return Ok(AuditConfig::default());
        }
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| {
            let line = e.location().map(|l| line_of(&l)).unwrap_or(0);
            ConfigError {
                file: file.to_owned(),
                line,
                key: "(syntax)".into(),
                message: e.to_string(),
            }
        })?;
        let err = |line: usize, key: String, message: String| ConfigError {
            file: file.to_owned(),
            line,
            key,
            message,
        };
        let mut cfg = AuditConfig {
            require_actor: raw.require_actor.unwrap_or(false),
            cover_platform_tables: raw.cover_platform_tables.unwrap_or(true),
            ..AuditConfig::default()
        };
        for (name, table) in raw.tables.unwrap_or_default() {
            let key = format!("tables.{name}");
            if name.trim().is_empty() {
                return Err(err(0, key, "table name must not be empty".into()));
            }
            let mut tc = TableConfig::default();
            if let Some(table) = table {
                let line = line_of(&table.referenced);
                for (list, out, what) in [
                    (&table.value.exclude, &mut tc.exclude, "exclude"),
                    (&table.value.mask, &mut tc.mask, "mask"),
                ] {
                    for col in list {
                        if col.value.is_empty() {
                            return Err(err(
                                line_of(&col.referenced),
                                format!("{key}.{what}"),
                                "column name must not be empty".into(),
                            ));
                        }
                        if out.contains(&col.value) {
                            return Err(err(
                                line_of(&col.referenced),
                                format!("{key}.{what}"),
                                format!("column {:?} is listed twice", col.value),
                            ));
                        }
                        out.push(col.value.clone());
                    }
                }
                if let Some(both) = tc.exclude.iter().find(|c| tc.mask.contains(c)) {
                    return Err(err(
                        line,
                        key,
                        format!("column {both:?} is both excluded and masked; choose one"),
                    ));
                }
            }
            cfg.tables.insert(name, tc);
        }
        if let Some(r) = raw.retention {
            cfg.retention.enabled = r.enabled.unwrap_or(false);
            if let Some(days) = r.keep_days {
                cfg.retention.keep_days = valid_days(days.value).ok_or_else(|| {
                    err(
                        line_of(&days.referenced),
                        "retention.keep_days".into(),
                        format!("must be a whole number of days >= 1, not {}", days.value),
                    )
                })?;
            }
            for (name, t) in r.tables.unwrap_or_default() {
                let days = valid_days(t.value.keep_days).ok_or_else(|| {
                    err(
                        line_of(&t.referenced),
                        format!("retention.tables.{name}.keep_days"),
                        format!(
                            "must be a whole number of days >= 1, not {}",
                            t.value.keep_days
                        ),
                    )
                })?;
                cfg.retention.tables.insert(name, days);
            }
        }
        for t in raw.expected_tables.unwrap_or_default() {
            if t.value.is_empty() {
                return Err(err(
                    line_of(&t.referenced),
                    "expected_tables".into(),
                    "table name must not be empty".into(),
                ));
            }
            cfg.expected_tables.push(t.value);
        }
        Ok(cfg)
    }
}

fn valid_days(v: i64) -> Option<u32> {
    u32::try_from(v).ok().filter(|d| *d >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file() {
        let cfg = AuditConfig::parse(
            "require_actor: true\ntables:\n  t1:\n    exclude: [a]\n    mask: [b]\n  t2:\nretention:\n  enabled: true\n  keep_days: 30\n  tables:\n    t1: {keep_days: 7}\nexpected_tables: [t1]\n",
            "audit.yaml",
        )
        .unwrap();
        assert!(cfg.require_actor);
        assert_eq!(cfg.table("t1").exclude, vec!["a"]);
        assert_eq!(cfg.table("t1").mask, vec!["b"]);
        assert_eq!(cfg.table("t2"), TableConfig::default());
        assert!(cfg.retention.enabled);
        assert_eq!(cfg.retention.keep_days_for("t1"), 7);
        assert_eq!(cfg.retention.keep_days_for("x"), 30);
        assert_eq!(cfg.expected_tables, vec!["t1"]);
        assert!(cfg.covered_tables().contains(&"collector_runs".to_owned()));
        assert!(cfg.covered_tables().contains(&"t2".to_owned()));
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = AuditConfig::parse("retention:\n  keep_days: 0\n", "a.yaml").unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.key, "retention.keep_days");
        assert!(e.to_string().starts_with("a.yaml:2: retention.keep_days"));
        let e = AuditConfig::parse("tables:\n  t:\n    exclude: [a]\n    mask: [a]\n", "a.yaml")
            .unwrap_err();
        assert_eq!(e.key, "tables.t");
        let e = AuditConfig::parse("bogus: 1\n", "a.yaml").unwrap_err();
        assert!(e.message.contains("bogus"), "{e}");
        assert!(e.line >= 1);
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let cfg = AuditConfig::parse(
            include_str!("../../../config/audit.example.yaml"),
            "config/audit.example.yaml",
        )
        .unwrap();
        assert!(!cfg.require_actor);
        assert!(!cfg.retention.enabled);
        assert_eq!(cfg.expected_tables.len(), PLATFORM_TABLES.len());
    }

    #[test]
    fn empty_is_default() {
        assert_eq!(AuditConfig::parse("", "x").unwrap(), AuditConfig::default());
    }
}
