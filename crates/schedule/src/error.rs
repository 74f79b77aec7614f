//! Error types for loading and validating a schedule file.

use std::fmt;
use std::path::PathBuf;

/// One problem found while validating a (syntactically valid) schedule file.
///
/// Displays as `<file>:<line>:<column>: <key path>: <message>`, for example
/// `schedule.yaml:12:19: groups.daily_github.tasks[2].schedule: invalid value "hourly"; expected one of: daily, weekly, monthly, interval, on_release`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Label of the file the error was found in (a path or any name given to [`crate::Schedule::parse`]).
    pub file: String,
    /// 1-based line of the offending key or value.
    pub line: usize,
    /// 1-based column of the offending key or value, when known.
    pub column: Option<usize>,
    /// Dotted key path, e.g. `groups.daily_github.tasks[2].schedule`.
    pub path: String,
    /// What is wrong, including the bad value and what is allowed.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(column) = self.column {
            write!(f, ":{column}")?;
        }
        write!(f, ": {}: {}", self.path, self.message)
    }
}

impl std::error::Error for ValidationError {}

/// Error returned when a schedule cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The schedule file could not be read.
    #[error("{}: cannot read schedule file: {source}", path.display())]
    Io {
        /// The path that was being read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not well-formed YAML. Parsing stops at the first syntax error.
    #[error("{}: YAML syntax error: {message}", location_prefix(file, *line, *column))]
    Syntax {
        /// Label of the file.
        file: String,
        /// 1-based line of the error, when known.
        line: Option<usize>,
        /// 1-based column of the error, when known.
        column: Option<usize>,
        /// The parser's description of the problem (without location).
        message: String,
    },
    /// The file is well-formed YAML but does not follow the schedule format.
    /// Holds every problem found; displays one per line.
    #[error("{}", DisplayErrors(errors))]
    Invalid {
        /// Label of the file.
        file: String,
        /// All problems found, in file order.
        errors: Vec<ValidationError>,
    },
}

fn location_prefix(file: &str, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("{file}:{line}:{column}"),
        (Some(line), None) => format!("{file}:{line}"),
        _ => file.to_owned(),
    }
}

struct DisplayErrors<'a>(&'a [ValidationError]);

impl fmt::Display for DisplayErrors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}
