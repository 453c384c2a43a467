//! The tantivy schema of the embedded index, and the mapping between [`Document`] and the stored
//! tantivy document.
//!
//! A document's passages (`Document::passages`) are tantivy documents of their own in the same
//! index, written in the same commit as their document: [`KIND`] tells the three kinds apart
//! (a document without passages, one with, a passage), and a passage names its document in
//! [`PASSAGE_OF`]. A passage has no `id` and no `bucket_key`, so lookups and key-ordered scans
//! never see one; it repeats its document's bucket, key, filename, title and filter terms, so
//! that a passage search filters and weighs as a document search does.
//!
//! Only the shape of the data lives here; opening the index is in the parent module, writing,
//! reading and searching in its siblings.

use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, IndexRecordOption, NumericOptions, STORED, STRING,
    Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::{DateTime, Index, TantivyDocument};
use time::OffsetDateTime;

use crate::embed::{Passage, PassageHash};
use crate::sink::{Attributes, ContentStatus, DocId, Document, StoredPassage, analysis};

/// Field names, also the names a user can put in front of a query term (`filename:report`).
pub(super) const ID: &str = "id";
pub(super) const BUCKET: &str = "bucket";
pub(super) const KEY: &str = "key";
pub(super) const FILENAME: &str = "filename";
pub(super) const EXTENSION: &str = "extension";
pub(super) const SIZE_IN_BYTES: &str = "size_in_bytes";
pub(super) const LAST_MODIFIED: &str = "last_modified";
pub(super) const ETAG: &str = "etag";
pub(super) const CONTENT_TYPE: &str = "content_type";
pub(super) const STORAGE_CLASS: &str = "storage_class";
pub(super) const URL: &str = "url";
pub(super) const TITLE: &str = "title";
pub(super) const BODY: &str = "body";
pub(super) const CONTENT_STATUS: &str = "content_status";
pub(super) const EXTRACTION_ERROR: &str = "extraction_error";
pub(super) const INDEXED_AT: &str = "indexed_at";
/// `"{bucket}/{key}"` as one raw term: its term dictionary, sorted by bytes, lists a bucket's
/// keys in S3's order (a bucket name has no `/`, so `"{bucket}/"` bounds exactly its keys).
pub(super) const BUCKET_KEY: &str = "bucket_key";
/// The object's user metadata and tags as stored JSON (`{"metadata":{..},"tags":{..}}`).
pub(super) const ATTRIBUTES: &str = "attributes";
/// The terms filters match (`meta.author=alice`), one raw term each, not stored.
pub(super) const FILTERS: &str = "filters";
/// What a tantivy document is: [`KIND_DOCUMENT`], [`KIND_EMBEDDED`] or [`KIND_PASSAGE`].
pub(super) const KIND: &str = "kind";
/// A document synced without passages.
pub(super) const KIND_DOCUMENT: &str = "document";
/// A document whose passages are stored beside it.
pub(super) const KIND_EMBEDDED: &str = "embedded";
/// One passage of an embedded document.
pub(super) const KIND_PASSAGE: &str = "passage";
/// The id (32 hex characters) of a passage's document.
pub(super) const PASSAGE_OF: &str = "passage_of";
/// A passage's text.
pub(super) const PASSAGE: &str = "passage";
pub(super) const PASSAGE_ORDINAL: &str = "passage_ordinal";
pub(super) const PASSAGE_START: &str = "passage_start";
pub(super) const PASSAGE_END: &str = "passage_end";
pub(super) const HEADING: &str = "heading";
pub(super) const PAGE: &str = "page";
pub(super) const CONTENT_HASH: &str = "content_hash";
/// A passage's vector: its components as little-endian `f32`s.
pub(super) const VECTOR: &str = "vector";
pub(super) const EMBEDDING_ERROR: &str = "embedding_error";
/// 1 for a document whose embedding failed (a fast column, read by key-ordered scans).
pub(super) const UNFINISHED: &str = "unfinished";

/// Handles of every field, resolved once when the schema is built.
#[derive(Clone, Copy, Debug)]
pub(super) struct Fields {
    pub id: Field,
    pub bucket: Field,
    pub key: Field,
    pub filename: Field,
    pub extension: Field,
    pub size_in_bytes: Field,
    pub last_modified: Field,
    pub etag: Field,
    pub content_type: Field,
    pub storage_class: Field,
    pub url: Field,
    pub title: Field,
    pub body: Field,
    pub content_status: Field,
    pub extraction_error: Field,
    pub indexed_at: Field,
    pub bucket_key: Field,
    pub attributes: Field,
    pub filters: Field,
    pub kind: Field,
    pub passage_of: Field,
    pub passage: Field,
    pub passage_ordinal: Field,
    pub passage_start: Field,
    pub passage_end: Field,
    pub heading: Field,
    pub page: Field,
    pub content_hash: Field,
    pub vector: Field,
    pub embedding_error: Field,
    pub unfinished: Field,
}

/// Registers the analyzers the schema's fields name with `index`: every open of an index (and
/// every index an upgrade creates) must, before it reads or writes text.
pub(super) fn register_analyzers(index: &Index) {
    index
        .tokenizers()
        .register(analysis::FOLDED, analysis::folded());
    index
        .tokenizers()
        .register(analysis::ENGLISH, analysis::english());
}

/// Searchable text: words analysed by `analyzer` ([`analysis::FOLDED`] for keys,
/// [`analysis::ENGLISH`] for prose), with positions for phrases, and stored.
fn searchable_text(analyzer: &str) -> TextOptions {
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(analyzer)
        .set_index_option(IndexRecordOption::WithFreqsAndPositions);
    TextOptions::default()
        .set_indexing_options(indexing)
        .set_stored()
}

/// Builds the schema and the handles of its fields.
///
/// Changing anything here makes existing indices fail to open with a schema mismatch, unless
/// `upgrade.rs` can rebuild them from their stored fields: new fields go last, and a text field
/// may change only its analyzer.
pub(super) fn build() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    // Version stamps are compared at millisecond precision, so the column keeps milliseconds;
    // the stored value keeps the full precision.
    let last_modified_options =
        DateOptions::from(STORED | FAST).set_precision(DateTimePrecision::Milliseconds);
    let fields = Fields {
        id: builder.add_text_field(ID, STRING | STORED | FAST),
        bucket: builder.add_text_field(BUCKET, STRING | STORED | FAST),
        key: builder.add_text_field(KEY, searchable_text(analysis::FOLDED)),
        filename: builder.add_text_field(FILENAME, searchable_text(analysis::ENGLISH)),
        // Indexed as raw strings so that `extension:.pdf` or `content_status:error` work as filters.
        extension: builder.add_text_field(EXTENSION, STRING | STORED),
        size_in_bytes: builder.add_u64_field(SIZE_IN_BYTES, NumericOptions::from(STORED | FAST)),
        last_modified: builder.add_date_field(LAST_MODIFIED, last_modified_options),
        etag: builder.add_text_field(ETAG, STORED | FAST),
        content_type: builder.add_text_field(CONTENT_TYPE, STRING | STORED),
        storage_class: builder.add_text_field(STORAGE_CLASS, STRING | STORED),
        url: builder.add_text_field(URL, STORED),
        title: builder.add_text_field(TITLE, searchable_text(analysis::ENGLISH)),
        body: builder.add_text_field(BODY, searchable_text(analysis::ENGLISH)),
        content_status: builder.add_text_field(CONTENT_STATUS, STRING | STORED),
        extraction_error: builder.add_text_field(EXTRACTION_ERROR, STORED),
        indexed_at: builder.add_date_field(INDEXED_AT, DateOptions::from(STORED)),
        // Added last, so the fields before it keep their numbers and an index made before it
        // can be read with these handles while it is upgraded (see `upgrade.rs`).
        bucket_key: builder.add_text_field(BUCKET_KEY, STRING),
        attributes: builder.add_text_field(ATTRIBUTES, STORED),
        filters: builder.add_text_field(FILTERS, STRING),
        // Passages (#24), added last for the same reason.
        kind: builder.add_text_field(KIND, STRING),
        passage_of: builder.add_text_field(PASSAGE_OF, STRING | STORED),
        passage: builder.add_text_field(PASSAGE, searchable_text(analysis::ENGLISH)),
        passage_ordinal: builder.add_u64_field(PASSAGE_ORDINAL, STORED),
        passage_start: builder.add_u64_field(PASSAGE_START, STORED),
        passage_end: builder.add_u64_field(PASSAGE_END, STORED),
        heading: builder.add_text_field(HEADING, STORED),
        page: builder.add_u64_field(PAGE, STORED),
        content_hash: builder.add_text_field(CONTENT_HASH, STORED),
        vector: builder.add_bytes_field(VECTOR, STORED),
        embedding_error: builder.add_text_field(EMBEDDING_ERROR, STORED),
        unfinished: builder.add_u64_field(UNFINISHED, FAST),
    };
    (builder.build(), fields)
}

/// The `bucket_key` term of an object.
pub(super) fn bucket_key(bucket: &str, key: &str) -> String {
    format!("{bucket}/{key}")
}

impl Fields {
    /// The tantivy document for `document`, or `None` when one of its times lies outside what
    /// tantivy can store (before 1677 or after 2262).
    pub(super) fn encode(&self, document: &Document) -> Option<TantivyDocument> {
        let last_modified = DateTime::try_from_utc(document.last_modified)?;
        let indexed_at = DateTime::try_from_utc(document.indexed_at)?;
        let mut doc = TantivyDocument::new();
        doc.add_text(self.id, document.id.to_hex());
        doc.add_text(self.bucket, &document.bucket);
        doc.add_text(self.key, &document.key);
        doc.add_text(self.filename, &document.filename);
        doc.add_text(self.extension, &document.extension);
        doc.add_u64(self.size_in_bytes, document.size_in_bytes);
        doc.add_date(self.last_modified, last_modified);
        doc.add_text(self.etag, &document.etag);
        doc.add_text(self.url, &document.url);
        doc.add_text(self.content_status, document.content_status.as_str());
        doc.add_date(self.indexed_at, indexed_at);
        doc.add_text(self.bucket_key, bucket_key(&document.bucket, &document.key));
        let kind = if document.passages.is_empty() {
            KIND_DOCUMENT
        } else {
            KIND_EMBEDDED
        };
        doc.add_text(self.kind, kind);
        if let Some(error) = &document.embedding_error {
            doc.add_text(self.embedding_error, error);
            doc.add_u64(self.unfinished, 1);
        }
        if !document.attributes.is_empty() {
            let stored = serde_json::json!({
                "metadata": document.attributes.metadata,
                "tags": document.attributes.tags,
            });
            doc.add_text(self.attributes, stored.to_string());
            for term in document.attributes.filter_terms() {
                doc.add_text(self.filters, term);
            }
        }
        // An absent field, not an empty string, is what makes `None` come back as `None`.
        let optional = [
            (self.content_type, &document.content_type),
            (self.storage_class, &document.storage_class),
            (self.title, &document.title),
            (self.body, &document.body),
            (self.extraction_error, &document.extraction_error),
        ];
        for (field, value) in optional {
            if let Some(value) = value {
                doc.add_text(field, value);
            }
        }
        Some(doc)
    }

    /// The tantivy documents of `document`'s passages: each with its document's id, the
    /// fields a search filters or weighs on, and its own text, place and vector.
    pub(super) fn encode_passages(&self, document: &Document) -> Vec<TantivyDocument> {
        let id = document.id.to_hex();
        let filters = document.attributes.filter_terms();
        document
            .passages
            .iter()
            .map(|stored| {
                let passage = &stored.passage;
                let mut doc = TantivyDocument::new();
                doc.add_text(self.kind, KIND_PASSAGE);
                doc.add_text(self.passage_of, &id);
                doc.add_text(self.bucket, &document.bucket);
                doc.add_text(self.key, &document.key);
                doc.add_text(self.filename, &document.filename);
                doc.add_text(self.extension, &document.extension);
                doc.add_text(self.content_status, document.content_status.as_str());
                for (field, value) in [
                    (self.title, &document.title),
                    (self.content_type, &document.content_type),
                    (self.storage_class, &document.storage_class),
                    (self.heading, &passage.heading),
                ] {
                    if let Some(value) = value {
                        doc.add_text(field, value);
                    }
                }
                for term in &filters {
                    doc.add_text(self.filters, term);
                }
                doc.add_text(self.passage, &passage.text);
                doc.add_u64(self.passage_ordinal, u64::from(passage.ordinal));
                doc.add_u64(self.passage_start, passage.start as u64);
                doc.add_u64(self.passage_end, passage.end as u64);
                if let Some(page) = passage.page {
                    doc.add_u64(self.page, u64::from(page));
                }
                doc.add_text(self.content_hash, passage.content_hash.to_hex());
                if let Some(vector) = &stored.vector {
                    doc.add_bytes(self.vector, &vector_bytes(vector));
                }
                doc
            })
            .collect()
    }

    /// Rebuilds a stored passage and the id of its document; the error names what is missing.
    pub(super) fn decode_passage(
        &self,
        doc: &TantivyDocument,
    ) -> Result<(DocId, StoredPassage), String> {
        let text = |field: Field| -> Option<String> {
            doc.get_first(field)
                .and_then(|value| value.as_str().map(str::to_owned))
        };
        let number = |field: Field| doc.get_first(field).and_then(|value| value.as_u64());
        let required = |field: Field, name: &str| {
            number(field).ok_or_else(|| format!("a passage has no stored `{name}`"))
        };
        let of = text(self.passage_of).unwrap_or_default();
        let id = DocId::from_hex(&of)
            .ok_or_else(|| format!("a passage's `{PASSAGE_OF}` `{of}` is not 32 hex characters"))?;
        let hash = text(self.content_hash).unwrap_or_default();
        let content_hash = PassageHash::from_hex(&hash)
            .ok_or_else(|| format!("a passage of {id} has a malformed `{CONTENT_HASH}`"))?;
        let vector = match doc
            .get_first(self.vector)
            .and_then(|value| value.as_bytes())
        {
            None => None,
            Some(bytes) => Some(vector_of(bytes).ok_or_else(|| {
                format!(
                    "a passage of {id} has a `{VECTOR}` of {} bytes",
                    bytes.len()
                )
            })?),
        };
        let ordinal = required(self.passage_ordinal, PASSAGE_ORDINAL)?;
        let passage = Passage {
            ordinal: u32::try_from(ordinal)
                .map_err(|_| format!("a passage of {id} has ordinal {ordinal}"))?,
            start: required(self.passage_start, PASSAGE_START)? as usize,
            end: required(self.passage_end, PASSAGE_END)? as usize,
            heading: text(self.heading),
            page: number(self.page).and_then(|page| u32::try_from(page).ok()),
            text: text(self.passage).unwrap_or_default(),
            content_hash,
        };
        Ok((id, StoredPassage { passage, vector }))
    }

    /// Rebuilds the [`Document`] from its stored fields; the error names what is missing or
    /// malformed.
    pub(super) fn decode(&self, doc: &TantivyDocument) -> Result<Document, String> {
        let text = |field: Field| -> Option<String> {
            doc.get_first(field)
                .and_then(|value| value.as_str().map(str::to_owned))
        };
        let required = |field: Field, name: &str| -> Result<String, String> {
            text(field).ok_or_else(|| format!("a document has no stored `{name}`"))
        };
        let date = |field: Field, name: &str| -> Result<OffsetDateTime, String> {
            doc.get_first(field)
                .and_then(|value| value.as_datetime())
                .map(DateTime::into_utc)
                .ok_or_else(|| format!("a document has no stored `{name}`"))
        };

        let hex_id = required(self.id, ID)?;
        let id = DocId::from_hex(&hex_id)
            .ok_or_else(|| format!("the stored id `{hex_id}` is not 32 hex characters"))?;
        let status = required(self.content_status, CONTENT_STATUS)?;
        let content_status = ContentStatus::parse(&status)
            .ok_or_else(|| format!("document {id} has an unknown content_status `{status}`"))?;
        let attributes = match text(self.attributes) {
            None => Attributes::default(),
            Some(json) => serde_json::from_str(&json).map_err(|error| {
                format!("document {id} has malformed stored `{ATTRIBUTES}`: {error}")
            })?,
        };
        let size_in_bytes = doc
            .get_first(self.size_in_bytes)
            .and_then(|value| value.as_u64())
            .ok_or_else(|| format!("document {id} has no stored `{SIZE_IN_BYTES}`"))?;

        Ok(Document {
            id,
            bucket: required(self.bucket, BUCKET)?,
            key: required(self.key, KEY)?,
            filename: required(self.filename, FILENAME)?,
            extension: required(self.extension, EXTENSION)?,
            size_in_bytes,
            last_modified: date(self.last_modified, LAST_MODIFIED)?,
            etag: required(self.etag, ETAG)?,
            content_type: text(self.content_type),
            storage_class: text(self.storage_class),
            url: required(self.url, URL)?,
            title: text(self.title),
            body: text(self.body),
            content_status,
            extraction_error: text(self.extraction_error),
            indexed_at: date(self.indexed_at, INDEXED_AT)?,
            attributes,
            passages: Vec::new(),
            embedding_error: text(self.embedding_error),
        })
    }
}

/// A vector as stored: its components as little-endian `f32`s.
pub(super) fn vector_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The vector of stored bytes; `None` when their length is not a multiple of 4.
pub(super) fn vector_of(bytes: &[u8]) -> Option<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect(),
    )
}
