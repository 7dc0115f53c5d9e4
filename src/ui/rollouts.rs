//! `/ui/rollouts`: gradual rollouts. The list (status, stage and percentage, keys); with `?id=`, one
//! rollout: its steps with the current one marked, every transition its events recorded (who, when, why,
//! the failed signal of an automatic rollback), and every live agent and client of its namespace with
//! whether it is meant to run the new values, by which rule, and whether it has applied them. An admin
//! can advance or roll back (abort) an active rollout: `rollouts.js` calls the REST API and reloads.
//! Read through `usecase::rollout`; written only through `/admin/rollouts/{id}/...`.

use super::page::{self, enc};
use super::session::Session;
use crate::api::AppState;
use crate::auth::Role;
use crate::model::RolloutView;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};

pub fn routes() -> Router<AppState> {
    Router::new().route("/ui/rollouts", get(page))
}

#[derive(Debug, serde::Deserialize)]
struct Params {
    id: Option<String>,
}

async fn page(State(state): State<AppState>, session: Session, Query(params): Query<Params>) -> Response {
    let list = crate::usecase::rollout::list(&state.ledger);
    let admin = session.can(Role::PlatformAdmin);
    let detail = match params.id.as_deref().filter(|id| !id.is_empty()) {
        None => None,
        Some(id) => match crate::usecase::rollout::status(&state.ledger, id).await {
            Ok(view) => Some(view),
            Err(e) => {
                let what = format!("{e}. Pick a rollout from the list.");
                return page::error_page(StatusCode::NOT_FOUND, "No such rollout", &what, Some(&session));
            }
        },
    };
    let body = html! {
        @if let Some(r) = &detail {
            (detail_section(r, admin))
        }
        section aria-labelledby="ro-h" {
            h2 id="ro-h" { "Rollouts" }
            p class="hint" {
                "A rollout serves new values to the instances matching its label selector first, then to a growing "
                "percentage of all instances, each step after a bake; a failed health check rolls it back. Start one with "
                code { "cfgledger rollout start" } " or " code { "POST /admin/rollouts" } "."
            }
            @if list.rollouts.is_empty() {
                p class="muted" { "No rollout yet." }
            } @else {
                div class="table-wrap" {
                    table class="rollouts" id="rollouts" {
                        caption class="visually-hidden" { "Every rollout, newest first" }
                        thead { tr {
                            th scope="col" { "Rollout" }
                            th scope="col" { "Status" }
                            th scope="col" { "Stage" }
                            th scope="col" { "Keys" }
                            th scope="col" { "Started" }
                        } }
                        tbody {
                            @for r in &list.rollouts {
                                tr data-id=(r.id) {
                                    th scope="row" { a href=(format!("/ui/rollouts?id={}", enc(&r.id))) { code { (r.id) } } span class="by" { "namespace " (r.namespace) } }
                                    td data-label="Status" { (status_badge(&r.status)) }
                                    td data-label="Stage" { (stage_text(r)) }
                                    td data-label="Keys" { @for c in &r.changes { code { (c.key) } " " } }
                                    td data-label="Started" { @if let Some(t) = r.transitions.first() { (page::time(&t.at)) span class="by" { "by " (t.actor) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page::layout(&session, "Rollouts", "rollouts", &["rollouts.js"], body).into_response()
}

fn status_badge(status: &str) -> Markup {
    let class = match status {
        "active" => "badge pending",
        "completed" => "badge good",
        _ => "badge bad",
    };
    html! { span class=(class) { (status.replace('_', " ")) } }
}

fn stage_text(r: &RolloutView) -> String {
    match r.stage {
        0 => "labels only".to_string(),
        n => format!("step {n} of {}: {} %", r.steps.len(), r.percent),
    }
}

fn detail_section(r: &RolloutView, admin: bool) -> Markup {
    let selector: Vec<String> = r.selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
    html! {
        section aria-labelledby="detail-h" class="rollout-detail" data-id=(r.id) {
            h2 id="detail-h" { "Rollout " code { (r.id) } " " (status_badge(&r.status)) }
            p class="hint" {
                "Namespace " strong { (r.namespace) } ". "
                @if selector.is_empty() { "No label selector. " } @else { "Labels first: " code { (selector.join(", ")) } ". " }
                "Each step bakes " (human_ms(r.bake_ms))
                @if let Some(at) = &r.bake_ends_at { "; this one until " (page::time(at)) }
                ". "
                @if let Some(url) = &r.check_url { "Health check " code { (url) } " (timeout " (human_ms(r.check_timeout_ms)) "). " }
                @if r.instance_reports { "Instances' own reports count." }
            }
            ol class="rollout-steps" aria-label="Stages" {
                @let labels_stage = if r.selector.is_empty() { None } else { Some(0u32) };
                @if let Some(s) = labels_stage {
                    li class=(step_class(r, s)) { "labels" }
                }
                @for (i, p) in r.steps.iter().enumerate() {
                    @let s = u32::try_from(i + 1).unwrap_or(u32::MAX);
                    li class=(step_class(r, s)) { (p) " %" @if s == r.stage && r.status == "active" { span class="visually-hidden" { " (current)" } } }
                }
            }
            h3 { "Values" }
            div class="table-wrap" {
                table class="values" {
                    thead { tr { th scope="col" { "Key" } th scope="col" { "New value" } } }
                    tbody { @for c in &r.changes { tr { th scope="row" { code { (c.key) } } td { code { (page::value_text(&c.value)) } } } } }
                }
            }
            @if admin && r.status == "active" {
                div class="actions" {
                    label for="ro-reason" { "Reason (recorded)" }
                    input type="text" id="ro-reason" maxlength="1024";
                    button type="button" class="small" id="ro-advance" { "Advance now" }
                    button type="button" class="danger" id="ro-rollback" { "Roll back (abort)" }
                    p class="error" role="alert" id="ro-error" {}
                }
            }
            h3 { "Transitions" }
            div class="table-wrap" { table class="transitions" id="transitions" {
                thead { tr {
                    th scope="col" { "Seq" } th scope="col" { "When" } th scope="col" { "What" } th scope="col" { "Stage" } th scope="col" { "By" } th scope="col" { "Note" }
                } }
                tbody {
                    @for t in &r.transitions {
                        tr {
                            td class="num" { (t.seq) }
                            td { (page::time(&t.at)) }
                            td { (t.what.replace('_', " ")) }
                            td { @if t.stage == 0 { "labels" } @else { (t.stage) " (" (t.percent) " %)" } }
                            td { (t.actor) }
                            td { @if let Some(n) = &t.note { (n) } }
                        }
                    }
                }
            } }
            h3 { "Instances" }
            @if r.instances.is_empty() {
                p class="muted" { "No live agent or client follows namespace " (r.namespace) "." }
            } @else {
                div class="table-wrap" { table class="instances" id="rollout-instances" {
                    thead { tr {
                        th scope="col" { "Instance" } th scope="col" { "Labels" } th scope="col" { "Bucket" } th scope="col" { "Values" } th scope="col" { "Applied" }
                    } }
                    tbody {
                        @for i in &r.instances {
                            tr data-instance=(i.instance) data-new=(i.new_values) {
                                th scope="row" { code { (i.instance) } }
                                td { @for (k, v) in &i.labels { span class="badge" { (k) "=" (v) } " " } }
                                td class="num" { (i.bucket) }
                                td {
                                    @if i.new_values { span class="badge good" { "new values" } span class="by" { "by " (i.via) } }
                                    @else { span class="badge" { "main values" } }
                                }
                                td {
                                    @if i.applied { "yes" } @else { "not yet" }
                                    @if i.healthy == Some(false) { " " span class="badge bad" { "reports unhealthy" } }
                                }
                            }
                        }
                    }
                } }
            }
        }
    }
}

fn step_class(r: &RolloutView, stage: u32) -> &'static str {
    if stage < r.stage || r.status == "completed" {
        "done"
    } else if stage == r.stage && r.status == "active" {
        "current"
    } else {
        "todo"
    }
}

/// A duration in milliseconds as a person reads it: `300 ms`, `30 s`, `5 min`, `1 h`.
fn human_ms(ms: u64) -> String {
    match ms {
        ms if ms % 3_600_000 == 0 && ms > 0 => format!("{} h", ms / 3_600_000),
        ms if ms % 60_000 == 0 && ms > 0 => format!("{} min", ms / 60_000),
        ms if ms % 1000 == 0 && ms > 0 => format!("{} s", ms / 1000),
        ms => format!("{ms} ms"),
    }
}
