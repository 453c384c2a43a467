//! Reading documents for people: relevance search for `s3-connector search`, and fetching or
//! counting documents (for tests and tools).

use ::opensearch::http::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::client::{Body, Client, Reply, index_path};
use super::error::OpensearchError;
use super::scan::Page;
use crate::sink::{Attributes, ContentStatus, DocId, Document, SearchHit, query};

/// The fields a query searches, as on the embedded index: body, title, filename and key.
const SEARCH_FIELDS: [&str; 4] = ["body", "title", "filename", "key.text"];

/// How the text of a query is parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Syntax {
    /// Lucene's query-string syntax, leniently (a word against a numeric field is no error).
    QueryString,
    /// The simple query string, which accepts anything: the retry for a query that does not
    /// parse (a stray quote), so that a typo is not an error.
    Simple,
}

/// The query for what a person typed, over `fields`: its text in `syntax`, or every document
/// when it is filters only ([`query::split`]), and its filters as term filters on the
/// `filters` field.
pub(super) fn typed_query(filtered: &query::Filtered, fields: &[&str], syntax: Syntax) -> Value {
    let terms = |terms: &[String]| -> Vec<Value> {
        terms
            .iter()
            .map(|term| json!({"term": {"filters": term}}))
            .collect()
    };
    let text = if filtered.has_filters() && filtered.text.trim().is_empty() {
        json!({"match_all": {}})
    } else {
        let mut clause =
            json!({"query": filtered.text, "fields": fields, "default_operator": "or"});
        match syntax {
            Syntax::QueryString => {
                clause["lenient"] = Value::Bool(true);
                json!({ "query_string": clause })
            }
            Syntax::Simple => json!({ "simple_query_string": clause }),
        }
    };
    if filtered.has_filters() {
        json!({"bool": {
            "must": [text],
            "filter": terms(&filtered.required),
            "must_not": terms(&filtered.excluded),
        }})
    } else {
        text
    }
}

/// Sends the search `body(syntax)` to `path` in the query-string syntax, and again in the
/// simple syntax when the cluster answers 400 (the query does not parse).
pub(super) async fn send_typed(
    client: &Client,
    action: &str,
    path: &str,
    query: &[(&str, &str)],
    body: impl Fn(Syntax) -> Value,
) -> Result<Reply, OpensearchError> {
    let send = async |syntax| {
        let body = Body::json(&body(syntax));
        client
            .send(action, Method::Post, path, query, Some(&body))
            .await
    };
    let reply = send(Syntax::QueryString).await?;
    if reply.status != 400 {
        return Ok(reply);
    }
    tracing::debug!(
        message = "The query does not parse as a query string; running it as a simple query string.",
        error = %reply.into_error(action)
    );
    send(Syntax::Simple).await
}

/// The best `limit` hits for `query`, in OpenSearch's query-string syntax (words, "phrases",
/// field:value, AND/OR/NOT, `-`/`+`, parentheses) like the embedded index. A query that does
/// not parse (a stray quote) is run again as a simple query string, which accepts anything, so
/// a typo is not an error. Filters (`meta.author:alice`, [`query::split`]) become term filters
/// on the `filters` field.
pub(super) async fn search(
    client: &Client,
    index: &str,
    query: &str,
    limit: usize,
) -> Result<Vec<SearchHit>, OpensearchError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let action = format!("searching index {index}");
    let filtered = query::split(query);
    let path = index_path(index, "_search");
    let reply = send_typed(client, &action, &path, &[], |syntax| {
        let query = typed_query(&filtered, &SEARCH_FIELDS, syntax);
        json!({"size": limit, "_source": ["bucket", "key"], "query": query})
    })
    .await?;
    let page: Page = reply.json(&action)?;
    let text = |source: &serde_json::Map<String, Value>, field: &str| {
        source
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Ok(page
        .hits
        .hits
        .into_iter()
        .map(|hit| SearchHit {
            bucket: text(&hit.source, "bucket"),
            key: text(&hit.source, "key"),
            id: hit.id,
            score: hit.score.unwrap_or_default(),
        })
        .collect())
}

/// A document as stored: [`Document`]'s JSON form.
#[derive(Deserialize)]
struct Stored {
    id: String,
    bucket: String,
    key: String,
    filename: String,
    extension: String,
    size_in_bytes: u64,
    #[serde(with = "time::serde::rfc3339")]
    last_modified: OffsetDateTime,
    etag: String,
    content_type: Option<String>,
    storage_class: Option<String>,
    url: String,
    title: Option<String>,
    body: Option<String>,
    content_status: String,
    extraction_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    indexed_at: OffsetDateTime,
    /// Absent from documents written before metadata was indexed.
    #[serde(flatten)]
    attributes: Attributes,
    #[serde(default)]
    embedding_error: Option<String>,
}

/// The `_source` of the document with this id (GET `_doc`, with `query`), if the index holds
/// it.
async fn get_source<T: serde::de::DeserializeOwned>(
    client: &Client,
    index: &str,
    id: DocId,
    query: &[(&str, &str)],
    action: &str,
) -> Result<Option<T>, OpensearchError> {
    let path = index_path(index, &format!("_doc/{id}"));
    let reply = client.send(action, Method::Get, &path, query, None).await?;
    if reply.status == 404 {
        return Ok(None);
    }
    #[derive(Deserialize)]
    struct Found<T> {
        #[serde(rename = "_source")]
        source: Option<T>,
    }
    Ok(reply.json::<Found<T>>(action)?.source)
}

/// The version stamp of one document (its version fields only); `None` when the index does not
/// hold it. A document with malformed version fields gets a stamp no object has, and one whose
/// embedding failed [`VersionStamp::UNFINISHED`](crate::sink::VersionStamp::UNFINISHED), as in
/// a scan.
pub(super) async fn version(
    client: &Client,
    index: &str,
    id: DocId,
) -> Result<Option<crate::sink::VersionStamp>, OpensearchError> {
    let action = format!("reading the version of document {id} of index {index}");
    let query = [(
        "_source_includes",
        "etag,last_modified,size_in_bytes,embedding_error",
    )];
    let source: Option<serde_json::Map<String, Value>> =
        get_source(client, index, id, &query, &action).await?;
    Ok(source.map(|source| super::scan::stamp(&source)))
}

/// The document with this id, if the index holds it (as of the last refresh).
pub(super) async fn get(
    client: &Client,
    index: &str,
    id: DocId,
) -> Result<Option<Document>, OpensearchError> {
    let action = format!("reading document {id} of index {index}");
    let Some(stored) = get_source::<Stored>(client, index, id, &[], &action).await? else {
        return Ok(None);
    };
    let invalid = |detail: String| OpensearchError::InvalidResponse {
        action: action.clone(),
        detail,
    };
    Ok(Some(Document {
        id: DocId::from_hex(&stored.id)
            .ok_or_else(|| invalid(format!("the stored id {:?} is not ours", stored.id)))?,
        content_status: ContentStatus::parse(&stored.content_status).ok_or_else(|| {
            invalid(format!(
                "unknown content_status {:?}",
                stored.content_status
            ))
        })?,
        bucket: stored.bucket,
        key: stored.key,
        filename: stored.filename,
        extension: stored.extension,
        size_in_bytes: stored.size_in_bytes,
        last_modified: stored.last_modified,
        etag: stored.etag,
        content_type: stored.content_type,
        storage_class: stored.storage_class,
        url: stored.url,
        title: stored.title,
        body: stored.body,
        extraction_error: stored.extraction_error,
        indexed_at: stored.indexed_at,
        attributes: stored.attributes,
        passages: Vec::new(),
        embedding_error: stored.embedding_error,
    }))
}

/// How many documents the index holds (as of the last refresh).
pub(super) async fn count(client: &Client, index: &str) -> Result<u64, OpensearchError> {
    let action = format!("counting the documents of index {index}");
    #[derive(Deserialize)]
    struct Counted {
        count: u64,
    }
    let path = index_path(index, "_count");
    let reply = client.send(&action, Method::Get, &path, &[], None).await?;
    Ok(reply.json::<Counted>(&action)?.count)
}
