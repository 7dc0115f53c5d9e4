//! `GET /admin/config/watch`: server-sent events, one per event of the log that the filters keep, `id` = seq
//! and JSON data (`present::watch_event`): a setting's new value (masked when sensitive), or any other
//! event's audit entries. `Last-Event-ID` or `?after=SEQ` resumes right after that seq, with no gap and no
//! duplicate under any filter, because the stream reads the log itself from that seq: a publication only
//! wakes it. Without either, it starts at the current head.
//!
//! A `progress` event (`id` the seq scanned up to, data `{seq, hash}`) is sent once the stream has caught up
//! at first, and whenever it has since scanned past events the filters left out, so that a client's
//! `Last-Event-ID` keeps up with the log and it can report the head it has applied.
//!
//! Events carry their audit entries (`detail`) only for a role that may read the audit trail; a
//! `config_reader` follows settings only. The stream never goes past the head this server has applied, so
//! that a render asked of it after an event includes that event.
//!
//! The stream ends when the server shuts down, or when the caller's token stops standing (`tokens::ended`):
//! it expires, its user is removed or has its password or role changed, its signing key is retired by a
//! rotation, or its session is logged out. An `end` event says which first. Keep-alive comments flow while
//! nothing changes.

use super::extract::{ApiQuery, Caller};
use super::watch_hub::{Hub, HubRecord, Read};
use super::{ApiError, AppState};
use crate::auth::Role;
use crate::model::{ChangeEvent, ErrorBody, WatchQuery, WatchStreamEvent};
use crate::present;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use cfgledger_client::wire::WatchProgress;
use cfgledger_events::catalog::Catalog;
use cfgledger_events::namespace;
use futures_util::Stream;
use std::collections::{BTreeSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;

/// Records read per step when catching up.
const BATCH: usize = 512;

/// The groups `kind=` accepts besides event kinds.
const GROUPS: &[(&str, &[&str])] = &[
    (
        "settings",
        &[
            "EnvSeeded",
            "SettingChanged",
            "SettingReset",
            "SecretGenerated",
            "SettingReseeded",
            // What an instance is served changes with a rollout's every transition.
            "RolloutStarted",
            "RolloutAdvanced",
            "RolloutRolledBack",
            "RolloutCompleted",
        ],
    ),
    ("registry", &["ResourceCreated", "ResourceUpdated", "ResourceDeleted", "ImportApplied"]),
    (
        "access",
        &[
            "UserAdded",
            "UserRemoved",
            "UserPasswordChanged",
            "UserRoleChanged",
            "SigningKeyRotated",
            "TokenRevoked",
            "SecretsRendered",
        ],
    ),
    ("rejections", &["ChangeRejected"]),
    ("store", &["StoreCreated"]),
];

/// What the stream keeps.
#[derive(Debug, Default)]
struct Filter {
    namespace: Option<String>,
    prefix: Option<String>,
    category: Option<String>,
    kinds: Option<BTreeSet<String>>,
}

impl Filter {
    /// Whether an event of a kind the stream keeps passes whole (no namespace, prefix or category to check).
    fn by_kind_only(&self) -> bool {
        self.namespace.is_none() && self.prefix.is_none() && self.category.is_none()
    }

    fn parse(query: &WatchQuery, catalog: &Catalog) -> Result<Filter, ApiError> {
        let namespace = match query.namespace.as_deref() {
            None => None,
            Some(ns) => Some(crate::usecase::settings::namespaces(catalog, Some(ns))?)
                .filter(|list| list.len() == 1)
                .map(|list| list[0].to_string())
                .ok_or_else(|| ApiError::bad_request("namespace= names one namespace; leave it out for all"))
                .map(Some)?,
        };
        let category = match query.category.as_deref() {
            None => None,
            Some(c) => {
                let known: BTreeSet<&str> = catalog.specs().iter().map(|s| s.category.as_str()).collect();
                if !known.contains(c) {
                    return Err(ApiError::bad_request(format!(
                        "unknown category {c:?}; categories are {}",
                        known.into_iter().collect::<Vec<_>>().join(", ")
                    )));
                }
                Some(c.to_string())
            }
        };
        let kinds = match query.kind.as_deref() {
            None => None,
            Some(list) => {
                let mut kinds = BTreeSet::new();
                for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    if let Some((_, members)) = GROUPS.iter().find(|(g, _)| *g == name) {
                        kinds.extend(members.iter().map(|k| k.to_string()));
                    } else if GROUPS.iter().any(|(_, members)| members.contains(&name)) {
                        kinds.insert(name.to_string());
                    } else {
                        let groups: Vec<&str> = GROUPS.iter().map(|(g, _)| *g).collect();
                        return Err(ApiError::bad_request(format!(
                            "unknown kind {name:?}; kind= takes event kinds (SettingChanged, ResourceUpdated, ...) or the groups {}",
                            groups.join(", ")
                        )));
                    }
                }
                if kinds.is_empty() {
                    return Err(ApiError::bad_request("kind= names no kind"));
                }
                Some(kinds)
            }
        };
        let prefix = query.prefix.clone().filter(|p| !p.is_empty());
        Ok(Filter { namespace, prefix, category, kinds })
    }

    /// Whether the `kind` filter keeps an event of this kind: checked before an event is presented at all.
    fn wants_kind(&self, kind: &str) -> bool {
        self.kinds.as_ref().is_none_or(|k| k.contains(kind))
    }

    /// Whether a setting (by namespace and bare key) passes the namespace, prefix and category filters.
    fn keeps_key(&self, catalog: &Catalog, ns: &str, key: &str) -> bool {
        if self.namespace.as_deref().is_some_and(|n| n != ns) {
            return false;
        }
        if let Some(p) = &self.prefix {
            if !key.starts_with(p.as_str()) && !format!("{ns}{}{key}", namespace::SEP).starts_with(p.as_str()) {
                return false;
            }
        }
        match &self.category {
            None => true,
            Some(c) => catalog.get(&namespace::join(ns, key)).is_some_and(|s| &s.category == c),
        }
    }

    /// The event as the stream sends it, or `None` when the filters leave it out. An event that sets several
    /// keys keeps only those that pass.
    fn apply(&self, catalog: &Catalog, mut ev: ChangeEvent) -> Option<ChangeEvent> {
        if !self.wants_kind(&ev.kind) {
            return None;
        }
        if let Some(changes) = ev.changes.take() {
            let kept: Vec<_> = changes.into_iter().filter(|c| self.keeps_key(catalog, &c.namespace, &c.key)).collect();
            if kept.is_empty() {
                return None;
            }
            ev.restart_required = kept.iter().any(|c| present::restart_key(catalog, &c.namespace, &c.key));
            ev.changes = Some(kept);
            return Some(ev);
        }
        match (ev.namespace.as_deref(), ev.key.as_deref()) {
            (Some(ns), Some(key)) => self.keeps_key(catalog, ns, key).then_some(ev),
            // A render of a namespace: about the namespace, no key.
            (Some(ns), None) => {
                (self.namespace.as_deref().is_none_or(|n| n == ns) && self.prefix.is_none() && self.category.is_none())
                    .then_some(ev)
            }
            // An entity (`tools/search`): about no namespace or category.
            (None, Some(subject)) => (self.namespace.is_none()
                && self.category.is_none()
                && self.prefix.as_deref().is_none_or(|p| subject.starts_with(p)))
            .then_some(ev),
            (None, None) => {
                (self.namespace.is_none() && self.prefix.is_none() && self.category.is_none()).then_some(ev)
            }
        }
    }
}

struct Cursor {
    state: AppState,
    filter: Filter,
    /// Whether events carry their audit entries (`detail`).
    detail: bool,
    /// The seq scanned up to, and the log's hash there.
    after: u64,
    after_hash: String,
    /// The id of the last event sent (a change or a progress).
    last_sent: u64,
    synced: bool,
    progress: bool,
    /// Records read and not yet looked at: shared with every other stream (one `Arc` each), never copied.
    queue: VecDeque<Arc<HubRecord>>,
    /// A progress or end event to send next.
    out: VecDeque<SseEvent>,
    published: tokio::sync::watch::Receiver<u64>,
    closing: tokio::sync::watch::Receiver<bool>,
    /// The caller's token, checked again at every wake-up and when its time runs out; `None` without one.
    token: Option<crate::auth::Presented>,
    ended: bool,
    /// Counts the stream in `cfgledger_watch_streams` while it lives.
    _open: OpenStream,
}

/// One open watch stream, counted in the `cfgledger_watch_streams` gauge from its start until it is dropped
/// (the client went away, or the stream ended).
struct OpenStream;

impl OpenStream {
    fn new() -> OpenStream {
        metrics::gauge!("cfgledger_watch_streams").increment(1.0);
        OpenStream
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!("cfgledger_watch_streams").decrement(1.0);
    }
}

impl Cursor {
    /// The record as this stream sends it, or `None` when its filters leave it out. A stream that filters by
    /// kind at most sends the JSON every stream shares.
    fn event_of(&self, rec: &HubRecord) -> Option<SseEvent> {
        if !self.filter.wants_kind(rec.env.event.kind()) {
            return None;
        }
        let catalog = self.state.ledger.catalog();
        let shown = rec.presented(catalog, self.state.watch_hub.baseline(&self.state.ledger), self.detail);
        let data = if self.filter.by_kind_only() {
            shown.json.to_string()
        } else {
            serde_json::to_string(&self.filter.apply(catalog, shown.event.clone())?).unwrap_or_default()
        };
        Some(SseEvent::default().id(rec.seq.to_string()).data(data))
    }
}

/// Server-sent events: one per event the filters keep, `id` = seq, resumable with `Last-Event-ID`.
#[utoipa::path(get, path = "/admin/config/watch", tag = "settings", params(WatchQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "resume right after this seq")),
    responses(
        (status = 200, description = "an event stream: each change event's data is a ChangeEvent; a `progress` event's data is a WatchProgress; an `end` event says why the server ends the stream", content_type = "text/event-stream", body = WatchStreamEvent),
        (status = 400, description = "a Last-Event-ID or after that is not a seq of this log, an unknown namespace, category or kind, or an unknown query field", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "a config_reader asking for other kinds than settings", body = ErrorBody),
        (status = 503, description = "this server has not yet applied the seq to resume after (another server of the fleet is ahead); retry", body = ErrorBody),
    ))]
pub async fn watch(
    State(state): State<AppState>,
    caller: Caller,
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
    let mut filter = Filter::parse(&query, state.ledger.catalog())?;
    // A machine reader follows settings: the registry and the access trail are not its business.
    if caller.role == Role::ConfigReader {
        let settings: BTreeSet<String> = GROUPS[0].1.iter().map(|k| k.to_string()).collect();
        if filter.kinds.as_ref().is_some_and(|k| !k.is_subset(&settings)) {
            return Err(ApiError::new(
                crate::error::ErrorCode::Forbidden,
                "role config_reader may only watch settings (kind=settings)",
            ));
        }
        filter.kinds = Some(filter.kinds.unwrap_or(settings));
    }
    let mut published = state.ledger.subscribe();
    published.borrow_and_update();
    let snap = state.ledger.snapshot();
    let head = snap.head.seq;
    let after = last_event_id.or(query.after).unwrap_or(head);
    if after > head {
        // Another server of the fleet may be ahead of this one: only a log that does not reach the seq is
        // a cursor of another store.
        let store = state.ledger.store().clone();
        let stored = tokio::task::spawn_blocking(move || store.head())
            .await
            .map_err(|_| ApiError::from(crate::error::Error::Closed))??;
        if stored.seq >= after {
            return Err(ApiError::new(
                crate::error::ErrorCode::Unavailable,
                format!("this server has applied seq {head} and is catching up to seq {after}; retry"),
            ));
        }
        return Err(ApiError::bad_request(format!(
            "cannot resume after seq {after}: the log's head is seq {} (was the cursor from another store?)",
            stored.seq
        )));
    }
    // The hash at the starting seq, for the first progress event when nothing is scanned after it.
    let after_hash = if after == head {
        snap.head.hash.to_hex()
    } else {
        let store = state.ledger.store().clone();
        let at = after.saturating_sub(1);
        tokio::task::spawn_blocking(move || store.read_after(at, 1))
            .await
            .map_err(|_| ApiError::from(crate::error::Error::Closed))??
            .first()
            .filter(|r| r.seq == after)
            .map(|r| r.hash.to_hex())
            .unwrap_or_default()
    };
    // The audit entries of an event are the audit trail's: for a role that may read it.
    let detail = caller.role.allows(Role::Auditor);
    let cursor = Cursor {
        closing: state.closing.clone(),
        filter,
        detail,
        after,
        after_hash,
        last_sent: after,
        synced: false,
        progress: query.progress.unwrap_or(true),
        queue: VecDeque::new(),
        out: VecDeque::new(),
        published,
        token: caller.token,
        ended: false,
        _open: OpenStream::new(),
        state,
    };
    let keepalive = cursor.state.sse_keepalive;
    let stream = futures_util::stream::unfold(cursor, next);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(keepalive)))
}

/// Sleeps until the token's time runs out (its expiry, or its key's retirement: `tokens::deadline`, Unix
/// microseconds), or forever without a token.
async fn token_deadline(deadline: Option<i64>, now: cfgledger_events::Timestamp) {
    match deadline {
        Some(at) => {
            let micros = u64::try_from(at.saturating_sub(now.as_micros())).unwrap_or(0);
            tokio::time::sleep(std::time::Duration::from_micros(micros)).await
        }
        None => std::future::pending().await,
    }
}

fn end_event(reason: &str) -> SseEvent {
    SseEvent::default().event("end").data(reason)
}

/// The next event of the stream, or `None` to end it.
async fn next(mut cur: Cursor) -> Option<(Result<SseEvent, Infallible>, Cursor)> {
    loop {
        if let Some(ev) = cur.out.pop_front() {
            return Some((Ok(ev), cur));
        }
        while let Some(rec) = cur.queue.pop_front() {
            cur.after = rec.seq;
            cur.after_hash.clone_from(&rec.hash);
            if let Some(ev) = cur.event_of(&rec) {
                cur.last_sent = rec.seq;
                return Some((Ok(ev), cur));
            }
        }
        if cur.ended {
            return None;
        }
        if *cur.closing.borrow() {
            cur.ended = true;
            return Some((Ok(end_event("the server is shutting down")), cur));
        }
        let now = cur.state.ledger.now();
        if let Some(reason) = cur.token.as_ref().and_then(|t| super::tokens::ended(&cur.state, t)) {
            cur.ended = true;
            return Some((Ok(end_event(&reason)), cur));
        }
        let deadline = cur.token.as_ref().map(|t| super::tokens::deadline(&cur.state, t));
        // Mark the current publication seen before reading, so that one made during the read wakes us.
        cur.published.borrow_and_update();
        // Never past what this server has applied: a client that hears of a change renders from this server
        // next, and must find the change there. A record written by another process waits for the tailer's
        // publication, which wakes the stream.
        let published = cur.state.ledger.snapshot().head.seq;
        // A quarter of the window at a time, so that a stream the client stops reading holds few records and
        // shows that it fell behind once the window moves on.
        let limit = (cur.state.watch_hub.capacity() / 4).clamp(1, BATCH);
        let read = cur.state.watch_hub.after(&cur.state.ledger, cur.after, published, limit).await;
        match read {
            Ok(Read::Records(records)) if !records.is_empty() => {
                cur.queue.extend(records);
                continue;
            }
            Ok(Read::Records(_)) => {
                // Caught up: say so once at first, then whenever events were scanned past without being sent.
                if cur.progress && (!cur.synced || cur.last_sent < cur.after) {
                    let progress = WatchProgress { seq: cur.after, hash: cur.after_hash.clone() };
                    let data = serde_json::to_string(&progress).unwrap_or_default();
                    cur.out.push_back(SseEvent::default().event("progress").id(cur.after.to_string()).data(data));
                    cur.last_sent = cur.after;
                    cur.synced = true;
                    continue;
                }
                cur.synced = true;
            }
            Ok(Read::Behind { oldest }) if cur.synced => {
                // It had caught up, then did not read while the log moved on by more than the window: a stuck
                // or too slow client. It ends here; it resumes from its Last-Event-ID by reading the store.
                cur.ended = true;
                let reason = format!(
                    "this stream fell behind: it is at seq {} and the server keeps the newest {} events for watchers (from seq {oldest}); reconnect with Last-Event-ID to resume",
                    cur.after,
                    cur.state.watch_hub.capacity()
                );
                tracing::warn!(after = cur.after, oldest, "a watch stream fell behind and was ended");
                metrics::counter!("cfgledger_watch_streams_dropped_total").increment(1);
                return Some((Ok(end_event(&reason)), cur));
            }
            Ok(Read::Behind { .. }) => {
                // Catching up from further back than the window: this stream reads the store itself.
                let (ledger, after) = (cur.state.ledger.clone(), cur.after);
                let limit = usize::try_from(published - after).unwrap_or(BATCH).min(BATCH);
                let read = tokio::task::spawn_blocking(move || {
                    let records = ledger.store().read_after(after, limit)?;
                    records.iter().filter(|r| r.seq <= published).map(|r| Hub::record(&ledger, r)).collect::<Result<
                        Vec<_>,
                        crate::error::Error,
                    >>(
                    )
                })
                .await;
                match read {
                    Ok(Ok(records)) => {
                        cur.queue.extend(records);
                        continue;
                    }
                    Ok(Err(e)) => {
                        if let Some(ev) = stopped(&mut cur, e) {
                            return Some((Ok(ev), cur));
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        continue;
                    }
                    Err(_) => return None,
                }
            }
            Err(e) => {
                if let Some(ev) = stopped(&mut cur, e) {
                    return Some((Ok(ev), cur));
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                continue;
            }
        }
        tokio::select! {
            changed = cur.published.changed() => {
                if changed.is_err() {
                    return None;
                }
            }
            _ = cur.closing.changed() => {}
            _ = token_deadline(deadline, now) => {}
        }
    }
}

/// A read that failed: `None` for a passing outage (the caller retries), else the stream's `end` event, which
/// names what is wrong (a record that does not verify, a store that refuses).
fn stopped(cur: &mut Cursor, e: crate::error::Error) -> Option<SseEvent> {
    if let crate::error::Error::Store(crate::store::StoreError::Unavailable(why)) = &e {
        tracing::warn!(error = %why, "watch stream cannot read the log; retrying");
        return None;
    }
    tracing::error!(error = %e, "watch stream stopped");
    cur.ended = true;
    Some(end_event(&e.to_string()))
}
