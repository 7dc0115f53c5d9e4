//! `GET /admin/instances` (viewer): the live instances of this store (heartbeats within the last few
//! seconds): cfgledger servers, and the agents and clients that follow them, side by side. Each shows its
//! applied seq, its lag behind the log, and whether its head hash is the log's hash at that seq, so that an
//! instance that is behind, stale or diverged stands out.
//!
//! `POST /admin/instances/heartbeat` (any role, `config_reader` included): an agent's or client's report.
//! Heartbeats are operational state in their own table, never events.

use super::extract::{ApiJson, ApiQuery, Caller};
use super::{ApiError, AppState};
use crate::instance;
use crate::model::{ErrorBody, InstanceEntry, InstanceFilter, InstanceInfo, InstanceList, InstanceReport};
use crate::store::InstanceBeat;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use std::collections::{BTreeMap, BTreeSet};

/// The statuses an instance can be in, in the order of their meaning.
const STATUSES: [&str; 5] = ["converged", "behind", "stale", "ahead", "diverged"];
const KINDS: [&str; 3] = ["server", "agent", "client"];

/// The live instances, with their applied seq, lag, and whether their head hash matches the log (viewer).
#[utoipa::path(get, path = "/admin/instances", tag = "operations", params(InstanceFilter),
    responses((status = 200, description = "the instances and whether they agree", body = InstanceList),
        (status = 400, description = "an unknown query field, status or kind", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(filter): ApiQuery<InstanceFilter>,
) -> Result<Json<InstanceList>, ApiError> {
    let statuses: Option<BTreeSet<&str>> = match filter.status.as_deref() {
        None => None,
        Some(list) => Some(
            list.split(',')
                .map(|s| {
                    STATUSES.iter().copied().find(|known| *known == s.trim()).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "status expects some of {}, comma-separated; got {:?}",
                            STATUSES.join(", "),
                            s.chars().take(40).collect::<String>()
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    if let Some(kind) = filter.kind.as_deref().filter(|k| !KINDS.contains(k)) {
        return Err(ApiError::bad_request(format!(
            "kind expects one of {}; got {:?}",
            KINDS.join(", "),
            kind.chars().take(40).collect::<String>()
        )));
    }
    let store = state.ledger.store().clone();
    let now = state.ledger.now();
    let since = instance::live_since(now);
    let snap = state.ledger.snapshot();
    let head = snap.head.seq;
    let head_hash = snap.head.hash.to_hex();
    let own = state.instance.id.clone();
    let (beats, hashes, own_hash) = tokio::task::spawn_blocking(move || {
        // A heartbeat in a shape this version cannot read is not listed.
        let beats: Vec<(InstanceBeat, InstanceInfo)> = store
            .instances(since)?
            .into_iter()
            .filter_map(|b| match serde_json::from_value::<InstanceInfo>(b.info.clone()) {
                Ok(info) => Some((b, info)),
                Err(_) => {
                    tracing::warn!(instance = %b.id, "a heartbeat in a shape this version cannot read is not listed");
                    None
                }
            })
            .collect();
        // The log's hash at each seq an instance reports, read once per distinct seq; this server's own entry
        // is what it has applied now (below).
        let seqs: BTreeSet<u64> = beats
            .iter()
            .filter(|(b, _)| b.id != own)
            .map(|(_, info)| info.applied_seq)
            .filter(|&s| s > 0 && s < head)
            .collect();
        let mut hashes = BTreeMap::new();
        for seq in seqs {
            if let Some(rec) = store.record_at(seq)? {
                hashes.insert(seq, rec.hash.to_hex());
            }
        }
        // This server's head as the store holds it: where this server's state meets the store's (a store
        // that lost it, after a failover to a standby that had not received it, shows the server diverged).
        let own_hash = store.record_at(head)?.map(|r| r.hash.to_hex());
        Ok::<_, crate::store::StoreError>((beats, hashes, own_hash))
    })
    .await
    .map_err(|_| ApiError::from(crate::error::Error::Closed))??;
    let me = state.instance.id.as_str();
    let mut instances: Vec<InstanceEntry> = beats
        .into_iter()
        .map(|(b, mut info)| {
            let is_self = b.id == me;
            if is_self {
                // This server's own entry says what it has applied now, not at its last beat (up to a second
                // ago), which would show it behind its own head after every change. Other servers' entries
                // are as of their last beats.
                info.applied_seq = head;
                info.head_hash.clone_from(&head_hash);
            }
            let matches_log = if is_self {
                // Against the store's record at the head this server applied: a store that no longer holds it
                // does not match (an empty store has nothing to compare).
                (head > 0).then(|| own_hash.as_ref() == Some(&head_hash))
            } else {
                // None past this server's head, or for a seq whose record could not be read.
                let log_hash = if info.applied_seq == head { Some(&head_hash) } else { hashes.get(&info.applied_seq) };
                log_hash.map(|h| *h == info.head_hash)
            };
            let lag = head.saturating_sub(info.applied_seq);
            let status = if matches_log == Some(false) {
                "diverged"
            } else if info.applied_seq > head {
                // Past this server's head: this server lags, or the instance follows another store.
                "ahead"
            } else if info.stale {
                "stale"
            } else if lag > 0 {
                "behind"
            } else {
                "converged"
            };
            let age = std::time::Duration::from_micros(
                u64::try_from(now.as_micros().saturating_sub(b.last_seen)).unwrap_or(0),
            );
            let rollouts = match (info.namespace.as_deref(), b.id.split_once('/')) {
                (Some(ns), Some((_, bare))) => {
                    crate::usecase::rollout::for_instance(&snap.state, ns, bare, &info.labels)
                }
                _ => Vec::new(),
            };
            InstanceEntry {
                rollouts,
                is_self,
                id: b.id,
                last_seen: cfgledger_events::Timestamp::from_micros(b.last_seen).to_string(),
                age_secs: age.as_secs_f64(),
                lag,
                matches_log,
                status: status.to_string(),
                info,
            }
        })
        .collect();
    instances.sort_by(|a, b| (a.info.kind != "server", &a.id).cmp(&(b.info.kind != "server", &b.id)));
    let mut by_status = BTreeMap::new();
    for i in &instances {
        *by_status.entry(i.status.clone()).or_insert(0) += 1;
    }
    let converged = instances.iter().all(|i| i.status == "converged");
    let total = instances.len();
    instances.retain(|i| {
        statuses.as_ref().is_none_or(|s| s.contains(i.status.as_str()))
            && filter.kind.as_deref().is_none_or(|k| i.info.kind == k)
    });
    let matched = instances.len();
    let truncated = filter.limit.is_some_and(|limit| limit < matched);
    instances.truncate(filter.limit.unwrap_or(usize::MAX));
    Ok(Json(InstanceList {
        instances,
        self_id: me.to_string(),
        converged,
        head,
        head_hash,
        by_status,
        total,
        matched,
        truncated,
    }))
}

/// Longest label key or value, and most labels.
const LABEL_MAX: usize = 128;
const LABELS_MAX: usize = 32;

/// An agent's or client's heartbeat: stored as `KIND/ID`, with the caller as `reported_by`.
#[utoipa::path(post, path = "/admin/instances/heartbeat", tag = "operations", request_body = InstanceReport,
    responses((status = 204, description = "recorded"),
        (status = 400, description = "a report that is not well-formed: an id, kind, namespace, label, hash or text out of shape", body = ErrorBody),
        (status = 409, description = "the id is live and reported by another subject", body = ErrorBody),
        (status = 503, description = "too many heartbeats are waiting to be stored; send it again after Retry-After", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 413, description = "a body over REQUEST_SIZE_LIMIT", body = ErrorBody)))]
pub async fn heartbeat(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(report): ApiJson<InstanceReport>,
) -> Result<StatusCode, ApiError> {
    check_report(&state, &report)?;
    let now = state.ledger.now();
    let id = format!("{}/{}", report.kind, report.id);
    let info = InstanceInfo {
        kind: report.kind,
        host: report.host,
        pid: report.pid,
        listen: String::new(),
        version: report.version,
        started_at: report.started_at,
        applied_seq: report.applied_seq,
        head_hash: report.head_hash,
        namespace: Some(report.namespace),
        labels: report.labels,
        stale: report.stale,
        staleness_secs: report.staleness_secs,
        origin: Some(report.origin),
        child: report.child,
        error: report.error,
        reported_by: Some(caller.name),
        healthy: report.healthy,
        extra: serde_json::Map::new(),
    };
    let beat = InstanceBeat {
        id,
        info: serde_json::to_value(info).map_err(|e| crate::error::Error::internal("cannot encode a heartbeat", e))?,
        last_seen: now.as_micros(),
    };
    // An id belongs to the subject that reports it while it is live: another token may not take it over
    // (an admin may, to clear an entry). The recorder checks, beat after beat.
    let may_take_over = caller.role == crate::auth::Role::PlatformAdmin;
    match state.beats.record(beat, may_take_over).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(instance::BeatError::Taken(message)) => Err(ApiError::new(crate::error::ErrorCode::Conflict, message)),
        Err(instance::BeatError::Store(e)) => Err(e.into()),
        Err(instance::BeatError::Closed) => Err(crate::error::Error::Closed.into()),
        Err(instance::BeatError::Busy) => Err(ApiError::new(
            crate::error::ErrorCode::Unavailable,
            "too many heartbeats are waiting to be stored; send this one again later",
        )),
    }
}

fn check_report(state: &AppState, r: &InstanceReport) -> Result<(), ApiError> {
    let bad = |m: String| Err(ApiError::bad_request(m));
    let id_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    if !id_ok(&r.id) {
        return bad(format!(
            "id expects 1 to 64 of A-Z a-z 0-9 . _ -; got {:?}",
            r.id.chars().take(80).collect::<String>()
        ));
    }
    if !matches!(r.kind.as_str(), "agent" | "client") {
        return bad(format!("kind expects agent or client; got {:?}", r.kind.chars().take(40).collect::<String>()));
    }
    if state.ledger.catalog().namespace(&r.namespace).is_none() {
        return bad(format!("unknown namespace {:?}", r.namespace.chars().take(80).collect::<String>()));
    }
    if !matches!(r.origin.as_str(), "server" | "cache") {
        return bad("origin expects server or cache".to_string());
    }
    if r.head_hash.len() != 64 || !r.head_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return bad("head_hash expects 64 hex digits".to_string());
    }
    if r.labels.len() > LABELS_MAX {
        return bad(format!("at most {LABELS_MAX} labels; got {}", r.labels.len()));
    }
    let printable = |s: &str| s.chars().all(|c| !c.is_control());
    for (k, v) in &r.labels {
        if !id_ok(k) || k.len() > LABEL_MAX || v.len() > LABEL_MAX || !printable(v) {
            return bad(format!(
                "a label is NAME=VALUE with a NAME of A-Z a-z 0-9 . _ - and a printable VALUE, each at most {LABEL_MAX} bytes"
            ));
        }
    }
    for (field, text) in [("host", &r.host), ("version", &r.version), ("started_at", &r.started_at)] {
        if text.len() > 256 || !printable(text) {
            return bad(format!("{field} expects printable text of at most 256 bytes"));
        }
    }
    if r.staleness_secs.is_some_and(|s| !s.is_finite() || s < 0.0) {
        return bad("staleness_secs expects a number of seconds, 0 or more".to_string());
    }
    if r.error.as_ref().is_some_and(|e| e.len() > 1000 || !printable(e)) {
        return bad("error expects printable text of at most 1000 bytes".to_string());
    }
    if let Some(child) = &r.child {
        if !matches!(child.state.as_str(), "starting" | "running" | "restarting" | "stopping" | "exited") {
            return bad("child.state expects starting, running, restarting, stopping or exited".to_string());
        }
        if child.last_exit.as_ref().is_some_and(|e| e.len() > 64 || !printable(e)) {
            return bad("child.last_exit expects printable text of at most 64 bytes".to_string());
        }
    }
    Ok(())
}
