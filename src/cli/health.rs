//! Camera health for the cameras page: what each camera's config says (name, place), its
//! state, and a picture of its last frame. `vigil run` reports it every few seconds,
//! `vigil batch` once per recording, so the web service needs no connection to cameras.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use vigil_core::DataDir;
use vigil_core::data_dir::file_name_of;
use vigil_pipeline::CameraConfig;
use vigil_pipeline::run::batch::{BatchError, FileReport};
use vigil_ticketing::CaseStore;
use vigil_ticketing::cameras::CameraHealth;

use super::Context;

/// A camera's health with what its config says and a picture of its last frame saved
/// beside the others; counters zero, for the caller to fill. A picture that cannot be
/// saved is logged, not fatal: the report still goes.
pub fn camera_health(
    config: &CameraConfig,
    state: &str,
    reason: Option<String>,
    frame: Option<&image::RgbImage>,
    data: &DataDir,
    now: DateTime<Utc>,
) -> CameraHealth {
    let thumbnail = frame.and_then(|frame| match save_picture(data, &config.id, frame) {
        Ok(path) => Some(path.display().to_string()),
        Err(e) => {
            tracing::warn!(camera = %config.id, error = %e, "camera picture not saved");
            None
        }
    });
    CameraHealth {
        camera_id: config.id.clone(),
        name: config.name.clone(),
        location: config.location.clone(),
        latitude: config.position.map(|p| p.lat),
        longitude: config.position.map(|p| p.lon),
        state: state.to_string(),
        reason,
        fps_in: 0.0,
        frames_in: 0,
        frames_dropped: 0,
        reconnects: 0,
        last_frame_at: None,
        thumbnail,
        reported_at: now,
    }
}

/// A small picture of a camera's last frame, replaced whole (written aside, then renamed)
/// so the page never reads half of one.
fn save_picture(data: &DataDir, camera: &str, frame: &image::RgbImage) -> Result<PathBuf> {
    let dir = data.camera_pictures();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (w, h) = frame.dimensions();
    let width = w.min(320);
    let height = ((h as u64 * width as u64) / w.max(1) as u64).max(1) as u32;
    let small = image::imageops::thumbnail(frame, width, height);
    let path = data.camera_picture(camera);
    let partial = dir.join(format!(".{}.jpg.partial", file_name_of(camera)));
    small
        .save_with_format(&partial, image::ImageFormat::Jpeg)
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// A camera whose recordings were processed shows on the cameras page as `recorded`, or
/// `failed` with the reason when its file could not be read. Not being able to say so
/// loses nothing (the cases and sightings are recorded): it is logged.
pub fn report_recording(
    ctx: &Context,
    store: &CaseStore,
    camera: &CameraConfig,
    video: &Path,
    result: &Result<FileReport, BatchError>,
) {
    let (state, reason, frames, picture) = match result {
        Ok(r) => ("recorded", None, r.frames, r.last_frame.clone()),
        Err(e) => ("failed", Some(format!("{}: {e}", video.display())), 0, None),
    };
    let health = CameraHealth {
        frames_in: frames,
        ..camera_health(
            camera,
            state,
            reason,
            picture.as_deref(),
            &ctx.data,
            Utc::now(),
        )
    };
    if let Err(e) = ctx.runtime.block_on(store.report_camera(&health)) {
        tracing::warn!(camera = %camera.id, error = %e, "camera health not recorded");
    }
}
