//! Reads of committed documents: one document by id, the buckets of the index, and the version
//! stamps of a bucket's documents straight from the fast-field columns (no stored fields read).

use std::collections::{BTreeSet, HashMap};

use tantivy::collector::TopDocs;
use tantivy::columnar::StrColumn;
use tantivy::query::TermQuery;
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocSet, SegmentReader, TERMINATED, TantivyDocument, TantivyError, Term};

use super::schema;
use super::{EmbeddedError, Inner};
use crate::sink::{DocId, Document, KeyFilter, VersionStamp};

impl Inner {
    pub(super) fn get(&self, id: DocId) -> Result<Option<Document>, EmbeddedError> {
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

    pub(super) fn indexed_buckets(&self) -> Result<Vec<String>, EmbeddedError> {
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

    pub(super) fn indexed_versions(
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

    /// [`Inner::indexed_versions`] of the documents whose key `owns` accepts: one shard's part.
    /// Reads each document's stored fields for its key, so it is slower than the unfiltered
    /// scan; the embedded index is never sharded in practice (one writer), this keeps the
    /// contract whole.
    pub(super) fn indexed_versions_owned(
        &self,
        bucket: &str,
        owns: &KeyFilter,
    ) -> Result<HashMap<DocId, VersionStamp>, EmbeddedError> {
        let searcher = self.reader.searcher();
        let bucket_term = Term::from_field_text(self.fields.bucket, bucket);
        let mut versions = HashMap::new();
        for (ordinal, segment) in searcher.segment_readers().iter().enumerate() {
            let inverted = segment
                .inverted_index(self.fields.bucket)
                .map_err(self.tantivy_error("reading versions from"))?;
            let postings = inverted
                .read_postings(&bucket_term, IndexRecordOption::Basic)
                .map_err(|cause| {
                    self.tantivy_error("reading versions from")(TantivyError::from(cause))
                })?;
            let Some(mut postings) = postings else {
                continue;
            };
            let mut doc = postings.doc();
            while doc != TERMINATED {
                if !segment.is_deleted(doc) {
                    let address = DocAddress::new(u32::try_from(ordinal).unwrap_or(u32::MAX), doc);
                    let stored: TantivyDocument = searcher
                        .doc(address)
                        .map_err(self.tantivy_error("reading versions from"))?;
                    let document = self
                        .fields
                        .decode(&stored)
                        .map_err(|detail| self.corrupt(detail))?;
                    if owns.accepts(&document.key) {
                        versions.insert(document.id, document.version());
                    }
                }
                doc = postings.advance();
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
