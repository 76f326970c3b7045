//! The officers' and investigators' web app: pages by role. Each page is a small
//! server-rendered shell; its data comes from the JSON API, through the same role checks
//! and audit as any other client, so the browser can see nothing the API would refuse.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use maud::{DOCTYPE, Markup, html};

use super::AppState;
use super::auth::{ANYONE, Caller, caller_of, client_of};
use super::error::ApiError;
use super::pages;
use crate::auth::Role;

const APP_JS: &str = include_str!("web/app.js");
const APP_CSS: &str = include_str!("web/app.css");

const REVIEWERS: &[Role] = &[Role::Officer];
const CASE_READERS: &[Role] = &[Role::Officer, Role::Investigator, Role::Admin];
const SEARCHERS: &[Role] = &[Role::Investigator, Role::Officer, Role::Admin];
const CAMERA_WATCHERS: &[Role] = &[
    Role::Officer,
    Role::Investigator,
    Role::Operator,
    Role::Admin,
];
const OPERATIONS: &[Role] = &[Role::Officer, Role::Operator, Role::Admin];

/// A page: its path, who may open it, and its title in the navigation.
pub struct PageSpec {
    pub path: &'static str,
    pub roles: &'static [Role],
    pub title: &'static str,
    /// Shown in the navigation (pages reached from another, like a case, are not).
    pub nav: bool,
}

pub const PAGES: &[PageSpec] = &[
    PageSpec {
        path: "/review",
        roles: REVIEWERS,
        title: "Review queue",
        nav: true,
    },
    PageSpec {
        path: "/search",
        roles: SEARCHERS,
        title: "Plate search",
        nav: true,
    },
    PageSpec {
        path: "/cameras",
        roles: CAMERA_WATCHERS,
        title: "Cameras",
        nav: true,
    },
    PageSpec {
        path: "/operations",
        roles: OPERATIONS,
        title: "Operations",
        nav: true,
    },
    PageSpec {
        path: "/fleet",
        roles: OPERATIONS,
        title: "Fleet",
        nav: true,
    },
    PageSpec {
        path: "/cases/{id}",
        roles: CASE_READERS,
        title: "Case",
        nav: false,
    },
];

/// Where each role starts.
fn home(role: Role) -> Option<&'static str> {
    match role {
        Role::Officer => Some("/review"),
        Role::Investigator => Some("/search"),
        Role::Operator => Some("/cameras"),
        Role::Admin => Some("/operations"),
        Role::Agency => None,
    }
}

pub(super) fn pages(state: AppState) -> Router<AppState> {
    let mut router = Router::new()
        .route("/login", get(login_page))
        .route("/assets/{file}", get(asset))
        .route(
            "/",
            get(start_page).layer(from_fn_with_state(
                state.clone(),
                |s: State<AppState>, req: Request, next: Next| page_gate(s, ANYONE, req, next),
            )),
        );
    for page in PAGES {
        let roles = page.roles;
        let title = page.title;
        router = router.route(
            page.path,
            get(move |Extension(caller): Extension<Caller>| async move {
                Html(shell(title, &caller).into_string())
            })
            .layer(from_fn_with_state(
                state.clone(),
                move |s: State<AppState>, req: Request, next: Next| page_gate(s, roles, req, next),
            )),
        );
    }
    router
}

/// Like the API's check, but a person without a session is sent to the login page (and
/// back afterwards), and one in the wrong role is told so in a page.
async fn page_gate(
    State(state): State<AppState>,
    roles: &'static [Role],
    mut req: Request,
    next: Next,
) -> Response {
    let client = client_of(req.extensions().get::<ConnectInfo<SocketAddr>>());
    let headers = req.headers().clone();
    let mut resp = match caller_of(&state, roles, &headers, true, client).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(ApiError::Unauthenticated(_)) => {
            let back = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            Redirect::to(&format!("/login?next={}", pages::urlencode(back))).into_response()
        }
        Err(ApiError::Forbidden(message)) => (
            StatusCode::FORBIDDEN,
            Html(message_page("Not for your role", &message).into_string()),
        )
            .into_response(),
        Err(e) => e.into_response(),
    };
    secure_page_headers(resp.headers_mut());
    resp
}

/// Pages run only our own script and styles, and are never framed by another site.
fn secure_page_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; media-src 'self'; object-src 'none'; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
}

async fn start_page(Extension(caller): Extension<Caller>) -> Response {
    match home(caller.user.role) {
        Some(path) => Redirect::to(path).into_response(),
        None => Html(
            message_page(
                "No pages for this role",
                "Agency accounts use the API (see /api/openapi.json).",
            )
            .into_string(),
        )
        .into_response(),
    }
}

async fn login_page() -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head { (head("Log in")) }
            body.login data-page="login" {
                main {
                    h1 { "Vigil" }
                    p.sub { "Traffic violation review — Công an tỉnh" }
                    form #login {
                        label { "User name" input #username name="username" autocomplete="username" required autofocus; }
                        label { "Password" input #password name="password" type="password" autocomplete="current-password" required; }
                        button type="submit" { "Log in" }
                        p #status role="status" aria-live="polite" {}
                    }
                }
                script src="/assets/app.js" {}
            }
        }
    };
    let mut resp = Html(page.into_string()).into_response();
    secure_page_headers(resp.headers_mut());
    resp
}

/// The page's code and styles: no data in them, so they need no session (the login
/// page uses them too).
async fn asset(Path(file): Path<String>) -> Response {
    let (kind, body) = match file.as_str() {
        "app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "app.css" => ("text/css; charset=utf-8", APP_CSS),
        _ => return ApiError::NotFound(format!("no asset {file}")).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " — Vigil" }
        link rel="stylesheet" href="/assets/app.css";
    }
}

fn shell(title: &str, caller: &Caller) -> Markup {
    let role = caller.user.role;
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body data-role=(role.as_str()) {
                header.top {
                    a.brand href="/" { "Vigil" }
                    nav {
                        @for page in PAGES.iter().filter(|p| p.nav && p.roles.contains(&role)) {
                            a href=(page.path) aria-current=[(page.title == title).then_some("page")] { (page.title) }
                        }
                    }
                    span.who { (caller.user.username) " · " (role.as_str()) }
                    button #logout type="button" { "Log out" }
                }
                main #app data-page=(page_name(title)) {}
                p #status role="status" aria-live="polite" {}
                script src="/assets/app.js" {}
            }
        }
    }
}

fn page_name(title: &str) -> &'static str {
    match title {
        "Review queue" => "review",
        "Plate search" => "search",
        "Cameras" => "cameras",
        "Operations" => "operations",
        "Fleet" => "fleet",
        _ => "case",
    }
}

fn message_page(title: &str, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body {
                main.message {
                    h1 { (title) }
                    p { (message) }
                    p { a href="/login" { "Log in as someone else" } }
                }
            }
        }
    }
}
