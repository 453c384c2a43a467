//! `s3-connector search`: BM25 search of a connector's index from the command line.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use anyhow::Context as _;

use super::{ConfigArg, EXIT_FAILED, load_with_connector};
use crate::sink::{AnySink, Sink};

#[derive(Debug, Args)]
pub(super) struct SearchArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The connector whose index to search.
    #[arg(long)]
    connector: String,
    /// Most hits to print.
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// Print one JSON object per hit (id, bucket, key, score).
    #[arg(long)]
    json: bool,
    /// The query: words, "phrases", field:value.
    #[arg(required = true)]
    query: Vec<String>,
}

/// Prints the best hits, as text or one JSON object per line.
pub(super) async fn run(args: SearchArgs) -> anyhow::Result<ExitCode> {
    let (config, position) = match load_with_connector(&args.config.config, &args.connector) {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    let connector = &config.connectors[position];
    let query = args.query.join(" ");
    let index = AnySink::open_existing(&config.index, connector.index_name())
        .await
        .with_context(|| format!("cannot open the index of connector {}", connector.id))?;
    let Some(index) = index else {
        eprintln!(
            "error: the index of connector {id} ({name}) does not exist yet: no sync has filled it. \
             Run `s3-connector sync --config {config} --connector {id}` (or start the worker) first.",
            id = connector.id,
            name = connector.index_name(),
            config = args.config.config.display(),
        );
        return Ok(ExitCode::from(EXIT_FAILED));
    };
    let hits = crate::with_sink!(&index, sink => sink.search(&query, args.limit).await)?;
    let mut out = std::io::stdout().lock();
    for hit in &hits {
        if args.json {
            serde_json::to_writer(&mut out, hit)?;
            writeln!(out)?;
        } else {
            writeln!(out, "{:>8.3}  s3://{}/{}", hit.score, hit.bucket, hit.key)?;
        }
    }
    if hits.is_empty() && !args.json {
        writeln!(out, "no documents match {query:?}")?;
    }
    Ok(ExitCode::SUCCESS)
}
