//! Tests of the test harness itself: moto starts, answers, is shared, resets, records and enforces
//! IAM on request; the fault proxy forwards faithfully, injects each kind of fault exactly as often
//! as asked and logs what it saw. Buckets are made with raw unsigned HTTP so the harness does not
//! depend on the code under test or the AWS SDK.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::http::{self, HttpResponse};
use crate::support::moto::DUMMY_AUTHORIZATION;
use crate::support::{Fault, FaultKind, FaultProxy, Match, MotoServer, OsmemServer, unique_name};

const TIMEOUT: Duration = Duration::from_secs(30);

const AUTH: (&str, &str) = ("Authorization", DUMMY_AUTHORIZATION);

/// GET with moto's dummy signature (moto refuses anonymous reads of private objects).
fn get(endpoint: &str, path: &str) -> HttpResponse {
    http::send(endpoint, "GET", path, &[AUTH], b"", TIMEOUT)
        .unwrap_or_else(|e| panic!("GET {path} via {endpoint}: {e}"))
}

/// PUT with moto's dummy signature.
fn put(endpoint: &str, path: &str, body: &[u8]) -> HttpResponse {
    http::send(endpoint, "PUT", path, &[AUTH], body, TIMEOUT)
        .unwrap_or_else(|e| panic!("PUT {path} via {endpoint}: {e}"))
}

/// A shared-moto bucket holding `key` = `body`.
fn bucket_with_object(prefix: &str, key: &str, body: &[u8]) -> String {
    let moto = MotoServer::shared();
    let bucket = unique_name(prefix);
    moto.create_bucket(&bucket);
    moto.put_object(&bucket, key, body);
    bucket
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                // state is the field after the parenthesised command name; Z = zombie (dead)
                stat.rsplit_once(')')
                    .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
}

#[test]
fn moto_starts_answers_and_stops_on_drop() {
    let moto = MotoServer::start();
    assert!(
        moto.endpoint().starts_with("http://127.0.0.1:"),
        "{}",
        moto.endpoint()
    );
    let answer = get(&moto.endpoint(), "/");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        answer.text().contains("ListAllMyBucketsResult"),
        "{}",
        answer.text()
    );
    let (pid, endpoint) = (moto.pid(), moto.endpoint());
    assert_stops_on_drop(moto, pid, &endpoint);
}

/// Drops `server` and checks that its process `pid` ends and nothing answers on `endpoint`.
fn assert_stops_on_drop<T>(server: T, pid: u32, endpoint: &str) {
    assert!(process_exists(pid), "pid {pid} is not running");
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_exists(pid) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(!process_exists(pid), "pid {pid} survived the drop");
    assert!(
        http::send(endpoint, "GET", "/", &[], b"", Duration::from_secs(2)).is_err(),
        "something still answers on {endpoint}"
    );
}

#[test]
fn shared_moto_is_started_once_and_reused() {
    let first = MotoServer::shared();
    let from_thread = thread::spawn(|| MotoServer::shared().endpoint())
        .join()
        .expect("thread panicked");
    let second = MotoServer::shared();
    assert!(std::ptr::eq(first, second));
    assert_eq!(first.endpoint(), from_thread);
    assert_eq!(get(&first.endpoint(), "/").status, 200);
}

#[test]
fn reset_wipes_buckets() {
    let moto = MotoServer::start();
    moto.create_bucket("harness-reset-a");
    moto.create_bucket("harness-reset-b");
    assert_eq!(
        moto.bucket_names(),
        vec!["harness-reset-a".to_owned(), "harness-reset-b".to_owned()]
    );
    moto.reset();
    assert!(moto.bucket_names().is_empty(), "{:?}", moto.bucket_names());
}

#[test]
fn recorder_captures_requests_with_headers_and_bodies() {
    let moto = MotoServer::start();
    moto.create_bucket("harness-recorder");
    moto.reset_recording();
    moto.start_recording();
    let endpoint = moto.endpoint();
    let listed = http::send(
        &endpoint,
        "GET",
        "/harness-recorder?list-type=2&prefix=a",
        &[("X-Amz-Expected-Bucket-Owner", "111122223333")],
        b"",
        TIMEOUT,
    )
    .expect("list");
    assert_eq!(listed.status, 200, "{}", listed.text());
    let body = [b"binary \x00\xff body ".as_slice(), &[7u8; 300]].concat();
    assert_eq!(
        put(&endpoint, "/harness-recorder/a%20b%2Bc.txt", &body).status,
        200
    );
    moto.stop_recording();
    assert_eq!(get(&endpoint, "/harness-recorder").status, 200); // not recorded

    let recorded = moto.recorded_requests();
    assert_eq!(recorded.len(), 2, "{recorded:#?}");
    assert_eq!(recorded[0].method, "GET");
    assert_eq!(recorded[0].url, "/harness-recorder?list-type=2&prefix=a");
    assert_eq!(recorded[0].path(), "/harness-recorder");
    assert_eq!(recorded[0].query(), Some("list-type=2&prefix=a"));
    assert_eq!(
        recorded[0].header("x-amz-expected-bucket-owner"),
        Some("111122223333")
    );
    assert_eq!(recorded[0].header("Host"), Some(http::authority(&endpoint)));
    assert_eq!(recorded[1].method, "PUT");
    assert_eq!(recorded[1].url, "/harness-recorder/a%20b%2Bc.txt");
    assert_eq!(recorded[1].body, body);

    moto.reset_recording();
    assert!(moto.recorded_requests().is_empty());
}

#[test]
fn iam_enforcement_refuses_unsigned_and_unknown_keys_until_disabled() {
    let moto = MotoServer::start();
    let endpoint = moto.endpoint();
    moto.create_bucket("harness-iam");
    moto.enable_iam_enforcement();

    let unsigned = http::send(
        &endpoint,
        "GET",
        "/harness-iam?list-type=2",
        &[],
        b"",
        TIMEOUT,
    )
    .expect("unsigned request");
    assert!(
        !unsigned.is_success(),
        "unsigned request allowed: {} {}",
        unsigned.status,
        unsigned.text()
    );
    let unknown_key = http::send(
        &endpoint,
        "GET",
        "/harness-iam?list-type=2",
        &[
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAUNKNOWNKEY000000/20250101/us-east-1/s3/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature=0123456789abcdef",
            ),
            ("x-amz-date", "20250101T000000Z"),
        ],
        b"",
        TIMEOUT,
    )
    .expect("request with unknown key");
    assert_eq!(unknown_key.status, 403, "{}", unknown_key.text());
    assert!(
        unknown_key.text().contains("InvalidAccessKeyId"),
        "{}",
        unknown_key.text()
    );

    moto.disable_iam_enforcement();
    let allowed = http::send(
        &endpoint,
        "GET",
        "/harness-iam?list-type=2",
        &[],
        b"",
        TIMEOUT,
    )
    .expect("unsigned request");
    assert_eq!(allowed.status, 200, "{}", allowed.text());
}

#[test]
fn proxy_forwards_unchanged_and_logs_requests() {
    let moto = MotoServer::shared();
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let bucket = bucket_with_object("harness-proxy-fwd", "dir/file one.bin", &body);
    let proxy = FaultProxy::start(&moto.endpoint());
    let path = format!("/{bucket}/dir/file%20one.bin");

    let direct = get(&moto.endpoint(), &path);
    let proxied = get(&proxy.endpoint(), &path);
    assert_eq!(proxied.status, 200, "{}", proxied.text());
    assert_eq!(proxied.body, body);
    assert_eq!(proxied.body, direct.body);
    assert_eq!(proxied.header("etag"), direct.header("etag"));

    let listing = http::send(
        &proxy.endpoint(),
        "GET",
        &format!("/{bucket}?list-type=2&prefix=dir%2F"),
        &[("x-amz-expected-bucket-owner", "123456789012")],
        b"",
        TIMEOUT,
    )
    .expect("list via proxy");
    assert_eq!(listing.status, 200, "{}", listing.text());
    assert!(
        listing.text().contains("<Key>dir/file one.bin</Key>"),
        "{}",
        listing.text()
    );

    let log = proxy.requests();
    assert_eq!(log.len(), 2, "{log:#?}");
    assert_eq!(proxy.request_count(), 2);
    assert_eq!(proxy.fault_count(), 0);
    assert_eq!(log[0].method, "GET");
    assert_eq!(log[0].path_and_query, path);
    assert_eq!(log[0].fault, None);
    assert_eq!(
        log[1].path_and_query,
        format!("/{bucket}?list-type=2&prefix=dir%2F")
    );
    assert_eq!(
        log[1].header("X-Amz-Expected-Bucket-Owner"),
        Some("123456789012")
    );
    assert_eq!(
        log[1].header("host"),
        Some(http::authority(&proxy.endpoint()))
    );
    proxy.clear_log();
    assert_eq!(proxy.request_count(), 0);
}

#[test]
fn proxy_keeps_host_header_and_forwards_chunked_bodies() {
    let moto = MotoServer::start();
    moto.create_bucket("harness-host");
    let proxy = FaultProxy::start(&moto.endpoint());
    moto.start_recording();
    let chunked = b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
    let raw = send_raw_request(
        &proxy.endpoint(),
        &format!(
            "PUT /harness-host/chunked.txt HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Authorization: {DUMMY_AUTHORIZATION}\r\nTransfer-Encoding: chunked\r\n\r\n",
            http::authority(&proxy.endpoint())
        ),
        chunked,
    )
    .expect("chunked PUT via proxy");
    let answer = http::parse_response(&raw).expect("parse");
    assert_eq!(answer.status, 200, "{}", answer.text());
    moto.stop_recording();

    let recorded = moto.recorded_requests();
    assert_eq!(recorded.len(), 1, "{recorded:#?}");
    assert_eq!(
        recorded[0].header("host"),
        Some(http::authority(&proxy.endpoint())),
        "the proxy must not rewrite Host"
    );
    let stored = get(&moto.endpoint(), "/harness-host/chunked.txt");
    assert_eq!(stored.text(), "hello, world");
}

#[test]
fn proxy_answers_expect_100_continue_and_forwards_the_body() {
    let moto = MotoServer::shared();
    let bucket = unique_name("harness-proxy-expect");
    moto.create_bucket(&bucket);
    let proxy = FaultProxy::start(&moto.endpoint());
    let body = vec![b'x'; 4096];
    let raw = send_raw_request(
        &proxy.endpoint(),
        &format!(
            "PUT /{bucket}/expect.txt HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Authorization: {DUMMY_AUTHORIZATION}\r\nExpect: 100-continue\r\n\
             Content-Length: {}\r\n\r\n",
            http::authority(&proxy.endpoint()),
            body.len()
        ),
        &body,
    )
    .expect("PUT with Expect via proxy");
    let answer = http::parse_response(&raw).expect("parse");
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(
        get(&moto.endpoint(), &format!("/{bucket}/expect.txt")).body,
        body
    );
}

fn send_raw_request(endpoint: &str, head: &str, body: &[u8]) -> io::Result<Vec<u8>> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(http::authority(endpoint))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    Ok(raw)
}

#[test]
fn proxy_injects_slow_down_exactly_times_then_forwards() {
    let moto = MotoServer::shared();
    let bucket = bucket_with_object("harness-proxy-503", "k.txt", b"payload");
    let proxy = FaultProxy::start(&moto.endpoint());
    let rule = proxy.inject(
        Fault::slow_down(),
        Match::any()
            .method("GET")
            .path_prefix(&format!("/{bucket}/")),
        Some(2),
    );
    let path = format!("/{bucket}/k.txt");

    // A request the rule does not match is forwarded even while the rule has uses left.
    let head = http::send(&proxy.endpoint(), "HEAD", &path, &[AUTH], b"", TIMEOUT).expect("HEAD");
    assert_eq!(head.status, 200);

    for attempt in 1..=2 {
        let answer = get(&proxy.endpoint(), &path);
        assert_eq!(answer.status, 503, "attempt {attempt}");
        assert!(
            answer.text().contains("<Code>SlowDown</Code>"),
            "{}",
            answer.text()
        );
        assert_eq!(answer.header("content-type"), Some("application/xml"));
    }
    let third = get(&proxy.endpoint(), &path);
    assert_eq!(third.status, 200);
    assert_eq!(third.text(), "payload");
    assert_eq!(rule.applied(), 2);

    let faults: Vec<_> = proxy.requests().iter().map(|r| r.fault).collect();
    assert_eq!(
        faults,
        vec![
            None,
            Some(FaultKind::Respond(503)),
            Some(FaultKind::Respond(503)),
            None
        ]
    );
    assert_eq!(proxy.fault_count(), 2);
}

#[test]
fn proxy_matches_on_query_and_header_presence() {
    let moto = MotoServer::shared();
    let bucket = bucket_with_object("harness-proxy-match", "k.txt", b"x");
    let proxy = FaultProxy::start(&moto.endpoint());
    let rule = proxy.inject(
        Fault::access_denied(),
        Match::any()
            .query_contains("list-type=2")
            .header("x-amz-expected-bucket-owner"),
        None,
    );
    let list = format!("/{bucket}?list-type=2");
    assert_eq!(
        get(&proxy.endpoint(), &list).status,
        200,
        "no header: forwarded"
    );
    let with_owner = |path: &str| {
        http::send(
            &proxy.endpoint(),
            "GET",
            path,
            &[("x-amz-expected-bucket-owner", "999999999999"), AUTH],
            b"",
            TIMEOUT,
        )
        .expect("GET")
    };
    assert_eq!(
        with_owner(&format!("/{bucket}/k.txt")).status,
        200,
        "no query match: forwarded"
    );
    for _ in 0..3 {
        let denied = with_owner(&list);
        assert_eq!(denied.status, 403);
        assert!(denied.text().contains("<Code>AccessDenied</Code>"));
    }
    assert_eq!(rule.applied(), 3, "times: None applies to every match");

    proxy.clear_faults();
    assert_eq!(with_owner(&list).status, 200);
}

#[test]
fn proxy_canned_answers_carry_their_headers() {
    let moto = MotoServer::shared();
    let proxy = FaultProxy::start(&moto.endpoint());
    proxy.inject(
        Fault::permanent_redirect("eu-west-3"),
        Match::any(),
        Some(1),
    );
    proxy.inject(Fault::opensearch_too_many_requests(), Match::any(), Some(1));
    let redirect = get(&proxy.endpoint(), "/some-bucket?list-type=2");
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("x-amz-bucket-region"), Some("eu-west-3"));
    assert!(redirect.text().contains("<Code>PermanentRedirect</Code>"));
    let throttled = get(&proxy.endpoint(), "/_bulk");
    assert_eq!(throttled.status, 429);
    let json: serde_json::Value = serde_json::from_slice(&throttled.body).expect("JSON body");
    assert_eq!(json["status"], 429);
    assert_eq!(json["error"]["type"], "es_rejected_execution_exception");
}

#[test]
fn proxy_resets_the_connection_then_forwards() {
    let moto = MotoServer::shared();
    let bucket = bucket_with_object("harness-proxy-reset", "k.txt", b"still here");
    let proxy = FaultProxy::start(&moto.endpoint());
    let rule = proxy.inject(Fault::Reset, Match::any(), Some(1));
    let path = format!("/{bucket}/k.txt");

    let error = http::send(&proxy.endpoint(), "GET", &path, &[], b"", TIMEOUT)
        .expect_err("a reset connection gives no answer");
    assert_eq!(error.kind(), io::ErrorKind::ConnectionReset, "{error}");
    assert_eq!(rule.applied(), 1);

    let next = get(&proxy.endpoint(), &path);
    assert_eq!(next.text(), "still here");
    assert_eq!(proxy.requests()[0].fault, Some(FaultKind::Reset));
}

#[test]
fn proxy_truncates_a_body_below_its_content_length() {
    let moto = MotoServer::shared();
    let body: Vec<u8> = (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let bucket = bucket_with_object("harness-proxy-trunc", "k.txt", &body);
    let proxy = FaultProxy::start(&moto.endpoint());
    proxy.inject(
        Fault::TruncateBody { keep_bytes: 100 },
        Match::any(),
        Some(1),
    );
    let path = format!("/{bucket}/k.txt");

    let raw = http::send_raw(&proxy.endpoint(), "GET", &path, &[AUTH], b"", TIMEOUT).expect("GET");
    let (head, received) = http::split_head(&raw).expect("complete head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("content-length: 1000"),
        "{head}"
    );
    assert_eq!(received, &body[..100]);
    let error = http::parse_response(&raw).expect_err("truncated");
    assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);

    assert_eq!(
        get(&proxy.endpoint(), &path).body,
        body,
        "then forwards whole"
    );
}

#[test]
fn proxy_delays_then_forwards() {
    let moto = MotoServer::shared();
    let bucket = bucket_with_object("harness-proxy-delay", "k.txt", b"late");
    let proxy = FaultProxy::start(&moto.endpoint());
    proxy.inject(
        Fault::Delay(Duration::from_millis(400)),
        Match::any(),
        Some(1),
    );
    let path = format!("/{bucket}/k.txt");
    let started = Instant::now();
    let answer = get(&proxy.endpoint(), &path);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer.text(), "late");
    assert_eq!(
        proxy.requests()[0].fault,
        Some(FaultKind::Delay(Duration::from_millis(400)))
    );
}

#[test]
fn proxy_rewrites_answers_with_a_closure() {
    let moto = MotoServer::shared();
    let bucket = bucket_with_object("harness-proxy-map", "k.json", br#"{"items":[1,2]}"#);
    let proxy = FaultProxy::start(&moto.endpoint());
    let seen_status = Arc::new(std::sync::Mutex::new(None));
    let seen = Arc::clone(&seen_status);
    proxy.inject(
        Fault::map_response(move |status, mut headers, body| {
            *seen.lock().unwrap() = Some(status);
            headers.push(("x-rewritten".into(), "yes".into()));
            let text = String::from_utf8(body).unwrap().replace("1,2", "1,2,3,429");
            (207, headers, text.into_bytes())
        }),
        Match::any().path_contains("k.json"),
        Some(1),
    );
    let answer = get(&proxy.endpoint(), &format!("/{bucket}/k.json"));
    assert_eq!(*seen_status.lock().unwrap(), Some(200));
    assert_eq!(answer.status, 207);
    assert_eq!(answer.header("x-rewritten"), Some("yes"));
    assert_eq!(answer.text(), r#"{"items":[1,2,3,429]}"#);
    assert_eq!(answer.header("content-length"), Some("21"));
}

#[test]
fn proxy_reports_an_unreachable_upstream_as_502() {
    let port = crate::support::moto::free_port();
    let proxy = FaultProxy::start(&format!("http://127.0.0.1:{port}"));
    let answer = get(&proxy.endpoint(), "/anything");
    assert_eq!(answer.status, 502, "{}", answer.text());
}

#[test]
fn unique_names_are_valid_bucket_names_and_differ() {
    let a = unique_name("Harness_Test");
    let b = unique_name("Harness_Test");
    assert_ne!(a, b);
    for name in [&a, &b] {
        assert!((3..=63).contains(&name.len()), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name}"
        );
    }
}

#[test]
fn recording_parser_decodes_base64_bodies_and_strips_the_origin() {
    let text = concat!(
        r#"{"headers": {"Host": "127.0.0.1:1", "X-Amz-Date": "d"}, "method": "PUT", "url": "http://127.0.0.1:1/b/k%20x?tagging", "body": "aGVsbG8=", "body_encoded": true}"#,
        "\n",
        r#"{"headers": {}, "method": "GET", "url": "http://127.0.0.1:1", "body": "plain", "body_encoded": false}"#,
        "\n"
    );
    let parsed = crate::support::moto::parse_recording(text).expect("parse");
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0].url, "/b/k%20x?tagging");
    assert_eq!(parsed[0].body, b"hello");
    assert_eq!(parsed[0].header("x-amz-date"), Some("d"));
    assert_eq!(parsed[1].url, "/");
    assert_eq!(parsed[1].body, b"plain");
    assert_eq!(
        crate::support::moto::base64_decode("AP8Q").unwrap(),
        vec![0x00, 0xff, 0x10]
    );
}

#[test]
fn osmem_starts_answers_and_stops_on_drop() {
    let osmem = OsmemServer::start();
    let url = osmem.url();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let root = osmem.json("GET", "/", "");
    assert_eq!(root["version"]["distribution"], "opensearch", "{root}");
    let index = unique_name("harness-osmem");
    osmem.json(
        "PUT",
        &format!("/{index}"),
        r#"{"mappings":{"properties":{"n":{"type":"long"}}}}"#,
    );
    osmem.json(
        "POST",
        &format!("/{index}/_doc/1?refresh=wait_for"),
        r#"{"n":1}"#,
    );
    assert_eq!(
        osmem.json("GET", &format!("/{index}/_count"), "")["count"],
        1
    );
    let missing = osmem.request("GET", "/no-such-index/_count", "");
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert!(std::ptr::eq(OsmemServer::shared(), OsmemServer::shared()));
    assert_ne!(
        OsmemServer::shared().url(),
        url,
        "a private instance is not the shared one"
    );

    let pid = osmem.pid();
    assert_stops_on_drop(osmem, pid, &url);
}

#[test]
fn proxy_rewrites_request_bodies_with_a_closure() {
    let osmem = OsmemServer::shared();
    let index = unique_name("harness-map-request");
    let proxy = FaultProxy::start(&osmem.url());
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let rewrite = proxy.inject(
        Fault::map_request(move |method, path, body| {
            record.lock().unwrap().push(format!("{method} {path}"));
            // A longer body: the forwarded Content-Length must follow.
            String::from_utf8(body)
                .unwrap()
                .replace("\"n\":1", "\"n\":12345")
                .into_bytes()
        }),
        Match::any().method("POST"),
        Some(1),
    );
    let path = format!("/{index}/_doc/1?refresh=wait_for");
    let headers = [("Content-Type", "application/json")];
    let written = http::send(
        &proxy.endpoint(),
        "POST",
        &path,
        &headers,
        br#"{"n":1}"#,
        TIMEOUT,
    )
    .expect("write through the proxy");
    assert!(written.is_success(), "{}", written.text());
    assert_eq!(rewrite.applied(), 1);
    assert_eq!(*seen.lock().unwrap(), [format!("POST {path}")]);
    let stored = osmem.json("GET", &format!("/{index}/_doc/1"), "");
    assert_eq!(stored["_source"]["n"], 12345, "{stored}");
}
