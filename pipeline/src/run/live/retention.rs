//! The live runner's footage retention: every minute, the recorded segments its policy
//! no longer keeps are removed (logged each), so a full disk never stops analysis.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use vigil_core::Clock;

use super::LiveError;
use crate::footage::retention::{RetentionPolicy, enforce, free_bytes};
use crate::footage::segments_in;

const EVERY: Duration = Duration::from_secs(60);

pub(super) fn start(
    root: PathBuf,
    policy: RetentionPolicy,
    days: Arc<RwLock<HashMap<String, f64>>>,
    segment: Duration,
    stop: Arc<AtomicBool>,
    clock: Arc<dyn Clock>,
) -> Result<JoinHandle<()>, LiveError> {
    std::thread::Builder::new()
        .name("footage-retention".into())
        .spawn(move || {
            let mut next = clock.monotonic();
            while !stop.load(Ordering::SeqCst) {
                if clock.monotonic() >= next {
                    next = clock.monotonic() + EVERY;
                    // Each camera's own days as they stand now.
                    let mut policy = policy.clone();
                    if let Ok(days) = days.read() {
                        policy
                            .days
                            .extend(days.iter().map(|(k, v)| (k.clone(), *v)));
                    }
                    round(&root, &policy, segment, clock.as_ref());
                }
                clock.sleep(Duration::from_millis(200));
            }
        })
        .map_err(LiveError::Worker)
}

fn round(root: &std::path::Path, policy: &RetentionPolicy, segment: Duration, clock: &dyn Clock) {
    let now = clock.now();
    let writing = being_written(root, now, segment);
    if let Err(e) = enforce(root, policy, now, &writing, || free_bytes(root)) {
        tracing::warn!(error = %e, "footage retention could not look at the footage");
    }
}

/// Each camera's newest segment while it was written to within two segments' length:
/// the one being written, never removed.
fn being_written(
    root: &std::path::Path,
    now: chrono::DateTime<chrono::Utc>,
    segment: Duration,
) -> Vec<PathBuf> {
    let recent = chrono::Duration::from_std(segment * 2).unwrap_or(chrono::Duration::MAX);
    let Ok(cameras) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    cameras
        .flatten()
        .filter_map(|c| segments_in(&c.path()).ok()?.pop())
        .filter(|s| s.written_until > now - recent)
        .map(|s| s.path)
        .collect()
}
