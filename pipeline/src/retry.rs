//! Capped exponential backoff with jitter, for everything that retries: camera reconnects
//! and records a store refused.

use std::time::Duration;

/// Between half and all of `min`·2^`attempt`, at most `max`: retries from many cameras or
/// workers spread out instead of arriving together.
pub fn backoff(attempt: u32, min: Duration, max: Duration) -> Duration {
    let full = min
        .saturating_mul(1u32 << attempt.min(16))
        .min(max)
        .max(Duration::from_millis(1));
    let mut r = [0u8; 2];
    let _ = getrandom::fill(&mut r);
    let fraction = 0.5 + (u16::from_le_bytes(r) as f64 / u16::MAX as f64) * 0.5;
    full.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let (min, max) = (Duration::from_millis(500), Duration::from_secs(4));
        for attempt in 0..10 {
            let b = backoff(attempt, min, max);
            let full = min.saturating_mul(1 << attempt).min(max);
            assert!(b >= full / 2 && b <= full, "attempt {attempt}: {b:?}");
        }
    }
}
