//! Collector schedule: parsing, validation and due decisions.
//!
//! The schedule is a YAML file that lists groups of collector commands and
//! says when each command runs. [`Schedule::from_path`] / [`Schedule::parse`]
//! load and validate it; [`Task::due`] and [`Group::due_tasks`] decide what
//! runs in a given invocation.
//!
//! # File format
//!
//! ```yaml
//! groups:                      # the only top-level key
//!   daily_github:              # group id (non-empty); groups keep file order
//!     default_time: "02:00"    # optional, "HH:MM" 24-hour (00:00 to 23:59)
//!     tasks:                   # required list, run in order
//!       - command: run_boost_github_activity_tracker   # required, non-empty string
//!         schedule: daily      # required: daily | weekly | monthly | interval | on_release
//!         enabled: true        # optional, default true; false = never due
//!         args: ["--repo", "boostorg/json"]   # optional list of strings
//!       - command: run_wg21_paper_tracker
//!         schedule: weekly
//!         on: monday           # weekly: a weekday (or `day_of_week`, not both)
//!       - command: collect_boost_libraries
//!         schedule: monthly
//!         on: 31               # monthly: a day of the month (or `day_of_month`, not both)
//!       - command: run_cppa_slack_tracker
//!         schedule: interval
//!         minutes: 30          # interval only, required: a positive whole number
//! ```
//!
//! Keys and values:
//!
//! - Top level: only `groups` (a mapping of group id to group). Group: only
//!   `default_time` and `tasks`. Task: only `command`, `schedule`, `enabled`,
//!   `args`, `minutes`, `on`, `day_of_week`, `day_of_month`. Any other key, a
//!   repeated key and a repeated group id are errors.
//! - `args`: a list; strings are kept as-is, numbers and booleans are used
//!   exactly as written (`1.50` stays `"1.50"`). An empty `args:` means no
//!   arguments.
//! - `minutes`: only with `schedule: interval`, where it is required; a whole
//!   number, at least 1 (a quoted number is rejected).
//! - `weekly` needs exactly one of `on` / `day_of_week`: a weekday name
//!   `monday`..`sunday` or `mon`..`sun` (any case), or a number `0..=6` with
//!   0 = Monday. `day_of_week` is only allowed with `weekly`.
//! - `monthly` needs exactly one of `on` / `day_of_month`: a whole number
//!   `1..=31`. `day_of_month` is only allowed with `monthly`.
//! - `on` is only allowed with `weekly` and `monthly`.
//! - An empty file, a file without `groups`, or an empty `groups` mapping is
//!   an error.
//!
//! # Errors
//!
//! A file that is not well-formed YAML gives a single [`ScheduleError::Syntax`]
//! with the parser's location. Otherwise every rule violation in the file is
//! collected into [`ScheduleError::Invalid`], displayed one per line as
//! `<file>:<line>:<column>: <key path>: <what is wrong>`, e.g.
//!
//! ```text
//! schedule.yaml:12:19: groups.daily_github.tasks[2].schedule: invalid schedule; expected one of: daily, weekly, monthly, interval, on_release, found string "hourly"
//! ```
//!
//! # When is a task due?
//!
//! Every invocation of the collector is either a *calendar run* or an
//! *interval tick*, described by a [`DueContext`]:
//!
//! - a **calendar run** has `interval_minutes == None`;
//! - an **interval tick** has `interval_minutes == Some(n)`, where `n` is a
//!   number of minutes on the scheduler's clock (for example the minute of
//!   the day, or the tick period).
//!
//! [`DueContext::for_date`] fills in the day of the week (Monday = 0 …
//! Sunday = 6), the day of the month and the number of days in the month
//! (28, 29, 30 or 31, leap years included) from a date. The day of the week
//! and the day of the month can then be overridden (e.g. by the
//! `--day-of-week` / `--day-of-month` command-line options); the number of
//! days in the month stays that of the date.
//!
//! A task with `enabled: false` is never due ([`Due::Disabled`]), in any
//! invocation. For enabled tasks:
//!
//! **Calendar run** (`interval_minutes == None`):
//!
//! - `daily`: always due.
//! - `weekly`: due when the task's weekday equals the context's day of the week.
//! - `monthly`: due when the context's day of the month equals the smaller of
//!   the task's day and the number of days in the month. So a task for day 31
//!   runs on the last day of every month (the 30th in 30-day months, February
//!   28 or 29), and a task for day 30 runs on February's last day.
//! - `interval`: never due in a calendar run.
//! - `on_release`: due only when a new release was detected
//!   (`release_detected` is true).
//!
//! **Interval tick** with value `n` (`interval_minutes == Some(n)`):
//!
//! - `interval`: due when `n` is a multiple of the task's `minutes`
//!   (`n % minutes == 0`). For example `--interval-minutes 30` runs interval
//!   tasks with `minutes` 1, 2, 3, 5, 6, 10, 15 or 30, and
//!   `--interval-minutes 0` runs every interval task.
//! - `daily`, `weekly`, `monthly`: never due on an interval tick.
//! - `on_release`: due whenever a new release was detected, as in a
//!   calendar run.
//!
//! Decisions that are not "due" carry a short reason ([`Due::NotDue`]).
//!
//! ```
//! use bdc_schedule::{DueContext, Schedule};
//! use chrono::NaiveDate;
//!
//! let yaml = "groups:\n  g:\n    tasks:\n      - command: a\n        schedule: monthly\n        on: 31\n";
//! let schedule = Schedule::parse(yaml, "schedule.yaml")?;
//! let date = NaiveDate::from_ymd_opt(2024, 2, 29).ok_or("bad date")?;
//! let ctx = DueContext::for_date(date, None, false);
//! let group = schedule.group("g").ok_or("no group")?;
//! assert!(group.due_tasks(&ctx)[0].1.is_due());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod due;
mod error;
mod model;
mod parse;

pub use due::{Due, DueContext};
pub use error::{ScheduleError, ValidationError};
pub use model::{Group, Schedule, ScheduleKind, Task, TimeOfDay, UnknownScheduleKind};
