//! Passages per second through a whole sync against the raw rate of the same model in the same
//! process (docs/embeddings.md, "Throughput"). A full sync of N generated text documents (from
//! an object store in this process, so that no server competes for the CPUs) into a new
//! embedded index with `embedding: local`: listing, download, extraction, passages, vectors,
//! index writes and commit. Then the same passages, cut the same way, embedded raw in calls of
//! 64 texts (the sync's own call size). Prints one JSON line: both rates by the wall clock and
//! per CPU-second of this process (every thread), their ratio, and the peak resident memory
//! (VmHWM) after the sync.
//!
//! ```sh
//! cargo run --release --example embed_sync_throughput -- MODEL_DIR [DOCUMENTS] [THREADS]
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context as _, bail};
use s3_connector::config;
use s3_connector::embed;
use s3_connector::sink::embedded::EmbeddedIndex;
use s3_connector::source::s3::{Fetched, FetchedObject, ObjectEntry, S3Stats, SourceError};
use s3_connector::source::{ListPage, ListRequest, ObjectStore};
use s3_connector::sync::Pipeline;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

const BUCKET: &str = "bench";

/// Texts per call of the raw run: the sync's `TEXTS_PER_CALL`.
const TEXTS_PER_CALL: usize = 64;

/// CPU seconds this process has used, user and system, all threads (getrusage).
fn cpu_seconds() -> f64 {
    // SAFETY: an all-zero rusage is a valid value for the call to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid rusage to write.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Peak resident memory of this process in MiB (VmHWM of /proc/self/status).
fn peak_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Document `n`: six paragraphs of about 110 words, a few passages of the default 256-token
/// budget, different from every other document's.
fn document(n: usize) -> String {
    let words: Vec<&str> = "the connector keeps every passage of a bucket in step with its \
                            objects and a search by meaning finds the paragraph that answers \
                            a question even when it shares few words with it while keyword \
                            search ranks documents by the terms they contain"
        .split_whitespace()
        .collect();
    (0..6)
        .map(|paragraph| {
            let sentences: Vec<String> = (0..10)
                .map(|sentence| {
                    let seed = n * 131 + paragraph * 17 + sentence * 7;
                    let text: Vec<&str> = (0..11)
                        .map(|w| words[(seed + w * 5) % words.len()])
                        .collect();
                    format!("{} {n}.", text.join(" "))
                })
                .collect();
            format!("Section {paragraph}\n\n{}", sentences.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// One bucket of generated text documents, held in memory.
struct Generated {
    objects: Vec<(String, Vec<u8>)>,
    modified: OffsetDateTime,
    stats: S3Stats,
}

impl Generated {
    fn new(count: usize) -> Self {
        Self {
            objects: (0..count)
                .map(|n| (format!("doc-{n:06}.txt"), document(n).into_bytes()))
                .collect(),
            modified: OffsetDateTime::now_utc(),
            stats: S3Stats::default(),
        }
    }

    fn entry(&self, (key, bytes): &(String, Vec<u8>)) -> ObjectEntry {
        ObjectEntry {
            key: key.clone(),
            size: bytes.len() as u64,
            last_modified: self.modified,
            etag: format!("\"{:032x}\"", bytes.len()),
            storage_class: None,
        }
    }

    fn find(&self, bucket: &str, key: &str) -> Option<&(String, Vec<u8>)> {
        (bucket == BUCKET)
            .then(|| self.objects.iter().find(|(k, _)| k == key))
            .flatten()
    }
}

impl ObjectStore for Generated {
    async fn list_buckets(&self) -> Result<Vec<String>, SourceError> {
        Ok(vec![BUCKET.to_owned()])
    }

    async fn locate_bucket(&self, _bucket: &str) -> Result<(), SourceError> {
        Ok(())
    }

    async fn list_page(
        &self,
        _bucket: &str,
        request: &ListRequest<'_>,
        _continuation: Option<String>,
    ) -> Result<ListPage, SourceError> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        Ok(ListPage {
            entries: self
                .objects
                .iter()
                .filter(|(key, _)| key.starts_with(request.prefix))
                .filter(|(key, _)| request.start_after.is_none_or(|after| key.as_str() > after))
                .map(|object| self.entry(object))
                .collect(),
            ..ListPage::default()
        })
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        _max_bytes: u64,
    ) -> Result<Fetched, SourceError> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        Ok(self.find(bucket, key).map_or(Fetched::Gone, |(_, bytes)| {
            Fetched::Content(FetchedObject {
                bytes: bytes.clone(),
                content_type: Some("text/plain".to_owned()),
                content_encoding: None,
                metadata: Vec::new(),
            })
        }))
    }

    async fn head_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectEntry>, SourceError> {
        Ok(self.find(bucket, key).map(|object| self.entry(object)))
    }

    async fn download(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
    ) -> Result<Option<u64>, SourceError> {
        let Some((_, bytes)) = self.find(bucket, key) else {
            return Ok(None);
        };
        std::fs::write(path, bytes).expect("cannot write the download");
        Ok(Some(bytes.len() as u64))
    }

    fn stats(&self) -> &S3Stats {
        &self.stats
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let model_dir = PathBuf::from(
        args.next()
            .context("usage: MODEL_DIR [DOCUMENTS] [THREADS]")?,
    );
    let count: usize = args.next().map_or(Ok(48), |n| n.parse())?;
    let threads: usize = args.next().map_or(Ok(1), |n| n.parse())?;
    let yaml = format!(
        "connectors:\n  - id: bench\n    buckets: [{BUCKET}]\n    embedding:\n      \
         provider: local\n      model_dir: {}\n      threads: {threads}\n",
        model_dir.display()
    );
    let connector = config::parse(&yaml, Path::new("bench.yml"), Path::new("."), &|_| None)?
        .connectors
        .remove(0);
    let settings = connector.embedding.clone().context("the embedding block")?;
    let embedder = embed::for_connector(Some(&settings))?.context("an embedder")?;
    embedder.embed(&[document(count)]).await?; // warm-up
    let store = Generated::new(count);
    let texts: Vec<String> = store
        .objects
        .iter()
        .flat_map(|(_, bytes)| {
            let text = std::str::from_utf8(bytes).expect("generated text");
            embed::passages_of(text, embedder.as_ref(), &settings.passages).0
        })
        .map(|passage| passage.text)
        .collect();

    let index_dir = tempfile::tempdir()?;
    let index = EmbeddedIndex::open_or_create(index_dir.path())?;
    let pipeline = Pipeline::over(&connector, store).with_embedder(Some(embedder.clone()));
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    let report = pipeline.run(&index, &CancellationToken::new(), false).await;
    let (sync_wall, sync_cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    let peak = peak_mib();
    if report.errors > 0 || report.passages_embedded as usize != texts.len() {
        bail!(
            "the sync embedded {} passages of the {} expected, with {} errors: {:?}",
            report.passages_embedded,
            texts.len(),
            report.errors,
            report.error_messages
        );
    }

    let (wall, cpu) = (Instant::now(), cpu_seconds());
    for call in texts.chunks(TEXTS_PER_CALL) {
        embedder.embed(call).await?;
    }
    let (raw_wall, raw_cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    let passages = texts.len() as f64;
    let tokens: usize = texts.iter().map(|t| embedder.count_tokens(t)).sum();
    println!(
        "{}",
        serde_json::json!({
            "documents": count,
            "passages": texts.len(),
            "mean_tokens": tokens as f64 / passages,
            "threads": threads,
            "sync": {"wall_seconds": sync_wall, "cpu_seconds": sync_cpu,
                     "passages_per_second": passages / sync_wall,
                     "passages_per_cpu_second": passages / sync_cpu},
            "raw": {"wall_seconds": raw_wall, "cpu_seconds": raw_cpu,
                    "passages_per_second": passages / raw_wall,
                    "passages_per_cpu_second": passages / raw_cpu},
            "ratio_wall": raw_wall / sync_wall,
            "ratio_cpu": raw_cpu / sync_cpu,
            "peak_rss_mib_after_sync": peak,
        })
    );
    Ok(())
}
