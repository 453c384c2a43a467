//! Sinks: where documents end up. A sink knows documents and ids, nothing of S3.
//!
//! The sync orchestrator talks to every sink through the [`Sink`] trait, so every sync feature
//! (incremental skip, deletes after a complete listing, search) works the same on each backend.
//! Code over an index is generic over [`Sink`]; the backend a configuration chooses at run time
//! is an [`AnySink`], turned into a concrete type at the edge (CLI, worker) by
//! [`with_sink!`](crate::with_sink).

pub mod analysis;
pub mod binding;
pub mod embedded;
#[cfg(test)]
pub mod memory;
pub mod opensearch;
pub mod passages;
pub mod query;
pub mod snippet;
pub mod vectors;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};

use md5::{Digest, Md5};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::IndexConfig;
use crate::embed::{EmbeddingModel, PassageHash};
pub use binding::IndexSource;
pub use passages::{PassageHit, PassageQuery, StoredPassage};

/// A document id: the md5 of `"{bucket}/{key}"`, as Elastic's S3 connector computes it, so that
/// indices migrated from it keep their ids. Kept as 16 raw bytes; rendered as 32 hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocId([u8; 16]);

impl DocId {
    /// The id of the object `key` in `bucket`.
    pub fn of(bucket: &str, key: &str) -> Self {
        let mut hasher = Md5::new();
        hasher.update(bucket.as_bytes());
        hasher.update(b"/");
        hasher.update(key.as_bytes());
        Self(hasher.finalize().into())
    }

    /// Parses the 32-hex-character form; `None` for anything else.
    pub fn from_hex(hex_id: &str) -> Option<Self> {
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(hex_id, &mut bytes).ok()?;
        Some(Self(bytes))
    }

    /// The 16 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The id of these 16 raw bytes (as [`DocId::as_bytes`] gave them).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 32 lowercase hex characters stored as `id` in every index.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocId({})", self.to_hex())
    }
}

/// A fingerprint of one object version (etag, last-modified time, size).
///
/// Sinks return these for what they hold so that a re-sync can tell unchanged objects from the
/// listing alone. Eight bytes instead of the etag string keeps the per-object memory of a
/// re-sync small; a collision would need two versions of one key to hash alike.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct VersionStamp(u64);

impl VersionStamp {
    /// The stamp of an object version as the listing (or the stored document) describes it.
    pub fn of(etag: &str, last_modified: OffsetDateTime, size_in_bytes: u64) -> Self {
        // SipHash with fixed zero keys: deterministic across processes, unlike RandomState.
        #[allow(deprecated)]
        let mut hasher = std::hash::SipHasher::new();
        etag.hash(&mut hasher);
        (last_modified.unix_timestamp_nanos() / 1_000_000).hash(&mut hasher);
        size_in_bytes.hash(&mut hasher);
        Self(hasher.finish())
    }

    /// The stamp a sink answers for a document whose work is not finished (its embedding
    /// failed): no object version has it, so the next sync sees the object as changed and does
    /// it again.
    pub const UNFINISHED: Self = Self(0);
}

/// One committed document as a bucket's key-ordered scan returns it: what the sync's merge of
/// listing and index needs, and nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedEntry {
    /// The object key; scans return keys in S3's order (their UTF-8 bytes, as `str`'s `Ord`).
    pub key: String,
    /// The document's id (what a deletion names).
    pub id: DocId,
    /// The version the document was made from.
    pub version: VersionStamp,
    /// The last-modified time of that version; `None` when the document does not record one.
    /// An inventory-driven sync keeps documents newer than its inventory.
    pub last_modified: Option<OffsetDateTime>,
}

/// What [`Sink::indexed_page`] answers: a page of one bucket's committed documents in key order.
pub type IndexedPage = Result<Vec<IndexedEntry>, SinkError>;

/// Where a page of [`Sink::indexed_page`] starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanFrom<'a> {
    /// At the bucket's first key.
    Start,
    /// At the first key greater than this one: the previous page's last key.
    After(&'a str),
    /// At the first key that is at least this one: where a prefix shard resumes past a group
    /// of another shard (a group `docs/` ends before `docs0`; no exclusive bound says that).
    AtLeast(&'a str),
}

impl<'a> ScanFrom<'a> {
    /// From the first key after `after`, or from the start when `None`.
    pub fn after(after: Option<&'a str>) -> Self {
        after.map_or(Self::Start, Self::After)
    }

    /// Whether a page from here may hold `key`.
    pub fn admits(&self, key: &str) -> bool {
        match self {
            Self::Start => true,
            Self::After(after) => key > *after,
            Self::AtLeast(first) => key >= *first,
        }
    }
}

/// The version of every committed document of `bucket`, read page by page through
/// [`Sink::indexed_page`]. Holds the whole bucket in memory: for tests and tools, not the sync.
pub async fn collect_versions<S: Sink>(
    sink: &S,
    bucket: &str,
) -> Result<HashMap<DocId, VersionStamp>, SinkError> {
    const PAGE: usize = 1000;
    let mut versions = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = sink
            .indexed_page(bucket, ScanFrom::after(after.as_deref()), PAGE)
            .await?;
        let full = page.len() == PAGE;
        after = page.last().map(|entry| entry.key.clone());
        versions.extend(page.into_iter().map(|entry| (entry.id, entry.version)));
        if !full {
            return Ok(versions);
        }
    }
}

/// What became of an object's content.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentStatus {
    /// The body holds the extracted text.
    Extracted,
    /// Larger than `max_content_bytes` (metadata only, never downloaded), or its decompressed or
    /// unpacked content passed `max_extracted_bytes` (metadata plus `extraction_error`).
    TooLarge,
    /// A format we do not extract: metadata only (never downloaded, unless the key has no
    /// extension and the content had to be sniffed).
    Unsupported,
    /// In an archive storage class (GLACIER, DEEP_ARCHIVE): metadata only, never downloaded.
    Archived,
    /// Download or extraction failed: metadata plus `extraction_error`.
    Error,
}

impl ContentStatus {
    /// The value stored in the `content_status` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Extracted => "extracted",
            Self::TooLarge => "too_large",
            Self::Unsupported => "unsupported",
            Self::Archived => "archived",
            Self::Error => "error",
        }
    }

    /// Parses the stored value back.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Extracted,
            Self::TooLarge,
            Self::Unsupported,
            Self::Archived,
            Self::Error,
        ]
        .into_iter()
        .find(|status| status.as_str() == value)
    }
}

/// One indexed S3 object: its metadata, and its text when it was extracted.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Document {
    /// Hex md5 of `"{bucket}/{key}"`.
    #[serde(serialize_with = "serialize_doc_id")]
    pub id: DocId,
    /// The bucket holding the object.
    pub bucket: String,
    /// The object key, exactly as S3 returns it.
    pub key: String,
    /// The last path segment of the key.
    pub filename: String,
    /// The lowercased extension with its dot (`.pdf`), empty when the name has none.
    pub extension: String,
    /// Object size in bytes, from the listing.
    pub size_in_bytes: u64,
    /// Last-modified time, from the listing.
    #[serde(with = "time::serde::rfc3339")]
    pub last_modified: OffsetDateTime,
    /// The object's ETag, quotes included, as S3 lists it.
    pub etag: String,
    /// Content-Type from GetObject, when the object was downloaded.
    pub content_type: Option<String>,
    /// Storage class from the listing (`STANDARD`, `GLACIER`, ...).
    pub storage_class: Option<String>,
    /// `s3://bucket/key`.
    pub url: String,
    /// A title found in the content (HTML `<title>`), if any.
    pub title: Option<String>,
    /// Extracted text, if any.
    pub body: Option<String>,
    /// What became of the content.
    pub content_status: ContentStatus,
    /// Why extraction failed (`content_status` `error`) or stopped at a cap (`too_large`).
    pub extraction_error: Option<String>,
    /// When this document was written.
    #[serde(with = "time::serde::rfc3339")]
    pub indexed_at: OffsetDateTime,
    /// The object's user metadata and tags, which queries filter on (`meta.author:alice`).
    #[serde(flatten)]
    pub attributes: Attributes,
    /// The body's passages and their vectors; empty when the connector has no `embedding:`.
    /// Sinks store them beside the document (not in its serialized form).
    #[serde(skip)]
    pub passages: Vec<StoredPassage>,
    /// Why embedding the passages failed. A sink answers [`VersionStamp::UNFINISHED`] for such
    /// a document, so that the next sync embeds it again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_error: Option<String>,
}

impl Document {
    /// The version stamp of the object this document was made from.
    pub fn version(&self) -> VersionStamp {
        VersionStamp::of(&self.etag, self.last_modified, self.size_in_bytes)
    }

    /// Bytes of extracted text (body and title): what dominates the document's size.
    pub fn text_len(&self) -> usize {
        self.body.as_ref().map_or(0, String::len) + self.title.as_ref().map_or(0, String::len)
    }
}

/// An object's user metadata (`x-amz-meta-*`) and tags, as a document holds them: names of
/// metadata lowercased (S3 compares them without case), at most [`Attributes::MAX_ENTRIES`] of
/// each kind, names of at most [`Attributes::MAX_NAME_BYTES`] and values cut to
/// [`Attributes::MAX_VALUE_BYTES`], so that a hostile object cannot blow up an index.
///
/// Sinks index them as [`Attributes::filter_terms`] in one keyword field, never as a field per
/// name: OpenSearch would add a mapping field for every name any object ever had.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Attributes {
    /// User metadata, name (lowercased, without `x-amz-meta-`) → value.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Object tags, key → value (only with the connector's `index_tags`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl Attributes {
    /// Entries kept of each kind (the first by name); S3 allows 10 tags and 2 KB of metadata.
    pub const MAX_ENTRIES: usize = 32;
    /// Longest name kept (longer ones are dropped); S3's tag keys have at most 128 characters.
    pub const MAX_NAME_BYTES: usize = 128;
    /// Longest value kept, in bytes; longer values are cut at a character boundary.
    pub const MAX_VALUE_BYTES: usize = 256;

    /// The attributes of an object with this metadata and these tags, capped; also how many
    /// entries were left out by the caps.
    pub fn capped(
        metadata: impl IntoIterator<Item = (String, String)>,
        tags: impl IntoIterator<Item = (String, String)>,
    ) -> (Self, usize) {
        let mut dropped = 0;
        let mut cap = |entries: BTreeMap<String, String>| {
            let total = entries.len();
            let kept: BTreeMap<String, String> = entries
                .into_iter()
                .filter(|(name, _)| !name.is_empty() && name.len() <= Self::MAX_NAME_BYTES)
                .take(Self::MAX_ENTRIES)
                .map(|(name, mut value)| {
                    let mut end = value.len().min(Self::MAX_VALUE_BYTES);
                    while !value.is_char_boundary(end) {
                        end -= 1;
                    }
                    value.truncate(end);
                    (name, value)
                })
                .collect();
            dropped += total - kept.len();
            kept
        };
        let metadata = cap(metadata
            .into_iter()
            .map(|(name, value)| (name.to_lowercase(), value))
            .collect());
        let tags = cap(tags.into_iter().collect());
        (Self { metadata, tags }, dropped)
    }

    /// Whether there is neither metadata nor a tag.
    pub fn is_empty(&self) -> bool {
        self.metadata.is_empty() && self.tags.is_empty()
    }

    /// The terms a filter matches: `meta.<name>=<value>` and `tag.<key>=<value>`, lowercased
    /// and folded to ASCII ([`query::filter_term`]).
    pub fn filter_terms(&self) -> Vec<String> {
        let metadata = self
            .metadata
            .iter()
            .map(|(name, value)| query::filter_term(query::FilterKind::Metadata, name, value));
        let tags = self
            .tags
            .iter()
            .map(|(key, value)| query::filter_term(query::FilterKind::Tag, key, value));
        metadata.chain(tags).collect()
    }
}

/// Serialized as `metadata` and `tags` objects and the `filters` terms beside them: the stored
/// form in OpenSearch, where only `filters` is indexed.
impl Serialize for Attributes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("metadata", &self.metadata)?;
        map.serialize_entry("tags", &self.tags)?;
        map.serialize_entry("filters", &self.filter_terms())?;
        map.end()
    }
}

pub(crate) fn serialize_doc_id<S: serde::Serializer>(
    id: &DocId,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&id.to_hex())
}

/// One search result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchHit {
    /// Hex document id.
    pub id: String,
    /// The object's bucket.
    pub bucket: String,
    /// The object's key.
    pub key: String,
    /// Relevance score (BM25 on the embedded index).
    pub score: f32,
}

/// Documents of a batch that the sink refused, with the reason for each. Empty when all landed.
pub type RejectedDocuments = Vec<(DocId, String)>;

/// The sink a configuration selects, opened for one index. It is not itself a [`Sink`]: the
/// code that works on an index is generic over [`Sink`] (one dispatch mechanism, the same for
/// object stores), and [`with_sink!`](crate::with_sink) is the one place where the backend
/// chosen at run time becomes a concrete type for it.
#[derive(Debug, Clone)]
pub enum AnySink {
    /// The embedded (tantivy) index.
    Embedded(embedded::EmbeddedIndex),
    /// An index of an OpenSearch cluster.
    Opensearch(self::opensearch::OpensearchSink),
}

/// Evaluates `$body` with `$sink` bound to the backend inside the [`AnySink`] `$any` (a value
/// or a reference): `with_sink!(&index, sink => pipeline.run(sink, &cancel, false).await)`.
#[macro_export]
macro_rules! with_sink {
    ($any:expr, $sink:ident => $body:expr) => {
        match $any {
            $crate::sink::AnySink::Embedded($sink) => $body,
            $crate::sink::AnySink::Opensearch($sink) => $body,
        }
    };
}

impl AnySink {
    /// Opens (creating if needed) the index `index_name` of the configured backend.
    pub async fn open(config: &IndexConfig, index_name: &str) -> Result<Self, SinkError> {
        match config {
            IndexConfig::Embedded { path } => {
                let dir = path.join(index_name);
                let index = tokio::task::spawn_blocking(move || {
                    embedded::EmbeddedIndex::open_or_create(&dir)
                })
                .await
                .map_err(|error| SinkError::Task(error.to_string()))??;
                Ok(Self::Embedded(index))
            }
            IndexConfig::Opensearch(settings) => Ok(Self::Opensearch(
                self::opensearch::OpensearchSink::open(settings, index_name).await?,
            )),
        }
    }
}

impl AnySink {
    /// The stored document with this id, as of the last commit.
    pub async fn get(&self, id: DocId) -> Result<Option<Document>, SinkError> {
        match self {
            Self::Embedded(index) => {
                let index = index.clone();
                tokio::task::spawn_blocking(move || index.get(id))
                    .await
                    .map_err(|error| SinkError::Task(error.to_string()))?
                    .map_err(SinkError::from)
            }
            Self::Opensearch(index) => Ok(index.get(id).await?),
        }
    }

    /// Opens the index `index_name` if it exists; `None` when no sync has created it yet.
    /// Creates nothing, so a read-only command on a connector that never synced leaves no
    /// empty index behind.
    pub async fn open_existing(
        config: &IndexConfig,
        index_name: &str,
    ) -> Result<Option<Self>, SinkError> {
        let exists = match config {
            IndexConfig::Embedded { path } => {
                embedded::EmbeddedIndex::exists(&path.join(index_name))
            }
            IndexConfig::Opensearch(settings) => {
                self::opensearch::OpensearchSink::exists(settings, index_name).await?
            }
        };
        if exists {
            Self::open(config, index_name).await.map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Errors of any sink.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The embedded (tantivy) index failed.
    #[error(transparent)]
    Embedded(#[from] embedded::EmbeddedError),
    /// The OpenSearch index failed.
    #[error(transparent)]
    Opensearch(#[from] self::opensearch::OpensearchError),
    /// A background task of the sink died.
    #[error("an index task failed: {0}")]
    Task(String),
}

/// The interface between the sync orchestrator and an index.
///
/// Writes become durable and visible on [`Sink::commit`]; a crash before it loses only the
/// uncommitted writes, which the next sync redoes.
pub trait Sink: Send + Sync {
    /// Documents the sync hands to one [`Sink::upsert`]. Default 256.
    fn batch_size(&self) -> usize {
        256
    }

    /// Documents the sync asks for in one [`Sink::indexed_page`]. Default 1,000.
    fn scan_page_size(&self) -> usize {
        1000
    }

    /// Requests to the index retried so far after transient errors (0 for an index that is
    /// not remote). The sync reports the difference over its run.
    fn retries(&self) -> u64 {
        0
    }

    /// Buckets that have at least one document in this index.
    fn indexed_buckets(&self) -> impl Future<Output = Result<Vec<String>, SinkError>> + Send;

    /// A page of the committed documents of `bucket` in key order (UTF-8 bytes, S3's listing
    /// order): at most `limit` of them, from where `from` says (the bucket's first key, the
    /// first key after the previous page's last, or the first key at least a given one). A page
    /// of fewer than `limit` is the last. The cursor is a key, so each page is a fresh,
    /// independently retried read, memory holds one page, not the bucket, and writes the sync
    /// makes behind the cursor (keys it already decided) never show up in a later page. A shard
    /// by range starts at its lower bound; a shard by prefix skips the groups of other shards.
    fn indexed_page(
        &self,
        bucket: &str,
        from: ScanFrom<'_>,
        limit: usize,
    ) -> impl Future<Output = IndexedPage> + Send;

    /// The version stamp of one committed document; `None` when the index does not hold it.
    /// What an event notification's key is compared with.
    fn indexed_version(
        &self,
        id: DocId,
    ) -> impl Future<Output = Result<Option<VersionStamp>, SinkError>> + Send;

    /// Adds the documents, replacing any with the same id.
    fn upsert(
        &self,
        documents: Vec<Document>,
    ) -> impl Future<Output = Result<RejectedDocuments, SinkError>> + Send;

    /// [`Sink::upsert`] for documents the caller knows the index does not hold (the sync found
    /// no indexed copy, and no other writer runs meanwhile): a sink may skip replacing an old
    /// copy. The embedded index then queues no delete per document, which otherwise holds
    /// about 1 KiB of memory each until the commit and is applied to every segment.
    fn insert_new(
        &self,
        documents: Vec<Document>,
    ) -> impl Future<Output = Result<RejectedDocuments, SinkError>> + Send {
        self.upsert(documents)
    }

    /// Removes the documents with these ids; unknown ids are ignored.
    fn delete(&self, ids: Vec<DocId>) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Makes every write so far durable and visible to searches.
    fn commit(&self) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// BM25 search over `body`, `title`, `filename` and `key`, best first. `query` is what a
    /// person typed: Lucene's query-string syntax (words, "phrases", `AND`/`OR`/`NOT`, `-`/`+`,
    /// parentheses, `field:word`) with the same meaning on every sink, plus `meta.`/`tag.`
    /// filters ([`query`]); words match with case and accents folded ([`analysis`]).
    fn search(
        &self,
        query: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<SearchHit>, SinkError>> + Send;

    /// The source this index's documents came from, as last recorded; `None` before any
    /// (read by the sync's retarget guard). Default: the sink records nothing.
    fn recorded_source(
        &self,
    ) -> impl Future<Output = Result<Option<IndexSource>, SinkError>> + Send {
        async { Ok(None) }
    }

    /// Records the source of this index's documents, replacing any earlier record.
    fn record_source(
        &self,
        source: &IndexSource,
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        let _ = source;
        async { Ok(()) }
    }

    /// The passages of a search, best first ([`passages`]). Default: the keyword
    /// [`Sink::search`], each hit a whole document without a snippet (a sink without
    /// passages).
    fn search_passages(
        &self,
        query: &PassageQuery,
    ) -> impl Future<Output = Result<Vec<PassageHit>, SinkError>> + Send {
        async move {
            let hits = self.search(&query.text, query.limit).await?;
            Ok(hits
                .into_iter()
                .filter_map(|hit| {
                    Some(PassageHit {
                        id: DocId::from_hex(&hit.id)?,
                        bucket: hit.bucket,
                        key: hit.key,
                        title: None,
                        passage: None,
                        score: hit.score,
                        snippet: None,
                    })
                })
                .collect())
        }
    }

    /// The vectors of the committed passages of document `id` by content hash: what a re-sync
    /// of a changed object reuses instead of calling the model. Default: none.
    fn passage_vectors(
        &self,
        id: DocId,
    ) -> impl Future<Output = Result<Vec<(PassageHash, Vec<f32>)>, SinkError>> + Send {
        let _ = id;
        async { Ok(Vec::new()) }
    }

    /// The model that made this index's vectors, as last recorded; `None` before any.
    fn recorded_model(
        &self,
    ) -> impl Future<Output = Result<Option<EmbeddingModel>, SinkError>> + Send {
        async { Ok(None) }
    }

    /// Records the model of this index's vectors, replacing any earlier record.
    fn record_model(
        &self,
        model: &EmbeddingModel,
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        let _ = model;
        async { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_elastics_md5_of_bucket_slash_key() {
        // md5("team-docs/docs/a b+c%.txt"), as Elastic's connector computes it.
        let id = DocId::of("team-docs", "docs/a b+c%.txt");
        assert_eq!(id.to_hex(), "8031083421bae1ab1fc3adb55324dc5a");
        assert_eq!(DocId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(DocId::from_hex("not-hex"), None);
    }

    #[test]
    fn attributes_are_capped_and_lowercased_and_become_filter_terms() {
        let long = "é".repeat(200);
        let (attributes, dropped) = Attributes::capped(
            [
                ("Author".to_owned(), "Zoë Smith".to_owned()),
                ("long".to_owned(), long.clone()),
                ("x".repeat(129), "too long a name".to_owned()),
            ],
            (0..40).map(|n| (format!("k{n:02}"), "V".to_owned())),
        );
        assert_eq!(dropped, 1 + 8);
        assert_eq!(attributes.metadata["author"], "Zoë Smith");
        assert_eq!(attributes.metadata["long"], "é".repeat(128));
        assert_eq!(attributes.tags.len(), Attributes::MAX_ENTRIES);
        assert_eq!(attributes.tags.keys().last().unwrap(), "k31");
        let terms = attributes.filter_terms();
        assert_eq!(terms[0], "meta.author=zoe smith");
        assert_eq!(terms[2], "tag.k00=v");
        let json = serde_json::to_value(&attributes).unwrap();
        assert_eq!(json["metadata"]["author"], "Zoë Smith");
        assert_eq!(json["filters"][0], "meta.author=zoe smith");
    }

    #[test]
    fn version_stamps_change_with_etag_time_or_size() {
        let time = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let stamp = VersionStamp::of("\"e1\"", time, 10);
        assert_eq!(stamp, VersionStamp::of("\"e1\"", time, 10));
        assert_ne!(stamp, VersionStamp::of("\"e2\"", time, 10));
        assert_ne!(
            stamp,
            VersionStamp::of("\"e1\"", time + time::Duration::seconds(1), 10)
        );
        assert_ne!(stamp, VersionStamp::of("\"e1\"", time, 11));
    }
}
