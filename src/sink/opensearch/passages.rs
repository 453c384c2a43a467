//! The passage index: the passages of an index's documents and their vectors, in a companion
//! index named `<index>-passages` beside the document index.
//!
//! Why a companion index and not passage records in the document index: every read of the
//! document index (the sync's scans, `indexed_version`, counts, `get`, the keyword search of
//! whole documents) stays blind to passages without a filter that each of them would have to
//! remember; and `index.knn: true`, which a `knn_vector` field needs, is a setting an index only
//! takes at creation, so an index synced before embeddings existed would need a reindex, where
//! a companion is simply created with k-NN on the first time passages come.
//!
//! Passage ids are `<document id>-<ordinal>`. The write of a batch goes in this order, so that
//! after a crash at any point the next sync finds documents, passages and vectors agreeing:
//! (1) passages of the batch's documents beyond their new count are deleted; (2) the passages
//! are written, replacing those with the same ordinal; (3) only then the documents themselves,
//! leaving out any whose passages were refused. The document's version is the commit mark: a
//! crash before (3) leaves the old version (or none) in the document index, so the next sync
//! does the object again. Deleting a document deletes its passages first, for the same reason.
//!
//! The model that made the vectors is recorded in this index's `_meta` (the document index's
//! `_meta` holds the source record, and OpenSearch replaces `_meta` as a whole).

use std::collections::BTreeMap;

use ::opensearch::http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::bulk::Operation;
use super::client::{Body, Client, index_path};
use super::error::OpensearchError;
use super::mapping;
use crate::embed::{EmbeddingModel, Passage, PassageHash};
use crate::sink::{DocId, Document, StoredPassage, analysis};

/// The passage index of the document index `index`.
pub(super) fn companion(index: &str) -> String {
    format!("{index}-passages")
}

/// The analyzer of passage text: OpenSearch's standard tokenizer, lowercased, folded to ASCII
/// and stemmed (the `english` stemmer, Porter's), so that "running" finds "runs". (No
/// `possessive_english` filter: osmem-server, the emulator the tests run on, matches every
/// document with it.)
pub(super) const ENGLISH: &str = "s3c_english";

/// The key under the passage index's `_meta` that holds the model of its vectors.
const MODEL_META: &str = "s3_connector_model";

/// The analysis settings of the passage index: [`analysis::FOLDED`] as in the document index,
/// and [`ENGLISH`].
fn analysis_settings() -> Value {
    let mut settings = mapping::analysis_settings();
    settings["filter"] = json!({
        "s3c_english_stemmer": {"type": "stemmer", "language": "english"},
    });
    settings["analyzer"][ENGLISH] = json!({
        "type": "custom",
        "tokenizer": "standard",
        "filter": ["lowercase", "asciifolding", "s3c_english_stemmer"],
    });
    settings
}

/// The `vector` field for vectors of `dimensions`: HNSW on the Lucene engine (efficient
/// filtering since OpenSearch 2.4) with cosine similarity. Shape as documented in
/// <https://docs.opensearch.org/docs/mappings/supported-field-types/knn-methods-engines/>.
fn vector_mapping(dimensions: usize) -> Value {
    json!({
        "type": "knn_vector",
        "dimension": dimensions,
        "method": {"name": "hnsw", "space_type": "cosinesimil", "engine": "lucene"},
    })
}

/// Field → mapping; the `vector` field only when its dimension is known.
fn properties(dimensions: Option<usize>) -> Value {
    let english = json!({"type": "text", "analyzer": ENGLISH});
    let mut properties = json!({
        "parent": {"type": "keyword"},
        "bucket": {"type": "keyword"},
        "key": {"type": "keyword", "fields": {"text": {"type": "text", "analyzer": analysis::FOLDED}}},
        "filename": english,
        "title": english,
        "heading": english,
        // The passage's text is `body`, as a document's, so `body:word` means the same on both.
        "body": english,
        "filters": {"type": "keyword"},
        "ordinal": {"type": "integer"},
        "start": {"type": "long"},
        "end": {"type": "long"},
        "page": {"type": "integer"},
        "content_hash": {"type": "keyword"},
    });
    if let Some(dimensions) = dimensions {
        properties["vector"] = vector_mapping(dimensions);
    }
    properties
}

/// The body of the create-index request.
pub(super) fn create_body(dimensions: Option<usize>, model: Option<&EmbeddingModel>) -> Value {
    let mut mappings = json!({"properties": properties(dimensions)});
    if let Some(model) = model {
        mappings["_meta"] = json!({ MODEL_META: model });
    }
    json!({
        "settings": {"index": {"knn": true}, "analysis": analysis_settings()},
        "mappings": mappings,
    })
}

/// The passage index as this process last saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// There is none: no document was written with passages.
    Absent,
    /// It exists.
    Present {
        /// Whether it was created with `index.knn: true`.
        knn: bool,
        /// The dimension of its `vector` field; `None` before any vector was written.
        dimensions: Option<usize>,
    },
}

impl State {
    /// The dimension of the vectors it holds, if any.
    pub(super) fn dimensions(self) -> Option<usize> {
        match self {
            Self::Absent => None,
            Self::Present { dimensions, .. } => dimensions,
        }
    }
}

/// `GET /{index}/_{what}`: the answer per index, `None` when the index does not exist.
async fn read(
    client: &Client,
    index: &str,
    what: &str,
) -> Result<Option<BTreeMap<String, Value>>, OpensearchError> {
    let (action, reply) = mapping::read_index(client, index, what).await?;
    if reply.status == 404 {
        return Ok(None);
    }
    reply.json(&action).map(Some)
}

/// What the passage index `companion` is now.
pub(super) async fn read_state(client: &Client, companion: &str) -> Result<State, OpensearchError> {
    let Some(mappings) = read(client, companion, "mapping").await? else {
        return Ok(State::Absent);
    };
    let dimensions = mappings.values().find_map(|mapping| {
        let dimension = mapping.pointer("/mappings/properties/vector/dimension")?;
        dimension.as_u64().map(|dimension| dimension as usize)
    });
    let settings = read(client, companion, "settings")
        .await?
        .unwrap_or_default();
    let knn = settings.values().all(|settings| {
        matches!(
            settings.pointer("/settings/index/knn"),
            Some(Value::Bool(true))
        ) || settings
            .pointer("/settings/index/knn")
            .and_then(Value::as_str)
            == Some("true")
    });
    Ok(State::Present { knn, dimensions })
}

/// Creates the passage index `companion`, or reads it when another writer just did.
async fn create(
    client: &Client,
    companion: &str,
    dimensions: Option<usize>,
    model: Option<&EmbeddingModel>,
) -> Result<State, OpensearchError> {
    let action = format!("creating index {companion}");
    let body = Body::json(&create_body(dimensions, model));
    let path = format!("/{companion}");
    let reply = client
        .send(&action, Method::Put, &path, &[], Some(&body))
        .await?;
    if reply.is_success() {
        tracing::info!(
            message = "Created the OpenSearch index of passages.",
            index = companion
        );
        return Ok(State::Present {
            knn: true,
            dimensions,
        });
    }
    let error = reply.into_error(&action);
    if error.kind() != Some("resource_already_exists_exception") {
        return Err(error);
    }
    read_state(client, companion).await
}

/// Makes sure the passage index exists and, when `dimensions` is given, can take vectors of
/// that length: creates it, or adds the `vector` field to one that has none yet. A `vector`
/// field of another dimension is [`OpensearchError::DimensionMismatch`]; an index without k-NN
/// [`OpensearchError::KnnDisabled`].
pub(super) async fn ensure(
    client: &Client,
    companion: &str,
    state: State,
    dimensions: Option<usize>,
) -> Result<State, OpensearchError> {
    let (knn, mapped) = match state {
        State::Absent => return create(client, companion, dimensions, None).await,
        State::Present { knn, dimensions } => (knn, dimensions),
    };
    match (mapped, dimensions) {
        (_, None) => Ok(state),
        (Some(mapped), Some(given)) if mapped == given => Ok(state),
        (Some(mapped), Some(given)) => Err(OpensearchError::DimensionMismatch {
            index: companion.to_owned(),
            mapped,
            given,
        }),
        (None, Some(_)) if !knn => Err(OpensearchError::KnnDisabled {
            index: companion.to_owned(),
        }),
        (None, Some(given)) => {
            let action = format!("adding the vector field to the mapping of index {companion}");
            let body = Body::json(&json!({"properties": {"vector": vector_mapping(given)}}));
            let path = index_path(companion, "_mapping");
            let reply = client
                .send(&action, Method::Put, &path, &[], Some(&body))
                .await?;
            if !reply.is_success() {
                return Err(reply.into_error(&action));
            }
            Ok(State::Present {
                knn,
                dimensions: Some(given),
            })
        }
    }
}

/// The model recorded in the passage index's `_meta`; `None` when there is no passage index or
/// no record.
pub(super) async fn recorded_model(
    client: &Client,
    companion: &str,
) -> Result<Option<EmbeddingModel>, OpensearchError> {
    let Some(mappings) = read(client, companion, "mapping").await? else {
        return Ok(None);
    };
    let pointer = format!("/mappings/_meta/{MODEL_META}");
    let Some(recorded) = mappings
        .values()
        .find_map(|mapping| mapping.pointer(&pointer).cloned())
    else {
        return Ok(None);
    };
    serde_json::from_value(recorded)
        .map(Some)
        .map_err(|error| OpensearchError::InvalidResponse {
            action: format!("reading the model recorded in index {companion}"),
            detail: format!("_meta.{MODEL_META} is not a model record: {error}"),
        })
}

/// Records `model` in the passage index's `_meta`, creating the index for its vectors. An index
/// whose vectors have another dimension is deleted and created again: a new model's vectors
/// replace every old one (the sync records a new model only when it re-embeds everything).
pub(super) async fn record_model(
    client: &Client,
    companion: &str,
    state: State,
    model: &EmbeddingModel,
) -> Result<State, OpensearchError> {
    let state = match state {
        State::Absent => {
            return create(client, companion, Some(model.dimensions), Some(model)).await;
        }
        State::Present {
            dimensions: Some(mapped),
            ..
        } if mapped != model.dimensions => {
            tracing::warn!(
                message = "The embedding model's vectors have another dimension than the passage index maps: deleting the passage index to create it again for the new model.",
                index = companion,
                mapped,
                model = %model
            );
            let action = format!("deleting index {companion}");
            let reply = client
                .send(&action, Method::Delete, &format!("/{companion}"), &[], None)
                .await?;
            if !reply.is_success() && reply.status != 404 {
                return Err(reply.into_error(&action));
            }
            return create(client, companion, Some(model.dimensions), Some(model)).await;
        }
        state => ensure(client, companion, state, Some(model.dimensions)).await?,
    };
    let action = format!("recording the embedding model in the mapping of index {companion}");
    let body = Body::json(&json!({"_meta": { MODEL_META: model }}));
    let path = index_path(companion, "_mapping");
    let reply = client
        .send(&action, Method::Put, &path, &[], Some(&body))
        .await?;
    if reply.is_success() {
        Ok(state)
    } else {
        Err(reply.into_error(&action))
    }
}

/// The `_id` of passage `ordinal` of document `id`.
pub(super) fn passage_id(id: DocId, ordinal: u32) -> String {
    format!("{id}-{ordinal}")
}

/// A passage as the passage index stores it. Serialised directly (not through a JSON value),
/// so that each component of a vector is written as the shortest text of its `f32`.
#[derive(Serialize)]
struct PassageSource<'a> {
    parent: &'a str,
    bucket: &'a str,
    key: &'a str,
    filename: &'a str,
    title: Option<&'a str>,
    filters: &'a [String],
    ordinal: u32,
    start: usize,
    end: usize,
    heading: Option<&'a str>,
    page: Option<u32>,
    body: &'a str,
    content_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    vector: Option<&'a [f32]>,
}

/// The bulk operations writing the passages of `document`: each with the document's bucket,
/// key, filename, title and filter terms, so that a passage is found and filtered like its
/// document.
pub(super) fn operations(document: &Document) -> Result<Vec<Operation>, serde_json::Error> {
    let filters = document.attributes.filter_terms();
    let parent = document.id.to_hex();
    document
        .passages
        .iter()
        .map(|stored| {
            let passage = &stored.passage;
            let source = PassageSource {
                parent: &parent,
                bucket: &document.bucket,
                key: &document.key,
                filename: &document.filename,
                title: document.title.as_deref(),
                filters: &filters,
                ordinal: passage.ordinal,
                start: passage.start,
                end: passage.end,
                heading: passage.heading.as_deref(),
                page: passage.page,
                body: &passage.text,
                content_hash: passage.content_hash.to_hex(),
                vector: stored.vector.as_deref(),
            };
            Operation::with_source(
                document.id,
                &passage_id(document.id, passage.ordinal),
                &source,
            )
        })
        .collect()
}

/// Documents per delete-by-query request.
const DELETE_CHUNK: usize = 500;

/// The query matching the passages of each `(document, count)` from ordinal `count` on: the
/// passages a document no longer has (all of them for a count of 0).
pub(super) fn beyond_query(counts: &[(DocId, usize)]) -> Value {
    let mut by_count: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (id, count) in counts {
        by_count.entry(*count).or_default().push(id.to_hex());
    }
    let clauses: Vec<Value> = by_count
        .into_iter()
        .map(|(count, parents)| {
            json!({"bool": {"filter": [
                {"terms": {"parent": parents}},
                {"range": {"ordinal": {"gte": count}}},
            ]}})
        })
        .collect();
    json!({"bool": {"should": clauses, "minimum_should_match": 1}})
}

/// Deletes the passages of each `(document, count)` from ordinal `count` on, and waits until
/// they are gone.
pub(super) async fn delete_beyond(
    client: &Client,
    companion: &str,
    counts: &[(DocId, usize)],
) -> Result<(), OpensearchError> {
    let path = index_path(companion, "_delete_by_query");
    for chunk in counts.chunks(DELETE_CHUNK) {
        let action = format!(
            "deleting the old passages of {} document(s) from index {companion}",
            chunk.len()
        );
        let body = Body::json(&json!({"query": beyond_query(chunk)}));
        let query = [("conflicts", "proceed"), ("refresh", "true")];
        let reply = client
            .send(&action, Method::Post, &path, &query, Some(&body))
            .await?;
        if reply.status == 404 {
            return Ok(());
        }
        #[derive(Deserialize)]
        struct Deleted {
            #[serde(default)]
            failures: Vec<Value>,
        }
        let deleted: Deleted = reply.json(&action)?;
        if let Some(first) = deleted.failures.first() {
            return Err(OpensearchError::InvalidResponse {
                action,
                detail: format!(
                    "{} passage(s) could not be deleted; the first: {first}",
                    deleted.failures.len()
                ),
            });
        }
    }
    Ok(())
}

/// Passages read per request.
const READ_PAGE: usize = 1000;

/// The stored passages of document `id`, by ordinal (with their vectors where they have one).
pub(super) async fn read_passages(
    client: &Client,
    companion: &str,
    id: DocId,
) -> Result<Vec<StoredPassage>, OpensearchError> {
    let action = format!("reading the passages of document {id} from index {companion}");
    let path = index_path(companion, "_search");
    let mut passages = Vec::new();
    loop {
        let mut request = json!({
            "size": READ_PAGE,
            "query": {"term": {"parent": id.to_hex()}},
            "sort": [{"ordinal": {"order": "asc"}}],
            "track_total_hits": false,
        });
        if let Some(last) = passages.last() {
            let last: &StoredPassage = last;
            request["search_after"] = json!([last.passage.ordinal]);
        }
        let body = Body::json(&request);
        let reply = client
            .send(&action, Method::Post, &path, &[], Some(&body))
            .await?;
        if reply.status == 404 {
            return Ok(passages);
        }
        let page: super::scan::Page = reply.json(&action)?;
        let count = page.hits.hits.len();
        for hit in page.hits.hits {
            let stored =
                stored_passage(&hit.source).ok_or_else(|| OpensearchError::InvalidResponse {
                    action: action.clone(),
                    detail: format!("passage {} is not one s3-connector wrote", hit.id),
                })?;
            passages.push(stored);
        }
        if count < READ_PAGE {
            return Ok(passages);
        }
    }
}

/// A passage as stored; `None` when a field of ours is missing or malformed.
pub(super) fn stored_passage(source: &Map<String, Value>) -> Option<StoredPassage> {
    let number = |field: &str| source.get(field).and_then(Value::as_u64);
    let text = |field: &str| source.get(field).and_then(Value::as_str).map(str::to_owned);
    let vector = match source.get("vector") {
        None | Some(Value::Null) => None,
        Some(vector) => Some(serde_json::from_value::<Vec<f32>>(vector.clone()).ok()?),
    };
    Some(StoredPassage {
        passage: Passage {
            ordinal: u32::try_from(number("ordinal")?).ok()?,
            start: usize::try_from(number("start")?).ok()?,
            end: usize::try_from(number("end")?).ok()?,
            heading: text("heading"),
            page: number("page").and_then(|page| u32::try_from(page).ok()),
            text: text("body").unwrap_or_default(),
            content_hash: PassageHash::from_hex(&text("content_hash")?)?,
        },
        vector,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_passage_index_is_created_with_knn_and_a_cosine_vector_of_the_models_dimension() {
        let model = EmbeddingModel {
            id: "local:all-MiniLM-L6-v2".into(),
            dimensions: 384,
        };
        let body = create_body(Some(384), Some(&model));
        assert_eq!(body["settings"]["index"]["knn"], json!(true));
        let vector = &body["mappings"]["properties"]["vector"];
        assert_eq!(vector["type"], "knn_vector");
        assert_eq!(vector["dimension"], 384);
        assert_eq!(vector["method"]["space_type"], "cosinesimil");
        assert_eq!(body["mappings"]["_meta"][MODEL_META]["dimensions"], 384);
        assert_eq!(body["mappings"]["properties"]["body"]["analyzer"], ENGLISH);
        let analyzer = &body["settings"]["analysis"]["analyzer"][ENGLISH];
        assert_eq!(analyzer["filter"][2], "s3c_english_stemmer");
        assert_eq!(
            body["settings"]["analysis"]["filter"]["s3c_english_stemmer"]["language"],
            "english"
        );
        // Without a known dimension (only failed embeddings so far) there is no vector field.
        assert!(create_body(None, None)["mappings"]["properties"]["vector"].is_null());
    }

    #[test]
    fn passages_are_written_under_document_id_and_ordinal_with_the_documents_fields() {
        let mut document = crate::sink::memory::full_document("b", "docs/a.md", "One. Two.");
        document
            .attributes
            .metadata
            .insert("author".into(), "Zoë".into());
        let passage = |ordinal: u32, start: usize, end: usize| Passage {
            ordinal,
            start,
            end,
            heading: None,
            page: Some(1),
            text: document.body.as_ref().unwrap()[start..end].to_owned(),
            content_hash: PassageHash::of(&document.body.as_ref().unwrap()[start..end]),
        };
        document.passages = vec![
            StoredPassage {
                passage: passage(0, 0, 4),
                vector: Some(vec![0.6, 0.8]),
            },
            StoredPassage {
                passage: passage(1, 5, 9),
                vector: None,
            },
        ];
        let operations = operations(&document).unwrap();
        let lines: Vec<Value> = operations
            .iter()
            .flat_map(|op| std::str::from_utf8(&op.ndjson).unwrap().lines())
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(
            lines[0],
            json!({"index": {"_id": format!("{}-0", document.id)}})
        );
        assert_eq!(lines[1]["parent"], document.id.to_hex());
        assert_eq!(lines[1]["filters"], json!(["meta.author=zoe"]));
        assert_eq!(lines[1]["body"], "One.");
        assert_eq!(
            lines[2],
            json!({"index": {"_id": format!("{}-1", document.id)}})
        );
        assert!(lines[3].get("vector").is_none(), "no vector: none written");
        // Components are written as the shortest text of their f32.
        let text = std::str::from_utf8(&operations[0].ndjson).unwrap();
        assert!(text.contains(r#""vector":[0.6,0.8]"#), "{text}");
        let back = stored_passage(lines[1].as_object().unwrap()).unwrap();
        assert_eq!(back, document.passages[0]);
    }

    #[test]
    fn stale_passages_are_those_beyond_each_documents_new_count() {
        let (a, b, c) = (
            DocId::of("b", "a"),
            DocId::of("b", "b"),
            DocId::of("b", "c"),
        );
        assert_eq!(
            beyond_query(&[(a, 3), (b, 0), (c, 3)]),
            json!({"bool": {"should": [
                {"bool": {"filter": [
                    {"terms": {"parent": [b.to_hex()]}},
                    {"range": {"ordinal": {"gte": 0}}},
                ]}},
                {"bool": {"filter": [
                    {"terms": {"parent": [a.to_hex(), c.to_hex()]}},
                    {"range": {"ordinal": {"gte": 3}}},
                ]}},
            ], "minimum_should_match": 1}})
        );
    }

    #[test]
    fn stored_passages_read_back_as_written_and_foreign_records_do_not() {
        let text = "Passages are searched by meaning.";
        let source = json!({
            "parent": DocId::of("b", "k").to_hex(), "ordinal": 2, "start": 10, "end": 43,
            "heading": "Intro", "page": null, "body": text,
            "content_hash": PassageHash::of(text).to_hex(), "vector": [0.6, 0.8],
        });
        let stored = stored_passage(source.as_object().unwrap()).unwrap();
        assert_eq!(stored.passage.ordinal, 2);
        assert_eq!((stored.passage.start, stored.passage.end), (10, 43));
        assert_eq!(stored.passage.heading.as_deref(), Some("Intro"));
        assert_eq!(stored.passage.content_hash, PassageHash::of(text));
        assert_eq!(stored.vector, Some(vec![0.6, 0.8]));
        for broken in [
            json!({"ordinal": 2, "start": 10, "end": 43}),
            json!({"ordinal": -1, "start": 10, "end": 43, "content_hash": PassageHash::of(text).to_hex()}),
            json!({"ordinal": 1, "start": 0, "end": 1, "content_hash": "xyz"}),
            json!({"ordinal": 1, "start": 0, "end": 1, "content_hash": PassageHash::of(text).to_hex(), "vector": "no"}),
        ] {
            assert_eq!(
                stored_passage(broken.as_object().unwrap()),
                None,
                "{broken}"
            );
        }
    }
}
