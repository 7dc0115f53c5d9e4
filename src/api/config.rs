//! The read side of `/admin/config`: the list with `?category=` and `?q=` filters, and one key with an
//! `ETag` naming its version.

use super::{ApiError, AppState};
use crate::present;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    category: Option<String>,
    q: Option<String>,
}

pub async fn list(State(state): State<AppState>, Query(query): Query<ListQuery>) -> Json<Value> {
    let snap = state.ledger.snapshot();
    let needle = query.q.as_deref().map(str::to_ascii_lowercase);
    let items: Vec<Value> = state
        .ledger
        .catalog()
        .specs()
        .iter()
        .filter(|s| query.category.as_ref().is_none_or(|c| &s.category == c))
        .filter(|s| {
            needle.as_ref().is_none_or(|n| {
                s.key.to_ascii_lowercase().contains(n) || s.description.to_ascii_lowercase().contains(n)
            })
        })
        .filter_map(|s| snap.view(&s.key).map(|v| present::item(s, v)))
        .collect();
    Json(json!({"items": items, "head": snap.head.seq}))
}

pub async fn get(State(state): State<AppState>, Path(key): Path<String>) -> Result<Response, ApiError> {
    let snap = state.ledger.snapshot();
    let (Some(spec), Some(view)) = (state.ledger.catalog().get(&key), snap.view(&key)) else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_key", format!("unknown key {key}")));
    };
    let mut response = Json(present::item(spec, view)).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", view.version)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}
