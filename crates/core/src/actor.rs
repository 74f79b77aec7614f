//! Who or what causes a write: carried into every database transaction by
//! the storage layer (the audit trail's actor bridge).

use serde::{Deserialize, Serialize};

/// The actor of a write. Serialised as JSON with a `type` tag, e.g.
/// `{"type":"job","collector":"wg21-papers","run_id":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    /// A collector run (scheduled or manual).
    Job { collector: String, run_id: String },
    /// A person at the command line.
    Cli { user: String },
    /// An authenticated HTTP caller.
    Http { caller: String },
    /// The platform itself (migrations, retention, pipeline stages).
    System { component: String },
}

impl Actor {
    pub fn job(collector: impl Into<String>, run_id: impl Into<String>) -> Actor {
        Actor::Job {
            collector: collector.into(),
            run_id: run_id.into(),
        }
    }

    /// The CLI user from `$USER` (or `unknown`).
    pub fn cli_from_env() -> Actor {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".to_owned());
        Actor::Cli { user }
    }

    pub fn http(caller: impl Into<String>) -> Actor {
        Actor::Http {
            caller: caller.into(),
        }
    }

    pub fn system(component: impl Into<String>) -> Actor {
        Actor::System {
            component: component.into(),
        }
    }

    /// The `type` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Job { .. } => "job",
            Actor::Cli { .. } => "cli",
            Actor::Http { .. } => "http",
            Actor::System { .. } => "system",
        }
    }

    /// A short identifier within the kind (collector, user, caller, component).
    pub fn id(&self) -> &str {
        match self {
            Actor::Job { collector, .. } => collector,
            Actor::Cli { user } => user,
            Actor::Http { caller } => caller,
            Actor::System { component } => component,
        }
    }

    /// Compact JSON form stored by the audit trail.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            // Serialising plain strings cannot fail; keep a valid fallback anyway.
            format!(r#"{{"type":"{}"}}"#, self.kind())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_round_trips() {
        let a = Actor::job("wg21-papers", "r1");
        assert_eq!(
            a.to_json(),
            r#"{"type":"job","collector":"wg21-papers","run_id":"r1"}"#
        );
        let back: Actor = serde_json::from_str(&a.to_json()).unwrap();
        assert_eq!(back, a);
        assert_eq!(Actor::http("alice").kind(), "http");
        assert_eq!(Actor::system("retention").id(), "retention");
    }
}
