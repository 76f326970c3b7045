//! The HTTP API and pages of `vigil serve`, one module per resource. Handlers are thin:
//! they check the caller, call the store, audit, and shape the answer. Every route is
//! declared once in [`route_table`], with the roles it admits; the router, the
//! authentication layer ([`auth`]) and the OpenAPI document are all made from that table,
//! so none can drift from the others. Errors are one type ([`error::ApiError`]).

mod audit;
pub mod auth;
mod cameras;
mod cases;
mod citizens;
pub mod error;
mod events;
mod evidence;
mod notices;
mod openapi;
mod pages;
pub(crate) mod schema;
mod server;
mod sessions;
mod sightings;
mod users;
pub mod web;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::{Next, from_fn_with_state};
use axum::routing::{MethodRouter, get, post};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use vigil_core::DataDir;
use vigil_core::clock::Clock;

use crate::auth::Role;
use crate::db::CaseStore;
use crate::intake::Intake;
use crate::notice::Agency;
use auth::{ADMIN, ANYONE, INVESTIGATORS, OFFICER, PUBLIC, READERS, STAFF};
use error::ApiError;

pub use auth::Caller;
pub use cases::CaseQuery;
pub use events::IntakeResponse;
pub use notices::PaymentRequest;
pub use openapi::openapi_document;
pub use server::{ServerLimits, serve, serve_with};
pub use sessions::{LoginRequest, SessionInfo};

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
    /// Where pictures sent with sightings are kept; without it they are not kept.
    pub uploads: Option<DataDir>,
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
            uploads: None,
        }
    }

    /// Forget the rate limiters' keys that are back to a fresh state, once they are many:
    /// an unauthenticated caller inventing a name per attempt must not grow them forever.
    pub(crate) fn forget_idle_limits(&self) {
        const MANY: usize = 10_000;
        if self.login_limiter.len() > MANY {
            self.login_limiter.retain_recent();
        }
        if self.citizen_limiter.len() > MANY {
            self.citizen_limiter.retain_recent();
        }
    }

    /// Keep pictures that arrive with sightings in `data`.
    pub fn with_uploads(mut self, data: DataDir) -> Self {
        self.uploads = Some(data);
        self
    }
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
            Some("LoginRequest"), Some("SessionInfo"), post(sessions::login)),
        route!(POST "/api/logout", ANYONE, "End this session", None, None, post(sessions::logout)),
        route!(GET "/api/session", ANYONE, "Who is logged in, and the CSRF token",
            None, Some("SessionInfo"), get(sessions::session_info)),
        route!(POST "/api/events", &[Role::Operator, Role::Admin],
            "Intake of a violation event (idempotent by event id; merges within the dedup window)",
            Some("ViolationEvent"), Some("IntakeResponse"), post(events::intake_event)),
        route!(GET "/api/cases", READERS,
            "Cases, oldest first; filters: state, camera, violation, plate (OCR-tolerant), from, to, limit",
            None, Some("CaseSummary"), get(cases::list_cases)),
        route!(GET "/api/sightings", INVESTIGATORS,
            "Every plate read, by plate (OCR-tolerant, partial, one character wrong forgiven), best match first; filters: camera, class, from, to, limit. Audited",
            None, Some("Found"), get(sightings::search_sightings)),
        route!(POST "/api/sightings", &[Role::Operator, Role::Admin],
            "Intake of a plate read from a worker, with its picture (idempotent by sighting id)",
            Some("SightingUpload"), Some("SightingRecorded"), post(sightings::intake_sighting)),
        route!(GET "/api/sightings.csv", INVESTIGATORS,
            "The same search as CSV (a spreadsheet's formulas neutralised). Audited",
            None, None, get(sightings::sightings_csv)),
        route!(GET "/api/sightings/{id}/thumbnail", INVESTIGATORS, "A sighting's picture of the vehicle",
            None, None, get(sightings::sighting_thumbnail)),
        route!(GET "/api/sightings/{id}/footage", INVESTIGATORS,
            "Where a sighting's video is: its case's clip, or the recording it was read from. Audited",
            None, Some("Footage"), get(sightings::sighting_footage)),
        route!(GET "/api/sightings/{id}/video", INVESTIGATORS,
            "The recording a sighting was read from (byte ranges answered)",
            None, None, get(sightings::sighting_video)),
        route!(GET "/api/cameras", STAFF, "Each camera's last reported health",
            None, Some("CameraHealth"), get(cameras::list_cameras)),
        route!(GET "/api/cameras/{id}/thumbnail", STAFF, "A camera's last frame",
            None, None, get(cameras::camera_thumbnail)),
        route!(GET "/api/cases/{id}", READERS, "A case with its events, history, owner and notice",
            None, Some("CaseDetail"), get(cases::case_detail)),
        route!(POST "/api/cases/{id}/open", OFFICER, "Open a case for review",
            None, Some("CaseDetail"), post(cases::open_case)),
        route!(POST "/api/cases/{id}/approve", OFFICER, "Approve a detection",
            None, Some("CaseDetail"), post(cases::approve_case)),
        route!(POST "/api/cases/{id}/reject", OFFICER, "Reject a detection with a reason",
            Some("RejectRequest"), Some("CaseDetail"), post(cases::reject_case)),
        route!(POST "/api/cases/{id}/plate", OFFICER,
            "Correct a case's plate (merges into a case that already holds it)",
            Some("PlateRequest"), Some("CaseDetail"), post(cases::correct_plate)),
        route!(POST "/api/cases/{id}/appeal", OFFICER, "Record that the owner named the driver",
            Some("Driver"), Some("CaseDetail"), post(cases::appeal_case)),
        route!(GET "/api/evidence/{event_id}/{file}", READERS, "A file of an event's evidence folder",
            None, None, get(evidence::evidence_file)),
        route!(GET "/api/overdue", &[Role::Officer, Role::Admin], "Cases past a legal deadline",
            None, Some("Overdue"), get(cases::overdue)),
        route!(GET "/api/stats", &[Role::Officer, Role::Operator, Role::Admin],
            "Cases per state and undelivered publications", None, None, get(cases::stats)),
        route!(GET "/api/notices/{code}", &[Role::Officer, Role::Admin, Role::Agency], "A notice",
            None, Some("Notice"), get(notices::notice_json)),
        route!(GET "/notices/{code}", &[Role::Officer, Role::Admin],
            "A notice as a printable page (Form 01)", None, None, get(notices::notice_page)),
        route!(POST "/api/notices/{code}/payment", &[Role::Officer, Role::Admin],
            "Record a payment made at the counter", Some("PaymentRequest"), Some("Notice"),
            post(notices::officer_payment)),
        route!(GET "/api/users", ADMIN, "Users", None, Some("User"), get(users::list_users)),
        route!(POST "/api/users", ADMIN, "Create a user", Some("NewUser"), Some("User"),
            post(users::create_user)),
        route!(POST "/api/users/{username}/tokens", ADMIN, "Create an API token for a user",
            Some("TokenRequest"), Some("TokenResponse"), post(users::create_token)),
        route!(GET "/api/users/{username}/tokens", ADMIN, "A user's API tokens (labels and dates, never the tokens)",
            None, Some("TokenInfo"), get(users::list_tokens)),
        route!(POST "/api/users/{username}/tokens/revoke", ADMIN,
            "Revoke a user's API tokens (of one label, or all)", Some("RevokeRequest"),
            Some("Revoked"), post(users::revoke_tokens)),
        route!(POST "/api/users/{username}/disable", ADMIN,
            "Disable a user: no login, sessions ended, tokens revoked (never the last admin)",
            None, None, post(users::disable_user)),
        route!(GET "/api/audit", ADMIN, "The audit log as JSON lines (optionally since a time)",
            None, Some("AuditEntry"), get(audit::audit_export)),
        route!(GET "/api/openapi.json", ANYONE, "This document", None, None, get(openapi::openapi_json)),
        route!(GET "/citizen/notices/{code}", PUBLIC,
            "A citizen's view of a notice; needs the plate (?plate=)", None, None, get(citizens::citizen_notice)),
        route!(GET "/citizen/notices/{code}/evidence/{event_id}/{file}", PUBLIC,
            "Evidence of a notice, for its citizen; needs the plate (?plate=)", None, None,
            get(citizens::citizen_evidence)),
        route!(POST "/citizen/notices/{code}/payment", PUBLIC,
            "A citizen records the payment reference of a notice", Some("PaymentRequest"),
            Some("Notice"), post(citizens::citizen_payment)),
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
                    auth::authenticate(s, roles, req, next)
                },
            ))
        };
        router = router.route(spec.path, handler);
    }
    router
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .with_state(state)
}
