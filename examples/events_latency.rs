//! Freshness through event notifications: how long from a PUT to the document being
//! searchable, and how many events per second one consumer applies.
//!
//! ```sh
//! scripts/bench-events                     # starts moto and osmem-server, builds, runs both sinks
//! cargo run --release --example events_latency -- --endpoint http://127.0.0.1:5000 [--opensearch URL]
//! ```
//!
//! Against moto in server mode (S3 + SQS + bucket notifications in one emulator): a bucket whose
//! notifications go to a fresh queue, and the same consumer round the worker runs
//! ([`s3_connector::events::Consumer`]) consuming it in-process into a fresh index (embedded, or
//! OpenSearch with `--opensearch URL`).
//!
//! 1. Latency: `--events N` objects (default 300) are PUT one at a time at `--rate R` per second
//!    (default 10), each with a unique word; a poller searches for every word not yet found every
//!    10 ms. The latency of an object is from the end of its PUT to the first search that finds
//!    it. Prints the median, p95 and maximum.
//! 2. Throughput: with the consumer stopped, `--events N` more objects are PUT (their messages
//!    wait in the queue); then the consumer starts, and the time until the queue is empty gives
//!    events per second.
//!
//! moto answers about 200-280 requests a second and each event costs several (ReceiveMessage
//! shares, HeadObject, GetObject, DeleteMessageBatch shares), so both figures are bounded by the
//! emulator, not by the connector; the throughput line says how long the rounds spent receiving
//! and applying. `S3C_BENCH_TRACE=1` prints every round.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
use aws_sdk_sqs::types::QueueAttributeName;
use s3_connector::config;
use s3_connector::credentials;
use s3_connector::events::{Consumer, Queue};
use s3_connector::sink::{AnySink, Sink};
use s3_connector::source::s3::S3Source;
use s3_connector::sync::Counters;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

struct Options {
    endpoint: String,
    opensearch: Option<String>,
    events: usize,
    rate: f64,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        endpoint: String::new(),
        opensearch: None,
        events: 300,
        rate: 10.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--endpoint" => options.endpoint = value,
            "--opensearch" => options.opensearch = Some(value),
            "--events" => options.events = value.parse().map_err(|e| format!("--events: {e}"))?,
            "--rate" => options.rate = value.parse().map_err(|e| format!("--rate: {e}"))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if options.endpoint.is_empty() {
        return Err("pass --endpoint http://127.0.0.1:PORT (moto in server mode)".to_owned());
    }
    Ok(options)
}

const KEY_ID: &str = "testing";
const REGION: &str = "us-east-1";

fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(REGION))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            KEY_ID, KEY_ID, None, None, "bench",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::config::Builder::new()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            KEY_ID, KEY_ID, None, None, "bench",
        ))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

type Fail = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Fail> {
    let options = options()?;
    let name = format!("s3c-events-{}", std::process::id());
    let s3 = s3_client(&options.endpoint);
    let sqs = sqs_client(&options.endpoint);
    s3.create_bucket().bucket(&name).send().await?;
    let queue_url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await?
        .queue_url
        .ok_or("no queue URL")?;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or("no queue ARN")?;
    let notify = QueueConfiguration::builder()
        .queue_arn(arn)
        .events(Event::from("s3:ObjectCreated:*"))
        .events(Event::from("s3:ObjectRemoved:*"))
        .build()?;
    s3.put_bucket_notification_configuration()
        .bucket(&name)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(notify)
                .build(),
        )
        .send()
        .await?;

    let dir = tempfile_dir(&name)?;
    let index = match &options.opensearch {
        Some(url) => format!("  kind: opensearch\n  url: {url}"),
        None => format!("  kind: embedded\n  path: {}", dir.display()),
    };
    let text = format!(
        "index:\n{index}\nconnectors:\n  - id: bench\n    index_name: {name}\n    buckets: [{name:?}]\n    region: {REGION}\n    endpoint_url: {endpoint}\n    aws_access_key_id: {KEY_ID}\n    aws_secret_access_key: {KEY_ID}\n    notifications:\n      queue_url: {queue_url}\n      visibility_timeout: 60\n",
        endpoint = options.endpoint
    );
    let config = config::parse(&text, std::path::Path::new("bench.yml"), &dir, &|_| None)?;
    let connector = Box::leak(Box::new(
        config.connectors.into_iter().next().ok_or("no connector")?,
    ));
    let sink = AnySink::open(&config.index, connector.index_name()).await?;
    let sink_kind = if options.opensearch.is_some() {
        "opensearch (osmem)"
    } else {
        "embedded"
    };

    // 1. Latency.
    let cancel = CancellationToken::new();
    let consumer = spawn_consumer(connector, sink.clone(), cancel.clone()).await?;
    let pending: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let producing = Arc::new(AtomicBool::new(true));
    let poller = {
        let (pending, latencies, producing, sink) = (
            pending.clone(),
            latencies.clone(),
            producing.clone(),
            sink.clone(),
        );
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(600);
            while Instant::now() < deadline {
                let waiting: Vec<(String, Instant)> = pending.lock().await.clone();
                if waiting.is_empty() && !producing.load(Ordering::SeqCst) {
                    return;
                }
                for (word, put_at) in waiting {
                    let found =
                        s3_connector::with_sink!(&sink, index => index.search(&word, 1).await);
                    if found.is_ok_and(|hits| !hits.is_empty()) {
                        latencies.lock().await.push(put_at.elapsed());
                        pending.lock().await.retain(|(w, _)| *w != word);
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let period = Duration::from_secs_f64(1.0 / options.rate.max(0.001));
    let started = Instant::now();
    for n in 0..options.events {
        let word = format!("probe{n}x{}", std::process::id());
        s3.put_object()
            .bucket(&name)
            .key(format!("latency/{n:05}.txt"))
            .body(ByteStream::from(
                format!("latency probe {word}").into_bytes(),
            ))
            .send()
            .await?;
        pending.lock().await.push((word, Instant::now()));
        let next = started + period * (n as u32 + 1);
        tokio::time::sleep_until(next.into()).await;
    }
    producing.store(false, Ordering::SeqCst);
    poller.await?;
    cancel.cancel();
    consumer.await?;
    let mut latencies = latencies.lock().await.clone();
    latencies.sort();
    if latencies.len() < options.events {
        return Err(format!(
            "only {} of {} objects became searchable",
            latencies.len(),
            options.events
        )
        .into());
    }
    let at = |q: f64| {
        latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!(
        "{sink_kind}: PUT to searchable over {} events at {}/s: median {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        latencies.len(),
        options.rate,
        at(0.5).as_secs_f64() * 1000.0,
        at(0.95).as_secs_f64() * 1000.0,
        latencies[latencies.len() - 1].as_secs_f64() * 1000.0,
    );

    // 2. Throughput: a backlog, then one consumer drains it.
    for n in 0..options.events {
        s3.put_object()
            .bucket(&name)
            .key(format!("backlog/{n:05}.txt"))
            .body(ByteStream::from(format!("backlog object {n}").into_bytes()))
            .send()
            .await?;
    }
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let consumer = spawn_consumer(connector, sink.clone(), cancel.clone()).await?;
    loop {
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await?
            .attributes
            .unwrap_or_default();
        if attributes.values().all(|v| v == "0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    cancel.cancel();
    let spent = consumer.await?;
    println!(
        "{sink_kind}: one consumer applied {} queued events in {:.1} s: {:.0} events/s ({} rounds; {:.1} s in ReceiveMessage, {:.1} s applying: HeadObject, GetObject, index, commit, DeleteMessageBatch)",
        options.events,
        elapsed.as_secs_f64(),
        options.events as f64 / elapsed.as_secs_f64(),
        spent.rounds,
        spent.receiving.as_secs_f64(),
        spent.applying.as_secs_f64(),
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A scratch directory for the embedded index.
fn tempfile_dir(name: &str) -> Result<std::path::PathBuf, Fail> {
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Time a consumer spent receiving (non-empty receives only) and applying, and its rounds.
#[derive(Debug, Default, Clone, Copy)]
struct Spent {
    receiving: Duration,
    applying: Duration,
    rounds: usize,
}

/// Runs the worker's consumer round in a loop until `cancel` fires.
async fn spawn_consumer(
    connector: &'static config::ConnectorConfig,
    sink: AnySink,
    cancel: CancellationToken,
) -> Result<tokio::task::JoinHandle<Spent>, Fail> {
    let notifications = connector
        .notifications
        .as_ref()
        .ok_or("the connector has no notifications")?;
    let sdk_config = credentials::sdk_config(connector).await;
    let source = S3Source::new(connector, &sdk_config);
    let queue = Queue::new(connector, notifications, &sdk_config, source.limiter());
    let trace = std::env::var_os("S3C_BENCH_TRACE").is_some();
    Ok(tokio::spawn(async move {
        let mut consumer = Consumer::new(connector, notifications, queue, source);
        let mut spent = Spent::default();
        while !cancel.is_cancelled() {
            let started = Instant::now();
            match consumer.receive(&cancel).await {
                Ok(messages) if !messages.is_empty() => {
                    let count = messages.len();
                    let received = Instant::now();
                    let counters = Counters::default();
                    s3_connector::with_sink!(&sink, index => {
                        Box::pin(consumer.handle(index, messages, &counters, &cancel)).await
                    });
                    spent.receiving += received - started;
                    spent.applying += received.elapsed();
                    spent.rounds += 1;
                    if trace {
                        eprintln!(
                            "round: {count} messages, receiving {:?}, applying {:?}",
                            received - started,
                            received.elapsed()
                        );
                    }
                }
                Ok(_) => {}
                Err(error) => eprintln!("receive failed: {error}"),
            }
        }
        spent
    }))
}
