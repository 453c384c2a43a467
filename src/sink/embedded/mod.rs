//! The embedded search index: a tantivy index in a local directory, implementing [`Sink`].
//!
//! This is the default sink, for users without a search cluster. It owns the on-disk format
//! (see `schema.rs`) and the single tantivy writer of that directory. It knows nothing of S3 or of
//! how a sync decides what to write; it is not a server either: other processes can search the
//! same directory, but only one can write it at a time.

mod schema;

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tantivy::collector::TopDocs;
use tantivy::columnar::StrColumn;
use tantivy::directory::MmapDirectory;
use tantivy::directory::error::LockError;
use tantivy::query::{QueryParser, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{
    DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, SegmentReader, TERMINATED,
    TantivyDocument, TantivyError, Term,
};

use self::schema::Fields;
use crate::sink::{DocId, Document, RejectedDocuments, SearchHit, Sink, SinkError, VersionStamp};

/// Memory the writer may fill with new documents before it flushes a segment to disk.
const WRITER_HEAP_BYTES: usize = 100_000_000;

/// Errors of the embedded index. Every message names the index directory.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The index directory could not be created.
    #[error("cannot create the index directory {path}: {cause}")]
    CreateDir {
        /// The index directory.
        path: PathBuf,
        /// Why creation failed.
        cause: std::io::Error,
    },

    /// The directory holds an index written with another schema.
    #[error(
        "the index at {path} was written with a different layout than this version of \
         s3-connector uses; move the directory aside (or delete it) and run a sync to rebuild it"
    )]
    SchemaMismatch {
        /// The index directory.
        path: PathBuf,
    },

    /// Another writer (usually another s3-connector process) holds the index's write lock.
    #[error(
        "another s3-connector process holds the index at {path} for writing; wait for it to \
         finish (or stop it) and try again"
    )]
    Locked {
        /// The index directory.
        path: PathBuf,
    },

    /// A tantivy operation failed.
    #[error("{action} the index at {path} failed: {cause}")]
    Tantivy {
        /// What was being done, as a phrase ("opening", "committing to", ...).
        action: &'static str,
        /// The index directory.
        path: PathBuf,
        /// The tantivy error.
        cause: TantivyError,
    },

    /// The index holds data this module cannot have written.
    #[error(
        "the index at {path} is damaged ({detail}); delete the directory and run a sync to \
         rebuild it"
    )]
    Corrupt {
        /// The index directory.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },

    /// An earlier write panicked while holding the writer, which may now be half-updated.
    #[error(
        "an earlier write to the index at {path} crashed; restart s3-connector (writes since \
         the last commit are lost and the next sync redoes them)"
    )]
    WriterPoisoned {
        /// The index directory.
        path: PathBuf,
    },

    /// The blocking task running an index operation panicked or was cancelled.
    #[error("the background task working on the index at {path} failed: {cause}")]
    Task {
        /// The index directory.
        path: PathBuf,
        /// The join error.
        cause: tokio::task::JoinError,
    },
}

/// The embedded tantivy index of one directory. Clones share the same index and writer.
///
/// The [`Sink`] methods run tantivy on tokio's blocking pool; the inherent methods block the
/// calling thread.
#[derive(Clone)]
pub struct EmbeddedIndex {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    index: Index,
    fields: Fields,
    reader: IndexReader,
    query_parser: QueryParser,
    /// Indexing threads of the writer; `None` lets tantivy pick one per core.
    writer_threads: Option<usize>,
    /// Opened on the first write, so that a process that only searches never takes the lock.
    writer: Mutex<Option<IndexWriter>>,
}

impl EmbeddedIndex {
    /// Whether `dir` holds an index (tantivy's `meta.json`, written when the index is created).
    pub fn exists(dir: &Path) -> bool {
        dir.join("meta.json").is_file()
    }

    /// Opens the index in `dir`, creating the directory and an empty index if missing.
    pub fn open_or_create(dir: &Path) -> Result<Self, EmbeddedError> {
        Self::open(dir, None)
    }

    /// [`Self::open_or_create`] with a set number of indexing threads; tests use one thread so
    /// that a commit makes exactly one segment.
    fn open(dir: &Path, writer_threads: Option<usize>) -> Result<Self, EmbeddedError> {
        let path = dir.to_path_buf();
        fs::create_dir_all(dir).map_err(|cause| EmbeddedError::CreateDir {
            path: path.clone(),
            cause,
        })?;
        let tantivy_error = |action: &'static str| {
            let path = path.clone();
            move |cause: TantivyError| EmbeddedError::Tantivy {
                action,
                path,
                cause,
            }
        };

        let directory = MmapDirectory::open(dir)
            .map_err(|cause| tantivy_error("opening")(TantivyError::from(cause)))?;
        let (schema, fields) = schema::build();
        let index = Index::open_or_create(directory, schema).map_err(|cause| match cause {
            TantivyError::SchemaError(_) => EmbeddedError::SchemaMismatch { path: path.clone() },
            cause => tantivy_error("opening")(cause),
        })?;
        // Commit-watching lets a search-only process see what a syncing process commits;
        // our own commits reload explicitly so they are visible at once.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()
            .map_err(tantivy_error("opening a reader on"))?;
        let query_parser = QueryParser::for_index(
            &index,
            vec![fields.body, fields.filename, fields.key, fields.title],
        );

        Ok(Self {
            inner: Arc::new(Inner {
                path,
                index,
                fields,
                reader,
                query_parser,
                writer_threads,
                writer: Mutex::new(None),
            }),
        })
    }

    /// Number of committed documents, as of the last commit this process saw.
    pub fn count(&self) -> Result<u64, EmbeddedError> {
        Ok(self.inner.reader.searcher().num_docs())
    }

    /// The committed document with this id, rebuilt from stored fields (for tests and tools).
    pub fn get(&self, id: DocId) -> Result<Option<Document>, EmbeddedError> {
        self.inner.get(id)
    }

    /// Runs `operation` on a blocking thread: tantivy does file I/O and CPU work synchronously.
    async fn blocking<T, F>(&self, operation: F) -> Result<T, SinkError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, EmbeddedError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let outcome = tokio::task::spawn_blocking(move || operation(&inner)).await;
        match outcome {
            Ok(result) => result.map_err(SinkError::from),
            Err(cause) => Err(EmbeddedError::Task {
                path: self.inner.path.clone(),
                cause,
            }
            .into()),
        }
    }
}

impl std::fmt::Debug for EmbeddedIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedIndex")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn tantivy_error(&self, action: &'static str) -> impl FnOnce(TantivyError) -> EmbeddedError {
        let path = self.path.clone();
        move |cause| EmbeddedError::Tantivy {
            action,
            path,
            cause,
        }
    }

    fn corrupt(&self, detail: String) -> EmbeddedError {
        EmbeddedError::Corrupt {
            path: self.path.clone(),
            detail,
        }
    }

    /// Runs `operation` with the writer, opening it (and taking the directory lock) if needed.
    fn with_writer<T>(
        &self,
        operation: impl FnOnce(&mut IndexWriter) -> Result<T, EmbeddedError>,
    ) -> Result<T, EmbeddedError> {
        let mut slot = self
            .writer
            .lock()
            .map_err(|_| EmbeddedError::WriterPoisoned {
                path: self.path.clone(),
            })?;
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
        operation(slot.insert(writer))
    }

    fn upsert(&self, documents: Vec<Document>) -> Result<RejectedDocuments, EmbeddedError> {
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
                // so the other order would remove the new document too.
                writer.delete_term(Term::from_field_text(self.fields.id, &document.id.to_hex()));
                writer
                    .add_document(doc)
                    .map_err(self.tantivy_error("adding a document to"))?;
            }
            Ok(rejected)
        })
    }

    fn delete(&self, ids: Vec<DocId>) -> Result<(), EmbeddedError> {
        self.with_writer(|writer| {
            for id in ids {
                writer.delete_term(Term::from_field_text(self.fields.id, &id.to_hex()));
            }
            Ok(())
        })
    }

    fn commit(&self) -> Result<(), EmbeddedError> {
        let mut slot = self
            .writer
            .lock()
            .map_err(|_| EmbeddedError::WriterPoisoned {
                path: self.path.clone(),
            })?;
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

    fn get(&self, id: DocId) -> Result<Option<Document>, EmbeddedError> {
        let searcher = self.reader.searcher();
        let query = TermQuery::new(
            Term::from_field_text(self.fields.id, &id.to_hex()),
            IndexRecordOption::Basic,
        );
        let top = searcher
            .search(&query, &TopDocs::with_limit(1).order_by_score())
            .map_err(self.tantivy_error("looking up a document in"))?;
        let Some((_, address)) = top.first() else {
            return Ok(None);
        };
        let doc: TantivyDocument = searcher
            .doc(*address)
            .map_err(self.tantivy_error("reading a document from"))?;
        self.fields
            .decode(&doc)
            .map(Some)
            .map_err(|detail| self.corrupt(detail))
    }

    fn indexed_buckets(&self) -> Result<Vec<String>, EmbeddedError> {
        let searcher = self.reader.searcher();
        let mut buckets = BTreeSet::new();
        for segment in searcher.segment_readers() {
            let inverted = segment
                .inverted_index(self.fields.bucket)
                .map_err(self.tantivy_error("reading buckets of"))?;
            let io_error = |cause: std::io::Error| {
                self.tantivy_error("reading buckets of")(TantivyError::from(cause))
            };
            let mut terms = inverted.terms().stream().map_err(io_error)?;
            while terms.advance() {
                // The term dictionary still lists the terms of deleted documents until the
                // segment is merged, so a bucket counts only with an alive document.
                let alive = if segment.has_deletes() {
                    let mut postings = inverted
                        .read_postings_from_terminfo(terms.value(), IndexRecordOption::Basic)
                        .map_err(io_error)?;
                    has_alive_doc(segment, &mut postings)
                } else {
                    true
                };
                if alive {
                    let bucket = std::str::from_utf8(terms.key())
                        .map_err(|_| self.corrupt("a bucket name is not valid UTF-8".to_owned()))?;
                    buckets.insert(bucket.to_owned());
                }
            }
        }
        Ok(buckets.into_iter().collect())
    }

    fn indexed_versions(
        &self,
        bucket: &str,
    ) -> Result<HashMap<DocId, VersionStamp>, EmbeddedError> {
        let searcher = self.reader.searcher();
        let bucket_term = Term::from_field_text(self.fields.bucket, bucket);
        let mut versions = HashMap::new();
        for segment in searcher.segment_readers() {
            let inverted = segment
                .inverted_index(self.fields.bucket)
                .map_err(self.tantivy_error("reading versions from"))?;
            let postings = inverted
                .read_postings(&bucket_term, IndexRecordOption::Basic)
                .map_err(|cause| {
                    self.tantivy_error("reading versions from")(TantivyError::from(cause))
                })?;
            if let Some(mut postings) = postings {
                self.segment_versions(segment, &mut postings, &mut versions)?;
            }
        }
        Ok(versions)
    }

    /// Adds the stamps of the alive documents in `postings` to `versions`, from fast fields only.
    fn segment_versions(
        &self,
        segment: &SegmentReader,
        postings: &mut impl DocSet,
        versions: &mut HashMap<DocId, VersionStamp>,
    ) -> Result<(), EmbeddedError> {
        let error = |cause: TantivyError| self.tantivy_error("reading versions from")(cause);
        let fast = segment.fast_fields();
        let missing = |name: &str| self.corrupt(format!("the `{name}` column is missing"));
        let ids = fast
            .str(schema::ID)
            .map_err(error)?
            .ok_or_else(|| missing(schema::ID))?;
        let etags = fast
            .str(schema::ETAG)
            .map_err(error)?
            .ok_or_else(|| missing(schema::ETAG))?;
        let sizes = fast.u64(schema::SIZE_IN_BYTES).map_err(error)?;
        let dates = fast.date(schema::LAST_MODIFIED).map_err(error)?;

        // Strings are resolved afterwards in ordinal order, one pass over each dictionary,
        // instead of one dictionary lookup per document.
        let mut rows = Vec::new();
        let mut doc = postings.doc();
        while doc != TERMINATED {
            if !segment.is_deleted(doc) {
                let row = (
                    ids.ords().first(doc),
                    etags.ords().first(doc),
                    sizes.first(doc),
                    dates.first(doc),
                );
                let (Some(id_ord), Some(etag_ord), Some(size), Some(date)) = row else {
                    return Err(self.corrupt(format!(
                        "document #{doc} of a segment lacks a version column"
                    )));
                };
                rows.push(Row {
                    id_ord,
                    etag_ord,
                    size,
                    last_modified: date.into_utc(),
                });
            }
            doc = postings.advance();
        }

        let mut stamps = vec![None; rows.len()];
        let etag_ords: Vec<u64> = rows.iter().map(|row| row.etag_ord).collect();
        self.for_each_term(&etags, &etag_ords, |index, etag| {
            let row = &rows[index];
            stamps[index] = Some(VersionStamp::of(etag, row.last_modified, row.size));
            Ok(())
        })?;
        let id_ords: Vec<u64> = rows.iter().map(|row| row.id_ord).collect();
        self.for_each_term(&ids, &id_ords, |index, hex_id| {
            let id = DocId::from_hex(hex_id)
                .ok_or_else(|| format!("the stored id `{hex_id}` is not 32 hex characters"))?;
            let stamp = stamps[index].ok_or_else(|| format!("document {id} has no etag"))?;
            versions.insert(id, stamp);
            Ok(())
        })
    }

    /// Calls `each(i, term)` with the term of `ords[i]` for every `i`, walking the column's
    /// dictionary once in ordinal order.
    fn for_each_term(
        &self,
        column: &StrColumn,
        ords: &[u64],
        mut each: impl FnMut(usize, &str) -> Result<(), String>,
    ) -> Result<(), EmbeddedError> {
        let mut order: Vec<usize> = (0..ords.len()).collect();
        order.sort_unstable_by_key(|&index| ords[index]);
        let sorted: Vec<u64> = order.iter().map(|&index| ords[index]).collect();
        let mut position = 0;
        let mut failure = None;
        let all_found = column
            .dictionary()
            .sorted_ords_to_term_cb(&sorted, |bytes| {
                if failure.is_none() {
                    let outcome = std::str::from_utf8(bytes)
                        .map_err(|_| "a column holds a term that is not UTF-8".to_owned())
                        .and_then(|term| each(order[position], term));
                    failure = outcome.err();
                }
                position += 1;
            })
            .map_err(|cause| {
                self.tantivy_error("reading versions from")(TantivyError::from(cause))
            })?;
        if let Some(detail) = failure {
            return Err(self.corrupt(detail));
        }
        if !all_found {
            return Err(self.corrupt("a column refers to a term its dictionary lacks".to_owned()));
        }
        Ok(())
    }

    fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, EmbeddedError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Lenient: a stray quote or colon in what a person typed should still search.
        let (query, _ignored_errors) = self.query_parser.parse_query_lenient(query);
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&query, &TopDocs::with_limit(limit).order_by_score())
            .map_err(self.tantivy_error("searching"))?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher
                .doc(address)
                .map_err(self.tantivy_error("reading a search hit from"))?;
            let text = |field, name: &str| {
                doc.get_first(field)
                    .and_then(|value| value.as_str())
                    .map(str::to_owned)
                    .ok_or_else(|| self.corrupt(format!("a document has no stored `{name}`")))
            };
            hits.push(SearchHit {
                id: text(self.fields.id, schema::ID)?,
                bucket: text(self.fields.bucket, schema::BUCKET)?,
                key: text(self.fields.key, schema::KEY)?,
                score,
            });
        }
        Ok(hits)
    }
}

/// The version-relevant columns of one document, before its strings are resolved.
struct Row {
    id_ord: u64,
    etag_ord: u64,
    size: u64,
    last_modified: time::OffsetDateTime,
}

/// Whether `postings`, from its current position, holds a document not deleted in `segment`.
fn has_alive_doc(segment: &SegmentReader, postings: &mut impl DocSet) -> bool {
    let mut doc = postings.doc();
    while doc != TERMINATED {
        if !segment.is_deleted(doc) {
            return true;
        }
        doc = postings.advance();
    }
    false
}

impl Sink for EmbeddedIndex {
    async fn indexed_buckets(&self) -> Result<Vec<String>, SinkError> {
        self.blocking(Inner::indexed_buckets).await
    }

    async fn indexed_versions(
        &self,
        bucket: &str,
    ) -> Result<HashMap<DocId, VersionStamp>, SinkError> {
        let bucket = bucket.to_owned();
        self.blocking(move |inner| inner.indexed_versions(&bucket))
            .await
    }

    async fn upsert(&self, documents: Vec<Document>) -> Result<RejectedDocuments, SinkError> {
        self.blocking(move |inner| inner.upsert(documents)).await
    }

    async fn delete(&self, ids: Vec<DocId>) -> Result<(), SinkError> {
        self.blocking(move |inner| inner.delete(ids)).await
    }

    async fn commit(&self) -> Result<(), SinkError> {
        self.blocking(Inner::commit).await
    }

    async fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, SinkError> {
        let query = query.to_owned();
        self.blocking(move |inner| inner.search(&query, limit))
            .await
    }
}

#[cfg(test)]
mod tests {
    use time::{OffsetDateTime, UtcOffset};

    use super::*;
    use crate::sink::ContentStatus;

    fn at_millis(millis: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).unwrap()
    }

    /// A document with every optional field but `extraction_error` set.
    fn full_doc(bucket: &str, key: &str, body: &str) -> Document {
        let filename = key.rsplit('/').next().unwrap().to_owned();
        Document {
            id: DocId::of(bucket, key),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            extension: filename
                .rfind('.')
                .map(|dot| filename[dot..].to_lowercase())
                .unwrap_or_default(),
            filename,
            size_in_bytes: body.len() as u64,
            last_modified: at_millis(1_700_000_000_123),
            etag: "\"9b2cf535f27731c974343645a3985328\"".to_owned(),
            content_type: Some("text/plain".to_owned()),
            storage_class: Some("STANDARD".to_owned()),
            url: format!("s3://{bucket}/{key}"),
            title: Some("A title".to_owned()),
            body: Some(body.to_owned()),
            content_status: ContentStatus::Extracted,
            extraction_error: None,
            indexed_at: at_millis(1_700_000_100_000),
        }
    }

    /// An index holding `documents`, committed; one writer thread makes one segment per commit.
    async fn index_with(dir: &Path, documents: Vec<Document>) -> EmbeddedIndex {
        let index = EmbeddedIndex::open(dir, Some(1)).unwrap();
        assert!(index.upsert(documents).await.unwrap().is_empty());
        index.commit().await.unwrap();
        index
    }

    #[tokio::test]
    async fn committed_documents_round_trip_through_get() {
        let dir = tempfile::tempdir().unwrap();
        let mut full = full_doc("bucket-a", "docs/Report 2024.PDF", "quarterly numbers");
        full.content_status = ContentStatus::Error;
        full.extraction_error = Some("pdf: encrypted".to_owned());
        // Nanoseconds and a non-UTC offset: the stored instant must survive exactly.
        full.indexed_at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789)
            .unwrap()
            .to_offset(UtcOffset::from_hms(2, 0, 0).unwrap());
        let bare = Document {
            content_type: None,
            storage_class: None,
            title: None,
            body: None,
            extraction_error: None,
            content_status: ContentStatus::Archived,
            size_in_bytes: u64::MAX,
            ..full_doc("bucket-b", "cold/archive.tar", "")
        };
        let mut empty_strings = full_doc("bucket-b", "empty", "");
        empty_strings.title = Some(String::new());
        empty_strings.content_type = Some(String::new());

        let index = index_with(
            dir.path(),
            vec![full.clone(), bare.clone(), empty_strings.clone()],
        )
        .await;

        assert_eq!(index.count().unwrap(), 3);
        assert_eq!(index.get(full.id).unwrap(), Some(full));
        assert_eq!(index.get(bare.id).unwrap(), Some(bare));
        assert_eq!(index.get(empty_strings.id).unwrap(), Some(empty_strings));
        assert_eq!(index.get(DocId::of("bucket-a", "absent")).unwrap(), None);
    }

    #[tokio::test]
    async fn upserting_an_id_again_replaces_the_document() {
        let dir = tempfile::tempdir().unwrap();
        let first = full_doc("b", "notes.txt", "old text");
        let index = index_with(dir.path(), vec![first.clone()]).await;

        let mut second = first.clone();
        second.body = Some("new text".to_owned());
        second.etag = "\"new\"".to_owned();
        index.upsert(vec![second.clone()]).await.unwrap();
        index.commit().await.unwrap();

        assert_eq!(index.count().unwrap(), 1);
        assert_eq!(index.get(first.id).unwrap(), Some(second.clone()));

        // Twice in one batch: the later one wins.
        let mut third = second.clone();
        third.etag = "\"third\"".to_owned();
        index.upsert(vec![second, third.clone()]).await.unwrap();
        index.commit().await.unwrap();
        assert_eq!(index.count().unwrap(), 1);
        assert_eq!(index.get(first.id).unwrap(), Some(third));
    }

    #[tokio::test]
    async fn deletes_take_effect_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let kept = full_doc("b", "kept.txt", "kept");
        let gone = full_doc("b", "gone.txt", "gone");
        let index = index_with(dir.path(), vec![kept.clone(), gone.clone()]).await;

        index
            .delete(vec![gone.id, DocId::of("b", "never-indexed")])
            .await
            .unwrap();
        assert_eq!(index.get(gone.id).unwrap(), Some(gone.clone()));

        index.commit().await.unwrap();
        assert_eq!(index.count().unwrap(), 1);
        assert_eq!(index.get(gone.id).unwrap(), None);
        assert_eq!(index.get(kept.id).unwrap(), Some(kept));
    }

    #[tokio::test]
    async fn uncommitted_writes_are_invisible() {
        let dir = tempfile::tempdir().unwrap();
        let index = EmbeddedIndex::open(dir.path(), Some(1)).unwrap();
        let doc = full_doc("b", "pending.txt", "platypus");
        index.upsert(vec![doc.clone()]).await.unwrap();

        assert_eq!(index.count().unwrap(), 0);
        assert_eq!(index.get(doc.id).unwrap(), None);
        assert!(index.search("platypus", 10).await.unwrap().is_empty());
        assert!(index.indexed_buckets().await.unwrap().is_empty());
        assert!(index.indexed_versions("b").await.unwrap().is_empty());

        index.commit().await.unwrap();
        assert_eq!(index.count().unwrap(), 1);
        assert_eq!(index.search("platypus", 10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_bucket_disappears_with_its_last_document() {
        let dir = tempfile::tempdir().unwrap();
        let alphas: Vec<Document> = (0..5)
            .map(|n| full_doc("alpha", &format!("{n}.txt"), "text"))
            .collect();
        let beta = full_doc("beta", "1.txt", "one");
        let mut documents = alphas.clone();
        documents.insert(2, beta.clone());
        let index = index_with(dir.path(), documents).await;
        assert_eq!(index.indexed_buckets().await.unwrap(), ["alpha", "beta"]);

        // Few enough deletes that tantivy keeps the segment, and with it the `beta` term.
        index.delete(vec![alphas[0].id, beta.id]).await.unwrap();
        index.commit().await.unwrap();
        assert_eq!(index.indexed_buckets().await.unwrap(), ["alpha"]);
    }

    #[tokio::test]
    async fn indexed_versions_lists_the_alive_documents_of_one_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let mut a1 = full_doc("alpha", "1.txt", "one");
        let a2 = full_doc("alpha", "2.txt", "two");
        let a3 = full_doc("alpha", "3.txt", "three");
        let b1 = full_doc("beta", "1.txt", "one");
        let mut first_batch = vec![a1.clone(), a2.clone(), b1.clone()];
        // Padding keeps the deleted share of the segment low enough that it is not merged away.
        first_batch.extend((0..6).map(|n| full_doc("gamma", &format!("{n}"), "pad")));
        let index = index_with(dir.path(), first_batch).await;

        // A second segment, an update and a delete, so that stale copies exist on disk.
        a1.etag = "\"changed\"".to_owned();
        a1.last_modified = at_millis(1_800_000_000_999);
        a1.size_in_bytes = 12_345;
        index.upsert(vec![a1.clone(), a3.clone()]).await.unwrap();
        index.delete(vec![a2.id]).await.unwrap();
        index.commit().await.unwrap();

        let alpha = index.indexed_versions("alpha").await.unwrap();
        let expected: HashMap<_, _> = [(a1.id, a1.version()), (a3.id, a3.version())].into();
        assert_eq!(alpha, expected);
        assert_ne!(alpha[&a1.id], full_doc("alpha", "1.txt", "one").version());

        let beta = index.indexed_versions("beta").await.unwrap();
        assert_eq!(beta, HashMap::from([(b1.id, b1.version())]));
        assert_eq!(index.indexed_versions("gamma").await.unwrap().len(), 6);
        assert!(index.indexed_versions("delta").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn search_ranks_by_relevance_and_covers_filename_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let with_body = full_doc("b", "animals/kangaroo-facts.txt", "the kangaroo hops far");
        let without_body = full_doc("b", "animals/kangaroo-list.txt", "nothing relevant here");
        let by_filename = full_doc("b", "misc/wombat.md", "burrows");
        let by_key = full_doc("b", "platypus/readme.md", "egg laying");
        let index = index_with(
            dir.path(),
            vec![
                without_body.clone(),
                with_body.clone(),
                by_filename.clone(),
                by_key.clone(),
            ],
        )
        .await;

        let hits = index.search("kangaroo", 10).await.unwrap();
        let keys: Vec<&str> = hits.iter().map(|hit| hit.key.as_str()).collect();
        assert_eq!(keys, [with_body.key.as_str(), without_body.key.as_str()]);
        assert!(hits[0].score > hits[1].score);
        assert_eq!(hits[0].id, with_body.id.to_hex());
        assert_eq!(hits[0].bucket, "b");

        let hits = index.search("wombat", 10).await.unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].key, by_filename.key);

        let hits = index.search("platypus", 10).await.unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].key, by_key.key);

        assert_eq!(index.search("kangaroo", 1).await.unwrap().len(), 1);
        assert!(index.search("kangaroo", 0).await.unwrap().is_empty());
        // A stray quote is a typo, not an error.
        let hits = index.search("\"wombat", 10).await.unwrap();
        assert_eq!(hits.len(), 1);
    }

    #[tokio::test]
    async fn reopening_keeps_committed_documents_only() {
        let dir = tempfile::tempdir().unwrap();
        let committed = full_doc("b", "committed.txt", "saved");
        let pending = full_doc("b", "pending.txt", "lost");
        {
            let index = index_with(dir.path(), vec![committed.clone()]).await;
            index.upsert(vec![pending.clone()]).await.unwrap();
        }

        let index = EmbeddedIndex::open_or_create(dir.path()).unwrap();
        assert_eq!(index.count().unwrap(), 1);
        assert_eq!(index.get(committed.id).unwrap(), Some(committed));
        assert_eq!(index.get(pending.id).unwrap(), None);
        // The dropped index released the lock.
        index.upsert(vec![pending.clone()]).await.unwrap();
        index.commit().await.unwrap();
        assert_eq!(index.count().unwrap(), 2);
    }

    #[tokio::test]
    async fn a_second_writer_gets_the_lock_error_but_can_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let doc = full_doc("b", "shared.txt", "echidna");
        let writer = index_with(dir.path(), vec![doc.clone()]).await;
        let other = EmbeddedIndex::open_or_create(dir.path()).unwrap();

        let error = other.upsert(vec![doc.clone()]).await.unwrap_err();
        assert!(
            matches!(
                &error,
                SinkError::Embedded(EmbeddedError::Locked { path }) if path == dir.path()
            ),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains("another s3-connector process"),
            "{message}"
        );
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        assert!(matches!(
            other.delete(vec![doc.id]).await,
            Err(SinkError::Embedded(EmbeddedError::Locked { .. }))
        ));

        // Reading needs no lock, and a commit without writes just picks up other commits.
        assert_eq!(other.search("echidna", 5).await.unwrap().len(), 1);
        let later = full_doc("b", "later.txt", "echidna again");
        writer.upsert(vec![later.clone()]).await.unwrap();
        writer.commit().await.unwrap();
        other.commit().await.unwrap();
        assert_eq!(other.get(later.id).unwrap(), Some(later));
    }

    #[tokio::test]
    async fn documents_with_unstorable_dates_are_rejected_alone() {
        let dir = tempfile::tempdir().unwrap();
        let fine = full_doc("b", "fine.txt", "ok");
        let mut far_future = full_doc("b", "future.txt", "too late");
        far_future.last_modified = OffsetDateTime::from_unix_timestamp(12_000_000_000).unwrap();
        let index = EmbeddedIndex::open_or_create(dir.path()).unwrap();

        let rejected = index
            .upsert(vec![far_future.clone(), fine.clone()])
            .await
            .unwrap();
        index.commit().await.unwrap();

        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].0, far_future.id);
        assert_eq!(index.count().unwrap(), 1);
        assert_eq!(index.get(fine.id).unwrap(), Some(fine));
    }

    #[test]
    fn an_index_with_another_schema_is_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = tantivy::schema::Schema::builder();
        builder.add_text_field("something_else", tantivy::schema::TEXT);
        Index::create_in_dir(dir.path(), builder.build()).unwrap();

        let error = EmbeddedIndex::open_or_create(dir.path()).unwrap_err();
        assert!(
            matches!(error, EmbeddedError::SchemaMismatch { .. }),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .contains(&dir.path().display().to_string())
        );
    }

    #[test]
    fn open_or_create_makes_missing_directories() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b/index");
        let index = EmbeddedIndex::open_or_create(&nested).unwrap();
        assert_eq!(index.count().unwrap(), 0);
        assert!(nested.join("meta.json").is_file());
    }
}
