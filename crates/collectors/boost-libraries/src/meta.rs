//! Parsing the superproject's `.gitmodules` and a library's
//! `meta/libraries.json`.

use serde_json::Value;

/// One `[submodule "name"]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submodule {
    pub name: String,
    pub path: String,
    pub url: String,
}

/// Parse `.gitmodules` (git-config syntax: sections, `key = value`,
/// comments with `#`/`;`). Sections without a path or url are skipped.
pub fn parse_gitmodules(text: &str) -> Vec<Submodule> {
    let mut out = Vec::new();
    let mut cur: Option<(String, Option<String>, Option<String>)> = None;
    let flush = |cur: &mut Option<(String, Option<String>, Option<String>)>,
                 out: &mut Vec<Submodule>| {
        if let Some((name, Some(path), Some(url))) = cur.take() {
            out.push(Submodule { name, path, url });
        }
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            flush(&mut cur, &mut out);
            let name = header
                .trim()
                .strip_prefix("submodule")
                .map(|r| r.trim().trim_matches('"').to_owned());
            cur = name.map(|n| (n, None, None));
            continue;
        }
        if let (Some(c), Some((k, v))) = (cur.as_mut(), line.split_once('=')) {
            let v = v.trim().trim_matches('"').to_owned();
            match k.trim().to_ascii_lowercase().as_str() {
                "path" => c.1 = Some(v),
                "url" => c.2 = Some(v),
                _ => {}
            }
        }
    }
    flush(&mut cur, &mut out);
    out
}

/// Resolve a submodule URL relative to the superproject's source
/// (`../config.git` next to `https://github.com/boostorg/boost.git`).
pub fn resolve_url(base: &str, url: &str) -> String {
    if !(url.starts_with("../") || url.starts_with("./")) {
        return url.to_owned();
    }
    let mut parts: Vec<&str> = base.trim_end_matches('/').split('/').collect();
    let mut rest = url;
    loop {
        if let Some(r) = rest.strip_prefix("../") {
            parts.pop();
            rest = r;
        } else if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else {
            break;
        }
    }
    // `./x` and `../x` are relative to the superproject's URL, which names
    // a repository, i.e. `../x` is a sibling.
    format!("{}/{rest}", parts.join("/"))
}

/// One library entry of `meta/libraries.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    pub key: String,
    pub name: Option<String>,
    pub authors: Vec<String>,
    pub maintainers: Vec<String>,
    pub description: Option<String>,
    pub category: Vec<String>,
    pub cxxstd: Option<String>,
    pub status: Option<String>,
}

/// The outcome of parsing one `libraries.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub libraries: Vec<Library>,
    /// Entries that are not objects or have no `key` (counted, reported).
    pub invalid_entries: u64,
}

/// Trimmed, without NUL (PostgreSQL text and jsonb refuse it).
fn clean(s: &str) -> String {
    s.replace('\0', "").trim().to_owned()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![clean(s)],
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(clean)).collect(),
        _ => Vec::new(),
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !clean(s).is_empty() => Some(clean(s)),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Parse `meta/libraries.json`: one object or an array of objects.
pub fn parse_libraries(bytes: &[u8]) -> Result<Parsed, serde_json::Error> {
    let v: Value = serde_json::from_slice(bytes)?;
    let entries = match v {
        Value::Array(a) => a,
        other => vec![other],
    };
    let mut out = Parsed::default();
    for e in entries {
        let Some(obj) = e.as_object() else {
            out.invalid_entries += 1;
            continue;
        };
        let Some(key) = text(obj.get("key")) else {
            out.invalid_entries += 1;
            continue;
        };
        out.libraries.push(Library {
            key,
            name: text(obj.get("name")),
            authors: strings(obj.get("authors")),
            maintainers: strings(obj.get("maintainers")),
            description: text(obj.get("description")),
            category: strings(obj.get("category")),
            cxxstd: text(obj.get("cxxstd")),
            status: text(obj.get("status")),
        });
    }
    Ok(out)
}

/// `boost-1.84.0` → `(1, 84, 0)`; other names sort after every release.
pub fn release_order(tag: &str) -> (u64, u64, u64, String) {
    let nums: Vec<u64> = tag
        .strip_prefix("boost-")
        .map(|v| v.split('.').map_while(|p| p.parse().ok()).collect())
        .unwrap_or_default();
    match nums.as_slice() {
        [a, b, c, ..] => (*a, *b, *c, tag.to_owned()),
        [a, b] => (*a, *b, 0, tag.to_owned()),
        _ => (u64::MAX, 0, 0, tag.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitmodules_and_urls() {
        let t = "[submodule \"config\"]\n\tpath = libs/config\n\turl = ../config.git\n\tfetchRecurseSubmodules = on-demand\n# c\n[submodule \"x\"]\n\tpath = tools/x\n[core]\n\tbare = false\n";
        let s = parse_gitmodules(t);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].path, "libs/config");
        assert_eq!(
            resolve_url("https://github.com/boostorg/boost.git", "../config.git"),
            "https://github.com/boostorg/config.git"
        );
        assert_eq!(resolve_url("/tmp/w/boost/", "../json"), "/tmp/w/json");
        assert_eq!(resolve_url("x", "https://h/y.git"), "https://h/y.git");
    }

    #[test]
    fn libraries_object_or_array() {
        let one = br#"{"key":"json","name":"JSON","authors":["A","B"],"maintainers":"M <m@x>","description":" d ","category":["IO"],"cxxstd":"11"}"#;
        let p = parse_libraries(one).unwrap();
        assert_eq!(p.libraries[0].maintainers, vec!["M <m@x>"]);
        assert_eq!(p.libraries[0].description.as_deref(), Some("d"));
        let many = br#"[{"key":"a"},{"name":"no key"},3,{"key":"b","cxxstd":3}]"#;
        let p = parse_libraries(many).unwrap();
        assert_eq!(p.libraries.len(), 2);
        assert_eq!(p.invalid_entries, 2);
        assert_eq!(p.libraries[1].cxxstd.as_deref(), Some("3"));
        assert!(parse_libraries(b"{nope").is_err());
        assert!(release_order("boost-1.9.0") < release_order("boost-1.10.0"));
        assert!(release_order("boost-1.84.0") < release_order("develop"));
    }
}
