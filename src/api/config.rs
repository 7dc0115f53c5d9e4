//! `/admin/config` and `/admin/config/{key}`: the list with `?category=` and `?q=` filters, one key with
//! an `ETag` naming its version, `PUT` (compare-and-set with `If-Match`) and `DELETE` (back to the
//! environment or the default).

use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, Caller};
use super::{ApiError, AppState};
use crate::present;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cfgledger_events::{Command, Input};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    category: Option<String>,
    q: Option<String>,
    /// A point of the log: an RFC 3339 time, a duration before now (`24h`) or `seq:N`.
    as_of: Option<String>,
}

/// The store as of `as_of` (the live state when none).
pub(crate) async fn snapshot_as_of(
    state: &AppState,
    as_of: Option<String>,
) -> Result<std::sync::Arc<crate::live::Snapshot>, ApiError> {
    let Some(point) = as_of else {
        return Ok(state.ledger.snapshot());
    };
    let ledger = state.ledger.clone();
    super::history::read(move || {
        let seq = ledger.point(&point)?.seq;
        ledger.snapshot_at(seq)
    })
    .await
}

pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let past = query.as_of.is_some();
    let snap = snapshot_as_of(&state, query.as_of.clone()).await?;
    let needle = query.q.as_deref().map(str::to_ascii_lowercase);
    let items: Vec<Value> = state
        .ledger
        .catalog()
        .specs()
        .iter()
        .filter(|s| query.category.as_ref().is_none_or(|c| &s.category == c))
        .filter(|s| {
            needle.as_ref().is_none_or(|n| {
                s.key.to_ascii_lowercase().contains(n) || s.description.to_ascii_lowercase().contains(n)
            })
        })
        .filter_map(|s| snap.view(&s.key).map(|v| present::item(s, v)))
        .collect();
    let mut body = json!({"items": items, "head": state.ledger.snapshot().head.seq});
    if past {
        body["as_of"] = json!({"seq": snap.head.seq, "time": snap.head_time.to_string()});
    }
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetQuery {
    as_of: Option<String>,
}

pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(key): ApiPath<String>,
    ApiQuery(query): ApiQuery<GetQuery>,
) -> Result<Response, ApiError> {
    if query.as_of.is_none() {
        return item_response(&state, &key);
    }
    if state.ledger.catalog().get(&key).is_none() {
        return Err(ApiError::unknown_key(&key));
    }
    let snap = snapshot_as_of(&state, query.as_of).await?;
    let (Some(spec), Some(view)) = (state.ledger.catalog().get(&key), snap.view(&key)) else {
        return Err(ApiError::unknown_key(&key));
    };
    let mut item = present::item(spec, view);
    item["as_of"] = json!({"seq": snap.head.seq, "time": snap.head_time.to_string()});
    Ok(Json(item).into_response())
}

/// The current item of `key` with its `ETag`.
fn item_response(state: &AppState, key: &str) -> Result<Response, ApiError> {
    let snap = state.ledger.snapshot();
    let (Some(spec), Some(view)) = (state.ledger.catalog().get(key), snap.view(key)) else {
        return Err(ApiError::unknown_key(key));
    };
    let mut response = Json(present::item(spec, view)).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", view.version)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// `{"value": JSON}`, or `{"text": "..."}` for the value as text, parsed exactly as the command line and
/// `.env` parse it (what `config set --server` sends).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    /// `Some(Null)` for an explicit `null`, which the key's type then refuses (422); `None` when absent.
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl PutBody {
    fn input(self) -> Result<(Input, Option<String>), ApiError> {
        match (self.value, self.text) {
            (Some(v), None) => Ok((Input::Json(v), self.reason)),
            (None, Some(t)) => Ok((Input::Text(t), self.reason)),
            (Some(_), Some(_)) => Err(ApiError::bad_request("send either \"value\" or \"text\", not both")),
            (None, None) => Err(ApiError::bad_request("the body expects a \"value\" field")),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    reason: Option<String>,
}

pub async fn put(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(key): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PutBody>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let (value, reason) = body.input()?;
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let cmd = guarded(&key, expected, Command::Set { key: key.clone(), value });
    let outcome = state.ledger.execute_async(cmd, caller.context(reason)).await?;
    log_change("set", &key, &caller, &outcome);
    item_response(&state, &key)
}

pub async fn delete(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(key): ApiPath<String>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let cmd = guarded(&key, expected, Command::Reset { key: key.clone() });
    let outcome = state.ledger.execute_async(cmd, caller.context(query.reason)).await?;
    log_change("reset", &key, &caller, &outcome);
    item_response(&state, &key)
}

/// One log line per accepted write: what, who, at which seq. Never the value.
fn log_change(action: &str, key: &str, caller: &Caller, outcome: &crate::Outcome) {
    match outcome.seqs {
        Some((_, seq)) => {
            tracing::info!(action, key, actor = %caller.name, role = %caller.role, seq, "setting changed")
        }
        None => tracing::debug!(action, key, actor = %caller.name, "setting unchanged"),
    }
}

fn guarded(key: &str, expected: Option<u64>, cmd: Command) -> Command {
    match expected {
        Some(version) => Command::Expect { key: key.to_string(), version, then: Box::new(cmd) },
        None => cmd,
    }
}

/// The version an `If-Match` header names: `"12"`, `W/"12"` or `12`; `*` (any version) checks nothing.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(raw) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = raw.to_str().map_err(|_| ApiError::bad_request("If-Match is not text"))?.trim();
    if text == "*" {
        return Ok(None);
    }
    let bare = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    bare.parse::<u64>()
        .map(Some)
        .map_err(|_| ApiError::bad_request(format!("If-Match expects an ETag such as \"12\" from GET; got {text}")))
}
