//! Passages in an index, and searching them: by words, by meaning, or both.
//!
//! A document synced with an `embedding:` block carries its passages and their vectors
//! ([`StoredPassage`]); a sink stores them with the document, in the same commit, so that
//! documents, passages and vectors agree after any crash and the next sync. A search
//! ([`PassageQuery`]) answers [`PassageHit`]s: a passage where the index has them, the whole
//! document where it has none (an index synced without embeddings).

use serde::{Deserialize, Serialize};

use crate::embed::{EmbedError, Embedder, EmbeddingModel, Passage};
use crate::sink::DocId;

/// One passage of a document as a sink stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPassage {
    /// The passage: ordinal, byte range, heading or page, text, content hash.
    pub passage: Passage,
    /// Its vector; `None` when the document's embedding failed (`Document::embedding_error`).
    pub vector: Option<Vec<f32>>,
}

/// How a search ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// BM25 over words (English stemming; title and filename weigh more than the body).
    Keyword,
    /// Cosine similarity of the query's vector to the passages' vectors.
    Semantic,
    /// Both, fused ([`Fusion`]).
    Hybrid,
}

/// How hybrid search merges the keyword and the semantic ranking.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fusion {
    /// Reciprocal-rank fusion: each list adds `1 / (k + rank)` (rank from 1).
    Rrf {
        /// The constant `k`; 60 by default, as in Cormack et al. (2009).
        k: u32,
    },
    /// Scores normalised to [0, 1] per list (min-max), then `semantic * w + keyword * (1 - w)`.
    Weighted {
        /// Weight of the semantic score, from 0 to 1.
        semantic_weight: f32,
    },
}

impl SearchMode {
    /// The mode of a search that names none: hybrid when the index holds vectors (it recorded
    /// a model), keyword otherwise.
    pub fn default_for(recorded: Option<&EmbeddingModel>) -> Self {
        if recorded.is_some() {
            Self::Hybrid
        } else {
            Self::Keyword
        }
    }

    /// Whether this mode needs the query's vector.
    pub fn needs_vector(self) -> bool {
        self != Self::Keyword
    }
}

/// Why a query could not be turned into a vector for a semantic or hybrid search.
#[derive(Debug, thiserror::Error)]
pub enum QueryVectorError {
    /// The index has no vectors.
    #[error(
        "the index has no vectors (no sync with an `embedding:` block has filled it): search \
         in keyword mode, or add `embedding:` to the connector and sync"
    )]
    NoVectors,
    /// The connector has no `embedding:` block, but its index has vectors.
    #[error(
        "the connector has no `embedding:` block, but its index holds vectors of {recorded}: \
         add the block that made them, or search in keyword mode"
    )]
    NoEmbedder {
        /// The model of the index's vectors.
        recorded: EmbeddingModel,
    },
    /// The connector's model is not the index's.
    #[error(
        "the connector is configured with the model {configured}, but its index holds vectors \
         of {recorded}: configure {recorded} again, or re-embed with `sync --reembed`"
    )]
    OtherModel {
        /// The model of the connector's `embedding:` block.
        configured: EmbeddingModel,
        /// The model of the index's vectors.
        recorded: EmbeddingModel,
    },
    /// The model failed on the query.
    #[error("cannot embed the query: {0}")]
    Embed(#[from] EmbedError),
}

/// The vector of `text` by `embedder`, which must embed with `recorded`, the model of the
/// index's vectors.
pub async fn query_vector(
    embedder: Option<&dyn Embedder>,
    recorded: Option<&EmbeddingModel>,
    text: &str,
) -> Result<Vec<f32>, QueryVectorError> {
    let recorded = recorded.ok_or(QueryVectorError::NoVectors)?;
    let embedder = embedder.ok_or_else(|| QueryVectorError::NoEmbedder {
        recorded: recorded.clone(),
    })?;
    if embedder.model() != recorded {
        return Err(QueryVectorError::OtherModel {
            configured: embedder.model().clone(),
            recorded: recorded.clone(),
        });
    }
    let mut vectors = embedder.embed(&[text.to_owned()]).await?;
    match (vectors.pop(), vectors.is_empty()) {
        (Some(vector), true) => Ok(vector),
        _ => Err(EmbedError::Shape {
            expected: "1 vector".to_owned(),
            got: format!("{} vectors", vectors.len() + 1),
        }
        .into()),
    }
}

impl Default for Fusion {
    fn default() -> Self {
        Self::Rrf { k: 60 }
    }
}

/// A search over an index's passages.
#[derive(Clone, Debug, PartialEq)]
pub struct PassageQuery {
    /// What a person typed (the query-string syntax of [`Sink::search`](crate::sink::Sink)).
    pub text: String,
    /// The query's vector, for [`SearchMode::Semantic`] and [`SearchMode::Hybrid`].
    pub vector: Option<Vec<f32>>,
    /// How to rank.
    pub mode: SearchMode,
    /// How to fuse, in [`SearchMode::Hybrid`].
    pub fusion: Fusion,
    /// Hits to return at most.
    pub limit: usize,
}

/// One result of a passage search.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PassageHit {
    /// The document's id.
    #[serde(serialize_with = "crate::sink::serialize_doc_id")]
    pub id: DocId,
    /// The object's bucket.
    pub bucket: String,
    /// The object's key.
    pub key: String,
    /// The document's title, if it has one.
    pub title: Option<String>,
    /// The passage; `None` when the hit is a whole document (an index without passages).
    pub passage: Option<Passage>,
    /// The score the ranking gave (BM25, cosine, or the fused score).
    pub score: f32,
    /// The passage's (or document's) text around the matched words; `None` when there is no
    /// text.
    pub snippet: Option<Snippet>,
}

/// A short piece of a hit's text with the words the query matched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Snippet {
    /// The text, cut at word boundaries, markup stripped.
    pub text: String,
    /// Byte ranges `[start, end)` of `text` that the query matched, in order, not overlapping.
    pub highlights: Vec<[usize; 2]>,
}

impl Snippet {
    /// The text and highlights of a hit's snippet, as the CLI and the API print them: no
    /// text and no highlights without one.
    pub fn parts(snippet: Option<Self>) -> (Option<String>, Vec<[usize; 2]>) {
        snippet.map_or((None, Vec::new()), |s| (Some(s.text), s.highlights))
    }

    /// The pieces of `text` that `highlights` mark, in order.
    #[cfg(test)]
    pub(crate) fn marked(&self) -> Vec<&str> {
        self.highlights
            .iter()
            .map(|[start, end]| &self.text[*start..*end])
            .collect()
    }
}

/// The identity of a hit across rankings: its document and passage.
fn hit_key(hit: &PassageHit) -> (DocId, Option<u32>) {
    (hit.id, hit.passage.as_ref().map(|passage| passage.ordinal))
}

/// Merges a keyword and a semantic ranking (each best first) into one of at most `limit` hits,
/// best first; a hit found by both keeps the keyword hit's snippet. Ties keep the keyword
/// ranking's order, then the semantic one's.
pub fn fuse(
    keyword: Vec<PassageHit>,
    semantic: Vec<PassageHit>,
    fusion: Fusion,
    limit: usize,
) -> Vec<PassageHit> {
    let scores = |hits: &[PassageHit]| -> Vec<f32> {
        match fusion {
            Fusion::Rrf { k } => (0..hits.len())
                .map(|rank| 1.0 / (k as f32 + rank as f32 + 1.0))
                .collect(),
            Fusion::Weighted { .. } => {
                let (low, high) = hits.iter().fold((f32::MAX, f32::MIN), |(low, high), hit| {
                    (low.min(hit.score), high.max(hit.score))
                });
                hits.iter()
                    .map(|hit| {
                        if high > low {
                            (hit.score - low) / (high - low)
                        } else {
                            1.0
                        }
                    })
                    .collect()
            }
        }
    };
    let (keyword_weight, semantic_weight) = match fusion {
        Fusion::Rrf { .. } => (1.0, 1.0),
        Fusion::Weighted { semantic_weight } => (1.0 - semantic_weight, semantic_weight),
    };
    let keyword_scores = scores(&keyword);
    let semantic_scores = scores(&semantic);
    let mut fused: Vec<(f32, PassageHit)> = Vec::new();
    let mut position = std::collections::HashMap::new();
    let lists = [
        (keyword, keyword_scores, keyword_weight),
        (semantic, semantic_scores, semantic_weight),
    ];
    for (hits, scores, weight) in lists {
        for (hit, score) in hits.into_iter().zip(scores) {
            match position.get(&hit_key(&hit)) {
                Some(&at) => {
                    let entry: &mut (f32, PassageHit) = &mut fused[at];
                    entry.0 += weight * score;
                    if entry.1.snippet.is_none() {
                        entry.1.snippet = hit.snippet;
                    }
                }
                None => {
                    position.insert(hit_key(&hit), fused.len());
                    fused.push((weight * score, hit));
                }
            }
        }
    }
    // A stable sort keeps first-seen order among equal scores.
    fused.sort_by(|a, b| b.0.total_cmp(&a.0));
    fused
        .into_iter()
        .take(limit)
        .map(|(score, mut hit)| {
            hit.score = score;
            hit
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::embed::PassageHash;

    /// A hit of document `doc` (its passage `ordinal`, if any) scoring `score`.
    fn hit(doc: &str, ordinal: Option<u32>, score: f32) -> PassageHit {
        PassageHit {
            id: DocId::of("b", doc),
            bucket: "b".to_owned(),
            key: doc.to_owned(),
            title: None,
            passage: ordinal.map(|ordinal| {
                let text = format!("passage {ordinal} of {doc}");
                Passage {
                    ordinal,
                    start: 0,
                    end: 1,
                    heading: None,
                    page: None,
                    content_hash: PassageHash::of(&text),
                    text,
                }
            }),
            score,
            snippet: None,
        }
    }

    fn keys(hits: &[PassageHit]) -> Vec<String> {
        hits.iter()
            .map(|hit| match &hit.passage {
                Some(span) => format!("{}#{}", hit.key, span.ordinal),
                None => hit.key.clone(),
            })
            .collect()
    }

    #[tokio::test]
    async fn the_query_vector_comes_from_the_model_the_index_recorded() {
        let embedder = crate::embed::testing::WordHashEmbedder::new(8);
        let model = embedder.model().clone();
        let vector = query_vector(Some(&embedder), Some(&model), "lift and drag")
            .await
            .unwrap();
        assert_eq!(vector, embedder.vector("lift and drag"));
        let error = query_vector(Some(&embedder), None, "x").await.unwrap_err();
        assert!(matches!(error, QueryVectorError::NoVectors), "{error}");
        let error = query_vector(None, Some(&model), "x").await.unwrap_err();
        assert!(
            error.to_string().contains("test:word-hash (8 dimensions)"),
            "{error}"
        );
        let other = EmbeddingModel {
            id: "local:all-MiniLM-L6-v2".to_owned(),
            dimensions: 384,
        };
        let error = query_vector(Some(&embedder), Some(&other), "x")
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the connector is configured with the model test:word-hash (8 dimensions), but its \
             index holds vectors of local:all-MiniLM-L6-v2 (384 dimensions): configure \
             local:all-MiniLM-L6-v2 (384 dimensions) again, or re-embed with `sync --reembed`"
        );
        assert_eq!(SearchMode::default_for(Some(&other)), SearchMode::Hybrid);
        assert_eq!(SearchMode::default_for(None), SearchMode::Keyword);
    }

    #[test]
    fn fusion_table() {
        let rrf = Fusion::default();
        let weighted = |w| Fusion::Weighted { semantic_weight: w };
        // (keyword, semantic, fusion, limit, expected order)
        type Case = (
            Vec<PassageHit>,
            Vec<PassageHit>,
            Fusion,
            usize,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            // Found by both lists beats found by one.
            (
                vec![hit("a", Some(0), 9.0), hit("b", Some(0), 8.0)],
                vec![hit("c", Some(0), 0.9), hit("b", Some(0), 0.8)],
                rrf,
                10,
                vec!["b#0", "a#0", "c#0"],
            ),
            // Two passages of one document are two hits.
            (
                vec![hit("a", Some(0), 2.0)],
                vec![hit("a", Some(1), 0.9)],
                rrf,
                10,
                vec!["a#0", "a#1"],
            ),
            // A whole-document hit and the limit.
            (
                vec![hit("a", None, 2.0), hit("b", None, 1.0)],
                vec![],
                rrf,
                1,
                vec!["a"],
            ),
            // Weighted: all semantic follows the semantic order.
            (
                vec![hit("a", Some(0), 9.0), hit("b", Some(0), 1.0)],
                vec![hit("b", Some(0), 0.9), hit("a", Some(0), 0.1)],
                weighted(1.0),
                10,
                vec!["b#0", "a#0"],
            ),
            (
                vec![hit("a", Some(0), 9.0), hit("b", Some(0), 1.0)],
                vec![hit("b", Some(0), 0.9), hit("a", Some(0), 0.1)],
                weighted(0.0),
                10,
                vec!["a#0", "b#0"],
            ),
            (vec![], vec![], rrf, 10, vec![]),
        ];
        for (index, (keyword, semantic, fusion, limit, expected)) in cases.into_iter().enumerate() {
            assert_eq!(
                keys(&fuse(keyword, semantic, fusion, limit)),
                expected,
                "case {index}"
            );
        }
        // RRF scores: 1/61 + 1/62 for a hit first in one list and second in the other.
        let fused = fuse(
            vec![hit("a", None, 1.0)],
            vec![hit("x", None, 1.0), hit("a", None, 0.5)],
            rrf,
            10,
        );
        assert!((fused[0].score - (1.0 / 61.0 + 1.0 / 62.0)).abs() < 1e-6);
    }

    /// Extraction writes the structure passages are cut by: pages as form feeds (PDF),
    /// headings as Markdown heading lines (HTML, DOCX, OpenDocument, PPTX slides, EPUB).
    #[test]
    fn passages_of_extracted_documents_know_their_pages_and_headings() {
        use crate::config::embedding::PassageSettings;
        use crate::embed::passages_of;
        use crate::embed::testing::WordHashEmbedder;
        use crate::extract::{Format, extract, fixtures};

        let embedder = WordHashEmbedder::new(8);
        // Eight words: each section below fits, no document does.
        let settings = PassageSettings {
            max_tokens: 8,
            overlap_tokens: 0,
            max_passages_per_document: 100,
        };
        let places = |format: Format, bytes: &[u8]| {
            let body = extract(format, bytes).unwrap().body;
            let (passages, _) = passages_of(&body, &embedder, &settings);
            passages
                .into_iter()
                .map(|passage| {
                    assert_eq!(passage.text, body[passage.start..passage.end]);
                    (passage.text, passage.heading, passage.page)
                })
                .collect::<Vec<_>>()
        };
        let place = |text: &str, heading: Option<&str>, page: Option<u32>| {
            (text.to_owned(), heading.map(str::to_owned), page)
        };
        let install = vec![
            place("# Install\nRun the installer.", Some("Install"), None),
            place(
                "## On Linux\nUse the package.",
                Some("Install > On Linux"),
                None,
            ),
        ];
        let html = b"<title>Guide</title><h1>Install</h1><p>Run the installer.</p>\
                     <h2>On <b>Linux</b></h2><p>Use the package.</p>";
        assert_eq!(places(Format::Html, html), install, "HTML");
        let docx = fixtures::styled_docx_bytes(&[
            ("Heading1", "Install"),
            ("", "Run the installer."),
            ("Heading2", "On Linux"),
            ("", "Use the package."),
        ]);
        assert_eq!(places(Format::Docx, &docx), install, "DOCX");
        let german = fixtures::german_docx_bytes(&[
            ("berschrift1", "Install"),
            ("Standard", "Run the installer."),
            ("berschrift2", "On Linux"),
            ("", "Use the package."),
        ]);
        assert_eq!(
            places(Format::Docx, &german),
            install,
            "DOCX, German style ids"
        );
        let odt = fixtures::odf_bytes(
            "application/vnd.oasis.opendocument.text",
            "<office:text><text:h text:outline-level=\"1\">Install</text:h>\
             <text:p>Run the installer.</text:p><text:h text:outline-level=\"2\">On Linux</text:h>\
             <text:p>Use the package.</text:p></office:text>",
            "",
        );
        assert_eq!(places(Format::Odt, &odt), install, "ODT");
        let pptx = fixtures::pptx_bytes(&[
            (Some("Walrus strategy"), "Krill first and foremost."),
            (None, "No title on this slide."),
        ]);
        assert_eq!(
            places(Format::Pptx, &pptx),
            [
                place(
                    "# Walrus strategy\nKrill first and foremost.",
                    Some("Walrus strategy"),
                    None
                ),
                place("# Slide 2\nNo title on this slide.", Some("Slide 2"), None),
            ],
            "PPTX"
        );
        let epub = fixtures::epub_bytes("Book", "Call me Ishmael.", "The whale &amp; sea.");
        assert_eq!(
            places(Format::Epub, &epub),
            [
                place("# One\nCall me Ishmael.", Some("One"), None),
                place("# Two\nThe whale & sea.", Some("Two"), None),
            ],
            "EPUB"
        );
        let pdf = fixtures::pages_pdf(&["Lift and drag", "", "Turbine blades crack"]);
        assert_eq!(
            places(Format::Pdf, &pdf),
            [
                place("Lift and drag", None, Some(1)),
                place("Turbine blades crack", None, Some(3)),
            ],
            "PDF"
        );
    }

    proptest! {
        #![proptest_config(crate::proptest_config::with_cases(128))]

        /// Fusion answers each hit once, at most `limit`, best first, every hit from an input.
        #[test]
        fn fusion_answers_each_hit_once_best_first(
            keyword in prop::collection::vec((0u8..8, 0f32..10.0), 0..10),
            semantic in prop::collection::vec((0u8..8, -1f32..1.0), 0..10),
            limit in 0usize..12,
            weight in prop::option::of(0f32..=1.0),
        ) {
            let dedup = |list: Vec<(u8, f32)>| {
                let mut seen = std::collections::HashSet::new();
                list.into_iter()
                    .filter(|(doc, _)| seen.insert(*doc))
                    .map(|(doc, score)| hit(&doc.to_string(), Some(0), score))
                    .collect::<Vec<_>>()
            };
            let (keyword, semantic) = (dedup(keyword), dedup(semantic));
            let fusion = weight.map_or(Fusion::default(), |w| Fusion::Weighted { semantic_weight: w });
            let mut inputs: Vec<String> = keys(&keyword);
            inputs.extend(keys(&semantic));
            inputs.sort();
            inputs.dedup();
            let fused = fuse(keyword, semantic, fusion, limit);
            let found = keys(&fused);
            prop_assert_eq!(found.len(), inputs.len().min(limit));
            let mut unique = found.clone();
            unique.sort();
            unique.dedup();
            prop_assert_eq!(unique.len(), found.len());
            prop_assert!(found.iter().all(|key| inputs.contains(key)));
            prop_assert!(fused.windows(2).all(|pair| pair[0].score >= pair[1].score));
        }
    }
}
