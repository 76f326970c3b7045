//! Investigators' footage exports: one camera's continuous recording over a time range as
//! one MP4 with a signed manifest, made by the exporter the server was given (the
//! pipeline's, which can mux video: this crate cannot) and served from the data folder's
//! `exports/`, by id and by the three names an export has. Both audited.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiResult};
use super::evidence::send_file;

/// The files of an export folder, and nothing else, may be fetched.
const EXPORT_FILES: [&str; 3] = ["footage.mp4", "manifest.json", "signature.json"];

/// What went wrong with an export, as the caller should be told.
#[derive(Debug)]
pub enum ExportFailure {
    /// The request cannot be met as asked (a range backwards or too long).
    Refused(String),
    /// No footage of that camera in that range here.
    NoFootage(String),
    Failed(String),
}

/// An export made.
#[derive(Debug, Clone)]
pub struct ExportMade {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub bytes: u64,
    pub segments: usize,
}

/// Makes an export folder (`out`, which must not exist yet) of a camera's footage.
pub trait FootageExporter: Send + Sync {
    fn export(
        &self,
        camera_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        exported_by: &str,
        out: &FsPath,
    ) -> Result<ExportMade, ExportFailure>;
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    pub camera_id: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExportResponse {
    pub id: Uuid,
    /// From the keyframe at or before `from`.
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub bytes: u64,
    pub segments: usize,
    /// The video, its manifest and the manifest's signature.
    pub video_url: String,
    pub manifest_url: String,
    pub signature_url: String,
}

fn exports_dir(state: &AppState) -> ApiResult<PathBuf> {
    state
        .intake
        .evidence
        .root()
        .parent()
        .map(|data| data.join("exports"))
        .ok_or_else(|| ApiError::Internal("no data folder".into()))
}

fn export_folder(exports: &FsPath, id: Uuid) -> PathBuf {
    exports.join(format!("export-{id}"))
}

pub(super) async fn create_export(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<ExportRequest>,
) -> ApiResult<(StatusCode, axum::Json<ExportResponse>)> {
    let exporter: Arc<dyn FootageExporter> = state.footage.clone().ok_or_else(|| {
        ApiError::NotFound("this server makes no footage exports (it records no cameras)".into())
    })?;
    if req.camera_id.is_empty() || req.camera_id.len() > 128 {
        return Err(ApiError::BadRequest("camera_id: 1 to 128 characters".into()));
    }
    let exports = exports_dir(&state)?;
    let id = Uuid::new_v4();
    let out = export_folder(&exports, id);
    let by = caller.user.username.clone();
    let (camera, from, to) = (req.camera_id.clone(), req.from, req.to);
    let made = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&exports).map_err(|e| ExportFailure::Failed(e.to_string()))?;
        exporter.export(&camera, from, to, &by, &out)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let made = match made {
        Ok(m) => m,
        Err(ExportFailure::Refused(m)) => return Err(ApiError::BadRequest(m)),
        Err(ExportFailure::NoFootage(m)) => return Err(ApiError::NotFound(m)),
        Err(ExportFailure::Failed(m)) => return Err(ApiError::Internal(m)),
    };
    state
        .audit(
            &caller,
            "footage_export",
            Some(format!("camera {}", req.camera_id)),
            Some(json!({"export": id, "from": req.from, "to": req.to, "bytes": made.bytes})),
        )
        .await?;
    let url = |file: &str| format!("/api/footage/exports/{id}/{file}");
    Ok((
        StatusCode::CREATED,
        axum::Json(ExportResponse {
            id,
            starts_at: made.starts_at,
            ends_at: made.ends_at,
            bytes: made.bytes,
            segments: made.segments,
            video_url: url(EXPORT_FILES[0]),
            manifest_url: url(EXPORT_FILES[1]),
            signature_url: url(EXPORT_FILES[2]),
        }),
    ))
}

pub(super) async fn export_file(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, file)): Path<(Uuid, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Some(name) = EXPORT_FILES.iter().find(|n| **n == file) else {
        return Err(ApiError::NotFound(format!(
            "an export holds {}; not {}",
            EXPORT_FILES.join(", "),
            file.chars().take(64).collect::<String>()
        )));
    };
    let path = export_folder(&exports_dir(&state)?, id).join(name);
    if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Err(ApiError::NotFound(format!("no export {id}")));
    }
    state
        .audit(
            &caller,
            "footage_export_view",
            Some(format!("export {id}")),
            Some(json!({"file": name})),
        )
        .await?;
    send_file(path, &headers).await
}
