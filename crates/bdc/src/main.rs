//! `bdc`: the Boost Data Collector binary. Deliberately thin: argument
//! parsing, start-up (env, logging, TLS provider) and output formatting;
//! everything else lives in the `crates/` libraries.

mod cli;
mod cmd_audit;
mod cmd_audit_chain;
mod cmd_cli;
mod cmd_daemon;
mod cmd_demo;
mod cmd_greenness;
mod cmd_identities;
mod cmd_search;
mod collectors;
mod commands;
mod output;
mod schema;
mod sections;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    // .env is optional; a malformed one is reported, not ignored.
    let dotenv_error = match dotenvy::dotenv() {
        Ok(_) => None,
        Err(e) if e.not_found() => None,
        Err(e) => Some(e),
    };
    let cli = Cli::parse_from(cmd_cli::rewrite_help_run(std::env::args().collect()));
    let long_running = matches!(
        cli.command,
        Command::Serve(_) | Command::Worker(_) | Command::Scheduler(_)
    );
    cmd_cli::init_logging(cli.log_format, cli.verbose, long_running);
    if let Some(e) = dotenv_error {
        eprintln!("error: cannot load .env: {e}");
        return ExitCode::from(2);
    }
    // One TLS crypto provider for the whole process (reqwest and sqlx use rustls).
    let _ = rustls::crypto::ring::default_provider().install_default();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(commands::exit_code_for(&e))
        }
    }
}
