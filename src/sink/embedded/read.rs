//! Reads of committed documents: one document by id, the buckets of the index, and a bucket's
//! documents in key order, a page at a time, with their version stamps straight from the
//! fast-field columns (no stored fields read).

use std::collections::BTreeSet;

use tantivy::collector::{Count, DocSetCollector, TopDocs};
use tantivy::columnar::StrColumn;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{
    DocId as DocAddressDoc, DocSet, SegmentReader, TERMINATED, TantivyDocument, TantivyError, Term,
};

use super::schema;
use super::{EmbeddedError, Inner};
use time::OffsetDateTime;

use crate::sink::{DocId, Document, IndexedEntry, ScanFrom, StoredPassage, VersionStamp};

/// Matches what holds `text` in `field` as one term (an id, a kind, a filter).
pub(super) fn term_query(field: Field, text: &str) -> TermQuery {
    TermQuery::new(Term::from_field_text(field, text), IndexRecordOption::Basic)
}

impl Inner {
    /// The committed document `id` with its passages (by ordinal).
    pub(super) fn get_with_passages(&self, id: DocId) -> Result<Option<Document>, EmbeddedError> {
        let Some(mut document) = self.get(id)? else {
            return Ok(None);
        };
        document.passages = self.passages(id)?;
        Ok(Some(document))
    }

    /// The committed passages of document `id`, by ordinal.
    pub(super) fn passages(&self, id: DocId) -> Result<Vec<StoredPassage>, EmbeddedError> {
        let searcher = self.reader.searcher();
        let query = term_query(self.fields.passage_of, &id.to_hex());
        let addresses = searcher
            .search(&query, &DocSetCollector)
            .map_err(self.tantivy_error("looking up passages in"))?;
        let mut passages = Vec::with_capacity(addresses.len());
        for address in addresses {
            let doc: TantivyDocument = searcher
                .doc(address)
                .map_err(self.tantivy_error("reading a passage from"))?;
            let (_, passage) = self
                .fields
                .decode_passage(&doc)
                .map_err(|detail| self.corrupt(detail))?;
            passages.push(passage);
        }
        passages.sort_by_key(|stored| stored.passage.ordinal);
        Ok(passages)
    }

    /// Committed documents (passages not counted).
    pub(super) fn count_documents(&self) -> Result<u64, EmbeddedError> {
        let count = self
            .reader
            .searcher()
            .search(&self.documents_only(), &Count)
            .map_err(self.tantivy_error("counting documents of"))?;
        Ok(count as u64)
    }

    /// Matches every document, no passage.
    pub(super) fn documents_only(&self) -> BooleanQuery {
        self.of_kinds(&[schema::KIND_DOCUMENT, schema::KIND_EMBEDDED])
    }

    /// Matches what has one of `kinds`.
    pub(super) fn of_kinds(&self, kinds: &[&str]) -> BooleanQuery {
        BooleanQuery::new(
            kinds
                .iter()
                .map(|kind| {
                    let query: Box<dyn Query> = Box::new(term_query(self.fields.kind, kind));
                    (Occur::Should, query)
                })
                .collect(),
        )
    }

    pub(super) fn get(&self, id: DocId) -> Result<Option<Document>, EmbeddedError> {
        let searcher = self.reader.searcher();
        let query = term_query(self.fields.id, &id.to_hex());
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

    /// The first `limit` alive documents of `bucket` from `from`, in key order. Each segment's
    /// `bucket_key` terms (sorted by their bytes) are walked from `from`,
    /// the segments merged as they go, until the page is full; then the versions of the page's
    /// documents are read from the fast-field columns. Memory holds a page; work is a page's
    /// terms plus one seek per segment.
    pub(super) fn indexed_page(
        &self,
        bucket: &str,
        from: ScanFrom<'_>,
        limit: usize,
    ) -> Result<Vec<IndexedEntry>, EmbeddedError> {
        let searcher = self.reader.searcher();
        let segments = searcher.segment_readers();
        let io_error = |cause: std::io::Error| {
            self.tantivy_error("reading versions from")(TantivyError::from(cause))
        };
        let prefix = schema::bucket_key(bucket, "");
        // The first byte after `/`: every term of the bucket is below it.
        let end = format!("{bucket}0");
        let start = match from {
            ScanFrom::Start => None,
            ScanFrom::After(key) => Some((schema::bucket_key(bucket, key), false)),
            ScanFrom::AtLeast(key) => Some((schema::bucket_key(bucket, key), true)),
        };
        let inverted = segments
            .iter()
            .map(|segment| segment.inverted_index(self.fields.bucket_key))
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.tantivy_error("reading versions from"))?;
        // Every segment's terms from the start, each positioned on its next term.
        let mut streams = Vec::with_capacity(segments.len());
        for (segment_ord, index) in inverted.iter().enumerate() {
            let range = index.terms().range().lt(end.as_bytes());
            let range = match &start {
                Some((start, true)) => range.ge(start.as_bytes()),
                Some((start, false)) => range.gt(start.as_bytes()),
                None => range.ge(prefix.as_bytes()),
            };
            let mut terms = range.into_stream().map_err(io_error)?;
            if terms.advance() {
                streams.push((segment_ord, terms));
            }
        }
        // (key, segment, doc) of the page, in key order.
        let mut candidates: Vec<(String, usize, DocAddressDoc)> = Vec::with_capacity(limit);
        while candidates.len() < limit {
            // The segment whose next term is the smallest (the first of equals).
            let Some(position) =
                (0..streams.len()).min_by(|&a, &b| streams[a].1.key().cmp(streams[b].1.key()))
            else {
                break;
            };
            let (segment_ord, terms) = &mut streams[position];
            let mut postings = inverted[*segment_ord]
                .read_postings_from_terminfo(terms.value(), IndexRecordOption::Basic)
                .map_err(io_error)?;
            if let Some(doc) = first_alive_doc(&segments[*segment_ord], &mut postings) {
                let key = std::str::from_utf8(&terms.key()[prefix.len()..])
                    .map_err(|_| self.corrupt("a key is not valid UTF-8".to_owned()))?;
                // An upsert deletes the old copy in the same commit, so a key is alive once;
                // keep the first should a crash ever leave two.
                if candidates.last().is_none_or(|(last, ..)| last != key) {
                    candidates.push((key.to_owned(), *segment_ord, doc));
                }
            }
            if !terms.advance() {
                streams.swap_remove(position);
            }
        }

        let mut entries: Vec<Option<IndexedEntry>> = vec![None; candidates.len()];
        for (segment_ord, segment) in searcher.segment_readers().iter().enumerate() {
            let rows: Vec<(usize, DocAddressDoc)> = candidates
                .iter()
                .enumerate()
                .filter(|(_, candidate)| candidate.1 == segment_ord)
                .map(|(index, candidate)| (index, candidate.2))
                .collect();
            if rows.is_empty() {
                continue;
            }
            let stamps = self.segment_stamps(segment, &rows)?;
            for ((index, _), (stamp, last_modified)) in rows.into_iter().zip(stamps) {
                let key = std::mem::take(&mut candidates[index].0);
                entries[index] = Some(IndexedEntry {
                    id: DocId::of(bucket, &key),
                    key,
                    version: stamp,
                    last_modified: Some(last_modified),
                });
            }
        }
        Ok(entries.into_iter().flatten().collect())
    }

    /// The version stamps and last-modified times of `rows` (index in the page, document of
    /// `segment`), in their order, from fast fields only.
    fn segment_stamps(
        &self,
        segment: &SegmentReader,
        rows: &[(usize, DocAddressDoc)],
    ) -> Result<Vec<(VersionStamp, OffsetDateTime)>, EmbeddedError> {
        let error = |cause: TantivyError| self.tantivy_error("reading versions from")(cause);
        let fast = segment.fast_fields();
        let missing = |name: &str| self.corrupt(format!("the `{name}` column is missing"));
        let etags = fast
            .str(schema::ETAG)
            .map_err(error)?
            .ok_or_else(|| missing(schema::ETAG))?;
        let sizes = fast.u64(schema::SIZE_IN_BYTES).map_err(error)?;
        let dates = fast.date(schema::LAST_MODIFIED).map_err(error)?;
        // Absent from a segment where no document's embedding failed.
        let unfinished = fast.column_opt::<u64>(schema::UNFINISHED).map_err(error)?;
        let mut columns = Vec::with_capacity(rows.len());
        let mut unfinished_rows = Vec::new();
        for &(_, doc) in rows {
            let row = (etags.ords().first(doc), sizes.first(doc), dates.first(doc));
            let (Some(etag_ord), Some(size), Some(date)) = row else {
                return Err(self.corrupt(format!(
                    "document #{doc} of a segment lacks a version column"
                )));
            };
            columns.push((etag_ord, size, date.into_utc()));
            let is_unfinished = unfinished
                .as_ref()
                .and_then(|column| column.first(doc))
                .is_some_and(|flag| flag == 1);
            unfinished_rows.push(is_unfinished);
        }
        let mut stamps = vec![None; rows.len()];
        let etag_ords: Vec<u64> = columns.iter().map(|column| column.0).collect();
        self.for_each_term(&etags, &etag_ords, |index, etag| {
            let (_, size, last_modified) = columns[index];
            let stamp = if unfinished_rows[index] {
                VersionStamp::UNFINISHED
            } else {
                VersionStamp::of(etag, last_modified, size)
            };
            stamps[index] = Some((stamp, last_modified));
            Ok(())
        })?;
        stamps
            .into_iter()
            .map(|stamp| stamp.ok_or_else(|| self.corrupt("a document has no etag".to_owned())))
            .collect()
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

/// The first document of `postings`, from its current position, not deleted in `segment`.
fn first_alive_doc(segment: &SegmentReader, postings: &mut impl DocSet) -> Option<DocAddressDoc> {
    let mut doc = postings.doc();
    while doc != TERMINATED {
        if !segment.is_deleted(doc) {
            return Some(doc);
        }
        doc = postings.advance();
    }
    None
}
