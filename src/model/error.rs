//! The one error shape: `{"error": {"code", "message", "details"}}`.

use crate::error::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Every error answer of the API.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// Lowercase, no trailing period; names the thing and the field or flag the caller used.
    pub message: String,
    /// What the operation can say about the refusal: an import's plan, the first bad seq, ... (`null` when none).
    #[serde(default)]
    #[schema(value_type = Value)]
    pub details: Value,
}
