//! Raw S3 work for the benchmark: uploading and changing a dataset, and the two limits our sync
//! is measured against, a parallel GetObject loop and a ListObjectsV2 walk.
//!
//! Every call is a plain `aws-sdk-s3` call on the connector's own SDK client (same credentials,
//! timeouts, path style and HTTP stack as a sync), with no retry policy, rate limiter or sync
//! machinery around it: the limits are what the SDK and the store can do. Any failed call ends
//! the command with an error, so a broken harness fails loudly.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context as _, bail};
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use futures::{StreamExt as _, TryStreamExt as _, stream};
use md5::{Digest as _, Md5};
use serde::Serialize;

use crate::corpus::Dataset;

/// The bucket a connector's benchmark data lives in, and its client.
pub struct Target {
    /// The connector's SDK client.
    pub client: Client,
    /// The bucket (the connector's first).
    pub bucket: String,
    /// ListObjectsV2 MaxKeys, as the connector's `page_size`.
    pub page_size: i32,
    /// Concurrency of the GetObject loop, as the connector's `concurrency` unless overridden.
    pub concurrency: usize,
}

/// What `upload` did.
#[derive(Debug, Serialize)]
pub struct Uploaded {
    /// Objects in the dataset.
    pub objects: usize,
    /// Bytes in the dataset.
    pub bytes: u64,
    /// Objects written now (the others were already there, byte for byte).
    pub uploaded: usize,
    /// Objects removed because the dataset does not have them.
    pub removed: usize,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Makes the bucket hold exactly `dataset` (round 0): writes objects that are missing or differ
/// (by size and MD5 ETag), removes keys the dataset lacks. A bucket already holding the dataset
/// costs one listing and no write.
pub async fn upload(
    target: &Target,
    dataset: &Dataset,
    seed: u64,
    concurrency: usize,
) -> anyhow::Result<Uploaded> {
    let started = Instant::now();
    create_bucket(target).await?;
    let mut present = list_all(target).await?;
    let results: Vec<(u64, bool)> = stream::iter(0..dataset.len())
        .map(|index| {
            let object = dataset.object(seed, index, 0);
            let size = object.bytes.len() as u64;
            let same = present.get(&object.key).is_some_and(|(s, etag)| {
                *s == size && etag.trim_matches('"') == hex::encode(Md5::digest(&object.bytes))
            });
            async move {
                if !same {
                    put(target, &object.key, object.content_type, object.bytes).await?;
                }
                anyhow::Ok((size, !same))
            }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    for index in 0..dataset.len() {
        present.remove(&dataset.key(index));
    }
    let removed = present.len();
    let stale: Vec<String> = present.into_keys().collect();
    for chunk in stale.chunks(1000) {
        remove(target, chunk).await?;
    }
    Ok(Uploaded {
        objects: dataset.len(),
        bytes: results.iter().map(|(size, _)| size).sum(),
        uploaded: results.iter().filter(|(_, written)| *written).count(),
        removed,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// What `mutate` did.
#[derive(Debug, Serialize)]
pub struct Mutated {
    /// Objects given new content.
    pub changed: usize,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Gives one object in `every` new content (that of `round`): objects whose index is
/// `round` modulo `every`, so successive rounds change different objects.
pub async fn mutate(
    target: &Target,
    dataset: &Dataset,
    seed: u64,
    round: u64,
    every: usize,
    concurrency: usize,
) -> anyhow::Result<Mutated> {
    if round == 0 || every == 0 {
        bail!("--round and --every must be at least 1 (round 0 is the dataset as uploaded)");
    }
    let started = Instant::now();
    let offset = (round % every as u64) as usize;
    let indices: Vec<usize> = (offset..dataset.len()).step_by(every).collect();
    let changed = indices.len();
    stream::iter(indices)
        .map(|index| {
            let object = dataset.object(seed, index, round);
            async move { put(target, &object.key, object.content_type, object.bytes).await }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(Mutated {
        changed,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// What a limit loop measured.
#[derive(Debug, Serialize)]
pub struct Measured {
    /// Objects listed or fetched.
    pub objects: usize,
    /// Bytes of content fetched (0 for a listing).
    pub bytes: u64,
    /// ListObjectsV2 pages read.
    pub pages: usize,
    /// Seconds of the measured loop alone.
    pub seconds: f64,
    /// Seconds spent listing the keys before a GetObject loop (not part of `seconds`).
    pub setup_seconds: f64,
}

/// The ListObjectsV2 limit: one walk of the whole bucket, page after page, as a sync lists it
/// (same page size), without doing anything with the entries but counting them.
pub async fn list_walk(target: &Target) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let (mut objects, mut pages) = (0, 0);
    let mut continuation = None;
    loop {
        let page = list_page(target, continuation).await?;
        pages += 1;
        objects += page.contents().len();
        continuation = page.next_continuation_token().map(str::to_owned);
        if !page.is_truncated().unwrap_or(false) || continuation.is_none() {
            break;
        }
    }
    Ok(Measured {
        objects,
        bytes: 0,
        pages,
        seconds: started.elapsed().as_secs_f64(),
        setup_seconds: 0.0,
    })
}

/// The GetObject limit: every object of the bucket fetched whole, `concurrency` at a time.
/// The keys are listed first and that time is not counted: this is the download loop alone.
pub async fn get_loop(target: &Target) -> anyhow::Result<Measured> {
    let listing_started = Instant::now();
    let keys: Vec<String> = list_all(target).await?.into_keys().collect();
    let setup_seconds = listing_started.elapsed().as_secs_f64();
    let started = Instant::now();
    let sizes: Vec<u64> = stream::iter(keys)
        .map(|key| async move {
            let output = target
                .client
                .get_object()
                .bucket(&target.bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| call_error("GetObject", &key, &e))?;
            let body = output
                .body
                .collect()
                .await
                .with_context(|| format!("reading the body of {key}"))?;
            anyhow::Ok(body.into_bytes().len() as u64)
        })
        .buffer_unordered(target.concurrency)
        .try_collect()
        .await?;
    Ok(Measured {
        objects: sizes.len(),
        bytes: sizes.iter().sum(),
        pages: 0,
        seconds: started.elapsed().as_secs_f64(),
        setup_seconds,
    })
}

async fn create_bucket(target: &Target) -> anyhow::Result<()> {
    match target
        .client
        .create_bucket()
        .bucket(&target.bucket)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(error)
            if matches!(
                error.code(),
                Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
            ) =>
        {
            Ok(())
        }
        Err(error) => Err(call_error("CreateBucket", &target.bucket, &error)),
    }
}

async fn list_page(
    target: &Target,
    continuation: Option<String>,
) -> anyhow::Result<aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output> {
    target
        .client
        .list_objects_v2()
        .bucket(&target.bucket)
        .max_keys(target.page_size)
        .set_continuation_token(continuation)
        .send()
        .await
        .map_err(|e| call_error("ListObjectsV2", &target.bucket, &e))
}

/// Every key of the bucket with its size and ETag.
async fn list_all(target: &Target) -> anyhow::Result<HashMap<String, (u64, String)>> {
    let mut objects = HashMap::new();
    let mut continuation = None;
    loop {
        let page = list_page(target, continuation).await?;
        for object in page.contents() {
            if let Some(key) = object.key() {
                let size = u64::try_from(object.size().unwrap_or(0)).unwrap_or(0);
                let etag = object.e_tag().unwrap_or_default().to_owned();
                objects.insert(key.to_owned(), (size, etag));
            }
        }
        continuation = page.next_continuation_token().map(str::to_owned);
        if !page.is_truncated().unwrap_or(false) || continuation.is_none() {
            return Ok(objects);
        }
    }
}

async fn put(target: &Target, key: &str, content_type: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
    target
        .client
        .put_object()
        .bucket(&target.bucket)
        .key(key)
        .content_type(content_type)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .map_err(|e| call_error("PutObject", key, &e))?;
    Ok(())
}

async fn remove(target: &Target, keys: &[String]) -> anyhow::Result<()> {
    let objects = keys
        .iter()
        .map(|key| ObjectIdentifier::builder().key(key).build())
        .collect::<Result<Vec<_>, _>>()?;
    let delete = Delete::builder()
        .set_objects(Some(objects))
        .quiet(true)
        .build()?;
    target
        .client
        .delete_objects()
        .bucket(&target.bucket)
        .delete(delete)
        .send()
        .await
        .map_err(|e| call_error("DeleteObjects", &target.bucket, &e))?;
    Ok(())
}

/// An SDK error as one line with the operation, the target and the store's code and message.
fn call_error<E>(operation: &str, target: &str, error: &E) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error,
{
    anyhow::anyhow!(
        "{operation} {target} failed: {} {} ({error})",
        error.code().unwrap_or("no error code"),
        error.message().unwrap_or_default()
    )
}
