//! `/api/cameras`: each camera's last reported health and a picture of its last frame.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::{Extension, Json};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::evidence::send_picture;
use crate::cameras::CameraHealth;

pub(super) async fn list_cameras(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
) -> ApiResult<Json<Vec<CameraHealth>>> {
    Ok(Json(state.store.cameras().await?))
}

pub(super) async fn camera_thumbnail(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let camera = state
        .store
        .camera(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no camera {id} has reported")))?;
    send_picture(camera.thumbnail, &headers, || {
        format!("camera {id} has no picture yet")
    })
    .await
}
