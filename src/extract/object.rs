//! The extraction boundary: one downloaded object in, text or a reasoned error out.
//!
//! [`extract_object`] owns the safety rules so that callers cannot forget one: work happens on
//! the blocking pool, under a time budget that is both enforced from outside (the caller gets
//! [`ExtractError::Timeout`] when it runs out, whatever the extractor is doing) and checked from
//! inside (extractors stop at their next checkpoint, so an abandoned extraction does not keep
//! its thread for long); panics are caught and reported; decompression and zip parts never
//! produce more than `max_extracted_bytes`; the body is cut at `max_body_chars`.
//!
//! Not here: deciding whether to download (see [`super::expect_from_name`]) and what a failure
//! means for the index (the caller maps errors to document statuses).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use super::budget::Budget;
use super::compress::{self, Compression};
use super::format::{self, by_content_type, by_file_name, file_name, strip_compression};
use super::sniff::{self, Sniffed};
use super::{ExtractError, Extracted, Format, extract_within};

/// Compression layers undone at most (a `.gz` holding a gzip stream, sniffed, is two).
const MAX_LAYERS: usize = 3;

/// A downloaded object, as the extraction stage sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectInput {
    /// Its name (an S3 key or a file name): the extension decides the format when known.
    pub name: String,
    /// The Content-Type the store returned, if any (format and charset hints).
    pub content_type: Option<String>,
    /// The Content-Encoding the store returned, if any (`gzip`, `zstd`, ...).
    pub content_encoding: Option<String>,
    /// The content as stored.
    pub bytes: Vec<u8>,
}

/// The limits of one extraction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Bytes that decompression (compressed objects, zip parts of office documents, PDF text)
    /// may produce before extraction stops with [`ExtractError::TooLarge`].
    pub max_extracted_bytes: u64,
    /// Time budget of one object; past it the extraction is abandoned
    /// ([`ExtractError::Timeout`]).
    pub timeout: Duration,
    /// Characters of body kept; the rest is cut off (the document stays `extracted`).
    pub max_body_chars: usize,
}

/// Extracts one object on the blocking pool, within `limits`. Never panics and never outlives
/// its time budget.
pub async fn extract_object(
    input: ObjectInput,
    limits: &ExtractLimits,
) -> Result<Extracted, ExtractError> {
    let limits = *limits;
    // The deadline starts now, not when a blocking thread picks the work up, so that work the
    // caller has already given up on stops at its first checkpoint.
    let budget = Budget::new(limits.max_extracted_bytes, limits.timeout);
    guarded(limits.timeout, move || {
        extract_blocking(&input, &limits, &budget)
    })
    .await
}

/// Runs `work` on the blocking pool: a panic becomes [`ExtractError::Panicked`], and after
/// `timeout` the caller gets [`ExtractError::Timeout`] while the thread is left to stop at its
/// next checkpoint.
async fn guarded<F>(timeout: Duration, work: F) -> Result<Extracted, ExtractError>
where
    F: FnOnce() -> Result<Extracted, ExtractError> + Send + 'static,
{
    let task = tokio::task::spawn_blocking(move || {
        catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|payload| {
            Err(ExtractError::Panicked {
                message: panic_message(payload.as_ref()),
            })
        })
    });
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(result)) => result,
        // Only when the runtime shuts down under the task: panics were caught above.
        Ok(Err(join)) => Err(ExtractError::Panicked {
            message: join.to_string(),
        }),
        Err(_elapsed) => Err(ExtractError::Timeout { timeout }),
    }
}

/// The message of a caught panic.
pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic without a message".to_owned())
}

/// The whole pipeline, synchronously: decompress, decide the format, extract, cap the body.
pub(super) fn extract_blocking(
    input: &ObjectInput,
    limits: &ExtractLimits,
    budget: &Budget,
) -> Result<Extracted, ExtractError> {
    budget.check_time()?;
    let (inner_name, by_name) = strip_compression(file_name(&input.name));
    let mut layers: Vec<Compression> = Vec::new();
    if let Some(encoding) = &input.content_encoding {
        // Listed in the order applied: undo the last one first.
        for token in encoding.split(',').rev() {
            match Compression::from_content_encoding(token) {
                Ok(Some(compression)) => layers.push(compression),
                Ok(None) => {}
                Err(token) => return Err(ExtractError::ContentEncoding(token)),
            }
        }
    }
    let mut bytes: std::borrow::Cow<'_, [u8]> = std::borrow::Cow::Borrowed(&input.bytes);
    let mut undone = 0;
    for compression in layers {
        bytes = compress::decompress(compression, &bytes, budget)?.into();
        undone += 1;
    }
    if let Some(compression) = by_name {
        // `x.gz` uploaded with `Content-Encoding: gzip` is usually one layer, not two.
        if undone == 0 || compression.has_magic(&bytes) {
            bytes = compress::decompress(compression, &bytes, budget)?.into();
            undone += 1;
        }
    }
    // Compressed twice (`.gz` of a `.gz`, or an encoding over a compressed file).
    while undone < MAX_LAYERS
        && let Some(compression) = Compression::sniff(&bytes)
    {
        bytes = compress::decompress(compression, &bytes, budget)?.into();
        undone += 1;
    }
    let content_type = input.content_type.as_deref();
    let format = if format::has_known_extension(inner_name) {
        format::format_for(inner_name, None).ok_or(ExtractError::Unsupported { detected: None })?
    } else {
        match sniff::sniff(&bytes) {
            // Text without markers: a specific Content-Type or a well-known name may still say
            // more (text/markdown, text/csv, Dockerfile...).
            Sniffed::Format(Format::PlainText) => content_type
                .and_then(by_content_type)
                .or_else(|| by_file_name(inner_name))
                .unwrap_or(Format::PlainText),
            Sniffed::Format(format) => format,
            Sniffed::Binary(detected) => return Err(ExtractError::Unsupported { detected }),
            // Still compressed after MAX_LAYERS layers.
            Sniffed::Compressed(compression) => {
                return Err(ExtractError::Unsupported {
                    detected: Some(format!("{} nested {undone} deep", compression.name())),
                });
            }
        }
    };
    // A charset in the Content-Type describes the stored bytes; after decompression it still
    // describes the text, which is what a `Content-Encoding: gzip` upload means.
    let mut extracted = extract_within(format, &bytes, content_type, budget)?;
    cap_chars(&mut extracted.body, limits.max_body_chars);
    Ok(extracted)
}

/// Cuts `text` after `max` characters.
fn cap_chars(text: &mut String, max: usize) {
    // A character takes at least one byte: a short text needs no counting.
    if text.len() <= max {
        return;
    }
    if let Some((cut, _)) = text.char_indices().nth(max) {
        text.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::compress::tests::compress;
    use crate::extract::office::tests::{docx_bytes, odf_bytes, xlsx_bytes};
    use crate::extract::zipped::tests::build_zip;

    fn limits() -> ExtractLimits {
        ExtractLimits {
            max_extracted_bytes: 1 << 20,
            timeout: Duration::from_secs(30),
            max_body_chars: 1_000_000,
        }
    }

    fn input(name: &str, bytes: Vec<u8>) -> ObjectInput {
        ObjectInput {
            name: name.to_owned(),
            bytes,
            ..ObjectInput::default()
        }
    }

    fn run(input: &ObjectInput) -> Result<Extracted, ExtractError> {
        let limits = limits();
        let budget = Budget::new(limits.max_extracted_bytes, limits.timeout);
        extract_blocking(input, &limits, &budget)
    }

    #[test]
    fn compressed_objects_by_name_and_content_encoding() {
        let json = br#"{"event": "axolotl spotted"}"#;
        let cases: Vec<(ObjectInput, &str)> = vec![
            (
                input(
                    "a/report.txt.gz",
                    compress(Compression::Gzip, b"gzip words"),
                ),
                "gzip words",
            ),
            (
                input("logs.json.zst", compress(Compression::Zstd, json)),
                "event axolotl spotted",
            ),
            (
                input(
                    "notes.md.BZ2",
                    compress(Compression::Bzip2, b"# T\nbz words"),
                ),
                "# T\nbz words",
            ),
            (
                input("data.csv.xz", compress(Compression::Xz, b"a,b\n1,2")),
                "a,b\n1,2",
            ),
            (
                ObjectInput {
                    content_encoding: Some("gzip".to_owned()),
                    ..input("page.html", compress(Compression::Gzip, b"<p>encoded</p>"))
                },
                "encoded",
            ),
            (
                ObjectInput {
                    content_encoding: Some("gzip".to_owned()),
                    ..input("page.txt.gz", compress(Compression::Gzip, b"one layer"))
                },
                "one layer",
            ),
            (
                ObjectInput {
                    content_encoding: Some("identity, aws-chunked".to_owned()),
                    ..input("plain.txt", b"as is".to_vec())
                },
                "as is",
            ),
            (
                input(
                    "nested.txt.gz",
                    compress(Compression::Gzip, &compress(Compression::Gzip, b"twice")),
                ),
                "twice",
            ),
        ];
        for (input, want) in cases {
            let got = run(&input).unwrap_or_else(|e| panic!("{}: {e}", input.name));
            assert_eq!(got.body, want, "{}", input.name);
        }
    }

    /// Reads a checked-in fixture (see tests/fixtures/README.md).
    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn documents_from_real_writers_yield_their_words() {
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            (
                "sample.pdf",
                &["pelican", "ledger", "r\u{e9}sum\u{e9}"],
                Some("Quarterly pelican report"),
            ),
            (
                "owner-password.pdf",
                &["pelican"],
                Some("Quarterly pelican report"),
            ),
            (
                "sample.docx",
                &["flamingo", "lagoon", "heron", "egret"],
                Some("Flamingo inventory"),
            ),
            (
                "sample.pptx",
                &["Walrus strategy", "krill", "narwhal"],
                Some("Walrus strategy"),
            ),
            (
                "sample.xlsx",
                &["Penguins", "Adelie", "Ross Sea", "1250", "845.5"],
                Some("Penguin census"),
            ),
            (
                "sample.odt",
                &["Otter notes", "Sea otters hold hands"],
                Some("Otter notes"),
            ),
            ("sample.ods", &["beaver", "muskrat", "lodge"], None),
            ("sample.odp", &["Puffin slide about burrows"], None),
            (
                "sample.epub",
                &["albatross glides", "wingspan"],
                Some("Albatross voyages"),
            ),
            (
                "sample.eml",
                &["kingfisher", "Ann Otter", "map.pdf"],
                Some("Kingfisher sightings"),
            ),
            (
                "sample.rtf",
                &["grey heron waits caf\u{e9} \u{20ac} still"],
                Some("Heron memo"),
            ),
            ("report.txt.gz", &["capybara"], None),
            ("logs.json.zst", &["axolotl spotted"], None),
            ("notes.md.bz2", &["The ibis wades"], Some("Ibis notes")),
            ("table.csv.xz", &["kiwi,Otago"], None),
        ];
        for (name, words, title) in cases {
            let got = run(&input(name, fixture(name))).unwrap_or_else(|e| panic!("{name}: {e}"));
            for word in *words {
                assert!(
                    got.body.contains(word),
                    "{name}: {word:?} missing from {:?}",
                    got.body
                );
            }
            assert_eq!(got.title.as_deref(), *title, "{name}");
        }
    }

    #[test]
    fn bad_fixtures_name_their_cause() {
        let cases: &[(&str, &str)] = &[
            (
                "encrypted.pdf",
                "encrypted PDF: the content is password-protected",
            ),
            (
                "encrypted.docx",
                "encrypted DOCX: the content is password-protected",
            ),
            ("truncated.txt.gz", "truncated or corrupt gzip data"),
        ];
        for (name, message) in cases {
            let err = run(&input(name, fixture(name))).unwrap_err();
            assert!(err.to_string().starts_with(message), "{name}: {err}");
            assert!(!err.is_too_large() && !err.is_unsupported(), "{name}");
        }
    }

    #[test]
    fn objects_without_extension_are_sniffed() {
        let json = ObjectInput {
            content_type: Some("binary/octet-stream".to_owned()),
            ..input("exports/data", br#"{"k": "sniffed json"}"#.to_vec())
        };
        assert_eq!(run(&json).unwrap().body, "k sniffed json");
        let markdown = ObjectInput {
            content_type: Some("text/markdown".to_owned()),
            ..input("NOTES", b"# Sniffed title\nbody".to_vec())
        };
        assert_eq!(
            run(&markdown).unwrap().title.as_deref(),
            Some("Sniffed title")
        );
        let docx = input("upload-123", docx_bytes(&["sniffed docx words"], ""));
        assert_eq!(run(&docx).unwrap().body, "sniffed docx words");
        let gz_pdf = input(
            "blob.gz",
            compress(
                Compression::Gzip,
                include_bytes!("../../tests/fixtures/sample.pdf"),
            ),
        );
        assert!(run(&gz_pdf).unwrap().body.contains("pelican"));
        let image = input("picture", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec());
        let err = run(&image).unwrap_err();
        assert!(err.is_unsupported(), "{err}");
        assert_eq!(
            err.to_string(),
            "no extractable format detected (content looks like image/png)"
        );
        let ods = input(
            "sheet",
            odf_bytes(
                "application/vnd.oasis.opendocument.spreadsheet",
                "<office:spreadsheet><table:table><table:table-row><table:table-cell><text:p>cell</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet>",
                "",
            ),
        );
        assert_eq!(run(&ods).unwrap().body, "cell");
        let xlsx = input("book", xlsx_bytes("Sheet", &["sniffed"]));
        assert!(run(&xlsx).unwrap().body.contains("sniffed"));
    }

    #[test]
    fn bombs_are_too_large_and_bad_input_names_the_cause() {
        let zeros = vec![0u8; 8 << 20];
        let gzip_bomb = input("bomb.txt.gz", compress(Compression::Gzip, &zeros));
        let err = run(&gzip_bomb).unwrap_err();
        assert!(err.is_too_large(), "{err}");
        assert_eq!(
            err.to_string(),
            "decompressed content exceed max_extracted_bytes (1048576 bytes); extraction stopped"
        );
        let zip_bomb = input(
            "bomb.docx",
            build_zip(&[
                ("word/document.xml", &zeros),
                ("docProps/core.xml", b"<a/>"),
            ]),
        );
        assert!(run(&zip_bomb).unwrap_err().is_too_large());

        let whole = compress(Compression::Gzip, &b"truncated words ".repeat(1000));
        let truncated = input("cut.txt.gz", whole[..whole.len() / 2].to_vec());
        let err = run(&truncated).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("truncated or corrupt gzip data"),
            "{err}"
        );
        let brotli = ObjectInput {
            content_encoding: Some("br".to_owned()),
            ..input("a.txt", b"x".to_vec())
        };
        assert_eq!(
            run(&brotli).unwrap_err(),
            ExtractError::ContentEncoding("br".to_owned())
        );
    }

    #[test]
    fn the_body_is_capped_in_characters() {
        let limits = ExtractLimits {
            max_body_chars: 3,
            ..limits()
        };
        let budget = Budget::new(1 << 20, Duration::from_secs(30));
        let got =
            extract_blocking(&input("a.txt", "\u{e9}t\u{e9}s".into()), &limits, &budget).unwrap();
        assert_eq!(got.body, "\u{e9}t\u{e9}");
    }

    #[tokio::test]
    async fn a_hung_extraction_is_abandoned_and_reported() {
        // A zero budget: the deadline has passed before the first checkpoint, so the
        // cooperative checks stop the extractor and the outer timeout reports it either way.
        let limits = ExtractLimits {
            timeout: Duration::ZERO,
            ..limits()
        };
        let pdf = include_bytes!("../../tests/fixtures/sample.pdf").to_vec();
        let err = extract_object(input("a.pdf", pdf), &limits)
            .await
            .unwrap_err();
        assert!(matches!(err, ExtractError::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("extraction_timeout"), "{err}");
    }

    #[tokio::test]
    async fn work_that_never_reaches_a_checkpoint_is_still_abandoned() {
        let outcome = guarded(Duration::from_millis(20), || {
            std::thread::sleep(Duration::from_millis(500));
            Ok(Extracted::default())
        })
        .await;
        assert!(
            matches!(outcome, Err(ExtractError::Timeout { .. })),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn panics_are_caught_and_reported() {
        let outcome = guarded(Duration::from_secs(30), || panic!("boom in a parser")).await;
        assert_eq!(
            outcome,
            Err(ExtractError::Panicked {
                message: "boom in a parser".to_owned()
            })
        );
        let formatted = guarded(Duration::from_secs(30), || {
            let n = 7;
            panic!("index {n} out of range")
        })
        .await;
        assert_eq!(
            formatted.unwrap_err().to_string(),
            "extraction crashed: index 7 out of range"
        );
    }
}
