//! `bdc`: the Boost Data Collector binary. Deliberately thin: argument
//! parsing, start-up (env, logging, TLS provider) and output formatting;
//! everything else lives in the `crates/` libraries.

mod cli;
mod cmd_audit;
mod cmd_audit_chain;
mod cmd_daemon;
mod cmd_greenness;
mod collectors;
mod commands;
mod output;
mod schema;
mod sections;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, LogFormat};

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("BDC_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

fn main() -> ExitCode {
    // .env is optional; a malformed one is reported, not ignored.
    let dotenv_error = match dotenvy::dotenv() {
        Ok(_) => None,
        Err(e) if e.not_found() => None,
        Err(e) => Some(e),
    };
    let cli = Cli::parse();
    init_logging(cli.log_format);
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
