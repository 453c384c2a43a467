//! Sync scenarios that test logic only, on the in-memory store and index: moved here from the
//! end-to-end suite (where they ran against moto on both index backends) with the same
//! assertions, because nothing in them depends on the wire. What does — listings sent with the
//! rule's prefix, wildcard buckets in their own region, the guard through the CLI and the
//! worker — stays end to end.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Counters, SyncContext, SyncReport, sync_connector};
use crate::config::ConnectorConfig;
use crate::embed::Embedder;
use crate::sink::memory::MemorySink;
use crate::sink::{DocId, Sink};
use crate::source::memory::MemoryStore;
use crate::testing::connector_of;

/// The one connector of a config whose connector lines are `lines`.
fn connector(lines: &str) -> ConnectorConfig {
    let text = format!("connectors:\n  - id: c\n{lines}");
    connector_of(&text)
}

async fn sync(
    connector: &ConnectorConfig,
    store: &MemoryStore,
    sink: &MemorySink,
    allow_mass_delete: bool,
) -> SyncReport {
    sync_with(connector, store, sink, allow_mass_delete, None, false).await
}

/// A full sync of `connector`, with `embedder` (and `--reembed` when `reembed`).
pub(super) async fn sync_with(
    connector: &ConnectorConfig,
    store: &MemoryStore,
    sink: &MemorySink,
    allow_mass_delete: bool,
    embedder: Option<&Arc<dyn Embedder>>,
    reembed: bool,
) -> SyncReport {
    sync_connector(&SyncContext {
        connector,
        source: store,
        sink,
        counters: &Counters::default(),
        cancel: &CancellationToken::new(),
        allow_mass_delete,
        retarget: false,
        shard: &super::Shard::whole(),
        embedder,
        reembed,
    })
    .await
}

fn body(sink: &MemorySink, bucket: &str, key: &str) -> Option<String> {
    sink.documents()
        .get(&DocId::of(bucket, key))
        .map(|document| document.body.clone().unwrap_or_default())
}

fn put_numbered(store: &MemoryStore, bucket: &str, range: std::ops::Range<usize>) {
    for n in range {
        store.put(
            bucket,
            &format!("doc-{n:04}.txt"),
            format!("document {n}").as_bytes(),
        );
    }
}

fn delete_numbered(store: &MemoryStore, bucket: &str, range: std::ops::Range<usize>) {
    for n in range {
        store.delete(bucket, &format!("doc-{n:04}.txt"));
    }
}

#[tokio::test]
async fn a_listing_that_would_delete_most_of_a_bucket_is_held_back() {
    let (store, sink, bucket) = (MemoryStore::new(1000), MemorySink::default(), "mass");
    store.create_bucket(bucket);
    put_numbered(&store, bucket, 0..150);
    let guarded = connector("    buckets: [mass]\n");
    let first = sync(&guarded, &store, &sink, false).await;
    assert_eq!((first.added, first.errors), (150, 0), "{first:?}");

    delete_numbered(&store, bucket, 0..120);
    store.put(bucket, "new.txt", b"a new document");
    store.put(bucket, "doc-0149.txt", b"rewritten document");
    let held = sync(&guarded, &store, &sink, false).await;
    assert_eq!((held.deletions_held_back, held.deleted), (120, 0));
    assert_eq!(held.errors, 1, "{:?}", held.error_messages);
    assert_eq!(
        (held.added, held.updated),
        (1, 1),
        "additions and updates still happen"
    );
    let message = &held.error_messages[0];
    for expected in [
        "bucket mass:",
        "would delete 120 of its 150 indexed documents",
        "max_delete_fraction (0.5)",
        "s3-connector sync --allow-mass-delete",
        "1.0 turns the guard off",
    ] {
        assert!(message.contains(expected), "{expected:?} not in {message}");
    }
    assert_eq!(sink.documents().len(), 151, "nothing was deleted");
    assert!(body(&sink, bucket, "doc-0000.txt").is_some());
    assert_eq!(
        body(&sink, bucket, "doc-0149.txt").as_deref(),
        Some("rewritten document")
    );

    // Held back again on the next sync, until a person says yes.
    let again = sync(&guarded, &store, &sink, false).await;
    assert_eq!((again.deletions_held_back, again.deleted), (120, 0));
    let allowed = sync(&guarded, &store, &sink, true).await;
    assert_eq!(allowed.errors, 0, "{:?}", allowed.error_messages);
    assert_eq!((allowed.deleted, allowed.deletions_held_back), (120, 0));
    assert_eq!(sink.documents().len(), 31);

    // Under the 100-document floor, a large fraction still goes through.
    delete_numbered(&store, bucket, 120..150);
    let small = sync(&guarded, &store, &sink, false).await;
    assert_eq!(
        (small.deleted, small.deletions_held_back, small.errors),
        (30, 0, 0),
        "30 deletions are under the 100-document floor: {:?}",
        small.error_messages
    );
    assert_eq!(sink.documents().len(), 1);

    // With the guard off in the config, a mass deletion goes through.
    let unguarded = connector("    buckets: [mass]\n    max_delete_fraction: 1.0\n");
    put_numbered(&store, bucket, 0..120);
    assert_eq!(sync(&unguarded, &store, &sink, false).await.added, 120);
    delete_numbered(&store, bucket, 0..120);
    let off = sync(&unguarded, &store, &sink, false).await;
    assert_eq!(
        (off.deleted, off.deletions_held_back, off.errors),
        (120, 0, 0)
    );
}

#[tokio::test]
async fn wildcard_buckets_and_buckets_that_leave_the_selection() {
    let (store, sink) = (MemoryStore::new(1000), MemorySink::default());
    for bucket in ["wild-one", "wild-two"] {
        store.create_bucket(bucket);
        store.put(
            bucket,
            "doc.txt",
            format!("document in {bucket}").as_bytes(),
        );
    }
    let all = sync(&connector("    buckets: [\"*\"]\n"), &store, &sink, false).await;
    assert_eq!((all.added, all.errors), (2, 0), "{:?}", all.error_messages);
    assert!(body(&sink, "wild-one", "doc.txt").is_some());
    assert!(body(&sink, "wild-two", "doc.txt").is_some());
    assert_eq!(
        sink.indexed_buckets().await.unwrap(),
        ["wild-one", "wild-two"]
    );

    let only_one = sync(
        &connector("    buckets: [wild-one]\n"),
        &store,
        &sink,
        false,
    )
    .await;
    assert_eq!((only_one.unchanged, only_one.deleted), (1, 1));
    assert!(body(&sink, "wild-two", "doc.txt").is_none());
    assert!(body(&sink, "wild-one", "doc.txt").is_some());
}
