//! Fault storms with exact outcomes: the real binary syncs through the fault proxy while it
//! fails a stated share of requests, drawn from a seed (`S3C_STORM_SEED` replays a run; the
//! seed is printed either way).
//!
//! - S3 storm (SeaweedFS behind the proxy, embedded index): 503 SlowDown, 500 InternalError,
//!   connection resets, bodies cut short under their full `Content-Length` (at 64 bytes, or
//!   by one byte), responses slowed
//!   below the read timeout and others past it. Every object must be indexed exactly once with
//!   its full text, and since every failed attempt is retried exactly once, the report's
//!   `s3_retries` must equal the number of failing faults the proxy applied, and `s3_requests`
//!   the number of requests it received.
//! - OpenSearch storm (osmem behind the proxy, S3 direct): on `_bulk` requests, item-level 429s
//!   (answers rewritten), whole-request 502/503/504 and connection resets. Every object indexed
//!   exactly once with its text; the report's `index_retries` and the sync's "OpenSearch request
//!   failed; retrying." warnings must both equal the faulted bulk requests.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde_json::Value;

use crate::crash::{
    Rng, assert_documents_are, embedded_documents, mutate, osmem_documents, seed_from, sync_to_end,
    tail, text,
};
use crate::fixture::{create_bucket, s3_client};
use crate::support::fault_proxy::{mix, unit_interval};
use crate::support::moto::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};
use crate::support::{Fault, FaultKind, FaultProxy, Match, OsmemServer, SeaweedServer, Storm};

/// Objects per storm.
const OBJECTS: usize = 1000;
/// The S3 read timeout of the storm's connector, seconds.
const READ_TIMEOUT_S: u64 = 2;
/// A slow answer, well inside the read timeout: not a failure.
const SLOW: Duration = Duration::from_millis(250);
/// An answer later than the read timeout: the client gives up and retries.
const PAST_TIMEOUT: Duration = Duration::from_millis(3500);

/// A connector config: `index` lines, then the connector with `extra` lines.
fn write_config(
    dir: &std::path::Path,
    index: &str,
    bucket: &str,
    endpoint: &str,
    extra: &str,
) -> std::path::PathBuf {
    let text = format!(
        "index:\n{index}\nconnectors:\n  - id: c\n    buckets: [{bucket:?}]\n    region: {REGION}\n    endpoint_url: {endpoint}\n    aws_access_key_id: {ACCESS_KEY_ID}\n    aws_secret_access_key: {SECRET_ACCESS_KEY}\n{extra}"
    );
    let path = dir.join("config.yml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// A bucket (named from `rng`) of `OBJECTS` text objects of 100 bytes to a few KB on the shared SeaweedFS, and
/// its model (key -> text). Keys are `docs/NNNNNN.txt`, as `crash::mutate` makes them.
async fn seeded_bucket(prefix: &str, rng: &mut Rng) -> (String, BTreeMap<String, String>) {
    let s3 = s3_client(&SeaweedServer::shared().endpoint());
    // Named by the seed, not uniquely: the storm draws from the request paths, so a replay
    // needs the same names (each process has a SeaweedFS of its own).
    let bucket = format!("{prefix}-{:x}", rng.next());
    create_bucket(&s3, &bucket).await;
    let model: BTreeMap<String, String> = (0..OBJECTS)
        .map(|i| {
            let key = format!("docs/{i:06}.txt");
            // Longer texts for a third: a cut at byte 64 leaves any document incomplete.
            let repeat = if i % 3 == 0 { 1 + i % 20 } else { 1 };
            let text = text(&key, 0, rng).repeat(repeat);
            (key, text)
        })
        .collect();
    futures::stream::iter(&model)
        .map(|(key, text)| crate::fixture::put(&s3, &bucket, key, text.clone().into_bytes()))
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    (bucket, model)
}

/// Counts of the faults applied, by kind, and how many of them fail the attempt.
fn fault_table(proxy: &FaultProxy, failing: impl Fn(FaultKind) -> bool) -> (String, usize) {
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut failed = 0;
    for request in proxy.requests() {
        if let Some(kind) = request.fault {
            *by_kind.entry(format!("{kind:?}")).or_default() += 1;
            if failing(kind) {
                failed += 1;
            }
        }
    }
    let table = by_kind
        .iter()
        .map(|(kind, n)| format!("{kind}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    (table, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_storm_every_object_indexed_once_with_its_full_text_and_every_fault_retried() {
    let seed = seed_from("S3C_STORM_SEED");
    let mut rng = Rng(seed);
    let (bucket, model) = seeded_bucket("s3-storm", &mut rng).await;
    let proxy = FaultProxy::start(&SeaweedServer::shared().endpoint());
    let rates = [
        (0.10, Fault::slow_down()),
        (0.05, Fault::internal_error()),
        (0.05, Fault::Reset),
        (0.03, Fault::TruncateBody { keep_bytes: 64 }),
        // One byte short: the least a short body can miss.
        (
            0.02,
            Fault::TruncateBody {
                keep_bytes: usize::MAX,
            },
        ),
        (0.05, Fault::Delay(SLOW)),
        (0.02, Fault::Delay(PAST_TIMEOUT)),
    ];
    let mut storm = Storm::new(seed).max_in_a_row(3);
    for (rate, fault) in rates.iter().cloned() {
        storm = storm.with(rate, fault);
    }
    proxy.storm(storm, Match::any().path_prefix(&format!("/{bucket}")));
    let dir = tempfile::tempdir().expect("temp dir");
    let index_dir = dir.path().join("index");
    let config = write_config(
        dir.path(),
        &format!("  kind: embedded\n  path: {}", index_dir.display()),
        &bucket,
        &proxy.endpoint(),
        // 3 faults in a row at most: the 4th attempt always gets through.
        &format!("    max_attempts: 4\n    read_timeout: {READ_TIMEOUT_S}\n"),
    );

    let started = Instant::now();
    let (report, stderr) = sync_to_end(&config);
    let elapsed = started.elapsed();
    let (table, failing) = fault_table(&proxy, |kind| match kind {
        FaultKind::Delay(delay) => delay >= Duration::from_secs(READ_TIMEOUT_S),
        _ => true,
    });
    let requests = proxy.request_count();
    // Object GETs carry `x-id=GetObject`; listings could be cut short too.
    let cut_downloads = proxy
        .requests()
        .iter()
        .filter(|r| {
            r.fault == Some(FaultKind::TruncateBody) && r.path_and_query.contains("x-id=GetObject")
        })
        .count();
    let retry_warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("S3 call failed; retrying."))
        .collect();
    let short_body_retries = retry_warnings
        .iter()
        .filter(|line| line.contains("reading the body failed"))
        .count();
    eprintln!(
        "S3 storm (S3C_STORM_SEED={seed}): rates 10% 503 SlowDown, 5% 500, 5% reset, bodies cut \
         short under the full Content-Length (3% at 64 bytes, 2% one byte short), 5% +{SLOW:?}, 2% +{PAST_TIMEOUT:?} (read timeout \
         {READ_TIMEOUT_S} s), at most 3 in a row; {requests} requests, {} faulted ({table}), \
         {failing} failing, {cut_downloads} of them downloads cut short; retries logged {} \
         ({short_body_retries} for a body read short); report: added {}, errors {}, s3_requests {}, \
         s3_retries {}; {:.1} s",
        proxy.fault_count(),
        retry_warnings.len(),
        report["added"],
        report["errors"],
        report["s3_requests"],
        report["s3_retries"],
        elapsed.as_secs_f64()
    );
    assert_eq!(report["errors"], 0, "{report}\n{}", tail(&stderr));
    assert_eq!(report["added"], OBJECTS, "{report}");
    assert!(failing > 0, "the storm failed no request: {table}");
    assert_eq!(
        report["s3_requests"], requests,
        "every attempt the sync counts reached the proxy, and no other: {report}"
    );
    assert_eq!(
        report["s3_retries"], failing,
        "every failing fault was retried exactly once, nothing else was: {report}\n{table}"
    );
    assert_eq!(retry_warnings.len(), failing, "one retry warning per retry");
    assert_eq!(
        short_body_retries, cut_downloads,
        "every download cut short was noticed as such and retried"
    );
    assert_documents_are(
        &embedded_documents(&index_dir.join("c"), &bucket).await,
        &bucket,
        &model,
        &format!("S3 storm, seed {seed}"),
    );
}

/// Rewrites a `_bulk` answer so that some items (each with probability `rate`, at least one)
/// failed with 429; counts the items rewritten.
fn item_429s(seed: u64, rate: f64, rewritten: Arc<AtomicU64>) -> Fault {
    let calls = AtomicU64::new(0);
    Fault::map_response(move |status, headers, body| {
        let call = calls.fetch_add(1, Ordering::SeqCst);
        let Ok(mut answer) = serde_json::from_slice::<Value>(&body) else {
            return (status, headers, body);
        };
        let Some(items) = answer["items"].as_array_mut().filter(|i| !i.is_empty()) else {
            return (status, headers, body);
        };
        let first = (mix(seed ^ call) % items.len() as u64) as usize;
        for (i, item) in items.iter_mut().enumerate() {
            let roll = unit_interval(mix(mix(seed ^ call) ^ i as u64));
            if i != first && roll >= rate {
                continue;
            }
            let Some((_, outcome)) = item.as_object_mut().and_then(|o| o.iter_mut().next()) else {
                continue;
            };
            outcome["status"] = Value::from(429);
            outcome["error"] = serde_json::json!({
                "type": "es_rejected_execution_exception",
                "reason": "rejected execution of coordinating operation (fault proxy)",
            });
            rewritten.fetch_add(1, Ordering::SeqCst);
        }
        answer["errors"] = Value::from(true);
        let body = serde_json::to_vec(&answer).expect("JSON");
        (status, headers, body)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_storm_every_object_indexed_once_and_retries_are_counted() {
    let seed = seed_from("S3C_STORM_SEED");
    let mut rng = Rng(seed ^ 1);
    let (bucket, mut model) = seeded_bucket("os-storm", &mut rng).await;
    let osmem = OsmemServer::shared();
    let proxy = FaultProxy::start(&osmem.url());
    let rewritten = Arc::new(AtomicU64::new(0));
    let error = |status: u16| {
        Fault::json(
            status,
            &format!(r#"{{"error":"fault proxy {status}","status":{status}}}"#),
        )
    };
    let storm = Storm::new(seed)
        .max_in_a_row(3)
        .with(0.20, item_429s(seed, 0.3, Arc::clone(&rewritten)))
        .with(0.05, error(502))
        .with(0.05, error(503))
        .with(0.05, error(504))
        .with(0.05, Fault::Reset);
    // Every bulk request has the same path, so the storm's cap of 3 faults in a row bounds the
    // attempts of one request only if requests never overlap: one bulk request at a time.
    proxy.storm(storm, Match::any().method("POST").path_contains("/_bulk"));
    let index_name = format!("s3c-storm-{seed:x}");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &format!(
            "  kind: opensearch\n  url: {}\n  max_retries: 3\n  bulk_max_docs: 25\n  bulk_concurrency: 1",
            proxy.endpoint()
        ),
        &bucket,
        &SeaweedServer::shared().endpoint(),
        &format!("    index_name: {index_name}\n"),
    );

    // A first sync writes everything; a second, after changes, writes and deletes.
    let mut outcomes = Vec::new();
    for round in 0..2 {
        if round == 1 {
            let s3 = s3_client(&SeaweedServer::shared().endpoint());
            let mut next_key = OBJECTS as u64;
            mutate(
                &s3,
                &bucket,
                &mut model,
                &mut next_key,
                1,
                (200, 50, 60),
                &mut rng,
            )
            .await;
        }
        proxy.clear_log();
        let before = rewritten.load(Ordering::SeqCst);
        let (report, stderr) = sync_to_end(&config);
        let retries = stderr
            .matches("OpenSearch request failed; retrying.")
            .count();
        let (table, failing) = fault_table(&proxy, |_| true);
        let bulks = proxy
            .requests()
            .iter()
            .filter(|r| r.path_and_query.contains("/_bulk"))
            .count();
        eprintln!(
            "OpenSearch storm round {round} (S3C_STORM_SEED={seed}): on _bulk, 20% of answers with \
             items turned into 429 (each item 30%, at least one), 5% each 502, 503, 504, reset, at \
             most 3 in a row; {bulks} bulk requests, {failing} faulted ({table}), {} items \
             rewritten to 429; {retries} retries logged; report: added {}, updated {}, deleted {}, \
             errors {}, index_retries {}",
            rewritten.load(Ordering::SeqCst) - before,
            report["added"],
            report["updated"],
            report["deleted"],
            report["errors"],
            report["index_retries"],
        );
        assert_eq!(report["errors"], 0, "{report}\n{}", tail(&stderr));
        assert!(failing > 0, "the storm faulted no request");
        assert_eq!(
            retries,
            failing,
            "each faulted bulk request was retried once, nothing else was\n{}",
            tail(&stderr)
        );
        assert_eq!(
            report["index_retries"].as_u64(),
            Some(failing as u64),
            "the report counts every retry of the index: {report}"
        );
        outcomes.push(report);
        assert_documents_are(
            &osmem_documents(&index_name),
            &bucket,
            &model,
            &format!("OpenSearch storm round {round}, seed {seed}"),
        );
    }
    assert_eq!(outcomes[0]["added"], OBJECTS);
    let counts: HashMap<&str, &Value> = ["added", "updated", "deleted"]
        .into_iter()
        .map(|field| (field, &outcomes[1][field]))
        .collect();
    assert_eq!(
        (counts["added"], counts["updated"], counts["deleted"]),
        (&Value::from(50), &Value::from(200), &Value::from(60)),
        "{}",
        outcomes[1]
    );
}
