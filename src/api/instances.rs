//! `GET /admin/instances` (viewer): the live instances of this store (heartbeats within the last few
//! seconds), each with its applied seq and head hash, and whether they all agree.

use super::extract::Caller;
use super::{ApiError, AppState};
use crate::instance;
use crate::model::{ErrorBody, InstanceEntry, InstanceList};
use axum::extract::State;
use axum::Json;

/// The live instances, with their applied seq and head hash (viewer).
#[utoipa::path(get, path = "/admin/instances", tag = "operations",
    responses((status = 200, description = "the instances and whether they agree", body = InstanceList),
        (status = 400, description = "an unknown query field", body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, _caller: Caller) -> Result<Json<InstanceList>, ApiError> {
    let store = state.ledger.store().clone();
    let since = instance::live_since(state.ledger.now());
    let beats = tokio::task::spawn_blocking(move || store.instances(since))
        .await
        .map_err(|_| ApiError::from(crate::error::Error::Closed))??;
    let me = state.instance.id.as_str();
    // Convergence counts every heartbeat, also one in a shape this version cannot read.
    let heads: std::collections::BTreeSet<String> =
        beats.iter().map(|b| format!("{}:{}", b.info["applied_seq"], b.info["head_hash"])).collect();
    let converged = heads.len() <= 1;
    let instances: Vec<InstanceEntry> = beats
        .into_iter()
        .filter_map(|b| {
            let Ok(info) = serde_json::from_value(b.info) else {
                tracing::warn!(instance = %b.id, "a heartbeat in a shape this version cannot read is not listed");
                return None;
            };
            let last_seen = cfgledger_events::Timestamp::from_micros(b.last_seen).to_string();
            Some(InstanceEntry { is_self: b.id == me, id: b.id, info, last_seen })
        })
        .collect();
    Ok(Json(InstanceList { instances, self_id: me.to_string(), converged, head: state.ledger.snapshot().head.seq }))
}
