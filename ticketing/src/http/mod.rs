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
mod fleet;
pub mod footage;
mod hardening;
pub mod jobs;
mod notices;
mod openapi;
mod pages;
mod payments;
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
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::{Next, from_fn_with_state};
use axum::routing::{MethodRouter, get, post, put};
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
pub use hardening::TrustedProxies;
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
    /// The payment provider; without one, notices are paid at the counter only.
    pub payments: Option<crate::payment::PaymentProvider>,
    /// Proxies whose forwarded client address is believed.
    pub proxies: Arc<TrustedProxies>,
    /// The fleet's NATS JetStream, when this server takes the fleet's events.
    pub fleet: Option<vigil_fleet::Bus>,
    /// Makes footage exports, when this server holds cameras' recordings.
    pub footage: Option<Arc<dyn footage::FootageExporter>>,
    /// Lists the recordings library and plans batch jobs of it, when the server has one.
    pub jobs: Option<Arc<dyn jobs::JobPlanner>>,
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
            payments: None,
            proxies: Arc::new(TrustedProxies::default()),
            fleet: None,
            footage: None,
            jobs: None,
        }
    }

    /// Show the fleet on this NATS JetStream.
    /// Export footage through `exporter`.
    pub fn with_footage(mut self, exporter: Arc<dyn footage::FootageExporter>) -> Self {
        self.footage = Some(exporter);
        self
    }

    /// Offer the recordings library `planner` lists as batch jobs.
    pub fn with_jobs(mut self, planner: Arc<dyn jobs::JobPlanner>) -> Self {
        self.jobs = Some(planner);
        self
    }

    pub fn with_fleet(mut self, bus: vigil_fleet::Bus) -> Self {
        self.fleet = Some(bus);
        self
    }

    /// Take payments through `provider`.
    pub fn with_payments(mut self, provider: crate::payment::PaymentProvider) -> Self {
        self.payments = Some(provider);
        self
    }

    /// Believe the client address `proxies` forward.
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = Arc::new(proxies);
        self
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
    pub answer: Answer,
    /// The query string's parameters, from the struct the handler reads it into.
    pub query: Option<fn() -> Vec<utoipa::openapi::path::Parameter>>,
}

/// The query parameters of `T` (a handler's `Query<T>`), for [`RouteSpec::query`].
fn query_of<T: utoipa::IntoParams>() -> Vec<utoipa::openapi::path::Parameter> {
    T::into_params(|| Some(utoipa::openapi::path::ParameterIn::Query))
}

/// What a route answers when it succeeds; the OpenAPI document says it from this, and
/// the HTTP tests check every answer against the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200, JSON of the schema.
    Json(&'static str),
    /// 200, a JSON array of the schema.
    List(&'static str),
    /// 201 when something new was made, 200 when it was there already; JSON of the schema.
    Created(&'static str),
    /// 200, JSON lines (`application/x-ndjson`), each of the schema.
    Lines(&'static str),
    /// 200 (206 for a byte range): a file, as its type.
    File,
    /// 200, `text/csv`.
    Csv,
    /// 200, Prometheus' text format.
    Metrics,
    /// 200, an HTML page.
    Page,
    /// 200, an HTML page, or JSON of the schema with `Accept: application/json`.
    PageOrJson(&'static str),
    /// 303 to elsewhere, or 200 JSON of the schema with `Accept: application/json`.
    Redirect(&'static str),
    /// 204.
    NoContent,
    /// 200, this OpenAPI document.
    Document,
}

macro_rules! route {
    ($method:ident $path:literal, $roles:expr, $summary:literal, $req:expr, $resp:expr, $handler:expr) => {
        route!($method $path, $roles, $summary, $req, $resp, $handler, query = None)
    };
    ($method:ident $path:literal, $roles:expr, $summary:literal, $req:expr, $resp:expr, $handler:expr, query = $query:expr) => {
        (
            RouteSpec {
                method: Method::$method,
                path: $path,
                roles: $roles,
                summary: $summary,
                request: $req,
                answer: $resp,
                query: $query,
            },
            $handler,
        )
    };
}

/// Every route of the server.
pub fn route_table() -> Vec<(RouteSpec, MethodRouter<AppState>)> {
    vec![
        route!(POST "/api/login", PUBLIC, "Log in; sets the session cookie and returns the CSRF token",
            Some("LoginRequest"), Answer::Json("SessionInfo"), post(sessions::login)),
        route!(POST "/api/logout", ANYONE, "End this session", None, Answer::NoContent, post(sessions::logout)),
        route!(GET "/api/session", ANYONE, "Who is logged in, and the CSRF token",
            None, Answer::Json("SessionInfo"), get(sessions::session_info)),
        route!(POST "/api/events", &[Role::Operator, Role::Admin],
            "Intake of a violation event (idempotent by event id; merges within the dedup window)",
            Some("ViolationEvent"), Answer::Created("IntakeResponse"), post(events::intake_event)),
        route!(GET "/api/cases", READERS,
            "Cases, oldest first; filters: state, camera, violation, plate (OCR-tolerant), from, to, limit",
            None, Answer::List("CaseSummary"), get(cases::list_cases), query = Some(query_of::<cases::CaseQuery>)),
        route!(GET "/api/sightings", INVESTIGATORS,
            "Every plate read, by plate (OCR-tolerant, partial, one character wrong forgiven), best match first; filters: camera, class, from, to, limit. Audited",
            None, Answer::List("Found"), get(sightings::search_sightings), query = Some(query_of::<sightings::SightingSearch>)),
        route!(POST "/api/sightings", &[Role::Operator, Role::Admin],
            "Intake of a plate read from a worker, with its picture (idempotent by sighting id)",
            Some("SightingUpload"), Answer::Created("SightingRecorded"), post(sightings::intake_sighting)),
        route!(GET "/api/sightings.csv", INVESTIGATORS,
            "The same search as CSV (a spreadsheet's formulas neutralised). Audited",
            None, Answer::Csv, get(sightings::sightings_csv), query = Some(query_of::<sightings::SightingSearch>)),
        route!(GET "/api/sightings/{id}/thumbnail", INVESTIGATORS, "A sighting's picture of the vehicle",
            None, Answer::File, get(sightings::sighting_thumbnail)),
        route!(GET "/api/sightings/{id}/footage", INVESTIGATORS,
            "Where a sighting's video is: its case's clip, the recording it was read from, or its camera's continuous recording. Audited",
            None, Answer::Json("Footage"), get(sightings::sighting_footage)),
        route!(GET "/api/sightings/{id}/video", INVESTIGATORS,
            "The recording a sighting was read from (byte ranges answered)",
            None, Answer::File, get(sightings::sighting_video)),
        route!(POST "/api/footage/exports", INVESTIGATORS,
            "One camera's recorded footage over a time range (at most an hour) as one MP4 with a signed manifest. Audited",
            Some("ExportRequest"), Answer::Created("ExportResponse"), post(footage::create_export)),
        route!(GET "/api/footage/exports/{id}/{file}", INVESTIGATORS,
            "An export's footage.mp4, manifest.json or signature.json (byte ranges answered). Audited",
            None, Answer::File, get(footage::export_file)),
        route!(GET "/api/sightings/{id}/recorded", INVESTIGATORS,
            "The segment of its camera's continuous recording that holds a sighting's moment (byte ranges answered)",
            None, Answer::File, get(sightings::sighting_recorded)),
        route!(GET "/api/cameras", STAFF, "Each camera's last reported health",
            None, Answer::List("CameraHealth"), get(cameras::list_cameras)),
        route!(GET "/api/cameras/{id}/thumbnail", STAFF, "A camera's last frame",
            None, Answer::File, get(cameras::camera_thumbnail)),
        route!(GET "/api/cases/{id}", READERS, "A case with its events, history, owner and notice",
            None, Answer::Json("CaseDetail"), get(cases::case_detail)),
        route!(POST "/api/cases/{id}/open", OFFICER, "Open a case for review",
            None, Answer::Json("CaseDetail"), post(cases::open_case)),
        route!(POST "/api/cases/{id}/approve", OFFICER, "Approve a detection (refused while its plate is uncertain)",
            None, Answer::Json("CaseDetail"), post(cases::approve_case)),
        route!(POST "/api/cases/{id}/reject", OFFICER, "Reject a detection with a reason",
            Some("RejectRequest"), Answer::Json("CaseDetail"), post(cases::reject_case)),
        route!(POST "/api/cases/{id}/plate", OFFICER,
            "Correct a case's plate, or confirm an uncertain one (merges into a case that already holds it)",
            Some("PlateRequest"), Answer::Json("CaseDetail"), post(cases::correct_plate)),
        route!(POST "/api/cases/{id}/appeal", OFFICER, "Record that the owner named the driver",
            Some("Driver"), Answer::Json("CaseDetail"), post(cases::appeal_case)),
        route!(GET "/api/evidence/{event_id}/{file}", READERS,
            "A file of an event's evidence package: manifest.json, signature.json or a file the manifest lists. Audited",
            None, Answer::File, get(evidence::evidence_file)),
        route!(PUT "/api/evidence/{event_id}/{file}", &[Role::Operator, Role::Admin],
            "A file of an event's evidence package, sent by a worker on another machine before the event (the package is filed when its event arrives and checks)",
            None, Answer::Created("UploadResponse"),
            put(evidence::upload_evidence_file).layer(DefaultBodyLimit::max(evidence::MAX_UPLOAD_BYTES))),
        route!(GET "/api/fleet", &[Role::Officer, Role::Operator, Role::Admin],
            "The fleet: workers (heard from lately, load, cameras), where each camera runs and in what state, the latest moves and their reasons, what waits in the queues (404 when the server has no --nats)",
            None, Answer::Json("FleetView"), get(fleet::fleet_view)),
        route!(GET "/api/jobs", &[Role::Officer, Role::Operator, Role::Admin],
            "Batch jobs on the fleet's queue, newest first: tasks done and left, frames, violations, each task's outcome and failures by name (404 when the server has no --nats)",
            None, Answer::List("Progress"), get(jobs::list_jobs)),
        route!(POST "/api/jobs", &[Role::Operator, Role::Admin],
            "A batch job of recordings from the server's library for one of the fleet's cameras, put on the fleet's job queue (the same request again is the same job). 404 without --nats or --recordings. Audited",
            Some("JobRequest"), Answer::Created("JobSubmitted"), post(jobs::submit_job)),
        route!(GET "/api/recordings", &[Role::Operator, Role::Admin],
            "The recordings in the server's library (--recordings) a batch job may be made of, by name",
            None, Answer::List("LibraryRecording"), get(jobs::list_recordings)),
        route!(GET "/metrics", &[Role::Operator, Role::Admin],
            "Prometheus gauges: cases by state, undelivered publications, and with --nats the fleet's workers, cameras by state and queues (scrape with an operator's API token)",
            None, Answer::Metrics, get(fleet::metrics)),
        route!(GET "/api/overdue", &[Role::Officer, Role::Admin], "Cases past a legal deadline",
            None, Answer::List("Overdue"), get(cases::overdue)),
        route!(GET "/api/stats", &[Role::Officer, Role::Operator, Role::Admin],
            "Cases per state and undelivered publications", None, Answer::Json("Stats"), get(cases::stats)),
        route!(GET "/api/notices/{code}", &[Role::Officer, Role::Admin, Role::Agency], "A notice",
            None, Answer::Json("Notice"), get(notices::notice_json)),
        route!(GET "/notices/{code}", &[Role::Officer, Role::Admin],
            "A notice as a printable page (Form 01)", None, Answer::Page, get(notices::notice_page)),
        route!(POST "/api/notices/{code}/payment", &[Role::Officer, Role::Admin],
            "Record a payment made at the counter", Some("PaymentRequest"), Answer::Json("Notice"),
            post(notices::officer_payment)),
        route!(GET "/api/payments/held", &[Role::Officer, Role::Admin],
            "Provider payments no notice could take as it stood (a case appealed since the order, another amount, a second payment): to refund or apply",
            None, Answer::List("HeldPayment"), get(payments::held_payments)),
        route!(GET "/api/users", ADMIN, "Users", None, Answer::List("User"), get(users::list_users)),
        route!(POST "/api/users", ADMIN, "Create a user", Some("NewUser"), Answer::Created("User"),
            post(users::create_user)),
        route!(POST "/api/users/{username}/tokens", ADMIN, "Create an API token for a user",
            Some("TokenRequest"), Answer::Created("TokenResponse"), post(users::create_token)),
        route!(GET "/api/users/{username}/tokens", ADMIN, "A user's API tokens (labels and dates, never the tokens)",
            None, Answer::List("TokenInfo"), get(users::list_tokens)),
        route!(POST "/api/users/{username}/tokens/revoke", ADMIN,
            "Revoke a user's API tokens (of one label, or all)", Some("RevokeRequest"),
            Answer::Json("Revoked"), post(users::revoke_tokens)),
        route!(POST "/api/users/{username}/disable", ADMIN,
            "Disable a user: no login, sessions ended, tokens revoked (never the last admin)",
            None, Answer::Json("Disabled"), post(users::disable_user)),
        route!(GET "/api/audit", ADMIN, "The audit log as JSON lines (optionally since a time)",
            None, Answer::Lines("AuditEntry"), get(audit::audit_export), query = Some(query_of::<audit::AuditQuery>)),
        route!(GET "/api/openapi.json", ANYONE, "This document", None, Answer::Document, get(openapi::openapi_json)),
        route!(GET "/citizen/notices/{code}", PUBLIC,
            "A citizen's view of a notice; needs the plate (?plate=)", None, Answer::PageOrJson("CitizenNotice"), get(citizens::citizen_notice), query = Some(query_of::<citizens::PlateQuery>)),
        route!(GET "/citizen/notices/{code}/evidence/{event_id}/{file}", PUBLIC,
            "Evidence of a notice, for its citizen; needs the plate (?plate=)", None, Answer::File,
            get(citizens::citizen_evidence), query = Some(query_of::<citizens::PlateQuery>)),
        route!(POST "/citizen/notices/{code}/payment", PUBLIC,
            "A citizen reports having paid, with the payment's reference: kept as a claim for an officer to check; the notice stays unpaid",
            Some("PaymentRequest"), Answer::Json("ClaimRecorded"), post(citizens::citizen_payment_claim)),
        route!(GET "/citizen/notices/{code}/pay", PUBLIC,
            "Pay a notice online: a payment order is made at the payment provider and the citizen sent there (303; JSON with Accept: application/json); needs the plate (?plate=)",
            None, Answer::Redirect("PayOrder"), get(payments::citizen_pay), query = Some(query_of::<citizens::PlateQuery>)),
        route!(POST "/api/payments/callback", PUBLIC,
            "The payment provider reports a payment, signed with the shared secret (X-Payment-Timestamp, X-Payment-Signature: hex HMAC-SHA256 of \"<timestamp>.<body>\"); idempotent by transaction id",
            Some("PaymentCallback"), Answer::Json("CallbackResponse"),
            post(payments::payment_callback).layer(DefaultBodyLimit::max(crate::payment::MAX_CALLBACK_BYTES))),
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
        .layer(axum::middleware::from_fn(hardening::response_headers))
        .layer(from_fn_with_state(state.clone(), hardening::client_address))
        .with_state(state)
}
