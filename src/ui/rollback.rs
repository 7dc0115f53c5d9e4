//! `/ui/rollback`: not built yet (issue 16).

use super::page;
use super::session::Session;
use crate::api::AppState;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new().route("/ui/rollback", get(page))
}

async fn page(session: Session) -> Response {
    page::error_page(
        StatusCode::NOT_IMPLEMENTED,
        "Not built yet",
        "This page is not built yet; use the REST API or the CLI.",
        Some(&session),
    )
}
