//! Helpers shared by the `boost-usage` test binaries.

pub mod fake;
