//! `GET /admin/config/render`: a namespace's effective configuration as the file its application reads
//! (`format=env|json|yaml`). Any reading role renders without secrets; `include_secrets=true` needs
//! `platform_admin` or `config_reader` (the machine reader's role, which may call nothing else) and is
//! recorded in the audit trail. A thin caller of `usecase::render`.

use super::extract::{ApiQuery, Caller};
use super::{ApiError, AppState};
use crate::auth::Role;
use crate::model::{ErrorBody, RenderQuery};
use crate::usecase::render::{self, RenderRequest};
use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};

#[utoipa::path(get, path = "/admin/config/render", tag = "settings", params(RenderQuery),
    responses(
        (status = 200, description = "the file's text: text/plain (env), application/json or application/yaml; the head it answers for in X-Cfgledger-Seq and its hash in X-Cfgledger-Head-Hash",
            content(
                (String = "text/plain"),
                (Object = "application/json"),
                (Object = "application/yaml"),
            )),
        (status = 400, description = "an unknown format, namespace or query field, or labels that are not a JSON object of strings", body = ErrorBody),
        (status = 403, description = "secrets asked for by a role other than platform_admin or config_reader", body = ErrorBody),
    ))]
pub async fn render(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<RenderQuery>,
) -> Result<Response, ApiError> {
    let format = query.format.as_deref().unwrap_or("env").parse()?;
    if query.include_secrets && !matches!(caller.role, Role::PlatformAdmin | Role::ConfigReader) {
        return Err(ApiError::new(
            crate::error::ErrorCode::Forbidden,
            format!("role {} may not render secrets: it needs platform_admin or config_reader", caller.role),
        ));
    }
    let labels = render::parse_labels(query.labels.as_deref())?;
    let req = RenderRequest {
        namespace: query.namespace,
        format,
        include_secrets: query.include_secrets,
        include_defaults: query.include_defaults,
        instance: query.instance,
        labels,
    };
    let done = render::render(&state.ledger, &req, caller.context(query.reason)).await?;
    if !done.secrets.is_empty() {
        tracing::info!(actor = %caller.name, role = %caller.role, namespace = %done.namespace, keys = done.secrets.len(), "secrets rendered");
    }
    let mut response = done.text.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(done.format.content_type()));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(seq) = HeaderValue::from_str(&done.seq.to_string()) {
        headers.insert(HeaderName::from_static("x-cfgledger-seq"), seq);
    }
    if let Ok(hash) = HeaderValue::from_str(&done.head_hash) {
        headers.insert(HeaderName::from_static("x-cfgledger-head-hash"), hash);
    }
    Ok(response)
}
