//! Shards: which of N workers owns which key, and how a worker lists only its own part.
//!
//! Ownership is a pure function of the key and the configuration, never of what a listing
//! returned, so any two shards agree on every key even while the bucket changes under them,
//! and every key belongs to exactly one shard of N. This module does no I/O: it says which
//! listing requests cover a shard's part ([`Shard::parts`], [`Shard::descend`]) and where a
//! key-ordered read of the index may skip another shard's folder ([`Shard::skip_from`]); the
//! sync sends the requests.
//!
//! - `by: prefix` (default): a key's group is its first `depth` path segments (the key up to
//!   and including its `depth`-th `/`; a key with fewer slashes is its own group). The group's
//!   shard is the first 8 bytes of its MD5, read big-endian, modulo N: a documented hash that
//!   any tool reproduces (`printf %s 'docs/' | md5sum`), unlike Rust's randomly keyed SipHash.
//!   The shard lists the groups with a `/` delimiter and then only its own groups.
//! - `by: range`: N-1 sorted boundaries split the key space; shard `i` owns the keys after
//!   boundary `i-1` up to and including boundary `i` (the first shard has no lower bound, the
//!   last no upper one). A key equal to a boundary belongs to the lower shard, so a listing
//!   starts exactly at S3's `StartAfter` and stops after the upper boundary.

use std::fmt;

use md5::{Digest, Md5};

use crate::config::sharding::{ShardBy, ShardingConfig};
use crate::config::{Config, IndexConfig};

/// One worker's part of every bucket of a connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
    by: Split,
}

/// How the key space is split, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Split {
    /// By a hash of the key's first `depth` path segments.
    Prefix { depth: usize },
    /// By sorted boundaries; `count - 1` of them.
    Range { boundaries: Vec<String> },
}

/// Why a shard cannot be made from `--shard I/N` and the connector's `sharding` settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not `I/N` with numbers.
    #[error("{value:?} is not a shard: write I/N with 0 <= I < N, e.g. 0/4 (I is 0-based)")]
    Syntax {
        /// What was given.
        value: String,
    },
    /// I is not below N, or N is 0.
    #[error(
        "{value:?} is out of range: the shard index I must be below the shard count N (0 <= I < N, N >= 1)"
    )]
    OutOfRange {
        /// What was given.
        value: String,
    },
    /// More than one shard on the embedded index.
    #[error(
        "{value:?} needs the OpenSearch index: the embedded index (index.kind: embedded) has a single writer, so its syncs cannot be split between processes; use index.kind: opensearch for N > 1, or run one worker (0/1)"
    )]
    EmbeddedIndex {
        /// What was given.
        value: String,
    },
    /// Range sharding with the wrong number of boundaries for N.
    #[error(
        "{value:?} does not fit connector {connector}: its sharding.boundaries has {boundaries} boundaries, which make {shards} shards, so N must be {shards}"
    )]
    BoundaryCount {
        /// What was given.
        value: String,
        /// The connector.
        connector: String,
        /// How many boundaries it has.
        boundaries: usize,
        /// How many shards they make.
        shards: usize,
    },
}

/// `I/N` as given on the command line or in `S3C_SHARD`: parsed, not yet tied to a connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    /// This worker's shard, 0-based.
    pub index: u32,
    /// How many shards there are.
    pub count: u32,
}

impl ShardSpec {
    /// The whole bucket: `0/1`.
    pub const WHOLE: Self = Self { index: 0, count: 1 };
}

impl std::str::FromStr for ShardSpec {
    type Err = ShardError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let syntax = || ShardError::Syntax {
            value: value.to_owned(),
        };
        let (index, count) = value.trim().split_once('/').ok_or_else(syntax)?;
        let index: u32 = index.trim().parse().map_err(|_| syntax())?;
        let count: u32 = count.trim().parse().map_err(|_| syntax())?;
        if count == 0 || index >= count {
            return Err(ShardError::OutOfRange {
                value: value.to_owned(),
            });
        }
        Ok(Self { index, count })
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One worker's shard of every connector of a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigShards {
    spec: ShardSpec,
    /// One per connector, in config order.
    shards: Vec<Shard>,
}

impl ConfigShards {
    /// Shard `spec` of each connector of `config`; an error when the index or a connector's
    /// settings cannot be split that way.
    pub fn new(spec: ShardSpec, config: &Config) -> Result<Self, ShardError> {
        if spec.count > 1 && matches!(config.index, IndexConfig::Embedded { .. }) {
            return Err(ShardError::EmbeddedIndex {
                value: spec.to_string(),
            });
        }
        let shards = config
            .connectors
            .iter()
            .map(|connector| {
                if spec.count == 1 {
                    // One worker owns every key whatever the settings say.
                    Ok(Shard::whole())
                } else {
                    Shard::new(spec, &connector.id, &connector.sharding)
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { spec, shards })
    }

    /// Every connector whole: one worker.
    pub fn whole(config: &Config) -> Self {
        Self {
            spec: ShardSpec::WHOLE,
            shards: vec![Shard::whole(); config.connectors.len()],
        }
    }

    /// The `I/N` these shards were made from.
    pub fn spec(&self) -> ShardSpec {
        self.spec
    }

    /// The shard of the connector at `position` in the config (whole for an unknown one).
    pub fn of(&self, position: usize) -> Shard {
        self.shards
            .get(position)
            .cloned()
            .unwrap_or_else(Shard::whole)
    }
}

/// One listing request that covers part of a shard's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListPart {
    /// Every key under `prefix` after `start_after` (exclusive) up to `end` (inclusive).
    Keys {
        /// S3 `Prefix`.
        prefix: String,
        /// S3 `StartAfter`; `None` from the first key.
        start_after: Option<String>,
        /// The last key to take (inclusive); the listing stops past it. `None`: to the end.
        end: Option<String>,
    },
    /// A listing of `prefix` with the `/` delimiter: its keys without a further `/` are taken
    /// when [`Shard::owns`] them, its common prefixes are handed to [`Shard::descend`].
    Walk {
        /// S3 `Prefix`.
        prefix: String,
    },
}

impl ListPart {
    fn keys(prefix: &str) -> Self {
        Self::Keys {
            prefix: prefix.to_owned(),
            start_after: None,
            end: None,
        }
    }
}

impl Shard {
    /// The whole bucket, as one unsharded worker sees it.
    pub fn whole() -> Self {
        Self {
            index: 0,
            count: 1,
            by: Split::Prefix { depth: 1 },
        }
    }

    /// Shard `spec` of a connector whose validated sharding settings are `settings`.
    pub fn new(
        spec: ShardSpec,
        connector: &str,
        settings: &ShardingConfig,
    ) -> Result<Self, ShardError> {
        let by = match settings.by {
            ShardBy::Prefix => Split::Prefix {
                depth: settings.depth(),
            },
            ShardBy::Range => {
                let shards = settings.boundaries.len() + 1;
                if spec.count as usize != shards {
                    return Err(ShardError::BoundaryCount {
                        value: spec.to_string(),
                        connector: connector.to_owned(),
                        boundaries: settings.boundaries.len(),
                        shards,
                    });
                }
                Split::Range {
                    boundaries: settings.boundaries.clone(),
                }
            }
        };
        Ok(Self {
            index: spec.index,
            count: spec.count,
            by,
        })
    }

    /// This shard's index, 0-based.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// How many shards split the buckets.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// True for the only shard of one: it owns every key.
    pub fn is_whole(&self) -> bool {
        self.count == 1
    }

    /// `I/N`, as reports and logs show it.
    pub fn label(&self) -> String {
        format!("{}/{}", self.index, self.count)
    }

    /// Whether this shard owns `key`. For every key exactly one shard of N says yes.
    pub fn owns(&self, key: &str) -> bool {
        if self.is_whole() {
            return true;
        }
        match &self.by {
            Split::Prefix { depth } => self.owns_group(group_of(key, *depth)),
            Split::Range { boundaries } => {
                let (lower, upper) = self.bounds(boundaries);
                lower.is_none_or(|lower| key > lower) && upper.is_none_or(|upper| key <= upper)
            }
        }
    }

    /// The exclusive lower and inclusive upper bound of this shard's keys, for range sharding;
    /// `(None, None)` when its keys are not one range (prefix sharding, or the whole bucket).
    pub fn key_range(&self) -> (Option<&str>, Option<&str>) {
        match &self.by {
            Split::Range { boundaries } if !self.is_whole() => self.bounds(boundaries),
            _ => (None, None),
        }
    }

    /// Where a key-ordered read of the index goes on after a full page whose last key is
    /// `last`: `Some(first)` when `last` lies in a folder group of another shard (a prefix
    /// shard skips the rest of it: the read resumes at the first key at least `first`, the
    /// first key past the group); `None` when the read goes on after `last`. Without it every
    /// prefix shard would read the whole bucket's index on each sync.
    pub fn skip_from(&self, last: &str) -> Option<String> {
        let Split::Prefix { depth } = &self.by else {
            return None;
        };
        // Only a key with `depth` slashes has a folder group that every longer key under it
        // shares (a shorter key ending in `/` is a group of its own, not its folder's).
        let (end, _) = last.match_indices('/').nth(depth.checked_sub(1)?)?;
        let group = &last[..=end];
        if self.is_whole() || self.owns_group(group) {
            return None;
        }
        // The keys of group `docs/` are exactly those from `docs/` to before `docs0`: `0`
        // is the byte after `/`.
        Some(format!("{}0", &group[..end]))
    }

    /// The listing requests that cover this shard's keys under `prefix` (a rule prefix, or `""`
    /// for the whole bucket). Together with what [`Shard::descend`] adds, they list every
    /// owned key once and, for prefix sharding, no group of another shard.
    pub fn parts(&self, prefix: &str) -> Vec<ListPart> {
        if self.is_whole() {
            return vec![ListPart::keys(prefix)];
        }
        match &self.by {
            Split::Prefix { depth } => self.descend(prefix, *depth).into_iter().collect(),
            Split::Range { boundaries } => {
                let (lower, upper) = self.bounds(boundaries);
                // Every key under `prefix` is >= prefix: nothing when that is past the end.
                if upper.is_some_and(|upper| prefix > upper) {
                    return Vec::new();
                }
                // Every key under `prefix` sorts before `lower` when `prefix` does and `lower`
                // does not extend it.
                if lower.is_some_and(|lower| prefix < lower && !lower.starts_with(prefix)) {
                    return Vec::new();
                }
                vec![ListPart::Keys {
                    prefix: prefix.to_owned(),
                    start_after: lower.filter(|lower| *lower >= prefix).map(str::to_owned),
                    end: upper.map(str::to_owned),
                }]
            }
        }
    }

    /// What to list under a common prefix that a [`ListPart::Walk`] returned: nothing (another
    /// shard's group), all of it (an owned group), or another delimiter level.
    pub fn descend_into(&self, common_prefix: &str) -> Option<ListPart> {
        match &self.by {
            Split::Prefix { depth } => self.descend(common_prefix, *depth),
            // Range parts never walk; an owned range is listed whole.
            Split::Range { .. } => Some(ListPart::keys(common_prefix)),
        }
    }

    fn descend(&self, prefix: &str, depth: usize) -> Option<ListPart> {
        if slashes(prefix) >= depth {
            // Every key under `prefix` is in the one group `prefix` starts with.
            self.owns_group(group_of(prefix, depth))
                .then(|| ListPart::keys(prefix))
        } else {
            Some(ListPart::Walk {
                prefix: prefix.to_owned(),
            })
        }
    }

    fn owns_group(&self, group: &str) -> bool {
        shard_of_group(group, self.count) == self.index
    }

    /// The exclusive lower and inclusive upper boundary of this shard.
    fn bounds<'a>(&self, boundaries: &'a [String]) -> (Option<&'a str>, Option<&'a str>) {
        let index = self.index as usize;
        let lower = index
            .checked_sub(1)
            .and_then(|i| boundaries.get(i))
            .map(String::as_str);
        let upper = boundaries.get(index).map(String::as_str);
        (lower, upper)
    }
}

/// The group of `key` for prefix sharding: the key up to and including its `depth`-th `/`, or
/// the whole key when it has fewer.
pub fn group_of(key: &str, depth: usize) -> &str {
    match key.match_indices('/').nth(depth.saturating_sub(1)) {
        Some((at, _)) if depth > 0 => &key[..=at],
        _ => key,
    }
}

/// The shard (of `count`) that owns `group`: the first 8 bytes of MD5(group), big-endian,
/// modulo `count`.
pub fn shard_of_group(group: &str, count: u32) -> u32 {
    let digest = Md5::digest(group.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let value = u64::from_be_bytes(first) % u64::from(count.max(1));
    // Below `count`, which is a u32.
    u32::try_from(value).unwrap_or(0)
}

fn slashes(text: &str) -> usize {
    text.bytes().filter(|byte| *byte == b'/').count()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn prefix_shards(count: u32, depth: usize) -> Vec<Shard> {
        (0..count)
            .map(|index| Shard {
                index,
                count,
                by: Split::Prefix { depth },
            })
            .collect()
    }

    fn range_shards(boundaries: &[&str]) -> Vec<Shard> {
        let count = boundaries.len() as u32 + 1;
        (0..count)
            .map(|index| Shard {
                index,
                count,
                by: Split::Range {
                    boundaries: boundaries.iter().map(|b| (*b).to_owned()).collect(),
                },
            })
            .collect()
    }

    #[test]
    fn a_prefix_shard_skips_the_rest_of_another_shards_folder() {
        // depth 1, 2 shards: which shard owns a group is MD5's say; find one group of each.
        let shards = prefix_shards(2, 1);
        let (mine, theirs) = (&shards[0], &shards[1]);
        let foreign = (0..)
            .map(|n| format!("f{n}/"))
            .find(|group| !mine.owns_group(group))
            .unwrap();
        let own = (0..)
            .map(|n| format!("o{n}/"))
            .find(|group| mine.owns_group(group))
            .unwrap();
        let folder = foreign.trim_end_matches('/');
        let cases: &[(&Shard, String, Option<String>)] = &[
            // In another shard's folder, however deep: past the folder.
            (mine, format!("{foreign}a"), Some(format!("{folder}0"))),
            (mine, format!("{foreign}x/y/z"), Some(format!("{folder}0"))),
            (mine, foreign.clone(), Some(format!("{folder}0"))),
            // In its own folder: on after the key.
            (mine, format!("{own}a"), None),
            // The folder's owner reads it.
            (theirs, format!("{foreign}a"), None),
            // A key without a slash is a group of one key: nothing to skip.
            (mine, folder.to_owned(), None),
        ];
        for (shard, last, expected) in cases {
            assert_eq!(
                &shard.skip_from(last),
                expected,
                "{} after {last:?}",
                shard.label()
            );
        }
        // Range shards and the whole bucket never skip.
        assert_eq!(range_shards(&["m"])[0].skip_from("z/a"), None);
        assert_eq!(Shard::whole().skip_from(&format!("{foreign}a")), None);
    }

    #[test]
    fn a_shorter_key_ending_in_a_slash_is_not_its_folders_group() {
        // depth 2: "a/" has one slash, so it is a group of its own, and "a/b/c" (group "a/b/")
        // may belong to this shard: no skip past "a0" from "a/".
        for shard in prefix_shards(3, 2) {
            assert_eq!(shard.skip_from("a/"), None);
        }
    }

    proptest! {
        #![proptest_config(crate::proptest_config::config())]

        /// Whatever a skip passes over belongs to another shard: every key from just after
        /// `last` up to before the resume point is in `last`'s group, which the shard does not own.
        #[test]
        fn a_skip_passes_over_only_keys_of_other_shards(
            last in "[a-c/]{1,8}",
            key in "[a-c/0]{1,8}",
            count in 2u32..5,
            depth in 1usize..3,
        ) {
            for shard in prefix_shards(count, depth) {
                if let Some(first) = shard.skip_from(&last)
                    && key.as_str() > last.as_str()
                    && key < first
                {
                    prop_assert!(!shard.owns(&key), "{} skipped {key:?} it owns", shard.label());
                }
            }
        }
    }

    /// Keys that break naive splitting: unicode, spaces, `%`, `+`, empty segments, trailing
    /// `/`, very long, and keys equal to (or next to) the range boundaries used below.
    fn odd_keys() -> Vec<String> {
        let mut keys: Vec<String> = [
            "",
            "/",
            "//",
            "a",
            "a/",
            "a//b",
            "/leading",
            "trailing/",
            "dir/sub/",
            "with space/x y.txt",
            "100% done.txt",
            "plus+sign/a+b",
            "caf\u{e9}/\u{2603} snow.txt",
            "\u{10FFFF}/max",
            "emoji/\u{1F600}",
            "g",
            "g/",
            "g0",
            "p",
            "p/x",
            "m",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        keys.push("long/".repeat(200));
        keys.push("x".repeat(1024));
        keys
    }

    #[test]
    fn groups_are_the_leading_segments() {
        let table: [(&str, usize, &str); 9] = [
            ("a/b/c.txt", 1, "a/"),
            ("a/b/c.txt", 2, "a/b/"),
            ("a/b/c.txt", 3, "a/b/c.txt"),
            ("root.txt", 1, "root.txt"),
            ("/x", 1, "/"),
            ("a//b", 2, "a//"),
            ("dir/", 1, "dir/"),
            ("", 1, ""),
            ("a/b", 0, "a/b"),
        ];
        for (key, depth, group) in table {
            assert_eq!(group_of(key, depth), group, "key {key:?} depth {depth}");
        }
    }

    #[test]
    fn the_hash_is_md5_as_documented() {
        // printf %s 'docs/' | md5sum → 1d0e6a4d4b5f2ef0... : its first 8 bytes mod 4.
        let digest = Md5::digest(b"docs/");
        let first = u64::from_be_bytes(digest[..8].try_into().unwrap());
        assert_eq!(shard_of_group("docs/", 4), (first % 4) as u32);
        assert_eq!(shard_of_group("docs/", 1), 0);
        // Pinned, so that a change of the rule (which would move every key) fails here.
        let pinned: Vec<u32> = ["docs/", "img/", "a", "", "caf\u{e9}/"]
            .iter()
            .map(|group| shard_of_group(group, 7))
            .collect();
        let expected: Vec<u32> = ["docs/", "img/", "a", "", "caf\u{e9}/"]
            .iter()
            .map(|group| {
                let digest = Md5::digest(group.as_bytes());
                (u64::from_be_bytes(digest[..8].try_into().unwrap()) % 7) as u32
            })
            .collect();
        assert_eq!(pinned, expected);
    }

    #[test]
    fn range_boundaries_belong_to_the_lower_shard() {
        let shards = range_shards(&["g", "p"]);
        let owner = |key: &str| -> Vec<u32> {
            shards
                .iter()
                .filter(|s| s.owns(key))
                .map(|s| s.index)
                .collect()
        };
        let table: [(&str, u32); 9] = [
            ("", 0),
            ("a", 0),
            ("g", 0),
            ("g/", 1),
            ("g0", 1),
            ("p", 1),
            ("p/x", 2),
            ("z", 2),
            ("\u{10FFFF}", 2),
        ];
        for (key, shard) in table {
            assert_eq!(owner(key), vec![shard], "key {key:?}");
        }
    }

    #[test]
    fn every_odd_key_is_in_exactly_one_shard() {
        let mut configurations = vec![range_shards(&["g", "m", "p"]), range_shards(&["/", "a/"])];
        for count in [1, 2, 3, 4, 7] {
            for depth in [1, 2, 3] {
                configurations.push(prefix_shards(count, depth));
            }
        }
        for shards in &configurations {
            for key in odd_keys() {
                let owners = shards.iter().filter(|s| s.owns(&key)).count();
                assert_eq!(owners, 1, "key {key:?} in {shards:?}");
            }
        }
    }

    #[test]
    fn spec_parses_and_checks_its_range() {
        assert_eq!(
            "1/4".parse::<ShardSpec>(),
            Ok(ShardSpec { index: 1, count: 4 })
        );
        assert_eq!(
            " 0 / 1 ".parse::<ShardSpec>(),
            Ok(ShardSpec::WHOLE),
            "spaces are tolerated"
        );
        for bad in ["", "1", "a/b", "1/", "/4", "-1/4", "1/4/5"] {
            assert!(
                matches!(bad.parse::<ShardSpec>(), Err(ShardError::Syntax { .. })),
                "{bad:?}"
            );
        }
        for bad in ["4/4", "5/4", "0/0"] {
            assert!(
                matches!(bad.parse::<ShardSpec>(), Err(ShardError::OutOfRange { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn range_sharding_needs_one_more_shard_than_boundaries() {
        let settings = ShardingConfig {
            by: ShardBy::Range,
            depth: None,
            boundaries: vec!["m".into()],
        };
        let error = Shard::new(ShardSpec { index: 0, count: 3 }, "docs", &settings).unwrap_err();
        assert_eq!(
            error.to_string(),
            "\"0/3\" does not fit connector docs: its sharding.boundaries has 1 boundaries, which make 2 shards, so N must be 2"
        );
        assert!(Shard::new(ShardSpec { index: 1, count: 2 }, "docs", &settings).is_ok());
    }

    #[test]
    fn prefix_parts_walk_down_to_the_depth_and_keep_only_owned_groups() {
        let shards = prefix_shards(3, 2);
        let shard = &shards[0];
        assert_eq!(
            shard.parts(""),
            vec![ListPart::Walk {
                prefix: String::new()
            }]
        );
        assert_eq!(
            shard.descend_into("a/"),
            Some(ListPart::Walk {
                prefix: "a/".into()
            })
        );
        // At the depth, each group is listed whole by exactly one shard.
        for group in ["a/b/", "a/c/", "x/y/"] {
            let listing: Vec<_> = shards
                .iter()
                .filter_map(|s| s.descend_into(group))
                .collect();
            assert_eq!(listing, vec![ListPart::keys(group)], "group {group}");
        }
        // A rule prefix deeper than the depth is one group.
        let deep: Vec<_> = shards.iter().flat_map(|s| s.parts("a/b/c/d")).collect();
        assert_eq!(deep, vec![ListPart::keys("a/b/c/d")]);
    }

    #[test]
    fn range_parts_start_after_the_lower_bound_and_end_at_the_upper() {
        let shards = range_shards(&["g", "p"]);
        assert_eq!(
            shards[1].parts(""),
            vec![ListPart::Keys {
                prefix: String::new(),
                start_after: Some("g".into()),
                end: Some("p".into())
            }]
        );
        // Prefixes wholly outside the range are not listed at all.
        assert!(shards[0].parts("q/").is_empty());
        assert!(shards[2].parts("a/").is_empty());
        // A prefix before the lower bound that the bound extends is listed from the bound.
        assert_eq!(
            shards[1].parts("g"),
            vec![ListPart::Keys {
                prefix: "g".into(),
                start_after: Some("g".into()),
                end: Some("p".into())
            }]
        );
        // A prefix inside the range starts at the prefix.
        assert_eq!(
            shards[1].parts("k/"),
            vec![ListPart::Keys {
                prefix: "k/".into(),
                start_after: None,
                end: Some("p".into())
            }]
        );
    }

    fn key_strategy() -> impl Strategy<Value = String> {
        // Short keys from an alphabet rich in separators and odd characters, so that groups,
        // empty segments and boundary ties are common.
        proptest::collection::vec(
            prop::sample::select(vec![
                "a",
                "b",
                "g",
                "p",
                "/",
                "/",
                " ",
                "%",
                "+",
                "\u{e9}",
                "\u{2603}",
                "\u{1F600}",
                ".",
            ]),
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(crate::proptest_config::config())]

        #[test]
        fn prefix_ownership_is_a_partition(key in key_strategy(), count in 1u32..9, depth in 1usize..4) {
            let shards = prefix_shards(count, depth);
            prop_assert_eq!(shards.iter().filter(|s| s.owns(&key)).count(), 1);
        }

        #[test]
        fn range_ownership_is_a_partition(
            key in key_strategy(),
            mut boundaries in proptest::collection::btree_set(key_strategy(), 1..6),
        ) {
            boundaries.remove("");
            let boundaries: Vec<String> = boundaries.into_iter().collect();
            let refs: Vec<&str> = boundaries.iter().map(String::as_str).collect();
            let shards = range_shards(&refs);
            prop_assert_eq!(shards.iter().filter(|s| s.owns(&key)).count(), 1);
            // Keys equal to a boundary too.
            for boundary in &boundaries {
                prop_assert_eq!(shards.iter().filter(|s| s.owns(boundary)).count(), 1);
            }
        }

        /// The listing requests of a shard cover exactly its keys: simulated on a key set with
        /// a model of S3's Prefix, StartAfter and delimiter.
        #[test]
        fn parts_list_exactly_the_owned_keys(
            keys in proptest::collection::btree_set(key_strategy(), 0..40),
            rule_prefix in prop::sample::select(vec!["", "a", "a/", "g/", "/"]),
            count in 1u32..5,
            depth in 1usize..4,
            ranged in any::<bool>(),
        ) {
            let shards = if ranged && count > 1 {
                let boundaries: Vec<&str> = ["b/", "g", "p/", "\u{e9}"][..count as usize - 1].to_vec();
                range_shards(&boundaries)
            } else {
                prefix_shards(count, depth)
            };
            let under: BTreeSet<&String> = keys.iter().filter(|k| k.starts_with(rule_prefix)).collect();
            let mut all = Vec::new();
            for shard in &shards {
                let listed = simulate(shard, &keys, rule_prefix);
                let owned: Vec<String> = under.iter().filter(|k| shard.owns(k)).map(|k| (*k).clone()).collect();
                prop_assert_eq!(&listed, &owned, "shard {}", shard.label());
                all.extend(listed);
            }
            all.sort();
            prop_assert_eq!(all, under.into_iter().cloned().collect::<Vec<_>>());
        }
    }

    use std::collections::BTreeSet;

    /// What a shard's listing takes, in the order it takes it, with S3's listing semantics
    /// modelled on a sorted key set.
    fn simulate(shard: &Shard, keys: &BTreeSet<String>, prefix: &str) -> Vec<String> {
        let mut taken = Vec::new();
        let mut work: Vec<ListPart> = shard.parts(prefix);
        work.reverse();
        while let Some(part) = work.pop() {
            match part {
                ListPart::Keys {
                    prefix,
                    start_after,
                    end,
                } => {
                    for key in keys.iter().filter(|k| k.starts_with(&prefix)) {
                        if start_after.as_ref().is_some_and(|after| key <= after) {
                            continue;
                        }
                        if end.as_ref().is_some_and(|end| key > end) {
                            break;
                        }
                        taken.push(key.clone());
                    }
                }
                ListPart::Walk { prefix } => {
                    // Delimiter listing: direct keys and common prefixes, in key order.
                    let mut items: Vec<(String, bool)> = Vec::new();
                    for key in keys.iter().filter(|k| k.starts_with(&prefix)) {
                        match key[prefix.len()..].find('/') {
                            Some(at) => {
                                let common = key[..prefix.len() + at + 1].to_owned();
                                if items.last().is_none_or(|(last, _)| *last != common) {
                                    items.push((common, true));
                                }
                            }
                            None => items.push((key.clone(), false)),
                        }
                    }
                    let mut next = Vec::new();
                    for (item, is_prefix) in items {
                        if is_prefix {
                            next.extend(shard.descend_into(&item));
                        } else if shard.owns(&item) {
                            next.push(ListPart::Keys {
                                prefix: item.clone(),
                                start_after: None,
                                end: Some(item),
                            });
                        }
                    }
                    next.reverse();
                    work.extend(next);
                }
            }
        }
        taken
    }
}
