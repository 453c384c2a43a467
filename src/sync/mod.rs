//! Sync orchestration: the one place that knows every stage.
//!
//! A full sync of a connector: resolve its buckets, then for each bucket walk its listing and
//! the index's documents of it side by side in key order ([`merge`]; memory holds a page of
//! each, not the bucket), skip unchanged objects without downloading them, download and
//! extract new and changed ones (bounded by `concurrency` and, with the documents waiting for
//! the writer, by a budget of bytes: `queue.rs`), write documents in batches, and
//! finally delete the documents whose objects the listing did not return (their ids wait in
//! [`doomed`], spilled to disk past a few thousand), but only when that bucket's listing
//! completed without error. Buckets that left the connector's selection lose
//! their documents too, but only when every bucket of the selection listed completely in that
//! same sync (a typo'd bucket name must not wipe the bucket it replaced). Deletions that would
//! remove most of a bucket or of the index are held back by the mass-delete guard
//! ([`guard`]). Commits happen along the way, so a crash loses only uncommitted work and the
//! next sync converges.
//!
//! A sharded sync ([`shard`], `--shard I/N`) does all of this for its part of each bucket only:
//! it lists only the keys it owns (`listing.rs`), compares them with the indexed versions of the
//! keys it owns, and so deletes only inside its part, after that part's listing completed.
//!
//! Either listing is read through one seam, [`crate::source::listing::Listing`]: pages in key
//! order, then complete, failed or cancelled. ListObjectsV2 (`listing.rs`, which walks a
//! shard's part) or, with `inventory:`, the bucket's newest complete S3 Inventory
//! ([`crate::source::inventory`], checked whole and sorted before its first page). The merge,
//! the guard and the deletion rule do not care which: the listing's
//! [`Freshness`](crate::source::listing::Freshness) says whether its silence may delete a
//! document, so an inventory is never the reason to delete a document whose object is newer
//! than it. No usable inventory: the bucket is listed and `inventory_fallbacks` counted.

pub mod doomed;
mod embedding;
#[cfg(test)]
mod embedding_scenarios;
pub mod guard;
mod index_scan;
#[cfg(test)]
mod inventory_scenarios;
mod listing;
pub mod merge;
pub mod pipeline;
pub mod plan;
mod queue;
pub mod report;
#[cfg(test)]
mod scenarios;
pub mod shard;
pub mod shard_plan;
pub mod target;
#[cfg(test)]
mod tests;
pub mod touched;

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::channel::mpsc;
use futures::future::Either;
use futures::{SinkExt as _, StreamExt as _};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::{BucketSelection, ConnectorConfig};
use crate::embed::Embedder;
use crate::extract::{self, ExtractError, ExtractLimits, Extracted, ObjectInput};
use crate::rules;
use crate::sink::{
    Attributes, ContentStatus, DocId, Document, IndexSource, IndexedEntry, IndexedPage, Sink,
    SinkError, VersionStamp,
};
use crate::source::ObjectStore;
use crate::source::inventory::{self, InventoryError};
use crate::source::listing::{Freshness, Listing, Stopped};
use crate::source::s3::{Fetched, ObjectEntry, SourceError};
use doomed::Doomed;
use embedding::ModelCheck;
use guard::DeleteVerdict;
use index_scan::IndexScan;
use listing::Listed;
use merge::{Merge, MergeError, Placement};
pub use pipeline::Pipeline;
use plan::{Change, ContentPlan, Decision, Limits};
use queue::{ByteBudget, Reserved};
pub use report::{Counters, SyncReport};
pub use shard::{ConfigShards, Shard, ShardSpec};

/// Documents written between two commits inside one bucket.
const COMMIT_EVERY: u64 = 10_000;

/// Bytes of text that make a batch full whatever its document count, so that large documents
/// never pile up in memory waiting for a batch to fill.
const BATCH_MAX_TEXT_BYTES: usize = 8 * 1024 * 1024;

/// Bytes the downloads in flight and the documents waiting for the writer hold together (objects
/// as listed while downloading, then their text; `queue.rs`): two batches' worth of text, so that
/// large objects cannot fill the queue with `concurrency` times the largest of them.
const QUEUE_MAX_BYTES: usize = 2 * BATCH_MAX_TEXT_BYTES;

/// Listing pages fetched ahead of the decisions: the next request is in flight while a page
/// is decided.
const PAGES_AHEAD: usize = 2;

/// Pages of the index's side of the merge read ahead of the decisions.
const INDEX_PAGES_AHEAD: usize = 2;

/// Why a bucket's sync stopped early.
#[derive(Debug, thiserror::Error)]
enum BucketError {
    #[error("listing failed, so nothing was deleted from bucket {bucket}: {source}")]
    Listing {
        bucket: String,
        #[source]
        source: SourceError,
    },
    #[error(
        "its S3 Inventory could not be used, so nothing was deleted from bucket {bucket}: {source}"
    )]
    Inventory {
        bucket: String,
        #[source]
        source: InventoryError,
    },
    #[error("writing to the index failed: {0}")]
    Sink(#[from] SinkError),
    #[error("the sync was cancelled before the listing completed; nothing was deleted")]
    Cancelled,
    /// The mass-delete guard held the bucket's deletions back; the text says why and what to do.
    #[error("{0}")]
    MassDeleteHeldBack(String),
    #[error("{0}")]
    Merge(#[from] MergeError),
    #[error("the listing was not merged with the index to its end, so nothing was deleted")]
    Unmerged,
    #[error("buffering the ids of documents to delete failed, so nothing was deleted: {0}")]
    Doomed(#[from] io::Error),
}

/// The mass-delete guard's error text: what the deletion was, and both ways out.
fn mass_delete_message(what: &str, max_fraction: f64) -> String {
    format!(
        "{what}, more than max_delete_fraction ({max_fraction}) allows, so the mass-delete guard deleted none of them \
         (additions and updates were written). If these deletions are intended, run `s3-connector sync --allow-mass-delete` \
         once, or raise max_delete_fraction (1.0 turns the guard off)"
    )
}

/// Why removing the documents of unselected buckets failed.
#[derive(Debug, thiserror::Error)]
enum RemovalError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("buffering the ids of documents to delete failed, so nothing was deleted: {0}")]
    Doomed(io::Error),
}

/// One object to write, handed from the listing to the download workers.
struct Job {
    id: DocId,
    entry: ObjectEntry,
    change: Change,
    content: ContentPlan,
}

/// What a download worker made of a job.
enum Outcome {
    /// Write this document.
    Write(Box<Document>, Change),
    /// The object vanished after it was listed; delete its document if it had one.
    Gone(DocId, Change),
    /// The download failed or was not started before shutdown; the index keeps what it had,
    /// and the next sync tries again.
    Failed,
}

impl Job {
    /// Bytes its download brings into memory: the object's listed size, when it is downloaded.
    fn download_bytes(&self) -> u64 {
        match self.content {
            ContentPlan::Fetch(_) => self.entry.size,
            ContentPlan::Empty | ContentPlan::MetadataOnly(_) => 0,
        }
    }
}

impl Outcome {
    /// Bytes of text its document holds.
    fn text_bytes(&self) -> u64 {
        match self {
            Self::Write(document, _) => document.text_len() as u64,
            Self::Gone(..) | Self::Failed => 0,
        }
    }

    /// The outcome with the object's metadata and tags on its document.
    fn with_attributes(self, attributes: Attributes) -> Self {
        match self {
            Self::Write(mut document, change) => {
                document.attributes = attributes;
                Self::Write(document, change)
            }
            other => other,
        }
    }
}

/// Everything a sync of one connector needs.
pub struct SyncContext<'a, O: ObjectStore, S: Sink> {
    /// The connector's settings.
    pub connector: &'a ConnectorConfig,
    /// Its object store (the S3 client).
    pub source: &'a O,
    /// Its index.
    pub sink: &'a S,
    /// Live counters, readable by a progress display while the sync runs.
    pub counters: &'a Counters,
    /// Cancelled on shutdown: no new listing page or download starts, downloads in flight
    /// finish, what is complete is committed, and nothing is deleted.
    pub cancel: &'a CancellationToken,
    /// Lets this one sync delete past the mass-delete guard (`sync --allow-mass-delete`).
    pub allow_mass_delete: bool,
    /// Lets this one sync write an index bound to another source, re-binding it
    /// (`sync --retarget`); see [`target`].
    pub retarget: bool,
    /// The part of each bucket this sync owns ([`Shard::whole`] when unsharded): it lists,
    /// writes and deletes only there.
    pub shard: &'a Shard,
    /// The model of the connector's `embedding:` block, built at the edge (CLI, worker)
    /// through [`crate::embed::for_connector`]; `None`, or a connector without `embedding:`:
    /// documents without passages or vectors.
    pub embedder: Option<&'a Arc<dyn Embedder>>,
    /// Rebuilds every vector (`sync --reembed`): every object is downloaded and embedded
    /// again, no vector is reused, and an index that records another model is re-bound to
    /// this one. Without it, a sync whose model differs from the index's is refused.
    pub reembed: bool,
}

/// Runs one full sync of the connector and reports what it did. Errors are counted in the
/// report, never raised: one failing bucket does not stop the others.
pub async fn sync_connector<O: ObjectStore, S: Sink>(ctx: &SyncContext<'_, O, S>) -> SyncReport {
    let started_at = OffsetDateTime::now_utc();
    let index_retries_before = ctx.sink.retries();
    let connector = ctx.connector;
    tracing::info!(message = "Sync started.", connector = %connector.id, shard = %ctx.shard.label());
    let checked = match check_target(ctx).await {
        Ok(bound) => embedding::check_model(ctx)
            .await
            .map(|model| (bound, model)),
        Err(refusal) => Err(refusal),
    };
    let (bound, model) = match checked {
        Ok(checked) => checked,
        Err(refusal) => {
            ctx.counters.error(refusal);
            return SyncReport::from_counters(
                &connector.id,
                ctx.counters,
                ctx.source.stats(),
                started_at,
            );
        }
    };
    let ctx = &SyncContext {
        reembed: rebuilds_every_vector(ctx, &model).await,
        ..*ctx
    };
    let embedding_retries_before = ctx.embedder.map_or(0, |embedder| embedder.retries());
    if let Some(selection) = resolve_buckets(ctx).await {
        // Buckets of the selection that did not list completely in this sync.
        let mut unlisted = selection.unlisted.clone();
        // Documents the synced buckets held before this sync.
        let mut indexed_before = 0;
        for bucket in &selection.to_sync {
            match sync_bucket(ctx, bucket).await {
                Ok(indexed) => indexed_before += indexed,
                Err(BucketError::Cancelled) => break,
                Err(error) => {
                    unlisted.insert(bucket.clone());
                    ctx.counters.error(format!("bucket {bucket}: {error}"));
                }
            }
        }
        if !ctx.cancel.is_cancelled() {
            let removal = if unlisted.is_empty() {
                remove_unselected_buckets(ctx, &selection.keep, indexed_before).await
            } else {
                keep_unselected_buckets(ctx, &selection.keep, &unlisted).await
            };
            if let Err(error) = removal {
                ctx.counters
                    .error(format!("removing documents of unselected buckets: {error}"));
            }
        }
    }
    tracing::debug!(message = "Committing.");
    if let Err(error) = ctx.sink.commit().await {
        ctx.counters.error(format!("commit failed: {error}"));
    } else if !bound && ctx.counters.errors_besides_embedding() == 0 && !ctx.cancel.is_cancelled() {
        // Only a complete sync re-binds the index: a failed one proves nothing of the new source.
        bind_target(ctx).await;
    }
    if model != ModelCheck::Off && model != ModelCheck::Same {
        record_model(ctx).await;
    }
    if let Some(embedder) = ctx.embedder {
        let retries = embedder.retries().saturating_sub(embedding_retries_before);
        ctx.counters
            .embedding_retries
            .fetch_add(retries, Ordering::Relaxed);
    }
    let mut report =
        SyncReport::from_counters(&connector.id, ctx.counters, ctx.source.stats(), started_at);
    report.cancelled = ctx.cancel.is_cancelled();
    report.shard = (!ctx.shard.is_whole()).then(|| ctx.shard.label());
    report.index_retries = ctx.sink.retries().saturating_sub(index_retries_before);
    tracing::info!(
        message = "Sync finished.",
        connector = %connector.id,
        added = report.added,
        updated = report.updated,
        unchanged = report.unchanged,
        deleted = report.deleted,
        deletions_held_back = report.deletions_held_back,
        errors = report.errors,
        cancelled = report.cancelled,
        duration_ms = report.duration_ms
    );
    report
}

/// The retarget guard before a sync: `Ok(true)` when the index already records this
/// connector's source, `Ok(false)` when it records none or a changed one (recorded after the
/// sync), `Err` with the refusal when it records another source and the sync may not retarget.
async fn check_target<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
) -> Result<bool, String> {
    let wanted = IndexSource::of(ctx.connector);
    let recorded = match ctx.sink.recorded_source().await {
        Ok(recorded) => recorded,
        Err(error) => {
            return Err(format!(
                "cannot read the source the index records, so nothing was synced: {error}"
            ));
        }
    };
    match recorded {
        None => Ok(false),
        Some(recorded) => match target::compare(&recorded, &wanted) {
            target::Verdict::Same => Ok(true),
            target::Verdict::Changed => Ok(false),
            target::Verdict::Elsewhere if ctx.retarget => {
                tracing::warn!(message = "Re-targeting the index to a new source.", connector = %ctx.connector.id, from = %recorded, to = %wanted);
                Ok(false)
            }
            target::Verdict::Elsewhere => {
                // An emptied index (every document deleted) mixes nothing.
                match ctx.sink.indexed_buckets().await {
                    Ok(buckets) if buckets.is_empty() => Ok(false),
                    _ => Err(target::refusal(
                        ctx.connector.index_name(),
                        &recorded,
                        &wanted,
                    )),
                }
            }
        },
    }
}

/// Whether this sync rebuilds every vector: `--reembed`, or the first sync with `embedding:`
/// of an index that already holds documents (synced without it: their objects are unchanged,
/// so nothing else would ever embed them).
async fn rebuilds_every_vector<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    model: &ModelCheck,
) -> bool {
    match model {
        ModelCheck::Off => false,
        ModelCheck::Same => ctx.reembed,
        ModelCheck::Replaced(_) => true,
        ModelCheck::Unrecorded => {
            ctx.reembed
                || ctx
                    .sink
                    .indexed_buckets()
                    .await
                    .map_or(true, |buckets| !buckets.is_empty())
        }
    }
}

/// Records the connector's embedding model in its index after a sync that embedded every
/// document it had to: not cancelled, no failure but documents whose embedding failed (they
/// hold no vector, and the next sync embeds them). A sync short of that leaves the record as
/// it was, so the next one rebuilds (or refuses) again.
async fn record_model<O: ObjectStore, S: Sink>(ctx: &SyncContext<'_, O, S>) {
    let Some(embedder) = ctx.embedder else {
        return;
    };
    if ctx.cancel.is_cancelled() || ctx.counters.errors_besides_embedding() > 0 {
        return;
    }
    if let Err(error) = ctx.sink.record_model(embedder.model()).await {
        ctx.counters.error(format!(
            "cannot record the index's embedding model: {error}"
        ));
    }
}

/// Records the connector's source in its index once the index holds documents.
async fn bind_target<O: ObjectStore, S: Sink>(ctx: &SyncContext<'_, O, S>) {
    let holds_documents = match ctx.sink.indexed_buckets().await {
        Ok(buckets) => !buckets.is_empty(),
        Err(error) => {
            ctx.counters.error(format!(
                "cannot read the index's buckets to record its source: {error}"
            ));
            return;
        }
    };
    if holds_documents
        && let Err(error) = ctx
            .sink
            .record_source(&IndexSource::of(ctx.connector))
            .await
    {
        ctx.counters
            .error(format!("cannot record the index's source: {error}"));
    }
}

/// The buckets a sync covers.
struct Selection {
    /// Buckets to sync.
    to_sync: BTreeSet<String>,
    /// Buckets whose documents stay even if they are not synced now (their region could not
    /// be found): everything in `to_sync` and those.
    keep: BTreeSet<String>,
    /// Buckets of the selection that will not be listed in this sync (region unknown, or named
    /// by the rules but missing from ListBuckets).
    unlisted: BTreeSet<String>,
}

/// The buckets to sync; `None` (and an error counted) when they cannot be known. For
/// `buckets: ["*"]` each listed bucket's region is located, so its calls go to the right
/// regional endpoint; a bucket whose region cannot be found is reported and skipped.
async fn resolve_buckets<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
) -> Option<Selection> {
    let selection = &ctx.connector.buckets;
    let listed = match selection {
        BucketSelection::Named(_) => Vec::new(),
        BucketSelection::All => match ctx.source.list_buckets().await {
            Ok(names) => names,
            Err(error) => {
                ctx.counters.error(format!(
                    "cannot list buckets, so nothing was synced or deleted: {error}"
                ));
                return None;
            }
        },
    };
    let plan = plan::plan_buckets(selection, &listed, &ctx.connector.rules);
    for missing in &plan.missing {
        ctx.counters.error(format!(
            "bucket {missing}: the sync rules name it, but ListBuckets does not return it; nothing was synced or deleted for it"
        ));
    }
    let keep = plan.selected;
    let mut unlisted = plan.missing;
    if let BucketSelection::Named(_) = selection {
        return Some(Selection {
            to_sync: keep.clone(),
            keep,
            unlisted,
        });
    }
    let mut to_sync = BTreeSet::new();
    for bucket in &keep {
        match ctx.source.locate_bucket(bucket).await {
            Ok(()) => {
                to_sync.insert(bucket.clone());
            }
            Err(error) => {
                ctx.counters.error(format!(
                    "bucket {bucket}: its region cannot be found, so it was skipped (nothing synced or deleted): {error}"
                ));
                unlisted.insert(bucket.clone());
            }
        }
    }
    Some(Selection {
        to_sync,
        keep,
        unlisted,
    })
}

/// The indexed buckets that are no longer selected: their documents are to go.
async fn unselected_buckets<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    keep: &BTreeSet<String>,
) -> Result<Vec<String>, SinkError> {
    let rules = &ctx.connector.rules;
    let mut unselected = ctx.sink.indexed_buckets().await?;
    // A bucket named by the rules but missing from ListBuckets may be a passing failure: keep
    // its documents.
    unselected
        .retain(|bucket| !keep.contains(bucket) && !rules.buckets().contains(bucket.as_str()));
    Ok(unselected)
}

/// Deletes every document of buckets that are indexed but no longer selected, unless the
/// mass-delete guard holds them back. `indexed_selected` is what the selected buckets held
/// before this sync: with the unselected buckets' documents, the whole index.
async fn remove_unselected_buckets<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    keep: &BTreeSet<String>,
    indexed_selected: u64,
) -> Result<(), RemovalError> {
    let mut doomed: Vec<(String, Doomed)> = Vec::new();
    for bucket in unselected_buckets(ctx, keep).await? {
        // A shard removes only its own part of a bucket that left the selection.
        let mut ids = Doomed::default();
        let mut scan = IndexScan::new(ctx.shard, &bucket, ctx.sink.scan_page_size());
        loop {
            let page = scan.next_page(ctx.sink).await?;
            if page.is_empty() {
                break;
            }
            for entry in page.into_iter().filter(|entry| ctx.shard.owns(&entry.key)) {
                ids.push(entry.id).map_err(RemovalError::Doomed)?;
            }
        }
        doomed.push((bucket, ids));
    }
    let to_delete: u64 = doomed.iter().map(|(_, ids)| ids.len()).sum();
    let indexed = indexed_selected + to_delete;
    let max_fraction = ctx.connector.max_delete_fraction;
    let verdict =
        guard::mass_delete_verdict(to_delete, indexed, max_fraction, ctx.allow_mass_delete);
    if verdict == DeleteVerdict::HoldBack {
        let buckets: Vec<&str> = doomed.iter().map(|(bucket, _)| bucket.as_str()).collect();
        ctx.counters
            .deletions_held_back
            .fetch_add(to_delete, Ordering::Relaxed);
        ctx.counters.error(mass_delete_message(
            &format!(
                "buckets that left the selection ({}) would lose {to_delete} of the index's {indexed} documents",
                buckets.join(", ")
            ),
            max_fraction,
        ));
        return Ok(());
    }
    for (bucket, ids) in doomed {
        let count = ids.len();
        tracing::debug!(message = "Deleting the documents of an unselected bucket.", bucket = %bucket, count);
        for chunk in ids.into_chunks().map_err(RemovalError::Doomed)? {
            ctx.sink
                .delete(chunk.map_err(RemovalError::Doomed)?)
                .await?;
        }
        ctx.counters.deleted.fetch_add(count, Ordering::Relaxed);
        tracing::info!(message = "Removed the documents of a bucket that is no longer synced.", bucket = %bucket, count);
    }
    Ok(())
}

/// Says why the documents of buckets that left the selection stay: some bucket of the
/// selection did not list completely, and the selection may be wrong (a typo'd bucket name)
/// rather than intended.
async fn keep_unselected_buckets<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    keep: &BTreeSet<String>,
    unlisted: &BTreeSet<String>,
) -> Result<(), RemovalError> {
    let unselected = unselected_buckets(ctx, keep).await?;
    if !unselected.is_empty() {
        let unlisted: Vec<&str> = unlisted.iter().map(String::as_str).collect();
        tracing::warn!(
            message = "Kept the documents of buckets that left the selection, because not every selected bucket listed completely.",
            kept_buckets = %unselected.join(", "),
            unlisted_buckets = %unlisted.join(", "),
        );
    }
    Ok(())
}

/// Syncs one bucket: listing, reading the index, deciding, downloads and writes run
/// concurrently; deletes come last. Returns how many documents the bucket had in the index
/// before.
async fn sync_bucket<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    bucket: &str,
) -> Result<u64, BucketError> {
    let connector = ctx.connector;
    // Disjoint and in byte order (`SyncRules::list_prefixes`), so the listings of the prefixes,
    // one after another, are one sorted listing: the merge walks the whole bucket's index beside
    // it, and documents outside every prefix are unlisted, as they should be.
    let prefixes = connector.rules.list_prefixes(bucket);
    // The keys this sync answers for on the index side (a shard's part; every key when
    // unsharded): the others are neither compared nor deleted.
    let owns = |key: &str| ctx.shard.owns(key);
    let (pages, page_queue) = mpsc::channel::<Listed>(PAGES_AHEAD);
    let (index_pages, index_queue) = mpsc::channel(INDEX_PAGES_AHEAD);
    let (jobs, job_queue) = mpsc::channel::<Job>(connector.concurrency * 2);
    // With `inventory:`, the newest complete inventory stands in for the listing; it is read,
    // checked and sorted before the first page, so a bad one fails before anything is written.
    let from_inventory = match &connector.inventory {
        Some(settings) => {
            match Box::pin(inventory::prepare(ctx.source, settings, bucket, ctx.cancel)).await {
                Ok(None) => {
                    Counters::bump(&ctx.counters.inventory_fallbacks);
                    None
                }
                Ok(found) => found,
                Err(InventoryError::Cancelled) => return Err(BucketError::Cancelled),
                Err(source) => {
                    return Err(BucketError::Inventory {
                        bucket: bucket.to_owned(),
                        source,
                    });
                }
            }
        }
        None => None,
    };
    // The listing, either kind; its freshness says what its silence may delete.
    let shard = ctx.shard;
    let (freshness, listing) = match from_inventory {
        Some(from) => {
            let listing = from.listing(&prefixes, move |key: &str| shard.owns(key));
            let (freshness, fed) = start_listing(listing, pages, |source| BucketError::Inventory {
                bucket: bucket.to_owned(),
                source,
            });
            (freshness, Either::Left(fed))
        }
        None => {
            let listing =
                listing::ShardListing::new(ctx.source, bucket, &prefixes, shard, ctx.cancel);
            let (freshness, fed) = start_listing(listing, pages, |source| BucketError::Listing {
                bucket: bucket.to_owned(),
                source,
            });
            (freshness, Either::Right(fed))
        }
    };
    let reading = read_index(ctx, bucket, index_pages);
    let mut merge = Merge::new(&owns);
    let mut doomed = Doomed::default();
    let deciding = decide_pages(
        ctx,
        bucket,
        &mut merge,
        &mut doomed,
        freshness,
        index_queue,
        page_queue,
        jobs,
    );
    let writing = write_documents(ctx, bucket, job_queue);
    let (listed, (), decided, written) = tokio::join!(listing, reading, deciding, writing);
    written?;
    let merged = decided?;
    listed?;
    // A shutdown that came after the last page still means "delete nothing".
    if ctx.cancel.is_cancelled() {
        return Err(BucketError::Cancelled);
    }
    if !merged {
        // Only a writer that stopped on an index error (reported above) ends the decisions
        // early after a complete listing; guard against it all the same.
        return Err(BucketError::Unmerged);
    }
    // The listing was complete and merged with the whole index: `doomed` holds what is no
    // longer in the bucket.
    let indexed_before = merge.indexed();
    let to_delete = doomed.len();
    let max_fraction = ctx.connector.max_delete_fraction;
    let verdict = guard::mass_delete_verdict(
        to_delete,
        indexed_before,
        max_fraction,
        ctx.allow_mass_delete,
    );
    let held_back = verdict == DeleteVerdict::HoldBack;
    if held_back {
        ctx.counters
            .deletions_held_back
            .fetch_add(to_delete, Ordering::Relaxed);
    } else if to_delete > 0 {
        tracing::debug!(
            message = "Deleting documents that left the bucket.",
            bucket,
            count = to_delete
        );
        for chunk in doomed.into_chunks()? {
            ctx.sink.delete(chunk?).await?;
        }
        ctx.counters.deleted.fetch_add(to_delete, Ordering::Relaxed);
    }
    // Additions and updates stay, whatever the guard said.
    tracing::debug!(message = "Committing.", bucket);
    ctx.sink.commit().await?;
    if held_back {
        return Err(BucketError::MassDeleteHeldBack(mass_delete_message(
            &format!(
                "its listing would delete {to_delete} of its {indexed_before} indexed documents"
            ),
            max_fraction,
        )));
    }
    Ok(indexed_before)
}

/// What `listing`'s silence proves ([`Listing::freshness`]), and the feeding of its pages to
/// the decisions, which ends with the bucket's error if the listing stopped early (`failed`
/// names a failure; a cancelled listing is [`BucketError::Cancelled`]).
fn start_listing<L: Listing>(
    listing: L,
    pages: mpsc::Sender<Listed>,
    failed: impl FnOnce(L::Error) -> BucketError,
) -> (Freshness, impl Future<Output = Result<(), BucketError>>) {
    let freshness = listing.freshness();
    let fed = async move {
        listing::feed(listing, pages)
            .await
            .map_err(|stop| match stop {
                Stopped::Failed(error) => failed(error),
                Stopped::Cancelled => BucketError::Cancelled,
            })
    };
    (freshness, fed)
}

/// Reads the index's documents of the bucket in key order, a page at a time, ahead of the
/// decisions; ends with an empty page, or with the error that stopped it. Stops when the
/// decider is gone.
async fn read_index<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    bucket: &str,
    mut pages: mpsc::Sender<IndexedPage>,
) {
    let mut scan = IndexScan::new(ctx.shard, bucket, ctx.sink.scan_page_size());
    loop {
        let page = scan.next_page(ctx.sink).await;
        let over = page.as_ref().map_or(true, Vec::is_empty);
        if pages.send(page).await.is_err() || over {
            return;
        }
    }
}

/// The next page of the index into the merge.
async fn next_index_page(
    merge: &mut Merge<'_>,
    index_queue: &mut mpsc::Receiver<IndexedPage>,
) -> Result<(), BucketError> {
    match index_queue.next().await {
        Some(page) => merge.push_index_page(page?)?,
        // The reader always ends with an empty page or an error; treat a closed queue as the
        // end, which can only delete less.
        None => merge.push_index_page(Vec::new())?,
    }
    Ok(())
}

/// Decides each listed object against the index (merging the two in key order) and queues the
/// ones to write; index documents the listing passed without returning, or whose object the
/// rules now exclude, go to `doomed`. Returns whether the listing completed and was merged with
/// the whole index (then `doomed` is complete); false when the listing or the writer stopped
/// early. `freshness` is what the listing's silence proves: for an inventory (a snapshot),
/// documents of objects modified since its creation (less its `deletion_grace`) are kept, and
/// not downloaded again for the inventory's older version.
#[allow(clippy::too_many_arguments)]
async fn decide_pages<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    bucket: &str,
    merge: &mut Merge<'_>,
    doomed: &mut Doomed,
    freshness: Freshness,
    mut index_queue: mpsc::Receiver<IndexedPage>,
    mut page_queue: mpsc::Receiver<Listed>,
    mut jobs: mpsc::Sender<Job>,
) -> Result<bool, BucketError> {
    let counters = ctx.counters;
    let limits = Limits {
        max_content_bytes: ctx.connector.max_content_bytes,
    };
    let rules = &ctx.connector.rules;
    // Index entries the merge passed without their key being listed.
    let mut passed: Vec<IndexedEntry> = Vec::new();
    // An unlisted document goes, unless the listing is a snapshot (an inventory) and the
    // object was modified after it was made.
    let doom_unlisted = |doomed: &mut Doomed, entry: IndexedEntry| -> io::Result<()> {
        if freshness.may_delete_unlisted(entry.last_modified) {
            doomed.push(entry.id)
        } else {
            Counters::bump(&counters.kept_after_inventory);
            Ok(())
        }
    };
    loop {
        let page = match page_queue.next().await {
            Some(Listed::Page(page)) => page,
            Some(Listed::Complete) => break,
            None => return Ok(false),
        };
        for entry in page {
            Counters::bump(&counters.objects_listed);
            merge.listed(&entry.key)?;
            let indexed = loop {
                match merge.place(&entry.key, |entry| passed.push(entry)) {
                    Placement::NeedsIndexPage => next_index_page(merge, &mut index_queue).await?,
                    Placement::Indexed(indexed) => break Some(indexed),
                    Placement::NotIndexed => break None,
                }
            };
            for unlisted in passed.drain(..) {
                doom_unlisted(doomed, unlisted)?;
            }
            let id = DocId::of(bucket, &entry.key);
            let version = indexed.as_ref().map(|indexed| {
                if ctx.reembed {
                    // Rebuilding every vector: no indexed version is current.
                    VersionStamp::UNFINISHED
                } else {
                    indexed.version
                }
            });
            match plan::decide(bucket, &entry, version, rules, limits) {
                Decision::Excluded => {
                    Counters::bump(&counters.excluded);
                    // Indexed once, excluded by the rules now: its document goes.
                    if let Some(indexed) = indexed {
                        doomed.push(indexed.id)?;
                    }
                }
                Decision::Unchanged => Counters::bump(&counters.unchanged),
                Decision::Index { .. }
                    if freshness.index_is_ahead(
                        indexed.as_ref().and_then(|indexed| indexed.last_modified),
                        entry.last_modified,
                    ) =>
                {
                    Counters::bump(&counters.unchanged)
                }
                Decision::Index { change, content } => {
                    let job = Job {
                        id,
                        entry,
                        change,
                        content,
                    };
                    if jobs.send(job).await.is_err() {
                        // The writer stopped on an index error; it reports that error.
                        return Ok(false);
                    }
                }
            }
        }
    }
    // The listing completed: what the index holds beyond its last key was not listed either.
    loop {
        let done = merge.finish(|entry| passed.push(entry));
        for unlisted in passed.drain(..) {
            doom_unlisted(doomed, unlisted)?;
        }
        if done {
            return Ok(true);
        }
        next_index_page(merge, &mut index_queue).await?;
    }
}

/// Runs the download workers over the queued jobs and writes their documents in batches.
/// Downloads go on while a batch is embedded and written: their documents wait in a queue of
/// `concurrency` documents and [`QUEUE_MAX_BYTES`] (shared with the downloads in flight).
async fn write_documents<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    bucket: &str,
    job_queue: mpsc::Receiver<Job>,
) -> Result<(), SinkError> {
    let budget = &ByteBudget::new(QUEUE_MAX_BYTES);
    let (ready, outcomes) = mpsc::channel(ctx.connector.concurrency);
    let downloading = job_queue
        .map(|job| process_within(ctx, bucket, job, budget))
        .buffer_unordered(ctx.connector.concurrency)
        .map(Ok)
        .forward(ready);
    // The writer owns the queue's end: when it stops on an error, the downloads stop too.
    let (_, written) = tokio::join!(downloading, write_outcomes(ctx, bucket, outcomes));
    written
}

/// [`process`] within the byte budget: reserves the object's size before the download, holds
/// its document's text size after.
async fn process_within<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    bucket: &str,
    job: Job,
    budget: &ByteBudget,
) -> (Outcome, Reserved) {
    let reserved = budget.reserve(job.download_bytes()).await;
    let outcome = process(ctx, bucket, job).await;
    let reserved = reserved.resize(outcome.text_bytes()).await;
    (outcome, reserved)
}

/// Writes the documents of the download workers' outcomes in batches, committing every
/// [`COMMIT_EVERY`] documents.
async fn write_outcomes<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    bucket: &str,
    mut outcomes: mpsc::Receiver<(Outcome, Reserved)>,
) -> Result<(), SinkError> {
    let batch_size = ctx.sink.batch_size();
    let mut batch = Vec::with_capacity(batch_size);
    let mut batch_bytes = 0;
    let mut since_commit = 0u64;
    while let Some((outcome, reserved)) = outcomes.next().await {
        // Off the queue: the batch's own bound holds it now.
        drop(reserved);
        match outcome {
            Outcome::Write(document, change) => {
                batch_bytes += document.text_len();
                batch.push((*document, change));
                if batch.len() >= batch_size || batch_bytes >= BATCH_MAX_TEXT_BYTES {
                    since_commit += write_batch(ctx, &mut batch).await?;
                    batch_bytes = 0;
                }
            }
            Outcome::Gone(id, Change::Updated) => {
                ctx.sink.delete(vec![id]).await?;
                Counters::bump(&ctx.counters.deleted);
            }
            Outcome::Gone(_, Change::New) | Outcome::Failed => {}
        }
        if since_commit >= COMMIT_EVERY {
            tracing::debug!(message = "Committing.", bucket);
            ctx.sink.commit().await?;
            since_commit = 0;
        }
    }
    write_batch(ctx, &mut batch).await?;
    Ok(())
}

/// Writes and counts a batch; returns how many documents were written.
async fn write_batch<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    batch: &mut Vec<(Document, Change)>,
) -> Result<u64, SinkError> {
    let written = batch.len() as u64;
    let rejected = write_batch_rejecting(ctx, batch).await?;
    Ok(written - rejected.len() as u64)
}

/// Writes and counts a batch; returns the ids the index refused (each counted as an error).
async fn write_batch_rejecting<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    batch: &mut Vec<(Document, Change)>,
) -> Result<Vec<DocId>, SinkError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    embedding::embed_batch(ctx, batch).await;
    let counters = ctx.counters;
    let mut changes: HashMap<DocId, Change> = HashMap::with_capacity(batch.len());
    let (mut new, mut changed) = (Vec::new(), Vec::new());
    for (document, change) in batch.drain(..) {
        changes.insert(document.id, change);
        let status = document.content_status;
        match status {
            ContentStatus::TooLarge | ContentStatus::Unsupported | ContentStatus::Archived => {
                Counters::bump(&counters.metadata_only)
            }
            ContentStatus::Error => Counters::bump(&counters.extraction_errors),
            ContentStatus::Extracted => {}
        }
        match change {
            Change::New => new.push(document),
            Change::Updated => changed.push(document),
        }
    }
    tracing::debug!(
        message = "Writing a batch.",
        new = new.len(),
        changed = changed.len()
    );
    // New: the merge (or HeadObject and the index, for an event) found no indexed copy, and
    // the index has no other writer meanwhile (one embedded writer; events and syncs take
    // turns), so nothing needs replacing.
    let mut rejected = if new.is_empty() {
        Vec::new()
    } else {
        ctx.sink.insert_new(new).await?
    };
    if !changed.is_empty() {
        rejected.extend(ctx.sink.upsert(changed).await?);
    }
    for (id, reason) in &rejected {
        changes.remove(id);
        counters.error(format!("document {id} was rejected by the index: {reason}"));
    }
    for change in changes.values() {
        match change {
            Change::New => Counters::bump(&counters.added),
            Change::Updated => Counters::bump(&counters.updated),
        }
    }
    Ok(rejected.into_iter().map(|(id, _)| id).collect())
}

/// Makes the document of one job: downloads and extracts when the plan says so.
async fn process<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    bucket: &str,
    job: Job,
) -> Outcome {
    let Job {
        id,
        entry,
        change,
        content,
    } = job;
    let document = |status, content_type, extracted: Option<Extracted>, error: Option<String>| {
        Outcome::Write(
            Box::new(build_document(
                id,
                bucket,
                &entry,
                status,
                content_type,
                extracted,
                error,
            )),
            change,
        )
    };
    if ctx.cancel.is_cancelled() {
        // Not started before shutdown: left for the next sync.
        return Outcome::Failed;
    }
    match content {
        ContentPlan::MetadataOnly(status) => return document(status, None, None, None),
        ContentPlan::Empty => {
            let empty = Extracted {
                body: String::new(),
                title: None,
            };
            return document(ContentStatus::Extracted, None, Some(empty), None);
        }
        ContentPlan::Fetch(_) => {}
    }
    let fetched = ctx
        .source
        .get_object(bucket, &entry.key, ctx.connector.max_content_bytes)
        .await;
    match fetched {
        Ok(Fetched::Content(mut object)) => {
            let metadata = std::mem::take(&mut object.metadata);
            let attributes = attributes(ctx, bucket, &entry.key, metadata).await;
            let content_type = object.content_type.clone();
            let input = ObjectInput {
                name: entry.key.clone(),
                content_type: object.content_type,
                content_encoding: object.content_encoding,
                bytes: object.bytes,
            };
            let outcome = match extract::extract_object(input, &extract_limits(ctx.connector)).await
            {
                Ok(text) => document(ContentStatus::Extracted, content_type, Some(text), None),
                Err(error) if error.is_unsupported() => {
                    document(ContentStatus::Unsupported, content_type, None, None)
                }
                Err(error) => {
                    log_extraction_error(bucket, &entry.key, &error);
                    let status = if error.is_too_large() {
                        ContentStatus::TooLarge
                    } else {
                        ContentStatus::Error
                    };
                    document(status, content_type, None, Some(error.to_string()))
                }
            };
            outcome.with_attributes(attributes)
        }
        Ok(Fetched::TooLarge) => document(ContentStatus::TooLarge, None, None, None),
        Ok(Fetched::Gone) => Outcome::Gone(id, change),
        Err(error) => {
            ctx.counters.error(error.to_string());
            Outcome::Failed
        }
    }
}

/// A downloaded object's attributes: its user metadata, and its tags when the connector indexes
/// them. A failed tagging request is logged and leaves the tags out; it fails nothing.
async fn attributes<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    bucket: &str,
    key: &str,
    metadata: Vec<(String, String)>,
) -> Attributes {
    let tags = if ctx.connector.index_tags {
        ctx.source
            .object_tags(bucket, key)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(message = "Could not read the object's tags; indexing it without them.", bucket, key, %error);
                Vec::new()
            })
    } else {
        Vec::new()
    };
    let (attributes, dropped) = Attributes::capped(metadata, tags);
    if dropped > 0 {
        tracing::warn!(
            message =
                "Left out metadata or tags past the caps (32 of each, names up to 128 bytes).",
            bucket,
            key,
            dropped
        );
    }
    attributes
}

/// The extraction limits of a connector.
fn extract_limits(connector: &ConnectorConfig) -> ExtractLimits {
    ExtractLimits {
        max_extracted_bytes: connector.max_extracted_bytes,
        timeout: std::time::Duration::from_secs(connector.extraction_timeout),
        max_body_chars: usize::try_from(connector.max_body_chars).unwrap_or(usize::MAX),
    }
}

fn log_extraction_error(bucket: &str, key: &str, error: &ExtractError) {
    tracing::warn!(message = "Could not extract text; indexing metadata only.", bucket, key, %error);
}

fn build_document(
    id: DocId,
    bucket: &str,
    entry: &ObjectEntry,
    content_status: ContentStatus,
    content_type: Option<String>,
    extracted: Option<Extracted>,
    extraction_error: Option<String>,
) -> Document {
    let filename = entry
        .key
        .rsplit('/')
        .next()
        .unwrap_or(&entry.key)
        .to_owned();
    let (body, title) = match extracted {
        Some(Extracted { body, title }) => (Some(body), title),
        None => (None, None),
    };
    Document {
        id,
        bucket: bucket.to_owned(),
        key: entry.key.clone(),
        extension: rules::extension_of(&entry.key),
        filename,
        size_in_bytes: entry.size,
        last_modified: entry.last_modified,
        etag: entry.etag.clone(),
        content_type,
        storage_class: entry.storage_class.clone(),
        url: format!("s3://{bucket}/{}", entry.key),
        title,
        body,
        content_status,
        extraction_error,
        indexed_at: OffsetDateTime::now_utc(),
        attributes: Attributes::default(),
        passages: Vec::new(),
        embedding_error: None,
    }
}
