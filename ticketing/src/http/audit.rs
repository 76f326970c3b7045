//! `/api/audit`: the audit log as JSON lines, for admins (the export itself audited).

use axum::Extension;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    pub since: Option<DateTime<Utc>>,
}

pub(super) async fn audit_export(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    state
        .audit(
            &caller,
            "audit_export",
            None,
            Some(json!({"since": q.since})),
        )
        .await?;
    let mut out = Vec::new();
    state.store.export_audit(q.since, &mut out).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from(out),
    )
        .into_response())
}

/// Audit an action by someone with no account (a citizen, the payment provider), named
/// by `actor` and known by the address they called from.
pub(super) async fn audit_outsider(
    state: &AppState,
    addr: &std::net::SocketAddr,
    actor: &str,
    action: &str,
    target: Option<String>,
    detail: Option<serde_json::Value>,
) -> ApiResult<()> {
    state
        .store
        .audit(
            state.clock.now(),
            crate::audit::AuditRecord {
                actor,
                role: None,
                action,
                target,
                detail,
                client: Some(addr.ip().to_string()),
            },
        )
        .await?;
    Ok(())
}
