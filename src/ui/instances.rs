//! `/ui/instances`: which configuration each instance runs, like Apollo's instance list. cfgledger servers,
//! agents and clients come from `GET /admin/instances`, which `instances.js` reads on load and every few
//! seconds (no reload), showing applied seq, head hash, lag, last heartbeat and status; behind, stale,
//! ahead and diverged instances carry a badge with words, not only a colour. It shows at most 500 rows, with
//! the counts of every instance and a status filter (the API's `status` and `limit`). The page also verifies the
//! hash chain on demand through `GET /admin/verify` (auditor), showing the head and the first bad seq.

use super::page;
use super::session::Session;
use crate::api::AppState;
use crate::auth::Role;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::html;

pub fn routes() -> Router<AppState> {
    Router::new().route("/ui/instances", get(page))
}

/// How often the list is read again, in seconds: servers beat every 2 s, and an instance silent for 10 s
/// leaves the list.
const REFRESH_SECS: u32 = 5;
/// The most rows the page shows: with thousands of agents, the counts say how many there are, and the
/// status filter finds the few that need a look.
const SHOWN: usize = 500;

async fn page(State(state): State<AppState>, session: Session) -> Response {
    let snap = state.ledger.snapshot();
    let head = snap.head.seq;
    let hash = snap.head.hash.to_hex();
    let auditor = session.can(Role::Auditor);
    let body = html! {
        section aria-labelledby="inst-h" {
            h2 id="inst-h" { "Live instances" }
            p class="hint" {
                "Servers, agents and clients that sent a heartbeat in the last few seconds. Each should run the log's head: "
                "seq " strong id="log-head" { (head) } " (hash " code title=(hash) id="log-hash" { (&hash[..12.min(hash.len())]) } "…)."
            }
            div class="refresh-bar" {
                p id="inst-summary" class="summary" aria-live="polite" { "Reading the instances…" }
                span {
                    label for="inst-show" { "Show " }
                    select id="inst-show" {
                        option value="" { "every instance" }
                        option value="behind,stale,ahead,diverged" { "those not converged" }
                        option value="diverged" { "diverged" }
                        option value="stale" { "stale" }
                        option value="behind" { "behind" }
                        option value="ahead" { "ahead" }
                    }
                }
                span class="check" {
                    input type="checkbox" id="auto-refresh" checked;
                    label for="auto-refresh" { "Refresh every " (REFRESH_SECS) " seconds" }
                }
                button type="button" id="refresh-now" class="small" { "Refresh now" }
                span id="refreshed" class="muted" {}
            }
            p class="error" role="alert" id="inst-error" {}
            div class="table-wrap" {
                table class="instances" id="instances" data-refresh=(REFRESH_SECS) data-shown=(SHOWN) {
                    caption class="visually-hidden" { "Live instances and the configuration each runs" }
                    thead { tr {
                        th scope="col" { "Instance" }
                        th scope="col" { "Status" }
                        th scope="col" { "Applied seq" }
                        th scope="col" { "Head hash" }
                        th scope="col" { "Lag" }
                        th scope="col" { "Last heartbeat" }
                    } }
                    tbody {
                        tr { td colspan="6" class="muted" { "Loading… (this list needs JavaScript; "
                            code { "GET /admin/instances" } " gives it as JSON)" } }
                    }
                }
            }
            details class="legend" {
                summary { "What the statuses mean" }
                dl {
                    dt { span class="badge good" { "converged" } } dd { "At the log's head, with the log's hash." }
                    dt { span class="badge pending" { "behind" } } dd { "Its hash matches the log at its seq, but later events are not applied yet (the lag)." }
                    dt { span class="badge pending" { "stale" } } dd { "It says it cannot follow the server (unreachable, or started from its cache)." }
                    dt { span class="badge" { "ahead" } } dd { "Past this server's head: this server lags, or the instance follows another store." }
                    dt { span class="badge bad" { "diverged" } } dd { "Its head hash is not the log's at its seq: it runs a configuration this log never held. Restart it against this server, or check which store it follows." }
                }
            }
        }
        section aria-labelledby="verify-h" {
            h2 id="verify-h" { "Integrity of the log" }
            @if auditor {
                p class="hint" { "Recomputes every hash of the chain from the stored bytes and compares each checkpoint with a replay. On a large log this takes a while." }
                button type="button" id="verify" class="primary" { "Verify the chain" }
                div id="verify-result" aria-live="polite" {}
            } @else {
                p class="hint" { "Your role (" (session.caller().role.as_str()) ") cannot verify the chain: it needs the auditor or platform_admin role." }
            }
        }
    };
    page::layout(&session, "Instances", "instances", &["instances.js"], body).into_response()
}
