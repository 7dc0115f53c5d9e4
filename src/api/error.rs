//! The one mapping from errors to HTTP: `{"error": {"code", "message", "details"}}` with the right status.
//! Domain rejections keep their message; infrastructure failures are logged and answered without internals.

use crate::error::Error;
use crate::store::StoreError;
use axum::http::StatusCode;
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
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), details: Value::Null }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Rejected(r) => {
                let (status, code) = match r.kind {
                    RejectionKind::UnknownKey => (StatusCode::NOT_FOUND, "unknown_key"),
                    RejectionKind::Invalid => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_value"),
                    RejectionKind::Locked => (StatusCode::FORBIDDEN, "locked"),
                    RejectionKind::State => (StatusCode::CONFLICT, "state"),
                    RejectionKind::Sealing => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
                };
                ApiError::new(status, code, r.message)
            }
            Error::Store(StoreError::Unavailable(_))
            | Error::Store(StoreError::Conflict { .. })
            | Error::Contention(_) => {
                tracing::warn!(error = %e, "store unavailable");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the store is unavailable; retry later")
            }
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message, "details": self.details}});
        (self.status, Json(body)).into_response()
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}
