//! An investigator's export: one camera's recorded footage over a time range as one MP4
//! (from the keyframe at or before the range's start, no re-encoding), in a folder with
//! a manifest signed like an evidence package's, so that `vigil verify` checks it the same
//! way: the file's SHA-256, and the segments it was cut from with theirs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use gstreamer as gst;
use serde::Serialize;
use sha2::{Digest, Sha256};
use vigil_evidence::{EvidenceKey, MANIFEST, SIGNATURE_FILE};

use super::{FootageError, StoredSegment, segments_in};
use crate::source::clip::FileUnits;
use crate::source::mux::{Layout, Mp4Writer};
use crate::source::ring::AccessUnit;

/// The video's name in an export's folder.
pub const EXPORT_FILE: &str = "footage.mp4";
/// The longest range one export covers (a longer one is several exports): its video is
/// written as it is read, but it is still one file to hand over.
pub const MAX_EXPORT: Duration = Duration::from_secs(3_600);

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the range ends ({to}) before it starts ({from})")]
    EmptyRange { from: String, to: String },
    #[error("the range is {0} s long; one export covers at most {max} s", max = MAX_EXPORT.as_secs())]
    TooLong(u64),
    #[error("camera {camera} has no recorded footage between {from} and {to}")]
    NoFootage {
        camera: String,
        from: String,
        to: String,
    },
    #[error("export {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error(transparent)]
    Footage(#[from] FootageError),
}

#[derive(Debug, Clone, Serialize)]
struct ExportManifest<'a> {
    kind: &'static str,
    camera: ManifestCamera<'a>,
    /// What was asked for.
    requested: Range,
    /// What the video covers: from the keyframe at or before the start.
    covers: Range,
    exported_at: DateTime<Utc>,
    exported_by: &'a str,
    /// The recorded segments it was cut from.
    segments: Vec<Listed>,
    files: Vec<Listed>,
}

#[derive(Debug, Clone, Serialize)]
struct ManifestCamera<'a> {
    id: &'a str,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct Range {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
struct Listed {
    name: String,
    sha256: String,
}

/// An export written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub dir: PathBuf,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub bytes: u64,
    pub segments: usize,
}

/// Who asked, for the manifest.
pub struct ExportRequest<'a> {
    pub camera_id: &'a str,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub exported_by: &'a str,
    pub now: DateTime<Utc>,
}

fn write_err(path: &Path, message: impl std::fmt::Display) -> ExportError {
    ExportError::Write {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

fn sha256_file(path: &Path) -> Result<String, std::io::Error> {
    let mut hasher = Sha256::new();
    let mut f = std::fs::File::open(path)?;
    std::io::copy(&mut f, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Export the footage of `camera_dir` that `request` asks for into the folder `out`
/// (made; written under a hidden name first and renamed when whole, so a failure leaves
/// nothing half-written).
pub fn export(
    camera_dir: &Path,
    request: &ExportRequest,
    out: &Path,
    key: &EvidenceKey,
) -> Result<Exported, ExportError> {
    let (from, to) = (request.from, request.to);
    if to <= from {
        return Err(ExportError::EmptyRange {
            from: from.to_rfc3339(),
            to: to.to_rfc3339(),
        });
    }
    let span = (to - from).to_std().unwrap_or_default();
    if span > MAX_EXPORT {
        return Err(ExportError::TooLong(span.as_secs()));
    }
    let segments: Vec<StoredSegment> = segments_in(camera_dir)
        .map_err(FootageError::from)?
        .into_iter()
        .filter(|s| s.started_at <= to && s.written_until >= from)
        .collect();
    let none = || ExportError::NoFootage {
        camera: request.camera_id.to_string(),
        from: from.to_rfc3339(),
        to: to.to_rfc3339(),
    };
    let origin = segments.first().ok_or_else(none)?.started_at;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = out.with_file_name(format!(".{name}.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).map_err(|e| write_err(&partial, e))?;
    let written = write_video(&segments, origin, from, to, &partial.join(EXPORT_FILE));
    let (first, last) = match written {
        Ok(Some(span)) => span,
        Ok(None) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(none());
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    let at = |t: gst::ClockTime| origin + chrono::Duration::nanoseconds(t.nseconds() as i64);
    let video = partial.join(EXPORT_FILE);
    let result = (|| {
        let mut listed_segments = Vec::new();
        for s in &segments {
            listed_segments.push(Listed {
                name: s
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                sha256: sha256_file(&s.path).map_err(|e| write_err(&s.path, e))?,
            });
        }
        let manifest = ExportManifest {
            kind: "footage_export",
            camera: ManifestCamera {
                id: request.camera_id,
            },
            requested: Range { from, to },
            covers: Range {
                from: at(first),
                to: at(last),
            },
            exported_at: request.now,
            exported_by: request.exported_by,
            segments: listed_segments,
            files: vec![Listed {
                name: EXPORT_FILE.into(),
                sha256: sha256_file(&video).map_err(|e| write_err(&video, e))?,
            }],
        };
        let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| write_err(&partial, e))?;
        std::fs::write(partial.join(MANIFEST), &bytes).map_err(|e| write_err(&partial, e))?;
        let signature =
            serde_json::to_vec_pretty(&key.sign(&bytes)).map_err(|e| write_err(&partial, e))?;
        std::fs::write(partial.join(SIGNATURE_FILE), signature)
            .map_err(|e| write_err(&partial, e))?;
        let bytes = std::fs::metadata(&video)
            .map_err(|e| write_err(&video, e))?
            .len();
        std::fs::rename(&partial, out).map_err(|e| write_err(out, e))?;
        Ok(Exported {
            dir: out.to_owned(),
            starts_at: at(first),
            ends_at: at(last),
            bytes,
            segments: segments.len(),
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result
}

/// Write the units of `segments` from the keyframe at or before `from` to `to` into
/// `path`, timed from `origin` (the first segment's start); the times (from `origin`) of
/// the first and last unit written, or `None` when none fell in the range.
fn write_video(
    segments: &[StoredSegment],
    origin: DateTime<Utc>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    path: &Path,
) -> Result<Option<(gst::ClockTime, gst::ClockTime)>, ExportError> {
    let since_origin = |t: DateTime<Utc>| {
        gst::ClockTime::from_nseconds((t - origin).num_nanoseconds().unwrap_or(0).max(0) as u64)
    };
    let (from, to) = (since_origin(from), since_origin(to));
    let mut writer: Option<Mp4Writer> = None;
    let mut gop: Vec<AccessUnit> = Vec::new();
    let mut first = None;
    let mut last = gst::ClockTime::ZERO;
    'segments: for segment in segments {
        let offset = since_origin(segment.started_at);
        let mut units = match FileUnits::open(&segment.path) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(segment = %segment.path.display(), error = %e, "footage segment unreadable; left out of the export");
                continue;
            }
        };
        loop {
            let unit = match units.next_unit() {
                Ok(Some(u)) => u,
                Ok(None) => break,
                // A segment cut short by a crash ends inside its last fragment.
                Err(e) => {
                    tracing::warn!(segment = %segment.path.display(), error = %e, "footage segment ends early");
                    break;
                }
            };
            let Some(caps) = units.caps().cloned() else {
                continue;
            };
            // On the export's one timeline: each segment starts where its first frame
            // arrived, after the last of the one before.
            let pts = offset + unit.pts;
            if pts > to {
                break 'segments;
            }
            let unit = AccessUnit { pts, ..unit };
            match &mut writer {
                Some(w) => {
                    w.push(&unit).map_err(|e| write_err(path, e))?;
                    last = last.max(pts);
                }
                None => {
                    if unit.keyframe {
                        gop.clear();
                    }
                    let reached = unit.pts >= from;
                    gop.push(unit);
                    if reached && gop.first().is_some_and(|u| u.keyframe) {
                        let base = gop[0].pts;
                        let mut w = Mp4Writer::create(path, &caps, Layout::Whole, base)
                            .map_err(|e| write_err(path, e))?;
                        for u in gop.drain(..) {
                            w.push(&u).map_err(|e| write_err(path, e))?;
                            last = last.max(u.pts);
                        }
                        first = Some(base);
                        writer = Some(w);
                    } else if !gop.first().is_some_and(|u| u.keyframe) {
                        gop.clear();
                    }
                }
            }
        }
    }
    match (writer, first) {
        (Some(w), Some(first)) => {
            w.finish(Duration::from_secs(60))
                .map_err(|e| write_err(path, e))?;
            Ok(Some((first, last)))
        }
        _ => Ok(None),
    }
}
