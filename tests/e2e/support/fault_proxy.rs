//! A fault-injecting HTTP/1.1 reverse proxy for retry and error-mapping tests: put it between the
//! code under test and moto (S3) or an OpenSearch emulator, add rules at run time (answer with an
//! error, reset the connection, delay, truncate or rewrite the answer), and read the log of what it
//! saw. A [`Storm`] applies faults at random to a stated share of requests, from a seed, so a
//! storm is the same on every run. Requests are forwarded byte for byte with their `Host` header and framing intact, so
//! signatures stay valid. It runs on its own thread with its own tokio runtime, so sync and async
//! tests can use it alike.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::header::{CONTENT_LENGTH, HeaderName, HeaderValue, TRANSFER_ENCODING};
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::{Notify, oneshot};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;

/// Rewrites a buffered upstream answer: `(status, headers, body) -> (status, headers, body)`.
/// The body is as the upstream sent it (de-chunked, but still compressed if it was compressed).
/// `Content-Length` and `Transfer-Encoding` in the returned headers are ignored (recomputed).
pub type ResponseMapper = Arc<
    dyn Fn(u16, Vec<(String, String)>, Vec<u8>) -> (u16, Vec<(String, String)>, Vec<u8>)
        + Send
        + Sync,
>;

/// Rewrites a request body before it is forwarded: `(method, path_and_query, body) -> body`.
/// `Content-Length` is set from the new body.
pub type RequestMapper = Arc<dyn Fn(&str, &str, Vec<u8>) -> Vec<u8> + Send + Sync>;

/// What the proxy does to a request that a rule matches.
#[derive(Clone)]
pub enum Fault {
    /// Answer with this status, headers and body without contacting the upstream.
    Respond {
        /// HTTP status code.
        status: u16,
        /// Response headers (`Content-Length` is set from the body).
        headers: Vec<(String, String)>,
        /// Response body.
        body: Vec<u8>,
    },
    /// Reset the TCP connection (RST) without answering.
    Reset,
    /// Wait this long, then forward.
    Delay(Duration),
    /// Forward, then send the upstream's headers (with the full `Content-Length`) but only the
    /// first `keep_bytes` bytes of the body (at most length - 1), and close the connection.
    TruncateBody {
        /// Body bytes to send before closing.
        keep_bytes: usize,
    },
    /// Forward, buffer the answer and rewrite it with the closure.
    MapResponse(ResponseMapper),
    /// Buffer the request, rewrite its body with the closure, and forward that (to make the
    /// upstream itself answer to a request the client did not send, e.g. a document OpenSearch
    /// must refuse).
    MapRequest(RequestMapper),
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Respond { status, body, .. } => f
                .debug_struct("Respond")
                .field("status", status)
                .field("body", &String::from_utf8_lossy(body))
                .finish_non_exhaustive(),
            Fault::Reset => f.write_str("Reset"),
            Fault::Delay(d) => f.debug_tuple("Delay").field(d).finish(),
            Fault::TruncateBody { keep_bytes } => f
                .debug_struct("TruncateBody")
                .field("keep_bytes", keep_bytes)
                .finish(),
            Fault::MapResponse(_) => f.write_str("MapResponse(..)"),
            Fault::MapRequest(_) => f.write_str("MapRequest(..)"),
        }
    }
}

impl Fault {
    /// An answer with `status` and an empty body.
    pub fn status(status: u16) -> Fault {
        Fault::Respond {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// An S3-style XML error: `<Error><Code>code</Code><Message>message</Message>...`.
    pub fn s3_error(status: u16, code: &str, message: &str) -> Fault {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
             <Message>{message}</Message><RequestId>FAULTPROXY</RequestId>\
             <HostId>fault-proxy</HostId></Error>"
        );
        Fault::Respond {
            status,
            headers: vec![
                ("content-type".into(), "application/xml".into()),
                ("x-amz-request-id".into(), "FAULTPROXY".into()),
            ],
            body: body.into_bytes(),
        }
    }

    /// S3's throttling answer: 503 `SlowDown`.
    pub fn slow_down() -> Fault {
        Fault::s3_error(503, "SlowDown", "Please reduce your request rate.")
    }

    /// S3's 500 `InternalError`.
    pub fn internal_error() -> Fault {
        Fault::s3_error(
            500,
            "InternalError",
            "We encountered an internal error. Please try again.",
        )
    }

    /// S3's 403 `AccessDenied` (also what a wrong `ExpectedBucketOwner` gets).
    pub fn access_denied() -> Fault {
        Fault::s3_error(403, "AccessDenied", "Access Denied")
    }

    /// S3's 301 `PermanentRedirect` for a bucket that lives in `region`, with the
    /// `x-amz-bucket-region` header S3 sends.
    pub fn permanent_redirect(region: &str) -> Fault {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>PermanentRedirect</Code>\
             <Message>The bucket you are attempting to access must be addressed using the specified \
             endpoint. Please send all future requests to this endpoint.</Message>\
             <Endpoint>s3.{region}.amazonaws.com</Endpoint><RequestId>FAULTPROXY</RequestId>\
             <HostId>fault-proxy</HostId></Error>"
        );
        Fault::Respond {
            status: 301,
            headers: vec![
                ("content-type".into(), "application/xml".into()),
                ("x-amz-bucket-region".into(), region.into()),
                ("x-amz-request-id".into(), "FAULTPROXY".into()),
            ],
            body: body.into_bytes(),
        }
    }

    /// A JSON answer (`content-type: application/json`).
    pub fn json(status: u16, body: &str) -> Fault {
        Fault::Respond {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// OpenSearch's whole-request 429 (`es_rejected_execution_exception`).
    pub fn opensearch_too_many_requests() -> Fault {
        Fault::json(
            429,
            r#"{"error":{"root_cause":[{"type":"es_rejected_execution_exception","reason":"rejected execution (fault proxy)"}],"type":"es_rejected_execution_exception","reason":"rejected execution (fault proxy)"},"status":429}"#,
        )
    }

    /// Forward and rewrite the answer with `f` (see [`ResponseMapper`]).
    pub fn map_response(
        f: impl Fn(u16, Vec<(String, String)>, Vec<u8>) -> (u16, Vec<(String, String)>, Vec<u8>)
        + Send
        + Sync
        + 'static,
    ) -> Fault {
        Fault::MapResponse(Arc::new(f))
    }

    /// Forward the request with its body rewritten by `f` (see [`RequestMapper`]).
    pub fn map_request(
        f: impl Fn(&str, &str, Vec<u8>) -> Vec<u8> + Send + Sync + 'static,
    ) -> Fault {
        Fault::MapRequest(Arc::new(f))
    }

    fn kind(&self) -> FaultKind {
        match self {
            Fault::Respond { status, .. } => FaultKind::Respond(*status),
            Fault::Reset => FaultKind::Reset,
            Fault::Delay(d) => FaultKind::Delay(*d),
            Fault::TruncateBody { .. } => FaultKind::TruncateBody,
            Fault::MapResponse(_) => FaultKind::MapResponse,
            Fault::MapRequest(_) => FaultKind::MapRequest,
        }
    }
}

/// Which fault was applied to a logged request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Answered by the proxy with this status.
    Respond(u16),
    /// Connection reset.
    Reset,
    /// Forwarded after this delay.
    Delay(Duration),
    /// Forwarded with a truncated body.
    TruncateBody,
    /// Forwarded with a rewritten answer.
    MapResponse,
    /// Forwarded with a rewritten request body.
    MapRequest,
}

/// Selects requests; every condition set must hold (an empty `Match` matches everything).
#[derive(Debug, Clone, Default)]
pub struct Match {
    method: Option<String>,
    path_prefix: Option<String>,
    path_contains: Option<String>,
    query_contains: Option<String>,
    headers: Vec<String>,
    header_values: Vec<(String, String)>,
}

impl Match {
    /// Matches every request.
    pub fn any() -> Match {
        Match::default()
    }

    /// The method equals `method` (case-insensitive), e.g. `GET`.
    pub fn method(mut self, method: &str) -> Match {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// The (percent-encoded) path starts with `prefix`, e.g. `/my-bucket/`.
    pub fn path_prefix(mut self, prefix: &str) -> Match {
        self.path_prefix = Some(prefix.to_owned());
        self
    }

    /// The (percent-encoded) path contains `part`, e.g. `/_bulk`.
    pub fn path_contains(mut self, part: &str) -> Match {
        self.path_contains = Some(part.to_owned());
        self
    }

    /// The raw query string contains `part`, e.g. `list-type=2`.
    pub fn query_contains(mut self, part: &str) -> Match {
        self.query_contains = Some(part.to_owned());
        self
    }

    /// The request carries header `name` (case-insensitive); may be given several times.
    pub fn header(mut self, name: &str) -> Match {
        self.headers.push(name.to_ascii_lowercase());
        self
    }

    /// The request's header `name` contains `part`, e.g. `Authorization` containing
    /// `/sts/aws4_request` for STS calls.
    pub fn header_contains(mut self, name: &str, part: &str) -> Match {
        self.header_values
            .push((name.to_ascii_lowercase(), part.to_owned()));
        self
    }

    fn matches(&self, method: &str, path: &str, query: &str, headers: &HeaderMap) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path.contains(p))
            && self
                .query_contains
                .as_deref()
                .is_none_or(|q| query.contains(q))
            && self
                .headers
                .iter()
                .all(|h| headers.contains_key(h.as_str()))
            && self.header_values.iter().all(|(name, part)| {
                headers
                    .get(name.as_str())
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains(part.as_str()))
            })
    }
}

/// Counts how often an injected rule was applied.
#[derive(Debug, Clone)]
pub struct FaultHandle {
    applied: Arc<AtomicUsize>,
}

impl FaultHandle {
    /// How many requests this rule has been applied to so far.
    pub fn applied(&self) -> usize {
        self.applied.load(Ordering::SeqCst)
    }
}

/// One request the proxy received.
#[derive(Debug, Clone)]
pub struct ProxiedRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query as received (percent-encoded).
    pub path_and_query: String,
    /// Request headers in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The fault applied, `None` if it was forwarded unchanged.
    pub fault: Option<FaultKind>,
}

impl ProxiedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Rule {
    fault: Fault,
    matcher: Match,
    remaining: Option<usize>,
    applied: Arc<AtomicUsize>,
}

/// Faults applied at random, at stated rates, to the requests a [`Match`] selects (see
/// [`FaultProxy::storm`]).
///
/// The draw for a request depends only on the seed, the request's method, path and query, and
/// how often that same request was seen before, never on timing: the n-th GET of a key meets the
/// same fate on every run. (Requests that are all alike, such as every `_bulk` of an index, draw
/// in arrival order.)
#[derive(Clone, Debug)]
pub struct Storm {
    seed: u64,
    faults: Vec<(f64, Fault)>,
    max_in_a_row: u32,
}

impl Storm {
    /// A storm with no faults yet, drawing from `seed`; at most 3 faults in a row hit the same
    /// request (the fourth attempt is forwarded), so a client with 4 attempts always gets
    /// through.
    pub fn new(seed: u64) -> Storm {
        Storm {
            seed,
            faults: Vec::new(),
            max_in_a_row: 3,
        }
    }

    /// Adds `fault`, applied to this share of requests (0.05 = 5 %). The rates of a storm add up
    /// to at most 1.
    pub fn with(mut self, rate: f64, fault: Fault) -> Storm {
        self.faults.push((rate, fault));
        let total: f64 = self.faults.iter().map(|(rate, _)| rate).sum();
        assert!(total <= 1.0, "the rates of a storm add up to {total} > 1");
        self
    }

    /// At most `n` faults in a row for the same request.
    pub fn max_in_a_row(mut self, n: u32) -> Storm {
        self.max_in_a_row = n;
        self
    }

    /// The fault for the `seen`-th occurrence (from 0) of request `key`, if any.
    fn draw(&self, key: &str, seen: u64) -> Option<&Fault> {
        let roll = unit_interval(mix(mix(self.seed ^ fnv1a(key.as_bytes())) ^ seen));
        let mut upto = 0.0;
        self.faults.iter().find_map(|(rate, fault)| {
            upto += rate;
            (roll < upto).then_some(fault)
        })
    }
}

/// FNV-1a, a stable hash of bytes (std's hashers may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// splitmix64's finaliser: spreads every input bit over the output.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A number in [0, 1) from the high 53 bits of `bits`.
pub fn unit_interval(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

struct StormRule {
    storm: Storm,
    matcher: Match,
    /// Per request key: times seen, and faults in a row.
    seen: HashMap<String, (u64, u32)>,
    applied: Arc<AtomicUsize>,
}

impl StormRule {
    fn select(&mut self, key: String) -> Option<Fault> {
        let (seen, in_a_row) = self.seen.entry(key.clone()).or_default();
        let n = *seen;
        *seen += 1;
        if *in_a_row >= self.storm.max_in_a_row {
            *in_a_row = 0;
            return None;
        }
        match self.storm.draw(&key, n) {
            Some(fault) => {
                *in_a_row += 1;
                self.applied.fetch_add(1, Ordering::SeqCst);
                Some(fault.clone())
            }
            None => {
                *in_a_row = 0;
                None
            }
        }
    }
}

#[derive(Default)]
struct State {
    rules: Mutex<Vec<Rule>>,
    storms: Mutex<Vec<StormRule>>,
    log: Mutex<Vec<ProxiedRequest>>,
}

impl State {
    fn select(&self, method: &str, path: &str, query: &str, headers: &HeaderMap) -> Option<Fault> {
        let mut rules = lock(&self.rules);
        let rule = rules
            .iter_mut()
            .find(|r| r.remaining != Some(0) && r.matcher.matches(method, path, query, headers));
        if let Some(rule) = rule {
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
            rule.applied.fetch_add(1, Ordering::SeqCst);
            return Some(rule.fault.clone());
        }
        drop(rules);
        let mut storms = lock(&self.storms);
        let storm = storms
            .iter_mut()
            .find(|s| s.matcher.matches(method, path, query, headers))?;
        storm.select(format!("{method} {path}?{query}"))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running fault-injecting proxy on `127.0.0.1`; stops on drop.
pub struct FaultProxy {
    endpoint: String,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Starts a proxy on a free port in front of `upstream` (`http://127.0.0.1:PORT`). It accepts
    /// connections as soon as this returns.
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream_addr = super::http::authority(upstream).to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("fault proxy: cannot bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("fault proxy: cannot make the listener non-blocking");
        let port = listener
            .local_addr()
            .expect("fault proxy: no local address")
            .port();
        let state = Arc::new(State::default());
        let (shutdown, shutdown_rx) = oneshot::channel();
        let thread_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{port}"))
            .spawn(move || serve(listener, upstream_addr, thread_state, shutdown_rx))
            .expect("fault proxy: cannot spawn its thread");
        FaultProxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            state,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` of the proxy: point the client under test here.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// Adds a rule. Rules are tried in the order they were added; the first that matches and has
    /// uses left applies. `times: Some(n)` applies it to the first `n` matching requests only,
    /// `None` to every matching request.
    pub fn inject(&self, fault: Fault, matcher: Match, times: Option<usize>) -> FaultHandle {
        let applied = Arc::new(AtomicUsize::new(0));
        lock(&self.state.rules).push(Rule {
            fault,
            matcher,
            remaining: times,
            applied: Arc::clone(&applied),
        });
        FaultHandle { applied }
    }

    /// Adds a storm for the requests `matcher` selects. Rules added with
    /// [`FaultProxy::inject`] take precedence; of several storms the first that matches applies.
    pub fn storm(&self, storm: Storm, matcher: Match) -> FaultHandle {
        let applied = Arc::new(AtomicUsize::new(0));
        lock(&self.state.storms).push(StormRule {
            storm,
            matcher,
            seen: HashMap::new(),
            applied: Arc::clone(&applied),
        });
        FaultHandle { applied }
    }

    /// Removes every rule and storm: from now on everything is forwarded unchanged.
    pub fn clear_faults(&self) {
        lock(&self.state.rules).clear();
        lock(&self.state.storms).clear();
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        lock(&self.state.log).clone()
    }

    /// How many requests were received so far.
    pub fn request_count(&self) -> usize {
        lock(&self.state.log).len()
    }

    /// How many requests a fault was applied to so far.
    pub fn fault_count(&self) -> usize {
        lock(&self.state.log)
            .iter()
            .filter(|r| r.fault.is_some())
            .count()
    }

    /// Empties the request log.
    pub fn clear_log(&self) {
        lock(&self.state.log).clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    listener: std::net::TcpListener,
    upstream: String,
    state: Arc<State>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("fault proxy: cannot build its tokio runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)
            .expect("fault proxy: cannot register the listener");
        let upstream: Arc<str> = upstream.into();
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        tokio::spawn(serve_connection(stream, Arc::clone(&upstream), Arc::clone(&state)));
                    }
                }
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
}

/// Lets a request handler end its connection: closed (FIN) or reset (RST).
#[derive(Default)]
struct ConnectionControl {
    end: Notify,
    reset: AtomicBool,
}

impl ConnectionControl {
    fn close(&self, reset: bool) {
        self.reset.store(reset, Ordering::SeqCst);
        self.end.notify_one();
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, upstream: Arc<str>, state: Arc<State>) {
    let _ = stream.set_nodelay(true);
    // A second descriptor of the same socket, to set SO_LINGER=0 (reset on close) when asked.
    let twin = stream
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(std::net::TcpStream::from);
    let control = Arc::new(ConnectionControl::default());
    let service_control = Arc::clone(&control);
    let service = service_fn(move |request| {
        handle(
            request,
            Arc::clone(&upstream),
            Arc::clone(&state),
            Arc::clone(&service_control),
        )
    });
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        _ = control.end.notified() => {
            if control.reset.load(Ordering::SeqCst)
                && let Some(twin) = twin
                && let Ok(twin) = tokio::net::TcpStream::from_std(twin)
            {
                let _ = twin.set_zero_linger();
            }
            // Leaving the select drops the connection and closes the socket.
        }
    }
}

async fn handle(
    request: Request<Incoming>,
    upstream: Arc<str>,
    state: Arc<State>,
    control: Arc<ConnectionControl>,
) -> Result<Response<ProxyBody>, Infallible> {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let fault = state.select(&method, &path, &query, request.headers());
    lock(&state.log).push(ProxiedRequest {
        method,
        path_and_query: request
            .uri()
            .path_and_query()
            .map_or_else(|| path.clone(), |pq| pq.as_str().to_owned()),
        headers: request
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        fault: fault.as_ref().map(Fault::kind),
    });

    let response = match fault {
        None => forward(request, &upstream).await,
        Some(Fault::Respond {
            status,
            headers,
            body,
        }) => {
            // Read the request body first so the client is not cut off while still sending.
            let _ = request.into_body().collect().await;
            Ok(build_response(status, &headers, body))
        }
        Some(Fault::Reset) => {
            control.close(true);
            // Never answers: the connection task drops this future along with the connection.
            std::future::pending().await
        }
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            forward(request, &upstream).await
        }
        Some(Fault::TruncateBody { keep_bytes }) => {
            truncated(request, &upstream, keep_bytes, Arc::clone(&control)).await
        }
        Some(Fault::MapResponse(map)) => mapped(request, &upstream, map).await,
        Some(Fault::MapRequest(map)) => rewritten(request, &upstream, map).await,
    };
    Ok(response.unwrap_or_else(|e| {
        build_response(
            502,
            &[("content-type".into(), "text/plain".into())],
            format!("fault proxy: upstream {upstream} failed: {e}").into_bytes(),
        )
    }))
}

async fn send_upstream<B>(
    request: Request<B>,
    upstream: &str,
) -> Result<Response<Incoming>, BoxError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let stream = tokio::net::TcpStream::connect(upstream).await?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender.send_request(request).await?)
}

async fn forward(
    request: Request<Incoming>,
    upstream: &str,
) -> Result<Response<ProxyBody>, BoxError> {
    let response = send_upstream(request, upstream).await?;
    Ok(response.map(|body| body.map_err(BoxError::from).boxed()))
}

async fn buffered(
    request: Request<Incoming>,
    upstream: &str,
) -> Result<(hyper::http::response::Parts, Bytes), BoxError> {
    let (parts, body) = send_upstream(request, upstream).await?.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok((parts, body))
}

async fn truncated(
    request: Request<Incoming>,
    upstream: &str,
    keep_bytes: usize,
    control: Arc<ConnectionControl>,
) -> Result<Response<ProxyBody>, BoxError> {
    let (mut parts, body) = buffered(request, upstream).await?;
    let keep = keep_bytes.min(body.len().saturating_sub(1));
    parts.headers.remove(TRANSFER_ENCODING);
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    let body = TruncatedBody {
        head: Some(body.slice(..keep)),
        pause: Box::pin(tokio::time::sleep(Duration::from_millis(100))),
        control,
    };
    Ok(Response::from_parts(parts, body.boxed()))
}

async fn mapped(
    request: Request<Incoming>,
    upstream: &str,
    map: ResponseMapper,
) -> Result<Response<ProxyBody>, BoxError> {
    let (parts, body) = buffered(request, upstream).await?;
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let (status, headers, body) = map(parts.status.as_u16(), headers, body.to_vec());
    Ok(build_response(status, &headers, body))
}

async fn rewritten(
    request: Request<Incoming>,
    upstream: &str,
    map: RequestMapper,
) -> Result<Response<ProxyBody>, BoxError> {
    let (mut parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(String::new, |pq| pq.as_str().to_owned());
    let body = map(parts.method.as_str(), &path, body.to_vec());
    parts.headers.remove(TRANSFER_ENCODING);
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    let request = Request::from_parts(parts, Full::new(Bytes::from(body)));
    let response = send_upstream(request, upstream).await?;
    Ok(response.map(|body| body.map_err(BoxError::from).boxed()))
}

fn build_response(status: u16, headers: &[(String, String)], body: Vec<u8>) -> Response<ProxyBody> {
    let mut response = Response::new(Full::new(Bytes::from(body)).map_err(BoxError::from).boxed());
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (name, value) in headers {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            continue;
        }
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// Sends `head`, waits a moment so it reaches the client, then has the connection closed while
/// the announced `Content-Length` is not yet reached.
struct TruncatedBody {
    head: Option<Bytes>,
    pause: Pin<Box<tokio::time::Sleep>>,
    control: Arc<ConnectionControl>,
}

impl Body for TruncatedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(head) = self.head.take()
            && !head.is_empty()
        {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        if self.pause.as_mut().poll(cx).is_ready() {
            self.control.close(false);
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod storm_tests {
    use super::*;

    fn rule(storm: Storm) -> StormRule {
        StormRule {
            storm,
            matcher: Match::any(),
            seen: HashMap::new(),
            applied: Arc::default(),
        }
    }

    /// The faults a storm applies to `requests` requests of 100 keys, in order.
    fn draws(storm: Storm, requests: usize) -> Vec<Option<FaultKind>> {
        let mut rule = rule(storm);
        (0..requests)
            .map(|i| {
                rule.select(format!("GET /b/key-{}", i % 100))
                    .map(|f| f.kind())
            })
            .collect()
    }

    #[test]
    fn a_storm_is_the_same_for_the_same_seed_and_keeps_its_rates() {
        let storm = |seed| {
            Storm::new(seed)
                .with(0.10, Fault::slow_down())
                .with(0.05, Fault::Reset)
        };
        let first = draws(storm(7), 20_000);
        assert_eq!(first, draws(storm(7), 20_000), "same seed, same storm");
        assert_ne!(
            first,
            draws(storm(8), 20_000),
            "another seed, another storm"
        );
        let count = |kind| first.iter().filter(|d| **d == Some(kind)).count();
        // 20,000 draws: 2,000 and 1,000 expected; the bounds are over 5 standard deviations.
        assert!(
            (1_780..=2_220).contains(&count(FaultKind::Respond(503))),
            "{}",
            count(FaultKind::Respond(503))
        );
        assert!(
            (840..=1_160).contains(&count(FaultKind::Reset)),
            "{}",
            count(FaultKind::Reset)
        );
    }

    #[test]
    fn a_storm_never_faults_one_request_more_than_max_in_a_row() {
        let mut rule = rule(Storm::new(1).with(1.0, Fault::Reset).max_in_a_row(3));
        let outcomes: Vec<bool> = (0..8)
            .map(|_| rule.select("GET /b/k".to_owned()).is_some())
            .collect();
        assert_eq!(outcomes, [true, true, true, false, true, true, true, false]);
        assert_eq!(rule.applied.load(Ordering::SeqCst), 6);
    }
}
