//! `GET /admin/instances` (viewer): the live instances of this store (heartbeats within the last few
//! seconds), each with its applied seq and head hash, and whether they all agree.

use super::extract::Caller;
use super::{ApiError, AppState};
use crate::instance;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

pub async fn list(State(state): State<AppState>, _caller: Caller) -> Result<Json<Value>, ApiError> {
    let store = state.ledger.store().clone();
    let since = instance::live_since(state.ledger.now());
    let beats = tokio::task::spawn_blocking(move || store.instances(since))
        .await
        .map_err(|_| ApiError::from(crate::error::Error::Closed))??;
    let me = state.instance.id.as_str();
    let items: Vec<Value> = beats
        .iter()
        .map(|b| {
            let mut v = b.info.clone();
            v["id"] = json!(b.id);
            v["last_seen"] = json!(cfgledger_events::Timestamp::from_micros(b.last_seen).to_string());
            v["self"] = json!(b.id == me);
            v
        })
        .collect();
    let heads: std::collections::BTreeSet<String> =
        items.iter().map(|i| format!("{}:{}", i["applied_seq"], i["head_hash"])).collect();
    Ok(Json(json!({
        "instances": items,
        "self": me,
        "converged": heads.len() <= 1,
        "head": state.ledger.snapshot().head.seq,
    })))
}
