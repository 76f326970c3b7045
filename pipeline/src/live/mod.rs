//! Live cameras: RTSP ingest with reconnection, the compressed ring buffer evidence clips
//! are cut from, and a test RTSP server.

pub mod camera;
pub mod clip;
pub mod deployment;
pub mod recorder;
pub mod ring;
pub mod runner;
pub mod test_server;

use std::path::Path;
use std::sync::Arc;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::source::{SourceError, init_gstreamer};

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

/// Every access unit of an H.264 MP4 file, PTS rebased to start at zero, with its caps.
pub fn read_access_units(file: &Path) -> Result<(gst::Caps, Vec<AccessUnit>), LiveError> {
    init_gstreamer()?;
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! qtdemux ! h264parse config-interval=-1 ! \
         video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=sink sync=false",
        file.display().to_string().replace('"', "\\\"")
    ))
    .map_err(|e| LiveError::Gst(format!("{}: {e}", file.display())))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| LiveError::Gst("not a pipeline".into()))?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| LiveError::Gst("no appsink".into()))?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| LiveError::Gst(format!("{}: {e}", file.display())))?;
    let mut units = Vec::new();
    let mut caps = None;
    while let Ok(sample) = sink.pull_sample() {
        if caps.is_none() {
            caps = sample.caps().map(|c| c.to_owned());
        }
        if let Some(buffer) = sample.buffer() {
            let map = buffer
                .map_readable()
                .map_err(|e| LiveError::Gst(format!("{}: {e}", file.display())))?;
            units.push(AccessUnit {
                data: Arc::from(map.as_slice()),
                pts: buffer.pts().unwrap_or(gst::ClockTime::ZERO),
                keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
            });
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    let caps = caps
        .ok_or_else(|| LiveError::Gst(format!("{}: no H.264 video in the file", file.display())))?;
    let first = units.first().map(|u| u.pts).unwrap_or_default();
    for u in &mut units {
        u.pts = u.pts.saturating_sub(first);
    }
    Ok((caps, units))
}
