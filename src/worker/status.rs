//! The status of each connector, as `GET /status` serves it and `s3-connector status` prints it:
//! its schedule, the sync running now, the last sync recorded and the next run.
//!
//! A running worker knows all of it; without one, `status` builds the same report from the
//! history files, with nothing running and no next run. Not for: metrics.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::state::{History, StateError, SyncRecord, Trigger};
use crate::config::{Config, ConnectorConfig};
use crate::sync::ShardSpec;

/// The status of the worker and of each connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The shard (`I/N`) whose syncs these are, for a worker started with `--shard`; absent
    /// for whole buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// True when a running worker answered; false when this was read from the history files.
    pub worker_running: bool,
    /// When the running worker started.
    #[serde(with = "time::serde::rfc3339::option")]
    pub worker_started_at: Option<OffsetDateTime>,
    /// True once the worker received SIGTERM or SIGINT and waits for syncs to finish.
    pub shutting_down: bool,
    /// One entry per connector, in config order.
    pub connectors: Vec<ConnectorStatus>,
}

/// The status of one connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorStatus {
    /// The connector's id.
    pub id: String,
    /// `every 15m`, `cron "0 */6 * * *"`, or null when it has neither.
    pub schedule: Option<String>,
    /// Whether `run` syncs it at start-up.
    pub sync_on_start: bool,
    /// The sync running now, if any.
    pub running: Option<RunningStatus>,
    /// When the worker starts its next sync; null without a running worker or a schedule.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_run: Option<OffsetDateTime>,
    /// The last sync recorded in the history, running worker or not.
    pub last_sync: Option<SyncRecord>,
    /// When the last successful sync ended.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success_at: Option<OffsetDateTime>,
    /// Syncs skipped since the worker started because the previous one still ran.
    pub skipped: u64,
    /// Whether the connector's index could be opened at the last attempt; null before any.
    pub index_reachable: Option<bool>,
    /// Its event notifications since the worker started; null for a connector without
    /// `notifications` or without a running worker.
    #[serde(default)]
    pub notifications: Option<EventsStatus>,
}

/// What a connector's queue consumer did since the worker started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventsStatus {
    /// The queue.
    pub queue_url: String,
    /// Keys named by the messages received (an unreadable message counts as one).
    pub events_received: u64,
    /// Events whose key's current state was committed to the index.
    pub events_applied: u64,
    /// Events not applied, and unreadable messages: their messages stay in the queue.
    pub events_failed: u64,
    /// Messages deleted after everything they asked for was committed.
    pub messages_deleted: u64,
    /// Keys applied again because S3 changed them while they were applied.
    #[serde(default)]
    pub events_reapplied: u64,
    /// Messages waiting in the queue at the last look (ApproximateNumberOfMessages).
    pub queue_messages: Option<u64>,
    /// Messages received and not yet deleted or returned, at the last look.
    pub queue_in_flight: Option<u64>,
    /// Age in seconds of the oldest message of the last receive that returned messages; 0
    /// after an empty receive.
    pub lag_seconds: Option<f64>,
    /// When the last message was received.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_received_at: Option<OffsetDateTime>,
    /// The last error of the queue itself (receiving, deleting), null once a receive works.
    pub last_error: Option<String>,
}

/// A sync in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningStatus {
    /// What started it.
    pub trigger: Trigger,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// Objects listed so far.
    pub objects_listed: u64,
}

impl ConnectorStatus {
    /// The status of a connector that is not running, from its history.
    pub fn idle(connector: &ConnectorConfig, history: &History) -> Result<Self, StateError> {
        let tail = history.tail(&connector.id)?;
        Ok(Self {
            id: connector.id.clone(),
            schedule: connector.timer.as_ref().map(ToString::to_string),
            sync_on_start: connector.sync_on_start,
            running: None,
            next_run: None,
            last_sync: tail.last,
            last_success_at: tail.last_success_at,
            skipped: 0,
            index_reachable: None,
            notifications: None,
        })
    }
}

impl StatusReport {
    /// The status without a running worker: the history files of `config.state_dir` (those
    /// of shard `spec`).
    /// With the API enabled, the connectors it stored are included (those that still validate).
    pub fn from_history(config: &Config, spec: ShardSpec) -> Result<Self, StateError> {
        let history = History::new(&config.state_dir).for_shard(spec);
        let mut connectors: Vec<ConnectorStatus> = config
            .connectors
            .iter()
            .map(|connector| ConnectorStatus::idle(connector, &history))
            .collect::<Result<_, _>>()?;
        if config.api.is_some() {
            // A store that cannot be read is the worker's error to report at start-up.
            let stored = super::api::store::Store::new(&config.state_dir)
                .load()
                .unwrap_or_default();
            for stored in stored.connectors {
                let Ok(connector) =
                    super::api::request::validate_form(&stored.form, &config.defaults)
                else {
                    continue;
                };
                if connectors.iter().all(|c| c.id != connector.id) {
                    connectors.push(ConnectorStatus::idle(&connector, &history)?);
                }
            }
        }
        Ok(Self {
            shard: (spec.count > 1).then(|| spec.to_string()),
            worker_running: false,
            worker_started_at: None,
            shutting_down: false,
            connectors,
        })
    }
}
