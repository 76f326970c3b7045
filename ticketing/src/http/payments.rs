//! `/api/payments/callback`: the payment provider reports a payment. The route takes no
//! session or token: the provider signs each callback with the secret the two share, and
//! an unsigned, forged or stale one is refused (and audited) before anything is read from
//! it. `/citizen/notices/{code}/pay`: a citizen is sent to the provider to pay.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use serde_json::json;

use super::AppState;
use super::audit::audit_outsider;
use super::citizens::{PlateQuery, citizen_audit, citizen_lookup};
use super::error::{ApiError, ApiResult};
use super::pages::urlencode;
use crate::db::PaymentOutcome;
use crate::payment::{PaymentCallback, PaymentError, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// What the provider is told: 200 for a payment recorded now or before (so it stops
/// retrying), an error naming what is wrong otherwise.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallbackResponse {
    pub order_id: String,
    pub transaction_id: String,
    /// The notice is paid by this transaction (now, or by an earlier delivery).
    pub recorded: bool,
    /// This delivery repeated one already recorded.
    pub duplicate: bool,
    /// The money is held, not applied: the notice could not take it as it stands (see
    /// `GET /api/payments/held`); the provider need not send it again.
    pub held: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PayOrder {
    pub notice_code: String,
    pub amount_vnd: u64,
    pub pay_url: String,
}

async fn audit_provider(
    state: &AppState,
    addr: &SocketAddr,
    action: &str,
    target: Option<String>,
    detail: serde_json::Value,
) -> ApiResult<()> {
    audit_outsider(
        state,
        addr,
        "payment-provider",
        action,
        target,
        Some(detail),
    )
    .await
}

pub(super) async fn payment_callback(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<CallbackResponse>> {
    let Some(provider) = &state.payments else {
        return Err(ApiError::NotFound(
            "this service takes no payment callbacks: no payment provider is configured".into(),
        ));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(e) = provider.config.secret.verify(
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
        state.clock.now(),
    ) {
        state.forget_idle_limits();
        // A forger is limited like a citizen guessing notice codes, and so is what it
        // costs the audit log: refusals within the limit are audited one by one; past
        // it, only counted in the service's log (20,000 forgeries once added 20,000
        // rows).
        let limited = state.citizen_limiter.check_key(&addr.ip()).is_err();
        if limited {
            tracing::warn!(client = %addr.ip(), error = %e, "payment callback refused past the rate limit; not audited");
            return Err(ApiError::TooManyRequests);
        }
        audit_provider(
            &state,
            &addr,
            "payment_callback_refused",
            None,
            json!({"reason": e.to_string(), "bytes": body.len()}),
        )
        .await?;
        return Err(ApiError::Unauthenticated(e.to_string()));
    }
    let callback = PaymentCallback::parse(&body)
        .map_err(|e: PaymentError| ApiError::BadRequest(e.to_string()))?;
    let target = Some(format!("notice {}", callback.order_id));
    let outcome = state
        .store
        .record_provider_payment(&callback, state.clock.now())
        .await;
    let detail = json!({
        "transaction_id": callback.transaction_id,
        "amount_vnd": callback.amount_vnd,
        "status": callback.status,
    });
    let (action, recorded, duplicate) = match &outcome {
        Ok(PaymentOutcome::Recorded) => ("payment_received", true, false),
        Ok(PaymentOutcome::Duplicate) => ("payment_repeated", true, true),
        Ok(PaymentOutcome::NotPaid) => ("payment_not_completed", false, false),
        Ok(PaymentOutcome::Held) => ("payment_held", false, false),
        Err(_) => ("payment_refused", false, false),
    };
    let held = matches!(outcome, Ok(PaymentOutcome::Held));
    let detail = match &outcome {
        Err(e) => json!({"callback": detail, "reason": e.to_string()}),
        Ok(_) => detail,
    };
    audit_provider(&state, &addr, action, target, detail).await?;
    outcome?;
    Ok(Json(CallbackResponse {
        order_id: callback.order_id,
        transaction_id: callback.transaction_id,
        recorded,
        duplicate,
        held,
    }))
}

pub(super) async fn held_payments(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<super::auth::Caller>,
) -> ApiResult<Json<Vec<crate::db::HeldPayment>>> {
    let held = state.store.held_payments().await?;
    state
        .audit(
            &caller,
            "held_payments_view",
            None,
            Some(json!({"count": held.len()})),
        )
        .await?;
    Ok(Json(held))
}

pub(super) async fn citizen_pay(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(code): Path<String>,
    Query(q): Query<PlateQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let notice = citizen_lookup(&state, &addr, &code, q.plate.as_deref()).await?;
    let Some(provider) = &state.payments else {
        return Err(ApiError::NotFound(
            "online payment is not offered here: pay at the handling unit".into(),
        ));
    };
    if notice.payment_reference.is_some() {
        return Err(ApiError::Conflict(format!(
            "notice {} is already paid",
            notice.code
        )));
    }
    if notice.payable_case_ids.is_empty() {
        return Err(ApiError::Conflict(format!(
            "notice {} cannot be paid while its violations are appealed: the decision on \
             the appeal says what is to be paid",
            notice.code
        )));
    }
    // Only what can be paid now: an appealed case is decided against the driver named.
    let amount = notice.amount_due_vnd;
    let mut back = provider.config.callback_url.clone();
    back.set_path(&format!("/citizen/notices/{}", notice.code));
    back.set_query(Some(&format!("plate={}", urlencode(&notice.record.plate))));
    let order = provider
        .order(&notice.code, amount, back.as_str(), state.clock.now())
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    citizen_audit(
        &state,
        &addr,
        &notice,
        "citizen_payment_order",
        Some(json!({"amount_vnd": amount})),
    )
    .await?;
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        return Ok((
            StatusCode::OK,
            Json(PayOrder {
                notice_code: notice.code,
                amount_vnd: amount,
                pay_url: order.pay_url,
            }),
        )
            .into_response());
    }
    Ok(Redirect::to(&order.pay_url).into_response())
}
