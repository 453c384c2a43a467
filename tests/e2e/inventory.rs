//! S3 Inventory as the listing, against moto: inventories are written into a destination
//! bucket as S3 lays them out (gzip CSV or Snappy Parquet data files named by `manifest.json`,
//! with MD5s, and `manifest.checksum`; `s3_connector::source::inventory::testing`), built from
//! the source bucket's own listing, and a connector with `inventory:` syncs from them into the
//! embedded index and into osmem-server.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::types::StorageClass;
use s3_connector::sink::ContentStatus;
use s3_connector::source::inventory::manifest::md5_hex;
use s3_connector::source::inventory::testing::{self, Format, InventoryRow};

use crate::fixture::{Backend, Setup, create_bucket, delete, put, put_with_class, s3_client};
use crate::support::{MotoServer, unique_name};

/// Writes the inventory of `source` as it lists now into
/// `s3://destination/reports/<source>/daily/<folder>/` in `format`, its rows spread over two
/// data files; with `corrupt`, the first data file is changed after its MD5 went into the
/// manifest.
async fn write_inventory(
    s3: &Client,
    source: &str,
    destination: &str,
    folder: &str,
    format: Format,
    corrupt: bool,
) {
    let created = time::OffsetDateTime::now_utc();
    let listing = s3
        .list_objects_v2()
        .bucket(source)
        .send()
        .await
        .expect("list the source bucket");
    let mut files = [Vec::new(), Vec::new()];
    for (n, object) in listing.contents().iter().enumerate().rev() {
        let modified = object.last_modified().unwrap();
        let modified =
            time::OffsetDateTime::from_unix_timestamp_nanos(modified.as_nanos()).unwrap();
        files[n % 2].push(InventoryRow::object(
            source,
            object.key().unwrap(),
            u64::try_from(object.size().unwrap()).unwrap(),
            modified,
            object.e_tag().unwrap(),
            object
                .storage_class()
                .map_or("STANDARD", |class| class.as_str()),
        ));
    }
    let base = format!("reports/{source}/daily");
    let data: Vec<(String, Vec<u8>)> = files
        .iter()
        .enumerate()
        .map(|(n, rows)| {
            let key = format!("{base}/data/{folder}-{n}.{}", format.extension());
            (key, testing::data_file(format, rows))
        })
        .collect();
    let named: Vec<(String, &[u8])> = data
        .iter()
        .map(|(key, bytes)| (key.clone(), bytes.as_slice()))
        .collect();
    let manifest = testing::manifest(source, destination, created, format, &named);
    for (n, (key, mut bytes)) in data.into_iter().enumerate() {
        if corrupt && n == 0 {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x55;
        }
        put(s3, destination, &key, bytes).await;
    }
    put(
        s3,
        destination,
        &format!("{base}/{folder}/manifest.json"),
        manifest.clone(),
    )
    .await;
    let checksum = md5_hex(manifest.as_bytes());
    put(
        s3,
        destination,
        &format!("{base}/{folder}/manifest.checksum"),
        checksum,
    )
    .await;
}

#[tokio::test]
async fn a_sync_reads_the_newest_complete_inventory_instead_of_listing_embedded() {
    a_sync_reads_the_newest_complete_inventory_instead_of_listing(Backend::Embedded, Format::Csv)
        .await;
}

#[tokio::test]
async fn a_sync_reads_the_newest_complete_inventory_instead_of_listing_osmem() {
    a_sync_reads_the_newest_complete_inventory_instead_of_listing(Backend::Osmem, Format::Csv)
        .await;
}

#[tokio::test]
async fn a_sync_reads_a_parquet_inventory_instead_of_listing_embedded() {
    a_sync_reads_the_newest_complete_inventory_instead_of_listing(
        Backend::Embedded,
        Format::Parquet,
    )
    .await;
}

#[tokio::test]
async fn a_sync_reads_a_parquet_inventory_instead_of_listing_osmem() {
    a_sync_reads_the_newest_complete_inventory_instead_of_listing(Backend::Osmem, Format::Parquet)
        .await;
}

/// Both sinks (the deletion rule reads each sink's last-modified times), both data file
/// formats.
async fn a_sync_reads_the_newest_complete_inventory_instead_of_listing(
    backend: Backend,
    format: Format,
) {
    let moto = MotoServer::start();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let (source, destination) = (unique_name("inv-source"), unique_name("inv-dest"));
    create_bucket(&s3, &source).await;
    create_bucket(&s3, &destination).await;
    let objects: &[(&str, &str)] = &[
        ("docs/readme.txt", "alpha bravo"),
        ("with space/file one.txt", "charlie delta"),
        ("unicode/\u{e9}t\u{e9} \u{2603}.txt", "echo foxtrot"),
        ("plus+sign.txt", "golf hotel"),
        ("percent%20literal.txt", "india juliet"),
        ("soon-deleted.txt", "kilo lima"),
    ];
    for (key, body) in objects {
        put(&s3, &source, key, *body).await;
    }
    put_with_class(
        &s3,
        &source,
        "cold/archived.txt",
        "mike",
        StorageClass::Glacier,
    )
    .await;
    write_inventory(
        &s3,
        &source,
        &destination,
        "2026-11-20T00-00Z",
        format,
        false,
    )
    .await;

    let setup = Setup::for_backend(&backend);
    // No deletion grace: the objects are seconds older than the inventories here (the
    // default day of grace is tested in src/sync/inventory_scenarios.rs).
    let config = setup.config(
        &endpoint,
        &[&source],
        &format!(
            "    inventory: {{destination: \"s3://{destination}/reports\", config_id: daily, deletion_grace: 0s}}\n"
        ),
    );
    moto.start_recording();
    let first = Box::pin(setup.sync(&config)).await;
    moto.stop_recording();
    assert_eq!(
        (first.errors, first.inventory_fallbacks),
        (0, 0),
        "{:?}",
        first.error_messages
    );
    assert_eq!((first.objects_listed, first.added), (7, 7), "{first:?}");
    for (key, body) in objects {
        let doc = setup
            .doc(&source, key)
            .unwrap_or_else(|| panic!("{key} is indexed"));
        assert_eq!(doc.body.as_deref(), Some(*body), "{key}");
    }
    let cold = setup.doc(&source, "cold/archived.txt").unwrap();
    assert_eq!(
        cold.content_status,
        ContentStatus::Archived,
        "archive classes are held back"
    );
    let requests = moto.recorded_requests();
    let source_path = format!("/{source}");
    assert!(
        !requests
            .iter()
            .any(|r| r.path().trim_end_matches('/') == source_path
                && r.query().unwrap_or("").contains("list-type=2")),
        "the source bucket is not listed"
    );

    // Unchanged against the next inventory: nothing downloaded again.
    write_inventory(
        &s3,
        &source,
        &destination,
        "2026-11-21T00-00Z",
        format,
        false,
    )
    .await;
    let second = Box::pin(setup.sync(&config)).await;
    assert_eq!(second.errors, 0, "{:?}", second.error_messages);
    assert_eq!(
        (
            second.unchanged,
            second.added,
            second.updated,
            second.deleted
        ),
        (7, 0, 0, 0)
    );

    // A deletion, then an inventory whose data file is corrupt: nothing is deleted.
    delete(&s3, &source, "soon-deleted.txt").await;
    // Listings give whole seconds: let the deleted object's second pass before the inventory.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    write_inventory(
        &s3,
        &source,
        &destination,
        "2026-11-22T00-00Z",
        format,
        true,
    )
    .await;
    let corrupt = Box::pin(setup.sync(&config)).await;
    assert_eq!((corrupt.errors, corrupt.deleted), (1, 0), "{corrupt:?}");
    let message = &corrupt.error_messages[0];
    assert!(
        message.contains("nothing was deleted") && message.contains("MD5"),
        "{message}"
    );
    assert!(setup.doc(&source, "soon-deleted.txt").is_some());

    // A good inventory deletes what it no longer lists.
    write_inventory(
        &s3,
        &source,
        &destination,
        "2026-11-23T00-00Z",
        format,
        false,
    )
    .await;
    let good = Box::pin(setup.sync(&config)).await;
    assert_eq!((good.errors, good.deleted), (0, 1), "{good:?}");
    assert!(setup.doc(&source, "soon-deleted.txt").is_none());

    // An object written after the inventory, indexed by a listing, is kept by the next
    // inventory sync, which does not list it.
    put(&s3, &source, "written-after.txt", "november").await;
    let plain = setup.config(&endpoint, &[&source], "");
    let listed = Box::pin(setup.sync(&plain)).await;
    assert_eq!(listed.added, 1, "a listing indexes the new object");
    let last = Box::pin(setup.sync(&config)).await;
    assert_eq!(last.errors, 0, "{:?}", last.error_messages);
    assert_eq!(
        (last.deleted, last.kept_after_inventory),
        (0, 1),
        "{last:?}"
    );
    assert!(setup.doc(&source, "written-after.txt").is_some());
}

#[tokio::test]
async fn verify_finds_the_newest_complete_inventory_or_warns_that_the_sync_will_list() {
    use s3_connector::verify::{PropagationWait, Status, Step, verify_connector};
    let moto = MotoServer::shared();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let (source, destination) = (unique_name("inv-verify"), unique_name("inv-verify-dest"));
    create_bucket(&s3, &source).await;
    create_bucket(&s3, &destination).await;
    put(&s3, &source, "doc.txt", "oscar").await;
    let setup = Setup::new();
    let config = setup.config(
        &endpoint,
        &[&source],
        &format!(
            "    inventory: {{destination: \"s3://{destination}/reports\", config_id: daily, deletion_grace: 0s}}\n"
        ),
    );
    let inventory_step = |results: &[s3_connector::verify::StepResult]| {
        let found: Vec<_> = results
            .iter()
            .filter(|r| r.step == Step::Inventory)
            .cloned()
            .collect();
        assert_eq!(found.len(), 1, "{results:?}");
        found[0].clone()
    };

    let before = verify_connector(&config.connectors[0], PropagationWait::default()).await;
    let missing = inventory_step(&before);
    assert_eq!(missing.status, Status::Warn, "{missing:?}");
    assert!(
        missing.message.contains("no complete inventory"),
        "{}",
        missing.message
    );
    assert!(
        missing.message.contains("will list the bucket"),
        "{}",
        missing.message
    );
    assert_eq!(
        missing.target,
        format!("s3://{destination}/reports/{source}/daily/")
    );

    write_inventory(
        &s3,
        &source,
        &destination,
        "2026-11-20T00-00Z",
        Format::Parquet,
        false,
    )
    .await;
    let after = verify_connector(&config.connectors[0], PropagationWait::default()).await;
    let found = inventory_step(&after);
    assert_eq!(found.status, Status::Pass, "{found:?}");
    assert!(
        found.message.contains("2026-11-20T00-00Z/manifest.json")
            && found.message.contains("2 data files"),
        "{}",
        found.message
    );
}
