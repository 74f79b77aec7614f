//! Greenness configuration YAML (`--config` or `BDC_GREENNESS_YAML`):
//!
//! ```yaml
//! queues:
//!   - name: main
//!     repo: /srv/git/boost.git        # local path or remote URL
//!     ref: develop
//!     poll_interval_seconds: 60
//!     build: ./b2 headers             # optional whole-repo build
//!     timeout_seconds: 3600           # optional, per build command
//!     projects:
//!       - name: json
//!         paths: ["libs/json/**"]
//!         build: ./b2 libs/json/test
//!     projects_command: ./list-projects   # optional: prints `name glob...` lines
//! hooks:
//!   - kind: webhook
//!     url: https://ci.example/hook
//!     secret: s3cret
//!     events: [transition, degree]
//!   - kind: command
//!     command: ./notify.sh
//!     events: [transition]
//! ```
//!
//! Unknown keys and bad values are errors naming the file, line and key.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::model::EventKind;

/// A configuration error, located.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read greenness config {file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: project list command {command:?} for queue {queue:?} failed: {detail}")]
    ProjectsCommand {
        file: String,
        queue: String,
        command: String,
        detail: String,
    },
}

/// A project: a name, the paths it owns, its build command and the
/// projects it depends on (built first; a change to a dependency affects
/// its dependents; a dependency that does not pass leaves its dependents
/// `not built`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProjectSpec {
    pub name: String,
    pub paths: Vec<String>,
    pub build: Option<String>,
    #[serde(default)]
    pub deps: Vec<String>,
    /// Listed by the queue's `projects_command` (re-evaluated per request),
    /// not by the YAML.
    #[serde(default)]
    pub from_command: bool,
}

/// A queue to validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub name: String,
    pub repo: String,
    pub ref_name: String,
    pub poll_interval_seconds: u64,
    pub build: Option<String>,
    pub timeout_seconds: u64,
    pub projects: Vec<ProjectSpec>,
    /// A command printing more projects (run by [`GreennessConfig::from_path`]
    /// to validate it, then again for every request).
    pub projects_command: Option<String>,
    /// Directory the `projects_command` runs in (the config file's).
    pub projects_command_dir: Option<std::path::PathBuf>,
}

impl QueueSpec {
    /// Projects owning at least one of `paths`, and (transitively) every
    /// project depending on one of them, in configuration order.
    pub fn affected_projects(&self, paths: &[String]) -> Vec<String> {
        let mut affected: BTreeSet<&str> = self
            .projects
            .iter()
            .filter(|p| {
                paths
                    .iter()
                    .any(|path| p.paths.iter().any(|g| glob_match(g, path)))
            })
            .map(|p| p.name.as_str())
            .collect();
        loop {
            let before = affected.len();
            for p in &self.projects {
                if p.deps.iter().any(|d| affected.contains(d.as_str())) {
                    affected.insert(p.name.as_str());
                }
            }
            if affected.len() == before {
                break;
            }
        }
        self.projects
            .iter()
            .filter(|p| affected.contains(p.name.as_str()))
            .map(|p| p.name.clone())
            .collect()
    }

    /// The projects with the ones of `projects_command` replaced by
    /// `listed` (a fresh evaluation), checked like the YAML ones.
    pub fn with_listed_projects(&self, listed: Vec<ProjectSpec>) -> Result<QueueSpec, String> {
        let mut spec = self.clone();
        spec.projects.retain(|p| !p.from_command);
        for mut p in listed {
            if spec.project(&p.name).is_some() {
                return Err(format!("duplicate project {:?}", p.name));
            }
            if spec.build.is_none() && p.build.is_none() {
                return Err(format!(
                    "project {:?} has no build command and the queue has no `build`",
                    p.name
                ));
            }
            p.from_command = true;
            spec.projects.push(p);
        }
        check_deps(&spec.projects)?;
        Ok(spec)
    }

    pub fn project_names(&self) -> Vec<String> {
        self.projects.iter().map(|p| p.name.clone()).collect()
    }

    pub fn project(&self, name: &str) -> Option<&ProjectSpec> {
        self.projects.iter().find(|p| p.name == name)
    }
}

/// How a hook delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookTarget {
    Webhook { url: String, secret: Option<String> },
    Command { command: String },
}

/// A hook and the events it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSpec {
    pub target: HookTarget,
    pub events: Vec<EventKind>,
}

/// The whole greenness configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GreennessConfig {
    pub queues: Vec<QueueSpec>,
    pub hooks: Vec<HookSpec>,
    /// Targets built at once (`jobs:`, or `bdc greenness drain --jobs N`);
    /// None: the number of cores.
    pub jobs: Option<usize>,
}

impl GreennessConfig {
    pub fn queue(&self, name: &str) -> Option<&QueueSpec> {
        self.queues.iter().find(|q| q.name == name)
    }

    /// Load and validate a file.
    pub fn from_path(path: &Path) -> Result<GreennessConfig, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        let mut cfg = Self::parse(&text, &file)?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.resolve_project_commands(&file, base)?;
        Ok(cfg)
    }

    /// Parse and validate YAML text (`file` names it in errors). A
    /// `projects_command` is not run (see [`GreennessConfig::from_path`]).
    pub fn parse(text: &str, file: &str) -> Result<GreennessConfig, ConfigError> {
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line() as usize, l.column() as usize))
                .unwrap_or((0, 0));
            ConfigError::Invalid {
                file: file.to_owned(),
                line,
                column,
                message: first_line(&e.to_string()),
            }
        })?;
        let err = |s: &Spanned<String>, message: String| ConfigError::Invalid {
            file: file.to_owned(),
            line: s.referenced.line() as usize,
            column: s.referenced.column() as usize,
            message,
        };
        let mut queues = Vec::new();
        let mut names = BTreeSet::new();
        for (i, q) in raw.queues.into_iter().enumerate() {
            let key = |k: &str| format!("queues[{i}].{k}");
            if !valid_name(&q.name.value) {
                return Err(err(
                    &q.name,
                    format!(
                        "{}: queue name {:?} must be non-empty [A-Za-z0-9._-]",
                        key("name"),
                        q.name.value
                    ),
                ));
            }
            if !names.insert(q.name.value.clone()) {
                return Err(err(
                    &q.name,
                    format!("{}: duplicate queue name {:?}", key("name"), q.name.value),
                ));
            }
            if q.repo.value.trim().is_empty() {
                return Err(err(&q.repo, format!("{}: must not be empty", key("repo"))));
            }
            if q.ref_name.value.trim().is_empty() || q.ref_name.value.contains("..") {
                return Err(err(
                    &q.ref_name,
                    format!("{}: invalid ref {:?}", key("ref"), q.ref_name.value),
                ));
            }
            let mut projects = Vec::new();
            let mut raw_deps = Vec::new();
            let mut pnames = BTreeSet::new();
            for (j, p) in q.projects.into_iter().enumerate() {
                let pkey = |k: &str| format!("queues[{i}].projects[{j}].{k}");
                if !valid_name(&p.name.value) {
                    return Err(err(
                        &p.name,
                        format!(
                            "{}: project name {:?} must be non-empty [A-Za-z0-9._-]",
                            pkey("name"),
                            p.name.value
                        ),
                    ));
                }
                if !pnames.insert(p.name.value.clone()) {
                    return Err(err(
                        &p.name,
                        format!("{}: duplicate project {:?}", pkey("name"), p.name.value),
                    ));
                }
                if p.paths.is_empty() {
                    return Err(err(
                        &p.name,
                        format!("{}: a project needs at least one path glob", pkey("paths")),
                    ));
                }
                for g in &p.paths {
                    if g.value.trim().is_empty() {
                        return Err(err(g, format!("{}: empty glob", pkey("paths"))));
                    }
                }
                projects.push(ProjectSpec {
                    name: p.name.value,
                    paths: p.paths.into_iter().map(|g| g.value).collect(),
                    build: p.build,
                    deps: p.deps.iter().map(|d| d.value.clone()).collect(),
                    from_command: false,
                });
                raw_deps.push((j, p.deps));
            }
            for (j, deps) in &raw_deps {
                for d in deps {
                    if !projects.iter().any(|p| p.name == d.value) {
                        return Err(err(
                            d,
                            format!(
                                "queues[{i}].projects[{j}].deps: unknown project {:?}",
                                d.value
                            ),
                        ));
                    }
                }
            }
            if q.projects_command.is_none()
                && let Err(cycle) = check_deps(&projects)
            {
                return Err(err(&q.name, format!("queues[{i}].projects: {cycle}")));
            }
            if q.build.is_none() && projects.iter().any(|p| p.build.is_none()) {
                return Err(err(
                    &q.name,
                    format!(
                        "{}: set a queue `build`, or a `build` for every project",
                        key("build")
                    ),
                ));
            }
            if q.build.is_none() && projects.is_empty() && q.projects_command.is_none() {
                return Err(err(
                    &q.name,
                    format!("{}: a queue needs a `build` or `projects`", key("build")),
                ));
            }
            let interval = q.poll_interval_seconds.unwrap_or(60);
            if interval == 0 {
                return Err(err(
                    &q.name,
                    format!("{}: must be at least 1", key("poll_interval_seconds")),
                ));
            }
            queues.push((
                QueueSpec {
                    name: q.name.value,
                    repo: q.repo.value,
                    ref_name: q.ref_name.value,
                    poll_interval_seconds: interval,
                    build: q.build,
                    timeout_seconds: q.timeout_seconds.unwrap_or(3600).max(1),
                    projects,
                    projects_command: None,
                    projects_command_dir: None,
                },
                q.projects_command,
            ));
        }
        let mut hooks = Vec::new();
        for (i, h) in raw.hooks.into_iter().enumerate() {
            let key = |k: &str| format!("hooks[{i}].{k}");
            let target = match h.kind.value.as_str() {
                "webhook" => match (h.url, h.command) {
                    (Some(url), None) => {
                        if !(url.value.starts_with("http://") || url.value.starts_with("https://"))
                        {
                            return Err(err(
                                &url,
                                format!("{}: must be an http(s) URL", key("url")),
                            ));
                        }
                        HookTarget::Webhook {
                            url: url.value,
                            secret: h.secret,
                        }
                    }
                    _ => {
                        return Err(err(
                            &h.kind,
                            format!("{}: a webhook needs `url` and no `command`", key("kind")),
                        ));
                    }
                },
                "command" => match (h.command, h.url) {
                    (Some(c), None) if !c.value.trim().is_empty() => {
                        HookTarget::Command { command: c.value }
                    }
                    _ => {
                        return Err(err(
                            &h.kind,
                            format!(
                                "{}: a command hook needs a non-empty `command` and no `url`",
                                key("kind")
                            ),
                        ));
                    }
                },
                other => {
                    return Err(err(
                        &h.kind,
                        format!(
                            "{}: unknown hook kind {other:?} (webhook, command)",
                            key("kind")
                        ),
                    ));
                }
            };
            let mut events = Vec::new();
            match h.events {
                None => events = vec![EventKind::Transition, EventKind::Degree],
                Some(list) => {
                    for e in list {
                        events.push(match e.value.as_str() {
                            "transition" => EventKind::Transition,
                            "degree" => EventKind::Degree,
                            other => {
                                return Err(err(
                                    &e,
                                    format!(
                                        "{}: unknown event {other:?} (transition, degree)",
                                        key("events")
                                    ),
                                ));
                            }
                        });
                    }
                }
            }
            hooks.push(HookSpec { target, events });
        }
        let jobs = match raw.jobs {
            Some(j) if j.value == 0 => {
                return Err(ConfigError::Invalid {
                    file: file.to_owned(),
                    line: j.referenced.line() as usize,
                    column: j.referenced.column() as usize,
                    message: "jobs: must be at least 1".into(),
                });
            }
            Some(j) => Some(j.value),
            None => None,
        };
        Ok(GreennessConfig {
            jobs,
            queues: queues
                .into_iter()
                .map(|(mut q, cmd)| {
                    q.projects_command = cmd;
                    q
                })
                .collect(),
            hooks,
        })
    }

    /// Run each queue's `projects_command` (in `base`) and add the projects
    /// it prints: one per line, `name glob [glob...] [-- build command]`.
    fn resolve_project_commands(&mut self, file: &str, base: &Path) -> Result<(), ConfigError> {
        for q in &mut self.queues {
            let Some(cmd) = q.projects_command.clone() else {
                continue;
            };
            q.projects_command_dir = Some(base.to_path_buf());
            let listed =
                list_projects(&cmd, base, &[]).map_err(|detail| ConfigError::ProjectsCommand {
                    file: file.to_owned(),
                    queue: q.name.clone(),
                    command: cmd.clone(),
                    detail,
                })?;
            *q = q
                .with_listed_projects(listed)
                .map_err(|detail| ConfigError::ProjectsCommand {
                    file: file.to_owned(),
                    queue: q.name.clone(),
                    command: cmd.clone(),
                    detail,
                })?;
        }
        Ok(())
    }
}

/// Run a `projects_command` with `sh -c` in `dir` (extra environment
/// `env`) and parse its output (see [`parse_project_list`]).
pub fn list_projects(
    command: &str,
    dir: &Path,
    env: &[(&str, &str)],
) -> Result<Vec<ProjectSpec>, String> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "exit status {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse_project_list(&String::from_utf8_lossy(&out.stdout))
}

/// Check that every dependency names a project and that the dependencies
/// form no cycle; the error names the cycle (`deps form a cycle: a -> b -> a`).
pub fn check_deps(projects: &[ProjectSpec]) -> Result<(), String> {
    for p in projects {
        for d in &p.deps {
            if !projects.iter().any(|q| &q.name == d) {
                return Err(format!(
                    "project {:?} depends on unknown project {d:?}",
                    p.name
                ));
            }
        }
    }
    let graph: Vec<(String, Vec<String>)> = projects
        .iter()
        .map(|p| (p.name.clone(), p.deps.clone()))
        .collect();
    match find_cycle(&graph) {
        Some(cycle) => Err(format!("deps form a cycle: {}", cycle.join(" -> "))),
        None => Ok(()),
    }
}

/// A dependency cycle of a graph given as `(node, deps)`, as the path
/// `a, b, …, a`; None when the graph is acyclic. Unknown deps are ignored.
pub fn find_cycle(graph: &[(String, Vec<String>)]) -> Option<Vec<String>> {
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let index: std::collections::HashMap<&str, usize> = graph
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.as_str(), i))
        .collect();
    let mut color = vec![0u8; graph.len()];
    let mut stack: Vec<usize> = Vec::new();
    fn visit(
        i: usize,
        graph: &[(String, Vec<String>)],
        index: &std::collections::HashMap<&str, usize>,
        color: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<String>> {
        color[i] = 1;
        stack.push(i);
        for d in &graph[i].1 {
            let Some(&j) = index.get(d.as_str()) else {
                continue;
            };
            if color[j] == 1 {
                let start = stack.iter().position(|&k| k == j).unwrap_or(0);
                let mut cycle: Vec<String> =
                    stack[start..].iter().map(|&k| graph[k].0.clone()).collect();
                cycle.push(graph[j].0.clone());
                return Some(cycle);
            }
            if color[j] == 0
                && let Some(c) = visit(j, graph, index, color, stack)
            {
                return Some(c);
            }
        }
        stack.pop();
        color[i] = 2;
        None
    }
    for i in 0..graph.len() {
        if color[i] == 0
            && let Some(c) = visit(i, graph, &index, &mut color, &mut stack)
        {
            return Some(c);
        }
    }
    None
}

/// Parse a project list: `name glob [glob...] [deps=a,b] [-- build command]`
/// per line; blank lines and `#` comments are skipped.
pub fn parse_project_list(text: &str) -> Result<Vec<ProjectSpec>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (spec, build) = match line.split_once(" -- ") {
            Some((a, b)) => (a, Some(b.trim().to_owned())),
            None => (line, None),
        };
        let mut words = spec.split_whitespace();
        let name = words.next().unwrap_or_default().to_owned();
        let mut paths = Vec::new();
        let mut deps = Vec::new();
        for w in words {
            match w.strip_prefix("deps=") {
                Some(list) => {
                    deps.extend(list.split(',').filter(|d| !d.is_empty()).map(str::to_owned))
                }
                None => paths.push(w.to_owned()),
            }
        }
        if !valid_name(&name) || paths.is_empty() {
            return Err(format!(
                "line {}: expected `name glob [glob...] [deps=a,b] [-- build]`, got {line:?}",
                n + 1
            ));
        }
        out.push(ProjectSpec {
            name,
            paths,
            build,
            deps,
            from_command: true,
        });
    }
    Ok(out)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_owned()
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Match a path against a glob: `**` spans directories, `*` and `?` stay
/// within one path segment; a pattern ending in `/` matches everything
/// under that directory.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    if let Some(dir) = pattern.strip_suffix('/') {
        return path.starts_with(pattern) || path == dir;
    }
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let mut rest = &p[2..];
                if rest.first() == Some(&b'/') {
                    // `**/` also matches zero directories.
                    if go(&rest[1..], s) {
                        return true;
                    }
                    rest = &p[2..];
                }
                (0..=s.len()).any(|i| go(rest, &s[i..]))
            }
            Some(b'*') => {
                let rest = &p[1..];
                for i in 0..=s.len() {
                    if go(rest, &s[i..]) {
                        return true;
                    }
                    if s.get(i) == Some(&b'/') {
                        break;
                    }
                }
                false
            }
            Some(b'?') => s.first().is_some_and(|c| *c != b'/') && go(&p[1..], &s[1..]),
            Some(c) => s.first() == Some(c) && go(&p[1..], &s[1..]),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    queues: Vec<RawQueue>,
    #[serde(default)]
    hooks: Vec<RawHook>,
    jobs: Option<Spanned<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    name: Spanned<String>,
    repo: Spanned<String>,
    #[serde(rename = "ref")]
    ref_name: Spanned<String>,
    poll_interval_seconds: Option<u64>,
    build: Option<String>,
    timeout_seconds: Option<u64>,
    #[serde(default)]
    projects: Vec<RawProject>,
    projects_command: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    name: Spanned<String>,
    #[serde(default)]
    paths: Vec<Spanned<String>>,
    build: Option<String>,
    #[serde(default)]
    deps: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHook {
    kind: Spanned<String>,
    url: Option<Spanned<String>>,
    command: Option<Spanned<String>>,
    secret: Option<String>,
    events: Option<Vec<Spanned<String>>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "queues:
  - name: main
    repo: /tmp/repo
    ref: main
    poll_interval_seconds: 5
    build: make
    projects:
      - name: a
        paths: [\"a/**\"]
        build: make -C a
hooks:
  - kind: webhook
    url: http://127.0.0.1:9/hook
    secret: s
    events: [transition]
  - kind: command
    command: echo hi
";

    #[test]
    fn parses_a_good_file() {
        let c = GreennessConfig::parse(GOOD, "g.yaml").unwrap();
        assert_eq!(c.queues.len(), 1);
        let q = &c.queues[0];
        assert_eq!(q.ref_name, "main");
        assert_eq!(q.poll_interval_seconds, 5);
        assert_eq!(q.projects[0].paths, vec!["a/**".to_owned()]);
        assert_eq!(c.hooks.len(), 2);
        assert_eq!(c.hooks[0].events, vec![EventKind::Transition]);
        assert_eq!(c.hooks[1].events.len(), 2);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let bad = GOOD.replace("    poll_interval_seconds: 5\n", "    poll_intervl: 5\n");
        let e = GreennessConfig::parse(&bad, "g.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("g.yaml:5:"), "{e}");
        assert!(e.contains("poll_intervl"), "{e}");

        let dup = GOOD.replace(
            "      - name: a\n",
            "      - name: a\n        paths: [x]\n      - name: a\n",
        );
        let e = GreennessConfig::parse(&dup, "g.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("duplicate project"), "{e}");
        assert!(e.starts_with("g.yaml:10:"), "{e}");

        let kind = GOOD.replace("kind: command", "kind: carrier-pigeon");
        let e = GreennessConfig::parse(&kind, "g.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("hooks[1].kind"), "{e}");
        assert!(e.starts_with("g.yaml:16:"), "{e}");
    }

    #[test]
    fn the_example_parses() {
        let c = GreennessConfig::parse(
            include_str!("../../../examples/greenness.yaml"),
            "examples/greenness.yaml",
        )
        .unwrap();
        assert_eq!(c.queues[0].projects.len(), 2);
    }

    #[test]
    fn globs() {
        assert!(glob_match("a/**", "a/b/c.rs"));
        assert!(glob_match("**/*.md", "README.md"));
        assert!(glob_match("**/*.md", "x/y/README.md"));
        assert!(glob_match("a/*.rs", "a/b.rs"));
        assert!(!glob_match("a/*.rs", "a/b/c.rs"));
        assert!(glob_match("libs/json/", "libs/json/x"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a/**", "b/a"));
    }

    #[test]
    fn deps_are_checked_and_a_cycle_is_named() {
        let base = "queues:\n  - name: q\n    repo: /r\n    ref: main\n    projects:\n";
        let proj = |n: &str, deps: &str| {
            format!(
                "      - name: {n}\n        paths: [\"{n}/**\"]\n        build: make\n        deps: {deps}\n"
            )
        };
        let good = format!(
            "{base}{}{}{}",
            proj("a", "[]"),
            proj("b", "[a]"),
            proj("c", "[a, b]")
        );
        let c = GreennessConfig::parse(&good, "g.yaml").unwrap();
        assert_eq!(c.queues[0].projects[2].deps, vec!["a", "b"]);
        assert_eq!(
            c.queues[0].affected_projects(&["a/x".into()]),
            vec!["a", "b", "c"]
        );
        assert_eq!(
            c.queues[0].affected_projects(&["b/x".into()]),
            vec!["b", "c"]
        );
        let cycle = format!(
            "{base}{}{}{}",
            proj("a", "[c]"),
            proj("b", "[a]"),
            proj("c", "[b]")
        );
        let e = GreennessConfig::parse(&cycle, "g.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("queues[0].projects: deps form a cycle: a -> c -> b -> a"),
            "{e}"
        );
        let unknown = format!("{base}{}", proj("a", "[zz]"));
        let e = GreennessConfig::parse(&unknown, "g.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("g.yaml:9:"), "{e}");
        assert!(
            e.contains("queues[0].projects[0].deps: unknown project \"zz\""),
            "{e}"
        );
        let e = GreennessConfig::parse(&format!("jobs: 0\n{good}"), "g.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("jobs: must be at least 1"), "{e}");
    }

    #[test]
    fn project_lists() {
        let p = parse_project_list("# c\nx x/** y/*.h -- make x\n\nz z/\n").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].build.as_deref(), Some("make x"));
        assert_eq!(p[1].paths, vec!["z/".to_owned()]);
        assert!(parse_project_list("lonely\n").is_err());
        let p = parse_project_list("x x/** deps=y,z -- make\n").unwrap();
        assert_eq!(p[0].deps, vec!["y", "z"]);
        assert_eq!(p[0].paths, vec!["x/**"]);
    }
}
