//! A stand-in of the GitHub REST API for `boost-usage` (wiremock), in the
//! documented shapes; shared by the tests and `bdc-bench`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

#[derive(Clone)]
pub struct FakeRepo {
    pub stars: u64,
    pub created: String,
    pub pushed: String,
    pub files: BTreeMap<String, String>,
}

#[derive(Default)]
pub struct Model {
    pub repos: BTreeMap<String, FakeRepo>,
    /// Search pages past this one answer 422.
    pub max_page: Option<u64>,
    /// The next N code searches answer a 403 secondary limit.
    pub code_limits: u32,
    pub broken_search: bool,
    /// GraphQL answers `502` (the collector falls back to the contents API).
    pub graphql_down: bool,
    pub requests: Vec<String>,
}

#[derive(Clone, Default)]
pub struct Fake(pub Arc<Mutex<Model>>);

fn b64_wrapped(text: &str) -> String {
    let enc = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    enc.as_bytes()
        .chunks(60)
        .map(|c| format!("{}\n", String::from_utf8_lossy(c)))
        .collect()
}

fn blob_sha(text: &str) -> String {
    format!("{:040x}", bdc_http::fnv1a64(text.as_bytes()))
}

fn repo_json(name: &str, r: &FakeRepo) -> Value {
    json!({"id": bdc_http::fnv1a64(name.as_bytes()) % 1_000_000, "full_name": name,
           "name": name.split('/').nth(1), "private": false, "fork": false,
           "stargazers_count": r.stars, "language": "C++",
           "created_at": r.created, "pushed_at": r.pushed, "default_branch": "main"})
}

fn err(status: u16, message: &str) -> (u16, Value) {
    (
        status,
        json!({"message": message, "documentation_url": "https://docs.github.com/rest"}),
    )
}

impl Model {
    fn search_repos(&self, q: &str, per: u64, page: u64) -> (u16, Value) {
        let mut min_stars = 0;
        let mut range: Option<(&str, String, String)> = None;
        for part in q.split(' ') {
            if let Some(s) = part.strip_prefix("stars:>") {
                min_stars = s.parse().unwrap();
            }
            for field in ["pushed", "created"] {
                if let Some(r) = part.strip_prefix(&format!("{field}:")) {
                    let (a, b) = r.split_once("..").unwrap();
                    range = Some((field, a.to_owned(), b.to_owned()));
                }
            }
        }
        let (field, a, b) = range.unwrap();
        let matched: Vec<(&String, &FakeRepo)> = self
            .repos
            .iter()
            .filter(|(_, r)| r.stars > min_stars)
            .filter(|(_, r)| {
                let d = if field == "pushed" {
                    &r.pushed
                } else {
                    &r.created
                };
                d[..10] >= *a.as_str() && d[..10] <= *b.as_str()
            })
            .collect();
        if self.max_page.is_some_and(|m| page > m) || page * per > 1000 {
            return err(422, "Only the first 1000 search results are available");
        }
        let items: Vec<Value> = matched
            .iter()
            .skip(((page - 1) * per) as usize)
            .take(per as usize)
            .map(|(n, r)| repo_json(n, r))
            .collect();
        (
            200,
            json!({"total_count": matched.len(), "incomplete_results": false, "items": items}),
        )
    }

    fn search_code(&self, q: &str, per: u64, page: u64) -> (u16, Value) {
        let wanted: Vec<&str> = q
            .split(' ')
            .filter_map(|p| p.strip_prefix("repo:"))
            .collect();
        assert!(q.starts_with("\"#include <boost/\""), "{q}");
        assert!(q.len() < 256, "{q}");
        let mut hits = Vec::new();
        for name in wanted {
            if let Some(r) = self.repos.get(name) {
                for (path, text) in &r.files {
                    if text.contains("#include <boost/") {
                        hits.push(json!({
                            "name": path.rsplit('/').next(), "path": path, "sha": blob_sha(text),
                            "url": "u", "git_url": "g", "html_url": "h", "score": 1.0,
                            "repository": {"id": 1, "full_name": name, "private": false},
                            "text_matches": [{"object_type": "FileContent", "property": "content",
                                "fragment": "#include <boost/", "matches": []}]
                        }));
                    }
                }
            }
        }
        let total = hits.len();
        let items: Vec<Value> = hits
            .into_iter()
            .skip(((page - 1) * per) as usize)
            .take(per as usize)
            .collect();
        (
            200,
            json!({"total_count": total, "incomplete_results": false, "items": items}),
        )
    }

    fn answer(&mut self, path: &str, query: &BTreeMap<String, String>) -> (u16, Value) {
        let per: u64 = query
            .get("per_page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(30);
        let page: u64 = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let q = query.get("q").cloned().unwrap_or_default();
        if path == "/search/repositories" {
            return self.search_repos(&q, per, page);
        }
        if path == "/search/code" {
            if self.code_limits > 0 {
                self.code_limits -= 1;
                return err(
                    403,
                    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                );
            }
            return self.search_code(&q, per, page);
        }
        let parts: Vec<&str> = path.trim_matches('/').splitn(5, '/').collect();
        match parts.as_slice() {
            ["repos", o, r] => match self.repos.get(&format!("{o}/{r}")) {
                Some(repo) => (200, repo_json(&format!("{o}/{r}"), repo)),
                None => err(404, "Not Found"),
            },
            ["repos", o, r, "git", rest] if rest.starts_with("trees/") => {
                match self.repos.get(&format!("{o}/{r}")) {
                    Some(repo) => {
                        let tree: Vec<Value> = repo
                            .files
                            .iter()
                            .map(|(p, t)| json!({"path": p, "mode": "100644", "type": "blob", "sha": blob_sha(t), "size": t.len()}))
                            .collect();
                        (
                            200,
                            json!({"sha": "head", "url": "u", "tree": tree, "truncated": false}),
                        )
                    }
                    None => err(404, "Not Found"),
                }
            }
            ["repos", o, r, "contents", p] => {
                let p = percent_decode(p);
                match self
                    .repos
                    .get(&format!("{o}/{r}"))
                    .and_then(|x| x.files.get(&p))
                {
                    // Over 1 MB: GitHub answers `encoding: none` and no content.
                    Some(text) if p.ends_with(".huge.cpp") => (
                        200,
                        json!({
                            "type": "file", "encoding": "none", "size": 2_000_000,
                            "name": p.rsplit('/').next(), "path": p, "content": "",
                            "sha": blob_sha(text), "url": "u", "git_url": null, "html_url": null,
                            "download_url": null, "_links": {}
                        }),
                    ),
                    Some(text) if p.ends_with(".mangled.cpp") => (
                        200,
                        json!({
                            "type": "file", "encoding": "base64", "size": text.len(),
                            "name": p.rsplit('/').next(), "path": p, "content": "@@not base64@@",
                            "sha": blob_sha(text), "url": "u", "git_url": null, "html_url": null,
                            "download_url": null, "_links": {}
                        }),
                    ),
                    Some(text) => (
                        200,
                        json!({
                            "type": "file", "encoding": "base64", "size": text.len(),
                            "name": p.rsplit('/').next(), "path": p, "content": b64_wrapped(text),
                            "sha": blob_sha(text), "url": "u", "git_url": null, "html_url": null,
                            "download_url": null, "_links": {}
                        }),
                    ),
                    None => err(404, "Not Found"),
                }
            }
            _ => err(404, "Not Found"),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

impl Respond for Fake {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut m = self.0.lock().unwrap();
        let path = req.url.path().to_owned();
        let query: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
        m.requests.push(req.url.to_string());
        if req.method.as_str() == "POST" && path == "/graphql" {
            if m.graphql_down {
                return ResponseTemplate::new(502).set_body_string("bad gateway");
            }
            return ResponseTemplate::new(200)
                .insert_header("Content-Type", "application/json; charset=utf-8")
                .set_body_json(m.graphql(&req.body));
        }
        if m.broken_search && path.starts_with("/search/") {
            return ResponseTemplate::new(200).set_body_string("{\"total_count\": \"many\"");
        }
        let (status, body) = m.answer(&path, &query);
        let text = body.to_string();
        let mut r = ResponseTemplate::new(status)
            .insert_header("Content-Type", "application/json; charset=utf-8")
            .insert_header("X-RateLimit-Limit", "5000")
            .insert_header("X-RateLimit-Remaining", "4000");
        if status == 403 {
            return r.insert_header("Retry-After", "30").set_body_string(text);
        }
        if status == 200 {
            let etag = format!("W/\"{:016x}\"", bdc_http::fnv1a64(text.as_bytes()));
            if req
                .headers
                .get("if-none-match")
                .and_then(|v| v.to_str().ok())
                == Some(etag.as_str())
            {
                return ResponseTemplate::new(304).insert_header("ETag", etag.as_str());
            }
            r = r.insert_header("ETag", etag.as_str());
        }
        r.set_body_string(text)
    }
}

impl Model {
    /// GitHub GraphQL: `repository(owner, name) { fN: object(expression:
    /// $eN) { ... on Blob { text isBinary isTruncated } } }` with the
    /// expressions in `variables` (`HEAD:<path>`).
    fn graphql(&self, body: &[u8]) -> Value {
        let Ok(req) = serde_json::from_slice::<Value>(body) else {
            return json!({"errors": [{"message": "Problems parsing JSON"}]});
        };
        let vars = &req["variables"];
        let name = format!(
            "{}/{}",
            vars["owner"].as_str().unwrap_or(""),
            vars["name"].as_str().unwrap_or("")
        );
        let Some(r) = self.repos.get(&name) else {
            return json!({"data": {"repository": null}, "errors": [{"type": "NOT_FOUND",
                "path": ["repository"], "message": format!("Could not resolve to a Repository with the name '{name}'.")}]});
        };
        let mut repo = serde_json::Map::new();
        if let Some(obj) = vars.as_object() {
            for (k, v) in obj {
                let Some(i) = k.strip_prefix('e') else {
                    continue;
                };
                let path = v
                    .as_str()
                    .and_then(|e| e.strip_prefix("HEAD:"))
                    .unwrap_or("");
                // As the REST side: `.huge.` files are over the size
                // GraphQL returns whole, `.mangled.` ones are binary.
                let blob = match r.files.get(path) {
                    Some(text) if path.contains(".huge.") => {
                        json!({"text": &text[..text.len().min(8)], "isBinary": false, "isTruncated": true})
                    }
                    Some(_) if path.contains(".mangled.") => {
                        json!({"text": null, "isBinary": true, "isTruncated": false})
                    }
                    Some(text) => json!({"text": text, "isBinary": false, "isTruncated": false}),
                    None => Value::Null,
                };
                repo.insert(format!("f{i}"), blob);
            }
        }
        json!({"data": {"repository": repo}})
    }
}

pub fn repo(stars: u64, created: &str, pushed: &str, files: &[(&str, &str)]) -> FakeRepo {
    FakeRepo {
        stars,
        created: format!("{created}T08:00:00Z"),
        pushed: format!("{pushed}T09:30:00Z"),
        files: files
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect(),
    }
}
