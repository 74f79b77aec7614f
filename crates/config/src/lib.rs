//! Configuration from the environment.
//!
//! Every variable is documented in `.env.example` at the repository root;
//! the seed's Tier A names are kept exactly so an operator's existing `.env`
//! keeps working. [`Config::from_env`] reads the process environment (the
//! binary loads `.env` into it first); [`Config::from_lookup`] takes any
//! lookup function, which is how tests build configurations.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

/// A configuration value was present but unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for environment variable {var}: {value:?}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub value: String,
    pub reason: String,
}

/// A secret string: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Names from the original's Django/Celery deployment that have no meaning
/// here; accepted (so an existing `.env` loads) and ignored with a warning.
pub const IGNORED_VARS: &[&str] = &[
    "SECRET_KEY",
    "DEBUG",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
];

/// The public GitHub REST API.
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";
/// The Slack Web API.
pub const DEFAULT_SLACK_API_URL: &str = "https://slack.com/api";
/// The WG21 paper index served by wg21.link.
pub const DEFAULT_WG21_INDEX_URL: &str = "https://wg21.link/index.json";
/// The Boost list server's HyperKitty root (the `mailing-list` default).
pub const DEFAULT_MAILING_LIST_ARCHIVE_URL: &str = "https://lists.boost.org/archives";
/// Default schedule file, relative to the working directory.
pub const DEFAULT_SCHEDULE_YAML: &str = "config/boost_collector_schedule.yaml";
/// YouTube Data API v3 root.
pub const DEFAULT_YOUTUBE_API_URL: &str = "https://www.googleapis.com/youtube/v3";
/// YouTube's timed-text (caption track) endpoint.
pub const DEFAULT_YOUTUBE_TIMEDTEXT_URL: &str = "https://www.youtube.com/api/timedtext";
/// Discord REST API v10.
pub const DEFAULT_DISCORD_API_URL: &str = "https://discord.com/api/v10";
/// The channel map `youtube-transcripts` reads.
pub const DEFAULT_YOUTUBE_CHANNELS_FILE: &str = "config/youtube_channels.yaml";

/// `youtube-transcripts` configuration.
#[derive(Debug, Clone)]
pub struct YoutubeConfig {
    /// `YOUTUBE_API_KEY` (sent as the `X-Goog-Api-Key` header, never in a URL).
    pub api_key: Option<Secret>,
    /// `YOUTUBE_API_URL`; default the public Data API v3.
    pub api_url: Url,
    /// `YOUTUBE_TIMEDTEXT_URL`; default YouTube's timed-text endpoint.
    pub timedtext_url: Url,
    /// `YOUTUBE_CHANNELS_FILE`: YAML map of channel title to channel id.
    pub channels_file: PathBuf,
    /// `YOUTUBE_QUOTA_BUDGET`: Data API units one run may spend (default
    /// 10,000, the default daily quota).
    pub quota_budget: u64,
}

/// `discord` configuration.
#[derive(Debug, Clone)]
pub struct DiscordConfig {
    /// `DISCORD_BOT_TOKEN` (sent as `Authorization: Bot <token>`).
    pub bot_token: Option<Secret>,
    /// `DISCORD_GUILD_ID`: the server (guild) snowflake.
    pub guild_id: Option<String>,
    /// `DISCORD_CHANNEL_IDS`: comma-separated channel ids to collect
    /// (empty: every readable text channel and thread).
    pub channel_ids: Vec<String>,
    /// `DISCORD_CONTEXT_REPO_PATH`: git work tree the Markdown export is
    /// written to (unset: no export).
    pub context_repo_path: Option<PathBuf>,
    /// `DISCORD_API_URL`; default `https://discord.com/api/v10`.
    pub api_url: Url,
}

/// `/health/` settings.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// `HEALTH_CHECK_TOKEN`: when set, `/health/` requires `Authorization: Bearer <token>`.
    pub check_token: Option<Secret>,
    /// `HEALTH_ENFORCE_COLLECTOR_FRESHNESS`: stale daily groups make `/health/` 503.
    pub enforce_collector_freshness: bool,
    /// `HEALTH_CELERY_MIN_WORKERS` (alias `HEALTH_MIN_WORKERS`): live `bdc` workers required.
    pub min_workers: u32,
    /// `HEALTH_CELERY_INSPECT_TIMEOUT`: seconds the worker check may take.
    pub inspect_timeout: Duration,
    /// `HEALTH_COLLECTOR_STALE_HOURS`: a daily group is stale after this long without success.
    pub collector_stale_hours: f64,
    /// `BDC_WORKER_LIVE_SECONDS`: a worker is live if it heartbeat this recently.
    pub worker_live_window: Duration,
}

/// Scheduler / worker settings (`bdc serve`, `bdc worker`, `bdc scheduler`).
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// `BDC_JOB_LEASE_SECONDS`: lease of a claimed job (renewed while it runs).
    pub job_lease: Duration,
    /// `BDC_JOB_MAX_ATTEMPTS`: attempts before a job is dead.
    pub job_max_attempts: u32,
    /// `BDC_JOB_RETRY_BASE_SECONDS`: backoff base after a failed attempt.
    pub job_retry_base: Duration,
    /// `BDC_SCHEDULER_TICK_SECONDS`: how often the schedule is evaluated.
    pub scheduler_tick: Duration,
    /// `BDC_WORKER_POLL_SECONDS`: idle poll interval of workers.
    pub worker_poll: Duration,
    /// `BDC_SHUTDOWN_GRACE_SECONDS`: time an in-flight job gets on SIGTERM.
    pub shutdown_grace: Duration,
    /// `BDC_RELEASE_REPO`: git repository whose release tags trigger
    /// `on_release` tasks (unset = no release watcher).
    pub release_repo: Option<String>,
    /// `BDC_RELEASE_TAG_PREFIX`: only tags with this prefix are releases.
    pub release_tag_prefix: String,
    /// `BDC_RELEASE_POLL_SECONDS`: how often the release watcher looks.
    pub release_poll: Duration,
}

/// Settings of the `library-usage-dashboard` collector.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageDashboardConfig {
    /// `BOOST_DASHBOARD_ACTIVITY_DERIVATIVE_WEIGHT` (default 0.4).
    pub derivative_weight: f64,
    /// `BOOST_DASHBOARD_ACTIVITY_REGRESSION_WEIGHT` (default 0.3).
    pub regression_weight: f64,
    /// `BOOST_DASHBOARD_ACTIVITY_MOMENTUM_WEIGHT` (default 0.3).
    pub momentum_weight: f64,
    /// `BOOST_LIBRARY_USAGE_DASHBOARD_PUBLISH_OWNER`.
    pub publish_owner: Option<String>,
    /// `BOOST_LIBRARY_USAGE_DASHBOARD_PUBLISH_REPO`.
    pub publish_repo: Option<String>,
    /// `BOOST_LIBRARY_USAGE_DASHBOARD_PUBLISH_BRANCH` (unset: `main`).
    pub publish_branch: Option<String>,
    /// `BOOST_LIBRARY_USAGE_DASHBOARD_PUBLISH_URL`: the git remote to push
    /// to instead of `https://github.com/<owner>/<repo>.git` (a local path
    /// or any git URL; tests push to a local bare repository).
    pub publish_url: Option<String>,
}

/// All of `bdc`'s configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`; default `sqlite://<WORKSPACE_DIR>/bdc.sqlite3`.
    pub database_url: String,
    /// `WORKSPACE_DIR`; default `./workspace`.
    pub workspace_dir: PathBuf,
    /// `GITHUB_TOKEN`.
    pub github_token: Option<Secret>,
    /// `GITHUB_TOKENS_SCRAPING`: comma-separated, rotated by collectors.
    pub github_tokens_scraping: Vec<Secret>,
    /// `GITHUB_TOKEN_WRITE`.
    pub github_token_write: Option<Secret>,
    /// `GITHUB_API_URL`; default the public API.
    pub github_api_url: Url,
    /// `SLACK_BOT_TOKEN`: the Slack bot token (`xoxb-…`) of `bdc run slack`.
    pub slack_bot_token: Option<Secret>,
    /// `SLACK_TEAM_ID`: the workspace (`T…`) `bdc run slack` collects when
    /// `--team-id` is not given.
    pub slack_team_id: Option<String>,
    /// `SLACK_API_URL`; default `https://slack.com/api` (tests point it at a
    /// local stand-in).
    pub slack_api_url: Url,
    /// `REPO_COUNT_LANGUAGES`: comma-separated languages `repos-by-language`
    /// counts when `--languages` is not given (empty: its default).
    pub repo_count_languages: Vec<String>,
    /// `BDC_WG21_INDEX_URL`; default the public wg21.link index.
    pub wg21_index_url: String,
    /// `BDC_MAILING_LIST_ARCHIVE_URL`: the HyperKitty root `bdc run
    /// mailing-list` reads with no arguments; default lists.boost.org's.
    pub mailing_list_archive_url: String,
    /// `BOOST_COLLECTOR_SCHEDULE_YAML`.
    pub schedule_yaml: PathBuf,
    /// `BOOST_COLLECTOR_SCHEDULE_STRICT`.
    pub schedule_strict: bool,
    /// `BDC_BIND`; default `127.0.0.1:8000`.
    pub bind: SocketAddr,
    /// `BDC_API_TOKEN`: bearer token of the HTTP APIs and the dashboard
    /// (unset: they refuse every request).
    pub api_token: Option<Secret>,
    pub health: HealthConfig,
    pub youtube: YoutubeConfig,
    pub discord: DiscordConfig,
    pub daemon: DaemonConfig,
    /// The `library-usage-dashboard` collector's settings.
    pub usage_dashboard: UsageDashboardConfig,
    /// Ignored legacy variables that were set (for a start-up warning).
    pub ignored_present: Vec<&'static str>,
}

impl Config {
    /// Read the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Build from any lookup (`None` = unset). Empty strings count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let workspace_dir =
            PathBuf::from(get("WORKSPACE_DIR").unwrap_or_else(|| "./workspace".into()));
        let database_url = match get("DATABASE_URL") {
            Some(url) => {
                if !(url.starts_with("sqlite:")
                    || url.starts_with("postgres://")
                    || url.starts_with("postgresql://"))
                {
                    return Err(ConfigError {
                        var: "DATABASE_URL",
                        value: redact(&url),
                        reason: "expected sqlite://PATH, postgres://... or postgresql://...".into(),
                    });
                }
                url
            }
            None => format!("sqlite://{}", workspace_dir.join("bdc.sqlite3").display()),
        };
        let github_api_url = match get("GITHUB_API_URL") {
            Some(v) => parse_http_url("GITHUB_API_URL", &v)?,
            None => Url::parse(DEFAULT_GITHUB_API_URL).map_err(|e| ConfigError {
                var: "GITHUB_API_URL",
                value: DEFAULT_GITHUB_API_URL.into(),
                reason: e.to_string(),
            })?,
        };
        let default_url = |var: &'static str, default: &str| -> Result<Url, ConfigError> {
            match get(var) {
                Some(v) => parse_http_url(var, &v),
                None => Url::parse(default).map_err(|e| ConfigError {
                    var,
                    value: default.into(),
                    reason: e.to_string(),
                }),
            }
        };
        let youtube = YoutubeConfig {
            api_key: get("YOUTUBE_API_KEY").map(|v| Secret::new(v.trim())),
            api_url: default_url("YOUTUBE_API_URL", DEFAULT_YOUTUBE_API_URL)?,
            timedtext_url: default_url("YOUTUBE_TIMEDTEXT_URL", DEFAULT_YOUTUBE_TIMEDTEXT_URL)?,
            channels_file: PathBuf::from(
                get("YOUTUBE_CHANNELS_FILE")
                    .unwrap_or_else(|| DEFAULT_YOUTUBE_CHANNELS_FILE.into()),
            ),
            quota_budget: match get("YOUTUBE_QUOTA_BUDGET") {
                Some(v) => u64::from(parse_u32("YOUTUBE_QUOTA_BUDGET", &v)?),
                None => 10_000,
            },
        };
        let discord = DiscordConfig {
            bot_token: get("DISCORD_BOT_TOKEN").map(|v| Secret::new(v.trim())),
            guild_id: get("DISCORD_GUILD_ID").map(|v| v.trim().to_owned()),
            channel_ids: get("DISCORD_CHANNEL_IDS")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            context_repo_path: get("DISCORD_CONTEXT_REPO_PATH").map(|v| PathBuf::from(v.trim())),
            api_url: default_url("DISCORD_API_URL", DEFAULT_DISCORD_API_URL)?,
        };
        let slack_api_url = match get("SLACK_API_URL") {
            Some(v) => parse_http_url("SLACK_API_URL", &v)?,
            None => Url::parse(DEFAULT_SLACK_API_URL).map_err(|e| ConfigError {
                var: "SLACK_API_URL",
                value: DEFAULT_SLACK_API_URL.into(),
                reason: e.to_string(),
            })?,
        };
        let wg21_index_url =
            get("BDC_WG21_INDEX_URL").unwrap_or_else(|| DEFAULT_WG21_INDEX_URL.into());
        let mailing_list_archive_url = match get("BDC_MAILING_LIST_ARCHIVE_URL") {
            Some(v) => parse_http_url("BDC_MAILING_LIST_ARCHIVE_URL", &v)?
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
            None => DEFAULT_MAILING_LIST_ARCHIVE_URL.into(),
        };
        let bind = match get("BDC_BIND") {
            Some(v) => v.trim().parse::<SocketAddr>().map_err(|e| ConfigError {
                var: "BDC_BIND",
                value: v.clone(),
                reason: format!("expected HOST:PORT like 127.0.0.1:8000 ({e})"),
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 8000)),
        };
        let min_workers = match get("HEALTH_CELERY_MIN_WORKERS") {
            Some(v) => parse_u32("HEALTH_CELERY_MIN_WORKERS", &v)?,
            None => match get("HEALTH_MIN_WORKERS") {
                Some(v) => parse_u32("HEALTH_MIN_WORKERS", &v)?,
                None => 1,
            },
        };
        let health = HealthConfig {
            check_token: get("HEALTH_CHECK_TOKEN").map(|v| Secret::new(v.trim())),
            enforce_collector_freshness: match get("HEALTH_ENFORCE_COLLECTOR_FRESHNESS") {
                Some(v) => parse_bool("HEALTH_ENFORCE_COLLECTOR_FRESHNESS", &v)?,
                None => false,
            },
            min_workers,
            inspect_timeout: match get("HEALTH_CELERY_INSPECT_TIMEOUT") {
                Some(v) => parse_seconds("HEALTH_CELERY_INSPECT_TIMEOUT", &v)?,
                None => Duration::from_secs(2),
            },
            collector_stale_hours: match get("HEALTH_COLLECTOR_STALE_HOURS") {
                Some(v) => parse_positive_f64("HEALTH_COLLECTOR_STALE_HOURS", &v)?,
                None => 26.0,
            },
            worker_live_window: match get("BDC_WORKER_LIVE_SECONDS") {
                Some(v) => parse_seconds("BDC_WORKER_LIVE_SECONDS", &v)?,
                None => Duration::from_secs(30),
            },
        };
        let secs = |var: &'static str, default: f64| -> Result<Duration, ConfigError> {
            match get(var) {
                Some(v) => parse_seconds(var, &v),
                None => Ok(Duration::from_secs_f64(default)),
            }
        };
        let daemon = DaemonConfig {
            job_lease: secs("BDC_JOB_LEASE_SECONDS", 60.0)?,
            job_max_attempts: match get("BDC_JOB_MAX_ATTEMPTS") {
                Some(v) => match parse_u32("BDC_JOB_MAX_ATTEMPTS", &v)? {
                    0 => {
                        return Err(ConfigError {
                            var: "BDC_JOB_MAX_ATTEMPTS",
                            value: v,
                            reason: "must be at least 1".into(),
                        });
                    }
                    n => n,
                },
                None => 3,
            },
            job_retry_base: secs("BDC_JOB_RETRY_BASE_SECONDS", 30.0)?,
            scheduler_tick: secs("BDC_SCHEDULER_TICK_SECONDS", 30.0)?,
            worker_poll: secs("BDC_WORKER_POLL_SECONDS", 2.0)?,
            shutdown_grace: secs("BDC_SHUTDOWN_GRACE_SECONDS", 30.0)?,
            release_repo: get("BDC_RELEASE_REPO"),
            release_tag_prefix: get("BDC_RELEASE_TAG_PREFIX").unwrap_or_else(|| "boost-".into()),
            release_poll: secs("BDC_RELEASE_POLL_SECONDS", 3600.0)?,
        };
        let schedule_strict = match get("BOOST_COLLECTOR_SCHEDULE_STRICT") {
            Some(v) => parse_bool("BOOST_COLLECTOR_SCHEDULE_STRICT", &v)?,
            None => false,
        };
        let weight = |var: &'static str, default: f64| -> Result<f64, ConfigError> {
            match get(var) {
                Some(v) => match v.trim().parse::<f64>() {
                    Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
                    _ => Err(ConfigError {
                        var,
                        value: v,
                        reason: "expected a non-negative number".into(),
                    }),
                },
                None => Ok(default),
            }
        };
        let usage_dashboard = UsageDashboardConfig {
            derivative_weight: weight("BOOST_DASHBOARD_ACTIVITY_DERIVATIVE_WEIGHT", 0.4)?,
            regression_weight: weight("BOOST_DASHBOARD_ACTIVITY_REGRESSION_WEIGHT", 0.3)?,
            momentum_weight: weight("BOOST_DASHBOARD_ACTIVITY_MOMENTUM_WEIGHT", 0.3)?,
            publish_owner: get("BOOST_LIBRARY_USAGE_DASHBOARD_PUBLISH_OWNER")
                .map(|v| v.trim().to_owned()),
            publish_repo: get("BOOST_LIBRARY_USAGE_DASHBOARD_PUBLISH_REPO")
                .map(|v| v.trim().to_owned()),
            publish_branch: get("BOOST_LIBRARY_USAGE_DASHBOARD_PUBLISH_BRANCH")
                .map(|v| v.trim().to_owned()),
            publish_url: get("BOOST_LIBRARY_USAGE_DASHBOARD_PUBLISH_URL")
                .map(|v| v.trim().to_owned()),
        };
        Ok(Config {
            database_url,
            workspace_dir,
            github_token: get("GITHUB_TOKEN").map(|v| Secret::new(v.trim())),
            github_tokens_scraping: get("GITHUB_TOKENS_SCRAPING")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(Secret::new)
                        .collect()
                })
                .unwrap_or_default(),
            github_token_write: get("GITHUB_TOKEN_WRITE").map(|v| Secret::new(v.trim())),
            github_api_url,
            slack_bot_token: get("SLACK_BOT_TOKEN").map(|v| Secret::new(v.trim())),
            slack_team_id: get("SLACK_TEAM_ID").map(|v| v.trim().to_owned()),
            slack_api_url,
            repo_count_languages: get("REPO_COUNT_LANGUAGES")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            wg21_index_url,
            mailing_list_archive_url,
            schedule_yaml: PathBuf::from(
                get("BOOST_COLLECTOR_SCHEDULE_YAML")
                    .unwrap_or_else(|| DEFAULT_SCHEDULE_YAML.into()),
            ),
            schedule_strict,
            bind,
            api_token: get("BDC_API_TOKEN").map(|v| Secret::new(v.trim())),
            health,
            youtube,
            discord,
            daemon,
            usage_dashboard,
            ignored_present: IGNORED_VARS
                .iter()
                .copied()
                .filter(|k| lookup(k).is_some())
                .collect(),
        })
    }
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

fn parse_bool(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError {
            var,
            value: v.into(),
            reason: "expected a boolean: true/false, 1/0, yes/no, on/off".into(),
        }),
    }
}

fn parse_u32(var: &'static str, v: &str) -> Result<u32, ConfigError> {
    v.trim().parse::<u32>().map_err(|e| ConfigError {
        var,
        value: v.into(),
        reason: format!("expected a non-negative integer ({e})"),
    })
}

fn parse_positive_f64(var: &'static str, v: &str) -> Result<f64, ConfigError> {
    match v.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        Ok(_) => Err(ConfigError {
            var,
            value: v.into(),
            reason: "expected a positive number".into(),
        }),
        Err(e) => Err(ConfigError {
            var,
            value: v.into(),
            reason: format!("expected a number ({e})"),
        }),
    }
}

fn parse_seconds(var: &'static str, v: &str) -> Result<Duration, ConfigError> {
    let secs = parse_positive_f64(var, v)?;
    Duration::try_from_secs_f64(secs).map_err(|e| ConfigError {
        var,
        value: v.into(),
        reason: format!("out of range ({e})"),
    })
}

fn parse_http_url(var: &'static str, v: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(v.trim()).map_err(|e| ConfigError {
        var,
        value: v.into(),
        reason: format!("malformed URL ({e})"),
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(ConfigError {
            var,
            value: v.into(),
            reason: "expected an http:// or https:// URL".into(),
        });
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.database_url, "sqlite://./workspace/bdc.sqlite3");
        assert_eq!(c.workspace_dir, PathBuf::from("./workspace"));
        assert_eq!(c.github_api_url.as_str(), "https://api.github.com/");
        assert_eq!(c.bind.to_string(), "127.0.0.1:8000");
        assert!(!c.schedule_strict);
        assert_eq!(c.health.min_workers, 1);
        assert!(!c.health.enforce_collector_freshness);
        assert!((c.health.collector_stale_hours - 26.0).abs() < f64::EPSILON);
        assert!(c.ignored_present.is_empty());
    }

    #[test]
    fn slack_settings() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.slack_api_url.as_str(), "https://slack.com/api");
        assert!(c.slack_bot_token.is_none() && c.slack_team_id.is_none());
        let c = cfg(&[
            ("SLACK_BOT_TOKEN", " xoxb-1 "),
            ("SLACK_TEAM_ID", "T1"),
            ("SLACK_API_URL", "http://127.0.0.1:9/slack"),
        ])
        .unwrap();
        assert_eq!(
            c.slack_bot_token.as_ref().map(Secret::expose),
            Some("xoxb-1")
        );
        assert_eq!(c.slack_team_id.as_deref(), Some("T1"));
        assert_eq!(c.slack_api_url.as_str(), "http://127.0.0.1:9/slack");
        assert!(format!("{c:?}").contains("Secret(***)"));
        assert!(cfg(&[("SLACK_API_URL", "ftp://x")]).is_err());
    }

    #[test]
    fn discord_settings() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.discord.api_url.as_str(), "https://discord.com/api/v10");
        assert!(c.discord.bot_token.is_none() && c.discord.guild_id.is_none());
        let c = cfg(&[
            ("DISCORD_BOT_TOKEN", " tok "),
            ("DISCORD_GUILD_ID", "123"),
            ("DISCORD_CHANNEL_IDS", " 1, 2,,3 "),
            ("DISCORD_CONTEXT_REPO_PATH", "/tmp/ctx"),
            ("DISCORD_API_URL", "http://127.0.0.1:9/api"),
        ])
        .unwrap();
        assert_eq!(
            c.discord.bot_token.as_ref().map(Secret::expose),
            Some("tok")
        );
        assert_eq!(c.discord.channel_ids, ["1", "2", "3"]);
        assert_eq!(c.discord.context_repo_path, Some(PathBuf::from("/tmp/ctx")));
        assert!(!format!("{c:?}").contains("tok\""));
        assert!(cfg(&[("DISCORD_API_URL", "ftp://x")]).is_err());
    }

    #[test]
    fn repo_count_languages_are_a_trimmed_list() {
        let c = cfg(&[("REPO_COUNT_LANGUAGES", " C++ , Rust,,Visual Basic ")]).unwrap();
        assert_eq!(c.repo_count_languages, ["C++", "Rust", "Visual Basic"]);
        assert!(cfg(&[]).unwrap().repo_count_languages.is_empty());
    }

    #[test]
    fn values_are_read() {
        let c = cfg(&[
            ("WORKSPACE_DIR", "/srv/ws"),
            ("GITHUB_TOKENS_SCRAPING", "a, b,,c"),
            ("GITHUB_API_URL", "http://127.0.0.1:9999/api"),
            ("HEALTH_CHECK_TOKEN", "tok"),
            ("HEALTH_ENFORCE_COLLECTOR_FRESHNESS", "yes"),
            ("HEALTH_MIN_WORKERS", "3"),
            ("HEALTH_COLLECTOR_STALE_HOURS", "1.5"),
            ("BOOST_COLLECTOR_SCHEDULE_STRICT", "1"),
            ("SECRET_KEY", "django"),
            ("CELERY_BROKER_URL", "redis://x"),
        ])
        .unwrap();
        assert_eq!(c.database_url, "sqlite:///srv/ws/bdc.sqlite3");
        assert_eq!(c.github_tokens_scraping.len(), 3);
        assert_eq!(c.github_tokens_scraping[1].expose(), "b");
        assert_eq!(c.github_api_url.as_str(), "http://127.0.0.1:9999/api");
        assert_eq!(
            c.health.check_token.as_ref().map(Secret::expose),
            Some("tok")
        );
        assert!(c.health.enforce_collector_freshness);
        assert_eq!(c.health.min_workers, 3);
        assert!(c.schedule_strict);
        assert_eq!(c.ignored_present, vec!["SECRET_KEY", "CELERY_BROKER_URL"]);
        assert!(
            !format!("{c:?}").contains("tok\""),
            "secrets are not printed"
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases = [
            ("HEALTH_COLLECTOR_STALE_HOURS", "abc"),
            ("HEALTH_COLLECTOR_STALE_HOURS", "-1"),
            ("HEALTH_CELERY_MIN_WORKERS", "two"),
            ("HEALTH_CELERY_INSPECT_TIMEOUT", "soon"),
            ("HEALTH_ENFORCE_COLLECTOR_FRESHNESS", "maybe"),
            ("GITHUB_API_URL", "not a url"),
            ("GITHUB_API_URL", "ftp://x"),
            ("BDC_BIND", "localhost"),
            ("DATABASE_URL", "mysql://x"),
            ("BOOST_COLLECTOR_SCHEDULE_STRICT", "2"),
            ("BDC_WORKER_LIVE_SECONDS", "1e300"),
            ("BDC_JOB_LEASE_SECONDS", "x"),
            ("BDC_JOB_MAX_ATTEMPTS", "0"),
            ("BDC_SCHEDULER_TICK_SECONDS", "0"),
        ];
        for (var, value) in cases {
            let err = cfg(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{err}");
            assert!(err.to_string().contains(var), "{err}");
        }
    }

    #[test]
    fn database_url_password_is_redacted_in_errors() {
        let err = cfg(&[("DATABASE_URL", "mysql://u:pw@h/db")]).unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
    }
}
