//! `/api/evidence/{event}/{file}`: a file of an event's evidence package, and the file
//! serving (byte ranges, no caching) the other routes share.

use std::path::PathBuf;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use serde_json::json;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult};

/// Only plain file names from the evidence folder; `manifest.json` and `signature.json`
/// included, anything with a path separator or a leading dot refused.
pub(super) fn evidence_path(dir: &str, file: &str) -> ApiResult<PathBuf> {
    if file.is_empty() || file.starts_with('.') || file.contains(['/', '\\']) {
        return Err(ApiError::BadRequest(format!(
            "`{file}` is not an evidence file name"
        )));
    }
    let path = PathBuf::from(dir).join(file);
    if !path.is_file() {
        return Err(ApiError::NotFound(format!(
            "evidence file {file} is not there"
        )));
    }
    Ok(path)
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
    let (case_id, event) = state
        .store
        .event_by_id(&event_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {event_id}")))?;
    let path = evidence_path(&event.evidence_dir, &file)?;
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
