//! OpenSearch-specific behaviour, against osmem-server behind the fault proxy: throttling of
//! whole bulk requests and of single items, resets and slow answers, documents the index refuses,
//! existing indices with other mappings, reading documents in key order page by page, request limits,
//! authentication, and the CLI. Every test checks exact document counts afterwards.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use s3_connector::config::Config;
use s3_connector::embed::testing::WordHashEmbedder;
use s3_connector::embed::{Embedder, Passage, PassageHash};
use s3_connector::sink::passages::{Fusion, PassageQuery, SearchMode};
use s3_connector::sink::{
    ContentStatus, DocId, Document, ScanFrom, Sink, StoredPassage, VersionStamp,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::cli::{run_with_env as run, text};
use crate::fixture::{Setup, create_bucket, delete, put, s3_client};
use crate::support::moto::base64_decode;
use crate::support::{Fault, FaultProxy, Match, MotoServer, OsmemServer, TlsFront, unique_name};

/// A bucket on the shared moto holding `doc-0.txt` .. `doc-{n-1}.txt`.
async fn seeded_bucket(prefix: &str, n: usize) -> (String, aws_sdk_s3::Client) {
    let s3 = s3_client(&MotoServer::shared().endpoint());
    let bucket = unique_name(prefix);
    create_bucket(&s3, &bucket).await;
    for i in 0..n {
        put(
            &s3,
            &bucket,
            &format!("doc-{i}.txt"),
            format!("document number {i}"),
        )
        .await;
    }
    (bucket, s3)
}

/// A seeded bucket, a fault proxy in front of the shared osmem, and a connector that reads the
/// bucket and writes through the proxy, with `index_extra` lines in its `index:` section:
/// `(bucket, s3 client, proxy, setup, config)`.
async fn proxied(
    prefix: &str,
    objects: usize,
    index_extra: &str,
) -> (String, aws_sdk_s3::Client, FaultProxy, Setup, Config) {
    let (bucket, s3) = seeded_bucket(prefix, objects).await;
    let proxy = FaultProxy::start(&OsmemServer::shared().url());
    let setup = Setup::opensearch(&proxy.endpoint(), index_extra);
    let config = setup.config(&MotoServer::shared().endpoint(), &[&bucket], "");
    (bucket, s3, proxy, setup, config)
}

/// The ids of the items of a bulk answer, in order.
fn item_ids(body: &[u8]) -> Vec<String> {
    let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    answer["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_object()?.values().next()?["_id"].as_str())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Records the item ids of every bulk answer that reaches the client unchanged.
fn observe_bulk_answers(proxy: &FaultProxy) -> Arc<Mutex<Vec<Vec<String>>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    proxy.inject(
        Fault::map_response(move |status, headers, body| {
            record.lock().unwrap().push(item_ids(&body));
            (status, headers, body)
        }),
        Match::any().method("POST").path_contains("/_bulk"),
        None,
    );
    seen
}

fn sizes(answers: &Mutex<Vec<Vec<String>>>) -> Vec<usize> {
    let mut sizes: Vec<usize> = answers.lock().unwrap().iter().map(Vec::len).collect();
    sizes.sort();
    sizes
}

#[tokio::test]
async fn a_429_storm_on_whole_bulk_requests_is_retried_and_nothing_is_lost() {
    let (bucket, s3, proxy, setup, config) = proxied("os-storm", 7, "  bulk_max_docs: 3\n").await;
    let storm = proxy.inject(
        Fault::opensearch_too_many_requests(),
        Match::any().method("POST").path_contains("/_bulk"),
        Some(4),
    );
    let answers = observe_bulk_answers(&proxy);

    let report = setup.sync(&config).await;
    assert_eq!(report.errors, 0, "{:?}", report.error_messages);
    assert_eq!((report.added, report.objects_listed), (7, 7));
    assert_eq!(storm.applied(), 4);
    assert_eq!(
        sizes(&answers),
        [1, 3, 3],
        "7 documents in requests of at most 3"
    );
    assert_eq!(setup.count(), 7);

    // A storm that outlasts every retry: the bucket's sync fails and says why; the documents
    // that could not be written are not counted as added, and nothing is deleted.
    put(&s3, &bucket, "late-1.txt", "late one").await;
    put(&s3, &bucket, "late-2.txt", "late two").await;
    delete(&s3, &bucket, "doc-0.txt").await;
    proxy.clear_faults();
    let endless = proxy.inject(
        Fault::opensearch_too_many_requests(),
        Match::any().method("POST").path_contains("/_bulk"),
        None,
    );
    let failed = setup.sync(&config).await;
    assert_eq!(failed.errors, 1, "{:?}", failed.error_messages);
    assert!(
        failed.error_messages[0].contains("429")
            && failed.error_messages[0].contains("es_rejected_execution_exception"),
        "{:?}",
        failed.error_messages
    );
    assert_eq!(endless.applied(), 4, "max_retries: 3 means 4 attempts");
    assert_eq!((failed.added, failed.unchanged, failed.deleted), (0, 6, 0));
    assert_eq!(setup.count(), 7);

    proxy.clear_faults();
    let recovered = setup.sync(&config).await;
    assert_eq!(recovered.errors, 0, "{:?}", recovered.error_messages);
    assert_eq!(
        (recovered.added, recovered.unchanged, recovered.deleted),
        (2, 6, 1)
    );
    assert_eq!(setup.count(), 8);
}

#[tokio::test]
async fn items_that_fail_with_429_inside_a_bulk_answer_are_sent_again_alone() {
    let (_, _, proxy, setup, config) = proxied("os-items", 5, "").await;
    let throttled = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&throttled);
    proxy.inject(
        Fault::map_response(move |status, headers, body| {
            let mut answer: Value = serde_json::from_slice(&body).unwrap();
            answer["errors"] = Value::Bool(true);
            for position in [1, 3] {
                let item = &mut answer["items"][position]["index"];
                record.lock().unwrap().push(item["_id"].as_str().unwrap().to_owned());
                item["status"] = json!(429);
                item["error"] = json!({"type": "es_rejected_execution_exception", "reason": "rejected execution of coordinating operation"});
            }
            (status, headers, answer.to_string().into_bytes())
        }),
        Match::any().method("POST").path_contains("/_bulk"),
        Some(1),
    );
    let answers = observe_bulk_answers(&proxy);

    let report = setup.sync(&config).await;
    assert_eq!(report.errors, 0, "{:?}", report.error_messages);
    assert_eq!(report.added, 5);
    let retried = answers.lock().unwrap().clone();
    let mut expected = throttled.lock().unwrap().clone();
    expected.sort();
    assert_eq!(retried.len(), 1, "one retry, of the failed items only");
    let mut retried_ids = retried[0].clone();
    retried_ids.sort();
    assert_eq!(retried_ids, expected);
    assert_eq!(setup.count(), 5);
}

#[tokio::test]
async fn items_that_keep_failing_are_errors_naming_the_document() {
    let (bucket, _, proxy, setup, config) = proxied("os-item-fails", 3, "").await;
    let stubborn = DocId::of(&bucket, "doc-1.txt").to_hex();
    let target = stubborn.clone();
    let rewrites = proxy.inject(
        Fault::map_response(move |status, headers, body| {
            let mut answer: Value = serde_json::from_slice(&body).unwrap();
            for item in answer["items"].as_array_mut().unwrap() {
                let item = &mut item["index"];
                if item["_id"] == target.as_str() {
                    item["status"] = json!(429);
                    item["error"] =
                        json!({"type": "es_rejected_execution_exception", "reason": "queue full"});
                    answer["errors"] = Value::Bool(true);
                    break;
                }
            }
            (status, headers, answer.to_string().into_bytes())
        }),
        Match::any().method("POST").path_contains("/_bulk"),
        None,
    );

    let report = setup.sync(&config).await;
    assert_eq!((report.added, report.errors), (2, 1));
    assert_eq!(report.objects_listed, report.added + report.errors);
    let message = &report.error_messages[0];
    assert!(
        message.contains(&stubborn)
            && message.contains("still failing after 4 attempt(s)")
            && message.contains("429 es_rejected_execution_exception: queue full"),
        "{message}"
    );
    assert_eq!(rewrites.applied(), 4);
    // The proxy only rewrote osmem's answers: osmem itself stored all three.
    assert_eq!(setup.count(), 3);
}

#[tokio::test]
async fn connection_resets_and_slow_answers_are_retried() {
    let (bucket, s3, proxy, setup, config) =
        proxied("os-resets", 4, "  request_timeout: 1\n").await;
    let bulk = Match::any().method("POST").path_contains("/_bulk");
    let resets = proxy.inject(Fault::Reset, bulk.clone(), Some(2));
    let slow_bulk = proxy.inject(Fault::Delay(Duration::from_secs(3)), bulk, Some(1));
    let page = Match::any().method("POST").path_contains("/_search");
    let page_reset = proxy.inject(Fault::Reset, page.clone(), Some(1));
    let slow_refresh = proxy.inject(
        Fault::Delay(Duration::from_secs(3)),
        Match::any().path_contains("/_refresh"),
        Some(1),
    );

    let report = setup.sync(&config).await;
    assert_eq!(report.errors, 0, "{:?}", report.error_messages);
    assert_eq!(report.added, 4);
    assert_eq!(
        (
            resets.applied(),
            slow_bulk.applied(),
            page_reset.applied(),
            slow_refresh.applied()
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(setup.count(), 4);

    // Reading versions back goes through a reset and a slow page too.
    delete(&s3, &bucket, "doc-3.txt").await;
    proxy.clear_faults();
    proxy.inject(Fault::Reset, page.clone(), Some(1));
    proxy.inject(Fault::Delay(Duration::from_secs(3)), page, Some(1));
    let again = setup.sync(&config).await;
    assert_eq!(again.errors, 0, "{:?}", again.error_messages);
    assert_eq!((again.unchanged, again.deleted), (3, 1));
    assert_eq!(setup.count(), 3);
}

/// Makes the document of `key` in a bulk body unparsable for OpenSearch: its size becomes text.
fn corrupt_size_of(key: &str, body: Vec<u8>) -> Vec<u8> {
    let marker = format!("\"key\":{}", serde_json::to_string(key).unwrap());
    let text = String::from_utf8(body).unwrap();
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| {
            if !line.contains(&marker) {
                return line.to_owned();
            }
            let mut document: Value = serde_json::from_str(line).unwrap();
            document["size_in_bytes"] = json!("a lot");
            document.to_string()
        })
        .collect();
    lines.join("\n").into_bytes()
}

#[tokio::test]
async fn a_document_the_index_refuses_is_named_in_the_report_and_the_others_land() {
    let (bucket, s3, proxy, setup, config) = proxied("os-refused", 3, "").await;
    put(&s3, &bucket, "bad.txt", "this one is refused").await;
    proxy.inject(
        Fault::map_request(|_, _, body| corrupt_size_of("bad.txt", body)),
        Match::any().method("POST").path_contains("/_bulk"),
        None,
    );

    let report = setup.sync(&config).await;
    assert_eq!((report.added, report.errors), (3, 1));
    assert_eq!(report.objects_listed, 4);
    let bad = DocId::of(&bucket, "bad.txt");
    let message = &report.error_messages[0];
    assert!(
        message.contains(&format!("document {bad} was rejected by the index"))
            && message.contains("400 mapper_parsing_exception")
            && message.contains("size_in_bytes"),
        "{message}"
    );
    assert_eq!(setup.count(), 3);
    assert!(setup.doc(&bucket, "bad.txt").is_none());
    assert!(setup.doc(&bucket, "doc-2.txt").is_some());

    // Without the fault the next sync writes it, and only it.
    proxy.clear_faults();
    let retried = setup.sync(&config).await;
    assert_eq!(retried.errors, 0, "{:?}", retried.error_messages);
    assert_eq!((retried.added, retried.unchanged), (1, 3));
    assert_eq!(setup.count(), 4);
}

/// A setup whose index already exists on the shared osmem, created with `body`.
fn setup_with_existing_index(body: &str) -> (&'static OsmemServer, Setup, String) {
    let osmem = OsmemServer::shared();
    let setup = Setup::opensearch(&osmem.url(), "");
    let index = setup.index_name().unwrap().to_owned();
    osmem.json("PUT", &format!("/{index}"), body);
    (osmem, setup, index)
}

/// The mapping osmem holds for `index`.
fn mapping_of(osmem: &OsmemServer, index: &str) -> Value {
    osmem.json("GET", &format!("/{index}/_mapping"), "")[index]["mappings"].clone()
}

#[tokio::test]
async fn an_index_with_a_conflicting_mapping_is_reported_and_left_unchanged() {
    let (osmem, setup, index) = setup_with_existing_index(
        r#"{"mappings":{"properties":{"bucket":{"type":"text"},"size_in_bytes":{"type":"keyword"},"title":{"type":"text"}}}}"#,
    );
    osmem.json(
        "POST",
        &format!("/{index}/_doc/theirs?refresh=wait_for"),
        r#"{"bucket":"someone else's","size_in_bytes":"12"}"#,
    );
    let before = mapping_of(osmem, &index);

    let error = match setup.open_sink().await {
        Ok(sink) => panic!("opened an index with a conflicting mapping: {sink:?}"),
        Err(error) => error.to_string(),
    };
    for expected in [
        format!("the OpenSearch index {index} already exists with a mapping that conflicts"),
        "maps field `bucket` as text, s3-connector needs keyword".to_owned(),
        "maps field `size_in_bytes` as keyword, s3-connector needs long".to_owned(),
        "nothing was written".to_owned(),
    ] {
        assert!(
            error.contains(&expected),
            "missing {expected:?} in: {error}"
        );
    }
    assert!(!error.contains("`title`"), "{error}");

    // The CLI says the same and exits 1.
    let (bucket, _s3) = seeded_bucket("os-conflict", 1).await;
    let config = setup.dir.path().join("conflict.yml");
    std::fs::write(
        &config,
        setup.config_text(&MotoServer::shared().endpoint(), &[&bucket], ""),
    )
    .unwrap();
    let output = run(&["sync", "--config", config.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("maps field `bucket` as text"),
        "{}",
        text(&output.stderr)
    );

    assert_eq!(
        mapping_of(osmem, &index),
        before,
        "the mapping was not changed"
    );
    let count = osmem.json("GET", &format!("/{index}/_count"), "");
    assert_eq!(count["count"], 1, "only the foreign document is there");
}

#[tokio::test]
async fn an_existing_index_without_our_fields_gets_them_and_keeps_its_own() {
    let (osmem, setup, index) = setup_with_existing_index(
        r#"{"settings":{"number_of_replicas":0},"mappings":{"properties":{"team":{"type":"keyword"}}}}"#,
    );
    let (bucket, _s3) = seeded_bucket("os-additive", 2).await;
    let report = setup
        .sync(&setup.config(&MotoServer::shared().endpoint(), &[&bucket], ""))
        .await;
    assert_eq!(
        (report.added, report.errors),
        (2, 0),
        "{:?}",
        report.error_messages
    );
    let mapping = mapping_of(osmem, &index);
    assert_eq!(mapping["properties"]["team"]["type"], "keyword");
    assert_eq!(mapping["properties"]["bucket"]["type"], "keyword");
    assert_eq!(
        mapping["properties"]["key"]["fields"]["text"]["type"],
        "text"
    );
    assert_eq!(setup.count(), 2);
}

#[tokio::test]
async fn an_index_page_that_fails_is_asked_for_again_alone() {
    let (bucket, s3, proxy, setup, config) = proxied("os-page-retry", 3, "").await;
    assert_eq!(setup.sync(&config).await.added, 3);

    // The next search (the first page of the bucket's documents) is reset once.
    let reset = proxy.inject(
        Fault::Reset,
        Match::any().method("POST").path_contains("/_search"),
        Some(1),
    );
    delete(&s3, &bucket, "doc-0.txt").await;
    proxy.clear_log();
    let report = setup.sync(&config).await;
    assert_eq!(report.errors, 0, "{:?}", report.error_messages);
    assert_eq!((report.unchanged, report.deleted), (2, 1));
    assert_eq!(reset.applied(), 1);
    assert_eq!(report.index_retries, 1);
    assert_eq!(setup.count(), 2);
}

/// A document as the sync would write it, for tests that write to a sink directly.
fn document(bucket: &str, key: &str, body: &str) -> Document {
    Document {
        id: DocId::of(bucket, key),
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        filename: key.rsplit('/').next().unwrap().to_owned(),
        extension: ".txt".to_owned(),
        size_in_bytes: body.len() as u64,
        last_modified: OffsetDateTime::from_unix_timestamp(1_700_000_000 + key.len() as i64)
            .unwrap(),
        etag: format!("\"{:x}\"", body.len()),
        content_type: Some("text/plain".to_owned()),
        storage_class: Some("STANDARD".to_owned()),
        url: format!("s3://{bucket}/{key}"),
        title: None,
        body: Some(body.to_owned()),
        content_status: ContentStatus::Extracted,
        extraction_error: None,
        indexed_at: OffsetDateTime::now_utc(),
        attributes: Default::default(),
        passages: Vec::new(),
        embedding_error: None,
    }
}

#[tokio::test]
async fn documents_are_read_in_key_byte_order_a_page_at_a_time_and_buckets_page_by_page() {
    let proxy = FaultProxy::start(&OsmemServer::shared().url());
    let setup = Setup::opensearch(&proxy.endpoint(), "  bulk_max_docs: 1000\n");
    let sink = setup.opensearch_sink().await;
    // More documents than one page, keys whose UTF-8 byte order differs from their UTF-16
    // order ("｡" U+FF61 before "😀" U+1F600), and more buckets than one page of buckets.
    let mut keys: Vec<String> = (0..2345).map(|n| format!("part-{n}.txt")).collect();
    keys.extend(
        [
            "😀.txt",
            "｡.txt",
            "é.txt",
            "Z.txt",
            "a b+c%.txt",
            "part-1.txt/x",
        ]
        .map(str::to_owned),
    );
    let big: Vec<Document> = keys
        .iter()
        .enumerate()
        .map(|(n, key)| document("big", key, &"x".repeat(n % 50)))
        .collect();
    let singles: Vec<Document> = (0..1001)
        .map(|n| document(&format!("single-{n:04}"), "only.txt", "one"))
        .collect();
    for batch in big.chunks(1000).chain(singles.chunks(1000)) {
        assert!(sink.upsert(batch.to_vec()).await.unwrap().is_empty());
    }
    sink.commit().await.unwrap();
    let expected: std::collections::HashMap<DocId, VersionStamp> =
        big.iter().map(|d| (d.id, d.version())).collect();
    let mut expected_buckets: Vec<String> = singles.iter().map(|d| d.bucket.clone()).collect();
    expected_buckets.push("big".to_owned());
    expected_buckets.sort();

    proxy.clear_log();
    let mut found = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = sink
            .indexed_page("big", ScanFrom::after(after.as_deref()), 1000)
            .await
            .unwrap();
        found.extend(
            page.iter()
                .map(|entry| (entry.key.clone(), entry.id, entry.version)),
        );
        if page.len() < 1000 {
            break;
        }
        after = page.last().map(|entry| entry.key.clone());
    }
    let searches = proxy
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path_and_query.ends_with("/_search"))
        .count();
    assert_eq!(searches, 3, "2351 documents in pages of 1000");
    keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let found_keys: Vec<&str> = found.iter().map(|(key, _, _)| key.as_str()).collect();
    assert_eq!(found_keys, keys);
    let found_versions: std::collections::HashMap<DocId, VersionStamp> = found
        .iter()
        .map(|(_, id, version)| (*id, *version))
        .collect();
    assert_eq!(found_versions, expected);

    // From a key on (where a prefix shard resumes past another shard's folder): the key itself
    // when present, else the next in byte order.
    for (first, expected) in [
        ("part-1.txt/x", vec!["part-1.txt/x", "part-10.txt"]),
        ("part-1.txt0", vec!["part-10.txt", "part-100.txt"]),
        ("｡", vec!["｡.txt", "😀.txt"]),
        ("😀0", vec![]),
    ] {
        let page = sink
            .indexed_page("big", ScanFrom::AtLeast(first), 2)
            .await
            .unwrap();
        let found: Vec<&str> = page.iter().map(|entry| entry.key.as_str()).collect();
        assert_eq!(found, expected, "at least {first:?}");
    }

    assert_eq!(sink.indexed_buckets().await.unwrap(), expected_buckets);
    let collect = |bucket: &'static str| s3_connector::sink::collect_versions(&sink, bucket);
    assert_eq!(collect("big").await.unwrap(), expected);
    assert_eq!(collect("single-0007").await.unwrap().len(), 1);
    assert!(collect("absent").await.unwrap().is_empty());
}

#[tokio::test]
async fn bulk_requests_respect_count_and_byte_limits_and_halve_on_413() {
    let proxy = FaultProxy::start(&OsmemServer::shared().url());
    let setup = Setup::opensearch(
        &proxy.endpoint(),
        "  bulk_max_docs: 4\n  bulk_max_bytes: 2048\n  bulk_concurrency: 3\n",
    );
    let sink = setup.opensearch_sink().await;
    let answers = observe_bulk_answers(&proxy);
    let mut documents: Vec<Document> = (0..10)
        .map(|n| document("limits", &format!("small-{n}.txt"), "tiny"))
        .collect();
    documents.push(document("limits", "huge.txt", &"y".repeat(5000)));
    assert!(sink.upsert(documents).await.unwrap().is_empty());
    for request in proxy
        .requests()
        .iter()
        .filter(|r| r.path_and_query.contains("_bulk"))
    {
        let length: usize = request.header("content-length").unwrap().parse().unwrap();
        assert!(
            length <= 2048 || length > 5000,
            "{length} bytes in one request"
        );
    }
    let per_request = sizes(&answers);
    assert!(per_request.iter().all(|n| *n <= 4), "{per_request:?}");
    assert_eq!(per_request.iter().sum::<usize>(), 11);
    assert!(
        per_request.contains(&1),
        "the huge document goes alone: {per_request:?}"
    );

    // A cluster that finds a request too large: it is halved until it fits.
    proxy.clear_faults();
    proxy.inject(
        Fault::json(413, r#"{"error":"Request Entity Too Large","status":413}"#),
        Match::any().method("POST").path_contains("/_bulk"),
        Some(1),
    );
    let answers = observe_bulk_answers(&proxy);
    let documents: Vec<Document> = (0..4)
        .map(|n| document("halves", &format!("h-{n}.txt"), "half"))
        .collect();
    assert!(sink.upsert(documents).await.unwrap().is_empty());
    assert_eq!(sizes(&answers), [2, 2]);

    // A single document it never accepts is rejected by name; the others land.
    proxy.clear_faults();
    let lone = document("halves", "too-big.txt", "big");
    proxy.inject(
        Fault::json(413, r#"{"error":"Request Entity Too Large","status":413}"#),
        Match::any().method("POST").path_contains("/_bulk"),
        Some(2),
    );
    let rejected = sink
        .upsert(vec![lone.clone(), document("halves", "fine.txt", "fine")])
        .await
        .unwrap();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].0, lone.id);
    assert!(
        rejected[0].1.contains("larger than the cluster accepts"),
        "{rejected:?}"
    );
    sink.commit().await.unwrap();
    assert_eq!(setup.count(), 16);
}

#[tokio::test]
async fn the_cli_syncs_and_searches_with_basic_auth_and_never_shows_the_password() {
    const PASSWORD: &str = "os-pa55-DO-NOT-LEAK";
    // Not `proxied`: the password variable is set for the CLI only, not in this process.
    let (bucket, _s3) = seeded_bucket("os-cli", 2).await;
    let proxy = FaultProxy::start(&OsmemServer::shared().url());
    let password_from_env = "  username: admin\n  password: ${S3C_TEST_OS_PASSWORD}\n";
    let setup = Setup::opensearch(&proxy.endpoint(), password_from_env);
    let config = setup.dir.path().join("cli.yml");
    std::fs::write(
        &config,
        setup.config_text(&MotoServer::shared().endpoint(), &[&bucket], ""),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let envs = [("S3C_TEST_OS_PASSWORD", PASSWORD)];
    let search = |query: &str| {
        let output = run(
            &[
                "search",
                "--config",
                config,
                "--connector",
                "c",
                "--json",
                query,
            ],
            &envs,
        );
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        let hits: Vec<Value> = text(&output.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        (hits, output)
    };

    let output = run(
        &["sync", "--config", config, "--json", "--log-level", "debug"],
        &envs,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let report: Value = serde_json::from_str(text(&output.stdout).trim()).unwrap();
    assert_eq!(
        (report["added"].as_u64(), report["errors"].as_u64()),
        (Some(2), Some(0))
    );
    let mut outputs = vec![output];

    let (hits, output) = search("1");
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["key"], "doc-1.txt");
    assert_eq!(hits[0]["bucket"], bucket.as_str());
    assert_eq!(hits[0]["id"], DocId::of(&bucket, "doc-1.txt").to_hex());
    assert!(hits[0]["score"].as_f64().unwrap() > 0.0);
    outputs.push(output);
    // A stray quote is a typo, not an error; field:value works as on the embedded index.
    let (hits, output) = search("\"1");
    assert_eq!(hits.len(), 1, "{hits:?}");
    outputs.push(output);
    let (hits, output) = search("key:\"doc-0.txt\"");
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["key"], "doc-0.txt");
    outputs.push(output);

    let requests = proxy.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        let header = request.header("authorization").unwrap_or_default();
        let credentials = header.strip_prefix("Basic ").map(base64_decode);
        assert_eq!(
            credentials,
            Some(Ok(format!("admin:{PASSWORD}").into_bytes())),
            "{} {}",
            request.method,
            request.path_and_query
        );
    }
    for output in outputs {
        let all_output = format!("{}{}", text(&output.stdout), text(&output.stderr));
        assert!(!all_output.contains(PASSWORD), "{all_output}");
    }
}

#[tokio::test]
async fn sigv4_signs_every_request_for_the_configured_service_and_region() {
    let proxy = FaultProxy::start(&OsmemServer::shared().url());
    let setup = Setup::opensearch(
        &proxy.endpoint(),
        "  aws_sigv4: {region: eu-west-1, service: aoss}\n",
    );
    let config = setup.dir.path().join("sigv4.yml");
    std::fs::write(
        &config,
        setup.config_text(&MotoServer::shared().endpoint(), &["unused-bucket"], ""),
    )
    .unwrap();
    let output = run(
        &[
            "search",
            "--config",
            config.to_str().unwrap(),
            "--connector",
            "c",
            "anything",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDS3CSIGV4TEST"),
            ("AWS_SECRET_ACCESS_KEY", "sigv4-secret-DO-NOT-LEAK"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/nonexistent"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
        ],
    );
    // The index was never synced: `search` reads whether it exists, says it does not, and
    // creates nothing.
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("does not exist yet"));
    let requests = proxy.requests();
    assert!(!requests.is_empty(), "the existence check was sent");
    assert!(
        requests.iter().all(|r| r.method == "GET"),
        "search creates nothing: {requests:?}"
    );
    for request in &requests {
        let authorization = request.header("authorization").unwrap_or_default();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDS3CSIGV4TEST/")
                && authorization.contains("/eu-west-1/aoss/aws4_request"),
            "{} {}: {authorization}",
            request.method,
            request.path_and_query
        );
        assert!(request.header("x-amz-content-sha256").is_some());
        assert!(request.header("x-amz-date").is_some());
    }
}

#[tokio::test]
async fn tls_trusts_the_configured_ca_refuses_other_certificates_at_once_and_can_be_turned_off() {
    let tls = TlsFront::start(&OsmemServer::shared().url());
    let (bucket, _s3) = seeded_bucket("os-tls", 2).await;
    let s3 = MotoServer::shared().endpoint();
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = ca_dir.path().join("ca.pem");
    std::fs::write(&ca, tls.ca_pem()).unwrap();

    let trusted = Setup::opensearch(
        &tls.endpoint(),
        &format!("  ca_cert: {:?}\n", ca.display().to_string()),
    );
    let report = trusted.sync(&trusted.config(&s3, &[&bucket], "")).await;
    assert_eq!(
        (report.added, report.errors),
        (2, 0),
        "{:?}",
        report.error_messages
    );
    assert_eq!(trusted.count(), 2);
    assert!(tls.handshakes_completed() >= 1);

    // A certificate the client does not trust is the same on the next try: one handshake, no
    // retries, and a message that says what is wrong.
    let untrusted = Setup::opensearch(&tls.endpoint(), "");
    let before = tls.handshakes_started();
    let error = match untrusted.open_sink().await {
        Ok(sink) => panic!("connected without trusting the CA: {sink:?}"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("certificate"), "{error}");
    assert!(error.contains(&tls.endpoint()), "{error}");
    assert_eq!(tls.handshakes_started() - before, 1, "{error}");

    let insecure = Setup::opensearch(&tls.endpoint(), "  tls_insecure_skip_verify: true\n");
    let report = insecure.sync(&insecure.config(&s3, &[&bucket], "")).await;
    assert_eq!(
        (report.added, report.errors),
        (2, 0),
        "{:?}",
        report.error_messages
    );
    assert_eq!(insecure.count(), 2);
}

// Passages and vectors (#24). osmem-server stores knn_vector mappings and vectors and checks
// their dimension, but refuses every vector search and has no search pipelines: the requests of
// semantic and hybrid search are checked against OpenSearch's documented shapes in the unit
// tests of `sink::opensearch::retrieval`, and only their refusal is tested here.

/// `document` with a body of `pieces` joined by spaces, each piece a passage, with the
/// embedder's vector when there is one.
pub(crate) fn with_passages(
    bucket: &str,
    key: &str,
    pieces: &[&str],
    embedder: Option<&WordHashEmbedder>,
) -> Document {
    let body = pieces.join(" ");
    let mut document = document(bucket, key, &body);
    let mut start = 0;
    for (ordinal, piece) in pieces.iter().enumerate() {
        document.passages.push(StoredPassage {
            passage: Passage {
                ordinal: ordinal as u32,
                start,
                end: start + piece.len(),
                heading: None,
                page: None,
                text: (*piece).to_owned(),
                content_hash: PassageHash::of(piece),
            },
            vector: embedder.map(|embedder| embedder.vector(piece)),
        });
        start += piece.len() + 1;
    }
    document
}

/// The bucket of the vector tests' documents.
const VECTORS: &str = "vectors";

/// A passage query of `mode` for `text`, fused by default, at most 10 hits.
pub(crate) fn query(text: &str, mode: SearchMode, vector: Option<Vec<f32>>) -> PassageQuery {
    PassageQuery {
        text: text.to_owned(),
        vector,
        mode,
        fusion: Fusion::default(),
        limit: 10,
    }
}

#[tokio::test]
async fn passages_and_vectors_live_beside_their_documents_and_scans_never_see_them() {
    let osmem = OsmemServer::shared();
    let setup = Setup::opensearch(&osmem.url(), "");
    let index = setup.index_name().unwrap().to_owned();
    let sink = setup.opensearch_sink().await;
    let embedder = WordHashEmbedder::new(8);

    // The model is recorded in the passage index, created for its vectors with k-NN on.
    assert_eq!(sink.recorded_model().await.unwrap(), None);
    sink.record_model(embedder.model()).await.unwrap();
    assert_eq!(
        sink.recorded_model().await.unwrap().as_ref(),
        Some(embedder.model())
    );
    let companion = format!("{index}-passages");
    assert_eq!(sink.passage_index(), companion);
    let vector = &mapping_of(osmem, &companion)["properties"]["vector"];
    assert_eq!(vector["type"], "knn_vector");
    assert_eq!(vector["dimension"], 8);
    assert_eq!(vector["method"]["space_type"], "cosinesimil");
    let settings = osmem.json("GET", &format!("/{companion}/_settings"), "");
    assert_eq!(settings[&companion]["settings"]["index"]["knn"], "true");

    let bucket = "passages";
    let a = with_passages(
        bucket,
        "a.txt",
        &[
            "Turbine blades crack under heat.",
            "Cooling air keeps them whole.",
        ],
        Some(&embedder),
    );
    let b = document(bucket, "b.txt", "");
    let mut c = with_passages(bucket, "c.txt", &["Embedding failed here.", "Twice."], None);
    c.embedding_error = Some("the endpoint answered 500".to_owned());
    let rejected = sink
        .upsert(vec![a.clone(), b.clone(), c.clone()])
        .await
        .unwrap();
    assert_eq!(rejected, []);
    sink.commit().await.unwrap();

    // The document index holds documents only; one whose embedding failed is unfinished.
    assert_eq!(sink.count().await.unwrap(), 3);
    let page = sink
        .indexed_page(bucket, ScanFrom::Start, 100)
        .await
        .unwrap();
    let scanned: Vec<(&str, VersionStamp)> = page
        .iter()
        .map(|entry| (entry.key.as_str(), entry.version))
        .collect();
    assert_eq!(
        scanned,
        [
            ("a.txt", a.version()),
            ("b.txt", b.version()),
            ("c.txt", VersionStamp::UNFINISHED)
        ]
    );
    assert_eq!(
        sink.indexed_version(c.id).await.unwrap(),
        Some(VersionStamp::UNFINISHED)
    );
    assert_eq!(sink.indexed_version(a.id).await.unwrap(), Some(a.version()));
    assert_eq!(sink.indexed_buckets().await.unwrap(), [bucket]);
    let stored_c = sink.get(c.id).await.unwrap().unwrap();
    assert_eq!(stored_c.embedding_error, c.embedding_error);
    let ids = [a.id.to_hex(), b.id.to_hex(), c.id.to_hex()];
    for hit in sink.search("turbine OR embedding", 10).await.unwrap() {
        assert!(
            ids.contains(&hit.id),
            "a passage in a document search: {hit:?}"
        );
    }

    // Passages and vectors read back as written; failed embeddings keep their text only.
    assert_eq!(sink.passages(a.id).await.unwrap(), a.passages);
    let vectors: Vec<(PassageHash, Vec<f32>)> = a
        .passages
        .iter()
        .map(|stored| (stored.passage.content_hash, stored.vector.clone().unwrap()))
        .collect();
    assert_eq!(sink.passage_vectors(a.id).await.unwrap(), vectors);
    assert_eq!(sink.passage_vectors(c.id).await.unwrap(), []);
    assert_eq!(sink.passages(c.id).await.unwrap(), c.passages);
    assert_eq!(sink.passages(b.id).await.unwrap(), []);

    // An upsert replaces a document's passages: fewer passages leave no old one behind.
    let a2 = with_passages(bucket, "a.txt", &["One passage now."], Some(&embedder));
    assert_eq!(sink.upsert(vec![a2.clone()]).await.unwrap(), []);
    sink.commit().await.unwrap();
    assert_eq!(sink.passages(a.id).await.unwrap(), a2.passages);

    // A delete takes the passages with the document.
    sink.delete(vec![a.id, c.id]).await.unwrap();
    sink.commit().await.unwrap();
    assert_eq!(sink.passages(a.id).await.unwrap(), []);
    assert_eq!(sink.passages(c.id).await.unwrap(), []);
    assert_eq!(sink.count().await.unwrap(), 1);
    let left = osmem.json("GET", &format!("/{companion}/_count"), "");
    assert_eq!(left["count"], 0);
}

#[tokio::test]
async fn keyword_passage_search_finds_passages_stemmed_and_filtered_and_documents_without_them() {
    let osmem = OsmemServer::shared();
    let setup = Setup::opensearch(&osmem.url(), "");
    let sink = setup.opensearch_sink().await;
    let embedder = WordHashEmbedder::new(8);
    let bucket = "keyword";
    let mut a = with_passages(
        bucket,
        "blades.txt",
        &[
            "Turbine blades crack under heat.",
            "Cooling air keeps the blades whole.",
        ],
        Some(&embedder),
    );
    a.attributes
        .metadata
        .insert("author".to_owned(), "Alice".to_owned());
    let runners = with_passages(
        bucket,
        "runners.txt",
        &["The runners were running quickly."],
        Some(&embedder),
    );
    // A document without passages (synced before embeddings, or without text) is found whole.
    let whole = document(bucket, "turbine-manual.txt", "turbine manual");
    let rejected = sink
        .upsert(vec![a.clone(), runners.clone(), whole.clone()])
        .await
        .unwrap();
    assert_eq!(rejected, []);
    sink.commit().await.unwrap();

    let search = async |text: &str| {
        sink.search_passages(&query(text, SearchMode::Keyword, None))
            .await
            .unwrap()
    };
    let hits = search("turbine").await;
    let found: Vec<(DocId, Option<u32>)> = hits
        .iter()
        .map(|hit| (hit.id, hit.passage.as_ref().map(|span| span.ordinal)))
        .collect();
    assert!(found.contains(&(a.id, Some(0))), "{found:?}");
    assert!(found.contains(&(whole.id, None)), "{found:?}");
    assert!(
        !found.contains(&(a.id, None)),
        "a document with passages is found through them: {found:?}"
    );
    let passage_hit = hits.iter().find(|hit| hit.id == a.id).unwrap();
    assert_eq!(passage_hit.key, "blades.txt");
    assert_eq!(passage_hit.bucket, bucket);
    let span = passage_hit.passage.as_ref().unwrap();
    assert_eq!((span.start, span.end), (0, 32));
    // Its whole text, read from the passage index (the keyword answer leaves `body` out, so
    // that whole documents' bodies are never sent); the whole document has none.
    assert_eq!(span.text, "Turbine blades crack under heat.");
    let whole_hit = hits.iter().find(|hit| hit.id == whole.id).unwrap();
    assert_eq!(whole_hit.passage, None);
    assert!(whole_hit.snippet.is_some(), "{whole_hit:?}");
    let snippet = passage_hit.snippet.as_ref().unwrap();
    assert!(snippet.text.contains("Turbine blades"), "{snippet:?}");
    for [start, end] in &snippet.highlights {
        assert!(start < end && *end <= snippet.text.len(), "{snippet:?}");
    }

    // English stemming: "run" finds "running".
    let stemmed: Vec<DocId> = search("run").await.iter().map(|hit| hit.id).collect();
    assert!(stemmed.contains(&runners.id), "{stemmed:?}");
    // Filters narrow passages as they narrow documents.
    let filtered = search("blades meta.author:alice").await;
    assert!(!filtered.is_empty());
    assert!(filtered.iter().all(|hit| hit.id == a.id), "{filtered:?}");
    let excluded = search("blades -meta.author:alice").await;
    assert!(excluded.iter().all(|hit| hit.id != a.id), "{excluded:?}");
    // Every passage hit of every search carries its own text.
    for hit in search("blades OR runners OR cooling").await {
        if let Some(span) = &hit.passage {
            let document = [&a, &runners].into_iter().find(|d| d.id == hit.id).unwrap();
            assert_eq!(
                span.text,
                document.body.as_deref().unwrap()[span.start..span.end],
                "{hit:?}"
            );
        }
    }
}

#[tokio::test]
async fn vector_searches_the_cluster_refuses_are_errors_naming_the_index_never_keyword_answers() {
    let osmem = OsmemServer::shared();
    let setup = Setup::opensearch(&osmem.url(), "");
    let index = setup.index_name().unwrap().to_owned();
    let sink = setup.opensearch_sink().await;
    let embedder = WordHashEmbedder::new(8);
    let vector = embedder.vector("turbine blades");

    // Before any vector: nothing to search by meaning.
    let error = sink
        .search_passages(&query(
            "turbine",
            SearchMode::Semantic,
            Some(vector.clone()),
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("holds no passage vectors"), "{error}");
    assert!(error.contains("--mode keyword"), "{error}");

    let a = with_passages(VECTORS, "a.txt", &["Turbine blades."], Some(&embedder));
    assert_eq!(sink.upsert(vec![a]).await.unwrap(), []);
    sink.commit().await.unwrap();

    // osmem answers 400 to knn and has no search pipeline: semantic and hybrid (fused in the
    // client for want of a pipeline) both fail, saying why and what to do instead.
    for mode in [SearchMode::Semantic, SearchMode::Hybrid] {
        let error = sink
            .search_passages(&query("turbine", mode, Some(vector.clone())))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains(&format!("{index}-passages")), "{error}");
        assert!(error.contains("refused"), "{error}");
        assert!(error.contains("k-NN plugin"), "{error}");
        assert!(error.contains("--mode keyword"), "{error}");
    }
    // A query vector of another length, or none, is refused before any request.
    for vector in [Some(vec![1.0; 3]), None] {
        let error = sink
            .search_passages(&query("turbine", SearchMode::Semantic, vector))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("vector"), "{error}");
    }
    // Keyword search still answers.
    let hits = sink
        .search_passages(&query("turbine", SearchMode::Keyword, None))
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
}

#[tokio::test]
async fn a_passage_index_without_knn_is_a_clear_error_and_a_new_model_dimension_rebuilds_it() {
    let osmem = OsmemServer::shared();
    let setup = Setup::opensearch(&osmem.url(), "");
    let index = setup.index_name().unwrap().to_owned();
    let companion = format!("{index}-passages");
    // Someone created the passage index without k-NN.
    osmem.json(
        "PUT",
        &format!("/{companion}"),
        r#"{"mappings":{"properties":{"parent":{"type":"keyword"}}}}"#,
    );
    let sink = setup.opensearch_sink().await;
    let embedder = WordHashEmbedder::new(8);
    let a = with_passages(VECTORS, "a.txt", &["Turbine blades."], Some(&embedder));
    let error = sink.upsert(vec![a.clone()]).await.unwrap_err().to_string();
    assert!(error.contains(&companion), "{error}");
    assert!(error.contains("index.knn: true"), "{error}");
    assert!(error.contains(&format!("DELETE /{companion}")), "{error}");
    assert!(error.contains("--reembed"), "{error}");
    sink.commit().await.unwrap();
    assert_eq!(
        sink.count().await.unwrap(),
        0,
        "no document without its passages"
    );

    // Deleted as the message says, the next write creates it with k-NN.
    osmem.json("DELETE", &format!("/{companion}"), "");
    let sink = setup.opensearch_sink().await;
    sink.record_model(embedder.model()).await.unwrap();
    assert_eq!(sink.upsert(vec![a.clone()]).await.unwrap(), []);
    sink.commit().await.unwrap();
    assert_eq!(sink.passages(a.id).await.unwrap(), a.passages);

    // A model of another dimension (a --reembed) rebuilds the passage index for it; vectors
    // of the old length are then refused per document, naming both lengths.
    let wider = WordHashEmbedder::new(16);
    let mut model = wider.model().clone();
    model.id = "test:wider".to_owned();
    sink.record_model(&model).await.unwrap();
    assert_eq!(sink.recorded_model().await.unwrap(), Some(model));
    assert_eq!(
        mapping_of(osmem, &companion)["properties"]["vector"]["dimension"],
        16
    );
    assert_eq!(sink.passages(a.id).await.unwrap(), []);
    let rejected = sink.upsert(vec![a.clone()]).await.unwrap();
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0].1.contains("16 dimensions"), "{rejected:?}");
    assert!(rejected[0].1.contains("have 8"), "{rejected:?}");
    let b = with_passages(VECTORS, "b.txt", &["Wider vectors."], Some(&wider));
    assert_eq!(sink.upsert(vec![b.clone()]).await.unwrap(), []);
    sink.commit().await.unwrap();
    assert_eq!(sink.passages(b.id).await.unwrap(), b.passages);
}

#[tokio::test]
async fn a_write_that_fails_after_the_passages_leaves_the_document_to_the_next_sync() {
    let proxy = FaultProxy::start(&OsmemServer::shared().url());
    let setup = Setup::opensearch(&proxy.endpoint(), "");
    let index = setup.index_name().unwrap().to_owned();
    let sink = setup.opensearch_sink().await;
    let embedder = WordHashEmbedder::new(8);
    let old = with_passages(
        VECTORS,
        "a.txt",
        &["Old one.", "Old two.", "Old three."],
        Some(&embedder),
    );
    assert_eq!(sink.upsert(vec![old.clone()]).await.unwrap(), []);
    sink.commit().await.unwrap();

    // The object changed; the passages land, then the document's own bulk request fails (as
    // if the process died between them).
    let mut new = with_passages(VECTORS, "a.txt", &["New text."], Some(&embedder));
    new.etag = "\"changed\"".to_owned();
    let failing = proxy.inject(
        Fault::status(500),
        Match::any()
            .method("POST")
            .path_contains(&format!("/{index}/_bulk")),
        None,
    );
    assert!(sink.upsert(vec![new.clone()]).await.is_err());
    sink.commit().await.unwrap();
    assert_eq!(failing.applied(), 1);
    // The document still says the old version, so the next sync does the object again...
    assert_eq!(
        sink.indexed_version(old.id).await.unwrap(),
        Some(old.version())
    );
    assert_ne!(old.version(), new.version());
    // A new object whose document write fails after its passages: they are orphans until
    // the next sync writes the document, and no search shows them meanwhile.
    let orphan = with_passages(VECTORS, "new.txt", &["Orphan text."], Some(&embedder));
    assert!(sink.upsert(vec![orphan.clone()]).await.is_err());
    sink.commit().await.unwrap();
    assert_eq!(sink.passages(orphan.id).await.unwrap(), orphan.passages);
    let hits = sink
        .search_passages(&query("orphan OR new", SearchMode::Keyword, None))
        .await
        .unwrap();
    let found: Vec<DocId> = hits.iter().map(|hit| hit.id).collect();
    assert_eq!(found, [old.id], "{hits:?}");
    // ...and then documents and passages agree.
    proxy.clear_faults();
    assert_eq!(sink.upsert(vec![new.clone()]).await.unwrap(), []);
    sink.commit().await.unwrap();
    assert_eq!(
        sink.indexed_version(new.id).await.unwrap(),
        Some(new.version())
    );
    assert_eq!(sink.passages(new.id).await.unwrap(), new.passages);
}
