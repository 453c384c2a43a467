//! The rows of an inventory's Parquet data files, decoded into the same rows (and so the same
//! listing entries) as CSV lines. Unlike CSV, S3 writes Parquet keys as they are, not
//! URL-encoded ("When using the CSV file format, the key name is URL-encoded", AWS's S3
//! Inventory guide), and typed: `size` int64, `last_modified_date` int64 `TIMESTAMP_MILLIS`,
//! `is_latest` and `is_delete_marker` boolean, the rest UTF-8 binary.
//!
//! A data file is read with the low-level row reader over the downloaded file, one row group
//! at a time and only the columns the sync needs (a projection), so memory does not grow with
//! the file. Which columns a file has is taken from its own footer; the manifest's
//! `fileSchema` is checked up front for the required ones, as CSV's is.

use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};

use parquet::basic::Type as Physical;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::reader::RowIter;
use parquet::record::{Field, Row as Record};
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::Type;
use time::OffsetDateTime;

use super::error::InventoryError;
use super::rows::{Row, object_row};
use super::sort::Sorter;

/// The columns without which a Parquet inventory cannot stand in for a listing (AWS's names
/// for CSV's `Key`, `Size`, `LastModifiedDate` and `ETag`).
pub const REQUIRED_COLUMNS: [&str; 4] = ["key", "size", "last_modified_date", "e_tag"];

/// The required columns a manifest's Parquet `fileSchema` (a message type) lacks; `Err` when
/// it is not a message type.
pub fn missing_columns(file_schema: &str) -> Result<Vec<&'static str>, String> {
    let schema = parse_message_type(file_schema).map_err(|error| error.to_string())?;
    Ok(REQUIRED_COLUMNS
        .into_iter()
        .filter(|name| !schema.get_fields().iter().any(|f| f.name() == *name))
        .collect())
}

/// Where the columns the sync reads sit in a row of the projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// `key`.
    pub key: usize,
    /// `size`.
    pub size: usize,
    /// `last_modified_date`.
    pub last_modified: usize,
    /// `e_tag`.
    pub etag: usize,
    /// `bucket`, if present.
    pub bucket: Option<usize>,
    /// `storage_class`, if present.
    pub storage_class: Option<usize>,
    /// `is_latest`, in inventories of all versions.
    pub is_latest: Option<usize>,
    /// `is_delete_marker`, in inventories of all versions.
    pub is_delete_marker: Option<usize>,
}

/// The physical types a column the sync reads may have.
fn expected(name: &str) -> Option<&'static [Physical]> {
    match name {
        "key" | "e_tag" | "bucket" | "storage_class" => Some(&[Physical::BYTE_ARRAY]),
        "size" => Some(&[Physical::INT64]),
        "last_modified_date" => Some(&[Physical::INT64, Physical::INT96]),
        "is_latest" | "is_delete_marker" => Some(&[Physical::BOOLEAN]),
        _ => None,
    }
}

/// The projection of a file's schema (`root`) onto the columns the sync reads, and where each
/// sits; `Err` says which required column is missing or which column has the wrong type.
pub fn projection(root: &Type) -> Result<(Type, Columns), String> {
    let mut kept = Vec::new();
    for field in root.get_fields() {
        let Some(types) = expected(field.name()) else {
            continue;
        };
        if !field.is_primitive() {
            return Err(format!("has a group column {:?}", field.name()));
        }
        let physical = field.get_physical_type();
        if !types.contains(&physical) {
            let want: Vec<String> = types.iter().map(|t| format!("{t:?}")).collect();
            return Err(format!(
                "has column {} of type {physical:?} where {} is expected",
                field.name(),
                want.join(" or ")
            ));
        }
        kept.push(field.clone());
    }
    let find = |name: &str| kept.iter().position(|field| field.name() == name);
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .into_iter()
        .filter(|name| find(name).is_none())
        .collect();
    let (Some(key), Some(size), Some(last_modified), Some(etag)) = (
        find("key"),
        find("size"),
        find("last_modified_date"),
        find("e_tag"),
    ) else {
        return Err(format!(
            "has no {} column: without key, size, last_modified_date and e_tag every object \
             would look changed; add Size, Last modified and ETag to the inventory \
             configuration's additional fields",
            missing.join(", ")
        ));
    };
    let columns = Columns {
        key,
        size,
        last_modified,
        etag,
        bucket: find("bucket"),
        storage_class: find("storage_class"),
        is_latest: find("is_latest"),
        is_delete_marker: find("is_delete_marker"),
    };
    let projection = Type::group_type_builder(root.name())
        .with_fields(kept)
        .build()
        .map_err(|error| format!("has a schema the sync cannot project: {error}"))?;
    Ok((projection, columns))
}

/// The text of a string column's value; `None` for a null.
fn text<'a>(field: &'a Field, column: &str) -> Result<Option<&'a str>, String> {
    match field {
        Field::Null => Ok(None),
        Field::Str(text) => Ok(Some(text)),
        Field::Bytes(bytes) => std::str::from_utf8(bytes.data())
            .map(Some)
            .map_err(|_| format!("has a {column} that is not UTF-8")),
        other => Err(format!("has {column} {other}, not a string")),
    }
}

/// A boolean column's value; `None` for a null.
fn flag(field: &Field, column: &str) -> Result<Option<bool>, String> {
    match field {
        Field::Null => Ok(None),
        Field::Bool(flag) => Ok(Some(*flag)),
        other => Err(format!("has {column} {other}, not a boolean")),
    }
}

/// The entry of one row (the projected columns, in order) of the inventory of `bucket`.
pub fn decode(fields: &[(String, Field)], columns: &Columns, bucket: &str) -> Result<Row, String> {
    let at = |index: usize| &fields[index].1;
    if let Some(column) = columns.bucket
        && text(at(column), "bucket")? != Some(bucket)
    {
        return Err(format!("names bucket {}", at(column)));
    }
    let flag_of = |column: Option<usize>, name: &str| {
        column.map_or(Ok(None), |column| flag(at(column), name))
    };
    if flag_of(columns.is_latest, "is_latest")? == Some(false)
        || flag_of(columns.is_delete_marker, "is_delete_marker")? == Some(true)
    {
        return Ok(Row::Skipped);
    }
    let required = |column: usize, name: &str| {
        text(at(column), name)?.ok_or_else(|| format!("has no {name} (null)"))
    };
    let key = required(columns.key, "key")?;
    let size = match at(columns.size) {
        Field::Long(size) => {
            u64::try_from(*size).map_err(|_| format!("has size {size}, not a number of bytes"))?
        }
        Field::Null => return Err("has no size (null)".to_owned()),
        other => return Err(format!("has size {other}, not a number of bytes")),
    };
    let nanos = match at(columns.last_modified) {
        Field::TimestampMillis(millis) => i128::from(*millis) * 1_000_000,
        Field::TimestampMicros(micros) => i128::from(*micros) * 1_000,
        Field::Null => return Err("has no last_modified_date (null)".to_owned()),
        other => return Err(format!("has last_modified_date {other}, not a timestamp")),
    };
    let last_modified = OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|_| format!("has an impossible last_modified_date ({nanos} ns)"))?;
    let etag = required(columns.etag, "e_tag")?;
    let storage_class = match columns.storage_class {
        Some(column) => text(at(column), "storage_class")?,
        None => None,
    };
    Ok(object_row(
        key.to_owned(),
        size,
        last_modified,
        etag,
        storage_class,
    ))
}

/// Decodes the rows of one Parquet data file (`key`, for errors) of the inventory of `bucket`
/// into `sorter`; returns how many objects it added. Blocking.
pub fn sort_rows(
    file: File,
    key: &str,
    bucket: &str,
    sorter: &mut Sorter,
) -> Result<u64, InventoryError> {
    // The reader is fed bytes from outside: a panic in it is a corrupt file, not a crash.
    catch_unwind(AssertUnwindSafe(|| read(file, key, bucket, sorter))).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("the reader panicked");
        Err(corrupt(key, format!("cannot be read as Parquet: {why}")))
    })
}

fn corrupt(key: &str, reason: String) -> InventoryError {
    InventoryError::Corrupt {
        key: key.to_owned(),
        reason,
    }
}

fn read(file: File, key: &str, bucket: &str, sorter: &mut Sorter) -> Result<u64, InventoryError> {
    let unreadable = |error: parquet::errors::ParquetError| {
        corrupt(key, format!("cannot be read as Parquet: {error}"))
    };
    let reader = SerializedFileReader::new(file).map_err(unreadable)?;
    let (projection, columns) =
        projection(reader.metadata().file_metadata().schema()).map_err(|why| corrupt(key, why))?;
    let mut added = 0;
    let mut number: u64 = 0;
    for group in 0..reader.num_row_groups() {
        let row_group = reader.get_row_group(group).map_err(unreadable)?;
        let rows =
            RowIter::from_row_group(Some(projection.clone()), &*row_group).map_err(unreadable)?;
        for record in rows {
            number += 1;
            let row_error = |reason: String| InventoryError::ParquetRow {
                key: key.to_owned(),
                row: number,
                reason,
            };
            let record: Record =
                record.map_err(|error| row_error(format!("cannot be read as Parquet: {error}")))?;
            match decode(&record.into_columns(), &columns, bucket).map_err(row_error)? {
                Row::Object(entry) => {
                    sorter.push(entry)?;
                    added += 1;
                }
                Row::Skipped => {}
            }
        }
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::inventory::testing::{self, Format, InventoryRow, PARQUET_SCHEMA};
    use crate::source::s3::ObjectEntry;

    const BUCKET: &str = "docs";

    fn at(millis: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).unwrap()
    }

    /// Writes `rows` with `schema` to a temporary file and reads it back through the sorter:
    /// the entries in key order, or the error.
    fn read_back(
        schema: &str,
        rows: Vec<InventoryRow>,
        group: usize,
    ) -> Result<Vec<ObjectEntry>, String> {
        let mut file = tempfile::tempfile().unwrap();
        testing::write_parquet(&mut file, schema, rows, group);
        read_file(file)
    }

    fn read_file(file: File) -> Result<Vec<ObjectEntry>, String> {
        let mut sorter = Sorter::new(1024);
        let added = sort_rows(file, "data/a.parquet", BUCKET, &mut sorter)
            .map_err(|error| error.to_string())?;
        let mut sorted = sorter.finish().unwrap();
        let mut entries = Vec::new();
        while let Some(entry) = sorted.next_entry().unwrap() {
            entries.push(entry);
        }
        assert_eq!(added, entries.len() as u64);
        Ok(entries)
    }

    fn object(key: &str, size: u64) -> InventoryRow {
        InventoryRow::object(BUCKET, key, size, at(1_763_632_800_123), "abc", "STANDARD")
    }

    #[test]
    fn odd_keys_round_trip_exactly_across_row_groups() {
        let keys = [
            "plain/key.txt",
            "with space/file one.txt",
            "plus+sign.txt",
            "percent%20literal.txt",
            "looks%2Bencoded+too",
            "unicode/\u{e9}t\u{e9} \u{2603} \u{1F600}.txt",
            "quote\"comma,.txt",
            "line\nbreak",
        ];
        let rows: Vec<InventoryRow> = keys.iter().rev().map(|key| object(key, 7)).collect();
        let entries = read_back(PARQUET_SCHEMA, rows, 3).unwrap();
        let mut want: Vec<&str> = keys.to_vec();
        want.sort_unstable();
        let got: Vec<&str> = entries.iter().map(|entry| entry.key.as_str()).collect();
        assert_eq!(got, want);
        let first = &entries[0];
        assert_eq!(
            (
                first.size,
                first.etag.as_str(),
                first.storage_class.as_deref()
            ),
            (7, "\"abc\"", Some("STANDARD"))
        );
        assert_eq!(
            first.last_modified,
            at(1_763_632_800_123),
            "milliseconds kept"
        );
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_config::with_cases(48))]
        #[test]
        fn any_keys_come_back_as_they_were_written(
            keys in proptest::collection::btree_set("[a-z/ +%.\"\\\\é\u{2603}\u{1F600}-]{1,20}", 1..40)
        ) {
            let rows: Vec<InventoryRow> = keys.iter().rev().map(|key| object(key, 1)).collect();
            let entries = read_back(PARQUET_SCHEMA, rows, 7).unwrap();
            let got: Vec<&str> = entries.iter().map(|entry| entry.key.as_str()).collect();
            let want: Vec<&str> = keys.iter().map(String::as_str).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn versions_markers_folders_and_classes_are_handled_as_csv_handles_them() {
        let old = InventoryRow {
            is_latest: Some(false),
            ..object("old-version", 1)
        };
        let marker = InventoryRow::delete_marker(BUCKET, "deleted", at(0));
        let no_class = InventoryRow {
            storage_class: None,
            ..object("no-class", 2)
        };
        let empty_class = InventoryRow {
            storage_class: Some(String::new()),
            ..object("empty-class", 2)
        };
        let cold = InventoryRow {
            storage_class: Some("GLACIER".to_owned()),
            ..object("cold", 3)
        };
        let rows = vec![
            old,
            marker,
            object("folder/", 0),
            no_class,
            empty_class,
            cold,
            object("kept", 4),
        ];
        // The same rows through CSV give the same entries.
        let csv = testing::data_file(Format::Csv, &rows);
        let schema = super::super::schema::Schema::parse(testing::CSV_SCHEMA).unwrap();
        let mut sorter = Sorter::new(1024);
        super::super::sort_rows(csv.as_slice(), "a.csv.gz", &schema, BUCKET, &mut sorter).unwrap();
        let mut sorted = sorter.finish().unwrap();
        let mut from_csv = Vec::new();
        while let Some(entry) = sorted.next_entry().unwrap() {
            from_csv.push(entry);
        }
        let entries = read_back(PARQUET_SCHEMA, rows, 2).unwrap();
        let summary: Vec<(&str, Option<&str>)> = entries
            .iter()
            .map(|entry| (entry.key.as_str(), entry.storage_class.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                ("cold", Some("GLACIER")),
                ("empty-class", None),
                ("kept", Some("STANDARD")),
                ("no-class", None),
            ]
        );
        assert_eq!(entries, from_csv);
    }

    #[test]
    fn a_current_versions_inventory_without_version_columns_is_read() {
        let schema = "message s3.inventory { required binary bucket (STRING); \
             required binary key (STRING); optional int64 size; \
             optional int64 last_modified_date (TIMESTAMP(MILLIS,true)); \
             optional binary e_tag (STRING); }";
        let entries = read_back(schema, vec![object("k", 3)], 10).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            (entries[0].key.as_str(), entries[0].storage_class.as_deref()),
            ("k", None)
        );
    }

    #[test]
    fn bad_files_columns_and_rows_are_refused_with_the_reason() {
        let without_etag = "message s3.inventory { required binary bucket (UTF8); \
             required binary key (UTF8); optional int64 size; \
             optional int64 last_modified_date (TIMESTAMP_MILLIS); }";
        let size_as_text = PARQUET_SCHEMA.replace("optional int64 size", "optional binary size");
        let optional_key = PARQUET_SCHEMA.replace("required binary key", "optional binary key");
        let null_key = InventoryRow {
            key: None,
            ..object("x", 1)
        };
        let null_size = InventoryRow {
            size: None,
            ..object("x", 1)
        };
        let null_date = InventoryRow {
            last_modified: None,
            ..object("x", 1)
        };
        let other_bucket = InventoryRow {
            bucket: Some("other".to_owned()),
            ..object("x", 1)
        };
        let table: Vec<(&str, &str, Vec<InventoryRow>, &str)> = vec![
            (
                "no e_tag",
                without_etag,
                vec![object("x", 1)],
                "the inventory data file data/a.parquet has no e_tag column",
            ),
            (
                "size as text",
                &size_as_text,
                vec![object("x", 1)],
                "has column size of type BYTE_ARRAY where INT64 is expected",
            ),
            (
                "null key",
                &optional_key,
                vec![object("a", 1), null_key],
                "row 2 of the inventory data file data/a.parquet has no key (null)",
            ),
            (
                "null size",
                PARQUET_SCHEMA,
                vec![null_size],
                "row 1 of the inventory data file data/a.parquet has no size",
            ),
            (
                "null date",
                PARQUET_SCHEMA,
                vec![null_date],
                "has no last_modified_date",
            ),
            (
                "another bucket",
                PARQUET_SCHEMA,
                vec![other_bucket],
                "names bucket \"other\"",
            ),
        ];
        for (name, schema, rows, expected) in table {
            let got = read_back(schema, rows, 10);
            match got {
                Err(message) => assert!(message.contains(expected), "{name}: {message}"),
                Ok(entries) => panic!("{name}: read {entries:?}"),
            }
        }
    }

    #[test]
    fn a_corrupt_or_truncated_or_foreign_file_is_refused() {
        let rows: Vec<InventoryRow> = (0..50).map(|n| object(&format!("k{n}"), n)).collect();
        let good = testing::data_file(Format::Parquet, &rows);
        let mut flipped = good.clone();
        // Inside the first column chunk's data, past the magic number.
        for byte in &mut flipped[8..good.len() / 2] {
            *byte ^= 0x5A;
        }
        let truncated = good[..good.len() - 100].to_vec();
        let csv = testing::data_file(Format::Csv, &rows);
        for (name, bytes) in [
            ("flipped", flipped),
            ("truncated", truncated),
            ("gzip CSV", csv),
            ("empty", Vec::new()),
        ] {
            let mut file = tempfile::tempfile().unwrap();
            std::io::Write::write_all(&mut file, &bytes).unwrap();
            std::io::Seek::rewind(&mut file).unwrap();
            let message = read_file(file).expect_err(name);
            assert!(
                message.contains("data/a.parquet") && message.contains("cannot be read as Parquet"),
                "{name}: {message}"
            );
        }
    }

    #[test]
    fn the_manifest_schema_is_checked_for_the_required_columns() {
        assert_eq!(missing_columns(PARQUET_SCHEMA), Ok(vec![]));
        let real = "message s3.inventory {  required binary bucket (STRING);  \
             required binary key (STRING);  optional int64 size;  \
             optional int64 last_modified_date (TIMESTAMP(MILLIS,true));  \
             optional binary e_tag (STRING);  optional binary storage_class (STRING);}";
        assert_eq!(missing_columns(real), Ok(vec![]));
        assert_eq!(
            missing_columns(
                "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); }"
            ),
            Ok(vec!["size", "last_modified_date", "e_tag"])
        );
        assert!(missing_columns("Bucket, Key, Size").is_err());
    }
}
