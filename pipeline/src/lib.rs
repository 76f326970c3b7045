//! Video ingest, detection, tracking, rules and evidence, by stage, in the order a frame
//! meets them:
//!
//! - [`source`]: frames from a recorded file or a live RTSP camera ([`source::FrameSource`]),
//!   and the compressed video a violation's clip is cut from ([`source::clip::ClipSource`]);
//! - [`analysis`]: per camera, what of each frame to detect in, the vehicle detector, the
//!   tracker, the [`rules`] (with the [`signal`] for red lights), key frames and the plate
//!   ([`plates`]);
//! - [`output`]: the evidence package, its signature, and the
//!   [`vigil_core::ViolationEvent`] handed to an [`vigil_core::EventSink`];
//! - [`footage`]: continuous recording of each camera's stream, and its retention;
//! - [`run`]: batch, live and scenario evaluation, each a loop over the stages above.
//!
//! The event contract is `vigil-core`'s; this crate knows nothing of how cases are kept.

pub mod analysis;
pub mod config;
pub mod footage;
pub mod frame;
pub mod output;
pub mod plates;
mod retry;
pub mod rules;
pub mod run;
pub mod signal;
pub mod source;

pub use analysis::{Analyzer, AnalyzerSettings, Finding, Models};
pub use config::CameraConfig;
pub use frame::Frame;
pub use source::FileSource;
