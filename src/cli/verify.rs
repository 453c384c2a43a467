//! `s3-connector verify`: the online probe of each connector's identity and buckets.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{EXIT_FAILED, SelectionArgs};
use crate::verify::{self, Status};

#[derive(Debug, Args)]
pub(super) struct VerifyArgs {
    #[command(flatten)]
    selection: SelectionArgs,
    /// Print one JSON object per step instead of a table.
    #[arg(long)]
    json: bool,
    /// Keep retrying steps refused with AccessDenied for up to this many seconds (new IAM
    /// policies take 10-60 s to take effect).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    wait: u64,
}

/// Prints a row per step; exit 0 only if every step passed.
pub(super) async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let selected = match args.selection.load() {
        Ok(selected) => selected,
        Err(code) => return Ok(code),
    };
    let mut all_passed = true;
    let mut out = std::io::stdout().lock();
    for (_, connector) in selected.connectors() {
        let results = verify::verify_connector(
            connector,
            verify::PropagationWait::every_step(Duration::from_secs(args.wait)),
        )
        .await;
        all_passed &= verify::all_passed(&results);
        if !args.json {
            writeln!(out, "connector {}", connector.id)?;
        }
        for result in &results {
            if args.json {
                serde_json::to_writer(&mut out, result)?;
                writeln!(out)?;
                continue;
            }
            let status = match result.status {
                Status::Pass => "PASS",
                Status::Fail => "FAIL",
                Status::Skip => "SKIP",
                Status::Warn => "WARN",
            };
            let code = result
                .code
                .as_deref()
                .map(|code| format!(" [{code}]"))
                .unwrap_or_default();
            writeln!(
                out,
                "  {status}  {:<19} {}: {}{code}",
                result.step.name(),
                result.target,
                result.message
            )?;
        }
    }
    Ok(if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}
