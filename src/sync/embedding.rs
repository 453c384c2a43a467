//! Passages and vectors through the sync (connectors with `embedding:`).
//!
//! Every batch of documents on its way to the index passes [`embed_batch`] first: each
//! extracted body is cut into passages ([`embed::passages_of`]), and each passage gets a
//! vector — the one the index already holds for a passage of that document with the same
//! content hash (and so the same text, by the same model: [`check_model`] refused any other
//! model before the first write), or a new one from the model, in calls of up to
//! [`TEXTS_PER_CALL`] texts across the batch's documents. An unchanged object never gets here
//! (the listing skipped it without downloading it), so it costs no model call.
//!
//! A call that fails is tried again one document at a time, so a failure stays with the
//! document that caused it: that document is written for keyword search with its passages,
//! no vectors and `embedding_error`, counted as failed, and the sink answers
//! [`VersionStamp::UNFINISHED`](crate::sink::VersionStamp::UNFINISHED) for it, so the next
//! sync embeds it again. Nothing here is an error of the sync's writes.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt as _;
use futures::future::BoxFuture;

use super::plan::Change;
use super::{Counters, SyncContext};
use crate::config::embedding::PassageSettings;
use crate::embed::{self, EmbedError, Embedder, EmbeddingModel, Passage, PassageHash};
use crate::sink::{ContentStatus, Document, Sink, StoredPassage};
use crate::source::ObjectStore;

/// Passage texts sent to the embedder in one call: large enough for the model to batch well,
/// small enough that one failing call re-tries few documents.
pub const TEXTS_PER_CALL: usize = 64;

/// Calls to the embedder in flight at once, so that a provider with its own pool (the local
/// model) or a remote endpoint is never idle between two calls.
const CALLS_IN_FLIGHT: usize = 2;

/// What the index's recorded model means for a sync, decided before any write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ModelCheck {
    /// The connector has no `embedding:`: no passages, no vectors.
    Off,
    /// The index records this very model: vectors of unchanged passages are reused.
    Same,
    /// The index records no model yet (a new index, or one synced without `embedding:`).
    Unrecorded,
    /// The index records another model, and this sync rebuilds every vector (`--reembed`).
    Replaced(EmbeddingModel),
}

/// The connector's embedder and passage settings, when it has an `embedding:` block.
pub(super) fn embedding_of<'c, O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'c, O, S>,
) -> Option<(&'c Arc<dyn Embedder>, &'c PassageSettings)> {
    let settings = &ctx.connector.embedding.as_ref()?.passages;
    Some((ctx.embedder?, settings))
}

/// Compares the model the index records with the connector's; `Err` is the refusal (naming
/// both models and the way out) when they differ and the sync may not rebuild every vector.
pub(super) async fn check_model<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
) -> Result<ModelCheck, String> {
    let Some((embedder, _)) = embedding_of(ctx) else {
        return Ok(ModelCheck::Off);
    };
    let wanted = embedder.model();
    let recorded = ctx.sink.recorded_model().await.map_err(|error| {
        format!("cannot read the embedding model the index records, so nothing was synced: {error}")
    })?;
    match recorded {
        None => Ok(ModelCheck::Unrecorded),
        Some(recorded) if recorded == *wanted => Ok(ModelCheck::Same),
        Some(recorded) if ctx.reembed => {
            tracing::warn!(message = "Rebuilding every vector with another embedding model.", connector = %ctx.connector.id, from = %recorded, to = %wanted);
            Ok(ModelCheck::Replaced(recorded))
        }
        Some(recorded) => Err(model_refusal(ctx.connector.index_name(), &recorded, wanted)),
    }
}

/// The refusal of a sync whose model differs from the one the index records.
pub(super) fn model_refusal(
    index: &str,
    recorded: &EmbeddingModel,
    wanted: &EmbeddingModel,
) -> String {
    format!(
        "the index {index} holds vectors of the embedding model {recorded}, but this connector's embedding: \
         makes vectors of {wanted}; the two cannot be searched together, so nothing was synced. Run \
         `s3-connector sync --reembed` once to rebuild every vector with {wanted} (every object is downloaded \
         and embedded again), or set embedding: back to {recorded}"
    )
}

/// The passages of one document of a batch, on their way to vectors.
struct Work {
    /// The document's place in the batch.
    document: usize,
    passages: Vec<Passage>,
    vectors: Vec<Option<Vec<f32>>>,
    /// Passages whose vector came from the index.
    reused: u64,
    /// Whether `max_passages_per_document` cut some passages off.
    capped: bool,
    /// Why embedding failed, when it did.
    error: Option<String>,
}

/// Gives every extracted document of `batch` its passages and their vectors, when the
/// connector has `embedding:`; see the module's documentation. Counts passages embedded and
/// reused, capped documents and failures.
pub(super) async fn embed_batch<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    batch: &mut Vec<(Document, Change)>,
) {
    let Some((embedder, settings)) = embedding_of(ctx) else {
        return;
    };
    if batch.is_empty() {
        return;
    }
    let counters = ctx.counters;
    let (documents, mut works) = split(embedder, settings, std::mem::take(batch)).await;
    *batch = documents;
    for work in works.iter().filter(|work| work.capped) {
        let document = &batch[work.document].0;
        Counters::bump(&counters.passages_capped);
        tracing::warn!(
            message = "Kept the first passages of a document and left the rest out (max_passages_per_document).",
            bucket = %document.bucket,
            key = %document.key,
            max_passages_per_document = settings.max_passages_per_document
        );
    }
    if !ctx.reembed {
        reuse_vectors(ctx, embedder.model(), batch, &mut works).await;
    }
    embed_missing(&**embedder, &mut works).await;
    for work in works {
        let (document, _) = &mut batch[work.document];
        let embedded = work.vectors.iter().filter(|v| v.is_some()).count() as u64 - work.reused;
        let vectors = match work.error {
            Some(error) => {
                Counters::bump(&counters.embedding_failures);
                counters.error(format!(
                    "{}/{}: embedding its passages failed, so it was indexed for keyword search only; \
                     the next sync embeds it again: {error}",
                    document.bucket, document.key
                ));
                document.embedding_error = Some(error);
                vec![None; work.passages.len()]
            }
            None => {
                counters
                    .passages_embedded
                    .fetch_add(embedded, std::sync::atomic::Ordering::Relaxed);
                counters
                    .passages_reused
                    .fetch_add(work.reused, std::sync::atomic::Ordering::Relaxed);
                work.vectors
            }
        };
        document.passages = work
            .passages
            .into_iter()
            .zip(vectors)
            .map(|(passage, vector)| StoredPassage { passage, vector })
            .collect();
    }
}

/// Cuts the extracted bodies of `batch` into passages on the blocking pool (a tokenizer counts
/// every word): the batch back, and the work of each document that has passages.
async fn split(
    embedder: &Arc<dyn Embedder>,
    settings: &PassageSettings,
    mut batch: Vec<(Document, Change)>,
) -> (Vec<(Document, Change)>, Vec<Work>) {
    let embedder = Arc::clone(embedder);
    let settings = settings.clone();
    let cut = move || {
        let mut works = Vec::new();
        for (index, (document, _)) in batch.iter_mut().enumerate() {
            document.passages.clear();
            document.embedding_error = None;
            let body = match (&document.body, document.content_status) {
                (Some(body), ContentStatus::Extracted) => body,
                _ => continue,
            };
            let (passages, capped) = embed::passages_of(body, &*embedder, &settings);
            if passages.is_empty() {
                continue;
            }
            works.push(Work {
                document: index,
                vectors: vec![None; passages.len()],
                passages,
                reused: 0,
                capped,
                error: None,
            });
        }
        (batch, works)
    };
    tokio::task::spawn_blocking(cut)
        .await
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()))
}

/// Fills in the vectors the index holds for passages of updated documents with the same
/// content hash. A read that fails costs model calls, nothing else.
async fn reuse_vectors<O: ObjectStore, S: Sink>(
    ctx: &SyncContext<'_, O, S>,
    model: &EmbeddingModel,
    batch: &[(Document, Change)],
    works: &mut [Work],
) {
    // Futures made in a loop, not a closure: the compiler cannot prove a closure's future
    // Send for every lifetime, which the worker's `tokio::spawn` needs.
    let mut reads: Vec<BoxFuture<'_, _>> = Vec::new();
    for (at, work) in works.iter().enumerate() {
        let (document, change) = &batch[work.document];
        if *change == Change::Updated {
            let id = document.id;
            reads.push(Box::pin(async move {
                (at, id, ctx.sink.passage_vectors(id).await)
            }));
        }
    }
    let stored: Vec<_> = futures::stream::iter(reads)
        .buffer_unordered(ctx.connector.concurrency)
        .collect()
        .await;
    for (at, id, vectors) in stored {
        let vectors: HashMap<PassageHash, Vec<f32>> = match vectors {
            Ok(vectors) => vectors
                .into_iter()
                .filter(|(_, vector)| vector.len() == model.dimensions)
                .collect(),
            Err(error) => {
                tracing::warn!(message = "Could not read a document's stored vectors; embedding all its passages.", document = %id, %error);
                continue;
            }
        };
        let work = &mut works[at];
        for (passage, slot) in work.passages.iter().zip(&mut work.vectors) {
            if let Some(vector) = vectors.get(&passage.content_hash) {
                *slot = Some(vector.clone());
                work.reused += 1;
            }
        }
    }
}

/// Embeds every passage still without a vector, [`TEXTS_PER_CALL`] at a time across the
/// documents; a failed call is tried again per document, and a document whose own call fails
/// gets its error.
async fn embed_missing(embedder: &dyn Embedder, works: &mut [Work]) {
    // (work, passage) of each text to embed, in order; the texts are moved out of their
    // passages for the calls and put back after.
    let mut missing: Vec<(usize, usize)> = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    for (at, work) in works.iter_mut().enumerate() {
        for (ordinal, passage) in work.passages.iter_mut().enumerate() {
            if work.vectors[ordinal].is_none() {
                missing.push((at, ordinal));
                texts.push(std::mem::take(&mut passage.text));
            }
        }
    }
    if texts.is_empty() {
        return;
    }
    let mut calls: Vec<BoxFuture<'_, _>> = Vec::new();
    for (call, chunk) in texts.chunks(TEXTS_PER_CALL).enumerate() {
        calls.push(Box::pin(async move {
            (call, embed_checked(embedder, chunk).await)
        }));
    }
    let answers: Vec<_> = futures::stream::iter(calls)
        .buffered(CALLS_IN_FLIGHT)
        .collect()
        .await;
    for (call, answer) in answers {
        let from = call * TEXTS_PER_CALL;
        let to = (from + TEXTS_PER_CALL).min(texts.len());
        let vectors = match answer {
            Ok(vectors) => vectors,
            Err(error) => {
                retry_per_document(embedder, works, &missing[from..to], &texts[from..to], error)
                    .await;
                continue;
            }
        };
        for (&(at, ordinal), vector) in missing[from..to].iter().zip(vectors) {
            works[at].vectors[ordinal] = Some(vector);
        }
    }
    for ((at, ordinal), text) in missing.into_iter().zip(texts) {
        works[at].passages[ordinal].text = text;
    }
}

/// Embeds the texts of one failed call again, one document's texts per call, so that only the
/// documents that fail on their own fail. A failed call of one document's texts fails it.
async fn retry_per_document(
    embedder: &dyn Embedder,
    works: &mut [Work],
    missing: &[(usize, usize)],
    texts: &[String],
    error: EmbedError,
) {
    let Some(&(first, _)) = missing.first() else {
        return;
    };
    if missing.iter().all(|(at, _)| *at == first) {
        works[first].error.get_or_insert_with(|| error.to_string());
        return;
    }
    let mut start = 0;
    while start < missing.len() {
        let at = missing[start].0;
        let end = start
            + missing[start..]
                .iter()
                .take_while(|(work, _)| *work == at)
                .count();
        if works[at].error.is_none() {
            match embed_checked(embedder, &texts[start..end]).await {
                Ok(vectors) => {
                    for (&(_, ordinal), vector) in missing[start..end].iter().zip(vectors) {
                        works[at].vectors[ordinal] = Some(vector);
                    }
                }
                Err(error) => works[at].error = Some(error.to_string()),
            }
        }
        start = end;
    }
}

/// One call of the embedder, its answer held to the contract: one vector per text, each of
/// the model's dimensions.
async fn embed_checked(
    embedder: &dyn Embedder,
    texts: &[String],
) -> Result<Vec<Vec<f32>>, EmbedError> {
    let vectors = embedder.embed(texts).await?;
    let dimensions = embedder.model().dimensions;
    if vectors.len() != texts.len() || vectors.iter().any(|v| v.len() != dimensions) {
        return Err(EmbedError::Shape {
            expected: format!("{} vectors of {dimensions}", texts.len()),
            got: match vectors.iter().find(|v| v.len() != dimensions) {
                Some(wrong) if vectors.len() == texts.len() => {
                    format!("a vector of {}", wrong.len())
                }
                _ => format!("{} vectors", vectors.len()),
            },
        });
    }
    Ok(vectors)
}
