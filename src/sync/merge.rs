//! The streaming merge of a bucket's listing with what the index holds of it.
//!
//! S3 lists keys in the order of their UTF-8 bytes, and both sinks return a bucket's documents
//! in that same order ([`Sink::indexed_page`](crate::sink::Sink::indexed_page)), so the two
//! sides are walked together, page by page, like the merge step of a merge sort: a key on both
//! sides is compared by version; a key only in the listing is new; a key only in the index was
//! not listed (its document is to go, once the listing has completed). Memory holds a page of
//! each side, whatever the size of the bucket. This module is the pure part: no I/O, no async;
//! `sync/mod.rs` feeds it pages.
//!
//! A side that is not in order would make the merge wrong (a listed key taken for unlisted), so
//! both are checked as they come: a key that does not sort after the one before it stops the
//! merge with an error, and the bucket's sync deletes nothing.

use std::collections::VecDeque;

use crate::sink::IndexedEntry;

/// A side of the merge that broke the key order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// The listing returned a key that does not sort after the previous one.
    #[error(
        "the listing returned key {key:?} after {previous:?}, which is not in S3's key order \
         (UTF-8 bytes); the store does not list in order, so nothing was deleted"
    )]
    ListingOutOfOrder {
        /// The key before.
        previous: String,
        /// The key out of order.
        key: String,
    },
    /// The index returned a key that does not sort after the previous one.
    #[error(
        "the index returned key {key:?} after {previous:?}, which is not in key order; nothing \
         was deleted"
    )]
    IndexOutOfOrder {
        /// The key before.
        previous: String,
        /// The key out of order.
        key: String,
    },
}

/// Where a listed key stands in the index.
#[derive(Debug, PartialEq, Eq)]
pub enum Placement {
    /// The index pages read so far end before the key: read another, then place it again.
    NeedsIndexPage,
    /// The index holds the key.
    Indexed(IndexedEntry),
    /// The index does not hold the key.
    NotIndexed,
}

/// The state of one bucket's merge: the index entries read and not yet passed, and the last
/// key of each side (for the order checks).
pub struct Merge<'a> {
    /// Index entries read and not yet placed, in key order.
    pending: VecDeque<IndexedEntry>,
    /// The index has no more pages.
    index_done: bool,
    last_listed: Option<String>,
    last_indexed: Option<String>,
    /// Index entries taken into the merge (those `owns` accepts).
    indexed: u64,
    /// Which keys this sync is responsible for on the index side: entries it rejects are
    /// neither compared nor deleted.
    owns: &'a (dyn Fn(&str) -> bool + Sync),
}

impl<'a> Merge<'a> {
    /// A merge that considers the index entries whose key `owns` accepts.
    pub fn new(owns: &'a (dyn Fn(&str) -> bool + Sync)) -> Self {
        Self {
            pending: VecDeque::new(),
            index_done: false,
            last_listed: None,
            last_indexed: None,
            indexed: 0,
            owns,
        }
    }

    /// Takes the next page of the index; an empty page is its end.
    pub fn push_index_page(&mut self, page: Vec<IndexedEntry>) -> Result<(), MergeError> {
        if page.is_empty() {
            self.index_done = true;
            return Ok(());
        }
        for entry in page {
            if let Some(previous) = &self.last_indexed
                && entry.key.as_str() <= previous.as_str()
            {
                return Err(MergeError::IndexOutOfOrder {
                    previous: previous.clone(),
                    key: entry.key,
                });
            }
            self.last_indexed = Some(entry.key.clone());
            if (self.owns)(&entry.key) {
                self.indexed += 1;
                self.pending.push_back(entry);
            }
        }
        Ok(())
    }

    /// Records the next listed key, checking that it sorts after the previous one. Call once
    /// per listed key, before [`Merge::place`].
    pub fn listed(&mut self, key: &str) -> Result<(), MergeError> {
        if let Some(previous) = &self.last_listed
            && key <= previous.as_str()
        {
            return Err(MergeError::ListingOutOfOrder {
                previous: previous.clone(),
                key: key.to_owned(),
            });
        }
        self.last_listed = Some(key.to_owned());
        Ok(())
    }

    /// Places the listed `key`: index entries before it were not listed and go to `unlisted`.
    pub fn place(&mut self, key: &str, mut unlisted: impl FnMut(IndexedEntry)) -> Placement {
        while let Some(front) = self.pending.front() {
            match front.key.as_str().cmp(key) {
                std::cmp::Ordering::Less => {
                    if let Some(entry) = self.pending.pop_front() {
                        unlisted(entry);
                    }
                }
                std::cmp::Ordering::Equal => {
                    return self
                        .pending
                        .pop_front()
                        .map_or(Placement::NotIndexed, Placement::Indexed);
                }
                std::cmp::Ordering::Greater => return Placement::NotIndexed,
            }
        }
        if self.index_done {
            Placement::NotIndexed
        } else {
            Placement::NeedsIndexPage
        }
    }

    /// After a complete listing: every entry still pending was not listed. Returns whether the
    /// index is done; if not, read another page and call again.
    pub fn finish(&mut self, mut unlisted: impl FnMut(IndexedEntry)) -> bool {
        self.pending.drain(..).for_each(&mut unlisted);
        self.index_done
    }

    /// Index entries taken into the merge so far: once [`Merge::finish`] returned true, what
    /// the index held of the bucket (of the keys it owns) before this sync.
    pub fn indexed(&self) -> u64 {
        self.indexed
    }
}

/// What a whole merge found; [`merge_sorted`]'s answer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Merged {
    /// Every listed key with its index entry, if the index holds it.
    pub listed: Vec<(String, Option<IndexedEntry>)>,
    /// Index entries whose key was not listed, in key order.
    pub unlisted: Vec<IndexedEntry>,
    /// Index entries taken into the merge.
    pub indexed: u64,
}

/// Merges a whole listing with a whole index read in pages of `index_page` entries: the same
/// steps the sync takes page by page, in one call (for tests and tools).
pub fn merge_sorted(
    listing: impl IntoIterator<Item = String>,
    index: Vec<IndexedEntry>,
    index_page: usize,
    owns: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Merged, MergeError> {
    let mut pages = index
        .chunks(index_page.max(1))
        .map(<[IndexedEntry]>::to_vec);
    let mut next_page = move || pages.next().unwrap_or_default();
    let mut merge = Merge::new(owns);
    let mut merged = Merged::default();
    for key in listing {
        merge.listed(&key)?;
        let entry = loop {
            match merge.place(&key, |entry| merged.unlisted.push(entry)) {
                Placement::NeedsIndexPage => merge.push_index_page(next_page())?,
                Placement::Indexed(entry) => break Some(entry),
                Placement::NotIndexed => break None,
            }
        };
        merged.listed.push((key, entry));
    }
    while !merge.finish(|entry| merged.unlisted.push(entry)) {
        merge.push_index_page(next_page())?;
    }
    merged.indexed = merge.indexed();
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use proptest::prelude::*;
    use time::OffsetDateTime;

    use super::*;
    use crate::sink::{DocId, VersionStamp};

    fn entry(key: &str, version: u64) -> IndexedEntry {
        IndexedEntry {
            key: key.to_owned(),
            id: DocId::of("b", key),
            version: VersionStamp::of("e", OffsetDateTime::UNIX_EPOCH, version),
            last_modified: Some(OffsetDateTime::UNIX_EPOCH),
        }
    }

    fn everything(_: &str) -> bool {
        true
    }

    fn keys(entries: &[IndexedEntry]) -> Vec<&str> {
        entries.iter().map(|entry| entry.key.as_str()).collect()
    }

    #[test]
    fn a_table_of_merges() {
        struct Case {
            listing: &'static [&'static str],
            index: &'static [&'static str],
            indexed_listed: &'static [&'static str],
            unlisted: &'static [&'static str],
        }
        let cases = [
            Case {
                listing: &[],
                index: &[],
                indexed_listed: &[],
                unlisted: &[],
            },
            Case {
                listing: &["a", "b"],
                index: &[],
                indexed_listed: &[],
                unlisted: &[],
            },
            Case {
                listing: &[],
                index: &["a", "b"],
                indexed_listed: &[],
                unlisted: &["a", "b"],
            },
            Case {
                listing: &["a", "b"],
                index: &["a", "b"],
                indexed_listed: &["a", "b"],
                unlisted: &[],
            },
            Case {
                listing: &["b", "d"],
                index: &["a", "b", "c", "e"],
                indexed_listed: &["b"],
                unlisted: &["a", "c", "e"],
            },
            Case {
                listing: &["a", "c", "e"],
                index: &["b", "d"],
                indexed_listed: &[],
                unlisted: &["b", "d"],
            },
            // A key is a prefix of the next: "a" < "a/" < "a/b" < "a0" < "b".
            Case {
                listing: &["a", "a/b", "b"],
                index: &["a/", "a/b", "a0"],
                indexed_listed: &["a/b"],
                unlisted: &["a/", "a0"],
            },
            // Byte order, not char or UTF-16 order: U+FF61 (EF BD A1) sorts before U+1F600
            // (F0 9F 98 80), though UTF-16 puts the surrogate pair D83D first.
            Case {
                listing: &["Z", "é", "｡", "😀"],
                index: &["é", "😀"],
                indexed_listed: &["é", "😀"],
                unlisted: &[],
            },
        ];
        for case in cases {
            for page in [1, 2, 3, 1000] {
                let index: Vec<IndexedEntry> = case.index.iter().map(|key| entry(key, 1)).collect();
                let listing = case.listing.iter().map(|key| (*key).to_owned());
                let merged = merge_sorted(listing, index, page, &everything).unwrap();
                let found: Vec<&str> = merged
                    .listed
                    .iter()
                    .filter(|(_, entry)| entry.is_some())
                    .map(|(key, _)| key.as_str())
                    .collect();
                assert_eq!(
                    found, case.indexed_listed,
                    "{:?} / {:?}",
                    case.listing, case.index
                );
                assert_eq!(
                    keys(&merged.unlisted),
                    case.unlisted,
                    "{:?} / {:?}",
                    case.listing,
                    case.index
                );
                assert_eq!(merged.indexed, case.index.len() as u64);
            }
        }
    }

    #[test]
    fn keys_not_owned_are_neither_compared_nor_unlisted() {
        let owns = |key: &str| !key.starts_with("other/");
        let index = vec![
            entry("a", 1),
            entry("other/b", 1),
            entry("other/c", 1),
            entry("z", 1),
        ];
        let listing = ["a", "other/c"].map(str::to_owned);
        let merged = merge_sorted(listing, index, 1, &owns).unwrap();
        assert_eq!(merged.listed[0].1, Some(entry("a", 1)));
        assert_eq!(merged.listed[1].1, None);
        assert_eq!(keys(&merged.unlisted), ["z"]);
        assert_eq!(merged.indexed, 2);
    }

    #[test]
    fn a_side_out_of_order_stops_the_merge() {
        let listing = ["a", "c", "b"].map(str::to_owned);
        assert_eq!(
            merge_sorted(listing, vec![], 10, &everything),
            Err(MergeError::ListingOutOfOrder {
                previous: "c".into(),
                key: "b".into()
            })
        );
        let twice = ["a", "a"].map(str::to_owned);
        assert!(matches!(
            merge_sorted(twice, vec![], 10, &everything),
            Err(MergeError::ListingOutOfOrder { .. })
        ));
        // The index out of order across a page boundary is caught too.
        let index = vec![entry("a", 1), entry("c", 1), entry("b", 1)];
        assert_eq!(
            merge_sorted(Vec::new(), index, 2, &everything),
            Err(MergeError::IndexOutOfOrder {
                previous: "c".into(),
                key: "b".into()
            })
        );
    }

    /// Keys from a small alphabet that mixes one-, two-, three- and four-byte characters (so
    /// that byte order, char order and UTF-16 order disagree) and prefixes of each other.
    fn odd_key() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("a"),
                Just("/"),
                Just("Z"),
                Just("é"),
                Just("｡"),
                Just("😀"),
                Just(" "),
                Just("+")
            ],
            1..5,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(crate::proptest_config::with_cases(500))]

        /// The merge finds what a map of the index finds: each listed key's entry, and the
        /// index entries of keys not listed.
        #[test]
        fn the_merge_agrees_with_a_map_of_the_index(
            listed in proptest::collection::btree_set(odd_key(), 0..40),
            indexed in proptest::collection::btree_map(odd_key(), 0u64..3, 0..40),
            page in 1usize..7,
        ) {
            let index: Vec<IndexedEntry> =
                indexed.iter().map(|(key, version)| entry(key, *version)).collect();
            let oracle: HashMap<&str, &IndexedEntry> =
                index.iter().map(|entry| (entry.key.as_str(), entry)).collect();
            // BTreeSet<String> iterates in `str` order, which is UTF-8 byte order: S3's.
            let merged = merge_sorted(listed.iter().cloned(), index.clone(), page, &everything).unwrap();

            prop_assert_eq!(merged.listed.len(), listed.len());
            for (key, found) in &merged.listed {
                prop_assert_eq!(found.as_ref(), oracle.get(key.as_str()).copied());
            }
            let unlisted: BTreeSet<&str> = keys(&merged.unlisted).into_iter().collect();
            let expected: BTreeSet<&str> =
                oracle.keys().copied().filter(|key| !listed.contains(*key)).collect();
            prop_assert_eq!(unlisted, expected);
            prop_assert_eq!(merged.indexed, index.len() as u64);
        }
    }
}
