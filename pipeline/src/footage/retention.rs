//! Which recorded segments go: those older than their camera's days, then the oldest of
//! all cameras while the footage is over its quota or the disk is short of free space.
//! Only files named as segments inside the footage root are ever removed, and never the
//! one being written: evidence clips and packages live elsewhere and stay.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{FootageError, StoredSegment, segments_in};

/// How much footage is kept.
#[derive(Debug, Clone, Default)]
pub struct RetentionPolicy {
    /// Days kept per camera folder name; a camera not named keeps `default_days`.
    pub days: HashMap<String, f64>,
    pub default_days: Option<f64>,
    /// All cameras' segments together at most this many bytes.
    pub quota_bytes: Option<u64>,
    /// Keep at least this much of the disk free (the oldest segments go first).
    pub min_free_bytes: Option<u64>,
}

/// One segment removed and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub path: PathBuf,
    pub bytes: u64,
    pub why: &'static str,
}

/// Free bytes on the disk holding `path` (`None` where it cannot be told).
pub fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `stat` a writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut stat) };
    (rc == 0).then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// Apply `policy` to the footage under `root` at `now`, sparing `writing` (the files
/// being written). `free` tells the disk's free bytes (see [`free_bytes`]). Every
/// removal is logged and returned; a file that cannot be removed is logged and skipped.
pub fn enforce(
    root: &Path,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
    writing: &[PathBuf],
    free: impl Fn() -> Option<u64>,
) -> Result<Vec<Removed>, FootageError> {
    let mut all: Vec<(String, StoredSegment)> = Vec::new();
    let cameras = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(FootageError::Folder(
                vigil_core::footage::FootageFolderError {
                    path: root.to_owned(),
                    message: e.to_string(),
                },
            ));
        }
    };
    for camera in cameras.flatten() {
        if !camera.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = camera.file_name().to_string_lossy().into_owned();
        for s in segments_in(&camera.path())? {
            if !writing.contains(&s.path) {
                all.push((name.clone(), s));
            }
        }
    }
    all.sort_by_key(|(_, s)| s.started_at);
    let mut removed = Vec::new();
    let remove = |s: &StoredSegment, why: &'static str, removed: &mut Vec<Removed>| {
        match std::fs::remove_file(&s.path) {
            Ok(()) => {
                tracing::info!(path = %s.path.display(), bytes = s.bytes, why, "footage segment removed");
                removed.push(Removed {
                    path: s.path.clone(),
                    bytes: s.bytes,
                    why,
                });
                true
            }
            // Gone already: another worker's retention on a shared folder took it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => {
                tracing::warn!(path = %s.path.display(), error = %e, "footage segment could not be removed");
                false
            }
        }
    };
    // Older than their camera keeps.
    let mut kept = Vec::with_capacity(all.len());
    for (camera, s) in all {
        let days = policy.days.get(&camera).copied().or(policy.default_days);
        let expired = days.is_some_and(|d| {
            let keep = chrono::Duration::from_std(Duration::from_secs_f64(d.max(0.0) * 86_400.0))
                .unwrap_or(chrono::Duration::MAX);
            s.written_until < now - keep
        });
        if !(expired && remove(&s, "older than the camera's days", &mut removed)) {
            kept.push(s);
        }
    }
    // Then the oldest of all, while over the quota or short of free space.
    let mut total: u64 = kept.iter().map(|s| s.bytes).sum();
    // Free space read once: what it will be is what was free plus what was removed
    // (a file system may report a removal late).
    let free_before = policy.min_free_bytes.and_then(|_| free());
    let mut freed: u64 = 0;
    for s in &kept {
        let over_quota = policy.quota_bytes.is_some_and(|q| total > q);
        let short_of_space = match (policy.min_free_bytes, free_before) {
            (Some(min), Some(f)) => f.saturating_add(freed) < min,
            _ => false,
        };
        if !(over_quota || short_of_space) {
            break;
        }
        let why = if over_quota {
            "footage over its quota"
        } else {
            "disk short of free space"
        };
        if remove(s, why, &mut removed) {
            total -= s.bytes;
            freed = freed.saturating_add(s.bytes);
        }
    }
    Ok(removed)
}
