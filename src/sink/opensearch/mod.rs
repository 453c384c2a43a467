//! The OpenSearch sink: one index of an OpenSearch cluster (self-managed, Amazon OpenSearch
//! Service or Serverless), implementing [`Sink`].
//!
//! The split: `client` (transport, authentication, TLS, retries), `mapping` (creating the index,
//! checking an existing one), `bulk` (writes and deletes, item by item), `scan` (reading back
//! versions and buckets for the incremental sync), `search` (queries and single documents).
//! It knows documents and ids, nothing of S3 or of how a sync decides what to write.
//!
//! "Commit" is a refresh: OpenSearch makes writes durable by itself (translog), and a refresh
//! makes them visible to the reads the next sync starts with.

mod bulk;
mod client;
mod error;
mod mapping;
mod scan;
mod search;

use std::sync::Arc;

use ::opensearch::http::Method;

use self::bulk::{BulkWriter, Operation};
use self::client::{Client, index_path};
pub use self::error::OpensearchError;
use crate::config::opensearch::OpensearchConfig;
use crate::sink::IndexSource;
use crate::sink::{
    DocId, Document, IndexedPage, RejectedDocuments, ScanFrom, SearchHit, Sink, SinkError,
    VersionStamp,
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
}

impl OpensearchSink {
    /// Connects to the cluster and makes sure `index` exists with a usable mapping: creates it
    /// with s3-connector's mapping, adds the fields an existing index lacks, and fails with
    /// [`OpensearchError::MappingConflict`] (changing nothing) when it maps a field differently.
    pub async fn open(config: &OpensearchConfig, index: &str) -> Result<Self, OpensearchError> {
        let client = Client::build(config).await?;
        let folds_accents = mapping::ensure_index(&client, index).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                index: index.to_owned(),
                bulk_max_docs: config.bulk_max_docs,
                bulk_max_bytes: config.bulk_max_bytes,
                bulk_concurrency: config.bulk_concurrency,
                folds_accents,
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

    fn writer(&self) -> BulkWriter<'_> {
        BulkWriter {
            client: &self.inner.client,
            index: &self.inner.index,
            max_docs: self.inner.bulk_max_docs,
            max_bytes: self.inner.bulk_max_bytes,
            concurrency: self.inner.bulk_concurrency,
        }
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

    async fn upsert(&self, documents: Vec<Document>) -> Result<RejectedDocuments, SinkError> {
        let mut rejected = RejectedDocuments::new();
        let mut operations = Vec::with_capacity(documents.len());
        for document in &documents {
            match Operation::index(document) {
                Ok(operation) => operations.push(operation),
                Err(error) => rejected.push((document.id, format!("cannot encode: {error}"))),
            }
        }
        drop(documents);
        rejected.extend(self.writer().write(operations).await?);
        Ok(rejected)
    }

    async fn delete(&self, ids: Vec<DocId>) -> Result<(), SinkError> {
        let count = ids.len();
        let operations = ids.into_iter().map(Operation::delete).collect();
        let refused = self.writer().write(operations).await?;
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
        let index = &self.inner.index;
        let action = format!("refreshing index {index}");
        let path = index_path(index, "_refresh");
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
}
