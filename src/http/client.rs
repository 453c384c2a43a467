//! The small HTTP client `status` and `healthcheck` use to ask a running worker.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, HOST};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

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

/// `GET path` from the worker listening on `listen`, with `Authorization: Bearer <token>` when
/// a token is given (`/status` needs one when the API is on); the status code and the body as
/// text.
pub async fn get(
    listen: SocketAddr,
    path: &str,
    token: Option<&str>,
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
        let mut request = Request::get(path).header(HOST, address.to_string());
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(Full::new(Bytes::new())).unwrap_or_default();
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
