//! The tantivy schema of the embedded index, and the mapping between [`Document`] and the stored
//! tantivy document.
//!
//! Only the shape of the data lives here; opening the index is in the parent module, writing,
//! reading and searching in its siblings.

use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, IndexRecordOption, NumericOptions, STORED, STRING,
    Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::{DateTime, Index, TantivyDocument};
use time::OffsetDateTime;

use crate::sink::{Attributes, ContentStatus, DocId, Document, analysis};

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
}

/// Registers the analyzers the schema's fields name with `index`: every open of an index (and
/// every index an upgrade creates) must, before it reads or writes text.
pub(super) fn register_analyzers(index: &Index) {
    index
        .tokenizers()
        .register(analysis::FOLDED, analysis::folded());
}

/// Searchable text: words analysed by [`analysis::FOLDED`] (lowercased, accents folded), with
/// positions for phrases, and stored.
fn searchable_text() -> TextOptions {
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(analysis::FOLDED)
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
        key: builder.add_text_field(KEY, searchable_text()),
        filename: builder.add_text_field(FILENAME, searchable_text()),
        // Indexed as raw strings so that `extension:.pdf` or `content_status:error` work as filters.
        extension: builder.add_text_field(EXTENSION, STRING | STORED),
        size_in_bytes: builder.add_u64_field(SIZE_IN_BYTES, NumericOptions::from(STORED | FAST)),
        last_modified: builder.add_date_field(LAST_MODIFIED, last_modified_options),
        etag: builder.add_text_field(ETAG, STORED | FAST),
        content_type: builder.add_text_field(CONTENT_TYPE, STRING | STORED),
        storage_class: builder.add_text_field(STORAGE_CLASS, STRING | STORED),
        url: builder.add_text_field(URL, STORED),
        title: builder.add_text_field(TITLE, searchable_text()),
        body: builder.add_text_field(BODY, searchable_text()),
        content_status: builder.add_text_field(CONTENT_STATUS, STRING | STORED),
        extraction_error: builder.add_text_field(EXTRACTION_ERROR, STORED),
        indexed_at: builder.add_date_field(INDEXED_AT, DateOptions::from(STORED)),
        // Added last, so the fields before it keep their numbers and an index made before it
        // can be read with these handles while it is upgraded (see `upgrade.rs`).
        bucket_key: builder.add_text_field(BUCKET_KEY, STRING),
        attributes: builder.add_text_field(ATTRIBUTES, STORED),
        filters: builder.add_text_field(FILTERS, STRING),
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
            embedding_error: None,
        })
    }
}
