//! The command line: parses arguments, wires the stages together per command, prints results.
//!
//! This is the binary's edge: errors become messages and exit codes here (`anyhow` is used
//! nowhere below it). Exit codes: 0 success, 1 a sync or search failed, 2 bad configuration or
//! arguments.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::EnvFilter;

use crate::config::{self, Config, ConnectorConfig, IndexConfig};
use crate::credentials;
use crate::sink::Sink;
use crate::sink::embedded::EmbeddedIndex;
use crate::source::s3::S3Source;
use crate::sync::{self, Counters, SyncContext, SyncReport};

/// Exit code for a configuration or usage error.
const EXIT_CONFIG: u8 = 2;
/// Exit code for a sync that met errors.
const EXIT_FAILED: u8 = 1;

/// Keeps a search index in step with the contents of S3 buckets.
///
/// Connectors are described in a YAML config file (see config.example.yml). `sync` runs one
/// full sync: new and changed objects are downloaded and indexed, unchanged ones are skipped
/// without a download, and documents whose objects left the bucket are deleted, but only after
/// a complete listing of that bucket.
#[derive(Debug, Parser)]
#[command(name = "s3-connector", version, about, long_about)]
pub struct Cli {
    /// Log level or filter (error, warn, info, debug, trace, or a RUST_LOG-style filter).
    /// Default: RUST_LOG, else warn.
    #[arg(long, global = true, env = "S3C_LOG_LEVEL")]
    log_level: Option<String>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one full sync of each connector (or of the named ones).
    Sync(SyncArgs),
    /// Search a connector's index (BM25 over body, title, filename and key).
    Search(SearchArgs),
    /// Check the config file offline and list every problem; exit 0 if valid, 2 if not.
    Validate(ConfigArg),
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// The YAML config file.
    #[arg(long, short, env = "S3C_CONFIG")]
    config: PathBuf,
}

#[derive(Debug, Args)]
struct SyncArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Sync only this connector (repeatable). Default: every connector.
    #[arg(long = "connector")]
    connectors: Vec<String>,
    /// Print one JSON report per connector on stdout instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct SearchArgs {
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

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_level.as_deref(), cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Sync(args) => run_sync(args).await,
            Command::Search(args) => run_search(args).await,
            Command::Validate(args) => run_validate(&args),
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn init_logging(level: Option<&str>, format: LogFormat) {
    let filter = level
        .map(EnvFilter::new)
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Loads the config, or prints why not; `Err` carries the exit code.
fn load_config(path: &std::path::Path) -> Result<Config, ExitCode> {
    config::load(path).map_err(|error| {
        eprintln!("error: {error}");
        ExitCode::from(EXIT_CONFIG)
    })
}

fn run_validate(args: &ConfigArg) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    println!(
        "{}: valid ({} connector{})",
        args.config.display(),
        config.connectors.len(),
        if config.connectors.len() == 1 {
            ""
        } else {
            "s"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Opens the embedded index of a connector.
fn open_embedded(
    root: &std::path::Path,
    connector: &ConnectorConfig,
) -> anyhow::Result<EmbeddedIndex> {
    let dir = root.join(connector.index_name());
    EmbeddedIndex::open_or_create(&dir)
        .with_context(|| format!("cannot open the index of connector {}", connector.id))
}

async fn run_sync(args: SyncArgs) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config.config) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    for wanted in &args.connectors {
        if !config.connectors.iter().any(|c| &c.id == wanted) {
            eprintln!(
                "error: no connector with id {wanted:?} in {}; known: {}",
                args.config.config.display(),
                config
                    .connectors
                    .iter()
                    .map(|c| c.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    }
    let mut all_succeeded = true;
    for connector in &config.connectors {
        if !args.connectors.is_empty() && !args.connectors.contains(&connector.id) {
            continue;
        }
        let report = match &config.index {
            IndexConfig::Embedded { path } => {
                let index = open_embedded(path, connector)?;
                sync_with_progress(connector, &index, !args.json).await
            }
        };
        all_succeeded &= report.succeeded();
        print_report(&report, args.json)?;
    }
    Ok(if all_succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// Syncs one connector, drawing a spinner with live counts when stderr is a terminal.
async fn sync_with_progress<S: Sink>(
    connector: &ConnectorConfig,
    sink: &S,
    show_progress: bool,
) -> SyncReport {
    let sdk_config = credentials::sdk_config(connector).await;
    let source = S3Source::new(connector, &sdk_config);
    let counters = Arc::new(Counters::default());
    let bar = if show_progress && std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(connector.id.clone());
    let ticker = {
        let bar = bar.clone();
        let counters = Arc::clone(&counters);
        tokio::spawn(async move {
            loop {
                bar.set_message(progress_line(&counters));
                bar.tick();
                tokio::time::sleep(Duration::from_millis(120)).await;
            }
        })
    };
    let report = sync::sync_connector(&SyncContext {
        connector,
        source: &source,
        sink,
        counters: &counters,
    })
    .await;
    ticker.abort();
    bar.finish_and_clear();
    report
}

fn progress_line(counters: &Counters) -> String {
    let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    format!(
        "{} listed, {} added, {} updated, {} unchanged, {} deleted, {} errors",
        get(&counters.objects_listed),
        get(&counters.added),
        get(&counters.updated),
        get(&counters.unchanged),
        get(&counters.deleted),
        get(&counters.errors),
    )
}

fn print_report(report: &SyncReport, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, report)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{}: {} listed, {} added, {} updated, {} unchanged, {} deleted ({} metadata only, {} extraction errors), {} errors; {:.1} MB downloaded in {:.1} s",
            report.connector,
            report.objects_listed,
            report.added,
            report.updated,
            report.unchanged,
            report.deleted,
            report.metadata_only,
            report.extraction_errors,
            report.errors,
            report.bytes_downloaded as f64 / 1e6,
            report.duration_ms as f64 / 1e3,
        )?;
        for message in &report.error_messages {
            writeln!(out, "  error: {message}")?;
        }
    }
    Ok(())
}

async fn run_search(args: SearchArgs) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config.config) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let Some(connector) = config.connectors.iter().find(|c| c.id == args.connector) else {
        eprintln!(
            "error: no connector with id {:?} in {}",
            args.connector,
            args.config.config.display()
        );
        return Ok(ExitCode::from(EXIT_CONFIG));
    };
    let query = args.query.join(" ");
    let hits = match &config.index {
        IndexConfig::Embedded { path } => {
            open_embedded(path, connector)?
                .search(&query, args.limit)
                .await?
        }
    };
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
