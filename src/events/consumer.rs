//! One round of the consumer: the messages of one ReceiveMessage, read, applied, committed,
//! and only then deleted.
//!
//! A round parses every message, gathers the keys they name (each key once, however many messages
//! name it), makes the index agree with S3 for those keys through the connector's [`Pipeline`], as
//! a full sync does its work ([`Pipeline::apply_keys`]), and deletes the messages whose keys are
//! all committed. While the keys are downloaded, extracted and written, the messages' visibility is
//! extended every half `visibility_timeout`, so no other consumer receives them meanwhile. A
//! message that cannot be read, or whose keys could not all be applied, is left in the queue: it
//! comes back after its visibility timeout, and the queue's redrive policy moves it to the
//! dead-letter queue after `maxReceiveCount` tries. On shutdown, the messages not finished are made
//! visible again at once. The loop around rounds (when to receive, which index) belongs to the
//! worker.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::parse::{self, Parsed};
use super::queue::{Message, Queue, QueueError};
use crate::config::ConnectorConfig;
use crate::config::notifications::NotificationsConfig;
use crate::embed::Embedder;
use crate::sink::Sink;
use crate::source::ObjectStore;
use crate::sync::touched::{KeyResult, TouchedKey};
use crate::sync::{Counters, Pipeline};

/// Receives one round may gather while the queue has a backlog.
pub const RECEIVES_PER_ROUND: usize = 10;

/// A connector's consumer: its queue, its pipeline (the S3 client), and the buckets located so
/// far.
#[derive(Debug)]
pub struct Consumer<'a, O: ObjectStore> {
    connector: &'a ConnectorConfig,
    notifications: &'a NotificationsConfig,
    queue: Queue,
    pipeline: Pipeline<'a, O>,
    located: HashSet<String>,
}

/// What a round saw, beyond the counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoundSummary {
    /// Messages received.
    pub messages: usize,
    /// Age of the oldest message of the round when it was received (the queue's lag).
    pub oldest_age: Option<Duration>,
}

impl<'a, O: ObjectStore> Consumer<'a, O> {
    /// A consumer of `connector`'s queue that reads S3 through `source`.
    pub fn new(
        connector: &'a ConnectorConfig,
        notifications: &'a NotificationsConfig,
        queue: Queue,
        source: O,
    ) -> Self {
        Self {
            connector,
            notifications,
            queue,
            pipeline: Pipeline::over(connector, source),
            located: HashSet::new(),
        }
    }

    /// Gives the documents of applied keys their passages and vectors from `embedder`, the
    /// model of the connector's `embedding:` block, loaded once for the consumer's life.
    pub fn with_embedder(mut self, embedder: Option<Arc<dyn Embedder>>) -> Self {
        self.pipeline = self.pipeline.with_embedder(embedder);
        self
    }

    /// The queue.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The S3 client.
    pub fn source(&self) -> &O {
        self.pipeline.source()
    }

    fn visibility(&self) -> Duration {
        Duration::from_secs(self.notifications.visibility_timeout)
    }

    /// Waits up to `wait_time` for messages; while the queue has a backlog (a receive came back
    /// full) it receives again at once, up to [`RECEIVES_PER_ROUND`] receives, so that a backlog
    /// is applied with one commit per up to a hundred messages. A shutdown does not cut a
    /// receive short (SQS would hide the messages it sends for their whole visibility timeout);
    /// the messages of a receive that ends after `cancel` fired are handed back at once,
    /// unprocessed.
    pub async fn receive(&self, cancel: &CancellationToken) -> Result<Vec<Message>, QueueError> {
        let max = self.notifications.max_messages;
        let mut wait = Duration::from_secs(self.notifications.wait_time);
        let mut messages = Vec::new();
        for _ in 0..RECEIVES_PER_ROUND {
            if cancel.is_cancelled() {
                break;
            }
            let received = match self.queue.receive(max, wait, self.visibility()).await {
                Ok(received) => received,
                // What came before is already hidden: apply it, report the error next time.
                Err(_) if !messages.is_empty() => break,
                Err(error) => return Err(error),
            };
            let full = received.len() >= max as usize;
            messages.extend(received);
            if !full {
                break;
            }
            wait = Duration::ZERO;
        }
        if cancel.is_cancelled() && !messages.is_empty() {
            let receipts: Vec<String> = messages.iter().map(|m| m.receipt.clone()).collect();
            self.hand_back(&receipts).await;
            return Ok(Vec::new());
        }
        Ok(messages)
    }

    /// Makes messages visible to other consumers at once (shutting down).
    async fn hand_back(&self, receipts: &[String]) {
        if let Err(error) = self.queue.extend(receipts, Duration::ZERO).await {
            tracing::info!(message = "Could not return unfinished messages to the queue; they come back after their visibility timeout.", connector = %self.connector.id, %error);
        }
    }

    /// Applies `messages` to `sink`, commits, and deletes the messages whose keys were all
    /// applied; counts in `counters`.
    pub async fn handle<S: Sink>(
        &mut self,
        sink: &S,
        messages: Vec<Message>,
        counters: &Counters,
        cancel: &CancellationToken,
    ) -> RoundSummary {
        let now = OffsetDateTime::now_utc();
        let summary = RoundSummary {
            messages: messages.len(),
            oldest_age: messages
                .iter()
                .filter_map(|m| m.sent_at)
                .min()
                .and_then(|sent| (now - sent).try_into().ok()),
        };
        // The keys each message names; `None` for a message that cannot be read.
        let mut wanted: Vec<Option<Vec<TouchedKey>>> = Vec::with_capacity(messages.len());
        let mut keys = BTreeMap::<TouchedKey, usize>::new();
        for message in &messages {
            match parse::parse_message(&message.body, self.notifications.format) {
                Ok(Parsed::Touches(touches)) => {
                    let named: Vec<TouchedKey> = touches
                        .into_iter()
                        .map(|touch| TouchedKey {
                            bucket: touch.bucket,
                            key: touch.key,
                        })
                        .collect();
                    add(&counters.events_received, named.len() as u64);
                    for key in &named {
                        let next = keys.len();
                        keys.entry(key.clone()).or_insert(next);
                    }
                    wanted.push(Some(named));
                }
                Ok(Parsed::Ignored(what)) => {
                    tracing::debug!(message = "Ignored an event notification.", connector = %self.connector.id, message_id = %message.id, what);
                    wanted.push(Some(Vec::new()));
                }
                Err(error) => {
                    Counters::bump(&counters.events_received);
                    Counters::bump(&counters.events_failed);
                    log_unreadable(&self.connector.id, message, &error.to_string());
                    wanted.push(None);
                }
            }
        }
        let mut ordered: Vec<(TouchedKey, usize)> = keys.into_iter().collect();
        ordered.sort_by_key(|(_, position)| *position);
        let ordered: Vec<TouchedKey> = ordered.into_iter().map(|(key, _)| key).collect();
        let receipts: Vec<String> = messages.iter().map(|m| m.receipt.clone()).collect();

        let visibility = self.visibility();
        let results = {
            let apply =
                self.pipeline
                    .apply_keys(sink, &ordered, &mut self.located, counters, cancel);
            let heartbeat = keep_hidden(&self.queue, &receipts, visibility);
            tokio::select! {
                results = apply => results,
                never = heartbeat => match never {},
            }
        };
        let result_of = |key: &TouchedKey| {
            ordered
                .iter()
                .position(|k| k == key)
                .and_then(|position| results.get(position))
        };

        let mut done = Vec::new();
        let mut unfinished = Vec::new();
        for (message, keys) in messages.iter().zip(&wanted) {
            let Some(keys) = keys else {
                continue;
            };
            let failure = keys.iter().find_map(|key| match result_of(key) {
                Some(KeyResult::Applied) => None,
                Some(KeyResult::Failed(reason)) => {
                    Some(format!("{}/{}: {reason}", key.bucket, key.key))
                }
                None => Some(format!("{}/{}: not applied", key.bucket, key.key)),
            });
            for key in keys {
                match result_of(key) {
                    Some(KeyResult::Applied) => Counters::bump(&counters.events_applied),
                    _ => Counters::bump(&counters.events_failed),
                }
            }
            match failure {
                None => done.push(message.receipt.clone()),
                Some(reason) => {
                    if !cancel.is_cancelled() {
                        log_unapplied(&self.connector.id, message, &reason);
                    }
                    unfinished.push(message.receipt.clone());
                }
            }
        }
        if !done.is_empty() {
            match self.queue.delete(&done).await {
                Ok(refused) => {
                    add(
                        &counters.messages_deleted,
                        (done.len() - refused.len()) as u64,
                    );
                    for (_, why) in refused {
                        // Applied and committed: redelivery is harmless (the keys are unchanged).
                        tracing::warn!(message = "SQS did not delete an applied message; it will be received again and found unchanged.", connector = %self.connector.id, reason = %why);
                    }
                }
                Err(error) => {
                    tracing::warn!(message = "Could not delete applied messages; they will be received again and found unchanged.", connector = %self.connector.id, %error);
                }
            }
        }
        if cancel.is_cancelled() && !unfinished.is_empty() {
            // Shutting down: hand them to another consumer now rather than after the timeout.
            self.hand_back(&unfinished).await;
        }
        summary
    }
}

fn add(counter: &std::sync::atomic::AtomicU64, value: u64) {
    counter.fetch_add(value, std::sync::atomic::Ordering::Relaxed);
}

/// Extends the messages' visibility every half `visibility`, forever (the caller stops it).
async fn keep_hidden(
    queue: &Queue,
    receipts: &[String],
    visibility: Duration,
) -> std::convert::Infallible {
    let period = (visibility / 2).max(Duration::from_millis(500));
    loop {
        tokio::time::sleep(period).await;
        tracing::debug!(
            message = "Extending the visibility of messages still being processed.",
            count = receipts.len()
        );
        if let Err(error) = queue.extend(receipts, visibility).await {
            tracing::warn!(message = "Could not extend the visibility of messages still being processed; another consumer may receive them too (harmless, only extra work).", %error);
        }
    }
}

/// Logs a message that cannot be read: at warn on its first delivery, then at debug, so the
/// log names it once while its redrive policy takes it to the dead-letter queue.
fn log_unreadable(connector: &str, message: &Message, reason: &str) {
    if message.receive_count <= 1 {
        tracing::warn!(message = "Cannot read an event notification; it stays in the queue until its redrive policy moves it to the dead-letter queue.", connector, message_id = %message.id, %reason);
    } else {
        tracing::debug!(message = "Cannot read an event notification (received before).", connector, message_id = %message.id, receive_count = message.receive_count, %reason);
    }
}

/// Logs a message whose keys could not all be applied, once per delivery count as above.
fn log_unapplied(connector: &str, message: &Message, reason: &str) {
    if message.receive_count <= 1 {
        tracing::warn!(message = "Could not apply an event notification; it stays in the queue and is tried again after its visibility timeout.", connector, message_id = %message.id, %reason);
    } else {
        tracing::info!(message = "Could not apply an event notification again.", connector, message_id = %message.id, receive_count = message.receive_count, %reason);
    }
}
