//! `/ui/rollback` (platform_admin): return settings and entities to a point, or revert one batch. The
//! preview is this page itself: a GET form whose answer is the use case's own plan (`timetravel::rollback`
//! with `dry_run`, or `timetravel::revert_request`; both reads), grouped by step (set, reset, create, update, delete,
//! locked, invalid). Applying goes through the REST API (`POST /admin/config/rollback` with the previewed
//! point pinned as `seq:N` and `expected_head`, or `POST /admin/config/revert`) from `rollback.js`, with a
//! required reason. A revert that later changes block shows them, and forcing it takes a second, explicit
//! confirmation.

use super::audit::{self, enc, jsondiff, nonempty, short_id};
use super::page;
use super::session::Session;
use crate::api::AppState;
use crate::auth::Role;
use crate::model::{AuditEntry, AuditFilter, AuditPage, PlanStep, RollbackBody, RollbackReport};
use crate::usecase::{self, timetravel};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use cfgledger_events::rollback::StepAction;
use maud::{html, Markup};
use serde_json::Value;
use std::collections::HashMap;

/// Changes listed on the rollback page before a point is chosen.
const RECENT: usize = 15;

pub fn routes() -> Router<AppState> {
    Router::new().route("/ui/rollback", get(rollback_page))
}

/// The groups of a plan, in the order an operator reads them: what changes, then what will not.
const GROUPS: [(StepAction, &str, &str); 7] = [
    (StepAction::Set, "Set", "These keys get back the value they had."),
    (StepAction::Reset, "Reset", "These keys had no value in the log then: they fall back to the environment or the default."),
    (StepAction::Create, "Create", "These entities did not exist now and are created as they were."),
    (StepAction::Update, "Update", "These entities take back the fields they had."),
    (StepAction::Delete, "Delete", "These entities did not exist then and are deleted."),
    (StepAction::Locked, "Locked (not changed)", "Locked keys are set only from .env and `cfgledger config reseed`: the rollback reports them and leaves them."),
    (StepAction::Invalid, "Conflicts (refused)", "The old value no longer fits the current catalog: the rollback is refused while these are included. Leave them out, or set them by hand."),
];

/// The page's query, read as pairs because the subjects' checkboxes repeat `key`.
#[derive(Debug, Default)]
struct Request {
    to: Option<String>,
    /// The text field: keys and entities separated by commas or spaces.
    keys: Option<String>,
    /// The checked subjects of a previous plan.
    checked: Vec<String>,
    ns: Option<String>,
    revert: Option<String>,
    /// The subjects came from the narrowing form: none checked means none, not all.
    narrowed: bool,
}

impl Request {
    fn read(pairs: Vec<(String, String)>) -> Request {
        let mut r = Request::default();
        for (k, v) in pairs {
            let v = v.trim().to_string();
            if v.is_empty() {
                continue;
            }
            match k.as_str() {
                "to" => r.to = Some(v),
                "keys" => r.keys = Some(v),
                "key" => r.checked.push(v),
                "ns" => r.ns = Some(v),
                "revert" => r.revert = Some(v),
                "narrowed" => r.narrowed = true,
                _ => {}
            }
        }
        r
    }

    /// The subjects to roll back, if only some: the checked ones, else those typed.
    fn subjects(&self) -> Option<Vec<String>> {
        if !self.checked.is_empty() {
            return Some(self.checked.clone());
        }
        let typed: Vec<String> = self
            .keys
            .as_deref()
            .unwrap_or("")
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        (!typed.is_empty()).then_some(typed)
    }

    /// The namespace of the request: the checked subjects of a plan are named as the plan names them
    /// (bare in the default namespace, qualified elsewhere), so they take none.
    fn namespace(&self) -> Option<String> {
        if self.checked.is_empty() {
            nonempty(&self.ns).map(str::to_string)
        } else {
            None
        }
    }
}

async fn rollback_page(
    State(state): State<AppState>,
    session: Session,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    if !session.can(Role::PlatformAdmin) {
        return page::error_page(
            StatusCode::FORBIDDEN,
            "Not allowed for your role",
            &format!(
                "Rollback and revert need the platform_admin role; you are signed in as {} with role {}. \
                 To see what changed, use Time travel (auditor); ask a platform_admin to roll back.",
                session.caller().name,
                session.caller().role.as_str()
            ),
            Some(&session),
        );
    }
    let req = Request::read(pairs);
    match req.revert.clone() {
        Some(batch) => revert_view(&state, &session, &batch).await,
        None => rollback_view(&state, &session, &req).await,
    }
}

async fn rollback_view(state: &AppState, session: &Session, req: &Request) -> Response {
    let catalog = state.ledger.catalog();
    let ns = nonempty(&req.ns);
    let mut status = StatusCode::OK;
    let plan = match &req.to {
        None => recent(state).await,
        Some(_) if req.narrowed && req.checked.is_empty() => html! {
            p class="error" role="alert" { "No key or entity is checked. Check at least one, or clear the keys field to preview the whole rollback." }
        },
        Some(to) => {
            let body = RollbackBody {
                to: to.clone(),
                keys: req.subjects(),
                namespace: req.namespace(),
                dry_run: true,
                reason: None,
                expected_head: None,
            };
            // The rollback use case's own dry run (`dry_run` is always true here: it plans and returns before
            // anything is written), so the preview is exactly what the API's dry run answers.
            let (ledger, ctx) = (state.ledger.clone(), session.caller().context(None));
            let send = body.clone();
            let via = timetravel::Via::Api("POST /admin/config/rollback".into());
            match usecase::blocking(move || timetravel::rollback(&ledger, &send, &via, ctx)).await {
                Ok(report) => {
                    let entities = entity_values(state, &report).await;
                    rollback_plan(&report, &body, to, &entities)
                }
                Err(e) => {
                    // The API's answer to the same dry run: its status and message.
                    let e = crate::api::ApiError::from(e);
                    status = e.status;
                    html! { p class="error" role="alert" { "No plan: " (e.message) ". Correct the point or the keys, then preview again." } }
                }
            }
        }
    };
    let body = html! {
        p class="hint" {
            "A rollback returns settings and entities to how they were at a point, as one new batch of changes: "
            "the history is kept, and the rollback itself can be reverted. Preview it first; nothing changes until you apply it."
        }
        form class="filters pick" method="get" action="/ui/rollback" aria-label="Choose what to roll back" {
            div class="field" {
                label for="r-to" { "Back to" }
                input id="r-to" name="to" type="text" required value=[req.to.as_deref()] size="24"
                    placeholder="seq:42, 24h or 2026-12-01T09:30:00Z" aria-describedby="r-to-hint";
                span id="r-to-hint" class="hint" { "A seq, a duration before now, or an RFC 3339 time" }
            }
            div class="field grow" {
                label for="r-keys" { "Only these keys and entities (optional)" }
                input id="r-keys" name="keys" type="text" value=[req.subjects().map(|s| s.join(", "))]
                    placeholder="LOG_LEVEL, cfgledger:UI_ENABLED, tools/search" aria-describedby="r-keys-hint";
                span id="r-keys-hint" class="hint" { "Comma-separated; all of them when empty" }
            }
            div class="field" {
                label for="r-ns" { "Namespace" }
                select id="r-ns" name="ns" {
                    option value="" { "All, and the registry" }
                    @for n in catalog.namespaces() {
                        option value=(n.name) selected[ns == Some(n.name.as_str())] { (n.name) }
                    }
                }
            }
            button type="submit" class="primary" { "Preview" }
        }
        (plan)
    };
    page::layout(session, "Rollback", "rollback", &["rollback.js"], body).with_status(status).into_response()
}

fn rollback_plan(report: &RollbackReport, body: &RollbackBody, typed: &str, entities: &Entities) -> Markup {
    let point = format!("seq:{}", report.to.seq);
    let keys = body.keys.clone().map(|k| serde_json::to_string(&k).unwrap_or_default());
    html! {
        h2 { "Plan: back to " span class="point" { (point) } }
        @if typed != point { p class="hint" { (typed) " is " (point) " in the log; the rollback is pinned to it." } }
        (summary(report))
        @if report.steps.is_empty() {
            p class="notice" { "Nothing to do: everything selected already holds the value it had at " (point) "." }
        } @else {
            (groups(&report.steps, entities))
            (narrow(report, &point))
            @if report.counts.invalid > 0 {
                p class="error" role="alert" { "This plan cannot be applied: " (report.counts.invalid) " value(s) no longer fit the catalog. Uncheck them above and preview again." }
            } @else if changes(report) > 0 {
                section class="apply-panel" id="apply" aria-labelledby="apply-h" data-kind="rollback" data-to=(point)
                    data-keys=[keys] data-namespace=[body.namespace.as_deref()] data-head=(report.head) {
                    h2 id="apply-h" { "Apply" }
                    p { "Applies the " (changes(report)) " change(s) above as one batch, only if the log's head is still seq " (report.head) " (no one changed anything since this preview)." }
                    (reason_field())
                    div class="buttons" {
                        button type="button" class="danger" id="apply-btn" { "Apply rollback" }
                        a href="" { "Preview again" }
                    }
                    p class="error" id="apply-error" role="alert" {}
                    div id="apply-result" role="status" tabindex="-1" {}
                }
            }
        }
    }
}

/// Without a point yet: the newest changes, each a point to return to (the state just before it) or a batch
/// to revert, as Apollo's release list offers.
async fn recent(state: &AppState) -> Markup {
    let ledger = state.ledger.clone();
    let filter = AuditFilter { limit: Some(RECENT), ..AuditFilter::default() };
    let Ok(p) = usecase::blocking(move || timetravel::audit(&ledger, &filter)).await else {
        return html! {};
    };
    // Changes to settings and entities only (a rollback leaves users alone), a batch's controls on its first row.
    let rows: Vec<&AuditEntry> = p.entries.iter().filter(|e| audit::revertible(&e.action)).collect();
    let mut seen = std::collections::HashSet::new();
    // "Before this" is before the whole batch: its first seq on the page.
    let mut first: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for e in &rows {
        let seq = first.entry(e.batch.as_str()).or_insert(e.seq);
        *seq = (*seq).min(e.seq);
    }
    html! {
        @if !rows.is_empty() {
            h2 { "Recent changes" }
            p class="hint" { "Pick a point: the state just before a change, or undo one batch alone." }
            div class="table-wrap" {
                table class="values" id="recent" {
                    thead { tr {
                        th scope="col" { "Key or entity" }
                        th scope="col" { "Change" }
                        th scope="col" { "Who and when" }
                        th scope="col" { span class="visually-hidden" { "Actions" } }
                    } }
                    tbody {
                        @for e in rows {
                            tr data-seq=(e.seq) {
                                th scope="row" class="key" {
                                    @if let Some(s) = audit::subject(e) { code { (cfgledger_events::namespace::display(&s)) } }
                                    @else { span class="muted" { "(the store)" } }
                                    " " (audit::action_badge(&e.action))
                                }
                                td class="change" { (audit::change(e)) }
                                td { (e.actor) " · " (page::time(&e.time)) span class="seq" { "seq " (e.seq) } }
                                td class="controls" {
                                    @if seen.insert(e.batch.as_str()) {
                                        a class="button small" href=(format!("/ui/rollback?to=seq:{}", first.get(e.batch.as_str()).unwrap_or(&e.seq).saturating_sub(1)))
                                            aria-label=(format!("Roll back to before seq {}", e.seq)) { "Roll back to before this" }
                                        " "
                                        a class="button small" href=(format!("/ui/rollback?revert={}", enc(&e.batch)))
                                            aria-label=(format!("Revert the batch of seq {}", e.seq)) { "Revert this batch" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p { a href="/ui/audit" { "More in the audit trail" } }
        }
    }
}

/// The steps that change something (locked and invalid ones do not).
fn changes(report: &RollbackReport) -> usize {
    let c = &report.counts;
    c.set + c.reset + c.create + c.update + c.delete
}

fn summary(report: &RollbackReport) -> Markup {
    let c = &report.counts;
    html! {
        div class="plan-summary" aria-label="Steps by kind" {
            @for (n, label, class) in [
                (c.set, "set", "badge action-set"), (c.reset, "reset", "badge action-set"),
                (c.create, "create", "badge action-entity"), (c.update, "update", "badge action-entity"),
                (c.delete, "delete", "badge action-entity"), (c.locked, "locked", "badge locked"),
                (c.invalid, "conflicts", "badge bad"),
            ] {
                @if n > 0 { span class=(class) { (n) " " (label) } }
            }
            @if !report.restart_required.is_empty() {
                span class="badge restart" title=(report.restart_required.join(", ")) { (report.restart_required.len()) " need a restart" }
            }
        }
    }
}

fn groups(steps: &[PlanStep], entities: &Entities) -> Markup {
    html! {
        @for (action, title, hint) in GROUPS {
            @let these: Vec<&PlanStep> = steps.iter().filter(|s| s.action == action).collect();
            @if !these.is_empty() {
                section class=(format!("plan-group {}", action.as_str())) aria-labelledby=(format!("g-{}", action.as_str())) {
                    h3 id=(format!("g-{}", action.as_str())) { (title) " " span class="count-badge" { "(" (these.len()) ")" } }
                    p class="hint" { (hint) }
                    div class="table-wrap" {
                        table class="values plan" {
                            thead { tr {
                                th scope="col" { "Key or entity" }
                                th scope="col" { "Now → after" }
                            } }
                            tbody {
                                @for s in these {
                                    tr data-subject=(s.subject) {
                                        th scope="row" class="key" {
                                            a href=(format!("/ui/timetravel?key={}", enc(&history_key(&s.subject)))) { code { (s.subject) } }
                                            @if s.restart_required { " " span class="badge restart" { "restart" } }
                                        }
                                        td class="change" { (step_change(s, entities.get(&s.subject))) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The history page's name of a plan's subject (bare keys are the default namespace's).
fn history_key(subject: &str) -> String {
    cfgledger_events::namespace::subject(subject)
}

/// The fields of the entities a plan creates, updates or deletes: (at the point, now). A plan step names an
/// entity's changed fields but not their values; the diff between the point and now has them.
type Entities = HashMap<String, (Value, Value)>;

async fn entity_values(state: &AppState, report: &RollbackReport) -> Entities {
    let entity = |s: &PlanStep| matches!(s.action, StepAction::Create | StepAction::Update | StepAction::Delete);
    if !report.steps.iter().any(entity) {
        return Entities::new();
    }
    let (ledger, from) = (state.ledger.clone(), format!("seq:{}", report.to.seq));
    match usecase::blocking(move || timetravel::diff(&ledger, &from, None, None)).await {
        Ok(d) => d
            .changed
            .into_iter()
            .chain(d.added)
            .chain(d.removed)
            .filter(|l| l.key.contains('/'))
            .map(|l| (l.key, (l.old, l.new)))
            .collect(),
        // Without the values, the steps still name the fields that change.
        Err(_) => Entities::new(),
    }
}

fn step_change(s: &PlanStep, entity: Option<&(Value, Value)>) -> Markup {
    let some = |v: &Value| (!v.is_null()).then_some(v.clone());
    html! {
        @match (s.action, entity) {
            (StepAction::Update, Some((then, now))) => (jsondiff::render(Some(now), Some(then))),
            (StepAction::Update, None) => {
                span class="muted" { "fields: " }
                @for (i, f) in s.changed.iter().enumerate() { @if i > 0 { ", " } code { (f) } }
            }
            (StepAction::Create, Some((then, _))) => { span class="muted" { "created as it was: " } (jsondiff::render(None, Some(then))) }
            (StepAction::Create, None) => { span class="muted" { "created as it was" } }
            (StepAction::Delete, Some((_, now))) => { span class="muted" { "deleted: " } (jsondiff::render(Some(now), None)) }
            (StepAction::Delete, None) => { span class="muted" { "deleted" } }
            (StepAction::Reset, _) => {
                (jsondiff::render(some(&s.current).as_ref(), None))
                span class="muted" { " → the environment or default" }
            }
            _ => (jsondiff::render(some(&s.current).as_ref(), some(&s.value).as_ref())),
        }
        @if let Some(m) = &s.message { span class="reason" { (m) } }
    }
}

/// A second look at the plan with only some of its subjects: the checkboxes of every subject, checked.
fn narrow(report: &RollbackReport, point: &str) -> Markup {
    html! {
        details class="narrow" {
            summary { "Roll back only some of these" }
            form class="pick" method="get" action="/ui/rollback" {
                input type="hidden" name="to" value=(point);
                input type="hidden" name="narrowed" value="1";
                fieldset {
                    legend { "Keys and entities to include" }
                    div class="subjects" {
                        @for (i, s) in report.steps.iter().enumerate() {
                            span class="check" {
                                input type="checkbox" id=(format!("pick-{i}")) name="key" value=(s.subject)
                                    checked[s.action != StepAction::Invalid];
                                label for=(format!("pick-{i}")) { code { (s.subject) } }
                            }
                        }
                    }
                }
                button type="submit" { "Preview the checked ones" }
            }
        }
    }
}

fn reason_field() -> Markup {
    html! {
        div class="field" {
            label for="reason" { "Reason (required, kept in the audit trail)" }
            input id="reason" name="reason" type="text" required maxlength="500" placeholder="e.g. undo the bad deploy of 14:05 (INC-1234)";
        }
    }
}

async fn revert_view(state: &AppState, session: &Session, batch: &str) -> Response {
    // The revert's plan with force (a read: `revert_request` plans and never writes): what it restores and
    // the later changes it would undo as well. Without force the API refuses it with a conflict naming them;
    // the page shows them before anyone tries, and the API still refuses an unforced revert.
    let (ledger, id) = (state.ledger.clone(), batch.to_string());
    let via = timetravel::Via::Api("POST /admin/config/revert".into());
    let report =
        usecase::blocking(move || timetravel::revert_request(&ledger, &id, true, &via).map(|(_, report)| report)).await;
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            let e = crate::api::ApiError::from(e);
            let body = html! {
                p class="error" role="alert" { "This batch cannot be reverted: " (e.message) "." }
                p { "Find the batch in the " a href="/ui/audit" { "audit trail" } " and use its Revert control, or roll back to a point instead." }
                p { a href="/ui/rollback" { "Roll back to a point" } }
            };
            return page::layout(session, "Revert a batch", "rollback", &[], body)
                .with_status(e.status)
                .into_response();
        }
    };
    let Some(of) = report.revert.clone() else {
        return page::error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No revert plan",
            "The revert's plan did not name its batch. Try again; if it persists, revert with the CLI.",
            Some(session),
        );
    };
    let entities = entity_values(state, &report).await;
    let id = of.batch.clone();
    let ledger = state.ledger.clone();
    let filter = AuditFilter { batch: Some(id.clone()), limit: Some(timetravel::MAX_LIMIT), ..AuditFilter::default() };
    let did = usecase::blocking(move || timetravel::audit(&ledger, &filter)).await;
    let later = of.later_changes.len();
    let short = short_id(&id);
    let body = html! {
        @if later > 0 {
            p class="notice" {
                "Blocked: " (later) " later change(s) touched what this batch changed. "
                a href="#force-panel" { "Review them" } " before forcing the revert."
            }
        }
        dl class="facts" {
            dt { "Batch" } dd { code { (id) } " · " a href=(format!("/ui/audit?batch={}", enc(&id))) { "its audit entries" } }
            dt { "Seqs" } dd { (of.seqs[0]) @if of.seqs[1] != of.seqs[0] { " to " (of.seqs[1]) } }
        }
        @match &did {
            Ok(p) => (batch_entries(p)),
            Err(e) => p class="error" { "Its entries cannot be listed: " (e) }
        }
        h2 { "What the revert does" }
        p class="hint" { "Everything this batch touched returns to how it was just before it (seq " (of.seqs[0].saturating_sub(1)) "), as one new batch." }
        (summary(&report))
        @if report.steps.is_empty() {
            p class="notice" { "Nothing to do: what this batch changed already holds the value it had before it." }
        } @else {
            (groups(&report.steps, &entities))
        }
        @if report.counts.invalid > 0 {
            p class="error" role="alert" { "This revert cannot be applied: " (report.counts.invalid) " value(s) no longer fit the catalog. Set them by hand instead." }
        } @else if changes(&report) > 0 {
            section class="apply-panel" id="apply" aria-labelledby="apply-h" data-kind="revert" data-batch=(id) data-later=(later) {
                h2 id="apply-h" { "Revert batch " code { (short) } }
                (reason_field())
                div class="buttons" hidden[later > 0] id="plain" {
                    button type="button" class="danger" id="apply-btn" { "Revert this batch" }
                }
                p class="error" id="apply-error" role="alert" {}
                div class="later" id="force-panel" hidden[later == 0] {
                    p class="notice" id="later-note" {
                        "Later changes touched what this batch changed; a revert would overwrite them too. "
                        "The server refuses a revert that is not forced."
                    }
                    div class="table-wrap" {
                        table class="values" id="later" {
                            caption class="visually-hidden" { "Later changes that block the revert" }
                            thead { tr {
                                th scope="col" { "Key or entity" }
                                th scope="col" { "Seq" }
                                th scope="col" { "Actor" }
                                th scope="col" { "Batch" }
                            } }
                            tbody {
                                @for c in &of.later_changes {
                                    tr {
                                        th scope="row" class="key" { code { (c.key) } }
                                        td data-label="Seq" { (c.seq) }
                                        td data-label="Actor" { (c.actor) }
                                        td data-label="Batch" { a href=(format!("/ui/audit?batch={}", enc(&c.batch))) { code { (short_id(&c.batch)) } } }
                                    }
                                }
                            }
                        }
                    }
                    div class="confirm" {
                        input type="checkbox" id="confirm-force";
                        label for="confirm-force" id="confirm-label" { "I understand this overwrites " (later) " later change(s)" }
                    }
                    div class="buttons" {
                        button type="button" class="danger" id="force-btn" disabled { "Force revert" }
                    }
                }
                div id="apply-result" role="status" tabindex="-1" {}
            }
        }
    };
    page::layout(session, &format!("Revert batch {short}"), "rollback", &["rollback.js"], body).into_response()
}

fn batch_entries(p: &AuditPage) -> Markup {
    html! {
        h2 { "What the batch did" }
        div class="table-wrap" {
            table class="values" {
                thead { tr {
                    th scope="col" { "Key or entity" }
                    th scope="col" { "Change" }
                    th scope="col" { "Who and when" }
                } }
                tbody {
                    @for e in &p.entries {
                        tr {
                            th scope="row" class="key" {
                                @if let Some(s) = audit::subject(e) { code { (cfgledger_events::namespace::display(&s)) } }
                                @else { span class="muted" { "(the store)" } }
                                " " (audit::action_badge(&e.action))
                            }
                            td class="change" { (audit::change(e)) }
                            td { (e.actor) " · " (page::time(&e.time)) }
                        }
                    }
                }
            }
        }
    }
}
