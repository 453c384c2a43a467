//! S3 Inventory as a bucket's listing (a connector's `inventory:` block): the newest complete
//! inventory of the bucket is found, checked, sorted by key and fed to the merge as listing
//! pages, so rules, the unchanged check, the size cap, archive classes, shards and the
//! mass-delete guard apply exactly as to a ListObjectsV2 listing.
//!
//! Safety, on top of the listing's rule (delete only after a complete listing):
//! - *Complete* means: the dated folder's `manifest.json` and `manifest.checksum` both exist
//!   and match (a folder S3 is still writing is passed over for the one before), and every
//!   data file has the size and MD5 its manifest gives. A data file that is missing, corrupt or
//!   unreadable fails the bucket before a single page is fed: nothing is indexed or deleted.
//! - A document whose object was modified at or after the inventory's creation time, less the
//!   connector's `deletion_grace`, is never deleted because the inventory lacks it
//!   ([`manifest::deletable`], given that boundary): it was written after the snapshot, or so
//!   shortly before it that the eventually consistent scan may have missed it. An object the inventory lists but S3 no longer has is `Fetched::Gone` on
//!   GET, as for a listing.
//! - No inventory, or none fresher than `max_age`: the bucket is listed with ListObjectsV2
//!   (logged, and counted in the report's `inventory_fallbacks`).
//!
//! Gzip CSV and Parquet inventories are read; ORC is refused with an error that says so.
//! The pure parts are [`manifest`] (layout, manifest, checksums, freshness, the deletion rule)
//! and [`rows`] (CSV rows, and the entry both formats make); [`parquet_rows`] reads a Parquet
//! data file a row group at a time (its row decoding pure); [`sort`] is the external sort that
//! keeps memory flat.
//! [`testing`] writes inventories as AWS lays them out, for the tests and the benchmark.

pub mod manifest;
pub mod parquet_rows;
pub mod rows;
#[cfg(test)]
mod scenarios;
pub mod sort;
#[doc(hidden)]
pub mod testing;

use std::io::{self, BufRead as _, BufReader, Read as _};
use std::path::Path;

use futures::SinkExt as _;
use futures::channel::mpsc;
use md5::{Digest, Md5};
use time::OffsetDateTime;

use super::{Listed, ListingStop, SyncContext};
use crate::config::inventory::InventorySettings;
use crate::sink::Sink;
use crate::source::s3::{Fetched, SourceError};
use crate::source::{ListRequest, ObjectStore};
use manifest::{DataFile, DataFormat, Manifest};
use rows::Row;
use sort::{Sorted, Sorter};

/// Entries a page fed to the merge holds (as a ListObjectsV2 page).
const PAGE: usize = 1000;

/// The largest `manifest.json` read (about 300,000 data files).
const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

/// The largest `manifest.checksum` read.
const MAX_CHECKSUM_BYTES: u64 = 1024;

/// Why an inventory could not be used; the bucket's sync then indexes and deletes nothing.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// A request to the destination bucket failed (after retries).
    #[error("reading the inventory failed: {0}")]
    Store(Box<SourceError>),
    /// The manifest is not one the sync can use.
    #[error("the inventory manifest {path} {reason}")]
    Manifest {
        /// Where the manifest is.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// ORC, or a format S3 does not write.
    #[error(
        "the inventory manifest {path} has fileFormat {format:?}; only CSV and Parquet \
         inventories are read (ORC is not supported): set the inventory configuration's output \
         format to CSV or Parquet"
    )]
    UnsupportedFormat {
        /// Where the manifest is.
        path: String,
        /// Its `fileFormat`.
        format: String,
    },
    /// The inventory lacks columns the unchanged check needs.
    #[error(
        "the inventory manifest {path} has no {missing} column: without Size, LastModifiedDate and \
         ETag every object would look changed; add them to the inventory configuration's \
         additional fields"
    )]
    Schema {
        /// Where the manifest is.
        path: String,
        /// The missing columns.
        missing: String,
    },
    /// A data file the manifest names does not exist.
    #[error("the inventory data file {key} that the manifest names does not exist")]
    MissingData {
        /// Its key in the destination bucket.
        key: String,
    },
    /// A data file's bytes do not match its manifest entry.
    #[error("the inventory data file {key} {reason}")]
    Corrupt {
        /// Its key in the destination bucket.
        key: String,
        /// Which check failed.
        reason: String,
    },
    /// A row of a data file cannot be read.
    #[error("line {line} of the inventory data file {key} {reason}")]
    Row {
        /// The data file.
        key: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A row of a Parquet data file cannot be read.
    #[error("row {row} of the inventory data file {key} {reason}")]
    ParquetRow {
        /// The data file.
        key: String,
        /// 1-based row number, counted across row groups.
        row: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// Two rows name one key.
    #[error("the inventory lists key {key:?} twice")]
    Duplicate {
        /// The key.
        key: String,
    },
    /// Local files (downloads, sorted runs) failed.
    #[error("local files for the inventory failed: {0}")]
    Io(#[from] io::Error),
    /// The sync was cancelled while the inventory was read.
    #[error("cancelled while reading the inventory")]
    Cancelled,
}

impl From<SourceError> for InventoryError {
    fn from(error: SourceError) -> Self {
        Self::Store(Box::new(error))
    }
}

/// A checked inventory, sorted, ready to be fed.
pub(super) struct Inventory {
    /// When S3 made it.
    pub created: OffsetDateTime,
    sorted: Sorted,
}

/// Finds the newest complete inventory of `bucket`, checks it and sorts it. `Ok(None)` when
/// there is no complete inventory fresher than `max_age`: the caller lists instead (logged and
/// counted here).
pub(super) async fn prepare<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    settings: &InventorySettings,
    bucket: &str,
) -> Result<Option<Inventory>, InventoryError> {
    let source = ctx.source;
    let destination = settings.bucket.as_str();
    let folder = settings.folder(bucket);
    let fallback = |reason: String| {
        tracing::warn!(
            message = "No usable S3 Inventory; listing the bucket with ListObjectsV2 instead.",
            bucket,
            reason = %reason
        );
        super::Counters::bump(&ctx.counters.inventory_fallbacks);
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
        if ctx.cancel.is_cancelled() {
            return Err(InventoryError::Cancelled);
        }
        sorter = read_data_file(source, destination, bucket, &manifest, file, sorter).await?;
    }
    let sorted = tokio::task::spawn_blocking(move || sorter.finish())
        .await
        .map_err(io::Error::other)??;
    Ok(Some(Inventory { created, sorted }))
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
    schema: &manifest::Schema,
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

/// Feeds the inventory's entries under `prefixes` that the shard owns to the merge, a page at
/// a time, in key order, then `Complete`, as a listing does. Stops early, without an error,
/// when the decider is gone.
pub(super) async fn feed<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    mut inventory: Inventory,
    prefixes: &[String],
    mut pages: mpsc::Sender<Listed>,
) -> Result<(), ListingStop> {
    let failed = |error: InventoryError| ListingStop::Inventory(error);
    let mut page = Vec::with_capacity(PAGE);
    let mut last: Option<String> = None;
    loop {
        if ctx.cancel.is_cancelled() {
            return Err(ListingStop::Cancelled);
        }
        let Some(entry) = inventory
            .sorted
            .next_entry()
            .map_err(|error| failed(error.into()))?
        else {
            break;
        };
        if last.as_deref() == Some(entry.key.as_str()) {
            return Err(failed(InventoryError::Duplicate { key: entry.key }));
        }
        last = Some(entry.key.clone());
        let listed = prefixes
            .iter()
            .any(|prefix| entry.key.starts_with(prefix.as_str()));
        if listed && ctx.shard.owns(&entry.key) {
            page.push(entry);
            if page.len() == PAGE
                && pages
                    .send(Listed::Page(std::mem::take(&mut page)))
                    .await
                    .is_err()
            {
                return Ok(());
            }
        }
    }
    if !page.is_empty() && pages.send(Listed::Page(page)).await.is_err() {
        return Ok(());
    }
    // The decider may be gone (an index error it reported): nothing left to tell it.
    let _ = pages.send(Listed::Complete).await;
    Ok(())
}
