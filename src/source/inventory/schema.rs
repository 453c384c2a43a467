//! The columns of an inventory's CSV data files, as its manifest's `fileSchema` names them:
//! where each column the sync reads sits in a row, and which ones it cannot do without. Pure;
//! shared by `manifest.rs` (which checks a manifest's schema) and `rows.rs` (which decodes
//! rows by it). Parquet files carry their own schema (`parquet_rows.rs`); where its columns sit
//! in a row of a projection is a [`Schema`] too.

/// The columns of an inventory's rows that the sync reads, by position (in a CSV line, or in a
/// row of a Parquet file's projection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// Columns in a row (of the projection, for Parquet).
    pub width: usize,
    /// `Bucket` (Parquet: `bucket`), if present.
    pub bucket: Option<usize>,
    /// `Key` (Parquet: `key`; URL-encoded in CSV only).
    pub key: usize,
    /// `Size` (Parquet: `size`).
    pub size: usize,
    /// `LastModifiedDate` (Parquet: `last_modified_date`).
    pub last_modified: usize,
    /// `ETag` (Parquet: `e_tag`).
    pub etag: usize,
    /// `StorageClass` (Parquet: `storage_class`), if present.
    pub storage_class: Option<usize>,
    /// `IsLatest` (Parquet: `is_latest`), in inventories of all versions.
    pub is_latest: Option<usize>,
    /// `IsDeleteMarker` (Parquet: `is_delete_marker`), in inventories of all versions.
    pub is_delete_marker: Option<usize>,
}

/// The columns without which an inventory cannot stand in for a listing: `Key` names the
/// object, and `Size`, `LastModifiedDate` and `ETag` make the version the sync compares with
/// the index (without them every object would look changed and be downloaded again).
pub const REQUIRED_COLUMNS: [&str; 4] = ["Key", "Size", "LastModifiedDate", "ETag"];

impl Schema {
    /// The schema of a manifest's `fileSchema` (`"Bucket, Key, Size, ..."`); `Err` lists the
    /// required columns it lacks.
    pub fn parse(text: &str) -> Result<Self, Vec<&'static str>> {
        let columns: Vec<&str> = text.split(',').map(str::trim).collect();
        let find = |name: &str| columns.iter().position(|column| *column == name);
        let missing: Vec<&'static str> = REQUIRED_COLUMNS
            .into_iter()
            .filter(|name| find(name).is_none())
            .collect();
        match (
            find("Key"),
            find("Size"),
            find("LastModifiedDate"),
            find("ETag"),
        ) {
            (Some(key), Some(size), Some(last_modified), Some(etag)) => Ok(Self {
                width: columns.len(),
                bucket: find("Bucket"),
                key,
                size,
                last_modified,
                etag,
                storage_class: find("StorageClass"),
                is_latest: find("IsLatest"),
                is_delete_marker: find("IsDeleteMarker"),
            }),
            _ => Err(missing),
        }
    }
}
