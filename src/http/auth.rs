//! The bearer token of `/api`: every request under `/api` without `Authorization: Bearer
//! <api.token>` is answered 401 before any route sees it. The token is compared in constant time
//! and never logged.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::errors::{is_api, text};
use super::handle::{ApiAccess, ApiError, StatusCode};

/// The layer: `/api` requests need the token; with the API off they are 404.
pub(super) async fn require_token(
    State(access): State<Option<ApiAccess>>,
    request: Request,
    next: Next,
) -> Response {
    if !is_api(request.uri().path()) {
        return next.run(request).await;
    }
    let Some(access) = access else {
        return text(
            StatusCode::NOT_FOUND,
            "the management API is off; enable it with an api: block in the config\n",
        );
    };
    if authorised(&access, request.headers()) {
        return next.run(request).await;
    }
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "send the API token as Authorization: Bearer <token>",
    )
    .into_response();
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    response
}

/// True when the headers carry the token.
fn authorised(access: &ApiAccess, headers: &HeaderMap) -> bool {
    let Some(sent) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let expected = access.token.expose().as_bytes();
    // ct_eq compares every byte whatever the first difference; the length is not secret.
    !expected.is_empty() && bool::from(sent.trim().as_bytes().ct_eq(expected))
}
