//! Extraction throughput: MB of input per second on one thread (that is, per core) for each
//! format, on generated documents, through `s3_connector::extract` exactly as a sync calls it.
//!
//! To add a format, add a [`Case`] to [`CASES`] with a generator of its documents: the table,
//! the JSON output and `scripts/bench` pick it up by name.

use std::hint::black_box;
use std::time::Instant;

use anyhow::bail;
use rand::Rng as _;
use rand_chacha::ChaCha8Rng;
use s3_connector::extract::{self, Format};
use serde::Serialize;

use crate::corpus::{Kind, object_rng};

/// One format to measure.
pub struct Case {
    /// Name in the results (`text`, `html`, ...).
    pub name: &'static str,
    /// The format the sync would pick for these documents.
    pub format: Format,
    /// The Content-Type the documents would carry.
    pub content_type: &'static str,
    /// Makes one document of about `size` bytes.
    pub generate: fn(&mut ChaCha8Rng, usize) -> Vec<u8>,
}

/// The measured formats. Text and HTML carry the target (100 MB/s per core).
pub const CASES: &[Case] = &[
    Case {
        name: "text",
        format: Format::PlainText,
        content_type: "text/plain; charset=utf-8",
        generate: |rng, size| Kind::Text.generate(rng, size),
    },
    Case {
        name: "html",
        format: Format::Html,
        content_type: "text/html; charset=utf-8",
        generate: |rng, size| Kind::Html.generate(rng, size),
    },
    Case {
        name: "json",
        format: Format::Json,
        content_type: "application/json",
        generate: |rng, size| Kind::Json.generate(rng, size),
    },
    Case {
        name: "xml",
        format: Format::Xml,
        content_type: "application/xml",
        generate: |rng, size| Kind::Xml.generate(rng, size),
    },
];

/// The throughput of one case.
#[derive(Debug, Serialize)]
pub struct Throughput {
    /// The case's name.
    pub name: &'static str,
    /// Documents in the corpus.
    pub documents: usize,
    /// Bytes extracted in total (the corpus, as many times as it was run).
    pub bytes: u64,
    /// Seconds of extraction.
    pub seconds: f64,
    /// Decimal megabytes of input per second on one thread.
    pub mb_per_s: f64,
}

/// Runs every case (or the named ones) for at least `seconds` each, on one thread.
pub fn run(seed: u64, seconds: f64, only: &[String]) -> anyhow::Result<Vec<Throughput>> {
    if let Some(unknown) = only.iter().find(|n| !CASES.iter().any(|c| c.name == *n)) {
        let known: Vec<&str> = CASES.iter().map(|c| c.name).collect();
        bail!("unknown format {unknown:?}; known: {}", known.join(", "));
    }
    CASES
        .iter()
        .enumerate()
        .filter(|(_, case)| only.is_empty() || only.iter().any(|n| n == case.name))
        .map(|(number, case)| measure(case, seed, number as u64, seconds))
        .collect()
}

/// A corpus of small and large documents (about 4 MB: 64 of 2-64 KiB, 4 of 256 KiB-1 MiB),
/// extracted over and over until `seconds` have passed (at least once).
fn measure(case: &Case, seed: u64, number: u64, seconds: f64) -> anyhow::Result<Throughput> {
    let mut rng = object_rng(seed, u64::MAX - number, 0, 0);
    let mut corpus = Vec::new();
    for _ in 0..64 {
        let size = rng.random_range(2 * 1024..=64 * 1024);
        corpus.push((case.generate)(&mut rng, size));
    }
    for _ in 0..4 {
        let size = rng.random_range(256 * 1024..=1024 * 1024);
        corpus.push((case.generate)(&mut rng, size));
    }
    let corpus_bytes: u64 = corpus.iter().map(|doc| doc.len() as u64).sum();
    let mut bytes = 0;
    let started = Instant::now();
    loop {
        for document in &corpus {
            let extracted = extract::extract_with_content_type(
                case.format,
                black_box(document),
                Some(case.content_type),
            );
            match extracted {
                Ok(text) if !text.body.is_empty() => {
                    black_box(text);
                }
                Ok(_) => bail!("{}: a generated document extracted to nothing", case.name),
                Err(error) => bail!("{}: a generated document failed: {error}", case.name),
            }
        }
        bytes += corpus_bytes;
        if started.elapsed().as_secs_f64() >= seconds {
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Throughput {
        name: case.name,
        documents: corpus.len(),
        bytes,
        seconds: elapsed,
        mb_per_s: bytes as f64 / elapsed / 1e6,
    })
}
