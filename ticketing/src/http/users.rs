//! `/api/users`: accounts and API tokens, for admins. Both audited.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiJson, ApiResult};
use crate::auth::{Role, TokenInfo, User};

pub(super) async fn list_users(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(state.store.users().await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: Role,
}

pub(super) async fn create_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let user = state
        .store
        .create_user(&body.username, &body.password, body.role, state.clock.now())
        .await?;
    state
        .audit(
            &caller,
            "user_created",
            Some(user.username.clone()),
            Some(json!({"role": user.role})),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    pub label: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// Shown once; only its hash is stored.
    pub token: String,
}

pub(super) async fn create_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<TokenRequest>,
) -> ApiResult<(StatusCode, Json<TokenResponse>)> {
    let token = state
        .store
        .create_api_token(&username, &body.label, state.clock.now())
        .await?;
    state
        .audit(
            &caller,
            "token_created",
            Some(username),
            Some(json!({"label": body.label})),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(TokenResponse { token })))
}

pub(super) async fn disable_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(username): Path<String>,
) -> ApiResult<Json<Disabled>> {
    state
        .store
        .disable_user(&username, state.clock.now())
        .await?;
    state
        .audit(&caller, "user_disabled", Some(username.clone()), None)
        .await?;
    Ok(Json(Disabled { disabled: username }))
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Disabled {
    /// The user name disabled.
    pub disabled: String,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct RevokeRequest {
    /// Only the tokens of this label; without it, all of the user's tokens.
    #[serde(default)]
    pub label: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Revoked {
    pub revoked: u64,
}

pub(super) async fn revoke_tokens(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<RevokeRequest>,
) -> ApiResult<Json<Revoked>> {
    let revoked = state
        .store
        .revoke_tokens(&username, body.label.as_deref(), state.clock.now())
        .await?;
    state
        .audit(
            &caller,
            "tokens_revoked",
            Some(username),
            Some(json!({"label": body.label, "revoked": revoked})),
        )
        .await?;
    Ok(Json(Revoked { revoked }))
}

pub(super) async fn list_tokens(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
    Path(username): Path<String>,
) -> ApiResult<Json<Vec<TokenInfo>>> {
    Ok(Json(state.store.api_tokens(&username).await?))
}
