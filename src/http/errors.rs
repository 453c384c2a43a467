//! The error answers every route shares: an [`ApiError`] as `{"error": {...}}`, the 404 of a
//! path nothing serves, and the layer that gives the framework's own 405 and 413 answers under
//! `/api` the same JSON shape (with `Allow` on a 405).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa::IntoResponses;

use super::handle::{ApiAccess, ApiError, StatusCode};
use super::model::Error;

/// Declares error answers as the OpenAPI document lists them (`responses(...)` of a
/// `#[utoipa::path]`): each a status and a description, its body an [`Error`]. They are never
/// built; the answers themselves are [`ApiError`]s.
macro_rules! documented_errors {
    ($($(#[$doc:meta])* $name:ident = ($status:tt, $description:tt);)*) => {$(
        $(#[$doc])*
        #[derive(IntoResponses)]
        #[response(status = $status, description = $description)]
        #[expect(dead_code, reason = "never built: it only describes the answer")]
        pub(super) struct $name(Error);
    )*};
}

documented_errors! {
    /// The 401 of every route under `/api`.
    Unauthorized = (401, "No token, or the wrong one.");
    /// The 403 of every route under `/api/v1/tenants` to a tenant's token
    /// ([`ApiError::operator_only`]).
    OperatorOnly = (403, "A tenant's token: only the operator's manages tenants.");
    /// The 404 of every route under `/api/v1/connectors/{id}` ([`ApiError::no_connector`]).
    NoConnector = (404, "No such connector.");
    /// The 404 of every route under `/api/v1/tenants/{id}`.
    NoTenant = (404, "No such tenant.");
    /// The 413 of every route that reads a body ([`too_large`]).
    TooLarge = (413, "The body is larger than api.max_body_bytes.");
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json(self.status, &Error { error: *self.body })
    }
}

/// The answer of an operation: `status` and its JSON, or the error.
pub(super) fn answer<T: serde::Serialize>(
    status: StatusCode,
    answer: Result<T, ApiError>,
) -> Response {
    match answer {
        Ok(value) => json(status, &value),
        Err(error) => error.into_response(),
    }
}

/// A JSON answer, pretty-printed.
pub(super) fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => respond(status, "application/json", body),
        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{error}\n")),
    }
}

/// A plain-text answer.
pub(super) fn text(status: StatusCode, body: &str) -> Response {
    respond(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

/// An answer with a body of `content_type`.
pub(super) fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response {
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static(content_type))],
        Body::from(body),
    )
        .into_response()
}

/// True for a path of the API.
pub(super) fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// 413 for a body over `api.max_body_bytes`.
pub(super) fn too_large(max_body_bytes: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is larger than {max_body_bytes} bytes (api.max_body_bytes)"),
    )
}

/// What answers a path no route serves.
pub(super) async fn fallback(method: Method, request: Request) -> Response {
    let path = request.uri().path();
    if is_api(path) {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no route {path}; see /api/v1/openapi.json"),
        )
        .into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    text(
        StatusCode::NOT_FOUND,
        "not found; try /healthz, /readyz, /status or /metrics\n",
    )
}

/// The layer that gives the framework's bodiless 405 (of the open routes) and its 413 our
/// shapes: plain text for the first, the JSON error under `/api` for the second.
pub(super) async fn shape(
    State(access): State<Option<ApiAccess>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    match response.status() {
        StatusCode::METHOD_NOT_ALLOWED if !is_json && !is_api(&path) => {
            text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n")
        }
        StatusCode::PAYLOAD_TOO_LARGE if !is_json => match access {
            Some(access) => too_large(access.max_body_bytes).into_response(),
            None => response,
        },
        _ => response,
    }
}
