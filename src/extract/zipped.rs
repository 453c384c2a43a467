//! Reading zip-based documents (DOCX, PPTX, XLSX, OpenDocument, EPUB) safely: every entry is
//! decompressed through the extraction [`Budget`], so one entry or the sum of all of them cannot
//! pass `max_extracted_bytes` (zip bombs), whatever sizes the archive declares.
//!
//! Not a general archive extractor: `.zip` objects themselves are not indexed.

use std::io::Cursor;

use zip::ZipArchive;
use zip::result::ZipError;

use super::budget::Budget;
use super::format::by_content_type;
use super::{ExtractError, Format};

/// An opened zip container.
pub(super) struct Package<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    /// The document format, for messages ("DOCX", "EPUB", ...).
    format: &'static str,
    budget: &'a Budget,
}

impl<'a> Package<'a> {
    /// Opens the archive. A truncated file (no central directory) or anything else that is not
    /// a zip archive is [`ExtractError::Corrupt`].
    pub(super) fn open(
        bytes: &'a [u8],
        format: &'static str,
        budget: &'a Budget,
    ) -> Result<Self, ExtractError> {
        budget.check_time()?;
        let archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| ExtractError::Corrupt {
            format,
            message: format!("not a readable zip container (truncated or damaged?): {e}"),
        })?;
        Ok(Package {
            archive,
            format,
            budget,
        })
    }

    /// The entry names, in archive order.
    pub(super) fn names(&self) -> Vec<String> {
        self.archive
            .file_names()
            .filter_map(|name| name.ok().map(std::borrow::Cow::into_owned))
            .collect()
    }

    /// Whether the archive has an entry of this exact name.
    pub(super) fn has(&self, name: &str) -> bool {
        self.archive.index_for_name(name).is_some()
    }

    /// The decompressed bytes of an entry, `None` when there is no such entry.
    pub(super) fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>, ExtractError> {
        let Some(index) = self.archive.index_for_name(name) else {
            return Ok(None);
        };
        self.read_index(index).map(Some)
    }

    /// The decompressed bytes of an entry that must be there.
    pub(super) fn require(&mut self, name: &str) -> Result<Vec<u8>, ExtractError> {
        self.read(name)?.ok_or_else(|| ExtractError::Corrupt {
            format: self.format,
            message: format!("the part {name} is missing"),
        })
    }

    /// Decompresses every entry once, discarding the bytes: proves the whole archive fits the
    /// budget before it is handed to a library that reads entries without a cap (calamine).
    pub(super) fn check_all(&mut self) -> Result<(), ExtractError> {
        for index in 0..self.archive.len() {
            self.read_index(index)?;
        }
        Ok(())
    }

    fn read_index(&mut self, index: usize) -> Result<Vec<u8>, ExtractError> {
        let format = self.format;
        let corrupt = |e: &dyn std::fmt::Display| ExtractError::Corrupt {
            format,
            message: format!("damaged zip entry: {e}"),
        };
        let entry = match self.archive.by_index(index) {
            Ok(entry) => entry,
            Err(ZipError::UnsupportedArchive(message))
                if message == ZipError::PASSWORD_REQUIRED =>
            {
                return Err(ExtractError::Encrypted { format });
            }
            Err(e) => return Err(corrupt(&e)),
        };
        if entry.encrypted() {
            return Err(ExtractError::Encrypted { format });
        }
        self.budget
            .read_all(entry, "decompressed document parts", |e| corrupt(&e))
    }
}

/// The document format of a zip container, from its entry names (OOXML) or its `mimetype`
/// entry (OpenDocument, EPUB); `None` for other archives. Reads only the central directory and
/// at most 128 bytes of `mimetype`, so it needs no budget.
pub(super) fn container_format(bytes: &[u8]) -> Option<Format> {
    let mut archive = ZipArchive::new(Cursor::new(bytes)).ok()?;
    for (part, format) in [
        ("word/document.xml", Format::Docx),
        ("ppt/presentation.xml", Format::Pptx),
        ("xl/workbook.xml", Format::Xlsx),
    ] {
        if archive.index_for_name(part).is_some() {
            return Some(format);
        }
    }
    let entry = archive.by_name("mimetype").ok()?;
    let mut mimetype = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(entry, 128), &mut mimetype).ok()?;
    by_content_type(mimetype.trim())
}

#[cfg(test)]
pub(super) mod tests {
    use std::io::Write as _;
    use std::time::Duration;

    use zip::write::SimpleFileOptions;

    use super::*;

    /// A zip archive of `(name, content)` entries, deflated; the helper every zip-based format's
    /// tests build their documents with.
    pub(in crate::extract) fn build_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content) in entries {
            let options = if name.ends_with("mimetype") {
                SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored)
            } else {
                SimpleFileOptions::default()
            };
            writer.start_file(*name, options).unwrap();
            writer.write_all(content).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    /// `archive` with one more entry.
    pub(in crate::extract) fn with_entry(archive: &[u8], name: &str, content: &[u8]) -> Vec<u8> {
        let mut source = ZipArchive::new(Cursor::new(archive)).unwrap();
        let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
        for i in 0..source.len() {
            let mut entry = source.by_index(i).unwrap();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            entries.push((entry.name().unwrap().into_owned(), bytes));
        }
        entries.push((name.to_owned(), content.to_vec()));
        let refs: Vec<(&str, &[u8])> = entries
            .iter()
            .map(|(n, c)| (n.as_str(), c.as_slice()))
            .collect();
        build_zip(&refs)
    }

    #[test]
    fn entries_are_read_and_missing_ones_are_none() {
        let bytes = build_zip(&[("a.xml", b"<a/>"), ("dir/b.txt", b"bee")]);
        let budget = Budget::unlimited();
        let mut package = Package::open(&bytes, "TEST", &budget).unwrap();
        assert_eq!(package.names(), ["a.xml", "dir/b.txt"]);
        assert!(package.has("dir/b.txt"));
        assert_eq!(package.read("dir/b.txt").unwrap().unwrap(), b"bee");
        assert_eq!(package.read("nope").unwrap(), None);
        let err = package.require("nope").unwrap_err();
        assert_eq!(err.to_string(), "corrupt TEST: the part nope is missing");
    }

    #[test]
    fn a_zip_bomb_stops_at_the_total_cap() {
        let zeros = vec![0u8; 8 << 20];
        let bomb = build_zip(&[("one", &zeros), ("two", &zeros), ("three", &zeros)]);
        assert!(bomb.len() < 100_000, "{}", bomb.len());
        // Each entry fits alone; together they pass the cap.
        let budget = Budget::new(20 << 20, Duration::from_secs(60));
        let mut package = Package::open(&bomb, "DOCX", &budget).unwrap();
        let err = package.check_all().unwrap_err();
        assert!(
            matches!(err, ExtractError::TooLarge { limit, .. } if limit == 20 << 20),
            "{err}"
        );
    }

    #[test]
    fn truncated_and_non_zip_input_is_corrupt() {
        let bytes = build_zip(&[("a.xml", b"<a>hello</a>")]);
        let budget = Budget::unlimited();
        for input in [&bytes[..bytes.len() - 10], b"not a zip at all".as_slice()] {
            let err = Package::open(input, "ODT", &budget).err().unwrap();
            assert!(
                err.to_string()
                    .starts_with("corrupt ODT: not a readable zip"),
                "{err}"
            );
        }
    }
}
