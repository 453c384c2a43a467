//! S3 event notifications through SQS, against moto in server mode (it delivers bucket
//! notifications to its own SQS, and EventBridge events through a rule with an SQS target):
//! created, overwritten and deleted objects (DeleteObjects too), odd keys, a burst, duplicated
//! and out-of-order messages, a garbage message that goes to the dead-letter queue, an object
//! slower than the visibility timeout, EventBridge, and `run` as a process: SIGTERM while events
//! are in flight, and two workers on one queue. Rounds run in-process through the same
//! [`Consumer`] the worker uses, or in the real binary.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_s3::types::{
    Delete, Event, EventBridgeConfiguration, NotificationConfiguration, ObjectIdentifier,
    QueueConfiguration,
};
use aws_sdk_sqs::types::QueueAttributeName;
use s3_connector::config::Config;
use s3_connector::credentials;
use s3_connector::events::{Consumer, Queue};
use s3_connector::sink::{AnySink, DocId};
use s3_connector::source::s3::S3Source;
use s3_connector::sync::{Counters, SyncReport};
use tokio_util::sync::CancellationToken;

use crate::fixture::{Backend, Setup, create_bucket, delete, put, s3_client, sqs_client};
use crate::support::{Fault, FaultProxy, Match, MotoServer, OsmemServer, unique_name};
use crate::worker::{Connector, WorkerDir, parse_metrics, sample};

/// Longest a drain of the queue may take on a loaded machine.
const DRAIN_DEADLINE: Duration = Duration::from_secs(120);

/// A bucket whose notifications go to a queue of its own, on the shared moto.
struct Notified {
    endpoint: String,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    bucket: String,
    queue_url: String,
}

impl Notified {
    /// A bucket and a queue; `redrive_to` is a dead-letter queue's ARN and the receive count
    /// after which a message goes there.
    async fn new(prefix: &str, redrive_to: Option<(&str, u32)>) -> Self {
        let endpoint = MotoServer::shared().endpoint();
        let s3 = s3_client(&endpoint);
        let sqs = sqs_client(&endpoint);
        let bucket = unique_name(prefix);
        create_bucket(&s3, &bucket).await;
        let mut create = sqs.create_queue().queue_name(unique_name(prefix));
        if let Some((arn, max)) = redrive_to {
            create = create.attributes(
                QueueAttributeName::RedrivePolicy,
                format!("{{\"deadLetterTargetArn\":\"{arn}\",\"maxReceiveCount\":\"{max}\"}}"),
            );
        }
        let queue_url = create.send().await.unwrap().queue_url.unwrap();
        Self {
            endpoint,
            s3,
            sqs,
            bucket,
            queue_url,
        }
    }

    /// S3 → SQS: every created and removed object of the bucket.
    async fn notify_queue(&self) {
        let arn = queue_arn(&self.sqs, &self.queue_url).await;
        let queue = QueueConfiguration::builder()
            .queue_arn(arn)
            .events(Event::from("s3:ObjectCreated:*"))
            .events(Event::from("s3:ObjectRemoved:*"))
            .build()
            .unwrap();
        self.s3
            .put_bucket_notification_configuration()
            .bucket(&self.bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .queue_configurations(queue)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    /// The `notifications:` lines of a connector consuming this queue.
    fn notifications(&self, extra: &str) -> String {
        format!(
            "    notifications:\n      queue_url: {}\n      wait_time: 1\n      visibility_timeout: 30\n{extra}",
            self.queue_url
        )
    }

    /// Messages waiting and in flight.
    async fn depth(&self) -> (u64, u64) {
        queue_depth(&self.sqs, &self.queue_url).await
    }

    async fn send_raw(&self, body: &str) {
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&QueueAttributeName::QueueArn)
        .unwrap()
}

async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> (u64, u64) {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let count = |name| {
        attributes
            .get(&name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        count(QueueAttributeName::ApproximateNumberOfMessages),
        count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

/// What the rounds of a drain did, summed.
#[derive(Debug, Default)]
struct Totals {
    rounds: u64,
    added: u64,
    updated: u64,
    unchanged: u64,
    deleted: u64,
    errors: u64,
    received: u64,
    applied: u64,
    failed: u64,
    messages_deleted: u64,
    bytes_downloaded: u64,
}

impl Totals {
    fn add(&mut self, report: &SyncReport, bytes: u64) {
        self.rounds += 1;
        self.added += report.added;
        self.updated += report.updated;
        self.unchanged += report.unchanged;
        self.deleted += report.deleted;
        self.errors += report.errors;
        self.received += report.events_received;
        self.applied += report.events_applied;
        self.failed += report.events_failed;
        self.messages_deleted += report.messages_deleted;
        self.bytes_downloaded += bytes;
    }
}

/// Consumes the connector's queue in-process, as the worker does, until `done` holds after an
/// empty receive (by default: nothing waiting and nothing in flight).
async fn drain_until(
    config: &Config,
    sink: &AnySink,
    mut done: impl AsyncFnMut() -> bool,
) -> Totals {
    let connector = &config.connectors[0];
    let notifications = connector.notifications.as_ref().unwrap();
    let sdk_config = credentials::sdk_config(connector).await;
    let source = S3Source::new(connector, &sdk_config);
    let queue = Queue::new(connector, notifications, &sdk_config, source.limiter());
    let mut consumer = Consumer::new(connector, notifications, queue, source);
    let cancel = CancellationToken::new();
    let mut totals = Totals::default();
    let deadline = Instant::now() + DRAIN_DEADLINE;
    loop {
        assert!(
            Instant::now() < deadline,
            "the queue did not drain: {totals:?}"
        );
        let messages = consumer.receive(&cancel).await.unwrap();
        if messages.is_empty() {
            if done().await {
                return totals;
            }
            continue;
        }
        let counters = Counters::default();
        let bytes_before = consumer
            .source()
            .stats()
            .bytes_downloaded
            .load(std::sync::atomic::Ordering::Relaxed);
        s3_connector::with_sink!(sink, index => {
            consumer.handle(index, messages, &counters, &cancel).await
        });
        let bytes = consumer
            .source()
            .stats()
            .bytes_downloaded
            .load(std::sync::atomic::Ordering::Relaxed)
            - bytes_before;
        let report = SyncReport::from_counters(
            &connector.id,
            &counters,
            &Default::default(),
            time::OffsetDateTime::now_utc(),
        );
        totals.add(&report, bytes);
    }
}

/// [`drain_until`] the queue is empty.
async fn drain(config: &Config, sink: &AnySink, notified: &Notified) -> Totals {
    drain_until(config, sink, async || notified.depth().await == (0, 0)).await
}

/// A notified bucket and a connector consuming its queue into a fresh index of `backend`, with
/// `extra` lines in its `notifications:` block.
async fn consuming(
    prefix: &str,
    backend: &Backend,
    extra: &str,
) -> (Notified, Setup, Config, AnySink) {
    let notified = Notified::new(prefix, None).await;
    notified.notify_queue().await;
    let setup = Setup::for_backend(backend);
    let config = setup.config(
        &notified.endpoint,
        &[&notified.bucket],
        &notified.notifications(extra),
    );
    let sink = setup.sink().await;
    (notified, setup, config, sink)
}

/// Polls `check` every 100 ms until it holds; fails after [`DRAIN_DEADLINE`].
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + DRAIN_DEADLINE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each indexed document's body, by key, for the keys given.
fn bodies(setup: &Setup, bucket: &str, keys: &[&str]) -> BTreeMap<String, Option<String>> {
    keys.iter()
        .map(|key| {
            let body = setup.doc(bucket, key).map(|d| d.body.unwrap_or_default());
            ((*key).to_owned(), body)
        })
        .collect()
}

async fn creates_overwrites_and_deletes_follow_the_bucket(backend: Backend) {
    let (notified, setup, config, sink) = consuming("ev-basic", &backend, "").await;
    let keys = [
        "plain.txt",
        "docs/sub/nested.md",
        "with space.txt",
        "plus+sign.txt",
        "100%.txt",
        "unicodé/ü €.md",
        "gone-single.txt",
        "gone-batch-1.txt",
        "gone-batch-2.txt",
    ];
    for key in keys {
        put(
            &notified.s3,
            &notified.bucket,
            key,
            format!("first text of {key}"),
        )
        .await;
    }
    let totals = drain(&config, &sink, &notified).await;
    assert_eq!(totals.errors, 0, "{totals:?}");
    assert_eq!(totals.added, keys.len() as u64, "{totals:?}");
    assert_eq!(totals.received, keys.len() as u64, "{totals:?}");
    assert_eq!(totals.applied, keys.len() as u64, "{totals:?}");
    // Every message was deleted, the s3:TestEvent of the configuration too.
    assert_eq!(totals.messages_deleted, keys.len() as u64 + 1, "{totals:?}");
    for (key, body) in bodies(&setup, &notified.bucket, &keys) {
        assert_eq!(body, Some(format!("first text of {key}")), "{key}");
    }

    put(&notified.s3, &notified.bucket, "plain.txt", "second text").await;
    put(
        &notified.s3,
        &notified.bucket,
        "with space.txt",
        "second text too",
    )
    .await;
    delete(&notified.s3, &notified.bucket, "gone-single.txt").await;
    let objects = ["gone-batch-1.txt", "gone-batch-2.txt"]
        .iter()
        .map(|key| ObjectIdentifier::builder().key(*key).build().unwrap())
        .collect();
    notified
        .s3
        .delete_objects()
        .bucket(&notified.bucket)
        .delete(
            Delete::builder()
                .set_objects(Some(objects))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let totals = drain(&config, &sink, &notified).await;
    assert_eq!(
        (totals.errors, totals.updated, totals.deleted, totals.failed),
        (0, 2, 3, 0),
        "{totals:?}"
    );
    let found = bodies(&setup, &notified.bucket, &keys);
    assert_eq!(found["plain.txt"].as_deref(), Some("second text"));
    assert_eq!(found["with space.txt"].as_deref(), Some("second text too"));
    for key in ["gone-single.txt", "gone-batch-1.txt", "gone-batch-2.txt"] {
        assert_eq!(found[key], None, "{key}");
    }
    assert_eq!(setup.count(), keys.len() as u64 - 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_overwrites_and_deletes_follow_the_bucket_embedded() {
    creates_overwrites_and_deletes_follow_the_bucket(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_overwrites_and_deletes_follow_the_bucket_osmem() {
    creates_overwrites_and_deletes_follow_the_bucket(Backend::Osmem).await;
}

async fn a_burst_with_duplicated_and_stale_messages_converges(backend: Backend) {
    let (notified, setup, config, sink) = consuming("ev-burst", &backend, "").await;
    let keys: Vec<String> = (0..300).map(|n| format!("burst/{n:03}.txt")).collect();
    for key in &keys {
        put(&notified.s3, &notified.bucket, key, format!("text {key}")).await;
    }
    let totals = drain(&config, &sink, &notified).await;
    assert_eq!((totals.errors, totals.added), (0, 300), "{totals:?}");
    assert_eq!(setup.count(), 300);

    // A duplicate of a "created" message (unchanged: nothing is downloaded) and a stale one
    // for a key deleted since (out of order: the key stays deleted).
    delete(&notified.s3, &notified.bucket, &keys[1]).await;
    let drained = drain(&config, &sink, &notified).await;
    assert_eq!(drained.deleted, 1, "{drained:?}");
    let record = |key: &str| {
        serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": notified.bucket}, "object": {"key": key.replace('/', "%2F")}}
        }]})
        .to_string()
    };
    notified.send_raw(&record(&keys[0])).await;
    notified.send_raw(&record(&keys[0])).await;
    notified.send_raw(&record(&keys[1])).await;
    let totals = drain(&config, &sink, &notified).await;
    // The two copies are one key when they arrive in one round, two in two rounds.
    assert!((1..=2).contains(&totals.unchanged), "{totals:?}");
    assert_eq!(
        (totals.added, totals.deleted, totals.bytes_downloaded),
        (0, 0, 0),
        "{totals:?}"
    );
    assert_eq!(totals.messages_deleted, 3);
    assert!(setup.doc(&notified.bucket, &keys[1]).is_none());
    assert_eq!(setup.count(), 299);

    // A full sync agrees with what the events wrote: HeadObject and the listing describe each
    // version alike, so nothing is downloaded again.
    drop(sink);
    let report = setup.sync(&config).await;
    assert_eq!(
        (
            report.unchanged,
            report.added,
            report.updated,
            report.deleted,
            report.errors
        ),
        (299, 0, 0, 0, 0),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_with_duplicated_and_stale_messages_converges_embedded() {
    a_burst_with_duplicated_and_stale_messages_converges(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_with_duplicated_and_stale_messages_converges_osmem() {
    a_burst_with_duplicated_and_stale_messages_converges(Backend::Osmem).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_message_is_kept_then_dead_lettered_while_the_rest_is_applied() {
    let endpoint = MotoServer::shared().endpoint();
    let sqs = sqs_client(&endpoint);
    let dlq_url = sqs
        .create_queue()
        .queue_name(unique_name("ev-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq_arn = queue_arn(&sqs, &dlq_url).await;
    let notified = Notified::new("ev-garbage", Some((&dlq_arn, 2))).await;
    notified.notify_queue().await;
    let setup = Setup::new();
    let config = setup.config(
        &notified.endpoint,
        &[&notified.bucket],
        &notified
            .notifications("")
            .replace("visibility_timeout: 30", "visibility_timeout: 1"),
    );
    let sink = setup.sink().await;
    notified.send_raw("this is not an event").await;
    put(
        &notified.s3,
        &notified.bucket,
        "after-garbage.txt",
        "still applied",
    )
    .await;
    let totals = drain_until(&config, &sink, async || {
        notified.depth().await == (0, 0) && queue_depth(&sqs, &dlq_url).await.0 == 1
    })
    .await;
    // Received twice (maxReceiveCount 2), failed twice, never deleted; the object applied.
    assert_eq!(totals.added, 1, "{totals:?}");
    assert_eq!(totals.failed, 2, "{totals:?}");
    assert_eq!(totals.messages_deleted, 2, "{totals:?}");
    let dead = sqs
        .receive_message()
        .queue_url(&dlq_url)
        .send()
        .await
        .unwrap();
    assert_eq!(
        dead.messages()[0].body(),
        Some("this is not an event"),
        "{dead:?}"
    );
    assert_eq!(
        setup
            .doc(&notified.bucket, "after-garbage.txt")
            .and_then(|d| d.body)
            .as_deref(),
        Some("still applied")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_slower_than_the_visibility_timeout_is_processed_once() {
    let notified = Notified::new("ev-slow", None).await;
    notified.notify_queue().await;
    let proxy = FaultProxy::start(&notified.endpoint);
    let setup = Setup::new();
    // S3 through the proxy, SQS direct; visibility 2 s, the download 5 s.
    let extra = notified
        .notifications(&format!("      sqs_endpoint_url: {}\n", notified.endpoint))
        .replace("visibility_timeout: 30", "visibility_timeout: 2");
    let config = setup.config(&proxy.endpoint(), &[&notified.bucket], &extra);
    let sink = setup.sink().await;
    put(&notified.s3, &notified.bucket, "slow.txt", "worth the wait").await;
    let slow = proxy.inject(
        Fault::Delay(Duration::from_secs(5)),
        Match::any().method("GET").path_contains("slow.txt"),
        None,
    );
    // A competing consumer polls the queue the whole time: it must never get the message.
    let competitor = {
        let sqs = notified.sqs.clone();
        let url = notified.queue_url.clone();
        tokio::spawn(async move {
            let mut stolen = Vec::new();
            for _ in 0..8 {
                let answer = sqs
                    .receive_message()
                    .queue_url(&url)
                    .wait_time_seconds(1)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .unwrap();
                stolen.extend(
                    answer
                        .messages()
                        .iter()
                        .filter(|m| m.body().is_some_and(|b| b.contains("slow.txt")))
                        .map(|m| m.message_id().unwrap_or_default().to_owned()),
                );
            }
            stolen
        })
    };
    // Let the competitor see the message's first moments too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let totals = drain(&config, &sink, &notified).await;
    let stolen = competitor.await.unwrap();
    assert_eq!(totals.added, 1, "{totals:?}");
    assert_eq!(totals.received, 1, "processed once: {totals:?}");
    assert_eq!(slow.applied(), 1, "one download");
    assert!(
        stolen.is_empty(),
        "another consumer received it: {stolen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbridge_events_through_a_rule_with_an_sqs_target() {
    let moto = MotoServer::shared();
    let notified = Notified::new("ev-bridge", None).await;
    notified
        .s3
        .put_bucket_notification_configuration()
        .bucket(&notified.bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .event_bridge_configuration(EventBridgeConfiguration::builder().build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let arn = queue_arn(&notified.sqs, &notified.queue_url).await;
    let rule = unique_name("ev-rule");
    let pattern = serde_json::json!({
        "source": ["aws.s3"],
        "detail-type": ["Object Created", "Object Deleted"],
        "detail": {"bucket": {"name": [notified.bucket]}}
    })
    .to_string();
    for (target, body) in [
        (
            "AWSEvents.PutRule",
            serde_json::json!({"Name": rule, "EventPattern": pattern}),
        ),
        (
            "AWSEvents.PutTargets",
            serde_json::json!({"Rule": rule, "Targets": [{"Id": "queue", "Arn": arn}]}),
        ),
    ] {
        let answer = moto.request(
            "POST",
            "/",
            &[
                ("X-Amz-Target", target),
                ("Content-Type", "application/x-amz-json-1.1"),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/events/aws4_request, SignedHeaders=host, Signature=00",
                ),
            ],
            body.to_string().as_bytes(),
        );
        assert!(answer.is_success(), "{target}: {}", answer.text());
    }
    let setup = Setup::new();
    let config = setup.config(
        &notified.endpoint,
        &[&notified.bucket],
        &notified.notifications("      format: eventbridge\n"),
    );
    let sink = setup.sink().await;
    for key in ["a.txt", "with space+plus.txt", "dir/b.md"] {
        put(
            &notified.s3,
            &notified.bucket,
            key,
            format!("bridged {key}"),
        )
        .await;
    }
    delete(&notified.s3, &notified.bucket, "a.txt").await;
    let totals = drain(&config, &sink, &notified).await;
    assert_eq!((totals.errors, totals.failed), (0, 0), "{totals:?}");
    let found = bodies(
        &setup,
        &notified.bucket,
        &["a.txt", "with space+plus.txt", "dir/b.md"],
    );
    assert_eq!(found["a.txt"], None);
    assert_eq!(
        found["with space+plus.txt"].as_deref(),
        Some("bridged with space+plus.txt")
    );
    assert_eq!(found["dir/b.md"].as_deref(), Some("bridged dir/b.md"));
    assert_eq!(setup.count(), 2);
}

/// The keys and texts of the bucket's objects.
async fn bucket_contents(s3: &aws_sdk_s3::Client, bucket: &str) -> BTreeMap<String, String> {
    let mut contents = BTreeMap::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        for object in page.unwrap().contents() {
            let key = object.key().unwrap().to_owned();
            let body = s3
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .unwrap();
            let text = String::from_utf8(body.body.collect().await.unwrap().to_vec()).unwrap();
            contents.insert(key, text);
        }
    }
    contents
}

/// Asserts that the index holds exactly the bucket: every key once, with its text.
async fn assert_index_is_the_bucket(setup: &Setup, notified: &Notified) {
    let contents = bucket_contents(&notified.s3, &notified.bucket).await;
    for (key, text) in &contents {
        let document = setup.doc(&notified.bucket, key);
        assert_eq!(
            document.and_then(|d| d.body).as_deref(),
            Some(text.as_str()),
            "{key}"
        );
    }
    assert_eq!(setup.count(), contents.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_events_are_in_flight_loses_nothing() {
    let notified = Notified::new("ev-term", None).await;
    notified.notify_queue().await;
    let proxy = FaultProxy::start(&notified.endpoint);
    let _slow = proxy.inject(
        Fault::Delay(Duration::from_millis(700)),
        Match::any().method("GET").path_contains("/term/"),
        None,
    );
    let extra = notified.notifications(&format!(
        "      sqs_endpoint_url: {}\n      max_messages: 10\n    concurrency: 2\n",
        notified.endpoint
    ));
    let dir = WorkerDir::new(
        &[Connector {
            id: "c",
            bucket: &notified.bucket,
            endpoint: proxy.endpoint(),
            extra: &extra,
        }],
        "shutdown_timeout: 60s",
    );
    for n in 0..40 {
        put(
            &notified.s3,
            &notified.bucket,
            &format!("term/{n:02}.txt"),
            format!("text {n}"),
        )
        .await;
    }
    let mut worker = dir.start();
    eventually("the worker to have messages in flight", async || {
        notified.depth().await.1 > 0
    })
    .await;
    worker.signal("TERM");
    let status = worker.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "{status:?}\n{}", worker.log_text());
    // Nothing stays hidden: unfinished messages were handed back at once.
    let (waiting, in_flight) = notified.depth().await;
    assert_eq!(in_flight, 0, "log:\n{}", worker.log_text());
    // Whatever was not applied is still in the queue: a new run completes the index.
    let applied = dir.index("c").count().unwrap();
    assert!(
        waiting > 0 && applied < 40,
        "the SIGTERM came too late to test anything: {waiting} waiting, {applied} applied"
    );
    let restarted = dir.start();
    eventually("the queue to drain after the restart", async || {
        notified.depth().await == (0, 0)
    })
    .await;
    drop(restarted);
    let setup_view = dir.index("c");
    let contents = bucket_contents(&notified.s3, &notified.bucket).await;
    assert_eq!(setup_view.count().unwrap(), contents.len() as u64);
    for (key, text) in contents {
        let document = setup_view.get(DocId::of(&notified.bucket, &key)).unwrap();
        assert_eq!(
            document.and_then(|d| d.body).as_deref(),
            Some(text.as_str()),
            "{key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_queue_make_the_index_one_worker_makes() {
    let notified = Notified::new("ev-two", None).await;
    notified.notify_queue().await;
    let setup = Setup::for_backend(&Backend::Osmem);
    let index_name = setup.index_name().unwrap().to_owned();
    let index = format!("  kind: opensearch\n  url: {}", OsmemServer::shared().url());
    let extra = format!(
        "    index_name: {index_name}\n{}",
        notified.notifications("")
    );
    let connectors = [Connector {
        id: "c",
        bucket: &notified.bucket,
        endpoint: notified.endpoint.clone(),
        extra: &extra,
    }];
    let first = WorkerDir::with_index(&connectors, "", Some(&index));
    let second = WorkerDir::with_index(&connectors, "", Some(&index));
    let (one, two) = (first.start(), second.start());
    for n in 0..150 {
        put(
            &notified.s3,
            &notified.bucket,
            &format!("two/{n:03}.txt"),
            format!("first {n}"),
        )
        .await;
    }
    for n in (0..150).step_by(3) {
        put(
            &notified.s3,
            &notified.bucket,
            &format!("two/{n:03}.txt"),
            format!("second {n}"),
        )
        .await;
    }
    for n in (1..150).step_by(5) {
        delete(&notified.s3, &notified.bucket, &format!("two/{n:03}.txt")).await;
    }
    eventually("both workers to drain the queue", async || {
        notified.depth().await == (0, 0)
    })
    .await;
    let mut deleted = 0;
    for worker in [&one, &two] {
        let events = worker.status().connectors[0].notifications.clone().unwrap();
        assert!(
            events.events_received > 0,
            "both workers took part: {events:?}"
        );
        assert_eq!(events.events_failed, 0, "{events:?}");
        // /metrics counts what /status shows.
        let scrape = parse_metrics(&worker.get("/metrics").text());
        let metric = |name: &str| sample(&scrape, name, &[("connector", "c")]);
        assert_eq!(
            metric("s3c_events_received_total"),
            Some(events.events_received as f64)
        );
        assert_eq!(
            metric("s3c_events_applied_total"),
            Some(events.events_applied as f64)
        );
        assert_eq!(
            metric("s3c_event_messages_deleted_total"),
            Some(events.messages_deleted as f64)
        );
        assert!(metric("s3c_queue_lag_seconds").is_some());
        deleted += events.messages_deleted;
    }
    // Every message (150 + 50 + 30 events and the s3:TestEvent) deleted by one of them. SQS
    // delivers at least once: on a loaded machine a visibility extension can arrive after the
    // timeout, the other worker then receives the message too and both delete it (seen once at
    // a load average of 15: 232). The queue being empty and the index being the bucket are the
    // promises; a redelivery may only add deletions, never lose one.
    assert!(deleted >= 231, "{deleted} messages deleted, 231 sent");
    drop((one, two));
    assert_index_is_the_bucket(&setup, &notified).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_checks_the_queue_and_the_buckets_notification_configuration() {
    let notified = Notified::new("ev-verify", None).await;
    notified.notify_queue().await;
    let quiet = Notified::new("ev-verify-quiet", None).await;
    let setup = Setup::new();
    put(&notified.s3, &notified.bucket, "a.txt", "a").await;
    setup.config(
        &notified.endpoint,
        &[&notified.bucket, &quiet.bucket],
        &notified.notifications(""),
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_s3-connector"))
        .args(["verify", "--json", "--config"])
        .arg(setup.dir.path().join("config.yml"))
        .output()
        .unwrap();
    let steps: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let status_of = |step: &str, target: &str| {
        steps
            .iter()
            .find(|s| s["step"] == step && s["target"].as_str().is_some_and(|t| t.contains(target)))
            .map(|s| s["status"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no {step} step for {target}: {steps:#?}"))
    };
    // No redrive policy: a warning that says what to add.
    assert_eq!(status_of("queue_attributes", &notified.queue_url), "warn");
    assert_eq!(status_of("queue_receive", &notified.queue_url), "pass");
    assert_eq!(status_of("bucket_notification", &notified.bucket), "pass");
    // The second bucket sends no events anywhere: verify fails, naming the fix.
    assert_eq!(status_of("bucket_notification", &quiet.bucket), "fail");
    assert_eq!(output.status.code(), Some(1), "{steps:#?}");
    // The probe's receive hid nothing: the test event is still there for the worker.
    assert_eq!(notified.depth().await.1, 0);
}
