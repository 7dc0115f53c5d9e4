//! The typed messages at the boundary: every request and response body of the REST API, shared by the server
//! (which serializes them), the CLI's remote mode (which deserializes them) and the web UI (which renders them).
//! The OpenAPI document is generated from these types (`utoipa::ToSchema`), so the contract and the code
//! cannot drift apart. `json!` and `value["field"]` stay out of the request path.

mod error;
mod registry;

pub use error::{ErrorBody, ErrorDetail};
pub use registry::{
    AsOf, Deleted, EntitiesByKind, Entity, EntityAction, EntityCounts, EntityFields, EntityList, EntityListQuery,
    EntityPlan, EntityQuery, ExportAnswer, ExportDocument, ExportEncryption, ExportMetadata, ExportQuery, ExportSource,
    GatewayExportDocument, GatewayExportMetadata, GatewayExportOptions, ImportBody, ImportReport, ImportResult,
    ImportStatus, ImportStatusKind, ImportStatuses, Selection, SelectiveQuery, SettingAction, SettingCounts,
    SettingPlan, SettingsPlan,
};
