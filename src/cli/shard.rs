//! `--shard I/N` (or `S3C_SHARD`), shared by `sync`, `run` and `status`: which part of each
//! bucket this process syncs. The split itself is the connectors' `sharding` settings.

use std::process::ExitCode;

use clap::Args;

use super::EXIT_CONFIG;
use crate::config::Config;
use crate::sync::{ConfigShards, ShardSpec};

/// The `--shard` argument.
#[derive(Debug, Clone, Args)]
pub(super) struct ShardArg {
    /// Sync only shard I of N (0-based) of each bucket, e.g. `--shard 1/4`: one of N workers
    /// that split the buckets between them (each connector's `sharding` settings say how).
    /// Needs the OpenSearch index for N > 1. Default `0/1`: whole buckets.
    #[arg(long = "shard", env = "S3C_SHARD", value_name = "I/N")]
    spec: Option<ShardSpec>,
}

impl ShardArg {
    /// The `I/N` given, `0/1` without one.
    pub(super) fn spec(&self) -> ShardSpec {
        self.spec.unwrap_or(ShardSpec::WHOLE)
    }

    /// This process's shard of every connector of `config`, or the exit code (2) after saying
    /// why the index or a connector's settings cannot be split that way.
    pub(super) fn resolve(&self, config: &Config) -> Result<ConfigShards, ExitCode> {
        ConfigShards::new(self.spec(), config).map_err(|error| {
            eprintln!("error: --shard (S3C_SHARD) {error}");
            ExitCode::from(EXIT_CONFIG)
        })
    }
}
