//! Fuzzing what Vigil reads from outside. The targets are plain functions over bytes, so
//! the same code runs three ways: a short seeded run of each in the suite
//! (`tests/short_runs.rs`), a long timed run from `scripts/fuzz` through the `vigil-fuzz`
//! binary, and coverage-guided runs under libFuzzer (`fuzz/`, cargo-fuzz's layout).
//! The HTTP API is fuzzed from its OpenAPI document (`scripts/fuzz api`, schemathesis)
//! and, in the suite, by the ticketing tests' schema-driven requests.

pub mod campaign;
pub mod mutate;
pub mod seeds;
pub mod targets;

pub use campaign::{Budget, Crash, Report, run, try_input};
pub use targets::{Target, Verdict, all, target};
