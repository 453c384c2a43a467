//! `s3bench`: the Rust half of `scripts/bench`, which orchestrates it (see the README's
//! "Benchmarks").
//!
//! - `upload` / `mutate`: puts a deterministic dataset (`corpus.rs`) into a connector's bucket,
//!   or gives 1 object in N new content;
//! - `get` / `list`: the limits our sync is compared with, a raw parallel GetObject loop and a
//!   raw ListObjectsV2 walk on the connector's own SDK client (`raw.rs`), never through the sync;
//! - `extract`: extraction MB/s per core and format (`extract.rs`).
//!
//! Each command prints one JSON object per line on stdout. Run it with
//! `cargo run --release --example s3bench -- COMMAND ...`. It is a benchmark tool, not part of
//! the shipped binary.

mod corpus;
mod extract;
mod raw;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use corpus::{DATASETS, Dataset};
use raw::Target;
use s3_connector::source::s3::S3Source;
use s3_connector::{config, credentials};

/// Benchmark data and limits for s3-connector.
#[derive(Debug, Parser)]
#[command(name = "s3bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make the connector's bucket hold exactly the dataset (writes only what differs).
    Upload {
        #[command(flatten)]
        connector: ConnectorArgs,
        #[command(flatten)]
        data: DataArgs,
        /// PutObject calls in flight.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Give the objects whose index is ROUND modulo EVERY the content of that round.
    Mutate {
        #[command(flatten)]
        connector: ConnectorArgs,
        #[command(flatten)]
        data: DataArgs,
        /// Which change this is (1, 2, ...): each round changes other objects, differently.
        #[arg(long)]
        round: u64,
        /// Change one object in this many (100: 1%).
        #[arg(long, default_value_t = 100)]
        every: usize,
        /// PutObject calls in flight.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// The GetObject limit: fetch every object of the bucket, CONCURRENCY at a time.
    Get {
        #[command(flatten)]
        connector: ConnectorArgs,
        /// GetObject calls in flight. Default: the connector's `concurrency`.
        #[arg(long)]
        concurrency: Option<usize>,
    },
    /// The listing limit: one ListObjectsV2 walk of the bucket with the connector's page size.
    List {
        #[command(flatten)]
        connector: ConnectorArgs,
    },
    /// Extraction throughput per format on one thread.
    Extract {
        /// Seconds to spend on each format (the corpus runs at least once).
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Only this format (repeatable): text, html, json, xml.
        #[arg(long = "format")]
        formats: Vec<String>,
        /// Seed of the generated documents.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

/// Which connector of which config file: its bucket, client, page size and concurrency.
#[derive(Debug, Args)]
struct ConnectorArgs {
    /// The s3-connector config file.
    #[arg(long)]
    config: PathBuf,
    /// The connector's id; its first bucket is used.
    #[arg(long)]
    connector: String,
}

/// Which dataset.
#[derive(Debug, Args)]
struct DataArgs {
    /// small, mixed or large-listing.
    #[arg(long)]
    dataset: String,
    /// Multiplies every object count (1 = the full benchmark).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Seed of the generated content.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

impl DataArgs {
    fn dataset(&self) -> anyhow::Result<Dataset> {
        if !(self.scale > 0.0 && self.scale <= 1000.0) {
            bail!("--scale must be in (0, 1000], not {}", self.scale);
        }
        Dataset::named(&self.dataset, self.scale).with_context(|| {
            format!(
                "unknown dataset {:?}; known: {}",
                self.dataset,
                DATASETS.join(", ")
            )
        })
    }
}

impl ConnectorArgs {
    async fn target(&self, concurrency: Option<usize>) -> anyhow::Result<Target> {
        let config = config::load(&self.config).map_err(|e| anyhow::anyhow!("{e}"))?;
        let connector = config
            .connectors
            .iter()
            .find(|c| c.id == self.connector)
            .with_context(|| format!("no connector {:?} in the config", self.connector))?;
        let bucket = match &connector.buckets {
            config::BucketSelection::Named(names) => names.first(),
            config::BucketSelection::All => None,
        }
        .with_context(|| format!("connector {} names no bucket", connector.id))?
        .clone();
        let source = S3Source::new(connector, &credentials::sdk_config(connector).await);
        Ok(Target {
            client: source.client(&bucket),
            bucket,
            page_size: i32::try_from(connector.page_size).unwrap_or(1000),
            concurrency: concurrency.unwrap_or(connector.concurrency).max(1),
        })
    }
}

fn print(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Upload {
            connector,
            data,
            concurrency,
        } => {
            let target = connector.target(None).await?;
            let dataset = data.dataset()?;
            print(&raw::upload(&target, &dataset, data.seed, concurrency.max(1)).await?)
        }
        Command::Mutate {
            connector,
            data,
            round,
            every,
            concurrency,
        } => {
            let target = connector.target(None).await?;
            let dataset = data.dataset()?;
            let mutated = raw::mutate(
                &target,
                &dataset,
                data.seed,
                round,
                every,
                concurrency.max(1),
            )
            .await?;
            print(&mutated)
        }
        Command::Get {
            connector,
            concurrency,
        } => print(&raw::get_loop(&connector.target(concurrency).await?).await?),
        Command::List { connector } => {
            print(&raw::list_walk(&connector.target(None).await?).await?)
        }
        Command::Extract {
            seconds,
            formats,
            seed,
        } => {
            for throughput in extract::run(seed, seconds, &formats)? {
                print(&throughput)?;
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("s3bench: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("s3bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}
