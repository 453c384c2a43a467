//! `s3-connector healthcheck`: asks a running worker's `/healthz` (or `/readyz`) and exits 0 if
//! it answers 200. The container's HEALTHCHECK runs it, so the image needs no curl.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{EXIT_FAILED, load_config};
use crate::config::defaults;
use crate::http::client as http;

/// How long the worker has to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Args)]
pub(super) struct HealthcheckArgs {
    /// The config file, to read `listen` from. Not needed with --listen.
    #[arg(long, short, env = "S3C_CONFIG")]
    config: Option<PathBuf>,
    /// IP:PORT of the worker's HTTP listener. Default: `listen` from the config, else
    /// 127.0.0.1:9464.
    #[arg(long, env = "S3C_LISTEN")]
    listen: Option<SocketAddr>,
    /// Check readiness (`/readyz`: indexes reachable, not shutting down) instead of liveness.
    #[arg(long)]
    ready: bool,
}

/// Exit 0 when the worker answers 200, 1 otherwise.
pub(super) async fn run(args: HealthcheckArgs) -> anyhow::Result<ExitCode> {
    let listen = match (args.listen, &args.config) {
        (Some(listen), _) => listen,
        (None, Some(path)) => match load_config(path) {
            Ok(config) => config.listen,
            Err(code) => return Ok(code),
        },
        (None, None) => defaults::listen_address(),
    };
    let path = if args.ready { "/readyz" } else { "/healthz" };
    match http::get(listen, path, None, TIMEOUT).await {
        Ok((200, body)) => {
            print!("{body}");
            Ok(ExitCode::SUCCESS)
        }
        Ok((status, body)) => {
            eprintln!("unhealthy: {path} answered {status}: {}", body.trim());
            Ok(ExitCode::from(EXIT_FAILED))
        }
        Err(error) => {
            eprintln!("unhealthy: {error}");
            Ok(ExitCode::from(EXIT_FAILED))
        }
    }
}
