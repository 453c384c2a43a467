//! Writes S3 Inventories as AWS lays them out — gzip CSV or Snappy Parquet data files and the
//! `manifest.json` naming them with their sizes and MD5s — for the unit tests, the in-process
//! scenarios, the e2e tests and the benchmark. Test support, not part of the product's API:
//! it panics on a bad argument instead of returning errors.

use std::io::Write;
use std::sync::Arc;

use parquet::basic::{Compression, Repetition};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::manifest::md5_hex;
use super::rows::encode_key;

/// The CSV `fileSchema` of an inventory of all versions with storage classes.
pub const CSV_SCHEMA: &str =
    "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass";

/// The same columns as AWS declares them for a Parquet inventory (its `fileSchema`).
pub const PARQUET_SCHEMA: &str = "message s3.inventory { required binary bucket (UTF8); \
     required binary key (UTF8); optional binary version_id (UTF8); optional boolean is_latest; \
     optional boolean is_delete_marker; optional int64 size; \
     optional int64 last_modified_date (TIMESTAMP_MILLIS); optional binary e_tag (UTF8); \
     optional binary storage_class (UTF8); }";

/// Rows per Parquet row group [`data_file`] writes (small, so tests cross row groups).
pub const ROW_GROUP_ROWS: usize = 1000;

/// An inventory's data file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Gzip CSV, keys URL-encoded.
    Csv,
    /// Snappy Parquet, keys as they are.
    Parquet,
}

impl Format {
    /// The manifest's `fileFormat`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Csv => "CSV",
            Self::Parquet => "Parquet",
        }
    }

    /// The manifest's `fileSchema` for the rows [`data_file`] writes.
    pub fn schema(self) -> &'static str {
        match self {
            Self::Csv => CSV_SCHEMA,
            Self::Parquet => PARQUET_SCHEMA,
        }
    }

    /// How S3 ends a data file's name.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv.gz",
            Self::Parquet => "parquet",
        }
    }
}

/// One row of an inventory: an object version, as S3 Inventory describes it (`None` is an
/// empty CSV field or a Parquet null).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryRow {
    /// `Bucket`.
    pub bucket: Option<String>,
    /// `Key`, not encoded.
    pub key: Option<String>,
    /// `VersionId`.
    pub version_id: Option<String>,
    /// `IsLatest`.
    pub is_latest: Option<bool>,
    /// `IsDeleteMarker`.
    pub is_delete_marker: Option<bool>,
    /// `Size`.
    pub size: Option<u64>,
    /// `LastModifiedDate` (milliseconds are kept).
    pub last_modified: Option<OffsetDateTime>,
    /// `ETag`, without quotes.
    pub etag: Option<String>,
    /// `StorageClass`.
    pub storage_class: Option<String>,
}

impl InventoryRow {
    /// The current version of an object.
    pub fn object(
        bucket: &str,
        key: &str,
        size: u64,
        last_modified: OffsetDateTime,
        etag: &str,
        storage_class: &str,
    ) -> Self {
        Self {
            is_delete_marker: Some(false),
            size: Some(size),
            etag: Some(etag.trim_matches('"').to_owned()),
            storage_class: Some(storage_class.to_owned()),
            ..Self::newest(bucket, key, "v1", last_modified)
        }
    }

    /// A delete marker (the newest version of a deleted object in an all-versions inventory).
    pub fn delete_marker(bucket: &str, key: &str, last_modified: OffsetDateTime) -> Self {
        Self {
            is_delete_marker: Some(true),
            ..Self::newest(bucket, key, "marker", last_modified)
        }
    }

    /// The newest version `version_id` of `key`, written at `last_modified`; nothing else set.
    fn newest(bucket: &str, key: &str, version_id: &str, last_modified: OffsetDateTime) -> Self {
        Self {
            bucket: Some(bucket.to_owned()),
            key: Some(key.to_owned()),
            version_id: Some(version_id.to_owned()),
            is_latest: Some(true),
            last_modified: Some(last_modified),
            ..Self::default()
        }
    }

    /// The value of the Parquet column `name` (AWS's snake-case names).
    fn value(&self, name: &str) -> Value {
        let text = |value: &Option<String>| value.clone().map_or(Value::Null, Value::Text);
        let flag = |value: Option<bool>| value.map_or(Value::Null, Value::Bool);
        match name {
            "bucket" => text(&self.bucket),
            "key" => text(&self.key),
            "version_id" => text(&self.version_id),
            "is_latest" => flag(self.is_latest),
            "is_delete_marker" => flag(self.is_delete_marker),
            "size" => self.size.map_or(Value::Null, |size| {
                Value::Int(i64::try_from(size).expect("a size below 2^63"))
            }),
            "last_modified_date" => self.last_modified.map_or(Value::Null, |time| {
                Value::Int(
                    i64::try_from(time.unix_timestamp_nanos() / 1_000_000)
                        .expect("a time within i64 milliseconds"),
                )
            }),
            "e_tag" => text(&self.etag),
            "storage_class" => text(&self.storage_class),
            _ => Value::Null,
        }
    }

    /// The row as a CSV line of [`CSV_SCHEMA`], every field quoted, the key URL-encoded.
    fn csv_line(&self) -> String {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let flag = |value: Option<bool>| value.map(|flag| flag.to_string()).unwrap_or_default();
        let fields = [
            text(&self.bucket),
            self.key.as_deref().map(encode_key).unwrap_or_default(),
            text(&self.version_id),
            flag(self.is_latest),
            flag(self.is_delete_marker),
            self.size.map(|size| size.to_string()).unwrap_or_default(),
            self.last_modified
                .map(|time| time.format(&Rfc3339).expect("an RFC 3339 time"))
                .unwrap_or_default(),
            text(&self.etag),
            text(&self.storage_class),
        ];
        let quoted: Vec<String> = fields
            .iter()
            .map(|field| format!("\"{}\"", field.replace('"', "\"\"")))
            .collect();
        format!("{}\n", quoted.join(","))
    }
}

/// A column value, before it is written as the column's physical type.
enum Value {
    Null,
    Text(String),
    Int(i64),
    Bool(bool),
}

/// The bytes of one data file holding `rows` in `format` (columns of [`Format::schema`]).
pub fn data_file(format: Format, rows: &[InventoryRow]) -> Vec<u8> {
    let mut out = Vec::new();
    match format {
        Format::Csv => {
            let mut gzip = flate2::write::GzEncoder::new(&mut out, flate2::Compression::default());
            for row in rows {
                gzip.write_all(row.csv_line().as_bytes())
                    .expect("gzip into memory");
            }
            gzip.finish().expect("gzip into memory");
        }
        Format::Parquet => {
            write_parquet(
                &mut out,
                PARQUET_SCHEMA,
                rows.iter().cloned(),
                ROW_GROUP_ROWS,
            );
        }
    }
    out
}

/// Writes `rows` as a Snappy Parquet file of the flat message type `schema` (AWS's
/// `fileSchema` syntax) to `out`, `row_group_rows` rows a row group, holding one row group's
/// rows at a time. A column gets the row's value of the same name; a `binary` column whose
/// row value is a number or flag gets its text (to write a column of the wrong type). Panics
/// on a null in a `required` column.
pub fn write_parquet<W: Write + Send>(
    out: W,
    schema: &str,
    rows: impl IntoIterator<Item = InventoryRow>,
    row_group_rows: usize,
) {
    let schema = Arc::new(parse_message_type(schema).expect("a Parquet message type"));
    let columns: Vec<(String, bool)> = schema
        .get_fields()
        .iter()
        .map(|field| {
            let info = field.get_basic_info();
            let optional = info.has_repetition() && info.repetition() == Repetition::OPTIONAL;
            (field.name().to_owned(), optional)
        })
        .collect();
    let properties = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let mut writer =
        SerializedFileWriter::new(out, schema, properties).expect("start the Parquet file");
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let group: Vec<InventoryRow> = rows.by_ref().take(row_group_rows.max(1)).collect();
        let mut row_group = writer.next_row_group().expect("start a row group");
        let mut index = 0;
        while let Some(mut column) = row_group.next_column().expect("next column") {
            let (name, optional) = (&columns[index].0, columns[index].1);
            let values: Vec<Value> = group.iter().map(|row| row.value(name)).collect();
            let levels: Vec<i16> = values
                .iter()
                .map(|value| i16::from(!matches!(value, Value::Null)))
                .collect();
            assert!(
                optional || levels.iter().all(|level| *level == 1),
                "a null in required column {name}"
            );
            let levels = optional.then_some(levels.as_slice());
            // The non-null values as the column's type.
            let present = |pick: &dyn Fn(&Value) -> bool| {
                let present: Vec<&Value> = values
                    .iter()
                    .filter(|value| !matches!(value, Value::Null))
                    .collect();
                assert!(
                    present.iter().all(|value| pick(value)),
                    "column {name} cannot hold a value given"
                );
                present
            };
            let written = match column.untyped() {
                ColumnWriter::ByteArrayColumnWriter(typed) => {
                    let bytes: Vec<ByteArray> = present(&|_| true)
                        .into_iter()
                        .map(|value| match value {
                            Value::Text(text) => text.as_str().into(),
                            Value::Int(number) => number.to_string().as_str().into(),
                            Value::Bool(flag) => flag.to_string().as_str().into(),
                            Value::Null => ByteArray::new(),
                        })
                        .collect();
                    typed.write_batch(&bytes, levels, None)
                }
                ColumnWriter::Int64ColumnWriter(typed) => {
                    let numbers: Vec<i64> = present(&|value| matches!(value, Value::Int(_)))
                        .into_iter()
                        .map(|value| if let Value::Int(n) = value { *n } else { 0 })
                        .collect();
                    typed.write_batch(&numbers, levels, None)
                }
                ColumnWriter::BoolColumnWriter(typed) => {
                    let flags = present(&|value| matches!(value, Value::Bool(_)));
                    let flags: Vec<bool> = flags
                        .into_iter()
                        .map(|value| matches!(value, Value::Bool(true)))
                        .collect();
                    typed.write_batch(&flags, levels, None)
                }
                _ => panic!("column {name}: only binary, int64 and boolean columns are written"),
            };
            written.expect("write a column");
            column.close().expect("close a column");
            index += 1;
        }
        row_group.close().expect("close a row group");
    }
    writer.close().expect("finish the Parquet file");
}

/// The `manifest.json` of an inventory of `source` in `destination`, created at `created`,
/// naming the data `files` (key and bytes) with their sizes and MD5s.
pub fn manifest(
    source: &str,
    destination: &str,
    created: OffsetDateTime,
    format: Format,
    files: &[(String, &[u8])],
) -> String {
    let files: Vec<serde_json::Value> = files
        .iter()
        .map(|(key, bytes)| {
            serde_json::json!({"key": key, "size": bytes.len(), "MD5checksum": md5_hex(bytes)})
        })
        .collect();
    serde_json::json!({
        "sourceBucket": source,
        "destinationBucket": format!("arn:aws:s3:::{destination}"),
        "version": "2016-11-30",
        "creationTimestamp": (created.unix_timestamp_nanos() / 1_000_000).to_string(),
        "fileFormat": format.name(),
        "fileSchema": format.schema(),
        "files": files,
    })
    .to_string()
}
