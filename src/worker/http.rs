//! The worker's HTTP listener on hyper, and the small client `status` and `healthcheck` use to
//! ask a running worker.
//!
//! Plain HTTP/1.1 on the configured `listen` address, meant for a private network (put TLS in
//! front of it): `/healthz`, `/readyz`, `/status` and `/metrics` are open and read-only; with
//! an `api:` block, `/api/v1/...` (bearer token, see `api`) and the console at `/` are served
//! too. Routing is a match on method and path segments: ten routes do not need a framework.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use super::Shared;
use super::metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;

/// How long a connection may take to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the endpoints on `listener` until the task is dropped.
pub(super) async fn serve(listener: TcpListener, worker: Arc<Shared>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(message = "Could not accept an HTTP connection.", %error);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let worker = Arc::clone(&worker);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let worker = Arc::clone(&worker);
                async move { Ok::<_, Infallible>(route(&worker, request).await) }
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

async fn route(worker: &Arc<Shared>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if path == "/api" || path.starts_with("/api/") {
        return match &worker.api {
            Some(api) => super::api::handle(worker, api, request).await,
            None => text(
                StatusCode::NOT_FOUND,
                "the management API is off; enable it with an api: block in the config\n",
            ),
        };
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    if worker.api.is_some()
        && let Some(asset) = super::console::asset(path)
    {
        let mut response = respond(StatusCode::OK, asset.content_type, asset.body.to_vec());
        for (name, value) in super::console::HEADERS {
            response
                .headers_mut()
                .insert(name, hyper::header::HeaderValue::from_static(value));
        }
        return response;
    }
    match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match worker.readiness() {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(reasons) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("not ready: {}\n", reasons.join("; ")),
            ),
        },
        "/status" => match serde_json::to_vec_pretty(&worker.status()) {
            Ok(json) => respond(StatusCode::OK, "application/json", json),
            Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{error}\n")),
        },
        "/metrics" => respond(
            StatusCode::OK,
            METRICS_CONTENT_TYPE,
            worker.metrics.render().into_bytes(),
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /healthz, /readyz, /status or /metrics\n",
        ),
    }
}

/// A JSON answer.
pub(super) fn json_response(
    status: StatusCode,
    value: &serde_json::Value,
) -> Response<Full<Bytes>> {
    match serde_json::to_vec_pretty(value) {
        Ok(json) => respond(status, "application/json", json),
        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{error}\n")),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    respond(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

/// An answer with a body of `content_type`.
pub(super) fn respond(
    status: StatusCode,
    content_type: &str,
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

/// Why a request to a worker failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Nothing accepted the connection (no worker running there).
    #[error("cannot connect to {address}: {cause}")]
    Connect {
        /// Where.
        address: SocketAddr,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The connection broke or the answer was not HTTP.
    #[error("HTTP request to {address} failed: {cause}")]
    Http {
        /// Where.
        address: SocketAddr,
        /// The HTTP error.
        cause: hyper::Error,
    },
    /// No complete answer in time.
    #[error("{address} did not answer within {seconds} s")]
    Timeout {
        /// Where.
        address: SocketAddr,
        /// The time allowed.
        seconds: u64,
    },
}

/// The address to connect to for a listener bound to `listen`: the loopback address of the same
/// family when it is bound to every interface (`0.0.0.0`, `::`).
pub fn connect_address(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    }
}

/// `GET path` from the worker listening on `listen`; the status code and the body as text.
pub async fn get(
    listen: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String), HttpError> {
    let address = connect_address(listen);
    let exchange = async {
        let stream = TcpStream::connect(address)
            .await
            .map_err(|cause| HttpError::Connect { address, cause })?;
        let http = |cause| HttpError::Http { address, cause };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http)?;
        let driver = tokio::spawn(connection);
        let request = Request::get(path)
            .header(HOST, address.to_string())
            .body(Full::new(Bytes::new()))
            .unwrap_or_default();
        let response = sender.send_request(request).await.map_err(http)?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(http)?;
        driver.abort();
        Ok((
            status,
            String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        ))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or(Err(HttpError::Timeout {
            address,
            seconds: timeout.as_secs(),
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_on_every_interface_is_reached_on_loopback() {
        for (listen, connect) in [
            ("0.0.0.0:9464", "127.0.0.1:9464"),
            ("[::]:9464", "[::1]:9464"),
            ("127.0.0.1:1234", "127.0.0.1:1234"),
            ("10.1.2.3:9464", "10.1.2.3:9464"),
        ] {
            let listen: SocketAddr = listen.parse().unwrap();
            assert_eq!(connect_address(listen).to_string(), connect, "{listen}");
        }
    }
}
