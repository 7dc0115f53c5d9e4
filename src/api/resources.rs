//! The resource registry over HTTP: `GET/POST /{kind}` and `GET/PUT/PATCH/DELETE /{kind}/{name}` for
//! gateways, servers, tools, prompts, resources and roots, with `?tags=` filtering. Writes need
//! `platform_admin`, are rate limited and audited like settings; plaintext credentials in the input are
//! sealed before they reach the log and only `auth_type` and the opaque `auth_value` come back.

use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, Caller};
use super::{ApiError, AppState};
use crate::error::ErrorCode;
use crate::model::{AsOf, AsOfQuery, Deleted, EntityFields, EntityList, EntityListQuery};
use crate::usecase::registry;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cfgledger_events::{Command, ResourceKind};

/// The routes of every kind.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for kind in ResourceKind::ALL {
        router = router
            .route(
                &format!("/{kind}"),
                get(move |s: State<AppState>, c: Caller, q: ApiQuery<EntityListQuery>| list(kind, s, c, q))
                    .post(move |s: State<AppState>, a: Admin, b: ApiJson<EntityFields>| create(kind, s, a, b)),
            )
            .route(
                &format!("/{kind}/{{name}}"),
                get(move |s: State<AppState>, c: Caller, n: ApiPath<String>, q: ApiQuery<AsOfQuery>| {
                    show(kind, s, c, n, q)
                })
                .put(move |s: State<AppState>, a: Admin, n: ApiPath<String>, h: HeaderMap, b: ApiJson<EntityFields>| {
                    replace(kind, s, a, n, h, b)
                })
                .patch(
                    move |s: State<AppState>, a: Admin, n: ApiPath<String>, h: HeaderMap, b: ApiJson<EntityFields>| {
                        patch(kind, s, a, n, h, b)
                    },
                )
                .delete(move |s: State<AppState>, a: Admin, n: ApiPath<String>, h: HeaderMap| delete(kind, s, a, n, h)),
            )
            .route(
                &format!("/{kind}/{{name}}/history"),
                get(
                    move |s: State<AppState>, c: Caller, n: ApiPath<String>, q: ApiQuery<super::history::PageQuery>| {
                        history(kind, s, c, n, q)
                    },
                ),
            );
    }
    router
}

fn entity_response(state: &AppState, kind: ResourceKind, name: &str, status: StatusCode) -> Result<Response, ApiError> {
    let snap = state.ledger.snapshot();
    let entry = snap
        .state
        .resource_entry(kind, name)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no {} {name}", kind.singular())))?;
    let mut response = (status, Json(registry::shown(entry, None))).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", entry.version)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// The point a past read was made at.
fn as_of(snap: &crate::live::Snapshot) -> AsOf {
    AsOf { seq: snap.head.seq, time: snap.head_time.to_string() }
}

async fn list(
    kind: ResourceKind,
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<EntityListQuery>,
) -> Result<Json<EntityList>, ApiError> {
    let tags = query.tags.as_deref().map(registry::split_list).unwrap_or_default();
    let past = query.as_of.is_some();
    let snap = super::config::snapshot_as_of(&state, query.as_of).await?;
    let items = registry::list(&snap.state, kind, &tags, query.include_inactive != Some(false));
    let head = state.ledger.snapshot().head.seq;
    Ok(Json(EntityList { items, head, as_of: past.then(|| as_of(&snap)) }))
}

async fn show(
    kind: ResourceKind,
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<AsOfQuery>,
) -> Result<Response, ApiError> {
    if query.as_of.is_none() {
        return entity_response(&state, kind, &name, StatusCode::OK);
    }
    let snap = super::config::snapshot_as_of(&state, query.as_of).await?;
    let entry = snap.state.resource_entry(kind, &name).ok_or_else(|| {
        ApiError::new(ErrorCode::NotFound, format!("no {} {name} at seq {}", kind.singular(), snap.head.seq))
    })?;
    Ok(Json(registry::shown(entry, Some(as_of(&snap)))).into_response())
}

/// `GET /{kind}/{name}/history` (auditor): every state the entity had, newest first.
async fn history(
    kind: ResourceKind,
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<super::history::PageQuery>,
) -> Result<Json<crate::model::AuditPage>, ApiError> {
    caller.require(crate::auth::Role::Auditor)?;
    super::history::page(state, format!("{kind}/{name}"), query).await
}

async fn create(
    kind: ResourceKind,
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiJson(fields): ApiJson<EntityFields>,
) -> Result<Response, ApiError> {
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let name = cfgledger_events::resource::identity(kind, &fields).map_err(crate::error::Error::Rejected)?;
    state.ledger.execute_async(Command::CreateResource { kind, fields }, caller.context(None)).await?;
    tracing::info!(kind = %kind, name = %name, actor = %caller.name, "resource created");
    let mut response = entity_response(&state, kind, &name, StatusCode::CREATED)?;
    let location = format!("/{kind}/{}", percent_encode(&name));
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

async fn replace(
    kind: ResourceKind,
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(fields): ApiJson<EntityFields>,
) -> Result<Response, ApiError> {
    let expected = super::config::if_match(&headers)?;
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let cmd = guarded(kind, &name, expected, Command::ReplaceResource { kind, name: name.clone(), fields });
    state.ledger.execute_async(cmd, caller.context(None)).await?;
    entity_response(&state, kind, &name, StatusCode::OK)
}

async fn patch(
    kind: ResourceKind,
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<EntityFields>,
) -> Result<Response, ApiError> {
    let expected = super::config::if_match(&headers)?;
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let cmd = guarded(kind, &name, expected, Command::PatchResource { kind, name: name.clone(), patch });
    state.ledger.execute_async(cmd, caller.context(None)).await?;
    entity_response(&state, kind, &name, StatusCode::OK)
}

async fn delete(
    kind: ResourceKind,
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Json<Deleted>, ApiError> {
    let expected = super::config::if_match(&headers)?;
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let cmd = guarded(kind, &name, expected, Command::DeleteResource { kind, name: name.clone() });
    let outcome = state.ledger.execute_async(cmd, caller.context(None)).await?;
    Ok(Json(Deleted { kind: kind.as_str().to_string(), name, deleted: true, seq: outcome.seqs.map(|(_, s)| s) }))
}

/// `cmd`, made compare-and-set when the request sent `If-Match` (the `ETag` of a read).
fn guarded(kind: ResourceKind, name: &str, expected: Option<u64>, cmd: Command) -> Command {
    match expected {
        Some(version) => Command::ExpectResource { kind, name: name.to_string(), version, then: Box::new(cmd) },
        None => cmd,
    }
}

/// A name as one path segment (a resource's uri holds slashes).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The OpenAPI description of the six path families of every kind, generated from the model's types
/// (`Entity`, `EntityList`, `Deleted`, the queries' `IntoParams`) the way [`routes`] generates the routes: one
/// loop over [`ResourceKind::ALL`], so that nothing about them is written by hand.
pub(super) struct ResourcePaths;

impl utoipa::Modify for ResourcePaths {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for kind in ResourceKind::ALL {
            for (path, item) in openapi::paths(kind) {
                doc.paths.paths.insert(path, item);
            }
        }
    }
}

mod openapi {
    //! The path items of one kind, built with utoipa's builders from the model's schemas.

    use crate::model::{AsOfQuery, EntityListQuery};
    use cfgledger_events::ResourceKind;
    use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn};
    use utoipa::openapi::request_body::RequestBodyBuilder;
    use utoipa::openapi::response::{ResponseBuilder, Responses, ResponsesBuilder};
    use utoipa::openapi::{ContentBuilder, HeaderBuilder, ObjectBuilder, PathItem, Ref, Required, Type};
    use utoipa::IntoParams;

    /// The errors a write can answer, besides those every operation answers (`CommonErrors`).
    const WRITE_ERRORS: [(&str, &str); 6] = [
        ("400", "a malformed body (not a JSON object)"),
        ("403", "insufficient role (platform_admin needed)"),
        ("409", "exists already, referenced by others, or changed since the If-Match version"),
        ("413", "the body exceeds REQUEST_SIZE_LIMIT"),
        ("422", "a field of the wrong type, a missing reference or bad credentials"),
        ("429", "the caller's write rate limit is reached (Retry-After)"),
    ];

    fn json(description: &str, schema: &str) -> utoipa::openapi::Response {
        ResponseBuilder::new()
            .description(description)
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name(schema))).build())
            .build()
    }

    fn responses(ok: (&str, utoipa::openapi::Response), errors: &[(&str, &str)]) -> Responses {
        let mut responses = ResponsesBuilder::new().response(ok.0, ok.1).build();
        for (status, description) in errors {
            super::super::openapi::add_error(&mut responses, status, description);
        }
        responses
    }

    fn name(kind: ResourceKind) -> Parameter {
        ParameterBuilder::new()
            .name("name")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some(format!("the {}'s {} (percent-encoded)", kind.singular(), kind.id_field())))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build()
    }

    fn if_match() -> Parameter {
        ParameterBuilder::new()
            .name("If-Match")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some("the ETag from GET: apply only at that version (409 otherwise)"))
            .schema(Some(
                ObjectBuilder::new().schema_type(Type::String).pattern(Some(crate::model::constraints::IF_MATCH)),
            ))
            .build()
    }

    fn operation(summary: String, parameters: Vec<Parameter>, responses: Responses) -> OperationBuilder {
        OperationBuilder::new().tag("registry").summary(Some(summary)).parameters(Some(parameters)).responses(responses)
    }

    /// `op` with the entity's fields as its body; `required` names the fields a body must hold (a create's
    /// identity field).
    fn with_body(op: OperationBuilder, required: &[&str]) -> Operation {
        let mut fields = ObjectBuilder::new().schema_type(Type::Object);
        for field in required {
            let text = ObjectBuilder::new().schema_type(Type::String).min_length(Some(1));
            fields = fields.property(*field, text).required(*field);
        }
        let fields = fields.description(Some(
            "the entity's fields (unknown fields are kept); credentials go in as auth_type with auth_username and \
             auth_password, auth_token, or auth_header_key/auth_header_value/auth_headers; created_at, updated_at and \
             version are ignored",
        ));
        let content = ContentBuilder::new().schema(Some(fields)).build();
        op.request_body(Some(
            RequestBodyBuilder::new().required(Some(Required::True)).content("application/json", content).build(),
        ))
        .build()
    }

    /// `/{kind}`, `/{kind}/{name}` and `/{kind}/{name}/history` with their operations.
    pub(super) fn paths(kind: ResourceKind) -> Vec<(String, PathItem)> {
        let one = kind.singular();
        let query = Some(ParameterIn::Query);
        let list = operation(
            format!("Every {one}, with tag and activity filters, now or as of a point of the log (any role)"),
            EntityListQuery::into_params(|| query.clone()),
            responses(
                ("200", json("the entities and the log's head", "EntityList")),
                &[("400", "a query that does not parse, or a point that does not")],
            ),
        )
        .build();
        let mut created = json("the created entity (Location names it)", "Entity");
        created.headers.insert(
            "Location".into(),
            HeaderBuilder::new().schema(ObjectBuilder::new().schema_type(Type::String)).build(),
        );
        let create = with_body(
            operation(
                format!("Create a {one}; plaintext credentials are sealed (platform_admin)"),
                Vec::new(),
                responses(("201", created), &WRITE_ERRORS),
            ),
            &[kind.id_field()],
        );
        let mut show_params = vec![name(kind)];
        show_params.extend(AsOfQuery::into_params(|| query.clone()));
        let show = operation(
            format!("One {one}, now (ETag names its version) or as of a point of the log (any role)"),
            show_params,
            responses(
                ("200", json("the entity", "Entity")),
                &[("400", "a query that does not parse, or a point that does not"), ("404", "no such entity")],
            ),
        )
        .build();
        let written = |what: &str| {
            let mut errors = WRITE_ERRORS.to_vec();
            errors.push(("404", "no such entity"));
            responses(("200", json(what, "Entity")), &errors)
        };
        let replace = with_body(
            operation(
                format!("Replace a {one}; credentials omitted keep the stored ones (platform_admin)"),
                vec![name(kind), if_match()],
                written("the entity as stored"),
            ),
            &[],
        );
        let patch = with_body(
            operation(
                format!("Merge fields into a {one}; null removes a field (platform_admin)"),
                vec![name(kind), if_match()],
                written("the entity as stored"),
            ),
            &[],
        );
        let delete = operation(
            format!("Delete a {one}; 409 while others reference it (platform_admin)"),
            vec![name(kind), if_match()],
            responses(
                ("200", json("what was deleted", "Deleted")),
                &[
                    ("400", "a name that is not valid UTF-8, or a malformed If-Match"),
                    ("403", "insufficient role (platform_admin needed)"),
                    ("404", "no such entity"),
                    ("409", "referenced by others, or changed since the If-Match version"),
                    ("429", "the caller's write rate limit is reached (Retry-After)"),
                ],
            ),
        )
        .build();
        // The page is the one every subject's history answers (`AuditPage`).
        let page = ResponseBuilder::new()
            .description("a page of entries, the next cursor and the head")
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("AuditPage"))).build())
            .build();
        let history = operation(
            format!("Every state the {one} has had, newest first, a page at a time (auditor)"),
            vec![name(kind)],
            responses(
                ("200", page),
                &[("400", "a bad cursor or limit"), ("403", "insufficient role (auditor needed)")],
            ),
        )
        .build();
        let mut collection = PathItem::new(HttpMethod::Get, list);
        collection.post = Some(create);
        let mut entity = PathItem::new(HttpMethod::Get, show);
        entity.put = Some(replace);
        entity.patch = Some(patch);
        entity.delete = Some(delete);
        vec![
            (format!("/{kind}"), collection),
            (format!("/{kind}/{{name}}"), entity),
            (format!("/{kind}/{{name}}/history"), PathItem::new(HttpMethod::Get, history)),
        ]
    }
}
