//! BM25 search over the stored text fields, lenient about what a person typed.

use tantivy::TantivyDocument;
use tantivy::collector::TopDocs;
use tantivy::schema::Value;

use super::schema;
use super::{EmbeddedError, Inner};
use crate::sink::SearchHit;

impl Inner {
    pub(super) fn search(
        &self,
        query: &str,
        limit: usize,
    ) -> Result<Vec<SearchHit>, EmbeddedError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Lenient: a stray quote or colon in what a person typed should still search.
        let (query, _ignored_errors) = self.query_parser.parse_query_lenient(query);
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&query, &TopDocs::with_limit(limit).order_by_score())
            .map_err(self.tantivy_error("searching"))?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher
                .doc(address)
                .map_err(self.tantivy_error("reading a search hit from"))?;
            let text = |field, name: &str| {
                doc.get_first(field)
                    .and_then(|value| value.as_str())
                    .map(str::to_owned)
                    .ok_or_else(|| self.corrupt(format!("a document has no stored `{name}`")))
            };
            hits.push(SearchHit {
                id: text(self.fields.id, schema::ID)?,
                bucket: text(self.fields.bucket, schema::BUCKET)?,
                key: text(self.fields.key, schema::KEY)?,
                score,
            });
        }
        Ok(hits)
    }
}
