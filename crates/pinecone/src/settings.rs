//! Settings from the environment, with the original's names.

use bdc_config::Secret;
use url::Url;

use crate::PineconeError;

/// Default records per upsert request: Pinecone's limit for indexes with
/// integrated embedding.
pub const DEFAULT_BATCH_SIZE: usize = 96;
/// Default control-plane URL.
pub const DEFAULT_CONTROL_URL: &str = "https://api.pinecone.io";
/// The data-plane API version sent as `X-Pinecone-API-Version`.
pub const DEFAULT_API_VERSION: &str = "2025-04";

/// Which Pinecone project (API key) to use: the original's
/// `--pinecone-instance public|private`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Instance {
    /// `PINECONE_API_KEY`.
    #[default]
    Public,
    /// `PINECONE_PRIVATE_API_KEY`.
    Private,
}

impl Instance {
    pub fn as_str(self) -> &'static str {
        match self {
            Instance::Public => "public",
            Instance::Private => "private",
        }
    }

    /// The environment variable holding this instance's API key.
    pub fn key_env(self) -> &'static str {
        match self {
            Instance::Public => "PINECONE_API_KEY",
            Instance::Private => "PINECONE_PRIVATE_API_KEY",
        }
    }
}

impl std::str::FromStr for Instance {
    type Err = PineconeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "public" => Ok(Instance::Public),
            "private" => Ok(Instance::Private),
            other => Err(PineconeError::Config {
                field: "--pinecone-instance",
                value: other.to_owned(),
                reason: "expected `public` or `private`",
            }),
        }
    }
}

/// Everything the client needs.
#[derive(Debug, Clone)]
pub struct PineconeSettings {
    pub instance: Instance,
    pub api_key: Secret,
    /// The dense index (`PINECONE_INDEX_NAME`); the sparse one is
    /// `<name>-sparse` ([`sparse_index_name`](Self::sparse_index_name)).
    pub index_name: String,
    /// `PINECONE_BATCH_SIZE` (1..=96, default 96).
    pub batch_size: usize,
    /// `PINECONE_CONTROL_URL` (default `https://api.pinecone.io`).
    pub control_url: Url,
    /// `PINECONE_API_VERSION` (default [`DEFAULT_API_VERSION`]).
    pub api_version: String,
}

impl PineconeSettings {
    /// Read the settings through `var` (the process environment in the
    /// binary). `Ok(None)` when the instance's API key or
    /// `PINECONE_INDEX_NAME` is unset: Pinecone is optional.
    pub fn from_lookup(
        instance: Instance,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, PineconeError> {
        let get = |k: &str| {
            var(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let (Some(key), Some(index_name)) = (get(instance.key_env()), get("PINECONE_INDEX_NAME"))
        else {
            return Ok(None);
        };
        let batch_size = match get("PINECONE_BATCH_SIZE") {
            None => DEFAULT_BATCH_SIZE,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=DEFAULT_BATCH_SIZE).contains(&n) => n,
                _ => {
                    return Err(PineconeError::Config {
                        field: "PINECONE_BATCH_SIZE",
                        value: v,
                        reason: "expected a whole number from 1 to 96 (Pinecone's limit for integrated embedding)",
                    });
                }
            },
        };
        let control_url = match get("PINECONE_CONTROL_URL") {
            None => Url::parse(DEFAULT_CONTROL_URL).map_err(|_| PineconeError::Config {
                field: "PINECONE_CONTROL_URL",
                value: DEFAULT_CONTROL_URL.into(),
                reason: "not a URL",
            })?,
            Some(v) => Url::parse(&v).map_err(|_| PineconeError::Config {
                field: "PINECONE_CONTROL_URL",
                value: v.clone(),
                reason: "not a URL",
            })?,
        };
        Ok(Some(PineconeSettings {
            instance,
            api_key: Secret::new(key),
            index_name,
            batch_size,
            control_url,
            api_version: get("PINECONE_API_VERSION").unwrap_or_else(|| DEFAULT_API_VERSION.into()),
        }))
    }

    /// From the process environment.
    pub fn from_env(instance: Instance) -> Result<Option<Self>, PineconeError> {
        Self::from_lookup(instance, |k| std::env::var(k).ok())
    }

    /// The sparse companion index: `<PINECONE_INDEX_NAME>-sparse`.
    pub fn sparse_index_name(&self) -> String {
        format!("{}-sparse", self.index_name)
    }
}

/// The namespace of a source: `<PREFIX>_PINECONE_NAMESPACE` (e.g.
/// `SLACK_PINECONE_NAMESPACE`), else `default`.
pub fn namespace_for(prefix: &str, default: &str, var: impl Fn(&str) -> Option<String>) -> String {
    var(&format!("{prefix}_PINECONE_NAMESPACE"))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The `app_type` of a source: `<PREFIX>_APP_TYPE`, else `default`.
pub fn app_type_for(prefix: &str, default: &str, var: impl Fn(&str) -> Option<String>) -> String {
    var(&format!("{prefix}_APP_TYPE"))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn unset_key_means_pinecone_is_off() {
        let s =
            PineconeSettings::from_lookup(Instance::Public, env(&[("PINECONE_INDEX_NAME", "x")]));
        assert!(matches!(s, Ok(None)));
    }

    #[test]
    fn private_instance_uses_the_private_key() {
        let s = PineconeSettings::from_lookup(
            Instance::Private,
            env(&[
                ("PINECONE_API_KEY", "pub"),
                ("PINECONE_PRIVATE_API_KEY", "priv"),
                ("PINECONE_INDEX_NAME", "boost"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.api_key.expose(), "priv");
        assert_eq!(s.sparse_index_name(), "boost-sparse");
        assert_eq!(s.batch_size, 96);
    }

    #[test]
    fn bad_batch_size_names_the_variable_and_value() {
        let e = PineconeSettings::from_lookup(
            Instance::Public,
            env(&[
                ("PINECONE_API_KEY", "k"),
                ("PINECONE_INDEX_NAME", "boost"),
                ("PINECONE_BATCH_SIZE", "500"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("PINECONE_BATCH_SIZE") && e.contains("500"),
            "{e}"
        );
    }

    #[test]
    fn namespaces_and_app_types_from_prefixed_variables() {
        let var = env(&[
            ("SLACK_PINECONE_NAMESPACE", "slack-ns"),
            ("SLACK_APP_TYPE", "slack"),
        ]);
        assert_eq!(namespace_for("SLACK", "default", &var), "slack-ns");
        assert_eq!(app_type_for("SLACK", "x", &var), "slack");
        assert_eq!(namespace_for("DISCORD", "discord", &var), "discord");
        assert!("Private".parse::<Instance>().is_ok());
        assert!("other".parse::<Instance>().is_err());
    }
}
