//! Applying keys that event notifications name: the sync of a few keys instead of a listing.
//!
//! Events are hints; S3 is the truth. For each key the object's current state is read
//! (HeadObject) and the listing's own decision is made on it ([`plan::decide`] with the rules,
//! the indexed version, the size cap and the archive classes); the document is then written by
//! the same download-and-extract step as a full sync ([`super::process`]), or deleted when the
//! key is gone or no longer selected. Everything is committed before the caller hears that a key
//! was applied, so a queue message is deleted only after its keys are durable. Out-of-order,
//! duplicated and stale events are harmless: each one only makes the index agree with S3 now.
//!
//! After the commit each key that was written or deleted is read from S3 once more: if the
//! object changed since its HeadObject (a slower consumer of the same queue may just have
//! written an older version over a newer one), the key is applied again. So the last write of
//! a key is always checked against S3 after it landed, and competing consumers converge on
//! S3's state without a conditional write in the index (see [`agrees`]).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use futures::StreamExt as _;

use super::plan::{self, Change, Decision, Limits};
use super::{Counters, Job, Outcome, SyncContext, process, write_batch_rejecting};
use crate::config::BucketSelection;
use crate::rules::SyncRules;
use crate::sink::{DocId, Sink, VersionStamp};
use crate::source::ObjectStore;
use crate::source::s3::ObjectEntry;

/// One key an event named.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TouchedKey {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
}

/// What one key came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyResult {
    /// The index agrees with S3 for this key, committed.
    Applied,
    /// It could not be applied (S3 or the index failed, or a shutdown came first); why.
    Failed(String),
}

/// What to do for one key after its HeadObject.
enum Step {
    /// Nothing to write: unchanged, not selected, or absent and not indexed.
    Nothing,
    /// Delete its document.
    Delete(DocId),
    /// Write this document.
    Write(Box<crate::sink::Document>, Change),
    /// It failed; why.
    Failed(String),
}

/// What a round changed in the index for one key: checked against S3 after the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrote {
    /// Nothing (unchanged, not selected, failed).
    Nothing,
    /// A document of this version.
    Version(VersionStamp),
    /// Deleted its document.
    Deleted,
}

/// Rounds of one key while S3 keeps changing it under the consumer; then its message returns
/// through the queue instead.
const MAX_ROUNDS: usize = 3;

/// Makes the index agree with S3 for each of `keys`, commits, and says per key (in the same
/// order) whether that worked. Buckets outside the connector's selection are left alone
/// (applied: there is nothing to do). For `buckets: ["*"]` each new bucket is located first.
/// A key whose object changed between its HeadObject and the commit is applied again, up to
/// [`MAX_ROUNDS`] rounds in all (counted in `events_reapplied`).
pub async fn apply_keys<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    keys: &[TouchedKey],
    located: &mut std::collections::HashSet<String>,
) -> Vec<KeyResult> {
    // Vectors of another model than the index's would not be comparable with its others.
    if let Err(refusal) = super::embedding::check_model(ctx).await {
        ctx.counters.error(refusal.clone());
        return vec![KeyResult::Failed(refusal); keys.len()];
    }
    let embedding_retries_before = ctx.embedder.map_or(0, |embedder| embedder.retries());
    let mut results = vec![KeyResult::Applied; keys.len()];
    let mut pending: Vec<usize> = (0..keys.len()).collect();
    for round in 1..=MAX_ROUNDS {
        let round_keys: Vec<TouchedKey> = pending.iter().map(|&i| keys[i].clone()).collect();
        let (round_results, wrote) = apply_round(ctx, &round_keys, located).await;
        let checks: Vec<_> = round_keys
            .iter()
            .zip(&wrote)
            .zip(&round_results)
            .map(|((touched, wrote), result)| async move {
                match (result, wrote) {
                    (KeyResult::Applied, Wrote::Version(_) | Wrote::Deleted) => {
                        still_current(ctx, touched, *wrote).await
                    }
                    _ => Ok(true),
                }
            })
            .collect();
        let checked: Vec<Result<bool, String>> = futures::stream::iter(checks)
            .buffered(ctx.connector.concurrency)
            .collect()
            .await;
        let mut overtaken = Vec::new();
        for ((&index, result), check) in pending.iter().zip(round_results).zip(checked) {
            results[index] = match check {
                Ok(true) => result,
                Ok(false) => {
                    overtaken.push(index);
                    KeyResult::Failed(format!(
                        "it changed in S3 while it was applied, {MAX_ROUNDS} times in a row"
                    ))
                }
                Err(error) => KeyResult::Failed(format!(
                    "it was applied, but S3 could not confirm it after the commit: {error}"
                )),
            };
        }
        if overtaken.is_empty() || round == MAX_ROUNDS {
            break;
        }
        ctx.counters
            .events_reapplied
            .fetch_add(overtaken.len() as u64, Ordering::Relaxed);
        pending = overtaken;
    }
    if let Some(embedder) = ctx.embedder {
        let retries = embedder.retries().saturating_sub(embedding_retries_before);
        ctx.counters
            .embedding_retries
            .fetch_add(retries, Ordering::Relaxed);
    }
    results
}

/// Whether S3 still shows what a round wrote for `touched` (read after the commit).
async fn still_current<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    touched: &TouchedKey,
    wrote: Wrote,
) -> Result<bool, String> {
    let TouchedKey { bucket, key } = touched;
    let rules = &ctx.connector.rules;
    if !rules.matches(bucket, key) {
        return Ok(true);
    }
    let head = ctx
        .source
        .head_object(bucket, key)
        .await
        .map_err(|error| error.to_string())?;
    let limits = Limits {
        max_content_bytes: ctx.connector.max_content_bytes,
    };
    Ok(agrees(bucket, head.as_ref(), wrote, rules, limits))
}

/// Whether the index, after a round wrote `wrote` for a key, agrees with `head` (the object
/// as S3 shows it now, `None`: absent) by the listing's own decision: a written version must
/// be the one a listing would call unchanged; a deleted document must be one a listing would
/// not index.
fn agrees(
    bucket: &str,
    head: Option<&ObjectEntry>,
    wrote: Wrote,
    rules: &SyncRules,
    limits: Limits,
) -> bool {
    match (wrote, head) {
        (Wrote::Nothing, _) => true,
        (Wrote::Deleted, None) => true,
        (Wrote::Version(_), None) => false,
        (Wrote::Deleted, Some(entry)) => matches!(
            plan::decide(bucket, entry, None, rules, limits),
            Decision::Excluded
        ),
        (Wrote::Version(stamp), Some(entry)) => matches!(
            plan::decide(bucket, entry, Some(stamp), rules, limits),
            Decision::Unchanged
        ),
    }
}

/// One round of [`apply_keys`]: the results, and what was written for each key.
async fn apply_round<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    keys: &[TouchedKey],
    located: &mut std::collections::HashSet<String>,
) -> (Vec<KeyResult>, Vec<Wrote>) {
    let selection = &ctx.connector.buckets;
    let rules = &ctx.connector.rules;
    let mut bucket_ok: HashMap<&str, Result<bool, String>> = HashMap::new();
    for TouchedKey { bucket, .. } in keys {
        if bucket_ok.contains_key(bucket.as_str()) {
            continue;
        }
        let plan = plan::plan_buckets(selection, std::slice::from_ref(bucket), rules);
        let mut verdict = Ok(plan.selected.contains(bucket));
        if verdict == Ok(true) && *selection == BucketSelection::All && !located.contains(bucket) {
            match ctx.source.locate_bucket(bucket).await {
                Ok(()) => {
                    located.insert(bucket.clone());
                }
                Err(error) => verdict = Err(format!("its region cannot be found: {error}")),
            }
        }
        bucket_ok.insert(bucket, verdict);
    }
    // Futures made in a loop, not a closure: the compiler cannot prove a closure's future Send
    // for every lifetime, which `tokio::spawn` needs of the consumer's task.
    let mut pending: Vec<futures::future::BoxFuture<'_, Step>> = Vec::with_capacity(keys.len());
    for touched in keys {
        let verdict = bucket_ok.get(touched.bucket.as_str()).cloned();
        pending.push(Box::pin(async move {
            match verdict {
                Some(Ok(true)) => step_for(ctx, touched).await,
                Some(Err(error)) => Step::Failed(format!("bucket {}: {error}", touched.bucket)),
                _ => {
                    Counters::bump(&ctx.counters.excluded);
                    Step::Nothing
                }
            }
        }));
    }
    let steps: Vec<Step> = futures::stream::iter(pending)
        .buffered(ctx.connector.concurrency)
        .collect()
        .await;

    let mut results: Vec<KeyResult> = Vec::with_capacity(keys.len());
    let mut wrote = vec![Wrote::Nothing; keys.len()];
    let mut batch = Vec::new();
    let mut deletes = Vec::new();
    let mut position_of: HashMap<DocId, Vec<usize>> = HashMap::new();
    for (position, step) in steps.into_iter().enumerate() {
        results.push(KeyResult::Applied);
        match step {
            Step::Nothing => {}
            Step::Delete(id) => {
                deletes.push(id);
                position_of.entry(id).or_default().push(position);
                wrote[position] = Wrote::Deleted;
            }
            Step::Write(document, change) => {
                position_of.entry(document.id).or_default().push(position);
                wrote[position] = Wrote::Version(document.version());
                batch.push((*document, change));
            }
            Step::Failed(reason) => results[position] = KeyResult::Failed(reason),
        }
    }
    let written = async {
        let rejected = write_batch_rejecting(ctx, &mut batch).await?;
        if !deletes.is_empty() {
            let count = deletes.len() as u64;
            ctx.sink.delete(deletes).await?;
            ctx.counters.deleted.fetch_add(count, Ordering::Relaxed);
        }
        ctx.sink.commit().await?;
        Ok::<_, crate::sink::SinkError>(rejected)
    }
    .await;
    match written {
        Ok(rejected) => {
            for id in rejected {
                for &position in position_of.get(&id).into_iter().flatten() {
                    results[position] =
                        KeyResult::Failed(format!("the index refused document {id}"));
                }
            }
        }
        Err(error) => {
            ctx.counters
                .error(format!("writing event changes to the index: {error}"));
            for position in position_of.values().flatten() {
                results[*position] = KeyResult::Failed(format!("the index failed: {error}"));
            }
            // Nothing is known to be durable: no key of this round counts as applied.
            for result in &mut results {
                if *result == KeyResult::Applied {
                    *result = KeyResult::Failed(format!("the commit failed: {error}"));
                }
            }
        }
    }
    (results, wrote)
}

/// HeadObject, then the listing's decision for one key.
async fn step_for<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    touched: &TouchedKey,
) -> Step {
    let TouchedKey { bucket, key } = touched;
    if ctx.cancel.is_cancelled() {
        return Step::Failed("the worker is shutting down".to_owned());
    }
    let id = DocId::of(bucket, key);
    let rules = &ctx.connector.rules;
    // A key the rules leave out is not looked up: the policy may not even allow reading it.
    let wanted = rules.matches(bucket, key);
    let head = async {
        if wanted {
            ctx.source.head_object(bucket, key).await
        } else {
            Ok(None)
        }
    };
    let (head, indexed) = tokio::join!(head, ctx.sink.indexed_version(id));
    if !wanted {
        Counters::bump(&ctx.counters.excluded);
    }
    let indexed = match indexed {
        Ok(indexed) => indexed,
        Err(error) => {
            ctx.counters
                .error(format!("reading the version of {bucket}/{key}: {error}"));
            return Step::Failed(error.to_string());
        }
    };
    let entry = match head {
        Ok(Some(entry)) => entry,
        // Absent from S3: its document goes, whatever the event said.
        Ok(None) => {
            return if indexed.is_some() {
                Step::Delete(id)
            } else {
                Step::Nothing
            };
        }
        Err(error) => {
            ctx.counters.error(error.to_string());
            return Step::Failed(error.to_string());
        }
    };
    Counters::bump(&ctx.counters.objects_listed);
    let limits = Limits {
        max_content_bytes: ctx.connector.max_content_bytes,
    };
    let (change, content) = match plan::decide(bucket, &entry, indexed, rules, limits) {
        Decision::Excluded => {
            Counters::bump(&ctx.counters.excluded);
            // A listing would delete an indexed copy at the end of the bucket.
            return if indexed.is_some() {
                Step::Delete(id)
            } else {
                Step::Nothing
            };
        }
        Decision::Unchanged => {
            Counters::bump(&ctx.counters.unchanged);
            return Step::Nothing;
        }
        Decision::Index { change, content } => (change, content),
    };
    let job = Job {
        id,
        entry,
        change,
        content,
    };
    match process(ctx, bucket, job).await {
        Outcome::Write(document, change) => Step::Write(document, change),
        Outcome::Gone(id, Change::Updated) => Step::Delete(id),
        Outcome::Gone(_, Change::New) => Step::Nothing,
        Outcome::Failed => Step::Failed(format!(
            "{bucket}/{key} could not be downloaded (or a shutdown came first)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::config::ConnectorConfig;
    use crate::sink::memory::MemorySink;
    use crate::source::memory::{Faults, MemoryStore};

    fn connector(extra: &str) -> ConnectorConfig {
        let yaml = format!(
            "connectors:\n  - id: c\n    buckets: [\"bkt\"]\n    max_content_bytes: 100\n{extra}"
        );
        crate::testing::connector_of(&yaml)
    }

    fn key(bucket: &str, key: &str) -> TouchedKey {
        TouchedKey {
            bucket: bucket.into(),
            key: key.into(),
        }
    }

    /// A connector (`extra`: more lines of its YAML) over an in-memory bucket and index.
    struct World {
        connector: ConnectorConfig,
        store: MemoryStore,
        sink: MemorySink,
        cancel: CancellationToken,
    }

    impl World {
        fn new(extra: &str) -> Self {
            Self {
                connector: connector(extra),
                store: MemoryStore::new(10),
                sink: MemorySink::default(),
                cancel: CancellationToken::new(),
            }
        }

        /// Applies `keys` as one round of the event consumer does: the result per key, and
        /// the round's counters.
        async fn apply(&self, keys: &[TouchedKey]) -> (Vec<KeyResult>, Counters) {
            let counters = Counters::default();
            let ctx = SyncContext {
                connector: &self.connector,
                source: &self.store,
                sink: &self.sink,
                counters: &counters,
                cancel: &self.cancel,
                allow_mass_delete: false,
                retarget: false,
                shard: &crate::sync::Shard::whole(),
                embedder: None,
                reembed: false,
            };
            let results = apply_keys(&ctx, keys, &mut HashSet::new()).await;
            (results, counters)
        }

        /// The body of the document of `bucket/key`, if the index holds it.
        fn body(&self, bucket: &str, key: &str) -> Option<String> {
            self.sink
                .documents()
                .get(&DocId::of(bucket, key))
                .map(|document| document.body.clone().unwrap_or_default())
        }
    }

    #[tokio::test]
    async fn keys_follow_s3_not_the_event() {
        let world = World::new("    sync_rules: [{\"bucket\": \"bkt\", \"prefix\": \"docs/\"}]\n");
        world.store.put("bkt", "docs/a.txt", b"alpha");
        world.store.put("bkt", "docs/big.txt", &[b'x'; 200]);
        world
            .store
            .put("bkt", "other/x.txt", b"left out by the rules");
        world
            .store
            .put("other-bucket", "docs/y.txt", b"not selected");
        let keys = [
            key("bkt", "docs/a.txt"),
            key("bkt", "docs/big.txt"),
            key("bkt", "docs/never-existed.txt"),
            key("bkt", "other/x.txt"),
            key("other-bucket", "docs/y.txt"),
        ];
        let (results, counters) = world.apply(&keys).await;
        assert!(
            results.iter().all(|r| *r == KeyResult::Applied),
            "{results:?}"
        );
        assert_eq!(world.body("bkt", "docs/a.txt").as_deref(), Some("alpha"));
        let big = &world.sink.documents()[&DocId::of("bkt", "docs/big.txt")];
        assert_eq!(big.content_status, crate::sink::ContentStatus::TooLarge);
        assert_eq!(world.sink.documents().len(), 2);
        assert_eq!(counters.added.load(Ordering::Relaxed), 2);
        assert_eq!(counters.excluded.load(Ordering::Relaxed), 2);

        // A duplicate of an old event: unchanged, not downloaded again.
        world.store.take_gets();
        let (results, counters) = world.apply(&keys[..1]).await;
        assert_eq!(results, vec![KeyResult::Applied]);
        assert_eq!(counters.unchanged.load(Ordering::Relaxed), 1);
        assert!(world.store.take_gets().is_empty());

        // An overwrite, and a "created" event that arrives after the object was deleted.
        world.store.put("bkt", "docs/a.txt", b"beta");
        world.store.delete("bkt", "docs/big.txt");
        let (results, counters) = world.apply(&keys[..2]).await;
        assert_eq!(results, vec![KeyResult::Applied, KeyResult::Applied]);
        assert_eq!(world.body("bkt", "docs/a.txt").as_deref(), Some("beta"));
        assert_eq!(world.body("bkt", "docs/big.txt"), None);
        assert_eq!(counters.updated.load(Ordering::Relaxed), 1);
        assert_eq!(counters.deleted.load(Ordering::Relaxed), 1);
    }

    fn entry(key: &str, etag: &str, size: u64) -> ObjectEntry {
        ObjectEntry {
            key: key.to_owned(),
            size,
            last_modified: time::OffsetDateTime::UNIX_EPOCH,
            etag: etag.to_owned(),
            storage_class: None,
        }
    }

    #[test]
    fn what_was_written_agrees_with_s3_only_as_a_listing_would_leave_it() {
        let rules: SyncRules =
            connector("    sync_rules: [{\"bucket\": \"bkt\", \"prefix\": \"docs/\"}]\n").rules;
        let limits = Limits {
            max_content_bytes: 100,
        };
        let v1 = entry("docs/a.txt", "\"1\"", 5);
        let stamp_of = |e: &ObjectEntry| VersionStamp::of(&e.etag, e.last_modified, e.size);
        let v2 = entry("docs/a.txt", "\"2\"", 5);
        let outside = entry("other/a.txt", "\"1\"", 5);
        let cases = [
            (
                Wrote::Nothing,
                Some(&v2),
                true,
                "nothing written: nothing to check",
            ),
            (
                Wrote::Version(stamp_of(&v1)),
                Some(&v1),
                true,
                "still this version",
            ),
            (
                Wrote::Version(stamp_of(&v1)),
                Some(&v2),
                false,
                "overwritten since",
            ),
            (Wrote::Version(stamp_of(&v1)), None, false, "deleted since"),
            (Wrote::Deleted, None, true, "still absent"),
            (Wrote::Deleted, Some(&v2), false, "created again since"),
            (
                Wrote::Deleted,
                Some(&outside),
                true,
                "present, but the rules leave it out",
            ),
        ];
        for (wrote, head, expected, why) in cases {
            let bucket = "bkt";
            assert_eq!(
                agrees(bucket, head, wrote, &rules, limits),
                expected,
                "{why}"
            );
        }
    }

    #[tokio::test]
    async fn a_key_that_changes_while_it_is_applied_is_applied_again() {
        let world = World::new("");
        world.store.put("bkt", "a.txt", b"alpha");
        // S3 gets a newer version right after the download: what was written is already old,
        // as when a slower consumer writes over a faster one's newer version.
        world.store.set_faults(Faults {
            overwrite_after_get: [("bkt/a.txt".to_owned(), 1)].into(),
            ..Faults::default()
        });
        let (results, counters) = world.apply(&[key("bkt", "a.txt")]).await;
        assert_eq!(results, vec![KeyResult::Applied]);
        assert_eq!(world.body("bkt", "a.txt").as_deref(), Some("alpha (newer)"));
        let now = world
            .store
            .head_object("bkt", "a.txt")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            world.sink.documents()[&DocId::of("bkt", "a.txt")].version(),
            VersionStamp::of(&now.etag, now.last_modified, now.size)
        );
        assert_eq!(counters.events_reapplied.load(Ordering::Relaxed), 1);

        // A key that never holds still is given up after MAX_ROUNDS: its message returns.
        world.store.set_faults(Faults {
            overwrite_after_get: [("bkt/a.txt".to_owned(), 10)].into(),
            ..Faults::default()
        });
        world.store.put("bkt", "a.txt", b"beta");
        let (results, counters) = world.apply(&[key("bkt", "a.txt")]).await;
        assert!(
            matches!(&results[0], KeyResult::Failed(reason) if reason.contains("changed in S3")),
            "{results:?}"
        );
        assert_eq!(
            counters.events_reapplied.load(Ordering::Relaxed),
            (MAX_ROUNDS - 1) as u64
        );
    }

    #[tokio::test]
    async fn failures_are_per_key_and_a_failed_commit_applies_nothing() {
        let world = World::new("");
        world.store.put("bkt", "good.txt", b"good");
        world.store.put("bkt", "bad.txt", b"bad");
        world.store.set_faults(Faults {
            get_failures: [("bkt/bad.txt".to_owned(), u32::MAX)].into(),
            ..Faults::default()
        });
        let keys = [key("bkt", "good.txt"), key("bkt", "bad.txt")];
        let (results, _) = world.apply(&keys).await;
        assert_eq!(results[0], KeyResult::Applied);
        assert!(matches!(results[1], KeyResult::Failed(_)), "{results:?}");
        assert_eq!(world.body("bkt", "good.txt").as_deref(), Some("good"));

        world.store.set_faults(Faults::default());
        world.store.put("bkt", "good.txt", b"newer");
        world.sink.set_faults(crate::sink::memory::SinkFaults {
            fail_commit_from: Some(0),
            ..Default::default()
        });
        let (results, _) = world.apply(&keys).await;
        assert!(
            results.iter().all(|r| matches!(r, KeyResult::Failed(_))),
            "{results:?}"
        );

        // Shutting down: nothing new starts, nothing is reported applied.
        world.sink.set_faults(Default::default());
        world.cancel.cancel();
        let (results, _) = world.apply(&keys[..1]).await;
        assert!(matches!(results[0], KeyResult::Failed(_)));
    }
}
