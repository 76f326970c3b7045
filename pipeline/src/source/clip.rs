//! Evidence clips: the compressed video around a violation, remuxed into MP4 without
//! re-encoding. [`ClipSource`] is the seam: a recorded file ([`RecordedClips`]) or a live
//! camera's ring buffer (`rtsp::RingClips`) behind it. Clips are written under a
//! `.partial` name and renamed when complete, so a crash or a stop leaves a whole clip or
//! none.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use sha2::{Digest, Sha256};

use super::init_gstreamer;
use super::mux::{Layout, Mp4Writer};
use super::ring::AccessUnit;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("evidence clip {path}: {message}")]
pub struct ClipError {
    pub path: String,
    pub message: String,
}

fn clip_err(path: &Path, message: impl std::fmt::Display) -> ClipError {
    ClipError {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// A clip written to its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clip {
    /// Stream time of its first frame (the keyframe at or before the time asked for).
    pub starts_at: Duration,
    pub sha256: String,
}

/// Where a violation's clip is cut from.
pub trait ClipSource: Send + Sync {
    /// Write the video from the keyframe at or before `from` up to `to` (stream time) to
    /// `out` as MP4, without re-encoding.
    fn cut(&self, from: Duration, to: Duration, out: &Path) -> Result<Clip, ClipError>;

    /// Stream time up to which video is held now; a violation's clip waits for it to pass
    /// the clip's end. `None`: nothing held yet.
    fn held_until(&self) -> Option<Duration>;
}

/// Clips cut from a recorded H.264 file, which holds all of its video.
pub struct RecordedClips {
    pub file: PathBuf,
}

impl ClipSource for RecordedClips {
    fn cut(&self, from: Duration, to: Duration, out: &Path) -> Result<Clip, ClipError> {
        cut_file_clip(&self.file, from, to, out)
    }

    fn held_until(&self) -> Option<Duration> {
        Some(Duration::MAX)
    }
}

/// Write `units` (starting on a keyframe) to `path` as MP4.
pub fn write_clip(units: &[AccessUnit], caps: &gst::Caps, path: &Path) -> Result<Clip, ClipError> {
    init_gstreamer().map_err(|e| clip_err(path, e))?;
    let first = units
        .first()
        .ok_or_else(|| clip_err(path, "no video to cut the clip from"))?;
    if !first.keyframe {
        return Err(clip_err(path, "the clip does not start on a keyframe"));
    }
    let partial = path.with_extension("mp4.partial");
    let written = (|| {
        let mut writer = Mp4Writer::create(&partial, caps, Layout::Whole, first.pts)?;
        for u in units {
            writer.push(u)?;
        }
        writer.finish(Duration::from_secs(30))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(clip_err(path, e));
    }
    let bytes = std::fs::read(&partial).map_err(|e| clip_err(path, e))?;
    std::fs::rename(&partial, path).map_err(|e| clip_err(path, e))?;
    Ok(Clip {
        starts_at: Duration::from_nanos(first.pts.nseconds()),
        sha256: hex::encode(Sha256::digest(&bytes)),
    })
}

/// The next compressed unit of a recording being read, `None` at its end; an error when
/// GStreamer reports one or nothing comes for [`crate::source::file::DECODE_STALL`] (a
/// file cut inside its index can leave the demuxer waiting forever).
fn next_unit(
    pipeline: &gst::Pipeline,
    sink: &gst_app::AppSink,
) -> Result<Option<gst::Sample>, String> {
    let since = std::time::Instant::now();
    loop {
        if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
            return Ok(Some(sample));
        }
        if let Some(message) = super::bus_error(pipeline) {
            return Err(message);
        }
        if sink.is_eos() {
            return Ok(None);
        }
        if since.elapsed() > super::file::DECODE_STALL {
            return Err(format!(
                "nothing read for {} s: the file may be cut short or damaged",
                super::file::DECODE_STALL.as_secs()
            ));
        }
    }
}

/// A recorded H.264 file's compressed access units in order, timed from its first.
pub struct FileUnits {
    file: PathBuf,
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    caps: Option<gst::Caps>,
    origin: Option<gst::ClockTime>,
}

impl FileUnits {
    pub fn open(file: &Path) -> Result<Self, String> {
        init_gstreamer().map_err(|e| e.to_string())?;
        let pipeline = gst::parse::launch(&format!(
            "filesrc location=\"{}\" ! parsebin ! h264parse config-interval=-1 ! \
             video/x-h264,stream-format=byte-stream,alignment=au ! \
             appsink name=sink sync=false max-buffers=64",
            file.display().to_string().replace('"', "\\\"")
        ))
        .map_err(|e| format!("{}: {e}", file.display()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
        let sink = pipeline
            .by_name("sink")
            .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
            .ok_or("no appsink")?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        Ok(Self {
            file: file.to_owned(),
            pipeline,
            sink,
            caps: None,
            origin: None,
        })
    }

    /// The stream's caps, once a unit has been read.
    pub fn caps(&self) -> Option<&gst::Caps> {
        self.caps.as_ref()
    }

    /// The next unit, `None` at the end; an error names the file.
    pub fn next_unit(&mut self) -> Result<Option<AccessUnit>, String> {
        let Some(sample) = next_unit(&self.pipeline, &self.sink)
            .map_err(|m| format!("{}: {m}", self.file.display()))?
        else {
            return Ok(None);
        };
        if self.caps.is_none() {
            self.caps = sample.caps().map(|c| c.to_owned());
        }
        let buffer = sample
            .buffer()
            .ok_or_else(|| format!("{}: a sample without a buffer", self.file.display()))?;
        let raw = buffer.pts().unwrap_or(gst::ClockTime::ZERO);
        let origin = *self.origin.get_or_insert(raw);
        let map = buffer.map_readable().map_err(|e| e.to_string())?;
        let (pts, decode_ahead) = AccessUnit::times(raw, buffer.dts(), origin);
        Ok(Some(AccessUnit {
            data: std::sync::Arc::from(map.as_slice()),
            pts,
            decode_ahead,
            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
        }))
    }
}

impl Drop for FileUnits {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Cut a clip out of a recorded H.264 file: from the keyframe at or before `from` to `to`
/// (stream time from the file's first frame), remuxed without re-encoding. Only the
/// current group of pictures and the clip itself are held in memory, however long the
/// recording.
pub fn cut_file_clip(
    file: &Path,
    from: Duration,
    to: Duration,
    out: &Path,
) -> Result<Clip, ClipError> {
    let mut units = FileUnits::open(file).map_err(|m| clip_err(out, m))?;
    let (from, to) = (
        gst::ClockTime::from_nseconds(from.as_nanos() as u64),
        gst::ClockTime::from_nseconds(to.as_nanos() as u64),
    );
    // Units since the last keyframe before `from`, then the clip's.
    let mut gop: Vec<AccessUnit> = Vec::new();
    let mut kept: Vec<AccessUnit> = Vec::new();
    while let Some(unit) = units.next_unit().map_err(|m| clip_err(out, m))? {
        if unit.pts > to {
            break;
        }
        if !kept.is_empty() {
            kept.push(unit);
            continue;
        }
        if unit.keyframe {
            gop.clear();
        }
        let reached = unit.pts >= from;
        gop.push(unit);
        // The clip starts once `from` is reached, on the keyframe that opens its GOP.
        if reached && gop.first().is_some_and(|u| u.keyframe) {
            kept = std::mem::take(&mut gop);
        }
    }
    let caps = units
        .caps()
        .cloned()
        .ok_or_else(|| clip_err(out, format!("{}: no H.264 video", file.display())))?;
    // A file whose keyframes are all before `from` ends inside the GOP being kept.
    if kept.is_empty() {
        kept = gop;
    }
    let start = kept
        .iter()
        .position(|u| u.keyframe)
        .ok_or_else(|| clip_err(out, format!("{}: no keyframe before {to}", file.display())))?;
    write_clip(&kept[start..], &caps, out)
}
