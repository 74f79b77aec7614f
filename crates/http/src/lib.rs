//! Shared HTTP machinery for `bdc` collectors that talk to REST APIs
//! (GitHub first; anything with the same conventions works).
//!
//! * [`HttpClient`]: `GET` with
//!   - **conditional requests**: the `ETag` / `Last-Modified` of every
//!     successful response is kept per URL in the database ([`HttpCache`],
//!     schema part [`SCHEMA`] = `http_cache`) together with the (gzip) body
//!     and `Link` header; the next request sends `If-None-Match` /
//!     `If-Modified-Since` and a `304` returns the stored body
//!     ([`Response::not_modified`]), which GitHub does not charge against
//!     the rate limit;
//!   - **rate-limit awareness**: `X-RateLimit-Remaining` / `X-RateLimit-Reset`
//!     are tracked per token; before a token reaches zero
//!     ([`ClientOptions::rotate_below`]) the next token is used
//!     (`GITHUB_TOKENS_SCRAPING`, then `GITHUB_TOKEN`); when every token is
//!     exhausted the client pauses until the earliest reset;
//!   - **secondary limits**: `403`/`429` with `Retry-After` (or GitHub's
//!     "secondary rate limit" message) wait and retry;
//!   - **bounded retries** with jittered exponential backoff on `5xx` and
//!     network errors; a whole-request timeout;
//!   - a **request budget** per run ([`ClientOptions::max_requests`]);
//!   - all waiting goes through a [`Clock`], so tests use [`ManualClock`]
//!     and never sleep.
//! * [`HttpClient::post`]: writes (index sinks) with retries on `429`
//!   (`Retry-After`), `5xx` and network errors; never cached or archived.
//! * [`Pager`]: follows `Link: <…>; rel="next"` headers.
//! * [`RawArchive`]: every fetched body stored gzip-compressed under
//!   `WORKSPACE_DIR/raw/<collector>/` with its URL and headers, plus an
//!   append-only index keyed by URL ([`ArchiveIndex`]) for replay without
//!   network ([`HttpClient::replay`]); with
//!   [`ClientOptions::archive_not_found`] final `404`/`410` answers too, and
//!   a replay returns them as the same error.
//!
//! Errors are [`HttpError`]; [`HttpError::category`] gives the
//! [`bdc_core::FailureCategory`] (`rate_limited`, `auth`, `not_found`,
//! `network`, `timeout`, `parse`, …) and [`HttpError::into_box`] keeps it
//! for `classify_failure`.
//!
//! Metrics: `bdc_http_requests_total{collector,status}`,
//! `bdc_http_not_modified_total{collector}`,
//! `bdc_http_retries_total{collector,reason}`,
//! `bdc_http_rate_limit_remaining{token}` (a hashed token id, never the
//! token).

pub mod archive;
pub mod cache;
pub mod client;
pub mod clock;
mod error;
pub mod link;
pub mod pacing;
mod post;

pub use archive::{ArchiveEntry, ArchiveIndex, RawArchive};
pub use cache::{CachedResponse, HttpCache, SCHEMA};
pub use client::{ClientOptions, HttpClient, HttpStats, Pager, Response, TokenAuth, token_id};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::HttpError;
pub use pacing::{RateWindow, WaitMeter};
pub use post::post_key;

/// FNV-1a 64-bit: a small stable hash for file names and token ids (not
/// cryptographic; token ids only need to be stable and not the token).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
