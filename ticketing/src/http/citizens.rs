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
use super::evidence::{continuing, evidence_path, send_file};
use super::notices::PaymentRequest;
use super::{AppState, pages};
use crate::audit::AuditRecord;
use crate::db::StoreError;

#[derive(Debug, Deserialize)]
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
    state
        .store
        .audit(
            state.clock.now(),
            AuditRecord {
                actor: &format!("citizen:{}", notice.record.plate),
                role: None,
                action,
                target: Some(format!("notice {}", notice.code)),
                detail,
                client: Some(addr.ip().to_string()),
            },
        )
        .await?;
    Ok(())
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
        return Ok(Json(json!({
            "record": notice.record,
            "resolved_at": notice.resolved_at,
            "payment_reference": notice.payment_reference,
            "evidence": notice.evidence.iter().map(|(_, e, _)| e).collect::<Vec<_>>(),
        }))
        .into_response());
    }
    Ok(pages::notice_page(&notice, &state.agency, pages::EvidenceLinks::Citizen).into_response())
}

pub(super) async fn citizen_evidence(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path((code, event_id, file)): Path<(String, String, String)>,
    Query(q): Query<PlateQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let notice = citizen_lookup(&state, &addr, &code, q.plate.as_deref()).await?;
    let (_, _, dir) = notice
        .evidence
        .iter()
        .find(|(_, e, _)| *e == event_id)
        .ok_or_else(|| ApiError::NotFound(format!("notice {code} has no event {event_id}")))?;
    // The owner sees the pictures, not the internal manifest.
    if !(file.ends_with(".jpg") || file.ends_with(".mp4")) {
        return Err(ApiError::NotFound(format!(
            "evidence file {file} is not public"
        )));
    }
    let path = evidence_path(dir, &file)?;
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

pub(super) async fn citizen_payment(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(code): Path<String>,
    ApiJson(body): ApiJson<PaymentRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let notice = citizen_lookup(&state, &addr, &code, Some(&body.plate)).await?;
    let notice = state
        .store
        .record_payment(
            &notice.code,
            &body.plate,
            &body.reference,
            &format!("citizen:{}", notice.record.plate),
            state.clock.now(),
        )
        .await?;
    citizen_audit(
        &state,
        &addr,
        &notice,
        "citizen_payment",
        Some(json!({"reference": body.reference})),
    )
    .await?;
    Ok(Json(json!({
        "notice_code": notice.code,
        "resolved_at": notice.resolved_at,
        "payment_reference": notice.payment_reference,
    })))
}
