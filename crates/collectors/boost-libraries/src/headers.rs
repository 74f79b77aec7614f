//! Boost headers and libraries: the `#include <boost/...>` lines of a
//! source file, and which catalog library a `boost/...` header belongs
//! to. Shared by `boost-usage` (external repositories) and this crate's
//! dependency scan (the libraries' own includes).

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
}
