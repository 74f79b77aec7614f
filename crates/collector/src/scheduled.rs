//! `run-scheduled`: run the due tasks of the schedule YAML, in order.
//!
//! Behaviour (documented in README "Scheduling"):
//! * Groups are processed in file order (or only `--group G`); within a
//!   group, due tasks run one after another in file order. A failing task
//!   does not stop the tasks after it.
//! * In a calendar run (no interval tick; daily tasks selected), each group
//!   with at least one due task gets a group-run record; it is a success when
//!   at least one task ran and none failed (this is what `/health/`'s
//!   `collector_groups.<id>.last_success_at` reports). Interval ticks and
//!   release slots do not touch a group's freshness.
//! * **Strict** (`--strict` or `BOOST_COLLECTOR_SCHEDULE_STRICT=true`):
//!   before anything runs, every enabled task of the selected groups must
//!   name a collector this build provides and its `args` must parse with
//!   that collector's flags; otherwise nothing runs and the unknown /
//!   not-available commands and wrong args are listed with file and line.
//! * A task whose `args` do not parse with its collector's flags is
//!   recorded as a failed run (category `config`) whose error names the
//!   schedule file and line; the collector is not started. Any
//!   failed task makes the command exit non-zero.
//! * **Non-strict** (default): unknown commands are skipped with a warning;
//!   known-but-not-available ones are recorded as `not_available` runs
//!   with a warning; failed tasks are recorded and logged, and the command
//!   still exits 0 so one broken collector does not page for the others.

use bdc_schedule::{Due, DueContext, Schedule, ScheduleKind, Task};

use crate::{ArgsCheck, Lookup, RunReport, RunRequest, Runner, RunnerError};

/// Options of one `run-scheduled` invocation.
#[derive(Debug, Clone)]
pub struct ScheduledOptions {
    pub group: Option<String>,
    pub strict: bool,
    pub due: DueContext,
    /// Label of the schedule file for messages.
    pub file_label: String,
    /// Only tasks of these kinds can be due (`None` = all). The daemon's
    /// scheduler enqueues calendar, interval and release slots separately.
    pub kinds: Option<Vec<ScheduleKind>>,
    /// The slot key when run by a slot job: tasks of this slot that already
    /// succeeded (an earlier attempt of the job) are not run again.
    pub slot_key: Option<String>,
}

/// What happened to one task.
#[derive(Debug, Clone)]
pub enum TaskOutcome {
    Ran(RunReport),
    NotDue(&'static str),
    Disabled,
    /// Unknown command, skipped (non-strict only).
    UnknownCommand,
    /// Succeeded in an earlier attempt of the same slot job: not run again.
    AlreadyDone,
}

#[derive(Debug, Clone)]
pub struct TaskReport {
    pub group: String,
    pub command: String,
    pub line: usize,
    pub outcome: TaskOutcome,
}

#[derive(Debug, Clone, Default)]
pub struct ScheduledReport {
    pub tasks: Vec<TaskReport>,
    pub ran: usize,
    pub failed: usize,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduledError {
    #[error("{file}: no group {group:?} in the schedule (groups: {known})")]
    UnknownGroup {
        file: String,
        group: String,
        known: String,
    },
    #[error("strict schedule check failed, nothing was run:\n{}", problems.join("\n"))]
    StrictCheck { problems: Vec<String> },
    #[error(transparent)]
    Runner(#[from] RunnerError),
}

/// One line saying what is wrong with a task's args, if anything (asking
/// for help in a schedule is wrong too: nobody reads it).
fn args_problem(check: &ArgsCheck) -> Option<String> {
    match check {
        ArgsCheck::Ok | ArgsCheck::Unchecked => None,
        ArgsCheck::Help(_) => {
            Some("asks for help (--help/-h), which a scheduled task cannot use".into())
        }
        ArgsCheck::Invalid(message) => Some(
            message
                .lines()
                .next()
                .unwrap_or(message)
                .trim_start_matches("error: ")
                .to_owned(),
        ),
    }
}

fn task_args(task: &Task) -> Vec<String> {
    task.args.clone()
}

/// Run the due tasks of `schedule` per `opts`.
pub async fn run_scheduled(
    runner: &Runner,
    schedule: &Schedule,
    opts: &ScheduledOptions,
) -> Result<ScheduledReport, ScheduledError> {
    let groups: Vec<_> = match &opts.group {
        Some(g) => match schedule.group(g) {
            Some(group) => vec![group],
            None => {
                return Err(ScheduledError::UnknownGroup {
                    file: opts.file_label.clone(),
                    group: g.clone(),
                    known: schedule
                        .groups
                        .iter()
                        .map(|g| g.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        },
        None => schedule.groups.iter().collect(),
    };

    if opts.strict {
        let mut problems = Vec::new();
        for group in &groups {
            for task in group.tasks.iter().filter(|t| t.enabled) {
                match runner.registry.lookup(&task.command) {
                    Lookup::Available(c) => {
                        if let Some(problem) =
                            args_problem(&crate::args::check_args(&*c, &task.args))
                        {
                            problems.push(format!(
                                "{}:{}: groups.{}: command `{}`: args {:?}: {problem}",
                                opts.file_label, task.line, group.id, task.command, task.args
                            ));
                        }
                    }
                    Lookup::NotAvailable { name } => problems.push(format!(
                        "{}:{}: groups.{}: command `{}` (collector `{name}`) is not available in this build",
                        opts.file_label, task.line, group.id, task.command
                    )),
                    Lookup::Unknown => problems.push(format!(
                        "{}:{}: groups.{}: unknown command `{}`",
                        opts.file_label, task.line, group.id, task.command
                    )),
                }
            }
        }
        if !problems.is_empty() {
            return Err(ScheduledError::StrictCheck { problems });
        }
    }

    let mut report = ScheduledReport::default();
    for group in groups {
        let decisions: Vec<(&Task, Due)> = group
            .due_tasks(&opts.due)
            .into_iter()
            .map(|(task, due)| match (&opts.kinds, due) {
                (Some(kinds), Due::Due) if !kinds.contains(&task.kind) => {
                    (task, Due::NotDue("not in this slot's schedule kinds"))
                }
                (_, due) => (task, due),
            })
            .collect();
        let any_due = decisions.iter().any(|(_, d)| matches!(d, Due::Due));
        // Only calendar runs (daily/weekly/monthly tasks) feed the group's
        // `last_success_at` in /health/: an interval tick or a release slot
        // must not make a daily group look fresh.
        let calendar = opts.due.interval_minutes.is_none()
            && opts
                .kinds
                .as_ref()
                .is_none_or(|k| k.contains(&ScheduleKind::Daily));
        let group_run = if any_due && calendar {
            Some(
                runner
                    .storage
                    .runs()
                    .start_group_run(&group.id)
                    .await
                    .map_err(RunnerError::from)?,
            )
        } else {
            None
        };
        let (mut ran, mut failed) = (0u64, 0u64);
        for (index, (task, decision)) in decisions.into_iter().enumerate() {
            let slot_task = opts.slot_key.as_ref().map(|k| format!("{k}#{index}"));
            let already = match (&slot_task, &decision) {
                (Some(st), Due::Due) => runner
                    .storage
                    .runs()
                    .slot_task_succeeded(st)
                    .await
                    .map_err(RunnerError::from)?,
                _ => false,
            };
            let outcome = match decision {
                Due::Disabled => TaskOutcome::Disabled,
                Due::NotDue(reason) => TaskOutcome::NotDue(reason),
                Due::Due if already => {
                    ran += 1;
                    TaskOutcome::AlreadyDone
                }
                Due::Due => {
                    let req = RunRequest {
                        command: task.command.clone(),
                        args: task_args(task),
                        schedule_group: Some(group.id.clone()),
                        slot_task,
                    };
                    let checked = runner.check_args(&task.command, &req.args);
                    let run = match args_problem(&checked) {
                        Some(problem) => {
                            let message = format!(
                                "{}:{}: groups.{}: command `{}`: args {:?}: {problem}",
                                opts.file_label, task.line, group.id, task.command, req.args
                            );
                            runner.record_args_failure(&req, &message).await
                        }
                        None => runner.run(&req).await,
                    };
                    let run = match run {
                        Ok(run) => run,
                        Err(e) => {
                            if let Some(id) = group_run {
                                let _ = runner
                                    .storage
                                    .runs()
                                    .finish_group_run(id, ran, failed + 1)
                                    .await;
                            }
                            return Err(e.into());
                        }
                    };
                    match &run {
                        RunReport::Unknown { command } => {
                            let w = format!(
                                "{}:{}: groups.{}: unknown command `{command}`, skipped",
                                opts.file_label, task.line, group.id
                            );
                            tracing::warn!(group = %group.id, command = %command, "{w}");
                            report.warnings.push(w);
                            TaskOutcome::UnknownCommand
                        }
                        RunReport::NotAvailable { name, .. } => {
                            report.warnings.push(format!(
                                "{}:{}: groups.{}: collector `{name}` is not available in this build, recorded as not_available",
                                opts.file_label, task.line, group.id
                            ));
                            TaskOutcome::Ran(run)
                        }
                        RunReport::Succeeded { .. } => {
                            ran += 1;
                            TaskOutcome::Ran(run)
                        }
                        RunReport::Failed { .. } => {
                            ran += 1;
                            failed += 1;
                            TaskOutcome::Ran(run)
                        }
                    }
                }
            };
            report.tasks.push(TaskReport {
                group: group.id.clone(),
                command: task.command.clone(),
                line: task.line,
                outcome,
            });
        }
        if let Some(id) = group_run {
            runner
                .storage
                .runs()
                .finish_group_run(id, ran, failed)
                .await
                .map_err(RunnerError::from)?;
        }
        report.ran += ran as usize;
        report.failed += failed as usize;
    }
    Ok(report)
}
