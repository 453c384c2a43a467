//! The HTTP surface of `run` against hostile clients, on real sockets: a `Host` that names
//! neither an address nor an allowed name is refused on every route (DNS rebinding), a request
//! body that does not arrive within `api.body_timeout` is cut off with 408 however slowly it
//! trickles, connections beyond `api.max_connections` wait until one closes, and every answer
//! carries `X-Content-Type-Options: nosniff`.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::http::{self, HttpResponse};
use crate::worker::{Connector, WorkerDir};

const TOKEN: &str = "hardening-token-0123456789";
/// Longer than anything here should take; only a broken guard gets near it.
const BOUND: Duration = Duration::from_secs(60);

/// A worker with the API on, no connectors, and these extra lines in its `api:` block.
fn api_worker(api_lines: &str) -> WorkerDir {
    WorkerDir::new(
        &[],
        &format!(
            "api:\n  token: {TOKEN}\n  external_id: hardening-external-id\n  principal_arn: arn:aws:iam::123456789012:user/worker\n{api_lines}"
        ),
    )
}

/// Sends `head` (the request line and headers, without the blank line) on a new connection,
/// then reads the answer until the server closes it.
fn exchange(listen: SocketAddr, head: &str) -> HttpResponse {
    let mut stream = TcpStream::connect(listen).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    stream
        .write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    http::parse_response(&raw).unwrap()
}

#[test]
fn a_host_name_that_is_not_allowed_is_refused_on_every_route() {
    let dir = api_worker("  allowed_hosts: [localhost, s3c.example.test]\n");
    let worker = dir.start();
    let listen = dir.listen();
    let port = listen.port();
    // (Host, status): addresses always pass (the kubelet's probes send the pod's IP), names
    // only when listed; a rebinding page sends its own name.
    let hosts = [
        (format!("127.0.0.1:{port}"), 200),
        (format!("10.1.2.3:{port}"), 200),
        (format!("[::1]:{port}"), 200),
        (format!("localhost:{port}"), 200),
        ("S3C.example.test".to_owned(), 200),
        (format!("rebind.attacker.test:{port}"), 421),
        (format!("localhost.attacker.test:{port}"), 421),
    ];
    for path in [
        "/healthz",
        "/readyz",
        "/status",
        "/metrics",
        "/",
        "/api/v1/connectors",
    ] {
        for (host, status) in &hosts {
            let answer = exchange(
                listen,
                &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}"),
            );
            assert_eq!(answer.status, *status, "{path} {host}: {}", answer.text());
            assert_eq!(
                answer.header("x-content-type-options"),
                Some("nosniff"),
                "{path} {host}"
            );
        }
    }
    // Under /api the refusal is the API's error shape, before the token is looked at.
    let refused = exchange(
        listen,
        "GET /api/v1/connectors HTTP/1.1\r\nHost: rebind.attacker.test",
    );
    assert_eq!(refused.status, 421);
    let body: Value = serde_json::from_slice(&refused.body).unwrap();
    assert_eq!(body["error"]["status"], 421);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("api.allowed_hosts"),
        "{body}"
    );
    // A request in absolute form names its host in the URI, which counts as well.
    let absolute = exchange(
        listen,
        &format!(
            "GET http://rebind.attacker.test:{port}/status HTTP/1.1\r\nHost: 127.0.0.1:{port}"
        ),
    );
    assert_eq!(absolute.status, 421, "{}", absolute.text());
    drop(worker);

    // Without the API nothing is checked, as before.
    let dir = WorkerDir::new(
        &[Connector {
            id: "docs",
            bucket: "docs",
            endpoint: "http://127.0.0.1:9".to_owned(),
            extra: "",
        }],
        "",
    );
    let _worker = dir.start();
    let open = exchange(
        dir.listen(),
        "GET /healthz HTTP/1.1\r\nHost: rebind.attacker.test",
    );
    assert_eq!(open.status, 200, "{}", open.text());
    assert_eq!(open.header("x-content-type-options"), Some("nosniff"));
}

/// Sends an authorised POST announcing 60000 bytes, then one byte every `every` (never, for
/// `None`) until the server answers and closes; returns the answer and whether it came before
/// [`BOUND`].
fn post_slowly(listen: SocketAddr, every: Option<Duration>) -> (HttpResponse, bool) {
    let mut stream = TcpStream::connect(listen).unwrap();
    stream
        .write_all(
            format!(
                "POST /api/v1/connectors HTTP/1.1\r\nHost: {listen}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{"
            )
            .as_bytes(),
        )
        .unwrap();
    let mut reader = stream.try_clone().unwrap();
    reader.set_read_timeout(Some(BOUND)).unwrap();
    let answer = std::thread::spawn(move || {
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(raw),
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                // The server closed with our bytes unread: a reset after its answer.
                Err(e) if e.kind() == ErrorKind::ConnectionReset && !raw.is_empty() => {
                    return Ok(raw);
                }
                Err(e) => return Err(e),
            }
        }
    });
    let started = Instant::now();
    while !answer.is_finished() && started.elapsed() < BOUND {
        let Some(every) = every else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        std::thread::sleep(every);
        if stream.write_all(b" ").is_err() {
            break;
        }
    }
    let in_time = answer.is_finished();
    let raw = answer.join().unwrap().unwrap();
    (http::parse_response(&raw).unwrap(), in_time)
}

#[test]
fn a_body_that_does_not_arrive_in_time_is_cut_off_with_408() {
    let dir = api_worker("  body_timeout: 1s\n");
    let _worker = dir.start();
    // No body at all, then a body that trickles in faster than any per-read timeout.
    for every in [None, Some(Duration::from_millis(100))] {
        let (answer, in_time) = post_slowly(dir.listen(), every);
        assert!(in_time, "{every:?}: the connection stayed open");
        assert_eq!(answer.status, 408, "{every:?}: {}", answer.text());
        assert_eq!(answer.header("connection"), Some("close"));
        let body: Value = serde_json::from_slice(&answer.body).unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("api.body_timeout"),
            "{body}"
        );
    }
    // A body that arrives in time is read as before (and refused for what it says).
    let whole = http::send(
        &format!("http://{}", dir.listen()),
        "POST",
        "/api/v1/connectors",
        &[
            ("Authorization", &format!("Bearer {TOKEN}")),
            ("Content-Type", "application/json"),
        ],
        b"{}",
        BOUND,
    )
    .unwrap();
    assert_eq!(whole.status, 400, "{}", whole.text());
}

#[test]
fn connections_beyond_the_cap_wait_until_one_closes() {
    let dir = api_worker("  max_connections: 2\n");
    let worker = dir.start();
    let listen = dir.listen();
    // Two idle connections take both places (the header timeout would close them after 10 s).
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(listen).unwrap())
        .collect();
    let mut third = TcpStream::connect(listen).unwrap();
    third
        .write_all(
            format!("GET /healthz HTTP/1.1\r\nHost: {listen}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    // While both are open the third is not served: it waits in the listen queue.
    third
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut buf = [0u8; 256];
    let waiting = third.read(&mut buf);
    assert!(
        matches!(&waiting, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "served past the cap: {waiting:?}"
    );
    // One closes: the third is served.
    drop(held);
    third.set_read_timeout(Some(BOUND)).unwrap();
    let mut raw = Vec::new();
    third.read_to_end(&mut raw).unwrap();
    assert_eq!(http::parse_response(&raw).unwrap().status, 200);
    assert!(
        !worker
            .logs_starting("The HTTP listener has as many connections open")
            .is_empty(),
        "{}",
        worker.log_text()
    );
}
