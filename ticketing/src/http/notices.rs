//! `/api/notices/{code}` and `/notices/{code}`: a notice as JSON and as the printable
//! Form 01; a payment made at the counter.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::error::{ApiJson, ApiResult};
use super::{AppState, pages};

pub(super) async fn notice_json(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(code): Path<String>,
) -> ApiResult<Json<crate::notice::Notice>> {
    let notice = state.store.notice(&code, None).await?;
    state
        .audit(
            &caller,
            "notice_view",
            Some(format!("notice {}", notice.code)),
            None,
        )
        .await?;
    Ok(Json(notice))
}

pub(super) async fn notice_page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(code): Path<String>,
) -> ApiResult<maud::Markup> {
    let notice = state.store.notice(&code, None).await?;
    state
        .audit(
            &caller,
            "notice_view",
            Some(format!("notice {}", notice.code)),
            None,
        )
        .await?;
    Ok(pages::notice_page(
        &notice,
        &state.agency,
        pages::EvidenceLinks::Officer,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PaymentRequest {
    pub plate: String,
    pub reference: String,
}

pub(super) async fn officer_payment(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(code): Path<String>,
    ApiJson(body): ApiJson<PaymentRequest>,
) -> ApiResult<Json<crate::notice::Notice>> {
    let notice = state
        .store
        .record_payment(
            &code,
            &body.plate,
            &body.reference,
            &caller.user.username,
            state.clock.now(),
        )
        .await?;
    state
        .audit(
            &caller,
            "payment_recorded",
            Some(format!("notice {}", notice.code)),
            Some(json!({"reference": body.reference})),
        )
        .await?;
    Ok(Json(notice))
}
