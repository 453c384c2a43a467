//! Bulk throughput of the OpenSearch sink: writes N generated documents through `Sink::upsert`
//! in the batches the sync uses, refreshes, then reads every version back the way an
//! incremental sync does, and prints documents per second for both.
//!
//! ```sh
//! scripts/bench-opensearch                 # starts osmem-server, builds in release, runs this
//! cargo run --release --example opensearch_bulk -- --url http://127.0.0.1:9200 --docs 20000
//! ```
//!
//! Options: `--url URL` (default `$OPENSEARCH_URL`), `--docs N` (default 50000), `--body-bytes B`
//! (extracted text per document, default 1024), and any `index:` setting as `--set key=value`
//! (e.g. `--set bulk_concurrency=4`). It writes a fresh index `s3c-bench-<time>` and leaves it.

use std::time::{Duration, Instant};

use s3_connector::config::{self, IndexConfig};
use s3_connector::sink::opensearch::OpensearchSink;
use s3_connector::sink::{ContentStatus, DocId, Document, Sink};
use time::OffsetDateTime;

struct Options {
    url: String,
    docs: usize,
    body_bytes: usize,
    settings: Vec<String>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        url: std::env::var("OPENSEARCH_URL").unwrap_or_default(),
        docs: 50_000,
        body_bytes: 1024,
        settings: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--url" => options.url = value.clone(),
            "--docs" => options.docs = number()?,
            "--body-bytes" => options.body_bytes = number()?,
            "--set" => {
                let (key, setting) = value
                    .split_once('=')
                    .ok_or_else(|| format!("--set {value}: expected key=value"))?;
                options.settings.push(format!("  {key}: {setting}"));
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if options.url.is_empty() {
        return Err("no cluster: pass --url or set OPENSEARCH_URL".to_owned());
    }
    Ok(options)
}

fn document(n: usize, body: &str, now: OffsetDateTime) -> Document {
    let key = format!("bench/folder-{}/document-{n}.txt", n % 100);
    Document {
        id: DocId::of("bench", &key),
        bucket: "bench".to_owned(),
        filename: format!("document-{n}.txt"),
        extension: ".txt".to_owned(),
        size_in_bytes: body.len() as u64,
        last_modified: now,
        etag: format!("\"{n:032x}\""),
        content_type: Some("text/plain".to_owned()),
        storage_class: Some("STANDARD".to_owned()),
        url: format!("s3://bench/{key}"),
        key,
        title: None,
        body: Some(body.to_owned()),
        content_status: ContentStatus::Extracted,
        extraction_error: None,
        indexed_at: now,
        attributes: Default::default(),
        passages: Vec::new(),
        embedding_error: None,
    }
}

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let options = options()?;
    let yaml = format!(
        "index:\n  kind: opensearch\n  url: {}\n{}\nconnectors:\n  - id: bench\n    buckets: [\"bench\"]\n",
        options.url,
        options.settings.join("\n")
    );
    let config = config::parse(&yaml, "bench.yml".as_ref(), ".".as_ref(), &|name| {
        std::env::var(name).ok()
    })
    .map_err(|e| e.to_string())?;
    let IndexConfig::Opensearch(settings) = &config.index else {
        return Err("not an OpenSearch config".to_owned());
    };
    let index = format!(
        "s3c-bench-{}",
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    );
    let sink = OpensearchSink::open(settings, &index)
        .await
        .map_err(|e| e.to_string())?;
    let words = "quarterly revenue storage replication onboarding security roadmap ";
    let body: String = words.chars().cycle().take(options.body_bytes).collect();
    let now = OffsetDateTime::now_utc();
    let batch = sink.batch_size();
    println!(
        "index {index} at {}: {} documents of {} bytes of text, batches of {batch} \
         (bulk_max_docs {}, bulk_concurrency {})",
        options.url,
        options.docs,
        options.body_bytes,
        settings.bulk_max_docs,
        settings.bulk_concurrency
    );

    let started = Instant::now();
    let mut written = 0;
    while written < options.docs {
        let end = (written + batch).min(options.docs);
        let documents = (written..end).map(|n| document(n, &body, now)).collect();
        let rejected = sink.upsert(documents).await.map_err(|e| e.to_string())?;
        if !rejected.is_empty() {
            return Err(format!(
                "{} documents rejected: {:?}",
                rejected.len(),
                rejected[0]
            ));
        }
        written = end;
    }
    sink.commit().await.map_err(|e| e.to_string())?;
    let write_time = started.elapsed();

    let started = Instant::now();
    let versions = s3_connector::sink::collect_versions(&sink, "bench")
        .await
        .map_err(|e| e.to_string())?;
    let read_time = started.elapsed();
    if versions.len() != options.docs {
        return Err(format!(
            "read back {} versions of {} documents",
            versions.len(),
            options.docs
        ));
    }
    println!(
        "bulk write: {:.0} docs/s ({:.1} s); version scan: {:.0} docs/s ({:.1} s)",
        rate(options.docs, write_time),
        write_time.as_secs_f64(),
        rate(options.docs, read_time),
        read_time.as_secs_f64()
    );
    Ok(())
}
