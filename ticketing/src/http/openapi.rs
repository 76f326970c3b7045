//! The OpenAPI document, made from the route table (paths, methods, roles) and the
//! schemas of the types the handlers take and return.

use utoipa::OpenApi;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, Ref, SchemaFormat, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, InfoBuilder, OpenApiBuilder, PathsBuilder, Required};

use super::{Answer, route_table};

#[derive(OpenApi)]
#[openapi(components(schemas(
    crate::db::CaseSummary,
    crate::db::CaseDetail,
    crate::db::HistoryEntry,
    crate::db::CaseEventRef,
    crate::lifecycle::CaseState,
    crate::lifecycle::RejectReason,
    crate::notice::Notice,
    crate::notice::PublicationRecord,
    crate::notice::PublishedViolation,
    crate::notice::Driver,
    crate::owner::Owner,
    crate::deadlines::Overdue,
    crate::audit::AuditEntry,
    crate::auth::Role,
    crate::auth::User,
    crate::sightings::Found,
    crate::sightings::SightingView,
    super::schema::PlateColourSchema,
    super::schema::ViolationKindSchema,
    crate::cameras::CameraHealth,
    super::sightings::Footage,
    super::footage::ExportRequest,
    super::footage::ExportResponse,
    super::jobs::JobRequest,
    super::jobs::JobSubmitted,
    super::jobs::LibraryRecording,
    super::sightings::SightingRecorded,
    super::sessions::LoginRequest,
    super::sessions::SessionInfo,
    super::events::IntakeResponse,
    super::cases::RejectRequest,
    super::cases::PlateRequest,
    super::notices::PaymentRequest,
    super::users::NewUser,
    super::users::TokenRequest,
    super::users::TokenResponse,
    super::users::RevokeRequest,
    super::users::Revoked,
    crate::auth::TokenInfo,
    crate::notice::PaymentClaim,
    crate::payment::PaymentCallback,
    super::payments::CallbackResponse,
    crate::db::HeldPayment,
    super::payments::PayOrder,
    super::citizens::ClaimRecorded,
    super::citizens::CitizenNotice,
    super::cases::Stats,
    super::users::Disabled,
    super::evidence::UploadResponse,
    super::error::ErrorBody,
    vigil_fleet::FleetView,
    vigil_fleet::view::WorkerView,
    vigil_fleet::view::CameraView,
    vigil_fleet::view::CameraState,
    vigil_fleet::view::QueueView,
    vigil_fleet::Move,
    vigil_fleet::MoveReason,
    vigil_fleet::jobs::Progress,
    vigil_fleet::jobs::Job,
    vigil_fleet::jobs::Outcome,
)))]
struct Schemas;

fn method(m: &axum::http::Method) -> HttpMethod {
    match *m {
        axum::http::Method::POST => HttpMethod::Post,
        axum::http::Method::PUT => HttpMethod::Put,
        axum::http::Method::DELETE => HttpMethod::Delete,
        axum::http::Method::PATCH => HttpMethod::Patch,
        _ => HttpMethod::Get,
    }
}

fn json_list(schema: &str) -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(
            ArrayBuilder::new().items(Ref::from_schema_name(schema)),
        ))
        .build()
}

/// Bytes of a type other than JSON: a file, a page, a spreadsheet.
fn bytes() -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary))),
        ))
        .build()
}

/// The success statuses of an answer, with what each carries.
fn success(answer: Answer) -> Vec<(&'static str, utoipa::openapi::Response)> {
    let ok = || ResponseBuilder::new().description("Success");
    match answer {
        Answer::Json(s) => vec![(
            "200",
            ok().content("application/json", json_content(s)).build(),
        )],
        Answer::List(s) => vec![(
            "200",
            ok().content("application/json", json_list(s)).build(),
        )],
        Answer::Created(s) => vec![
            (
                "201",
                ResponseBuilder::new()
                    .description("Made now")
                    .content("application/json", json_content(s))
                    .build(),
            ),
            (
                "200",
                ResponseBuilder::new()
                    .description("It was there already (the same request again)")
                    .content("application/json", json_content(s))
                    .build(),
            ),
        ],
        Answer::Lines(s) => vec![(
            "200",
            ok().description("JSON lines, one per entry")
                .content("application/x-ndjson", json_content(s))
                .build(),
        )],
        Answer::File => {
            let file = |d: &str| {
                let mut r = ResponseBuilder::new().description(d);
                for kind in ["image/jpeg", "video/mp4", "application/octet-stream"] {
                    r = r.content(kind, bytes());
                }
                // A package's manifest.json and signature.json.
                r = r.content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                        .build(),
                );
                r.build()
            };
            vec![
                ("200", file("The file, as its type")),
                ("206", file("The byte range asked for (Range:)")),
                (
                    "416",
                    ResponseBuilder::new()
                        .description("A range outside the file")
                        .build(),
                ),
            ]
        }
        Answer::Csv => vec![("200", ok().content("text/csv", bytes()).build())],
        Answer::Metrics => vec![("200", ok().content("text/plain", bytes()).build())],
        Answer::Page => vec![("200", ok().content("text/html", bytes()).build())],
        Answer::PageOrJson(s) => vec![(
            "200",
            ok().content("text/html", bytes())
                .content("application/json", json_content(s))
                .build(),
        )],
        Answer::Redirect(s) => vec![
            (
                "303",
                ResponseBuilder::new()
                    .description("Go to the Location given")
                    .build(),
            ),
            (
                "200",
                ok().description("With Accept: application/json: where to go")
                    .content("application/json", json_content(s))
                    .build(),
            ),
        ],
        Answer::NoContent => vec![("204", ResponseBuilder::new().description("Done").build())],
        Answer::Document => vec![(
            "200",
            ok().content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                    .build(),
            )
            .build(),
        )],
    }
}

fn json_content(schema: &str) -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(schema)))
        .build()
}

pub fn openapi_document() -> serde_json::Value {
    let mut components = Schemas::openapi().components.unwrap_or_default();
    // ViolationEvent lives in the pipeline contract; described here as an object.
    components.schemas.insert(
        "ViolationEvent".into(),
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "A violation event, schema_version 2 (see core/src/event.rs and docs/reference/event-schema.md)",
            ))
            .into(),
    );
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An API token from `vigil token create` or POST /api/users/{username}/tokens",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            super::SESSION_COOKIE,
            "Set by POST /api/login; state-changing requests also send X-CSRF-Token",
        ))),
    );
    let mut paths = PathsBuilder::new();
    for (spec, _) in route_table() {
        let mut op = OperationBuilder::new()
            .summary(Some(spec.summary))
            .operation_id(Some(format!(
                "{}_{}",
                spec.method.as_str().to_lowercase(),
                spec.path
                    .trim_start_matches('/')
                    .replace(['/', '.'], "_")
                    .replace(['{', '}'], "")
            )));
        if spec.roles.is_empty() {
            op = op.description(Some(
                "Public: checks its caller itself (credentials, or plate and notice code).",
            ));
        } else {
            let roles: Vec<&str> = spec.roles.iter().map(|r| r.as_str()).collect();
            op = op
                .description(Some(format!("Roles: {}.", roles.join(", "))))
                .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
                .security(SecurityRequirement::new("session", Vec::<String>::new()));
        }
        for segment in spec.path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                // Cases and sightings are numbered; cameras, events, files, notices and
                // users are named.
                let numbered = name == "id"
                    && (spec.path.starts_with("/api/cases/")
                        || spec.path.starts_with("/api/sightings/"));
                let schema = if numbered {
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                } else {
                    ObjectBuilder::new().schema_type(Type::String)
                };
                op = op.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(schema)),
                );
            }
        }
        for p in spec.query.map(|q| q()).unwrap_or_default() {
            op = op.parameter(p);
        }
        if let Some(req) = spec.request {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", json_content(req))
                    .required(Some(Required::True))
                    .build(),
            ));
        }
        for (code, response) in success(spec.answer) {
            op = op.response(code, response);
        }
        let changes = spec.method != axum::http::Method::GET;
        let mut errors = vec![
            ("400", "A malformed request; the error names what is wrong"),
            (
                "401",
                "Not authenticated (or, on public routes, wrong credentials)",
            ),
            ("404", "Not found"),
            ("500", "An internal error; the detail is in the server log"),
            (
                "503",
                "Something the service needs is not answering; try again later",
            ),
        ];
        if !spec.roles.is_empty() {
            errors.push((
                "403",
                "Authenticated, but the role may not use this route (or no CSRF token)",
            ));
        } else {
            errors.push(("429", "Too many attempts from this address; wait a minute"));
        }
        if changes {
            errors.push((
                "409",
                "What is asked contradicts what is recorded (a case's state, a paid notice)",
            ));
        }
        if spec.request.is_some() || spec.method == axum::http::Method::PUT {
            errors.push(("408", "The request's body did not arrive in time"));
            errors.push(("413", "The request's body is larger than this route takes"));
        }
        for (code, what) in errors {
            op = op.response(
                code,
                ResponseBuilder::new()
                    .description(what)
                    .content("application/json", json_content("ErrorBody"))
                    .build(),
            );
        }
        paths = paths.path(spec.path, PathItem::new(method(&spec.method), op.build()));
    }
    let doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Vigil ticketing API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("Violation cases from detection to a paid ticket."))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components))
        .build();
    serde_json::to_value(&doc).unwrap_or_default()
}

pub(super) async fn openapi_json(
    axum::Extension(_caller): axum::Extension<super::Caller>,
) -> axum::Json<serde_json::Value> {
    axum::Json(openapi_document())
}
