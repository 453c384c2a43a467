//! `s3-connector plan-shards`: proposes `sharding.by: range` boundaries for N shards from a
//! bounded sample of a connector's listing, printed ready to paste into the config.

use std::process::ExitCode;

use clap::Args;

use super::{ConfigArg, EXIT_CONFIG, EXIT_FAILED, load_with_connector};
use crate::config::{BucketSelection, IndexConfig};
use crate::credentials;
use crate::source::s3::S3Source;
use crate::sync::shard_plan::{self, KeySample};

#[derive(Debug, Args)]
pub(super) struct PlanShardsArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The connector to plan for.
    #[arg(long)]
    connector: String,
    /// How many shards (workers) to split its buckets into, 2..=1024.
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=1024))]
    shards: u32,
    /// Keys kept in the sample (between this and twice this many, evenly spread over the
    /// listing): the memory bound. More keys balance the shards more finely.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    sample_size: u64,
    /// Stop listing after this many keys (default: the whole listing). Boundaries from a
    /// partial listing split only the part listed; the last shard gets the rest.
    #[arg(long)]
    max_keys: Option<u64>,
}

/// Lists the connector's buckets (under its rule prefixes), samples the keys and prints the
/// `sharding` block. Exit 0 with a proposal (a warning in it when `--max-keys` cut the
/// listing short), 1 when the listing failed or has too few keys, 2 for a bad config or an
/// embedded index (whose syncs cannot be split: nothing is listed then).
pub(super) async fn run(args: PlanShardsArgs) -> anyhow::Result<ExitCode> {
    let (config, position) = match load_with_connector(&args.config.config, &args.connector) {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    let connector = &config.connectors[position];
    if matches!(config.index, IndexConfig::Embedded { .. }) {
        eprintln!(
            "error: connector {} writes to the embedded index (index.kind: embedded), which has a single writer: its syncs cannot be split between workers, so there are no shards to plan. Shards need index.kind: opensearch; with the embedded index run one worker (no --shard).",
            connector.id
        );
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let sdk_config = credentials::sdk_config(connector).await;
    let source = S3Source::new(connector, &sdk_config);
    let mut buckets = match &connector.buckets {
        BucketSelection::Named(names) => names.clone(),
        BucketSelection::All => match source.list_buckets().await {
            Ok(names) => names,
            Err(error) => {
                eprintln!("error: cannot list the buckets: {error}");
                return Ok(ExitCode::from(EXIT_FAILED));
            }
        },
    };
    buckets.retain(|bucket| connector.rules.covers_bucket(bucket));
    let target = usize::try_from(args.sample_size).unwrap_or(usize::MAX);
    let mut sample = KeySample::new(target);
    let mut complete = true;
    for bucket in &buckets {
        if connector.buckets == BucketSelection::All
            && let Err(error) = source.locate_bucket(bucket).await
        {
            eprintln!("error: cannot find the region of bucket {bucket}: {error}");
            return Ok(ExitCode::from(EXIT_FAILED));
        }
        let prefixes = connector.rules.list_prefixes(bucket);
        match shard_plan::sample_bucket(&source, bucket, &prefixes, &mut sample, args.max_keys)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                complete = false;
                break;
            }
            Err(error) => {
                eprintln!("error: listing bucket {bucket} failed: {error}");
                return Ok(ExitCode::from(EXIT_FAILED));
            }
        }
    }
    let seen = sample.seen();
    let stride = sample.stride();
    let sorted = sample.into_sorted();
    let shards = args.shards as usize;
    let boundaries = match shard_plan::boundaries_from_sample(&sorted, shards) {
        Ok(boundaries) => boundaries,
        Err(error) => {
            eprintln!("error: connector {}: {error}", connector.id);
            return Ok(ExitCode::from(EXIT_FAILED));
        }
    };
    println!(
        "# plan-shards: connector {}, {shards} shards, from {} sampled keys of {seen} listed ({}) in bucket(s) {}",
        connector.id,
        sorted.len(),
        every_nth_key(stride),
        buckets.join(", ")
    );
    if !complete {
        println!(
            "# WARNING: the listing stopped at --max-keys {seen}: these boundaries split only the keys listed, and the last shard also gets every key after them"
        );
    }
    println!(
        "# about {} keys per shard; run each worker with --shard I/{shards} (I = 0..{})",
        seen / args.shards as u64,
        shards - 1
    );
    print!("{}", shard_plan::sharding_yaml(&boundaries));
    Ok(ExitCode::SUCCESS)
}

/// "every key", "every 2nd key", "every 11th key", "every 21st key": which keys a sample of
/// stride `n` kept.
fn every_nth_key(n: u64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    match n {
        0 | 1 => "every key".to_owned(),
        n => format!("every {n}{suffix} key"),
    }
}

#[cfg(test)]
mod tests {
    use super::every_nth_key;

    #[test]
    fn strides_read_as_english_ordinals() {
        let table = [
            (1, "every key"),
            (2, "every 2nd key"),
            (3, "every 3rd key"),
            (4, "every 4th key"),
            (11, "every 11th key"),
            (12, "every 12th key"),
            (13, "every 13th key"),
            (21, "every 21st key"),
            (102, "every 102nd key"),
            (111, "every 111th key"),
        ];
        for (stride, text) in table {
            assert_eq!(every_nth_key(stride), text, "{stride}");
        }
    }
}
