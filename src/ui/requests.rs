//! `/ui/requests`, `/ui/requests/{id}` and `/ui/policy`: change requests (issue 18) in the admin UI. The pages
//! read through `usecase::governance` (`list`, `get`, `policy`), the same typed views `GET /admin/requests`
//! and `GET /admin/policy` answer, so secrets show masked exactly as the API masks them. Every change goes
//! through the REST API from `requests.js`: the propose form posts `POST /admin/requests` (setting changes,
//! an optional apply time sent as RFC 3339 UTC, a required reason), and the detail's Approve, Reject and
//! Withdraw buttons post `/admin/requests/{id}/approve|reject|withdraw`; the API's refusals (403 self-approval,
//! 409 an approver counted once) are shown as the API words them. The policy is read-only here: it changes
//! only through a change request.

use super::audit::short_id;
use super::page::{self, enc, nonempty};
use super::session::Session;
use crate::api::AppState;
use crate::auth::Role;
use crate::model::{ChangeView, PolicyView, RequestView};
use crate::usecase::governance;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/requests", get(list_page))
        .route("/ui/requests/{id}", get(detail_page))
        .route("/ui/policy", get(policy_page))
}

/// The statuses a request can have, in the order of its life.
const STATUSES: [&str; 6] = ["open", "scheduled", "suspended", "applied", "rejected", "withdrawn"];

/// The list's query: what the filter form sends.
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    status: Option<String>,
}

/// A request's status as a badge: waiting (open, scheduled), done (applied), stopped (the rest).
fn status_badge(status: &str) -> Markup {
    let class = match status {
        "applied" => "badge good",
        "open" | "scheduled" => "badge status-waiting",
        "suspended" | "rejected" => "badge bad",
        _ => "badge",
    };
    html! { span class=(class) data-status=(status) { (status) } }
}

fn approvals_text(r: &RequestView) -> String {
    format!("{} of {}", r.approvals.len(), r.required_approvals)
}

/// The error page of a request the store does not have, or of an id that is not one.
fn missing(session: &Session, what: &str) -> Response {
    page::error_page(
        StatusCode::NOT_FOUND,
        "No such change request",
        &format!("{what}. Pick a request from the list under Requests."),
        Some(session),
    )
}

async fn list_page(State(state): State<AppState>, session: Session, Query(filters): Query<Filters>) -> Response {
    let status = nonempty(&filters.status);
    let (code, list) = match governance::list(&state.ledger, status) {
        Ok(list) => (StatusCode::OK, Ok(list.requests)),
        Err(e) => {
            let e = crate::api::ApiError::from(e);
            (e.status, Err(e.message))
        }
    };
    let admin = session.can(Role::PlatformAdmin);
    let body = html! {
        p class="lead" {
            "A change request groups changes with a reason; the "
            a href="/ui/policy" { "change policy" }
            " says how many approvals each needs. The author never approves their own request, each approver counts once, and an approved request is applied as one batch, at its apply time when it has one."
        }
        @if admin { p { a class="button primary" href="#propose-heading" { "Propose a change" } } }
        h2 id="requests-heading" { "Requests" }
        form class="filters" method="get" action="/ui/requests" role="search" aria-label="Filter the change requests" {
            div class="field" {
                label for="r-status" { "Status" }
                select id="r-status" name="status" {
                    option value="" { "Any status" }
                    @for s in STATUSES { option value=(s) selected[status == Some(s)] { (s) } }
                }
            }
            button type="submit" { "Apply filter" }
        }
        @match &list {
            Err(message) => p class="error" role="alert" { "The requests cannot be listed: " (message) ". Pick a status from the list." },
            Ok(requests) if requests.is_empty() => p class="count" id="requests-count" {
                @if status.is_some() { "No change request has this status." } @else { "No change request yet." }
            },
            Ok(requests) => {
                p class="count" id="requests-count" { (requests.len()) @if requests.len() == 1 { " request" } @else { " requests" } ", newest first." }
                div class="table-wrap" {
                    table class="requests" id="requests" {
                        caption class="visually-hidden" { "Change requests, newest first" }
                        thead { tr {
                            th scope="col" { "Request" }
                            th scope="col" { "Status" }
                            th scope="col" { "Author" }
                            th scope="col" { "Reason" }
                            th scope="col" { "Approvals" }
                            th scope="col" { "Apply at" }
                            th scope="col" { "Proposed" }
                        } }
                        tbody { @for r in requests { (list_row(r)) } }
                    }
                }
            }
        }
        @if admin { (propose_form(&state)) }
        @else { p class="hint" { "Your role (" (session.caller().role.as_str()) ") can read change requests but not propose or review them." } }
    };
    page::layout(&session, "Change requests", "requests", &["requests.js"], body).with_status(code).into_response()
}

fn list_row(r: &RequestView) -> Markup {
    html! {
        tr data-id=(r.id) data-status=(r.status) class=[r.stale.then_some("stale")] {
            th scope="row" class="id" {
                a href=(format!("/ui/requests/{}", r.id)) { "#" (r.id) }
                span class="seq" { (r.changes.len()) @if r.changes.len() == 1 { " change" } @else { " changes" } }
            }
            td class="status" {
                (status_badge(&r.status))
                @if r.stale { span class="badge bad stale" title="Something it changes changed since it was proposed" { "stale" } }
            }
            td class="author" data-label="Author" { (r.author) }
            td class="reason" data-label="Reason" { (r.reason) }
            td class="approvals" data-label="Approvals" { (approvals_text(r)) }
            td class="apply-at" data-label="Apply at" {
                @if let Some(at) = &r.apply_at { (page::time(at)) }
                @else if r.status == "open" { span class="muted" { "when approved" } }
                @else { span class="muted" { "—" } }
            }
            td class="proposed" data-label="Proposed" { (page::time(&r.proposed_at)) }
        }
    }
}

/// The propose form: rows of (key, value) that `requests.js` adds and removes, an apply time and a reason.
/// The keys offered are the catalog's (`namespace:KEY`); the values are text, parsed like the command line's.
fn propose_form(state: &AppState) -> Markup {
    let catalog = state.ledger.catalog();
    html! {
        section class="propose" aria-labelledby="propose-heading" {
            h2 id="propose-heading" { "Propose a change" }
            form id="propose-form" class="propose" novalidate {
                datalist id="propose-keys" {
                    @for spec in catalog.specs() { option value=(format!("{}:{}", spec.namespace, spec.key)) {} }
                }
                fieldset id="propose-changes" {
                    legend { "Settings to change" }
                    p class="hint" id="propose-hint" {
                        "A key as " code { "namespace:KEY" } " (or a bare key of the default namespace), and its new value as you would type it on the command line: "
                        code { "8" } ", " code { "90s" } ", " code { "true" } ", or JSON."
                    }
                    div id="propose-rows" {
                        (change_row(1))
                    }
                    button type="button" id="propose-add" { "Add a row" }
                }
                div class="propose-meta" {
                    div class="field" {
                        label for="propose-apply-at" { "Apply at (optional)" }
                        input id="propose-apply-at" name="apply_at" type="datetime-local" aria-describedby="propose-apply-hint";
                        span id="propose-apply-hint" class="hint" { "In your browser's time zone; sent as UTC. Empty: as soon as it is approved." }
                    }
                    div class="field grow" {
                        label for="propose-reason" { "Reason (required)" }
                        input id="propose-reason" name="reason" type="text" required aria-required="true" maxlength="1000"
                            placeholder="Why this change, for the reviewers and the audit trail";
                    }
                }
                div class="buttons" {
                    button type="submit" class="primary" id="propose-submit" { "Propose" }
                }
                p class="error" id="propose-error" role="alert" {}
                div id="propose-result" class="ok-notice" role="status" hidden {}
            }
        }
    }
}

/// One (key, value) row of the propose form; `requests.js` builds further rows like it.
fn change_row(n: u32) -> Markup {
    html! {
        div class="change-row" data-row=(n) {
            div class="field" {
                label for=(format!("propose-key-{n}")) { "Key" }
                input id=(format!("propose-key-{n}")) class="change-key" type="text" list="propose-keys"
                    autocomplete="off" spellcheck="false" placeholder="mcpgateway:LOG_LEVEL" aria-describedby="propose-hint";
            }
            div class="field grow" {
                label for=(format!("propose-value-{n}")) { "New value" }
                input id=(format!("propose-value-{n}")) class="change-value" type="text" autocomplete="off" spellcheck="false";
            }
            button type="button" class="small remove-row" aria-label=(format!("Remove row {n}")) { "Remove" }
        }
    }
}

async fn detail_page(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return missing(&session, &format!("{id:?} is not a request's id (a number)"));
    };
    let r = match governance::get(&state.ledger, id) {
        Ok(r) => r,
        Err(_) => return missing(&session, &format!("There is no change request {id}")),
    };
    let admin = session.can(Role::PlatformAdmin);
    let me = session.caller().name.clone();
    let live = matches!(r.status.as_str(), "open" | "scheduled" | "suspended");
    let body = html! {
        p { a href="/ui/requests" { "← All change requests" } }
        dl class="request-summary" id="request" data-id=(r.id) data-status=(r.status) {
            dt { "Status" }
            dd class="status" {
                (status_badge(&r.status))
                @if r.stale { span class="badge bad stale" { "stale" } }
            }
            dt { "Author" } dd class="author" { (r.author) }
            dt { "Reason" } dd class="reason" { (r.reason) }
            dt { "Approvals" }
            dd class="approvals" { (approvals_text(&r)) @if r.required_approvals == 0 { span class="muted" { " (the policy asks none)" } } }
            dt { "Apply at" }
            dd class="apply-at" { @if let Some(at) = &r.apply_at { (page::time(at)) } @else { span class="muted" { "as soon as it is approved" } } }
            dt { "Proposed" }
            dd { (page::time(&r.proposed_at)) " · seq " (r.proposed_seq) @if r.revision > 0 { " · edited " (r.revision) " time(s)" } }
        }
        (conflicts(&r))
        @if let Some(why) = &r.suspended_reason {
            div class="conflicts" id="request-suspended" role="note" {
                strong { "Suspended at its apply time. " } (why) " Its author can edit it to base it again."
            }
        }
        (applied(&r))
        @if let Some(by) = &r.closed_by {
            div class="closed" id="request-closed" {
                (status_badge(&r.status)) " by " strong { (by) }
                @if let Some(c) = &r.closed_comment { ": " q { (c) } }
            }
        }
        h2 { "Changes" }
        div class="table-wrap" {
            table class="request-changes" id="request-changes" {
                caption class="visually-hidden" { "The changes of request " (r.id) }
                thead { tr {
                    th scope="col" { "Change" }
                    th scope="col" { "Subject" }
                    th scope="col" { (change_heading(&r.status)) }
                    th scope="col" { "Approvals it needs" }
                } }
                tbody { @for c in &r.changes { (change_line(c, &r)) } }
            }
        }
        h2 { "Approvals" }
        @if r.approvals.is_empty() {
            p class="muted" id="request-approvals" { "No approval yet." }
        } @else {
            div class="table-wrap" {
                table class="request-approvals" id="request-approvals" {
                    caption class="visually-hidden" { "Approvals of request " (r.id) }
                    thead { tr { th scope="col" { "Who" } th scope="col" { "When" } th scope="col" { "Comment" } } }
                    tbody {
                        @for a in &r.approvals {
                            tr data-by=(a.by) {
                                th scope="row" { (a.by) }
                                td data-label="When" { (page::time(&a.at)) span class="seq" { "seq " (a.seq) } }
                                td data-label="Comment" { @if let Some(c) = &a.comment { (c) } @else { span class="muted" { "—" } } }
                            }
                        }
                    }
                }
            }
        }
        @if admin && live { (review_form(&r, &me)) }
        p class="error" id="review-error" role="alert" {}
    };
    page::layout(&session, &format!("Change request #{}", r.id), "requests", &["requests.js"], body).into_response()
}

/// The changes' value column: what it compares depends on whether the request applied.
fn change_heading(status: &str) -> &'static str {
    match status {
        "applied" => "Value applied",
        "rejected" | "withdrawn" => "Now → proposed (not applied)",
        _ => "Current → proposed",
    }
}

/// What changed under the request since its base: highlighted, since it applies only if still valid.
fn conflicts(r: &RequestView) -> Markup {
    if r.conflicts.is_empty() {
        return html! {};
    }
    let when = match r.status.as_str() {
        "suspended" => "It was suspended at its apply time because these changed since its base",
        "applied" => "It applied after re-validation although these had changed since its base",
        _ => "It applies only if it still validates; its author can edit it to base it again",
    };
    html! {
        div class="conflicts" id="request-conflicts" role="note" {
            strong { "Changed since its base. " } (when) ":"
            ul {
                @for c in &r.conflicts {
                    li {
                        code { (c.subject) } " — version " (c.base_version)
                        @if c.base_version == 0 { " (never set)" }
                        " when proposed, version " (c.current_version) " now"
                    }
                }
            }
        }
    }
}

fn applied(r: &RequestView) -> Markup {
    let Some(a) = &r.applied else { return html! {} };
    html! {
        div class="applied" id="request-applied" {
            span class="badge good" { "applied" }
            " at seq " (a.seq) ", " (page::time(&a.at)) ", as batch "
            a href=(format!("/ui/audit?batch={}", enc(&a.batch))) title=(format!("The audit entries of batch {}", a.batch)) { code { (short_id(&a.batch)) } }
            @if let Some(late) = a.late_secs {
                " " span class="badge bad late" title="Applied after its apply time, past the late threshold (cfgledger:SCHEDULE_LATE_AFTER)" { "LATE" }
                " " (late) " s after its apply time"
            }
        }
    }
}

fn change_line(c: &ChangeView, r: &RequestView) -> Markup {
    let conflicted = r.conflicts.iter().any(|x| x.subject == c.subject);
    let is_doc = |v: &serde_json::Value| v.is_object() || v.is_array();
    html! {
        tr class=[conflicted.then_some("conflict")] data-subject=(c.subject) {
            td class="op" { span class="badge" { (c.op) } }
            th scope="row" class="subject" {
                code { (cfgledger_events::namespace::display(&c.subject)) }
                @if conflicted { span class="badge bad" { "changed since its base" } }
            }
            td class="change" data-label=(change_heading(&r.status)) {
                @match c.op.as_str() {
                    "set" | "reset" | "policy" => {
                        @if is_doc(&c.current) || is_doc(&c.value) {
                            (super::audit::jsondiff::render(Some(&c.current).filter(|v| !v.is_null()), Some(&c.value).filter(|v| !v.is_null())))
                        } @else if r.status == "applied" {
                            @if c.op == "reset" { span class="muted" { "back to the environment or default" } }
                            @else { ins { (page::value_text(&c.value)) } }
                        } @else {
                            @if c.current.is_null() {
                                span class="muted" title="No value is stored: the environment's or the default applies" { "(no stored value)" }
                            } @else { del { (page::value_text(&c.current)) } }
                            " → "
                            @if c.op == "reset" { span class="muted" { "back to the environment or default" } }
                            @else { ins { (page::value_text(&c.value)) } }
                        }
                    }
                    "delete" => span class="muted" { "deleted" },
                    _ => {
                        span class="muted" { "fields: " }
                        @for (i, f) in c.fields.iter().enumerate() { @if i > 0 { ", " } code { (f) } }
                    }
                }
            }
            td class="needs" data-label="Approvals it needs" { (c.approvals) }
        }
    }
}

/// The reviewer's controls: a comment and the three verbs. Approve and Reject are offered to the author too
/// (the API refuses them, and says why); Withdraw only to the author.
fn review_form(r: &RequestView, me: &str) -> Markup {
    let author = r.author == me;
    html! {
        section class="review" aria-labelledby="review-heading" {
            h2 id="review-heading" { "Review" }
            @if author { p class="hint" { "You proposed this request: another platform_admin approves or rejects it; you can withdraw it." } }
            form id="review-form" data-id=(r.id) novalidate {
                div class="field" {
                    label for="review-comment" { "Comment (optional)" }
                    textarea id="review-comment" name="comment" rows="2" maxlength="1000" {}
                }
                div class="buttons" {
                    @if r.status == "open" {
                        button type="button" class="primary" data-verb="approve" id="review-approve" { "Approve" }
                    }
                    button type="button" class="danger" data-verb="reject" id="review-reject" { "Reject" }
                    @if author { button type="button" data-verb="withdraw" id="review-withdraw" { "Withdraw" } }
                }
            }
        }
    }
}

async fn policy_page(State(state): State<AppState>, session: Session) -> Response {
    let view: PolicyView = governance::policy(&state.ledger);
    let p = &view.policy;
    let body = html! {
        p { a href="/ui/requests" { "← Change requests" } }
        p class="lead" {
            "How many approvals a change needs, by what it changes. The most specific rule wins: "
            code { "NAMESPACE:KEY" } ", then " code { "NAMESPACE/CATEGORY" } ", then " code { "NAMESPACE" } ", then " code { "*" }
            "; for entities " code { "registry/KIND" } ", then " code { "registry" } ", then " code { "*" } ". A change no rule covers needs none."
        }
        p class="notice" {
            "Read-only: the policy changes only through an approved change request ("
            code { "cfgledger request propose --policy FILE" } " or " code { "POST /admin/requests" } " with a " code { "policy" } " change)."
        }
        @if view.version == 0 {
            p class="muted" id="policy-version" { "The policy was never set: no change needs an approval." }
        } @else {
            p class="count" id="policy-version" {
                "Last changed at seq " (view.version) ". "
                a href="/ui/audit?action=policy_changed" { "Its changes in the audit trail" }
            }
        }
        h2 { "Rules" }
        @if p.rules.is_empty() {
            p class="muted" { "No rule." }
        } @else {
            div class="table-wrap" {
                table class="policy" id="policy-rules" {
                    caption class="visually-hidden" { "The policy's rules" }
                    thead { tr { th scope="col" { "Scope" } th scope="col" { "Approvals" } } }
                    tbody {
                        @for rule in &p.rules {
                            tr data-scope=(rule.scope) {
                                th scope="row" { code { (rule.scope) } }
                                td data-label="Approvals" { (rule.approvals) @if rule.approvals == 0 { span class="muted" { " (applies directly)" } } }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Emergency bypass" }
        @if p.bypass.is_empty() {
            p class="muted" id="policy-bypass" { "Nobody may bypass the policy." }
        } @else {
            p { "These users may change a governed key directly with the emergency bypass; every use is recorded as its own event, counted and logged:" }
            ul id="policy-bypass" { @for u in &p.bypass { li { code { (u) } } } }
        }
        h2 { "Changing the policy" }
        p id="policy-approvals" {
            "A change of the policy itself needs " strong { (view.policy_approvals) } " approval" @if view.policy_approvals != 1 { "s" }
            @if p.policy_approvals.is_none() { " (the most any rule asks for)" } "."
        }
    };
    page::layout(&session, "Change policy", "requests", &[], body).into_response()
}
