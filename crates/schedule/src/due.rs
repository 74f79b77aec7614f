//! Deciding which tasks are due. See the crate documentation for the rules.

use chrono::{Datelike, NaiveDate};

use crate::model::{Group, ScheduleKind, Task};

/// What the caller knows about "now".
///
/// Build it with [`DueContext::for_date`]; the fields are public so that
/// command-line overrides (`--day-of-week`, `--day-of-month`) can replace the
/// date-derived values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueContext {
    /// Day of the week, `0` = Monday … `6` = Sunday.
    pub day_of_week: u8,
    /// Day of the month, `1..=31`.
    pub day_of_month: u8,
    /// Number of days in the current month (`28..=31`).
    pub days_in_month: u8,
    /// `None` for a calendar run, `Some(n)` for an interval tick with value `n`.
    pub interval_minutes: Option<u32>,
    /// Whether a new release has been detected.
    pub release_detected: bool,
}

impl DueContext {
    /// Context for `date`: derives the weekday (Monday = 0), the day of the
    /// month and the number of days in that month (leap years included).
    pub fn for_date(
        date: NaiveDate,
        interval_minutes: Option<u32>,
        release_detected: bool,
    ) -> DueContext {
        DueContext {
            // `num_days_from_monday` is 0..=6, `day` is 1..=31, and
            // `num_days_in_month` is 28..=31, so the narrowing casts are lossless.
            day_of_week: date.weekday().num_days_from_monday() as u8,
            day_of_month: date.day() as u8,
            days_in_month: date.num_days_in_month(),
            interval_minutes,
            release_detected,
        }
    }

    /// Whether this is a calendar run (`interval_minutes` is `None`).
    pub const fn is_calendar_run(&self) -> bool {
        self.interval_minutes.is_none()
    }
}

/// The decision for one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// The task should run now.
    Due,
    /// The task should not run now; the text says why.
    NotDue(&'static str),
    /// The task has `enabled: false`.
    Disabled,
}

impl Due {
    /// `true` only for [`Due::Due`].
    pub const fn is_due(&self) -> bool {
        matches!(self, Due::Due)
    }
}

impl Task {
    /// Decides whether this task is due in `ctx` (see the crate documentation).
    pub fn due(&self, ctx: &DueContext) -> Due {
        if !self.enabled {
            return Due::Disabled;
        }
        match ctx.interval_minutes {
            None => self.due_calendar(ctx),
            Some(tick) => self.due_interval(tick, ctx.release_detected),
        }
    }

    fn due_calendar(&self, ctx: &DueContext) -> Due {
        match self.kind {
            ScheduleKind::Daily => Due::Due,
            ScheduleKind::Weekly => match self.day_of_week {
                Some(day) if day == ctx.day_of_week => Due::Due,
                Some(_) => Due::NotDue("not the task's day of the week"),
                None => Due::NotDue("weekly task has no day of the week"),
            },
            ScheduleKind::Monthly => match self.day_of_month {
                Some(day) if day.min(ctx.days_in_month) == ctx.day_of_month => Due::Due,
                Some(_) => Due::NotDue("not the task's day of the month"),
                None => Due::NotDue("monthly task has no day of the month"),
            },
            ScheduleKind::Interval => Due::NotDue("interval tasks run only on interval ticks"),
            ScheduleKind::OnRelease => release_due(ctx.release_detected),
        }
    }

    fn due_interval(&self, tick: u32, release_detected: bool) -> Due {
        match self.kind {
            ScheduleKind::Interval => match self.minutes {
                Some(minutes) if minutes > 0 && tick.is_multiple_of(minutes) => Due::Due,
                Some(minutes) if minutes > 0 => {
                    Due::NotDue("interval tick is not a multiple of the task's minutes")
                }
                _ => Due::NotDue("interval task has no positive minutes"),
            },
            ScheduleKind::OnRelease => release_due(release_detected),
            ScheduleKind::Daily | ScheduleKind::Weekly | ScheduleKind::Monthly => {
                Due::NotDue("calendar tasks do not run on interval ticks")
            }
        }
    }
}

fn release_due(release_detected: bool) -> Due {
    if release_detected {
        Due::Due
    } else {
        Due::NotDue("no new release detected")
    }
}

impl Group {
    /// Every task of the group with its decision, in file order.
    pub fn due_tasks<'a>(&'a self, ctx: &DueContext) -> Vec<(&'a Task, Due)> {
        self.tasks
            .iter()
            .map(|task| (task, task.due(ctx)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    fn task(kind: ScheduleKind) -> Task {
        Task {
            command: "cmd".to_owned(),
            kind,
            enabled: true,
            args: Vec::new(),
            minutes: None,
            day_of_week: None,
            day_of_month: None,
            line: 1,
        }
    }

    fn weekly(day: u8) -> Task {
        Task {
            day_of_week: Some(day),
            ..task(ScheduleKind::Weekly)
        }
    }

    fn monthly(day: u8) -> Task {
        Task {
            day_of_month: Some(day),
            ..task(ScheduleKind::Monthly)
        }
    }

    fn interval(minutes: u32) -> Task {
        Task {
            minutes: Some(minutes),
            ..task(ScheduleKind::Interval)
        }
    }

    fn calendar(y: i32, m: u32, d: u32) -> DueContext {
        DueContext::for_date(date(y, m, d), None, false)
    }

    fn tick(n: u32, release_detected: bool) -> DueContext {
        DueContext::for_date(date(2024, 5, 15), Some(n), release_detected)
    }

    #[test]
    fn for_date_derives_weekday_day_and_month_length() {
        // 2024-01-01 was a Monday, 2024-01-07 a Sunday.
        let ctx = calendar(2024, 1, 1);
        assert_eq!(
            (ctx.day_of_week, ctx.day_of_month, ctx.days_in_month),
            (0, 1, 31)
        );
        assert_eq!(calendar(2024, 1, 7).day_of_week, 6);
        assert_eq!(calendar(2024, 4, 10).days_in_month, 30);
        assert_eq!(calendar(2024, 2, 10).days_in_month, 29);
        assert_eq!(calendar(2023, 2, 10).days_in_month, 28);
        assert_eq!(calendar(2000, 2, 10).days_in_month, 29);
        assert_eq!(calendar(2100, 2, 10).days_in_month, 28);
        assert!(calendar(2024, 1, 1).is_calendar_run());
        let ctx = DueContext::for_date(date(2025, 12, 31), Some(15), true);
        assert_eq!(ctx.interval_minutes, Some(15));
        assert!(ctx.release_detected);
        assert!(!ctx.is_calendar_run());
        assert_eq!((ctx.day_of_week, ctx.day_of_month), (2, 31));
    }

    #[test]
    fn daily_is_due_on_every_calendar_run_only() {
        let t = task(ScheduleKind::Daily);
        for d in 1..=31 {
            assert_eq!(t.due(&calendar(2024, 1, d)), Due::Due);
        }
        assert!(matches!(t.due(&tick(30, false)), Due::NotDue(_)));
        assert!(matches!(t.due(&tick(0, true)), Due::NotDue(_)));
    }

    #[test]
    fn weekly_matches_day_of_week() {
        // 2024-06-03 is a Monday.
        for day in 0..=6u8 {
            let t = weekly(day);
            for offset in 0..7u32 {
                let ctx = calendar(2024, 6, 3 + offset);
                let expected = u32::from(day) == offset;
                assert_eq!(t.due(&ctx).is_due(), expected, "day {day}, offset {offset}");
            }
            assert!(!t.due(&tick(0, false)).is_due());
        }
    }

    #[test]
    fn weekly_fires_once_per_week() {
        for day in 0..=6u8 {
            let t = weekly(day);
            let mut d = date(2024, 1, 1);
            for _week in 0..156 {
                let mut fired = 0;
                for _ in 0..7 {
                    if t.due(&DueContext::for_date(d, None, false)).is_due() {
                        fired += 1;
                    }
                    d = d.succ_opt().expect("in range");
                }
                assert_eq!(fired, 1);
            }
        }
    }

    #[test]
    fn cli_overrides_replace_date_derived_values() {
        let mut ctx = calendar(2024, 6, 3); // Monday the 3rd
        ctx.day_of_week = 4;
        ctx.day_of_month = 15;
        assert!(weekly(4).due(&ctx).is_due());
        assert!(!weekly(0).due(&ctx).is_due());
        assert!(monthly(15).due(&ctx).is_due());
        assert!(!monthly(3).due(&ctx).is_due());
    }

    #[test]
    fn monthly_on_its_day() {
        assert!(monthly(1).due(&calendar(2024, 3, 1)).is_due());
        assert!(!monthly(1).due(&calendar(2024, 3, 2)).is_due());
        assert!(monthly(15).due(&calendar(2024, 3, 15)).is_due());
        assert!(monthly(31).due(&calendar(2024, 3, 31)).is_due());
        assert!(!monthly(30).due(&calendar(2024, 3, 31)).is_due());
        assert!(!monthly(15).due(&tick(15, false)).is_due());
    }

    #[test]
    fn monthly_day_31_in_30_day_months_runs_on_the_30th() {
        for month in [4, 6, 9, 11] {
            assert!(monthly(31).due(&calendar(2025, month, 30)).is_due());
            assert!(monthly(30).due(&calendar(2025, month, 30)).is_due());
            assert!(!monthly(31).due(&calendar(2025, month, 29)).is_due());
        }
    }

    #[test]
    fn monthly_late_days_in_february() {
        // Non-leap year: 29, 30 and 31 all run on Feb 28.
        for day in [28, 29, 30, 31] {
            assert!(
                monthly(day).due(&calendar(2023, 2, 28)).is_due(),
                "day {day}"
            );
            assert!(
                !monthly(day).due(&calendar(2023, 2, 27)).is_due(),
                "day {day}"
            );
        }
        // Leap year: 28 runs on the 28th; 29, 30 and 31 run on the 29th.
        assert!(monthly(28).due(&calendar(2024, 2, 28)).is_due());
        assert!(!monthly(28).due(&calendar(2024, 2, 29)).is_due());
        for day in [29, 30, 31] {
            assert!(
                monthly(day).due(&calendar(2024, 2, 29)).is_due(),
                "day {day}"
            );
            assert!(
                !monthly(day).due(&calendar(2024, 2, 28)).is_due(),
                "day {day}"
            );
        }
        // Century rules.
        assert!(monthly(30).due(&calendar(2000, 2, 29)).is_due());
        assert!(monthly(30).due(&calendar(2100, 2, 28)).is_due());
    }

    #[test]
    fn every_monthly_day_fires_exactly_once_per_month_2024_to_2026() {
        for day in 1..=31u8 {
            let t = monthly(day);
            for year in 2024..=2026 {
                for month in 1..=12 {
                    let mut fired = Vec::new();
                    let mut d = date(year, month, 1);
                    while d.month() == month {
                        if t.due(&DueContext::for_date(d, None, false)).is_due() {
                            fired.push(d.day());
                        }
                        d = d.succ_opt().expect("in range");
                    }
                    let last = date(year, month, 1).num_days_in_month();
                    assert_eq!(
                        fired,
                        vec![u32::from(day.min(last))],
                        "day {day} in {year}-{month:02}"
                    );
                }
            }
        }
    }

    #[test]
    fn interval_due_when_tick_is_a_multiple() {
        for minutes in [1, 2, 3, 5, 6, 10, 15, 30] {
            assert!(
                interval(minutes).due(&tick(30, false)).is_due(),
                "{minutes}"
            );
        }
        for minutes in [4, 7, 8, 9, 12, 20, 25, 45, 60, 180] {
            assert!(
                !interval(minutes).due(&tick(30, false)).is_due(),
                "{minutes}"
            );
        }
        assert!(interval(60).due(&tick(120, false)).is_due());
        assert!(interval(60).due(&tick(1440, false)).is_due());
        assert!(!interval(60).due(&tick(90, false)).is_due());
    }

    #[test]
    fn interval_tick_zero_runs_every_interval_task() {
        for minutes in [1, 7, 15, 59, 60, 180, 1000, u32::MAX] {
            assert!(interval(minutes).due(&tick(0, false)).is_due(), "{minutes}");
        }
    }

    #[test]
    fn interval_tasks_are_not_due_in_calendar_runs() {
        assert!(matches!(
            interval(1).due(&calendar(2024, 1, 1)),
            Due::NotDue(_)
        ));
    }

    #[test]
    fn interval_without_positive_minutes_is_never_due() {
        let t = task(ScheduleKind::Interval);
        assert!(!t.due(&tick(0, false)).is_due());
        assert!(!interval(0).due(&tick(0, false)).is_due());
    }

    #[test]
    fn on_release_follows_release_detected() {
        let t = task(ScheduleKind::OnRelease);
        assert!(
            t.due(&DueContext::for_date(date(2024, 1, 1), None, true))
                .is_due()
        );
        assert_eq!(
            t.due(&calendar(2024, 1, 1)),
            Due::NotDue("no new release detected")
        );
        assert!(t.due(&tick(30, true)).is_due());
        assert!(t.due(&tick(0, true)).is_due());
        assert!(!t.due(&tick(30, false)).is_due());
    }

    #[test]
    fn disabled_is_never_due() {
        let contexts = [
            calendar(2024, 1, 1),
            DueContext::for_date(date(2024, 1, 31), None, true),
            tick(0, true),
            tick(30, false),
        ];
        let tasks = [
            task(ScheduleKind::Daily),
            weekly(0),
            monthly(1),
            monthly(31),
            interval(1),
            task(ScheduleKind::OnRelease),
        ];
        for t in tasks {
            let t = Task {
                enabled: false,
                ..t
            };
            for ctx in &contexts {
                assert_eq!(t.due(ctx), Due::Disabled);
            }
        }
    }

    #[test]
    fn group_due_tasks_keeps_order_and_reports_every_task() {
        let group = Group {
            id: "g".to_owned(),
            default_time: None,
            tasks: vec![
                task(ScheduleKind::Daily),
                weekly(1),
                Task {
                    enabled: false,
                    ..task(ScheduleKind::Daily)
                },
                interval(15),
                monthly(3),
            ],
        };
        let ctx = calendar(2024, 6, 3); // Monday the 3rd
        let decisions: Vec<Due> = group.due_tasks(&ctx).into_iter().map(|(_, d)| d).collect();
        assert_eq!(decisions.len(), 5);
        assert_eq!(decisions[0], Due::Due);
        assert!(matches!(decisions[1], Due::NotDue(_)));
        assert_eq!(decisions[2], Due::Disabled);
        assert!(matches!(decisions[3], Due::NotDue(_)));
        assert_eq!(decisions[4], Due::Due);
        let pairs = group.due_tasks(&ctx);
        assert!(std::ptr::eq(pairs[1].0, &group.tasks[1]));
    }
}
