//! The identity hub: one person across sources.
//!
//! * Collectors record **profiles** ([`store::record_profiles`], inside their
//!   own write transaction): source, source-local id, display name,
//!   addresses, login, and the `(source_system, actor)` their activity
//!   records carry.
//! * [`hub::resolve`] (the `identities` collector) merges profiles into
//!   **identities**: the same normalised address (case; `+tag` ignored;
//!   `user at example.com` = `user@example.com`), GitHub noreply addresses
//!   `ID+login@users.noreply.github.com` = that GitHub account, and a
//!   commit author address recorded on a GitHub account. Never on names
//!   alone ([`hub::suggest`] lists such candidates). Bots (`[bot]`, shared
//!   noreply addresses, configured names) are marked.
//! * Manual decisions (`bdc identities merge|split|lock`) are stored and
//!   re-applied on every resolution, together with the declarative file
//!   ([`rules::Rules`], `BDC_IDENTITIES_YAML`); locked identities are left
//!   alone. Every write goes through an actor-carrying transaction, so the
//!   audit trail answers who merged what and when.

pub mod hub;
pub mod normalize;
pub mod rules;
pub mod store;

pub use hub::{Identity, Profile, ResolveCounts, resolve};
pub use rules::Rules;
pub use store::{ProfileInput, SCHEMA, record_profiles};

/// Errors of the identity hub.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Storage(#[from] bdc_storage::StorageError),
    #[error("{file}:{line}: {message}")]
    Rules {
        file: String,
        line: usize,
        message: String,
    },
    #[error("no identity or profile matches {0:?}")]
    NotFound(String),
    #[error("{reference:?} matches several: {}; use one of them", candidates.join(", "))]
    Ambiguous {
        reference: String,
        candidates: Vec<String>,
    },
    #[error("identity {0} is locked; unlock it first")]
    Locked(i64),
    #[error("{0}")]
    Invalid(String),
}
