//! `/api/login`, `/api/logout`, `/api/session`: browsers' sessions. Logins are limited
//! per user name and address, and every one is audited, failed ones included.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiResult};
use super::{AppState, SESSION_COOKIE};
use crate::audit::AuditRecord;
use crate::auth::{MAX_PASSWORD, Role, check_username};
use crate::sightings::shown;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    pub username: String,
    pub role: Role,
    /// Sent back as X-CSRF-Token with every state-changing request of this session;
    /// none for a caller with an API token.
    pub csrf_token: Option<String>,
    /// When the session ends; none for a caller with an API token.
    pub expires_at: Option<DateTime<Utc>>,
}

pub(super) async fn login(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<(CookieJar, Json<SessionInfo>)> {
    let now = state.clock.now();
    let client = addr.ip().to_string();
    // A name no user can have, or a password longer than any, is refused before it is
    // hashed, keyed or logged whole.
    if let Err(why) = check_username(body.username.trim()) {
        state
            .store
            .audit(
                now,
                AuditRecord {
                    actor: &shown(body.username.trim()),
                    action: "login_refused",
                    client: Some(client),
                    ..Default::default()
                },
            )
            .await?;
        return Err(ApiError::BadRequest(why));
    }
    if body.password.chars().count() > MAX_PASSWORD {
        return Err(ApiError::BadRequest(format!(
            "a password has at most {MAX_PASSWORD} characters"
        )));
    }
    state.forget_idle_limits();
    let key = format!("{}|{}", addr.ip(), body.username.trim().to_lowercase());
    if state.login_limiter.check_key(&key).is_err() {
        return Err(ApiError::TooManyRequests);
    }
    let user = state
        .store
        .check_password(&body.username, &body.password)
        .await?;
    let Some(user) = user else {
        state
            .store
            .audit(
                now,
                AuditRecord {
                    actor: body.username.trim(),
                    action: "login_failed",
                    client: Some(client),
                    ..Default::default()
                },
            )
            .await?;
        return Err(ApiError::Unauthenticated(
            "wrong user name or password".into(),
        ));
    };
    let (token, session) = state.store.create_session(&user, now).await?;
    state
        .store
        .audit(
            now,
            AuditRecord {
                actor: &user.username,
                role: Some(user.role.as_str()),
                action: "login",
                client: Some(client),
                ..Default::default()
            },
        )
        .await?;
    let cookie = Cookie::build((SESSION_COOKIE, token))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.secure_cookies)
        .path("/")
        .build();
    Ok((
        jar.add(cookie),
        Json(SessionInfo {
            username: user.username,
            role: user.role,
            csrf_token: Some(session.csrf_token),
            expires_at: Some(session.expires_at),
        }),
    ))
}

pub(super) async fn logout(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    jar: CookieJar,
) -> ApiResult<(CookieJar, StatusCode)> {
    if let Some(c) = jar.get(SESSION_COOKIE) {
        state.store.end_session(c.value()).await?;
    }
    state.audit(&caller, "logout", None, None).await?;
    Ok((
        jar.remove(Cookie::build(SESSION_COOKIE).path("/")),
        StatusCode::NO_CONTENT,
    ))
}

pub(super) async fn session_info(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    jar: CookieJar,
) -> ApiResult<Json<SessionInfo>> {
    let session = match jar.get(SESSION_COOKIE) {
        Some(c) => state.store.session(c.value(), state.clock.now()).await?,
        None => None,
    };
    Ok(Json(SessionInfo {
        username: caller.user.username,
        role: caller.user.role,
        csrf_token: session.as_ref().map(|s| s.csrf_token.clone()),
        expires_at: session.map(|s| s.expires_at),
    }))
}
