//! `GET /admin/config/watch`: server-sent events, one per change of a setting, `id` = seq and JSON data
//! (`present::change`). `Last-Event-ID` or `?after=SEQ` resumes right after that seq, with no gap and no
//! duplicate, because the stream reads the log itself: a publication only wakes it. Without either, it
//! starts at the current head. Keep-alive comments flow while nothing changes; the stream ends when the
//! server shuts down.

use super::extract::{ApiQuery, Caller};
use super::{ApiError, AppState};
use crate::model::{ChangeEvent, ErrorBody, WatchQuery};
use crate::present;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use cfgledger_events::verify_record;
use futures_util::Stream;
use std::collections::VecDeque;
use std::convert::Infallible;

/// Records read per step when catching up.
const BATCH: usize = 512;

struct Cursor {
    state: AppState,
    /// Each key's value when the log holds none, for the value a reset falls back to.
    baseline: std::collections::BTreeMap<String, cfgledger_events::StoredValue>,
    after: u64,
    pending: VecDeque<SseEvent>,
    published: tokio::sync::watch::Receiver<u64>,
    closing: tokio::sync::watch::Receiver<bool>,
}

/// Server-sent events: one per change of a setting's value, `id` = seq, resumable with `Last-Event-ID`.
#[utoipa::path(get, path = "/admin/config/watch", tag = "settings", params(WatchQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "resume right after this seq")),
    responses(
        (status = 200, description = "an event stream; each event's data is a ChangeEvent", content_type = "text/event-stream", body = ChangeEvent),
        (status = 400, description = "a Last-Event-ID or after that is not a seq of this log, or an unknown query field", body = ErrorBody),
    ))]
pub async fn watch(
    State(state): State<AppState>,
    _caller: Caller,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<WatchQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let last_event_id = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad_request("Last-Event-ID expects the seq of the last event received"))?,
        ),
    };
    let mut published = state.ledger.subscribe();
    published.borrow_and_update();
    let head = state.ledger.snapshot().head.seq;
    let after = last_event_id.or(query.after).unwrap_or(head);
    if after > head {
        return Err(ApiError::bad_request(format!(
            "cannot resume after seq {after}: the log's head is seq {head} (was the cursor from another store?)"
        )));
    }
    let cursor = Cursor {
        closing: state.closing.clone(),
        baseline: state.ledger.baseline(),
        state,
        after,
        pending: VecDeque::new(),
        published,
    };
    let keepalive = cursor.state.sse_keepalive;
    let stream = futures_util::stream::unfold(cursor, next);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(keepalive)))
}

/// The next event of the stream, or `None` to end it (shutdown, or the store failed for good).
async fn next(mut cur: Cursor) -> Option<(Result<SseEvent, Infallible>, Cursor)> {
    loop {
        if let Some(ev) = cur.pending.pop_front() {
            return Some((Ok(ev), cur));
        }
        if *cur.closing.borrow() {
            return None;
        }
        // Mark the current publication seen before reading, so that one made during the read wakes us.
        cur.published.borrow_and_update();
        let ledger = cur.state.ledger.clone();
        let after = cur.after;
        let read = tokio::task::spawn_blocking(move || ledger.store().read_after(after, BATCH)).await;
        match read {
            Ok(Ok(records)) if !records.is_empty() => {
                let catalog = cur.state.ledger.catalog();
                for rec in &records {
                    let env = match verify_record(rec) {
                        Ok(env) => env,
                        Err(e) => {
                            tracing::error!(error = %e, "watch stream stopped at a record that does not verify");
                            return None;
                        }
                    };
                    if let Some(change) = present::change(&env, catalog, &cur.baseline) {
                        let data = serde_json::to_string(&change).unwrap_or_default();
                        cur.pending.push_back(SseEvent::default().id(rec.seq.to_string()).data(data));
                    }
                    cur.after = rec.seq;
                }
                continue;
            }
            Ok(Ok(_)) => {}
            Ok(Err(crate::store::StoreError::Unavailable(e))) => {
                tracing::warn!(error = %e, "watch stream cannot read the log; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                continue;
            }
            Ok(Err(e)) => {
                // Not a passing outage: end the stream; the client reconnects and reports what it gets.
                tracing::error!(error = %e, "watch stream stopped");
                return None;
            }
            Err(_) => return None,
        }
        tokio::select! {
            changed = cur.published.changed() => {
                if changed.is_err() {
                    return None;
                }
            }
            _ = cur.closing.changed() => return None,
        }
    }
}
