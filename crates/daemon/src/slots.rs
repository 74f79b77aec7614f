//! Schedule slots: the unit of exactly-once scheduling.

use bdc_schedule::{Due, DueContext, Group, Schedule, ScheduleKind};
use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// What a slot runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "slot", rename_all = "snake_case")]
pub enum SlotKind {
    /// The group's daily/weekly/monthly tasks due on `date`, from its
    /// `default_time` (UTC; 00:00 when unset).
    Calendar { date: NaiveDate },
    /// The group's interval tasks whose `minutes` divide `minute` (minute of
    /// the day, UTC) on `date`.
    Interval { date: NaiveDate, minute: u32 },
    /// The group's `on_release` tasks for a newly seen release `tag`.
    Release { tag: String },
}

/// One schedule slot of one group; serialised as the job payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub group: String,
    #[serde(flatten)]
    pub kind: SlotKind,
}

impl Slot {
    /// Unique key: the same slot enqueued by several schedulers is one job.
    pub fn key(&self) -> String {
        match &self.kind {
            SlotKind::Calendar { date } => format!("cal:{}:{date}", self.group),
            SlotKind::Interval { date, minute } => {
                format!("int:{}:{date}:{minute}", self.group)
            }
            SlotKind::Release { tag } => format!("rel:{}:{tag}", self.group),
        }
    }

    /// The due context and schedule kinds the slot's run uses.
    pub fn context(&self, today: NaiveDate) -> (DueContext, Vec<ScheduleKind>) {
        match &self.kind {
            SlotKind::Calendar { date } => (
                DueContext::for_date(*date, None, false),
                vec![
                    ScheduleKind::Daily,
                    ScheduleKind::Weekly,
                    ScheduleKind::Monthly,
                ],
            ),
            SlotKind::Interval { date, minute } => (
                DueContext::for_date(*date, Some(*minute), false),
                vec![ScheduleKind::Interval],
            ),
            SlotKind::Release { .. } => (
                DueContext::for_date(today, None, true),
                vec![ScheduleKind::OnRelease],
            ),
        }
    }
}

fn any_due(group: &Group, ctx: &DueContext, kinds: &[ScheduleKind]) -> bool {
    group
        .due_tasks(ctx)
        .iter()
        .any(|(t, d)| matches!(d, Due::Due) && kinds.contains(&t.kind))
}

/// Longest look-back for interval minutes missed between two checks.
pub const MAX_LOOKBACK_MINUTES: i64 = 10;

/// Slots due at `now`, given the previous check at `since` (interval minutes
/// in `(since, now]` are considered, at most [`MAX_LOOKBACK_MINUTES`]). A
/// calendar slot is due from the group's `default_time` until the end of
/// the day; slots without a due task are omitted.
pub fn due_slots(schedule: &Schedule, now: DateTime<Utc>, since: DateTime<Utc>) -> Vec<Slot> {
    let mut out = Vec::new();
    let today = now.date_naive();
    for group in &schedule.groups {
        let (h, m) = group
            .default_time
            .map(|t| (u32::from(t.hour), u32::from(t.minute)))
            .unwrap_or((0, 0));
        let due_at = today.and_hms_opt(h, m, 0).map(|t| t.and_utc());
        if let Some(due_at) = due_at
            && now >= due_at
        {
            let slot = Slot {
                group: group.id.clone(),
                kind: SlotKind::Calendar { date: today },
            };
            let (ctx, kinds) = slot.context(today);
            if any_due(group, &ctx, &kinds) {
                out.push(slot);
            }
        }
        // Whole minutes in (since, now].
        let floor = |t: DateTime<Utc>| {
            t.with_second(0)
                .and_then(|t| t.with_nanosecond(0))
                .unwrap_or(t)
        };
        let mut minute = floor(now);
        let oldest = floor(since.max(now - Duration::minutes(MAX_LOOKBACK_MINUTES)));
        let mut minutes = Vec::new();
        while minute > oldest {
            minutes.push(minute);
            minute -= Duration::minutes(1);
        }
        if since > now || minutes.is_empty() {
            minutes = vec![floor(now)];
        }
        for t in minutes.into_iter().rev() {
            let slot = Slot {
                group: group.id.clone(),
                kind: SlotKind::Interval {
                    date: t.date_naive(),
                    minute: t.hour() * 60 + t.minute(),
                },
            };
            let (ctx, kinds) = slot.context(today);
            if any_due(group, &ctx, &kinds) {
                out.push(slot);
            }
        }
    }
    out
}

/// Release slots for a newly seen `tag`: one per group with an enabled
/// `on_release` task.
pub fn release_slots(schedule: &Schedule, tag: &str) -> Vec<Slot> {
    schedule
        .groups
        .iter()
        .filter(|g| {
            g.tasks
                .iter()
                .any(|t| t.enabled && t.kind == ScheduleKind::OnRelease)
        })
        .map(|g| Slot {
            group: g.id.clone(),
            kind: SlotKind::Release {
                tag: tag.to_owned(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn schedule() -> Schedule {
        Schedule::parse(
            "groups:\n  nightly:\n    default_time: \"02:00\"\n    tasks:\n      - command: wg21-papers\n        schedule: daily\n      - command: wg21-papers\n        schedule: interval\n        minutes: 15\n  rel:\n    tasks:\n      - command: collect_boost_libraries\n        schedule: on_release\n",
            "t.yaml",
        )
        .unwrap()
    }

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, h, m, s).unwrap()
    }

    #[test]
    fn calendar_slot_from_default_time() {
        let s = schedule();
        let before = due_slots(&s, at(1, 59, 59), at(1, 59, 30));
        assert!(
            before
                .iter()
                .all(|x| !matches!(x.kind, SlotKind::Calendar { .. }))
        );
        let after = due_slots(&s, at(2, 0, 5), at(1, 59, 35));
        let cal: Vec<_> = after
            .iter()
            .filter(|x| matches!(x.kind, SlotKind::Calendar { .. }))
            .collect();
        assert_eq!(cal.len(), 1);
        assert_eq!(cal[0].key(), "cal:nightly:2026-11-24");
        // Later in the day the same slot (same key) is still due.
        let later = due_slots(&s, at(18, 0, 0), at(17, 59, 30));
        assert!(later.iter().any(|x| x.key() == "cal:nightly:2026-11-24"));
    }

    #[test]
    fn interval_slots_on_divisible_minutes() {
        let s = schedule();
        let slots = due_slots(&s, at(10, 30, 10), at(10, 29, 40));
        let keys: Vec<_> = slots.iter().map(Slot::key).collect();
        assert!(
            keys.contains(&"int:nightly:2026-11-24:630".to_owned()),
            "{keys:?}"
        );
        let none = due_slots(&s, at(10, 31, 10), at(10, 30, 40));
        assert!(
            none.iter()
                .all(|x| !matches!(x.kind, SlotKind::Interval { .. }))
        );
        // A scheduler that was away 5 minutes catches the missed quarter.
        let caught = due_slots(&s, at(10, 47, 0), at(10, 42, 0));
        assert!(
            caught
                .iter()
                .any(|x| x.key() == "int:nightly:2026-11-24:645")
        );
    }

    #[test]
    fn release_slots_per_group() {
        let s = schedule();
        let r = release_slots(&s, "boost-1.90.0");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].key(), "rel:rel:boost-1.90.0");
    }

    #[test]
    fn payload_round_trip() {
        let slot = Slot {
            group: "g".into(),
            kind: SlotKind::Interval {
                date: NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(),
                minute: 30,
            },
        };
        let v = serde_json::to_value(&slot).unwrap();
        assert_eq!(v["slot"], "interval");
        let back: Slot = serde_json::from_value(v).unwrap();
        assert_eq!(back, slot);
    }
}
