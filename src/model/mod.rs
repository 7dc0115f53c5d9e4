//! The typed messages at the boundary: every request and response body of the REST API, shared by the server
//! (which serializes them), the CLI's remote mode (which deserializes them) and the web UI (which renders them).
//! The OpenAPI document is generated from these types (`utoipa::ToSchema`), so the contract and the code
//! cannot drift apart. `json!` and `value["field"]` stay out of the request path.

mod audit;
mod config;
pub(crate) mod constraints;
mod error;
mod governance;
mod history;
mod keys;
mod ops;
mod registry;
mod rollout;

pub use audit::{
    AuditEntry, AuditFilter, AuditImport, AuditPage, AuditRender, AuditRequest, AuditResource, AuditUser,
    RejectedAttempt,
};
pub use cfgledger_client::wire::{ChildReport, InstanceReport, WatchProgress};
pub use config::{
    AsOf, AsOfQuery, ConfigItem, ConfigList, DriftEntry, ExportSource, ImportPlan, ImportQuery, KeyQuery, ListQuery,
    NamespaceQuery, PlanAction, PlanEntry, PlanSummary, RenderQuery, ResetQuery, SetRequest, SettingsExport,
    SettingsImportReport, SettingsImportResult, ValueSource,
};
pub use error::{ErrorBody, ErrorDetail};
pub use governance::{
    AppliedView, ApprovalView, ChangeInput, ChangeView, ConflictView, PolicyDoc, PolicyRuleDoc, PolicyView,
    ProposeRequest, RequestList, RequestListQuery, RequestView, ReviewRequest,
};
pub use history::{
    ApplyStatus, BadSnapshot, ClonePlan, Diff, DiffLine, DiffQuery, LaterChange, PageQuery, PlanCounts, PlanStep,
    PointRef, RevertBody, RevertOf, RollbackBody, RollbackReport, VerifiedHead, VerifiedSnapshots, VerifyReport,
};
pub use keys::{
    KeyRetireReport, KeyRotateProgress, KeyRotateReport, KeyShredReport, KeyStatusReport, MasterKeyStatus,
    ShreddedSubject,
};
pub use ops::{
    ChangeEvent, Health, InstanceEntry, InstanceFilter, InstanceInfo, InstanceList, IntegrityStatus, KeyValue,
    LogRecord, LoginRequest, LoginResponse, Ready, WatchQuery, WatchStreamEvent,
};
pub use registry::{
    Deleted, EntitiesByKind, Entity, EntityCounts, EntityFields, EntityList, EntityListQuery, EntityPlan, ExportAnswer,
    ExportDocument, ExportEncryption, ExportMetadata, ExportQuery, GatewayDependencies, GatewayExportDocument,
    GatewayExportMetadata, GatewayExportOptions, ImportBody, ImportReport, ImportResult, ImportStatus,
    ImportStatusKind, ImportStatuses, Selection, SelectiveQuery,
};
pub use rollout::{
    AuditRollout, InstanceRollout, RolloutActionBody, RolloutChangeBody, RolloutInstance, RolloutList, RolloutOutcome,
    RolloutStep, RolloutValue, RolloutView, StartRolloutBody,
};
