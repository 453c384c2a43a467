//! The worker's event consumer of one connector: receives from its notification queue without
//! end, taking turns on the index with the connector's full syncs, and records what each round
//! did in the same counters and status as the syncs.
//!
//! Turns: the consumer takes the connector's index turn before each receive and keeps it for
//! the round (long poll, apply, commit); a full sync takes it for its whole run, so a sync that
//! comes due waits at most one round, and events that arrive during a full sync wait in the
//! queue. The consumer keeps the index open while messages keep coming and closes it after a
//! receive that returned none, so a manual `sync` can write the embedded index while the queue
//! is quiet.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::{Entry, OpenIndex, Shared, lock};
use crate::config::redact_urls;
use crate::credentials;
use crate::events::{Consumer, Queue, QueueError, RoundSummary};
use crate::sink::{AnySink, Sink};
use crate::source::s3::{S3Source, S3Stats};
use crate::sync::{Counters, SyncReport};

/// How long to wait after the queue failed before trying again: doubling, at most this.
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// How often the queue's depth is read while messages keep coming.
const DEPTH_EVERY: Duration = Duration::from_secs(5);

/// Consumes the connector's queue until `cancel` fires (the worker stops, or the connector was
/// deleted or updated); finishes the round in flight first.
pub(super) async fn consume(shared: Arc<Shared>, entry: Arc<Entry>, cancel: CancellationToken) {
    let connector = entry.connector();
    let connector = &*connector;
    let Some(notifications) = connector.notifications.as_ref() else {
        return;
    };
    let sdk_config = credentials::sdk_config(connector).await;
    let source = S3Source::new(connector, &sdk_config);
    let queue = Queue::new(connector, notifications, &sdk_config, source.limiter());
    let embedder = match shared.embedder(&entry, connector).await {
        Ok(embedder) => embedder,
        Err(error) => {
            // Documents written without their vectors would never be embedded (their objects
            // are unchanged for the next sync): the messages wait in the queue instead.
            tracing::error!(message = "Cannot load the embedding model; not consuming event notifications.", connector = %connector.id, %error);
            return;
        }
    };
    let mut consumer =
        Consumer::new(connector, notifications, queue, source).with_embedder(embedder);
    shared.metrics.queue(&connector.id, Some((0, 0)), 0.0);
    tracing::info!(message = "Consuming event notifications.", connector = %connector.id, queue = %redact_urls(&notifications.queue_url), format = notifications.format.as_str());
    let mut failures: u32 = 0;
    let mut depth_read_at: Option<tokio::time::Instant> = None;
    while !cancel.is_cancelled() {
        let mut turn = tokio::select! {
            () = cancel.cancelled() => break,
            turn = entry.index_turn.lock() => turn,
        };
        let messages = match consumer.receive(&cancel).await {
            Ok(messages) => messages,
            Err(error) => {
                drop(turn);
                failures += 1;
                queue_failed(&entry, &error, failures);
                pause(&cancel, failures).await;
                continue;
            }
        };
        if failures > 0 {
            tracing::info!(message = "The notification queue answers again.", connector = %connector.id);
            failures = 0;
        }
        if messages.is_empty() {
            // Quiet: release the index so that others (a manual sync) can write it.
            *turn = None;
            drop(turn);
            if !cancel.is_cancelled() {
                refresh_depth(&shared, &entry, consumer.queue(), Some(0.0)).await;
                depth_read_at = Some(tokio::time::Instant::now());
            }
            continue;
        }
        let kept = OpenIndex::take_if(&mut turn, connector.index_name());
        let sink = match kept {
            Some(sink) => {
                *turn = Some(OpenIndex {
                    name: connector.index_name().to_owned(),
                    sink: sink.clone(),
                });
                sink
            }
            None => match AnySink::open(&shared.config.index, connector.index_name()).await {
                Ok(sink) => {
                    *turn = Some(OpenIndex {
                        name: connector.index_name().to_owned(),
                        sink: sink.clone(),
                    });
                    sink
                }
                Err(error) => {
                    drop(turn);
                    tracing::error!(message = "Cannot open the index to apply event notifications; the messages come back after their visibility timeout.", connector = %connector.id, %error);
                    lock(&entry.slot).index_reachable = Some(Err(error.to_string()));
                    failures += 1;
                    pause(&cancel, failures).await;
                    continue;
                }
            },
        };
        let started_at = OffsetDateTime::now_utc();
        let counters = Counters::default();
        let s3_before = snapshot(consumer.source().stats());
        let (summary, index_retries) = crate::with_sink!(&sink, index => {
            let before = index.retries();
            let summary = consumer.handle(index, messages, &counters, &cancel).await;
            (summary, index.retries().saturating_sub(before))
        });
        drop(turn);
        let mut report =
            SyncReport::from_counters(&connector.id, &counters, &S3Stats::default(), started_at);
        let s3_after = snapshot(consumer.source().stats());
        report.s3_requests = s3_after.0 - s3_before.0;
        report.s3_retries = s3_after.1 - s3_before.1;
        report.bytes_downloaded = s3_after.2 - s3_before.2;
        report.index_retries = index_retries;
        record_round(&shared, &entry, &report, &summary);
        let due = depth_read_at.is_none_or(|at| at.elapsed() >= DEPTH_EVERY);
        if due && !cancel.is_cancelled() {
            refresh_depth(&shared, &entry, consumer.queue(), None).await;
            depth_read_at = Some(tokio::time::Instant::now());
        }
    }
    tracing::info!(message = "Stopped consuming event notifications.", connector = %connector.id);
}

/// Requests, retries and bytes of an S3 client so far.
fn snapshot(stats: &S3Stats) -> (u64, u64, u64) {
    (
        stats.requests.load(Ordering::Relaxed),
        stats.retries.load(Ordering::Relaxed),
        stats.bytes_downloaded.load(Ordering::Relaxed),
    )
}

/// Adds a round to the metrics and the status.
fn record_round(shared: &Shared, entry: &Entry, report: &SyncReport, summary: &RoundSummary) {
    let connector = &report.connector;
    shared.metrics.record_events(report);
    let lag = summary.oldest_age.map_or(0.0, |age| age.as_secs_f64());
    shared.metrics.queue(connector, None, lag);
    if report.errors > 0 {
        tracing::info!(message = "A round of event notifications met errors.", connector = %connector, errors = report.errors, first_error = report.error_messages.first().map(String::as_str));
    }
    let mut slot = lock(&entry.slot);
    slot.index_reachable = Some(Ok(()));
    if let Some(events) = slot.events.as_mut() {
        events.events_received += report.events_received;
        events.events_applied += report.events_applied;
        events.events_failed += report.events_failed;
        events.messages_deleted += report.messages_deleted;
        events.events_reapplied += report.events_reapplied;
        events.lag_seconds = Some(lag);
        events.last_received_at = Some(report.started_at);
        events.last_error = None;
    }
}

/// Reads the queue's depth into the status and the gauges; `lag` too when given.
async fn refresh_depth(shared: &Shared, entry: &Entry, queue: &Queue, lag: Option<f64>) {
    let connector = &entry.id();
    let depth = match queue.depth().await {
        Ok(depth) => Some(depth),
        Err(error) => {
            tracing::debug!(message = "Cannot read the notification queue's depth.", connector = %connector, %error);
            None
        }
    };
    let counts = depth.map(|d| (d.visible, d.in_flight));
    if counts.is_some() || lag.is_some() {
        let current_lag = lag.unwrap_or_else(|| {
            lock(&entry.slot)
                .events
                .as_ref()
                .and_then(|e| e.lag_seconds)
                .unwrap_or(0.0)
        });
        shared.metrics.queue(connector, counts, current_lag);
    }
    let mut slot = lock(&entry.slot);
    if let Some(events) = slot.events.as_mut() {
        if let Some(depth) = depth {
            events.queue_messages = Some(depth.visible);
            events.queue_in_flight = Some(depth.in_flight);
        }
        if let Some(lag) = lag {
            events.lag_seconds = Some(lag);
        }
    }
}

/// Logs a queue failure (at warn the first time of a streak) and keeps it in the status.
fn queue_failed(entry: &Entry, error: &QueueError, failures: u32) {
    let connector = &entry.id();
    let advice = if error.is_denied() {
        format!(" (the identity needs {} on the queue)", error.iam_action())
    } else {
        String::new()
    };
    if failures == 1 {
        tracing::warn!(message = "Cannot receive from the notification queue; trying again with backoff.", connector = %connector, error = %format!("{error}{advice}"));
    } else {
        tracing::debug!(message = "The notification queue still fails.", connector = %connector, %error, failures);
    }
    if let Some(events) = lock(&entry.slot).events.as_mut() {
        events.last_error = Some(format!("{error}{advice}"));
    }
}

/// Waits 1 s, 2 s, 4 s, ... (at most [`MAX_PAUSE`]) after `failures` failures in a row, or
/// until `cancel` fires.
async fn pause(cancel: &CancellationToken, failures: u32) {
    let delay = Duration::from_secs(1u64 << failures.min(6).saturating_sub(1)).min(MAX_PAUSE);
    tokio::select! {
        () = cancel.cancelled() => {}
        () = tokio::time::sleep(delay) => {}
    }
}
