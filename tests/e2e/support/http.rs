//! A tiny blocking HTTP/1.1 client on `std::net::TcpStream` for the test harness: moto's control
//! API, raw requests in the harness self-tests, and checks through the fault proxy. One request per
//! connection (`Connection: close`), so the response ends at EOF; no TLS, no pooling, no redirects.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Response headers in arrival order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked if it was sent chunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// True for 2xx statuses.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// `host:port` of an `http://host:port[/...]` endpoint.
pub fn authority(endpoint: &str) -> &str {
    let rest = endpoint
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("endpoint {endpoint:?} must start with http://"));
    rest.split('/').next().unwrap_or(rest)
}

/// Sends one request to `endpoint` (`http://127.0.0.1:PORT`) and parses the answer. `headers` are
/// sent as given after `Host`, `Connection: close` and `Content-Length`. A body shorter than the
/// announced `Content-Length` is an `UnexpectedEof` error; a reset is a `ConnectionReset` error.
pub fn send(
    endpoint: &str,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> io::Result<HttpResponse> {
    let raw = send_raw(endpoint, method, path_and_query, headers, body, timeout)?;
    if method.eq_ignore_ascii_case("HEAD") {
        parse_head_response(&raw)
    } else {
        parse_response(&raw)
    }
}

/// Like [`send`], but returns the raw bytes received until the server closed the connection,
/// without checking them (to observe truncated or malformed answers).
pub fn send_raw(
    endpoint: &str,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let host = authority(endpoint);
    let addr: SocketAddr = host.parse().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("endpoint {endpoint:?} must be http://IP:PORT: {e}"),
        )
    })?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(timeout))?;

    let mut head = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;

    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{method} {path_and_query} to {endpoint}: no complete answer within {timeout:?} \
                     ({} bytes received)",
                    raw.len()
                ),
            ));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(raw),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Splits a raw answer into its head (status line and headers, without the blank line) and the
/// bytes after it.
pub fn split_head(raw: &[u8]) -> io::Result<(&str, &[u8])> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid(format!("no end of headers in {} bytes", raw.len())))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|e| invalid(e.to_string()))?;
    Ok((head, &raw[end + 4..]))
}

/// Parses the answer to a HEAD request: status and headers, no body whatever the headers say.
pub fn parse_head_response(raw: &[u8]) -> io::Result<HttpResponse> {
    let (head, _) = split_head(raw)?;
    parse_head(head)
}

fn parse_head(head: &str) -> io::Result<HttpResponse> {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    Ok(HttpResponse {
        status,
        headers,
        body: Vec::new(),
    })
}

/// Parses a complete HTTP/1.1 response (not to HEAD) read until EOF. Interim 1xx answers
/// (`100 Continue`) before it are skipped.
pub fn parse_response(raw: &[u8]) -> io::Result<HttpResponse> {
    let (mut head, mut rest) = split_head(raw)?;
    let mut response = parse_head(head)?;
    while (100..200).contains(&response.status) && !rest.is_empty() {
        (head, rest) = split_head(rest)?;
        response = parse_head(head)?;
    }
    if matches!(response.status, 100..=199 | 204 | 304) {
        return Ok(response);
    }
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    response.body = if chunked {
        dechunk(rest)?
    } else if let Some(len) = response.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| invalid(format!("bad content-length {len:?}")))?;
        if rest.len() < len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("truncated body: {} of {len} announced bytes", rest.len()),
            ));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(response)
}

fn dechunk(mut data: &[u8]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "truncated chunk size"))?;
        let size_text =
            std::str::from_utf8(&data[..line_end]).map_err(|e| invalid(e.to_string()))?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if data.len() < size + 2 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated chunk",
            ));
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
