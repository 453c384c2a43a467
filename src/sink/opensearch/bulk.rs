//! Bulk writes: encoding index and delete operations, cutting them into requests by count and
//! bytes, sending a few requests at a time, and reading every item of every answer.
//!
//! The contract with the caller is that no operation is lost: each one is written, or comes
//! back rejected with its reason (a document reason such as a mapping error, or throttling that
//! outlasted every retry), or the whole call fails. Items that failed with 429 or 5xx are sent
//! again alone, never the whole request; whole requests that failed transiently are sent again
//! as they are. Both kinds of retry share the `max_retries` budget of one request.

use std::ops::Range;
use std::sync::Mutex;

use ::opensearch::http::Method;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt as _, stream};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client::{Body, Client, Request, index_path};
use super::error::{OpensearchError, describe_error};
use crate::sink::{DocId, Document, RejectedDocuments};

/// Only what is needed of each item: its status and error.
const FILTER_PATH: &str = "errors,items.*._id,items.*.status,items.*.error";

/// One encoded bulk operation: its action line and, for `index`, the document line, each ending
/// in a newline.
#[derive(Clone, Debug)]
pub(super) struct Operation {
    /// The document it concerns.
    pub id: DocId,
    /// NDJSON text.
    pub ndjson: Bytes,
}

impl Operation {
    /// `index` (create or replace) of `document` under its id, with the count of its passages
    /// when it has any (they are written to the passage index, not here).
    pub(super) fn index(document: &Document) -> Result<Self, serde_json::Error> {
        #[derive(Serialize)]
        struct Stored<'a> {
            #[serde(flatten)]
            document: &'a Document,
            #[serde(skip_serializing_if = "Option::is_none")]
            passage_count: Option<usize>,
        }
        let stored = Stored {
            document,
            passage_count: (!document.passages.is_empty()).then_some(document.passages.len()),
        };
        Self::with_source(document.id, &document.id.to_hex(), &stored)
    }

    /// `index` of `source` under `_id` `id_text`, concerning the document `id`.
    pub(super) fn with_source(
        id: DocId,
        id_text: &str,
        source: &impl Serialize,
    ) -> Result<Self, serde_json::Error> {
        let mut ndjson = format!("{{\"index\":{{\"_id\":\"{id_text}\"}}}}\n").into_bytes();
        serde_json::to_writer(&mut ndjson, source)?;
        ndjson.push(b'\n');
        Ok(Self {
            id,
            ndjson: ndjson.into(),
        })
    }

    /// `delete` of the document `id`.
    pub(super) fn delete(id: DocId) -> Self {
        Self {
            id,
            ndjson: format!("{{\"delete\":{{\"_id\":\"{id}\"}}}}\n").into(),
        }
    }
}

/// Cuts operations of these sizes (bytes) into consecutive requests of at most `max_docs`
/// operations and `max_bytes` bytes; an operation larger than `max_bytes` goes alone.
pub(super) fn chunks(sizes: &[usize], max_docs: usize, max_bytes: u64) -> Vec<Range<usize>> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (position, size) in sizes.iter().enumerate() {
        let size = *size as u64;
        let full = position - start >= max_docs || bytes + size > max_bytes;
        if position > start && full {
            chunks.push(start..position);
            (start, bytes) = (position, 0);
        }
        bytes += size;
    }
    if start < sizes.len() {
        chunks.push(start..sizes.len());
    }
    chunks
}

/// What became of one item of a bulk answer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ItemOutcome {
    /// Written (or, for a delete, already gone).
    Done,
    /// Failed with 429 or 5xx: worth sending again. Holds "status type: reason".
    Retry(String),
    /// Refused for a reason of its own (400 mapping error, ...). Holds "status type: reason".
    Rejected(String),
}

#[derive(Deserialize)]
struct BulkAnswer {
    #[serde(default)]
    items: Vec<std::collections::HashMap<String, Item>>,
}

#[derive(Deserialize)]
struct Item {
    status: u16,
    #[serde(default)]
    error: Option<Value>,
}

/// Reads a bulk answer to `sent` operations: one outcome per operation, in request order.
pub(super) fn item_outcomes(body: &[u8], sent: usize) -> Result<Vec<ItemOutcome>, String> {
    let answer: BulkAnswer = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if answer.items.len() != sent {
        return Err(format!(
            "{} items answered for {sent} operations sent",
            answer.items.len()
        ));
    }
    answer
        .items
        .into_iter()
        .map(|item| {
            let (action, item) = item
                .into_iter()
                .next()
                .ok_or_else(|| "an item without an action".to_owned())?;
            Ok(classify(&action, &item))
        })
        .collect()
}

fn classify(action: &str, item: &Item) -> ItemOutcome {
    let status = item.status;
    if (200..300).contains(&status) || (action == "delete" && status == 404) {
        return ItemOutcome::Done;
    }
    let reason = match item.error.as_ref().map(describe_error) {
        Some((Some(kind), reason)) => format!("{status} {kind}: {reason}"),
        Some((None, reason)) => format!("{status}: {reason}"),
        None => format!("{status}"),
    };
    if status == 429 || status >= 500 {
        ItemOutcome::Retry(reason)
    } else {
        ItemOutcome::Rejected(reason)
    }
}

/// Writes operations to one index.
pub(super) struct BulkWriter<'a> {
    /// The cluster.
    pub client: &'a Client,
    /// The index written.
    pub index: &'a str,
    /// Most operations per request.
    pub max_docs: usize,
    /// Most bytes per request.
    pub max_bytes: u64,
    /// Requests in flight.
    pub concurrency: usize,
}

/// The state of one request across its attempts.
struct Attempts {
    /// Operations still to write, with the last error of each.
    pending: Vec<(Operation, Option<String>)>,
    rejected: RejectedDocuments,
    made: u32,
}

impl BulkWriter<'_> {
    /// Writes every operation. `Ok` holds the operations refused for a reason of their own or
    /// still failing after every retry; `Err` means a whole request kept failing (some of the
    /// operations may have been written).
    pub(super) async fn write(
        &self,
        operations: Vec<Operation>,
    ) -> Result<RejectedDocuments, OpensearchError> {
        let sizes: Vec<usize> = operations.iter().map(|op| op.ndjson.len()).collect();
        let mut operations = operations.into_iter();
        let requests: Vec<Vec<Operation>> = chunks(&sizes, self.max_docs, self.max_bytes)
            .into_iter()
            .map(|range| operations.by_ref().take(range.len()).collect())
            .collect();
        let mut answers = stream::iter(requests)
            .map(|request| self.send_request(request))
            .buffer_unordered(self.concurrency);
        let mut rejected = RejectedDocuments::new();
        while let Some(answer) = answers.next().await {
            rejected.extend(answer?);
        }
        Ok(rejected)
    }

    /// Sends one request under the retry policy; a request the cluster finds too large (413)
    /// is halved until it fits, and a single operation that does not fit is rejected.
    async fn send_request(
        &self,
        operations: Vec<Operation>,
    ) -> Result<RejectedDocuments, OpensearchError> {
        let attempts = Mutex::new(Attempts {
            pending: operations.into_iter().map(|op| (op, None)).collect(),
            rejected: RejectedDocuments::new(),
            made: 0,
        });
        let outcome = self
            .client
            .retry
            .run(
                || self.attempt(&attempts),
                |error, delay| self.client.note_retry(error, delay),
            )
            .await;
        let Attempts {
            pending,
            mut rejected,
            made,
        } = attempts.into_inner().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok(()) => {}
            Err(OpensearchError::ItemsFailed { .. }) => {
                for (operation, last) in pending {
                    let last = last.unwrap_or_default();
                    rejected.push((
                        operation.id,
                        format!("still failing after {made} attempt(s): {last}"),
                    ));
                }
            }
            Err(error) if error.status_code() == Some(413) && pending.len() > 1 => {
                let mut first: Vec<Operation> = pending.into_iter().map(|(op, _)| op).collect();
                let second = first.split_off(first.len() / 2);
                for half in [first, second] {
                    rejected.extend(Box::pin(self.send_request(half)).await?);
                }
            }
            Err(error) if error.status_code() == Some(413) => {
                for (operation, _) in pending {
                    rejected.push((
                        operation.id,
                        format!(
                            "the document is larger than the cluster accepts in one request \
                             (raise http.max_content_length, or lower max_content_bytes): {error}"
                        ),
                    ));
                }
            }
            Err(error) => return Err(error),
        }
        Ok(rejected)
    }

    /// One attempt: sends what is pending and sorts the items of the answer.
    async fn attempt(&self, attempts: &Mutex<Attempts>) -> Result<(), OpensearchError> {
        let (body, sent) = {
            let mut attempts = attempts.lock().unwrap_or_else(|e| e.into_inner());
            attempts.made += 1;
            let size = attempts.pending.iter().map(|(op, _)| op.ndjson.len()).sum();
            let mut body = BytesMut::with_capacity(size);
            for (operation, _) in &attempts.pending {
                body.extend_from_slice(&operation.ndjson);
            }
            (Body::NdJson(body.freeze()), attempts.pending.len())
        };
        let action = format!("writing {sent} operation(s) to index {}", self.index);
        let request = Request {
            method: Method::Post,
            path: &index_path(self.index, "_bulk"),
            query: &[("filter_path", FILTER_PATH)],
            body: Some(&body),
        };
        let reply = self.client.send_once(&action, request).await?;
        if !reply.is_success() {
            return Err(reply.into_error(&action));
        }
        let outcomes = item_outcomes(&reply.body, sent).map_err(|detail| {
            OpensearchError::InvalidResponse {
                action: action.clone(),
                detail,
            }
        })?;
        let mut attempts = attempts.lock().unwrap_or_else(|e| e.into_inner());
        let pending = std::mem::take(&mut attempts.pending);
        let mut last = String::new();
        for ((operation, _), outcome) in pending.into_iter().zip(outcomes) {
            match outcome {
                ItemOutcome::Done => {}
                ItemOutcome::Rejected(reason) => attempts.rejected.push((operation.id, reason)),
                ItemOutcome::Retry(reason) => {
                    last.clone_from(&reason);
                    attempts.pending.push((operation, Some(reason)));
                }
            }
        }
        if attempts.pending.is_empty() {
            Ok(())
        } else {
            Err(OpensearchError::ItemsFailed {
                failed: attempts.pending.len(),
                attempts: attempts.made,
                last,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_count_and_bytes_and_send_an_oversized_operation_alone() {
        // (operation sizes, max_docs, max_bytes, operations per request)
        type Case = (&'static [usize], usize, u64, &'static [usize]);
        let cases: &[Case] = &[
            (&[], 10, 100, &[]),
            (&[10, 10, 10], 10, 100, &[3]),
            (&[10, 10, 10, 10, 10], 2, 100, &[2, 2, 1]),
            (&[40, 40, 40], 10, 100, &[2, 1]),
            (&[50, 50, 1], 10, 100, &[2, 1]),
            (&[10, 500, 10], 10, 100, &[1, 1, 1]),
            (&[500], 10, 100, &[1]),
            (&[100, 1], 1, 100, &[1, 1]),
        ];
        for (sizes, max_docs, max_bytes, expected) in cases {
            let ranges = chunks(sizes, *max_docs, *max_bytes);
            let lengths: Vec<usize> = ranges.iter().map(ExactSizeIterator::len).collect();
            assert_eq!(
                lengths, *expected,
                "{sizes:?} max_docs={max_docs} max_bytes={max_bytes}"
            );
            let mut next = 0;
            for range in ranges {
                assert_eq!(range.start, next, "consecutive: {sizes:?}");
                next = range.end;
            }
        }
    }

    #[test]
    fn every_item_is_sorted_into_done_retry_or_rejected() {
        let body = br#"{"errors":true,"items":[
            {"index":{"_id":"a","status":201}},
            {"index":{"_id":"b","status":200}},
            {"index":{"_id":"c","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution"}}},
            {"index":{"_id":"d","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [size_in_bytes]","caused_by":{"type":"illegal_argument_exception","reason":"out of range"}}}},
            {"index":{"_id":"e","status":503,"error":{"type":"unavailable_shards_exception","reason":"primary shard is not active"}}},
            {"delete":{"_id":"f","status":404}},
            {"delete":{"_id":"g","status":200}},
            {"index":{"_id":"h","status":404,"error":{"type":"index_not_found_exception","reason":"no such index [x]"}}},
            {"index":{"_id":"i","status":409}}
        ]}"#;
        assert_eq!(
            item_outcomes(body, 9).unwrap(),
            [
                ItemOutcome::Done,
                ItemOutcome::Done,
                ItemOutcome::Retry("429 es_rejected_execution_exception: rejected execution".into()),
                ItemOutcome::Rejected(
                    "400 mapper_parsing_exception: failed to parse field [size_in_bytes]: out of range"
                        .into()
                ),
                ItemOutcome::Retry(
                    "503 unavailable_shards_exception: primary shard is not active".into()
                ),
                ItemOutcome::Done,
                ItemOutcome::Done,
                ItemOutcome::Rejected("404 index_not_found_exception: no such index [x]".into()),
                ItemOutcome::Rejected("409".into()),
            ]
        );
    }

    #[test]
    fn answers_that_do_not_match_the_request_are_errors() {
        let two =
            br#"{"errors":false,"items":[{"index":{"status":201}},{"index":{"status":201}}]}"#;
        assert!(item_outcomes(two, 2).is_ok());
        assert!(
            item_outcomes(two, 3)
                .unwrap_err()
                .contains("2 items answered for 3")
        );
        assert!(item_outcomes(b"<html>", 1).is_err());
        assert!(item_outcomes(br#"{"items":[{}]}"#, 1).is_err());
    }

    #[test]
    fn operations_are_one_action_line_and_one_source_line() {
        let id = DocId::of("b", "k");
        let delete = Operation::delete(id);
        assert_eq!(
            std::str::from_utf8(&delete.ndjson).unwrap(),
            format!("{{\"delete\":{{\"_id\":\"{id}\"}}}}\n")
        );
    }
}
