//! Pure parsing: Boost `#include`s in a source file, header → Boost
//! library, and the Boost version a repository uses.

use std::collections::{BTreeSet, HashSet};

/// The library bucket of a header that maps to no known library.
pub const UNKNOWN_LIBRARY: &str = "unknown";

/// The Boost headers a file includes (`#include <boost/...>` or
/// `#include "boost/..."`), as `boost/...` paths.
pub fn boost_includes(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix('#') else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix("include") else {
            continue;
        };
        let rest = rest.trim_start();
        let close = match rest.chars().next() {
            Some('<') => '>',
            Some('"') => '"',
            _ => continue,
        };
        let inner = &rest[1..];
        let Some(end) = inner.find(close) else {
            continue;
        };
        let header = inner[..end].trim();
        if header.starts_with("boost/")
            && header.len() > "boost/".len()
            && !header.contains("..")
            && header
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
        {
            out.insert(header.to_owned());
        }
    }
    out
}

/// Top-level headers (`boost/<name>.hpp`) whose library is not `<name>`.
const TOP_LEVEL: &[(&str, &str)] = &[
    ("shared_ptr", "smart_ptr"),
    ("scoped_ptr", "smart_ptr"),
    ("scoped_array", "smart_ptr"),
    ("shared_array", "smart_ptr"),
    ("weak_ptr", "smart_ptr"),
    ("intrusive_ptr", "smart_ptr"),
    ("make_shared", "smart_ptr"),
    ("make_unique", "smart_ptr"),
    ("enable_shared_from_this", "smart_ptr"),
    ("noncopyable", "core"),
    ("ref", "core"),
    ("checked_delete", "core"),
    ("cstdint", "config"),
    ("config", "config"),
    ("version", "config"),
    ("limits", "config"),
    ("cstdlib", "config"),
    ("current_function", "assert"),
    ("next_prior", "utility"),
    ("operators", "utility"),
    ("call_traits", "utility"),
    ("compressed_pair", "utility"),
    ("mem_fn", "bind"),
    ("cast", "conversion"),
    ("implicit_cast", "conversion"),
    ("polymorphic_cast", "conversion"),
    ("integer_traits", "integer"),
    ("rational", "rational"),
    ("crc", "crc"),
    ("cerrno", "system"),
    ("throw_exception", "throw_exception"),
    ("exception_ptr", "exception"),
    ("type_index", "type_index"),
    ("pointer_cast", "smart_ptr"),
    ("blank", "variant"),
    ("visit_each", "bind"),
    ("foreach", "foreach"),
    ("function_output_iterator", "iterator"),
    ("progress", "timer"),
    ("nondet_random", "random"),
    ("multi_index_container", "multi_index"),
    ("unordered_map", "unordered"),
    ("unordered_set", "unordered"),
    ("ptr_container", "ptr_container"),
    ("date_time", "date_time"),
];

/// Library keys of a recent Boost release, used when the
/// `boost-libraries` catalog is empty (it has not run yet).
pub const BUILTIN_KEYS: &[&str] = &[
    "accumulators",
    "algorithm",
    "align",
    "any",
    "asio",
    "assert",
    "atomic",
    "beast",
    "bimap",
    "bind",
    "bloom",
    "callable_traits",
    "charconv",
    "chrono",
    "circular_buffer",
    "cobalt",
    "compat",
    "compute",
    "concept_check",
    "config",
    "container",
    "container_hash",
    "context",
    "contract",
    "conversion",
    "convert",
    "core",
    "coroutine",
    "coroutine2",
    "crc",
    "date_time",
    "describe",
    "dll",
    "dynamic_bitset",
    "endian",
    "exception",
    "fiber",
    "filesystem",
    "flyweight",
    "foreach",
    "format",
    "function",
    "function_types",
    "functional",
    "functional/factory",
    "functional/forward",
    "functional/overloaded_function",
    "fusion",
    "geometry",
    "gil",
    "graph",
    "graph_parallel",
    "hana",
    "hash2",
    "heap",
    "histogram",
    "hof",
    "icl",
    "integer",
    "interprocess",
    "intrusive",
    "io",
    "iostreams",
    "iterator",
    "json",
    "lambda",
    "lambda2",
    "leaf",
    "lexical_cast",
    "local_function",
    "locale",
    "lockfree",
    "log",
    "logic",
    "math",
    "metaparse",
    "move",
    "mp11",
    "mpi",
    "mpl",
    "msm",
    "multi_array",
    "multi_index",
    "multiprecision",
    "mysql",
    "nowide",
    "numeric/conversion",
    "numeric/interval",
    "numeric/odeint",
    "numeric/ublas",
    "openmethod",
    "optional",
    "outcome",
    "parameter",
    "parameter_python",
    "parser",
    "pfr",
    "phoenix",
    "poly_collection",
    "polygon",
    "pool",
    "predef",
    "preprocessor",
    "process",
    "program_options",
    "property_map",
    "property_map_parallel",
    "property_tree",
    "proto",
    "ptr_container",
    "python",
    "qvm",
    "random",
    "range",
    "ratio",
    "rational",
    "redis",
    "regex",
    "safe_numerics",
    "scope",
    "scope_exit",
    "serialization",
    "signals2",
    "smart_ptr",
    "sort",
    "spirit",
    "stacktrace",
    "statechart",
    "static_assert",
    "static_string",
    "stl_interfaces",
    "system",
    "test",
    "thread",
    "throw_exception",
    "timer",
    "tokenizer",
    "tti",
    "tuple",
    "type_erasure",
    "type_index",
    "type_traits",
    "typeof",
    "units",
    "unordered",
    "url",
    "utility",
    "uuid",
    "variant",
    "variant2",
    "vmd",
    "wave",
    "winapi",
    "xpressive",
    "yap",
];

/// Maps headers to Boost libraries with the catalog's keys.
#[derive(Debug, Clone, Default)]
pub struct LibraryMap {
    keys: HashSet<String>,
}

impl LibraryMap {
    pub fn new(keys: impl IntoIterator<Item = String>) -> Self {
        LibraryMap {
            keys: keys.into_iter().collect(),
        }
    }

    /// The built-in list ([`BUILTIN_KEYS`]).
    pub fn builtin() -> Self {
        Self::new(BUILTIN_KEYS.iter().map(|k| (*k).to_owned()))
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The library of `boost/...` header `header`: the longest catalog key
    /// that is a prefix of its path (without extension, by whole segments:
    /// `boost/numeric/conversion/cast.hpp` → `numeric/conversion`,
    /// `boost/lexical_cast.hpp` → `lexical_cast`), else a known top-level
    /// header, else [`UNKNOWN_LIBRARY`].
    pub fn library(&self, header: &str) -> String {
        let Some(rest) = header.strip_prefix("boost/") else {
            return UNKNOWN_LIBRARY.to_owned();
        };
        let stem = match rest.rsplit_once('.') {
            Some((s, ext)) if !ext.contains('/') => s,
            _ => rest,
        };
        let segs: Vec<&str> = stem.split('/').filter(|s| !s.is_empty()).collect();
        for n in (1..=segs.len()).rev() {
            let key = segs[..n].join("/");
            if self.keys.contains(&key) {
                return key;
            }
        }
        if segs.len() == 1
            && let Some((_, lib)) = TOP_LEVEL.iter().find(|(h, _)| Some(h) == segs.first())
            && (self.keys.is_empty() || self.keys.contains(*lib))
        {
            return (*lib).to_owned();
        }
        UNKNOWN_LIBRARY.to_owned()
    }
}

/// How a repository gets Boost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoostMode {
    /// A vendored copy (`.../boost/version.hpp` in the tree).
    Embedded,
    /// A build dependency (CMake, Conan, vcpkg).
    Dependency,
    Unknown,
}

impl BoostMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BoostMode::Embedded => "embedded",
            BoostMode::Dependency => "dependency",
            BoostMode::Unknown => "unknown",
        }
    }
}

/// `#define BOOST_VERSION 108300` → `1.83.0`.
pub fn version_from_version_hpp(text: &str) -> Option<String> {
    for line in text.lines() {
        let l = line.trim_start();
        let Some(rest) = l.strip_prefix('#') else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix("define") else {
            continue;
        };
        let mut it = rest.split_whitespace();
        if it.next() != Some("BOOST_VERSION") {
            continue;
        }
        let n: u64 = it.next()?.parse().ok()?;
        let (major, minor, patch) = (n / 100_000, n / 100 % 1000, n % 100);
        if major == 0 {
            return None;
        }
        return Some(format!("{major}.{minor}.{patch}"));
    }
    None
}

/// A version token at the start of `s` (`1.83`, `1.83.0`).
fn leading_version(s: &str) -> Option<String> {
    let v: String = s
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let v = v.trim_end_matches('.');
    let parts: Vec<&str> = v.split('.').collect();
    if parts.len() >= 2 && parts.iter().all(|p| !p.is_empty()) && parts.first() == Some(&"1") {
        Some(v.to_owned())
    } else {
        None
    }
}

/// What a build file says about Boost: (mentions Boost, version).
pub fn version_from_build_file(path: &str, text: &str) -> (bool, Option<String>) {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    if name == "vcpkg.json" {
        return vcpkg(text);
    }
    let mut mentioned = false;
    let lower = text.to_ascii_lowercase();
    if name.starts_with("conanfile") {
        // `boost/1.83.0` in [requires] or requires = "boost/1.83.0".
        let mut from = 0;
        while let Some(i) = lower[from..].find("boost/") {
            let at = from + i;
            let before = lower[..at].chars().next_back();
            if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                mentioned = true;
                if let Some(v) = leading_version(&text[at + "boost/".len()..]) {
                    return (true, Some(v));
                }
            }
            from = at + "boost/".len();
        }
        return (mentioned, None);
    }
    // CMake: find_package(Boost 1.70 ...), GIT_TAG boost-1.84.0.
    let mut from = 0;
    while let Some(i) = lower[from..].find("find_package") {
        let at = from + i + "find_package".len();
        let rest = text[at..].trim_start();
        if let Some(rest) = rest.strip_prefix('(') {
            let rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix("Boost")
                && after.starts_with(|c: char| c.is_whitespace() || c == ')')
            {
                mentioned = true;
                if let Some(v) = leading_version(after.trim_start()) {
                    return (true, Some(v));
                }
            }
        }
        from = at;
    }
    let mut from = 0;
    while let Some(i) = text[from..].find("GIT_TAG") {
        let at = from + i + "GIT_TAG".len();
        let rest = text[at..].trim_start();
        if let Some(v) = rest.strip_prefix("boost-") {
            mentioned = true;
            if let Some(v) = leading_version(v) {
                return (true, Some(v));
            }
        }
        from = at;
    }
    (mentioned, None)
}

fn vcpkg(text: &str) -> (bool, Option<String>) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return (false, None);
    };
    let is_boost = |n: &str| n == "boost" || n.starts_with("boost-");
    let mut mentioned = false;
    let mut version = None;
    if let Some(deps) = v.get("dependencies").and_then(|d| d.as_array()) {
        for d in deps {
            let (name, ver) = match d {
                serde_json::Value::String(s) => (s.as_str(), None),
                serde_json::Value::Object(o) => (
                    o.get("name").and_then(|n| n.as_str()).unwrap_or(""),
                    o.get("version>=").and_then(|n| n.as_str()),
                ),
                _ => ("", None),
            };
            if is_boost(name) {
                mentioned = true;
                if version.is_none() {
                    version = ver.and_then(|s| leading_version(s.split('#').next().unwrap_or(s)));
                }
            }
        }
    }
    if let Some(ovs) = v.get("overrides").and_then(|d| d.as_array()) {
        for o in ovs {
            let name = o.get("name").and_then(|n| n.as_str()).unwrap_or("");
            if is_boost(name) {
                mentioned = true;
                if let Some(s) = o.get("version").and_then(|n| n.as_str()) {
                    version = leading_version(s).or(version);
                }
            }
        }
    }
    (mentioned, version)
}

/// Whether a tree path is a build file worth reading for the version.
pub fn is_build_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let lower = name.to_ascii_lowercase();
    lower == "cmakelists.txt"
        || lower.ends_with(".cmake")
        || lower == "conanfile.txt"
        || lower == "conanfile.py"
        || lower == "vcpkg.json"
}

/// A vendored copy of Boost: the path has a `boost` directory that is not
/// the repository's own include of it (`/boost/` anywhere, or a top-level
/// `boost/`).
pub fn is_vendored(path: &str) -> bool {
    path.starts_with("boost/") || path.contains("/boost/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_boost_includes() {
        let src = "#include <boost/asio.hpp>\n  #  include \"boost/json/value.hpp\" // x\n#include <vector>\n//#include <boost/no.hpp>\n#include <boost/../etc/passwd>\n#include <boost/";
        let got: Vec<String> = boost_includes(src).into_iter().collect();
        assert_eq!(got, ["boost/asio.hpp", "boost/json/value.hpp"]);
    }

    #[test]
    fn maps_headers_to_libraries() {
        let m = LibraryMap::new(
            [
                "asio",
                "numeric/conversion",
                "lexical_cast",
                "smart_ptr",
                "core",
            ]
            .map(String::from),
        );
        assert_eq!(m.library("boost/asio/ip/tcp.hpp"), "asio");
        assert_eq!(m.library("boost/asio.hpp"), "asio");
        assert_eq!(
            m.library("boost/numeric/conversion/cast.hpp"),
            "numeric/conversion"
        );
        assert_eq!(m.library("boost/lexical_cast.hpp"), "lexical_cast");
        assert_eq!(m.library("boost/shared_ptr.hpp"), "smart_ptr");
        assert_eq!(m.library("boost/noncopyable.hpp"), "core");
        assert_eq!(m.library("boost/detail/foo.hpp"), UNKNOWN_LIBRARY);
        assert_eq!(
            m.library("boost/cstdint.hpp"),
            UNKNOWN_LIBRARY,
            "config not in the catalog"
        );
        assert_eq!(LibraryMap::default().library("boost/cstdint.hpp"), "config");
        let b = LibraryMap::builtin();
        assert_eq!(b.library("boost/beast/http.hpp"), "beast");
        assert_eq!(b.library("boost/numeric/ublas/matrix.hpp"), "numeric/ublas");
        assert_eq!(b.library("boost/make_shared.hpp"), "smart_ptr");
    }

    #[test]
    fn detects_versions() {
        assert_eq!(
            version_from_version_hpp("//x\n#define BOOST_VERSION 108300\n").as_deref(),
            Some("1.83.0")
        );
        assert_eq!(
            version_from_version_hpp("#define BOOST_LIB_VERSION \"1_83\""),
            None
        );
        let cmake = "cmake_minimum_required(VERSION 3.20)\nfind_package( Boost 1.70 REQUIRED COMPONENTS system)\n";
        assert_eq!(
            version_from_build_file("CMakeLists.txt", cmake),
            (true, Some("1.70".into()))
        );
        assert_eq!(
            version_from_build_file("CMakeLists.txt", "find_package(Boost REQUIRED)"),
            (true, None)
        );
        assert_eq!(
            version_from_build_file(
                "deps.cmake",
                "FetchContent_Declare(boost\n GIT_TAG boost-1.84.0)"
            ),
            (true, Some("1.84.0".into()))
        );
        assert_eq!(
            version_from_build_file("conanfile.txt", "[requires]\nboost/1.82.0\nfmt/10.0.0\n"),
            (true, Some("1.82.0".into()))
        );
        assert_eq!(
            version_from_build_file(
                "vcpkg.json",
                r#"{"dependencies": ["fmt", {"name": "boost-asio", "version>=": "1.81.0#2"}]}"#
            ),
            (true, Some("1.81.0".into()))
        );
        assert_eq!(
            version_from_build_file(
                "vcpkg.json",
                r#"{"dependencies": ["boost"], "overrides": [{"name": "boost", "version": "1.80.0"}]}"#
            ),
            (true, Some("1.80.0".into()))
        );
        assert_eq!(
            version_from_build_file("vcpkg.json", "not json"),
            (false, None)
        );
        assert_eq!(
            version_from_build_file("CMakeLists.txt", "project(x)"),
            (false, None)
        );
        assert!(is_build_file("cmake/Deps.cmake") && is_build_file("conanfile.py"));
        assert!(is_vendored("third_party/boost/asio.hpp") && is_vendored("boost/version.hpp"));
        assert!(!is_vendored("src/main.cpp"));
    }
}
