//! The validated schedule model.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ScheduleError;

/// How a task is scheduled: the value of a task's `schedule` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// `daily`: every calendar run.
    Daily,
    /// `weekly`: calendar runs on one weekday.
    Weekly,
    /// `monthly`: calendar runs on one day of the month.
    Monthly,
    /// `interval`: interval ticks whose value is a multiple of `minutes`.
    Interval,
    /// `on_release`: whenever a new release has been detected.
    OnRelease,
}

impl ScheduleKind {
    /// All kinds, in the order they are documented.
    pub const ALL: [ScheduleKind; 5] = [
        ScheduleKind::Daily,
        ScheduleKind::Weekly,
        ScheduleKind::Monthly,
        ScheduleKind::Interval,
        ScheduleKind::OnRelease,
    ];

    /// The word used for this kind in the YAML file.
    pub const fn as_str(self) -> &'static str {
        match self {
            ScheduleKind::Daily => "daily",
            ScheduleKind::Weekly => "weekly",
            ScheduleKind::Monthly => "monthly",
            ScheduleKind::Interval => "interval",
            ScheduleKind::OnRelease => "on_release",
        }
    }
}

impl fmt::Display for ScheduleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned by [`ScheduleKind::from_str`] for an unknown word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown schedule kind {0:?}; expected one of: daily, weekly, monthly, interval, on_release"
)]
pub struct UnknownScheduleKind(pub String);

impl FromStr for ScheduleKind {
    type Err = UnknownScheduleKind;

    /// Parses the exact YAML word (case-sensitive, as in the file format).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ScheduleKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownScheduleKind(s.to_owned()))
    }
}

/// A 24-hour wall-clock time (`default_time`), displayed as `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay {
    /// Hour, `0..=23`.
    pub hour: u8,
    /// Minute, `0..=59`.
    pub minute: u8,
}

impl TimeOfDay {
    /// Builds a time, or `None` if the hour or minute is out of range.
    pub const fn new(hour: u8, minute: u8) -> Option<TimeOfDay> {
        if hour <= 23 && minute <= 59 {
            Some(TimeOfDay { hour, minute })
        } else {
            None
        }
    }

    /// Parses `HH:MM` (a one-digit hour such as `4:10` is also accepted;
    /// surrounding whitespace is ignored). Returns `None` when invalid.
    pub fn parse(text: &str) -> Option<TimeOfDay> {
        let (hour, minute) = text.trim().split_once(':')?;
        let is_digits =
            |s: &str| (1..=2).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        if !is_digits(hour) || minute.len() != 2 || !is_digits(minute) {
            return None;
        }
        TimeOfDay::new(hour.parse().ok()?, minute.parse().ok()?)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One task of a group: a command to run and when to run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Task {
    /// The command to run (e.g. `run_boost_github_activity_tracker`).
    pub command: String,
    /// The task's `schedule`.
    pub kind: ScheduleKind,
    /// `enabled` (default `true`); a disabled task is never due.
    pub enabled: bool,
    /// Extra command-line arguments, in order.
    pub args: Vec<String>,
    /// `interval` tasks only: the period in minutes (at least 1).
    pub minutes: Option<u32>,
    /// `weekly` tasks only: `0` = Monday … `6` = Sunday (from `on` or `day_of_week`).
    pub day_of_week: Option<u8>,
    /// `monthly` tasks only: `1..=31` (from `on` or `day_of_month`).
    pub day_of_month: Option<u8>,
    /// 1-based line of the task in the schedule file.
    pub line: usize,
}

/// A named group of tasks, run in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The group id (its key under `groups`).
    pub id: String,
    /// `default_time`, if given.
    pub default_time: Option<TimeOfDay>,
    /// The group's tasks, in file order.
    pub tasks: Vec<Task>,
}

/// A validated schedule file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Schedule {
    /// The groups, in file order.
    pub groups: Vec<Group>,
}

impl Schedule {
    /// Reads and validates the schedule file at `path`.
    ///
    /// I/O errors (including a file that is not UTF-8) name the path; other
    /// errors use `path` (as displayed) as the file label.
    pub fn from_path(path: &Path) -> Result<Schedule, ScheduleError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScheduleError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Schedule::parse(&text, &path.display().to_string())
    }

    /// Parses and validates schedule YAML. `file_label` is used as the file
    /// name in error messages.
    pub fn parse(text: &str, file_label: &str) -> Result<Schedule, ScheduleError> {
        crate::parse::parse(text, file_label)
    }

    /// The group with the given id.
    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find(|group| group.id == id)
    }

    /// All tasks of all groups, with their group, in file order.
    pub fn tasks(&self) -> impl Iterator<Item = (&Group, &Task)> {
        self.groups
            .iter()
            .flat_map(|group| group.tasks.iter().map(move |task| (group, task)))
    }
}
