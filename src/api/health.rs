//! `/health` (the process is alive) and `/ready` (the store answers and the projection has caught up).

use super::AppState;
use crate::model::{Health, Ready};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

/// The process is alive.
#[utoipa::path(get, path = "/health", tag = "operations", security(()),
    responses((status = 200, description = "alive", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok".to_string() })
}

/// The store answers and this instance has applied its head (head, applied, lag).
#[utoipa::path(get, path = "/ready", tag = "operations", security(()),
    responses(
        (status = 200, description = "ready", body = Ready),
        (status = 503, description = "catching up, or degraded: the store is unreachable and reads are served from memory", body = Ready),
    ))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Ready>) {
    let ledger = state.ledger.clone();
    let head = tokio::task::spawn_blocking(move || ledger.store().head()).await;
    let applied = state.ledger.snapshot().head;
    let mut ready = Ready {
        status: "degraded".to_string(),
        head: None,
        applied: applied.seq,
        lag: None,
        head_hash: applied.hash.to_hex(),
        instance: state.instance.id.clone(),
        error: None,
    };
    match head {
        Ok(Ok(head)) => {
            let lag = head.seq.saturating_sub(applied.seq);
            ready.status = if lag == 0 { "ready" } else { "catching_up" }.to_string();
            ready.head = Some(head.seq);
            ready.lag = Some(lag);
            let status = if lag == 0 { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
            (status, Json(ready))
        }
        _ => {
            ready.error = Some(
                "the store is unreachable: reads are served from memory, writes fail until it is back".to_string(),
            );
            (StatusCode::SERVICE_UNAVAILABLE, Json(ready))
        }
    }
}
