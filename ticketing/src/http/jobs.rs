//! Operators' batch jobs from the web app: the recordings the server's library holds
//! (`vigil serve --recordings DIR`, storage every batch worker sees at the same path), and
//! a job made of some of them for one of the fleet's cameras, put on the fleet's job
//! queue. A client names recordings only as the library lists them: a name that is not in
//! the listing is refused, so no request can point the workers at another file. Cutting
//! recordings into tasks reads their length and creation time, which needs the pipeline
//! (this crate cannot read video): the server is given a [`JobPlanner`].

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use vigil_fleet::jobs::{Job, Jobs, Task};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiResult};

/// Recordings one job may hold (a week of a camera's hourly files is 168).
pub const MAX_JOB_RECORDINGS: usize = 1000;

/// A recording in the server's library.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LibraryRecording {
    /// Its path inside the library, `/`-separated: what a job request names.
    pub name: String,
    pub bytes: u64,
    pub modified_at: Option<DateTime<Utc>>,
}

/// What a job request asks, with the camera's fleet entry looked up.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub camera_id: String,
    /// The camera's entry in the fleet's list (its config text is in it).
    pub camera_spec: serde_json::Value,
    /// Names as the library lists them, in the order they were filmed.
    pub recordings: Vec<String>,
    pub start: Option<DateTime<Utc>>,
    pub motion_gating: bool,
}

/// A job ready for the queue.
#[derive(Debug, Clone)]
pub struct PlannedJob {
    pub job: Job,
    pub tasks: Vec<Task>,
    /// Recordings left out, each with why (no creation time, unreadable).
    pub refused: Vec<String>,
}

#[derive(Debug)]
pub enum PlanFailure {
    /// The request cannot be met as asked (a name not in the library, a camera config
    /// that does not parse, nothing left to do).
    Refused(String),
    Failed(String),
}

/// Lists the library and cuts recordings of it into a job's tasks.
pub trait JobPlanner: Send + Sync {
    fn recordings(&self) -> Result<Vec<LibraryRecording>, String>;
    fn plan(&self, request: &PlanRequest) -> Result<PlannedJob, PlanFailure>;
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// A camera in the fleet's list: its config (rules, geometry) judges the recordings.
    pub camera_id: String,
    /// Library names (`GET /api/recordings`), in the order they were filmed.
    pub recordings: Vec<String>,
    /// Wall-clock time of the first recording's first frame; later ones follow on.
    /// Without it each recording's container must record its creation time.
    #[serde(default)]
    pub start: Option<DateTime<Utc>>,
    /// Detect only where the picture changed (default, as live cameras do).
    #[serde(default = "yes")]
    pub motion_gating: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobSubmitted {
    pub job: Job,
    /// Recordings left out of the job, each with why.
    pub refused: Vec<String>,
}

fn no_fleet() -> ApiError {
    ApiError::NotFound("this server has no fleet: it was started without --nats".into())
}

fn planner(state: &AppState) -> ApiResult<Arc<dyn JobPlanner>> {
    state.jobs.clone().ok_or_else(|| {
        ApiError::NotFound(
            "this server has no recordings library: it was started without --recordings".into(),
        )
    })
}

fn unavailable(e: vigil_fleet::FleetError) -> ApiError {
    ApiError::Unavailable(format!("the fleet's job queue: {e}"))
}

/// Every batch job on the fleet's queue, newest first, with its tasks' outcomes.
pub(super) async fn list_jobs(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
) -> ApiResult<axum::Json<Vec<vigil_fleet::jobs::Progress>>> {
    let bus = state.fleet.as_ref().ok_or_else(no_fleet)?;
    let jobs = Jobs::open(bus).await.map_err(unavailable)?;
    Ok(axum::Json(jobs.all().await.map_err(unavailable)?))
}

/// The recordings a job may be made of.
pub(super) async fn list_recordings(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
) -> ApiResult<axum::Json<Vec<LibraryRecording>>> {
    let planner = planner(&state)?;
    let all = tokio::task::spawn_blocking(move || planner.recordings())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::Internal)?;
    Ok(axum::Json(all))
}

/// A job of library recordings for a fleet camera, on the queue. The same request again
/// is the same job (its id comes from what it is) and adds no task already there or done.
pub(super) async fn submit_job(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<JobRequest>,
) -> ApiResult<(StatusCode, axum::Json<JobSubmitted>)> {
    let bus = state.fleet.clone().ok_or_else(no_fleet)?;
    let planner = planner(&state)?;
    if req.recordings.is_empty() || req.recordings.len() > MAX_JOB_RECORDINGS {
        return Err(ApiError::BadRequest(format!(
            "recordings: 1 to {MAX_JOB_RECORDINGS} names from the library"
        )));
    }
    if req.camera_id.is_empty() || req.camera_id.len() > 128 {
        return Err(ApiError::BadRequest(
            "camera_id: 1 to 128 characters".into(),
        ));
    }
    let spec = match bus.cameras.get(&req.camera_id).await {
        Ok(Some(bytes)) => {
            serde_json::from_slice::<vigil_fleet::FleetCamera>(&bytes)
                .map_err(|e| ApiError::Internal(format!("camera {}: {e}", req.camera_id)))?
                .spec
        }
        Ok(None) => {
            return Err(ApiError::NotFound(format!(
                "no camera {} in the fleet's list",
                req.camera_id.chars().take(128).collect::<String>()
            )));
        }
        Err(e) => {
            return Err(ApiError::Unavailable(format!(
                "the fleet's camera list: {e}"
            )));
        }
    };
    let request = PlanRequest {
        camera_id: req.camera_id.clone(),
        camera_spec: spec,
        recordings: req.recordings,
        start: req.start,
        motion_gating: req.motion_gating,
    };
    let planned = tokio::task::spawn_blocking(move || planner.plan(&request))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| match e {
            PlanFailure::Refused(m) => ApiError::BadRequest(m),
            PlanFailure::Failed(m) => ApiError::Internal(m),
        })?;
    let jobs = Jobs::open(&bus).await.map_err(unavailable)?;
    jobs.submit(&planned.job, &planned.tasks)
        .await
        .map_err(unavailable)?;
    state
        .audit(
            &caller,
            "job_submit",
            Some(format!("job {}", planned.job.id)),
            Some(json!({
                "camera": planned.job.camera_id,
                "recordings": planned.job.recordings.len(),
                "tasks": planned.job.tasks,
                "refused": planned.refused.len(),
            })),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(JobSubmitted {
            job: planned.job,
            refused: planned.refused,
        }),
    ))
}
