//! `GET /export` (filters: `types`, `exclude_types`, `tags`, `include_inactive`, `include_dependencies`)
//! and `POST /export/selective` (`{"tools": [names], ...}`): the registry's portable export (auditor).

use super::extract::{ApiJson, ApiQuery, Auditor};
use super::{ApiError, AppState};
use crate::export;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    types: Option<String>,
    exclude_types: Option<String>,
    tags: Option<String>,
    #[serde(default)]
    include_inactive: bool,
    #[serde(default)]
    include_dependencies: bool,
}

pub async fn export(
    State(state): State<AppState>,
    Auditor(caller): Auditor,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = export::Filter {
        types: query.types.as_deref().map(export::parse_kinds).transpose().map_err(bad)?,
        exclude_types: query
            .exclude_types
            .as_deref()
            .map(export::parse_kinds)
            .transpose()
            .map_err(bad)?
            .unwrap_or_default(),
        tags: query.tags.as_deref().map(split).unwrap_or_default(),
        include_inactive: query.include_inactive,
        include_dependencies: query.include_dependencies,
        selected: None,
    };
    Ok(Json(export::document(&state.ledger, &filter, &caller.name, state.ledger.now())?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectiveQuery {
    #[serde(default)]
    include_dependencies: bool,
}

pub async fn selective(
    State(state): State<AppState>,
    Auditor(caller): Auditor,
    ApiQuery(query): ApiQuery<SelectiveQuery>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let filter = export::Filter {
        selected: Some(export::parse_selection(&body).map_err(bad)?),
        include_dependencies: query.include_dependencies,
        include_inactive: true,
        ..export::Filter::default()
    };
    Ok(Json(export::document(&state.ledger, &filter, &caller.name, state.ledger.now())?))
}

/// A filter or selection that does not parse is a bad request, not a bad value.
fn bad(e: crate::error::Error) -> ApiError {
    ApiError::bad_request(e.to_string())
}

fn split(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect()
}
