//! S3 and S3-compatible stores: list buckets, page through ListObjectsV2, fetch objects.
//!
//! Every call carries the connector's ExpectedBucketOwner (where S3 accepts one), waits for the
//! connector's request-rate limiter, and goes through the project's one retry policy. This
//! module knows S3, not the index: it hands out listing entries and bytes.

mod error;

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use aws_config::{Region, SdkConfig};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use time::OffsetDateTime;

pub use error::{ErrorKind, Operation, SourceError, Symptoms, classify};

use super::{ListPage, ListRequest, ObjectStore};
use crate::config::{ConnectorConfig, redact_urls};
use crate::retry::RetryPolicy;

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEntry {
    /// The key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last-modified time.
    pub last_modified: OffsetDateTime,
    /// The ETag, quotes included.
    pub etag: String,
    /// The storage class (`STANDARD`, `GLACIER`, ...), when the store reports one.
    pub storage_class: Option<String>,
}

/// A downloaded object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedObject {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Content-Type, if the store sent one.
    pub content_type: Option<String>,
    /// Content-Encoding, if the store sent one.
    pub content_encoding: Option<String>,
    /// User metadata (`x-amz-meta-<name>` headers): name without the prefix, and value.
    pub metadata: Vec<(String, String)>,
}

/// The outcome of fetching an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The content, within the size cap.
    Content(FetchedObject),
    /// The object no longer exists (deleted after it was listed).
    Gone,
    /// The object grew past the size cap after it was listed; the download was stopped.
    TooLarge,
}

/// Where a bucket sends its event notifications (GetBucketNotificationConfiguration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotificationTargets {
    /// SQS queues by ARN, each with the events it gets (`s3:ObjectCreated:*`, ...).
    pub queues: Vec<(String, Vec<String>)>,
    /// SNS topics by ARN, each with its events.
    pub topics: Vec<(String, Vec<String>)>,
    /// Whether every event also goes to EventBridge.
    pub eventbridge: bool,
}

/// Counters of the calls made, read by reports and metrics.
#[derive(Debug, Default)]
pub struct S3Stats {
    /// Requests sent, retries included.
    pub requests: AtomicU64,
    /// Retries after transient errors.
    pub retries: AtomicU64,
    /// Bytes of object content received.
    pub bytes_downloaded: AtomicU64,
}

/// A client for one connector's buckets.
///
/// Calls for a bucket whose region was located with [`S3Source::locate_bucket`] go to a client
/// of that region; others use the connector's region.
#[derive(Debug, Clone)]
pub struct S3Source {
    client: Client,
    /// Clients of other regions, made on demand, and the located region of each bucket.
    regions: Arc<RwLock<Regions>>,
    expected_owner: Option<String>,
    retry: RetryPolicy,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    page_size: i32,
    stats: Arc<S3Stats>,
    /// The endpoint as errors name it.
    endpoint: Arc<str>,
}

impl S3Source {
    /// A source for `connector`, with credentials from `sdk_config`.
    pub fn new(connector: &ConnectorConfig, sdk_config: &SdkConfig) -> Self {
        let mut s3_config =
            aws_sdk_s3::config::Builder::from(sdk_config).force_path_style(connector.path_style);
        if let Some(endpoint) = &connector.endpoint_url {
            s3_config = s3_config.endpoint_url(endpoint);
        }
        let limiter = NonZeroU32::new(connector.requests_per_second)
            .map(|rate| Arc::new(RateLimiter::direct(Quota::per_second(rate))));
        let endpoint = match (&connector.endpoint_url, sdk_config.region()) {
            (Some(url), _) => redact_urls(url).into_owned(),
            (None, Some(region)) => format!("AWS S3 in {region}"),
            (None, None) => "AWS S3".to_owned(),
        };
        Self {
            client: Client::from_conf(s3_config.build()),
            regions: Arc::default(),
            expected_owner: connector.expected_owner().map(str::to_owned),
            retry: RetryPolicy::with_attempts(connector.max_attempts),
            limiter,
            page_size: i32::try_from(connector.page_size).unwrap_or(1000),
            stats: Arc::new(S3Stats::default()),
            endpoint: endpoint.into(),
        }
    }

    /// The call counters of this source.
    pub fn stats(&self) -> &S3Stats {
        &self.stats
    }

    /// The request-rate limiter of this connector (`requests_per_second`), if any: the SQS
    /// client of its event notifications waits for the same one.
    pub fn limiter(&self) -> Option<Arc<DefaultDirectRateLimiter>> {
        self.limiter.clone()
    }

    /// The expected bucket owner sent with each call, if any.
    pub fn expected_owner(&self) -> Option<&str> {
        self.expected_owner.as_deref()
    }

    /// The client for calls on `bucket`: the one of its located region, else the default.
    /// Public so that tools can make raw calls with exactly the connector's client settings
    /// (the benchmark's limits, `examples/s3bench`).
    pub fn client(&self, bucket: &str) -> Client {
        let regions = self
            .regions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        regions
            .bucket_region
            .get(bucket)
            .and_then(|region| regions.clients.get(region))
            .unwrap_or(&self.client)
            .clone()
    }

    /// Finds the region of `bucket` (GetBucketLocation, else the `x-amz-bucket-region` of
    /// HeadBucket) and routes its later calls to a client of that region. `Ok(None)` when the
    /// store names no region.
    pub async fn locate_bucket(&self, bucket: &str) -> Result<Option<String>, SourceError> {
        let region = match self.get_bucket_location(bucket).await {
            Ok(region) => Some(region),
            Err(location_error) => match self.head_bucket_with(bucket, true).await {
                Ok(region) => region,
                Err(SourceError {
                    kind:
                        ErrorKind::WrongRegion {
                            actual: Some(region),
                        },
                    ..
                }) => Some(region),
                Err(_) => return Err(location_error),
            },
        };
        if let Some(region) = &region {
            let mut regions = self.regions.write().unwrap_or_else(|p| p.into_inner());
            if self.client.config().region().map(Region::as_ref) != Some(region.as_str())
                && !regions.clients.contains_key(region)
            {
                let config = self
                    .client
                    .config()
                    .to_builder()
                    .region(Region::new(region.clone()))
                    .build();
                regions
                    .clients
                    .insert(region.clone(), Client::from_conf(config));
            }
            regions
                .bucket_region
                .insert(bucket.to_owned(), region.clone());
        }
        Ok(region)
    }

    /// GetBucketLocation: the bucket's region (an empty answer means `us-east-1`, `EU` means
    /// `eu-west-1`, as S3 defines them).
    async fn get_bucket_location(&self, bucket: &str) -> Result<String, SourceError> {
        let owner = self.expected_owner.as_deref();
        let output = self
            .send(Operation::GetBucketLocation, bucket, owner, || {
                self.client(bucket)
                    .get_bucket_location()
                    .bucket(bucket)
                    .set_expected_bucket_owner(self.expected_owner.clone())
                    .send()
            })
            .await?;
        let constraint = output
            .location_constraint()
            .map(|c| c.as_str())
            .unwrap_or("");
        Ok(match constraint {
            "" => "us-east-1".to_owned(),
            "EU" => "eu-west-1".to_owned(),
            other => other.to_owned(),
        })
    }

    /// HeadBucket with the expected owner: `Ok` with the region the store reports, if any.
    /// A denial is checked once more without the owner, to tell an owner mismatch from a
    /// missing permission.
    pub async fn head_bucket(&self, bucket: &str) -> Result<Option<String>, SourceError> {
        self.head_bucket_with(bucket, true).await
    }

    async fn head_bucket_with(
        &self,
        bucket: &str,
        with_owner: bool,
    ) -> Result<Option<String>, SourceError> {
        let owner = self.expected_owner.as_deref().filter(|_| with_owner);
        let result = self
            .send(Operation::HeadBucket, bucket, owner, || {
                self.client(bucket)
                    .head_bucket()
                    .bucket(bucket)
                    .set_expected_bucket_owner(owner.map(str::to_owned))
                    .send()
            })
            .await;
        match result {
            Ok(output) => Ok(output.bucket_region().map(str::to_owned)),
            Err(error) => Err(self.explain_denial(error).await),
        }
    }

    /// Turns an AccessDenied on a bucket into [`ErrorKind::OwnerMismatch`] when the same
    /// bucket answers a HeadBucket without ExpectedBucketOwner: S3 gives the same 403 for both
    /// causes, and only this second call tells them apart.
    async fn explain_denial(&self, mut error: SourceError) -> SourceError {
        if error.kind == ErrorKind::AccessDenied && error.expected_owner.is_some() {
            let bucket = error
                .target
                .split('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            if Box::pin(self.head_bucket_with(&bucket, false))
                .await
                .is_ok()
            {
                error.kind = ErrorKind::OwnerMismatch;
            }
        }
        error
    }

    /// The first key under `prefix` (ListObjectsV2 with MaxKeys=1), if any.
    pub async fn first_key(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Option<String>, SourceError> {
        let page = self
            .list_objects(bucket, &ListRequest::under(prefix), None, 1)
            .await?;
        Ok(page.entries.into_iter().next().map(|entry| entry.key))
    }

    /// A ranged GetObject of the first byte: proves read permission without a download.
    pub async fn read_first_byte(&self, bucket: &str, key: &str) -> Result<(), SourceError> {
        let target = format!("{bucket}/{key}");
        let owner = self.expected_owner.as_deref();
        let result = self
            .send(Operation::GetObject, &target, owner, || {
                self.get_object_request(bucket, key)
                    .range("bytes=0-0")
                    .send()
            })
            .await;
        match result {
            Err(error) => Err(self.explain_denial(error).await),
            Ok(_) => Ok(()),
        }
    }

    /// A GetObject of `bucket/key` with the expected owner, through the bucket's client.
    fn get_object_request(
        &self,
        bucket: &str,
        key: &str,
    ) -> aws_sdk_s3::operation::get_object::builders::GetObjectFluentBuilder {
        self.client(bucket)
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_expected_bucket_owner(self.expected_owner.clone())
    }

    /// Names of every bucket the identity can list.
    pub async fn list_buckets(&self) -> Result<Vec<String>, SourceError> {
        let output = self
            .send(Operation::ListBuckets, "", None, || {
                self.client.list_buckets().send()
            })
            .await?;
        Ok(output
            .buckets()
            .iter()
            .filter_map(|bucket| bucket.name().map(str::to_owned))
            .collect())
    }

    /// Downloads an object, stopping once it exceeds `max_bytes`.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: u64,
    ) -> Result<Fetched, SourceError> {
        let target = format!("{bucket}/{key}");
        let owner = self.expected_owner.as_deref();
        let result = self
            .call(|| {
                let request = self.get_object_request(bucket, key);
                let target = &target;
                async move {
                    let mut output = request.send().await.map_err(|e| {
                        SourceError::from_sdk(Operation::GetObject, target, owner, &e)
                    })?;
                    let capacity = usize::try_from(output.content_length().unwrap_or(0).max(0))
                        .unwrap_or(0)
                        .min(usize::try_from(max_bytes).unwrap_or(usize::MAX));
                    let mut bytes = Vec::with_capacity(capacity);
                    while let Some(chunk) =
                        output.body.try_next().await.map_err(|e| SourceError {
                            operation: Operation::GetObject,
                            target: target.clone(),
                            kind: ErrorKind::Connection,
                            status: None,
                            code: None,
                            message: format!("reading the body failed: {e}"),
                            expected_owner: owner.map(str::to_owned),
                            endpoint: None,
                        })?
                    {
                        self.stats
                            .bytes_downloaded
                            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        if (bytes.len() + chunk.len()) as u64 > max_bytes {
                            return Ok(Fetched::TooLarge);
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    Ok(Fetched::Content(FetchedObject {
                        bytes,
                        content_type: output.content_type,
                        content_encoding: output.content_encoding,
                        metadata: output.metadata.unwrap_or_default().into_iter().collect(),
                    }))
                }
            })
            .await;
        match result {
            Err(error) if error.is_not_found() => Ok(Fetched::Gone),
            other => other,
        }
    }

    /// GetObject streamed into the file at `path` (created, or emptied on each attempt), so
    /// that a large object never sits in memory; its size, `None` when the key does not exist.
    pub async fn download(
        &self,
        bucket: &str,
        key: &str,
        path: &std::path::Path,
    ) -> Result<Option<u64>, SourceError> {
        use tokio::io::AsyncWriteExt as _;
        let target = format!("{bucket}/{key}");
        let owner = self.expected_owner.as_deref();
        let failed = |kind: ErrorKind, message: String| SourceError {
            operation: Operation::GetObject,
            target: target.clone(),
            kind,
            status: None,
            code: None,
            message,
            expected_owner: owner.map(str::to_owned),
            endpoint: None,
        };
        let result = self
            .call(|| {
                let request = self.get_object_request(bucket, key);
                let target = &target;
                let failed = &failed;
                async move {
                    let mut output = request.send().await.map_err(|e| {
                        SourceError::from_sdk(Operation::GetObject, target, owner, &e)
                    })?;
                    let local = |e: std::io::Error| {
                        failed(
                            ErrorKind::Other,
                            format!("writing the download to {} failed: {e}", path.display()),
                        )
                    };
                    let mut file = tokio::io::BufWriter::new(
                        tokio::fs::File::create(path).await.map_err(local)?,
                    );
                    let mut size = 0u64;
                    while let Some(chunk) = output.body.try_next().await.map_err(|e| {
                        failed(
                            ErrorKind::Connection,
                            format!("reading the body failed: {e}"),
                        )
                    })? {
                        self.stats
                            .bytes_downloaded
                            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        size += chunk.len() as u64;
                        file.write_all(&chunk).await.map_err(local)?;
                    }
                    file.flush().await.map_err(local)?;
                    Ok(Some(size))
                }
            })
            .await;
        match result {
            Err(error) if error.is_not_found() => Ok(None),
            other => other,
        }
    }

    /// HeadObject with the expected owner: the object as a listing would show it, `None` when
    /// the key does not exist.
    pub async fn head_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectEntry>, SourceError> {
        let target = format!("{bucket}/{key}");
        let owner = self.expected_owner.as_deref();
        let result = self
            .send(Operation::HeadObject, &target, owner, || {
                self.client(bucket)
                    .head_object()
                    .bucket(bucket)
                    .key(key)
                    .set_expected_bucket_owner(self.expected_owner.clone())
                    .send()
            })
            .await;
        let output = match result {
            Ok(output) => output,
            Err(error) if error.is_not_found() => return Ok(None),
            Err(error) => return Err(self.explain_denial(error).await),
        };
        Ok(Some(ObjectEntry {
            key: key.to_owned(),
            size: u64::try_from(output.content_length().unwrap_or(0)).unwrap_or(0),
            last_modified: output
                .last_modified()
                .and_then(to_offset_date_time)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            etag: output.e_tag().unwrap_or_default().to_owned(),
            // HeadObject leaves the header out for STANDARD; a listing names it.
            storage_class: Some(
                output
                    .storage_class()
                    .map_or("STANDARD", |class| class.as_str())
                    .to_owned(),
            ),
        }))
    }

    /// The object's tags (GetObjectTagging), key and value.
    pub async fn object_tags(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Vec<(String, String)>, SourceError> {
        let target = format!("{bucket}/{key}");
        let owner = self.expected_owner.as_deref();
        let output = self
            .send(Operation::GetObjectTagging, &target, owner, || {
                self.client(bucket)
                    .get_object_tagging()
                    .bucket(bucket)
                    .key(key)
                    .set_expected_bucket_owner(self.expected_owner.clone())
                    .send()
            })
            .await?;
        Ok(output
            .tag_set()
            .iter()
            .map(|tag| (tag.key().to_owned(), tag.value().to_owned()))
            .collect())
    }

    /// Where `bucket` sends its event notifications.
    pub async fn notification_targets(
        &self,
        bucket: &str,
    ) -> Result<NotificationTargets, SourceError> {
        let owner = self.expected_owner.as_deref();
        let output = self
            .send(Operation::GetBucketNotification, bucket, owner, || {
                self.client(bucket)
                    .get_bucket_notification_configuration()
                    .bucket(bucket)
                    .set_expected_bucket_owner(self.expected_owner.clone())
                    .send()
            })
            .await?;
        let events = |events: &[aws_sdk_s3::types::Event]| {
            events.iter().map(|e| e.as_str().to_owned()).collect()
        };
        Ok(NotificationTargets {
            queues: output
                .queue_configurations()
                .iter()
                .map(|q| (q.queue_arn().to_owned(), events(q.events())))
                .collect(),
            topics: output
                .topic_configurations()
                .iter()
                .map(|t| (t.topic_arn().to_owned(), events(t.events())))
                .collect(),
            eventbridge: output.event_bridge_configuration().is_some(),
        })
    }

    /// Sends the request that `request` makes (afresh for each attempt) through
    /// [`Self::call`], turning a failure into the [`SourceError`] of `operation` on `target`.
    async fn send<T, E, Fut>(
        &self,
        operation: Operation,
        target: &str,
        owner: Option<&str>,
        mut request: impl FnMut() -> Fut,
    ) -> Result<T, SourceError>
    where
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.call(|| {
            let sent = request();
            async move {
                sent.await
                    .map_err(|e| SourceError::from_sdk(operation, target, owner, &e))
            }
        })
        .await
    }

    /// Runs one S3 call under the rate limit and the retry policy, counting requests.
    async fn call<T, Op, Fut>(&self, mut operation: Op) -> Result<T, SourceError>
    where
        Op: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SourceError>>,
    {
        let endpoint = &*self.endpoint;
        self.retry
            .run_limited(
                "S3 call failed; retrying.",
                self.limiter.as_deref(),
                (&self.stats.requests, &self.stats.retries),
                || {
                    let attempt = operation();
                    async move {
                        attempt.await.map_err(|mut error| {
                            error.endpoint = Some(endpoint.to_owned());
                            error
                        })
                    }
                },
            )
            .await
    }
}

/// An SDK timestamp as a time of day; `None` when out of range.
fn to_offset_date_time(t: &aws_sdk_s3::primitives::DateTime) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(t.secs()) * 1_000_000_000 + i128::from(t.subsec_nanos()),
    )
    .ok()
}

/// Regional clients and where each located bucket lives.
#[derive(Debug, Default)]
struct Regions {
    clients: HashMap<String, Client>,
    bucket_region: HashMap<String, String>,
}

impl S3Source {
    /// One ListObjectsV2 page of at most `max_keys` objects (and common prefixes) of `bucket`
    /// that `request` asks for, from `continuation` (`None`: the first page). Folder markers
    /// (keys ending in `/` with no content) are left out. A page that fails after all retries
    /// is an error: the listing is then incomplete.
    async fn list_objects(
        &self,
        bucket: &str,
        request: &ListRequest<'_>,
        continuation: Option<String>,
        max_keys: i32,
    ) -> Result<ListPage, SourceError> {
        let owner = self.expected_owner.as_deref();
        let result = self
            .send(Operation::ListObjects, bucket, owner, || {
                self.client(bucket)
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(request.prefix)
                    .set_start_after(request.start_after.map(str::to_owned))
                    .set_delimiter(request.delimited.then(|| "/".to_owned()))
                    .max_keys(max_keys)
                    .set_continuation_token(continuation.clone())
                    .set_expected_bucket_owner(self.expected_owner.clone())
                    .send()
            })
            .await;
        let output = match result {
            Ok(output) => output,
            Err(error) => return Err(self.explain_denial(error).await),
        };
        let entries = output
            .contents()
            .iter()
            .filter_map(|object| {
                let key = object.key()?;
                let size = u64::try_from(object.size().unwrap_or(0)).unwrap_or(0);
                if key.ends_with('/') && size == 0 {
                    return None;
                }
                Some(ObjectEntry {
                    key: key.to_owned(),
                    size,
                    last_modified: object
                        .last_modified()
                        .and_then(to_offset_date_time)
                        .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    etag: object.e_tag().unwrap_or_default().to_owned(),
                    storage_class: object.storage_class().map(|c| c.as_str().to_owned()),
                })
            })
            .collect();
        let common_prefixes = output
            .common_prefixes()
            .iter()
            .filter_map(|common| common.prefix().map(str::to_owned))
            .collect();
        let continuation = output
            .next_continuation_token()
            .filter(|_| output.is_truncated().unwrap_or(false))
            .map(str::to_owned);
        Ok(ListPage {
            entries,
            common_prefixes,
            continuation,
        })
    }
}

impl ObjectStore for S3Source {
    async fn list_buckets(&self) -> Result<Vec<String>, SourceError> {
        S3Source::list_buckets(self).await
    }

    async fn locate_bucket(&self, bucket: &str) -> Result<(), SourceError> {
        S3Source::locate_bucket(self, bucket).await.map(drop)
    }

    async fn list_page(
        &self,
        bucket: &str,
        request: &ListRequest<'_>,
        continuation: Option<String>,
    ) -> Result<ListPage, SourceError> {
        self.list_objects(bucket, request, continuation, self.page_size)
            .await
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: u64,
    ) -> Result<Fetched, SourceError> {
        S3Source::get_object(self, bucket, key, max_bytes).await
    }

    async fn head_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectEntry>, SourceError> {
        S3Source::head_object(self, bucket, key).await
    }

    async fn object_tags(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Vec<(String, String)>, SourceError> {
        S3Source::object_tags(self, bucket, key).await
    }

    async fn download(
        &self,
        bucket: &str,
        key: &str,
        path: &std::path::Path,
    ) -> Result<Option<u64>, SourceError> {
        S3Source::download(self, bucket, key, path).await
    }

    fn stats(&self) -> &S3Stats {
        S3Source::stats(self)
    }
}
