//! `/health` (the process is alive) and `/ready` (the store answers and the projection has caught up).

use super::AppState;
use crate::model::{Health, Ready};
use crate::setting_keys;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

/// The process is alive.
#[utoipa::path(get, path = "/health", tag = "operations", security(()),
    responses((status = 200, description = "alive", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok".to_string() })
}

/// Whether a load balancer may send this instance traffic: the store answers and takes writes (not
/// unreachable, not out of disk, not failing appends), the log passed its integrity check, and this
/// instance is within `READY_MAX_LAG` events and `READY_MAX_LAG_TIME` of the head.
#[utoipa::path(get, path = "/ready", tag = "operations", security(()),
    responses(
        (status = 200, description = "ready", body = Ready),
        (status = 503, description = "not ready: `status` and `reason` say why (catching_up, verifying, damaged, disk_full, writes_failing, degraded)", body = Ready),
    ))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Ready>) {
    let ledger = state.ledger.clone();
    let probe = tokio::task::spawn_blocking(move || probe(&ledger)).await;
    let applied = state.ledger.snapshot().head;
    let settings = state.ledger.settings();
    let integrity = state.ledger.integrity().status();
    let mut ready = Ready {
        status: "degraded".to_string(),
        reason: None,
        head: None,
        applied: applied.seq,
        lag: None,
        lag_ms: None,
        head_hash: applied.hash.to_hex(),
        instance: state.instance.id.clone(),
        integrity,
        free_space_mb: None,
        error: None,
    };
    let Ok(Probe { head: Ok(head), oldest_unapplied, free_space }) = probe else {
        let why = "the store is unreachable: reads are served from memory, writes fail until it is back";
        ready.reason = Some(why.to_string());
        ready.error = Some(why.to_string());
        return (StatusCode::SERVICE_UNAVAILABLE, Json(ready));
    };
    let lag = head.seq.saturating_sub(applied.seq);
    let lag_ms = oldest_unapplied.map(|t| {
        let micros = state.ledger.now().as_micros().saturating_sub(t.as_micros());
        u64::try_from(micros / 1000).unwrap_or(0)
    });
    ready.head = Some(head.seq);
    ready.lag = Some(lag);
    ready.lag_ms = lag_ms;
    ready.free_space_mb = free_space.map(|b| b / MIB);
    let min_free = u64::try_from(setting_keys::READY_MIN_FREE_SPACE.get(&settings)).unwrap_or(0);
    let max_lag = u64::try_from(setting_keys::READY_MAX_LAG.get(&settings)).unwrap_or(0);
    let max_lag_ms = setting_keys::READY_MAX_LAG_TIME.get(&settings).0;
    let not_ready = match (&ready.integrity, state.ledger.write_failure()) {
        (i, _) if i.state == "damaged" => Some((
            "damaged",
            format!(
                "the log is damaged at seq {}: {}; writes are refused (docs/recovery.md)",
                i.first_bad_seq.unwrap_or_default(),
                i.damage.as_deref().unwrap_or_default()
            ),
        )),
        (i, _) if i.state == "verifying" => Some((
            "verifying",
            format!(
                "the integrity check at start has verified seq {} of {}; reads are served, writes wait for it",
                i.verified_seq, head.seq
            ),
        )),
        _ if free_space.is_some_and(|b| b < min_free.saturating_mul(MIB)) => Some((
            "disk_full",
            format!(
                "{} MiB free on the store's file system, below READY_MIN_FREE_SPACE ({min_free} MiB): writes would fail",
                free_space.unwrap_or_default() / MIB
            ),
        )),
        (_, Some((ago, _))) if ago < WRITE_FAILURE_HOLD => Some((
            "writes_failing",
            // The store's own words stay in the server's log: this answer is public.
            format!("the store refused an append {} s ago; the server's log says why", ago.as_secs()),
        )),
        _ if lag > max_lag || lag_ms.is_some_and(|ms| ms > max_lag_ms) => Some((
            "catching_up",
            format!(
                "{lag} events behind the head (READY_MAX_LAG {max_lag}), the oldest appended {} ms ago (READY_MAX_LAG_TIME {max_lag_ms} ms)",
                lag_ms.unwrap_or_default()
            ),
        )),
        _ => None,
    };
    match not_ready {
        Some((status, reason)) => {
            ready.status = status.to_string();
            ready.reason = Some(reason);
            (StatusCode::SERVICE_UNAVAILABLE, Json(ready))
        }
        None => {
            ready.status = "ready".to_string();
            (StatusCode::OK, Json(ready))
        }
    }
}

const MIB: u64 = 1024 * 1024;

/// How long a refused append keeps an instance out of rotation (a success ends it sooner).
const WRITE_FAILURE_HOLD: std::time::Duration = std::time::Duration::from_secs(10);

/// What `/ready` reads from the store, off the async workers.
struct Probe {
    head: Result<cfgledger_events::Head, crate::store::StoreError>,
    /// When the oldest event this instance has not applied was appended.
    oldest_unapplied: Option<cfgledger_events::Timestamp>,
    free_space: Option<u64>,
}

fn probe(ledger: &crate::Ledger) -> Probe {
    let store = ledger.store();
    let head = store.head();
    let applied = ledger.snapshot().head.seq;
    let oldest_unapplied = match &head {
        Ok(h) if h.seq > applied => store.read_after(applied, 1).ok().and_then(|r| r.first().map(|r| r.occurred_at)),
        _ => None,
    };
    Probe { head, oldest_unapplied, free_space: store.free_space() }
}
