//! Inventory-driven syncs on the in-memory store and index: inventories are written into the
//! store as S3 lays them out (gzip CSV or Parquet data files, `manifest.json`,
//! `manifest.checksum`; see `source/inventory/testing.rs`), and
//! each scenario compares what the sync did with what a ListObjectsV2 sync does, or with what
//! the safety rules promise.

use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::ConnectorConfig;
use crate::sink::memory::MemorySink;
use crate::sink::{ContentStatus, DocId, VersionStamp};
use crate::source::inventory::testing::{self, Format, InventoryRow};
use crate::source::memory::{Faults, MemoryStore};
use crate::sync::{Counters, Shard, ShardSpec, SyncContext, SyncReport, sync_connector};
use crate::testing::connector_of;

const BUCKET: &str = "docs";
/// The inventory's destination: `s3://inv/reports`, config id `daily`.
const DESTINATION: &str = "inv";

/// The connector `c` syncing `docs`, with `extra` lines.
fn connector(extra: &str) -> ConnectorConfig {
    let text = format!(
        "connectors:\n  - id: c\n    buckets: [docs]\n    max_content_bytes: 200\n    max_delete_fraction: 1.0\n{extra}"
    );
    connector_of(&text)
}

/// `extra` plus the inventory block. The store's clock starts in 1970, so `max_age` is long;
/// it ticks one second per write, so the deletion grace is 0 (see [`with_default_grace`]).
fn with_inventory(extra: &str) -> ConnectorConfig {
    connector(&format!(
        "{extra}    inventory: {{destination: \"s3://inv/reports/\", config_id: daily, max_age: 30000d, deletion_grace: 0s}}\n"
    ))
}

/// The inventory block with the default deletion grace (a day).
fn with_default_grace() -> ConnectorConfig {
    connector(
        "    inventory: {destination: \"s3://inv/reports/\", config_id: daily, max_age: 30000d}\n",
    )
}

async fn sync_shard(
    connector: &ConnectorConfig,
    store: &MemoryStore,
    sink: &MemorySink,
    shard: &Shard,
) -> SyncReport {
    let (counters, cancel) = (Counters::default(), CancellationToken::new());
    let context = SyncContext {
        connector,
        source: store,
        sink,
        counters: &counters,
        cancel: &cancel,
        allow_mass_delete: false,
        retarget: false,
        shard,
        embedder: None,
        reembed: false,
    };
    Box::pin(sync_connector(&context)).await
}

async fn sync(connector: &ConnectorConfig, store: &MemoryStore, sink: &MemorySink) -> SyncReport {
    sync_shard(connector, store, sink, &Shard::whole()).await
}

/// Asserts that `report` has no errors and fell back to a listing `fallbacks` times.
fn assert_clean(report: &SyncReport, fallbacks: u64) {
    assert_eq!(
        (report.errors, report.inventory_fallbacks),
        (0, fallbacks),
        "{:?}",
        report.error_messages
    );
}

/// What an index holds: id → (key, body, version, status).
type Contents = BTreeMap<DocId, (String, Option<String>, VersionStamp, ContentStatus)>;

fn contents(sink: &MemorySink) -> Contents {
    sink.documents()
        .into_iter()
        .map(|(id, d)| {
            let version = d.version();
            (id, (d.key, d.body, version, d.content_status))
        })
        .collect()
}

/// How an inventory is written.
#[derive(Clone, Copy)]
struct Layout {
    /// Data files the rows are spread over.
    files: usize,
    /// Whether `manifest.checksum` is written (S3 writes it last).
    checksum: bool,
    /// Flip a byte of the first data file after its MD5 went into the manifest.
    corrupt: bool,
    /// Leave the last data file out of the store (the manifest still names it).
    missing: bool,
    /// The data files' format.
    format: Format,
    /// The manifest's `fileFormat` and `fileSchema` instead of `format`'s (the data files stay
    /// as `format` writes them).
    label: Option<(&'static str, &'static str)>,
}

const COMPLETE: Layout = Layout {
    files: 3,
    checksum: true,
    corrupt: false,
    missing: false,
    format: Format::Csv,
    label: None,
};

const PARQUET: Layout = Layout {
    format: Format::Parquet,
    ..COMPLETE
};

/// Writes the inventory of `docs` as it is now into `s3://inv/reports/docs/daily/<folder>/`,
/// created now; returns the creation time. Rows are spread over the
/// data files round-robin and each file is in reverse key order, so only a sort puts them in
/// order; an older version and a delete marker ride along, as in an inventory of all versions.
fn write_inventory(store: &MemoryStore, folder: &str, layout: Layout) -> OffsetDateTime {
    store.create_bucket(DESTINATION);
    let entries: Vec<_> = store
        .objects(BUCKET)
        .keys()
        .map(|key| store.entry(BUCKET, key).unwrap())
        .collect();
    // The store's clock now: every object written so far is older, every later one newer.
    store.put(DESTINATION, "clock", b"");
    let created = store.entry(DESTINATION, "clock").unwrap().last_modified;
    let mut files = vec![Vec::new(); layout.files.max(1)];
    for (n, entry) in entries.iter().enumerate().rev() {
        let class = entry.storage_class.as_deref().unwrap_or("STANDARD");
        let row = InventoryRow::object(
            BUCKET,
            &entry.key,
            entry.size,
            entry.last_modified,
            &entry.etag,
            class,
        );
        let file = n % files.len();
        files[file].push(row);
        if n == 0 {
            let older = InventoryRow {
                is_latest: Some(false),
                etag: Some("old".to_owned()),
                ..InventoryRow::object(BUCKET, &entry.key, 1, OffsetDateTime::UNIX_EPOCH, "", "")
            };
            files[0].push(older);
        }
    }
    files[0].push(InventoryRow::delete_marker(
        BUCKET,
        "deleted key",
        created - Duration::from_secs(1),
    ));
    let base = format!("reports/{BUCKET}/daily");
    let data: Vec<(String, Vec<u8>)> = files
        .iter()
        .enumerate()
        .map(|(n, rows)| {
            let key = format!("{base}/data/{folder}-{n}.{}", layout.format.extension());
            (key, testing::data_file(layout.format, rows))
        })
        .collect();
    let named: Vec<(String, &[u8])> = data
        .iter()
        .map(|(key, bytes)| (key.clone(), bytes.as_slice()))
        .collect();
    let mut manifest = testing::manifest(BUCKET, DESTINATION, created, layout.format, &named);
    if let Some((file_format, file_schema)) = layout.label {
        manifest = manifest
            .replace(
                &format!("\"fileFormat\":\"{}\"", layout.format.name()),
                &format!("\"fileFormat\":\"{file_format}\""),
            )
            .replace(layout.format.schema(), file_schema);
    }
    for (n, (key, mut bytes)) in data.into_iter().enumerate() {
        if layout.corrupt && n == 0 {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x55;
        }
        if !(layout.missing && n + 1 == files.len()) {
            store.put(DESTINATION, &key, &bytes);
        }
    }
    store.put(
        DESTINATION,
        &format!("{base}/{folder}/manifest.json"),
        manifest.as_bytes(),
    );
    if layout.checksum {
        let checksum = format!(
            "{}\n",
            crate::source::inventory::manifest::md5_hex(manifest.as_bytes())
        );
        store.put(
            DESTINATION,
            &format!("{base}/{folder}/manifest.checksum"),
            checksum.as_bytes(),
        );
    }
    created
}

/// A store (listing `page_size` keys a page) with a bucket of what a listing decides on: plain
/// text, odd keys, a folder marker, an archived object, one over the size cap, one the rules
/// exclude.
fn filled(page_size: usize) -> MemoryStore {
    let store = MemoryStore::new(page_size);
    store.create_bucket(BUCKET);
    for n in 0..40 {
        store.put(
            BUCKET,
            &format!("dir-{}/doc {n:02}.txt", n % 4),
            format!("document {n}").as_bytes(),
        );
    }
    store.put(BUCKET, "café/naïve+plus%.txt", b"odd key");
    store.put(BUCKET, "folder/", b"");
    store.put_with_class(BUCKET, "cold.txt", b"archived text", Some("GLACIER"));
    store.put(BUCKET, "big.txt", &[b'x'; 500]);
    store.put(BUCKET, "notes.md", b"excluded by the rules");
    store
}

const RULES: &str = "    sync_rules: [{bucket: docs, exclude: [\"**/*.md\"]}]\n";

#[tokio::test]
async fn an_inventory_sync_makes_the_index_a_listing_sync_makes() {
    inventory_sync_equals_listing_sync(COMPLETE).await;
}

#[tokio::test]
async fn a_parquet_inventory_sync_makes_the_index_a_listing_sync_makes() {
    inventory_sync_equals_listing_sync(PARQUET).await;
}

async fn inventory_sync_equals_listing_sync(layout: Layout) {
    let store = filled(7);
    let (listed, inventoried) = (MemorySink::default(), MemorySink::default());
    let by_listing = connector(RULES);
    let by_inventory = with_inventory(RULES);
    write_inventory(&store, "2026-11-20T00-00Z", layout);

    let first_listing = sync(&by_listing, &store, &listed).await;
    store.set_faults(Faults::default());
    let first = sync(&by_inventory, &store, &inventoried).await;
    assert_clean(&first, 0);
    assert_eq!(contents(&listed), contents(&inventoried));
    assert!(contents(&inventoried).len() > 40);
    let counts = |r: &SyncReport| (r.objects_listed, r.added, r.excluded, r.metadata_only);
    assert_eq!(
        counts(&first),
        counts(&first_listing),
        "{first:?}\n{first_listing:?}"
    );
    // The data files were read, not listed: the listing of `docs` never ran.
    let listings = store.completed_listings();
    assert!(
        !listings.keys().any(|(bucket, _)| bucket == BUCKET),
        "{listings:?}"
    );

    // Deletions, overwrites and additions, then the next day's inventory.
    for n in 0..5 {
        store.delete(BUCKET, &format!("dir-{}/doc {n:02}.txt", n % 4));
    }
    store.put(BUCKET, "dir-1/doc 09.txt", b"rewritten");
    store.put(BUCKET, "new/one.txt", b"added");
    write_inventory(&store, "2026-11-21T00-00Z", layout);
    store.take_gets();
    let second_listing = sync(&by_listing, &store, &listed).await;
    let listing_gets = store.take_gets();
    let second = sync(&by_inventory, &store, &inventoried).await;
    let inventory_gets = store.take_gets();
    assert_eq!(second.errors, 0, "{:?}", second.error_messages);
    assert_eq!(contents(&listed), contents(&inventoried));
    assert_eq!(
        (
            second.added,
            second.updated,
            second.deleted,
            second.unchanged
        ),
        (
            second_listing.added,
            second_listing.updated,
            second_listing.deleted,
            second_listing.unchanged
        ),
    );
    assert_eq!((second.added, second.updated, second.deleted), (1, 1, 5));
    // Unchanged objects are not fetched: the same GETs of `docs` as the listing's, plus the
    // inventory's own files.
    let of_docs = |gets: &std::collections::HashMap<String, u64>| {
        let mut keys: Vec<String> = gets
            .keys()
            .filter(|key| key.starts_with("docs/"))
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(of_docs(&inventory_gets), of_docs(&listing_gets));
    assert_eq!(
        of_docs(&inventory_gets),
        ["docs/dir-1/doc 09.txt", "docs/new/one.txt"]
    );
}

#[tokio::test]
async fn a_corrupt_or_incomplete_or_orc_inventory_deletes_nothing_and_indexes_nothing() {
    let store = filled(1000);
    let sink = MemorySink::default();
    let by_inventory = with_inventory("");
    write_inventory(&store, "2026-11-20T00-00Z", COMPLETE);
    let first = sync(&by_inventory, &store, &sink).await;
    assert_eq!(first.errors, 0, "{:?}", first.error_messages);
    let before = contents(&sink);
    for n in 0..10 {
        store.delete(BUCKET, &format!("dir-{}/doc {n:02}.txt", n % 4));
    }
    store.put(BUCKET, "new.txt", b"new");
    let broken: [(Layout, &[&str]); 6] = [
        (
            Layout {
                corrupt: true,
                ..COMPLETE
            },
            &["data/2026-11-21T00-00Z-0.csv.gz", "has MD5"],
        ),
        (
            Layout {
                missing: true,
                ..COMPLETE
            },
            &["data/2026-11-22T00-00Z-2.csv.gz that the manifest names does not exist"],
        ),
        (
            Layout {
                label: Some(("ORC", "struct<bucket:string,key:string>")),
                ..COMPLETE
            },
            &["has fileFormat \"ORC\"; only CSV and Parquet inventories are read"],
        ),
        (
            Layout {
                corrupt: true,
                ..PARQUET
            },
            &["data/2026-11-24T00-00Z-0.parquet", "has MD5"],
        ),
        // The MD5s match, but the files are not Parquet.
        (
            Layout {
                label: Some(("Parquet", testing::PARQUET_SCHEMA)),
                ..COMPLETE
            },
            &[
                "data/2026-11-25T00-00Z-",
                ".csv.gz cannot be read as Parquet",
            ],
        ),
        // Parquet, read as the gzip CSV the manifest says it is.
        (
            Layout {
                label: Some(("CSV", testing::CSV_SCHEMA)),
                ..PARQUET
            },
            &["line 1 of the inventory data file reports/docs/daily/data/2026-11-26T00-00Z-"],
        ),
    ];
    for (day, (layout, expected)) in broken.into_iter().enumerate() {
        write_inventory(&store, &format!("2026-11-2{}T00-00Z", day + 1), layout);
        let report = sync(&by_inventory, &store, &sink).await;
        assert_eq!(
            (report.errors, report.deleted, report.added),
            (1, 0, 0),
            "{report:?}"
        );
        let message = &report.error_messages[0];
        for expected in ["bucket docs: its S3 Inventory could not be used, so nothing was deleted"]
            .iter()
            .chain(expected)
        {
            assert!(message.contains(expected), "{expected:?} not in {message}");
        }
        assert_eq!(contents(&sink), before);
    }
}

#[tokio::test]
async fn an_inventory_without_its_checksum_is_passed_over_for_the_one_before() {
    let store = filled(1000);
    let sink = MemorySink::default();
    let by_inventory = with_inventory("");
    store.create_bucket(DESTINATION);

    // No inventory yet: the bucket is listed, and the report says so.
    let listed = sync(&by_inventory, &store, &sink).await;
    assert_clean(&listed, 1);
    assert!(listed.added > 40);

    write_inventory(&store, "2026-11-20T00-00Z", COMPLETE);
    store.put(
        BUCKET,
        "after-the-first.txt",
        b"only in the second inventory",
    );
    // The second inventory is still being written (no checksum), the third's manifest does
    // not match its checksum: both are passed over.
    write_inventory(
        &store,
        "2026-11-21T00-00Z",
        Layout {
            checksum: false,
            ..COMPLETE
        },
    );
    write_inventory(&store, "2026-11-22T00-00Z", COMPLETE);
    store.put(
        DESTINATION,
        "reports/docs/daily/2026-11-22T00-00Z/manifest.checksum",
        b"0123456789abcdef0123456789abcdef",
    );

    let report = sync(&by_inventory, &store, &sink).await;
    assert_clean(&report, 0);
    // The first inventory's objects, not the new one (a listing would have added it).
    assert_eq!(report.objects_listed, listed.objects_listed);
    assert_eq!(report.added, 0);
    assert!(
        !sink
            .documents()
            .contains_key(&DocId::of(BUCKET, "after-the-first.txt"))
    );
}

#[tokio::test]
async fn a_stale_inventory_is_not_used() {
    let store = filled(1000);
    let sink = MemorySink::default();
    write_inventory(&store, "2026-11-20T00-00Z", COMPLETE);
    store.put(BUCKET, "after.txt", b"written after the inventory");
    // The store's clock is in 1970: any real max_age finds this inventory stale.
    let stale = connector(
        "    inventory: {destination: \"s3://inv/reports\", config_id: daily, max_age: 8d, deletion_grace: 0s}\n",
    );
    let report = sync(&stale, &store, &sink).await;
    assert_clean(&report, 1);
    assert!(
        sink.documents()
            .contains_key(&DocId::of(BUCKET, "after.txt")),
        "listed instead"
    );
}

#[tokio::test]
async fn documents_newer_than_the_inventory_are_neither_deleted_nor_fetched_again() {
    let store = filled(1000);
    let sink = MemorySink::default();
    store.put(BUCKET, "deleted-before.txt", b"gone before the inventory");
    let listing = connector("");
    assert_eq!(sync(&listing, &store, &sink).await.errors, 0);
    store.delete(BUCKET, "deleted-before.txt");
    write_inventory(&store, "2026-11-20T00-00Z", COMPLETE);

    // Written after the inventory and indexed by a listing (or an event) since.
    store.put(BUCKET, "written-after.txt", b"new since the inventory");
    store.put(BUCKET, "dir-2/doc 02.txt", b"rewritten since the inventory");
    assert_eq!(sync(&listing, &store, &sink).await.errors, 0);
    let rewritten = DocId::of(BUCKET, "dir-2/doc 02.txt");
    let newest = sink.documents()[&rewritten].version();
    store.take_gets();

    let report = sync(&with_inventory(""), &store, &sink).await;
    assert_eq!(report.errors, 0, "{:?}", report.error_messages);
    assert_eq!(
        (report.deleted, report.kept_after_inventory),
        (0, 1),
        "{report:?}"
    );
    assert!(
        sink.documents()
            .contains_key(&DocId::of(BUCKET, "written-after.txt"))
    );
    assert_eq!(
        sink.documents()[&rewritten].version(),
        newest,
        "the newer version stays"
    );
    assert_eq!(
        sink.documents()[&rewritten].body.as_deref(),
        Some("rewritten since the inventory")
    );
    let gets = store.take_gets();
    assert!(!gets.keys().any(|key| key.starts_with("docs/")), "{gets:?}");

    // An object deleted before the inventory was made goes (it was never in this index's
    // inventory sync: delete it from the store and index it again first).
    store.put(BUCKET, "old.txt", b"old");
    assert_eq!(sync(&listing, &store, &sink).await.added, 1);
    store.delete(BUCKET, "old.txt");
    write_inventory(&store, "2026-11-21T00-00Z", COMPLETE);
    // Within the default grace (modified seconds before the inventory, which S3's eventually
    // consistent scan may have missed), its document stays.
    let report = sync(&with_default_grace(), &store, &sink).await;
    assert_eq!(
        (report.errors, report.deleted),
        (0, 0),
        "{:?}",
        report.error_messages
    );
    assert!(report.kept_after_inventory >= 1, "{report:?}");
    assert!(sink.documents().contains_key(&DocId::of(BUCKET, "old.txt")));
    let report = sync(&with_inventory(""), &store, &sink).await;
    assert_eq!(
        (report.errors, report.deleted),
        (0, 1),
        "{:?}",
        report.error_messages
    );
    assert!(!sink.documents().contains_key(&DocId::of(BUCKET, "old.txt")));
}

#[tokio::test]
async fn shards_over_an_inventory_add_up_to_the_whole() {
    let store = filled(1000);
    write_inventory(&store, "2026-11-20T00-00Z", COMPLETE);
    let whole_sink = MemorySink::default();
    let whole = sync(&with_inventory(""), &store, &whole_sink).await;
    assert_eq!(whole.errors, 0, "{:?}", whole.error_messages);

    let sharded = with_inventory("    sharding: {by: prefix, depth: 1}\n");
    let sink = MemorySink::default();
    let count = 3;
    let mut listed = 0;
    for index in 0..count {
        let shard = Shard::new(ShardSpec { index, count }, "c", &sharded.sharding).unwrap();
        let report = sync_shard(&sharded, &store, &sink, &shard).await;
        assert_eq!(report.errors, 0, "{:?}", report.error_messages);
        assert!(
            report.objects_listed < whole.objects_listed,
            "shard {index} listed everything"
        );
        listed += report.objects_listed;
    }
    assert_eq!(listed, whole.objects_listed);
    assert_eq!(contents(&sink), contents(&whole_sink));
}

/// The model of inventory-driven syncs: random histories of writes, deletes, inventories and
/// syncs (by inventory or by listing), each sync checked against the promises.
mod model {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    use super::*;

    /// Keys with odd characters, and one that is a prefix of another.
    const KEYS: [&str; 5] = [
        "a.txt",
        "a.txt/b.txt",
        "dir/c d+e%.txt",
        "dir/ü.txt",
        "z.txt",
    ];

    #[derive(Debug, Clone)]
    enum Step {
        /// Writes the key with a text of its own.
        Put(usize),
        Delete(usize),
        /// S3 writes an inventory of the bucket as it is now, in gzip CSV or Parquet.
        Inventory(Format),
        /// A sync that reads the newest inventory (a listing while there is none).
        SyncByInventory,
        SyncByListing,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0..KEYS.len()).prop_map(Step::Put),
            2 => (0..KEYS.len()).prop_map(Step::Delete),
            2 => prop_oneof![Just(Format::Csv), Just(Format::Parquet)].prop_map(Step::Inventory),
            3 => Just(Step::SyncByInventory),
            1 => Just(Step::SyncByListing),
        ]
    }

    /// A key's text in the bucket: numbered writes, so every write has a text of its own.
    type Bucket = BTreeMap<&'static str, String>;

    /// What the index holds: key → body.
    fn bodies(sink: &MemorySink) -> BTreeMap<String, String> {
        contents(sink)
            .into_values()
            .map(|(key, body, _, _)| (key, body.unwrap_or_default()))
            .collect()
    }

    fn the_bucket(bucket: &Bucket) -> BTreeMap<String, String> {
        bucket
            .iter()
            .map(|(key, text)| ((*key).to_owned(), text.clone()))
            .collect()
    }

    /// Checks one inventory-driven sync: it indexes nothing the bucket or the index did not
    /// hold (texts come from the bucket now, or stay as they were); it deletes a document only
    /// when the document's object is older than the inventory, and either the inventory does
    /// not name its key or S3 no longer holds the object; and every object the inventory names,
    /// unchanged since, ends up indexed.
    ///
    /// A key the inventory names may still lose its document: when the index holds an older
    /// version than the inventory names, the sync GETs the object, and if it was deleted since
    /// the inventory was made, S3 answers that it is gone and the document goes, as after a
    /// ListObjectsV2 page whose object vanished before its GET. The inventory is a snapshot;
    /// promising more than the bucket now holds is more than S3 allows (issue #22, kept in
    /// `an_object_deleted_after_the_inventory_that_names_it_goes_when_its_get_finds_it_gone`).
    fn check_inventory_sync(
        before: &BTreeMap<String, String>,
        after: &BTreeMap<String, String>,
        now: &Bucket,
        inventory: Option<&(Bucket, OffsetDateTime)>,
        modified: &BTreeMap<String, OffsetDateTime>,
    ) -> Result<(), TestCaseError> {
        for (key, body) in after {
            let current = now.get(key.as_str()) == Some(body);
            prop_assert!(
                current || before.get(key) == Some(body),
                "{key:?} indexed as {body:?}, neither in the bucket nor in the index before"
            );
        }
        let Some((named, created)) = inventory else {
            // No inventory: the sync listed the bucket.
            prop_assert_eq!(after, &the_bucket(now));
            return Ok(());
        };
        for key in before.keys().filter(|key| !after.contains_key(*key)) {
            prop_assert!(
                !named.contains_key(key.as_str()) || !now.contains_key(key.as_str()),
                "{key:?} deleted though the inventory names it and the bucket holds it"
            );
            prop_assert!(
                modified.get(key).is_some_and(|at| at < created),
                "{key:?} deleted though its object is not older than the inventory"
            );
        }
        for (key, text) in named {
            if now.get(key) == Some(text) {
                prop_assert_eq!(after.get(*key), Some(text), "{:?} missing or stale", key);
            }
        }
        Ok(())
    }

    async fn check_history(steps: Vec<Step>) -> Result<(), TestCaseError> {
        let store = MemoryStore::new(2);
        store.create_bucket(BUCKET);
        // The destination exists before S3 delivers the first inventory.
        store.create_bucket(DESTINATION);
        let sink = MemorySink::with_scan_page_size(2);
        let (by_inventory, by_listing) = (with_inventory(""), connector(""));
        let mut now = Bucket::new();
        // The newest inventory: what it names, and when it was made.
        let mut inventory: Option<(Bucket, OffsetDateTime)> = None;
        let mut writes = 0;
        let final_steps = [Step::Inventory(Format::Parquet), Step::SyncByInventory];
        for step in steps.into_iter().chain(final_steps) {
            match step {
                Step::Put(key) => {
                    writes += 1;
                    let text = format!("text {writes}");
                    store.put(BUCKET, KEYS[key], text.as_bytes());
                    now.insert(KEYS[key], text);
                }
                Step::Delete(key) => {
                    store.delete(BUCKET, KEYS[key]);
                    now.remove(KEYS[key]);
                }
                Step::Inventory(format) => {
                    // Dated folders in order: the newest is the last written.
                    let folder = format!("2026-11-{:02}T00-00Z", inventories(&store) + 1);
                    let created = write_inventory(&store, &folder, Layout { format, ..COMPLETE });
                    inventory = Some((now.clone(), created));
                }
                Step::SyncByListing => {
                    let report = sync(&by_listing, &store, &sink).await;
                    prop_assert_eq!(report.errors, 0, "{:?}", report.error_messages);
                    prop_assert_eq!(bodies(&sink), the_bucket(&now));
                }
                Step::SyncByInventory => {
                    let before = bodies(&sink);
                    // When each document's object was written, as the document records it.
                    let modified: BTreeMap<String, OffsetDateTime> = sink
                        .documents()
                        .into_values()
                        .map(|document| (document.key, document.last_modified))
                        .collect();
                    let report = sync(&by_inventory, &store, &sink).await;
                    prop_assert_eq!(
                        report.inventory_fallbacks,
                        u64::from(inventory.is_none()),
                        "{:?}",
                        report.error_messages
                    );
                    let after = bodies(&sink);
                    check_inventory_sync(&before, &after, &now, inventory.as_ref(), &modified)?;
                }
            }
        }
        // An inventory of the bucket as it is, then a sync by it: the index is the bucket.
        prop_assert_eq!(bodies(&sink), the_bucket(&now));
        Ok(())
    }

    /// How many inventories the store holds.
    fn inventories(store: &MemoryStore) -> usize {
        store
            .objects(DESTINATION)
            .keys()
            .filter(|key| key.ends_with("/manifest.json"))
            .count()
    }

    /// The history the model test once failed on (issue #22, kept in the regression file too):
    /// the index holds `a.txt/b.txt` in its first version, the inventory names the second, and
    /// the object is deleted after the inventory was made. The inventory's newer version makes
    /// the sync GET the object, S3 answers that it is gone, and the sync deletes its document,
    /// as it does when an object vanishes between a ListObjectsV2 page and its GET. That is
    /// right: an inventory is a snapshot, S3 at the time of the GET is the truth, and keeping
    /// the document would index an object that no longer exists. The model's old promise
    /// ("never deleted while the inventory names it") asked more than S3 allows.
    #[test]
    fn an_object_deleted_after_the_inventory_that_names_it_goes_when_its_get_finds_it_gone() {
        let steps = vec![
            Step::Put(1),
            Step::SyncByInventory,
            Step::Put(1),
            Step::Inventory(Format::Csv),
            Step::Delete(1),
            Step::SyncByInventory,
        ];
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(check_history(steps)).unwrap();
    }

    proptest! {
        #![proptest_config(crate::proptest_config::with_cases(300))]

        #[test]
        fn inventory_syncs_keep_their_promises(
            steps in proptest::collection::vec(step(), 1..16),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(check_history(steps))?;
        }
    }
}
