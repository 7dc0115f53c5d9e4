//! `/ui/settings`: a namespace's keys with their values, sources and badges, filtered by search, category,
//! source and flags (on the server, and instantly in the browser by `settings.js`), and edited in place by
//! `settings.js` through `PUT`/`DELETE /admin/config/{key}` with `If-Match`.

use super::page::{self, nonempty};
use super::session::Session;
use crate::api::AppState;
use crate::auth::Role;
use crate::model::{ConfigItem, ListQuery};
use crate::usecase;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cfgledger_events::catalog::ValueType;
use maud::{html, Markup};
use serde::Deserialize;

/// The page's query: what the filter form sends.
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    ns: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    locked: Option<String>,
    #[serde(default)]
    sensitive: Option<String>,
    #[serde(default)]
    pending: Option<String>,
}

fn set(flag: &Option<String>) -> bool {
    flag.as_deref().is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

impl Filters {
    fn keep(&self, item: &ConfigItem) -> bool {
        nonempty(&self.source).is_none_or(|s| item.source.as_str() == s)
            && (!set(&self.locked) || item.locked)
            && (!set(&self.sensitive) || item.sensitive)
            && (!set(&self.pending) || item.pending_restart)
    }
}

pub async fn page(State(state): State<AppState>, session: Session, Query(filters): Query<Filters>) -> Response {
    let ledger = &state.ledger;
    let catalog = ledger.catalog();
    let ns = nonempty(&filters.ns).unwrap_or(cfgledger_events::namespace::DEFAULT).to_string();
    let category = nonempty(&filters.category).map(str::to_string);
    // The category filter applies on the server only when the namespace has it (a namespace switch keeps
    // the other filters).
    let categories: Vec<String> = {
        let mut seen: Vec<String> = Vec::new();
        for spec in catalog.specs().iter().filter(|s| s.namespace == ns) {
            if !seen.contains(&spec.category) {
                seen.push(spec.category.clone());
            }
        }
        seen
    };
    let category = category.filter(|c| categories.contains(c));
    let query = ListQuery { namespace: Some(ns.clone()), category: category.clone(), q: None, as_of: None };
    let list = match usecase::settings::list(ledger, &query).await {
        Ok(list) => list,
        Err(e) => {
            return page::error_page(
                StatusCode::BAD_REQUEST,
                "Cannot list these settings",
                &format!("{e}. Pick a namespace from the list."),
                Some(&session),
            )
        }
    };
    let total = list.items.len();
    let needle = nonempty(&filters.q).map(str::to_ascii_lowercase);
    let admin = session.can(Role::PlatformAdmin);
    let auditor = session.can(Role::Auditor);
    let rows: Vec<&ConfigItem> = list.items.iter().collect();
    let shown = rows.iter().filter(|i| filters.keep(i) && matches(i, needle.as_deref())).count();
    let body = html! {
        form class="filters" method="get" action="/ui/settings" role="search" aria-label="Filter the settings" {
            div class="field" {
                label for="f-ns" { "Namespace" }
                select id="f-ns" name="ns" {
                    @for n in catalog.namespaces() {
                        option value=(n.name) selected[n.name == ns] { (n.name) " (" (n.application) ")" }
                    }
                }
            }
            div class="field grow" {
                label for="f-q" { "Search keys and descriptions" }
                input id="f-q" name="q" type="search" value=[filters.q.as_deref()] placeholder="e.g. LOG_ or timeout";
            }
            div class="field" {
                label for="f-category" { "Category" }
                select id="f-category" name="category" {
                    option value="" { "All categories" }
                    @for c in &categories { option value=(c) selected[Some(c) == category.as_ref()] { (c) } }
                }
            }
            div class="field" {
                label for="f-source" { "Source" }
                select id="f-source" name="source" {
                    option value="" { "Any source" }
                    @for (v, label) in [("db", "db (the log)"), ("env", "env"), ("default", "default"), ("unset", "unset")] {
                        option value=(v) selected[nonempty(&filters.source) == Some(v)] { (label) }
                    }
                }
            }
            fieldset class="flags" {
                legend { "Only" }
                (flag("f-locked", "locked", "locked", set(&filters.locked)))
                (flag("f-sensitive", "sensitive", "sensitive", set(&filters.sensitive)))
                (flag("f-pending", "pending", "pending restart", set(&filters.pending)))
            }
            button type="submit" { "Apply filters" }
        }
        p class="count" id="count" aria-live="polite" { (shown) " of " (total) " keys" }
        @if !admin { p class="hint" { "Your role (" (session.caller().role.as_str()) ") can read settings but not change them." } }
        div class="table-wrap" {
            table class="settings" id="settings" data-namespace=(ns) data-head=(list.head) data-admin=(admin) {
                caption class="visually-hidden" { "Settings of namespace " (ns) }
                thead { tr {
                    th scope="col" { "Key" }
                    th scope="col" { "Value" }
                    th scope="col" { "Source" }
                    th scope="col" { "Flags" }
                    th scope="col" { "Last change" }
                    th scope="col" { span class="visually-hidden" { "Actions" } }
                } }
                tbody {
                    @for item in rows {
                        (row(&state, item, admin, auditor, filters.keep(item) && matches(item, needle.as_deref())))
                    }
                }
            }
        }
    };
    page::layout(&session, "Settings", "settings", &["settings.js"], body).into_response()
}

fn matches(item: &ConfigItem, needle: Option<&str>) -> bool {
    needle
        .is_none_or(|n| item.key.to_ascii_lowercase().contains(n) || item.description.to_ascii_lowercase().contains(n))
}

fn flag(id: &str, name: &str, label: &str, checked: bool) -> Markup {
    html! {
        span class="check" {
            input type="checkbox" id=(id) name=(name) value="1" checked[checked];
            label for=(id) { (label) }
        }
    }
}

/// The choices of a key that has a fixed set of values, for the editor's select.
fn choices(state: &AppState, id: &str) -> Option<String> {
    match &state.ledger.catalog().get(id)?.ty {
        ValueType::Enum { values } => serde_json::to_string(values).ok(),
        ValueType::Bool => Some("[\"true\",\"false\"]".to_string()),
        _ => None,
    }
}

fn row(state: &AppState, item: &ConfigItem, admin: bool, auditor: bool, visible: bool) -> Markup {
    let id = format!("{}:{}", item.namespace, item.key);
    let value = page::value_text(&item.value);
    html! {
        tr id=(format!("row-{id}")) hidden[!visible]
            data-key=(id) data-version=(item.version) data-type=(item.ty) data-source=(item.source.as_str())
            data-locked=(item.locked) data-sensitive=(item.sensitive) data-pending=(item.pending_restart)
            data-choices=[choices(state, &id)] {
            th scope="row" class="key" {
                code { (item.key) }
                span class="desc" { (item.description) }
            }
            td class="value" {
                span class="val" title=(value) { (value) }
                @if let (true, Some(p)) = (item.pending_restart, &item.pending_value) {
                    span class="pending" { "pending restart: " code { (page::value_text(p)) } }
                }
                @if let Some(e) = &item.stored_error { span class="error" { (e) } }
            }
            td class="source" { span class=(format!("badge source-{}", item.source.as_str())) { (item.source.as_str()) } }
            td class="flags" {
                span class="badge type" { (item.ty) }
                @if item.locked { span class="badge locked" title="Set only from the environment (.env) and `cfgledger config reseed`" { "locked" } }
                @if item.sensitive { span class="badge sensitive" title="Encrypted in the log and masked everywhere" { "sensitive" } }
                @if item.reload == "restart" { span class="badge restart" title="Takes effect when the application restarts" { "restart" } }
                @if item.pending_restart { span class="badge pending" { "pending restart" } }
            }
            td class="updated" {
                @if let Some(at) = &item.updated_at {
                    (page::time(at))
                    @if let Some(by) = &item.updated_by { span class="by" { "by " (by) } }
                } @else { span class="muted" { "never changed" } }
            }
            td class="actions" {
                @if item.locked {
                    span class="locked-why" { "Locked: change it in .env, then run " code { "cfgledger config reseed" } "." }
                } @else if admin {
                    button type="button" class="edit" aria-label=(format!("Edit {}", item.key)) { "Edit" }
                }
                @if auditor {
                    a href=(format!("/ui/timetravel?key={id}")) aria-label=(format!("History of {}", item.key)) { "History" }
                }
            }
        }
    }
}
