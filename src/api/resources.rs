//! The resource registry over HTTP: `GET/POST /{kind}` and `GET/PUT/PATCH/DELETE /{kind}/{name}` for
//! gateways, servers, tools, prompts, resources and roots, with `?tags=` filtering. Writes need
//! `platform_admin`, are rate limited and audited like settings; plaintext credentials in the input are
//! sealed before they reach the log and only `auth_type` and the opaque `auth_value` come back.

use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, Caller};
use super::{ApiError, AppState};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cfgledger_events::{Command, ResourceKind};
use cfgledger_projections::ResourceEntry;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The routes of every kind.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for kind in ResourceKind::ALL {
        router = router
            .route(
                &format!("/{kind}"),
                get(move |s: State<AppState>, c: Caller, q: ApiQuery<ListQuery>| list(kind, s, c, q))
                    .post(move |s: State<AppState>, a: Admin, b: ApiJson<Map<String, Value>>| create(kind, s, a, b)),
            )
            .route(
                &format!("/{kind}/{{name}}"),
                get(move |s: State<AppState>, c: Caller, n: ApiPath<String>, q: ApiQuery<ShowQuery>| {
                    show(kind, s, c, n, q)
                })
                .put(move |s: State<AppState>, a: Admin, n: ApiPath<String>, b: ApiJson<Map<String, Value>>| {
                    replace(kind, s, a, n, b)
                })
                .patch(move |s: State<AppState>, a: Admin, n: ApiPath<String>, b: ApiJson<Map<String, Value>>| {
                    patch(kind, s, a, n, b)
                })
                .delete(move |s: State<AppState>, a: Admin, n: ApiPath<String>| delete(kind, s, a, n)),
            )
            .route(
                &format!("/{kind}/{{name}}/history"),
                get(
                    move |s: State<AppState>, c: Caller, n: ApiPath<String>, q: ApiQuery<super::history::PageQuery>| {
                        history(kind, s, c, n, q)
                    },
                ),
            );
    }
    router
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Comma-separated: an entity matches when it has any of them.
    tags: Option<String>,
    /// Inactive entities (`is_active: false`) are listed too unless this is false.
    include_inactive: Option<bool>,
    /// The registry as it was at a point of the log (an RFC 3339 time, `24h`, `seq:N`).
    as_of: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowQuery {
    as_of: Option<String>,
}

/// An entity as it is shown: its stored fields (credentials sealed) and its provenance.
fn shown(entry: &ResourceEntry) -> Value {
    let mut v = Value::Object(entry.fields.clone());
    v["created_at"] = json!(entry.created_at.to_string());
    v["updated_at"] = json!(entry.updated_at.to_string());
    v["version"] = json!(entry.version);
    v
}

fn entity_response(state: &AppState, kind: ResourceKind, name: &str, status: StatusCode) -> Result<Response, ApiError> {
    let snap = state.ledger.snapshot();
    let entry = snap
        .state
        .resource_entry(kind, name)
        .ok_or_else(|| ApiError::new(crate::error::ErrorCode::NotFound, format!("no {} {name}", kind.singular())))?;
    let mut response = (status, Json(shown(entry))).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", entry.version)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

async fn list(
    kind: ResourceKind,
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let wanted: Vec<String> = query
        .tags
        .as_deref()
        .map(|t| t.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    let past = query.as_of.is_some();
    let snap = super::config::snapshot_as_of(&state, query.as_of.clone()).await?;
    let items: Vec<Value> =
        snap.state
            .resources(kind)
            .filter(|(_, e)| {
                query.include_inactive != Some(false) || e.fields.get("is_active") != Some(&Value::Bool(false))
            })
            .filter(|(_, e)| {
                wanted.is_empty()
                    || e.fields.get("tags").and_then(Value::as_array).is_some_and(|tags| {
                        tags.iter().any(|t| t.as_str().is_some_and(|t| wanted.iter().any(|w| w == t)))
                    })
            })
            .map(|(_, e)| shown(e))
            .collect();
    let mut body = json!({"items": items, "head": state.ledger.snapshot().head.seq});
    if past {
        body["as_of"] = json!({"seq": snap.head.seq, "time": snap.head_time.to_string()});
    }
    Ok(Json(body))
}

async fn show(
    kind: ResourceKind,
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<ShowQuery>,
) -> Result<Response, ApiError> {
    if query.as_of.is_none() {
        return entity_response(&state, kind, &name, StatusCode::OK);
    }
    let snap = super::config::snapshot_as_of(&state, query.as_of).await?;
    let entry = snap.state.resource_entry(kind, &name).ok_or_else(|| {
        ApiError::new(
            crate::error::ErrorCode::NotFound,
            format!("no {} {name} at seq {}", kind.singular(), snap.head.seq),
        )
    })?;
    let mut shown = shown(entry);
    shown["as_of"] = json!({"seq": snap.head.seq, "time": snap.head_time.to_string()});
    Ok(Json(shown).into_response())
}

/// `GET /{kind}/{name}/history` (auditor): every state the entity had, newest first.
async fn history(
    kind: ResourceKind,
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<super::history::PageQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(crate::auth::Role::Auditor)?;
    super::history::page(state, format!("{kind}/{name}"), query).await
}

async fn create(
    kind: ResourceKind,
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiJson(fields): ApiJson<Map<String, Value>>,
) -> Result<Response, ApiError> {
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let name = cfgledger_events::resource::identity(kind, &fields).map_err(crate::error::Error::Rejected)?;
    state.ledger.execute_async(Command::CreateResource { kind, fields }, caller.context(None)).await?;
    tracing::info!(kind = %kind, name = %name, actor = %caller.name, "resource created");
    let mut response = entity_response(&state, kind, &name, StatusCode::CREATED)?;
    let location = format!("/{kind}/{}", percent_encode(&name));
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

async fn replace(
    kind: ResourceKind,
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(name): ApiPath<String>,
    ApiJson(fields): ApiJson<Map<String, Value>>,
) -> Result<Response, ApiError> {
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let cmd = Command::ReplaceResource { kind, name: name.clone(), fields };
    state.ledger.execute_async(cmd, caller.context(None)).await?;
    entity_response(&state, kind, &name, StatusCode::OK)
}

async fn patch(
    kind: ResourceKind,
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(name): ApiPath<String>,
    ApiJson(patch): ApiJson<Map<String, Value>>,
) -> Result<Response, ApiError> {
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let cmd = Command::PatchResource { kind, name: name.clone(), patch };
    state.ledger.execute_async(cmd, caller.context(None)).await?;
    entity_response(&state, kind, &name, StatusCode::OK)
}

async fn delete(
    kind: ResourceKind,
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let outcome =
        state.ledger.execute_async(Command::DeleteResource { kind, name: name.clone() }, caller.context(None)).await?;
    Ok(Json(json!({"kind": kind.as_str(), "name": name, "deleted": true, "seq": outcome.seqs.map(|(_, s)| s)})))
}

/// A name as one path segment (a resource's uri holds slashes).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
