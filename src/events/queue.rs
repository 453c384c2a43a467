//! The SQS queue of one connector: receive, delete, extend visibility, read its attributes.
//!
//! Built from the connector's credentials and region (the queue URL's region when it names
//! one), its `endpoint_url` or `sqs_endpoint_url`, and the S3 source's request-rate limiter;
//! every call goes through the project's one retry policy. Knows SQS, not S3 or the index.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry,
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use time::OffsetDateTime;

use crate::config::notifications::NotificationsConfig;
use crate::config::{ConnectorConfig, redact_urls};
use crate::retry::{RetryPolicy, Transient};

/// SQS takes at most ten entries per batch call.
const BATCH_LIMIT: usize = 10;

/// A failed SQS call, after its retries.
#[derive(Debug, Clone, thiserror::Error)]
#[error("SQS {operation} on {queue} failed{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
pub struct QueueError {
    /// The API call: `ReceiveMessage`, `DeleteMessageBatch`, ...
    pub operation: &'static str,
    /// The queue URL.
    pub queue: String,
    /// The error code SQS answered with, if any (`AccessDenied`, `QueueDoesNotExist`, ...).
    pub code: Option<String>,
    /// The HTTP status, if an answer came.
    pub status: Option<u16>,
    /// What went wrong.
    pub message: String,
    transient: bool,
}

impl QueueError {
    fn from_sdk<E>(operation: &'static str, queue: &str, error: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = error.code().map(str::to_owned);
        let status = error.raw_response().map(|raw| raw.status().as_u16());
        let transient = match error {
            SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
            SdkError::DispatchFailure(failure) => !failure.is_user(),
            SdkError::ServiceError(_) => {
                matches!(
                    code.as_deref(),
                    Some(
                        "ThrottlingException"
                            | "RequestThrottled"
                            | "AWS.SimpleQueueService.RequestThrottled"
                            | "ServiceUnavailable"
                            | "InternalFailure"
                            | "InternalError"
                            | "KmsThrottled"
                    )
                ) || status.is_some_and(|s: u16| s == 429 || s >= 500)
            }
            _ => false,
        };
        let message = error
            .message()
            .map(str::to_owned)
            .unwrap_or_else(|| chain(error));
        Self {
            operation,
            queue: redact_urls(queue).into_owned(),
            code,
            status,
            message: redact_urls(&message).into_owned(),
            transient,
        }
    }

    /// The IAM action the call needs, for messages that say what to grant.
    pub fn iam_action(&self) -> &'static str {
        match self.operation {
            "ReceiveMessage" => "sqs:ReceiveMessage",
            "DeleteMessageBatch" => "sqs:DeleteMessage",
            "ChangeMessageVisibilityBatch" => "sqs:ChangeMessageVisibility",
            _ => "sqs:GetQueueAttributes",
        }
    }

    /// True when SQS refused the call for lack of permission.
    pub fn is_denied(&self) -> bool {
        self.status == Some(403)
            || self
                .code
                .as_deref()
                .is_some_and(|c| c.contains("AccessDenied") || c.contains("NotAuthorized"))
    }
}

impl Transient for QueueError {
    fn is_transient(&self) -> bool {
        self.transient
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Message {
    /// SQS's id of the message.
    pub id: String,
    /// The handle that deletes it or changes its visibility (this receipt only).
    pub receipt: String,
    /// The body.
    pub body: String,
    /// How often it was received, this time included (`ApproximateReceiveCount`).
    pub receive_count: u64,
    /// When it was sent to the queue (`SentTimestamp`).
    pub sent_at: Option<OffsetDateTime>,
}

/// The queue's counts (`GetQueueAttributes`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Messages waiting (`ApproximateNumberOfMessages`).
    pub visible: u64,
    /// Messages received and not yet deleted or returned (`ApproximateNumberOfMessagesNotVisible`).
    pub in_flight: u64,
}

/// Counters of the calls made.
#[derive(Debug, Default)]
pub struct QueueStats {
    /// Requests sent, retries included.
    pub requests: AtomicU64,
    /// Retries after transient errors.
    pub retries: AtomicU64,
}

/// A client for one connector's queue.
#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    url: String,
    retry: RetryPolicy,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    stats: Arc<QueueStats>,
}

impl Queue {
    /// The queue of `connector`'s `notifications`, with its credentials from `sdk_config`.
    /// `limiter` is the S3 source's, so that both share `requests_per_second`.
    pub fn new(
        connector: &ConnectorConfig,
        notifications: &NotificationsConfig,
        sdk_config: &SdkConfig,
        limiter: Option<Arc<DefaultDirectRateLimiter>>,
    ) -> Self {
        // A long poll must not look like a dead connection.
        let read_timeout = connector
            .read_timeout
            .max(notifications.wait_time.saturating_add(10));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(connector.connect_timeout))
            .read_timeout(Duration::from_secs(read_timeout))
            .build();
        let mut config = aws_sdk_sqs::config::Builder::from(sdk_config).timeout_config(timeouts);
        if let Some(region) = notifications.queue().and_then(|queue| queue.region) {
            config = config.region(aws_config::Region::new(region));
        }
        if let Some(endpoint) = notifications
            .sqs_endpoint_url
            .as_deref()
            .or(connector.endpoint_url.as_deref())
        {
            config = config.endpoint_url(endpoint);
        }
        let limiter = limiter.or_else(|| {
            NonZeroU32::new(connector.requests_per_second)
                .map(|rate| Arc::new(RateLimiter::direct(Quota::per_second(rate))))
        });
        Self {
            client: Client::from_conf(config.build()),
            url: notifications.queue_url.clone(),
            retry: RetryPolicy::with_attempts(connector.max_attempts),
            limiter,
            stats: Arc::default(),
        }
    }

    /// The queue URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Requests and retries so far.
    pub fn stats(&self) -> &QueueStats {
        &self.stats
    }

    /// Runs one SQS call under the rate limit and the retry policy.
    async fn call<T, E, Fut>(
        &self,
        operation: &'static str,
        mut request: impl FnMut() -> Fut,
    ) -> Result<T, QueueError>
    where
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let url = &*self.url;
        self.retry
            .run_limited(
                "SQS call failed; retrying.",
                self.limiter.as_deref(),
                (&self.stats.requests, &self.stats.retries),
                || {
                    let sent = request();
                    async move {
                        sent.await
                            .map_err(|error| QueueError::from_sdk(operation, url, &error))
                    }
                },
            )
            .await
    }

    /// Up to `max` messages, waiting up to `wait` for the first; each stays hidden from other
    /// consumers for `visibility`.
    pub async fn receive(
        &self,
        max: u32,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        let output = self
            .call("ReceiveMessage", || {
                self.client
                    .receive_message()
                    .queue_url(&self.url)
                    .max_number_of_messages(i32::try_from(max).unwrap_or(10))
                    .wait_time_seconds(i32::try_from(wait.as_secs()).unwrap_or(20))
                    .visibility_timeout(i32::try_from(visibility.as_secs()).unwrap_or(i32::MAX))
                    .message_system_attribute_names(
                        MessageSystemAttributeName::ApproximateReceiveCount,
                    )
                    .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                    .send()
            })
            .await?;
        Ok(output
            .messages()
            .iter()
            .filter_map(|message| {
                let attributes = message.attributes();
                let attribute = |name: MessageSystemAttributeName| {
                    attributes
                        .and_then(|a| a.get(&name))
                        .and_then(|v| v.parse::<u64>().ok())
                };
                Some(Message {
                    id: message.message_id()?.to_owned(),
                    receipt: message.receipt_handle()?.to_owned(),
                    body: message.body().unwrap_or_default().to_owned(),
                    receive_count: attribute(MessageSystemAttributeName::ApproximateReceiveCount)
                        .unwrap_or(1),
                    sent_at: attribute(MessageSystemAttributeName::SentTimestamp).and_then(|ms| {
                        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
                    }),
                })
            })
            .collect())
    }

    /// Deletes these messages (by receipt); returns the receipts SQS did not delete, with why.
    pub async fn delete(&self, receipts: &[String]) -> Result<Vec<(String, String)>, QueueError> {
        let entry = |id, receipt: &String| {
            let entry = DeleteMessageBatchRequestEntry::builder().id(id);
            entry.receipt_handle(receipt).build().ok()
        };
        self.in_batches("DeleteMessageBatch", receipts, entry, |entries| {
            let request = self.client.delete_message_batch();
            let sent = request.queue_url(&self.url).set_entries(entries).send();
            async move { sent.await.map(|output| output.failed().to_vec()) }
        })
        .await
    }

    /// Keeps these messages hidden for `visibility` more, from now (zero: visible again at
    /// once); returns the receipts SQS refused, with why.
    pub async fn extend(
        &self,
        receipts: &[String],
        visibility: Duration,
    ) -> Result<Vec<(String, String)>, QueueError> {
        let seconds = i32::try_from(visibility.as_secs()).unwrap_or(43_200);
        let entry = |id, receipt: &String| {
            let entry = ChangeMessageVisibilityBatchRequestEntry::builder().id(id);
            entry
                .receipt_handle(receipt)
                .visibility_timeout(seconds)
                .build()
                .ok()
        };
        self.in_batches("ChangeMessageVisibilityBatch", receipts, entry, |entries| {
            let request = self.client.change_message_visibility_batch();
            let sent = request.queue_url(&self.url).set_entries(entries).send();
            async move { sent.await.map(|output| output.failed().to_vec()) }
        })
        .await
    }

    /// Runs `operation`, a batch call, per ten receipts: `entry` makes a receipt's entry from
    /// its id (its position in the batch), `send` sends a batch's entries and returns its failed
    /// ones. Collects the receipts of failed entries, with why.
    async fn in_batches<T: Clone, E, Fut>(
        &self,
        operation: &'static str,
        receipts: &[String],
        entry: impl Fn(String, &String) -> Option<T>,
        send: impl Fn(Option<Vec<T>>) -> Fut,
    ) -> Result<Vec<(String, String)>, QueueError>
    where
        Fut: Future<Output = Result<Vec<BatchResultErrorEntry>, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut failed = Vec::new();
        for chunk in receipts.chunks(BATCH_LIMIT) {
            let entries: Vec<T> = chunk
                .iter()
                .enumerate()
                .filter_map(|(n, receipt)| entry(n.to_string(), receipt))
                .collect();
            let refused = self.call(operation, || send(Some(entries.clone()))).await?;
            failed.extend(batch_failures(chunk, &refused));
        }
        Ok(failed)
    }

    /// The queue's message counts.
    pub async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let attributes = self
            .attributes(&[
                QueueAttributeName::ApproximateNumberOfMessages,
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            ])
            .await?;
        let count = |name: QueueAttributeName| {
            attributes
                .get(&name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(QueueDepth {
            visible: count(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        })
    }

    /// GetQueueAttributes of `names`.
    pub async fn attributes(
        &self,
        names: &[QueueAttributeName],
    ) -> Result<HashMap<QueueAttributeName, String>, QueueError> {
        let output = self
            .call("GetQueueAttributes", || {
                self.client
                    .get_queue_attributes()
                    .queue_url(&self.url)
                    .set_attribute_names(Some(names.to_vec()))
                    .send()
            })
            .await?;
        Ok(output.attributes().cloned().unwrap_or_default())
    }
}

/// The receipts of a batch call's failed entries (ids are positions in `chunk`).
fn batch_failures(chunk: &[String], failed: &[BatchResultErrorEntry]) -> Vec<(String, String)> {
    failed
        .iter()
        .filter_map(|entry| {
            let receipt = chunk.get(entry.id().parse::<usize>().ok()?)?;
            let why = format!(
                "{}: {}",
                entry.code(),
                entry.message().unwrap_or("no message")
            );
            Some((receipt.clone(), why))
        })
        .collect()
}
