//! Pure parsing: Boost `#include`s in a source file, header → Boost
//! library, and the Boost version a repository uses.

pub use bdc_collector_boost_libraries::headers::{
    BUILTIN_KEYS, LibraryMap, UNKNOWN_LIBRARY, boost_includes,
};

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
