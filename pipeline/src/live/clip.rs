//! Evidence clips: access units from the ring buffer remuxed into MP4 without re-encoding.
//! Written under a `.partial` name and renamed when complete, so a crash or a stop leaves
//! a whole clip or none.

use std::path::Path;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use sha2::{Digest, Sha256};

use super::{AccessUnit, LiveError};
use crate::source::init_gstreamer;

fn clip_err(path: &Path, message: impl std::fmt::Display) -> LiveError {
    LiveError::Clip {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Write `units` (starting on a keyframe) to `path` as MP4; returns the file's SHA-256.
pub fn write_clip(
    units: &[AccessUnit],
    caps: &gst::Caps,
    path: &Path,
) -> Result<String, LiveError> {
    init_gstreamer()?;
    let first = units
        .first()
        .ok_or_else(|| clip_err(path, "no video to cut the clip from"))?;
    if !first.keyframe {
        return Err(clip_err(path, "the clip does not start on a keyframe"));
    }
    let partial = path.with_extension("mp4.partial");
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time ! h264parse ! mp4mux ! filesink location=\"{}\"",
        partial.display().to_string().replace('"', "\\\"")
    ))
    .map_err(|e| clip_err(path, e))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| clip_err(path, "not a pipeline"))?;
    let src = pipeline
        .by_name("src")
        .and_then(|s| s.downcast::<gst_app::AppSrc>().ok())
        .ok_or_else(|| clip_err(path, "no appsrc"))?;
    src.set_caps(Some(caps));
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| clip_err(path, e))?;
    let base = first.pts;
    for u in units {
        let mut buffer = gst::Buffer::from_slice(u.data.clone());
        {
            let b = buffer.get_mut().ok_or_else(|| clip_err(path, "buffer"))?;
            b.set_pts(u.pts.saturating_sub(base));
            b.set_dts(u.pts.saturating_sub(base));
            if !u.keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        src.push_buffer(buffer).map_err(|e| clip_err(path, e))?;
    }
    src.end_of_stream().map_err(|e| clip_err(path, e))?;
    let bus = pipeline.bus().ok_or_else(|| clip_err(path, "no bus"))?;
    let outcome = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(30),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    match outcome {
        Some(msg) => {
            if let gst::MessageView::Error(e) = msg.view() {
                let _ = std::fs::remove_file(&partial);
                return Err(clip_err(path, e.error()));
            }
        }
        None => {
            let _ = std::fs::remove_file(&partial);
            return Err(clip_err(path, "muxing did not finish in 30 s"));
        }
    }
    let bytes = std::fs::read(&partial).map_err(|e| clip_err(path, e))?;
    std::fs::rename(&partial, path).map_err(|e| clip_err(path, e))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// How long a clip plays: from its first to its last unit, plus one frame.
pub fn clip_span(units: &[AccessUnit]) -> Duration {
    match (units.first(), units.last()) {
        (Some(a), Some(b)) => {
            Duration::from_nanos((b.pts - a.pts).nseconds()) + Duration::from_millis(40)
        }
        _ => Duration::ZERO,
    }
}
