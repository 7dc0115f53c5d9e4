//! The typed messages at the boundary: every request and response body of the REST API, shared by the server
//! (which serializes them), the CLI's remote mode (which deserializes them) and the web UI (which renders them).
//! The OpenAPI document is generated from these types (`utoipa::ToSchema`), so the contract and the code
//! cannot drift apart. `json!` and `value["field"]` stay out of the request path.

mod audit;
mod error;
mod history;

pub use audit::{AuditEntry, AuditFilter, AuditImport, AuditPage, AuditResource, AuditUser, RejectedAttempt};
pub use error::{ErrorBody, ErrorDetail};
pub use history::{
    ApplyStatus, BadSnapshot, Diff, DiffLine, DiffQuery, LaterChange, PageQuery, PlanCounts, PlanStep, PointRef,
    RevertBody, RevertOf, RollbackBody, RollbackReport, VerifiedHead, VerifiedSnapshots, VerifyReport,
};
