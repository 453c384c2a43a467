//! Searching passages ([`Sink::search_passages`](crate::sink::Sink::search_passages)): by
//! words, by meaning, or both.
//!
//! - Keyword: one query-string search over the passage index and the document index together;
//!   documents with passages are found through them (the document index leaves them out by
//!   their `passage_count`), documents without (no text, or synced without embeddings) whole.
//!   Passage text is analysed with English stemming; title and filename weigh twice the body.
//! - Semantic: a `knn` query on the passage index, filters applied inside it.
//! - Hybrid: OpenSearch's `hybrid` query over the passage index, fused by a search pipeline
//!   s3-connector creates (`s3-connector-rrf-60`, ...) when the cluster takes it; where it does
//!   not (no neural-search plugin, a cluster before 2.19 for rank fusion, no permission), the
//!   keyword and the semantic ranking are fused here by [`fuse`], as on the embedded index.
//!
//! A cluster that refuses the vector search itself (no k-NN plugin) is an error naming the index
//! and saying to search by keyword: never a silent keyword answer. Snippets come from
//! OpenSearch's highlighter, which knows the stemming the match used ("running" highlighted for
//! "run"); a hit without a highlight (a semantic hit sharing no word) gets the start of its
//! passage, cut by [`snippet`].
//!
//! Every passage hit carries its passage's whole text: from the answer's `_source` where the
//! search sent it (semantic, hybrid), else read in the one `_mget` that also checks each
//! passage's document exists (keyword: its answer leaves `body` out, whole documents' bodies
//! being large). Whole-document hits carry no text.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use ::opensearch::http::Method;
use serde_json::{Map, Value, json};

use super::client::{Body, Client, Reply, index_path};
use super::error::OpensearchError;
use super::passages::{State, passage_id, stored_passage};
use super::scan::{Hit, Page};
use super::search::{Syntax, send_typed, typed_query};
use crate::embed::PassageHash;
use crate::sink::passages::{Fusion, SearchMode, Snippet, fuse};
use crate::sink::query::{self, Filtered};
use crate::sink::{DocId, PassageHit, PassageQuery, snippet};

/// The fields a keyword search looks in, with their weights.
const KEYWORD_FIELDS: [&str; 5] = ["body", "title^2", "filename^2", "heading", "key.text"];

/// Hits of each ranking that a fusion sees at least (the reference fused the top 100 of each).
const FUSION_DEPTH: usize = 100;

/// What marks the start and the end of a highlighted word in a fragment: private-use
/// characters, which text hardly ever holds.
const PRE_TAG: char = '\u{E000}';
const POST_TAG: char = '\u{E001}';

/// Characters of text in a highlighted fragment.
const FRAGMENT_CHARS: usize = snippet::SNIPPET_CHARS;

/// The search pipeline that fuses the two sub-queries of a hybrid query (keyword first, then
/// knn) as `fusion` says: its name and its definition.
///
/// Rank fusion is the `score-ranker-processor` (OpenSearch 2.19+,
/// <https://docs.opensearch.org/docs/search-plugins/search-pipelines/score-ranker-processor/>);
/// weighted fusion the `normalization-processor` with min-max normalisation and an arithmetic
/// mean weighted keyword then semantic (2.10+,
/// <https://docs.opensearch.org/docs/search-plugins/search-pipelines/normalization-processor/>).
pub(super) fn pipeline(fusion: Fusion) -> (String, Value) {
    match fusion {
        Fusion::Rrf { k } => (
            format!("s3-connector-rrf-{k}"),
            json!({
                "description": format!("s3-connector: reciprocal-rank fusion (k = {k}) of keyword and semantic passage search"),
                "phase_results_processors": [{"score-ranker-processor": {
                    "combination": {"technique": "rrf", "rank_constant": k},
                }}],
            }),
        ),
        Fusion::Weighted { semantic_weight } => {
            // Thousandths, so that the two weights sum to exactly 1 as OpenSearch requires.
            let semantic = (semantic_weight.clamp(0.0, 1.0) * 1000.0).round() as u32;
            let keyword = 1000 - semantic;
            (
                format!("s3-connector-weighted-{semantic}"),
                json!({
                    "description": format!("s3-connector: min-max normalised keyword and semantic passage scores, weighted {keyword}:{semantic} (thousandths)"),
                    "phase_results_processors": [{"normalization-processor": {
                        "normalization": {"technique": "min_max"},
                        "combination": {
                            "technique": "arithmetic_mean",
                            "parameters": {"weights": [
                                f64::from(keyword) / 1000.0,
                                f64::from(semantic) / 1000.0,
                            ]},
                        },
                    }}],
                }),
            )
        }
    }
}

/// The search pipelines this process created, or found it cannot create, by name.
#[derive(Debug, Default)]
pub(super) struct Pipelines {
    usable: Mutex<HashMap<String, bool>>,
}

impl Pipelines {
    /// The name of the pipeline for `fusion` when the cluster has it: created on first use
    /// (`PUT /_search/pipeline/<name>`, which replaces one of that name); `None` when the
    /// cluster refuses it, remembered for the life of the process.
    pub(super) async fn usable(&self, client: &Client, fusion: Fusion) -> Option<String> {
        let (name, definition) = pipeline(fusion);
        if let Some(usable) = self.lock().get(&name) {
            return usable.then_some(name);
        }
        let action = format!("creating the search pipeline {name}");
        let path = format!("/_search/pipeline/{name}");
        let body = Body::json(&definition);
        let answer = client
            .send(&action, Method::Put, &path, &[], Some(&body))
            .await;
        let usable = match answer {
            Ok(reply) if reply.is_success() => true,
            Ok(reply) => {
                tracing::info!(
                    message = "The OpenSearch cluster has no search pipeline for hybrid search; s3-connector fuses keyword and semantic results itself.",
                    pipeline = %name,
                    answer = %reply.into_error(&action)
                );
                false
            }
            Err(error) => {
                tracing::info!(
                    message = "The OpenSearch cluster has no search pipeline for hybrid search; s3-connector fuses keyword and semantic results itself.",
                    pipeline = %name,
                    %error
                );
                false
            }
        };
        self.lock().insert(name.clone(), usable);
        usable.then_some(name)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, bool>> {
        self.usable.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where a passage search runs.
pub(super) struct Target<'a> {
    /// The cluster.
    pub client: &'a Client,
    /// The document index.
    pub index: &'a str,
    /// Its passage index.
    pub companion: &'a str,
    /// What the passage index is.
    pub state: State,
    /// The search pipelines of the cluster.
    pub pipelines: &'a Pipelines,
}

/// The best `query.limit` hits of `query`.
pub(super) async fn search(
    target: &Target<'_>,
    query: &PassageQuery,
) -> Result<Vec<PassageHit>, OpensearchError> {
    if query.limit == 0 {
        return Ok(Vec::new());
    }
    let hits = ranked(target, query).await?;
    completed(target, hits).await
}

/// The hits of `query` as the ranking gives them.
async fn ranked(
    target: &Target<'_>,
    query: &PassageQuery,
) -> Result<Vec<PassageHit>, OpensearchError> {
    let filtered = query::split(&query.text);
    let mode = match query.mode {
        SearchMode::Keyword => return keyword(target, &filtered, &query.text, query.limit).await,
        SearchMode::Semantic => "semantic",
        SearchMode::Hybrid => "hybrid",
    };
    let vector = query_vector(target, query, mode)?;
    if query.mode == SearchMode::Semantic {
        return semantic(target, &filtered, &query.text, vector, query.limit, mode).await;
    }
    if let Some(pipeline) = target.pipelines.usable(target.client, query.fusion).await {
        return hybrid(
            target,
            &filtered,
            &query.text,
            vector,
            query.limit,
            &pipeline,
        )
        .await;
    }
    let depth = query.limit.max(FUSION_DEPTH);
    let semantic = semantic(target, &filtered, &query.text, vector, depth, mode).await?;
    let keyword = keyword(target, &filtered, &query.text, depth).await?;
    Ok(fuse(keyword, semantic, query.fusion, query.limit))
}

/// `hits` as the indices hold them now, each passage with its text, in one `_mget` over both
/// indices. It asks the document index for the documents of passage hits: passages written for
/// a new object just before a crash, whose document never was, are left out (the object may be
/// gone by the next sync, which then has nothing to delete). And it reads the text of each
/// passage whose search answer left it out (a keyword search leaves `body` out of `_source`,
/// so that whole documents' bodies are never sent): a passage deleted or rewritten since the
/// search (its text no longer has the hit's content hash) is left out too.
async fn completed(
    target: &Target<'_>,
    hits: Vec<PassageHit>,
) -> Result<Vec<PassageHit>, OpensearchError> {
    let mut parents: Vec<String> = hits
        .iter()
        .filter(|hit| hit.passage.is_some())
        .map(|hit| hit.id.to_hex())
        .collect();
    parents.sort();
    parents.dedup();
    if parents.is_empty() {
        return Ok(hits);
    }
    let untold: Vec<String> = hits
        .iter()
        .filter_map(|hit| {
            let span = hit.passage.as_ref()?;
            span.text
                .is_empty()
                .then(|| passage_id(hit.id, span.ordinal))
        })
        .collect();
    let docs: Vec<Value> = parents
        .iter()
        .map(|id| json!({"_index": target.index, "_id": id, "_source": false}))
        .chain(untold.iter().map(
            |id| json!({"_index": target.companion, "_id": id, "_source": {"includes": ["body"]}}),
        ))
        .collect();
    let action = format!(
        "reading the documents and the text of passages in index {}",
        target.index
    );
    let body = Body::json(&json!({ "docs": docs }));
    let reply = target
        .client
        .send(&action, Method::Post, "/_mget", &[], Some(&body))
        .await?;
    #[derive(serde::Deserialize)]
    struct Found {
        docs: Vec<Got>,
    }
    #[derive(serde::Deserialize)]
    struct Got {
        #[serde(default)]
        found: bool,
        #[serde(rename = "_source", default)]
        source: Option<Map<String, Value>>,
    }
    let found: Found = reply.json(&action)?;
    if found.docs.len() != docs.len() {
        return Err(OpensearchError::InvalidResponse {
            action,
            detail: format!(
                "{} documents asked for, {} answered",
                docs.len(),
                found.docs.len()
            ),
        });
    }
    // The answer keeps the order of the request: the documents, then the passages.
    let mut answers = found.docs.into_iter();
    let held: HashSet<&String> = parents
        .iter()
        .zip(answers.by_ref())
        .filter(|(_, got)| got.found)
        .map(|(id, _)| id)
        .collect();
    let texts: HashMap<&String, String> = untold
        .iter()
        .zip(answers)
        .filter_map(|(id, got)| {
            let body = got.source?.remove("body")?;
            Some((id, body.as_str()?.to_owned()))
        })
        .collect();
    Ok(hits
        .into_iter()
        .filter_map(|mut hit| {
            let Some(span) = hit.passage.as_mut() else {
                return Some(hit);
            };
            if !held.contains(&hit.id.to_hex()) {
                return None;
            }
            if span.text.is_empty() {
                let text = texts.get(&passage_id(hit.id, span.ordinal))?;
                if span.content_hash != PassageHash::of(text) {
                    return None;
                }
                span.text = text.clone();
            }
            Some(hit)
        })
        .collect())
}

/// The query's vector, checked against the passage index's.
fn query_vector<'q>(
    target: &Target<'_>,
    query: &'q PassageQuery,
    mode: &'static str,
) -> Result<&'q [f32], OpensearchError> {
    let refuse = |reason: String| OpensearchError::VectorSearch {
        mode,
        index: target.companion.to_owned(),
        reason,
    };
    let Some(dimensions) = target.state.dimensions() else {
        return Err(refuse(
            "the index holds no passage vectors (no sync with an `embedding:` block wrote any)"
                .to_owned(),
        ));
    };
    let Some(vector) = query.vector.as_deref() else {
        return Err(refuse("the query has no vector".to_owned()));
    };
    if vector.len() != dimensions {
        return Err(refuse(format!(
            "the query's vector has {} dimensions, the passages' {dimensions}",
            vector.len()
        )));
    }
    Ok(vector)
}

/// The highlight of a search: one fragment of `body` marked with [`PRE_TAG`] and [`POST_TAG`],
/// the start of the text when nothing matched; `words` highlights a search whose own query is
/// not made of words (knn).
fn highlight(words: Option<&Filtered>) -> Value {
    let mut highlight = json!({
        "pre_tags": [PRE_TAG.to_string()],
        "post_tags": [POST_TAG.to_string()],
        "fields": {"body": {
            "fragment_size": FRAGMENT_CHARS,
            "number_of_fragments": 1,
            "no_match_size": FRAGMENT_CHARS,
        }},
    });
    if let Some(words) = words.filter(|words| !words.text.trim().is_empty()) {
        let words = Filtered {
            text: words.text.clone(),
            ..Filtered::default()
        };
        highlight["highlight_query"] = typed_query(&words, &["body"], Syntax::Simple);
    }
    highlight
}

/// The `knn` clause for `vector`, `k` nearest, with the query's filters inside it (efficient
/// filtering, <https://docs.opensearch.org/docs/vector-search/filter-search-knn/efficient-knn-filtering/>).
pub(super) fn knn_clause(vector: &[f32], k: usize, filtered: &Filtered) -> Value {
    let mut knn = json!({"vector": vector, "k": k});
    if filtered.has_filters() {
        let filters = Filtered {
            text: String::new(),
            ..filtered.clone()
        };
        knn["filter"] = typed_query(&filters, &[], Syntax::QueryString);
    }
    json!({"knn": {"vector": knn}})
}

/// The body of a keyword search in `syntax`: passages and documents without passages.
pub(super) fn keyword_body(filtered: &Filtered, limit: usize, syntax: Syntax) -> Value {
    json!({
        "size": limit,
        // Whole documents' bodies can be large: their snippets come from the highlighter.
        "_source": {"excludes": ["vector", "body"]},
        "query": {"bool": {
            "must": [typed_query(filtered, &KEYWORD_FIELDS, syntax)],
            "must_not": [{"range": {"passage_count": {"gt": 0}}}],
        }},
        "highlight": highlight(None),
    })
}

/// The body of a hybrid search in `syntax`: the keyword query and the knn query, in that order
/// (the order of the pipeline's weights). Shape as documented in
/// <https://docs.opensearch.org/docs/query-dsl/compound/hybrid/>.
pub(super) fn hybrid_body(
    filtered: &Filtered,
    vector: &[f32],
    limit: usize,
    syntax: Syntax,
) -> Value {
    json!({
        "size": limit,
        "_source": {"excludes": ["vector"]},
        "query": {"hybrid": {"queries": [
            typed_query(filtered, &KEYWORD_FIELDS, syntax),
            knn_clause(vector, limit.max(FUSION_DEPTH), filtered),
        ]}},
        "highlight": highlight(Some(filtered)),
    })
}

async fn keyword(
    target: &Target<'_>,
    filtered: &Filtered,
    text: &str,
    limit: usize,
) -> Result<Vec<PassageHit>, OpensearchError> {
    let indices = match target.state {
        State::Absent => target.index.to_owned(),
        State::Present { .. } => format!("{},{}", target.index, target.companion),
    };
    let action = format!("searching the passages of index {}", target.index);
    let path = index_path(&indices, "_search");
    let reply = send_typed(target.client, &action, &path, &[], |syntax| {
        keyword_body(filtered, limit, syntax)
    })
    .await?;
    if reply.status == 404 {
        return Ok(Vec::new());
    }
    Ok(hits(reply.json(&action)?, text))
}

async fn semantic(
    target: &Target<'_>,
    filtered: &Filtered,
    text: &str,
    vector: &[f32],
    limit: usize,
    mode: &'static str,
) -> Result<Vec<PassageHit>, OpensearchError> {
    let action = format!("searching index {} by meaning", target.companion);
    let path = index_path(target.companion, "_search");
    let body = Body::json(&json!({
        "size": limit,
        "_source": {"excludes": ["vector"]},
        "query": knn_clause(vector, limit, filtered),
        "highlight": highlight(Some(filtered)),
    }));
    let reply = target
        .client
        .send(&action, Method::Post, &path, &[], Some(&body))
        .await?;
    answer(target, reply, &action, mode, text)
}

async fn hybrid(
    target: &Target<'_>,
    filtered: &Filtered,
    text: &str,
    vector: &[f32],
    limit: usize,
    pipeline: &str,
) -> Result<Vec<PassageHit>, OpensearchError> {
    let action = format!(
        "searching index {} by words and meaning (search pipeline {pipeline})",
        target.companion
    );
    let path = index_path(target.companion, "_search");
    let query = [("search_pipeline", pipeline)];
    let reply = send_typed(target.client, &action, &path, &query, |syntax| {
        hybrid_body(filtered, vector, limit, syntax)
    })
    .await?;
    answer(target, reply, &action, "hybrid", text)
}

/// The hits of the answer to a vector search; a refusal (400) is
/// [`OpensearchError::VectorSearch`] with what the cluster said.
fn answer(
    target: &Target<'_>,
    reply: Reply,
    action: &str,
    mode: &'static str,
    text: &str,
) -> Result<Vec<PassageHit>, OpensearchError> {
    if reply.status == 400 {
        return Err(OpensearchError::VectorSearch {
            mode,
            index: target.companion.to_owned(),
            reason: format!(
                "the cluster refused it ({}); vector search needs OpenSearch's k-NN plugin, and \
                 hybrid search its neural-search plugin",
                reply.into_error(action)
            ),
        });
    }
    Ok(hits(reply.json(action)?, text))
}

/// The hits of an answer, in its order; hits that are neither our documents nor our passages
/// are left out.
fn hits(page: Page, text: &str) -> Vec<PassageHit> {
    page.hits
        .hits
        .into_iter()
        .filter_map(|hit| passage_hit(hit, text))
        .collect()
}

/// One hit: a passage (its record has a `parent`) or a whole document.
fn passage_hit(hit: Hit, text: &str) -> Option<PassageHit> {
    let source = &hit.source;
    let field = |name: &str| source.get(name).and_then(Value::as_str);
    let (id, passage) = match field("parent") {
        Some(parent) => {
            let stored = stored_passage(source)?;
            (DocId::from_hex(parent)?, Some(stored.passage))
        }
        None => (DocId::from_hex(&hit.id)?, None),
    };
    let fragment = hit
        .highlight
        .get("body")
        .and_then(|fragments| fragments.get(0))
        .and_then(Value::as_str);
    let snippet = match (fragment, field("body")) {
        (Some(fragment), _) => Some(snippet_of(fragment)),
        (None, Some(body)) if !body.trim().is_empty() => Some(Snippet {
            text: snippet::snippet(body, text),
            highlights: Vec::new(),
        }),
        _ => None,
    };
    Some(PassageHit {
        id,
        bucket: field("bucket").unwrap_or_default().to_owned(),
        key: field("key").unwrap_or_default().to_owned(),
        title: field("title").map(str::to_owned),
        passage,
        score: hit.score.unwrap_or_default(),
        snippet,
    })
}

/// A highlighted fragment as a [`Snippet`]: the markers taken out (their places become the
/// highlights), heading marks (`## ` at a line's start, which extraction writes) too,
/// whitespace collapsed to single spaces.
pub(super) fn snippet_of(fragment: &str) -> Snippet {
    let mut text = String::with_capacity(fragment.len());
    let mut highlights: Vec<[usize; 2]> = Vec::new();
    let mut open: Option<usize> = None;
    let mut space = false;
    for c in without_heading_marks(fragment).chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        // A space owed before the next visible character (a highlight opens at the word).
        if c != POST_TAG && std::mem::take(&mut space) && !text.is_empty() {
            text.push(' ');
        }
        match c {
            PRE_TAG => open = Some(text.len()),
            POST_TAG => {
                if let Some(start) = open.take()
                    && text.len() > start
                {
                    match highlights.last_mut() {
                        // Touching highlights ("<em>a</em><em>b</em>") are one.
                        Some(last) if last[1] == start => last[1] = text.len(),
                        _ => highlights.push([start, text.len()]),
                    }
                }
            }
            c => text.push(c),
        }
    }
    Snippet { text, highlights }
}

/// `fragment` without the `#` marks of Markdown heading lines (`# ` to `###### ` at a line's
/// start); other `#`s (`#hashtag`, `C#`) stay.
fn without_heading_marks(fragment: &str) -> String {
    fragment
        .split('\n')
        .map(|line| {
            let trimmed = line.trim_start();
            let marks = trimmed.bytes().take_while(|&b| b == b'#').count();
            match trimmed[marks..].chars().next() {
                Some(' ' | '\t') if (1..=6).contains(&marks) => &trimmed[marks..],
                _ => line,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_become_text_and_highlight_ranges() {
        let fragment = format!(
            "The {PRE_TAG}runners{POST_TAG} were\n  {PRE_TAG}running {POST_TAG} {PRE_TAG}café{POST_TAG}{PRE_TAG}s{POST_TAG}"
        );
        let snippet = snippet_of(&fragment);
        assert_eq!(snippet.text, "The runners were running cafés");
        assert_eq!(snippet.marked(), ["runners", "running", "cafés"]);
        assert_eq!(
            snippet_of("  plain   text "),
            Snippet {
                text: "plain text".into(),
                highlights: vec![]
            }
        );
        // Heading marks of extracted headings go; other `#`s stay.
        let headed = snippet_of(&format!(
            "## {PRE_TAG}Install{POST_TAG}\nRun it.\n  # Use C# and #tags\n####### seven\n#"
        ));
        assert_eq!(
            headed.text,
            "Install Run it. Use C# and #tags ####### seven #"
        );
        assert_eq!(headed.highlights, [[0, 7]]);
    }

    #[test]
    fn pipelines_follow_opensearchs_documented_processors() {
        let (name, rrf) = pipeline(Fusion::Rrf { k: 60 });
        assert_eq!(name, "s3-connector-rrf-60");
        assert_eq!(
            rrf["phase_results_processors"],
            json!([{"score-ranker-processor": {"combination": {"technique": "rrf", "rank_constant": 60}}}])
        );
        let (name, weighted) = pipeline(Fusion::Weighted {
            semantic_weight: 0.7,
        });
        assert_eq!(name, "s3-connector-weighted-700");
        assert_eq!(
            weighted["phase_results_processors"],
            json!([{"normalization-processor": {
                "normalization": {"technique": "min_max"},
                "combination": {"technique": "arithmetic_mean", "parameters": {"weights": [0.3, 0.7]}},
            }}])
        );
        let weights = |semantic_weight| {
            let (_, body) = pipeline(Fusion::Weighted { semantic_weight });
            let weights = body.pointer("/phase_results_processors/0/normalization-processor/combination/parameters/weights").unwrap().clone();
            serde_json::from_value::<Vec<f64>>(weights).unwrap()
        };
        for semantic_weight in [0.0, 0.333, 0.5, 0.9999, 1.0, 7.0] {
            let weights = weights(semantic_weight);
            assert_eq!(
                weights[0] + weights[1],
                1.0,
                "{semantic_weight}: {weights:?}"
            );
        }
    }

    #[test]
    fn knn_and_hybrid_bodies_have_opensearchs_documented_shape() {
        let filtered = query::split("turbine blades meta.author:alice -tag.state:draft");
        let hybrid = hybrid_body(&filtered, &[0.6, 0.8], 5, Syntax::QueryString);
        assert_eq!(hybrid["size"], 5);
        let queries = hybrid["query"]["hybrid"]["queries"].as_array().unwrap();
        assert_eq!(queries.len(), 2);
        // The keyword sub-query first: the query string with its filters as terms.
        assert_eq!(
            queries[0]["bool"]["must"][0]["query_string"]["query"],
            "turbine blades"
        );
        assert_eq!(
            queries[0]["bool"]["filter"],
            json!([{"term": {"filters": "meta.author=alice"}}])
        );
        // Then knn on the `vector` field, the same filters inside it.
        let knn = &queries[1]["knn"]["vector"];
        assert_eq!(knn["vector"], json!([0.6f32, 0.8f32]));
        assert_eq!(knn["k"], FUSION_DEPTH);
        assert_eq!(
            knn["filter"]["bool"]["filter"],
            json!([{"term": {"filters": "meta.author=alice"}}])
        );
        assert_eq!(
            knn["filter"]["bool"]["must_not"],
            json!([{"term": {"filters": "tag.state=draft"}}])
        );
        assert_eq!(knn["filter"]["bool"]["must"], json!([{"match_all": {}}]));
        // Semantic hits get their words highlighted through a highlight query.
        assert_eq!(
            hybrid["highlight"]["highlight_query"]["simple_query_string"]["query"],
            "turbine blades"
        );
        assert_eq!(hybrid["_source"]["excludes"], json!(["vector"]));
        let plain = knn_clause(&[1.0], 3, &query::split("words"));
        assert_eq!(plain, json!({"knn": {"vector": {"vector": [1.0], "k": 3}}}));
    }

    #[test]
    fn keyword_bodies_leave_out_documents_found_through_their_passages() {
        let body = keyword_body(&query::split("title:report"), 10, Syntax::Simple);
        assert_eq!(
            body["query"]["bool"]["must_not"],
            json!([{"range": {"passage_count": {"gt": 0}}}])
        );
        let must = &body["query"]["bool"]["must"][0]["simple_query_string"];
        assert_eq!(must["query"], "title:report");
        assert_eq!(must["fields"], json!(KEYWORD_FIELDS));
        assert_eq!(
            body["highlight"]["fields"]["body"]["number_of_fragments"],
            1
        );
        assert!(body["highlight"].get("highlight_query").is_none());
    }
}
