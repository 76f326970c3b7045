//! One camera's segment files, written from its compressed access units as they arrive.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use gstreamer as gst;

use super::{FootageError, StoredSegment, segment_name};
use crate::source::mux::{Layout, Mp4Writer};
use crate::source::ring::AccessUnit;

/// Fragments of a second: what a kill can cost of the segment being written.
const FRAGMENT: Duration = Duration::from_secs(1);
/// Stream time going back by more than this is a new connection, not reordered frames.
const RESTART_JUMP: gst::ClockTime = gst::ClockTime::from_seconds(1);

/// Writes a camera's stream into segments of about `length`, each starting on a keyframe.
pub struct SegmentWriter {
    dir: PathBuf,
    length: Duration,
    open: Option<Open>,
}

struct Open {
    mp4: Mp4Writer,
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
            open.mp4.abandon();
        }
    }

    /// The file being written now.
    pub fn writing(&self) -> Option<&Path> {
        self.open.as_ref().map(|o| o.mp4.path())
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
        std::fs::create_dir_all(dir).map_err(|e| write_err(&path, e))?;
        let layout = Layout::Fragmented {
            fragment: FRAGMENT,
        };
        let mp4 =
            Mp4Writer::create(&path, caps, layout, first_pts).map_err(|e| write_err(&path, e))?;
        Ok(Self {
            mp4,
            started_at,
            first_pts,
            last_pts: first_pts,
        })
    }

    fn push(&mut self, unit: &AccessUnit) -> Result<(), FootageError> {
        self.mp4
            .push(unit)
            .map_err(|e| write_err(self.mp4.path(), e))?;
        self.last_pts = unit.pts;
        Ok(())
    }

    fn finish(self) -> Result<StoredSegment, FootageError> {
        let path = self.mp4.path().to_owned();
        self.mp4
            .finish(Duration::from_secs(10))
            .map_err(|e| write_err(&path, e))?;
        let bytes = std::fs::metadata(&path)
            .map_err(|e| write_err(&path, e))?
            .len();
        let length = Duration::from_nanos(self.last_pts.saturating_sub(self.first_pts).nseconds());
        Ok(StoredSegment {
            path,
            started_at: self.started_at,
            written_until: self.started_at
                + chrono::Duration::from_std(length).unwrap_or_default(),
            bytes,
        })
    }
}
