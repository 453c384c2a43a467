//! `/healthz`, `/readyz`, `/status` and `/metrics`: read-only. `/healthz` and `/metrics` are
//! open; with the API on, `/status` needs a token and shows the connectors its caller sees,
//! and `/readyz` gives its reasons only to a caller with a token (`auth`).

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

use super::errors::{respond, text};
use super::handle::{Caller, StatusCode, WorkerHandle};

/// The routes of this file.
pub(super) fn routes<H: WorkerHandle>() -> Router<Arc<H>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<H>))
        .route("/status", get(status::<H>))
        .route("/metrics", get(metrics::<H>))
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

async fn readyz<H: WorkerHandle>(
    State(handle): State<Arc<H>>,
    caller: Option<Extension<Caller>>,
) -> Response {
    let Some(Extension(caller)) = caller else {
        // Without a token: ready or not, not why (the reasons name buckets and connectors).
        return match handle.readiness(&Caller::Admin) {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(_) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready; send the API token as Authorization: Bearer <token> for the reasons\n",
            ),
        };
    };
    match handle.readiness(&caller) {
        Ok(()) => text(StatusCode::OK, "ready\n"),
        Err(reasons) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("not ready: {}\n", reasons.join("; ")),
        ),
    }
}

async fn status<H: WorkerHandle>(
    State(handle): State<Arc<H>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    match handle.status(&caller) {
        Ok(json) => respond(StatusCode::OK, "application/json", json),
        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{error}\n")),
    }
}

async fn metrics<H: WorkerHandle>(State(handle): State<Arc<H>>) -> Response {
    let (content_type, body) = handle.metrics();
    respond(StatusCode::OK, content_type, body.into_bytes())
}
