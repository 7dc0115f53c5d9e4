//! The REST API (axum). `router(state)` is built apart from `serve(listener, state, shutdown)`, so tests can
//! drive the router without a socket or bind `127.0.0.1:0`. This first cut serves health, readiness and the
//! read side of `/admin/config`; writes, authentication and the change stream come with the admin API issue.

mod config;
mod error;
mod health;

pub use error::ApiError;

use crate::ledger::Ledger;
use axum::routing::get;
use axum::Router;
use std::future::Future;
use tokio::net::TcpListener;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub ledger: Ledger,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/admin/config", get(config::list))
        .route("/admin/config/{key}", get(config::get))
        .fallback(error::not_found)
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` completes, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
