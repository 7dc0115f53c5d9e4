//! The one mapping from errors to HTTP: `{"error": {"code", "message", "details"}}` with the status of its
//! [`ErrorCode`]. Domain rejections keep their message; infrastructure failures are logged and answered
//! without internals.

use crate::error::{Error, ErrorCode, Kind};
use crate::model::{ErrorBody, ErrorDetail};
use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub details: Value,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error answered with its code's status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after =
            matches!(code, ErrorCode::Unavailable | ErrorCode::Timeout | ErrorCode::OutcomeUnknown).then_some(1);
        ApiError { status, code, message: message.into(), details: Value::Null, retry_after }
    }

    pub fn with_details(mut self, details: impl serde::Serialize) -> Self {
        self.details = serde_json::to_value(details).unwrap_or(Value::Null);
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::BadRequest, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Unauthorized, message)
    }

    pub fn unavailable() -> Self {
        ApiError::new(ErrorCode::Unavailable, "the store is unavailable; retry later")
    }

    pub fn unknown_key(key: &str) -> Self {
        ApiError::new(ErrorCode::UnknownKey, format!("unknown key {key}"))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::NotFound, message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let code = e.code();
        match (code.kind(), e) {
            (_, Error::Coded { code, message, details }) => {
                if code.kind() == Kind::Rejected {
                    metrics::counter!("cfgledger_rejected_writes_total", "reason" => code.as_str()).increment(1);
                }
                ApiError::new(code, message).with_details(details)
            }
            (Kind::BadInput, e @ Error::Input { .. }) => ApiError::new(code, e.to_string()),
            // A secret, catalog, .env or URL problem met while serving is the server's configuration, not
            // the caller's input: logged, and answered without its paths or causes.
            (Kind::BadInput, e) => {
                tracing::error!(error = %crate::error::report(&e), "server configuration error");
                ApiError::new(ErrorCode::Internal, "internal error")
            }
            (Kind::Rejected, Error::Rejected(r)) => {
                metrics::counter!("cfgledger_rejected_writes_total", "reason" => code.as_str()).increment(1);
                ApiError::new(code, r.message)
            }
            (Kind::Integrity, Error::Chain(c)) => {
                tracing::error!(seq = c.seq, reason = %c.reason, "the event log is broken");
                ApiError::new(code, format!("the event log is broken at {c}"))
                    .with_details(serde_json::json!({"seq": c.seq}))
            }
            (Kind::Integrity, e) => {
                tracing::error!(error = %crate::error::report(&e), "integrity failure");
                ApiError::new(code, "a stored value failed its integrity check; see the server's log")
            }
            (Kind::Unavailable, e) => {
                tracing::warn!(error = %crate::error::report(&e), "store unavailable");
                match &e {
                    // SQLite's SQLITE_FULL: the one cause worth naming, since it will not pass by retrying alone.
                    Error::Store(StoreError::Unavailable(m)) if m.contains("database or disk is full") => {
                        ApiError::new(
                            code,
                            "the store's disk is full: writes fail until space is freed; reads are served",
                        )
                    }
                    // Not a refusal: the change may be in the log, and the client must not be told to simply retry.
                    Error::Store(StoreError::OutcomeUnknown(_)) => ApiError::new(
                        code,
                        "the database stopped answering while this change was being committed, and could not be \
                         asked afterwards whether it was written: read it back before retrying",
                    ),
                    _ => ApiError::unavailable(),
                }
            }
            (_, e) => {
                tracing::error!(error = %crate::error::report(&e), "internal error");
                ApiError::new(ErrorCode::Internal, "internal error")
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
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message, details: self.details } };
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
    ApiError::not_found("no such endpoint")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "this endpoint does not accept that method")
}
