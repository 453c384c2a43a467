//! The bearer token: it names the [`Caller`] of a request. Every request under `/api`, and
//! `/status`, without `Authorization: Bearer <token>` of the operator (`api.token`) or of a
//! tenant is answered 401 before any route sees it; `/readyz` answers without one but gives
//! its reasons only to a caller with a token. The caller goes into the request's extensions.
//! Tokens are compared in constant time and never logged. With the API off, `/status` and
//! `/readyz` are open as before (their caller is the operator) and `/api` is 404.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::errors::{is_api, text};
use super::handle::{ApiAccess, ApiError, Caller, StatusCode, WorkerHandle};

/// The layer: finds the caller, and refuses a guarded path without one.
pub(super) async fn require_token<H: WorkerHandle>(
    State(handle): State<Arc<H>>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let api = is_api(path);
    let status = path == "/status";
    if !api && !status && path != "/readyz" {
        return next.run(request).await;
    }
    let Some(access) = handle.api() else {
        if api {
            return text(
                StatusCode::NOT_FOUND,
                "the management API is off; enable it with an api: block in the config\n",
            );
        }
        request.extensions_mut().insert(Caller::Admin);
        return next.run(request).await;
    };
    match caller(&*handle, &access, request.headers()) {
        Some(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        // `/readyz` without a token: ready or not, no reasons.
        None if !api && !status => next.run(request).await,
        None => unauthorized(),
    }
}

/// 401, with `WWW-Authenticate`.
fn unauthorized() -> Response {
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

/// The caller whose token the headers carry: the operator's, else a tenant's.
fn caller<H: WorkerHandle>(handle: &H, access: &ApiAccess, headers: &HeaderMap) -> Option<Caller> {
    let sent = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))?
        .trim();
    if sent.is_empty() {
        return None;
    }
    let expected = access.token.expose().as_bytes();
    // ct_eq compares every byte whatever the first difference; the length is not secret.
    if !expected.is_empty() && bool::from(sent.as_bytes().ct_eq(expected)) {
        return Some(Caller::Admin);
    }
    handle.tenant_of(sent).map(Caller::Tenant)
}
