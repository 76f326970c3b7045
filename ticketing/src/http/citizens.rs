//! `/citizen/notices/{code}`: a vehicle's owner sees the notice sent for it, its pictures
//! and clip, and records a payment. The notice code and the plate together are the
//! credential; lookups are limited per address, and every one is audited.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiJson, ApiResult};
use super::evidence::{continuing, event_uuid, package_file, send_file};
use super::notices::PaymentRequest;
use super::{AppState, pages};
use crate::audit::AuditRecord;
use crate::db::StoreError;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PlateQuery {
    pub plate: Option<String>,
}

pub(super) fn citizen_gate(state: &AppState, addr: &SocketAddr) -> ApiResult<()> {
    state.forget_idle_limits();
    state
        .citizen_limiter
        .check_key(&addr.ip())
        .map_err(|_| ApiError::TooManyRequests)
}

pub(super) async fn citizen_lookup(
    state: &AppState,
    addr: &SocketAddr,
    code: &str,
    plate: Option<&str>,
) -> ApiResult<crate::notice::Notice> {
    citizen_gate(state, addr)?;
    let plate = plate.filter(|p| !p.trim().is_empty()).ok_or_else(|| {
        ApiError::Unauthenticated("give the plate the notice was sent for".into())
    })?;
    match state.store.notice(code, Some(plate)).await {
        Ok(n) => Ok(n),
        Err(StoreError::NoticeNotFound(code)) => {
            state
                .store
                .audit(
                    state.clock.now(),
                    AuditRecord {
                        actor: &format!("citizen:{}", plate.trim()),
                        action: "citizen_lookup_failed",
                        target: Some(format!("notice {code}")),
                        client: Some(addr.ip().to_string()),
                        ..Default::default()
                    },
                )
                .await?;
            Err(ApiError::NotFound(
                "no notice with that code for that plate".into(),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn citizen_audit(
    state: &AppState,
    addr: &SocketAddr,
    notice: &crate::notice::Notice,
    action: &str,
    detail: Option<serde_json::Value>,
) -> ApiResult<()> {
    let actor = format!("citizen:{}", notice.record.plate);
    let target = Some(format!("notice {}", notice.code));
    super::audit::audit_outsider(state, addr, &actor, action, target, detail).await
}

pub(super) async fn citizen_notice(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(code): Path<String>,
    Query(q): Query<PlateQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let notice = citizen_lookup(&state, &addr, &code, q.plate.as_deref()).await?;
    citizen_audit(&state, &addr, &notice, "citizen_notice_view", None).await?;
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        return Ok(Json(CitizenNotice {
            evidence: notice.evidence.iter().map(|(_, e)| e.clone()).collect(),
            record: notice.record,
            resolved_at: notice.resolved_at,
            payment_reference: notice.payment_reference,
            amount_due_vnd: notice.amount_due_vnd,
        })
        .into_response());
    }
    let links = pages::EvidenceLinks::Citizen {
        pay_online: state.payments.is_some(),
    };
    Ok(pages::notice_page(&notice, &state.agency, links).into_response())
}

/// What the owner sees of a notice: the publication record, the payment, the events
/// whose evidence they may open. Not the owner's own data, nor the officers' claims list.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CitizenNotice {
    pub record: crate::notice::PublicationRecord,
    pub resolved_at: Option<chrono::DateTime<chrono::Utc>>,
    pub payment_reference: Option<String>,
    pub amount_due_vnd: u64,
    /// Event ids, for `/citizen/notices/{code}/evidence/{event_id}/{file}`.
    pub evidence: Vec<String>,
}

pub(super) async fn citizen_evidence(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path((code, event_id, file)): Path<(String, String, String)>,
    Query(q): Query<PlateQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let notice = citizen_lookup(&state, &addr, &code, q.plate.as_deref()).await?;
    if !notice.evidence.iter().any(|(_, e)| *e == event_id) {
        return Err(ApiError::NotFound(format!(
            "notice {code} has no event {}",
            event_id.chars().take(40).collect::<String>()
        )));
    }
    // The owner sees the pictures and the clip, not the internal manifest.
    if !(file.ends_with(".jpg") || file.ends_with(".mp4")) {
        return Err(ApiError::NotFound(
            "that evidence file is not public".into(),
        ));
    }
    let path = package_file(&state, event_uuid(&event_id)?, &file).await?;
    if !continuing(&headers) {
        citizen_audit(
            &state,
            &addr,
            &notice,
            "citizen_evidence_view",
            Some(json!({"event": event_id, "file": file})),
        )
        .await?;
    }
    send_file(path, &headers).await
}

/// A citizen's word that a notice is paid: kept for an officer to check, and answered
/// as such. Only the payment provider (or an officer at the counter) pays a notice.
pub(super) async fn citizen_payment_claim(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(code): Path<String>,
    ApiJson(body): ApiJson<PaymentRequest>,
) -> ApiResult<Json<ClaimRecorded>> {
    let notice = citizen_lookup(&state, &addr, &code, Some(&body.plate)).await?;
    let notice = state
        .store
        .record_payment_claim(
            &notice.code,
            &body.plate,
            &body.reference,
            state.clock.now(),
        )
        .await?;
    citizen_audit(
        &state,
        &addr,
        &notice,
        "citizen_payment_claim",
        Some(json!({"reference": body.reference.chars().take(100).collect::<String>()})),
    )
    .await?;
    Ok(Json(ClaimRecorded {
        notice_code: notice.code,
        paid: notice.payment_reference.is_some(),
        claims: notice.payment_claims.len(),
        message: if notice.payment_reference.is_some() {
            "the notice is paid".into()
        } else {
            "your reference is recorded for an officer to check; the notice stays unpaid until \
             the payment provider or an officer confirms the payment"
                .into()
        },
    }))
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ClaimRecorded {
    pub notice_code: String,
    /// Whether the notice is paid (by the provider or at the counter), not by this claim.
    pub paid: bool,
    /// Claims the notice now holds.
    pub claims: usize,
    pub message: String,
}
