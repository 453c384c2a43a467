//! Listing one shard's part of a bucket with ListObjectsV2: sends the requests [`Shard::parts`]
//! and [`Shard::descend_into`] ask for and yields the owned objects, page by page, in key
//! order, as a [`Listing`] (the seam an S3 Inventory implements too); [`feed`] hands any
//! listing's pages to the merge.
//!
//! An unsharded sync sends one plain listing per rule prefix, as before. A shard by prefix
//! walks the `/`-delimited levels down to its depth and then lists only its own groups; a shard
//! by range starts at `StartAfter` and stops after its upper boundary. Either way the keys
//! listed are exactly the owned keys under the rule prefixes, each once, so the shards'
//! `objects_listed` add up to the bucket's count.

use futures::SinkExt as _;
use futures::channel::mpsc;
use tokio_util::sync::CancellationToken;

use super::shard::{ListPart, Shard};
use crate::source::listing::{Freshness, Listing, Stopped};
use crate::source::s3::{ObjectEntry, SourceError};
use crate::source::{ListRequest, ObjectStore};

/// What a listing hands to the decisions: pages, then, if it reached its end, `Complete`.
/// A channel that closes without `Complete` is a listing that stopped early.
pub(super) enum Listed {
    Page(Vec<ObjectEntry>),
    Complete,
}

/// Work left, newest on top: a listing request (from its continuation) or owned objects of a
/// delimiter page waiting for the groups that sort before them.
enum Work {
    List(ListPart, Option<String>),
    Queue(Vec<ObjectEntry>),
}

/// The shard's part of a bucket under every prefix, listed with ListObjectsV2.
pub(super) struct ShardListing<'a, O> {
    source: &'a O,
    bucket: &'a str,
    shard: &'a Shard,
    cancel: &'a CancellationToken,
    work: Vec<Work>,
}

impl<'a, O: ObjectStore> ShardListing<'a, O> {
    /// The listing of `shard`'s part of `bucket` under `prefixes` (disjoint, in byte order).
    pub(super) fn new(
        source: &'a O,
        bucket: &'a str,
        prefixes: &[String],
        shard: &'a Shard,
        cancel: &'a CancellationToken,
    ) -> Self {
        let mut work: Vec<Work> = prefixes
            .iter()
            .flat_map(|prefix| shard.parts(prefix))
            .map(|part| Work::List(part, None))
            .collect();
        work.reverse();
        Self {
            source,
            bucket,
            shard,
            cancel,
            work,
        }
    }
}

impl<O: ObjectStore> Listing for ShardListing<'_, O> {
    type Error = SourceError;

    async fn next_page(&mut self) -> Result<Option<Vec<ObjectEntry>>, Stopped<SourceError>> {
        let shard = self.shard;
        while let Some(next) = self.work.pop() {
            let (part, continuation) = match next {
                Work::Queue(entries) => return Ok(Some(entries)),
                Work::List(part, continuation) => (part, continuation),
            };
            if self.cancel.is_cancelled() {
                return Err(Stopped::Cancelled);
            }
            let request = match &part {
                ListPart::Keys {
                    prefix,
                    start_after,
                    ..
                } => ListRequest {
                    prefix,
                    start_after: start_after.as_deref(),
                    delimited: false,
                },
                ListPart::Walk { prefix } => ListRequest {
                    prefix,
                    start_after: None,
                    delimited: true,
                },
            };
            let page = self
                .source
                .list_page(self.bucket, &request, continuation)
                .await?;
            match &part {
                ListPart::Keys { end, .. } => {
                    let mut entries = page.entries;
                    let before = entries.len();
                    if let Some(end) = end {
                        entries.retain(|entry| entry.key <= *end);
                    }
                    let past_end = entries.len() < before;
                    entries.retain(|entry| shard.owns(&entry.key));
                    if !past_end && let Some(continuation) = page.continuation {
                        self.work.push(Work::List(part, Some(continuation)));
                    }
                    if !entries.is_empty() {
                        // The rest of this part comes after these, so yield them now.
                        return Ok(Some(entries));
                    }
                }
                ListPart::Walk { .. } => {
                    if let Some(continuation) = page.continuation {
                        self.work.push(Work::List(part, Some(continuation)));
                    }
                    self.work
                        .extend(walk_items(shard, page.entries, page.common_prefixes));
                }
            }
        }
        Ok(None)
    }

    fn freshness(&self) -> Freshness {
        Freshness::Live
    }
}

/// Hands `listing`'s pages to the decisions, then `Complete` if it reached its end. Stops
/// early, without an error, when the decider is gone (the index failed; that error is
/// reported).
pub(super) async fn feed<L: Listing>(
    mut listing: L,
    mut pages: mpsc::Sender<Listed>,
) -> Result<(), Stopped<L::Error>> {
    while let Some(page) = listing.next_page().await? {
        if pages.send(Listed::Page(page)).await.is_err() {
            return Ok(());
        }
    }
    // The decider may be gone (an index error it reported): nothing left to tell it.
    let _ = pages.send(Listed::Complete).await;
    Ok(())
}

/// The work a delimiter page makes, in reverse key order (the stack's top is the first key):
/// runs of owned objects to queue and the owned groups (or deeper levels) to list.
fn walk_items(shard: &Shard, entries: Vec<ObjectEntry>, common_prefixes: Vec<String>) -> Vec<Work> {
    let mut items = Vec::new();
    let mut run: Vec<ObjectEntry> = Vec::new();
    let mut groups = common_prefixes.into_iter().peekable();
    for entry in entries {
        while let Some(group) = groups.next_if(|group| group.as_str() < entry.key.as_str()) {
            if !run.is_empty() {
                items.push(Work::Queue(std::mem::take(&mut run)));
            }
            items.extend(
                shard
                    .descend_into(&group)
                    .map(|part| Work::List(part, None)),
            );
        }
        if shard.owns(&entry.key) {
            run.push(entry);
        }
    }
    if !run.is_empty() {
        items.push(Work::Queue(run));
    }
    items.extend(groups.filter_map(|group| {
        shard
            .descend_into(&group)
            .map(|part| Work::List(part, None))
    }));
    items.reverse();
    items
}
