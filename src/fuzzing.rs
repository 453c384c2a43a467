//! The harnesses of the fuzz targets in `fuzz/`, kept in the library so that `cargo test`
//! replays the saved inputs through exactly the code the fuzzers ran (the `replay` tests below).
//!
//! Each harness turns the fuzzer's bytes into one input of a stage, runs the stage with the
//! production limits and panics only when a property fails: the stage itself must return a
//! value (text or a reasoned error) for every input. Extraction is run below the panic and
//! timeout guards of [`extract_object`](crate::extract::extract_object), which would otherwise
//! hide what the fuzzer is looking for. Not part of the product's API.

use std::path::Path;
use std::time::Duration;

use crate::config::{self, defaults};
use crate::extract::{self, ExtractError, ExtractLimits, ObjectInput};
use crate::rules::SyncRules;

/// The limits a connector runs with when its config sets none.
pub const PRODUCTION_LIMITS: ExtractLimits = ExtractLimits {
    max_extracted_bytes: defaults::max_content_bytes(),
    timeout: Duration::from_secs(defaults::extraction_timeout()),
    max_body_chars: defaults::max_body_chars() as usize,
};

/// A family of formats, one fuzz target each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// PDF: the whole input is the file.
    Pdf,
    /// Zip containers (DOCX, PPTX, XLSX, ODT, ODS, ODP, EPUB): the first byte picks the name.
    Zip,
    /// RTF: the whole input is the file.
    Rtf,
    /// HTML, XML and the other parsed text formats: the first byte picks the name and charset.
    Markup,
    /// E-mail (RFC 5322/MIME): the whole input is the message.
    Email,
    /// Compressed streams (gzip, zstd, bzip2, xz, nested): the first byte picks the name and
    /// Content-Encoding.
    Compressed,
}

impl Family {
    /// Every family, with the directory name its target, corpus and regressions use.
    pub const ALL: [(Family, &'static str); 6] = [
        (Family::Pdf, "extract_pdf"),
        (Family::Zip, "extract_zip"),
        (Family::Rtf, "extract_rtf"),
        (Family::Markup, "extract_markup"),
        (Family::Email, "extract_email"),
        (Family::Compressed, "extract_compressed"),
    ];

    /// The names a selector byte picks from; `None` for families that take the whole input.
    pub fn names(self) -> Option<&'static [&'static str]> {
        match self {
            Family::Pdf | Family::Rtf | Family::Email => None,
            Family::Zip => Some(&[
                "a.docx", "a.pptx", "a.xlsx", "a.odt", "a.ods", "a.odp", "a.epub", "upload",
            ]),
            Family::Markup => Some(&[
                "a.html", "a.xml", "a.json", "a.ndjson", "a.md", "a.svg", "a.xhtml", "upload",
            ]),
            Family::Compressed => Some(&[
                "a.txt.gz",
                "a.json.zst",
                "a.md.bz2",
                "a.csv.xz",
                "a.html",
                "blob",
                "a.xml.gz",
                "a.pdf.gz",
            ]),
        }
    }

    /// The object the extraction stage sees for the fuzzer's `data`.
    pub fn input(self, data: &[u8]) -> ObjectInput {
        let whole = |name: &str| ObjectInput {
            name: name.to_owned(),
            bytes: data.to_vec(),
            ..ObjectInput::default()
        };
        let Some(names) = self.names() else {
            return match self {
                Family::Pdf => whole("a.pdf"),
                Family::Rtf => whole("a.rtf"),
                _ => whole("a.eml"),
            };
        };
        let Some((&selector, rest)) = data.split_first() else {
            return whole(names[0]);
        };
        let name = names[usize::from(selector) % names.len()];
        // The high bits pick what the store says about the object.
        let hint = selector as usize / names.len();
        let (content_type, content_encoding) = match self {
            Family::Markup => {
                const TYPES: [Option<&str>; 4] = [
                    None,
                    Some("text/html; charset=ISO-8859-2"),
                    Some("application/xml; charset=utf-16"),
                    Some("text/plain; charset=shift_jis"),
                ];
                (TYPES[hint % TYPES.len()], None)
            }
            Family::Compressed => {
                const ENCODINGS: [Option<&str>; 5] = [
                    None,
                    Some("gzip"),
                    Some("zstd"),
                    Some("xz, bzip2"),
                    Some("gzip, gzip"),
                ];
                (None, ENCODINGS[hint % ENCODINGS.len()])
            }
            _ => (None, None),
        };
        ObjectInput {
            name: name.to_owned(),
            content_type: content_type.map(str::to_owned),
            content_encoding: content_encoding.map(str::to_owned),
            bytes: rest.to_vec(),
        }
    }
}

/// Extracts the object `data` stands for in `family`, unguarded, with the production limits.
/// Panics when the extractor panics or breaks a limit.
pub fn extract(family: Family, data: &[u8]) -> Result<(), ExtractError> {
    let input = family.input(data);
    let extracted = extract::extract_unguarded(&input, &PRODUCTION_LIMITS)?;
    let chars = extracted.body.chars().count();
    assert!(
        chars <= PRODUCTION_LIMITS.max_body_chars,
        "{}: body of {chars} characters passes max_body_chars",
        input.name
    );
    Ok(())
}

/// Variables the config harness can refer to: set, empty, long, and one holding YAML syntax
/// (which must stay a string).
fn lookup(name: &str) -> Option<String> {
    match name {
        "SET" => Some("value".to_owned()),
        "EMPTY" => Some(String::new()),
        "LONG" => Some("x".repeat(4096)),
        "YAML" => Some("[a, {b: c}]\n- d: ${SET}".to_owned()),
        _ => None,
    }
}

/// Parses `data` as a configuration file (YAML, `${VAR}` expansion, validation). Rule files
/// are looked up in a directory that does not exist.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = config::parse(
        text,
        Path::new("fuzz.yml"),
        Path::new("/nonexistent/s3-connector-fuzz"),
        &lookup,
    );
    let _ = config::env::expand_str(text, &lookup);
}

/// Parses the first line of `data` as a sync-rules file and matches the other lines, as keys,
/// against it in every bucket it names.
pub fn rules(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (rules_text, keys) = text.split_once('\n').unwrap_or((&text, ""));
    let Ok(rules) = SyncRules::from_json_str(rules_text) else {
        return;
    };
    for bucket in rules.buckets() {
        let prefixes = rules.list_prefixes(bucket);
        for key in keys.lines() {
            // Listing by the minimal prefixes must not lose a key the rules match.
            if rules.matches(bucket, key) {
                assert!(
                    prefixes
                        .iter()
                        .any(|prefix| key.starts_with(prefix.as_str())),
                    "{key:?} matches in {bucket:?} but no listed prefix {prefixes:?} covers it"
                );
            }
        }
    }
}

/// Replays every saved fuzz input through these harnesses with the stable toolchain and no
/// fuzzer: the inputs that once crashed, hung or exhausted memory
/// (tests/fixtures/fuzz-regressions/<target>/) and the minimised corpora (fuzz/corpus/<target>/).
/// Extraction inputs also go through the public entry point, which must answer with text or a
/// reasoned error: never a caught panic, never a timeout.
#[cfg(test)]
mod replay {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::path::{Path, PathBuf};

    use super::{Family, PRODUCTION_LIMITS};
    use crate::extract::{ExtractError, extract_object};

    /// The saved inputs of `target`, regressions first, sorted by name.
    fn inputs(target: &str) -> Vec<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in [
            root.join("tests/fixtures/fuzz-regressions").join(target),
            root.join("fuzz/corpus").join(target),
        ] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut found: Vec<PathBuf> = entries
                .map(|entry| entry.expect("readable directory entry").path())
                .filter(|path| path.is_file())
                .collect();
            found.sort();
            files.extend(found);
        }
        files
    }

    /// Runs `harness` on every input of `target`; fails listing each input that panicked.
    fn replay(target: &str, harness: impl Fn(&[u8]) -> Result<(), String>) -> usize {
        let files = inputs(target);
        let mut failures = Vec::new();
        for path in &files {
            let data = std::fs::read(path).expect("readable input");
            let outcome =
                catch_unwind(AssertUnwindSafe(|| harness(&data))).unwrap_or_else(|payload| {
                    Err(payload
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "panic".to_owned()))
                });
            if let Err(message) = outcome {
                failures.push(format!("{}: {message}", path.display()));
            }
        }
        assert!(failures.is_empty(), "{target}:\n{}", failures.join("\n"));
        files.len()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn extraction_inputs_yield_text_or_a_reasoned_error() {
        let runtime = tokio::runtime::Handle::current();
        for (family, target) in Family::ALL {
            let count = replay(target, |data| {
                // Below the guards first: a panic here fails the test with its message.
                let _ = super::extract(family, data);
                let input = family.input(data);
                let guarded = tokio::task::block_in_place(|| {
                    runtime.block_on(extract_object(input, &PRODUCTION_LIMITS))
                });
                match guarded {
                    Err(error @ (ExtractError::Panicked { .. } | ExtractError::Timeout { .. })) => {
                        Err(error.to_string())
                    }
                    _ => Ok(()),
                }
            });
            assert!(count > 0, "{target}: no saved inputs to replay");
        }
    }

    #[test]
    fn config_and_sync_rules_inputs_parse_or_fail_with_an_error() {
        let config: fn(&[u8]) = super::config;
        for (target, harness) in [("config", config), ("sync_rules", super::rules)] {
            let count = replay(target, |data| {
                harness(data);
                Ok(())
            });
            assert!(count > 0, "{target}: no saved inputs to replay");
        }
    }
}
