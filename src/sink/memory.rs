//! An in-memory [`Sink`] for logic tests of the sync: committed documents plus a log of
//! uncommitted writes, failures of a write or a commit on demand, and a "crash" that drops
//! everything uncommitted, as a killed process would. Reads see committed documents only, like
//! the embedded index's reader. Not a stand-in for tantivy or OpenSearch: the end-to-end suite
//! runs the same scenarios on both. Documents keep their passages and vectors; a document
//! with an `embedding_error` answers [`VersionStamp::UNFINISHED`], and the model the index
//! records is kept beside the documents.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{
    DocId, Document, IndexedEntry, IndexedPage, RejectedDocuments, ScanFrom, SearchHit, Sink,
    SinkError, VersionStamp,
};
use crate::embed::{EmbeddingModel, PassageHash};

/// An uncommitted write.
#[derive(Debug, Clone)]
enum Pending {
    Upsert(Box<Document>),
    /// Written by [`Sink::insert_new`]: the caller promised the index does not hold it.
    InsertNew(Box<Document>),
    Delete(DocId),
}

/// Failures to inject, counted in calls from now on.
#[derive(Debug, Default, Clone, Copy)]
pub struct SinkFaults {
    /// The upsert call with this number (0-based) fails, and every one after it.
    pub fail_upsert_from: Option<u64>,
    /// The commit call with this number (0-based) fails, and every one after it.
    pub fail_commit_from: Option<u64>,
}

#[derive(Debug, Default)]
struct State {
    committed: BTreeMap<DocId, Document>,
    pending: Vec<Pending>,
    faults: SinkFaults,
    upserts: u64,
    commits: u64,
    /// Entries returned by [`Sink::indexed_page`] so far.
    scanned: u64,
    /// An injected failure happened since the faults were set.
    failed: bool,
    /// The model the index records ([`Sink::record_model`]).
    model: Option<EmbeddingModel>,
    /// Calls of [`Sink::passage_vectors`] so far.
    passage_reads: u64,
}

/// The version stamp the sink answers for a committed document: [`VersionStamp::UNFINISHED`]
/// while its embedding failed.
fn stamp(document: &Document) -> VersionStamp {
    if document.embedding_error.is_some() {
        VersionStamp::UNFINISHED
    } else {
        document.version()
    }
}

/// The in-memory index; one per test.
#[derive(Debug, Default)]
pub struct MemorySink {
    state: Mutex<State>,
    /// Documents per page of [`Sink::indexed_page`] the sync asks for; `None`: 2.
    scan_page_size: Option<usize>,
}

/// The calls that can be made to fail.
#[derive(Debug, Clone, Copy)]
enum Call {
    Upsert,
    Commit,
}

impl State {
    /// Counts a call, and fails it if the faults say so.
    fn count_call(&mut self, call: Call) -> Result<(), SinkError> {
        let (counter, fail_from, name) = match call {
            Call::Upsert => (&mut self.upserts, self.faults.fail_upsert_from, "upsert"),
            Call::Commit => (&mut self.commits, self.faults.fail_commit_from, "commit"),
        };
        let number = *counter;
        *counter += 1;
        if fail_from.is_some_and(|from| number >= from) {
            self.failed = true;
            return Err(SinkError::Task(format!("injected {name} failure")));
        }
        Ok(())
    }
}

impl MemorySink {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A sink whose scans go `size` documents a page (each page costs a pass over the index,
    /// so tests of many documents want large ones).
    pub fn with_scan_page_size(size: usize) -> Self {
        Self {
            scan_page_size: Some(size),
            ..Self::default()
        }
    }

    /// Replaces the faults and restarts their call counts.
    pub fn set_faults(&self, faults: SinkFaults) {
        let mut state = self.state();
        state.faults = faults;
        state.upserts = 0;
        state.commits = 0;
        state.failed = false;
    }

    /// Whether an injected write or commit failure happened since the faults were set.
    pub fn failed(&self) -> bool {
        self.state().failed
    }

    /// Drops every uncommitted write, as a killed process loses them.
    pub fn crash(&self) {
        self.state().pending.clear();
    }

    /// How many entries [`Sink::indexed_page`] returned so far: what the sync read of the index.
    pub fn scanned(&self) -> u64 {
        self.state().scanned
    }

    /// The committed documents.
    pub fn documents(&self) -> BTreeMap<DocId, Document> {
        self.state().committed.clone()
    }

    /// How many times the sync asked for a document's stored vectors.
    pub fn passage_reads(&self) -> u64 {
        self.state().passage_reads
    }
}

impl Sink for MemorySink {
    fn batch_size(&self) -> usize {
        // Small batches, so that writes and commits interleave with listing in short tests.
        4
    }

    fn scan_page_size(&self) -> usize {
        // Small pages, so that the merge crosses page boundaries of the index in short tests.
        self.scan_page_size.unwrap_or(2)
    }

    async fn indexed_buckets(&self) -> Result<Vec<String>, SinkError> {
        let state = self.state();
        let mut buckets: Vec<String> = state
            .committed
            .values()
            .map(|document| document.bucket.clone())
            .collect();
        buckets.sort();
        buckets.dedup();
        Ok(buckets)
    }

    async fn indexed_page(&self, bucket: &str, from: ScanFrom<'_>, limit: usize) -> IndexedPage {
        // The `limit` smallest keys from `from`, without sorting the whole bucket.
        let mut smallest: BTreeMap<&str, &Document> = BTreeMap::new();
        let mut state = self.state();
        let documents = state
            .committed
            .values()
            .filter(|document| document.bucket == bucket && from.admits(&document.key));
        for document in documents {
            smallest.insert(&document.key, document);
            if smallest.len() > limit {
                smallest.pop_last();
            }
        }
        let page: Vec<IndexedEntry> = smallest
            .into_values()
            .map(|document| IndexedEntry {
                key: document.key.clone(),
                id: document.id,
                version: stamp(document),
                last_modified: Some(document.last_modified),
            })
            .collect();
        state.scanned += page.len() as u64;
        Ok(page)
    }

    async fn indexed_version(&self, id: DocId) -> Result<Option<VersionStamp>, SinkError> {
        Ok(self.state().committed.get(&id).map(stamp))
    }

    async fn upsert(&self, documents: Vec<Document>) -> Result<RejectedDocuments, SinkError> {
        let mut state = self.state();
        state.count_call(Call::Upsert)?;
        state
            .pending
            .extend(documents.into_iter().map(|d| Pending::Upsert(Box::new(d))));
        Ok(Vec::new())
    }

    async fn insert_new(&self, documents: Vec<Document>) -> Result<RejectedDocuments, SinkError> {
        let mut state = self.state();
        state.count_call(Call::Upsert)?;
        state.pending.extend(
            documents
                .into_iter()
                .map(|d| Pending::InsertNew(Box::new(d))),
        );
        Ok(Vec::new())
    }

    async fn delete(&self, ids: Vec<DocId>) -> Result<(), SinkError> {
        self.state()
            .pending
            .extend(ids.into_iter().map(Pending::Delete));
        Ok(())
    }

    async fn commit(&self) -> Result<(), SinkError> {
        let mut state = self.state();
        state.count_call(Call::Commit)?;
        for write in std::mem::take(&mut state.pending) {
            match write {
                Pending::Upsert(document) => {
                    state.committed.insert(document.id, *document);
                }
                Pending::InsertNew(document) => {
                    // The embedded index would now hold two copies: a broken promise is a bug
                    // in the caller, which the model tests must see.
                    let id = document.id;
                    let previous = state.committed.insert(id, *document);
                    assert!(
                        previous.is_none(),
                        "insert_new of {id}, which the index already holds"
                    );
                }
                Pending::Delete(id) => {
                    state.committed.remove(&id);
                }
            }
        }
        Ok(())
    }

    async fn passage_vectors(&self, id: DocId) -> Result<Vec<(PassageHash, Vec<f32>)>, SinkError> {
        let mut state = self.state();
        state.passage_reads += 1;
        Ok(state
            .committed
            .get(&id)
            .map(|document| {
                document
                    .passages
                    .iter()
                    .filter_map(|stored| {
                        let vector = stored.vector.clone()?;
                        Some((stored.passage.content_hash, vector))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn recorded_model(&self) -> Result<Option<EmbeddingModel>, SinkError> {
        Ok(self.state().model.clone())
    }

    async fn record_model(&self, model: &EmbeddingModel) -> Result<(), SinkError> {
        self.state().model = Some(model.clone());
        Ok(())
    }

    async fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, SinkError> {
        Ok(self
            .state()
            .committed
            .values()
            .filter(|d| d.body.as_deref().is_some_and(|body| body.contains(query)))
            .take(limit)
            .map(|d| SearchHit {
                id: d.id.to_hex(),
                bucket: d.bucket.clone(),
                key: d.key.clone(),
                score: 1.0,
            })
            .collect())
    }
}

/// A document with every optional field but `extraction_error` set, for tests of any sink.
pub fn full_document(bucket: &str, key: &str, body: &str) -> Document {
    let at_millis = |millis: i64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
            .expect("a valid time")
    };
    let filename = key.rsplit('/').next().unwrap_or(key).to_owned();
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
        content_status: super::ContentStatus::Extracted,
        extraction_error: None,
        indexed_at: at_millis(1_700_000_100_000),
        attributes: super::Attributes::default(),
        passages: Vec::new(),
        embedding_error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    #[should_panic(expected = "which the index already holds")]
    async fn an_insert_of_a_document_the_index_holds_is_refused() {
        // The fake holds callers to insert_new's promise, so the model tests see a broken one
        // (the embedded index would keep two copies).
        let sink = MemorySink::default();
        let document = full_document("b", "a.txt", "words");
        sink.insert_new(vec![document.clone()]).await.unwrap();
        sink.commit().await.unwrap();
        sink.insert_new(vec![document]).await.unwrap();
        sink.commit().await.unwrap();
    }

    #[tokio::test]
    async fn pages_start_where_the_cursor_says_and_count_what_they_return() {
        let sink = MemorySink::default();
        let documents = ["a", "a/", "a/b", "a0", "b"].map(|key| full_document("x", key, "t"));
        sink.upsert(documents.to_vec()).await.unwrap();
        sink.commit().await.unwrap();
        let keys = |page: Vec<IndexedEntry>| page.into_iter().map(|e| e.key).collect::<Vec<_>>();
        let page = |from| sink.indexed_page("x", from, 2);
        assert_eq!(keys(page(ScanFrom::Start).await.unwrap()), ["a", "a/"]);
        assert_eq!(
            keys(page(ScanFrom::After("a/")).await.unwrap()),
            ["a/b", "a0"]
        );
        assert_eq!(
            keys(page(ScanFrom::AtLeast("a0")).await.unwrap()),
            ["a0", "b"]
        );
        assert_eq!(keys(page(ScanFrom::AtLeast("a1")).await.unwrap()), ["b"]);
        assert_eq!(sink.scanned(), 7);
    }
}
