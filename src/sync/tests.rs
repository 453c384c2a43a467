//! Model-based tests of the sync's promises, in-process on the in-memory store and sink:
//! random histories of bucket mutations (puts, overwrites, deletes, odd keys), rule and
//! selection changes, and syncs with faults (a listing failing at any page, a denied bucket,
//! GETs that keep failing, objects vanishing between listing and GET, index writes or commits
//! failing, a shutdown at any request). Uncommitted writes are dropped after every sync, as the
//! process that made them ends (a failing commit is a crash at that commit). After every sync:
//!
//! 1. no document of a bucket whose listing did not complete before any shutdown began is
//!    deleted (except the one whose object the store answered "gone" for: that deletion is
//!    confirmed), and no document of a bucket that left the selection is deleted unless every
//!    selected bucket listed completely;
//! 2. after a fault-free sync the index equals the selected contents of the buckets exactly
//!    (ids, versions, bodies), whatever happened before: crashes converge;
//! 3. an object whose ETag, size and last-modified are what the index holds is never fetched;
//! 4. in a sync that was neither cancelled nor stopped by the index, the counters add up:
//!    `objects_listed = added + updated + unchanged + excluded + failed downloads + vanished`,
//!    and `metadata_only + extraction_errors <= added + updated`; a fault-free sync has no
//!    errors, and the one after it finds everything unchanged and fetches nothing.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use tokio_util::sync::CancellationToken;

use super::{Counters, Shard, SyncContext, SyncReport, sync_connector};
use crate::config::{BucketSelection, ConnectorConfig};
use crate::sink::memory::{MemorySink, SinkFaults};
use crate::sink::{DocId, Document, VersionStamp};
use crate::source::memory::{Faults, MemoryStore};
use crate::testing::connector_of;

const BUCKETS: [&str; 2] = ["alpha", "beta"];
const KEYS: [&str; 8] = [
    "a.txt",
    "b.txt",
    "dir/c.txt",
    "dir/sub/d.md",
    "with space.txt",
    "plus+sign.txt",
    "caf\u{e9} \u{2603}.txt",
    "100% done.txt",
];
const TEXTS: [&str; 4] = ["", "alpha bravo", "charlie delta echo", "foxtrot"];
/// Listing pages of three objects, so that listings have several pages to fail at.
const PAGE_SIZE: usize = 3;

/// Which buckets the connector selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Selection {
    Both,
    Alpha,
    Beta,
    Wildcard,
}

/// The connector's sync rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rules {
    Everything,
    UnderDir,
    NoMarkdown,
}

/// Faults of one sync.
#[derive(Debug, Clone, Default)]
struct SyncFaults {
    /// (bucket, page) at which the listing fails.
    fail_listing: Option<(usize, usize)>,
    denied: Option<usize>,
    /// (bucket, key) whose GETs always fail.
    get_fails: Option<(usize, usize)>,
    /// (bucket, key) deleted when fetched.
    vanishes: Option<(usize, usize)>,
    fail_upsert_from: Option<u64>,
    fail_commit_from: Option<u64>,
    cancel_at_request: Option<u64>,
}

impl SyncFaults {
    fn is_clean(&self) -> bool {
        self.fail_listing.is_none()
            && self.denied.is_none()
            && self.get_fails.is_none()
            && self.vanishes.is_none()
            && self.fail_upsert_from.is_none()
            && self.fail_commit_from.is_none()
            && self.cancel_at_request.is_none()
    }
}

#[derive(Debug, Clone)]
enum Step {
    Put {
        bucket: usize,
        key: usize,
        text: usize,
    },
    Delete {
        bucket: usize,
        key: usize,
    },
    Select(Selection),
    Rule(Rules),
    Sync(SyncFaults),
}

fn object() -> impl Strategy<Value = (usize, usize)> {
    (0..BUCKETS.len(), 0..KEYS.len())
}

fn sync_faults() -> impl Strategy<Value = SyncFaults> {
    let fault = prop_oneof![
        3 => Just(SyncFaults::default()),
        1 => (0..BUCKETS.len(), 0..3usize).prop_map(|f| SyncFaults { fail_listing: Some(f), ..Default::default() }),
        1 => (0..BUCKETS.len()).prop_map(|b| SyncFaults { denied: Some(b), ..Default::default() }),
        1 => object().prop_map(|o| SyncFaults { get_fails: Some(o), ..Default::default() }),
        1 => object().prop_map(|o| SyncFaults { vanishes: Some(o), ..Default::default() }),
        1 => (0..4u64).prop_map(|n| SyncFaults { fail_upsert_from: Some(n), ..Default::default() }),
        1 => (0..4u64).prop_map(|n| SyncFaults { fail_commit_from: Some(n), ..Default::default() }),
        1 => (0..12u64).prop_map(|n| SyncFaults { cancel_at_request: Some(n), ..Default::default() }),
    ];
    fault
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (object(), 0..TEXTS.len()).prop_map(|((bucket, key), text)| Step::Put { bucket, key, text }),
        3 => object().prop_map(|(bucket, key)| Step::Delete { bucket, key }),
        1 => prop_oneof![Just(Selection::Both), Just(Selection::Alpha), Just(Selection::Beta), Just(Selection::Wildcard)].prop_map(Step::Select),
        1 => prop_oneof![Just(Rules::Everything), Just(Rules::UnderDir), Just(Rules::NoMarkdown)].prop_map(Step::Rule),
        4 => sync_faults().prop_map(Step::Sync),
    ]
}

fn connector(selection: Selection, rules: Rules) -> ConnectorConfig {
    let buckets = match selection {
        Selection::Both => r#"["alpha", "beta"]"#,
        Selection::Alpha => r#"["alpha"]"#,
        Selection::Beta => r#"["beta"]"#,
        Selection::Wildcard => r#"["*"]"#,
    };
    let ruled: &[&str] = match selection {
        Selection::Alpha => &["alpha"],
        Selection::Beta => &["beta"],
        Selection::Both | Selection::Wildcard => &BUCKETS,
    };
    let rule = |bucket: &str| match rules {
        Rules::Everything => String::new(),
        Rules::UnderDir => format!(r#"{{"bucket": "{bucket}", "prefix": "dir/"}}"#),
        Rules::NoMarkdown => format!(r#"{{"bucket": "{bucket}", "exclude": ["**/*.md"]}}"#),
    };
    let rules = match rules {
        Rules::Everything => String::new(),
        _ => format!(
            "    sync_rules: [{}]\n",
            ruled.iter().map(|b| rule(b)).collect::<Vec<_>>().join(", ")
        ),
    };
    let text =
        format!("connectors:\n  - id: c\n    buckets: {buckets}\n    concurrency: 3\n{rules}");
    connector_of(&text)
}

/// The buckets a connector selects (both buckets always exist in these histories).
fn selected_buckets(connector: &ConnectorConfig) -> Vec<&'static str> {
    BUCKETS
        .into_iter()
        .filter(|bucket| {
            let named = match &connector.buckets {
                BucketSelection::All => true,
                BucketSelection::Named(names) => names.iter().any(|b| b == bucket),
            };
            let rules = &connector.rules;
            let ruled = rules.is_all() || rules.buckets().contains(*bucket);
            named && ruled
        })
        .collect()
}

/// What the index must hold after a fault-free sync: id → (bucket, key, body).
fn expected_index(
    connector: &ConnectorConfig,
    store: &MemoryStore,
) -> BTreeMap<DocId, (String, String, String)> {
    let mut expected = BTreeMap::new();
    for bucket in selected_buckets(connector) {
        for (key, bytes) in store.objects(bucket) {
            if !connector.rules.matches(bucket, &key) {
                continue;
            }
            let body = String::from_utf8(bytes).expect("texts are UTF-8");
            expected.insert(DocId::of(bucket, &key), (bucket.to_owned(), key, body));
        }
    }
    expected
}

async fn run_sync(
    connector: &ConnectorConfig,
    store: &MemoryStore,
    sink: &MemorySink,
    cancel: &CancellationToken,
) -> SyncReport {
    run_sync_with(connector, store, sink, cancel, false).await
}

async fn run_sync_with(
    connector: &ConnectorConfig,
    store: &MemoryStore,
    sink: &MemorySink,
    cancel: &CancellationToken,
    allow_mass_delete: bool,
) -> SyncReport {
    let counters = Counters::default();
    sync_connector(&SyncContext {
        connector,
        source: store,
        sink,
        counters: &counters,
        cancel,
        allow_mass_delete,
        retarget: false,

        shard: &Shard::whole(),
        embedder: None,
        reembed: false,
    })
    .await
}

/// Runs a history and checks every promise after every sync.
async fn check_history(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let store = MemoryStore::new(PAGE_SIZE);
    for bucket in BUCKETS {
        store.create_bucket(bucket);
    }
    let sink = MemorySink::default();
    let mut selection = Selection::Both;
    let mut rules = Rules::Everything;
    for step in steps {
        match step {
            Step::Put { bucket, key, text } => {
                store.put(BUCKETS[bucket], KEYS[key], TEXTS[text].as_bytes());
            }
            Step::Delete { bucket, key } => store.delete(BUCKETS[bucket], KEYS[key]),
            Step::Select(chosen) => selection = chosen,
            Step::Rule(chosen) => rules = chosen,
            Step::Sync(faults) => {
                let connector = connector(selection, rules);
                check_sync(&connector, &store, &sink, &faults).await?;
            }
        }
    }
    // Whatever happened, one fault-free sync converges, and the next one is a no-op.
    let connector = connector(selection, rules);
    check_sync(&connector, &store, &sink, &SyncFaults::default()).await?;
    let again = run_sync(&connector, &store, &sink, &CancellationToken::new()).await;
    prop_assert_eq!(
        (again.added, again.updated, again.deleted, again.errors),
        (0, 0, 0, 0),
        "{:?}",
        again
    );
    prop_assert!(
        store.take_gets().is_empty(),
        "an unchanged re-sync fetched objects"
    );
    Ok(())
}

async fn check_sync(
    connector: &ConnectorConfig,
    store: &MemoryStore,
    sink: &MemorySink,
    faults: &SyncFaults,
) -> Result<(), TestCaseError> {
    let cancel = CancellationToken::new();
    let target = |(bucket, key): (usize, usize)| format!("{}/{}", BUCKETS[bucket], KEYS[key]);
    store.set_faults(Faults {
        fail_listing: faults
            .fail_listing
            .map(|(bucket, page)| (BUCKETS[bucket].to_owned(), page)),
        denied: faults
            .denied
            .map(|b| BUCKETS[b].to_owned())
            .into_iter()
            .collect(),
        get_failures: faults
            .get_fails
            .map(|o| (target(o), u32::MAX))
            .into_iter()
            .collect(),
        vanish_on_get: faults.vanishes.map(target).into_iter().collect(),
        cancel_at_request: faults.cancel_at_request.map(|n| (n, cancel.clone())),
        ..Faults::default()
    });
    sink.set_faults(SinkFaults {
        fail_upsert_from: faults.fail_upsert_from,
        fail_commit_from: faults.fail_commit_from,
    });
    let before = sink.documents();
    store.take_gets();
    // The versions the store holds now: what "unchanged" means for this sync.
    let current: BTreeMap<DocId, VersionStamp> = BUCKETS
        .iter()
        .flat_map(|bucket| {
            store.objects(bucket).into_keys().filter_map(move |key| {
                let entry = store.entry(bucket, &key)?;
                Some((
                    DocId::of(bucket, &key),
                    VersionStamp::of(&entry.etag, entry.last_modified, entry.size),
                ))
            })
        })
        .collect();

    let report = run_sync(connector, store, sink, &cancel).await;
    // Whatever was not committed is lost: the process ends, or the worker opens the index
    // afresh for its next sync. With a failing commit this is a crash at that commit.
    sink.crash();
    let completed_listings = store.completed_listings();
    let stopped_by_index = sink.failed();
    store.set_faults(Faults::default());
    sink.set_faults(SinkFaults::default());
    let after = sink.documents();
    let gets = store.take_gets();

    // 3. Unchanged objects are never fetched.
    for target in gets.keys() {
        let (bucket, key) = target.split_once('/').expect("bucket/key");
        let id = DocId::of(bucket, key);
        let unchanged = match (before.get(&id), current.get(&id)) {
            (Some(document), Some(version)) => document.version() == *version,
            _ => false,
        };
        prop_assert!(!unchanged, "{} was fetched although unchanged", target);
    }

    // 1. No deletion without a complete listing.
    let vanished: BTreeSet<DocId> = faults
        .vanishes
        .map(|(b, k)| DocId::of(BUCKETS[b], KEYS[k]))
        .into_iter()
        .collect();
    let cancelled = report.cancelled;
    // A bucket's listing completed when the store returned the last page of every prefix the
    // rules list, before a shutdown (if any) began.
    let listed_completely = |bucket: &str| {
        let prefixes = connector.rules.list_prefixes(bucket);
        prefixes.into_iter().all(|prefix| {
            completed_listings
                .get(&(bucket.to_owned(), prefix))
                .is_some_and(|request| faults.cancel_at_request.is_none_or(|at| *request < at))
        })
    };
    let selected = selected_buckets(connector);
    let every_selected_listed = selected.iter().all(|b| listed_completely(b));
    for (id, document) in &before {
        let bucket = document.bucket.as_str();
        let may_go = if selected.contains(&bucket) {
            listed_completely(bucket)
        } else {
            every_selected_listed
        };
        if !may_go && !vanished.contains(id) {
            prop_assert!(
                after.contains_key(id),
                "{}/{} was deleted although its bucket's listing did not complete before any shutdown: {:?} {:?}",
                document.bucket,
                document.key,
                faults,
                report
            );
        }
    }

    // 4. The counters add up.
    if !cancelled && !stopped_by_index {
        let failed_downloads = faults
            .get_fails
            .map_or(0, |o| gets.get(&target(o)).copied().unwrap_or(0));
        let vanished_fetched = faults
            .vanishes
            .map_or(0, |o| gets.get(&target(o)).copied().unwrap_or(0));
        prop_assert_eq!(
            report.objects_listed,
            report.added
                + report.updated
                + report.unchanged
                + report.excluded
                + failed_downloads
                + vanished_fetched,
            "{:?} {:?}",
            faults,
            report
        );
        prop_assert!(
            report.metadata_only + report.extraction_errors <= report.added + report.updated
        );
        prop_assert!(report.errors >= failed_downloads);
    }

    // 2. A fault-free sync leaves exactly the selected contents.
    if faults.is_clean() {
        prop_assert_eq!(report.errors, 0, "{:?}", report.error_messages);
        let expected = expected_index(connector, store);
        let actual: BTreeMap<DocId, (String, String, String)> = after
            .iter()
            .map(|(id, d): (&DocId, &Document)| {
                (
                    *id,
                    (
                        d.bucket.clone(),
                        d.key.clone(),
                        d.body.clone().unwrap_or_default(),
                    ),
                )
            })
            .collect();
        prop_assert_eq!(&actual, &expected);
        for (id, document) in &after {
            prop_assert_eq!(Some(&document.version()), current.get(id), "stale version");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        max_shrink_iters: 2_000,
        ..crate::proptest_config::with_cases(2_000)
    })]

    #[test]
    fn the_sync_keeps_its_promises(steps in proptest::collection::vec(step(), 1..30)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(check_history(steps))?;
    }
}

/// Bucket `alpha` holding `keys` (listed and scanned `page_size` a page), synced into a fresh
/// index.
async fn alpha_synced(
    page_size: usize,
    keys: &[impl AsRef<str>],
) -> (MemoryStore, MemorySink, ConnectorConfig) {
    let store = MemoryStore::new(page_size);
    store.create_bucket("alpha");
    for key in keys {
        store.put("alpha", key.as_ref(), b"text");
    }
    let connector = connector(Selection::Alpha, Rules::Everything);
    let sink = MemorySink::with_scan_page_size(page_size);
    let report = run_sync(&connector, &store, &sink, &CancellationToken::new()).await;
    assert_eq!(report.added, keys.len() as u64);
    (store, sink, connector)
}

#[tokio::test]
async fn deletions_past_what_is_kept_in_memory_are_spilled_and_all_applied() {
    let keys: Vec<String> = (0..6_000).map(|n| format!("k{n:05}.txt")).collect();
    let (store, sink, connector) = alpha_synced(1000, &keys).await;
    // Keep every tenth object: 5,400 deletions, more than `doomed` keeps in memory.
    for key in keys
        .iter()
        .enumerate()
        .filter(|(n, _)| n % 10 != 0)
        .map(|(_, key)| key)
    {
        store.delete("alpha", key);
    }
    let report = run_sync_with(&connector, &store, &sink, &CancellationToken::new(), true).await;
    assert_eq!(report.errors, 0, "{:?}", report.error_messages);
    assert_eq!((report.deleted, report.unchanged), (5_400, 600));
    let left: Vec<String> = sink.documents().into_values().map(|d| d.key).collect();
    let mut expected: Vec<String> = keys.into_iter().step_by(10).collect();
    expected.sort();
    let mut left = left;
    left.sort();
    assert_eq!(left, expected);
}

#[tokio::test]
async fn a_downloaded_objects_user_metadata_reaches_its_document_capped_and_lowercased() {
    let store = MemoryStore::new(PAGE_SIZE);
    store.create_bucket("alpha");
    store.put_with_metadata("alpha", "m.txt", b"text", &[("Author", "Alice")]);
    store.put("alpha", "plain.txt", b"text");
    let connector = connector(Selection::Alpha, Rules::Everything);
    let sink = MemorySink::default();
    let report = run_sync(&connector, &store, &sink, &CancellationToken::new()).await;
    assert_eq!((report.added, report.errors), (2, 0));
    let documents = sink.documents();
    let described = &documents[&DocId::of("alpha", "m.txt")].attributes;
    assert_eq!(described.metadata["author"], "Alice");
    assert!(described.tags.is_empty());
    assert!(
        documents[&DocId::of("alpha", "plain.txt")]
            .attributes
            .is_empty()
    );
}

#[tokio::test]
async fn objects_larger_than_the_download_budget_are_synced_one_at_a_time() {
    // Objects and texts past the whole byte budget of the download queue (16 MiB) between
    // small ones: each waits until it is alone, then passes; none deadlocks.
    let huge = 17 * 1024 * 1024;
    let store = MemoryStore::new(PAGE_SIZE);
    store.create_bucket("alpha");
    for n in 0..12 {
        let text = if n % 4 == 1 {
            "h".repeat(huge + n)
        } else {
            format!("small {n}")
        };
        store.put("alpha", &format!("k{n:02}.txt"), text.as_bytes());
    }
    let connector = connector_of(
        "connectors:\n  - id: c\n    buckets: [alpha]\n    concurrency: 3\n    max_content_bytes: 33554432\n    max_body_chars: 33554432\n",
    );
    let sink = MemorySink::default();
    let report = run_sync(&connector, &store, &sink, &CancellationToken::new()).await;
    assert_eq!(
        (report.added, report.errors),
        (12, 0),
        "{:?}",
        report.error_messages
    );
    let documents = sink.documents();
    let body = |n: usize| {
        documents[&DocId::of("alpha", &format!("k{n:02}.txt"))]
            .body
            .clone()
    };
    assert_eq!(body(5).map(|b| b.len()), Some(huge + 5));
    assert_eq!(body(6).as_deref(), Some("small 6"));
}

#[tokio::test]
async fn a_listing_out_of_key_order_deletes_nothing_and_says_why() {
    let (store, sink, connector) = alpha_synced(PAGE_SIZE, &KEYS).await;
    store.delete("alpha", "a.txt");
    store.set_faults(Faults {
        unsorted: BTreeSet::from(["alpha".to_owned()]),
        ..Faults::default()
    });
    let report = run_sync_with(&connector, &store, &sink, &CancellationToken::new(), true).await;
    assert_eq!(report.deleted, 0);
    assert_eq!(report.errors, 1);
    assert!(
        report.error_messages[0].contains("not in S3's key order"),
        "{:?}",
        report.error_messages
    );
    assert_eq!(sink.documents().len(), 8);
}

/// Keys for the shard model: odd characters, empty segments, a trailing `/`, keys equal to the
/// range boundaries below, root-level keys and groups of several depths.
const SHARD_KEYS: [&str; 16] = [
    "a.txt",
    "dir/c.txt",
    "dir/sub/d.md",
    "dir/sub/e.txt",
    "dir2/x.txt",
    "with space/y.txt",
    "100%/z.txt",
    "plus+/w.txt",
    "caf\u{e9}/\u{2603}.txt",
    "/leading.txt",
    "trail/",
    "a//b.txt",
    "g",
    "p",
    "p/x.txt",
    "zz.txt",
];
/// Range boundaries, the first N-1 of them for N shards.
const BOUNDARIES: [&str; 4] = ["dir/", "g", "p/", "with"];

/// How the shard model splits the keys.
#[derive(Debug, Clone, Copy)]
enum Split {
    Prefix(usize),
    Range,
}

fn sharded_connector(split: Split, count: u32, rules: Rules) -> ConnectorConfig {
    let sharding = match split {
        // Range sharding needs boundaries, so at least two shards.
        Split::Range if count == 1 => String::new(),
        Split::Prefix(depth) => format!("    sharding: {{by: prefix, depth: {depth}}}\n"),
        Split::Range => format!(
            "    sharding: {{by: range, boundaries: {:?}}}\n",
            &BOUNDARIES[..count as usize - 1]
        ),
    };
    let rules = match rules {
        Rules::Everything => String::new(),
        Rules::UnderDir => "    sync_rules: [{bucket: alpha, prefix: dir/}, {bucket: beta}]\n".into(),
        Rules::NoMarkdown => "    sync_rules: [{bucket: alpha, exclude: [\"**/*.md\"]}, {bucket: beta, exclude: [\"**/*.md\"]}]\n".into(),
    };
    let text = format!(
        "connectors:\n  - id: c\n    buckets: [alpha, beta]\n    concurrency: 3\n{sharding}{rules}"
    );
    connector_of(&text)
}

/// What the model compares of an index: id → (bucket, key, body, version).
fn index_contents(sink: &MemorySink) -> BTreeMap<DocId, (String, String, String, VersionStamp)> {
    sink.documents()
        .into_iter()
        .map(|(id, d)| {
            let version = d.version();
            (id, (d.bucket, d.key, d.body.unwrap_or_default(), version))
        })
        .collect()
}

/// A store whose listings fail from the `from`-th list request on: one shard's listing failing
/// while the other shards' listings of the same bucket go on.
struct FailingListings<'a> {
    store: &'a MemoryStore,
    from: u64,
    requests: std::sync::atomic::AtomicU64,
    /// Buckets whose listing failed.
    failed: std::sync::Mutex<BTreeSet<String>>,
}

impl crate::source::ObjectStore for FailingListings<'_> {
    async fn list_buckets(&self) -> Result<Vec<String>, crate::source::s3::SourceError> {
        self.store.list_buckets().await
    }

    async fn locate_bucket(&self, bucket: &str) -> Result<(), crate::source::s3::SourceError> {
        self.store.locate_bucket(bucket).await
    }

    async fn list_page(
        &self,
        bucket: &str,
        request: &crate::source::ListRequest<'_>,
        continuation: Option<String>,
    ) -> Result<crate::source::ListPage, crate::source::s3::SourceError> {
        let number = self
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if number >= self.from {
            self.failed
                .lock()
                .expect("not poisoned")
                .insert(bucket.to_owned());
            // A bucket that does not exist: a listing error like any other.
            return self.store.list_page("no-such-bucket", request, None).await;
        }
        self.store.list_page(bucket, request, continuation).await
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: u64,
    ) -> Result<crate::source::s3::Fetched, crate::source::s3::SourceError> {
        self.store.get_object(bucket, key, max_bytes).await
    }

    async fn head_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<crate::source::s3::ObjectEntry>, crate::source::s3::SourceError> {
        self.store.head_object(bucket, key).await
    }

    async fn download(
        &self,
        bucket: &str,
        key: &str,
        path: &std::path::Path,
    ) -> Result<Option<u64>, crate::source::s3::SourceError> {
        self.store.download(bucket, key, path).await
    }

    fn stats(&self) -> &crate::source::s3::S3Stats {
        self.store.stats()
    }
}

/// Runs every shard of `count` concurrently on one store and sink; shard `failing` (if any)
/// sees listings that fail from its `fail_from`-th request. Returns the reports in shard order
/// and the buckets whose listing failed.
async fn run_shards(
    connector: &ConnectorConfig,
    count: u32,
    store: &MemoryStore,
    sink: &MemorySink,
    failing: Option<(u32, u64)>,
) -> (Vec<SyncReport>, BTreeSet<String>) {
    let cancel = CancellationToken::new();
    let shards: Vec<Shard> = (0..count)
        .map(|index| {
            let spec = super::ShardSpec { index, count };
            if count == 1 {
                Shard::whole()
            } else {
                Shard::new(spec, &connector.id, &connector.sharding).expect("a valid shard")
            }
        })
        .collect();
    let counters: Vec<Counters> = (0..count).map(|_| Counters::default()).collect();
    let failing_store = failing.map(|(_, from)| FailingListings {
        store,
        from,
        requests: std::sync::atomic::AtomicU64::new(0),
        failed: std::sync::Mutex::default(),
    });
    let healthy = shards
        .iter()
        .zip(&counters)
        .filter(|(shard, _)| failing.is_none_or(|(f, _)| f != shard.index()))
        .map(|(shard, counters)| {
            let cancel = &cancel;
            async move {
                let report = sync_connector(&SyncContext {
                    connector,
                    source: store,
                    sink,
                    counters,
                    cancel,
                    allow_mass_delete: true,
                    retarget: false,
                    shard,
                    embedder: None,
                    reembed: false,
                })
                .await;
                (shard.index(), report)
            }
        });
    let failed = async {
        let (Some((index, _)), Some(source)) = (failing, failing_store.as_ref()) else {
            return None;
        };
        let position = index as usize;
        let report = sync_connector(&SyncContext {
            connector,
            source,
            sink,
            counters: &counters[position],
            cancel: &cancel,
            allow_mass_delete: true,
            retarget: false,
            shard: &shards[position],
            embedder: None,
            reembed: false,
        })
        .await;
        Some((index, report))
    };
    let (mut reports, failed) =
        futures::future::join(futures::future::join_all(healthy), failed).await;
    reports.extend(failed);
    reports.sort_by_key(|(index, _)| *index);
    let failed_buckets = failing_store
        .map(|store| store.failed.into_inner().expect("not poisoned"))
        .unwrap_or_default();
    (
        reports.into_iter().map(|(_, report)| report).collect(),
        failed_buckets,
    )
}

type Puts = Vec<(usize, usize, Option<usize>)>;

/// A prefix shard reads its own documents of the index and about a page per folder of another
/// shard, not the whole bucket's: each of 4 shards of an unchanged bucket of 12 folders of 100
/// keys reads at most its own keys plus a page per other folder (and one to end), where a read
/// of the whole bucket would take 1,200 entries each.
#[tokio::test]
async fn a_prefix_shard_reads_only_its_part_of_the_index() {
    const PAGE: usize = 10;
    let store = MemoryStore::new(PAGE_SIZE);
    for bucket in BUCKETS {
        store.create_bucket(bucket);
    }
    let folders: Vec<String> = (0..12).map(|n| format!("folder-{n}")).collect();
    for folder in &folders {
        for n in 0..100 {
            store.put("alpha", &format!("{folder}/{n:03}.txt"), b"text");
        }
    }
    let sink = MemorySink::with_scan_page_size(PAGE);
    let connector = sharded_connector(Split::Prefix(1), 4, Rules::Everything);
    let (reports, _) = run_shards(&connector, 4, &store, &sink, None).await;
    assert!(reports.iter().all(|report| report.errors == 0));
    assert_eq!(sink.documents().len(), 1200);

    let cancel = CancellationToken::new();
    let mut total = 0;
    for index in 0..4 {
        let shard = Shard::new(
            super::ShardSpec { index, count: 4 },
            "c",
            &connector.sharding,
        )
        .expect("a valid shard");
        let before = sink.scanned();
        let report = sync_connector(&SyncContext {
            connector: &connector,
            source: &store,
            sink: &sink,
            counters: &Counters::default(),
            cancel: &cancel,
            allow_mass_delete: false,
            retarget: false,
            shard: &shard,
            embedder: None,
            reembed: false,
        })
        .await;
        let read = sink.scanned() - before;
        let own = folders
            .iter()
            .filter(|folder| shard.owns(&format!("{folder}/")))
            .count();
        assert_eq!(report.errors, 0, "{:?}", report.error_messages);
        assert_eq!(report.objects_listed, own as u64 * 100);
        assert_eq!(report.unchanged, own as u64 * 100);
        let foreign = folders.len() - own;
        assert!(
            read <= (own * 100 + (foreign + 1) * PAGE) as u64,
            "shard {index} read {read} entries for {own} folders of its own"
        );
        total += read;
    }
    // Every document once, and a page of each folder for each of the 3 shards that skip it.
    assert!(
        total <= 1200 + 3 * 12 * PAGE as u64 + 4 * PAGE as u64,
        "4 shards read {total}"
    );
}

/// The shard model: N shards syncing concurrently make exactly the index one worker makes,
/// through adds, overwrites and deletes; their `objects_listed` add up to the one worker's;
/// a shard whose listing fails deletes nothing of its part while the other shards' parts
/// converge.
async fn check_shards(
    split: Split,
    count: u32,
    rules: Rules,
    first: Puts,
    changes: Puts,
    failing: Option<(u32, u64)>,
) -> Result<(), TestCaseError> {
    let connector = sharded_connector(split, count, rules);
    let store = MemoryStore::new(PAGE_SIZE);
    for bucket in BUCKETS {
        store.create_bucket(bucket);
    }
    let apply = |puts: &Puts| {
        for (bucket, key, text) in puts {
            match text {
                Some(text) => {
                    store.put(BUCKETS[*bucket], SHARD_KEYS[*key], TEXTS[*text].as_bytes())
                }
                None => store.delete(BUCKETS[*bucket], SHARD_KEYS[*key]),
            }
        }
    };
    let one = MemorySink::default();
    let sharded = MemorySink::default();
    let owner = |key: &str| -> u32 {
        (0..count)
            .find(|index| {
                count == 1
                    || Shard::new(
                        super::ShardSpec {
                            index: *index,
                            count,
                        },
                        "c",
                        &connector.sharding,
                    )
                    .is_ok_and(|shard| shard.owns(key))
            })
            .unwrap_or(u32::MAX)
    };
    for round in 0..2 {
        apply(if round == 0 { &first } else { &changes });
        let whole = run_sync(&connector, &store, &one, &CancellationToken::new()).await;
        prop_assert_eq!(whole.errors, 0, "{:?}", whole.error_messages);
        let before = index_contents(&sharded);
        let fault = failing.filter(|_| round == 1);
        let (reports, failed_buckets) =
            run_shards(&connector, count, &store, &sharded, fault).await;
        let after = index_contents(&sharded);
        let expected = index_contents(&one);
        match fault {
            None => {
                for report in &reports {
                    prop_assert_eq!(report.errors, 0, "{:?}", report.error_messages);
                }
                prop_assert_eq!(&after, &expected);
                let listed: u64 = reports.iter().map(|r| r.objects_listed).sum();
                prop_assert_eq!(
                    listed,
                    whole.objects_listed,
                    "shards' objects_listed do not add up"
                );
            }
            // The failing shard sent fewer listing requests than it takes to fail.
            Some((failed, _)) if reports[failed as usize].errors == 0 => {
                prop_assert_eq!(&after, &expected);
            }
            Some((failed, _)) => {
                for (id, document) in &before {
                    if owner(&document.1) == failed && failed_buckets.contains(&document.0) {
                        prop_assert!(
                            after.contains_key(id),
                            "the failing shard deleted {:?}",
                            document.1
                        );
                    }
                }
                // The other shards' parts are exactly the one worker's.
                let others = |index: &BTreeMap<DocId, (String, String, String, VersionStamp)>| {
                    index
                        .iter()
                        .filter(|(_, d)| owner(&d.1) != failed)
                        .map(|(id, d)| (*id, d.clone()))
                        .collect::<BTreeMap<_, _>>()
                };
                prop_assert_eq!(others(&after), others(&expected));
                for (index, report) in reports.iter().enumerate() {
                    if index as u32 != failed {
                        prop_assert_eq!(report.errors, 0, "{:?}", report.error_messages);
                    }
                }
                // Once the listing works again, the shards converge on the one worker's index.
                run_shards(&connector, count, &store, &sharded, None).await;
                prop_assert_eq!(index_contents(&sharded), expected);
            }
        }
    }
    Ok(())
}

fn split_strategy() -> impl Strategy<Value = Split> {
    prop_oneof![(1usize..4).prop_map(Split::Prefix), Just(Split::Range),]
}

fn puts(len: usize) -> impl Strategy<Value = Puts> {
    proptest::collection::vec(
        (
            0..BUCKETS.len(),
            0..SHARD_KEYS.len(),
            proptest::option::weighted(0.7, 0..TEXTS.len()),
        ),
        0..len,
    )
}

proptest! {
    #![proptest_config(crate::proptest_config::with_cases(400))]

    #[test]
    fn shards_together_make_the_one_worker_index(
        split in split_strategy(),
        count in 1u32..5,
        rules in prop_oneof![Just(Rules::Everything), Just(Rules::UnderDir), Just(Rules::NoMarkdown)],
        first in puts(40),
        changes in puts(20),
        failing in proptest::option::of((0u32..4, 0u64..4)),
    ) {
        let failing = failing.map(|(shard, from)| (shard % count, from));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(check_shards(split, count, rules, first, changes, failing))?;
    }
}
