//! `/healthz`, `/readyz`, `/status` and `/metrics`: open and read-only.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

use super::errors::{respond, text};
use super::handle::{StatusCode, WorkerHandle};

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

async fn readyz<H: WorkerHandle>(State(handle): State<Arc<H>>) -> Response {
    match handle.readiness() {
        Ok(()) => text(StatusCode::OK, "ready\n"),
        Err(reasons) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("not ready: {}\n", reasons.join("; ")),
        ),
    }
}

async fn status<H: WorkerHandle>(State(handle): State<Arc<H>>) -> Response {
    match handle.status() {
        Ok(json) => respond(StatusCode::OK, "application/json", json),
        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{error}\n")),
    }
}

async fn metrics<H: WorkerHandle>(State(handle): State<Arc<H>>) -> Response {
    let (content_type, body) = handle.metrics();
    respond(StatusCode::OK, content_type, body.into_bytes())
}
