//! What a sync did: live counters while it runs, and the report at its end.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Counters a running sync updates and a progress display may read at any time.
#[derive(Debug, Default)]
pub struct Counters {
    /// Objects returned by listings.
    pub objects_listed: AtomicU64,
    /// Objects left out by the sync rules.
    pub excluded: AtomicU64,
    /// New documents written.
    pub added: AtomicU64,
    /// Changed documents rewritten.
    pub updated: AtomicU64,
    /// Objects indexed with this version already: not downloaded.
    pub unchanged: AtomicU64,
    /// Documents removed because their object left the bucket or the rules.
    pub deleted: AtomicU64,
    /// Deletions the mass-delete guard held back (see `max_delete_fraction`).
    pub deletions_held_back: AtomicU64,
    /// Documents written with metadata only (too large, unsupported, archived).
    pub metadata_only: AtomicU64,
    /// Documents written with an extraction error.
    pub extraction_errors: AtomicU64,
    /// Failures: listings, downloads, index writes.
    pub errors: AtomicU64,
    /// Event notifications received: keys named by the queue's messages (a message that cannot
    /// be read counts as one).
    pub events_received: AtomicU64,
    /// Events whose key's current state is committed to the index (indexed, deleted, unchanged
    /// or left out by the rules).
    pub events_applied: AtomicU64,
    /// Events that could not be applied, and messages that could not be read: their messages
    /// stay in the queue.
    pub events_failed: AtomicU64,
    /// Queue messages deleted after everything they asked for was committed.
    pub messages_deleted: AtomicU64,
    /// Keys applied again because their object changed in S3 between its HeadObject and the
    /// commit (another consumer, or a writer, was faster).
    pub events_reapplied: AtomicU64,
    /// Buckets listed with ListObjectsV2 because no complete S3 Inventory fresher than
    /// `max_age` was found (`inventory:` connectors only).
    pub inventory_fallbacks: AtomicU64,
    /// Documents the inventory did not list but kept, because their object was modified after
    /// the inventory was made.
    pub kept_after_inventory: AtomicU64,
    /// Passages turned into vectors by the model (`embedding:` connectors).
    pub passages_embedded: AtomicU64,
    /// Passages whose vector was reused from the index: same content hash, same model.
    pub passages_reused: AtomicU64,
    /// Requests to the embedding provider retried after transient errors.
    pub embedding_retries: AtomicU64,
    /// Documents whose passages were cut at `max_passages_per_document`.
    pub passages_capped: AtomicU64,
    /// Documents whose embedding failed: written for keyword search with `embedding_error`,
    /// embedded again by the next sync. Each is also counted in `errors`.
    pub embedding_failures: AtomicU64,
    error_messages: Mutex<Vec<String>>,
}

/// At most this many error messages are kept in a report; the count stays exact.
const MAX_ERROR_MESSAGES: usize = 100;

impl Counters {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a failure and its message.
    pub fn error(&self, message: String) {
        Self::bump(&self.errors);
        // Info, not error: the report carries every message, and `sync` prints its summary
        // (default log level warn), so one failure is shown once; the worker (default info)
        // still logs each one, and a failed sync as a whole at warn.
        tracing::info!(message = "Sync step failed.", error = %message);
        if let Ok(mut messages) = self.error_messages.lock()
            && messages.len() < MAX_ERROR_MESSAGES
        {
            messages.push(message);
        }
    }

    /// Failures other than documents whose embedding failed (those are written, and the next
    /// sync embeds them again): what decides whether a sync may bind the index to its source
    /// or record its embedding model.
    pub fn errors_besides_embedding(&self) -> u64 {
        Self::get(&self.errors).saturating_sub(Self::get(&self.embedding_failures))
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// One count of a sync, declared once: the report's field (and so its key in `sync --json`
/// and the history), its words in the one-line summaries (`sync`, its progress line, `status`)
/// and the Prometheus counter it feeds. [`COUNTS`] lists every count; a test checks that it
/// covers every count field of [`SyncReport`].
#[derive(Debug, Clone, Copy)]
pub struct Count {
    /// The report's field.
    pub field: &'static str,
    /// How summaries name it, after the number: `"12 listed"`.
    pub label: &'static str,
    /// Left out of summaries while zero (rare counts that would only add noise).
    pub quiet_when_zero: bool,
    /// The Prometheus counter it advances, with the counter's help text; `None` when it feeds
    /// none. Several counts may feed one counter (added and updated are both "indexed").
    pub metric: Option<(&'static str, &'static str)>,
    /// Reads the count from a report.
    pub of: fn(&SyncReport) -> u64,
}

/// Every count of a sync, in summary order.
pub const COUNTS: [Count; 26] = [
    Count {
        field: "objects_listed",
        label: "listed",
        quiet_when_zero: false,
        metric: Some((
            "s3c_objects_listed_total",
            "Objects returned by S3 listings.",
        )),
        of: |r| r.objects_listed,
    },
    Count {
        field: "added",
        label: "added",
        quiet_when_zero: false,
        metric: Some(INDEXED),
        of: |r| r.added,
    },
    Count {
        field: "updated",
        label: "updated",
        quiet_when_zero: false,
        metric: Some(INDEXED),
        of: |r| r.updated,
    },
    Count {
        field: "unchanged",
        label: "unchanged",
        quiet_when_zero: false,
        metric: Some((
            "s3c_objects_unchanged_total",
            "Objects already indexed with their current version (not downloaded).",
        )),
        of: |r| r.unchanged,
    },
    Count {
        field: "deleted",
        label: "deleted",
        quiet_when_zero: false,
        metric: Some((
            "s3c_objects_deleted_total",
            "Documents deleted because their object left the bucket or the sync rules.",
        )),
        of: |r| r.deleted,
    },
    // A gauge of its own (`s3c_deletions_held_back`): "held back now", not a running total.
    Count {
        field: "deletions_held_back",
        label: "deletions held back",
        quiet_when_zero: true,
        metric: None,
        of: |r| r.deletions_held_back,
    },
    Count {
        field: "excluded",
        label: "excluded",
        quiet_when_zero: true,
        metric: Some((
            "s3c_objects_excluded_total",
            "Objects left out by the sync rules.",
        )),
        of: |r| r.excluded,
    },
    Count {
        field: "metadata_only",
        label: "metadata only",
        quiet_when_zero: false,
        metric: Some((
            "s3c_objects_metadata_only_total",
            "Documents written with metadata only (too large, unsupported format, archived).",
        )),
        of: |r| r.metadata_only,
    },
    Count {
        field: "extraction_errors",
        label: "extraction errors",
        quiet_when_zero: false,
        metric: Some((
            "s3c_extraction_errors_total",
            "Documents written with an extraction error.",
        )),
        of: |r| r.extraction_errors,
    },
    Count {
        field: "errors",
        label: "errors",
        quiet_when_zero: false,
        metric: Some((
            "s3c_sync_errors_total",
            "Failures during syncs: listings, downloads, index writes.",
        )),
        of: |r| r.errors,
    },
    Count {
        field: "s3_requests",
        label: "S3 requests",
        quiet_when_zero: true,
        metric: Some((
            "s3c_s3_requests_total",
            "S3 requests sent, retries included.",
        )),
        of: |r| r.s3_requests,
    },
    Count {
        field: "s3_retries",
        label: "S3 retries",
        quiet_when_zero: true,
        metric: Some((
            "s3c_s3_retries_total",
            "S3 requests retried after a transient error.",
        )),
        of: |r| r.s3_retries,
    },
    Count {
        field: "index_retries",
        label: "index retries",
        quiet_when_zero: true,
        metric: Some((
            "s3c_index_retries_total",
            "Requests to the index (OpenSearch) retried after a transient error.",
        )),
        of: |r| r.index_retries,
    },
    Count {
        field: "bytes_downloaded",
        label: "bytes downloaded",
        quiet_when_zero: true,
        metric: Some((
            "s3c_bytes_downloaded_total",
            "Bytes of object content downloaded.",
        )),
        of: |r| r.bytes_downloaded,
    },
    // Event notifications (rounds of the queue consumer; 0 in a full sync).
    Count {
        field: "events_received",
        label: "events received",
        quiet_when_zero: true,
        metric: Some((
            "s3c_events_received_total",
            "Event notifications received: keys named by queue messages (an unreadable message counts as one).",
        )),
        of: |r| r.events_received,
    },
    Count {
        field: "events_applied",
        label: "events applied",
        quiet_when_zero: true,
        metric: Some((
            "s3c_events_applied_total",
            "Event notifications applied: the key's current state committed to the index.",
        )),
        of: |r| r.events_applied,
    },
    Count {
        field: "events_failed",
        label: "events failed",
        quiet_when_zero: true,
        metric: Some((
            "s3c_events_failed_total",
            "Event notifications not applied, and unreadable messages (their messages stay in the queue).",
        )),
        of: |r| r.events_failed,
    },
    Count {
        field: "messages_deleted",
        label: "messages deleted",
        quiet_when_zero: true,
        metric: Some((
            "s3c_event_messages_deleted_total",
            "Queue messages deleted after everything they asked for was committed.",
        )),
        of: |r| r.messages_deleted,
    },
    Count {
        field: "events_reapplied",
        label: "events re-applied",
        quiet_when_zero: true,
        metric: Some((
            "s3c_events_reapplied_total",
            "Event keys applied again because their object changed in S3 while they were applied.",
        )),
        of: |r| r.events_reapplied,
    },
    // S3 Inventory (`inventory:` connectors; 0 otherwise).
    Count {
        field: "inventory_fallbacks",
        label: "buckets listed without inventory",
        quiet_when_zero: true,
        metric: Some((
            "s3c_inventory_fallbacks_total",
            "Buckets of inventory connectors listed with ListObjectsV2 because no complete S3 Inventory fresher than max_age was found.",
        )),
        of: |r| r.inventory_fallbacks,
    },
    Count {
        field: "kept_after_inventory",
        label: "kept (newer than the inventory)",
        quiet_when_zero: true,
        metric: Some((
            "s3c_kept_after_inventory_total",
            "Documents an inventory did not list but kept, because their object was modified after the inventory was made.",
        )),
        of: |r| r.kept_after_inventory,
    },
    // Passages and vectors (`embedding:` connectors; 0 otherwise).
    Count {
        field: "passages_embedded",
        label: "passages embedded",
        quiet_when_zero: true,
        metric: Some((
            "s3c_passages_embedded_total",
            "Passages turned into vectors by the embedding model.",
        )),
        of: |r| r.passages_embedded,
    },
    Count {
        field: "passages_reused",
        label: "passages reused",
        quiet_when_zero: true,
        metric: Some((
            "s3c_passages_reused_total",
            "Passages whose vector was reused from the index (same content hash and model).",
        )),
        of: |r| r.passages_reused,
    },
    Count {
        field: "embedding_retries",
        label: "embedding retries",
        quiet_when_zero: true,
        metric: Some((
            "s3c_embedding_retries_total",
            "Requests to the embedding provider retried after a transient error.",
        )),
        of: |r| r.embedding_retries,
    },
    Count {
        field: "passages_capped",
        label: "documents with passages capped",
        quiet_when_zero: true,
        metric: Some((
            "s3c_passages_capped_total",
            "Documents whose passages were cut at max_passages_per_document.",
        )),
        of: |r| r.passages_capped,
    },
    Count {
        field: "embedding_failures",
        label: "embedding failures",
        quiet_when_zero: true,
        metric: Some((
            "s3c_embedding_failures_total",
            "Documents written without vectors because embedding failed (embedded again by the next sync).",
        )),
        of: |r| r.embedding_failures,
    },
];

/// The counter that added and updated documents both advance.
const INDEXED: (&str, &str) = (
    "s3c_objects_indexed_total",
    "Documents written for new or changed objects.",
);

/// The outcome of one connector's sync, as printed by `sync --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// The connector's id.
    pub connector: String,
    /// New documents written.
    pub added: u64,
    /// Changed documents rewritten.
    pub updated: u64,
    /// Objects already indexed with this version (not downloaded).
    pub unchanged: u64,
    /// Documents removed.
    pub deleted: u64,
    /// Deletions the mass-delete guard held back: those documents are still in the index, and
    /// the sync failed with an error naming the bucket and the ways out. 0 otherwise.
    #[serde(default)]
    pub deletions_held_back: u64,
    /// Documents written with metadata only.
    pub metadata_only: u64,
    /// Documents written with an extraction error.
    pub extraction_errors: u64,
    /// Failures (listings, downloads, index writes). Zero means the sync succeeded.
    pub errors: u64,
    /// Objects returned by listings.
    pub objects_listed: u64,
    /// Objects left out by the sync rules.
    pub excluded: u64,
    /// Bytes of object content downloaded.
    pub bytes_downloaded: u64,
    /// S3 requests sent, retries included.
    pub s3_requests: u64,
    /// S3 retries after transient errors.
    pub s3_retries: u64,
    /// Requests to the index (OpenSearch) retried after transient errors: whole bulk
    /// requests, bulk requests re-sent for their failed items, version-scan pages.
    #[serde(default)]
    pub index_retries: u64,
    /// Event notifications received (keys named by queue messages); 0 for a full sync.
    #[serde(default)]
    pub events_received: u64,
    /// Events applied to the index; 0 for a full sync.
    #[serde(default)]
    pub events_applied: u64,
    /// Events (or unreadable messages) that could not be applied; 0 for a full sync.
    #[serde(default)]
    pub events_failed: u64,
    /// Queue messages deleted once applied; 0 for a full sync.
    #[serde(default)]
    pub messages_deleted: u64,
    /// Event keys applied again because S3 changed them while they were applied; 0 for a
    /// full sync.
    #[serde(default)]
    pub events_reapplied: u64,
    /// Buckets listed with ListObjectsV2 because no complete S3 Inventory fresher than
    /// `max_age` was found; 0 without `inventory:`.
    #[serde(default)]
    pub inventory_fallbacks: u64,
    /// Documents an inventory did not list but kept, because their object was modified after
    /// the inventory was made; 0 without `inventory:`.
    #[serde(default)]
    pub kept_after_inventory: u64,
    /// Passages turned into vectors by the model; 0 without `embedding:`.
    #[serde(default)]
    pub passages_embedded: u64,
    /// Passages whose vector was reused from the index (same content hash, same model) instead
    /// of calling the model; 0 without `embedding:`.
    #[serde(default)]
    pub passages_reused: u64,
    /// Requests to the embedding provider retried after transient errors (429, 5xx); 0
    /// without `embedding:`.
    #[serde(default)]
    pub embedding_retries: u64,
    /// Documents whose passages were cut at `max_passages_per_document` (the rest of their
    /// text is searchable by words, not by passage); 0 without `embedding:`.
    #[serde(default)]
    pub passages_capped: u64,
    /// Documents whose embedding failed: written for keyword search with `embedding_error`
    /// and no vectors, and embedded again by the next sync. Each is also one of `errors`.
    #[serde(default)]
    pub embedding_failures: u64,
    /// Wall time of the sync.
    pub duration_ms: u64,
    /// When the sync started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When it ended.
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    /// The first error messages (at most 100).
    pub error_messages: Vec<String>,
    /// True when a shutdown cut the sync short: what was complete is committed, nothing was
    /// deleted once the shutdown began, and the next sync converges.
    pub cancelled: bool,
    /// The shard this sync covered, `I/N` (`--shard`); absent when it covered whole buckets.
    /// Every count above is of the shard's part only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

impl SyncReport {
    /// The report of a sync that ran from `started_at` until now.
    pub fn from_counters(
        connector: &str,
        counters: &Counters,
        s3: &crate::source::s3::S3Stats,
        started_at: OffsetDateTime,
    ) -> Self {
        let finished_at = OffsetDateTime::now_utc();
        let get = Counters::get;
        Self {
            connector: connector.to_owned(),
            added: get(&counters.added),
            updated: get(&counters.updated),
            unchanged: get(&counters.unchanged),
            deleted: get(&counters.deleted),
            deletions_held_back: get(&counters.deletions_held_back),
            metadata_only: get(&counters.metadata_only),
            extraction_errors: get(&counters.extraction_errors),
            errors: get(&counters.errors),
            objects_listed: get(&counters.objects_listed),
            excluded: get(&counters.excluded),
            bytes_downloaded: get(&s3.bytes_downloaded),
            s3_requests: get(&s3.requests),
            s3_retries: get(&s3.retries),
            index_retries: 0,
            events_received: get(&counters.events_received),
            events_applied: get(&counters.events_applied),
            events_failed: get(&counters.events_failed),
            messages_deleted: get(&counters.messages_deleted),
            events_reapplied: get(&counters.events_reapplied),
            inventory_fallbacks: get(&counters.inventory_fallbacks),
            kept_after_inventory: get(&counters.kept_after_inventory),
            passages_embedded: get(&counters.passages_embedded),
            passages_reused: get(&counters.passages_reused),
            embedding_retries: get(&counters.embedding_retries),
            passages_capped: get(&counters.passages_capped),
            embedding_failures: get(&counters.embedding_failures),
            duration_ms: u64::try_from((finished_at - started_at).whole_milliseconds())
                .unwrap_or(0),
            started_at,
            finished_at,
            error_messages: counters
                .error_messages
                .lock()
                .map(|messages| messages.clone())
                .unwrap_or_default(),
            cancelled: false,
            shard: None,
        }
    }

    /// True when the sync met no error.
    pub fn succeeded(&self) -> bool {
        self.errors == 0
    }

    /// Every count of [`COUNTS`] on one line: `"12 listed, 3 added, ..."`, quiet counts left
    /// out while zero.
    pub fn summary(&self) -> String {
        COUNTS
            .iter()
            .map(|count| (count, (count.of)(self)))
            .filter(|(count, value)| !(count.quiet_when_zero && *value == 0))
            .map(|(count, value)| format!("{value} {}", count.label))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report whose every count differs, so that a count read from the wrong field shows.
    fn distinct_report() -> SyncReport {
        let mut report = SyncReport::from_counters(
            "c",
            &Counters::default(),
            &crate::source::s3::S3Stats::default(),
            OffsetDateTime::UNIX_EPOCH,
        );
        let json = serde_json::to_value(&report).unwrap();
        let mut object = json.as_object().unwrap().clone();
        for (n, value) in object.values_mut().enumerate() {
            if value.is_u64() {
                *value = serde_json::json!(1000 + n as u64);
            }
        }
        report = serde_json::from_value(serde_json::Value::Object(object)).unwrap();
        report
    }

    #[test]
    fn counts_cover_every_count_field_of_the_report_and_read_their_own_field() {
        let report = distinct_report();
        let json = serde_json::to_value(&report).unwrap();
        let numeric: Vec<&str> = json
            .as_object()
            .unwrap()
            .iter()
            .filter(|(field, value)| value.is_u64() && *field != "duration_ms")
            .map(|(field, _)| field.as_str())
            .collect();
        let mut declared: Vec<&str> = COUNTS.iter().map(|c| c.field).collect();
        let mut found = numeric.clone();
        declared.sort_unstable();
        found.sort_unstable();
        assert_eq!(
            declared, found,
            "COUNTS and SyncReport's count fields differ"
        );
        for count in COUNTS {
            assert_eq!(
                Some((count.of)(&report)),
                json[count.field].as_u64(),
                "{} reads another field",
                count.field
            );
        }
    }

    #[test]
    fn the_summary_names_every_count_and_leaves_quiet_zeros_out() {
        let mut report = distinct_report();
        let summary = report.summary();
        for count in COUNTS {
            let part = format!("{} {}", (count.of)(&report), count.label);
            assert!(summary.contains(&part), "{part:?} missing from {summary:?}");
        }
        report.deletions_held_back = 0;
        report.excluded = 0;
        report.deleted = 0;
        let summary = report.summary();
        assert!(!summary.contains("held back") && !summary.contains("excluded"));
        assert!(summary.contains(", 0 deleted,"), "{summary}");
    }
}
