//! `s3-connector run`: the long-running worker. Syncs each connector on its schedule, serves
//! `/healthz`, `/readyz`, `/status` and `/metrics`, and shuts down cleanly on SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::shard::ShardArg;
use super::{ConfigArg, load_config};
use crate::worker::Worker;

#[derive(Debug, Args)]
pub(super) struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// IP:PORT of the HTTP listener (health, status, metrics). Overrides `listen` in the config.
    #[arg(long, env = "S3C_LISTEN")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    shard: ShardArg,
}

/// Runs until SIGTERM or SIGINT. Then no new sync starts, the syncs in flight finish their
/// downloads and commit, and the process exits 0; if they take longer than `shutdown_timeout`,
/// it exits 0 without them (their uncommitted writes are redone by the next sync). A second
/// signal exits at once with 128 + the signal number.
pub(super) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config.config) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let shards = match args.shard.resolve(&config) {
        Ok(shards) => shards,
        Err(code) => return Ok(code),
    };
    let shutdown_timeout = config.shutdown_timeout;
    let listen = args.listen.unwrap_or(config.listen);
    let connectors = config.connectors.len();
    let state_dir = config.state_dir.display().to_string();
    let shard = shards.spec().to_string();
    let worker = Worker::new(config, shards).context("cannot start the worker")?;
    let mut signals = Signals::new().context("cannot install the signal handlers")?;
    let bound = worker.listen(listen).await?;
    tracing::info!(message = "Worker started.", listen = %bound, connectors, state_dir = %state_dir, shard = %shard);
    worker.check_indexes().await;

    let cancel = CancellationToken::new();
    let scheduler = tokio::spawn({
        let worker = worker.clone();
        let cancel = cancel.clone();
        async move { worker.run(cancel).await }
    });
    let signal = signals.next().await;
    tracing::info!(
        message = "Shutting down: no new sync starts; syncs in flight finish their downloads and commit. A second signal exits at once.",
        signal,
        timeout_s = shutdown_timeout.as_secs_f64(),
    );
    worker.begin_shutdown();
    cancel.cancel();
    tokio::spawn(async move {
        let signal = signals.next().await;
        tracing::warn!(
            message = "Second signal: exiting at once without waiting for syncs.",
            signal
        );
        std::process::exit(128 + signal);
    });
    if tokio::time::timeout(shutdown_timeout, scheduler)
        .await
        .is_ok()
    {
        tracing::info!(message = "Shut down: every sync in flight finished and committed.");
        return Ok(ExitCode::SUCCESS);
    }
    let abandoned = worker.abandon(shutdown_timeout);
    tracing::warn!(
        message = "The shutdown timeout ran out: exiting without waiting for the syncs still running; their uncommitted writes are redone by the next sync.",
        connectors = ?abandoned,
    );
    // Returning would wait for the index tasks still running on the blocking pool.
    std::process::exit(0)
}

/// SIGTERM and SIGINT as one stream of signal numbers.
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> std::io::Result<Self> {
        Ok(Self {})
    }

    /// Waits for the next signal and returns its number (15 for SIGTERM, 2 for SIGINT).
    #[cfg(unix)]
    async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.terminate.recv() => 15,
            _ = self.interrupt.recv() => 2,
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> i32 {
        let _ = tokio::signal::ctrl_c().await;
        2
    }
}
