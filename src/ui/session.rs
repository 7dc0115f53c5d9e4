//! The web UI's session: a login's token kept in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` over
//! TLS, its own or a proxy's), valid exactly as long as the token. The same cookie authenticates the UI's
//! `fetch` calls to the REST API (`api::Caller`), where every state-changing request must also carry the
//! session's CSRF token in `X-CSRF-Token`: a keyed hash of the token that the pages embed and another site
//! cannot compute.

use super::page;
use crate::api::tls::ServedOverTls;
use crate::api::{ApiError, AppState, Caller, ClientAddr};
use crate::auth::{Claims, Role};
use crate::error::ErrorCode;
use crate::model::LoginRequest;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use cookie::{Cookie, SameSite};
use maud::html;
use serde::Deserialize;
use zeroize::Zeroizing;

/// The session cookie's name.
pub const COOKIE: &str = "cfgledger_session";
/// The header that carries the CSRF token of a state-changing `fetch`.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session token in the request's cookies, if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE && !c.value().is_empty())
        .map(|c| c.value().to_string())
}

/// The claims of a session token: standing (`api::tokens::authenticate`: a key of the ring, not logged out,
/// its user still there with the password and role it logged in with), and for a state-changing request the
/// session's CSRF token in `X-CSRF-Token`.
pub fn check(state: &AppState, method: &Method, headers: &HeaderMap, token: &str) -> Result<Claims, ApiError> {
    let claims = crate::api::tokens::authenticate(state, token).map_err(|mut e| {
        if e.code == ErrorCode::Unauthorized {
            e.message = format!("the session is no longer valid: {}", e.message);
        }
        e
    })?;
    if !crate::setting_keys::UI_ENABLED.get(&state.ledger.settings()) {
        return Err(ApiError::unauthorized(
            "the web UI is turned off (cfgledger:UI_ENABLED=false): send a bearer token",
        ));
    }
    // A sibling subdomain is the same site for SameSite: the browser says where a request really came from.
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).is_some_and(|s| !matches!(s, "same-origin" | "none"))
    {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "a session cookie is accepted only from cfgledger's own pages",
        ));
    }
    // A session is a user's (a role or password changed since login ends it through its credential version,
    // above); a cookie holding a machine token, whose subject is no user, opens nothing.
    if state.ledger.snapshot().state.user(&claims.sub).is_none() {
        return Err(ApiError::unauthorized(format!("user {} no longer exists; log in as another user", claims.sub)));
    }
    if !matches!(*method, Method::GET | Method::HEAD) {
        let given = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !state.key_ring()?.csrf_matches(token, given) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "this request lacks the session's CSRF token (X-CSRF-Token); reload the page and try again",
            ));
        }
    }
    Ok(claims)
}

/// A signed-in user of a page: the `Caller` the session stands for. Without a valid session, a page
/// answers with a redirect to the login form, which brings the user back afterwards.
pub struct Session(pub Caller);

impl Session {
    pub fn caller(&self) -> &Caller {
        &self.0
    }

    pub fn can(&self, role: Role) -> bool {
        self.0.role.allows(role)
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        // A page is never authenticated by a bearer token: only the cookie (or no authentication at all).
        parts.headers.remove(header::AUTHORIZATION);
        match Caller::from_request_parts(parts, state).await {
            Ok(caller) if caller.role == Role::ConfigReader => Err(page::error_page(
                StatusCode::FORBIDDEN,
                "This account cannot use the web UI",
                "Role config_reader is for agents: it reads the render and the watch stream only. Log out and sign in as a viewer, auditor or platform_admin.",
                None,
            )),
            Ok(caller) => Ok(Session(caller)),
            Err(e) => {
                let next = parts.uri.path_and_query().map_or("/ui/", |p| p.as_str());
                let mut to = format!("/ui/login?next={}", page::enc(next));
                if cookie_token(&parts.headers).is_some() {
                    to.push_str("&expired=1");
                    tracing::debug!(error = %e.message, "web UI session refused");
                }
                Err(Redirect::to(&to).into_response())
            }
        }
    }
}

/// Where to go after login: a path under `/ui/` only, so the form cannot send a user to another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with("/ui/")
                && !n.contains('\\')
                && !n.contains("://")
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n
        }
        _ => "/ui/settings",
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
    out: Option<String>,
}

/// `GET /ui/login`.
pub async fn login_form(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Response {
    let notice = if q.out.is_some() {
        Some("You are logged out.")
    } else if q.expired.is_some() {
        Some("Your session ended. Log in again to continue.")
    } else {
        None
    };
    login_page(&state, StatusCode::OK, safe_next(q.next.as_deref()), None, notice, "")
}

fn login_page(
    state: &AppState,
    status: StatusCode,
    next: &str,
    error: Option<&str>,
    notice: Option<&str>,
    username: &str,
) -> Response {
    let body = html! {
        main id="main" class="login" {
            h1 { "Sign in to cfgledger" }
            @if let Some(n) = notice { p class="notice" role="status" { (n) } }
            @if let Some(e) = error { p class="error" role="alert" id="login-error" { (e) } }
            form method="post" action="/ui/login" class="stack" {
                input type="hidden" name="next" value=(next);
                label for="username" { "User name" }
                input id="username" name="username" type="text" autocomplete="username" required autofocus value=(username);
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                button type="submit" class="primary" { "Sign in" }
            }
            @if !state.auth.required {
                p class="notice" { "Authentication is off on this server (AUTH_REQUIRED=false): every page is open. "
                    a href="/ui/settings" { "Go to the settings" } }
            }
            p class="hint" { "Users are created with " code { "cfgledger user add" } "." }
        }
    };
    page::bare("Sign in", body).with_status(status).into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// `POST /ui/login`: the same check as `POST /auth/login` (limits included); the token becomes the session
/// cookie.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    over_tls: Option<Extension<ServedOverTls>>,
    client: ClientAddr,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref()).to_string();
    let username = form.username.clone();
    let password = Zeroizing::new(form.password);
    let request = LoginRequest { username: form.username, password: password.to_string() };
    match crate::api::login::authenticate(&state, client.0, request).await {
        Ok(issued) => {
            let cookie = session_cookie(&headers, over_tls.is_some(), issued.token, state.auth.token_ttl_secs);
            let mut response = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            response
        }
        Err(e) => {
            let status = e.status;
            let message = match e.code {
                ErrorCode::RateLimited => format!("{} Wait a minute before trying again.", e.message),
                _ => format!(
                    "{}. Check both and try again; an administrator manages users with `cfgledger user`.",
                    capitalize(&e.message)
                ),
            };
            login_page(&state, status, &next, Some(&message), None, &username)
        }
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The session cookie for `token`, or (with an empty token) the one that clears it. `Secure` when the request
/// came over this server's own TLS (`serve --tls-cert`), or over TLS through a proxy that says so
/// (`X-Forwarded-Proto: https`).
fn session_cookie(headers: &HeaderMap, over_tls: bool, token: String, ttl_secs: u64) -> String {
    let tls = over_tls
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let clearing = token.is_empty();
    let mut c = Cookie::build((COOKIE, token)).path("/").http_only(true).same_site(SameSite::Strict).secure(tls);
    c = c.max_age(cookie::time::Duration::seconds(if clearing {
        0
    } else {
        i64::try_from(ttl_secs).unwrap_or(i64::MAX)
    }));
    c.build().to_string()
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

/// `POST /ui/logout` (with the session's CSRF token as a form field): ends the session here and clears the
/// cookie.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    over_tls: Option<Extension<ServedOverTls>>,
    client: ClientAddr,
    request_id: Option<axum::Extension<crate::api::RequestId>>,
    Form(form): Form<LogoutForm>,
) -> Response {
    let Some(token) = cookie_token(&headers) else {
        return Redirect::to("/ui/login?out=1").into_response();
    };
    if !state.key_ring().is_ok_and(|ring| ring.csrf_matches(&token, &form.csrf)) {
        return page::error_page(
            StatusCode::FORBIDDEN,
            "Logout refused",
            "The form lacked this session's CSRF token. Reload the page and use its Log out button.",
            None,
        );
    }
    let now = state.ledger.now();
    if let Ok(claims) = state.key_ring().map_err(|_| ()).and_then(|ring| ring.verify(&token, now).map_err(|_| ())) {
        // Here at once, and on every instance through the log (its hash, never the token). A store that
        // cannot record it still ends the session here, and says so.
        state.auth.revoked.revoke(&token, claims.exp, crate::auth::unix_seconds(now));
        let ctx = logout_context(&claims, client.0, request_id.map(|r| r.0 .0));
        match crate::usecase::access::revoke_token(&state.ledger, &token, claims.exp, ctx).await {
            Ok(_) => tracing::info!(user = ?claims.sub, "web UI logout"),
            Err(e) => {
                tracing::error!(user = ?claims.sub, error = %e, "web UI logout ended the session on this instance only")
            }
        }
    }
    let mut response = Redirect::to("/ui/login?out=1").into_response();
    if let Ok(v) = HeaderValue::from_str(&session_cookie(&headers, over_tls.is_some(), String::new(), 0)) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// Who logged out, for the audit trail: the session's user, through the web UI.
fn logout_context(claims: &Claims, address: Option<String>, request_id: Option<String>) -> crate::ledger::WriteContext {
    crate::ledger::WriteContext {
        actor: cfgledger_events::Actor {
            name: claims.sub.clone(),
            role: Some(claims.role.as_str().to_string()),
            source: cfgledger_events::Source::Ui,
            address,
            request_id,
        },
        cause: cfgledger_events::Cause::Api { method: "POST".into(), path: "/ui/logout".into() },
        reason: None,
        bypass: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_under_ui() {
        assert_eq!(safe_next(Some("/ui/audit?x=1")), "/ui/audit?x=1");
        for bad in ["https://evil.example/ui/", "//evil.example/ui/", "/admin/config", "/ui/\\evil", "/ui/x?u=http://e"]
        {
            assert_eq!(safe_next(Some(bad)), "/ui/settings", "{bad}");
        }
        assert_eq!(safe_next(None), "/ui/settings");
    }

    #[test]
    fn the_cookie_is_http_only_and_strict() {
        let mut h = HeaderMap::new();
        let c = session_cookie(&h, false, "tok".into(), 60);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Max-Age=60"), "{c}");
        assert!(!c.contains("Secure"), "{c}");
        assert!(session_cookie(&h, true, "tok".into(), 60).contains("Secure"), "served over its own TLS");
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(session_cookie(&h, false, "tok".into(), 60).contains("Secure"));
        let cleared = session_cookie(&h, false, String::new(), 0);
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
    }

    #[test]
    fn the_token_is_found_among_other_cookies() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; cfgledger_session=abc.def; b=2"));
        assert_eq!(cookie_token(&h).as_deref(), Some("abc.def"));
        h.insert(header::COOKIE, HeaderValue::from_static("cfgledger_session="));
        assert_eq!(cookie_token(&h), None);
    }
}
