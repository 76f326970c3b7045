//! One camera's segment files, written from its compressed access units as they arrive.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::{FootageError, StoredSegment, segment_name};
use crate::source::init_gstreamer;
use crate::source::ring::AccessUnit;

/// Fragments of a second: what a kill can cost of the segment being written.
const FRAGMENT_MS: u32 = 1000;
/// Stream time going back by more than this is a new connection, not reordered frames.
const RESTART_JUMP: gst::ClockTime = gst::ClockTime::from_seconds(1);

/// Writes a camera's stream into segments of about `length`, each starting on a keyframe.
pub struct SegmentWriter {
    dir: PathBuf,
    length: Duration,
    open: Option<Open>,
}

struct Open {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    path: PathBuf,
    started_at: DateTime<Utc>,
    first_pts: gst::ClockTime,
    last_pts: gst::ClockTime,
}

fn write_err(path: &Path, message: impl std::fmt::Display) -> FootageError {
    FootageError::Write {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

impl SegmentWriter {
    /// Segments of `length` in `dir` (made when the first is opened).
    pub fn new(dir: PathBuf, length: Duration) -> Self {
        Self {
            dir,
            length: length.max(Duration::from_secs(1)),
            open: None,
        }
    }

    /// Write `unit` (of a stream with `caps`) that arrived at wall-clock time `wall`.
    /// A segment is closed at the first keyframe after its length, and when the stream's
    /// time goes back (a new connection): returns the segment closed, if one was. Units
    /// before the first keyframe cannot be decoded and are not written.
    pub fn push(
        &mut self,
        unit: &AccessUnit,
        caps: &gst::CapsRef,
        wall: DateTime<Utc>,
    ) -> Result<Option<StoredSegment>, FootageError> {
        let mut closed = None;
        if let Some(open) = &self.open {
            let full = unit.keyframe
                && Duration::from_nanos(unit.pts.saturating_sub(open.first_pts).nseconds())
                    >= self.length;
            // B-frames come a little before the frame they follow; a new connection
            // starts its time again from zero.
            let restarted = unit.pts + RESTART_JUMP < open.last_pts;
            if full || restarted {
                closed = self.close()?;
            }
        }
        if self.open.is_none() {
            if !unit.keyframe {
                return Ok(closed);
            }
            self.open = Some(Open::start(&self.dir, caps, unit.pts, wall)?);
        }
        if let Some(open) = &mut self.open {
            open.push(unit)?;
        }
        Ok(closed)
    }

    /// Finish the segment being written (its last fragment flushed); the segment.
    pub fn close(&mut self) -> Result<Option<StoredSegment>, FootageError> {
        match self.open.take() {
            Some(open) => open.finish().map(Some),
            None => Ok(None),
        }
    }

    /// Stop writing the segment now without waiting for it to finish (its writing
    /// failed): what reached the disk stays, up to its last whole fragment.
    pub fn abandon(&mut self) {
        if let Some(open) = self.open.take() {
            let _ = open.pipeline.set_state(gst::State::Null);
        }
    }

    /// The file being written now.
    pub fn writing(&self) -> Option<&Path> {
        self.open.as_ref().map(|o| o.path.as_path())
    }
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(error = %e, "the last footage segment was not finished");
        }
    }
}

impl Open {
    fn start(
        dir: &Path,
        caps: &gst::CapsRef,
        first_pts: gst::ClockTime,
        started_at: DateTime<Utc>,
    ) -> Result<Self, FootageError> {
        let path = dir.join(segment_name(started_at));
        init_gstreamer().map_err(|e| write_err(&path, e))?;
        std::fs::create_dir_all(dir).map_err(|e| write_err(&path, e))?;
        // Fragmented and streamable: the header first, then a fragment a second, and
        // nothing to write at the end that the file needs to be played.
        let pipeline = gst::parse::launch(&format!(
            "appsrc name=src format=time ! h264parse ! mp4mux fragment-duration={FRAGMENT_MS} streamable=true \
             ! filesink location=\"{}\" sync=false",
            path.display().to_string().replace('"', "\\\"")
        ))
        .map_err(|e| write_err(&path, e))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| write_err(&path, "not a pipeline"))?;
        let src = pipeline
            .by_name("src")
            .and_then(|s| s.downcast::<gst_app::AppSrc>().ok())
            .ok_or_else(|| write_err(&path, "no appsrc"))?;
        src.set_caps(Some(&caps.to_owned()));
        // A camera faster than the disk must not take the memory: at most 32 MiB waits.
        src.set_max_bytes(32 << 20);
        src.set_property("block", false);
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| write_err(&path, e))?;
        Ok(Self {
            pipeline,
            src,
            path,
            started_at,
            first_pts,
            last_pts: first_pts,
        })
    }

    fn push(&mut self, unit: &AccessUnit) -> Result<(), FootageError> {
        if let Some(message) = crate::source::bus_error(&self.pipeline) {
            return Err(write_err(&self.path, message));
        }
        let mut buffer = gst::Buffer::from_slice(unit.data.clone());
        let pts = unit.pts.saturating_sub(self.first_pts);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(pts);
            b.set_dts(pts);
            if !unit.keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        self.src
            .push_buffer(buffer)
            .map_err(|e| write_err(&self.path, e))?;
        self.last_pts = unit.pts;
        Ok(())
    }

    fn finish(self) -> Result<StoredSegment, FootageError> {
        let _ = self.src.end_of_stream();
        let outcome = self.pipeline.bus().and_then(|bus| {
            bus.timed_pop_filtered(
                gst::ClockTime::from_seconds(10),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
        });
        let _ = self.pipeline.set_state(gst::State::Null);
        match outcome.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => {}
            Some(gst::MessageView::Error(e)) => return Err(write_err(&self.path, e.error())),
            _ => return Err(write_err(&self.path, "did not finish in 10 s")),
        }
        let bytes = std::fs::metadata(&self.path)
            .map_err(|e| write_err(&self.path, e))?
            .len();
        let length = Duration::from_nanos(self.last_pts.saturating_sub(self.first_pts).nseconds());
        Ok(StoredSegment {
            path: self.path,
            started_at: self.started_at,
            written_until: self.started_at
                + chrono::Duration::from_std(length).unwrap_or_default(),
            bytes,
        })
    }
}
