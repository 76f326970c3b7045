//! The OpenAPI document, made from the route table (paths, methods, roles) and the
//! schemas of the types the handlers take and return.

use utoipa::OpenApi;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Ref, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, InfoBuilder, OpenApiBuilder, PathsBuilder, Required};

use super::route_table;

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
                "A violation event, schema_version 1 (see ticketing/src/event.rs)",
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
                op = op.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
                );
            }
        }
        if let Some(req) = spec.request {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", json_content(req))
                    .required(Some(Required::True))
                    .build(),
            ));
        }
        let mut ok = ResponseBuilder::new().description("Success");
        if let Some(resp) = spec.response {
            ok = ok.content("application/json", json_content(resp));
        }
        op = op.response("200", ok.build());
        for (code, what) in [
            ("400", "A malformed request; the error names what is wrong"),
            ("401", "Not authenticated"),
            (
                "403",
                "Authenticated, but the role may not use this route (or no CSRF token)",
            ),
            ("404", "Not found"),
            ("409", "The case is in a state that does not allow this"),
        ] {
            op = op.response(code, ResponseBuilder::new().description(what).build());
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
