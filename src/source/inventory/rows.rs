//! The rows of an inventory's CSV data files, decoded into listing entries. Pure: a line in,
//! an entry (or a reason to skip it, or an error) out. [`object_row`] is what both formats
//! (CSV here, Parquet in `parquet_rows.rs`) make of a row's decoded values.
//!
//! S3 writes every field in double quotes (a quote inside doubled, RFC 4180) and URL-encodes
//! the key (form encoding: a space is `+`, a `+` is `%2B`), so no field holds a line break.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::schema::Schema;
use crate::source::s3::ObjectEntry;

/// What one row stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    /// The current version of an object, as a listing would show it.
    Object(ObjectEntry),
    /// A row a listing would not show: an older version or a delete marker (inventories of all
    /// versions), or a folder marker.
    Skipped,
}

/// Splits one CSV line into its fields.
pub fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("a quoted field is not closed".to_owned()),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => return Err(format!("{c:?} follows a quoted field")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

/// Decodes a URL-encoded (form-encoded) key: `%XX` is a byte, `+` a space; the bytes must be
/// UTF-8.
pub fn decode_key(encoded: &str) -> Result<String, String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'+' => out.push(b' '),
            b'%' => {
                let byte = encoded
                    .get(at + 1..at + 3)
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .ok_or_else(|| format!("has a bad escape at byte {at}"))?;
                out.push(byte);
                at += 2;
            }
            other => out.push(other),
        }
        at += 1;
    }
    String::from_utf8(out).map_err(|_| "does not decode to UTF-8".to_owned())
}

/// How S3 Inventory writes a key: form-encoded, the inverse of [`decode_key`] (for tests and
/// tools that write inventories).
pub fn encode_key(key: &str) -> String {
    key.bytes()
        .map(|byte| match byte {
            b' ' => "+".to_owned(),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The entry of one CSV line of the inventory of `bucket`.
pub fn decode(line: &str, schema: &Schema, bucket: &str) -> Result<Row, String> {
    let fields = fields(line)?;
    if fields.len() != schema.width {
        return Err(format!(
            "has {} fields where the manifest's fileSchema names {}",
            fields.len(),
            schema.width
        ));
    }
    if let Some(column) = schema.bucket
        && fields[column] != bucket
    {
        return Err(format!("names bucket {:?}", fields[column]));
    }
    let flag =
        |column: Option<usize>| column.map(|column| fields[column].eq_ignore_ascii_case("true"));
    if flag(schema.is_latest) == Some(false) || flag(schema.is_delete_marker) == Some(true) {
        return Ok(Row::Skipped);
    }
    let key = decode_key(&fields[schema.key])
        .map_err(|why| format!("key {:?} {why}", fields[schema.key]))?;
    let size_text = &fields[schema.size];
    let size = size_text
        .parse::<u64>()
        .map_err(|_| format!("has Size {size_text:?}, not a number of bytes"))?;
    if is_folder_marker(&key, size) {
        return Ok(Row::Skipped);
    }
    let date_text = &fields[schema.last_modified];
    let last_modified = OffsetDateTime::parse(date_text, &Rfc3339)
        .map_err(|_| format!("has LastModifiedDate {date_text:?}, not an ISO 8601 time"))?;
    let storage_class = schema.storage_class.map(|column| fields[column].as_str());
    Ok(object_row(
        key,
        size,
        last_modified,
        &fields[schema.etag],
        storage_class,
    ))
}

/// A folder marker: listings leave them out.
fn is_folder_marker(key: &str, size: u64) -> bool {
    key.ends_with('/') && size == 0
}

/// The row of an object's current version, from the values either data file format gives
/// (the key decoded, the ETag with or without quotes, an empty storage class as none).
pub fn object_row(
    key: String,
    size: u64,
    last_modified: OffsetDateTime,
    etag: &str,
    storage_class: Option<&str>,
) -> Row {
    if is_folder_marker(&key, size) {
        return Row::Skipped;
    }
    // A listing's ETag comes in quotes; the inventory's without.
    let etag = if etag.starts_with('"') {
        etag.to_owned()
    } else {
        format!("\"{etag}\"")
    };
    Row::Object(ObjectEntry {
        key,
        size,
        last_modified,
        etag,
        storage_class: storage_class
            .filter(|class| !class.is_empty())
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_quoted_or_not() {
        let table: &[(&str, Result<Vec<&str>, &str>)] = &[
            (r#""a","b","c""#, Ok(vec!["a", "b", "c"])),
            (r#""a,b","""q""",plain"#, Ok(vec!["a,b", "\"q\"", "plain"])),
            (r#""","""#, Ok(vec!["", ""])),
            ("x,,y", Ok(vec!["x", "", "y"])),
            (r#""open"#, Err("not closed")),
            (r#""a"b"#, Err("follows a quoted field")),
        ];
        for (line, expected) in table {
            let got = fields(line);
            match (expected, &got) {
                (Ok(want), Ok(got)) => assert_eq!(want, got, "{line}"),
                (Err(fragment), Err(message)) => {
                    assert!(message.contains(fragment), "{line}: {message}")
                }
                _ => panic!("{line}: got {got:?}"),
            }
        }
    }

    #[test]
    fn keys_are_form_decoded() {
        let table: &[(&str, Result<&str, &str>)] = &[
            ("plain/key.txt", Ok("plain/key.txt")),
            ("with+space", Ok("with space")),
            ("a%2Bplus", Ok("a+plus")),
            ("caf%C3%A9/%25.txt", Ok("café/%.txt")),
            ("bad%2", Err("bad escape")),
            ("bad%zz", Err("bad escape")),
            ("%FF", Err("UTF-8")),
        ];
        for (encoded, expected) in table {
            let got = decode_key(encoded);
            match (expected, &got) {
                (Ok(want), Ok(got)) => assert_eq!(want, got, "{encoded}"),
                (Err(fragment), Err(message)) => {
                    assert!(message.contains(fragment), "{encoded}: {message}")
                }
                _ => panic!("{encoded}: got {got:?}"),
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_config::config())]

        #[test]
        fn encoded_keys_decode_to_themselves(key in "[a-z/ +%.é\u{2603}\u{1F600}-]{0,20}") {
            proptest::prop_assert_eq!(decode_key(&encode_key(&key)), Ok(key));
        }
    }

    fn versioned() -> Schema {
        Schema::parse("Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass").unwrap()
    }

    #[test]
    fn rows_become_entries_or_are_skipped_or_refused() {
        let schema = versioned();
        let entry = |key: &str, size: u64, class: Option<&str>| {
            Row::Object(ObjectEntry {
                key: key.to_owned(),
                size,
                last_modified: OffsetDateTime::parse("2026-11-20T10:00:00.000Z", &Rfc3339).unwrap(),
                etag: "\"abc\"".to_owned(),
                storage_class: class.map(str::to_owned),
            })
        };
        let row = |bucket: &str,
                   key: &str,
                   latest: &str,
                   marker: &str,
                   size: &str,
                   date: &str,
                   class: &str| {
            format!(
                r#""{bucket}","{key}","v1","{latest}","{marker}","{size}","{date}","abc","{class}""#
            )
        };
        let date = "2026-11-20T10:00:00.000Z";
        let table: Vec<(String, Result<Row, &str>)> = vec![
            (
                row("docs", "a/b+c.txt", "true", "false", "12", date, "STANDARD"),
                Ok(entry("a/b c.txt", 12, Some("STANDARD"))),
            ),
            (
                row("docs", "cold", "true", "false", "5", date, "GLACIER"),
                Ok(entry("cold", 5, Some("GLACIER"))),
            ),
            (
                row("docs", "noclass", "true", "false", "5", date, ""),
                Ok(entry("noclass", 5, None)),
            ),
            (
                row("docs", "old", "false", "false", "5", date, "STANDARD"),
                Ok(Row::Skipped),
            ),
            (
                row("docs", "gone", "true", "true", "", date, ""),
                Ok(Row::Skipped),
            ),
            (
                row("docs", "folder/", "true", "false", "0", date, "STANDARD"),
                Ok(Row::Skipped),
            ),
            (
                row("other", "x", "true", "false", "5", date, ""),
                Err("names bucket \"other\""),
            ),
            (
                row("docs", "x", "true", "false", "big", date, ""),
                Err("Size \"big\""),
            ),
            (
                row("docs", "x", "true", "false", "5", "yesterday", ""),
                Err("LastModifiedDate"),
            ),
            (
                row("docs", "x%", "true", "false", "5", date, ""),
                Err("bad escape"),
            ),
            (r#""docs","x""#.to_owned(), Err("has 2 fields")),
        ];
        for (line, expected) in table {
            let got = decode(&line, &schema, "docs");
            match (expected, &got) {
                (Ok(want), Ok(got)) => assert_eq!(&want, got, "{line}"),
                (Err(fragment), Err(message)) => {
                    assert!(message.contains(fragment), "{line}: {message}")
                }
                (expected, got) => panic!("{line}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn an_unversioned_row_has_no_version_columns() {
        let schema = Schema::parse("Bucket, Key, Size, LastModifiedDate, ETag").unwrap();
        let got = decode(
            r#""docs","k","3","2026-11-20T10:00:00Z","e""#,
            &schema,
            "docs",
        )
        .unwrap();
        let Row::Object(entry) = got else {
            panic!("{got:?}")
        };
        assert_eq!(
            (entry.key.as_str(), entry.size, entry.etag.as_str()),
            ("k", 3, "\"e\"")
        );
        assert_eq!(entry.storage_class, None);
    }
}
