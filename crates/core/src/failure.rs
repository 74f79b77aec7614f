//! Failure classification: one enum of coarse buckets and one function that
//! maps any error chain to it (seed 001, `core.errors`).

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The error type collectors and runners pass around: any error, boxed.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Coarse failure buckets used in logs (`failure_category`), metrics and run
/// records. The string forms are stable (they are stored and exported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCategory {
    Network,
    Timeout,
    RateLimited,
    Auth,
    NotFound,
    Config,
    Parse,
    Database,
    Command,
    Unknown,
}

impl FailureCategory {
    pub const ALL: [FailureCategory; 10] = [
        Self::Network,
        Self::Timeout,
        Self::RateLimited,
        Self::Auth,
        Self::NotFound,
        Self::Config,
        Self::Parse,
        Self::Database,
        Self::Command,
        Self::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::Timeout => "timeout",
            Self::RateLimited => "rate_limited",
            Self::Auth => "auth",
            Self::NotFound => "not_found",
            Self::Config => "config",
            Self::Parse => "parse",
            Self::Database => "database",
            Self::Command => "command",
            Self::Unknown => "unknown",
        }
    }

    /// Category implied by an HTTP status code, if the code is an error.
    pub fn from_http_status(status: u16) -> Option<FailureCategory> {
        match status {
            401 | 403 => Some(Self::Auth),
            404 | 410 => Some(Self::NotFound),
            408 | 504 => Some(Self::Timeout),
            429 => Some(Self::RateLimited),
            500..=599 => Some(Self::Network),
            400..=499 => Some(Self::Unknown),
            _ => None,
        }
    }
}

impl fmt::Display for FailureCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown category string.
#[derive(Debug, thiserror::Error)]
#[error("unknown failure category {0:?}")]
pub struct UnknownCategory(pub String);

impl FromStr for FailureCategory {
    type Err = UnknownCategory;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCategory(s.to_owned()))
    }
}

/// An error whose category the raiser already knows (e.g. a bad argument is
/// `config`, a failing child process is `command`). [`classify_failure`]
/// trusts it over anything deeper in the chain.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Categorized {
    pub category: FailureCategory,
    pub message: String,
    #[source]
    pub source: Option<BoxError>,
}

impl Categorized {
    pub fn new(category: FailureCategory, message: impl Into<String>) -> Self {
        Self {
            category,
            message: message.into(),
            source: None,
        }
    }

    pub fn with_source(
        category: FailureCategory,
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Self {
            category,
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

/// A non-success HTTP response, raised by HTTP clients that check statuses
/// themselves. `rate_limited` marks a 403 that GitHub uses for rate limits.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status} from {url}")]
pub struct HttpStatusError {
    pub status: u16,
    pub url: String,
    pub rate_limited: bool,
}

/// Map an error (and its `source()` chain) to a [`FailureCategory`].
///
/// The chain is walked from the outermost error inwards; the first error that
/// implies a specific category wins, so a wrapper that knows better (a
/// [`Categorized`]) overrides what it wraps. Unrecognised chains are
/// [`FailureCategory::Unknown`].
/// The category of a failed `git` command (fetch, clone, ls-remote, ...)
/// from its stderr: a remote that cannot be reached is `network` (or
/// `timeout`), refused credentials `auth`, a missing repository or ref
/// `not_found`; anything else is git itself failing: `command`.
pub fn classify_git_stderr(stderr: &str) -> FailureCategory {
    let s = stderr.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| s.contains(n));
    if any(&["timed out", "timeout"]) {
        FailureCategory::Timeout
    } else if any(&[
        "authentication failed",
        "could not read username",
        "could not read password",
        "permission denied (publickey",
        "http 401",
        "http 403",
        "the requested url returned error: 401",
        "the requested url returned error: 403",
    ]) {
        FailureCategory::Auth
    } else if any(&[
        "repository not found",
        "does not appear to be a git repository",
        "the requested url returned error: 404",
        "couldn't find remote ref",
        "not found",
    ]) && !any(&["could not resolve host"])
    {
        FailureCategory::NotFound
    } else if any(&[
        "could not resolve host",
        "could not resolve hostname",
        "failed to connect",
        "connection refused",
        "connection reset",
        "network is unreachable",
        "no route to host",
        "unable to access",
        "could not read from remote repository",
        "the remote end hung up unexpectedly",
        "early eof",
        "rpc failed",
        "ssl",
        "gnutls",
        "the requested url returned error: 5",
        "unable to connect",
        "temporary failure in name resolution",
    ]) {
        FailureCategory::Network
    } else {
        FailureCategory::Command
    }
}

pub fn classify_failure(err: &(dyn StdError + 'static)) -> FailureCategory {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(cat) = classify_one(e) {
            return cat;
        }
        current = e.source();
    }
    FailureCategory::Unknown
}

fn classify_one(e: &(dyn StdError + 'static)) -> Option<FailureCategory> {
    if let Some(c) = e.downcast_ref::<Categorized>() {
        return Some(c.category);
    }
    if let Some(h) = e.downcast_ref::<HttpStatusError>() {
        if h.rate_limited {
            return Some(FailureCategory::RateLimited);
        }
        return FailureCategory::from_http_status(h.status);
    }
    if let Some(r) = e.downcast_ref::<reqwest::Error>() {
        return Some(classify_reqwest(r));
    }
    if let Some(s) = e.downcast_ref::<sqlx::Error>() {
        return Some(classify_sqlx(s));
    }
    if let Some(io) = e.downcast_ref::<io::Error>() {
        return classify_io(io);
    }
    if e.is::<serde_json::Error>()
        || e.is::<std::num::ParseIntError>()
        || e.is::<std::num::ParseFloatError>()
        || e.is::<chrono::ParseError>()
        || e.is::<std::str::Utf8Error>()
        || e.is::<std::string::FromUtf8Error>()
        || e.is::<crate::protocol::ProtocolError>()
    {
        return Some(FailureCategory::Parse);
    }
    None
}

fn classify_reqwest(r: &reqwest::Error) -> FailureCategory {
    if r.is_timeout() {
        return FailureCategory::Timeout;
    }
    if let Some(status) = r.status()
        && let Some(cat) = FailureCategory::from_http_status(status.as_u16())
    {
        return cat;
    }
    if r.is_decode() {
        return FailureCategory::Parse;
    }
    if r.is_builder() {
        return FailureCategory::Config;
    }
    FailureCategory::Network
}

fn classify_sqlx(s: &sqlx::Error) -> FailureCategory {
    match s {
        sqlx::Error::PoolTimedOut => FailureCategory::Timeout,
        sqlx::Error::Configuration(_) => FailureCategory::Config,
        _ => FailureCategory::Database,
    }
}

fn classify_io(io: &io::Error) -> Option<FailureCategory> {
    use io::ErrorKind as K;
    Some(match io.kind() {
        K::TimedOut => FailureCategory::Timeout,
        K::NotFound => FailureCategory::NotFound,
        K::PermissionDenied => FailureCategory::Config,
        K::ConnectionRefused
        | K::ConnectionReset
        | K::ConnectionAborted
        | K::NotConnected
        | K::AddrNotAvailable
        | K::BrokenPipe
        | K::HostUnreachable
        | K::NetworkUnreachable
        | K::NetworkDown
        | K::UnexpectedEof => FailureCategory::Network,
        K::InvalidData => FailureCategory::Parse,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_fetch_failures() {
        for (stderr, cat) in [
            (
                "fatal: unable to access 'https://nope.invalid/x.git/': Could not resolve host: nope.invalid",
                FailureCategory::Network,
            ),
            (
                "fatal: unable to access 'http://127.0.0.1:9/x.git/': Failed to connect to 127.0.0.1 port 9 after 0 ms: Couldn't connect to server",
                FailureCategory::Network,
            ),
            (
                "ssh: connect to host example.org port 22: Connection refused\nfatal: Could not read from remote repository.",
                FailureCategory::Network,
            ),
            (
                "fatal: unable to access 'https://x/': Operation timed out after 300000 milliseconds",
                FailureCategory::Timeout,
            ),
            (
                "remote: Repository not found.\nfatal: repository 'https://github.com/a/b/' not found",
                FailureCategory::NotFound,
            ),
            (
                "fatal: '/tmp/nope' does not appear to be a git repository",
                FailureCategory::NotFound,
            ),
            (
                "fatal: Authentication failed for 'https://github.com/a/b/'",
                FailureCategory::Auth,
            ),
            ("fatal: bad object HEAD", FailureCategory::Command),
            (
                "error: cannot lock ref 'refs/heads/x'",
                FailureCategory::Command,
            ),
        ] {
            assert_eq!(classify_git_stderr(stderr), cat, "{stderr}");
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Outer(#[source] BoxError);

    fn cat(e: impl StdError + 'static) -> FailureCategory {
        classify_failure(&e)
    }

    #[test]
    fn string_forms_round_trip() {
        for c in FailureCategory::ALL {
            assert_eq!(c.as_str().parse::<FailureCategory>().ok(), Some(c));
            let json = serde_json::to_string(&c).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
        assert!("bogus".parse::<FailureCategory>().is_err());
    }

    #[test]
    fn http_statuses() {
        let h = |status, rate_limited| HttpStatusError {
            status,
            url: "http://x/".into(),
            rate_limited,
        };
        assert_eq!(cat(h(401, false)), FailureCategory::Auth);
        assert_eq!(cat(h(403, false)), FailureCategory::Auth);
        assert_eq!(cat(h(403, true)), FailureCategory::RateLimited);
        assert_eq!(cat(h(404, false)), FailureCategory::NotFound);
        assert_eq!(cat(h(429, false)), FailureCategory::RateLimited);
        assert_eq!(cat(h(500, false)), FailureCategory::Network);
        assert_eq!(cat(h(503, false)), FailureCategory::Network);
        assert_eq!(cat(h(504, false)), FailureCategory::Timeout);
        assert_eq!(cat(h(418, false)), FailureCategory::Unknown);
    }

    #[test]
    fn io_kinds() {
        let io = |k| io::Error::new(k, "x");
        assert_eq!(cat(io(io::ErrorKind::TimedOut)), FailureCategory::Timeout);
        assert_eq!(cat(io(io::ErrorKind::NotFound)), FailureCategory::NotFound);
        assert_eq!(
            cat(io(io::ErrorKind::ConnectionRefused)),
            FailureCategory::Network
        );
        assert_eq!(cat(io(io::ErrorKind::Other)), FailureCategory::Unknown);
    }

    #[test]
    fn parse_errors() {
        let json_err = serde_json::from_str::<serde_json::Value>("{").err();
        assert_eq!(
            json_err.map(cat),
            Some(FailureCategory::Parse),
            "serde_json"
        );
        let int_err = "x".parse::<i32>().err();
        assert_eq!(int_err.map(cat), Some(FailureCategory::Parse));
    }

    #[test]
    fn sqlx_errors() {
        assert_eq!(cat(sqlx::Error::PoolTimedOut), FailureCategory::Timeout);
        assert_eq!(cat(sqlx::Error::RowNotFound), FailureCategory::Database);
        assert_eq!(
            cat(sqlx::Error::Configuration("bad".into())),
            FailureCategory::Config
        );
    }

    #[test]
    fn chain_is_walked_and_outermost_specific_wins() {
        let inner = io::Error::new(io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(cat(Outer(Box::new(inner))), FailureCategory::Network);

        let wrapped = Categorized::with_source(
            FailureCategory::Command,
            "git failed",
            io::Error::new(io::ErrorKind::NotFound, "no git"),
        );
        assert_eq!(cat(Outer(Box::new(wrapped))), FailureCategory::Command);

        #[derive(Debug, thiserror::Error)]
        #[error("opaque")]
        struct Opaque;
        assert_eq!(cat(Opaque), FailureCategory::Unknown);
    }
}
