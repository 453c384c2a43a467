//! Peak memory of the embedded index's writer: writes N small documents into a fresh index as
//! fast as tantivy takes them (batches of 256, a commit every 10,000, like a full sync) and
//! prints the time and the peak RssAnon (sampled every 10 ms), the anonymous memory that the
//! writer's heap and tantivy's merges hold. Far faster than a sync, so more merges overlap: a
//! worst case for the full sync's memory on big buckets (README, "Memory").
//!
//! ```sh
//! cargo run --release --example index_memory -- 5000000 /tmp/index-5m
//! ```
//!
//! Run it with `MALLOC_ARENA_MAX=2` to match the binary, which limits glibc to two arenas.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use s3_connector::sink::embedded::EmbeddedIndex;
use s3_connector::sink::{ContentStatus, DocId, Document, Sink};
use time::OffsetDateTime;

/// RssAnon of this process in KiB, from /proc/self/status.
fn anon_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Document `n`: a key in one of 1,000 folders, a sentence of text.
fn document(n: u64, now: OffsetDateTime) -> Document {
    let key = format!("large-listing/p{:03}/doc-{n:07}.txt", n % 1000);
    Document {
        id: DocId::of("bench", &key),
        bucket: "bench".to_owned(),
        filename: key.rsplit('/').next().unwrap_or_default().to_owned(),
        extension: ".txt".to_owned(),
        url: format!("s3://bench/{key}"),
        key,
        size_in_bytes: 70,
        last_modified: now,
        etag: format!("\"{n:032x}\""),
        content_type: Some("text/plain".to_owned()),
        storage_class: Some("STANDARD".to_owned()),
        title: None,
        body: Some(format!(
            "document {n} of the large listing, with a few words"
        )),
        content_status: ContentStatus::Extracted,
        extraction_error: None,
        indexed_at: now,
        attributes: Default::default(),
        passages: Vec::new(),
        embedding_error: None,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(count), Some(dir)) = (args.next(), args.next()) else {
        bail!("usage: index_memory DOCUMENTS NEW_INDEX_DIR");
    };
    let count: u64 = count.parse().context("DOCUMENTS must be a number")?;
    let dir = PathBuf::from(dir);
    if dir.exists() {
        bail!("{} exists: give a new directory", dir.display());
    }
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(anon_kib().unwrap_or(0), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let index = EmbeddedIndex::open_or_create(&dir)?;
    let started = Instant::now();
    let now = OffsetDateTime::now_utc();
    let mut batch = Vec::with_capacity(256);
    for n in 0..count {
        batch.push(document(n, now));
        if batch.len() == 256 {
            index.insert_new(std::mem::take(&mut batch)).await?;
        }
        if (n + 1) % 10_000 == 0 {
            index.insert_new(std::mem::take(&mut batch)).await?;
            index.commit().await?;
        }
    }
    index.insert_new(batch).await?;
    index.commit().await?;
    let seconds = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    sampler.join().ok();
    println!(
        "{count} documents in {seconds:.1} s, peak RssAnon {:.1} MiB, {} documents indexed",
        peak.load(Ordering::Relaxed) as f64 / 1024.0,
        index.count()?
    );
    Ok(())
}
