//! Why an S3 Inventory could not stand in for a bucket's listing: one typed error for every
//! stage (finding, checking, reading and sorting it).

use std::io;

use crate::source::s3::SourceError;

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
