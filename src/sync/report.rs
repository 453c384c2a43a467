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

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

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
        }
    }

    /// True when the sync met no error.
    pub fn succeeded(&self) -> bool {
        self.errors == 0
    }
}
