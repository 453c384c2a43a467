//! Reading back what an index holds, for the incremental sync: the version stamp of every
//! document of a bucket, and the buckets that have documents.
//!
//! Versions are read with a point in time and `search_after` (consistent, and each page can be
//! retried alone), falling back to a scroll on clusters without point-in-time search (before
//! OpenSearch 2.4). Only `etag`, `last_modified` and `size_in_bytes` are fetched, a page at a
//! time, so memory grows with the number of documents, not their size.

use std::collections::HashMap;

use ::opensearch::http::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::client::{Body, Client, index_path};
use super::error::OpensearchError;
use crate::sink::{DocId, KeyFilter, VersionStamp};

/// Hits per page.
pub(super) const PAGE_SIZE: usize = 1000;
/// How long the cluster keeps a point in time or scroll between two pages.
const KEEP_ALIVE: &str = "5m";
/// The fields a version stamp is made of.
const VERSION_FIELDS: [&str; 3] = ["etag", "last_modified", "size_in_bytes"];

/// One page of a search answer: its hits and, for a point in time or scroll, the id of the
/// next page.
#[derive(Deserialize)]
pub(super) struct Page {
    #[serde(default)]
    pit_id: Option<String>,
    #[serde(default, rename = "_scroll_id")]
    scroll_id: Option<String>,
    pub hits: Hits,
}

/// The `hits` object of a search answer.
#[derive(Deserialize)]
pub(super) struct Hits {
    pub hits: Vec<Hit>,
}

/// One hit: its id, score, the fields asked for, and its sort values.
#[derive(Deserialize)]
pub(super) struct Hit {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default, rename = "_score")]
    pub score: Option<f32>,
    #[serde(default, rename = "_source")]
    pub source: Map<String, Value>,
    #[serde(default)]
    sort: Option<Value>,
}

/// The fields read for a shard's part: the version fields and the key to filter on.
const VERSION_AND_KEY_FIELDS: [&str; 4] = ["etag", "last_modified", "size_in_bytes", "key"];

/// Collects the stamps of pages of hits, counting hits whose id is not one of ours; with a
/// filter, only of hits whose key it accepts.
#[derive(Default)]
struct Versions<'a> {
    map: HashMap<DocId, VersionStamp>,
    foreign: usize,
    owns: Option<&'a KeyFilter>,
}

impl Versions<'_> {
    fn add(&mut self, hits: &[Hit]) {
        for hit in hits {
            if let Some(owns) = self.owns {
                let key = hit.source.get("key").and_then(Value::as_str);
                // A document without a key is no shard's: leave it alone.
                if !key.is_some_and(|key| owns.accepts(key)) {
                    continue;
                }
            }
            match DocId::from_hex(&hit.id) {
                Some(id) => {
                    self.map.insert(id, stamp(&hit.source));
                }
                None => self.foreign += 1,
            }
        }
    }

    /// The `_source` fields to fetch.
    fn fields(&self) -> &'static [&'static str] {
        if self.owns.is_some() {
            &VERSION_AND_KEY_FIELDS
        } else {
            &VERSION_FIELDS
        }
    }

    fn finish(self, index: &str, bucket: &str) -> HashMap<DocId, VersionStamp> {
        if self.foreign > 0 {
            tracing::warn!(
                message = "Documents whose id is not an s3-connector id were left alone.",
                index,
                bucket,
                count = self.foreign
            );
        }
        self.map
    }
}

/// The stamp of a stored document. A document whose version fields are missing or malformed
/// gets a stamp no listing entry can have, so the sync rewrites it (or deletes it) instead of
/// trusting it.
pub(super) fn stamp(source: &Map<String, Value>) -> VersionStamp {
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

/// How a point in time could be opened.
enum PointInTime {
    Opened(String),
    /// The cluster has no point-in-time search (or refuses it): use a scroll.
    Unsupported(OpensearchError),
    /// The index does not exist: it holds nothing.
    NoIndex,
}

/// The version stamp of every document of `bucket` in `index` (whose key `owns` accepts, when
/// given).
pub(super) async fn versions(
    client: &Client,
    index: &str,
    bucket: &str,
    owns: Option<&KeyFilter>,
) -> Result<HashMap<DocId, VersionStamp>, OpensearchError> {
    let query = versions_query(bucket, owns);
    let empty = || Versions {
        owns,
        ..Versions::default()
    };
    let versions = match open_point_in_time(client, index).await? {
        PointInTime::NoIndex => return Ok(HashMap::new()),
        PointInTime::Opened(pit) => scan_point_in_time(client, index, &query, pit, empty()).await?,
        PointInTime::Unsupported(error) => {
            tracing::info!(
                message = "Point-in-time search is not available; reading versions with a scroll.",
                index,
                %error
            );
            client
                .retry
                .run(
                    || scan_scroll(client, index, &query, empty()),
                    |error, delay| client.note_retry(error, delay),
                )
                .await?
        }
    };
    Ok(versions.finish(index, bucket))
}

/// The documents of `bucket`; with a filter whose owned keys lie in a range, only that range
/// (`key` is a keyword field: its range query compares bytes, as S3 orders keys).
fn versions_query(bucket: &str, owns: Option<&KeyFilter>) -> Value {
    let bucket_term = json!({"term": {"bucket": bucket}});
    let (after, through) = owns.map_or((None, None), KeyFilter::range);
    if after.is_none() && through.is_none() {
        return bucket_term;
    }
    let mut range = Map::new();
    if let Some(after) = after {
        range.insert("gt".into(), json!(after));
    }
    if let Some(through) = through {
        range.insert("lte".into(), json!(through));
    }
    json!({"bool": {"filter": [bucket_term, {"range": {"key": range}}]}})
}

async fn open_point_in_time(client: &Client, index: &str) -> Result<PointInTime, OpensearchError> {
    let action = format!("opening a point in time on index {index}");
    let reply = client
        .send(
            &action,
            Method::Post,
            &index_path(index, "_search/point_in_time"),
            &[("keep_alive", KEEP_ALIVE)],
            None,
        )
        .await?;
    if reply.is_success() {
        #[derive(Deserialize)]
        struct Opened {
            pit_id: String,
        }
        let opened: Opened = reply.json(&action)?;
        return Ok(PointInTime::Opened(opened.pit_id));
    }
    let error = reply.into_error(&action);
    match error.status_code() {
        _ if error.kind() == Some("index_not_found_exception") => Ok(PointInTime::NoIndex),
        Some(400..=499) => Ok(PointInTime::Unsupported(error)),
        _ => Err(error),
    }
}

/// Pages through the point in time with `search_after`; every page is retried alone. The point
/// in time is closed at the end, whatever happened.
async fn scan_point_in_time<'a>(
    client: &Client,
    index: &str,
    query: &Value,
    mut pit: String,
    mut versions: Versions<'a>,
) -> Result<Versions<'a>, OpensearchError> {
    let action = format!("reading document versions of index {index}");
    let mut search_after: Option<Value> = None;
    let result = loop {
        let mut request = json!({
            "size": PAGE_SIZE,
            "_source": versions.fields(),
            "query": query,
            "pit": {"id": pit, "keep_alive": KEEP_ALIVE},
            // Our ids are unique, so they order the pages without a tie-breaker.
            "sort": [{"id": "asc"}],
            "track_total_hits": false,
        });
        if let Some(after) = search_after.take() {
            request["search_after"] = after;
        }
        let reply = client
            .send(
                &action,
                Method::Post,
                "/_search",
                &[],
                Some(&Body::json(&request)),
            )
            .await;
        let page: Page = match reply.and_then(|reply| reply.json(&action)) {
            Ok(page) => page,
            Err(error) => break Err(error),
        };
        if let Some(next) = page.pit_id {
            pit = next;
        }
        versions.add(&page.hits.hits);
        match page.hits.hits.last().and_then(|hit| hit.sort.clone()) {
            Some(sort) if page.hits.hits.len() == PAGE_SIZE => search_after = Some(sort),
            _ => break Ok(versions),
        }
    };
    let close = format!("closing a point in time on index {index}");
    let body = Body::json(&json!({"pit_id": [pit]}));
    if let Err(error) = client
        .send_once(
            &close,
            Method::Delete,
            "/_search/point_in_time",
            &[],
            Some(&body),
        )
        .await
    {
        // It expires by itself after KEEP_ALIVE.
        tracing::debug!(message = "Could not close a point in time.", %error);
    }
    result
}

/// Reads every page of a scroll. A failed page fails the whole scan, which the caller starts
/// over: a scroll page cannot be asked for twice, and a lost answer would skip documents.
async fn scan_scroll<'a>(
    client: &Client,
    index: &str,
    query: &Value,
    mut versions: Versions<'a>,
) -> Result<Versions<'a>, OpensearchError> {
    let action = format!("reading document versions of index {index} with a scroll");
    let request = json!({
        "size": PAGE_SIZE,
        "_source": versions.fields(),
        "query": query,
        "sort": ["_doc"],
    });
    let reply = client
        .send_once(
            &action,
            Method::Post,
            &index_path(index, "_search"),
            &[("scroll", KEEP_ALIVE)],
            Some(&Body::json(&request)),
        )
        .await?;
    if reply.status == 404 {
        return Ok(versions);
    }
    let mut page: Page = reply.json(&action)?;
    let mut scroll_id = None;
    let result = loop {
        versions.add(&page.hits.hits);
        scroll_id = page.scroll_id.take().or(scroll_id);
        let Some(id) = scroll_id.as_ref().filter(|_| !page.hits.hits.is_empty()) else {
            break Ok(versions);
        };
        let next = Body::json(&json!({"scroll": KEEP_ALIVE, "scroll_id": id}));
        let reply = client
            .send_once(&action, Method::Post, "/_search/scroll", &[], Some(&next))
            .await;
        page = match reply.and_then(|reply| reply.json(&action)) {
            Ok(page) => page,
            Err(error) => break Err(error),
        };
    };
    if let Some(id) = scroll_id {
        let body = Body::json(&json!({"scroll_id": [id]}));
        let close = format!("clearing a scroll on index {index}");
        if let Err(error) = client
            .send_once(&close, Method::Delete, "/_search/scroll", &[], Some(&body))
            .await
        {
            tracing::debug!(message = "Could not clear a scroll.", %error);
        }
    }
    result
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
        let reply = client
            .send(
                &action,
                Method::Post,
                &index_path(index, "_search"),
                &[],
                Some(&Body::json(&request)),
            )
            .await?;
        if reply.status == 404 {
            return Ok(Vec::new());
        }
        let answer: Value = reply.json(&action)?;
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
    }

    #[test]
    fn hits_with_foreign_ids_are_counted_not_kept() {
        let page: Page = serde_json::from_value(json!({"hits": {"hits": [
            {"_id": DocId::of("b", "k").to_hex(), "_source": {"etag": "e"}, "sort": ["x"]},
            {"_id": "not-ours"},
        ]}}))
        .unwrap();
        let mut versions = Versions::default();
        versions.add(&page.hits.hits);
        assert_eq!(versions.foreign, 1);
        assert_eq!(versions.map.len(), 1);
        assert!(versions.map.contains_key(&DocId::of("b", "k")));
    }
}
