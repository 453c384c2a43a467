//! S3 Inventory as a bucket's listing (a connector's `inventory:` block), a [`Listing`] beside
//! ListObjectsV2: the newest complete inventory of the bucket is found, checked and sorted by
//! key ([`prepare`]), then read as listing pages ([`Inventory::listing`]), so the sync applies
//! rules, the unchanged check, the size cap, archive classes, shards and the mass-delete guard
//! exactly as to a ListObjectsV2 listing. It knows nothing of the sync or the index.
//!
//! Safety, on top of the listing's rule (delete only after a complete listing):
//! - *Complete* means: the dated folder's `manifest.json` and `manifest.checksum` both exist
//!   and match (a folder S3 is still writing is passed over for the one before), and every
//!   data file has the size and MD5 its manifest gives. A data file that is missing, corrupt or
//!   unreadable fails [`prepare`] before a single page is read: nothing is indexed or deleted.
//! - The listing is a snapshot ([`Freshness::Snapshot`]): a document whose object was modified
//!   at or after the inventory's creation time, less the connector's `deletion_grace`, is never
//!   deleted because the inventory lacks it ([`crate::source::listing::deletable`], given that
//!   boundary): it was written after the snapshot, or so shortly before it that the eventually
//!   consistent scan may have missed it. An object the inventory lists but S3 no longer has is
//!   `Fetched::Gone` on GET, as for a listing.
//! - No inventory, or none fresher than `max_age`: [`prepare`] says so (logged) and the caller
//!   lists the bucket with ListObjectsV2 (the sync counts it in `inventory_fallbacks`).
//!
//! Gzip CSV and Parquet inventories are read; ORC is refused with an error that says so.
//! The pure parts are [`manifest`] (layout, manifest, checksums, freshness), [`schema`] (the
//! columns of CSV rows) and [`rows`] (CSV rows, and the entry both formats make);
//! [`parquet_rows`] reads a Parquet data file a row group at a time (its row decoding pure);
//! [`sort`] is the external sort that keeps memory flat; [`error`] is why an inventory could
//! not be used. [`testing`] writes inventories as AWS lays them out, for the tests and the
//! benchmark.

pub mod error;
pub mod manifest;
pub mod parquet_rows;
pub mod rows;
pub mod schema;
pub mod sort;
#[doc(hidden)]
pub mod testing;

use std::io::{self, BufRead as _, BufReader, Read as _};
use std::path::Path;

use md5::{Digest, Md5};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::inventory::InventorySettings;
use crate::source::listing::{Freshness, Listing, Stopped};
use crate::source::s3::{Fetched, ObjectEntry};
use crate::source::{ListRequest, ObjectStore};
pub use error::InventoryError;
use manifest::{DataFile, DataFormat, Manifest};
use rows::Row;
use schema::Schema;
use sort::{Sorted, Sorter};

/// Entries a page fed to the merge holds (as a ListObjectsV2 page).
const PAGE: usize = 1000;

/// The largest `manifest.json` read (about 300,000 data files).
const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

/// The largest `manifest.checksum` read.
const MAX_CHECKSUM_BYTES: u64 = 1024;

/// A checked inventory, sorted, ready to be read as a listing.
pub struct Inventory {
    /// When S3 made it.
    pub created: OffsetDateTime,
    /// Its creation less the connector's `deletion_grace`: documents of objects modified since
    /// are not deleted on its word.
    deletable_before: OffsetDateTime,
    sorted: Sorted,
    cancel: CancellationToken,
}

/// Finds the newest complete inventory of `bucket`, checks it and sorts it. `Ok(None)` when
/// there is no complete inventory fresher than `max_age` (logged here): the caller lists
/// instead. `cancel` stops it between data files, and the listing it makes between entries.
pub async fn prepare<O: ObjectStore>(
    source: &O,
    settings: &InventorySettings,
    bucket: &str,
    cancel: &CancellationToken,
) -> Result<Option<Inventory>, InventoryError> {
    let destination = settings.bucket.as_str();
    let folder = settings.folder(bucket);
    let fallback = |reason: String| {
        tracing::warn!(
            message = "No usable S3 Inventory; listing the bucket with ListObjectsV2 instead.",
            bucket,
            reason = %reason
        );
        Ok(None)
    };
    let Some((path, manifest)) = newest(source, settings, bucket).await? else {
        return fallback(format!(
            "no complete inventory (manifest.json with a matching manifest.checksum) under s3://{destination}/{folder}"
        ));
    };
    if !manifest::is_fresh(
        manifest.created,
        OffsetDateTime::now_utc(),
        settings.max_age,
    ) {
        return fallback(format!(
            "the newest complete inventory, {path}, was created {}, longer ago than max_age ({})",
            manifest.created,
            humantime::format_duration(settings.max_age)
        ));
    }
    tracing::info!(
        message = "Reading the bucket's listing from S3 Inventory.",
        bucket,
        manifest = %path,
        created = %manifest.created,
        files = manifest.files.len()
    );
    let created = manifest.created;
    let mut sorter = Sorter::new(sort::RUN_BYTES);
    for file in &manifest.files {
        if cancel.is_cancelled() {
            return Err(InventoryError::Cancelled);
        }
        sorter = read_data_file(source, destination, bucket, &manifest, file, sorter).await?;
    }
    let sorted = tokio::task::spawn_blocking(move || sorter.finish())
        .await
        .map_err(io::Error::other)??;
    Ok(Some(Inventory {
        created,
        deletable_before: created - settings.deletion_grace,
        sorted,
        cancel: cancel.clone(),
    }))
}

/// The newest complete inventory of `bucket` (its manifest's `s3://` path and the manifest,
/// checked), whatever its age; `None` when there is none. The data files are not read.
pub async fn newest<O: ObjectStore>(
    source: &O,
    settings: &InventorySettings,
    bucket: &str,
) -> Result<Option<(String, Manifest)>, InventoryError> {
    let folders = dated_folders(source, &settings.bucket, &settings.folder(bucket)).await?;
    newest_complete(source, &settings.bucket, bucket, &folders).await
}

/// The dated folders under `folder` in the destination bucket, newest first.
async fn dated_folders<O: ObjectStore>(
    source: &O,
    destination: &str,
    folder: &str,
) -> Result<Vec<(OffsetDateTime, String)>, InventoryError> {
    let request = ListRequest {
        prefix: folder,
        start_after: None,
        delimited: true,
    };
    let mut prefixes = Vec::new();
    let mut continuation = None;
    loop {
        let page = source
            .list_page(destination, &request, continuation)
            .await?;
        prefixes.extend(page.common_prefixes);
        match page.continuation {
            Some(next) => continuation = Some(next),
            None => break,
        }
    }
    Ok(manifest::dated_folders(&prefixes, folder))
}

/// The newest of `folders` whose manifest and checksum both exist and match, parsed; `None`
/// when none is complete.
async fn newest_complete<O: ObjectStore>(
    source: &O,
    destination: &str,
    bucket: &str,
    folders: &[(OffsetDateTime, String)],
) -> Result<Option<(String, Manifest)>, InventoryError> {
    for (_, dated) in folders {
        let path = format!("{dated}manifest.json");
        let checksum = format!("{dated}manifest.checksum");
        let read = |key: String, max: u64| async move {
            match source.get_object(destination, &key, max).await? {
                Fetched::Content(object) => Ok(Some(object.bytes)),
                Fetched::Gone => Ok(None),
                Fetched::TooLarge => Err(InventoryError::Manifest {
                    path: format!("s3://{destination}/{key}"),
                    reason: format!("is larger than {max} bytes"),
                }),
            }
        };
        let Some(sum) = read(checksum, MAX_CHECKSUM_BYTES).await? else {
            tracing::info!(message = "Passing over an inventory without manifest.checksum (incomplete).", folder = %dated);
            continue;
        };
        let Some(bytes) = read(path.clone(), MAX_MANIFEST_BYTES).await? else {
            tracing::info!(message = "Passing over an inventory without manifest.json.", folder = %dated);
            continue;
        };
        if !manifest::checksum_matches(&bytes, &sum) {
            tracing::warn!(message = "Passing over an inventory whose manifest.json does not match manifest.checksum.", folder = %dated);
            continue;
        }
        let full_path = format!("s3://{destination}/{path}");
        let parsed = manifest::parse(&bytes, &full_path, bucket, destination)?;
        return Ok(Some((full_path, parsed)));
    }
    Ok(None)
}

/// Downloads one data file to a temporary file, checks its size and MD5, and adds its rows to
/// the sorter (off the async threads: decompressing, decoding and sorting are CPU work).
async fn read_data_file<O: ObjectStore>(
    source: &O,
    destination: &str,
    bucket: &str,
    manifest: &Manifest,
    file: &DataFile,
    sorter: Sorter,
) -> Result<Sorter, InventoryError> {
    let download = tempfile::NamedTempFile::new()?;
    let Some(size) = source
        .download(destination, &file.key, download.path())
        .await?
    else {
        return Err(InventoryError::MissingData {
            key: file.key.clone(),
        });
    };
    let corrupt = |reason: String| InventoryError::Corrupt {
        key: file.key.clone(),
        reason,
    };
    if size != file.size {
        return Err(corrupt(format!(
            "has {size} bytes where the manifest says {}",
            file.size
        )));
    }
    let format = manifest.format.clone();
    let file = file.clone();
    let bucket = bucket.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut sorter = sorter;
        let md5 = file_md5(download.path())?;
        if !md5.eq_ignore_ascii_case(&file.md5) {
            return Err(InventoryError::Corrupt {
                key: file.key.clone(),
                reason: format!(
                    "has MD5 {md5} where the manifest says {}: it is corrupt or was replaced",
                    file.md5
                ),
            });
        }
        match &format {
            DataFormat::Csv(schema) => {
                let gz = BufReader::new(download.reopen()?);
                sort_rows(gz, &file.key, schema, &bucket, &mut sorter)?;
            }
            DataFormat::Parquet => {
                parquet_rows::sort_rows(download.reopen()?, &file.key, &bucket, &mut sorter)?;
            }
        }
        Ok(sorter)
    })
    .await
    .map_err(io::Error::other)?
}

/// Decodes the rows of one gzip CSV data file (`key`, for errors) of the inventory of
/// `bucket` into `sorter`; returns how many objects it added. Blocking.
pub fn sort_rows(
    gzip_csv: impl io::Read,
    key: &str,
    schema: &Schema,
    bucket: &str,
    sorter: &mut Sorter,
) -> Result<u64, InventoryError> {
    let gz = flate2::read::MultiGzDecoder::new(gzip_csv);
    let mut added = 0;
    for (number, line) in BufReader::new(gz).lines().enumerate() {
        let row_error = |reason: String| InventoryError::Row {
            key: key.to_owned(),
            line: number as u64 + 1,
            reason,
        };
        let line = line
            .map_err(|error| row_error(format!("cannot be read (gzip CSV expected): {error}")))?;
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        match rows::decode(line, schema, bucket).map_err(row_error)? {
            Row::Object(entry) => {
                sorter.push(entry)?;
                added += 1;
            }
            Row::Skipped => {}
        }
    }
    Ok(added)
}

/// The hex MD5 of a file's bytes, read in blocks.
fn file_md5(path: &Path) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Md5::new();
    let mut block = vec![0u8; 256 * 1024];
    loop {
        let read = file.read(&mut block)?;
        if read == 0 {
            break;
        }
        hasher.update(&block[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

impl Inventory {
    /// The inventory's entries under `prefixes` (disjoint, in byte order) that `owns` keeps,
    /// as a listing: pages of up to 1,000 entries (as ListObjectsV2 pages), in key order. A key
    /// listed twice fails it.
    pub fn listing<F>(self, prefixes: &[String], owns: F) -> InventoryListing<F>
    where
        F: Fn(&str) -> bool + Send,
    {
        InventoryListing {
            inventory: self,
            prefixes: prefixes.to_vec(),
            owns,
            last: None,
            done: false,
        }
    }
}

/// An inventory read as a listing ([`Inventory::listing`]).
pub struct InventoryListing<F> {
    inventory: Inventory,
    prefixes: Vec<String>,
    owns: F,
    /// The last key read, to refuse a key listed twice.
    last: Option<String>,
    /// Whether the last entry was read.
    done: bool,
}

impl<F: Fn(&str) -> bool + Send> InventoryListing<F> {
    /// The next page, read from the sorted runs (blocking, as the sort's reads are local).
    fn read_page(&mut self) -> Result<Option<Vec<ObjectEntry>>, Stopped<InventoryError>> {
        let mut page = Vec::with_capacity(PAGE);
        while !self.done && page.len() < PAGE {
            if self.inventory.cancel.is_cancelled() {
                return Err(Stopped::Cancelled);
            }
            let Some(entry) = self
                .inventory
                .sorted
                .next_entry()
                .map_err(InventoryError::from)?
            else {
                self.done = true;
                break;
            };
            if self.last.as_deref() == Some(entry.key.as_str()) {
                return Err(InventoryError::Duplicate { key: entry.key }.into());
            }
            self.last = Some(entry.key.clone());
            let listed = self
                .prefixes
                .iter()
                .any(|prefix| entry.key.starts_with(prefix.as_str()));
            if listed && (self.owns)(&entry.key) {
                page.push(entry);
            }
        }
        Ok((!page.is_empty()).then_some(page))
    }
}

impl<F: Fn(&str) -> bool + Send> Listing for InventoryListing<F> {
    type Error = InventoryError;

    async fn next_page(&mut self) -> Result<Option<Vec<ObjectEntry>>, Stopped<InventoryError>> {
        self.read_page()
    }

    fn freshness(&self) -> Freshness {
        Freshness::Snapshot {
            deletable_before: self.inventory.deletable_before,
        }
    }
}
