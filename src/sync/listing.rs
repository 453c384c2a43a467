//! Listing one shard's part of a bucket: sends the requests [`Shard::parts`] and
//! [`Shard::descend_into`] ask for and queues the owned objects, page by page, in key order.
//!
//! An unsharded sync sends one plain listing per rule prefix, as before. A shard by prefix
//! walks the `/`-delimited levels down to its depth and then lists only its own groups; a shard
//! by range starts at `StartAfter` and stops after its upper boundary. Either way the keys
//! queued are exactly the owned keys under the rule prefixes, each once, so the shards'
//! `objects_listed` add up to the bucket's count.

use futures::SinkExt as _;
use futures::channel::mpsc;

use super::shard::ListPart;
use super::{Listed, ListingStop, SyncContext};
use crate::sink::Sink;
use crate::source::s3::ObjectEntry;
use crate::source::{ListRequest, ObjectStore};

/// Work left, newest on top: a listing request (from its continuation) or owned objects of a
/// delimiter page waiting for the groups that sort before them.
enum Work {
    List(ListPart, Option<String>),
    Queue(Vec<ObjectEntry>),
}

/// Lists the shard's part of `bucket` under every prefix and queues the owned objects, then
/// `Complete`. Stops early, without an error, when the decider is gone (the index failed; that
/// error is reported).
pub(super) async fn list_bucket<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    bucket: &str,
    prefixes: &[String],
    mut pages: mpsc::Sender<Listed>,
) -> Result<(), ListingStop> {
    let shard = ctx.shard;
    let mut work: Vec<Work> = prefixes
        .iter()
        .flat_map(|prefix| shard.parts(prefix))
        .map(|part| Work::List(part, None))
        .collect();
    work.reverse();
    while let Some(next) = work.pop() {
        let (part, continuation) = match next {
            Work::Queue(entries) => {
                if pages.send(Listed::Page(entries)).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            Work::List(part, continuation) => (part, continuation),
        };
        if ctx.cancel.is_cancelled() {
            return Err(ListingStop::Cancelled);
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
        let page = ctx
            .source
            .list_page(bucket, &request, continuation)
            .await
            .map_err(ListingStop::Failed)?;
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
                    work.push(Work::List(part, Some(continuation)));
                }
                if !entries.is_empty() {
                    // The rest of this part comes after these, so queue them now.
                    if pages.send(Listed::Page(entries)).await.is_err() {
                        return Ok(());
                    }
                }
            }
            ListPart::Walk { .. } => {
                if let Some(continuation) = page.continuation {
                    work.push(Work::List(part, Some(continuation)));
                }
                work.extend(walk_items(shard, page.entries, page.common_prefixes));
            }
        }
    }
    // The decider may be gone (an index error it reported): nothing left to tell it.
    let _ = pages.send(Listed::Complete).await;
    Ok(())
}

/// The work a delimiter page makes, in reverse key order (the stack's top is the first key):
/// runs of owned objects to queue and the owned groups (or deeper levels) to list.
fn walk_items(
    shard: &super::shard::Shard,
    entries: Vec<ObjectEntry>,
    common_prefixes: Vec<String>,
) -> Vec<Work> {
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
