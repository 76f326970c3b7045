//! Time, injected: deadlines, retries, sessions, stalls and clip waits are tested by moving
//! a clock, not by waiting.
//!
//! A clock tells wall time (for records) and monotonic time (for intervals and deadlines,
//! which must not jump when the wall clock is set), and waits. A [`ManualClock`] moves only
//! when told to, or when something sleeps on it: its sleep moves it on at once, so a retry
//! loop tested on it runs its whole backoff schedule without waiting.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + 'static {
    /// Wall-clock time.
    fn now(&self) -> DateTime<Utc>;

    /// Time since this clock's origin that only moves forward.
    fn monotonic(&self) -> Duration;

    /// Wait this long.
    fn sleep(&self, d: Duration);
}

/// The machine's clocks.
pub struct SystemClock;

/// Every [`SystemClock`] measures monotonic time from the same moment.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn monotonic(&self) -> Duration {
        origin().elapsed()
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// A clock that moves only when told to, or when something sleeps on it.
pub struct ManualClock(Mutex<(DateTime<Utc>, Duration)>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new((at, Duration::ZERO)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (DateTime<Utc>, Duration)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Move both clocks on.
    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.lock();
        t.0 =
            t.0.checked_add_signed(by)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
        t.1 = t.1.saturating_add(by.to_std().unwrap_or_default());
    }

    /// Set the wall clock (monotonic time is not moved back).
    pub fn set(&self, at: DateTime<Utc>) {
        let mut t = self.lock();
        if let Ok(forward) = (at - t.0).to_std() {
            t.1 = t.1.saturating_add(forward);
        }
        t.0 = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.lock().0
    }

    fn monotonic(&self) -> Duration {
        self.lock().1
    }

    fn sleep(&self, d: Duration) {
        self.advance(chrono::Duration::from_std(d).unwrap_or(chrono::TimeDelta::MAX));
        // Let the thread being waited for run, as a real sleep would.
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_when_slept_on_and_never_runs_back() {
        let start: DateTime<Utc> = "2025-03-01T00:00:00Z".parse().unwrap();
        let c = ManualClock::new(start);
        c.sleep(Duration::from_millis(1500));
        assert_eq!(c.now(), start + chrono::Duration::milliseconds(1500));
        assert_eq!(c.monotonic(), Duration::from_millis(1500));
        c.set(start);
        assert_eq!(c.now(), start);
        assert_eq!(
            c.monotonic(),
            Duration::from_millis(1500),
            "monotonic time stays"
        );
        let s = SystemClock;
        let a = s.monotonic();
        assert!(s.monotonic() >= a);
    }
}
