//! The API's one error type: each variant a status code, every answer JSON
//! (`{"error": "..."}`) naming what is wrong; internal detail goes to the log only.

use axum::Json;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::db::StoreError;

/// Every error answer's body.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What is wrong, for a person to read.
    pub error: String,
}

#[derive(Debug)]
pub enum ApiError {
    Unauthenticated(String),
    Forbidden(String),
    NotFound(String),
    BadRequest(String),
    Conflict(String),
    TooManyRequests,
    /// The request's body did not arrive in time.
    RequestTimeout,
    /// Something the service needs (its evidence folder, its database) is not answering;
    /// the same request may succeed later.
    Unavailable(String),
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::CaseNotFound(_) | StoreError::NoticeNotFound(_) => {
                ApiError::NotFound(e.to_string())
            }
            StoreError::WrongState { .. } | StoreError::Conflict(_) => {
                ApiError::Conflict(e.to_string())
            }
            StoreError::Invalid(m) => ApiError::BadRequest(m),
            StoreError::Unavailable(m) => ApiError::Unavailable(m),
            StoreError::Unreachable { .. } => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::Unauthenticated(m) => (StatusCode::UNAUTHORIZED, m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::RequestTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "the request's body did not arrive in time".to_string(),
            ),
            ApiError::TooManyRequests => (
                StatusCode::TOO_MANY_REQUESTS,
                "too many attempts; wait a minute".to_string(),
            ),
            ApiError::Unavailable(m) => {
                tracing::error!(error = %m, "request failed; the service may recover");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the service cannot do this now; try again later".to_string(),
                )
            }
            ApiError::Internal(m) => {
                // The detail goes to the log, not to the caller.
                tracing::error!(error = %m, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log".to_string(),
                )
            }
        };
        let mut resp = (status, Json(json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"vigil\""),
            );
        } else if status == StatusCode::TOO_MANY_REQUESTS {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON body whose errors come back as this API's JSON errors, naming the problem.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) if timed_out(&rejection) => Err(ApiError::RequestTimeout),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

/// Whether the body stopped coming before its deadline (the server's body timeout).
pub(super) fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = c.source();
    }
    false
}
