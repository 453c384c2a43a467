//! Sync scenarios of passages and vectors (`embedding:`), on the in-memory store and index with
//! the word-hash embedder, which counts the texts it embeds: reuse by content hash, no model
//! call for an unchanged object, a failure that loses nothing, a model change refused until
//! `--reembed`, the passage cap, keys of event notifications. End to end on the embedded index: `tests/e2e` (see the notes
//! of #24).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;

use super::touched::{KeyResult, TouchedKey, apply_keys};
use super::{Counters, SyncContext, SyncReport};
use crate::config::ConnectorConfig;
use crate::config::embedding::{EmbeddingProvider, EmbeddingSettings, PassageSettings};
use crate::embed::testing::WordHashEmbedder;
use crate::embed::{Embedder, EmbeddingModel};
use crate::sink::memory::MemorySink;
use crate::sink::{DocId, Document, Sink, VersionStamp};
use crate::source::memory::MemoryStore;
use crate::testing::connector_of;

const BUCKET: &str = "docs";

/// Words per paragraph of [`paragraphs`], and the passage budget: one paragraph a passage.
const WORDS: usize = 8;

/// The connector `c` of bucket `docs` with an `embedding:` block of `max_passages` passages of
/// [`WORDS`] tokens, without overlap.
fn connector(max_passages: usize) -> ConnectorConfig {
    let text = format!("connectors:\n  - id: c\n    buckets: [{BUCKET}]\n");
    let mut connector = connector_of(&text);
    connector.embedding = Some(EmbeddingSettings {
        provider: EmbeddingProvider::Local {
            model_dir: PathBuf::from("unused-by-the-fake"),
            dimensions: None,
        },
        passages: PassageSettings {
            max_tokens: WORDS,
            overlap_tokens: 0,
            max_passages_per_document: max_passages,
        },
        threads: 1,
    });
    connector
}

/// A text of `topics.len()` paragraphs of [`WORDS`] words each, one per topic word.
fn paragraphs(topics: &[&str]) -> String {
    topics
        .iter()
        .map(|topic| [*topic; WORDS].join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A word-hash embedder of `dimensions`, as the sync takes it and as the test counts it.
fn embedder(dimensions: usize) -> (Arc<WordHashEmbedder>, Arc<dyn Embedder>) {
    let fake = Arc::new(WordHashEmbedder::new(dimensions));
    let shared: Arc<dyn Embedder> = fake.clone();
    (fake, shared)
}

async fn sync(
    connector: &ConnectorConfig,
    store: &MemoryStore,
    sink: &MemorySink,
    embedder: Option<&Arc<dyn Embedder>>,
    reembed: bool,
) -> SyncReport {
    super::scenarios::sync_with(connector, store, sink, false, embedder, reembed).await
}

/// A store with the bucket, an empty index, and the connector of [`connector`].
fn setup(max_passages: usize) -> (MemoryStore, MemorySink, ConnectorConfig) {
    let store = MemoryStore::new(1000);
    store.create_bucket(BUCKET);
    (store, MemorySink::default(), connector(max_passages))
}

fn document(sink: &MemorySink, key: &str) -> Document {
    sink.documents()
        .remove(&DocId::of(BUCKET, key))
        .unwrap_or_else(|| panic!("{key} is not indexed"))
}

/// Each passage of `key` has the vector the fake makes of its text, of its dimensions.
fn assert_embedded(sink: &MemorySink, key: &str, fake: &WordHashEmbedder) {
    let document = document(sink, key);
    assert!(!document.passages.is_empty(), "{key} has no passages");
    assert_eq!(document.embedding_error, None);
    let body = document.body.as_deref().unwrap_or_default();
    for stored in &document.passages {
        let passage = &stored.passage;
        assert_eq!(&body[passage.start..passage.end], passage.text);
        assert_eq!(
            stored.vector.as_deref(),
            Some(&fake.vector(&passage.text)[..]),
            "passage {} of {key}",
            passage.ordinal
        );
    }
}

#[tokio::test]
async fn a_changed_paragraph_is_the_only_passage_embedded_again() {
    let (store, sink, connector) = setup(100);
    let topics = ["alpha", "bravo", "charlie", "delta", "echo"];
    store.put(BUCKET, "five.txt", paragraphs(&topics).as_bytes());
    let (fake, embedder) = embedder(8);

    let first = sync(&connector, &store, &sink, Some(&embedder), false).await;
    assert_eq!((first.added, first.errors), (1, 0), "{first:?}");
    assert_eq!((first.passages_embedded, first.passages_reused), (5, 0));
    assert_eq!(fake.embedded.load(Ordering::Relaxed), 5);
    assert_eq!(document(&sink, "five.txt").passages.len(), 5);
    assert_embedded(&sink, "five.txt", &fake);
    assert_eq!(
        sink.recorded_model().await.unwrap().as_ref(),
        Some(embedder.model())
    );

    // Unchanged: not downloaded, no model call, no stored vector read.
    let reads = sink.passage_reads();
    let unchanged = sync(&connector, &store, &sink, Some(&embedder), false).await;
    assert_eq!((unchanged.unchanged, unchanged.errors), (1, 0));
    assert_eq!(
        (unchanged.passages_embedded, unchanged.passages_reused),
        (0, 0)
    );
    assert_eq!(fake.embedded.load(Ordering::Relaxed), 5);
    assert_eq!(sink.passage_reads(), reads);

    // One paragraph of five changed: one passage embedded, four reused.
    let changed = ["alpha", "bravo", "changed", "delta", "echo"];
    store.put(BUCKET, "five.txt", paragraphs(&changed).as_bytes());
    let report = sync(&connector, &store, &sink, Some(&embedder), false).await;
    assert_eq!((report.updated, report.errors), (1, 0), "{report:?}");
    assert_eq!((report.passages_embedded, report.passages_reused), (1, 4));
    assert_eq!(fake.embedded.load(Ordering::Relaxed), 6);
    assert_embedded(&sink, "five.txt", &fake);

    // A deleted object's passages go with its document.
    store.delete(BUCKET, "five.txt");
    let deleted = sync(&connector, &store, &sink, Some(&embedder), false).await;
    assert_eq!((deleted.deleted, deleted.errors), (1, 0));
    assert!(sink.documents().is_empty());
}

#[tokio::test]
async fn a_failed_embedding_is_indexed_for_keywords_and_embedded_by_the_next_sync() {
    let (store, sink, connector) = setup(100);
    store.put(BUCKET, "good.txt", paragraphs(&["fine", "well"]).as_bytes());
    store.put(
        BUCKET,
        "bad.txt",
        paragraphs(&["poison", "well"]).as_bytes(),
    );
    let mut failing = WordHashEmbedder::new(8);
    failing.fail_on = Some("poison".into());
    let failing: Arc<dyn Embedder> = Arc::new(failing);

    let first = sync(&connector, &store, &sink, Some(&failing), false).await;
    assert_eq!(first.added, 2, "{first:?}");
    assert_eq!((first.embedding_failures, first.errors), (1, 1));
    // Both documents' texts went in one call; its failure was tried again per document.
    assert_eq!(first.passages_embedded, 2, "the good document's passages");
    let message = &first.error_messages[0];
    for expected in [
        "docs/bad.txt",
        "keyword search only",
        "refused text with `poison`",
    ] {
        assert!(message.contains(expected), "{expected:?} not in {message}");
    }
    let bad = document(&sink, "bad.txt");
    assert!(
        bad.body
            .as_deref()
            .is_some_and(|body| body.contains("poison"))
    );
    assert!(
        bad.embedding_error
            .as_deref()
            .is_some_and(|e| e.contains("poison"))
    );
    assert_eq!(bad.passages.len(), 2, "passages are kept, without vectors");
    assert!(bad.passages.iter().all(|stored| stored.vector.is_none()));
    let id = DocId::of(BUCKET, "bad.txt");
    assert_eq!(
        sink.indexed_version(id).await.unwrap(),
        Some(VersionStamp::UNFINISHED)
    );
    assert!(sink.search("poison", 10).await.unwrap().len() == 1);
    // Only the documents that failed hold no vector: the model is recorded.
    assert_eq!(
        sink.recorded_model().await.unwrap().as_ref(),
        Some(failing.model())
    );

    let (fake, healthy) = embedder(8);
    let next = sync(&connector, &store, &sink, Some(&healthy), false).await;
    assert_eq!((next.updated, next.unchanged, next.errors), (1, 1, 0));
    assert_eq!(next.embedding_failures, 0);
    assert_embedded(&sink, "bad.txt", &fake);
    assert_embedded(&sink, "good.txt", &fake);
}

#[tokio::test]
async fn another_model_is_refused_until_a_sync_rebuilds_every_vector() {
    let (store, sink, connector) = setup(100);
    store.put(BUCKET, "a.txt", paragraphs(&["one", "two"]).as_bytes());
    store.put(BUCKET, "b.txt", paragraphs(&["three"]).as_bytes());
    let (_, small) = embedder(8);
    let first = sync(&connector, &store, &sink, Some(&small), false).await;
    assert_eq!((first.added, first.errors), (2, 0), "{first:?}");

    store.put(BUCKET, "c.txt", paragraphs(&["four"]).as_bytes());
    let before = sink.documents();
    let (wide_fake, wide) = embedder(16);
    let refused = sync(&connector, &store, &sink, Some(&wide), false).await;
    assert_eq!((refused.errors, refused.added), (1, 0), "{refused:?}");
    let message = &refused.error_messages[0];
    for expected in [
        "test:word-hash (8 dimensions)",
        "test:word-hash (16 dimensions)",
        "nothing was synced",
        "s3-connector sync --reembed",
    ] {
        assert!(message.contains(expected), "{expected:?} not in {message}");
    }
    assert_eq!(sink.documents(), before, "nothing was written");
    assert_eq!(wide_fake.embedded.load(Ordering::Relaxed), 0);

    let rebuilt = sync(&connector, &store, &sink, Some(&wide), true).await;
    assert_eq!(rebuilt.errors, 0, "{:?}", rebuilt.error_messages);
    assert_eq!(
        (rebuilt.added, rebuilt.updated, rebuilt.unchanged),
        (1, 2, 0)
    );
    assert_eq!((rebuilt.passages_embedded, rebuilt.passages_reused), (4, 0));
    for key in ["a.txt", "b.txt", "c.txt"] {
        assert_embedded(&sink, key, &wide_fake);
    }
    let recorded = sink.recorded_model().await.unwrap();
    assert_eq!(
        recorded,
        Some(EmbeddingModel {
            id: "test:word-hash".into(),
            dimensions: 16
        })
    );

    let after = sync(&connector, &store, &sink, Some(&wide), false).await;
    assert_eq!((after.unchanged, after.errors), (3, 0));
    assert_eq!(wide_fake.embedded.load(Ordering::Relaxed), 4);
}

#[tokio::test]
async fn turning_embedding_on_embeds_the_documents_already_indexed() {
    let (store, sink, connector) = setup(100);
    store.put(BUCKET, "a.txt", paragraphs(&["one", "two"]).as_bytes());
    store.put(BUCKET, "b.txt", paragraphs(&["three"]).as_bytes());
    let mut plain = self::connector(100);
    plain.embedding = None;
    let (fake, embedder) = embedder(8);
    let first = sync(&plain, &store, &sink, Some(&embedder), false).await;
    assert_eq!((first.added, first.passages_embedded), (2, 0), "{first:?}");
    assert!(document(&sink, "a.txt").passages.is_empty());
    assert_eq!(sink.recorded_model().await.unwrap(), None);

    let on = sync(&connector, &store, &sink, Some(&embedder), false).await;
    assert_eq!((on.updated, on.errors), (2, 0), "{on:?}");
    assert_eq!(on.passages_embedded, 3);
    assert_embedded(&sink, "a.txt", &fake);
    assert_embedded(&sink, "b.txt", &fake);

    let after = sync(&connector, &store, &sink, Some(&embedder), false).await;
    assert_eq!((after.unchanged, after.passages_embedded), (2, 0));
}

#[tokio::test]
async fn passages_past_the_cap_are_left_out_and_counted() {
    let (store, sink, connector) = setup(2);
    let topics = ["alpha", "bravo", "charlie", "delta", "echo"];
    store.put(BUCKET, "long.txt", paragraphs(&topics).as_bytes());
    store.put(BUCKET, "short.txt", paragraphs(&["one"]).as_bytes());
    let (fake, embedder) = embedder(8);
    let report = sync(&connector, &store, &sink, Some(&embedder), false).await;
    assert_eq!((report.added, report.errors), (2, 0), "{report:?}");
    assert_eq!((report.passages_capped, report.passages_embedded), (1, 3));
    assert_eq!(document(&sink, "long.txt").passages.len(), 2);
    assert_embedded(&sink, "long.txt", &fake);
}

#[tokio::test]
async fn event_keys_are_embedded_and_refused_under_another_model() {
    let (store, sink, connector) = setup(100);
    store.put(BUCKET, "a.txt", paragraphs(&["one", "two"]).as_bytes());
    let (fake, embedder) = embedder(8);
    let counters = Counters::default();
    let cancel = CancellationToken::new();
    let whole = super::Shard::whole();
    let ctx = SyncContext {
        connector: &connector,
        source: &store,
        sink: &sink,
        counters: &counters,
        cancel: &cancel,
        allow_mass_delete: false,
        retarget: false,
        shard: &whole,
        embedder: Some(&embedder),
        reembed: false,
    };
    let keys = [TouchedKey {
        bucket: BUCKET.into(),
        key: "a.txt".into(),
    }];
    let applied = apply_keys(&ctx, &keys, &mut HashSet::new()).await;
    assert_eq!(applied, [KeyResult::Applied]);
    assert_eq!(counters.passages_embedded.load(Ordering::Relaxed), 2);
    assert_embedded(&sink, "a.txt", &fake);
    // Events never record the model: only a full sync knows every document is embedded.
    assert_eq!(sink.recorded_model().await.unwrap(), None);

    let other = EmbeddingModel {
        id: "local:another-model".into(),
        dimensions: 8,
    };
    sink.record_model(&other).await.unwrap();
    store.put(BUCKET, "a.txt", paragraphs(&["three", "two"]).as_bytes());
    let refused = apply_keys(&ctx, &keys, &mut HashSet::new()).await;
    let [KeyResult::Failed(message)] = &refused[..] else {
        panic!("{refused:?}");
    };
    for expected in ["local:another-model (8 dimensions)", "--reembed"] {
        assert!(message.contains(expected), "{expected:?} not in {message}");
    }
    assert!(document(&sink, "a.txt").body.unwrap().starts_with("one"));
    assert_eq!(fake.embedded.load(Ordering::Relaxed), 2);
}
