//! A fake GitHub REST v3 server for tests and benchmarks: a `wiremock`
//! responder that serves repositories, issues/PRs, comments, reviews,
//! commits and releases generated from the hand-built fixtures in
//! `tests/fixtures` (exact GitHub shapes), with `since` / `labels` /
//! `path` filters, `page` / `per_page` and `Link` pagination, weak ETags
//! and `304`s, per-token `X-RateLimit-*` accounting (refilled when the
//! shared clock passes the reset), and injectable failures.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bdc_http::Clock;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

pub fn fixture(name: &str) -> Value {
    let text = match name {
        "repo" => include_str!("../fixtures/repo.json"),
        "user" => include_str!("../fixtures/user.json"),
        "issue" => include_str!("../fixtures/issue.json"),
        "pull_issue" => include_str!("../fixtures/pull_issue.json"),
        "issue_comment" => include_str!("../fixtures/issue_comment.json"),
        "review_comment" => include_str!("../fixtures/review_comment.json"),
        "review" => include_str!("../fixtures/review.json"),
        "commit" => include_str!("../fixtures/commit.json"),
        "release" => include_str!("../fixtures/release.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

fn fnv(bytes: &[u8]) -> u64 {
    bdc_http::fnv1a64(bytes)
}

/// How much data a generated repository has.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub issues: usize,
    pub comments: usize,
    pub commits: usize,
    pub releases: usize,
}

impl Sizes {
    pub fn small() -> Sizes {
        Sizes {
            issues: 6,
            comments: 4,
            commits: 3,
            releases: 2,
        }
    }
}

/// One repository's data.
#[derive(Debug, Clone)]
pub struct RepoData {
    pub org: String,
    pub repo: Value,
    pub issues: Vec<Value>,
    pub issue_comments: Vec<Value>,
    pub review_comments: Vec<Value>,
    pub reviews: BTreeMap<i64, Vec<Value>>,
    /// Detail shape (with `stats` and `files`).
    pub commits: Vec<Value>,
    pub releases: Vec<Value>,
}

pub const LOGINS: [(&str, i64); 4] = [
    ("vinniefalco", 1503976),
    ("pdimov", 1007767),
    ("grisumbras", 2233001),
    ("sdarwin", 4455002),
];

fn user(i: usize) -> Value {
    let (login, id) = LOGINS[i % LOGINS.len()];
    json!({"login": login, "id": id, "html_url": format!("https://github.com/{login}"), "type": "User", "site_admin": false})
}

impl RepoData {
    /// Issue `i` is a pull request when `i % 3 == 0`; even issues carry the
    /// `clang` label; commit `i` touches `clang/…` when odd.
    pub fn generate(owner: &str, name: &str, repo_id: i64, s: Sizes) -> RepoData {
        let full = format!("{owner}/{name}");
        let api = format!("https://api.github.com/repos/{full}");
        let web = format!("https://github.com/{full}");
        let t0 = base_time();
        let mut repo = fixture("repo");
        repo["id"] = json!(repo_id);
        repo["name"] = json!(name);
        repo["full_name"] = json!(full);
        repo["owner"]["login"] = json!(owner);
        repo["html_url"] = json!(web);
        let mut issues = Vec::new();
        let mut reviews = BTreeMap::new();
        let mut review_comments = Vec::new();
        for i in 1..=s.issues {
            let is_pull = i % 3 == 0;
            let mut it = fixture(if is_pull { "pull_issue" } else { "issue" });
            let at = ts(t0 + Duration::minutes(i as i64));
            it["id"] = json!(repo_id * 1_000_000 + i as i64);
            it["number"] = json!(i);
            it["title"] = json!(format!("{name} item {i}"));
            it["user"] = user(i);
            it["created_at"] = json!(at);
            it["updated_at"] = json!(at);
            it["html_url"] = json!(format!(
                "{web}/{}/{i}",
                if is_pull { "pull" } else { "issues" }
            ));
            it["url"] = json!(format!("{api}/issues/{i}"));
            let labels = if i % 2 == 0 {
                json!([{"id": 9, "name": "clang", "color": "ededed", "default": false}])
            } else {
                json!([{"id": 1, "name": "bug", "color": "d73a4a", "default": true}])
            };
            it["labels"] = labels;
            it["comments"] = json!(0);
            if is_pull {
                it["pull_request"]["url"] = json!(format!("{api}/pulls/{i}"));
                let mut r = fixture("review");
                r["id"] = json!(repo_id * 1_000_000 + 500_000 + i as i64);
                r["user"] = user(i + 1);
                r["submitted_at"] = json!(at);
                reviews.insert(i as i64, vec![r]);
                let mut rc = fixture("review_comment");
                rc["id"] = json!(repo_id * 1_000_000 + 700_000 + i as i64);
                rc["pull_request_url"] = json!(format!("{api}/pulls/{i}"));
                rc["created_at"] = json!(at);
                rc["updated_at"] = json!(at);
                review_comments.push(rc);
            }
            issues.push(it);
        }
        let mut issue_comments = Vec::new();
        for c in 1..=s.comments {
            let n = if s.issues == 0 {
                1
            } else {
                (c - 1) % s.issues + 1
            };
            let at = ts(t0 + Duration::minutes(30 + c as i64));
            let mut it = fixture("issue_comment");
            it["id"] = json!(repo_id * 1_000_000 + 800_000 + c as i64);
            it["issue_url"] = json!(format!("{api}/issues/{n}"));
            it["html_url"] = json!(format!("{web}/issues/{n}#issuecomment-{c}"));
            it["user"] = user(c + 2);
            it["created_at"] = json!(at);
            it["updated_at"] = json!(at);
            issue_comments.push(it);
            if let Some(issue) = issues.get_mut(n - 1) {
                let k = issue["comments"].as_i64().unwrap_or(0);
                issue["comments"] = json!(k + 1);
            }
        }
        let mut commits = Vec::new();
        for k in 1..=s.commits {
            let sha = format!("{:040x}", (repo_id as u128) << 64 | k as u128);
            let at = ts(t0 + Duration::hours(k as i64));
            let mut c = fixture("commit");
            c["sha"] = json!(sha);
            c["commit"]["author"]["date"] = json!(at);
            c["commit"]["committer"]["date"] = json!(at);
            c["commit"]["message"] = json!(format!("Commit {k} of {name}\n\nBody."));
            c["html_url"] = json!(format!("{web}/commit/{sha}"));
            c["url"] = json!(format!("{api}/commits/{sha}"));
            if k % 4 == 0 {
                // An author email without a GitHub account.
                c["author"] = json!({});
                c["committer"] = Value::Null;
            } else {
                c["author"] = user(k);
                c["committer"] = user(k);
            }
            let path = if k % 2 == 1 {
                format!("clang/lib/file{k}.cpp")
            } else {
                format!("include/boost/{name}/file{k}.hpp")
            };
            c["files"][0]["filename"] = json!(path);
            commits.push(c);
        }
        let mut releases = Vec::new();
        for r in 1..=s.releases {
            let mut it = fixture("release");
            it["id"] = json!(repo_id * 1_000_000 + 900_000 + r as i64);
            it["tag_name"] = json!(format!("boost-1.8{r}.0"));
            it["name"] = json!(format!("Boost 1.8{r}.0"));
            it["created_at"] = json!(ts(t0 + Duration::days(r as i64)));
            it["published_at"] = json!(ts(t0 + Duration::days(r as i64)));
            releases.push(it);
        }
        RepoData {
            org: owner.to_owned(),
            repo,
            issues,
            issue_comments,
            review_comments,
            reviews,
            commits,
            releases,
        }
    }

    pub fn full_name(&self) -> String {
        self.repo["full_name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// A token's rate limit.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub remaining: u64,
    pub reset_at: i64,
}

/// A failure to serve instead of the normal answer.
#[derive(Debug, Clone)]
pub struct Injection {
    /// Matched against `path?query`.
    pub contains: String,
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    /// How many times; then it is gone.
    pub times: u32,
}

/// One served request.
#[derive(Debug, Clone)]
pub struct Logged {
    pub path: String,
    pub status: u16,
    pub token: Option<String>,
}

#[derive(Debug, Default)]
pub struct State {
    pub repos: Vec<RepoData>,
    pub users: BTreeMap<String, Value>,
    pub limits: BTreeMap<String, Limit>,
    /// Requests per window when a limit refills.
    pub window: u64,
    pub injections: Vec<Injection>,
    pub log: Vec<Logged>,
    /// The server's base URL (for `Link` headers).
    pub base: String,
}

/// The responder (clone it into `Mock::given(any()).respond_with(...)`).
#[derive(Clone)]
pub struct FakeGithub {
    pub state: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
}

impl FakeGithub {
    pub fn new(repos: Vec<RepoData>, clock: Arc<dyn Clock>) -> FakeGithub {
        let mut users = BTreeMap::new();
        for (i, (login, id)) in LOGINS.iter().enumerate() {
            let mut u = fixture("user");
            u["login"] = json!(login);
            u["id"] = json!(id);
            u["name"] = json!(format!("Name of {login}"));
            u["html_url"] = json!(format!("https://github.com/{login}"));
            u["url"] = json!(format!("https://api.github.com/users/{login}"));
            u["email"] = if i % 2 == 0 {
                json!(format!("{login}@example.com"))
            } else {
                Value::Null
            };
            users.insert((*login).to_owned(), u);
        }
        FakeGithub {
            state: Arc::new(Mutex::new(State {
                repos,
                users,
                window: 5000,
                ..State::default()
            })),
            clock,
        }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut st)
    }

    /// Served requests that cost a rate-limit point (everything but 304).
    pub fn points(&self) -> usize {
        self.with(|s| s.log.iter().filter(|l| l.status != 304).count())
    }

    pub fn requests(&self) -> usize {
        self.with(|s| s.log.len())
    }

    pub fn inject(
        &self,
        contains: &str,
        status: u16,
        body: &str,
        headers: &[(&str, &str)],
        times: u32,
    ) {
        self.with(|s| {
            s.injections.push(Injection {
                contains: contains.to_owned(),
                status,
                body: body.to_owned(),
                headers: headers
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                times,
            })
        });
    }

    /// Mount on a fresh `MockServer`.
    pub async fn start(self) -> wiremock::MockServer {
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::any())
            .respond_with(self.clone())
            .mount(&server)
            .await;
        let uri = server.uri();
        self.with(|s| s.base = uri);
        server
    }
}

fn page<'v>(items: &'v [Value], q: &BTreeMap<String, String>) -> (&'v [Value], bool) {
    let per = q
        .get("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30usize)
        .clamp(1, 100);
    let p = q
        .get("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    let start = ((p - 1) * per).min(items.len());
    let end = (start + per).min(items.len());
    (&items[start..end], end < items.len())
}

fn time_of(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    v.get(key)
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn since_filter(items: &[Value], q: &BTreeMap<String, String>, key: &str) -> Vec<Value> {
    let since = q
        .get("since")
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    let mut v: Vec<Value> = items
        .iter()
        .filter(|i| match since {
            Some(s) => time_of(i, key).is_some_and(|t| t >= s),
            None => true,
        })
        .cloned()
        .collect();
    v.sort_by_key(|i| (time_of(i, key), i["id"].as_i64()));
    v
}

fn list_shape(commit: &Value) -> Value {
    let mut c = commit.clone();
    if let Some(o) = c.as_object_mut() {
        o.remove("stats");
        o.remove("files");
    }
    c
}

impl State {
    fn repo(&self, owner: &str, name: &str) -> Option<&RepoData> {
        let full = format!("{owner}/{name}").to_ascii_lowercase();
        self.repos
            .iter()
            .find(|r| r.full_name().to_ascii_lowercase() == full)
    }

    /// `(items or object, has_next)`.
    fn route(&self, path: &str, q: &BTreeMap<String, String>) -> Option<(Value, bool)> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let paged = |items: Vec<Value>| {
            let (p, next) = page(&items, q);
            Some((Value::Array(p.to_vec()), next))
        };
        match parts.as_slice() {
            ["users", login] => self.users.get(*login).map(|u| (u.clone(), false)),
            ["orgs", org, "repos"] => paged(
                self.repos
                    .iter()
                    .filter(|r| r.org.eq_ignore_ascii_case(org))
                    .map(|r| r.repo.clone())
                    .collect(),
            ),
            ["repos", o, n] => self.repo(o, n).map(|r| (r.repo.clone(), false)),
            ["repos", o, n, rest @ ..] => {
                let r = self.repo(o, n)?;
                match rest {
                    ["issues"] => {
                        let mut items = since_filter(&r.issues, q, "updated_at");
                        if let Some(l) = q.get("labels") {
                            items.retain(|i| {
                                i["labels"]
                                    .as_array()
                                    .is_some_and(|ls| ls.iter().any(|x| x["name"] == json!(l)))
                            });
                        }
                        paged(items)
                    }
                    ["issues", "comments"] => {
                        paged(since_filter(&r.issue_comments, q, "updated_at"))
                    }
                    ["pulls", "comments"] => {
                        paged(since_filter(&r.review_comments, q, "updated_at"))
                    }
                    ["issues", num, "comments"] => {
                        let suffix = format!("/issues/{num}");
                        paged(
                            r.issue_comments
                                .iter()
                                .filter(|c| {
                                    c["issue_url"]
                                        .as_str()
                                        .is_some_and(|u| u.ends_with(&suffix))
                                })
                                .cloned()
                                .collect(),
                        )
                    }
                    ["pulls", num, "comments"] => {
                        let suffix = format!("/pulls/{num}");
                        paged(
                            r.review_comments
                                .iter()
                                .filter(|c| {
                                    c["pull_request_url"]
                                        .as_str()
                                        .is_some_and(|u| u.ends_with(&suffix))
                                })
                                .cloned()
                                .collect(),
                        )
                    }
                    ["pulls", num, "reviews"] => {
                        let n: i64 = num.parse().ok()?;
                        paged(r.reviews.get(&n).cloned().unwrap_or_default())
                    }
                    ["commits"] => {
                        let since = q
                            .get("since")
                            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                            .map(|t| t.with_timezone(&Utc));
                        let mut items: Vec<Value> = r
                            .commits
                            .iter()
                            .filter(|c| match since {
                                Some(s) => time_of(&c["commit"]["committer"], "date")
                                    .is_some_and(|t| t >= s),
                                None => true,
                            })
                            .filter(|c| match q.get("path") {
                                Some(p) => c["files"].as_array().is_some_and(|fs| {
                                    fs.iter().any(|f| {
                                        f["filename"]
                                            .as_str()
                                            .is_some_and(|n| n.starts_with(p.as_str()))
                                    })
                                }),
                                None => true,
                            })
                            .map(list_shape)
                            .collect();
                        items.sort_by_key(|c| {
                            std::cmp::Reverse(time_of(&c["commit"]["committer"], "date"))
                        });
                        paged(items)
                    }
                    ["commits", sha] => r
                        .commits
                        .iter()
                        .find(|c| c["sha"].as_str() == Some(*sha))
                        .map(|c| (c.clone(), false)),
                    ["releases"] => {
                        let mut items = r.releases.clone();
                        items.sort_by_key(|x| std::cmp::Reverse(time_of(x, "created_at")));
                        paged(items)
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

impl Respond for FakeGithub {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let url = &req.url;
        let path = url.path().to_owned();
        let q: BTreeMap<String, String> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let path_q = match url.query() {
            Some(qs) => format!("{path}?{qs}"),
            None => path.clone(),
        };
        let token = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim_start_matches("Bearer ").to_owned());
        let now = self.clock.now().timestamp();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let log = |st: &mut State, status: u16| {
            st.log.push(Logged {
                path: path_q.clone(),
                status,
                token: token.clone(),
            })
        };
        if let Some(pos) = st
            .injections
            .iter()
            .position(|i| i.times > 0 && path_q.contains(&i.contains))
        {
            let inj = st.injections[pos].clone();
            st.injections[pos].times -= 1;
            log(&mut st, inj.status);
            let mut t = ResponseTemplate::new(inj.status)
                .set_body_raw(inj.body.into_bytes(), "application/json");
            for (k, v) in &inj.headers {
                t = t.insert_header(k.as_str(), v.as_str());
            }
            return t;
        }
        let window = st.window;
        let limit = token.as_ref().and_then(|t| st.limits.get_mut(t)).map(|l| {
            if now >= l.reset_at {
                l.remaining = window;
                l.reset_at = now + 3600;
            }
            *l
        });
        if let Some(l) = limit
            && l.remaining == 0
        {
            log(&mut st, 403);
            return ResponseTemplate::new(403)
                .insert_header("X-RateLimit-Limit", window.to_string().as_str())
                .insert_header("X-RateLimit-Remaining", "0")
                .insert_header("X-RateLimit-Reset", l.reset_at.to_string().as_str())
                .set_body_json(json!({"message": "API rate limit exceeded for user ID 1.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}));
        }
        let Some((value, has_next)) = st.route(&path, &q) else {
            log(&mut st, 404);
            return ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}));
        };
        let body = serde_json::to_vec(&value).unwrap_or_default();
        let etag = format!("W/\"{:016x}\"", fnv(&body));
        let rl = |t: ResponseTemplate, remaining: Option<Limit>| match remaining {
            Some(l) => t
                .insert_header("X-RateLimit-Limit", window.to_string().as_str())
                .insert_header("X-RateLimit-Remaining", l.remaining.to_string().as_str())
                .insert_header("X-RateLimit-Reset", l.reset_at.to_string().as_str()),
            None => t,
        };
        let inm = req
            .headers
            .get("if-none-match")
            .and_then(|v| v.to_str().ok());
        if inm == Some(etag.as_str()) {
            log(&mut st, 304);
            return rl(
                ResponseTemplate::new(304).insert_header("ETag", etag.as_str()),
                limit,
            );
        }
        let limit = match token.as_ref().and_then(|t| st.limits.get_mut(t)) {
            Some(l) => {
                l.remaining = l.remaining.saturating_sub(1);
                Some(*l)
            }
            None => limit,
        };
        log(&mut st, 200);
        let mut t = ResponseTemplate::new(200)
            .set_body_raw(body, "application/json; charset=utf-8")
            .insert_header("ETag", etag.as_str());
        if has_next {
            let p = q.get("page").and_then(|v| v.parse().ok()).unwrap_or(1u64);
            let mut next =
                url::Url::parse(&format!("{}{}", st.base, path)).unwrap_or_else(|_| url.clone());
            {
                let mut qp = next.query_pairs_mut();
                qp.clear();
                for (k, v) in url.query_pairs() {
                    if k != "page" {
                        qp.append_pair(&k, &v);
                    }
                }
                qp.append_pair("page", &(p + 1).to_string());
            }
            t = t.insert_header("Link", format!("<{next}>; rel=\"next\"").as_str());
        }
        rl(t, limit)
    }
}
