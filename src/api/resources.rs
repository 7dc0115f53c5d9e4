//! The resource registry over HTTP: `GET/POST /{kind}` and `GET/PUT/PATCH/DELETE /{kind}/{name}` for
//! gateways, servers, tools, prompts, resources and roots, with `?tags=` filtering. Writes need
//! `platform_admin`, are rate limited and audited like settings; plaintext credentials in the input are
//! sealed before they reach the log and only `auth_type` and the opaque `auth_value` come back.

use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, Caller};
use super::{ApiError, AppState};
use crate::error::ErrorCode;
use crate::model::{AsOf, Deleted, EntityFields, EntityList, EntityListQuery, EntityQuery};
use crate::registry;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cfgledger_events::{Command, ResourceKind};

/// The routes of every kind.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for kind in ResourceKind::ALL {
        router = router
            .route(
                &format!("/{kind}"),
                get(move |s: State<AppState>, c: Caller, q: ApiQuery<EntityListQuery>| list(kind, s, c, q))
                    .post(move |s: State<AppState>, a: Admin, b: ApiJson<EntityFields>| create(kind, s, a, b)),
            )
            .route(
                &format!("/{kind}/{{name}}"),
                get(move |s: State<AppState>, c: Caller, n: ApiPath<String>, q: ApiQuery<EntityQuery>| {
                    show(kind, s, c, n, q)
                })
                .put(move |s: State<AppState>, a: Admin, n: ApiPath<String>, b: ApiJson<EntityFields>| {
                    replace(kind, s, a, n, b)
                })
                .patch(move |s: State<AppState>, a: Admin, n: ApiPath<String>, b: ApiJson<EntityFields>| {
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

fn entity_response(state: &AppState, kind: ResourceKind, name: &str, status: StatusCode) -> Result<Response, ApiError> {
    let snap = state.ledger.snapshot();
    let entry = snap
        .state
        .resource_entry(kind, name)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no {} {name}", kind.singular())))?;
    let mut response = (status, Json(registry::shown(entry, None))).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", entry.version)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// The point a past read was made at.
fn as_of(snap: &crate::live::Snapshot) -> AsOf {
    AsOf { seq: snap.head.seq, time: snap.head_time.to_string() }
}

async fn list(
    kind: ResourceKind,
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<EntityListQuery>,
) -> Result<Json<EntityList>, ApiError> {
    let tags = query.tags.as_deref().map(registry::split_list).unwrap_or_default();
    let past = query.as_of.is_some();
    let snap = super::config::snapshot_as_of(&state, query.as_of).await?;
    let items = registry::list(&snap.state, kind, &tags, query.include_inactive != Some(false));
    let head = state.ledger.snapshot().head.seq;
    Ok(Json(EntityList { items, head, as_of: past.then(|| as_of(&snap)) }))
}

async fn show(
    kind: ResourceKind,
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<EntityQuery>,
) -> Result<Response, ApiError> {
    if query.as_of.is_none() {
        return entity_response(&state, kind, &name, StatusCode::OK);
    }
    let snap = super::config::snapshot_as_of(&state, query.as_of).await?;
    let entry = snap.state.resource_entry(kind, &name).ok_or_else(|| {
        ApiError::new(ErrorCode::NotFound, format!("no {} {name} at seq {}", kind.singular(), snap.head.seq))
    })?;
    Ok(Json(registry::shown(entry, Some(as_of(&snap)))).into_response())
}

/// `GET /{kind}/{name}/history` (auditor): every state the entity had, newest first.
async fn history(
    kind: ResourceKind,
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<super::history::PageQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(crate::auth::Role::Auditor)?;
    super::history::page(state, format!("{kind}/{name}"), query).await
}

async fn create(
    kind: ResourceKind,
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiJson(fields): ApiJson<EntityFields>,
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
    ApiJson(fields): ApiJson<EntityFields>,
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
    ApiJson(patch): ApiJson<EntityFields>,
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
) -> Result<Json<Deleted>, ApiError> {
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let outcome =
        state.ledger.execute_async(Command::DeleteResource { kind, name: name.clone() }, caller.context(None)).await?;
    Ok(Json(Deleted { kind: kind.as_str().to_string(), name, deleted: true, seq: outcome.seqs.map(|(_, s)| s) }))
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
