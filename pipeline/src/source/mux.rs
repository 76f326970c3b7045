//! Compressed H.264 access units into an MP4 file without re-encoding: the one muxing
//! pipeline behind evidence clips, continuous recording and footage exports.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::init_gstreamer;
use super::ring::AccessUnit;

/// How the MP4 is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One index at the end, written when the file is finished (a clip, an export).
    Whole,
    /// The header first, then a fragment every `fragment` (continuous recording): a
    /// process killed while writing leaves the file playable up to its last fragment.
    Fragmented { fragment: Duration },
}

pub struct Mp4Writer {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    path: PathBuf,
    /// Stream time of the file's start: units are timed from it.
    base: gst::ClockTime,
    /// The first unit's decode lead: every time in the file is that much later, so that
    /// the first unit is decoded at 0 and none before it (its first frame is then shown
    /// at this lead, and a reader timing frames from the first one sees the stream's).
    lead: Option<gst::ClockTime>,
}

impl Mp4Writer {
    /// A file at `path` for a stream with `caps`, its units timed from `base`.
    pub fn create(
        path: &Path,
        caps: &gst::CapsRef,
        layout: Layout,
        base: gst::ClockTime,
    ) -> Result<Self, String> {
        init_gstreamer().map_err(|e| e.to_string())?;
        let mux = match layout {
            Layout::Whole => "mp4mux".to_string(),
            // Streamable: nothing is written at the end that a player needs.
            Layout::Fragmented { fragment } => format!(
                "mp4mux fragment-duration={} streamable=true",
                fragment.as_millis().clamp(100, 60_000)
            ),
        };
        let pipeline = gst::parse::launch(&format!(
            "appsrc name=src format=time ! h264parse ! {mux} ! filesink location=\"{}\" sync=false",
            path.display().to_string().replace('"', "\\\"")
        ))
        .map_err(|e| e.to_string())?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
        let src = pipeline
            .by_name("src")
            .and_then(|s| s.downcast::<gst_app::AppSrc>().ok())
            .ok_or("no appsrc")?;
        src.set_caps(Some(&caps.to_owned()));
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            pipeline,
            src,
            path: path.to_owned(),
            base,
            lead: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write one unit; an error the muxer reported before it is returned first.
    pub fn push(&mut self, unit: &AccessUnit) -> Result<(), String> {
        if let Some(message) = super::bus_error(&self.pipeline) {
            return Err(message);
        }
        let mut buffer = gst::Buffer::from_slice(unit.data.clone());
        let lead = *self.lead.get_or_insert(unit.decode_ahead);
        let pts = unit.pts.saturating_sub(self.base) + lead;
        let b = buffer.get_mut().ok_or("buffer")?;
        b.set_pts(pts);
        b.set_dts(pts.saturating_sub(unit.decode_ahead));
        if !unit.keyframe {
            b.set_flags(gst::BufferFlags::DELTA_UNIT);
        }
        self.src.push_buffer(buffer).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// End the file and wait up to `within` for it to be written.
    pub fn finish(self, within: Duration) -> Result<(), String> {
        let _ = self.src.end_of_stream();
        let outcome = self.pipeline.bus().and_then(|bus| {
            bus.timed_pop_filtered(
                gst::ClockTime::from_nseconds(within.as_nanos() as u64),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
        });
        let _ = self.pipeline.set_state(gst::State::Null);
        match outcome.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => Ok(()),
            Some(gst::MessageView::Error(e)) => Err(e.error().to_string()),
            _ => Err(format!("muxing did not finish in {} s", within.as_secs())),
        }
    }

    /// Stop at once, without finishing the file (what reached the disk stays).
    pub fn abandon(self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
