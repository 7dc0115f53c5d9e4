//! The library's error type and the one error-code enum shared by the API, the CLI and its remote mode.
//!
//! Errors come in five kinds, because callers must treat them differently:
//! - **bad input** (`Error::Input`): a malformed flag, file, query or body; HTTP 400, exit 2;
//! - **rejected** (`Error::Rejected`): `decide` or the state refused a well-formed request; 401/403/404/409/422,
//!   exit 1;
//! - **unavailable**: the store, the server or the write path cannot serve now and a retry may work; 429/503,
//!   exit 3;
//! - **integrity**: the log's chain is broken or a sealed value does not open; exit 4;
//! - **failure**: anything else (the disk, the runtime, a bug); 500, exit 5.
//!
//! [`ErrorCode`] names each error on the wire (`{"error": {"code", ...}}`); a CLI in remote mode reads it back
//! and exits with the same code the local mode would have used.

use crate::crypto::CryptoError;
use crate::envfile::EnvFileError;
use crate::store::StoreError;
use cfgledger_events::catalog::CatalogError;
use cfgledger_events::{ChainError, Rejection, RejectionKind};
use serde::{Deserialize, Serialize};

/// A boxed source error, kept so that the CLI can print the whole cause chain.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's input is malformed: a flag, a file, a query string or a body. Nothing was read or written.
    #[error("{message}")]
    Input {
        message: String,
        #[source]
        source: Option<Source>,
    },
    /// `decide` (or a rule outside it) refused the command; nothing but an audit record (for locked keys) was
    /// appended.
    #[error("{0}")]
    Rejected(Rejection),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The log does not verify: an event was altered or is missing.
    #[error("the event log is broken at {0}")]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    EnvFile(#[from] EnvFileError),
    #[error("catalog {path}: {message}")]
    Catalog { path: String, message: String },
    /// The encryption secret is missing or does not match the store.
    #[error("{0}")]
    Secret(String),
    /// Something stored does not check out: a checkpoint that differs from the log, a value that cannot be
    /// re-sealed. (A broken chain is [`Error::Chain`]; a value that does not open is [`Error::Crypto`].)
    #[error("{0}")]
    Integrity(String),
    /// Other writers kept moving the head; the change was not applied.
    #[error("the change was not applied: the log kept changing under it after {0} attempts; retry")]
    Contention(usize),
    /// An operating-system failure: a file, a socket, standard input or output.
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A server (`--server`) could not be reached or did not answer with the API's JSON.
    #[error("{context}")]
    Unreachable {
        context: String,
        #[source]
        source: Option<Source>,
    },
    /// An error known by its wire code, with details for the caller: a refusal whose details matter (an
    /// import's plan), or one of the API's errors answered by a server (`--server`). `code` decides the
    /// status and the exit code.
    #[error("{message}")]
    Coded { code: ErrorCode, message: String, details: serde_json::Value },
    /// A failure that is nobody's input: the async runtime, an encoder, a broken invariant reported as an error.
    #[error("{context}")]
    Internal {
        context: String,
        #[source]
        source: Option<Source>,
    },
    /// Standard output was closed by the reader (`| head`): not a failure.
    #[error("standard output closed")]
    BrokenPipe,
    /// `agent exec`'s child ended with this exit code (128 + N for signal N), which the agent passes on.
    #[error("the child exited with code {0}")]
    ChildExit(u8),
    /// The ledger's writer has stopped (the process is shutting down).
    #[error("the ledger is shutting down")]
    Closed,
}

impl From<CatalogError> for Error {
    fn from(e: CatalogError) -> Self {
        Error::Catalog { path: "built-in".into(), message: e.to_string() }
    }
}

impl Error {
    /// Bad input with no underlying error.
    pub fn input(message: impl Into<String>) -> Error {
        Error::Input { message: message.into(), source: None }
    }

    /// Bad input caused by `source` (a parse error, say).
    pub fn input_from(message: impl Into<String>, source: impl Into<Source>) -> Error {
        Error::Input { message: message.into(), source: Some(source.into()) }
    }

    /// A refusal of the given kind, for rules that live outside `decide`.
    pub fn rejected(kind: RejectionKind, message: impl Into<String>) -> Error {
        Error::Rejected(Rejection { kind, message: message.into(), audit: Vec::new() })
    }

    /// A well-formed value that the rules refuse (422).
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::rejected(RejectionKind::Invalid, message)
    }

    /// The thing named does not exist (404).
    pub fn missing(message: impl Into<String>) -> Error {
        Error::rejected(RejectionKind::Missing, message)
    }

    /// An operating-system failure, with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { context: context.into(), source }
    }

    /// A failure that is nobody's input.
    pub fn internal(context: impl Into<String>, source: impl Into<Source>) -> Error {
        Error::Internal { context: context.into(), source: Some(source.into()) }
    }

    /// True when the user's input or the state refused the change (as opposed to an operating failure).
    pub fn is_rejection(&self) -> bool {
        matches!(self.code().kind(), Kind::Rejected)
    }

    /// The wire code of this error: what the API answers and what the CLI's exit code follows.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Input { .. } | Error::EnvFile(_) | Error::Catalog { .. } => ErrorCode::BadRequest,
            Error::Rejected(r) => match r.kind {
                RejectionKind::UnknownKey => ErrorCode::UnknownKey,
                RejectionKind::Missing => ErrorCode::NotFound,
                RejectionKind::Invalid => ErrorCode::InvalidValue,
                RejectionKind::Locked => ErrorCode::Locked,
                RejectionKind::State => ErrorCode::State,
                RejectionKind::Conflict => ErrorCode::Conflict,
                RejectionKind::Sealing => ErrorCode::Internal,
                RejectionKind::Forbidden => ErrorCode::Forbidden,
                RejectionKind::ApprovalRequired => ErrorCode::ApprovalRequired,
            },
            Error::Store(StoreError::Unavailable(_) | StoreError::Conflict { .. })
            | Error::Contention(_)
            | Error::Closed
            | Error::Unreachable { .. } => ErrorCode::Unavailable,
            Error::Store(StoreError::OutcomeUnknown(_)) => ErrorCode::OutcomeUnknown,
            Error::Store(StoreError::Url(_)) => ErrorCode::BadRequest,
            Error::Chain(_) => ErrorCode::ChainBroken,
            Error::Store(StoreError::Corrupt(_)) => ErrorCode::Integrity,
            Error::Crypto(CryptoError::Kdf(_)) => ErrorCode::Internal,
            Error::Secret(_) => ErrorCode::BadRequest,
            Error::Crypto(_) | Error::Integrity(_) => ErrorCode::Integrity,
            Error::Coded { code, .. } => *code,
            Error::Io { .. } | Error::Internal { .. } | Error::BrokenPipe | Error::ChildExit(_) => ErrorCode::Internal,
        }
    }

    /// The process exit code for this error: the same locally and through `--server`.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::BrokenPipe => 0,
            Error::ChildExit(code) => *code,
            e => e.code().kind().exit_code(),
        }
    }
}

/// The kind of an error, which decides the CLI's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Refused by a rule or the state: exit 1.
    Rejected,
    /// Malformed input or a wrong invocation: exit 2 (clap's own usage errors exit 2 too).
    BadInput,
    /// Cannot serve now; retry later: exit 3.
    Unavailable,
    /// The log or a sealed value is damaged: exit 4.
    Integrity,
    /// Anything else: exit 5.
    Failure,
}

impl Kind {
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Rejected => 1,
            Kind::BadInput => 2,
            Kind::Unavailable => 3,
            Kind::Integrity => 4,
            Kind::Failure => 5,
        }
    }
}

/// Every error's name on the wire: the `code` of `{"error": {"code", "message", "details"}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A malformed request: body, query, path or header (400).
    BadRequest,
    /// No token, or one that is invalid or expired (401).
    Unauthorized,
    /// The caller's role may not do this (403).
    Forbidden,
    /// The key is locked; the attempt was recorded (403).
    Locked,
    /// The change policy asks approvals for this change: propose it as a change request (403).
    ApprovalRequired,
    /// No such thing, or no such endpoint (404).
    NotFound,
    /// The key is not in the catalog (404).
    UnknownKey,
    /// The endpoint does not accept that method (405).
    MethodNotAllowed,
    /// The request body, or the request, took too long (408 or 503).
    Timeout,
    /// The key or the log changed since the version the caller expected (409).
    Conflict,
    /// The store is not in the state the operation needs (409).
    State,
    /// The request body exceeds `REQUEST_SIZE_LIMIT` (413).
    PayloadTooLarge,
    /// A body was sent with a `Content-Type` other than JSON where JSON is expected (415).
    UnsupportedMediaType,
    /// A well-formed value that the catalog or the rules refuse (422).
    InvalidValue,
    /// Too many requests from this principal or client (429).
    RateLimited,
    /// The store cannot serve now; retry after the `Retry-After` seconds (503).
    Unavailable,
    /// The database stopped answering while the change was being committed and could not be asked afterwards
    /// whether it was written: read it back before retrying (503).
    OutcomeUnknown,
    /// The event log is broken; the details name the first bad seq (500).
    ChainBroken,
    /// A sealed value does not open under this store's key (500).
    Integrity,
    /// An internal failure; the server's log has the cause (500).
    Internal,
}

impl ErrorCode {
    /// The HTTP status this code is answered with (the one exception, a slow request body, answers 408).
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden | ErrorCode::Locked | ErrorCode::ApprovalRequired => 403,
            ErrorCode::NotFound | ErrorCode::UnknownKey => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict | ErrorCode::State => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::InvalidValue => 422,
            ErrorCode::RateLimited => 429,
            ErrorCode::Timeout | ErrorCode::Unavailable | ErrorCode::OutcomeUnknown => 503,
            ErrorCode::ChainBroken | ErrorCode::Integrity | ErrorCode::Internal => 500,
        }
    }

    /// What kind of failure the code is, which decides the CLI's exit code.
    pub fn kind(self) -> Kind {
        match self {
            ErrorCode::BadRequest
            | ErrorCode::MethodNotAllowed
            | ErrorCode::PayloadTooLarge
            | ErrorCode::UnsupportedMediaType => Kind::BadInput,
            ErrorCode::Unauthorized
            | ErrorCode::Forbidden
            | ErrorCode::Locked
            | ErrorCode::ApprovalRequired
            | ErrorCode::NotFound
            | ErrorCode::UnknownKey
            | ErrorCode::Conflict
            | ErrorCode::State
            | ErrorCode::InvalidValue => Kind::Rejected,
            ErrorCode::Timeout | ErrorCode::RateLimited | ErrorCode::Unavailable | ErrorCode::OutcomeUnknown => {
                Kind::Unavailable
            }
            ErrorCode::ChainBroken | ErrorCode::Integrity => Kind::Integrity,
            ErrorCode::Internal => Kind::Failure,
        }
    }

    /// The code's wire name (`bad_request`, ...), also the `reason` label of the rejection metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Locked => "locked",
            ErrorCode::ApprovalRequired => "approval_required",
            ErrorCode::NotFound => "not_found",
            ErrorCode::UnknownKey => "unknown_key",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Conflict => "conflict",
            ErrorCode::State => "state",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::InvalidValue => "invalid_value",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::OutcomeUnknown => "outcome_unknown",
            ErrorCode::ChainBroken => "chain_broken",
            ErrorCode::Integrity => "integrity",
            ErrorCode::Internal => "internal",
        }
    }

    /// Every code, for the documentation and the tests that keep it honest.
    pub const ALL: [ErrorCode; 20] = [
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::Locked,
        ErrorCode::ApprovalRequired,
        ErrorCode::NotFound,
        ErrorCode::UnknownKey,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Timeout,
        ErrorCode::Conflict,
        ErrorCode::State,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::InvalidValue,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::OutcomeUnknown,
        ErrorCode::ChainBroken,
        ErrorCode::Integrity,
        ErrorCode::Internal,
    ];
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Writes `error: MESSAGE` and then every cause on its own `  caused by: ...` line, skipping a cause whose text
/// the message already holds (many messages quote their source).
pub fn report(e: &(dyn std::error::Error + 'static)) -> String {
    // A message may quote input (a value, a name): its control characters are escaped for the terminal.
    let mut out = format!("error: {}", crate::present::terminal_lines(&e.to_string()));
    let mut shown = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !shown.contains(&text) {
            out.push_str(&format!("\n  caused by: {}", crate::present::terminal_lines(&text)));
            shown.push_str(&text);
        }
        next = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).ok();
            assert_eq!(json.as_ref().and_then(|v| v.as_str()), Some(code.as_str()), "{code:?}");
            let back: Option<ErrorCode> = json.and_then(|v| serde_json::from_value(v).ok());
            assert_eq!(back, Some(code));
        }
    }

    #[test]
    fn exit_codes_follow_the_kinds() {
        assert_eq!(Error::input("bad flag").exit_code(), 2);
        assert_eq!(Error::invalid("bad value").exit_code(), 1);
        assert_eq!(Error::Store(StoreError::Unavailable("down".into())).exit_code(), 3);
        assert_eq!(Error::Chain(ChainError { seq: 3, reason: "hash".into() }).exit_code(), 4);
        assert_eq!(Error::io("cannot write x", std::io::Error::other("disk full")).exit_code(), 5);
        assert_eq!(Error::BrokenPipe.exit_code(), 0);
        let remote = Error::Coded { code: ErrorCode::Locked, message: "m".into(), details: serde_json::Value::Null };
        assert_eq!(remote.exit_code(), Error::rejected(RejectionKind::Locked, "m").exit_code());
    }

    #[test]
    fn the_troubleshooting_page_lists_every_code_and_exit_code() {
        let page = include_str!("../docs/troubleshooting.md");
        for code in ErrorCode::ALL {
            assert!(page.contains(&format!("`{code}`")), "docs/troubleshooting.md does not list {code}");
        }
        for kind in [Kind::Rejected, Kind::BadInput, Kind::Unavailable, Kind::Integrity, Kind::Failure] {
            assert!(page.contains(&format!("| `{}` |", kind.exit_code())), "exit {} is not listed", kind.exit_code());
        }
    }

    #[test]
    fn the_report_prints_each_new_cause_once() {
        let e = Error::io("cannot write out.json", std::io::Error::other("no space left on device"));
        assert_eq!(report(&e), "error: cannot write out.json\n  caused by: no space left on device");
        let quoted = Error::io(
            "cannot write out.json: no space left on device",
            std::io::Error::other("no space left on device"),
        );
        assert_eq!(report(&quoted), "error: cannot write out.json: no space left on device");
    }
}
