//! The embedded search index: a tantivy index in a local directory, implementing [`Sink`].
//!
//! This is the default sink, for users without a search cluster. It owns the on-disk format
//! (`schema.rs`) and the single tantivy writer of that directory (`write.rs`); reads of
//! committed documents and versions are in `read.rs`, search in `search.rs`, errors in
//! `error.rs`. It knows nothing of S3 or of how a sync decides what to write; it is not a
//! server either: other processes can search the same directory, but only one can write it at
//! a time.

mod error;
mod passages;
mod read;
mod schema;
mod search;
mod upgrade;
mod write;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tantivy::directory::MmapDirectory;
use tantivy::index::SegmentId;
use tantivy::query::QueryParser;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyError};

pub use self::error::EmbeddedError;
use self::schema::Fields;
use self::write::Replace;
use crate::embed::{EmbeddingModel, PassageHash};
use crate::sink::IndexSource;
use crate::sink::{
    DocId, Document, IndexedPage, PassageHit, PassageQuery, RejectedDocuments, ScanFrom, SearchHit,
    Sink, SinkError, VersionStamp,
};

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
    /// The passages' vectors of each segment a semantic search has scanned, read once per
    /// segment (segments never change; deletes are checked at each search).
    vectors: Mutex<HashMap<SegmentId, Arc<passages::SegmentVectors>>>,
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
        let tantivy_error = |action| EmbeddedError::tantivy(dir, action);

        let directory = || {
            MmapDirectory::open(dir)
                .map_err(|cause| tantivy_error("opening")(TantivyError::from(cause)))
        };
        let (schema, fields) = schema::build();
        let index = match Index::open_or_create(directory()?, schema.clone()) {
            Ok(index) => index,
            Err(TantivyError::SchemaError(_)) => {
                let old = Index::open(directory()?).map_err(tantivy_error("opening"))?;
                if !upgrade::is_previous(&old.schema(), &schema) {
                    return Err(EmbeddedError::SchemaMismatch { path: path.clone() });
                }
                tracing::info!(
                    message = "Upgrading the embedded index to the current layout (a one-time copy of its documents, their text analysed again).",
                    path = %path.display()
                );
                let copied = upgrade::upgrade(dir, old, &schema, &fields)?;
                tracing::info!(message = "Upgraded the embedded index.", path = %path.display(), documents = copied);
                Index::open(directory()?).map_err(tantivy_error("opening"))?
            }
            Err(cause) => return Err(tantivy_error("opening")(cause)),
        };
        schema::register_analyzers(&index);
        // Commit-watching lets a search-only process see what a syncing process commits;
        // our own commits reload explicitly so they are visible at once.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()
            .map_err(tantivy_error("opening a reader on"))?;
        let mut query_parser = QueryParser::for_index(
            &index,
            vec![
                fields.body,
                fields.filename,
                fields.key,
                fields.title,
                fields.passage,
            ],
        );
        query_parser.set_field_boost(fields.title, search::TITLE_BOOST);
        query_parser.set_field_boost(fields.filename, search::FILENAME_BOOST);

        Ok(Self {
            inner: Arc::new(Inner {
                path,
                index,
                fields,
                reader,
                query_parser,
                writer_threads,
                writer: Mutex::new(None),
                vectors: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Number of committed documents, as of the last commit this process saw.
    pub fn count(&self) -> Result<u64, EmbeddedError> {
        self.inner.count_documents()
    }

    /// The committed document with this id, rebuilt from stored fields with its passages (for
    /// tests and tools).
    pub fn get(&self, id: DocId) -> Result<Option<Document>, EmbeddedError> {
        self.inner.get_with_passages(id)
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
        EmbeddedError::tantivy(&self.path, action)
    }

    fn corrupt(&self, detail: String) -> EmbeddedError {
        EmbeddedError::Corrupt {
            path: self.path.clone(),
            detail,
        }
    }
}

impl Sink for EmbeddedIndex {
    async fn indexed_buckets(&self) -> Result<Vec<String>, SinkError> {
        self.blocking(Inner::indexed_buckets).await
    }

    async fn indexed_page(&self, bucket: &str, from: ScanFrom<'_>, limit: usize) -> IndexedPage {
        let bucket = bucket.to_owned();
        // The read runs on a blocking thread: it takes its cursor along, owned.
        let (cursor, inclusive) = match from {
            ScanFrom::Start => (None, false),
            ScanFrom::After(key) => (Some(key.to_owned()), false),
            ScanFrom::AtLeast(key) => (Some(key.to_owned()), true),
        };
        self.blocking(move |inner| {
            let from = match &cursor {
                None => ScanFrom::Start,
                Some(key) if inclusive => ScanFrom::AtLeast(key),
                Some(key) => ScanFrom::After(key),
            };
            inner.indexed_page(&bucket, from, limit)
        })
        .await
    }

    async fn indexed_version(&self, id: DocId) -> Result<Option<VersionStamp>, SinkError> {
        self.blocking(move |inner| {
            Ok(inner.get(id)?.map(|document| {
                if document.embedding_error.is_some() {
                    VersionStamp::UNFINISHED
                } else {
                    document.version()
                }
            }))
        })
        .await
    }

    async fn upsert(&self, documents: Vec<Document>) -> Result<RejectedDocuments, SinkError> {
        self.blocking(move |inner| inner.add(documents, Replace::Any))
            .await
    }

    async fn insert_new(&self, documents: Vec<Document>) -> Result<RejectedDocuments, SinkError> {
        self.blocking(move |inner| inner.add(documents, Replace::None))
            .await
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

    async fn recorded_source(&self) -> Result<Option<IndexSource>, SinkError> {
        self.blocking(Inner::recorded_source).await
    }

    async fn record_source(&self, source: &IndexSource) -> Result<(), SinkError> {
        let source = source.clone();
        self.blocking(move |inner| inner.record(SOURCE_FILE, &source))
            .await
    }

    async fn search_passages(&self, query: &PassageQuery) -> Result<Vec<PassageHit>, SinkError> {
        let query = query.clone();
        self.blocking(move |inner| inner.search_passages(&query))
            .await
    }

    async fn passage_vectors(&self, id: DocId) -> Result<Vec<(PassageHash, Vec<f32>)>, SinkError> {
        self.blocking(move |inner| {
            Ok(inner
                .passages(id)?
                .into_iter()
                .filter_map(|stored| Some((stored.passage.content_hash, stored.vector?)))
                .collect())
        })
        .await
    }

    async fn recorded_model(&self) -> Result<Option<EmbeddingModel>, SinkError> {
        self.blocking(|inner| inner.recorded(MODEL_FILE)).await
    }

    async fn record_model(&self, model: &EmbeddingModel) -> Result<(), SinkError> {
        let model = model.clone();
        self.blocking(move |inner| inner.record(MODEL_FILE, &model))
            .await
    }
}

/// The file beside tantivy's own that records the source of the index's documents.
const SOURCE_FILE: &str = "s3c-source.json";

/// The file beside tantivy's own that records the model of the passages' vectors.
const MODEL_FILE: &str = "s3c-model.json";

impl Inner {
    fn recorded_source(&self) -> Result<Option<IndexSource>, EmbeddedError> {
        self.recorded(SOURCE_FILE)
    }

    /// The record kept in `file` beside the index; `None` when there is none.
    fn recorded<T: serde::de::DeserializeOwned>(
        &self,
        file: &str,
    ) -> Result<Option<T>, EmbeddedError> {
        let path = self.path.join(file);
        let error = |detail: String| EmbeddedError::SourceRecord {
            action: "read",
            path: path.clone(),
            detail,
        };
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| error(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(error(e.to_string())),
        }
    }

    /// Replaces the record kept in `file` beside the index, durably.
    fn record<T: serde::Serialize>(&self, file: &str, record: &T) -> Result<(), EmbeddedError> {
        let path = self.path.join(file);
        let error = |detail: String| EmbeddedError::SourceRecord {
            action: "write",
            path: path.clone(),
            detail,
        };
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| error(e.to_string()))?;
        crate::durable::replace(&path, &bytes).map_err(|e| error(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
