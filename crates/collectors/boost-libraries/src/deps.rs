//! Library dependencies from the libraries' own `#include`s, the way
//! `boostdep` derives them: a library depends on every catalog library
//! whose headers its headers (`include/`) or sources (`src/`) include.
//!
//! The including side is the library whose header prefix the file's path
//! matches (`include/boost/numeric/conversion/cast.hpp` →
//! `numeric/conversion`) when the submodule holds that library, else the
//! submodule's primary library (the key equal to its name, else its first
//! key). The included side goes through [`LibraryMap`] with the release's
//! keys; headers of no known library are counted, not guessed.

use std::collections::BTreeMap;

use crate::headers::{LibraryMap, UNKNOWN_LIBRARY, boost_includes};

/// One edge: `library` includes headers of `depends_on` (`includes` lines).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dependency {
    pub library: String,
    pub depends_on: String,
    pub includes: u64,
}

/// The edges of one release and the include lines that mapped to no
/// library.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DependencyScan {
    pub edges: Vec<Dependency>,
    pub unknown_includes: u64,
}

/// The `#include <boost/...>` lines of one submodule: (file path in the
/// submodule, included header `boost/...`).
pub type Includes = Vec<(String, String)>;

/// Parse `git grep -z <rev> -- ...` output (`<rev>:<path>\0<line>\n`) into
/// [`Includes`]. Lines that are not Boost includes are skipped.
pub fn parse_git_grep(out: &[u8], rev: &str) -> Includes {
    let prefix = format!("{rev}:");
    let mut found = Includes::new();
    for line in out.split(|b| *b == b'\n') {
        let Some(nul) = line.iter().position(|b| *b == 0) else {
            continue;
        };
        let (path, text) = (&line[..nul], &line[nul + 1..]);
        let path = String::from_utf8_lossy(path);
        let path = path.strip_prefix(&prefix).unwrap_or(&path).to_owned();
        for header in boost_includes(&String::from_utf8_lossy(text)) {
            found.push((path.clone(), header));
        }
    }
    found
}

/// Dependencies of every library from the include lines of each
/// submodule. `keys_by_submodule`: the catalog keys each submodule holds;
/// `map`: every key of the release.
pub fn scan(
    map: &LibraryMap,
    keys_by_submodule: &BTreeMap<String, Vec<String>>,
    includes: &BTreeMap<String, Includes>,
) -> DependencyScan {
    let mut edges: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut unknown = 0u64;
    for (sub, lines) in includes {
        let Some(keys) = keys_by_submodule.get(sub).filter(|k| !k.is_empty()) else {
            continue;
        };
        let primary = keys
            .iter()
            .find(|k| *k == sub)
            .or_else(|| keys.first())
            .cloned()
            .unwrap_or_default();
        for (file, header) in lines {
            let from = file
                .strip_prefix("include/")
                .map(|h| map.library(h))
                .filter(|l| keys.contains(l))
                .unwrap_or_else(|| primary.clone());
            let to = map.library(header);
            if to == UNKNOWN_LIBRARY {
                unknown += 1;
                continue;
            }
            if to != from {
                *edges.entry((from, to)).or_insert(0) += 1;
            }
        }
    }
    DependencyScan {
        edges: edges
            .into_iter()
            .map(|((library, depends_on), includes)| Dependency {
                library,
                depends_on,
                includes,
            })
            .collect(),
        unknown_includes: unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_git_grep_output() {
        let out = b"abc:include/boost/json/value.hpp\0#include <boost/config.hpp>\nabc:src/x.cpp\0  #  include \"boost/assert.hpp\" // why\nabc:include/boost/json.hpp\0#include <vector>\n";
        assert_eq!(
            parse_git_grep(out, "abc"),
            vec![
                (
                    "include/boost/json/value.hpp".to_owned(),
                    "boost/config.hpp".to_owned()
                ),
                ("src/x.cpp".to_owned(), "boost/assert.hpp".to_owned()),
            ]
        );
    }

    #[test]
    fn edges_by_library_with_counts_and_unknown_bucket() {
        let map = LibraryMap::new(
            [
                "json",
                "config",
                "assert",
                "numeric/conversion",
                "numeric/ublas",
            ]
            .map(String::from),
        );
        let keys: BTreeMap<String, Vec<String>> = [
            ("json", vec!["json"]),
            ("numeric", vec!["numeric/conversion", "numeric/ublas"]),
            ("config", vec!["config"]),
        ]
        .into_iter()
        .map(|(s, k)| (s.to_owned(), k.into_iter().map(String::from).collect()))
        .collect();
        let inc = |v: &[(&str, &str)]| -> Includes {
            v.iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect()
        };
        let includes: BTreeMap<String, Includes> = [
            (
                "json".to_owned(),
                inc(&[
                    ("include/boost/json/value.hpp", "boost/config.hpp"),
                    (
                        "include/boost/json/value.hpp",
                        "boost/config/workaround.hpp",
                    ),
                    ("src/src.cpp", "boost/assert.hpp"),
                    ("include/boost/json/a.hpp", "boost/json/b.hpp"),
                    ("include/boost/json/a.hpp", "boost/detail/whatever.hpp"),
                ]),
            ),
            (
                "numeric".to_owned(),
                inc(&[
                    (
                        "include/boost/numeric/ublas/m.hpp",
                        "boost/numeric/conversion/cast.hpp",
                    ),
                    (
                        "include/boost/numeric/conversion/cast.hpp",
                        "boost/config.hpp",
                    ),
                ]),
            ),
            (
                "nokeys".to_owned(),
                inc(&[("include/x.hpp", "boost/config.hpp")]),
            ),
        ]
        .into_iter()
        .collect();
        let s = scan(&map, &keys, &includes);
        let e: Vec<(&str, &str, u64)> = s
            .edges
            .iter()
            .map(|d| (d.library.as_str(), d.depends_on.as_str(), d.includes))
            .collect();
        assert_eq!(
            e,
            vec![
                ("json", "assert", 1),
                ("json", "config", 2),
                ("numeric/conversion", "config", 1),
                ("numeric/ublas", "numeric/conversion", 1),
            ]
        );
        assert_eq!(s.unknown_includes, 1);
    }
}
