//! BM25 search over the stored text fields, lenient about what a person typed, reading boolean
//! operators as Lucene (and so OpenSearch's query string) does. Prose is stemmed
//! ([`crate::sink::analysis::ENGLISH`]) and a word in the title or the filename weighs more than
//! one in the body ([`TITLE_BOOST`], [`FILENAME_BOOST`]). [`Sink::search`](crate::sink::Sink)
//! finds documents; passages are searched in `passages.rs`.

use tantivy::TantivyDocument;
use tantivy::collector::TopDocs;
use tantivy::query::{AllQuery, BooleanQuery, ConstScoreQuery, Occur, Query};
use tantivy::query_grammar::{self, UserInputAst, UserInputLeaf};
use tantivy::schema::Value;

use super::read::term_query;
use super::schema;
use super::{EmbeddedError, Inner};
use crate::sink::{SearchHit, query};

/// How much more a query word found in a document's title counts than one in its body.
pub(super) const TITLE_BOOST: f32 = 2.0;
/// How much more a query word found in a document's filename counts than one in its body.
pub(super) const FILENAME_BOOST: f32 = 2.0;

impl Inner {
    pub(super) fn search(
        &self,
        query: &str,
        limit: usize,
    ) -> Result<Vec<SearchHit>, EmbeddedError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let query = self.query(query, Box::new(self.documents_only()));
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

impl Inner {
    /// What a person typed, as a tantivy query over what `among` matches (documents, or
    /// passages and documents without any): its filters ([`query::split`]) as required or
    /// excluded terms of the `filters` field, the rest through the query parser.
    pub(super) fn query(&self, typed: &str, among: Box<dyn Query>) -> Box<dyn Query> {
        let filtered = query::split(typed);
        let text: Box<dyn Query> = if filtered.has_filters() && filtered.text.trim().is_empty() {
            Box::new(AllQuery)
        } else {
            // Lenient: a stray quote or colon in what a person typed should still search.
            let (ast, _ignored_errors) = query_grammar::parse_query_lenient(&filtered.text);
            let (query, _ignored_errors) = self
                .query_parser
                .build_query_from_user_input_ast_lenient(as_lucene_reads_it(ast));
            query
        };
        let among: Box<dyn Query> = Box::new(ConstScoreQuery::new(among, 0.0));
        let term =
            |term: &String| -> Box<dyn Query> { Box::new(term_query(self.fields.filters, term)) };
        let mut clauses = vec![(Occur::Must, text), (Occur::Must, among)];
        clauses.extend(filtered.required.iter().map(|t| (Occur::Must, term(t))));
        clauses.extend(filtered.excluded.iter().map(|t| (Occur::MustNot, term(t))));
        Box::new(BooleanQuery::new(clauses))
    }
}

/// The parsed query with `NOT` meaning what it means in Lucene's query string.
///
/// tantivy parses `a AND NOT b` as `+a +(-b)`: a required group of prohibitions only, which
/// matches nothing, so the whole query found nothing. Lucene makes `NOT b` a prohibited clause
/// of the enclosing query, whatever operator stands before it (`a AND NOT b`, `a OR NOT b`,
/// `a AND (NOT b)` all mean `a -b`). And a query of prohibitions only (`-b`, `NOT b`) finds
/// every document without them, as OpenSearch's query string does (Lucene alone would find
/// nothing).
fn as_lucene_reads_it(ast: UserInputAst) -> UserInputAst {
    match lift_prohibitions(ast) {
        UserInputAst::Clause(mut clauses)
            if !clauses.is_empty() && clauses.iter().all(is_prohibition) =>
        {
            clauses.push((
                Some(Occur::Must),
                UserInputAst::Leaf(Box::new(UserInputLeaf::All)),
            ));
            UserInputAst::Clause(clauses)
        }
        ast => ast,
    }
}

/// Whether a clause is a prohibition (`-word`, `NOT word`).
fn is_prohibition((occur, _): &(Option<Occur>, UserInputAst)) -> bool {
    *occur == Some(Occur::MustNot)
}

/// Moves the prohibitions of every group that holds nothing else into the enclosing group.
fn lift_prohibitions(ast: UserInputAst) -> UserInputAst {
    match ast {
        UserInputAst::Clause(clauses) => {
            let mut lifted = Vec::with_capacity(clauses.len());
            for (occur, inner) in clauses {
                match (occur, lift_prohibitions(inner)) {
                    (occur, UserInputAst::Clause(group))
                        if occur != Some(Occur::MustNot)
                            && !group.is_empty()
                            && group.iter().all(is_prohibition) =>
                    {
                        lifted.extend(group);
                    }
                    (occur, inner) => lifted.push((occur, inner)),
                }
            }
            UserInputAst::Clause(lifted)
        }
        UserInputAst::Boost(inner, boost) => {
            UserInputAst::Boost(Box::new(lift_prohibitions(*inner)), boost)
        }
        leaf => leaf,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_prohibits_its_clause_whatever_the_operator_before_it() {
        let cases = [
            ("connector AND NOT setup", "(+connector -setup)"),
            ("connector OR NOT setup", "(?connector -setup)"),
            ("connector AND (NOT setup)", "(+connector -setup)"),
            ("connector NOT setup", "(*connector -setup)"),
            ("connector -setup", "(*connector -setup)"),
            ("a AND NOT (b OR c)", "(+a -(?b ?c))"),
            ("(a OR b) AND c", "(+(?a ?b) +c)"),
            ("-setup", "(-setup +*)"),
            ("NOT a NOT b", "(-a -b +*)"),
            ("\"a b\"", "\"a b\""),
        ];
        let wrong: Vec<String> = cases
            .into_iter()
            .filter_map(|(query, expected)| {
                let (ast, _) = query_grammar::parse_query_lenient(query);
                let found = format!("{:?}", as_lucene_reads_it(ast));
                (found != expected).then(|| format!("{query}: {found}, expected {expected}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
