//! `s3-connector validate`: the offline check of a config file.

use std::process::ExitCode;

use super::{ConfigArg, load_config};

/// Prints whether the config is valid; every problem goes to stderr.
pub(super) fn run(args: &ConfigArg) -> anyhow::Result<ExitCode> {
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
