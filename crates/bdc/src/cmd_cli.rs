//! The CLI's own plumbing: logging set-up (quiet by default for
//! interactive commands), shell completions, the man page, and
//! `bdc run <collector> --help` / usage errors.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use bdc_collector::{ArgsCheck, CATALOG, Lookup};
use clap::{Args, CommandFactory, ValueEnum};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::cli::{Cli, LogFormat};

/// The log filter: `warn` for interactive commands, `info` for the
/// long-running roles; each `-v` one level more; then the directives of
/// `BDC_LOG` (or `RUST_LOG`) on top.
pub fn log_filter(verbose: u8, long_running: bool, env_directives: Option<&str>) -> EnvFilter {
    let level = match (verbose, long_running) {
        (0, false) => "warn",
        (0, true) | (1, _) => "info,sqlx=warn",
        (2, _) => "debug,sqlx=info,hyper_util=info,h2=info,rustls=info",
        _ => "trace",
    };
    let base = EnvFilter::new(level);
    match env_directives.map(str::trim).filter(|d| !d.is_empty()) {
        None => base,
        Some(d) => match EnvFilter::try_new(format!("{level},{d}")) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("warning: ignoring BDC_LOG {d:?}: {e}");
                base
            }
        },
    }
}

/// Writes each log line through [`bdc_collector::progress::suspend`], so
/// a progress bar is cleared while the line is written and redrawn after.
#[derive(Debug, Clone, Copy, Default)]
pub struct SuspendingStderr;

/// One log line, written to stderr when dropped.
pub struct LineWriter(Vec<u8>);

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let bytes = std::mem::take(&mut self.0);
            bdc_collector::progress::suspend(|| {
                let _ = std::io::stderr().lock().write_all(&bytes);
            });
        }
    }
}

impl<'a> MakeWriter<'a> for SuspendingStderr {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> LineWriter {
        LineWriter(Vec::new())
    }
}

pub fn init_logging(format: LogFormat, verbose: u8, long_running: bool) {
    let env = std::env::var("BDC_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| std::env::var("RUST_LOG").ok());
    let filter = log_filter(verbose, long_running, env.as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(SuspendingStderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => {
            use std::io::IsTerminal;
            builder.with_ansi(std::io::stderr().is_terminal()).init()
        }
    }
}

/// `bdc help run <collector> [...]` is `bdc run <collector> --help`.
pub fn rewrite_help_run(mut argv: Vec<String>) -> Vec<String> {
    // Skip the global flags before the first word.
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        if a == "--log-format" {
            i += 2;
        } else if a.starts_with('-') && a != "--" {
            i += 1;
        } else {
            break;
        }
    }
    if argv.get(i).map(String::as_str) == Some("help")
        && argv.get(i + 1).map(String::as_str) == Some("run")
        && argv.len() > i + 2
    {
        argv.remove(i);
        argv.push("--help".into());
    }
    argv
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

pub fn completions(args: CompletionsArgs) -> Result<ExitCode> {
    use clap_complete::shells;
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    match args.shell {
        Shell::Bash => clap_complete::generate(shells::Bash, &mut cmd, "bdc", &mut out),
        Shell::Zsh => clap_complete::generate(shells::Zsh, &mut cmd, "bdc", &mut out),
        Shell::Fish => clap_complete::generate(shells::Fish, &mut cmd, "bdc", &mut out),
        Shell::Powershell => clap_complete::generate(shells::PowerShell, &mut cmd, "bdc", &mut out),
        Shell::Elvish => clap_complete::generate(shells::Elvish, &mut cmd, "bdc", &mut out),
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn manpage() -> Result<ExitCode> {
    let man = clap_mangen::Man::new(Cli::command());
    let mut out = std::io::stdout().lock();
    man.render(&mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn run_help() -> String {
    let mut cmd = Cli::command();
    cmd.build();
    match cmd.find_subcommand_mut("run") {
        Some(run) => run.render_help().to_string(),
        None => String::new(),
    }
}

/// What `bdc run` should do before anything touches the database.
pub enum RunPrecheck {
    /// Go on with the run.
    Run {
        collector: String,
        args: Vec<String>,
    },
    /// Done: help printed (0) or a usage error printed (2).
    Exit(ExitCode),
}

/// Help and argument syntax of `bdc run`, checked without recording a run.
pub fn precheck_run(args: crate::cli::RunArgs) -> RunPrecheck {
    let Some(name) = args.collector else {
        if args.help {
            print!("{}", run_help());
            return RunPrecheck::Exit(ExitCode::SUCCESS);
        }
        eprintln!(
            "error: which collector? `bdc run <collector> [args...]`; known collectors: {}\n\n{}",
            CATALOG
                .iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
                .join(", "),
            run_help()
        );
        return RunPrecheck::Exit(ExitCode::from(2));
    };
    let mut rest = args.args;
    if args.help {
        rest.insert(0, "--help".into());
    }
    let registry = crate::collectors::registry();
    match registry.lookup(&name) {
        Lookup::Available(c) => match bdc_collector::check_args(&*c, &rest) {
            ArgsCheck::Ok => RunPrecheck::Run {
                collector: name,
                args: rest,
            },
            ArgsCheck::Help(text) => {
                print!("{text}");
                RunPrecheck::Exit(ExitCode::SUCCESS)
            }
            ArgsCheck::Invalid(message) => {
                eprintln!("{message}");
                RunPrecheck::Exit(ExitCode::from(2))
            }
            ArgsCheck::Unchecked if args.help => {
                println!(
                    "`{}` does not describe its flags; see docs/collectors.md",
                    c.name()
                );
                RunPrecheck::Exit(ExitCode::SUCCESS)
            }
            ArgsCheck::Unchecked => RunPrecheck::Run {
                collector: name,
                args: rest,
            },
        },
        Lookup::NotAvailable { name: stable } if args.help => {
            let summary = CATALOG
                .iter()
                .find(|e| e.name == stable)
                .map(|e| e.summary)
                .unwrap_or("");
            println!("{stable}: {summary}\n\nThis collector is not available in this build.");
            RunPrecheck::Exit(ExitCode::SUCCESS)
        }
        Lookup::NotAvailable { .. } => RunPrecheck::Run {
            collector: name,
            args: rest,
        },
        Lookup::Unknown => {
            eprintln!(
                "error: unknown collector {name:?}; known collectors: {}",
                CATALOG
                    .iter()
                    .map(|e| e.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            RunPrecheck::Exit(ExitCode::from(2))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn help_run_is_rewritten() {
        assert_eq!(
            rewrite_help_run(v(&["bdc", "help", "run", "mailing-list"])),
            v(&["bdc", "run", "mailing-list", "--help"])
        );
        assert_eq!(
            rewrite_help_run(v(&[
                "bdc",
                "-v",
                "--log-format",
                "json",
                "help",
                "run",
                "git-history"
            ])),
            v(&[
                "bdc",
                "-v",
                "--log-format",
                "json",
                "run",
                "git-history",
                "--help"
            ])
        );
        assert_eq!(
            rewrite_help_run(v(&["bdc", "help", "run"])),
            v(&["bdc", "help", "run"])
        );
        assert_eq!(
            rewrite_help_run(v(&["bdc", "run", "help", "run", "x"])),
            v(&["bdc", "run", "help", "run", "x"])
        );
    }

    #[test]
    fn the_whole_cli_is_consistent() {
        // Global -v/--verbose and --log-format clash with no subcommand flag.
        Cli::command().debug_assert();
    }

    #[test]
    fn filter_levels() {
        assert_eq!(log_filter(0, false, None).to_string(), "warn");
        assert!(log_filter(0, true, None).to_string().contains("info"));
        assert!(log_filter(2, false, None).to_string().contains("debug"));
        let f = log_filter(0, false, Some("bdc_collector=debug")).to_string();
        assert!(f.contains("bdc_collector=debug"), "{f}");
        assert_eq!(log_filter(0, false, Some("=[bad")).to_string(), "warn");
    }
}
