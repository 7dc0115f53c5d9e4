//! `/metrics` in Prometheus text format (the `metrics` facade with its Prometheus exporter), and the
//! middleware that times every request by route and status. Gauges that describe the log (head seq,
//! projection lag) are refreshed at scrape time; counters are bumped where things happen (rejected writes
//! in the error mapping, rate limits in the limiter, reloads in the tailer).

use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::time::Instant;

/// Installs the process-wide recorder; `None` if one is already installed (a second server in one
/// process shares the first one's).
pub fn install() -> Option<PrometheusHandle> {
    let buckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
    let builder = PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets).ok()?;
    let handle = builder.install_recorder().ok()?;
    describe();
    spawn_upkeep(handle.clone());
    Some(handle)
}

/// How often the recorder's histograms are drained into their buckets.
const UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Drains the recorder every [`UPKEEP`]. A histogram keeps every sample it is given until it is drained,
/// which `install_recorder` leaves to its caller and which otherwise happens only when `/metrics` is
/// scraped: a server nobody scraped grew by every request's latency (the soak of a 1,000,000-event store
/// measured about 190 KiB/s at 8,000 requests/s). Runs on a thread of its own, since the recorder may be
/// installed before or outside a runtime.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new().name("cfgledger-metrics-upkeep".into()).spawn(move || loop {
        std::thread::sleep(UPKEEP);
        handle.run_upkeep();
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the metrics upkeep; histograms are drained only when /metrics is scraped");
    }
}

fn describe() {
    metrics::describe_histogram!("cfgledger_http_request_duration_seconds", "HTTP request latency by route and status");
    metrics::describe_counter!("cfgledger_http_requests_total", "HTTP requests by route and status");
    metrics::describe_gauge!("cfgledger_head_seq", "The seq of the log's head in the store");
    metrics::describe_gauge!("cfgledger_applied_seq", "The seq this instance's projection has applied");
    metrics::describe_gauge!("cfgledger_projection_lag", "Events in the store that this instance has not applied");
    metrics::describe_counter!("cfgledger_reload_events_total", "Events applied to the live projection");
    metrics::describe_counter!("cfgledger_reload_failures_total", "Failed attempts to catch up with the log");
    metrics::describe_histogram!(
        "cfgledger_change_propagation_seconds",
        "Time from an event's commit to this instance publishing it"
    );
    metrics::describe_counter!("cfgledger_rejected_writes_total", "Refused writes by reason");
    metrics::describe_counter!("cfgledger_rate_limited_total", "Writes refused by the per-principal rate limit");
    metrics::describe_gauge!(
        "cfgledger_integrity_verified_seq",
        "The seq the background integrity check has verified up to"
    );
    metrics::describe_gauge!("cfgledger_watch_streams", "Watch streams open on this instance");
    metrics::describe_gauge!("cfgledger_integrity_damaged", "1 once the integrity check found the log damaged");
    metrics::describe_gauge!("cfgledger_integrity_first_bad_seq", "The first seq of the log that does not verify");
    metrics::describe_gauge!("cfgledger_integrity_bad_checkpoints", "Checkpoints that do not match the log");
    metrics::describe_counter!("cfgledger_integrity_passes_total", "Complete passes of the background integrity check");
    metrics::describe_counter!(
        "cfgledger_checkpoints_skipped_total",
        "Checkpoints skipped at a read because they did not check out"
    );
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses(
        (status = 200, description = "the metrics", content_type = "text/plain", body = String),
        (status = 404, description = "metrics are not enabled in this process", body = crate::model::ErrorBody),
    ))]
pub async fn render(State(state): State<AppState>) -> Response {
    let Some(handle) = state.metrics.as_ref() else {
        return super::ApiError::not_found("metrics are not enabled in this process").into_response();
    };
    let ledger = state.ledger.clone();
    let applied = ledger.snapshot().head.seq;
    if let Ok(Ok(head)) = tokio::task::spawn_blocking(move || ledger.store().head()).await {
        metrics::gauge!("cfgledger_head_seq").set(crate::gauge(head.seq));
        metrics::gauge!("cfgledger_projection_lag").set(crate::gauge(head.seq.saturating_sub(applied)));
    }
    metrics::gauge!("cfgledger_applied_seq").set(crate::gauge(applied));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
}

/// Records the latency and status of every request under its route pattern (not the raw path, which
/// would make one series per key).
pub async fn track<F: std::future::Future<Output = Response>>(
    req: Request,
    next: impl FnOnce(Request) -> F,
) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let started = Instant::now();
    let response = next(req).await;
    let status = response.status().as_u16();
    let (histogram, counter) = series(route.as_ref().map_or("unmatched", MatchedPath::as_str), &method, status);
    histogram.record(started.elapsed().as_secs_f64());
    counter.increment(1);
    response
}

type Series = (metrics::Histogram, metrics::Counter);
/// The kept series: by route, then by method and status.
type Kept = std::collections::HashMap<String, std::collections::HashMap<(axum::http::Method, u16), Series>>;

/// The handles of the series of `route`, `method` and `status`, registered once: registering costs a lookup
/// in the recorder by labels built afresh, which every request paid. Handles belong to the recorder
/// installed when they are made, which `serve` does before it answers anything. Routes and statuses are few;
/// a method outside the standard ones is not kept, so a client cannot grow this map.
fn series(route: &str, method: &axum::http::Method, status: u16) -> Series {
    use axum::http::Method;
    use std::sync::{LazyLock, RwLock};
    static KEPT: LazyLock<RwLock<Kept>> = LazyLock::new(RwLock::default);
    let register = || {
        let labels = [("route", route.to_string()), ("method", method.to_string()), ("status", status.to_string())];
        (
            metrics::histogram!("cfgledger_http_request_duration_seconds", &labels),
            metrics::counter!("cfgledger_http_requests_total", &labels),
        )
    };
    let standard =
        [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS];
    if !standard.contains(method) {
        return register();
    }
    let key = (method.clone(), status);
    if let Some(kept) = KEPT.read().ok().and_then(|m| m.get(route).and_then(|r| r.get(&key)).cloned()) {
        return kept;
    }
    let made = register();
    if let Ok(mut kept) = KEPT.write() {
        kept.entry(route.to_string()).or_default().insert(key, made.clone());
    }
    made
}
