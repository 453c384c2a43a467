//! The command line: parses arguments, wires the stages together per command, prints results.
//!
//! This is the binary's edge: errors become messages and exit codes here (`anyhow` is used
//! nowhere below it). Exit codes: 0 success, 1 a sync or search failed, 2 bad configuration or
//! arguments.

mod healthcheck;
mod plan_shards;
mod run;
mod search;
mod shard;
mod status;
mod sync;
mod trust_policy;
mod validate;
mod verify;

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use crate::config::{self, Config, ConnectorConfig};
use crate::sink::AnySink;

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
    /// Default: RUST_LOG, else info for `run` and warn for the other commands.
    #[arg(long, global = true, env = "S3C_LOG_LEVEL")]
    log_level: Option<String>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "S3C_LOG_FORMAT")]
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
    Sync(sync::SyncArgs),
    /// Search a connector's index (BM25 over body, title, filename and key).
    Search(search::SearchArgs),
    /// Check the config file offline and list every problem; exit 0 if valid, 2 if not.
    Validate(ConfigArg),
    /// Probe each connector online: credentials (AssumeRole), HeadBucket with the expected
    /// owner, a listing under each rule prefix, a one-byte read; exit 0 if every step passed.
    Verify(verify::VerifyArgs),
    /// Print the trust policy, the least-privilege permissions policy and the AWS CLI commands
    /// for a connector's role in the bucket owner's account; exit 2 if the connector has no
    /// role_arn and external_id (there is no role to describe).
    TrustPolicy(trust_policy::TrustPolicyArgs),
    /// Print a fresh random external id for a new connector.
    ExternalId,
    /// Run as a worker: sync each connector on its schedule, serve health, status and metrics
    /// over HTTP, and shut down cleanly on SIGTERM or SIGINT.
    Run(run::RunArgs),
    /// Print each connector's last sync, its outcome and its next run.
    Status(status::StatusArgs),
    /// Exit 0 if a running worker answers /healthz (the container's HEALTHCHECK).
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Propose `sharding.by: range` boundaries for N shards from a bounded sample of a
    /// connector's listing, printed ready to paste into the config.
    PlanShards(plan_shards::PlanShardsArgs),
}

/// The `--config` argument every command takes.
#[derive(Debug, Args)]
struct ConfigArg {
    /// The YAML config file.
    #[arg(long, short, env = "S3C_CONFIG")]
    config: PathBuf,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Run(_) => "info",
        _ => "warn",
    };
    init_logging(cli.log_level.as_deref(), cli.log_format, default_level);
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
            Command::Sync(args) => sync::run(args).await,
            Command::Search(args) => search::run(args).await,
            Command::Validate(args) => validate::run(&args),
            Command::Verify(args) => verify::run(args).await,
            Command::TrustPolicy(args) => trust_policy::run(args).await,
            Command::ExternalId => Ok(trust_policy::external_id()),
            Command::Run(args) => run::run(args).await,
            Command::Status(args) => status::run(args).await,
            Command::Healthcheck(args) => healthcheck::run(args).await,
            Command::PlanShards(args) => plan_shards::run(args).await,
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

fn init_logging(level: Option<&str>, format: LogFormat, default_level: &str) {
    let filter = level
        .map(EnvFilter::new)
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new(default_level));
    let colour = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Whether text logs get ANSI colours: only on a terminal, and never when `NO_COLOR` is set to
/// a non-empty value (<https://no-color.org>), so logs redirected to a file stay plain text.
fn use_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Loads the config, or prints why not; `Err` carries the exit code.
fn load_config(path: &Path) -> Result<Config, ExitCode> {
    config::load(path).map_err(|error| {
        eprintln!("error: {error}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// Opens the index a connector writes to.
async fn open_index(config: &Config, connector: &ConnectorConfig) -> anyhow::Result<AnySink> {
    AnySink::open(&config.index, connector.index_name())
        .await
        .with_context(|| format!("cannot open the index of connector {}", connector.id))
}

/// `--config` plus `--connector ID...`: the connectors a command works on.
#[derive(Debug, Args)]
struct SelectionArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Only this connector (repeatable). Default: every connector.
    #[arg(long = "connector")]
    connectors: Vec<String>,
}

/// A loaded config and the connectors a command works on in it.
struct Selected {
    config: Config,
    /// Where the selected connectors stand in `config.connectors`, in file order.
    positions: Vec<usize>,
}

impl Selected {
    /// The selected connectors, each with its position in the file.
    fn connectors(&self) -> impl Iterator<Item = (usize, &ConnectorConfig)> {
        self.positions
            .iter()
            .map(|&position| (position, &self.config.connectors[position]))
    }
}

impl SelectionArgs {
    /// Loads the config and selects the connectors in it; `Err` carries the exit code after the
    /// problem (an invalid file, an unknown connector) was printed.
    fn load(&self) -> Result<Selected, ExitCode> {
        let path = &self.config.config;
        let config = load_config(path)?;
        let selected = select_connectors(&config, &self.connectors, path)?;
        let positions = selected.iter().map(|c| position_of(&config, c)).collect();
        Ok(Selected { config, positions })
    }
}

/// Loads the config and finds the connector named `id` in it (at the returned position), or
/// returns the exit code after saying what is wrong.
fn load_with_connector(path: &Path, id: &str) -> Result<(Config, usize), ExitCode> {
    let config = load_config(path)?;
    let position = position_of(&config, find_connector(&config, id, path)?);
    Ok((config, position))
}

/// Where `connector`, one of `config`'s, stands in `config.connectors`.
fn position_of(config: &Config, connector: &ConnectorConfig) -> usize {
    config
        .connectors
        .iter()
        .position(|c| std::ptr::eq(c, connector))
        .unwrap_or_default()
}

/// The connector named `id`, or the exit code after saying that there is none.
fn find_connector<'a>(
    config: &'a Config,
    id: &str,
    path: &Path,
) -> Result<&'a ConnectorConfig, ExitCode> {
    select_connectors(config, &[id.to_owned()], path).map(|found| found[0])
}

/// The connectors named by `--connector` (all when none is named), or the exit code after
/// saying which name is unknown.
fn select_connectors<'a>(
    config: &'a Config,
    wanted: &[String],
    path: &Path,
) -> Result<Vec<&'a ConnectorConfig>, ExitCode> {
    if let Some(unknown) = wanted
        .iter()
        .find(|id| !config.connectors.iter().any(|c| &&c.id == id))
    {
        eprintln!(
            "error: no connector with id {unknown:?} in {}; known: {}",
            path.display(),
            config
                .connectors
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Err(ExitCode::from(EXIT_CONFIG));
    }
    Ok(config
        .connectors
        .iter()
        .filter(|c| wanted.is_empty() || wanted.contains(&c.id))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::use_colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        // (stderr is a terminal, NO_COLOR, colour)
        let table: [(bool, Option<&str>, bool); 6] = [
            (true, None, true),
            (true, Some(""), true),
            (true, Some("1"), false),
            (true, Some("false"), false),
            (false, None, false),
            (false, Some("1"), false),
        ];
        for (terminal, no_color, expected) in table {
            assert_eq!(
                use_colour(terminal, no_color.map(OsStr::new)),
                expected,
                "terminal={terminal} NO_COLOR={no_color:?}"
            );
        }
    }
}
