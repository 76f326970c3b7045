//! A recording's compressed access units, read once and served again and again.

use std::path::Path;
use std::sync::Arc;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::{SimError, init_gstreamer};

/// One H.264 access unit (Annex B byte-stream, SPS/PPS in-band before each keyframe).
#[derive(Clone, Debug)]
pub struct Unit {
    pub data: Arc<[u8]>,
    pub pts: gst::ClockTime,
    pub keyframe: bool,
}

/// Every access unit of an H.264 MP4 file, PTS rebased to start at zero, with its caps.
pub fn read_units(file: &Path) -> Result<(gst::Caps, Vec<Unit>), SimError> {
    init_gstreamer()?;
    let failed = |e: &dyn std::fmt::Display| SimError::Gst(format!("{}: {e}", file.display()));
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! qtdemux ! h264parse config-interval=-1 ! \
         video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=sink sync=false",
        file.display().to_string().replace('"', "\\\"")
    ))
    .map_err(|e| failed(&e))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| SimError::Gst("not a pipeline".into()))?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| SimError::Gst("no appsink".into()))?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| failed(&e))?;
    let mut units = Vec::new();
    let mut caps = None;
    while let Ok(sample) = sink.pull_sample() {
        if caps.is_none() {
            caps = sample.caps().map(|c| c.to_owned());
        }
        if let Some(buffer) = sample.buffer() {
            let map = buffer.map_readable().map_err(|e| failed(&e))?;
            units.push(Unit {
                data: Arc::from(map.as_slice()),
                pts: buffer.pts().unwrap_or(gst::ClockTime::ZERO),
                keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
            });
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    let caps = caps.ok_or_else(|| failed(&"no H.264 video in the file"))?;
    let first = units.first().map(|u| u.pts).unwrap_or_default();
    for u in &mut units {
        u.pts = u.pts.saturating_sub(first);
    }
    Ok((caps, units))
}
