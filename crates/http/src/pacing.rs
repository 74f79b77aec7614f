//! Pacing for APIs with per-minute limits on top of the hourly rate limit
//! (GitHub search: 30 requests/min per token, code search: 10/min per
//! token), and a clock wrapper that adds up every wait so a collector can
//! report how long it waited.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::clock::Clock;

/// A [`Clock`] that forwards to another one and adds up every `sleep`
/// (rate-limit pauses, `Retry-After` waits, retry backoff, pacing).
#[derive(Debug)]
pub struct WaitMeter {
    inner: Arc<dyn Clock>,
    waited_ms: AtomicU64,
}

impl WaitMeter {
    pub fn new(inner: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(WaitMeter {
            inner,
            waited_ms: AtomicU64::new(0),
        })
    }

    /// Milliseconds slept through this clock so far.
    pub fn waited_ms(&self) -> u64 {
        self.waited_ms.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Clock for WaitMeter {
    fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }
    async fn sleep(&self, duration: Duration) {
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        self.waited_ms.fetch_add(ms, Ordering::Relaxed);
        self.inner.sleep(duration).await;
    }
}

/// At most `limit` requests in any sliding `window`: [`RateWindow::pace`]
/// waits (through the clock) until the next request fits.
#[derive(Debug)]
pub struct RateWindow {
    limit: usize,
    window: Duration,
    sent: Mutex<VecDeque<DateTime<Utc>>>,
}

impl RateWindow {
    /// `per_minute` requests per token per minute, times `tokens` (at
    /// least one: anonymous requests have a limit too).
    pub fn per_minute(per_minute: usize, tokens: usize) -> Self {
        RateWindow {
            limit: per_minute.max(1) * tokens.max(1),
            window: Duration::from_secs(60),
            sent: Mutex::new(VecDeque::new()),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Wait until one more request fits in the window, then count it.
    /// Returns how long it waited.
    pub async fn pace(&self, clock: &dyn Clock) -> Duration {
        let mut waited = Duration::ZERO;
        loop {
            let now = clock.now();
            let wait = {
                let Ok(mut sent) = self.sent.lock() else {
                    return waited;
                };
                let window = chrono::Duration::from_std(self.window)
                    .unwrap_or_else(|_| chrono::Duration::seconds(60));
                while sent.front().is_some_and(|t| *t + window <= now) {
                    sent.pop_front();
                }
                if sent.len() < self.limit {
                    sent.push_back(now);
                    return waited;
                }
                sent.front()
                    .and_then(|t| (*t + window - now).to_std().ok())
                    .unwrap_or(Duration::from_secs(1))
                    .max(Duration::from_millis(1))
            };
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                limit = self.limit,
                "per-minute request limit reached; pacing"
            );
            clock.sleep(wait).await;
            waited += wait;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    #[tokio::test]
    async fn paces_to_the_window_and_meters_waits() {
        let manual: Arc<dyn Clock> = Arc::new(ManualClock::new(
            DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
        ));
        let meter = WaitMeter::new(manual);
        let w = RateWindow::per_minute(2, 1);
        assert_eq!(w.pace(&*meter).await, Duration::ZERO);
        meter.inner.sleep(Duration::from_secs(10)).await;
        assert_eq!(w.pace(&*meter).await, Duration::ZERO);
        // Third request waits until the first leaves the window (60 s).
        assert_eq!(w.pace(&*meter).await, Duration::from_secs(50));
        assert_eq!(meter.waited_ms(), 50_000);
        assert_eq!(RateWindow::per_minute(10, 3).limit(), 30);
    }
}
