//! `POST /api/events`: a violation event from a worker becomes a case (idempotent by event
//! id; merged with the same vehicle's case within the dedup window).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Serialize;
use vigil_core::Recorded;
use vigil_core::event::ViolationEvent;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IntakeResponse {
    pub case_id: i64,
    /// `new`, `duplicate` or `merged`.
    pub outcome: String,
}

pub(super) async fn intake_event(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<IntakeResponse>)> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("the event is not UTF-8 text".into()))?;
    let event = ViolationEvent::from_json(text).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if event.camera_id.trim().is_empty() {
        return Err(ApiError::BadRequest("camera_id is empty".into()));
    }
    let recorded = state.intake.record(&event).await?;
    let outcome = recorded.outcome();
    let status = match recorded {
        Recorded::New(_) => StatusCode::CREATED,
        Recorded::Duplicate(_) | Recorded::Merged(_) => StatusCode::OK,
        // The case store records; it never queues.
        Recorded::Queued => StatusCode::ACCEPTED,
    };
    tracing::info!(event = %event.event_id, by = %caller.user.username, outcome, "event received");
    Ok((
        status,
        Json(IntakeResponse {
            case_id: recorded.case_id().unwrap_or_default(),
            outcome: outcome.into(),
        }),
    ))
}
