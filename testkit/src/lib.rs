//! Test support for the workspace, never linked by a program that runs a deployment:
//! the fixtures as `scripts/setup` installs them ([`fixtures`]), sample records
//! ([`samples`]), a case store in memory ([`sinks`]), empty case stores on real databases
//! ([`stores`]), local stand-ins for the
//! outside systems ([`stand_ins`], [`payment`]), headless Chromium through chromedriver ([`browser`]),
//! a NATS server of a test's own ([`nats`]), and the simulated RTSP cameras (re-exported
//! from `vigil-camsim`).

pub mod browser;
pub mod fixtures;
pub mod nats;
pub mod payment;
pub mod samples;
pub mod sinks;
pub mod stand_ins;
pub mod stores;

pub use vigil_camsim::{Mount, TestRtspServer};
