//! Parsing and validation of schedule YAML.

use bdc_schedule::{
    Due, DueContext, Schedule, ScheduleError, ScheduleKind, TimeOfDay, ValidationError,
};

const FILE: &str = "config/schedule.yaml";

fn invalid(yaml: &str) -> Vec<ValidationError> {
    match Schedule::parse(yaml, FILE) {
        Err(ScheduleError::Invalid { file, errors }) => {
            assert_eq!(file, FILE);
            assert!(!errors.is_empty());
            errors
        }
        other => panic!("expected validation errors, got {other:?}"),
    }
}

/// Asserts the YAML is invalid with an error at `line` for `path` whose
/// message contains every string in `needles`; checks the rendered form.
#[track_caller]
fn assert_error(yaml: &str, line: usize, path: &str, needles: &[&str]) -> ValidationError {
    let errors = invalid(yaml);
    let Some(error) = errors.iter().find(|e| e.path == path) else {
        panic!("no error for path {path}; got:\n{}", render(&errors));
    };
    assert_eq!(error.line, line, "{error}");
    assert_eq!(error.file, FILE);
    let text = error.to_string();
    assert!(text.starts_with(&format!("{FILE}:{line}:")), "{text}");
    assert!(text.contains(&format!(": {path}: ")), "{text}");
    for needle in needles {
        assert!(text.contains(needle), "{text:?} should contain {needle:?}");
    }
    error.clone()
}

fn render(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A one-group schedule with the given task lines (indented by the caller).
fn with_tasks(tasks: &str) -> String {
    format!("groups:\n  g:\n    default_time: \"02:00\"\n    tasks:\n{tasks}")
}

const REALISTIC: &str = r#"# Boost Data Collector schedule (times are UTC)
groups:
  github:
    default_time: "02:00"
    tasks:
      - command: run_boost_usage_tracker
        schedule: daily
        args: ["--task", "monitor_content"]
      - command: run_update_created_repos_by_language
        schedule: weekly
        on: sunday
      - command: run_boost_github_activity_tracker
        schedule: daily
        args: ["--repo", "boostorg/json", "--since-days", 7]
      - command: run_boost_library_usage_dashboard
        schedule: monthly
        on: 1
      - command: run_clang_github_tracker
        schedule: weekly
        day_of_week: 2
        enabled: false
      - command: collect_boost_libraries
        schedule: on_release

  papers:
    default_time: "03:30"
    tasks:
      - command: run_wg21_paper_tracker
        schedule: monthly
        day_of_month: 31

  chat:
    tasks:
      - command: run_cppa_slack_tracker
        schedule: interval
        minutes: 30
      - command: run_discord_activity_tracker
        schedule: interval
        minutes: 60

  mailing_list:
    default_time: "00:10"
    tasks:
      - command: run_boost_mailing_list_tracker
        schedule: weekly
        day_of_week: FRI
"#;

#[test]
fn realistic_schedule_parses() {
    let s = Schedule::parse(REALISTIC, FILE).expect("valid schedule");
    let ids: Vec<&str> = s.groups.iter().map(|g| g.id.as_str()).collect();
    assert_eq!(ids, ["github", "papers", "chat", "mailing_list"]);

    let github = s.group("github").expect("github group");
    assert_eq!(github.default_time, TimeOfDay::new(2, 0));
    assert_eq!(
        github.default_time.map(|t| t.to_string()).as_deref(),
        Some("02:00")
    );
    let commands: Vec<&str> = github.tasks.iter().map(|t| t.command.as_str()).collect();
    assert_eq!(
        commands,
        [
            "run_boost_usage_tracker",
            "run_update_created_repos_by_language",
            "run_boost_github_activity_tracker",
            "run_boost_library_usage_dashboard",
            "run_clang_github_tracker",
            "collect_boost_libraries",
        ]
    );
    let t = &github.tasks[0];
    assert_eq!(t.kind, ScheduleKind::Daily);
    assert!(t.enabled);
    assert_eq!(t.args, ["--task", "monitor_content"]);
    assert_eq!(t.line, 6);
    assert_eq!(github.tasks[1].day_of_week, Some(6));
    assert_eq!(github.tasks[1].line, 9);
    assert_eq!(
        github.tasks[2].args,
        ["--repo", "boostorg/json", "--since-days", "7"]
    );
    assert_eq!(github.tasks[3].day_of_month, Some(1));
    assert_eq!(github.tasks[4].day_of_week, Some(2));
    assert!(!github.tasks[4].enabled);
    assert_eq!(github.tasks[5].kind, ScheduleKind::OnRelease);

    let papers = s.group("papers").expect("papers");
    assert_eq!(papers.default_time, TimeOfDay::new(3, 30));
    assert_eq!(papers.tasks[0].day_of_month, Some(31));
    assert_eq!(papers.tasks[0].command, "run_wg21_paper_tracker");

    let chat = s.group("chat").expect("chat");
    assert_eq!(chat.default_time, None);
    assert_eq!(chat.tasks[0].minutes, Some(30));
    assert_eq!(chat.tasks[1].minutes, Some(60));
    assert_eq!(chat.tasks[1].command, "run_discord_activity_tracker");

    let ml = s.group("mailing_list").expect("mailing_list");
    assert_eq!(ml.tasks[0].command, "run_boost_mailing_list_tracker");
    assert_eq!(ml.tasks[0].day_of_week, Some(4));
    assert!(s.group("nope").is_none());
    assert_eq!(s.tasks().count(), 10);

    // Sunday 2024-03-31: daily tasks, the Sunday task and the day-31 task.
    let date = chrono::NaiveDate::from_ymd_opt(2024, 3, 31).expect("date");
    let ctx = DueContext::for_date(date, None, false);
    let due: Vec<&str> = s
        .groups
        .iter()
        .flat_map(|g| g.due_tasks(&ctx))
        .filter(|(_, d)| d.is_due())
        .map(|(t, _)| t.command.as_str())
        .collect();
    assert_eq!(
        due,
        [
            "run_boost_usage_tracker",
            "run_update_created_repos_by_language",
            "run_boost_github_activity_tracker",
            "run_wg21_paper_tracker",
        ]
    );
    let decisions = github.due_tasks(&ctx);
    assert_eq!(decisions[4].1, Due::Disabled);

    // Interval tick 60 with a release: both chat tasks plus the on_release task.
    let ctx = DueContext::for_date(date, Some(60), true);
    let due: Vec<&str> = s
        .tasks()
        .filter(|(_, t)| t.due(&ctx).is_due())
        .map(|(_, t)| t.command.as_str())
        .collect();
    assert_eq!(
        due,
        [
            "collect_boost_libraries",
            "run_cppa_slack_tracker",
            "run_discord_activity_tracker"
        ]
    );
}

#[test]
fn weekday_names_and_numbers() {
    let names = [
        ["mon", "monday", "Mon", "MONDAY"],
        ["tue", "tuesday", "Tue", "TUESDAY"],
        ["wed", "wednesday", "Wed", "WEDNESDAY"],
        ["thu", "thursday", "Thu", "THURSDAY"],
        ["fri", "friday", "Fri", "FRIDAY"],
        ["sat", "saturday", "Sat", "SATURDAY"],
        ["sun", "sunday", "Sun", "SUNDAY"],
    ];
    for (expected, spellings) in names.iter().enumerate() {
        let number = expected.to_string();
        for value in spellings.iter().copied().chain([number.as_str()]) {
            for key in ["on", "day_of_week"] {
                let yaml = with_tasks(&format!(
                    "      - command: c\n        schedule: weekly\n        {key}: {value}\n"
                ));
                let s = Schedule::parse(&yaml, FILE).unwrap_or_else(|e| panic!("{value}: {e}"));
                assert_eq!(
                    s.groups[0].tasks[0].day_of_week,
                    Some(expected as u8),
                    "{key}: {value}"
                );
            }
        }
    }
}

#[test]
fn bad_weekdays() {
    for (value, shown) in [
        ("7", "integer 7"),
        ("-1", "integer -1"),
        ("funday", "string \"funday\""),
    ] {
        let yaml = with_tasks(&format!(
            "      - command: c\n        schedule: weekly\n        day_of_week: {value}\n"
        ));
        assert_error(
            &yaml,
            7,
            "groups.g.tasks[0].day_of_week",
            &[shown, "monday..sunday", "0 = Monday"],
        );
    }
    let yaml = with_tasks("      - command: c\n        schedule: weekly\n        on: someday\n");
    assert_error(
        &yaml,
        7,
        "groups.g.tasks[0].on",
        &["\"someday\"", "weekday"],
    );
}

#[test]
fn monthly_days() {
    for key in ["on", "day_of_month"] {
        for day in [1u8, 15, 28, 29, 30, 31] {
            let yaml = with_tasks(&format!(
                "      - command: c\n        schedule: monthly\n        {key}: {day}\n"
            ));
            let s = Schedule::parse(&yaml, FILE).expect("valid");
            assert_eq!(s.groups[0].tasks[0].day_of_month, Some(day));
        }
        for day in ["0", "32", "-3", "1.5", "first"] {
            let yaml = with_tasks(&format!(
                "      - command: c\n        schedule: monthly\n        {key}: {day}\n"
            ));
            let path = format!("groups.g.tasks[0].{key}");
            assert_error(&yaml, 7, &path, &[day, "1 to 31"]);
        }
    }
}

#[test]
fn optional_fields_and_defaults() {
    let yaml = "groups:\n  g:\n    tasks:\n      - command: c\n        schedule: daily\n        args:\n      - command: d\n        schedule: on_release\n        enabled: false\n        args: [1.50, 0x1F, yes, \"quoted\", plain words]\n";
    let s = Schedule::parse(yaml, FILE).expect("valid");
    let g = &s.groups[0];
    assert_eq!(g.default_time, None);
    assert!(g.tasks[0].enabled);
    assert!(g.tasks[0].args.is_empty());
    assert!(!g.tasks[1].enabled);
    assert_eq!(
        g.tasks[1].args,
        ["1.50", "0x1F", "yes", "quoted", "plain words"]
    );
    assert_eq!(g.tasks[1].line, 7);

    let yaml = "groups:\n  g:\n    tasks: []\n  h:\n    default_time: 4:10\n    tasks: []\n";
    let s = Schedule::parse(yaml, FILE).expect("valid");
    assert_eq!(s.groups.len(), 2);
    assert_eq!(
        s.group("h").and_then(|g| g.default_time),
        TimeOfDay::new(4, 10)
    );
}

#[test]
fn unknown_top_level_key() {
    let yaml = "groups:\n  g:\n    tasks: []\nsettings:\n  x: 1\n";
    assert_error(
        yaml,
        4,
        "settings",
        &["unknown key \"settings\"", "allowed keys here: groups"],
    );
}

#[test]
fn unknown_group_key() {
    let yaml = "groups:\n  g:\n    tasks: []\n    time: \"01:00\"\n";
    let e = assert_error(
        yaml,
        4,
        "groups.g.time",
        &["unknown key \"time\"", "default_time, tasks"],
    );
    assert_eq!(e.column, Some(5));
    assert_eq!(
        e.to_string(),
        format!(
            "{FILE}:4:5: groups.g.time: unknown key \"time\"; allowed keys here: default_time, tasks"
        )
    );
}

#[test]
fn unknown_task_key() {
    let yaml = with_tasks(
        "      - command: c\n        schedule: daily\n      - command: d\n        schedule: daily\n        timeout: 30\n",
    );
    assert_error(
        &yaml,
        9,
        "groups.g.tasks[1].timeout",
        &["unknown key \"timeout\"", "command, schedule, enabled"],
    );
}

#[test]
fn bad_schedule_value() {
    let yaml = with_tasks("      - command: c\n        schedule: hourly\n");
    let e = assert_error(
        &yaml,
        6,
        "groups.g.tasks[0].schedule",
        &["\"hourly\"", "daily, weekly, monthly, interval, on_release"],
    );
    assert_eq!(e.column, Some(19));
    let yaml = with_tasks("      - command: c\n        schedule: Daily\n");
    assert_error(&yaml, 6, "groups.g.tasks[0].schedule", &["\"Daily\""]);
    let yaml = with_tasks("      - command: c\n");
    assert_error(
        &yaml,
        5,
        "groups.g.tasks[0].schedule",
        &["missing required key `schedule`"],
    );
}

#[test]
fn missing_or_bad_command() {
    let yaml = with_tasks(
        "      - command: c\n        schedule: daily\n      - schedule: daily\n        enabled: true\n",
    );
    assert_error(
        &yaml,
        7,
        "groups.g.tasks[1].command",
        &["missing required key `command`"],
    );
    let yaml = with_tasks("      - command: \"\"\n        schedule: daily\n");
    assert_error(
        &yaml,
        5,
        "groups.g.tasks[0].command",
        &["non-empty string", "\"\""],
    );
    let yaml = with_tasks("      - command: 42\n        schedule: daily\n");
    assert_error(&yaml, 5, "groups.g.tasks[0].command", &["integer 42"]);
}

#[test]
fn bad_minutes() {
    for (value, shown) in [
        ("0", "integer 0"),
        ("-5", "integer -5"),
        ("\"30\"", "string \"30\""),
        ("thirty", "string \"thirty\""),
        ("1.5", "number 1.5"),
        ("[30]", "a list"),
    ] {
        let yaml = with_tasks(&format!(
            "      - command: c\n        schedule: interval\n        minutes: {value}\n"
        ));
        assert_error(
            &yaml,
            7,
            "groups.g.tasks[0].minutes",
            &["positive whole number", shown],
        );
    }
    let yaml = with_tasks("      - command: c\n        schedule: interval\n");
    assert_error(
        &yaml,
        5,
        "groups.g.tasks[0].minutes",
        &["missing required key `minutes`"],
    );
}

#[test]
fn kind_specific_keys_on_the_wrong_kind() {
    let yaml = with_tasks("      - command: c\n        schedule: daily\n        minutes: 30\n");
    assert_error(
        &yaml,
        7,
        "groups.g.tasks[0].minutes",
        &["only allowed with `schedule: interval`", "is daily"],
    );
    let yaml = with_tasks(
        "      - command: c\n        schedule: monthly\n        on: 1\n        day_of_week: 1\n",
    );
    assert_error(
        &yaml,
        8,
        "groups.g.tasks[0].day_of_week",
        &["only allowed with `schedule: weekly`", "is monthly"],
    );
    let yaml = with_tasks(
        "      - command: c\n        schedule: weekly\n        on: 1\n        day_of_month: 1\n",
    );
    assert_error(
        &yaml,
        8,
        "groups.g.tasks[0].day_of_month",
        &["only allowed with `schedule: monthly`", "is weekly"],
    );
    let yaml = with_tasks("      - command: c\n        schedule: on_release\n        on: monday\n");
    assert_error(
        &yaml,
        7,
        "groups.g.tasks[0].on",
        &["`on` is only allowed", "is on_release"],
    );
    let yaml = with_tasks(
        "      - command: c\n        schedule: interval\n        minutes: 5\n        on: 3\n",
    );
    assert_error(
        &yaml,
        8,
        "groups.g.tasks[0].on",
        &["`on` is only allowed", "is interval"],
    );
}

#[test]
fn weekly_and_monthly_need_exactly_one_day() {
    let yaml = with_tasks(
        "      - command: c\n        schedule: daily\n      - command: w\n        schedule: weekly\n",
    );
    assert_error(
        &yaml,
        7,
        "groups.g.tasks[1]",
        &["`schedule: weekly` requires `on` or `day_of_week`"],
    );
    let yaml = with_tasks("      - command: m\n        schedule: monthly\n");
    assert_error(
        &yaml,
        5,
        "groups.g.tasks[0]",
        &["`schedule: monthly` requires `on` or `day_of_month`"],
    );
    let yaml = with_tasks(
        "      - command: w\n        schedule: weekly\n        on: monday\n        day_of_week: 0\n",
    );
    assert_error(
        &yaml,
        8,
        "groups.g.tasks[0].day_of_week",
        &["both `on` and `day_of_week`"],
    );
    let yaml = with_tasks(
        "      - command: w\n        schedule: weekly\n        day_of_week: 0\n        on: monday\n",
    );
    assert_error(
        &yaml,
        8,
        "groups.g.tasks[0].on",
        &["both `on` and `day_of_week`"],
    );
    let yaml = with_tasks(
        "      - command: m\n        schedule: monthly\n        on: 1\n        day_of_month: 1\n",
    );
    assert_error(
        &yaml,
        8,
        "groups.g.tasks[0].day_of_month",
        &["both `on` and `day_of_month`"],
    );
}

#[test]
fn bad_default_time() {
    for (value, shown) in [
        ("\"25:00\"", "\"25:00\""),
        ("\"12:60\"", "\"12:60\""),
        ("\"noon\"", "\"noon\""),
        ("\"1200\"", "\"1200\""),
        ("[1, 2]", "a list"),
    ] {
        let yaml = format!("groups:\n  g:\n    default_time: {value}\n    tasks: []\n");
        assert_error(
            &yaml,
            3,
            "groups.g.default_time",
            &["HH:MM", "24-hour", shown],
        );
    }
}

#[test]
fn enabled_must_be_boolean() {
    let yaml = with_tasks("      - command: c\n        schedule: daily\n        enabled: maybe\n");
    assert_error(
        &yaml,
        7,
        "groups.g.tasks[0].enabled",
        &["true or false", "\"maybe\""],
    );
}

#[test]
fn args_must_be_a_list_of_scalars() {
    let yaml = with_tasks("      - command: c\n        schedule: daily\n        args: --verbose\n");
    assert_error(
        &yaml,
        7,
        "groups.g.tasks[0].args",
        &["list of strings", "\"--verbose\""],
    );
    let yaml = with_tasks(
        "      - command: c\n        schedule: daily\n        args:\n          - ok\n          - [nested]\n",
    );
    assert_error(&yaml, 9, "groups.g.tasks[0].args[1]", &["a list"]);
}

#[test]
fn duplicate_group_and_duplicate_key() {
    let yaml = "groups:\n  g:\n    tasks: []\n  h:\n    tasks: []\n  g:\n    tasks: []\n";
    assert_error(yaml, 6, "groups.g", &["duplicate group id \"g\"", "line 2"]);
    let yaml =
        with_tasks("      - command: c\n        schedule: daily\n        schedule: weekly\n");
    assert_error(
        &yaml,
        7,
        "groups.g.tasks[0].schedule",
        &["duplicate key \"schedule\"", "line 6"],
    );
}

#[test]
fn structural_errors() {
    for yaml in ["", "   \n", "# just a comment\n"] {
        let errors = invalid(yaml);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "groups");
        assert!(errors[0].message.contains("empty"), "{}", errors[0]);
    }
    assert_error("", 1, "groups", &["empty"]);
    assert_error(
        "other: 1\n",
        1,
        "groups",
        &["missing required top-level key `groups`"],
    );
    assert_error(
        "groups:\n",
        1,
        "groups",
        &["expected a mapping of group ids", "null"],
    );
    assert_error("groups: {}\n", 1, "groups", &["at least one group"]);
    assert_error("groups: [a]\n", 1, "groups", &["a list"]);
    assert_error("- a\n", 1, "<root>", &["a list"]);
    assert_error(
        "groups:\n  g:\n",
        2,
        "groups.g",
        &["expected a group mapping", "null"],
    );
    assert_error(
        "groups:\n  g:\n    default_time: \"01:00\"\n",
        2,
        "groups.g.tasks",
        &["missing required key `tasks`"],
    );
    assert_error(
        "groups:\n  g:\n    tasks: daily\n",
        3,
        "groups.g.tasks",
        &["list of tasks", "\"daily\""],
    );
    assert_error(
        "groups:\n  g:\n    tasks:\n      - run_x\n",
        4,
        "groups.g.tasks[0]",
        &["task mapping", "\"run_x\""],
    );
    assert_error(
        "groups:\n  \"\":\n    tasks: []\n",
        2,
        "groups.\"\"",
        &["non-empty"],
    );
    assert_error(
        "groups:\n  \"my group\":\n    tasks: [1]\n",
        3,
        "groups.\"my group\".tasks[0]",
        &["task mapping"],
    );
}

#[test]
fn syntax_error_is_single_with_location() {
    let yaml = "groups:\n  g:\n    tasks:\n      - command: [run_x\n        schedule: daily\n";
    match Schedule::parse(yaml, FILE) {
        Err(e @ ScheduleError::Syntax { .. }) => {
            let ScheduleError::Syntax {
                file,
                line,
                column,
                message,
            } = &e
            else {
                unreachable!()
            };
            assert_eq!(file, FILE);
            assert!(line.is_some() && column.is_some(), "{e}");
            assert!(!message.contains(" at line "), "{message}");
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("{FILE}:{}:", line.unwrap_or(0))),
                "{text}"
            );
            assert!(text.contains("YAML syntax error"), "{text}");
        }
        other => panic!("expected syntax error, got {other:?}"),
    }
    let yaml = "groups:\n  g:\n   tasks: []\n  bad indent: [\n";
    let e = Schedule::parse(yaml, FILE).expect_err("syntax error");
    assert!(
        matches!(e, ScheduleError::Syntax { line: Some(_), .. }),
        "{e}"
    );
    let e =
        Schedule::parse("groups:\n  g: {tasks: []}\n---\nx: 1\n", FILE).expect_err("two documents");
    assert!(
        matches!(e, ScheduleError::Syntax { line: Some(_), .. }),
        "{e}"
    );
    assert!(e.to_string().contains("more than one YAML document"), "{e}");
}

#[test]
fn all_errors_are_collected_and_listed_one_per_line() {
    let yaml = "groups:\n  g:\n    default_time: \"25:00\"\n    tasks:\n      - command: a\n        schedule: hourly\n      - command: b\n        schedule: interval\n        minutes: 0\n  g:\n    tasks: []\nextra: true\n";
    let err = Schedule::parse(yaml, FILE).expect_err("invalid");
    let ScheduleError::Invalid { errors, .. } = &err else {
        panic!("{err:?}")
    };
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [3, 6, 9, 10, 12]);
    let text = err.to_string();
    assert_eq!(text.lines().count(), 5, "{text}");
    for (rendered, error) in text.lines().zip(errors) {
        assert_eq!(rendered, error.to_string());
        assert!(rendered.starts_with(&format!("{FILE}:{}:", error.line)));
    }
}

#[test]
fn anchors_and_merge_keys_work() {
    let yaml = "groups:\n  g:\n    tasks:\n      - &base {command: c, schedule: daily, args: [--x]}\n      - *base\n      - <<: *base\n        schedule: weekly\n        on: tue\n";
    let s = Schedule::parse(yaml, FILE).expect("valid");
    let tasks = &s.groups[0].tasks;
    assert_eq!(tasks.len(), 3);
    assert_eq!(tasks[1].args, ["--x"]);
    assert_eq!(tasks[2].kind, ScheduleKind::Weekly);
    assert_eq!(tasks[2].day_of_week, Some(1));
    assert_eq!(tasks[2].command, "c");
}

#[test]
fn from_path_reads_files_and_names_the_path() {
    let dir = std::env::temp_dir().join(format!("bdc-schedule-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("schedule.yaml");
    std::fs::write(&path, REALISTIC).expect("write");
    let s = Schedule::from_path(&path).expect("valid");
    assert_eq!(s.groups.len(), 4);

    std::fs::write(
        &path,
        "groups:\n  g:\n    tasks:\n      - command: c\n        schedule: often\n",
    )
    .expect("write");
    let text = Schedule::from_path(&path).expect_err("invalid").to_string();
    assert!(
        text.starts_with(&format!("{}:5:19: ", path.display())),
        "{text}"
    );

    let missing = dir.join("missing.yaml");
    let err = Schedule::from_path(&missing).expect_err("missing");
    assert!(matches!(err, ScheduleError::Io { .. }));
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn schedule_kind_words() {
    for (kind, word) in
        ScheduleKind::ALL
            .into_iter()
            .zip(["daily", "weekly", "monthly", "interval", "on_release"])
    {
        assert_eq!(kind.to_string(), word);
        assert_eq!(word.parse::<ScheduleKind>(), Ok(kind));
        let from_yaml: ScheduleKind = serde_saphyr::from_str(word).expect("deserialize");
        assert_eq!(from_yaml, kind);
    }
    assert!("hourly".parse::<ScheduleKind>().is_err());
}
