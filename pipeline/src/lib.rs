//! Video ingest, detection, tracking, rules and evidence.
//!
//! Stages, in the order a frame meets them: [`source`] (GStreamer decode to RGB at the
//! analysis rate) → [`analyzer`] (vehicle detector, [`tracker`], [`rules`], [`signal`]) →
//! [`plate_reader`] for the violating track → [`evidence`] → a
//! [`vigil_core::ViolationEvent`] built by [`batch`].

pub mod analyzer;
pub mod batch;
pub mod config;
pub mod eval;
pub mod evidence;
pub mod exposure;
pub mod frame;
pub mod live;
/// The plate grammar lives with the cases (ticketing checks corrected plates against it).
pub use vigil_core::plate;
pub mod motion;
pub mod plate_colour;
pub mod plate_reader;
pub mod rules;
pub mod signal;
pub mod signal_feed;
pub mod signing;
pub mod source;
pub mod tracker;

pub use analyzer::{Analyzer, AnalyzerSettings, Finding, Models};
pub use config::CameraConfig;
pub use frame::Frame;
pub use source::FileSource;
