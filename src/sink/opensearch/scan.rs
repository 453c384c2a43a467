//! Reading back what an index holds, for the incremental sync: a bucket's documents in key
//! order, a page at a time, and the buckets that have documents.
//!
//! A page is a search sorted on the `key` keyword (Lucene orders keywords by their UTF-8 bytes,
//! as S3 orders a listing) with `search_after` the last key of the previous page. The cursor is
//! the key, so every page is one request retried alone, no point in time or scroll has to stay
//! open while a slow sync downloads (a point in time expires after its keep-alive), and the
//! sync's own writes, all behind the cursor, never show up ahead of it. Only `key`, `etag`,
//! `last_modified`, `size_in_bytes` and `embedding_error` are fetched: memory holds one page,
//! whatever the bucket. Passages live in another index (`passages`), so no scan sees them.

use ::opensearch::http::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::client::{Body, Client, index_path};
use super::error::OpensearchError;
use crate::sink::{DocId, IndexedEntry, ScanFrom, VersionStamp};

/// Hits per page of the bucket listing.
pub(super) const PAGE_SIZE: usize = 1000;
/// The fields an entry is made of.
const ENTRY_FIELDS: [&str; 5] = [
    "key",
    "etag",
    "last_modified",
    "size_in_bytes",
    "embedding_error",
];

/// One page of a search answer: its hits.
#[derive(Deserialize)]
pub(super) struct Page {
    pub hits: Hits,
}

/// The `hits` object of a search answer.
#[derive(Deserialize)]
pub(super) struct Hits {
    pub hits: Vec<Hit>,
}

/// One hit: its id, score and the fields asked for.
#[derive(Deserialize)]
pub(super) struct Hit {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default, rename = "_score")]
    pub score: Option<f32>,
    #[serde(default, rename = "_source")]
    pub source: Map<String, Value>,
    /// Highlighted fragments per field, when the search asked for them.
    #[serde(default)]
    pub highlight: Map<String, Value>,
}

/// The stamp of a stored document. A document whose version fields are missing or malformed
/// gets a stamp no listing entry can have, so the sync rewrites it (or deletes it) instead of
/// trusting it; one whose embedding failed is [`VersionStamp::UNFINISHED`], so the sync embeds
/// it again.
pub(super) fn stamp(source: &Map<String, Value>) -> VersionStamp {
    if source
        .get("embedding_error")
        .is_some_and(|error| !error.is_null())
    {
        return VersionStamp::UNFINISHED;
    }
    let etag = source.get("etag").and_then(Value::as_str);
    let last_modified = source
        .get("last_modified")
        .and_then(Value::as_str)
        .and_then(|text| OffsetDateTime::parse(text, &Rfc3339).ok());
    let size = source.get("size_in_bytes").and_then(Value::as_u64);
    match (etag, last_modified, size) {
        (Some(etag), Some(last_modified), Some(size)) => {
            VersionStamp::of(etag, last_modified, size)
        }
        _ => VersionStamp::of("", OffsetDateTime::UNIX_EPOCH, u64::MAX),
    }
}

/// The entries of a page of hits, and the count of hits left alone: hits whose id is not an
/// s3-connector id. A hit without a key ends the page: the sort puts documents without one
/// after every key, so nothing keyed follows it.
fn entries(hits: Vec<Hit>) -> (Vec<IndexedEntry>, usize) {
    let mut entries = Vec::with_capacity(hits.len());
    let mut foreign = 0;
    for hit in hits {
        let Some(key) = hit.source.get("key").and_then(Value::as_str) else {
            break;
        };
        match DocId::from_hex(&hit.id) {
            Some(id) => entries.push(IndexedEntry {
                key: key.to_owned(),
                id,
                version: stamp(&hit.source),
                last_modified: hit
                    .source
                    .get("last_modified")
                    .and_then(Value::as_str)
                    .and_then(|text| OffsetDateTime::parse(text, &Rfc3339).ok()),
            }),
            None => foreign += 1,
        }
    }
    (entries, foreign)
}

/// The first `limit` documents of `bucket` in `index` from `from`, in key order. Documents whose `_id` is not an s3-connector id are left out (and left alone), as
/// are documents without a key.
pub(super) async fn page(
    client: &Client,
    index: &str,
    bucket: &str,
    from: ScanFrom<'_>,
    limit: usize,
) -> Result<Vec<IndexedEntry>, OpensearchError> {
    let action = format!("reading the documents of bucket {bucket} from index {index}");
    let mut request = json!({
        "size": limit,
        "_source": ENTRY_FIELDS,
        "query": {"term": {"bucket": bucket}},
        // Keys are unique within a bucket, so they order the pages without a tie-breaker.
        "sort": [{"key": {"order": "asc", "missing": "_last"}}],
        "track_total_hits": false,
    });
    match from {
        ScanFrom::Start => {}
        ScanFrom::After(after) => request["search_after"] = json!([after]),
        // `search_after` is exclusive; a range on the keyword compares the same bytes.
        ScanFrom::AtLeast(first) => {
            request["query"] = json!({"bool": {"filter": [
                {"term": {"bucket": bucket}},
                {"range": {"key": {"gte": first}}},
            ]}});
        }
    }
    let Some(page) = search::<Page>(client, &action, index, &request).await? else {
        return Ok(Vec::new());
    };
    let (entries, foreign) = entries(page.hits.hits);
    if foreign > 0 {
        tracing::warn!(
            message = "Documents whose id is not an s3-connector id were left alone.",
            index,
            bucket,
            count = foreign
        );
    }
    Ok(entries)
}

/// The answer of `_search` with `request` on `index`; `None` when the index does not exist.
async fn search<T: DeserializeOwned>(
    client: &Client,
    action: &str,
    index: &str,
    request: &Value,
) -> Result<Option<T>, OpensearchError> {
    let path = index_path(index, "_search");
    let body = Body::json(request);
    let reply = client
        .send(action, Method::Post, &path, &[], Some(&body))
        .await?;
    if reply.status == 404 {
        return Ok(None);
    }
    reply.json(action).map(Some)
}

/// Every value of `bucket` in `index`, through a composite aggregation a page at a time.
pub(super) async fn buckets(client: &Client, index: &str) -> Result<Vec<String>, OpensearchError> {
    let action = format!("listing the buckets of index {index}");
    let mut buckets = Vec::new();
    let mut after: Option<Value> = None;
    loop {
        let mut composite = json!({
            "size": PAGE_SIZE,
            "sources": [{"bucket": {"terms": {"field": "bucket"}}}],
        });
        if let Some(after) = after.take() {
            composite["after"] = after;
        }
        let request = json!({"size": 0, "aggs": {"buckets": {"composite": composite}}});
        let Some(answer) = search::<Value>(client, &action, index, &request).await? else {
            return Ok(Vec::new());
        };
        let aggregation = &answer["aggregations"]["buckets"];
        let page =
            aggregation["buckets"]
                .as_array()
                .ok_or_else(|| OpensearchError::InvalidResponse {
                    action: action.clone(),
                    detail: "no composite aggregation in the answer".to_owned(),
                })?;
        for entry in page {
            if let Some(name) = entry["key"]["bucket"].as_str() {
                buckets.push(name.to_owned());
            }
        }
        match aggregation.get("after_key") {
            Some(key) if page.len() == PAGE_SIZE => after = Some(key.clone()),
            _ => break,
        }
    }
    buckets.sort();
    Ok(buckets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_match_the_document_they_were_read_from_and_malformed_ones_match_nothing() {
        let last_modified = OffsetDateTime::parse("2024-05-01T10:20:30.123Z", &Rfc3339).unwrap();
        let source = |value: Value| value.as_object().unwrap().clone();
        let good = source(json!({
            "etag": "\"abc\"", "last_modified": "2024-05-01T10:20:30.123Z", "size_in_bytes": 42
        }));
        assert_eq!(stamp(&good), VersionStamp::of("\"abc\"", last_modified, 42));
        let unmatchable = VersionStamp::of("", OffsetDateTime::UNIX_EPOCH, u64::MAX);
        for broken in [
            json!({"last_modified": "2024-05-01T10:20:30Z", "size_in_bytes": 42}),
            json!({"etag": "\"abc\"", "last_modified": 1714558830123u64, "size_in_bytes": 42}),
            json!({"etag": "\"abc\"", "last_modified": "yesterday", "size_in_bytes": 42}),
            json!({"etag": "\"abc\"", "last_modified": "2024-05-01T10:20:30Z", "size_in_bytes": "42"}),
            json!({}),
        ] {
            assert_eq!(stamp(&source(broken.clone())), unmatchable, "{broken}");
        }
        let mut unfinished = good.clone();
        unfinished.insert("embedding_error".into(), json!("the endpoint answered 500"));
        assert_eq!(stamp(&unfinished), VersionStamp::UNFINISHED);
        unfinished.insert("embedding_error".into(), Value::Null);
        assert_eq!(stamp(&unfinished), stamp(&good));
    }

    #[test]
    fn hits_with_foreign_ids_are_counted_not_kept_and_a_hit_without_a_key_ends_the_page() {
        let page: Page = serde_json::from_value(json!({"hits": {"hits": [
            {"_id": DocId::of("b", "k").to_hex(), "_source": {"key": "k", "etag": "e"}},
            {"_id": "not-ours", "_source": {"key": "l"}},
            {"_id": DocId::of("b", "m").to_hex(), "_source": {"key": "m"}},
            {"_id": DocId::of("b", "n").to_hex(), "_source": {"etag": "e"}},
            {"_id": DocId::of("b", "o").to_hex(), "_source": {"key": "o"}},
        ]}}))
        .unwrap();
        let (entries, foreign) = entries(page.hits.hits);
        assert_eq!(foreign, 1);
        let keys: Vec<(&str, DocId)> = entries.iter().map(|e| (e.key.as_str(), e.id)).collect();
        assert_eq!(
            keys,
            [("k", DocId::of("b", "k")), ("m", DocId::of("b", "m"))]
        );
    }
}
