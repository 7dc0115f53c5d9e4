//! `/ui/registry/{kind}`: the resource registry, one tab per kind (gateways, servers, tools, prompts, resources,
//! roots). The list reads through `usecase::registry::list`, as `GET /{kind}` does, with a tag filter; each
//! row says what links it (a server's tools) and what it links. `/ui/registry/{kind}/new` and `.../item?name=`
//! show an entity in a form for its common fields beside a JSON editor for its whole body; `registry.js`
//! saves through `POST /{kind}` and `PUT /{kind}/{name}` and deletes through `DELETE`, showing a 409's
//! referrers as links. Credentials are write-only: the page names the stored auth type, never its sealed
//! value, and offers a separate field to replace it.

use super::page;
use super::session::Session;
use crate::api::AppState;
use crate::auth::Role;
use crate::model::Entity;
use crate::usecase;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use cfgledger_events::{ResourceKind, SettingsLookup};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{Map, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/registry", get(|| async { Redirect::to("/ui/registry/gateways") }))
        .route("/ui/registry/{kind}", get(list_page))
        .route("/ui/registry/{kind}/new", get(new_page))
        .route("/ui/registry/{kind}/item", get(item_page))
}

/// The tabs, in the order an operator sets a gateway up: where tools come from, what groups them, then the
/// rest.
const TABS: [ResourceKind; 6] = [
    ResourceKind::Gateways,
    ResourceKind::Servers,
    ResourceKind::Tools,
    ResourceKind::Prompts,
    ResourceKind::Resources,
    ResourceKind::Roots,
];

/// Stored fields left out of the JSON body: the sealed credential is never shown (a PUT without it keeps
/// the stored one; "Replace credential" sets a new one). The provenance is not among the fields at all.
const HIDDEN: [&str; 1] = ["auth_value"];

fn title(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Gateways => "Gateways",
        ResourceKind::Servers => "Servers",
        ResourceKind::Tools => "Tools",
        ResourceKind::Prompts => "Prompts",
        ResourceKind::Resources => "Resources",
        ResourceKind::Roots => "Roots",
    }
}

fn unknown_kind(session: &Session, kind: &str) -> Response {
    page::error_page(
        StatusCode::NOT_FOUND,
        "No such registry tab",
        &format!(
            "There is no registry kind {kind:?}. Pick one of {}.",
            TABS.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
        ),
        Some(session),
    )
}

/// Where an entity is shown: its page, by name in the query (a resource's uri holds slashes).
pub fn item_url(kind: ResourceKind, name: &str) -> String {
    format!("/ui/registry/{kind}/item?name={}", page::enc(name))
}

#[derive(Debug, Default, Deserialize)]
pub struct ListFilters {
    #[serde(default)]
    tags: Option<String>,
    #[serde(default)]
    active: Option<String>,
    /// Set by `registry.js` after a save, to say so and highlight the row.
    #[serde(default)]
    saved: Option<String>,
}

fn tabs(kind: ResourceKind) -> Markup {
    html! {
        nav class="tabs" aria-label="Registry kinds" {
            ul {
                @for k in TABS {
                    li { a href=(format!("/ui/registry/{k}")) aria-current=[(k == kind).then_some("page")] { (title(k)) } }
                }
            }
        }
    }
}

fn text_of<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    fields.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn names_of(fields: &Map<String, Value>, name: &str) -> Vec<String> {
    fields
        .get(name)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn identity(kind: ResourceKind, entity: &Entity) -> String {
    text_of(&entity.fields, kind.id_field()).unwrap_or_default().to_string()
}

/// `GET /ui/registry/{kind}`.
async fn list_page(
    State(state): State<AppState>,
    session: Session,
    Path(kind): Path<String>,
    Query(filters): Query<ListFilters>,
) -> Response {
    let Ok(kind) = kind.parse::<ResourceKind>() else {
        return unknown_kind(&session, &kind);
    };
    let tags_text = filters.tags.as_deref().map(str::trim).unwrap_or_default().to_string();
    let tags = usecase::registry::split_list(&tags_text);
    let active_only = filters.active.as_deref().is_some_and(|v| !v.is_empty() && v != "0" && v != "false");
    let snap = match usecase::settings::snapshot_as_of(&state.ledger, None).await {
        Ok((snap, _)) => snap,
        Err(e) => {
            return page::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Cannot read the registry",
                &format!("{e}. Reload the page in a moment."),
                Some(&session),
            )
        }
    };
    let items = usecase::registry::list(&snap.state, kind, &tags, !active_only);
    // Every tag in use on this kind, for one-click filters.
    let in_use: std::collections::BTreeSet<String> =
        snap.state.resources(kind).flat_map(|(_, e)| names_of(&e.fields, "tags")).collect();
    let total = snap.state.resources(kind).count();
    let admin = session.can(Role::PlatformAdmin);
    let one = kind.singular();
    let saved = filters.saved.as_deref().filter(|s| !s.is_empty());
    let body = html! {
        (tabs(kind))
        @if let Some(name) = saved {
            p class="notice ok-notice" role="status" { "Saved " (one) " " strong { (name) } "." }
        }
        div class="toolbar" {
            form class="filters" method="get" action=(format!("/ui/registry/{kind}")) role="search" aria-label=(format!("Filter the {kind}")) {
                div class="field grow" {
                    label for="f-tags" { "Tags" }
                    input id="f-tags" name="tags" type="search" value=(tags_text) placeholder="e.g. prod, web (any of them)"
                        aria-describedby="f-tags-hint";
                    span id="f-tags-hint" class="hint" { "Comma-separated; an entity matches when it has any of them." }
                }
                @if kind != ResourceKind::Roots {
                    span class="check" {
                        input type="checkbox" id="f-active" name="active" value="1" checked[active_only];
                        label for="f-active" { "Active only" }
                    }
                }
                button type="submit" { "Apply filters" }
            }
            @if admin {
                a class="button primary" href=(format!("/ui/registry/{kind}/new")) { "New " (one) }
            }
        }
        @if !in_use.is_empty() {
            nav class="tag-chips" aria-label="Filter by one tag" {
                span class="muted" { "Tags in use: " }
                @for t in &in_use {
                    a class="badge chip" href=(format!("/ui/registry/{kind}?tags={}", page::enc(t)))
                        aria-current=[(tags.len() == 1 && &tags[0] == t).then_some("true")] { (t) }
                }
                @if !tags.is_empty() { a href=(format!("/ui/registry/{kind}")) { "Show all" } }
            }
        }
        p class="count" { (items.len()) " of " (total) " " (kind) }
        @if !admin {
            p class="hint" { "Your role (" (session.caller().role.as_str()) ") can read the registry but not change it." }
        }
        p class="error" role="alert" id="registry-error" {}
        div class="notice live" id="registry-live" role="status" hidden data-kind=(kind) data-head=(snap.head.seq) {}
        @if items.is_empty() {
            p class="empty" {
                @if total == 0 { "No " (kind) " yet." @if admin { " Use “New " (one) "” to create one, or import a file on the " a href="/ui/transfer" { "Import & export" } " page." } }
                @else { "No " (kind) " match these filters." }
            }
        } @else {
            div class="table-wrap" {
                table class="registry" id="registry" data-kind=(kind) data-admin=(admin) {
                    caption class="visually-hidden" { (title(kind)) " of the registry" }
                    thead { tr {
                        th scope="col" { (if kind.id_field() == "uri" { "URI" } else { "Name" }) }
                        th scope="col" { "Details" }
                        th scope="col" { "Tags" }
                        th scope="col" { "Links" }
                        th scope="col" { "Last change" }
                        th scope="col" { span class="visually-hidden" { "Actions" } }
                    } }
                    tbody {
                        @for item in &items {
                            (row(&snap.state, kind, item, admin, saved))
                        }
                    }
                }
            }
        }
    };
    page::layout(&session, &format!("Registry: {}", title(kind)), "registry", &["registry.js"], body).into_response()
}

fn row(
    state: &cfgledger_projections::SettingsState,
    kind: ResourceKind,
    item: &Entity,
    admin: bool,
    saved: Option<&str>,
) -> Markup {
    let name = identity(kind, item);
    let f = &item.fields;
    let inactive = f.get("is_active") == Some(&Value::Bool(false));
    let referrers = state.referrers(kind, &name);
    let links: Vec<(ResourceKind, String)> = kind
        .references()
        .iter()
        .flat_map(|(field, target)| names_of(f, field).into_iter().map(move |n| (*target, n)))
        .collect();
    let flash = saved == Some(name.as_str());
    html! {
        tr data-name=(name) data-version=(item.version) class=[flash.then_some("flash")] {
            th scope="row" class="name" {
                a href=(item_url(kind, &name)) { code { (name) } }
                @if kind.id_field() == "uri" { @if let Some(n) = text_of(f, "name") { span class="desc" { (n) } } }
            }
            td class="details" {
                @if let Some(d) = text_of(f, "description") { span class="desc-main" { (d) } }
                @if let Some(u) = text_of(f, "url") { span class="desc" { code { (u) } } }
                @if let Some(t) = text_of(f, "mime_type") { span class="desc" { (t) } }
                span class="badges" {
                    @if inactive { span class="badge bad" { "inactive" } }
                    @else if kind != ResourceKind::Roots { span class="badge good" { "active" } }
                    @if kind.has_auth() {
                        @match text_of(f, "auth_type") {
                            Some(t) => span class="badge sensitive" title="The credential is stored encrypted and never shown; edit the entity to replace it" { "credential: " (t) },
                            None => span class="badge" { "no credential" },
                        }
                    }
                }
            }
            td class="tags" {
                @for t in names_of(f, "tags") { span class="badge" { (t) } }
            }
            td class="links" {
                @if !links.is_empty() {
                    span class="links-out" { "Links " }
                    @for (i, (k, n)) in links.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href=(item_url(*k, n)) { (k.singular()) " " (n) }
                    }
                }
                @if !referrers.is_empty() {
                    span class="links-in" { "Used by " }
                    @for (i, r) in referrers.iter().enumerate() {
                        @if i > 0 { ", " }
                        (referrer_link(r))
                    }
                }
                @if links.is_empty() && referrers.is_empty() { span class="muted" { "none" } }
            }
            td class="updated" {
                (page::time(&item.updated_at))
                span class="by" { "version " (item.version) }
            }
            td class="actions" {
                a href=(item_url(kind, &name)) aria-label=(format!("{} {name}", if admin { "Edit" } else { "View" })) {
                    (if admin { "Edit" } else { "View" })
                }
                @if admin {
                    button type="button" class="delete small" aria-label=(format!("Delete {name}")) { "Delete" }
                }
            }
        }
    }
}

/// A `KIND/NAME` as a link to the entity.
fn referrer_link(subject: &str) -> Markup {
    match subject.split_once('/').and_then(|(k, n)| k.parse::<ResourceKind>().ok().map(|k| (k, n))) {
        Some((k, n)) => html! { a href=(item_url(k, n)) { (k.singular()) " " (n) } },
        None => html! { (subject) },
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ItemQuery {
    #[serde(default)]
    name: Option<String>,
}

/// `GET /ui/registry/{kind}/new` (platform_admin).
async fn new_page(session: Session, Path(kind): Path<String>) -> Response {
    let Ok(kind) = kind.parse::<ResourceKind>() else {
        return unknown_kind(&session, &kind);
    };
    if !session.can(Role::PlatformAdmin) {
        return page::error_page(
            StatusCode::FORBIDDEN,
            "You cannot create entities",
            &format!(
                "Your role ({}) can read the registry but not change it. Ask a platform_admin.",
                session.caller().role.as_str()
            ),
            Some(&session),
        );
    }
    let mut fields = Map::new();
    fields.insert(kind.id_field().into(), Value::String(String::new()));
    if kind != ResourceKind::Roots {
        fields.insert("tags".into(), Value::Array(Vec::new()));
    }
    let body = editor(kind, None, &fields, true);
    page::layout(&session, &format!("New {}", kind.singular()), "registry", &["registry.js"], body).into_response()
}

/// `GET /ui/registry/{kind}/item?name=NAME`: the entity in its editor (a platform_admin) or read-only.
async fn item_page(
    State(state): State<AppState>,
    session: Session,
    Path(kind): Path<String>,
    Query(q): Query<ItemQuery>,
) -> Response {
    let Ok(kind) = kind.parse::<ResourceKind>() else {
        return unknown_kind(&session, &kind);
    };
    let name = q.name.unwrap_or_default();
    let snap = state.ledger.snapshot();
    // As `GET /{kind}/{name}` shows it.
    let Some(entity) = snap.state.resource_entry(kind, &name).map(|e| usecase::registry::shown(e, None)) else {
        return page::error_page(
            StatusCode::NOT_FOUND,
            &format!("No {} {name}", kind.singular()),
            &format!("It may have been deleted or renamed. Go back to the list of {kind} and pick another."),
            Some(&session),
        );
    };
    let admin = session.can(Role::PlatformAdmin);
    let referrers = snap.state.referrers(kind, &name);
    let body = html! {
        div class="notice live" id="registry-live" role="status" hidden data-kind=(kind) data-head=(snap.head.seq) data-name=(name) {}
        (editor(kind, Some(&entity), &entity.fields, admin))
        @if !referrers.is_empty() {
            h2 { "Used by" }
            ul class="referrers" { @for r in &referrers { li { (referrer_link(r)) } } }
            p class="hint" { "While these reference it, this " (kind.singular()) " cannot be deleted." }
        }
        @if session.can(Role::Auditor) {
            p { a href=(format!("/ui/timetravel?key={kind}/{}", page::enc(&name))) { "History of this " (kind.singular()) } }
        }
    };
    let verb = if admin { "Edit" } else { "View" };
    page::layout(&session, &format!("{verb} {} {name}", kind.singular()), "registry", &["registry.js"], body)
        .into_response()
}

/// The JSON body an editor starts from: the entity's fields, without its sealed credential or provenance.
fn editable(fields: &Map<String, Value>) -> String {
    let mut out = fields.clone();
    for h in HIDDEN {
        out.remove(h);
    }
    serde_json::to_string_pretty(&Value::Object(out)).unwrap_or_else(|_| "{}".to_string())
}

/// The form for an entity: common fields, the credential (write-only), and the JSON body. `entity` is
/// `None` for a new one. A reader sees the body read-only and no control.
fn editor(kind: ResourceKind, entity: Option<&Entity>, fields: &Map<String, Value>, admin: bool) -> Markup {
    let id_field = kind.id_field();
    let name = text_of(fields, id_field).unwrap_or_default().to_string();
    let json = editable(fields);
    let back = format!("/ui/registry/{kind}");
    if !admin {
        return html! {
            p { a href=(back) { "← All " (kind) } }
            (provenance(kind, entity, fields))
            h2 { "Body" }
            pre class="json-view" tabindex="0" role="region" aria-label="The entity as JSON" { (json) }
        };
    }
    let text_field = |field: &str, label: &str, hint: Option<&str>, readonly: bool| {
        let id = format!("e-{field}");
        html! {
            div class="field" {
                label for=(id) { (label) }
                input id=(id) type="text" data-field=(field) data-type="text" value=(text_of(fields, field).unwrap_or_default())
                    readonly[readonly] aria-describedby=[hint.map(|_| format!("{id}-hint"))];
                @if let Some(h) = hint { span id=(format!("{id}-hint")) class="hint" { (h) } }
            }
        }
    };
    let list_field = |field: &str, label: &str, hint: &str| {
        let id = format!("e-{field}");
        html! {
            div class="field" {
                label for=(id) { (label) }
                input id=(id) type="text" data-field=(field) data-type="list" value=(names_of(fields, field).join(", "))
                    aria-describedby=(format!("{id}-hint"));
                span id=(format!("{id}-hint")) class="hint" { (hint) }
            }
        }
    };
    let creating = entity.is_none();
    html! {
        p { a href=(back) { "← All " (kind) } }
        (provenance(kind, entity, fields))
        form id="entity-form" class="entity" novalidate
            data-kind=(kind) data-name=(name) data-id-field=(id_field) data-version=[entity.map(|e| e.version)]
            data-mode=(if creating { "create" } else { "edit" }) {
            fieldset class="common" {
                legend { "Common fields" }
                (text_field(id_field, if id_field == "uri" { "URI" } else { "Name" },
                    Some(if creating { "The identity: it cannot change once created." } else { "The identity cannot change; create a new entity to rename." }),
                    !creating))
                @if id_field == "uri" { (text_field("name", "Display name", None, false)) }
                @if kind != ResourceKind::Roots { (text_field("description", "Description", None, false)) }
                @if matches!(kind, ResourceKind::Tools | ResourceKind::Gateways) {
                    (text_field("url", "URL", Some("For example https://host/path."), false))
                }
                @if kind == ResourceKind::Resources { (text_field("mime_type", "MIME type", None, false)) }
                @if kind == ResourceKind::Prompts {
                    div class="field" {
                        label for="e-template" { "Template" }
                        textarea id="e-template" data-field="template" data-type="text" rows="4" {
                            (text_of(fields, "template").unwrap_or_default())
                        }
                    }
                }
                @if kind == ResourceKind::Servers {
                    (list_field("associated_tools", "Tools", "Names of tools, comma-separated."))
                    (list_field("associated_resources", "Resources", "URIs of resources, comma-separated."))
                    (list_field("associated_prompts", "Prompts", "Names of prompts, comma-separated."))
                }
                @if kind != ResourceKind::Roots {
                    (list_field("tags", "Tags", "Comma-separated."))
                    span class="check" {
                        input type="checkbox" id="e-is_active" data-field="is_active" data-type="bool"
                            checked[fields.get("is_active") != Some(&Value::Bool(false))];
                        label for="e-is_active" { "Active" }
                    }
                }
            }
            @if kind.has_auth() { (credential(fields, creating)) }
            fieldset class="body" {
                legend { "The whole body (JSON)" }
                p class="hint" id="e-json-hint" {
                    "Every field, including those the form does not show; the form and this editor stay in step. "
                    "Unknown fields are kept. " code { "created_at" } ", " code { "updated_at" } " and " code { "version" }
                    " are ignored when saved."
                    @if kind.has_auth() { " Credentials are not shown here: use “Replace credential” above." }
                }
                div class="json-box" {
                    pre class="gutter" aria-hidden="true" {}
                    textarea id="e-json" class="json" spellcheck="false" rows="16" aria-describedby="e-json-hint e-json-parse" { (json) }
                }
                div class="json-tools" {
                    button type="button" class="small" id="e-pretty" { "Pretty-print" }
                    p class="parse" id="e-json-parse" aria-live="polite" {}
                }
                label for="e-json" class="visually-hidden" { "Entity body as JSON" }
            }
            p class="error" role="alert" id="entity-error" {}
            div class="notice" role="status" id="entity-notice" hidden {}
            div class="buttons" {
                button type="submit" class="primary" id="e-save" { (if creating { "Create" } else { "Save changes" }) }
                a class="button" href=(back) { "Cancel" }
                @if !creating { button type="button" class="danger" id="e-delete" { "Delete…" } }
            }
        }
    }
}

/// The credential block: the stored auth type (never its value) and write-only fields to replace or remove
/// it.
fn credential(fields: &Map<String, Value>, creating: bool) -> Markup {
    let stored = text_of(fields, "auth_type");
    html! {
        fieldset class="credential" aria-describedby="c-hint" {
            legend { "Credential" }
            p id="c-hint" class="hint" {
                @match stored {
                    Some(t) => { "A " strong { (t) } " credential is stored, encrypted. It is never shown; fill in the fields below only to replace it." },
                    None => { "No credential is stored. Fill in the fields below to set one." },
                }
            }
            div class="cred-grid" {
                div class="field" {
                    label for="c-type" { "Type" }
                    select id="c-type" {
                        @for (v, label) in [("bearer", "Bearer token"), ("basic", "Basic (user name and password)"), ("headers", "A header")] {
                            option value=(v) selected[stored == Some(v)] { (label) }
                        }
                    }
                }
                div class="field" data-for="basic headers" {
                    label for="c-user" id="c-user-label" { "User name or header name" }
                    input id="c-user" type="text" autocomplete="off";
                }
                div class="field" {
                    label for="c-secret" { (if stored.is_some() && !creating { "Replace credential" } else { "Credential" }) }
                    input id="c-secret" type="password" autocomplete="new-password" placeholder="the new secret (write-only)";
                }
            }
            @if stored.is_some() && !creating {
                span class="check" {
                    input type="checkbox" id="c-remove";
                    label for="c-remove" { "Remove the stored credential" }
                }
            }
        }
    }
}

/// When an entity was created and last changed, and its version.
fn provenance(kind: ResourceKind, entity: Option<&Entity>, fields: &Map<String, Value>) -> Markup {
    let Some(e) = entity else { return html! {} };
    html! {
        dl class="provenance" {
            dt { "Version" } dd { (e.version) }
            dt { "Created" } dd { (page::time(&e.created_at)) }
            dt { "Last changed" } dd { (page::time(&e.updated_at)) }
            @if kind.has_auth() {
                dt { "Credential" }
                dd { @match text_of(fields, "auth_type") { Some(t) => { (t) " (stored encrypted, never shown)" }, None => { "none" } } }
            }
        }
    }
}
