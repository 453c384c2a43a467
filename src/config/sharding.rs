//! A connector's `sharding` settings: how `--shard I/N` splits its buckets between workers.
//!
//! Only the split is configured here; which shard a process is comes from the command line
//! (`--shard I/N`) or `S3C_SHARD`, so one config file serves every worker. The ownership rule
//! itself lives in `sync::shard`.

use serde::Deserialize;

use super::ConnectorProblems;
use super::defaults;

/// The longest S3 key, in bytes: a longer boundary could never be a key.
const MAX_KEY_BYTES: usize = 1024;

/// Deepest `depth` accepted.
const MAX_DEPTH: usize = 32;

/// How a connector's keys are split between shards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardBy {
    /// By a stable hash (MD5) of the key's first `depth` path segments: whole folders move
    /// together, any number of shards works. For buckets with folders.
    #[default]
    Prefix,
    /// By sorted key `boundaries`: for flat buckets, or folders too few or too uneven to
    /// spread. The number of shards is the number of boundaries plus one
    /// (`s3-connector plan-shards` proposes them).
    Range,
}

/// The `sharding` block of a connector. Without it, `--shard I/N` splits by the top-level
/// folder (`by: prefix`, `depth: 1`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardingConfig {
    /// `prefix` (default) or `range`.
    #[serde(default)]
    pub by: ShardBy,
    /// With `by: prefix`: how many leading path segments make a key's group, 1..=32. A key
    /// with fewer `/` than this is its own group. Raise it when a bucket has few top-level
    /// folders (e.g. `2` for `tenant/year/...`). Default 1.
    #[serde(default)]
    pub depth: Option<usize>,
    /// With `by: range`: the keys where shards end, sorted, distinct, non-empty, at most 1024
    /// bytes each. Shard `i` owns the keys after boundary `i-1` up to and including boundary
    /// `i`; N-1 boundaries make N shards. Default: none.
    #[serde(default)]
    pub boundaries: Vec<String>,
}

impl ShardingConfig {
    /// The effective `depth`.
    pub fn depth(&self) -> usize {
        self.depth.unwrap_or(defaults::shard_depth())
    }

    /// How many shards the settings fix, if they fix a number: range sharding's boundaries + 1.
    pub fn fixed_count(&self) -> Option<usize> {
        (self.by == ShardBy::Range).then(|| self.boundaries.len() + 1)
    }
}

/// Checks the `sharding` block of one connector.
pub(super) fn validate(settings: &ShardingConfig, report: &mut ConnectorProblems<'_>) {
    match settings.by {
        ShardBy::Prefix => {
            if let Some(depth) = settings.depth
                && !(1..=MAX_DEPTH).contains(&depth)
            {
                report.push(
                    "sharding.depth",
                    Some(depth.to_string()),
                    format!("is out of range: must be between 1 and {MAX_DEPTH}"),
                );
            }
            if !settings.boundaries.is_empty() {
                report.without_value(
                    "sharding.boundaries",
                    false,
                    "is only allowed with sharding.by: range",
                );
            }
        }
        ShardBy::Range => {
            if settings.depth.is_some() {
                report.without_value(
                    "sharding.depth",
                    false,
                    "is only allowed with sharding.by: prefix",
                );
            }
            if settings.boundaries.is_empty() {
                report.without_value(
                    "sharding.boundaries",
                    false,
                    "is required with sharding.by: range: N-1 sorted keys for N shards (s3-connector plan-shards proposes them)",
                );
            }
            for (index, boundary) in settings.boundaries.iter().enumerate() {
                let field = format!("sharding.boundaries[{index}]");
                if boundary.is_empty() {
                    report.check(&field, boundary, Err("must not be empty".into()));
                } else if boundary.len() > MAX_KEY_BYTES {
                    report.check(
                        &field,
                        boundary,
                        Err(format!(
                            "is longer than an S3 key can be ({MAX_KEY_BYTES} bytes)"
                        )),
                    );
                }
                if let Some(previous) = index.checked_sub(1).map(|i| &settings.boundaries[i])
                    && boundary <= previous
                {
                    report.check(
                        &field,
                        boundary,
                        Err(format!(
                            "must sort after the boundary before it ({previous:?}): boundaries are sorted by their UTF-8 bytes and distinct"
                        )),
                    );
                }
            }
        }
    }
}
