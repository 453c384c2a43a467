//! The worker's HTTP surface on axum: `/healthz`, `/readyz`, `/status` and `/metrics`
//! (read-only; with an `api:` block `/status` and the reasons of `/readyz` need a token), and
//! with an `api:` block the management API under `/api/v1` (bearer token of the operator or of
//! a tenant) and the web console at `/`; plus the small client `status` and `healthcheck` use to ask a
//! running worker ([`client`]).
//!
//! Plain HTTP/1.1, meant for a private network (put TLS in front of it). The surface reaches
//! the worker only through [`handle::WorkerHandle`], so it is tested against a fake worker
//! (`tests.rs`) and knows nothing of the worker's insides. One file per resource: connectors,
//! syncs (start and history), search, aws-setup, tenants, health (with status and metrics), the
//! console, the OpenAPI document (derived from the types of [`model`]); `auth` and `errors`
//! are the tower layers and the error answers every route shares; [`guard`] holds the layers
//! in front of them all (`Host`, body deadline, `nosniff`) and the connection cap of [`serve`].

mod auth;
mod aws_setup;
pub mod client;
mod connectors;
mod console;
mod errors;
pub mod guard;
pub mod handle;
mod health;
pub mod model;
pub mod openapi;
mod params;
mod search;
mod syncs;
mod tenants;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tower_http::limit::RequestBodyLimitLayer;

use guard::Guard;
use handle::WorkerHandle;

/// How long a connection may take to send its request head, and how long it may stay idle
/// between requests.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The routes of `handle`: health, status and metrics always; the API and the console when
/// the handle has API settings.
pub fn router<H: WorkerHandle>(handle: Arc<H>) -> Router {
    let mut router = health::routes::<H>();
    if let Some(access) = handle.api() {
        let api = Router::new()
            .merge(connectors::routes::<H>())
            .merge(syncs::routes::<H>())
            .merge(search::routes::<H>())
            .merge(aws_setup::routes::<H>())
            .merge(tenants::routes::<H>())
            .merge(openapi::routes())
            .method_not_allowed_fallback(openapi::not_allowed)
            // `api.max_body_bytes` rules, not the framework's own default of 2 MB.
            .layer(axum::extract::DefaultBodyLimit::disable())
            .layer(RequestBodyLimitLayer::new(access.max_body_bytes));
        router = router.merge(api).merge(console::routes());
    }
    router
        .fallback(errors::fallback)
        .layer(axum::middleware::from_fn_with_state(
            handle.api(),
            errors::shape,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&handle),
            auth::require_token::<H>,
        ))
        .with_state(handle)
}

/// Serves `handle`'s routes behind `guard` on `listener` until the task is dropped; while
/// `guard.max_connections` connections are open, the next one waits in the listen queue.
pub async fn serve<H: WorkerHandle>(listener: TcpListener, handle: Arc<H>, guard: Guard) {
    let router = guard.apply(router(handle));
    let open = Arc::new(Semaphore::new(guard.max_connections));
    let mut full = false;
    loop {
        let permit = match Arc::clone(&open).try_acquire_owned() {
            Ok(permit) => {
                full = false;
                permit
            }
            Err(_) => {
                if !full {
                    full = true;
                    tracing::warn!(
                        message = "The HTTP listener has as many connections open as api.max_connections allows; new ones wait until one closes.",
                        max_connections = guard.max_connections
                    );
                }
                let Ok(permit) = Arc::clone(&open).acquire_owned().await else {
                    return;
                };
                permit
            }
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(message = "Could not accept an HTTP connection.", %error);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let router = router.clone();
        tokio::spawn(async move {
            let _open = permit;
            let service = service_fn(move |request| {
                let router = router.clone();
                async move {
                    Ok::<_, Infallible>(
                        router.oneshot(request).await.unwrap_or_else(|e| match e {}),
                    )
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            if let Err(error) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(message = "An HTTP connection ended with an error.", %peer, %error);
            }
        });
    }
}
