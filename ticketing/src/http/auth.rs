//! The authentication layer: every route but login and the citizen pages passes here. A
//! caller is a bearer token (programs) or a session cookie (browsers, which must also
//! send the session's CSRF token on anything that changes state), and must hold one of
//! the route's roles. The role sets the route table uses are named here.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use super::error::{ApiError, ApiResult};
use super::{AppState, CSRF_HEADER, SESSION_COOKIE};
use crate::audit::AuditRecord;
use crate::auth::{Role, User};

/// The authenticated caller of a route.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub client: String,
}

pub(super) const READERS: &[Role] = &[Role::Officer, Role::Investigator, Role::Admin, Role::Agency];
pub(super) const OFFICER: &[Role] = &[Role::Officer];
pub(super) const ANYONE: &[Role] = &[
    Role::Officer,
    Role::Investigator,
    Role::Operator,
    Role::Admin,
    Role::Agency,
];
pub(super) const ADMIN: &[Role] = &[Role::Admin];
pub(super) const INVESTIGATORS: &[Role] = &[Role::Investigator, Role::Officer, Role::Admin];
pub(super) const STAFF: &[Role] = &[
    Role::Officer,
    Role::Investigator,
    Role::Operator,
    Role::Admin,
];
pub(super) const PUBLIC: &[Role] = &[];

pub(super) fn client_of(req_ext: Option<&ConnectInfo<SocketAddr>>) -> String {
    req_ext
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

pub(super) async fn authenticate(
    State(state): State<AppState>,
    roles: &'static [Role],
    mut req: Request,
    next: Next,
) -> Response {
    let client = client_of(req.extensions().get::<ConnectInfo<SocketAddr>>());
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    let headers = req.headers().clone();
    match caller_of(&state, roles, &headers, safe, client).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

pub(super) async fn caller_of(
    state: &AppState,
    roles: &[Role],
    headers: &HeaderMap,
    safe: bool,
    client: String,
) -> ApiResult<Caller> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let user = if let Some(token) = bearer {
        state
            .store
            .token_user(token.trim())
            .await?
            .ok_or_else(|| ApiError::Unauthenticated("unknown or revoked API token".into()))?
    } else {
        let jar = CookieJar::from_headers(headers);
        let token = jar
            .get(SESSION_COOKIE)
            .map(|c| c.value().to_string())
            .ok_or_else(|| ApiError::Unauthenticated("log in first".into()))?;
        let session = state
            .store
            .session(&token, state.clock.now())
            .await?
            .ok_or_else(|| ApiError::Unauthenticated("session expired; log in again".into()))?;
        // A cookie comes with every request the browser makes, whoever's page caused it:
        // a state-changing request must also prove it came from our page.
        if !safe {
            let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if sent != Some(session.csrf_token.as_str()) {
                return Err(ApiError::Forbidden(
                    "missing or wrong CSRF token (send the X-CSRF-Token header)".into(),
                ));
            }
        }
        session.user
    };
    if !roles.contains(&user.role) {
        return Err(ApiError::Forbidden(format!(
            "role {} may not use this route",
            user.role
        )));
    }
    Ok(Caller { user, client })
}

impl AppState {
    /// Write an action of the caller's to the audit log.
    pub(super) async fn audit(
        &self,
        caller: &Caller,
        action: &str,
        target: Option<String>,
        detail: Option<serde_json::Value>,
    ) -> ApiResult<()> {
        self.store
            .audit(
                self.clock.now(),
                AuditRecord {
                    actor: &caller.user.username,
                    role: Some(caller.user.role.as_str()),
                    action,
                    target,
                    detail,
                    client: Some(caller.client.clone()),
                },
            )
            .await?;
        Ok(())
    }
}
