//! `plan-shards`: proposes range boundaries for N shards from a bounded sample of a
//! connector's listing.
//!
//! The listing is read page by page (every key is seen once, so it costs one ListObjectsV2
//! request per 1,000 keys), but only a systematic sample is kept: every k-th key, where k
//! doubles whenever the sample reaches twice its target size and every other kept key is
//! dropped. Memory is bounded by `2 × sample_size` keys whatever the bucket, and the sample
//! stays evenly spread over the whole listing. The boundaries are quantiles of the sorted
//! sample ([`boundaries_from_sample`], pure and tested).

use crate::source::s3::SourceError;
use crate::source::{ListRequest, ObjectStore};

/// A systematic sample of a stream of keys with bounded memory.
#[derive(Debug, Clone)]
pub struct KeySample {
    target: usize,
    stride: u64,
    seen: u64,
    keys: Vec<String>,
}

impl KeySample {
    /// A sample that keeps between `target` and `2 × target` keys once the stream is long
    /// enough (at least 1).
    pub fn new(target: usize) -> Self {
        Self {
            target: target.max(1),
            stride: 1,
            seen: 0,
            keys: Vec::new(),
        }
    }

    /// Offers the next key of the stream.
    pub fn offer(&mut self, key: &str) {
        if self.seen.is_multiple_of(self.stride) {
            self.keys.push(key.to_owned());
            if self.keys.len() >= 2 * self.target {
                // Keep the keys at even positions: every (2 × stride)-th key of the stream.
                let mut position = 0;
                self.keys.retain(|_| {
                    position += 1;
                    position % 2 == 1
                });
                self.stride *= 2;
            }
        }
        self.seen += 1;
    }

    /// Keys offered so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// One key kept per this many offered.
    pub fn stride(&self) -> u64 {
        self.stride
    }

    /// The kept keys, sorted and distinct.
    pub fn into_sorted(mut self) -> Vec<String> {
        self.keys.sort_unstable();
        self.keys.dedup();
        self.keys
    }
}

/// Why boundaries cannot be proposed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Fewer distinct sampled keys than shards.
    #[error(
        "the listing has {keys} distinct key(s), too few for {shards} shards: each shard needs at least one"
    )]
    TooFewKeys {
        /// Distinct keys sampled.
        keys: usize,
        /// Shards asked for.
        shards: usize,
    },
    /// Zero shards asked for.
    #[error("the number of shards must be at least 1")]
    NoShards,
}

/// The N-1 boundaries that split a sorted, distinct sample into `shards` parts of equal size
/// (within one key): boundary `j` is the last key of part `j`, as range sharding's upper
/// bounds are inclusive. The boundaries are sorted and distinct.
pub fn boundaries_from_sample(sample: &[String], shards: usize) -> Result<Vec<String>, PlanError> {
    if shards == 0 {
        return Err(PlanError::NoShards);
    }
    if sample.len() < shards {
        return Err(PlanError::TooFewKeys {
            keys: sample.len(),
            shards,
        });
    }
    Ok((1..shards)
        .map(|part| sample[part * sample.len() / shards - 1].clone())
        .collect())
}

/// Feeds every key the connector's listing would return under `prefixes` of `bucket` to
/// `sample`, stopping after `max_keys` keys in all (if given). Returns false when it stopped
/// at that cap before the listing's end.
pub async fn sample_bucket<O: ObjectStore>(
    store: &O,
    bucket: &str,
    prefixes: &[String],
    sample: &mut KeySample,
    max_keys: Option<u64>,
) -> Result<bool, SourceError> {
    for prefix in prefixes {
        let mut continuation = None;
        loop {
            if max_keys.is_some_and(|max| sample.seen() >= max) {
                return Ok(false);
            }
            let page = store
                .list_page(bucket, &ListRequest::under(prefix), continuation)
                .await?;
            for entry in &page.entries {
                sample.offer(&entry.key);
            }
            continuation = page.continuation;
            if continuation.is_none() {
                break;
            }
        }
    }
    Ok(true)
}

/// The `sharding` block for `boundaries`, ready to paste under a connector (indented for it).
/// Keys are written as JSON strings, which YAML reads as double-quoted scalars.
pub fn sharding_yaml(boundaries: &[String]) -> String {
    let mut text = String::from("    sharding:\n      by: range\n      boundaries:\n");
    for boundary in boundaries {
        let quoted = serde_json::to_string(boundary).unwrap_or_else(|_| format!("{boundary:?}"));
        text.push_str(&format!("        - {quoted}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::sharding::{ShardBy, ShardingConfig};
    use crate::source::memory::MemoryStore;
    use crate::sync::shard::{Shard, ShardSpec};

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn boundaries_table() {
        let sample = keys(&["a", "b", "c", "d", "e", "f", "g", "h"]);
        let table: [(usize, &[&str]); 5] = [
            (1, &[]),
            (2, &["d"]),
            (3, &["b", "e"]),
            (4, &["b", "d", "f"]),
            (8, &["a", "b", "c", "d", "e", "f", "g"]),
        ];
        for (shards, expected) in table {
            assert_eq!(
                boundaries_from_sample(&sample, shards).unwrap(),
                keys(expected),
                "{shards} shards"
            );
        }
        assert_eq!(
            boundaries_from_sample(&sample, 9),
            Err(PlanError::TooFewKeys { keys: 8, shards: 9 })
        );
        assert_eq!(boundaries_from_sample(&sample, 0), Err(PlanError::NoShards));
    }

    #[test]
    fn the_sample_is_bounded_and_evenly_spread() {
        let mut sample = KeySample::new(100);
        for n in 0..100_000u32 {
            sample.offer(&format!("{n:06}"));
        }
        assert_eq!(sample.seen(), 100_000);
        let stride = sample.stride();
        let kept = sample.into_sorted();
        assert!((100..200).contains(&kept.len()), "{} kept", kept.len());
        // Every stride-th key of the stream, from the first.
        for (position, key) in kept.iter().enumerate() {
            assert_eq!(key, &format!("{:06}", position as u64 * stride));
        }
    }

    #[test]
    fn yaml_quotes_odd_keys() {
        let text = sharding_yaml(&keys(&["a \"quoted\" key", "caf\u{e9}/x"]));
        assert_eq!(
            text,
            "    sharding:\n      by: range\n      boundaries:\n        - \"a \\\"quoted\\\" key\"\n        - \"caf\u{e9}/x\"\n"
        );
    }

    #[tokio::test]
    async fn sampling_reads_the_rule_prefixes_and_stops_at_the_cap() {
        let store = MemoryStore::new(3);
        for key in ["a/1", "a/2", "a/3", "a/4", "b/1", "c/1"] {
            store.put("bucket", key, b"x");
        }
        let mut sample = KeySample::new(10);
        let complete = sample_bucket(&store, "bucket", &keys(&["a/", "c/"]), &mut sample, None)
            .await
            .unwrap();
        assert!(complete);
        assert_eq!(
            sample.into_sorted(),
            keys(&["a/1", "a/2", "a/3", "a/4", "c/1"])
        );
        let mut capped = KeySample::new(10);
        let complete = sample_bucket(&store, "bucket", &keys(&[""]), &mut capped, Some(3))
            .await
            .unwrap();
        assert!(!complete);
        assert_eq!(capped.seen(), 3);
    }

    proptest! {
        #![proptest_config(crate::proptest_config::config())]

        /// Boundaries from any sample are N-1, sorted, distinct, and split the sample into
        /// parts whose sizes differ by at most one key when shards own them.
        #[test]
        fn boundaries_balance_the_sample(
            sample in proptest::collection::btree_set("[a-z/ %+\u{e9}]{0,8}", 1..300),
            shards in 1usize..12,
        ) {
            let sample: Vec<String> = sample.into_iter().collect();
            match boundaries_from_sample(&sample, shards) {
                Err(PlanError::TooFewKeys { .. }) => prop_assert!(sample.len() < shards),
                Err(other) => prop_assert!(false, "{other}"),
                Ok(boundaries) => {
                    prop_assert_eq!(boundaries.len(), shards - 1);
                    prop_assert!(boundaries.windows(2).all(|pair| pair[0] < pair[1]));
                    if shards > 1 {
                        let settings = ShardingConfig {
                            by: ShardBy::Range,
                            depth: None,
                            boundaries: boundaries.clone(),
                        };
                        let counts: Vec<usize> = (0..shards as u32)
                            .map(|index| {
                                let shard = Shard::new(ShardSpec { index, count: shards as u32 }, "c", &settings)
                                    .expect("boundaries fit");
                                sample.iter().filter(|key| shard.owns(key)).count()
                            })
                            .collect();
                        let (min, max) = (counts.iter().min().copied().unwrap_or(0), counts.iter().max().copied().unwrap_or(0));
                        prop_assert!(max - min <= 1, "counts {:?}", counts);
                        prop_assert_eq!(counts.iter().sum::<usize>(), sample.len());
                    }
                }
            }
        }
    }
}
