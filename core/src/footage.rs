//! Continuous recording's segment files, as every program finds them: named by the
//! wall-clock time of their first frame (so a camera's folder is its own index), ended
//! when they were last written. The pipeline writes them; the case service serves them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

#[derive(Debug, thiserror::Error)]
#[error("footage folder {path}: {message}")]
pub struct FootageFolderError {
    pub path: PathBuf,
    pub message: String,
}

/// A segment's file name: its first frame's wall-clock time, UTC, to the millisecond.
pub fn segment_name(started_at: DateTime<Utc>) -> String {
    started_at.format("%Y%m%dT%H%M%S%.3fZ.mp4").to_string()
}

/// The start a segment's file name gives; `None` for any other file.
pub fn parse_segment_name(name: &str) -> Option<DateTime<Utc>> {
    let stem = name.strip_suffix("Z.mp4")?;
    NaiveDateTime::parse_from_str(stem, "%Y%m%dT%H%M%S%.3f")
        .ok()
        .map(|t| t.and_utc())
}

/// A segment on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSegment {
    pub path: PathBuf,
    pub started_at: DateTime<Utc>,
    /// When it was last written: its end, or now for the one being written.
    pub written_until: DateTime<Utc>,
    pub bytes: u64,
}

impl StoredSegment {
    pub fn covers(&self, at: DateTime<Utc>) -> bool {
        self.started_at <= at && at <= self.written_until
    }
}

/// A camera folder's segments, oldest first. A folder that does not exist holds none.
pub fn segments_in(camera_dir: &Path) -> Result<Vec<StoredSegment>, FootageFolderError> {
    let entries = match std::fs::read_dir(camera_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(FootageFolderError {
                path: camera_dir.to_owned(),
                message: e.to_string(),
            });
        }
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(started_at) = name.to_str().and_then(parse_segment_name) else {
            continue;
        };
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let written_until = meta
            .modified()
            .map(DateTime::<Utc>::from)
            .unwrap_or(started_at);
        found.push(StoredSegment {
            path: entry.path(),
            started_at,
            written_until: written_until.max(started_at),
            bytes: meta.len(),
        });
    }
    found.sort_by_key(|s| s.started_at);
    Ok(found)
}

/// The segment of `camera_dir` that holds the moment `at`, and where in it `at` is.
pub fn segment_at(
    camera_dir: &Path,
    at: DateTime<Utc>,
) -> Result<Option<(StoredSegment, Duration)>, FootageFolderError> {
    // Segments of a camera follow one another: the one that can hold `at` is the last to
    // start at or before it. Names are enough to find it; only that file is looked at
    // (one directory read and one stat, which matters on a shared network folder).
    let entries = match std::fs::read_dir(camera_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(FootageFolderError {
                path: camera_dir.to_owned(),
                message: e.to_string(),
            });
        }
    };
    let latest = entries
        .flatten()
        .filter_map(|entry| {
            let started_at = entry.file_name().to_str().and_then(parse_segment_name)?;
            (started_at <= at).then(|| (started_at, entry.path()))
        })
        .max_by_key(|(started_at, _)| *started_at);
    let Some((started_at, path)) = latest else {
        return Ok(None);
    };
    let Ok(meta) = std::fs::metadata(&path) else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Ok(None);
    }
    let written_until = meta
        .modified()
        .map(DateTime::<Utc>::from)
        .unwrap_or(started_at)
        .max(started_at);
    let segment = StoredSegment {
        path,
        started_at,
        written_until,
        bytes: meta.len(),
    };
    if !segment.covers(at) {
        return Ok(None);
    }
    let offset = (at - segment.started_at).to_std().unwrap_or_default();
    Ok(Some((segment, offset)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segments_name_is_its_start_and_nothing_else_parses() {
        let t = DateTime::parse_from_rfc3339("2026-12-07T05:04:03.250Z")
            .unwrap()
            .to_utc();
        let name = segment_name(t);
        assert_eq!(name, "20261207T050403.250Z.mp4");
        assert_eq!(parse_segment_name(&name), Some(t));
        for other in [
            "evidence.mp4",
            "20261207T050403.250Z.mp4.partial",
            "clip.mp4",
            "x",
        ] {
            assert_eq!(parse_segment_name(other), None, "{other}");
        }
    }
}
