//! `bdc search "query"`: ranked results from the embedded index (see
//! docs/search.md); `/api/search` and the dashboard's search page use the
//! same `bdc_search::find`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use bdc_config::Config;
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};

use crate::commands::UsageError;
use crate::output::{table, truncate};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// What to look for: words (all must match), "a phrase", -excluded; anything else is taken as words.
    #[arg(required_unless_present = "reindex")]
    pub query: Option<String>,
    /// Only this source (mailing-list, github, slack, discord, youtube, library-docs, ...).
    #[arg(long)]
    pub source: Option<String>,
    /// Only this kind (message, issue, pull_request, talk, doc_page, ...).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only documents at or after this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_parser = crate::output::parse_time)]
    pub since: Option<DateTime<Utc>>,
    /// Only this person's documents (identity id, address or login), across sources.
    #[arg(long)]
    pub person: Option<String>,
    /// Only this Boost library.
    #[arg(long)]
    pub library: Option<String>,
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Rebuild the index from the database first (a corrupted or lost index).
    #[arg(long)]
    pub reindex: bool,
}

pub async fn run(config: &Config, args: SearchArgs) -> Result<ExitCode> {
    let storage = crate::commands::connect_ready(config).await?;
    if args.reindex {
        let opts = bdc_search::SyncOptions {
            reindex: true,
            ..bdc_search::options(&bdc_search::SyncArgs::parse_args(&[])?)?
        };
        let c = bdc_search::sync::sync(&storage, &config.workspace_dir, &opts).await?;
        eprintln!(
            "search index rebuilt: {} documents, {} chunks",
            c.documents, c.chunks
        );
    }
    let Some(text) = args.query.as_deref() else {
        storage.close().await;
        return Ok(ExitCode::SUCCESS);
    };
    let filters = bdc_search::Filters {
        source: args.source.clone(),
        kind: args.kind.clone(),
        since: args.since,
        person: args.person.clone(),
        library: args.library.clone(),
        limit: args.limit,
    };
    let hits = match bdc_search::find(&storage, &config.workspace_dir, text, &filters).await {
        Ok(h) => h,
        Err(e @ bdc_search::FindError::Person { .. }) => {
            return Err(UsageError(format!("--{e}")).into());
        }
        Err(e) => return Err(e.into()),
    };
    storage.close().await;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&hits)?)?,
        Format::Table => {
            if hits.is_empty() {
                eprintln!("no results (is the index built? `bdc run search-index-sync`)");
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = hits
                .iter()
                .map(|h| {
                    vec![
                        format!("{:.2}", h.score),
                        h.at.format("%Y-%m-%d").to_string(),
                        h.source.clone(),
                        truncate(&h.title, 50),
                        truncate(&h.snippet.replace('\n', " "), 60),
                        h.url.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            write!(
                out,
                "{}",
                table(
                    &["SCORE", "DATE", "SOURCE", "TITLE", "SNIPPET", "URL"],
                    &rows
                )
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
