//! Checking a collector's arguments against its flags before a run.
//!
//! A collector that describes its flags ([`Collector::args_command`]) gets:
//! `bdc run <name> --help` printing its own help (nothing recorded), a
//! wrong flag on the command line refused as a usage error (nothing
//! recorded), and `run-scheduled --strict` checking every selected task's
//! `args` before anything runs.

use crate::Collector;

/// The outcome of [`check_args`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsCheck {
    /// The arguments parse.
    Ok,
    /// Help (or version) was asked for: the rendered text.
    Help(String),
    /// The arguments do not parse: clap's message, with the usage line.
    Invalid(String),
    /// The collector does not describe its flags; its own validation decides.
    Unchecked,
}

/// The collector's flags as a clap command named `bdc run <name>`.
pub fn usage_command(collector: &dyn Collector) -> Option<clap::Command> {
    collector.args_command().map(|c| {
        c.name(collector.name())
            .bin_name(format!("bdc run {}", collector.name()))
    })
}

/// Parse `args` with the collector's flags (syntax only: required
/// combinations and values are still checked by `validate_config`).
pub fn check_args(collector: &dyn Collector, args: &[String]) -> ArgsCheck {
    let Some(cmd) = usage_command(collector) else {
        return ArgsCheck::Unchecked;
    };
    let argv = std::iter::once(collector.name().to_owned()).chain(args.iter().cloned());
    match cmd.try_get_matches_from(argv) {
        Ok(_) => ArgsCheck::Ok,
        Err(e) => {
            let text = e.render().to_string();
            match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    ArgsCheck::Help(text)
                }
                _ => ArgsCheck::Invalid(text.trim_end().to_owned()),
            }
        }
    }
}

/// The help text of a collector (`bdc run <name> --help`), if it describes
/// its flags.
pub fn help_text(collector: &dyn Collector) -> Option<String> {
    usage_command(collector).map(|mut c| c.render_help().to_string())
}
