//! `/api/evidence/{event}/{file}`: a file of an event's evidence package (read), or sent
//! by a worker on another machine ahead of its event (`PUT`); and the file serving (byte
//! ranges, no caching) the other routes share. A package's files are only those its
//! manifest lists, in the service's own store ([`crate::evidence`]).

use std::path::PathBuf;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::{Extension, Json};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use vigil_evidence::PackageError;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use crate::evidence::{EvidenceError, Received};

/// The largest file a worker may send as part of a package (a clip of a few seconds is a
/// few megabytes).
pub const MAX_UPLOAD_BYTES: usize = 64 << 20;

pub(super) fn event_uuid(event_id: &str) -> ApiResult<Uuid> {
    event_id.parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "`{}` is not an event id",
            event_id.chars().take(40).collect::<String>()
        ))
    })
}

impl From<PackageError> for ApiError {
    fn from(e: PackageError) -> Self {
        match e {
            PackageError::BadName(_) => ApiError::BadRequest(e.to_string()),
            PackageError::Unreadable { .. } => ApiError::Internal(e.to_string()),
            // A link, or a file the manifest does not list, is not evidence: to the
            // caller it is not there (the log says why).
            PackageError::Symlink(_) | PackageError::NotListed(_) => {
                tracing::warn!(error = %e, "evidence file refused");
                ApiError::NotFound("no such evidence file".into())
            }
            PackageError::Missing(_) => ApiError::NotFound("no such evidence file".into()),
        }
    }
}

/// A filed package's file: the manifest, the signature, or one the manifest lists. A
/// package this server has not filed (another replica took its event from the fleet) is
/// fetched from the fleet's object store first, and filed only if it checks as any
/// upload does.
pub(super) async fn package_file(state: &AppState, event: Uuid, file: &str) -> ApiResult<PathBuf> {
    if let Some(bus) = &state.fleet
        && !state.intake.evidence.filed(event)
        && let Err(e) = file_from_fleet(state, bus, event).await
    {
        tracing::warn!(%event, error = %e, "evidence not taken from the fleet's store");
    }
    let (evidence, file) = (state.intake.evidence.clone(), file.to_string());
    Ok(
        tokio::task::spawn_blocking(move || evidence.file(event, &file))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))??,
    )
}

/// The event's package from the fleet's object store, checked against the event the case
/// store holds (its signature by a trusted key, every hash, the event's manifest hash)
/// and filed. Nothing is filed when anything fails.
async fn file_from_fleet(
    state: &AppState,
    bus: &vigil_fleet::Bus,
    event: Uuid,
) -> Result<(), String> {
    let Some((_, recorded)) = state
        .store
        .event_by_id(&event.to_string())
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(());
    };
    let Some(files) = vigil_fleet::sink::fetch_package(bus, event)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Err("the fleet's store has no package for it".into());
    };
    let trusted = state
        .store
        .trusted_keys()
        .await
        .map_err(|e| e.to_string())?;
    let evidence = state.intake.evidence.clone();
    tokio::task::spawn_blocking(move || {
        for (name, bytes) in &files {
            evidence.receive(event, name, bytes)?;
        }
        evidence.accept(&recorded, &trusted)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    tracing::info!(%event, "evidence package taken from the fleet's store and filed");
    Ok(())
}

/// A file, answering byte ranges (a video element seeks, and asks for the end of an MP4
/// first when its index is there).
pub(super) async fn send_file(path: PathBuf, headers: &HeaderMap) -> ApiResult<Response> {
    use tower::ServiceExt;
    let mut req = Request::new(Body::empty());
    for name in [header::RANGE, header::IF_RANGE, header::IF_MODIFIED_SINCE] {
        if let Some(v) = headers.get(&name) {
            req.headers_mut().insert(name, v.clone());
        }
    }
    let resp = tower_http::services::ServeFile::new(&path)
        .oneshot(req)
        .await
        .map_err(|e| ApiError::Internal(format!("{}: {e}", path.display())))?;
    let mut resp = resp.map(Body::new);
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(resp)
}

/// A request for the rest of a file already being shown (a video's later ranges): not a
/// new look at the evidence, so not audited again.
pub(super) fn continuing(headers: &HeaderMap) -> bool {
    headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|r| !r.trim().starts_with("bytes=0-"))
}

pub(super) async fn evidence_file(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((event_id, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let event = event_uuid(&event_id)?;
    let (case_id, _) = state
        .store
        .event_by_id(&event_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {event_id}")))?;
    let path = package_file(&state, event, &file).await?;
    if !continuing(&headers) {
        state
            .audit(
                &caller,
                "evidence_view",
                Some(format!("case {case_id}")),
                Some(json!({"event": event_id, "file": file})),
            )
            .await?;
    }
    send_file(path, &headers).await
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadResponse {
    /// False when the event's package was already filed: nothing changed.
    pub stored: bool,
}

pub(super) async fn upload_evidence_file(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((event_id, file)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<UploadResponse>)> {
    let event = event_uuid(&event_id)?;
    let evidence = state.intake.evidence.clone();
    let name = file.clone();
    let received = tokio::task::spawn_blocking(move || evidence.receive(event, &name, &body))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| match e {
            EvidenceError::Io { .. } | EvidenceError::TooManyWaiting => {
                ApiError::Unavailable(e.to_string())
            }
            other => ApiError::BadRequest(other.to_string()),
        })?;
    tracing::debug!(%event, file, by = %caller.user.username, ?received, "evidence file received");
    Ok(match received {
        Received::Stored => (StatusCode::CREATED, Json(UploadResponse { stored: true })),
        Received::AlreadyFiled => (StatusCode::OK, Json(UploadResponse { stored: false })),
    })
}

/// A picture the database names, if it is still on disk.
pub(super) async fn send_picture(
    path: Option<String>,
    headers: &HeaderMap,
    missing: impl FnOnce() -> String,
) -> ApiResult<Response> {
    let path = path
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .ok_or_else(|| ApiError::NotFound(missing()))?;
    send_file(path, headers).await
}
