//! Writes: upserts, deletes and commits through the directory's single tantivy writer, opened
//! on the first write so that a process that only searches never takes the lock.

use std::sync::MutexGuard;

use tantivy::directory::error::LockError;
use tantivy::merge_policy::LogMergePolicy;
use tantivy::{IndexWriter, TantivyError, Term};

use super::{EmbeddedError, Inner};
use crate::sink::{DocId, Document, RejectedDocuments};

/// Memory the writer may fill with new documents before it flushes a segment to disk: most of a
/// full sync's memory, so it keeps the sync's peak RSS under 96 MiB (measured in
/// docs/benchmarks.md, with what the smaller budget costs in speed). tantivy gives each indexing thread
/// at least 15 MB, so this allows three threads at most.
pub(super) const WRITER_HEAP_BYTES: usize = 48_000_000;

/// Segments with more documents than this are not merged again. A merge holds memory in
/// proportion to the documents it merges (about 20 bytes each: the new doc ids, the ordinals of
/// the string columns), and tantivy's default (10 million) lets the last merges of a big index
/// take all of it: writing 5 million documents peaked at 151 MiB of anonymous memory, 108 MiB
/// with this cap, and ran faster (113 s against 149 s; docs/benchmarks.md, "Memory at 50,000
/// and 400,000 objects"). Merges stay within about ten segments of this size, so an index
/// keeps a few dozen segments at most per ten million documents.
pub(super) const MAX_DOCS_BEFORE_MERGE: usize = 200_000;

/// Whether an added document replaces a committed copy of itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Replace {
    /// It may be in the index: delete any copy first.
    Any,
    /// The caller knows it is not: no delete is queued.
    None,
}

impl Inner {
    /// Runs `operation` with the writer, opening it (and taking the directory lock) if needed.
    /// The writer slot, locked (`None` until the first write opens the writer).
    fn writer_slot(&self) -> Result<MutexGuard<'_, Option<IndexWriter>>, EmbeddedError> {
        self.writer
            .lock()
            .map_err(|_| EmbeddedError::WriterPoisoned {
                path: self.path.clone(),
            })
    }

    fn with_writer<T>(
        &self,
        operation: impl FnOnce(&mut IndexWriter) -> Result<T, EmbeddedError>,
    ) -> Result<T, EmbeddedError> {
        let mut slot = self.writer_slot()?;
        if let Some(writer) = slot.as_mut() {
            return operation(writer);
        }
        let opened = match self.writer_threads {
            Some(threads) => self
                .index
                .writer_with_num_threads(threads, WRITER_HEAP_BYTES),
            None => self.index.writer(WRITER_HEAP_BYTES),
        };
        let writer = opened.map_err(|cause| match cause {
            TantivyError::LockFailure(LockError::LockBusy, _) => EmbeddedError::Locked {
                path: self.path.clone(),
            },
            cause => self.tantivy_error("opening a writer on")(cause),
        })?;
        let mut merges = LogMergePolicy::default();
        merges.set_max_docs_before_merge(MAX_DOCS_BEFORE_MERGE);
        writer.set_merge_policy(Box::new(merges));
        operation(slot.insert(writer))
    }

    pub(super) fn add(
        &self,
        documents: Vec<Document>,
        replace: Replace,
    ) -> Result<RejectedDocuments, EmbeddedError> {
        self.with_writer(|writer| {
            let mut rejected = RejectedDocuments::new();
            for document in &documents {
                let Some(doc) = self.fields.encode(document) else {
                    rejected.push((
                        document.id,
                        "a date lies outside the years 1677 to 2262, which the embedded index \
                         cannot store"
                            .to_owned(),
                    ));
                    continue;
                };
                // Delete first: a delete removes every matching document added before it,
                // so the other order would remove the new document too. The old copy's
                // passages go with it, in the same commit as the new ones come.
                if replace == Replace::Any {
                    self.delete_one(writer, document.id);
                }
                writer
                    .add_document(doc)
                    .map_err(self.tantivy_error("adding a document to"))?;
                for passage in self.fields.encode_passages(document) {
                    writer
                        .add_document(passage)
                        .map_err(self.tantivy_error("adding a passage to"))?;
                }
            }
            Ok(rejected)
        })
    }

    pub(super) fn delete(&self, ids: Vec<DocId>) -> Result<(), EmbeddedError> {
        self.with_writer(|writer| {
            for id in ids {
                self.delete_one(writer, id);
            }
            Ok(())
        })
    }

    /// Queues the delete of document `id` and its passages.
    fn delete_one(&self, writer: &mut IndexWriter, id: DocId) {
        let hex = id.to_hex();
        writer.delete_term(Term::from_field_text(self.fields.id, &hex));
        writer.delete_term(Term::from_field_text(self.fields.passage_of, &hex));
    }

    pub(super) fn commit(&self) -> Result<(), EmbeddedError> {
        let mut slot = self.writer_slot()?;
        // Without a writer there is nothing of ours to commit; reloading still picks up what
        // another process committed.
        if let Some(writer) = slot.as_mut() {
            writer
                .commit()
                .map_err(self.tantivy_error("committing to"))?;
        }
        drop(slot);
        self.reader
            .reload()
            .map_err(self.tantivy_error("reloading"))
    }
}
