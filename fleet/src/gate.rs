//! Fencing: whether what a worker finds on a camera may leave it.
//!
//! A worker may emit a camera's records only while it holds the camera's lease. It holds
//! it while its heartbeats are being stored (the [`Fence`]: renewed on every heartbeat the
//! server acknowledged, measured on this process's monotonic clock from when the
//! heartbeat was *sent*) and nobody took the lease over. Others declare a worker silent
//! only after its heartbeat has not changed for longer than the fence lasts, measured on
//! *their* monotonic clocks from when they *saw* it, which is never before it was sent:
//! so a worker cut off stops emitting before anyone may take its cameras.
//!
//! A worker cut off does not know whether the others took its cameras, so it holds its
//! records back ([`Admit::Hold`]) rather than dropping them; once it hears again, either
//! the lease is still its own (they go out) or it was taken over at a moment the server
//! recorded, and only what happened before that moment goes out ([`Admit::Never`] for
//! the rest, which the new holder saw).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
pub use vigil_core::{Admission, Admit};

/// Until when this worker's heartbeats were renewed.
#[derive(Debug)]
pub struct Fence {
    origin: Instant,
    /// Milliseconds after `origin`; 0: never renewed.
    until_ms: AtomicU64,
}

impl Default for Fence {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            until_ms: AtomicU64::new(0),
        }
    }
}

impl Fence {
    /// A heartbeat sent at `sent` was stored: the worker holds its leases until
    /// `sent + lasts`.
    pub fn renewed(&self, sent: Instant, lasts: Duration) {
        let until = (sent + lasts)
            .saturating_duration_since(self.origin)
            .as_millis() as u64;
        self.until_ms.fetch_max(until, Ordering::SeqCst);
    }

    pub fn holds(&self) -> bool {
        (self.origin.elapsed().as_millis() as u64) < self.until_ms.load(Ordering::SeqCst)
    }

    /// End it now (the worker is stopping or lost its connection for good).
    pub fn end(&self) {
        self.until_ms.store(0, Ordering::SeqCst);
    }
}

/// One camera's lease, as the pipeline sees it.
#[derive(Debug, Clone)]
pub struct Gate {
    inner: Arc<GateInner>,
}

#[derive(Debug)]
struct GateInner {
    fence: Arc<Fence>,
    /// The lease's revision when it was taken: the camera's fencing epoch.
    epoch: u64,
    lost: AtomicBool,
    /// When another worker took the lease (the server's time of its takeover).
    lost_at: Mutex<Option<DateTime<Utc>>>,
}

impl Gate {
    pub fn new(fence: Arc<Fence>, epoch: u64) -> Self {
        Self {
            inner: Arc::new(GateInner {
                fence,
                epoch,
                lost: AtomicBool::new(false),
                lost_at: Mutex::new(None),
            }),
        }
    }

    /// A gate always open: a camera of a deployment file, not of a fleet.
    pub fn always() -> Self {
        let fence = Arc::new(Fence::default());
        fence.renewed(Instant::now(), Duration::from_secs(100 * 365 * 24 * 3600));
        Self::new(fence, 0)
    }

    pub fn epoch(&self) -> u64 {
        self.inner.epoch
    }

    /// Another worker took the camera at `at` (or it was released: `at` is when).
    pub fn lose(&self, at: DateTime<Utc>) {
        if let Ok(mut lost_at) = self.inner.lost_at.lock() {
            lost_at.get_or_insert(at);
        }
        self.inner.lost.store(true, Ordering::SeqCst);
    }

    pub fn is_lost(&self) -> bool {
        self.inner.lost.load(Ordering::SeqCst)
    }

    /// May a record made at `at` leave this worker?
    pub fn admit(&self, at: DateTime<Utc>) -> Admit {
        Admission::admit(self, at)
    }
}

impl Admission for Gate {
    fn admit(&self, at: DateTime<Utc>) -> Admit {
        if self.inner.lost.load(Ordering::SeqCst) {
            let lost_at = self.inner.lost_at.lock().ok().and_then(|l| *l);
            return match lost_at {
                Some(t) if at < t => Admit::Now,
                _ => Admit::Never,
            };
        }
        if self.inner.fence.holds() {
            Admit::Now
        } else {
            Admit::Hold
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_holds_back_once_heartbeats_lapse_and_lets_out_only_what_came_before_a_takeover() {
        let fence = Arc::new(Fence::default());
        let gate = Gate::new(fence.clone(), 7);
        let t0 = Utc::now();
        assert_eq!(gate.admit(t0), Admit::Hold, "never renewed");
        fence.renewed(Instant::now(), Duration::from_secs(60));
        assert_eq!(gate.admit(t0), Admit::Now);
        fence.end();
        assert_eq!(gate.admit(t0), Admit::Hold);
        let taken = t0 + chrono::Duration::seconds(5);
        gate.lose(taken);
        assert_eq!(gate.admit(t0), Admit::Now, "before the takeover");
        assert_eq!(gate.admit(taken), Admit::Never);
        assert_eq!(gate.epoch(), 7);
        assert_eq!(Gate::always().admit(t0), Admit::Now);
    }

    #[test]
    fn a_fence_renewed_from_when_the_heartbeat_was_sent_lapses_on_time() {
        let fence = Fence::default();
        let sent = Instant::now();
        fence.renewed(sent, Duration::from_millis(50));
        assert!(fence.holds());
        std::thread::sleep(Duration::from_millis(60));
        assert!(!fence.holds());
        // An older heartbeat's answer arriving late never shortens it.
        fence.renewed(Instant::now(), Duration::from_secs(10));
        fence.renewed(sent, Duration::from_millis(1));
        assert!(fence.holds());
    }
}
