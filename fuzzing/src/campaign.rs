//! Running a target over mutated inputs: every input tried, every panic caught with the
//! input that caused it, and the count of what was accepted and refused.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;
use std::time::{Duration, Instant};

use crate::mutate::{Rng, Shape, mutate};
use crate::targets::{Target, Verdict};

/// An input that made a target panic, and what the panic said.
#[derive(Debug, Clone)]
pub struct Crash {
    pub input: Vec<u8>,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub tried: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub crashes: Vec<Crash>,
}

/// When a campaign stops.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    Inputs(u64),
    /// Wall-clock, for long runs from `scripts/fuzz` (never in the suite).
    Time(Duration),
}

thread_local! {
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
}

/// While an input runs, keep a panic's message (and its location) for the report instead
/// of printing it; any other panic is printed as usual.
fn quiet_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic with no message".into());
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let capturing = CAPTURING.try_with(Cell::get).unwrap_or(false);
            if capturing {
                let _ = PANIC.try_with(|p| p.borrow_mut().replace(format!("{message}{at}")));
            } else {
                previous(info);
            }
        }));
    });
}

/// Run one input; `Err` with the panic's message if it panicked.
pub fn try_input(target: &Target, input: &[u8]) -> Result<Verdict, String> {
    quiet_panics();
    PANIC.with(|p| p.borrow_mut().take());
    CAPTURING.with(|c| c.set(true));
    let outcome = catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    CAPTURING.with(|c| c.set(false));
    outcome.map_err(|_| {
        PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| "a panic".into())
    })
}

/// Try `target` on each seed as it is, then on mutations of them until `budget` is spent.
pub fn run(target: &Target, seeds: &[Vec<u8>], budget: Budget, rng_seed: u64) -> Report {
    let mut report = Report::default();
    let shape = Shape {
        text: target.text,
        max_len: target.max_len,
    };
    let mut rng = Rng::new(rng_seed);
    let started = Instant::now();
    let mut next_seed = seeds.iter();
    loop {
        let more = match budget {
            Budget::Inputs(n) => report.tried < n,
            Budget::Time(d) => started.elapsed() < d,
        };
        if !more || seeds.is_empty() {
            break;
        }
        let input = match next_seed.next() {
            Some(seed) => seed.clone(),
            None => mutate(&mut rng, seeds, shape),
        };
        report.tried += 1;
        match try_input(target, &input) {
            Ok(Verdict::Accepted) => report.accepted += 1,
            Ok(Verdict::Rejected) => report.rejected += 1,
            Err(message) => report.crashes.push(Crash { input, message }),
        }
    }
    report
}
