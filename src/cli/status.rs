//! `s3-connector status`: per connector, the last sync, its outcome and the next run. Asks the
//! running worker (`GET /status` on `listen`); without one, reads the history files.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::shard::ShardArg;
use super::{ConfigArg, load_config};
use crate::config::Config;
use crate::http::client as http;
use crate::worker::status::{ConnectorStatus, StatusReport};

/// How long a running worker has to answer.
const TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Args)]
pub(super) struct StatusArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// IP:PORT of a running worker's HTTP listener. Default: `listen` from the config.
    #[arg(long, env = "S3C_LISTEN")]
    listen: Option<SocketAddr>,
    /// Print the status as one JSON object (the same as GET /status).
    #[arg(long)]
    json: bool,
    /// Without a running worker: read the history of this shard's worker.
    #[command(flatten)]
    shard: ShardArg,
}

/// Prints the status; exits 0 whatever the outcome of the syncs (2 for a bad config).
pub(super) async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config.config) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let listen = args.listen.unwrap_or(config.listen);
    let report = match from_worker(&config, listen).await {
        Some(report) => report,
        None => StatusReport::from_history(&config, args.shard.spec())
            .context("cannot read the sync history")?,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        print_text(&mut out, &report, listen, &config)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The running worker's status, if one answers on `listen` with this config's connectors.
async fn from_worker(config: &Config, listen: SocketAddr) -> Option<StatusReport> {
    // With the API on, /status needs the operator's token.
    let token = config.api.as_ref().and_then(|api| api.token());
    let token = token.map(|t| t.expose());
    let (status, body) = match http::get(listen, "/status", token, TIMEOUT).await {
        Ok(answer) => answer,
        Err(error) => {
            tracing::info!(message = "No worker answered; reading the history files.", %error);
            return None;
        }
    };
    let report: StatusReport = (status == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()?;
    let same = report
        .connectors
        .iter()
        .map(|c| &c.id)
        .eq(config.connectors.iter().map(|c| &c.id));
    if !same {
        tracing::warn!(message = "The worker answering on this address runs other connectors; reading the history files instead.", %listen);
        return None;
    }
    Some(report)
}

fn time(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

fn print_text(
    out: &mut impl Write,
    report: &StatusReport,
    listen: SocketAddr,
    config: &Config,
) -> std::io::Result<()> {
    match report.worker_started_at {
        Some(started) if report.worker_running => writeln!(
            out,
            "worker: running since {} on {listen}{}",
            time(started),
            if report.shutting_down {
                ", shutting down"
            } else {
                ""
            }
        )?,
        _ => writeln!(
            out,
            "worker: not running (nothing answered on {listen}); history from {}",
            config.state_dir.display()
        )?,
    }
    if let Some(shard) = &report.shard {
        writeln!(out, "shard: {shard} (each connector's part of its buckets)")?;
    }
    for connector in &report.connectors {
        print_connector(out, connector)?;
    }
    Ok(())
}

fn print_connector(out: &mut impl Write, status: &ConnectorStatus) -> std::io::Result<()> {
    let schedule = match (&status.schedule, status.sync_on_start) {
        (Some(schedule), true) => format!("{schedule}, and at start-up"),
        (Some(schedule), false) => schedule.clone(),
        (None, true) => "at start-up only".to_owned(),
        (None, false) => "never by run (no schedule); sync by hand".to_owned(),
    };
    writeln!(out, "{}: {schedule}", status.id)?;
    if let Some(running) = &status.running {
        writeln!(
            out,
            "  running: since {} ({}), {} objects listed so far",
            time(running.started_at),
            running.trigger.as_str(),
            running.objects_listed
        )?;
    }
    match &status.last_sync {
        Some(last) => {
            let r = &last.report;
            writeln!(
                out,
                "  last sync: {} ({}), {} to {}: {}",
                last.outcome.as_str(),
                last.trigger.as_str(),
                time(r.started_at),
                time(r.finished_at),
                r.summary(),
            )?;
            if r.deletions_held_back > 0 {
                writeln!(
                    out,
                    "  deletions held back: {} (the mass-delete guard; run `s3-connector sync --allow-mass-delete` if they are intended)",
                    r.deletions_held_back
                )?;
            }
            for message in r.error_messages.iter().take(3) {
                writeln!(out, "    error: {message}")?;
            }
        }
        None => writeln!(out, "  last sync: none recorded")?,
    }
    if let Some(at) = status.last_success_at {
        writeln!(out, "  last success: {}", time(at))?;
    }
    match status.next_run {
        Some(at) => writeln!(out, "  next run: {}", time(at))?,
        None if status.running.is_none() && status.schedule.is_some() => {
            writeln!(out, "  next run: when the worker runs")?
        }
        None => {}
    }
    if status.skipped > 0 {
        writeln!(
            out,
            "  skipped: {} (came due while the previous sync still ran)",
            status.skipped
        )?;
    }
    Ok(())
}
