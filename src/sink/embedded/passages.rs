//! Passage search on the embedded index: by words (BM25 over passages, and over the whole text
//! of documents synced without passages), by meaning (an exact scan of the passages' vectors,
//! [`crate::sink::vectors`]), or both ([`fuse`]d). Hits carry their passage's place and whole
//! text, and a snippet of it with the query's words highlighted.
//!
//! The vectors of a segment are read from its stored passages on the first semantic search
//! that meets the segment and kept (as 8-bit integers) until the segment is merged away;
//! deletes are checked at each search, so the scan sees exactly the committed passages.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tantivy::collector::{DocSetCollector, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DocAddress, DocSet, Searcher, SegmentReader, TERMINATED, TantivyDocument, Term};

use super::schema;
use super::{EmbeddedError, Inner};
use crate::sink::passages::{PassageHit, PassageQuery, SearchMode, fuse};
use crate::sink::vectors::VectorSet;
use crate::sink::{DocId, query, snippet};

/// Hits each ranking contributes to a hybrid search before fusion (or the limit, if higher).
const FUSION_CANDIDATES: usize = 100;

/// Blocks of a segment's document store kept decompressed while its vectors are read.
const STORE_CACHE_BLOCKS: usize = 4;

/// The vectors of one segment's passages, with the segment-local doc of each row.
pub(super) struct SegmentVectors {
    docs: Vec<tantivy::DocId>,
    set: VectorSet,
}

/// The bodies of whole-document hits (documents without passages), which their snippets are
/// cut from; a passage hit's snippet is cut from its own text.
type Texts = HashMap<DocId, String>;

impl Inner {
    pub(super) fn search_passages(
        &self,
        query: &PassageQuery,
    ) -> Result<Vec<PassageHit>, EmbeddedError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let mut texts = Texts::new();
        let vector = || {
            query
                .vector
                .as_deref()
                .ok_or_else(|| EmbeddedError::Search {
                    path: self.path.clone(),
                    detail: "semantic and hybrid search need the query's vector".to_owned(),
                })
        };
        let hits = match query.mode {
            SearchMode::Keyword => {
                self.keyword_hits(&searcher, &query.text, query.limit, &mut texts)?
            }
            SearchMode::Semantic => {
                self.semantic_hits(&searcher, &query.text, vector()?, query.limit, &mut texts)?
            }
            SearchMode::Hybrid => {
                let depth = query.limit.max(FUSION_CANDIDATES);
                let keyword = self.keyword_hits(&searcher, &query.text, depth, &mut texts)?;
                let semantic =
                    self.semantic_hits(&searcher, &query.text, vector()?, depth, &mut texts)?;
                fuse(keyword, semantic, query.fusion, query.limit)
            }
        };
        Ok(hits
            .into_iter()
            .map(|mut hit| {
                let text = match &hit.passage {
                    Some(span) => Some(&span.text),
                    None => texts.get(&hit.id),
                };
                hit.snippet = text.map(|text| snippet::highlighted(text, &query.text));
                hit
            })
            .collect())
    }

    /// The best `limit` passages and passage-less documents by BM25.
    fn keyword_hits(
        &self,
        searcher: &Searcher,
        text: &str,
        limit: usize,
        texts: &mut Texts,
    ) -> Result<Vec<PassageHit>, EmbeddedError> {
        let among = self.of_kinds(&[schema::KIND_DOCUMENT, schema::KIND_PASSAGE]);
        let query = self.query(text, Box::new(among));
        let top = searcher
            .search(&query, &TopDocs::with_limit(limit).order_by_score())
            .map_err(self.tantivy_error("searching"))?;
        top.into_iter()
            .map(|(score, address)| self.hit(searcher, address, score, texts))
            .collect()
    }

    /// The best `limit` passages by the cosine of their vector to `vector`, among those the
    /// filters of `text` (`meta.author:alice`) let through.
    fn semantic_hits(
        &self,
        searcher: &Searcher,
        text: &str,
        vector: &[f32],
        limit: usize,
        texts: &mut Texts,
    ) -> Result<Vec<PassageHit>, EmbeddedError> {
        let allowed = self.filtered_passages(searcher, text)?;
        let mut found: Vec<(f32, DocAddress)> = Vec::new();
        for (ordinal, segment) in searcher.segment_readers().iter().enumerate() {
            let vectors = self.segment_vectors(segment)?;
            let keep = |row: usize| {
                let doc = vectors.docs[row];
                let address = DocAddress::new(ordinal as u32, doc);
                !segment.is_deleted(doc) && allowed.as_ref().is_none_or(|a| a.contains(&address))
            };
            for (row, score) in vectors.set.top_k(vector, limit, keep) {
                found.push((score, DocAddress::new(ordinal as u32, vectors.docs[row])));
            }
        }
        found.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        found
            .into_iter()
            .take(limit)
            .map(|(score, address)| self.hit(searcher, address, score, texts))
            .collect()
    }

    /// The passages the filters of `text` let through; `None` when it has no filters.
    fn filtered_passages(
        &self,
        searcher: &Searcher,
        text: &str,
    ) -> Result<Option<HashSet<DocAddress>>, EmbeddedError> {
        let filtered = query::split(text);
        if !filtered.has_filters() {
            return Ok(None);
        }
        let term = |term: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(self.fields.filters, term),
                IndexRecordOption::Basic,
            ))
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(
            Occur::Must,
            Box::new(self.of_kinds(&[schema::KIND_PASSAGE])),
        )];
        clauses.extend(filtered.required.iter().map(|t| (Occur::Must, term(t))));
        clauses.extend(filtered.excluded.iter().map(|t| (Occur::MustNot, term(t))));
        searcher
            .search(&BooleanQuery::new(clauses), &DocSetCollector)
            .map(Some)
            .map_err(self.tantivy_error("searching"))
    }

    /// The vectors of `segment`'s passages, read on first use.
    fn segment_vectors(
        &self,
        segment: &SegmentReader,
    ) -> Result<Arc<SegmentVectors>, EmbeddedError> {
        let id = segment.segment_id();
        let mut cache = self.vectors.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(vectors) = cache.get(&id) {
            return Ok(Arc::clone(vectors));
        }
        let vectors = Arc::new(self.read_vectors(segment)?);
        // Segments merged away since are dropped with their vectors.
        let alive: HashSet<_> = self
            .reader
            .searcher()
            .segment_readers()
            .iter()
            .map(SegmentReader::segment_id)
            .collect();
        cache.retain(|segment, _| alive.contains(segment));
        cache.insert(id, Arc::clone(&vectors));
        Ok(vectors)
    }

    fn read_vectors(&self, segment: &SegmentReader) -> Result<SegmentVectors, EmbeddedError> {
        let error = self.tantivy_error("reading vectors from");
        let io_error = |cause: std::io::Error| {
            self.tantivy_error("reading vectors from")(tantivy::TantivyError::from(cause))
        };
        let inverted = segment.inverted_index(self.fields.kind).map_err(error)?;
        let term = Term::from_field_text(self.fields.kind, schema::KIND_PASSAGE);
        let mut vectors = SegmentVectors {
            docs: Vec::new(),
            set: VectorSet::new(0),
        };
        let Some(mut postings) = inverted
            .read_postings(&term, IndexRecordOption::Basic)
            .map_err(io_error)?
        else {
            return Ok(vectors);
        };
        let store = segment
            .get_store_reader(STORE_CACHE_BLOCKS)
            .map_err(io_error)?;
        let mut doc = postings.doc();
        while doc != TERMINATED {
            let stored: TantivyDocument = store
                .get(doc)
                .map_err(self.tantivy_error("reading a passage from"))?;
            if let Some(vector) = stored
                .get_first(self.fields.vector)
                .and_then(|value| value.as_bytes())
                .and_then(schema::vector_of)
            {
                if vectors.set.is_empty() && vectors.set.dimensions() != vector.len() {
                    vectors.set = VectorSet::new(vector.len());
                }
                // A vector of another length (another model's) is never a neighbour.
                if vectors.set.push(&vector) {
                    vectors.docs.push(doc);
                }
            }
            doc = postings.advance();
        }
        Ok(vectors)
    }

    /// The hit of the passage or document at `address`; a document's body is kept in `texts`.
    fn hit(
        &self,
        searcher: &Searcher,
        address: DocAddress,
        score: f32,
        texts: &mut Texts,
    ) -> Result<PassageHit, EmbeddedError> {
        let doc: TantivyDocument = searcher
            .doc(address)
            .map_err(self.tantivy_error("reading a search hit from"))?;
        let stored = |field| {
            doc.get_first(field)
                .and_then(|value| value.as_str())
                .map(str::to_owned)
        };
        if doc.get_first(self.fields.passage_of).is_some() {
            let (id, stored_passage) = self
                .fields
                .decode_passage(&doc)
                .map_err(|detail| self.corrupt(detail))?;
            let (Some(bucket), Some(key)) = (stored(self.fields.bucket), stored(self.fields.key))
            else {
                return Err(self.corrupt(format!("a passage of {id} has no bucket or key")));
            };
            return Ok(PassageHit {
                id,
                bucket,
                key,
                title: stored(self.fields.title),
                passage: Some(stored_passage.passage),
                score,
                snippet: None,
            });
        }
        let document = self
            .fields
            .decode(&doc)
            .map_err(|detail| self.corrupt(detail))?;
        if let Some(body) = document.body {
            texts.insert(document.id, body);
        }
        Ok(PassageHit {
            id: document.id,
            bucket: document.bucket,
            key: document.key,
            title: document.title,
            passage: None,
            score,
            snippet: None,
        })
    }
}
