//! The web console served at `/` when the API is enabled: one HTML page, a script and a style
//! sheet, built into the binary (no CDN, works offline). It talks only to `/api/v1` with the
//! token the user enters once (kept in the tab's sessionStorage).

use axum::Router;
use axum::http::HeaderValue;
use axum::response::Response;
use axum::routing::get;

use super::errors::respond;
use super::handle::StatusCode;

/// Headers of every console file: nothing but our own origin may load or frame it, and the
/// page's JavaScript cannot be swapped for an injected inline script.
const HEADERS: [(&str, &str); 3] = [
    (
        "content-security-policy",
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    ("x-content-type-options", "nosniff"),
    ("cache-control", "no-cache"),
];

/// Each file: its paths, its `Content-Type` and its bytes.
const ASSETS: [(&[&str], &str, &[u8]); 4] = [
    (
        &["/", "/index.html"],
        "text/html; charset=utf-8",
        include_bytes!("console/index.html"),
    ),
    (
        &["/console/app.js"],
        "text/javascript; charset=utf-8",
        include_bytes!("console/app.js"),
    ),
    (
        &["/console/app.css"],
        "text/css; charset=utf-8",
        include_bytes!("console/app.css"),
    ),
    (
        &["/favicon.ico", "/console/icon.svg"],
        "image/svg+xml",
        include_bytes!("console/icon.svg"),
    ),
];

/// The routes of the console's files.
pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new();
    for (paths, content_type, body) in ASSETS {
        for path in paths {
            router = router.route(path, get(move || async move { asset(content_type, body) }));
        }
    }
    router
}

fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut response = respond(StatusCode::OK, content_type, body.to_vec());
    for (name, value) in HEADERS {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}
