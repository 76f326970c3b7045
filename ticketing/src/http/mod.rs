//! The HTTP API and pages of `vigil serve`. Handlers are thin: they check the caller,
//! call the store, audit, and shape the answer. Every route is declared once in
//! [`route_table`], with the roles it admits; the router, the authentication layer and the
//! OpenAPI document are all made from that table, so none can drift from the others.

mod investigate;
mod openapi;
mod pages;
pub(crate) mod schema;
pub mod web;

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Extension, Json, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::{DateTime, Utc};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::AuditRecord;
use crate::auth::{Role, User};
use crate::intake::Intake;
use crate::lifecycle::{CaseState, RejectReason};
use crate::notice::{Agency, Driver, Webhook};
use crate::owner::RegistryClient;
use crate::store::{CaseFilter, CaseStore, Recorded, StoreError};
use vigil_core::clock::Clock;
use vigil_core::event::ViolationEvent;

pub use openapi::openapi_document;

pub const SESSION_COOKIE: &str = "vigil_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Everything a request handler needs.
#[derive(Clone)]
pub struct AppState {
    pub store: CaseStore,
    pub intake: Intake,
    pub clock: Arc<dyn Clock>,
    pub agency: Arc<Agency>,
    /// Cookies marked `Secure`: on unless the server only listens on loopback.
    pub secure_cookies: bool,
    login_limiter: Arc<DefaultKeyedRateLimiter<String>>,
    citizen_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl AppState {
    pub fn new(intake: Intake, agency: Agency, secure_cookies: bool) -> Self {
        let per_minute = |n| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            store: intake.store.clone(),
            clock: intake.clock.clone(),
            intake,
            agency: Arc::new(agency),
            secure_cookies,
            // Five tries a minute per user name and address: enough for typos, far too few
            // to guess a 12-character password.
            login_limiter: Arc::new(RateLimiter::keyed(per_minute(5))),
            // Notice codes are the citizen's credential: limit how fast they can be tried.
            citizen_limiter: Arc::new(RateLimiter::keyed(per_minute(30))),
        }
    }
}

/// The authenticated caller of a route.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub client: String,
}

/// A route: how it is called and who may call it. `roles` empty means the route checks
/// its caller itself (login, and the citizen pages, which take a plate and notice code).
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub roles: &'static [Role],
    pub summary: &'static str,
    pub request: Option<&'static str>,
    pub response: Option<&'static str>,
}

const READERS: &[Role] = &[Role::Officer, Role::Investigator, Role::Admin, Role::Agency];
const OFFICER: &[Role] = &[Role::Officer];
const ANYONE: &[Role] = &[
    Role::Officer,
    Role::Investigator,
    Role::Operator,
    Role::Admin,
    Role::Agency,
];
const ADMIN: &[Role] = &[Role::Admin];
const INVESTIGATORS: &[Role] = &[Role::Investigator, Role::Officer, Role::Admin];
const STAFF: &[Role] = &[
    Role::Officer,
    Role::Investigator,
    Role::Operator,
    Role::Admin,
];
const PUBLIC: &[Role] = &[];

macro_rules! route {
    ($method:ident $path:literal, $roles:expr, $summary:literal, $req:expr, $resp:expr, $handler:expr) => {
        (
            RouteSpec {
                method: Method::$method,
                path: $path,
                roles: $roles,
                summary: $summary,
                request: $req,
                response: $resp,
            },
            $handler,
        )
    };
}

/// Every route of the server.
pub fn route_table() -> Vec<(RouteSpec, MethodRouter<AppState>)> {
    vec![
        route!(POST "/api/login", PUBLIC, "Log in; sets the session cookie and returns the CSRF token",
            Some("LoginRequest"), Some("SessionInfo"), post(login)),
        route!(POST "/api/logout", ANYONE, "End this session", None, None, post(logout)),
        route!(GET "/api/session", ANYONE, "Who is logged in, and the CSRF token",
            None, Some("SessionInfo"), get(session_info)),
        route!(POST "/api/events", &[Role::Operator, Role::Admin],
            "Intake of a violation event (idempotent by event id; merges within the dedup window)",
            Some("ViolationEvent"), Some("IntakeResponse"), post(intake_event)),
        route!(GET "/api/cases", READERS,
            "Cases, oldest first; filters: state, camera, violation, plate (OCR-tolerant), from, to, limit",
            None, Some("CaseSummary"), get(list_cases)),
        route!(GET "/api/sightings", INVESTIGATORS,
            "Every plate read, by plate (OCR-tolerant, partial, one character wrong forgiven), best match first; filters: camera, class, from, to, limit. Audited",
            None, Some("Found"), get(search_sightings)),
        route!(GET "/api/sightings.csv", INVESTIGATORS,
            "The same search as CSV (a spreadsheet's formulas neutralised). Audited",
            None, None, get(investigate::sightings_csv)),
        route!(GET "/api/sightings/{id}/thumbnail", INVESTIGATORS, "A sighting's picture of the vehicle",
            None, None, get(investigate::sighting_thumbnail)),
        route!(GET "/api/sightings/{id}/footage", INVESTIGATORS,
            "Where a sighting's video is: its case's clip, or the recording it was read from. Audited",
            None, Some("Footage"), get(investigate::sighting_footage)),
        route!(GET "/api/sightings/{id}/video", INVESTIGATORS,
            "The recording a sighting was read from (byte ranges answered)",
            None, None, get(investigate::sighting_video)),
        route!(GET "/api/cameras", STAFF, "Each camera's last reported health",
            None, Some("CameraHealth"), get(investigate::list_cameras)),
        route!(GET "/api/cameras/{id}/thumbnail", STAFF, "A camera's last frame",
            None, None, get(investigate::camera_thumbnail)),
        route!(GET "/api/cases/{id}", READERS, "A case with its events, history, owner and notice",
            None, Some("CaseDetail"), get(case_detail)),
        route!(POST "/api/cases/{id}/open", OFFICER, "Open a case for review",
            None, Some("CaseDetail"), post(open_case)),
        route!(POST "/api/cases/{id}/approve", OFFICER, "Approve a detection",
            None, Some("CaseDetail"), post(approve_case)),
        route!(POST "/api/cases/{id}/reject", OFFICER, "Reject a detection with a reason",
            Some("RejectRequest"), Some("CaseDetail"), post(reject_case)),
        route!(POST "/api/cases/{id}/plate", OFFICER,
            "Correct a case's plate (merges into a case that already holds it)",
            Some("PlateRequest"), Some("CaseDetail"), post(correct_plate)),
        route!(POST "/api/cases/{id}/appeal", OFFICER, "Record that the owner named the driver",
            Some("Driver"), Some("CaseDetail"), post(appeal_case)),
        route!(GET "/api/evidence/{event_id}/{file}", READERS, "A file of an event's evidence folder",
            None, None, get(evidence_file)),
        route!(GET "/api/overdue", &[Role::Officer, Role::Admin], "Cases past a legal deadline",
            None, Some("Overdue"), get(overdue)),
        route!(GET "/api/stats", &[Role::Officer, Role::Operator, Role::Admin],
            "Cases per state and undelivered publications", None, None, get(stats)),
        route!(GET "/api/notices/{code}", &[Role::Officer, Role::Admin, Role::Agency], "A notice",
            None, Some("Notice"), get(notice_json)),
        route!(GET "/notices/{code}", &[Role::Officer, Role::Admin],
            "A notice as a printable page (Form 01)", None, None, get(notice_page)),
        route!(POST "/api/notices/{code}/payment", &[Role::Officer, Role::Admin],
            "Record a payment made at the counter", Some("PaymentRequest"), Some("Notice"),
            post(officer_payment)),
        route!(GET "/api/users", ADMIN, "Users", None, Some("User"), get(list_users)),
        route!(POST "/api/users", ADMIN, "Create a user", Some("NewUser"), Some("User"),
            post(create_user)),
        route!(POST "/api/users/{username}/tokens", ADMIN, "Create an API token for a user",
            Some("TokenRequest"), Some("TokenResponse"), post(create_token)),
        route!(GET "/api/audit", ADMIN, "The audit log as JSON lines (optionally since a time)",
            None, Some("AuditEntry"), get(audit_export)),
        route!(GET "/api/openapi.json", ANYONE, "This document", None, None, get(openapi_json)),
        route!(GET "/citizen/notices/{code}", PUBLIC,
            "A citizen's view of a notice; needs the plate (?plate=)", None, None, get(citizen_notice)),
        route!(GET "/citizen/notices/{code}/evidence/{event_id}/{file}", PUBLIC,
            "Evidence of a notice, for its citizen; needs the plate (?plate=)", None, None,
            get(citizen_evidence)),
        route!(POST "/citizen/notices/{code}/payment", PUBLIC,
            "A citizen records the payment reference of a notice", Some("PaymentRequest"),
            Some("Notice"), post(citizen_payment)),
    ]
}

/// The router, every route behind the authentication its spec names.
pub fn router(state: AppState) -> Router {
    let mut router = web::pages(state.clone());
    for (spec, handler) in route_table() {
        let handler = if spec.roles.is_empty() {
            handler
        } else {
            let roles = spec.roles;
            handler.layer(from_fn_with_state(
                state.clone(),
                move |s: State<AppState>, req: Request, next: Next| {
                    authenticate(s, roles, req, next)
                },
            ))
        };
        router = router.route(spec.path, handler);
    }
    router
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .with_state(state)
}

/// Serve until `shutdown` resolves, then finish the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// The background work of the service, one round: owners, notices, publication, deadlines.
pub async fn work_round(
    state: &AppState,
    registry: Option<&RegistryClient>,
    webhook: Option<&Webhook>,
) -> Result<WorkRound, StoreError> {
    let now = state.clock.now();
    let owners = match registry {
        Some(r) => Some(state.store.identify_owners(r, now).await?),
        None => None,
    };
    let notices = state.store.issue_notices(&state.agency, now).await?;
    let published = match webhook {
        Some(w) => state.store.publish_outbox(w, now).await?,
        None => 0,
    };
    let sweep = state.store.sweep_deadlines(now).await?;
    Ok(WorkRound {
        owners,
        notices,
        published,
        sweep,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkRound {
    pub owners: Option<crate::owner::OwnerRound>,
    pub notices: Vec<String>,
    pub published: usize,
    pub sweep: crate::deadlines::Sweep,
}

// ---------------------------------------------------------------------------------------
// Errors

#[derive(Debug)]
pub enum ApiError {
    Unauthenticated(String),
    Forbidden(String),
    NotFound(String),
    BadRequest(String),
    Conflict(String),
    TooManyRequests,
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::CaseNotFound(_) | StoreError::NoticeNotFound(_) => {
                ApiError::NotFound(e.to_string())
            }
            StoreError::WrongState { .. } => ApiError::Conflict(e.to_string()),
            StoreError::Invalid(m) => ApiError::BadRequest(m),
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
            ApiError::TooManyRequests => (
                StatusCode::TOO_MANY_REQUESTS,
                "too many attempts; wait a minute".to_string(),
            ),
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

type ApiResult<T> = Result<T, ApiError>;

/// A JSON body whose errors come back as this API's JSON errors, naming the problem.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Authentication

fn client_of(req_ext: Option<&ConnectInfo<SocketAddr>>) -> String {
    req_ext
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

async fn authenticate(
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

async fn caller_of(
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
    async fn audit(
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

// ---------------------------------------------------------------------------------------
// Sessions

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    pub username: String,
    pub role: Role,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<(CookieJar, Json<SessionInfo>)> {
    let key = format!("{}|{}", addr.ip(), body.username.trim().to_lowercase());
    if state.login_limiter.check_key(&key).is_err() {
        return Err(ApiError::TooManyRequests);
    }
    let now = state.clock.now();
    let user = state
        .store
        .check_password(&body.username, &body.password)
        .await?;
    let client = addr.ip().to_string();
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
            csrf_token: session.csrf_token,
            expires_at: session.expires_at,
        }),
    ))
}

async fn logout(
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

async fn session_info(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    jar: CookieJar,
) -> ApiResult<Json<serde_json::Value>> {
    let session = match jar.get(SESSION_COOKIE) {
        Some(c) => state.store.session(c.value(), state.clock.now()).await?,
        None => None,
    };
    Ok(Json(json!({
        "username": caller.user.username,
        "role": caller.user.role,
        "csrf_token": session.as_ref().map(|s| s.csrf_token.clone()),
        "expires_at": session.map(|s| s.expires_at),
    })))
}

// ---------------------------------------------------------------------------------------
// Intake and cases

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IntakeResponse {
    pub case_id: i64,
    /// `new`, `duplicate` or `merged`.
    pub outcome: String,
}

async fn intake_event(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<IntakeResponse>)> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("the event is not UTF-8 text".into()))?;
    let event = ViolationEvent::from_json(text).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if event.camera_id.trim().is_empty() {
        return Err(ApiError::BadRequest("camera_id is empty".into()));
    }
    let recorded = state.intake.record(&event).await?;
    let (status, outcome) = match recorded {
        Recorded::New(_) => (StatusCode::CREATED, "new"),
        Recorded::Duplicate(_) => (StatusCode::OK, "duplicate"),
        Recorded::Merged(_) => (StatusCode::OK, "merged"),
    };
    tracing::info!(event = %event.event_id, by = %caller.user.username, outcome, "event received");
    Ok((
        status,
        Json(IntakeResponse {
            case_id: recorded.case_id(),
            outcome: outcome.into(),
        }),
    ))
}

#[derive(Debug, Deserialize)]
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

async fn list_cases(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<CaseQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<crate::store::CaseSummary>>> {
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
    let filter = CaseFilter {
        states,
        camera_id: q.camera.clone(),
        violation: q.violation.clone(),
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

#[derive(Debug, Deserialize)]
pub struct SightingSearch {
    pub plate: String,
    pub camera: Option<String>,
    pub class: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: Option<usize>,
}

async fn search_sightings(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<SightingSearch>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<crate::sightings::Found>>> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(
        investigate::audited_search(&state, &caller, &q, "json").await?,
    ))
}

async fn case_detail(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<crate::store::CaseDetail>> {
    let case = state.store.case(id).await?;
    state
        .audit(&caller, "case_view", Some(format!("case {id}")), None)
        .await?;
    Ok(Json(case))
}

async fn decided(
    state: &AppState,
    caller: &Caller,
    action: &str,
    id: i64,
    detail: Option<serde_json::Value>,
) -> ApiResult<Json<crate::store::CaseDetail>> {
    state
        .audit(caller, action, Some(format!("case {id}")), detail)
        .await?;
    Ok(Json(state.store.case(id).await?))
}

async fn open_case(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<crate::store::CaseDetail>> {
    state
        .store
        .open_review(id, &caller.user.username, state.clock.now())
        .await?;
    decided(&state, &caller, "review_opened", id, None).await
}

async fn approve_case(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<crate::store::CaseDetail>> {
    state
        .store
        .approve(id, &caller.user.username, state.clock.now())
        .await?;
    decided(&state, &caller, "approved", id, None).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RejectRequest {
    pub reason: RejectReason,
    #[serde(default)]
    pub text: String,
}

async fn reject_case(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<RejectRequest>,
) -> ApiResult<Json<crate::store::CaseDetail>> {
    state
        .store
        .reject(
            id,
            &caller.user.username,
            body.reason,
            &body.text,
            state.clock.now(),
        )
        .await?;
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

async fn correct_plate(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<PlateRequest>,
) -> ApiResult<Json<crate::store::CaseDetail>> {
    let outcome = state
        .store
        .correct_plate(
            id,
            &caller.user.username,
            &body.plate,
            state.clock.now(),
            state.intake.dedup_window,
        )
        .await?;
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

async fn appeal_case(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    ApiJson(driver): ApiJson<Driver>,
) -> ApiResult<Json<crate::store::CaseDetail>> {
    state
        .store
        .record_appeal(id, &driver, &caller.user.username, state.clock.now())
        .await?;
    decided(&state, &caller, "appeal_recorded", id, None).await
}

/// Only plain file names from the evidence folder; `manifest.json` and `signature.json`
/// included, anything with a path separator or a leading dot refused.
fn evidence_path(dir: &str, file: &str) -> ApiResult<PathBuf> {
    if file.is_empty() || file.starts_with('.') || file.contains(['/', '\\']) {
        return Err(ApiError::BadRequest(format!(
            "`{file}` is not an evidence file name"
        )));
    }
    let path = PathBuf::from(dir).join(file);
    if !path.is_file() {
        return Err(ApiError::NotFound(format!(
            "evidence file {file} is not there"
        )));
    }
    Ok(path)
}

/// A file, answering byte ranges (a video element seeks, and asks for the end of an MP4
/// first when its index is there).
async fn send_file(path: PathBuf, headers: &HeaderMap) -> ApiResult<Response> {
    use tower::ServiceExt;
    let mut req = Request::new(Body::empty());
    for name in [header::RANGE, header::IF_RANGE, header::IF_MODIFIED_SINCE] {
        if let Some(v) = headers.get(&name) {
            req.headers_mut().insert(name, v.clone());
        }
    }
    let resp = tower_http::services::ServeFile::new(&path)
        .oneshot(req)
        .await
        .map_err(|e| ApiError::Internal(format!("{}: {e}", path.display())))?;
    let mut resp = resp.map(Body::new);
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(resp)
}

/// A request for the rest of a file already being shown (a video's later ranges): not a
/// new look at the evidence, so not audited again.
fn continuing(headers: &HeaderMap) -> bool {
    headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|r| !r.trim().starts_with("bytes=0-"))
}

async fn evidence_file(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((event_id, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (case_id, event) = state
        .store
        .event_by_id(&event_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {event_id}")))?;
    let path = evidence_path(&event.evidence_dir, &file)?;
    if !continuing(&headers) {
        state
            .audit(
                &caller,
                "evidence_view",
                Some(format!("case {case_id}")),
                Some(json!({"event": event_id, "file": file})),
            )
            .await?;
    }
    send_file(path, &headers).await
}

async fn overdue(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
) -> ApiResult<Json<Vec<crate::deadlines::Overdue>>> {
    Ok(Json(state.store.overdue(state.clock.now()).await?))
}

async fn stats(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
) -> ApiResult<Json<serde_json::Value>> {
    let by_state: serde_json::Map<String, serde_json::Value> = state
        .store
        .count_by_state()
        .await?
        .into_iter()
        .map(|(s, n)| (s, n.into()))
        .collect();
    Ok(Json(json!({
        "cases_by_state": by_state,
        "outbox_pending": state.store.outbox_pending().await?,
        "overdue": state.store.overdue(state.clock.now()).await?.len(),
    })))
}

// ---------------------------------------------------------------------------------------
// Notices

async fn notice_json(
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

async fn notice_page(
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

async fn officer_payment(
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

// ---------------------------------------------------------------------------------------
// Users and the audit log

async fn list_users(
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

async fn create_user(
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

async fn create_token(
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

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    pub since: Option<DateTime<Utc>>,
}

async fn audit_export(
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

async fn openapi_json(Extension(_caller): Extension<Caller>) -> Json<serde_json::Value> {
    Json(openapi_document())
}

// ---------------------------------------------------------------------------------------
// Citizens

#[derive(Debug, Deserialize)]
pub struct PlateQuery {
    pub plate: Option<String>,
}

fn citizen_gate(state: &AppState, addr: &SocketAddr) -> ApiResult<()> {
    state
        .citizen_limiter
        .check_key(&addr.ip())
        .map_err(|_| ApiError::TooManyRequests)
}

async fn citizen_lookup(
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

async fn citizen_audit(
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

async fn citizen_notice(
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

async fn citizen_evidence(
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

async fn citizen_payment(
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
