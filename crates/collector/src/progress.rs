//! One place where progress bars are drawn, so log lines never tear them.
//!
//! Collectors wrap the bars they draw on an interactive terminal with
//! [`add`]; the binary's log writer prints each log line through
//! [`suspend`], which clears the bars, writes the line and redraws them.

use std::sync::OnceLock;

use indicatif::{MultiProgress, ProgressBar};

fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(MultiProgress::new)
}

/// Draw `bar` through the shared progress area (call only for bars meant
/// to be visible: a hidden bar added here becomes visible).
pub fn add(bar: ProgressBar) -> ProgressBar {
    multi().add(bar)
}

/// Run `f` (e.g. writing a log line to stderr) with the bars cleared.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    multi().suspend(f)
}
