//! End-to-end sync scenarios against moto, run on every sink: each scenario is a function of the
//! [`Backend`], and [`sync_scenarios!`] declares one test per scenario for a backend. Here they run
//! on the embedded index and on osmem-server; `opensearch_real.rs` runs them on a real cluster.

use aws_sdk_s3::types::StorageClass;
use s3_connector::sink::ContentStatus;

use crate::fixture::{self, Backend, Setup, create_bucket, delete, put, put_with_class, s3_client};
use crate::support::{Fault, FaultProxy, Match, MotoServer, RecordedRequest, unique_name};

/// Object GETs of `bucket` among recorded requests (not listings, not bucket-level calls).
fn object_gets<'a>(requests: &'a [RecordedRequest], bucket: &str) -> Vec<&'a RecordedRequest> {
    let prefix = format!("/{bucket}/");
    requests
        .iter()
        .filter(|r| {
            r.method == "GET" && r.path().starts_with(&prefix) && r.path().len() > prefix.len()
        })
        .collect()
}

pub(crate) async fn first_sync_indexes_everything_and_an_unchanged_resync_downloads_nothing(
    backend: Backend,
) {
    let moto = MotoServer::start();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_name("first-sync");
    create_bucket(&s3, &bucket).await;
    let objects: &[(&str, &[u8])] = &[
        ("docs/readme.txt", b"alpha bravo"),
        ("docs/page.html", b"<html><head><title>Charlie page</title></head><body><p>delta</p><script>var hidden=1</script></body></html>"),
        ("with space/file one.txt", b"echo foxtrot"),
        ("unicode/\u{e9}t\u{e9} \u{2603}.txt", b"golf hotel"),
        ("plus+sign.txt", b"india juliet"),
        ("percent%20literal.txt", b"kilo lima"),
        ("empty.txt", b""),
        ("image.jpg", &[0xff, 0xd8, 0xff, 0xe0, 0, 16]),
        ("data/records.json", br#"{"name": "mike", "tags": ["november"]}"#),
    ];
    for (key, body) in objects {
        put(&s3, &bucket, key, *body).await;
    }
    let setup = Setup::for_backend(&backend);
    let config = setup.config(&endpoint, &[&bucket], "");

    moto.start_recording();
    let first = setup.sync(&config).await;
    moto.stop_recording();
    let first_requests = moto.recorded_requests();
    assert_eq!(first.errors, 0, "{:?}", first.error_messages);
    assert_eq!(first.objects_listed, 9);
    assert_eq!(first.added, 9);
    assert_eq!(
        first.metadata_only, 1,
        "the jpg is indexed with metadata only"
    );
    assert_eq!(
        object_gets(&first_requests, &bucket).len(),
        7,
        "neither the empty object nor the unsupported jpg is downloaded"
    );
    assert_eq!(setup.count(), 9);

    for (key, _) in objects {
        let doc = setup
            .doc(&bucket, key)
            .unwrap_or_else(|| panic!("{key} is indexed"));
        assert_eq!(doc.key, *key);
        assert_eq!(doc.url, format!("s3://{bucket}/{key}"));
        assert_eq!(doc.filename, key.rsplit('/').next().unwrap());
    }
    let readme = setup.doc(&bucket, "docs/readme.txt").unwrap();
    assert_eq!(readme.body.as_deref(), Some("alpha bravo"));
    assert_eq!(readme.content_status, ContentStatus::Extracted);
    assert_eq!(readme.extension, ".txt");
    assert_eq!(readme.size_in_bytes, 11);
    let page = setup.doc(&bucket, "docs/page.html").unwrap();
    assert_eq!(page.title.as_deref(), Some("Charlie page"));
    assert!(page.body.as_deref().unwrap().contains("delta"));
    assert!(
        !page.body.as_deref().unwrap().contains("hidden"),
        "scripts are stripped"
    );
    let image = setup.doc(&bucket, "image.jpg").unwrap();
    assert_eq!(image.content_status, ContentStatus::Unsupported);
    assert_eq!(image.body, None);
    let empty = setup.doc(&bucket, "empty.txt").unwrap();
    assert_eq!(empty.content_status, ContentStatus::Extracted);
    assert_eq!(empty.size_in_bytes, 0);

    let hits = setup.search("juliet", 5).await;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].key, "plus+sign.txt");
    let hits = setup.search("november", 5).await;
    assert_eq!(hits[0].key, "data/records.json");

    moto.reset_recording();
    moto.start_recording();
    let second = setup.sync(&config).await;
    moto.stop_recording();
    let second_requests = moto.recorded_requests();
    assert_eq!(second.errors, 0, "{:?}", second.error_messages);
    assert_eq!(second.unchanged, 9);
    assert_eq!((second.added, second.updated, second.deleted), (0, 0, 0));
    assert_eq!(second.bytes_downloaded, 0);
    assert!(
        object_gets(&second_requests, &bucket).is_empty(),
        "an unchanged re-sync sends no GetObject: {:?}",
        object_gets(&second_requests, &bucket)
    );
    assert!(
        second_requests
            .iter()
            .any(|r| r.query().unwrap_or("").contains("list-type=2")),
        "the re-sync still lists the bucket"
    );
}

pub(crate) async fn added_changed_and_deleted_objects_are_applied(backend: Backend) {
    let moto = MotoServer::shared();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_name("changes");
    create_bucket(&s3, &bucket).await;
    put(&s3, &bucket, "a.txt", "first version of a").await;
    put(&s3, &bucket, "b.txt", "original bravo").await;
    put(&s3, &bucket, "c.txt", "soon deleted").await;
    let setup = Setup::for_backend(&backend);
    let config = setup.config(&endpoint, &[&bucket], "");
    let first = setup.sync(&config).await;
    assert_eq!(
        (first.added, first.errors),
        (3, 0),
        "{:?}",
        first.error_messages
    );

    put(&s3, &bucket, "b.txt", "rewritten zulu content").await;
    delete(&s3, &bucket, "c.txt").await;
    put(&s3, &bucket, "d.txt", "a new object").await;
    let second = setup.sync(&config).await;
    assert_eq!(second.errors, 0, "{:?}", second.error_messages);
    assert_eq!(
        (
            second.added,
            second.updated,
            second.deleted,
            second.unchanged
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(
        setup.doc(&bucket, "b.txt").unwrap().body.as_deref(),
        Some("rewritten zulu content")
    );
    assert!(setup.doc(&bucket, "c.txt").is_none());
    assert!(setup.doc(&bucket, "d.txt").is_some());
    assert_eq!(setup.count(), 3);
    assert!(setup.search("original", 5).await.is_empty());
}

pub(crate) async fn rules_select_by_prefix_extension_and_glob(backend: Backend) {
    let moto = MotoServer::shared();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_name("rules");
    create_bucket(&s3, &bucket).await;
    for key in [
        "docs/a.txt",
        "docs/deep/A2.TXT",
        "docs/b.html",
        "other/c.txt",
        "notes/d.md",
        "notes/drafts/e.md",
        "f.md",
    ] {
        put(&s3, &bucket, key, format!("content of {key}")).await;
    }
    let setup = Setup::for_backend(&backend);
    let both_rules = format!(
        "    sync_rules: [{{\"bucket\": \"{bucket}\", \"prefix\": \"docs/\", \"extension\": [\".txt\"]}}, {{\"bucket\": \"{bucket}\", \"glob\": [\"**/*.md\"], \"exclude\": [\"**/drafts/**\"]}}]"
    );
    let report = setup
        .sync(&setup.config(&endpoint, &[&bucket], &both_rules))
        .await;
    assert_eq!(report.errors, 0, "{:?}", report.error_messages);
    assert_eq!((report.added, report.excluded), (4, 3));
    for key in ["docs/a.txt", "docs/deep/A2.TXT", "notes/d.md", "f.md"] {
        assert!(setup.doc(&bucket, key).is_some(), "{key} matches a rule");
    }
    for key in ["docs/b.html", "other/c.txt", "notes/drafts/e.md"] {
        assert!(setup.doc(&bucket, key).is_none(), "{key} matches no rule");
    }

    // Narrowing the rules removes what they no longer select; only docs/ is listed now.
    let prefix_rule = format!(
        "    sync_rules: [{{\"bucket\": \"{bucket}\", \"prefix\": \"docs/\", \"extension\": [\".txt\"]}}]"
    );
    let proxy = FaultProxy::start(&endpoint);
    let narrowed = setup
        .sync(&setup.config(&proxy.endpoint(), &[&bucket], &prefix_rule))
        .await;
    assert_eq!(narrowed.errors, 0, "{:?}", narrowed.error_messages);
    assert_eq!((narrowed.unchanged, narrowed.deleted), (2, 2));
    assert_eq!(setup.count(), 2);
    let listings: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.path_and_query.contains("list-type=2"))
        .collect();
    assert!(!listings.is_empty());
    assert!(
        listings
            .iter()
            .all(|r| r.path_and_query.contains("prefix=docs%2F")),
        "the rule's prefix is sent to S3: {listings:?}"
    );
}

pub(crate) async fn objects_above_the_size_cap_and_archived_objects_are_not_downloaded(
    backend: Backend,
) {
    let moto = MotoServer::shared();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_name("size-cap");
    create_bucket(&s3, &bucket).await;
    put(&s3, &bucket, "small.txt", "tiny text").await;
    put(&s3, &bucket, "big.txt", "x".repeat(1000)).await;
    put(&s3, &bucket, "exactly.txt", "y".repeat(100)).await;
    put_with_class(
        &s3,
        &bucket,
        "cold.txt",
        "frozen words",
        StorageClass::Glacier,
    )
    .await;
    let proxy = FaultProxy::start(&endpoint);
    let setup = Setup::for_backend(&backend);
    let config = setup.config(&proxy.endpoint(), &[&bucket], "    max_content_bytes: 100");
    let report = setup.sync(&config).await;
    assert_eq!(report.errors, 0, "{:?}", report.error_messages);
    assert_eq!((report.added, report.metadata_only), (4, 2));
    let big = setup.doc(&bucket, "big.txt").unwrap();
    assert_eq!(big.content_status, ContentStatus::TooLarge);
    assert_eq!(big.body, None);
    assert_eq!(big.size_in_bytes, 1000);
    let cold = setup.doc(&bucket, "cold.txt").unwrap();
    assert_eq!(cold.content_status, ContentStatus::Archived);
    assert_eq!(cold.storage_class.as_deref(), Some("GLACIER"));
    assert_eq!(
        setup.doc(&bucket, "exactly.txt").unwrap().content_status,
        ContentStatus::Extracted
    );
    let mut fetched: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && !r.path_and_query.contains("list-type"))
        .map(|r| r.path_and_query.split('?').next().unwrap_or("").to_owned())
        .collect();
    fetched.sort();
    assert_eq!(
        fetched,
        [
            format!("/{bucket}/exactly.txt"),
            format!("/{bucket}/small.txt")
        ]
    );
}

pub(crate) async fn a_failed_or_interrupted_listing_deletes_nothing(backend: Backend) {
    let moto = MotoServer::shared();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_name("failing-list");
    create_bucket(&s3, &bucket).await;
    for n in 0..5 {
        put(
            &s3,
            &bucket,
            &format!("obj-{n}.txt"),
            format!("object number {n}"),
        )
        .await;
    }
    let proxy = FaultProxy::start(&endpoint);
    let setup = Setup::for_backend(&backend);
    let config = setup.config(&proxy.endpoint(), &[&bucket], "    page_size: 2");
    let first = setup.sync(&config).await;
    assert_eq!(
        (first.added, first.errors),
        (5, 0),
        "{:?}",
        first.error_messages
    );

    delete(&s3, &bucket, "obj-0.txt").await;
    delete(&s3, &bucket, "obj-4.txt").await;

    // Every listing request fails: nothing is deleted, and the sync reports the failure.
    proxy.inject(
        Fault::internal_error(),
        Match::any().method("GET").query_contains("list-type=2"),
        None,
    );
    let failed = setup.sync(&config).await;
    assert!(failed.errors >= 1);
    assert_eq!(failed.deleted, 0);
    assert!(
        failed
            .error_messages
            .iter()
            .any(|m| m.contains("nothing was deleted")),
        "{:?}",
        failed.error_messages
    );
    assert_eq!(setup.count(), 5);

    // The first page answers, a later page fails: an incomplete listing deletes nothing either.
    proxy.clear_faults();
    proxy.inject(
        Fault::access_denied(),
        Match::any()
            .method("GET")
            .query_contains("continuation-token"),
        None,
    );
    let interrupted = setup.sync(&config).await;
    assert!(interrupted.errors >= 1);
    assert_eq!(interrupted.deleted, 0);
    assert!(interrupted.objects_listed >= 1, "the first page was listed");
    assert_eq!(setup.count(), 5);

    proxy.clear_faults();
    let recovered = setup.sync(&config).await;
    assert_eq!(recovered.errors, 0, "{:?}", recovered.error_messages);
    assert_eq!(recovered.deleted, 2);
    assert_eq!(setup.count(), 3);
}

pub(crate) async fn transient_errors_are_retried_and_vanished_objects_are_skipped(
    backend: Backend,
) {
    let moto = MotoServer::shared();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_name("retries");
    create_bucket(&s3, &bucket).await;
    for key in ["one.txt", "two.txt", "gone.txt"] {
        put(&s3, &bucket, key, format!("body of {key}")).await;
    }
    let proxy = FaultProxy::start(&endpoint);
    let slow_down = proxy.inject(
        Fault::slow_down(),
        Match::any()
            .method("GET")
            .path_prefix(&format!("/{bucket}/one.txt")),
        Some(2),
    );
    let reset = proxy.inject(
        Fault::Reset,
        Match::any().method("GET").query_contains("list-type=2"),
        Some(1),
    );
    let gone = proxy.inject(
        Fault::s3_error(404, "NoSuchKey", "The specified key does not exist."),
        Match::any()
            .method("GET")
            .path_prefix(&format!("/{bucket}/gone.txt")),
        None,
    );
    let setup = Setup::for_backend(&backend);
    let report = setup
        .sync(&setup.config(&proxy.endpoint(), &[&bucket], ""))
        .await;
    assert_eq!(report.errors, 0, "{:?}", report.error_messages);
    assert_eq!(
        (slow_down.applied(), reset.applied(), gone.applied()),
        (2, 1, 1)
    );
    assert!(report.s3_retries >= 3, "retries: {}", report.s3_retries);
    assert_eq!(report.added, 2);
    assert!(setup.doc(&bucket, "one.txt").is_some());
    assert!(
        setup.doc(&bucket, "gone.txt").is_none(),
        "deleted after listing: not indexed"
    );
}

pub(crate) async fn a_download_that_keeps_failing_is_an_error_and_keeps_the_indexed_version(
    backend: Backend,
) {
    let moto = MotoServer::shared();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_name("download-fails");
    create_bucket(&s3, &bucket).await;
    put(&s3, &bucket, "doc.txt", "first words").await;
    let proxy = FaultProxy::start(&endpoint);
    let setup = Setup::for_backend(&backend);
    let config = setup.config(&proxy.endpoint(), &[&bucket], "");
    assert_eq!(setup.sync(&config).await.added, 1);

    put(&s3, &bucket, "doc.txt", "second words").await;
    proxy.inject(
        Fault::internal_error(),
        Match::any()
            .method("GET")
            .path_prefix(&format!("/{bucket}/doc.txt")),
        None,
    );
    let failed = setup.sync(&config).await;
    assert_eq!(failed.errors, 1, "{:?}", failed.error_messages);
    assert_eq!((failed.updated, failed.deleted), (0, 0));
    assert_eq!(
        setup.doc(&bucket, "doc.txt").unwrap().body.as_deref(),
        Some("first words"),
        "the old version stays until a download succeeds"
    );

    proxy.clear_faults();
    let retried = setup.sync(&config).await;
    assert_eq!((retried.updated, retried.errors), (1, 0));
    assert_eq!(
        setup.doc(&bucket, "doc.txt").unwrap().body.as_deref(),
        Some("second words")
    );
}

pub(crate) async fn broken_objects_are_indexed_with_an_extraction_error(backend: Backend) {
    let moto = MotoServer::shared();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_name("broken");
    create_bucket(&s3, &bucket).await;
    put(&s3, &bucket, "bad.json", "{\"unterminated\": [1, 2").await;
    put(&s3, &bucket, "good.txt", "still indexed").await;
    let setup = Setup::for_backend(&backend);
    let report = setup.sync(&setup.config(&endpoint, &[&bucket], "")).await;
    assert_eq!(report.errors, 0, "a broken object is not a sync failure");
    assert_eq!((report.added, report.extraction_errors), (2, 1));
    let bad = setup.doc(&bucket, "bad.json").unwrap();
    assert_eq!(bad.content_status, ContentStatus::Error);
    assert!(
        bad.extraction_error
            .as_deref()
            .unwrap_or("")
            .contains("JSON"),
        "{bad:?}"
    );
    assert_eq!(bad.body, None);
    assert_eq!(
        setup.doc(&bucket, "good.txt").unwrap().content_status,
        ContentStatus::Extracted
    );
}

pub(crate) async fn expected_bucket_owner_is_sent_on_every_call(backend: Backend) {
    let moto = MotoServer::start();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_name("owner");
    create_bucket(&s3, &bucket).await;
    put(&s3, &bucket, "a.txt", "owned words").await;
    put(&s3, &bucket, "b.txt", "more owned words").await;
    let setup = Setup::for_backend(&backend);
    let config = setup.config(
        &endpoint,
        &[&bucket],
        "    expected_bucket_owner: \"123456789012\"\n    page_size: 1",
    );
    moto.start_recording();
    let report = setup.sync(&config).await;
    moto.stop_recording();
    assert_eq!(
        (report.added, report.errors),
        (2, 0),
        "{:?}",
        report.error_messages
    );
    let requests: Vec<RecordedRequest> = moto
        .recorded_requests()
        .into_iter()
        .filter(|r| r.path().starts_with(&format!("/{bucket}")))
        .collect();
    assert!(
        requests.len() >= 4,
        "two list pages and two gets: {requests:?}"
    );
    for request in &requests {
        assert_eq!(
            request.header("x-amz-expected-bucket-owner"),
            Some("123456789012"),
            "{} {}",
            request.method,
            request.url
        );
    }
}

/// Puts `count` small text objects `doc-NNNN.txt` into `bucket`.
async fn put_numbered(s3: &aws_sdk_s3::Client, bucket: &str, count: usize) {
    for n in 0..count {
        put(
            s3,
            bucket,
            &format!("doc-{n:04}.txt"),
            format!("document {n}"),
        )
        .await;
    }
}

pub(crate) async fn buckets_that_leave_the_selection_keep_their_documents_until_the_new_selection_lists(
    backend: Backend,
) {
    let moto = MotoServer::start();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let (notes, other) = (unique_name("notes"), unique_name("other"));
    create_bucket(&s3, &notes).await;
    create_bucket(&s3, &other).await;
    put_numbered(&s3, &notes, 150).await;
    put(&s3, &other, "other.txt", "another bucket").await;
    let setup = Setup::for_backend(&backend);
    let first = setup.sync(&setup.config(&endpoint, &[&notes], "")).await;
    assert_eq!(
        (first.added, first.errors),
        (150, 0),
        "{:?}",
        first.error_messages
    );

    // A typo in the bucket name: the new selection does not list, so the old bucket's
    // documents stay.
    let typo = format!("{notes}-typo");
    let failed = setup.sync(&setup.config(&endpoint, &[&typo], "")).await;
    assert!(failed.errors >= 1, "{failed:?}");
    assert_eq!((failed.deleted, failed.deletions_held_back), (0, 0));
    assert_eq!(setup.count(), 150);
    // Nor when one bucket of a larger selection fails to list.
    let partly = setup
        .sync(&setup.config(&endpoint, &[&other, &typo], ""))
        .await;
    assert_eq!((partly.added, partly.deleted), (1, 0), "{partly:?}");
    assert_eq!(setup.count(), 151);

    // A selection that lists completely: the old bucket's 150 documents are most of the
    // index (151), so the mass-delete guard holds them back...
    let moved = setup.config(&endpoint, &[&other], "");
    let held = setup.sync(&moved).await;
    assert_eq!(held.errors, 1, "{:?}", held.error_messages);
    assert_eq!((held.deleted, held.deletions_held_back), (0, 150));
    let message = &held.error_messages[0];
    assert!(
        message.contains(&format!(
            "buckets that left the selection ({notes}) would lose 150 of the index's 151 documents"
        )),
        "{message}"
    );
    assert!(message.contains("--allow-mass-delete"), "{message}");
    assert_eq!(setup.count(), 151);
    // ...until allowed.
    let allowed = setup.sync_with(&moved, true).await;
    assert_eq!(allowed.errors, 0, "{:?}", allowed.error_messages);
    assert_eq!(allowed.deleted, 150);
    assert_eq!(setup.count(), 1);
    assert!(setup.doc(&other, "other.txt").is_some());
}

/// Declares one `#[tokio::test]` per sync scenario of this file, running it on the backend that
/// `$backend()` (an `fn() -> Backend`) returns. With `ignore = "reason"` the tests are declared
/// `#[ignore]`: they run only with `cargo test -- --ignored`, and are reported as ignored, never as
/// passed, when they do not run.
macro_rules! sync_scenarios {
    ($backend:expr) => {
        $crate::sync_embedded::sync_scenarios!(@each $backend; [doc = "A sync scenario."]; SCENARIOS);
    };
    ($backend:expr, ignore = $reason:literal) => {
        $crate::sync_embedded::sync_scenarios!(@each $backend; [ignore = $reason]; SCENARIOS);
    };
    (@each $backend:expr; $attribute:tt; SCENARIOS) => {
        $crate::sync_embedded::sync_scenarios!(@each $backend; $attribute; first_sync_indexes_everything_and_an_unchanged_resync_downloads_nothing, added_changed_and_deleted_objects_are_applied, rules_select_by_prefix_extension_and_glob, objects_above_the_size_cap_and_archived_objects_are_not_downloaded, a_failed_or_interrupted_listing_deletes_nothing, transient_errors_are_retried_and_vanished_objects_are_skipped, a_download_that_keeps_failing_is_an_error_and_keeps_the_indexed_version, broken_objects_are_indexed_with_an_extraction_error, expected_bucket_owner_is_sent_on_every_call, buckets_that_leave_the_selection_keep_their_documents_until_the_new_selection_lists);
    };
    (@each $backend:expr; $attribute:tt; $($scenario:ident),*) => {
        $(
            #[tokio::test]
            #$attribute
            async fn $scenario() {
                $crate::sync_embedded::$scenario(($backend)()).await;
            }
        )*
    };
}
pub(crate) use sync_scenarios;

mod embedded {
    super::sync_scenarios!(|| crate::fixture::Backend::Embedded);
}

mod osmem {
    super::sync_scenarios!(|| crate::fixture::Backend::Osmem);
}

#[test]
fn example_rule_files_and_config_are_valid() {
    let config = fixture::repo_path("config.example.yml");
    let loaded = s3_connector::config::load(&config);
    assert!(loaded.is_ok(), "{:?}", loaded.err().map(|e| e.to_string()));
    for entry in std::fs::read_dir(fixture::repo_path("sync-rules")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let rules = s3_connector::rules::SyncRules::from_json_str(&text);
        assert!(
            rules.as_ref().is_ok_and(|rules| !rules.is_all()),
            "{}: {:?}",
            path.display(),
            rules.err()
        );
    }
}
