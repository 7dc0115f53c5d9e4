//! `/health` (the process is alive) and `/ready` (the store answers and the projection has caught up).

use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let ledger = state.ledger.clone();
    let head = tokio::task::spawn_blocking(move || ledger.store().head()).await;
    let applied = state.ledger.snapshot().head;
    match head {
        Ok(Ok(head)) => {
            let lag = head.seq.saturating_sub(applied.seq);
            let status = if lag == 0 { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
            let body = json!({
                "status": if lag == 0 { "ready" } else { "catching_up" },
                "head": head.seq,
                "applied": applied.seq,
                "lag": lag,
                "head_hash": applied.hash.to_hex(),
                "instance": state.instance.id,
            });
            (status, Json(body))
        }
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "degraded",
                "applied": applied.seq,
                "head_hash": applied.hash.to_hex(),
                "instance": state.instance.id,
                "error": "the store is unreachable: reads are served from memory, writes fail until it is back",
            })),
        ),
    }
}
