//! The web console served by `run` at `/` when the API is enabled: one HTML page, a script and
//! a style sheet, built into the binary (no CDN, works offline). It talks only to `/api/v1`
//! with the token the user enters once (kept in the tab's sessionStorage).

/// Headers of every console file: nothing but our own origin may load or frame it, and the
/// page's JavaScript cannot be swapped for an injected inline script.
pub(super) const HEADERS: [(&str, &str); 3] = [
    (
        "content-security-policy",
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    ("x-content-type-options", "nosniff"),
    ("cache-control", "no-cache"),
];

/// One static file.
pub(super) struct Asset {
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

/// The asset served at `path`, if any.
pub(super) fn asset(path: &str) -> Option<Asset> {
    let (content_type, body): (&str, &[u8]) = match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", include_bytes!("index.html")),
        "/console/app.js" => ("text/javascript; charset=utf-8", include_bytes!("app.js")),
        "/console/app.css" => ("text/css; charset=utf-8", include_bytes!("app.css")),
        "/favicon.ico" | "/console/icon.svg" => ("image/svg+xml", include_bytes!("icon.svg")),
        _ => return None,
    };
    Some(Asset { content_type, body })
}
