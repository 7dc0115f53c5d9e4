//! Extractors that keep every failure in the API's JSON error shape: [`ApiJson`] (a JSON body within
//! `REQUEST_SIZE_LIMIT`: 415 without a JSON `Content-Type`, 413 past the limit, 400 when it is not the
//! expected JSON or names a key twice), [`ApiQuery`] (400 for a bad
//! query string) and [`Caller`] (who is asking, from where, under which request id: 401 without a valid
//! token when authentication is required).

use super::{ApiError, AppState};
use crate::auth::Role;
use crate::ledger::WriteContext;
use crate::setting_keys;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use cfgledger_events::{Actor, Cause, Source};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;

/// A JSON body, sent as `application/json` (or a `+json` type), read up to the live `REQUEST_SIZE_LIMIT`, and
/// parsed strictly: an object that names a key twice is refused ([`crate::json`]).
pub struct ApiJson<T>(pub T);

/// Whether a `Content-Type` header names JSON: `application/json` or `application/*+json`, in any case, with
/// or without parameters (`; charset=utf-8`).
pub fn is_json_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", sub)) => sub == "json" || (sub.ends_with("+json") && sub.len() > "+json".len()),
        _ => false,
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = u64::try_from(setting_keys::REQUEST_SIZE_LIMIT.get(&state.ledger.settings())).unwrap_or(0);
        let limit_bytes = usize::try_from(limit).unwrap_or(usize::MAX);
        let too_large = || {
            metrics::counter!("cfgledger_rejected_writes_total", "reason" => "payload_too_large").increment(1);
            ApiError::new(
                crate::error::ErrorCode::PayloadTooLarge,
                format!("the request body exceeds REQUEST_SIZE_LIMIT ({limit} bytes)"),
            )
        };
        let content_type = req.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("(not text)"));
        if !content_type.is_some_and(is_json_type) {
            let given = match content_type {
                Some(t) => format!("got \"{}\"", crate::present::terminal(t)),
                None => "none was given".to_string(),
            };
            return Err(ApiError::new(
                crate::error::ErrorCode::UnsupportedMediaType,
                format!("the request body must be sent with Content-Type: application/json; {given}"),
            ));
        }
        let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let read = async {
            let mut body = Vec::new();
            let mut stream = req.into_body().into_data_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
                if body.len().saturating_add(chunk.len()) > limit_bytes {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        // Writes are not timed as a whole (see `api::with_timeout`), but a client that trickles its body is.
        let body = tokio::time::timeout(state.request_timeout, read).await.map_err(|_| {
            ApiError::new(crate::error::ErrorCode::Timeout, "the request body took too long to arrive")
                .with_status(StatusCode::REQUEST_TIMEOUT)
        })??;
        if body.is_empty() {
            return Err(ApiError::bad_request("the request body is empty: a JSON object is expected"));
        }
        let value = crate::json::value_from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))?;
        // Every body is an object: serde would otherwise read an array as the struct's fields in order.
        if !value.is_object() {
            return Err(ApiError::bad_request("the request body expects a JSON object"));
        }
        serde_json::from_value(value)
            .map(ApiJson)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
    }
}

/// An optional JSON body: none at all (no `Content-Type` and no length) reads as `T::default()`; anything
/// else is read as [`ApiJson`] would.
pub struct MaybeJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for MaybeJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let headers = req.headers();
        let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let chunked = headers.get(header::TRANSFER_ENCODING).is_some();
        if headers.get(header::CONTENT_TYPE).is_none() && !chunked && length.unwrap_or(0) == 0 {
            return Ok(MaybeJson(T::default()));
        }
        ApiJson::<T>::from_request(req, state).await.map(|ApiJson(t)| MaybeJson(t))
    }
}

/// A query string, with the API's error shape when it does not parse.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::bad_request(format!("bad query string: {}", e.body_text())))
    }
}

/// A path parameter, with the API's error shape when it does not parse (e.g. a key that is not UTF-8).
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(p)| ApiPath(p))
            .map_err(|e| ApiError::bad_request(format!("bad path: {}", e.body_text())))
    }
}

/// A caller whose role is `platform_admin`, checked before anything else of the request is read (a viewer's
/// write is 403 whatever its body).
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(Role::PlatformAdmin)?;
        Ok(Admin(caller))
    }
}

/// A caller whose role includes `auditor`, checked before the rest of the request is read.
pub struct Auditor(pub Caller);

impl FromRequestParts<AppState> for Auditor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(Role::Auditor)?;
        Ok(Auditor(caller))
    }
}

/// The client's IP address, when the server was started with connection info (always, outside unit tests).
pub struct ClientAddr(pub Option<String>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(a)| a.ip().to_string())))
    }
}

/// The request id: the client's `X-Request-Id` when it sent a sane one, else a fresh one. Set by the
/// request-id middleware and echoed in the response.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Who is calling: the token's subject and role, the client address, the request id, and the door
/// (`X-Cfgledger-Client: cli` or `ui`, else `api`).
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    pub address: Option<String>,
    pub request_id: Option<String>,
    pub source: Source,
    pub method: String,
    pub path: String,
    /// When the caller's token expires (seconds since the epoch); `None` without a token.
    pub expires_at: Option<u64>,
    /// The caller's verified token (claims and hash), which a watch stream keeps checking; `None` without one.
    pub token: Option<crate::auth::Presented>,
    /// The CSRF token of a web UI session, which its pages carry; `None` for a bearer token.
    pub csrf: Option<String>,
    /// `X-Emergency-Bypass: true`: the change is applied without the approvals the change policy asks for,
    /// if the policy lets this user; every use is recorded.
    pub bypass: bool,
}

impl Caller {
    /// 403 unless the caller's role includes `needed`.
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        if self.role.allows(needed) {
            Ok(())
        } else {
            Err(ApiError::new(
                crate::error::ErrorCode::Forbidden,
                format!("role {} may not do this: it needs {needed}", self.role),
            ))
        }
    }

    /// The audit context of a change made by this request.
    pub fn context(&self, reason: Option<String>) -> WriteContext {
        WriteContext {
            actor: Actor {
                name: self.name.clone(),
                role: Some(self.role.as_str().to_string()),
                source: self.source,
                address: self.address.clone(),
                request_id: self.request_id.clone(),
            },
            cause: Cause::Api { method: self.method.clone(), path: self.path.clone() },
            reason: reason.filter(|r| !r.trim().is_empty()),
            bypass: self.bypass,
        }
    }
}

/// The header that asks for the emergency bypass of the change policy.
pub const BYPASS_HEADER: &str = "x-emergency-bypass";

/// The one route a `config_reader` may read secrets from.
pub const RENDER_PATH: &str = "/admin/config/render";
/// Where an agent or client reports what it applied.
pub const HEARTBEAT_PATH: &str = "/admin/instances/heartbeat";
/// The watch stream, which an agent follows.
pub const WATCH_PATH: &str = "/admin/config/watch";

/// What a machine reader (`config_reader`, an agent) may call: the render, the watch stream, and its
/// heartbeat.
fn machine_route(method: &axum::http::Method, path: &str) -> bool {
    use axum::http::Method;
    (method == Method::GET && (path == RENDER_PATH || path == WATCH_PATH))
        || (method == Method::POST && path == HEARTBEAT_PATH)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let bearer = match parts.headers.get(header::AUTHORIZATION) {
            None => None,
            Some(v) => {
                let text = v.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
                let token = text
                    .strip_prefix("Bearer ")
                    .or_else(|| text.strip_prefix("bearer "))
                    .ok_or_else(|| ApiError::unauthorized("the Authorization header expects \"Bearer TOKEN\""))?;
                Some(token.trim().to_string())
            }
        };
        // Without a bearer token, the web UI's session cookie (a login's token) may stand for one.
        let session = match bearer {
            Some(_) => None,
            None => crate::ui::session::cookie_token(&parts.headers),
        };
        let (name, role, held, csrf) = match (bearer, session) {
            (Some(token), _) => {
                let presented = super::tokens::presented(state, &token)?;
                (presented.claims.sub.clone(), presented.claims.role, Some(presented), None)
            }
            (None, Some(token)) => {
                let claims = crate::ui::session::check(state, &parts.method, &parts.headers, &token)?;
                let csrf = state.key_ring()?.csrf_token(&token);
                (claims.sub.clone(), claims.role, Some(crate::auth::Presented::new(&token, claims)), Some(csrf))
            }
            (None, None) if state.auth.required => {
                return Err(ApiError::unauthorized("authentication required: send Authorization: Bearer TOKEN"))
            }
            // AUTH_REQUIRED=false: local development, announced loudly at start.
            (None, None) => ("anonymous".to_string(), Role::PlatformAdmin, None, None),
        };
        let expires_at = held.as_ref().map(|t| t.claims.exp);
        // A config reader reads the render, follows the watch stream and reports its heartbeat; nothing else.
        if role == Role::ConfigReader && !machine_route(&parts.method, parts.uri.path()) {
            return Err(ApiError::new(
                crate::error::ErrorCode::Forbidden,
                format!(
                    "role config_reader may only read {RENDER_PATH} and {WATCH_PATH} and post {HEARTBEAT_PATH}; {} {} needs another role",
                    parts.method,
                    parts.uri.path()
                ),
            ));
        }
        let source = match parts.headers.get("x-cfgledger-client").and_then(|v| v.to_str().ok()) {
            _ if csrf.is_some() => Source::Ui,
            Some("cli") => Source::Cli,
            Some("ui") => Source::Ui,
            _ => Source::Api,
        };
        let address = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(a)| a.ip().to_string());
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
        let bypass = match parts.headers.get(BYPASS_HEADER).map(|v| v.to_str().map(str::to_ascii_lowercase)) {
            None => false,
            Some(Ok(v)) if v == "true" || v == "1" => true,
            Some(Ok(v)) if v == "false" || v == "0" => false,
            Some(_) => return Err(ApiError::bad_request(format!("{BYPASS_HEADER} expects true or false"))),
        };
        Ok(Caller {
            name,
            role,
            address,
            request_id,
            source,
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            expires_at,
            token: held,
            csrf,
            bypass,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_types_are_json_with_any_parameters() {
        for ok in
            ["application/json", "Application/JSON", "application/json; charset=utf-8", "application/merge-patch+json"]
        {
            assert!(super::is_json_type(ok), "{ok}");
        }
        for bad in [
            "",
            "text/plain",
            "application/x-www-form-urlencoded",
            "text/json",
            "application/+json",
            "application/jsonx",
        ] {
            assert!(!super::is_json_type(bad), "{bad}");
        }
    }
}
