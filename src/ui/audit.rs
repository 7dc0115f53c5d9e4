//! `/ui/audit`: the audit trail (auditor), newest first, read through `timetravel::audit` with the same
//! `AuditFilter` the API and the CLI send: key prefix, actor, action, source, namespace, time range,
//! "rejected only", one batch; cursor pages from `next_cursor`. Each row shows old → new, and for JSON
//! documents only the paths that changed (`jsondiff`, computed here). The CSV and JSON-lines downloads are the
//! API's own answers (`/admin/config/audit?format=`), which the session cookie authenticates. A platform_admin
//! also gets, on each batch, links to revert it or to roll back to its point (`/ui/rollback`).

#[path = "jsondiff.rs"]
pub(super) mod jsondiff;

use super::page;
use super::session::Session;
use crate::api::AppState;
use crate::auth::Role;
use crate::model::{AuditEntry, AuditFilter, AuditPage, PageQuery};
use crate::usecase::{self, timetravel};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;
use std::collections::HashSet;

/// Rows per page of the viewer; a download asks for the API's largest page.
const PAGE_ROWS: usize = 50;
const DOWNLOAD_ROWS: usize = timetravel::MAX_LIMIT;

pub fn routes() -> Router<AppState> {
    Router::new().route("/ui/audit", get(audit_page))
}

/// The page's query: what the filter form sends (checkboxes as `1`), plus the cursor of a page link.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    ns: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    rejected: Option<String>,
    #[serde(default)]
    batch: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

pub(super) use super::page::{enc, nonempty};

fn checked(v: &Option<String>) -> bool {
    nonempty(v).is_some_and(|v| v != "0" && v != "false")
}

impl Filters {
    /// The use case's filter (the API's query) for these fields.
    fn filter(&self, limit: usize) -> AuditFilter {
        let text = |v: &Option<String>| nonempty(v).map(str::to_string);
        AuditFilter {
            namespace: text(&self.ns),
            key: text(&self.key),
            actor: text(&self.actor),
            action: text(&self.action),
            source: text(&self.source),
            batch: text(&self.batch),
            since: text(&self.since),
            until: text(&self.until),
            rejected: checked(&self.rejected),
            cursor: text(&self.cursor),
            limit: Some(limit),
            ..AuditFilter::default()
        }
    }

    /// This page's own query, without the cursor (or with another one).
    fn query(&self, cursor: Option<&str>) -> String {
        let mut pairs: Vec<(&str, &str)> = [
            ("key", &self.key),
            ("actor", &self.actor),
            ("action", &self.action),
            ("source", &self.source),
            ("ns", &self.ns),
            ("since", &self.since),
            ("until", &self.until),
            ("batch", &self.batch),
        ]
        .iter()
        .filter_map(|(k, v)| nonempty(v).map(|v| (*k, v)))
        .collect();
        if checked(&self.rejected) {
            pairs.push(("rejected", "1"));
        }
        if let Some(c) = cursor {
            pairs.push(("cursor", c));
        }
        query_string(&pairs)
    }
}

/// A batch id as the pages show it, like a short commit id (the whole id is in the link): its last 8 digits.
/// A batch id begins with the time it was made (a UUIDv7), so the batches of a minute share their first
/// digits; the last ones are random, and `revert` takes them as well as a prefix.
pub(super) fn short_id(id: &str) -> String {
    let skip = id.chars().count().saturating_sub(8);
    id.chars().skip(skip).collect()
}

/// The first 8 characters of a digest, as the pages show it.
pub(super) fn short_digest(digest: &str) -> String {
    digest.chars().take(8).collect()
}

/// `k=v&...`, percent-encoded.
pub(super) fn query_string(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// The API's query for the same filter, for the downloads: only `AuditFilter`'s fields, which it checks.
fn download_query(filter: &AuditFilter, format: &str) -> String {
    let limit = DOWNLOAD_ROWS.to_string();
    let mut pairs: Vec<(&str, &str)> = [
        ("namespace", &filter.namespace),
        ("key", &filter.key),
        ("actor", &filter.actor),
        ("action", &filter.action),
        ("source", &filter.source),
        ("batch", &filter.batch),
        ("since", &filter.since),
        ("until", &filter.until),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v)))
    .collect();
    if filter.rejected {
        pairs.push(("rejected", "true"));
    }
    pairs.push(("limit", &limit));
    pairs.push(("format", format));
    format!("/admin/config/audit?{}", query_string(&pairs))
}

/// The 403 page of a role that may not read the audit trail, saying what it can do instead.
pub(super) fn needs_auditor(session: &Session, what: &str) -> Response {
    page::error_page(
        StatusCode::FORBIDDEN,
        "Not allowed for your role",
        &format!(
            "{what} needs the auditor or platform_admin role; you are signed in as {} with role {}. \
             Ask a platform_admin for an auditor account, or log out and sign in with one. Any role may browse \
             the store as of a point under Time travel.",
            session.caller().name,
            session.caller().role.as_str()
        ),
        Some(session),
    )
}

async fn audit_page(State(state): State<AppState>, session: Session, Query(filters): Query<Filters>) -> Response {
    if !session.can(Role::Auditor) {
        return needs_auditor(&session, "The audit trail");
    }
    let filter = filters.filter(PAGE_ROWS);
    let ledger = state.ledger.clone();
    let run = filter.clone();
    let result = usecase::blocking(move || {
        let mut page = timetravel::audit(&ledger, &run)?;
        entity_states(&ledger, &mut page);
        Ok::<_, crate::error::Error>(page)
    })
    .await;
    let admin = session.can(Role::PlatformAdmin);
    let (status, listing) = match result {
        Ok(page) => (StatusCode::OK, listing(&page, &filters, admin)),
        Err(e) => {
            // The API's answer to the same query: a filter that does not parse (400), or the store (503).
            let e = crate::api::ApiError::from(e);
            let next = if e.status == StatusCode::BAD_REQUEST {
                "Correct the field and apply the filters again."
            } else {
                "Try again in a moment."
            };
            (
                e.status,
                html! { p class="error" role="alert" { "The audit trail cannot be read: " (e.message) ". " (next) } },
            )
        }
    };
    let body = html! {
        (filter_form(&state, &filters))
        div class="downloads" {
            span { "Download this filter's newest " (DOWNLOAD_ROWS) " entries: " }
            a class="button" href=(download_query(&filter, "csv")) download="audit.csv" { "CSV" }
            " "
            a class="button" href=(download_query(&filter, "jsonl")) download="audit.jsonl" { "JSON lines" }
            span class="hint" { "For more, narrow the time range, or page with " code { "cfgledger audit --output csv --cursor" } "." }
        }
        (listing)
    };
    page::layout(&session, "Audit trail", "audit", &["audit.js"], body).with_status(status).into_response()
}

/// An entity's audit entry names the fields an update changed, not their values: each update on the page
/// gets its state and the state before from the entity's history (the two versions at its seq), so the row
/// can show what changed. Without them (an error, a history cut short), the row keeps the field names.
fn entity_states(ledger: &crate::ledger::Ledger, page: &mut AuditPage) {
    for e in page.entries.iter_mut().filter(|e| e.action == "resource_updated") {
        let Some(subject) = e.key.clone() else { continue };
        // History pages start below a seq: the one after this entry's, so the first version is this one.
        let query = PageQuery { cursor: Some(format!("s{}", e.seq + 1)), limit: Some(2) };
        if let Ok(h) = timetravel::history(ledger, &subject, &query) {
            if let [now, before, ..] = h.entries.as_slice() {
                if now.seq == e.seq {
                    e.value = now.value.clone();
                    e.previous = before.value.clone();
                }
            }
        }
    }
}

fn filter_form(state: &AppState, f: &Filters) -> Markup {
    let catalog = state.ledger.catalog();
    let ns = nonempty(&f.ns);
    let action = nonempty(&f.action);
    let source = nonempty(&f.source);
    html! {
        form class="filters" method="get" action="/ui/audit" role="search" aria-label="Filter the audit trail" {
            div class="field grow" {
                label for="a-key" { "Key or entity" }
                input id="a-key" name="key" type="search" value=[nonempty(&f.key)]
                    placeholder="LOG_LEVEL, LOG_* or tools/*" aria-describedby="a-key-hint";
                span id="a-key-hint" class="hint" { "Exact, or a prefix ending in *" }
            }
            div class="field" {
                label for="a-ns" { "Namespace" }
                select id="a-ns" name="ns" {
                    option value="" { "Any" }
                    @for n in catalog.namespaces() {
                        option value=(n.name) selected[ns == Some(n.name.as_str())] { (n.name) }
                    }
                }
            }
            div class="field" {
                label for="a-actor" { "Actor" }
                input id="a-actor" name="actor" type="text" value=[nonempty(&f.actor)] size="12";
            }
            div class="field" {
                label for="a-action" { "Action" }
                select id="a-action" name="action" {
                    option value="" { "Any" }
                    @for (name, _) in timetravel::ACTIONS {
                        option value=(name) selected[action == Some(name)] { (name.replace('_', " ")) }
                    }
                }
            }
            div class="field" {
                label for="a-source" { "Source" }
                select id="a-source" name="source" {
                    option value="" { "Any" }
                    @for s in ["api", "ui", "cli", "system"] {
                        option value=(s) selected[source == Some(s)] { (s) }
                    }
                }
            }
            div class="field" {
                label for="a-since" { "Since" }
                input id="a-since" name="since" type="text" value=[nonempty(&f.since)] size="14"
                    placeholder="24h" aria-describedby="a-time-hint";
            }
            div class="field" {
                label for="a-until" { "Until" }
                input id="a-until" name="until" type="text" value=[nonempty(&f.until)] size="14"
                    placeholder="2026-12-01T00:00:00Z" aria-describedby="a-time-hint";
            }
            @if let Some(b) = nonempty(&f.batch) {
                div class="field" {
                    label for="a-batch" { "Batch" }
                    input id="a-batch" name="batch" type="text" value=(b) size="12";
                }
            }
            span class="check" {
                input type="checkbox" id="a-rejected" name="rejected" value="1" checked[checked(&f.rejected)];
                label for="a-rejected" { "Rejected only" }
            }
            button type="submit" class="primary" { "Apply filters" }
            a href="/ui/audit" { "Clear" }
            span id="a-time-hint" class="hint wide" {
                "Times: RFC 3339 (2026-12-01T09:30:00Z) or a duration before now (30m, 24h, 7d). Quick ranges: "
                @for (i, ago) in ["1h", "24h", "7d"].iter().enumerate() {
                    @if i > 0 { " · " }
                    a href=(format!("/ui/audit?{}", Filters { since: Some(ago.to_string()), until: None, cursor: None, ..f.clone() }.query(None))) { "last " (ago) }
                }
            }
        }
    }
}

fn listing(page: &AuditPage, f: &Filters, admin: bool) -> Markup {
    let first = nonempty(&f.cursor).is_none();
    // A batch's controls go on its first row on the page (a batch of an import or a rollback has many).
    let mut seen: HashSet<&str> = HashSet::new();
    html! {
        p class="count" id="audit-count" data-head=(page.head) data-first=(first) {
            @if page.entries.is_empty() { "No entry matches these filters." }
            @else { (page.entries.len()) @if page.entries.len() == 1 { " entry" } @else { " entries" } @if !first { " (an older page)" } ", newest first. The log's head is seq " (page.head) "." }
        }
        @if !page.entries.is_empty() {
            div class="table-wrap" {
                table class="audit" id="audit" data-admin=(admin) {
                    caption class="visually-hidden" { "Audit entries, newest first" }
                    thead { tr {
                        th scope="col" { "When" }
                        th scope="col" { "Who" }
                        th scope="col" { "Action" }
                        th scope="col" { "Key or entity" }
                        th scope="col" { "Change" }
                        th scope="col" { "Batch" }
                    } }
                    tbody {
                        @for e in &page.entries {
                            (row(e, admin && e.action != "rejected" && seen.insert(e.batch.as_str())))
                        }
                    }
                }
            }
        }
        nav class="pager" aria-label="Pages" {
            @if !first { a href=(format!("/ui/audit?{}", f.query(None))) { "← Newest" } }
            @if let Some(next) = &page.next_cursor {
                a href=(format!("/ui/audit?{}", f.query(Some(next)))) rel="next" { "Older entries →" }
            }
        }
    }
}

/// The subject of an entry as a reader names it: `namespace:KEY`, `KIND/NAME`, or nothing.
pub(super) fn subject(e: &AuditEntry) -> Option<String> {
    match (&e.namespace, &e.key) {
        (Some(ns), Some(k)) if !k.contains('/') => Some(format!("{ns}:{k}")),
        (_, Some(k)) => Some(k.clone()),
        _ => None,
    }
}

/// Whether a revert of the entry's batch can do anything: it changed a setting or an entity.
pub(super) fn revertible(action: &str) -> bool {
    matches!(
        action,
        "set"
            | "reset"
            | "seeded"
            | "generated"
            | "reseeded"
            | "resource_created"
            | "resource_updated"
            | "resource_deleted"
    )
}

pub(super) fn action_badge(action: &str) -> Markup {
    let class = match action {
        "rejected" | "request_suspended" | "request_rejected" => "badge bad",
        "emergency_bypass" => "badge bypass",
        "request_applied" => "badge good",
        "set" | "reset" | "reseeded" => "badge action-set",
        "resource_created" | "resource_updated" | "resource_deleted" => "badge action-entity",
        _ => "badge",
    };
    html! { span class=(class) { (action.replace('_', " ")) } }
}

/// What an entry changed: old → new (a structural diff for JSON documents), or what the event was about.
pub(super) fn change(e: &AuditEntry) -> Markup {
    html! {
        @match e.action.as_str() {
            "set" | "reseeded" => (jsondiff::render(Some(&e.previous).filter(|v| !v.is_null()), Some(&e.value))),
            "reset" => {
                (jsondiff::render(Some(&e.previous), None))
                span class="muted" { " → back to the environment or default" }
            }
            "seeded" | "generated" => (jsondiff::render(None, Some(&e.value))),
            "policy_changed" => {
                (jsondiff::render(Some(&e.previous).filter(|v| !v.is_null()), Some(&e.value)))
            }
            "emergency_bypass" => {
                strong class="error" { "Emergency bypass: changed without the approvals the policy asks" }
                @if let Some(subjects) = e.value.as_array() {
                    span class="attempt" { "Bypassed: " @for (i, s) in subjects.iter().enumerate() { @if i > 0 { ", " } code { (page::value_text(s)) } } }
                }
            }
            "rejected" => {
                @if let Some(r) = &e.rejected {
                    span class="error" { "Refused " (r.action) ": " (r.message) }
                }
                @if !e.value.is_null() { span class="attempt" { "Attempted: " code { (jsondiff::text(&e.value)) } } }
            }
            _ => {
                @if let Some(r) = &e.resource {
                    @if e.action == "resource_deleted" { span class="muted" { "deleted" } }
                    @else if e.action == "resource_updated" && jsondiff::is_document(&e.previous) && jsondiff::is_document(&e.value) {
                        (jsondiff::render(Some(&e.previous), Some(&e.value)))
                    }
                    @else if let Some(fields) = &r.changed {
                        span class="muted" { @if e.action == "resource_created" { "fields: " } @else { "changed: " } }
                        @for (i, f) in fields.iter().enumerate() { @if i > 0 { ", " } code { (f) } }
                    }
                } @else if let Some(u) = &e.user {
                    "user " code { (u.name) } @if let Some(r) = &u.role { " as " (r) }
                } @else if let Some(i) = &e.import {
                    "import: " (i.created.len()) " created, " (i.updated.len()) " updated, " (i.unchanged) " unchanged"
                    @if !i.locked.is_empty() { ", " (i.locked.len()) " locked" }
                } @else if let Some(r) = &e.rendered {
                    "rendered secrets as " (r.format) ": " (r.keys.join(", "))
                } @else if let Some(id) = &e.store_id {
                    "store " code { (id) }
                }
            }
        }
        @if let Some(r) = &e.change_request { (via_request(&e.action, r, &e.value)) }
        @if let Some(reason) = &e.reason { span class="reason" { "Reason: " (reason) } }
        (cause(&e.cause))
    }
}

/// The change request an entry is about, or that applied its change: linked, with its author and approvers.
fn via_request(action: &str, r: &crate::model::AuditRequest, value: &serde_json::Value) -> Markup {
    let link = html! { a href=(format!("/ui/requests/{}", r.id)) { "change request #" (r.id) } };
    let names = |v: &[String]| v.join(", ");
    html! {
        span class="via" {
            @match action {
                "request_proposed" | "request_edited" => {
                    @if action == "request_proposed" { "Proposed " } @else { "Edited " }
                    (link)
                    @if let Some(subjects) = value.as_array() {
                        ": " @for (i, s) in subjects.iter().enumerate() { @if i > 0 { ", " } code { (page::value_text(s)) } }
                    }
                }
                "request_approved" => { "Approved " (link) }
                "request_rejected" => { "Rejected " (link) }
                "request_withdrawn" => { "Withdrew " (link) }
                "request_suspended" => {
                    "Suspended " (link) " at its apply time: changed since its base"
                    @if !r.conflicts.is_empty() { " (" (names(&r.conflicts)) ")" }
                }
                "request_applied" => {
                    "Applied " (link)
                    @if !r.approvers.is_empty() { ", approved by " (names(&r.approvers)) }
                    @if let Some(late) = r.late_secs { " " span class="badge bad late" { "LATE" } " by " (late) " s" }
                    @if !r.conflicts.is_empty() { span class="attempt" { "Re-validated after changes since its base: " (names(&r.conflicts)) } }
                }
                _ => {
                    "via " (link) " ("
                    @if let Some(a) = &r.author { (a) }
                    @if !r.approvers.is_empty() { ", approved by " (names(&r.approvers)) }
                    ")"
                }
            }
        }
    }
}

/// What produced a batch, when it is more than one request or command: a rollback, a revert, an import or
/// a clone, linked to what it names.
fn cause(c: &cfgledger_events::Cause) -> Markup {
    use cfgledger_events::Cause;
    html! {
        @match c {
            Cause::Rollback { to_seq, to, .. } => span class="reason" {
                "Part of a rollback to " a href=(format!("/ui/timetravel?as_of=seq:{to_seq}")) { "seq " (to_seq) }
                @if *to != format!("seq:{to_seq}") { " (" (to) ")" }
            },
            Cause::Revert { batch, .. } => span class="reason" {
                "Part of the revert of batch " a href=(format!("/ui/audit?batch={}", enc(batch))) { code { (short_id(batch)) } }
            },
            Cause::Import { digest, .. } => span class="reason" { "Part of an import (" code { (short_digest(digest)) } ")" },
            Cause::Clone { source_seq, .. } => span class="reason" { "Part of a clone of another store at its seq " (source_seq) },
            Cause::Scheduled { request } => span class="reason" {
                "Applied at its time by the scheduler: " a href=(format!("/ui/requests/{request}")) { "change request " (request) }
            },
            Cause::RolloutDriver { id, instance } => span class="reason" {
                "Made by the rollout driver of " code { (instance) } " for " a href=(format!("/ui/rollouts?id={}", enc(id))) { "rollout " (id) }
            },
            _ => {}
        }
    }
}

/// A refused attempt and an emergency bypass stand out from the rows around them.
fn row_class(action: &str) -> Option<&'static str> {
    match action {
        "rejected" => Some("rejected"),
        "emergency_bypass" => Some("bypass"),
        _ => None,
    }
}

fn row(e: &AuditEntry, batch_controls: bool) -> Markup {
    let subject = subject(e);
    html! {
        tr data-seq=(e.seq) data-batch=(e.batch) data-action=(e.action) class=[row_class(&e.action)] {
            td class="when" { (page::time(&e.time)) span class="seq" { "seq " (e.seq) } }
            td class="who" {
                span class="actor" { (e.actor) }
                span class="by" {
                    @if let Some(r) = &e.role { (r) " · " }
                    (e.source)
                    @if let Some(a) = &e.address { " · " (a) }
                }
            }
            td class="action" { (action_badge(&e.action)) }
            td class="subject" {
                @if let Some(s) = &subject {
                    a href=(format!("/ui/timetravel?key={}", enc(s))) title=(format!("History of {s}")) {
                        code { (cfgledger_events::namespace::display(s)) }
                    }
                } @else if let Some(r) = e.change_request.as_ref().filter(|_| e.action.starts_with("request_")) {
                    a href=(format!("/ui/requests/{}", r.id)) { "change request #" (r.id) }
                } @else if e.action == "policy_changed" {
                    a href="/ui/policy" { "the change policy" }
                } @else { span class="muted" { "(the store)" } }
            }
            td class="change" { (change(e)) }
            td class="batch" {
                a href=(format!("/ui/audit?batch={}", enc(&e.batch))) title=(format!("Every entry of batch {}", e.batch)) {
                    code { (short_id(&e.batch)) }
                }
                @if batch_controls {
                    span class="controls" {
                        @if revertible(&e.action) {
                            a class="button small" href=(format!("/ui/rollback?revert={}", enc(&e.batch)))
                                aria-label=(format!("Revert batch {}", short_id(&e.batch))) { "Revert this batch" }
                        }
                        a class="button small" href=(format!("/ui/rollback?to=seq:{}", e.seq))
                            aria-label=(format!("Roll back to seq {}", e.seq)) title="Preview a rollback of everything to the state right after this change" { "Roll back to here" }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_downloads_send_the_apis_own_filter() {
        let f = Filters {
            key: Some("LOG_*".into()),
            actor: Some(" carol ".into()),
            ns: Some("cfgledger".into()),
            rejected: Some("1".into()),
            since: Some("".into()),
            cursor: Some("s42".into()),
            ..Filters::default()
        };
        // The API denies unknown fields: `ns` is `namespace`, the checkbox is `true`, no cursor.
        assert_eq!(
            download_query(&f.filter(PAGE_ROWS), "csv"),
            "/admin/config/audit?namespace=cfgledger&key=LOG_*&actor=carol&rejected=true&limit=1000&format=csv"
        );
        // The page's own links keep its filters, and a page link adds the cursor.
        assert_eq!(f.query(None), "key=LOG_*&actor=carol&ns=cfgledger&rejected=1");
        assert_eq!(f.query(Some("s7-2")), "key=LOG_*&actor=carol&ns=cfgledger&rejected=1&cursor=s7-2");
    }

    #[test]
    fn values_are_percent_encoded() {
        assert_eq!(enc("mcpgateway:LOG LEVEL/x&y=é"), "mcpgateway%3ALOG%20LEVEL%2Fx%26y%3D%C3%A9");
    }
}
