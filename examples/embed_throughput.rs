//! Raw throughput of the local embedding model in-process: N passages of about 200 word
//! pieces, embedded in batches of 32 through `LocalEmbedder` (the pool, the tokenizer, the
//! model, pooling), timed by the wall clock and by this process's CPU time. Prints one JSON
//! line. `scripts/bench-embed` runs it beside the Python reference (onnxruntime, int8) and
//! prints both per CPU-second (docs/embeddings.md, "Throughput").
//!
//! ```sh
//! cargo run --release --example embed_throughput -- MODEL_DIR [PASSAGES] [THREADS]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use s3_connector::embed::Embedder;
use s3_connector::embed::local::{BATCH, LocalEmbedder};

/// CPU seconds this process has used (all threads).
fn cpu_seconds() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
}

/// `count` distinct passages of about 200 word pieces: the same texts as the Python
/// reference's (scripts/embed-reference, `passages`).
fn passages(count: usize) -> Vec<String> {
    let words: Vec<&str> = "search index bucket passage vector model connector object document \
                            token embedding similarity meaning keyword hybrid fusion sync delete \
                            update region"
        .split_whitespace()
        .collect();
    (0..count)
        .map(|i| {
            (0..100)
                .map(|j| format!("{}{}", words[(i * 7 + j * 3) % words.len()], j % 13))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let model_dir = PathBuf::from(
        args.next()
            .context("usage: MODEL_DIR [PASSAGES] [THREADS]")?,
    );
    let count: usize = args.next().map_or(Ok(256), |n| n.parse())?;
    let threads: usize = args.next().map_or(Ok(1), |n| n.parse())?;
    let model = LocalEmbedder::load(&model_dir, threads)?;
    let texts = passages(count);
    let tokens: usize = texts.iter().map(|t| model.count_tokens(t)).sum();
    model.embed(&texts[..BATCH.min(count)]).await?; // warm-up
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    for batch in texts.chunks(BATCH) {
        model.embed(batch).await?;
    }
    let (wall, cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    println!(
        "{}",
        serde_json::json!({
            "passages": count,
            "mean_tokens": tokens as f64 / count as f64,
            "threads": threads,
            "wall_seconds": wall,
            "cpu_seconds": cpu,
        })
    );
    Ok(())
}
