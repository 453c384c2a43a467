//! Extraction stage: turns an object's bytes into searchable text.
//!
//! This module knows bytes, names and media types only, never S3 or the index. Callers decide
//! what to download with [`expect_from_name`] (a pure function of the key) and hand each
//! downloaded object to [`extract_object`], the one entry point that owns the safety rules: it
//! runs on the blocking pool under a time budget, catches panics, undoes compression (by name,
//! Content-Encoding or magic bytes) without ever producing more than `max_extracted_bytes`,
//! sniffs objects without an extension, dispatches to the format, and caps the body.
//!
//! Formats: text and markup (one module each), PDF, Office (DOCX, PPTX, XLSX, OpenDocument),
//! RTF, EPUB and e-mail. Not handled: legacy binary Office files, images (no OCR), archives of
//! several files (`.zip`, `.tar.gz`).

mod budget;
mod compress;
mod decode;
mod email;
mod epub;
mod format;
mod html;
mod json;
mod markup;
mod object;
mod office;
mod pdf;
mod rtf;
mod sniff;
mod text;
mod word_styles;
mod xml;
mod zipped;

use std::borrow::Cow;

use budget::Budget;
use decode::Declared;

pub use compress::Compression;
pub use format::{Expected, expect_from_name, format_for};
pub use object::{ExtractLimits, ObjectInput, extract_object};

/// A format we can extract text from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Unstructured text (`.txt`, `text/plain`, and lightweight markup such as reStructuredText).
    PlainText,
    /// Markdown; indexed as is, titled by front-matter `title:` or the first level-1 heading.
    Markdown,
    /// Comma-separated values; indexed as is.
    Csv,
    /// Tab-separated values; indexed as is.
    Tsv,
    /// A JSON document (also accepts several concatenated top-level values).
    Json,
    /// Newline-delimited JSON (JSON Lines); blank lines are allowed.
    Ndjson,
    /// XML: element text, CDATA and attribute values.
    Xml,
    /// YAML; indexed as is.
    Yaml,
    /// Log files; indexed as is.
    Log,
    /// Source code and configuration files; indexed as is.
    SourceCode,
    /// HTML or XHTML: visible text, with the `<title>` as title.
    Html,
    /// PDF: the text layer, titled by the document information `/Title`.
    Pdf,
    /// Word (Office Open XML): body, headers, footers and notes.
    Docx,
    /// PowerPoint (Office Open XML): slides in order, then speaker notes.
    Pptx,
    /// Excel (Office Open XML): sheet names and cell values.
    Xlsx,
    /// OpenDocument text.
    Odt,
    /// OpenDocument spreadsheet.
    Ods,
    /// OpenDocument presentation.
    Odp,
    /// Rich Text Format.
    Rtf,
    /// EPUB e-book: the spine's documents in reading order.
    Epub,
    /// An e-mail message (RFC 5322/MIME): main headers, text and HTML parts, attachment names.
    Eml,
}

/// Extracted text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The searchable text.
    pub body: String,
    /// A title found in the document itself (HTML `<title>`, Markdown `# heading`), if any.
    pub title: Option<String>,
}

/// Why extraction failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The JSON (or one NDJSON record) does not parse. Lines and columns are 1-based and count
    /// in the decoded text.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error, as counted by `serde_json` (in bytes).
        column: usize,
        /// What was wrong, as reported by the parser.
        message: String,
    },
    /// The XML is not well-formed.
    #[error("malformed XML at line {line}, column {column}: {message}")]
    Xml {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// What was wrong, as reported by the parser.
        message: String,
    },
    /// Decompressed or extracted content passed `max_extracted_bytes` (a compression or zip
    /// bomb, or just a very large document); extraction stopped there.
    #[error("{what} exceed max_extracted_bytes ({limit} bytes); extraction stopped")]
    TooLarge {
        /// What passed the cap ("decompressed content", "decompressed document parts", ...).
        what: &'static str,
        /// The cap in bytes.
        limit: u64,
    },
    /// The document needs a password.
    #[error("encrypted {format}: the content is password-protected and cannot be read")]
    Encrypted {
        /// The format, e.g. "PDF", "DOCX".
        format: &'static str,
    },
    /// A compressed object is truncated or corrupt.
    #[error("truncated or corrupt {compression} data: {message}")]
    Decompress {
        /// The compression, e.g. "gzip".
        compression: &'static str,
        /// What the decoder reported.
        message: String,
    },
    /// The document is truncated, damaged or not of the format its name says.
    #[error("corrupt {format}: {message}")]
    Corrupt {
        /// The format, e.g. "PDF", "EPUB".
        format: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The object uses a Content-Encoding that cannot be undone.
    #[error("unsupported Content-Encoding {0:?}")]
    ContentEncoding(String),
    /// Neither name, Content-Type nor content tell a format we extract.
    #[error("no extractable format detected{}", .detected.as_deref().map(|m| format!(" (content looks like {m})")).unwrap_or_default())]
    Unsupported {
        /// The media type sniffed from the content, if any.
        detected: Option<String>,
    },
    /// Extraction took longer than `extraction_timeout` and was abandoned.
    #[error("extraction took longer than extraction_timeout ({} s) and was abandoned", .timeout.as_secs_f64())]
    Timeout {
        /// The time budget.
        timeout: std::time::Duration,
    },
    /// The extractor panicked; the panic was caught at the extraction boundary.
    #[error("extraction crashed: {message}")]
    Panicked {
        /// The panic message.
        message: String,
    },
}

impl ExtractError {
    /// Whether extraction stopped at a size cap (the document is `too_large`, not broken).
    pub fn is_too_large(&self) -> bool {
        matches!(self, ExtractError::TooLarge { .. })
    }

    /// Whether the object turned out not to be of a format we extract (metadata only).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, ExtractError::Unsupported { .. })
    }
}

/// Extracts searchable text. Pure, CPU-only, never panics on text formats.
///
/// No size or time limit applies: the worker goes through [`extract_object`]; this is for
/// trusted input such as tests and benchmarks. Text bytes are decoded with [`decode_text`]
/// first; HTML and XML additionally honour an in-document charset declaration when the bytes
/// are neither BOM-marked nor valid UTF-8.
pub fn extract(format: Format, bytes: &[u8]) -> Result<Extracted, ExtractError> {
    extract_with_content_type(format, bytes, None)
}

/// Like [`extract`], but also uses the `charset` parameter of the object's Content-Type as an
/// encoding hint.
///
/// Precedence: byte-order mark, then valid UTF-8, then the Content-Type charset, then an
/// in-document declaration (HTML `<meta charset>`, `<?xml encoding?>`), then Windows-1252. Valid
/// UTF-8 wins over labels because mislabelled UTF-8 is far more common than non-UTF-8 text
/// that happens to be valid UTF-8. A UTF-8 label on invalid UTF-8 keeps it UTF-8 (bad sequences
/// become U+FFFD) rather than turning every accented letter into Windows-1252 mojibake.
pub fn extract_with_content_type(
    format: Format,
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<Extracted, ExtractError> {
    extract_within(format, bytes, content_type, &Budget::unlimited())
}

/// Dispatches to the format's extractor under `budget`.
fn extract_within(
    format: Format,
    bytes: &[u8],
    content_type: Option<&str>,
    budget: &Budget,
) -> Result<Extracted, ExtractError> {
    let header_hint = content_type.and_then(decode::charset_from_content_type);
    match format {
        Format::Html => {
            let text = decode::decode_with_hint(bytes, header_hint, Declared::HtmlMeta);
            Ok(html::extract(&text))
        }
        Format::Xml => {
            let text = decode::decode_with_hint(bytes, header_hint, Declared::XmlDecl);
            xml::extract(&text)
        }
        Format::Json | Format::Ndjson => {
            let text = decode::decode_with_hint(bytes, header_hint, Declared::Nowhere);
            json::extract(&text, format == Format::Ndjson)
        }
        Format::Markdown => {
            let text = decode::decode_with_hint(bytes, header_hint, Declared::Nowhere);
            let title = text::markdown_title(&text);
            Ok(Extracted {
                body: text.into_owned(),
                title,
            })
        }
        Format::PlainText
        | Format::Csv
        | Format::Tsv
        | Format::Yaml
        | Format::Log
        | Format::SourceCode => Ok(Extracted {
            body: decode::decode_with_hint(bytes, header_hint, Declared::Nowhere).into_owned(),
            title: None,
        }),
        Format::Pdf => pdf::extract(bytes, budget),
        Format::Docx => office::docx(bytes, budget),
        Format::Pptx => office::pptx(bytes, budget),
        Format::Xlsx => office::xlsx(bytes, budget),
        Format::Odt => office::open_document(bytes, "ODT", budget),
        Format::Ods => office::open_document(bytes, "ODS", budget),
        Format::Odp => office::open_document(bytes, "ODP", budget),
        Format::Rtf => rtf::extract(bytes, budget),
        Format::Epub => epub::extract(bytes, budget),
        Format::Eml => email::extract(bytes, budget),
    }
}

/// Documents the extraction tests make, for the tests of passages cut from extracted text.
#[cfg(test)]
pub(crate) mod fixtures {
    pub(crate) use super::epub::tests::epub_bytes;
    pub(crate) use super::office::tests::{
        german_docx_bytes, odf_bytes, pptx_bytes, styled_docx_bytes,
    };
    pub(crate) use super::pdf::tests::pages_pdf;
}

/// [`extract_object`]'s pipeline without its guards: on the calling thread, with no panic
/// catching and no outer timeout (the budget's own checkpoints still apply). For the fuzz
/// targets, which must see the panics, hangs and allocations the guards would hide.
#[doc(hidden)]
pub fn extract_unguarded(
    input: &ObjectInput,
    limits: &ExtractLimits,
) -> Result<Extracted, ExtractError> {
    let budget = Budget::new(limits.max_extracted_bytes, limits.timeout);
    object::extract_blocking(input, limits, &budget)
}

/// Decodes text: UTF-8 / UTF-16LE / UTF-16BE by BOM, UTF-8 without BOM if valid, else
/// Windows-1252.
///
/// A UTF-8 BOM is stripped. Borrows when the input is BOM-less valid UTF-8.
pub fn decode_text(bytes: &[u8]) -> Cow<'_, str> {
    decode::decode_with_hint(bytes, None, Declared::Nowhere)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: deterministic pseudo-random bytes without a dependency.
    pub(super) struct Rng(u64);

    impl Rng {
        pub(super) fn new(seed: u64) -> Self {
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }
        pub(super) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        pub(super) fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
        pub(super) fn bytes(&mut self, len: usize, alphabet: &[u8]) -> Vec<u8> {
            (0..len)
                .map(|_| {
                    if alphabet.is_empty() {
                        self.next() as u8
                    } else {
                        alphabet[self.below(alphabet.len())]
                    }
                })
                .collect()
        }
    }

    const ALL: [Format; 11] = [
        Format::PlainText,
        Format::Markdown,
        Format::Csv,
        Format::Tsv,
        Format::Json,
        Format::Ndjson,
        Format::Xml,
        Format::Yaml,
        Format::Log,
        Format::SourceCode,
        Format::Html,
    ];

    /// Valid-looking documents to corrupt: mutations of real syntax reach deeper parser states
    /// than uniform noise does.
    const SEEDS: &[&[u8]] = &[
        b"<!DOCTYPE html><html><head><title>T &amp; t</title><script>if(a<b){}</script></head>\
          <body><p>caf&eacute; <b>x</b></p><!-- c --><template><p>t</p></template></body></html>",
        b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><!DOCTYPE r [<!ENTITY e \"x\">]>\
          <r a=\"1 &amp; 2\"><c><![CDATA[<raw>]]></c>&#233;&e;<?pi x?><!--c--></r>",
        b"{\"a\": [1, 2.5e3, true, null, \"\\u00e9\\n\"], \"b\": {\"c\": -0}}\n{\"d\": \"e\"}\n",
        b"\xEF\xBB\xBF# Title\n\nsome *text*\n",
        b"\xFF\xFEa\x00b\x00<\x00",
        b"\xFE\xFF\x00a\x00b\xD8\x00",
    ];

    #[test]
    fn garbage_never_panics() {
        let alphabets: [&[u8]; 4] = [
            b"",
            b"<>/!?-=\"' &#;x[]{}:,\\abcAB01\n\t\xC3\xA9\xFF\x00",
            b"<>&;#xXaeio/!-[]CDATA",
            b"{}[]\":,\\u0123456789abcdefnrt e.-+",
        ];
        let mut rng = Rng::new(42);
        for round in 0..3000 {
            let alphabet = alphabets[round % alphabets.len()];
            let len = rng.below(300);
            let input = rng.bytes(len, alphabet);
            for format in ALL {
                let _ = extract(format, &input);
            }
        }
    }

    #[test]
    fn mutated_and_truncated_documents_never_panic() {
        let mut rng = Rng::new(7);
        for seed in SEEDS {
            for cut in 0..=seed.len() {
                for format in ALL {
                    let _ = extract(format, &seed[..cut]);
                }
            }
            for _ in 0..400 {
                let mut doc = seed.to_vec();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(doc.len());
                    match rng.below(3) {
                        0 => doc[at] = rng.next() as u8,
                        1 => {
                            doc.remove(at);
                        }
                        _ => doc.insert(at, seed[rng.below(seed.len())]),
                    }
                }
                for format in ALL {
                    let _ = extract(format, &doc);
                }
            }
        }
    }

    #[test]
    fn deep_nesting_never_overflows() {
        let depth = 100_000;
        let cases: Vec<(Format, Vec<u8>)> = vec![
            (Format::Json, b"[".repeat(depth)),
            (Format::Json, b"{\"a\":".repeat(depth)),
            (Format::Ndjson, b"[".repeat(depth)),
            (Format::Xml, b"<a>".repeat(depth)),
            (Format::Html, b"<div>".repeat(depth)),
            (Format::Html, b"<template>".repeat(depth)),
        ];
        for (format, input) in cases {
            let _ = extract(format, &input);
        }
    }

    #[test]
    fn text_formats_are_decoded_as_is() {
        let input = "a,b\r\n  x\ty \u{e9}\n".as_bytes();
        for format in [
            Format::PlainText,
            Format::Csv,
            Format::Tsv,
            Format::Yaml,
            Format::Log,
            Format::SourceCode,
        ] {
            let got = extract(format, input).unwrap();
            assert_eq!(got.body, "a,b\r\n  x\ty \u{e9}\n", "{format:?}");
            assert_eq!(got.title, None, "{format:?}");
        }
        let latin1 = extract(Format::PlainText, b"caf\xE9").unwrap();
        assert_eq!(latin1.body, "caf\u{e9}");
    }

    #[test]
    fn markdown_keeps_body_and_finds_title() {
        let got = extract(Format::Markdown, b"\xEF\xBB\xBF# Hello  *world*\n\nText.\n").unwrap();
        assert_eq!(got.body, "# Hello  *world*\n\nText.\n");
        assert_eq!(got.title.as_deref(), Some("Hello  *world*"));
    }

    #[test]
    fn content_type_charset_is_a_hint_for_non_utf8() {
        // 0xB1 is ą in Latin-2 but ± in Windows-1252.
        let bytes = b"\xB1";
        let hinted = extract_with_content_type(
            Format::PlainText,
            bytes,
            Some("text/plain; charset=ISO-8859-2"),
        )
        .unwrap();
        assert_eq!(hinted.body, "\u{105}");
        assert_eq!(extract(Format::PlainText, bytes).unwrap().body, "\u{b1}");
        // Valid UTF-8 wins over a wrong label.
        let utf8 = extract_with_content_type(
            Format::PlainText,
            "\u{e9}".as_bytes(),
            Some("text/plain; charset=iso-8859-1"),
        )
        .unwrap();
        assert_eq!(utf8.body, "\u{e9}");
    }

    #[test]
    fn error_messages_name_the_cause() {
        let json = extract(Format::Json, b"{\n  \"a\": 1,\n  \"b\": x\n}").unwrap_err();
        assert_eq!(
            json.to_string(),
            "invalid JSON at line 3, column 8: expected value"
        );
        let xml = extract(Format::Xml, b"<a>\n<b></c></a>").unwrap_err();
        assert!(
            xml.to_string()
                .starts_with("malformed XML at line 2, column "),
            "{xml}"
        );
    }
}
