//! The pure rules of S3 Inventory: its dated folders, its manifest and checksums, and which
//! inventory is fresh enough. No I/O: `inventory/mod.rs` fetches the bytes and asks these
//! functions. When a document may be deleted on an inventory's word is the listing seam's rule
//! (`source/listing.rs`, [`crate::source::listing::Freshness`]).

use std::time::Duration;

use md5::{Digest, Md5};
use serde::Deserialize;
use serde_json::Value;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use super::error::InventoryError;
use super::parquet_rows::missing_columns;
use super::schema::Schema;

/// One data file a manifest names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DataFile {
    /// Its key in the destination bucket.
    pub key: String,
    /// Its size in bytes (compressed).
    pub size: u64,
    /// The hex MD5 of its bytes.
    #[serde(rename = "MD5checksum")]
    pub md5: String,
}

/// The format of an inventory's data files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataFormat {
    /// Gzip CSV, with the columns of the manifest's `fileSchema`.
    Csv(Schema),
    /// Parquet: each file's footer says where its columns are.
    Parquet,
}

/// A manifest, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// When S3 began the inventory: the moment it describes.
    pub created: OffsetDateTime,
    /// The data files' format (and, for CSV, columns).
    pub format: DataFormat,
    /// The data files.
    pub files: Vec<DataFile>,
}

/// `manifest.json` as S3 writes it (the fields the sync reads).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestFile {
    source_bucket: String,
    #[serde(default)]
    destination_bucket: Option<String>,
    /// Milliseconds since 1970, written as a string (accepted as a number too).
    creation_timestamp: Value,
    file_format: String,
    #[serde(default)]
    file_schema: Option<String>,
    files: Vec<DataFile>,
}

/// The hex MD5 of `bytes`.
pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// Whether `manifest.checksum` (the hex MD5 of `manifest.json`, maybe with a newline) matches
/// the manifest's bytes.
pub fn checksum_matches(manifest: &[u8], checksum: &[u8]) -> bool {
    std::str::from_utf8(checksum)
        .is_ok_and(|text| text.trim().eq_ignore_ascii_case(&md5_hex(manifest)))
}

/// Parses and checks the manifest at `path` of the inventory of `source_bucket`, written to
/// `destination_bucket`.
pub fn parse(
    bytes: &[u8],
    path: &str,
    source_bucket: &str,
    destination_bucket: &str,
) -> Result<Manifest, InventoryError> {
    let bad = |reason: String| InventoryError::Manifest {
        path: path.to_owned(),
        reason,
    };
    let file: ManifestFile = serde_json::from_slice(bytes)
        .map_err(|error| bad(format!("is not a manifest: {error}")))?;
    if file.source_bucket != source_bucket {
        return Err(bad(format!(
            "is the inventory of bucket {:?}, not of {source_bucket:?}",
            file.source_bucket
        )));
    }
    if let Some(arn) = &file.destination_bucket
        && let Some(name) = arn.strip_prefix("arn:aws:s3:::")
        && name != destination_bucket
    {
        return Err(bad(format!(
            "names its data files in bucket {name:?}, not in {destination_bucket:?} where it was found"
        )));
    }
    let millis = match &file.creation_timestamp {
        Value::String(text) => text.trim().parse::<i64>().ok(),
        Value::Number(number) => number.as_i64(),
        _ => None,
    }
    .ok_or_else(|| bad("has no creationTimestamp in milliseconds".to_owned()))?;
    let created = OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .map_err(|_| bad(format!("has an impossible creationTimestamp {millis}")))?;
    let csv = file.file_format.eq_ignore_ascii_case("CSV");
    if !csv && !file.file_format.eq_ignore_ascii_case("Parquet") {
        return Err(InventoryError::UnsupportedFormat {
            path: path.to_owned(),
            format: file.file_format,
        });
    }
    let schema_text = file
        .file_schema
        .ok_or_else(|| bad("has no fileSchema".to_owned()))?;
    let missing = |missing: Vec<&'static str>| InventoryError::Schema {
        path: path.to_owned(),
        missing: missing.join(", "),
    };
    let format = if csv {
        DataFormat::Csv(Schema::parse(&schema_text).map_err(missing)?)
    } else {
        let absent = missing_columns(&schema_text).map_err(|error| {
            bad(format!(
                "has a Parquet fileSchema that is not a message type: {error}"
            ))
        })?;
        if !absent.is_empty() {
            return Err(missing(absent));
        }
        DataFormat::Parquet
    };
    for data in &file.files {
        if data.md5.len() != 32 || !data.md5.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!(
                "gives data file {:?} the MD5checksum {:?}, which is not 32 hex digits",
                data.key, data.md5
            )));
        }
    }
    Ok(Manifest {
        created,
        format,
        files: file.files,
    })
}

/// The time a dated folder name (`2016-11-06T21-32Z/`, as a delimiter listing returns it
/// after `folder`) stands for; `None` for other folders (`data/`, `hive/`).
pub fn folder_time(common_prefix: &str, folder: &str) -> Option<OffsetDateTime> {
    let name = common_prefix.strip_prefix(folder)?.strip_suffix('/')?;
    let bytes = name.as_bytes();
    let shape = b"dddd-dd-ddTdd-ddZ";
    let fits = bytes.len() == shape.len()
        && bytes.iter().zip(shape).all(|(byte, want)| match want {
            b'd' => byte.is_ascii_digit(),
            other => byte == other,
        });
    if !fits {
        return None;
    }
    let number = |range: std::ops::Range<usize>| name[range].parse::<u16>().ok();
    let month = Month::try_from(u8::try_from(number(5..7)?).ok()?).ok()?;
    let date = Date::from_calendar_date(
        i32::from(number(0..4)?),
        month,
        u8::try_from(number(8..10)?).ok()?,
    )
    .ok()?;
    let time = Time::from_hms(
        u8::try_from(number(11..13)?).ok()?,
        u8::try_from(number(14..16)?).ok()?,
        0,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// The dated folders among a delimiter listing's common prefixes under `folder`, newest
/// first.
pub fn dated_folders(common_prefixes: &[String], folder: &str) -> Vec<(OffsetDateTime, String)> {
    let mut dated: Vec<(OffsetDateTime, String)> = common_prefixes
        .iter()
        .filter_map(|prefix| folder_time(prefix, folder).map(|time| (time, prefix.clone())))
        .collect();
    dated.sort_by(|a, b| b.cmp(a));
    dated
}

/// Whether an inventory created at `created` may still stand in for a listing at `now`.
pub fn is_fresh(created: OffsetDateTime, now: OffsetDateTime, max_age: Duration) -> bool {
    now - created <= max_age
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `YYYY-MM-DD HH:MM` UTC.
    fn at(text: &str) -> OffsetDateTime {
        folder_time(
            &format!("{}Z/", text.replace(' ', "T").replace(':', "-")),
            "",
        )
        .unwrap()
    }

    const SCHEMA: &str = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass";

    fn manifest(source: &str, format: &str, schema: &str, md5: &str) -> Vec<u8> {
        serde_json::json!({
            "sourceBucket": source,
            "destinationBucket": "arn:aws:s3:::inv",
            "version": "2016-11-30",
            "creationTimestamp": "1514944800000",
            "fileFormat": format,
            "fileSchema": schema,
            "files": [{"key": "p/docs/daily/data/a.csv.gz", "size": 12, "MD5checksum": md5}]
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_manifest_is_read_or_refused_with_the_reason() {
        let md5 = "f11166069f1990abeb9c97ace9cdfabc";
        let table: &[(Vec<u8>, &str, Result<(), &str>)] = &[
            (manifest("docs", "CSV", SCHEMA, md5), "inv", Ok(())),
            (
                manifest("other", "CSV", SCHEMA, md5),
                "inv",
                Err("inventory of bucket \"other\""),
            ),
            (
                manifest("docs", "CSV", SCHEMA, md5),
                "elsewhere",
                Err("in bucket \"inv\""),
            ),
            (
                manifest("docs", "Parquet", SCHEMA, md5),
                "inv",
                Err("has a Parquet fileSchema that is not a message type"),
            ),
            (
                manifest(
                    "docs",
                    "Parquet",
                    "message s3.inventory { required binary key (UTF8); optional int64 size; }",
                    md5,
                ),
                "inv",
                Err("has no last_modified_date, e_tag column"),
            ),
            (
                manifest("docs", "ORC", SCHEMA, md5),
                "inv",
                Err("has fileFormat \"ORC\"; only CSV and Parquet"),
            ),
            (
                manifest("docs", "CSV", "Bucket, Key, Size", md5),
                "inv",
                Err("LastModifiedDate, ETag"),
            ),
            (
                manifest("docs", "CSV", SCHEMA, "xyz"),
                "inv",
                Err("not 32 hex digits"),
            ),
            (b"{not json".to_vec(), "inv", Err("is not a manifest")),
        ];
        for (bytes, destination, expected) in table {
            let got = parse(bytes, "m.json", "docs", destination);
            match (expected, got) {
                (Ok(()), Ok(manifest)) => {
                    assert_eq!(manifest.created, at("2018-01-03 02:00"));
                    assert_eq!(manifest.files.len(), 1);
                    let DataFormat::Csv(schema) = manifest.format else {
                        panic!("{:?}", manifest.format)
                    };
                    assert_eq!(schema.key, 1);
                    assert_eq!(schema.is_latest, Some(3));
                    assert_eq!(schema.width, 9);
                }
                (Err(fragment), Err(error)) => {
                    let text = error.to_string();
                    assert!(text.contains(fragment), "{text}");
                }
                (expected, got) => panic!("expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn a_parquet_manifest_as_aws_documents_it_is_read() {
        let schema = "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); optional binary version_id (UTF8); optional boolean is_latest; optional boolean is_delete_marker; optional int64 size; optional int64 last_modified_date (TIMESTAMP_MILLIS); optional binary e_tag (UTF8); optional binary storage_class (UTF8); optional boolean is_multipart_uploaded; optional binary replication_status (UTF8); optional binary encryption_status (UTF8); optional int64 object_lock_retain_until_date (TIMESTAMP_MILLIS); optional binary object_lock_mode (UTF8); optional binary object_lock_legal_hold_status (UTF8); optional binary intelligent_tiering_access_tier (UTF8); optional binary bucket_key_status (UTF8); optional binary checksum_algorithm (UTF8); }";
        let bytes = manifest(
            "docs",
            "Parquet",
            schema,
            "f11166069f1990abeb9c97ace9cdfabc",
        );
        let parsed = parse(&bytes, "m", "docs", "inv").unwrap();
        assert_eq!(parsed.format, DataFormat::Parquet);
        assert_eq!(parsed.files.len(), 1);
    }

    #[test]
    fn a_numeric_creation_timestamp_is_accepted() {
        let text = manifest("docs", "CSV", SCHEMA, "f11166069f1990abeb9c97ace9cdfabc");
        let text = String::from_utf8(text)
            .unwrap()
            .replace("\"1514944800000\"", "1514944800000");
        let parsed = parse(text.as_bytes(), "m", "docs", "inv").unwrap();
        assert_eq!(parsed.created, at("2018-01-03 02:00"));
    }

    #[test]
    fn the_checksum_is_the_hex_md5_of_the_manifest_in_either_case_with_or_without_a_newline() {
        let bytes = b"{}";
        let md5 = md5_hex(bytes);
        assert!(checksum_matches(bytes, md5.as_bytes()));
        assert!(checksum_matches(
            bytes,
            format!("{}\n", md5.to_uppercase()).as_bytes()
        ));
        assert!(!checksum_matches(b"{ }", md5.as_bytes()));
        assert!(!checksum_matches(bytes, b""));
    }

    #[test]
    fn only_dated_folders_count_newest_first() {
        let folder = "p/docs/daily/";
        let prefixes: Vec<String> = [
            "p/docs/daily/2026-11-27T00-00Z/",
            "p/docs/daily/data/",
            "p/docs/daily/hive/",
            "p/docs/daily/2026-11-28T01-05Z/",
            "p/docs/daily/2026-13-28T01-05Z/",
            "p/docs/daily/2026-11-26T00-00Z",
        ]
        .map(str::to_owned)
        .to_vec();
        let dated = dated_folders(&prefixes, folder);
        assert_eq!(
            dated,
            vec![
                (at("2026-11-28 01:05"), prefixes[3].clone()),
                (at("2026-11-27 00:00"), prefixes[0].clone()),
            ]
        );
    }

    #[test]
    fn freshness() {
        let created = at("2026-11-28 00:00") + Duration::from_millis(300);
        let day = Duration::from_secs(86_400);
        assert!(is_fresh(created, created + day, day));
        assert!(!is_fresh(
            created,
            created + day + Duration::from_secs(1),
            day
        ));
    }
}
