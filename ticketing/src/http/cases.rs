//! `/api/cases`: listing, one case, and the officers' review decisions; the overdue list
//! and the operations counts. Every view and decision is audited.

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiResult};
use crate::db::{CaseDetail, CaseFilter, CaseSummary};
use vigil_core::ViolationKind;

use crate::lifecycle::{CaseState, RejectReason};
use crate::notice::Driver;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CaseQuery {
    /// Comma-separated states.
    pub state: Option<String>,
    pub camera: Option<String>,
    pub violation: Option<String>,
    pub plate: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
}

pub(super) async fn list_cases(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<CaseQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<CaseSummary>>> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let states = match &q.state {
        Some(s) => s
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<CaseState>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApiError::BadRequest)?,
        None => Vec::new(),
    };
    let violation = match q.violation.as_deref().filter(|v| !v.is_empty()) {
        Some(v) => Some(ViolationKind::parse(v).ok_or_else(|| {
            ApiError::BadRequest(format!("`{v}` is not a violation this service knows"))
        })?),
        None => None,
    };
    let filter = CaseFilter {
        states,
        camera_id: q.camera.clone(),
        violation,
        plate: q.plate.clone().filter(|p| !p.trim().is_empty()),
        from: q.from,
        to: q.to,
        limit: Some(q.limit.unwrap_or(500).clamp(1, 5000)),
    };
    let cases = state.store.list_filtered(&filter).await?;
    if let Some(plate) = &filter.plate {
        state
            .audit(
                &caller,
                "plate_search",
                Some(plate.clone()),
                Some(json!({
                    "camera": q.camera, "violation": q.violation, "from": q.from, "to": q.to,
                    "results": cases.len(),
                })),
            )
            .await?;
    }
    Ok(Json(cases))
}

pub(super) async fn case_detail(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<CaseDetail>> {
    let case = state.store.case(id).await?;
    state
        .audit(&caller, "case_view", Some(format!("case {id}")), None)
        .await?;
    Ok(Json(case))
}

pub(super) async fn decided(
    state: &AppState,
    caller: &Caller,
    action: &str,
    id: i64,
    detail: Option<serde_json::Value>,
) -> ApiResult<Json<CaseDetail>> {
    state
        .audit(caller, action, Some(format!("case {id}")), detail)
        .await?;
    Ok(Json(state.store.case(id).await?))
}

pub(super) async fn open_case(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<CaseDetail>> {
    let tried = state
        .store
        .open_review(id, &caller.user.username, state.clock.now())
        .await;
    audit_refusal(&state, &caller, "review_opened", id, tried).await?;
    decided(&state, &caller, "review_opened", id, None).await
}

pub(super) async fn approve_case(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<CaseDetail>> {
    let tried = state
        .store
        .approve(id, &caller.user.username, state.clock.now())
        .await;
    audit_refusal(&state, &caller, "approved", id, tried).await?;
    decided(&state, &caller, "approved", id, None).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RejectRequest {
    pub reason: RejectReason,
    #[serde(default)]
    pub text: String,
}

pub(super) async fn reject_case(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<RejectRequest>,
) -> ApiResult<Json<CaseDetail>> {
    let tried = state
        .store
        .reject(
            id,
            &caller.user.username,
            body.reason,
            &body.text,
            state.clock.now(),
        )
        .await;
    audit_refusal(&state, &caller, "rejected", id, tried).await?;
    decided(
        &state,
        &caller,
        "rejected",
        id,
        Some(json!({"reason": body.reason, "text": body.text})),
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PlateRequest {
    pub plate: String,
}

pub(super) async fn correct_plate(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<PlateRequest>,
) -> ApiResult<Json<CaseDetail>> {
    let tried = state
        .store
        .correct_plate(
            id,
            &caller.user.username,
            &body.plate,
            state.clock.now(),
            state.intake.dedup_window,
        )
        .await;
    let outcome = audit_refusal(&state, &caller, "plate_corrected", id, tried).await?;
    let shown = match outcome {
        crate::review::Corrected::Corrected(id) | crate::review::Corrected::MergedInto(id) => id,
    };
    state
        .audit(
            &caller,
            "plate_corrected",
            Some(format!("case {id}")),
            Some(json!({"plate": body.plate, "outcome": outcome})),
        )
        .await?;
    Ok(Json(state.store.case(shown).await?))
}

pub(super) async fn appeal_case(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    ApiJson(driver): ApiJson<Driver>,
) -> ApiResult<Json<CaseDetail>> {
    let tried = state
        .store
        .record_appeal(id, &driver, &caller.user.username, state.clock.now())
        .await;
    audit_refusal(&state, &caller, "appeal_recorded", id, tried).await?;
    decided(&state, &caller, "appeal_recorded", id, None).await
}

pub(super) async fn overdue(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
) -> ApiResult<Json<Vec<crate::deadlines::Overdue>>> {
    Ok(Json(state.store.overdue(state.clock.now()).await?))
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Stats {
    /// Cases per state name.
    pub cases_by_state: std::collections::BTreeMap<String, i64>,
    /// Undelivered publications per topic.
    pub outbox_pending: std::collections::BTreeMap<String, i64>,
    /// Cases past a legal deadline.
    pub overdue: usize,
}

pub(super) async fn stats(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
) -> ApiResult<Json<Stats>> {
    Ok(Json(Stats {
        cases_by_state: state
            .store
            .count_by_state()
            .await?
            .into_iter()
            .map(|(s, n)| (s.as_str().to_string(), n))
            .collect(),
        outbox_pending: state.store.outbox_pending().await?,
        overdue: state.store.overdue(state.clock.now()).await?.len(),
    }))
}

/// A review action the store refused (a wrong state, an unknown case, a bad plate) is
/// audited as `<action>_refused` with why, then answered as the error it is: who tried
/// what on which case is kept whether it happened or not.
async fn audit_refusal<T>(
    state: &AppState,
    caller: &Caller,
    action: &str,
    id: i64,
    tried: Result<T, crate::db::StoreError>,
) -> ApiResult<T> {
    match tried {
        Ok(done) => Ok(done),
        Err(e) => {
            state
                .audit(
                    caller,
                    &format!("{action}_refused"),
                    Some(format!("case {id}")),
                    Some(json!({"reason": e.to_string()})),
                )
                .await?;
            Err(e.into())
        }
    }
}
