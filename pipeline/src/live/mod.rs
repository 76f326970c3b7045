//! Live cameras: RTSP ingest with reconnection and the compressed ring buffer evidence
//! clips are cut from.

pub mod camera;
pub mod clip;
pub mod deployment;
pub mod recorder;
pub mod ring;
pub mod runner;

use std::sync::Arc;

use gstreamer as gst;

use crate::source::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("{0}")]
    Gst(String),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("evidence clip {path}: {message}")]
    Clip { path: String, message: String },
}

/// One compressed H.264 access unit (Annex B byte-stream; SPS/PPS travel in-band before
/// each keyframe), timed on its stream's timeline.
#[derive(Clone, Debug)]
pub struct AccessUnit {
    pub data: Arc<[u8]>,
    pub pts: gst::ClockTime,
    pub keyframe: bool,
}
