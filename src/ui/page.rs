//! The page shell every screen shares: head (stylesheet, scripts, the session's CSRF token), the skip link,
//! the navigation with the signed-in user and the logout button, the live-status region, and the error page.
//! Dates are rendered as `<time>` in UTC; `common.js` shows them in the browser's zone, with UTC on hover.

use super::assets;
use super::session::Session;
use crate::auth::Role;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

/// The sections of the navigation, in order: (id, label, path, the role that may use it). A section a role
/// cannot use is not offered to it.
pub const NAV: &[(&str, &str, &str, Role)] = &[
    ("settings", "Settings", "/ui/settings", Role::Viewer),
    ("audit", "Audit", "/ui/audit", Role::Auditor),
    ("timetravel", "Time travel", "/ui/timetravel", Role::Viewer),
    ("rollback", "Rollback", "/ui/rollback", Role::PlatformAdmin),
    ("transfer", "Import & export", "/ui/transfer", Role::Auditor),
    ("registry", "Registry", "/ui/registry/gateways", Role::Viewer),
    ("instances", "Instances", "/ui/instances", Role::Viewer),
    ("requests", "Requests", "/ui/requests", Role::Viewer),
    ("rollouts", "Rollouts", "/ui/rollouts", Role::Viewer),
];

/// A rendered page and its status.
pub struct Page {
    pub status: StatusCode,
    pub markup: Markup,
}

impl Page {
    pub fn with_status(self, status: StatusCode) -> Page {
        Page { status, ..self }
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = (self.status, Html(self.markup.into_string())).into_response();
        // Pages hold the session's CSRF token and live data: never cached, never stored.
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// A page of the signed-in UI: `active` names its section in [`NAV`], `scripts` the page's own scripts
/// (under `assets/`) loaded after `common.js`.
pub fn layout(session: &Session, title: &str, active: &str, scripts: &[&str], body: Markup) -> Page {
    let caller = session.caller();
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                (head(title))
                @if let Some(csrf) = &caller.csrf { meta name="csrf-token" content=(csrf); }
                meta name="cfgledger-role" content=(caller.role.as_str());
                script src=(assets::url("common.js")) defer {}
                @for s in scripts { script src=(assets::url(s)) defer {} }
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/ui/settings" { "cfgledger" }
                    nav aria-label="Sections" {
                        ul {
                            @for (id, label, path, _) in NAV.iter().filter(|n| caller.role.allows(n.3)) {
                                li { a href=(path) aria-current=[(*id == active).then_some("page")] { (label) } }
                            }
                        }
                    }
                    div class="who" {
                        span id="live-indicator" class="badge" hidden title="Changes made elsewhere appear without a reload" { "Live" }
                        span { (caller.name) " · " span class="role" { (caller.role.as_str()) } }
                        @if let Some(csrf) = &caller.csrf {
                            form method="post" action="/ui/logout" class="inline" {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                }
                div id="live-status" class="live-status" role="status" aria-live="polite" {}
                main id="main" tabindex="-1" { h1 { (title) } (body) }
            }
        }
    };
    Page { status: StatusCode::OK, markup }
}

/// A page outside the session (the login form).
pub fn bare(title: &str, body: Markup) -> Page {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) script src=(assets::url("common.js")) defer {} }
            body { (body) }
        }
    };
    Page { status: StatusCode::OK, markup }
}

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · cfgledger" }
        link rel="stylesheet" href=(assets::url("app.css"));
        link rel="icon" href="data:,";
    }
}

/// An error as a page: what happened and what to do next, with a way back.
pub fn error_page(status: StatusCode, title: &str, what_next: &str, session: Option<&Session>) -> Response {
    let body = html! {
        p class="error" role="alert" { (what_next) }
        p { a href="/ui/settings" { "Back to the settings" } }
    };
    match session {
        Some(s) => layout(s, title, "", &[], body).with_status(status).into_response(),
        None => bare(title, html! { main id="main" { h1 { (title) } (body) } }).with_status(status).into_response(),
    }
}

/// A time as `<time>`: UTC in the markup and on hover; `common.js` shows it in the browser's time zone.
pub fn time(rfc3339: &str) -> Markup {
    html! { time datetime=(rfc3339) title=(format!("{rfc3339} (UTC)")) { (rfc3339) } }
}

/// A JSON value as compact text for a table cell.
pub fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A form field's text, trimmed, when there is any.
pub fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Percent-encodes a query value (`*` kept, for key patterns such as `LOG_*`).
pub fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~*".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
