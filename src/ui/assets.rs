//! The UI's stylesheet and scripts, compiled into the binary (`include_str!`): no file is read at run time
//! and nothing is fetched from elsewhere. Each is served at `/ui/assets/NAME?v=HASH`, cached for a year;
//! a new build changes the hash, so a browser never runs an old script against a new page.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;

/// Every asset: (name, content type, text).
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", CSS, STYLES),
    ("common.js", JS, include_str!("assets/common.js")),
    ("settings.js", JS, include_str!("assets/settings.js")),
    ("audit.js", JS, include_str!("assets/audit.js")),
    ("timetravel.js", JS, include_str!("assets/timetravel.js")),
    ("rollback.js", JS, include_str!("assets/rollback.js")),
    ("transfer.js", JS, include_str!("assets/transfer.js")),
    ("registry.js", JS, include_str!("assets/registry.js")),
    ("instances.js", JS, include_str!("assets/instances.js")),
    ("requests.js", JS, include_str!("assets/requests.js")),
    ("rollouts.js", JS, include_str!("assets/rollouts.js")),
];

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// One stylesheet, kept in a file per group of pages.
const STYLES: &str = concat!(
    include_str!("assets/app.css"),
    include_str!("assets/history.css"),
    include_str!("assets/ops.css"),
    include_str!("assets/requests.css"),
);

fn find(name: &str) -> Option<&'static (&'static str, &'static str, &'static str)> {
    ASSETS.iter().find(|(n, _, _)| *n == name)
}

/// The versions of the assets (a short blake3 of each), computed once.
fn versions() -> &'static Vec<(&'static str, String)> {
    static V: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    V.get_or_init(|| {
        ASSETS.iter().map(|(n, _, text)| (*n, blake3::hash(text.as_bytes()).to_hex()[..16].to_string())).collect()
    })
}

/// The address of an asset, with its version. An unknown name is a bug in a page (a test renders them all).
pub fn url(name: &str) -> String {
    let version = versions().iter().find(|(n, _)| *n == name).map_or("missing", |(_, v)| v.as_str());
    format!("/ui/assets/{name}?v={version}")
}

/// `GET /ui/assets/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    match find(&name) {
        Some((_, content_type, text)) => {
            let mut response = (*text).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
            response
        }
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

/// The total size of the assets a first screen loads, for the bench and the README.
pub fn bytes(names: &[&str]) -> usize {
    names.iter().filter_map(|n| find(n)).map(|(_, _, t)| t.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_version() {
        for (name, _, text) in ASSETS {
            assert!(!text.is_empty(), "{name} is empty");
            assert!(!url(name).ends_with("missing"), "{name}");
        }
        assert!(url("nope.js").ends_with("missing"));
    }

    /// The Content-Security-Policy forbids inline script and `eval`; the scripts must not need them.
    #[test]
    fn scripts_use_no_eval() {
        for (name, _, text) in ASSETS.iter().filter(|(n, _, _)| n.ends_with(".js")) {
            for banned in ["eval(", "new Function", "innerHTML", "document.write"] {
                assert!(!text.contains(banned), "{name} uses {banned}");
            }
        }
    }
}
