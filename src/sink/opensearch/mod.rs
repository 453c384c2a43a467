//! The OpenSearch sink: one index of an OpenSearch cluster (self-managed, Amazon OpenSearch
//! Service or Serverless), implementing [`Sink`].
//!
//! The split: `client` (transport, authentication, TLS, retries), `mapping` (creating the index,
//! checking an existing one), `bulk` (writes and deletes, item by item), `scan` (reading back
//! versions and buckets for the incremental sync), `search` (queries and single documents),
//! `passages` (the companion index of passages and vectors, and the recorded model),
//! `retrieval` (passage search by words, by meaning, or both).
//! It knows documents and ids, nothing of S3 or of how a sync decides what to write.
//!
//! "Commit" is a refresh: OpenSearch makes writes durable by itself (translog), and a refresh
//! makes them visible to the reads the next sync starts with.

mod bulk;
mod client;
mod error;
mod mapping;
mod passages;
mod retrieval;
mod scan;
mod search;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use ::opensearch::http::Method;

use self::bulk::{BulkWriter, Operation};
use self::client::{Client, index_path};
pub use self::error::OpensearchError;
use self::passages::State;
use crate::config::opensearch::OpensearchConfig;
use crate::embed::{EmbeddingModel, PassageHash};
use crate::sink::passages::Fusion;
use crate::sink::{
    DocId, Document, IndexSource, IndexedPage, PassageHit, PassageQuery, RejectedDocuments,
    ScanFrom, SearchHit, Sink, SinkError, StoredPassage, VersionStamp,
};

/// One index of an OpenSearch cluster. Clones share the HTTP client and its connections.
#[derive(Clone, Debug)]
pub struct OpensearchSink {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    index: String,
    bulk_max_docs: usize,
    bulk_max_bytes: u64,
    bulk_concurrency: usize,
    /// Whether the index's text fields fold accents (not on an index made before they did).
    folds_accents: bool,
    /// The passage index (`passages`).
    companion: String,
    /// What the passage index was when this process last looked or wrote.
    passages: Mutex<State>,
    /// The cluster's search pipelines for hybrid search.
    pipelines: retrieval::Pipelines,
}

impl OpensearchSink {
    /// Connects to the cluster and makes sure `index` exists with a usable mapping: creates it
    /// with s3-connector's mapping, adds the fields an existing index lacks, and fails with
    /// [`OpensearchError::MappingConflict`] (changing nothing) when it maps a field differently.
    pub async fn open(config: &OpensearchConfig, index: &str) -> Result<Self, OpensearchError> {
        let client = Client::build(config).await?;
        let folds_accents = mapping::ensure_index(&client, index).await?;
        let companion = passages::companion(index);
        let state = passages::read_state(&client, &companion).await?;
        let pipelines = retrieval::Pipelines::default();
        if state.dimensions().is_some() {
            // The index has vectors: create the default fusion's pipeline now, if the cluster
            // takes one, so that the first hybrid search does not wait for it.
            pipelines.usable(&client, Fusion::default()).await;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                index: index.to_owned(),
                bulk_max_docs: config.bulk_max_docs,
                bulk_max_bytes: config.bulk_max_bytes,
                bulk_concurrency: config.bulk_concurrency,
                folds_accents,
                companion,
                passages: Mutex::new(state),
                pipelines,
            }),
        })
    }

    /// Whether `index` (or an alias of that name) exists on the cluster; creates nothing.
    pub async fn exists(config: &OpensearchConfig, index: &str) -> Result<bool, OpensearchError> {
        let client = Client::build(config).await?;
        mapping::exists(&client, index).await
    }

    /// The index (or alias) this sink writes.
    pub fn index(&self) -> &str {
        &self.inner.index
    }

    /// Whether searches of this index fold accents ("cafe" finds "café"): not on an index made
    /// by an s3-connector before it did, whose analyzers cannot change (a warning at open says
    /// so and what to do).
    pub fn folds_accents(&self) -> bool {
        self.inner.folds_accents
    }

    /// The stored document with this id, as of the last commit (for tests and tools).
    pub async fn get(&self, id: DocId) -> Result<Option<Document>, OpensearchError> {
        search::get(&self.inner.client, &self.inner.index, id).await
    }

    /// Number of documents, as of the last commit (for tests and tools).
    pub async fn count(&self) -> Result<u64, OpensearchError> {
        search::count(&self.inner.client, &self.inner.index).await
    }

    /// The index holding the passages of this index's documents and their vectors.
    pub fn passage_index(&self) -> &str {
        &self.inner.companion
    }

    /// The committed passages of document `id` by ordinal, with their vectors (for tests and
    /// tools).
    pub async fn passages(&self, id: DocId) -> Result<Vec<StoredPassage>, OpensearchError> {
        passages::read_passages(&self.inner.client, &self.inner.companion, id).await
    }

    fn writer<'a>(&'a self, index: &'a str) -> BulkWriter<'a> {
        BulkWriter {
            client: &self.inner.client,
            index,
            max_docs: self.inner.bulk_max_docs,
            max_bytes: self.inner.bulk_max_bytes,
            concurrency: self.inner.bulk_concurrency,
        }
    }

    fn passage_state(&self) -> State {
        *self
            .inner
            .passages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn set_passage_state(&self, state: State) {
        *self
            .inner
            .passages
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = state;
    }

    /// The passage index's state, looked up again when this process has not seen one (another
    /// process may have created it since).
    async fn fresh_passage_state(&self) -> Result<State, OpensearchError> {
        let state = self.passage_state();
        if state != State::Absent {
            return Ok(state);
        }
        let state = passages::read_state(&self.inner.client, &self.inner.companion).await?;
        self.set_passage_state(state);
        Ok(state)
    }

    /// Steps (1) and (2) of a write (`passages`): the old passages of `documents` beyond their
    /// new count deleted, their passages written. Returns the documents whose passages were
    /// refused, which must not be written. Costs nothing when no document has passages and
    /// there is no passage index.
    async fn write_passages(
        &self,
        documents: &[Document],
    ) -> Result<RejectedDocuments, OpensearchError> {
        let with_passages = documents
            .iter()
            .any(|document| !document.passages.is_empty());
        let mut state = self.passage_state();
        if state == State::Absent && !with_passages {
            return Ok(RejectedDocuments::new());
        }
        let client = &self.inner.client;
        let companion = &self.inner.companion;
        if with_passages {
            let first = documents
                .iter()
                .flat_map(|document| &document.passages)
                .find_map(|stored| stored.vector.as_ref().map(Vec::len));
            let wanted = if state.dimensions().is_some() {
                None
            } else {
                first
            };
            state = passages::ensure(client, companion, state, wanted).await?;
            self.set_passage_state(state);
        }
        let counts: Vec<(DocId, usize)> = documents
            .iter()
            .map(|document| (document.id, document.passages.len()))
            .collect();
        passages::delete_beyond(client, companion, &counts).await?;
        let mut rejected = RejectedDocuments::new();
        let mut operations = Vec::new();
        for document in documents {
            let mismatch = document
                .passages
                .iter()
                .filter_map(|stored| stored.vector.as_ref().map(Vec::len))
                .find(|given| Some(*given) != state.dimensions());
            if let (Some(given), Some(mapped)) = (mismatch, state.dimensions()) {
                let error = OpensearchError::DimensionMismatch {
                    index: companion.clone(),
                    mapped,
                    given,
                };
                rejected.push((document.id, error.to_string()));
                continue;
            }
            match passages::operations(document) {
                Ok(document_operations) => operations.extend(document_operations),
                Err(error) => {
                    rejected.push((document.id, format!("cannot encode its passages: {error}")));
                }
            }
        }
        let mut refused: HashSet<DocId> = rejected.iter().map(|(id, _)| *id).collect();
        for (id, reason) in self.writer(companion).write(operations).await? {
            if refused.insert(id) {
                rejected.push((id, format!("a passage was refused: {reason}")));
            }
        }
        Ok(rejected)
    }
}

impl Sink for OpensearchSink {
    fn retries(&self) -> u64 {
        self.inner.client.retries()
    }

    /// Enough documents to fill `bulk_concurrency` bulk requests of `bulk_max_docs`.
    fn batch_size(&self) -> usize {
        self.inner.bulk_max_docs * self.inner.bulk_concurrency
    }

    async fn indexed_buckets(&self) -> Result<Vec<String>, SinkError> {
        Ok(scan::buckets(&self.inner.client, &self.inner.index).await?)
    }

    async fn indexed_page(&self, bucket: &str, from: ScanFrom<'_>, limit: usize) -> IndexedPage {
        let client = &self.inner.client;
        Ok(scan::page(client, &self.inner.index, bucket, from, limit).await?)
    }

    async fn indexed_version(&self, id: DocId) -> Result<Option<VersionStamp>, SinkError> {
        Ok(search::version(&self.inner.client, &self.inner.index, id).await?)
    }

    /// Passages first, documents last (`passages`): a document is written only once its
    /// passages are.
    async fn upsert(&self, documents: Vec<Document>) -> Result<RejectedDocuments, SinkError> {
        let mut rejected = self.write_passages(&documents).await?;
        let refused: HashSet<DocId> = rejected.iter().map(|(id, _)| *id).collect();
        let mut operations = Vec::with_capacity(documents.len());
        for document in documents.iter().filter(|d| !refused.contains(&d.id)) {
            match Operation::index(document) {
                Ok(operation) => operations.push(operation),
                Err(error) => rejected.push((document.id, format!("cannot encode: {error}"))),
            }
        }
        drop(documents);
        rejected.extend(self.writer(&self.inner.index).write(operations).await?);
        Ok(rejected)
    }

    /// Passages first, then the documents: a crash between leaves documents that the next
    /// sync deletes again, never passages without a document.
    async fn delete(&self, ids: Vec<DocId>) -> Result<(), SinkError> {
        if self.passage_state() != State::Absent {
            let counts: Vec<(DocId, usize)> = ids.iter().map(|id| (*id, 0)).collect();
            passages::delete_beyond(&self.inner.client, &self.inner.companion, &counts).await?;
        }
        let count = ids.len();
        let operations = ids.into_iter().map(Operation::delete).collect();
        let refused = self.writer(&self.inner.index).write(operations).await?;
        if refused.is_empty() {
            return Ok(());
        }
        let (id, reason) = &refused[0];
        Err(OpensearchError::DeletesRefused {
            index: self.inner.index.clone(),
            refused: refused.len(),
            of: count,
            first: format!("document {id}: {reason}"),
        }
        .into())
    }

    async fn commit(&self) -> Result<(), SinkError> {
        let index = match self.passage_state() {
            State::Absent => self.inner.index.clone(),
            State::Present { .. } => format!("{},{}", self.inner.index, self.inner.companion),
        };
        let action = format!("refreshing index {index}");
        let path = index_path(&index, "_refresh");
        let client = &self.inner.client;
        let reply = client.send(&action, Method::Post, &path, &[], None).await?;
        if reply.is_success() {
            Ok(())
        } else {
            Err(reply.into_error(&action).into())
        }
    }

    async fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, SinkError> {
        Ok(search::search(&self.inner.client, &self.inner.index, query, limit).await?)
    }

    async fn recorded_source(&self) -> Result<Option<IndexSource>, SinkError> {
        Ok(mapping::recorded_source(&self.inner.client, &self.inner.index).await?)
    }

    async fn record_source(&self, source: &IndexSource) -> Result<(), SinkError> {
        Ok(mapping::record_source(&self.inner.client, &self.inner.index, source).await?)
    }

    async fn search_passages(&self, query: &PassageQuery) -> Result<Vec<PassageHit>, SinkError> {
        let target = retrieval::Target {
            client: &self.inner.client,
            index: &self.inner.index,
            companion: &self.inner.companion,
            state: self.fresh_passage_state().await?,
            pipelines: &self.inner.pipelines,
        };
        Ok(retrieval::search(&target, query).await?)
    }

    async fn passage_vectors(&self, id: DocId) -> Result<Vec<(PassageHash, Vec<f32>)>, SinkError> {
        if self.passage_state().dimensions().is_none() {
            return Ok(Vec::new());
        }
        let stored = self.passages(id).await?;
        Ok(stored
            .into_iter()
            .filter_map(|stored| Some((stored.passage.content_hash, stored.vector?)))
            .collect())
    }

    async fn recorded_model(&self) -> Result<Option<EmbeddingModel>, SinkError> {
        Ok(passages::recorded_model(&self.inner.client, &self.inner.companion).await?)
    }

    /// Kept in the passage index's `_meta`, which is created for the model's vectors (and
    /// created again when their dimension changes).
    async fn record_model(&self, model: &EmbeddingModel) -> Result<(), SinkError> {
        let state = self.fresh_passage_state().await?;
        let client = &self.inner.client;
        let state = passages::record_model(client, &self.inner.companion, state, model).await?;
        self.set_passage_state(state);
        Ok(())
    }
}
