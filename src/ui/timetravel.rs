//! `/ui/timetravel`: three views of the past, each a GET form and its answer on one page.
//! - The history of a key (`?key=namespace:KEY`, which the settings page links to) or of an entity
//!   (`?key=tools/NAME`), through `timetravel::history` (auditor): each version with what it changed, an
//!   entity's versions compared with the one before.
//! - The store as of a point (`?as_of=` a time, a duration or `seq:N`), through `settings::list` and the
//!   registry's listing on the snapshot at that point (any role, as the API's reads).
//! - What changed between two points (`?from=&to=`), through `timetravel::diff` (auditor), JSON documents and
//!   entities as the paths that changed.

use super::audit::{self, enc, jsondiff, needs_auditor, nonempty, short_id};
use super::page;
use super::session::Session;
use crate::api::AppState;
use crate::auth::Role;
use crate::model::{AuditPage, ConfigItem, Diff, DiffLine, ListQuery, PageQuery};
use crate::usecase::{self, registry, settings, timetravel};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use cfgledger_events::ResourceKind;
use maud::{html, Markup};
use serde::Deserialize;

const HISTORY_ROWS: usize = 50;

pub fn routes() -> Router<AppState> {
    Router::new().route("/ui/timetravel", get(timetravel_page))
}

#[derive(Debug, Default, Deserialize)]
pub struct Params {
    /// History: `namespace:KEY`, a bare key (the default namespace) or `KIND/NAME`.
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    /// As of: the point, its namespace, and whether keys without a value in the log are listed too.
    #[serde(default)]
    as_of: Option<String>,
    #[serde(default)]
    ns: Option<String>,
    #[serde(default)]
    all: Option<String>,
    /// Diff: the two points and an optional namespace.
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    diff_ns: Option<String>,
}

async fn timetravel_page(State(state): State<AppState>, session: Session, Query(p): Query<Params>) -> Response {
    let auditor = session.can(Role::Auditor);
    // A viewer who follows a history or diff link gets the page that says why, not an empty section.
    if !auditor && (nonempty(&p.key).is_some() || nonempty(&p.from).is_some()) {
        return needs_auditor(&session, "The history of a key and the diff between two points");
    }
    let mut failed: Option<StatusCode> = None;
    let history = match nonempty(&p.key) {
        Some(key) if auditor => {
            history_section(&state, key, nonempty(&p.cursor), session.can(Role::PlatformAdmin), &mut failed).await
        }
        _ => html! {},
    };
    let as_of = match nonempty(&p.as_of) {
        Some(point) => {
            let admin = session.can(Role::PlatformAdmin);
            as_of_section(&state, point, &p, auditor, admin, &mut failed).await
        }
        None => html! {},
    };
    let diff = match nonempty(&p.from) {
        Some(from) if auditor => {
            let admin = session.can(Role::PlatformAdmin);
            diff_section(&state, from, nonempty(&p.to), nonempty(&p.diff_ns), admin, &mut failed).await
        }
        _ => html! {},
    };
    let catalog = state.ledger.catalog();
    let body = html! {
        p class="hint" {
            "The log keeps every change. Read a key's or an entity's versions, browse the whole store as it was at a point, or compare two points. "
            "Points are a seq (" code { "seq:42" } "), a duration before now (" code { "24h" } ") or an RFC 3339 time (" code { "2026-12-01T09:30:00Z" } ")."
        }
        section class="tt" id="history" aria-labelledby="h-history" {
            h2 id="h-history" { "History of a key or entity" }
            @if auditor {
                form class="filters" method="get" action="/ui/timetravel#history" aria-label="Show a history" {
                    div class="field grow" {
                        label for="t-key" { "Key or entity" }
                        input id="t-key" name="key" type="text" required value=[nonempty(&p.key)]
                            placeholder="mcpgateway:LOG_LEVEL or tools/search";
                    }
                    button type="submit" class="primary" { "Show history" }
                }
                (history)
            } @else {
                p class="hint" { "Histories need the auditor or platform_admin role." }
            }
        }
        section class="tt" id="asof" aria-labelledby="h-asof" {
            h2 id="h-asof" { "The store as of a point" }
            form class="filters" method="get" action="/ui/timetravel#asof" aria-label="Browse the store as of a point" {
                div class="field" {
                    label for="t-asof" { "As of" }
                    input id="t-asof" name="as_of" type="text" required value=[nonempty(&p.as_of)] placeholder="seq:42 or 24h";
                }
                div class="field" {
                    label for="t-ns" { "Namespace" }
                    select id="t-ns" name="ns" {
                        @for n in catalog.namespaces() {
                            option value=(n.name) selected[nonempty(&p.ns) == Some(n.name.as_str())] { (n.name) }
                        }
                    }
                }
                span class="check" {
                    input type="checkbox" id="t-all" name="all" value="1" checked[nonempty(&p.all).is_some()];
                    label for="t-all" { "Also keys without a value in the log" }
                }
                button type="submit" class="primary" { "Show" }
            }
            (as_of)
        }
        section class="tt" id="diff" aria-labelledby="h-diff" {
            h2 id="h-diff" { "Compare two points" }
            @if auditor {
                form class="filters" method="get" action="/ui/timetravel#diff" aria-label="Compare two points" {
                    div class="field" {
                        label for="t-from" { "From" }
                        input id="t-from" name="from" type="text" required value=[nonempty(&p.from)] placeholder="seq:10 or 7d";
                    }
                    div class="field" {
                        label for="t-to" { "To (now when empty)" }
                        input id="t-to" name="to" type="text" value=[nonempty(&p.to)] placeholder="seq:20 or 1h";
                    }
                    div class="field" {
                        label for="t-dns" { "Namespace" }
                        select id="t-dns" name="diff_ns" {
                            option value="" { "All, and the registry" }
                            @for n in catalog.namespaces() {
                                option value=(n.name) selected[nonempty(&p.diff_ns) == Some(n.name.as_str())] { (n.name) }
                            }
                        }
                    }
                    button type="submit" class="primary" { "Compare" }
                }
                (diff)
            } @else {
                p class="hint" { "Comparing points needs the auditor or platform_admin role." }
            }
        }
    };
    let status = failed.unwrap_or(StatusCode::OK);
    page::layout(&session, "Time travel", "timetravel", &["timetravel.js"], body).with_status(status).into_response()
}

/// A section's refusal: the API's message for the same read, and its status for the page.
fn refused(what: &str, e: crate::error::Error, next: &str, failed: &mut Option<StatusCode>) -> Markup {
    let e = crate::api::ApiError::from(e);
    failed.get_or_insert(e.status);
    html! { p class="error" role="alert" { (what) ": " (e.message) ". " (next) } }
}

async fn history_section(
    state: &AppState,
    key: &str,
    cursor: Option<&str>,
    admin: bool,
    failed: &mut Option<StatusCode>,
) -> Markup {
    let ledger = state.ledger.clone();
    let (subject, query) =
        (key.to_string(), PageQuery { cursor: cursor.map(str::to_string), limit: Some(HISTORY_ROWS) });
    let page = match usecase::blocking(move || timetravel::history(&ledger, &subject, &query)).await {
        Ok(p) => p,
        Err(e) => return refused("No history", e, "Check the key's spelling (namespace:KEY or KIND/NAME).", failed),
    };
    let entity = key.split_once('/').is_some_and(|(k, _)| k.parse::<ResourceKind>().is_ok());
    // A setting's value now, as the settings page shows it, above its versions.
    let now = match entity {
        true => None,
        false => settings::get(&state.ledger, &cfgledger_events::namespace::subject(key), None).await.ok(),
    };
    html! {
        @if let Some(item) = &now {
            dl class="facts" {
                dt { "Now" }
                dd {
                    code { (page::value_text(&item.value)) } " "
                    span class=(format!("badge source-{}", item.source.as_str())) { (item.source.as_str()) }
                    @if item.locked { span class="badge locked" { "locked" } }
                    @if item.sensitive { span class="badge sensitive" { "sensitive" } }
                    " · "
                    a href=(format!("/ui/settings?ns={}&q={}", enc(&item.namespace), enc(&item.key))) { "Open in settings" }
                }
                dt { "About" }
                dd { (item.description) }
            }
        }
        (history_table(key, &page, entity, cursor.is_some(), admin))
    }
}

fn history_table(key: &str, page: &AuditPage, entity: bool, older: bool, admin: bool) -> Markup {
    html! {
        h3 { code { (key) } " " span class="count-badge" { "(" (page.entries.len()) " versions" @if older { ", an older page" } ", newest first)" } }
        @if page.entries.is_empty() {
            p class="notice" { "The log holds no change to " code { (key) } ": it has its environment or default value." }
        } @else {
            div class="table-wrap" {
                table class="audit history" id="history-table" {
                    thead { tr {
                        th scope="col" { "When" }
                        th scope="col" { "Who" }
                        th scope="col" { "Action" }
                        th scope="col" { "Change" }
                        th scope="col" { "Batch" }
                    } }
                    tbody {
                        @for (i, e) in page.entries.iter().enumerate() {
                            tr data-seq=(e.seq) {
                                td class="when" { (page::time(&e.time)) span class="seq" { "seq " (e.seq) } }
                                td class="who" { span class="actor" { (e.actor) } span class="by" { @if let Some(r) = &e.role { (r) " · " } (e.source) } }
                                td class="action" { (audit::action_badge(&e.action)) }
                                td class="change" {
                                    @if entity {
                                        // Each state compared with the one before it (the next row, older).
                                        @match (page.entries.get(i + 1), e.action.as_str()) {
                                            (_, "resource_deleted") => span class="muted" { "deleted" },
                                            (Some(before), _) if !before.value.is_null() => (jsondiff::render(Some(&before.value), Some(&e.value))),
                                            // The state before it is on the next (older) page: not a creation.
                                            (None, action) if action != "resource_created" && page.next_cursor.is_some() => {
                                                span class="muted" { "The state before this is on the older page. This version: " }
                                                code class="value" { (e.value.to_string()) }
                                            },
                                            _ => (jsondiff::render(None, Some(&e.value))),
                                        }
                                        @if let Some(r) = &e.reason { span class="reason" { "Reason: " (r) } }
                                    } @else {
                                        (audit::change(e))
                                    }
                                }
                                td class="batch" {
                                    a href=(format!("/ui/audit?batch={}", enc(&e.batch))) { code { (short_id(&e.batch)) } }
                                    @if admin && e.action != "rejected" {
                                        span class="controls" {
                                            a class="button small" href=(format!("/ui/rollback?revert={}", enc(&e.batch)))
                                                aria-label=(format!("Revert the batch of seq {}", e.seq)) { "Revert this batch" }
                                            a class="button small" href=(format!("/ui/rollback?to=seq:{}&keys={}", e.seq, enc(key)))
                                                aria-label=(format!("Restore {key} as of seq {}", e.seq)) { "Restore this version" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            nav class="pager" aria-label="History pages" {
                @if older { a href=(format!("/ui/timetravel?key={}#history", enc(key))) { "← Newest" } }
                @if let Some(next) = &page.next_cursor {
                    a href=(format!("/ui/timetravel?key={}&cursor={}#history", enc(key), enc(next))) rel="next" { "Older versions →" }
                }
            }
        }
    }
}

async fn as_of_section(
    state: &AppState,
    point: &str,
    p: &Params,
    auditor: bool,
    admin: bool,
    failed: &mut Option<StatusCode>,
) -> Markup {
    let ns = nonempty(&p.ns).unwrap_or(cfgledger_events::namespace::DEFAULT).to_string();
    let all = nonempty(&p.all).is_some();
    let query = ListQuery { namespace: Some(ns.clone()), category: None, q: None, as_of: Some(point.to_string()) };
    let list = match settings::list(&state.ledger, &query).await {
        Ok(l) => l,
        Err(e) => {
            return refused(
                "Cannot read the store at that point",
                e,
                "Give a seq:N, a duration or an RFC 3339 time.",
                failed,
            )
        }
    };
    let snap = match settings::snapshot_as_of(&state.ledger, Some(point)).await {
        Ok((snap, _)) => snap,
        Err(e) => return refused("Cannot read the registry at that point", e, "Try another point.", failed),
    };
    let (seq, time) = list.as_of.as_ref().map_or((0, String::new()), |a| (a.seq, a.time.clone()));
    let items: Vec<&ConfigItem> = list.items.iter().filter(|i| all || i.source.as_str() == "db").collect();
    let kinds: Vec<(ResourceKind, Vec<crate::model::Entity>)> = ResourceKind::ALL
        .into_iter()
        .map(|k| (k, registry::list(&snap.state, k, &[], true)))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    html! {
        h3 { "As of " span class="point" { "seq:" (seq) } @if !time.is_empty() { " · " (page::time(&time)) } }
        p class="hint" {
            @if all { (items.len()) " key(s) of " (ns) "." } @else { (items.len()) " key(s) of " (ns) " had a value in the log then; check the box above to see the others." }
            " The head now is seq " (list.head) ". "
            @if auditor { a href=(format!("/ui/timetravel?from=seq:{seq}#diff")) { "What changed since then" } }
            @if admin {
                " · "
                a href=(format!("/ui/rollback?to=seq:{seq}")) { "Roll back to this point" }
            }
        }
        @if !items.is_empty() {
            div class="table-wrap" {
                table class="values" id="asof-settings" {
                    caption class="visually-hidden" { "Settings of " (ns) " as of seq " (seq) }
                    thead { tr {
                        th scope="col" { "Key" }
                        th scope="col" { "Value then" }
                        th scope="col" { "Source" }
                        th scope="col" { "Set" }
                    } }
                    tbody {
                        @for i in items {
                            tr data-key=(format!("{}:{}", i.namespace, i.key)) {
                                th scope="row" class="key" {
                                    @if auditor {
                                        a href=(format!("/ui/timetravel?key={}#history", enc(&format!("{}:{}", i.namespace, i.key)))) { code { (i.key) } }
                                    } @else { code { (i.key) } }
                                }
                                td { code class="val" title=(page::value_text(&i.value)) { (page::value_text(&i.value)) } }
                                td { span class=(format!("badge source-{}", i.source.as_str())) { (i.source.as_str()) } }
                                td {
                                    @if let Some(at) = &i.updated_at { (page::time(at)) }
                                    @if let Some(by) = &i.updated_by { span class="by" { "by " (by) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if kinds.is_empty() {
            p class="hint" { "The registry held no entity then." }
        } @else {
            @for (kind, list) in &kinds {
                h3 { (kind.to_string()) " " span class="count-badge" { "(" (list.len()) ")" } }
                div class="table-wrap" {
                    table class="values" {
                        thead { tr { th scope="col" { "Name" } th scope="col" { "Fields then" } } }
                        tbody {
                            @for e in list {
                                @let name = e.fields.get("name").map(page::value_text).unwrap_or_default();
                                tr {
                                    th scope="row" class="key" {
                                        @if auditor {
                                            a href=(format!("/ui/timetravel?key={}#history", enc(&format!("{kind}/{name}")))) { code { (name) } }
                                        } @else { code { (name) } }
                                    }
                                    td { code class="val" { (serde_json::Value::Object(e.fields.clone()).to_string()) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn diff_section(
    state: &AppState,
    from: &str,
    to: Option<&str>,
    ns: Option<&str>,
    admin: bool,
    failed: &mut Option<StatusCode>,
) -> Markup {
    let ledger = state.ledger.clone();
    let (f, t, n) = (from.to_string(), to.map(str::to_string), ns.map(str::to_string));
    let diff = match usecase::blocking(move || timetravel::diff(&ledger, &f, t.as_deref(), n.as_deref())).await {
        Ok(d) => d,
        Err(e) => return refused("No diff", e, "Give each point as seq:N, a duration or an RFC 3339 time.", failed),
    };
    diff_view(&diff, admin)
}

fn diff_view(d: &Diff, admin: bool) -> Markup {
    let total = d.added.len() + d.removed.len() + d.changed.len();
    html! {
        h3 { "From " span class="point" { "seq:" (d.from.seq) } " to " span class="point" { "seq:" (d.to.seq) } }
        @if total == 0 {
            p class="notice" { "Nothing differs between these two points." }
        } @else {
            div class="plan-summary" {
                @if !d.changed.is_empty() { span class="badge action-set" { (d.changed.len()) " changed" } }
                @if !d.added.is_empty() { span class="badge good" { (d.added.len()) " added" } }
                @if !d.removed.is_empty() { span class="badge bad" { (d.removed.len()) " removed" } }
            }
            @if admin && d.from.seq < d.to.seq {
                p class="hint" { a href=(format!("/ui/rollback?to=seq:{}", d.from.seq)) { "Roll back to seq " (d.from.seq) } " to undo these changes." }
            }
            (diff_group("diff-changed", "Changed", &d.changed))
            (diff_group("diff-added", "Added", &d.added))
            (diff_group("diff-removed", "Removed", &d.removed))
        }
    }
}

fn diff_group(id: &str, title: &str, lines: &[DiffLine]) -> Markup {
    let some = |v: &serde_json::Value| (!v.is_null()).then_some(v.clone());
    html! {
        @if !lines.is_empty() {
            h3 id=(id) { (title) " " span class="count-badge" { "(" (lines.len()) ")" } }
            div class="table-wrap" {
                table class="values diff-table" aria-labelledby=(id) {
                    thead { tr { th scope="col" { "Key or entity" } th scope="col" { "Old → new" } } }
                    tbody {
                        @for l in lines {
                            tr data-key=(l.key) {
                                th scope="row" class="key" {
                                    a href=(format!("/ui/timetravel?key={}#history", enc(&cfgledger_events::namespace::subject(&l.key)))) { code { (l.key) } }
                                }
                                td class="change" { (jsondiff::render(some(&l.old).as_ref(), some(&l.new).as_ref())) }
                            }
                        }
                    }
                }
            }
        }
    }
}
