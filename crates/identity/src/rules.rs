//! The declarative file (`BDC_IDENTITIES_YAML`): merges, splits and bot
//! names applied on every run.
//!
//! ```yaml
//! merges:                    # each entry: two or more profile references
//!   - ["github:583231", "alice at example.com"]
//! splits:                    # a profile that is its own person
//!   - "mailing-list:bob@example.org"
//! bots: [boost-ci, "Jenkins"] # logins, names or addresses of bots
//! ```
//!
//! A reference is `source:source_id`, an address or a login.

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::HubError;

/// A parsed declarative file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub merges: Vec<(usize, Vec<String>)>,
    pub splits: Vec<(usize, String)>,
    pub bots: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    merges: Vec<Spanned<Vec<String>>>,
    #[serde(default)]
    splits: Vec<Spanned<String>>,
    #[serde(default)]
    bots: Vec<String>,
}

impl Rules {
    /// Parse `text` read from `file` (errors name file and line).
    pub fn parse(file: &str, text: &str) -> Result<Rules, HubError> {
        if text.trim().is_empty() {
            return Ok(Rules::default());
        }
        let raw: Raw = serde_saphyr::from_str(text).map_err(|e| HubError::Rules {
            file: file.to_owned(),
            line: e.location().map(|l| l.line() as usize).unwrap_or(0),
            message: e.to_string(),
        })?;
        let mut rules = Rules {
            bots: raw.bots,
            ..Rules::default()
        };
        for m in raw.merges {
            let line = m.referenced.line() as usize;
            if m.value.len() < 2 {
                return Err(HubError::Rules {
                    file: file.to_owned(),
                    line,
                    message: "merges: each entry lists at least two profile references".into(),
                });
            }
            rules.merges.push((line, m.value));
        }
        for s in raw.splits {
            rules.splits.push((s.referenced.line() as usize, s.value));
        }
        Ok(rules)
    }

    /// Read and parse a file.
    pub fn load(path: &std::path::Path) -> Result<Rules, HubError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| HubError::Rules {
            file: file.clone(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        Rules::parse(&file, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_locates_errors() {
        let r = Rules::parse(
            "f.yaml",
            "merges:\n  - [\"github:1\", \"a@b.org\"]\nsplits:\n  - \"git:x@y.org\"\nbots: [ci]\n",
        )
        .unwrap();
        assert_eq!(r.merges.len(), 1);
        assert_eq!(r.splits[0].1, "git:x@y.org");
        assert_eq!(r.bots, vec!["ci"]);
        let e = Rules::parse("f.yaml", "merges:\n  - [\"github:1\"]\n").unwrap_err();
        assert!(e.to_string().contains("f.yaml:2"), "{e}");
        let e = Rules::parse("f.yaml", "merge: []\n").unwrap_err();
        assert!(e.to_string().contains("f.yaml:1"), "{e}");
    }
}
