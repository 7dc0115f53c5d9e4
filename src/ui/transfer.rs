//! `/ui/transfer`: import and export between isolated environments. The export half is a GET form whose
//! answer is two download links, to `GET /admin/config/export` and `GET /export` with the chosen filters
//! (`transfer.js` rebuilds them as the form changes; the session cookie authenticates the download). The
//! import half (platform_admin) reads a file in the browser, previews it through the API's dry run
//! (`POST /admin/config/import?dry_run=true` or `POST /import` with `dry_run`), and applies exactly what was
//! previewed, then shows the import's status from `GET /import/status/{id}`; the recent imports come from
//! `GET /import/status`.

use super::page::{self, nonempty};
use super::session::Session;
use crate::api::AppState;
use crate::auth::Role;
use crate::model::ExportQuery;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use cfgledger_events::ResourceKind;
use maud::{html, Markup};

pub fn routes() -> Router<AppState> {
    Router::new().route("/ui/transfer", get(page))
}

/// The export form's fields: what it sends to itself when scripts are off, and what builds the links.
#[derive(Debug, Default)]
pub struct ExportForm {
    ns: Option<String>,
    /// Checked kinds (one `types=` each), joined by the links.
    types: Vec<String>,
    tags: Option<String>,
    inactive: Option<String>,
    deps: Option<String>,
    format: Option<String>,
    /// Set once the form was submitted, so unchecked boxes mean "off" rather than "not sent yet".
    sent: Option<String>,
}

impl ExportForm {
    /// From the query's pairs: a checkbox group repeats its name, which a struct cannot take.
    fn from_pairs(pairs: Vec<(String, String)>) -> ExportForm {
        let mut form = ExportForm::default();
        for (k, v) in pairs {
            match k.as_str() {
                "types" => form.types.push(v),
                "ns" => form.ns = Some(v),
                "tags" => form.tags = Some(v),
                "inactive" => form.inactive = Some(v),
                "deps" => form.deps = Some(v),
                "format" => form.format = Some(v),
                "sent" => form.sent = Some(v),
                _ => {}
            }
        }
        form
    }
}

fn on(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Query values as a URL's query string (percent-encoded).
fn query_string(pairs: &[(&str, String)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect::<Vec<_>>().join("&")
}

/// The registry export's query, exactly as `GET /export` takes it (`ExportQuery::pairs`).
fn registry_query(form: &ExportForm, sent: bool) -> ExportQuery {
    let kinds: Vec<&str> =
        form.types.iter().map(String::as_str).filter(|t| t.parse::<ResourceKind>().is_ok()).collect();
    ExportQuery {
        types: (!kinds.is_empty() && kinds.len() < ResourceKind::ALL.len()).then(|| kinds.join(",")),
        exclude_types: None,
        tags: nonempty(&form.tags).map(str::to_string),
        include_inactive: on(&form.inactive),
        include_dependencies: (sent && !on(&form.deps)).then_some(false),
        format: nonempty(&form.format).filter(|f| *f == "mcpgateway").map(str::to_string),
    }
}

async fn page(State(state): State<AppState>, session: Session, Query(pairs): Query<Vec<(String, String)>>) -> Response {
    let form = ExportForm::from_pairs(pairs);
    let ledger = &state.ledger;
    let catalog = ledger.catalog();
    let auditor = session.can(Role::Auditor);
    let admin = session.can(Role::PlatformAdmin);
    let sent = form.sent.is_some();
    let head = ledger.snapshot().head.seq;
    let ns = nonempty(&form.ns).filter(|n| catalog.namespace(n).is_some()).map(str::to_string);
    let settings_href = match &ns {
        Some(n) => format!("/admin/config/export?{}", query_string(&[("namespace", n.clone())])),
        None => "/admin/config/export".to_string(),
    };
    let query = registry_query(&form, sent);
    let pairs = query.pairs();
    let registry_href =
        if pairs.is_empty() { "/export".to_string() } else { format!("/export?{}", query_string(&pairs)) };
    let gateway_layout = query.format.is_some();
    let chosen = |k: ResourceKind| !sent || form.types.iter().any(|t| t == k.as_str());
    let deps = !sent || on(&form.deps);
    let body = html! {
        p class="lead" { "Move configuration between isolated environments: export from one store, preview the import in another, then apply it as one atomic batch." }
        section aria-labelledby="export-h" {
            h2 id="export-h" { "Export" }
            @if !auditor {
                p class="hint" { "Your role (" (session.caller().role.as_str()) ") cannot export: exports need the auditor or platform_admin role." }
            } @else {
                form class="filters export" id="export-form" method="get" action="/ui/transfer" aria-label="Export filters" {
                    input type="hidden" name="sent" value="1";
                    fieldset class="kinds" {
                        legend { "Kinds" }
                        @for k in ResourceKind::ALL {
                            span class="check" {
                                input type="checkbox" id=(format!("x-{k}")) name="types" value=(k.as_str()) checked[chosen(k)];
                                label for=(format!("x-{k}")) { (k.as_str()) }
                            }
                        }
                    }
                    div class="field grow" {
                        label for="x-tags" { "Tags" }
                        input id="x-tags" name="tags" type="text" value=(form.tags.as_deref().unwrap_or_default()) placeholder="any of, comma-separated";
                    }
                    fieldset class="flags" {
                        legend { "Include" }
                        span class="check" {
                            input type="checkbox" id="x-inactive" name="inactive" value="1" checked[on(&form.inactive)];
                            label for="x-inactive" { "inactive entities" }
                        }
                        span class="check" {
                            input type="checkbox" id="x-deps" name="deps" value="1" checked[deps];
                            label for="x-deps" { "dependencies (what an exported server links)" }
                        }
                    }
                    div class="field" {
                        label for="x-format" { "Registry layout" }
                        select id="x-format" name="format" {
                            option value="cfgledger" selected[!gateway_layout] { "cfgledger (with settings)" }
                            option value="mcpgateway" selected[gateway_layout] { "MCP Gateway (entities only)" }
                        }
                    }
                    div class="field" {
                        label for="x-ns" { "Settings namespace" }
                        select id="x-ns" name="ns" {
                            option value="" { "All namespaces" }
                            @for n in catalog.namespaces() {
                                option value=(n.name) selected[ns.as_deref() == Some(n.name.as_str())] { (n.name) " (" (n.application) ")" }
                            }
                        }
                    }
                    button type="submit" { "Update the links" }
                }
                div class="downloads" {
                    div class="download" {
                        h3 { "Registry" }
                        p class="hint" { "Entities with their credentials still sealed, and (in cfgledger's layout) the settings the store holds. At seq " (head) "." }
                        a class="button primary" id="export-registry" href=(registry_href)
                            download=(format!("cfgledger-registry{}-seq{head}.json", if gateway_layout { "-mcpgateway" } else { "" })) { "Download the registry export" }
                        code class="href" id="export-registry-href" { (registry_href) }
                    }
                    div class="download" {
                        h3 { "Settings" }
                        p class="hint" { "Every non-sensitive setting in force (set in the store or the environment), with its source and a digest." }
                        a class="button primary" id="export-settings" href=(settings_href)
                            download=(format!("cfgledger-settings-seq{head}.json")) { "Download the settings export" }
                        code class="href" id="export-settings-href" { (settings_href) }
                    }
                }
            }
        }
        section aria-labelledby="import-h" {
            h2 id="import-h" { "Import" }
            @if !admin {
                p class="hint" { "Your role (" (session.caller().role.as_str()) ") cannot import: imports need the platform_admin role." }
            } @else {
                (import_form(&state))
            }
        }
        @if auditor {
            // Read by the script from `GET /import/status`: finding them walks the log back from its head,
            // which on a long log with few imports takes a while, and must not hold up the page.
            section aria-labelledby="recent-h" {
                h2 id="recent-h" { "Recent imports" }
                p class="muted" { "Reading the recent imports…" }
            }
        }
    };
    page::layout(&session, "Import & export", "transfer", &["transfer.js"], body).into_response()
}

fn import_form(state: &AppState) -> Markup {
    let catalog = state.ledger.catalog();
    html! {
        form id="import-form" class="import" novalidate {
            ol class="steps" {
                li {
                    div class="field" {
                        label for="i-file" { "1. Choose an export file" }
                        input id="i-file" type="file" accept=".json,application/json" aria-describedby="i-file-info";
                        p id="i-file-info" class="hint" aria-live="polite" { "A file from “Download …” above, from " code { "cfgledger export" } ", or from MCP Gateway." }
                    }
                }
                li {
                    fieldset class="which" {
                        legend { "2. What it holds" }
                        span class="check" {
                            input type="radio" id="i-registry" name="which" value="registry" checked;
                            label for="i-registry" { "Registry (entities, and settings when asked)" }
                        }
                        span class="check" {
                            input type="radio" id="i-settings" name="which" value="settings";
                            label for="i-settings" { "Settings only" }
                        }
                    }
                }
                li {
                    fieldset class="options" {
                        legend { "3. Options" }
                        div class="opt-grid" {
                            div class="field" data-for="registry" {
                                label for="i-strategy" { "When an entity exists with other content" }
                                select id="i-strategy" {
                                    option value="update" selected { "update: replace it with the file's" }
                                    option value="skip" { "skip: keep the store's" }
                                    option value="rename" { "rename: import as NAME_imported" }
                                    option value="fail" { "fail: apply nothing" }
                                }
                            }
                            div class="field" data-for="registry" {
                                label for="i-secret" { "Source store's secret" }
                                input id="i-secret" type="password" autocomplete="off" aria-describedby="i-secret-hint";
                                span id="i-secret-hint" class="hint" { "Only when its credentials were sealed by another store; sent once, never shown or kept." }
                            }
                            div class="field" data-for="settings" hidden {
                                label for="i-ns" { "Namespace of the bare keys" }
                                select id="i-ns" {
                                    @for n in catalog.namespaces() {
                                        option value=(n.name) selected[n.name == cfgledger_events::namespace::DEFAULT] { (n.name) " (" (n.application) ")" }
                                    }
                                }
                            }
                            div class="field grow" {
                                label for="i-reason" { "Reason" }
                                input id="i-reason" type="text" placeholder="why (recorded in the audit trail)";
                            }
                        }
                        div class="flags" data-for="registry" {
                            span class="check" {
                                input type="checkbox" id="i-with-settings";
                                label for="i-with-settings" { "Apply the file's settings too" }
                            }
                            span class="check" {
                                input type="checkbox" id="i-allow-edited";
                                label for="i-allow-edited" { "Accept a file edited on purpose (digest does not match)" }
                            }
                        }
                    }
                }
            }
            div id="i-pick" class="pick" data-for="registry" {}
            p class="error" role="alert" id="import-error" {}
            div class="buttons" {
                button type="submit" id="i-preview" class="primary" { "Preview (dry run)" }
                button type="button" id="i-apply" class="danger" disabled aria-describedby="i-apply-hint" { "Apply" }
                span id="i-apply-hint" class="hint" { "Apply is enabled after a preview and sends what was previewed; a settings import is refused if the store changed since." }
            }
        }
        div id="import-result" aria-live="polite" {}
    }
}
