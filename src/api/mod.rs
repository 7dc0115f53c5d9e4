//! The REST API (axum). `router(state)` is built apart from `serve(listener, state, shutdown)`, so tests can
//! drive the router without a socket or bind `127.0.0.1:0`. One file per handler family; every failure
//! goes through [`ApiError`]'s one `IntoResponse`, so every error has the same JSON shape.

mod audit;
mod config;
mod error;
mod extract;
mod governance;
mod health;
mod history;
mod instances;
mod limit;
pub mod login;
pub mod metrics;
mod openapi;
mod registry_transfer;
mod render;
mod resources;
mod rollouts;
mod settings_transfer;
pub mod tls;
pub mod tokens;
mod watch;
pub mod watch_hub;

pub use error::ApiError;
pub use extract::{Caller, ClientAddr, RequestId};
pub use limit::WriteLimiter;

use crate::auth::TokenKeys;
use crate::ledger::Ledger;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How tokens are checked, fixed at start (`JWT_SECRET_KEY`, `JWT_ALGORITHM`, `TOKEN_EXPIRY` and
/// `AUTH_REQUIRED` are restart-required keys), but for the key ring, which follows the log's rotations.
pub struct AuthConfig {
    /// The store's base key (`JWT_SECRET_KEY`): it signs until the first rotation.
    pub keys: TokenKeys,
    /// The key ring as of the last rotation this instance applied (`AppState::key_ring`).
    pub ring: arc_swap::ArcSwapOption<crate::auth::KeyRing>,
    /// False only for local development (`AUTH_REQUIRED=false`): requests without a token act as
    /// `anonymous` with every right.
    pub required: bool,
    /// Lifetime of tokens issued by `POST /auth/login`.
    pub token_ttl_secs: u64,
    /// Web UI sessions ended by a logout.
    pub revoked: crate::auth::Revoked,
}

/// What every handler can reach: one shared [`Shared`], so that the clone each extractor and middleware
/// takes is one reference count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    pub ledger: Ledger,
    pub auth: Arc<AuthConfig>,
    pub limiter: Arc<WriteLimiter>,
    /// Limits on login attempts and concurrent password checks.
    pub login_limits: Arc<login::LoginLimits>,
    pub metrics: Option<PrometheusHandle>,
    /// Becomes true when the server starts shutting down, so that open watch streams end.
    pub closing: tokio::sync::watch::Receiver<bool>,
    pub sse_keepalive: Duration,
    /// Longest a read may take before it is answered 503.
    pub request_timeout: Duration,
    /// This process, as `/ready` and `/admin/instances` name it.
    pub instance: Arc<crate::instance::Instance>,
    /// What every watch stream shares: the newest records, verified and presented once.
    pub watch_hub: Arc<watch_hub::Hub>,
    /// Agents' and clients' heartbeats, stored in groups.
    pub beats: crate::instance::BeatRecorder,
}

pub fn router(state: AppState) -> Router {
    let timeout = state.request_timeout;
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(metrics::render))
        .route("/openapi.json", get(openapi::document))
        .route("/auth/login", post(login::login))
        .route("/admin/config", get(config::list))
        .route("/admin/config/export", get(settings_transfer::export))
        .route("/admin/config/render", get(render::render))
        .route("/admin/config/import", post(settings_transfer::import))
        .route("/admin/config/audit", get(audit::audit))
        .route("/admin/config/diff", get(history::diff))
        .route("/admin/config/rollback", post(history::rollback))
        .route("/admin/config/revert", post(history::revert))
        .route("/admin/config/{key}/history", get(history::setting_history))
        .route("/admin/verify", get(history::verify))
        .route("/admin/config/watch", get(watch::watch))
        .route("/admin/config/{key}", get(config::get).put(config::put).delete(config::delete))
        .route("/admin/instances", get(instances::list))
        .route("/admin/instances/heartbeat", post(instances::heartbeat))
        .route("/export", get(registry_transfer::export))
        .route("/export/selective", post(registry_transfer::selective))
        .route("/import", post(registry_transfer::import))
        .route("/import/status", get(registry_transfer::statuses))
        .route("/import/status/{id}", get(registry_transfer::status))
        .route("/admin/requests", get(governance::list).post(governance::propose))
        .route("/admin/requests/{id}", get(governance::get).put(governance::edit))
        .route("/admin/requests/{id}/approve", post(governance::approve))
        .route("/admin/requests/{id}/reject", post(governance::reject))
        .route("/admin/requests/{id}/withdraw", post(governance::withdraw))
        .route("/admin/policy", get(governance::policy))
        .route("/admin/rollouts", get(rollouts::list).post(rollouts::start))
        .route("/admin/rollouts/{id}", get(rollouts::status))
        .route("/admin/rollouts/{id}/advance", post(rollouts::advance))
        .route("/admin/rollouts/{id}/rollback", post(rollouts::rollback))
        .merge(resources::routes())
        .merge(crate::ui::routes(state.clone()))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        // REQUEST_SIZE_LIMIT (a hot setting) is enforced by the JSON extractor instead.
        .layer(DefaultBodyLimit::disable())
        // One layer for the three, since each layer clones the routes beneath it on every request.
        .layer(middleware::from_fn(move |req: Request, next: Next| around(timeout, req, next)))
        .with_state(state)
}

/// What every request goes through: its id ([`request_id`]), its metrics ([`metrics::track`]), and the
/// read timeout ([`with_timeout`]), in that order from the outside in.
async fn around(timeout: Duration, req: Request, next: Next) -> Response {
    request_id(req, |req| metrics::track(req, |req| with_timeout(timeout, req, next))).await
}

/// Serves `router(state)` on `listener` until `shutdown` completes, then ends watch streams (through
/// `closing`) and drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    closing: tokio::sync::watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let listener = listener.tap_io(|tcp| no_delay(tcp));
    axum::serve(listener, app).with_graceful_shutdown(closing_after(shutdown, closing)).await
}

/// Turns Nagle's algorithm off on an accepted connection. A watch stream writes each event as it comes; with
/// Nagle on, an event written while the previous one is still unacknowledged waited for the client's
/// delayed ACK, 40 ms on Linux: once in every load bench run, an event reached its watcher 38-40 ms after
/// its write was acknowledged.
fn no_delay(tcp: &tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
    }
}

/// [`serve`] over HTTPS: each connection's TLS handshake completes before axum sees it, and every request
/// carries [`tls::ServedOverTls`].
pub async fn serve_tls(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    state: AppState,
    closing: tokio::sync::watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let app = router(state)
        .layer(axum::Extension(tls::ServedOverTls))
        .layer(middleware::map_response(tls::strict_transport_security))
        .into_make_service_with_connect_info::<SocketAddr>();
    // The tap does nothing to a connection: a tapped listener is what axum gives the peer's `SocketAddr`
    // (`ConnectInfo`, which the audit trail and the rate limits read) for a listener of another crate.
    let listener = tls::TlsListener::new(listener, config)?.tap_io(|_| {});
    axum::serve(listener, app).with_graceful_shutdown(closing_after(shutdown, closing)).await
}

/// `shutdown`, then `closing` set, so that open watch streams end and the drain can finish.
async fn closing_after(shutdown: impl Future<Output = ()>, closing: tokio::sync::watch::Sender<bool>) {
    shutdown.await;
    closing.send_replace(true);
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Gives each request an id (the client's `X-Request-Id` if it is short printable ASCII, else a new
/// one), available to handlers and the audit trail, and echoes it in the response.
async fn request_id<F: Future<Output = Response>>(mut req: Request, next: impl FnOnce(Request) -> F) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id);
    let mut response = tracing::Instrument::instrument(next(req), span.clone()).await;
    let _entered = span.enter();
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    tracing::debug!(status = response.status().as_u16(), "request served");
    response
}

/// Answers 503 when a read takes longer than `limit`. Writes are not cut short here: once a change is queued
/// for the writer it may commit, and a client told "timed out, retry" would apply it twice. Their body is
/// read under the same limit (`ApiJson`), and their append is bounded by the store's busy timeout, which
/// fails with nothing written. A watch stream is not cut: its response is returned at once.
async fn with_timeout(limit: Duration, req: Request, next: Next) -> Response {
    if !matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD) {
        return next.run(req).await;
    }
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            let e = ApiError::new(crate::error::ErrorCode::Timeout, "the request took too long; retry");
            axum::response::IntoResponse::into_response(e)
        }
    }
}
