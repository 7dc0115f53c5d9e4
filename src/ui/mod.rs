//! The admin web UI under `/ui`: server-rendered pages (maud), one more client of the use cases. Pages read
//! through `usecase` like the API's handlers do; every change goes through the REST API itself, from small
//! scripts (`assets/`) that `fetch` with the session cookie and its CSRF token, so the UI adds no rule of its
//! own and shows the API's own answers (a 422's message, a 409's conflict). `cfgledger:UI_ENABLED` (hot)
//! turns it off. Every response carries a strict Content-Security-Policy: scripts only from `/ui/assets`, no
//! inline script, no `eval`, no other origin.

pub mod assets;
mod audit;
mod instances;
pub mod page;
mod registry;
mod requests;
mod rollback;
mod rollouts;
pub mod session;
mod settings;
mod timetravel;
mod transfer;

use crate::api::AppState;
use crate::setting_keys;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// The largest form the UI's own routes (login, logout) read.
const FORM_LIMIT: usize = 16 * 1024;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The UI's routes, to be merged into the API's router.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/settings") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/settings") }))
        .route("/ui/assets/{name}", get(assets::serve))
        .route("/ui/login", get(session::login_form).post(session::login))
        .route("/ui/logout", axum::routing::post(session::logout))
        .route("/ui/settings", get(settings::page))
        .merge(audit::routes())
        .merge(timetravel::routes())
        .merge(rollback::routes())
        .merge(transfer::routes())
        .merge(registry::routes())
        .merge(instances::routes())
        .merge(requests::routes())
        .merge(rollouts::routes())
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(middleware::from_fn_with_state(state, guard))
}

/// Answers 404 when `UI_ENABLED` is false, refuses a state-changing request from another origin, and adds
/// the security headers to every answer.
async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !setting_keys::UI_ENABLED.get(&state.ledger.settings()) {
        return (StatusCode::NOT_FOUND, "the web UI is turned off (cfgledger:UI_ENABLED=false)").into_response();
    }
    if req.method() != Method::GET && req.method() != Method::HEAD && cross_site(&req) {
        return page::error_page(
            StatusCode::FORBIDDEN,
            "Refused: a form from another site",
            "This request came from another site's page. Open cfgledger's own login page and try again.",
            None,
        );
    }
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// Whether the browser says the request comes from another site (`Sec-Fetch-Site`, else an `Origin` that is
/// not this host). Login forms are guarded this way, since they come before any session and its CSRF token.
fn cross_site(req: &Request) -> bool {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (Some(origin), Some(host)) => origin.split_once("://").map(|(_, h)| h) != Some(host),
        _ => false,
    }
}
