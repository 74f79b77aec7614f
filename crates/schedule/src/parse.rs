//! YAML loading and validation.
//!
//! The file is first deserialized by `serde-saphyr` into a small generic tree
//! ([`Raw`]) in which every mapping key and every value is wrapped in
//! [`serde_saphyr::Spanned`], so each carries its own line and column. The
//! schedule rules are then checked on that tree by hand rather than by
//! `#[derive(Deserialize)]` on the model: serde stops at the first error,
//! while operators should see every problem in the file at once, each with
//! the file, line, column and key path. No separate pass over parser events
//! is needed because `Spanned` keys already give us key locations.

use std::collections::HashMap;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, Location, Spanned};

use crate::error::{ScheduleError, ValidationError};
use crate::model::{Group, Schedule, ScheduleKind, Task, TimeOfDay};

const TOP_LEVEL_KEYS: &[&str] = &["groups"];
const GROUP_KEYS: &[&str] = &["default_time", "tasks"];
const TASK_KEYS: &[&str] = &[
    "command",
    "schedule",
    "enabled",
    "args",
    "minutes",
    "on",
    "day_of_week",
    "day_of_month",
];
const SCHEDULE_WORDS: &str = "daily, weekly, monthly, interval, on_release";
const WEEKDAY_HELP: &str =
    "a weekday: monday..sunday, mon..sun (any case), or 0..6 with 0 = Monday";
const DAY_OF_MONTH_HELP: &str = "a day of the month: a whole number from 1 to 31";
const WEEKDAYS: [(&str, &str); 7] = [
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("fri", "friday"),
    ("sat", "saturday"),
    ("sun", "sunday"),
];

/// A YAML node with every value and key located.
type Node = Spanned<Raw>;
type Entry = (Spanned<String>, Node);

/// Untyped YAML value. Scalars are typed by YAML's usual rules (so `30` is an
/// integer and `"30"` a string); keys are read as strings.
#[derive(Debug)]
enum Raw {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }

    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Raw, D::Error> {
        Raw::deserialize(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<Raw, D::Error> {
        Raw::deserialize(deserializer)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }

    fn visit_u128<E>(self, v: u128) -> Result<Raw, E> {
        // Only reachable for integers above i128::MAX; any such value is out of
        // range for every field, so saturating keeps the error message right.
        Ok(Raw::Int(i128::try_from(v).unwrap_or(i128::MAX)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Raw, E> {
        Ok(Raw::Str(String::from_utf8_lossy(v).into_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let mut value = map.next_value::<Node>()?;
            // An empty value (`key:` followed by nothing) is located just
            // after the colon; point at the key instead, which reads better.
            if matches!(value.value, Raw::Null) && value.referenced.span().is_empty() {
                value.referenced = key.referenced;
            }
            entries.push((key, value));
        }
        Ok(Raw::Map(entries))
    }
}

/// Parses and validates `text`; see [`Schedule::parse`].
pub(crate) fn parse(text: &str, file: &str) -> Result<Schedule, ScheduleError> {
    let mut options = serde_saphyr::Options::default();
    // Duplicate keys are reported by the validator (with the key path and the
    // line of the first occurrence) instead of aborting the parse.
    options.duplicate_keys = DuplicateKeyPolicy::PassThrough;
    options.with_snippet = false;
    let root: Node = serde_saphyr::from_str_with_options(text, options)
        .map_err(|err| syntax_error(file, &err))?;

    let mut validator = Validator {
        file,
        text,
        errors: Vec::new(),
    };
    let schedule = validator.schedule(&root);
    let mut errors = validator.errors;
    match schedule {
        Some(schedule) if errors.is_empty() => Ok(schedule),
        _ => {
            errors.sort_by_key(|e| (e.line, e.column));
            Err(ScheduleError::Invalid {
                file: file.to_owned(),
                errors,
            })
        }
    }
}

/// Keeps the parser's message but drops its " at line X, column Y" suffix,
/// since our own `file:line:column:` prefix already carries the location.
struct NoLocationSuffix;

impl serde_saphyr::Localizer for NoLocationSuffix {
    fn attach_location<'a>(
        &self,
        base: std::borrow::Cow<'a, str>,
        _loc: Location,
    ) -> std::borrow::Cow<'a, str> {
        base
    }
}

fn syntax_error(file: &str, err: &serde_saphyr::Error) -> ScheduleError {
    let mut inner = err;
    while let serde_saphyr::Error::WithSnippet { error, .. } = inner {
        inner = error;
    }
    let message = if matches!(inner, serde_saphyr::Error::MultipleDocuments { .. }) {
        // The parser's own text suggests API calls; say what to fix instead.
        "the file contains more than one YAML document (a `---` separator); \
         the schedule must be a single document"
            .to_owned()
    } else {
        let formatter = serde_saphyr::DefaultMessageFormatter.with_localizer(&NoLocationSuffix);
        err.render_with_options(serde_saphyr::render_options! {
            formatter: &formatter,
            snippets: serde_saphyr::SnippetMode::Off,
        })
    };
    let (line, column) = match err.location() {
        Some(loc) if loc != Location::UNKNOWN => position(&loc),
        _ => (None, None),
    };
    ScheduleError::Syntax {
        file: file.to_owned(),
        line,
        column,
        message,
    }
}

fn position(loc: &Location) -> (Option<usize>, Option<usize>) {
    let nonzero = |n: u64| usize::try_from(n).ok().filter(|&n| n > 0);
    (nonzero(loc.line()), nonzero(loc.column()))
}

/// Appends `key` to a dotted key path, quoting keys that are not plain words.
fn join(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if plain {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// The known keys of one mapping, by name, after reporting unknown and
/// duplicate keys.
struct Fields<'n> {
    found: HashMap<&'static str, (&'n Spanned<String>, &'n Node)>,
}

impl<'n> Fields<'n> {
    fn get(&self, key: &str) -> Option<(&'n Spanned<String>, &'n Node)> {
        self.found.get(key).copied()
    }

    /// Like [`Fields::get`], but an explicit `null` counts as absent.
    fn get_non_null(&self, key: &str) -> Option<(&'n Spanned<String>, &'n Node)> {
        self.get(key)
            .filter(|(_, node)| !matches!(node.value, Raw::Null))
    }
}

struct Validator<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<ValidationError>,
}

impl Validator<'_> {
    fn error(&mut self, loc: &Location, path: &str, message: impl Into<String>) {
        let (line, column) = position(loc);
        self.errors.push(ValidationError {
            file: self.file.to_owned(),
            line: line.unwrap_or(1),
            column,
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// The exact source text of a scalar, e.g. `1.50` or `0x1F`.
    fn source_text(&self, node: &Node) -> Option<&str> {
        let span = node.defined.span();
        let start = usize::try_from(span.byte_offset()?).ok()?;
        let len = usize::try_from(span.byte_len()?).ok()?;
        self.text.get(start..start.checked_add(len)?)
    }

    /// A scalar as text: strings as-is, numbers and booleans as written.
    fn scalar_text(&self, node: &Node) -> Option<String> {
        match &node.value {
            Raw::Str(s) => Some(s.clone()),
            Raw::Bool(b) => Some(
                self.source_text(node)
                    .map_or_else(|| b.to_string(), str::to_owned),
            ),
            Raw::Int(i) => Some(
                self.source_text(node)
                    .map_or_else(|| i.to_string(), str::to_owned),
            ),
            Raw::Float(f) => Some(
                self.source_text(node)
                    .map_or_else(|| f.to_string(), str::to_owned),
            ),
            Raw::Null | Raw::Seq(_) | Raw::Map(_) => None,
        }
    }

    /// A string value. A plain word that YAML 1.1 reads as a boolean (`y`,
    /// `yes`, `on`, `off`, ...) is taken as written; `true`/`false` are not.
    fn word_text(&self, node: &Node) -> Option<String> {
        match &node.value {
            Raw::Str(s) => Some(s.clone()),
            Raw::Bool(_) => self
                .source_text(node)
                .filter(|text| {
                    !text.eq_ignore_ascii_case("true") && !text.eq_ignore_ascii_case("false")
                })
                .map(str::to_owned),
            _ => None,
        }
    }

    /// Describes a value for "found ..." in messages.
    fn describe(&self, node: &Node) -> String {
        match &node.value {
            Raw::Null => "null (no value)".to_owned(),
            Raw::Str(s) => format!("string {s:?}"),
            Raw::Bool(_) => format!("boolean {}", self.scalar_text(node).unwrap_or_default()),
            Raw::Int(_) => format!("integer {}", self.scalar_text(node).unwrap_or_default()),
            Raw::Float(_) => format!("number {}", self.scalar_text(node).unwrap_or_default()),
            Raw::Seq(_) => "a list".to_owned(),
            Raw::Map(_) => "a mapping".to_owned(),
        }
    }

    /// Reports unknown and duplicate keys of a mapping; returns the first
    /// occurrence of each allowed key.
    fn fields<'n>(
        &mut self,
        entries: &'n [Entry],
        path: &str,
        allowed: &[&'static str],
    ) -> Fields<'n> {
        let mut found: HashMap<&'static str, (&'n Spanned<String>, &'n Node)> = HashMap::new();
        for (key, value) in entries {
            let key_path = join(path, &key.value);
            let Some(&name) = allowed.iter().find(|name| **name == key.value) else {
                self.error(
                    &key.referenced,
                    &key_path,
                    format!(
                        "unknown key {:?}; allowed keys here: {}",
                        key.value,
                        allowed.join(", ")
                    ),
                );
                continue;
            };
            if let Some((first, _)) = found.get(name) {
                let first_line = first.referenced.line();
                self.error(
                    &key.referenced,
                    &key_path,
                    format!(
                        "duplicate key {:?} (first given on line {first_line})",
                        key.value
                    ),
                );
                continue;
            }
            found.insert(name, (key, value));
        }
        Fields { found }
    }

    fn schedule(&mut self, root: &Node) -> Option<Schedule> {
        let entries = match &root.value {
            Raw::Map(entries) => entries,
            Raw::Null => {
                self.error(
                    &root.referenced,
                    "groups",
                    "the schedule file is empty; expected a top-level `groups` mapping",
                );
                return None;
            }
            _ => {
                let found = self.describe(root);
                self.error(
                    &root.referenced,
                    "<root>",
                    format!("expected a mapping with a top-level `groups` key, found {found}"),
                );
                return None;
            }
        };
        let fields = self.fields(entries, "", TOP_LEVEL_KEYS);
        let Some((_, groups)) = fields.get("groups") else {
            self.error(
                &root.referenced,
                "groups",
                "missing required top-level key `groups` (a mapping of group ids to groups)",
            );
            return None;
        };
        let groups = self.groups(groups)?;
        Some(Schedule { groups })
    }

    fn groups(&mut self, node: &Node) -> Option<Vec<Group>> {
        let Raw::Map(entries) = &node.value else {
            let found = self.describe(node);
            self.error(
                &node.referenced,
                "groups",
                format!("expected a mapping of group ids to groups, found {found}"),
            );
            return None;
        };
        if entries.is_empty() {
            self.error(
                &node.referenced,
                "groups",
                "no groups defined; at least one group is required",
            );
            return None;
        }
        let mut seen: HashMap<&str, u64> = HashMap::new();
        let mut groups = Vec::with_capacity(entries.len());
        let mut ok = true;
        for (id, value) in entries {
            let path = join("groups", &id.value);
            if let Some(first_line) = seen.get(id.value.as_str()) {
                self.error(
                    &id.referenced,
                    &path,
                    format!(
                        "duplicate group id {:?} (first defined on line {first_line})",
                        id.value
                    ),
                );
                ok = false;
                continue;
            }
            seen.insert(&id.value, id.referenced.line());
            if id.value.trim().is_empty() {
                self.error(&id.referenced, &path, "group id must be a non-empty string");
                ok = false;
            }
            match self.group(id, value, &path) {
                Some(group) => groups.push(group),
                None => ok = false,
            }
        }
        ok.then_some(groups)
    }

    fn group(&mut self, id: &Spanned<String>, node: &Node, path: &str) -> Option<Group> {
        let Raw::Map(entries) = &node.value else {
            let found = self.describe(node);
            self.error(
                &node.referenced,
                path,
                format!("expected a group mapping with `tasks` (and optional `default_time`), found {found}"),
            );
            return None;
        };
        let fields = self.fields(entries, path, GROUP_KEYS);
        let mut ok = true;

        let mut default_time = None;
        if let Some((_, value)) = fields.get_non_null("default_time") {
            let time_path = join(path, "default_time");
            match self
                .scalar_text(value)
                .as_deref()
                .and_then(TimeOfDay::parse)
            {
                Some(time) => default_time = Some(time),
                None => {
                    let found = self.describe(value);
                    self.error(
                        &value.referenced,
                        &time_path,
                        format!(
                            "invalid time; expected \"HH:MM\" in 24-hour format (00:00 to 23:59), found {found}"
                        ),
                    );
                    ok = false;
                }
            }
        }

        let tasks_path = join(path, "tasks");
        let mut tasks = Vec::new();
        match fields.get("tasks") {
            None => {
                self.error(
                    &id.referenced,
                    &tasks_path,
                    "missing required key `tasks` (a list of tasks)",
                );
                ok = false;
            }
            Some((_, value)) => match &value.value {
                Raw::Seq(items) => {
                    for (index, item) in items.iter().enumerate() {
                        match self.task(item, &format!("{tasks_path}[{index}]")) {
                            Some(task) => tasks.push(task),
                            None => ok = false,
                        }
                    }
                }
                _ => {
                    let found = self.describe(value);
                    self.error(
                        &value.referenced,
                        &tasks_path,
                        format!("expected a list of tasks, found {found}"),
                    );
                    ok = false;
                }
            },
        }

        ok.then(|| Group {
            id: id.value.clone(),
            default_time,
            tasks,
        })
    }

    fn task(&mut self, node: &Node, path: &str) -> Option<Task> {
        let Raw::Map(entries) = &node.value else {
            let found = self.describe(node);
            self.error(
                &node.referenced,
                path,
                format!("expected a task mapping with `command` and `schedule`, found {found}"),
            );
            return None;
        };
        let errors_before = self.errors.len();
        let fields = self.fields(entries, path, TASK_KEYS);
        let key_path = |key: &str| join(path, key);

        let command = match fields.get("command") {
            None => {
                self.error(
                    &node.referenced,
                    &key_path("command"),
                    "missing required key `command` (the command to run, a non-empty string)",
                );
                None
            }
            Some((_, value)) => match self.word_text(value) {
                Some(s) if !s.trim().is_empty() => Some(s),
                _ => {
                    let found = self.describe(value);
                    self.error(
                        &value.referenced,
                        &key_path("command"),
                        format!("expected a non-empty string (the command to run), found {found}"),
                    );
                    None
                }
            },
        };

        let kind = match fields.get("schedule") {
            None => {
                self.error(
                    &node.referenced,
                    &key_path("schedule"),
                    format!("missing required key `schedule` (one of: {SCHEDULE_WORDS})"),
                );
                None
            }
            Some((_, value)) => {
                let kind = match &value.value {
                    Raw::Str(s) => s.parse::<ScheduleKind>().ok(),
                    _ => None,
                };
                if kind.is_none() {
                    let found = self.describe(value);
                    self.error(
                        &value.referenced,
                        &key_path("schedule"),
                        format!(
                            "invalid schedule; expected one of: {SCHEDULE_WORDS}, found {found}"
                        ),
                    );
                }
                kind
            }
        };

        let mut enabled = true;
        if let Some((_, value)) = fields.get("enabled") {
            match value.value {
                Raw::Bool(b) => enabled = b,
                _ => {
                    let found = self.describe(value);
                    self.error(
                        &value.referenced,
                        &key_path("enabled"),
                        format!("expected true or false, found {found}"),
                    );
                }
            }
        }

        let args = match fields.get_non_null("args") {
            None => Vec::new(),
            Some((_, value)) => self.args(value, &key_path("args")),
        };

        // Kind-specific keys. When `schedule` itself is missing or invalid
        // (already reported), the values are still checked where their
        // meaning does not depend on the kind.
        let minutes = self.kind_field(
            &fields,
            "minutes",
            kind,
            &[ScheduleKind::Interval],
            path,
            |v, n| v.positive_minutes(n),
        );
        let day_of_week = self.kind_field(
            &fields,
            "day_of_week",
            kind,
            &[ScheduleKind::Weekly],
            path,
            |v, n| v.weekday(n),
        );
        let day_of_month = self.kind_field(
            &fields,
            "day_of_month",
            kind,
            &[ScheduleKind::Monthly],
            path,
            |v, n| v.day_of_month(n),
        );
        let on = fields.get("on");
        let (mut day_of_week, mut day_of_month) = (day_of_week, day_of_month);
        match kind {
            Some(ScheduleKind::Weekly) => {
                day_of_week = self.one_of(
                    node,
                    path,
                    "weekly",
                    "day_of_week",
                    on,
                    fields.get("day_of_week"),
                    day_of_week,
                    WEEKDAY_HELP,
                    |v, n| v.weekday(n),
                );
            }
            Some(ScheduleKind::Monthly) => {
                day_of_month = self.one_of(
                    node,
                    path,
                    "monthly",
                    "day_of_month",
                    on,
                    fields.get("day_of_month"),
                    day_of_month,
                    DAY_OF_MONTH_HELP,
                    |v, n| v.day_of_month(n),
                );
            }
            Some(other) => {
                if other == ScheduleKind::Interval && fields.get("minutes").is_none() {
                    self.error(
                        &node.referenced,
                        &key_path("minutes"),
                        "missing required key `minutes` for `schedule: interval` (a positive whole number of minutes)",
                    );
                }
                if let Some((key, _)) = on {
                    self.error(
                        &key.referenced,
                        &key_path("on"),
                        format!(
                            "`on` is only allowed with `schedule: weekly` or `schedule: monthly` (this task's schedule is {other})"
                        ),
                    );
                }
            }
            None => {}
        }

        if self.errors.len() != errors_before {
            return None;
        }
        Some(Task {
            command: command?,
            kind: kind?,
            enabled,
            args,
            minutes,
            day_of_week,
            day_of_month,
            line: position(&node.referenced).0.unwrap_or(1),
        })
    }

    fn args(&mut self, node: &Node, path: &str) -> Vec<String> {
        let Raw::Seq(items) = &node.value else {
            let found = self.describe(node);
            self.error(
                &node.referenced,
                path,
                format!("expected a list of strings, found {found}"),
            );
            return Vec::new();
        };
        let mut args = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            match self.scalar_text(item) {
                Some(text) => args.push(text),
                None => {
                    let found = self.describe(item);
                    self.error(
                        &item.referenced,
                        &format!("{path}[{index}]"),
                        format!("expected a string (or a number or boolean, used as written), found {found}"),
                    );
                }
            }
        }
        args
    }

    /// Checks a key that belongs to some schedule kinds only, returning its
    /// parsed value (or `None` if absent, misplaced or invalid).
    fn kind_field<T>(
        &mut self,
        fields: &Fields<'_>,
        key: &str,
        kind: Option<ScheduleKind>,
        allowed_kinds: &[ScheduleKind],
        path: &str,
        parse: impl FnOnce(&mut Self, &Node) -> Result<T, String>,
    ) -> Option<T> {
        let (key_node, value) = fields.get(key)?;
        let key_path = join(path, key);
        if let Some(kind) = kind
            && !allowed_kinds.contains(&kind)
        {
            let allowed: Vec<String> = allowed_kinds
                .iter()
                .map(|k| format!("`schedule: {k}`"))
                .collect();
            self.error(
                &key_node.referenced,
                &key_path,
                format!(
                    "`{key}` is only allowed with {} (this task's schedule is {kind})",
                    allowed.join(" or ")
                ),
            );
            return None;
        }
        match parse(self, value) {
            Ok(parsed) => Some(parsed),
            Err(message) => {
                self.error(&value.referenced, &key_path, message);
                None
            }
        }
    }

    /// Resolves "exactly one of `on` / `alt_key`" for weekly and monthly tasks.
    #[allow(clippy::too_many_arguments)]
    fn one_of<T>(
        &mut self,
        task: &Node,
        path: &str,
        kind_word: &str,
        alt_key: &str,
        on: Option<(&Spanned<String>, &Node)>,
        alt: Option<(&Spanned<String>, &Node)>,
        alt_value: Option<T>,
        help: &str,
        parse: impl FnOnce(&mut Self, &Node) -> Result<T, String>,
    ) -> Option<T> {
        match (on, alt) {
            (Some((on_key, _)), Some((alt_key_node, _))) => {
                // Point at whichever of the two keys comes second.
                let (later, later_name) =
                    if (
                        alt_key_node.referenced.line(),
                        alt_key_node.referenced.column(),
                    ) >= (on_key.referenced.line(), on_key.referenced.column())
                    {
                        (alt_key_node, alt_key)
                    } else {
                        (on_key, "on")
                    };
                self.error(
                    &later.referenced,
                    &join(path, later_name),
                    format!("both `on` and `{alt_key}` are given; use only one of them ({help})"),
                );
                None
            }
            (Some((_, value)), None) => match parse(self, value) {
                Ok(parsed) => Some(parsed),
                Err(message) => {
                    self.error(&value.referenced, &join(path, "on"), message);
                    None
                }
            },
            (None, Some(_)) => alt_value,
            (None, None) => {
                self.error(
                    &task.referenced,
                    path,
                    format!("`schedule: {kind_word}` requires `on` or `{alt_key}` ({help})"),
                );
                None
            }
        }
    }

    fn positive_minutes(&mut self, node: &Node) -> Result<u32, String> {
        match node.value {
            Raw::Int(n) if n >= 1 => u32::try_from(n).map_err(|_| {
                format!(
                    "expected a positive whole number of minutes (1 to {}), found {}",
                    u32::MAX,
                    self.describe(node)
                )
            }),
            Raw::Str(ref s) if s.trim().parse::<u32>().is_ok_and(|m| m >= 1) => Err(format!(
                "expected a positive whole number of minutes, found string {s:?}; write it without quotes"
            )),
            _ => Err(format!(
                "expected a positive whole number of minutes (1 or more), found {}",
                self.describe(node)
            )),
        }
    }

    fn weekday(&mut self, node: &Node) -> Result<u8, String> {
        let parsed = match &node.value {
            Raw::Int(n) => u8::try_from(*n).ok().filter(|d| *d <= 6),
            Raw::Str(s) => {
                let lower = s.trim().to_ascii_lowercase();
                WEEKDAYS
                    .iter()
                    .position(|(short, long)| lower == *short || lower == *long)
                    .and_then(|index| u8::try_from(index).ok())
            }
            _ => None,
        };
        parsed.ok_or_else(|| format!("expected {WEEKDAY_HELP}, found {}", self.describe(node)))
    }

    fn day_of_month(&mut self, node: &Node) -> Result<u8, String> {
        if let Raw::Int(n) = node.value
            && let Some(day) = u8::try_from(n).ok().filter(|d| (1..=31).contains(d))
        {
            return Ok(day);
        }
        match &node.value {
            Raw::Str(s) if s.trim().parse::<u8>().is_ok_and(|d| (1..=31).contains(&d)) => {
                Err(format!(
                    "expected {DAY_OF_MONTH_HELP}, found string {s:?}; write it without quotes"
                ))
            }
            _ => Err(format!(
                "expected {DAY_OF_MONTH_HELP}, found {}",
                self.describe(node)
            )),
        }
    }
}
