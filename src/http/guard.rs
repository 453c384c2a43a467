//! The guards in front of every route, from the `api:` block: the `Host` check that stops DNS
//! rebinding, the deadline of a request's body, `X-Content-Type-Options: nosniff` on every
//! answer, and the cap on open connections that [`super::serve`] keeps.
//!
//! The `Host` check is a pure function ([`host_allowed`]) behind a layer. A browser tricked by
//! DNS rebinding sends the attacker's own name as `Host`, never an IP address, so addresses
//! always pass (the kubelet's probes and Prometheus send the pod's IP) and names must be listed
//! in `api.allowed_hosts`. Without an `api:` block nothing is checked: the open routes serve
//! what they served before the API existed.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::{CONNECTION, HOST, X_CONTENT_TYPE_OPTIONS};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::Modify;
use utoipa::openapi::{Content, Ref, ResponseBuilder};

use super::errors::{is_api, text};
use super::handle::{ApiError, StatusCode};
use crate::config::api::ApiConfig;
use crate::config::defaults;

/// What the guards allow, from the config's `api:` block (or the defaults without one).
#[derive(Debug, Clone)]
pub struct Guard {
    /// The names `Host` may carry, lowercase; `None` checks nothing (the API is off).
    allowed_hosts: Option<Arc<[String]>>,
    /// Most connections open at once.
    pub(super) max_connections: usize,
    /// How long a request may take to send its whole body.
    body_timeout: Duration,
}

impl Guard {
    /// The guards of a worker whose config has `api` (or none).
    pub fn new(api: Option<&ApiConfig>) -> Self {
        match api {
            Some(api) => Self {
                allowed_hosts: Some(
                    api.allowed_hosts
                        .iter()
                        .map(|name| name.to_ascii_lowercase())
                        .collect(),
                ),
                max_connections: api.max_connections,
                body_timeout: api.body_timeout(),
            },
            None => Self {
                allowed_hosts: None,
                max_connections: defaults::api_max_connections(),
                body_timeout: defaults::API_BODY_TIMEOUT,
            },
        }
    }

    /// `router` behind the guards: `nosniff` on every answer (the 421 included), then the
    /// `Host` check, then the body's deadline.
    pub(super) fn apply(&self, router: Router) -> Router {
        let mut router = router.layer(axum::middleware::from_fn_with_state(
            self.body_timeout,
            body_deadline,
        ));
        if let Some(names) = &self.allowed_hosts {
            router = router.layer(axum::middleware::from_fn_with_state(
                Arc::clone(names),
                check_host,
            ));
        }
        router.layer(SetResponseHeaderLayer::overriding(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
    }
}

/// True when a request whose `Host` (or absolute URI) names `host` may be answered: an IP
/// address, v4 or in brackets v6, or one of `names` (lowercase), with or without a port; a
/// trailing dot and the case are ignored.
pub fn host_allowed(host: &str, names: &[String]) -> bool {
    let Some(name) = without_port(host) else {
        return false;
    };
    if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().is_ok();
    }
    if name.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && names
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(name))
}

/// `host` without its `:port`; `None` when the port is not a number.
fn without_port(host: &str) -> Option<&str> {
    let (name, port) = match host.rfind(':') {
        // The colons of an IPv6 address are inside its brackets.
        Some(colon) if !host[colon..].contains(']') => (&host[..colon], &host[colon + 1..]),
        _ => return Some(host),
    };
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some(name)
}

/// The layer: 421 for a request naming a host that is not allowed. A request without `Host`
/// (HTTP/1.0) did not come from a browser and passes.
async fn check_host(State(names): State<Arc<[String]>>, request: Request, next: Next) -> Response {
    let authority = request.uri().authority().map(|a| a.as_str().as_bytes());
    let named = authority.into_iter().chain(
        request
            .headers()
            .get_all(HOST)
            .iter()
            .map(HeaderValue::as_bytes),
    );
    for host in named {
        let host = String::from_utf8_lossy(host);
        if !host_allowed(&host, &names) {
            return misdirected(request.uri().path(), &host);
        }
    }
    next.run(request).await
}

/// 421 Misdirected Request: this worker does not answer for that name.
fn misdirected(path: &str, host: &str) -> Response {
    let message = format!(
        "this worker does not answer to the host {host:?}; use its IP address or a name listed in api.allowed_hosts"
    );
    if is_api(path) {
        ApiError::new(StatusCode::MISDIRECTED_REQUEST, message).into_response()
    } else {
        text(StatusCode::MISDIRECTED_REQUEST, &format!("{message}\n"))
    }
}

/// The layer: the request's body must be complete `timeout` after the request began; else the
/// answer is 408 whatever the route made of the failed read, and the connection is closed.
async fn body_deadline(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let expired = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + timeout;
    let request = request.map(|body| {
        Body::new(Deadline {
            body,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            expired: Arc::clone(&expired),
        })
    });
    let response = next.run(request).await;
    if !expired.load(Ordering::Relaxed) {
        return response;
    }
    let message = format!(
        "the body did not arrive within {} s (api.body_timeout)",
        timeout.as_secs()
    );
    let mut response = if is_api(&path) {
        ApiError::new(StatusCode::REQUEST_TIMEOUT, message).into_response()
    } else {
        text(StatusCode::REQUEST_TIMEOUT, &format!("{message}\n"))
    };
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A body that fails once its deadline has passed, and says so through `expired`.
struct Deadline {
    body: Body,
    sleep: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
}

/// The error of a body read past its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct TimedOut;

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(TimedOut))));
        }
        Pin::new(&mut this.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Adds the guards' answers to every operation of the OpenAPI document: 421 for a `Host` not
/// allowed, and 408 to those that take a body.
pub(super) struct GuardAnswers;

impl Modify for GuardAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name("Error"))),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let answers = &mut operation.responses.responses;
                answers.insert(
                    "421".to_owned(),
                    error("The Host header names neither an IP address nor a name in api.allowed_hosts.")
                        .into(),
                );
                if operation.request_body.is_some() {
                    answers.insert(
                        "408".to_owned(),
                        error("The body did not arrive within api.body_timeout; the connection is closed.")
                            .into(),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_always_pass_and_names_only_when_listed() {
        let names = ["localhost".to_owned(), "s3c.example.com".to_owned()];
        // (Host, allowed)
        let table = [
            ("127.0.0.1:9464", true),
            ("127.0.0.1", true),
            ("10.42.0.17:9464", true),
            ("0.0.0.0:9464", true),
            ("[::1]:9464", true),
            ("[::1]", true),
            ("[fe80::1%25eth0]:9464", false),
            ("localhost:9464", true),
            ("LOCALHOST", true),
            ("localhost.:9464", true),
            ("s3c.example.com", true),
            ("S3C.Example.COM:443", true),
            ("evil.example", false),
            ("evil.example:9464", false),
            ("localhost.evil.example", false),
            ("s3c.example.com.evil", false),
            ("127.0.0.1.nip.io:9464", false),
            ("0177.0.0.1", false),
            ("localhost:port", false),
            ("localhost:", false),
            ("::1", false),
            ("[::1", false),
            ("", false),
            (".", false),
        ];
        for (host, allowed) in table {
            assert_eq!(host_allowed(host, &names), allowed, "{host:?}");
        }
        assert!(!host_allowed("localhost", &[]));
    }
}
