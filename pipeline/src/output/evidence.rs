//! Evidence packages: one folder per violation with annotated key frames, the plate crop
//! and `manifest.json` listing every file's SHA-256.
//!
//! The manifest is signed with the deployment's key (`signature.json`, see
//! [`vigil_evidence::key`]). A package is written into a hidden `.partial` folder, every
//! file flushed to the disk, and renamed into place, so a folder under its final name is
//! always complete, even after a crash; an existing package is never rewritten.

use std::path::{Path, PathBuf};

use ab_glyph::{FontRef, PxScale};
use chrono::{DateTime, SecondsFormat, Utc};
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_hollow_rect_mut, draw_text_mut};
use imageproc::rect::Rect;
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use vigil_core::local_time::{TIME_ZONE, TIME_ZONE_NAME, local_time};

use crate::analysis::{Finding, ModelInfo};
use crate::config::CameraConfig;
use vigil_evidence::package::{sync_dir, write_synced};
use vigil_evidence::{EvidenceKey, MANIFEST, SIGNATURE_FILE};

/// DejaVu Sans Bold (Debian's fonts-dejavu-core), so overlays never depend on the host.
static FONT: &[u8] = include_bytes!("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf");

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("evidence {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("evidence {path}: cannot encode image: {message}")]
    Image { path: PathBuf, message: String },
    #[error("evidence {path}: existing package has no readable manifest")]
    Incomplete { path: PathBuf },
}

/// Where the video came from.
#[derive(Debug, Clone, Serialize)]
pub struct SourceInfo {
    pub uri: String,
    pub sha256: String,
    /// Wall-clock time of the video's first frame.
    pub started_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Package {
    pub dir: PathBuf,
    pub manifest_sha256: String,
}

#[derive(Serialize)]
pub(crate) struct FileEntry {
    name: String,
    sha256: String,
    bytes: u64,
}

#[derive(Serialize)]
struct Times {
    utc: String,
    local: String,
    time_zone: &'static str,
    video_offset_ms: u128,
}

/// A video clip of the violation to move into the package as `clip.mp4`, with the stream
/// time its first frame has.
pub struct ClipFile<'a> {
    pub path: &'a Path,
    pub starts_at: std::time::Duration,
}

/// Write the package for `finding` under `root/<event_id>`, or return the existing one.
#[allow(clippy::too_many_arguments)]
pub fn write_package(
    root: &Path,
    event_id: Uuid,
    camera: &CameraConfig,
    source: &SourceInfo,
    models: &[ModelInfo],
    finding: &Finding,
    key: &EvidenceKey,
    clip: Option<ClipFile<'_>>,
) -> Result<Package, EvidenceError> {
    let dir = root.join(event_id.to_string());
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| EvidenceError::Io { path, source }
    };
    if dir.exists() {
        let manifest = std::fs::read(dir.join(MANIFEST))
            .map_err(|_| EvidenceError::Incomplete { path: dir.clone() })?;
        return Ok(Package {
            manifest_sha256: hex::encode(Sha256::digest(&manifest)),
            dir,
        });
    }
    std::fs::create_dir_all(root).map_err(io(root))?;
    let partial = root.join(format!(".{event_id}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(io(&partial))?;
    }
    std::fs::create_dir(&partial).map_err(io(&partial))?;

    let occurred_at =
        source.started_at + chrono::Duration::from_std(finding.violation.pts).unwrap_or_default();
    let mut files: Vec<FileEntry> = Vec::new();
    for (i, kf) in finding.key_frames.iter().enumerate() {
        let at = source.started_at + chrono::Duration::from_std(kf.frame.pts).unwrap_or_default();
        let mut img = kf.frame.image.as_ref().clone();
        annotate(
            &mut img,
            kf.bbox,
            &[
                format!(
                    "{}  {}",
                    at.with_timezone(&TIME_ZONE)
                        .format("%Y-%m-%d %H:%M:%S%.3f %:z"),
                    camera.id
                ),
                match finding.violation.signal {
                    Some(_) => format!(
                        "{}  signal: {}  vehicle: {}",
                        finding.violation.caption,
                        kf.signal.as_str(),
                        kf.label
                    ),
                    None => format!("{}  vehicle: {}", finding.violation.caption, kf.label),
                },
            ],
        );
        let name = format!("{}_{}.jpg", i + 1, kf.label);
        files.push(save_jpeg(&partial, &name, &img)?);
    }
    if let Some(crop) = &finding.plate_crop {
        files.push(save_jpeg(&partial, "plate.jpg", crop)?);
    }
    if let Some(crop) = &finding.head_crop {
        files.push(save_jpeg(&partial, "head.jpg", crop)?);
    }
    let clip_offset_ms = clip.as_ref().map(|c| c.starts_at.as_millis());
    if let Some(clip) = clip {
        let target = partial.join("clip.mp4");
        std::fs::rename(clip.path, &target).map_err(io(clip.path))?;
        let bytes = std::fs::read(&target).map_err(io(&target))?;
        std::fs::File::open(&target)
            .and_then(|f| f.sync_all())
            .map_err(io(&target))?;
        files.push(FileEntry {
            name: "clip.mp4".into(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            bytes: bytes.len() as u64,
        });
    }

    let manifest = serde_json::json!({
        "schema_version": 1,
        "event_id": event_id,
        "violation": finding.violation.kind.as_str(),
        "rule": finding.violation.rule,
        "camera": {
            "id": camera.id,
            "name": camera.name,
            "location": camera.location,
            "config_sha256": camera.sha256,
        },
        "time": Times {
            utc: occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            local: local_time(occurred_at),
            time_zone: TIME_ZONE_NAME,
            video_offset_ms: finding.violation.pts.as_millis(),
        },
        "measured": finding.violation.facts,
        "signal_at_crossing": finding.violation.signal.map(|s| s.as_str()),
        "vehicle": {
            "track_id": finding.violation.track_id,
            "class": finding.vehicle_class,
            "boxes": finding.key_frames.iter().map(|k| serde_json::json!({
                "frame": k.label, "video_offset_ms": k.frame.pts.as_millis(),
                "x1": k.bbox.x1, "y1": k.bbox.y1, "x2": k.bbox.x2, "y2": k.bbox.y2,
            })).collect::<Vec<_>>(),
        },
        "plate": finding.plate.as_ref().map(|p| serde_json::json!({
            "text": p.plate.to_string(),
            "lines_read": p.lines,
            "colour": finding.plate_colour.map(|c| c.as_str()),
            "confidence": finding.plate_confidence,
            "candidates": finding.plate_candidates.iter().map(|(text, confidence)| serde_json::json!({
                "text": text, "confidence": confidence,
            })).collect::<Vec<_>>(),
        })),
        "source": source,
        "clip": clip_offset_ms.map(|ms| serde_json::json!({
            "file": "clip.mp4", "video_offset_ms": ms,
        })),
        "models": models,
        "files": files,
    });
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| EvidenceError::Io {
        path: partial.join(MANIFEST),
        source: std::io::Error::other(e),
    })?;
    let manifest_path = partial.join(MANIFEST);
    write_synced(&manifest_path, &manifest_bytes).map_err(io(&manifest_path))?;
    let signature_path = partial.join(SIGNATURE_FILE);
    let signature =
        serde_json::to_vec_pretty(&key.sign(&manifest_bytes)).map_err(|e| EvidenceError::Io {
            path: signature_path.clone(),
            source: std::io::Error::other(e),
        })?;
    write_synced(&signature_path, &signature).map_err(io(&signature_path))?;
    sync_dir(&partial).map_err(io(&partial))?;
    std::fs::rename(&partial, &dir).map_err(io(&dir))?;
    sync_dir(root).map_err(io(root))?;
    Ok(Package {
        dir,
        manifest_sha256: hex::encode(Sha256::digest(&manifest_bytes)),
    })
}

pub(crate) fn save_jpeg(
    dir: &Path,
    name: &str,
    img: &RgbImage,
) -> Result<FileEntry, EvidenceError> {
    let path = dir.join(name);
    let mut bytes = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 92);
    img.write_with_encoder(encoder)
        .map_err(|e| EvidenceError::Image {
            path: path.clone(),
            message: e.to_string(),
        })?;
    write_synced(&path, &bytes).map_err(|source| EvidenceError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(FileEntry {
        name: name.into(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        bytes: bytes.len() as u64,
    })
}

/// Draw the vehicle's box and a caption banner on a key frame.
fn annotate(img: &mut RgbImage, bbox: vigil_models::BBox, lines: &[String]) {
    let font = FontRef::try_from_slice(FONT).expect("the embedded font is a valid TTF");
    if let Some((x, y, w, h)) = bbox.pixel_rect(img.width(), img.height()) {
        for t in 0..3u32 {
            if w > 2 * t && h > 2 * t {
                let r = Rect::at((x + t) as i32, (y + t) as i32).of_size(w - 2 * t, h - 2 * t);
                draw_hollow_rect_mut(img, r, Rgb([255, 32, 32]));
            }
        }
    }
    // The caption goes along the bottom edge: the signal head is usually at the top.
    let line_h = 16u32;
    let banner_h = (line_h * lines.len() as u32 + 6).min(img.height());
    let top = img.height() - banner_h;
    draw_filled_rect_mut(
        img,
        Rect::at(0, top as i32).of_size(img.width(), banner_h),
        Rgb([0, 0, 0]),
    );
    for (i, text) in lines.iter().enumerate() {
        let y = (top + 3 + i as u32 * line_h) as i32;
        draw_text_mut(
            img,
            Rgb([255, 255, 255]),
            4,
            y,
            PxScale::from(14.0),
            &font,
            text,
        );
    }
}
