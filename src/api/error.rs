//! The one mapping from errors to HTTP: `{"error": {"code", "message", "details"}}` with the right status.
//! Domain rejections keep their message; infrastructure failures are logged and answered without internals.

use crate::error::Error;
use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cfgledger_events::RejectionKind;
use serde_json::{json, Value};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), details: Value::Null, retry_after: None }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn unavailable() -> Self {
        let mut e =
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the store is unavailable; retry later");
        e.retry_after = Some(1);
        e
    }

    pub fn unknown_key(key: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "unknown_key", format!("unknown key {key}"))
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Rejected(r) => {
                let (status, code) = match r.kind {
                    RejectionKind::UnknownKey => (StatusCode::NOT_FOUND, "unknown_key"),
                    RejectionKind::Missing => (StatusCode::NOT_FOUND, "not_found"),
                    RejectionKind::Invalid => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_value"),
                    RejectionKind::Locked => (StatusCode::FORBIDDEN, "locked"),
                    RejectionKind::State => (StatusCode::CONFLICT, "state"),
                    RejectionKind::Conflict => (StatusCode::CONFLICT, "conflict"),
                    RejectionKind::Sealing => {
                        tracing::error!(error = %r.message, "cannot seal a value");
                        return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error");
                    }
                };
                metrics::counter!("cfgledger_rejected_writes_total", "reason" => code).increment(1);
                ApiError::new(status, code, r.message)
            }
            Error::Store(StoreError::Unavailable(_))
            | Error::Store(StoreError::Conflict { .. })
            | Error::Contention(_)
            | Error::Closed => {
                tracing::warn!(error = %e, "store unavailable");
                ApiError::unavailable()
            }
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::from(Error::Store(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message, "details": self.details}});
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this endpoint does not accept that method")
}
