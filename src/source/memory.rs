//! An in-memory [`ObjectStore`] for logic tests of the sync, with faults injected on demand:
//! a listing that fails at page k, a GET that fails n times or always, an object that vanishes
//! between listing and GET, a denied bucket, slow answers. It also counts the GETs of each key,
//! so tests can prove that unchanged objects are never fetched. Not a stand-in for S3's wire
//! behaviour: the end-to-end suite covers that against real servers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::s3::{ErrorKind, Fetched, FetchedObject, ObjectEntry, Operation, S3Stats, SourceError};
use super::{ListPage, ListRequest, ObjectStore};

/// One stored object.
#[derive(Debug, Clone)]
struct StoredObject {
    bytes: Vec<u8>,
    etag: String,
    last_modified: OffsetDateTime,
    storage_class: Option<String>,
    /// User metadata, as `x-amz-meta-*` headers would carry it.
    metadata: Vec<(String, String)>,
}

impl StoredObject {
    /// How a listing shows this object under `key`.
    fn entry(&self, key: &str) -> ObjectEntry {
        ObjectEntry {
            key: key.to_owned(),
            size: self.bytes.len() as u64,
            last_modified: self.last_modified,
            etag: self.etag.clone(),
            storage_class: self.storage_class.clone(),
        }
    }
}

/// Faults to inject; each applies until changed.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Listing of this bucket fails when asked for this page (0-based), and every page after.
    pub fail_listing: Option<(String, usize)>,
    /// Buckets whose listing is denied (AccessDenied).
    pub denied: BTreeSet<String>,
    /// GETs of `bucket/key` that fail before one succeeds; `u32::MAX` fails forever.
    pub get_failures: HashMap<String, u32>,
    /// `bucket/key`s deleted the moment they are fetched (listed, then gone).
    pub vanish_on_get: BTreeSet<String>,
    /// `bucket/key`s overwritten with a newer version (the old bytes and `" (newer)"`) right
    /// after a GET returned them, this many times: a writer racing the sync.
    pub overwrite_after_get: HashMap<String, u32>,
    /// Every call waits this long first.
    pub delay: Option<Duration>,
    /// `ListBuckets` fails.
    pub fail_list_buckets: bool,
    /// Buckets whose listing pages come in reverse key order, as from a store that does not
    /// list in S3's order.
    pub unsorted: BTreeSet<String>,
    /// Cancels this token when the request with this number (0-based, counted from when the
    /// faults were set) arrives: a shutdown at that point of the sync.
    pub cancel_at_request: Option<(u64, CancellationToken)>,
}

#[derive(Debug, Default)]
struct State {
    buckets: BTreeMap<String, BTreeMap<String, StoredObject>>,
    faults: Faults,
    /// Successful or failed GETs per `bucket/key`.
    gets: HashMap<String, u64>,
    /// A logical clock for ETags and last-modified times, so every write is a new version.
    clock: i64,
    /// Requests since the faults were set.
    requests: u64,
    /// (bucket, prefix) listings that returned their last page since the faults were set, with
    /// the number of the request that returned it.
    completed_listings: BTreeMap<(String, String), u64>,
}

/// The in-memory store; cheap to create, one per test.
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    page_size: usize,
    stats: S3Stats,
}

impl MemoryStore {
    /// An empty store whose listings return `page_size` objects a page.
    pub fn new(page_size: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            page_size: page_size.max(1),
            stats: S3Stats::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates `bucket` if it does not exist.
    pub fn create_bucket(&self, bucket: &str) {
        self.state().buckets.entry(bucket.to_owned()).or_default();
    }

    /// Writes an object: a new version with a new ETag and a later last-modified time.
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        self.put_with_class(bucket, key, bytes, None);
    }

    /// [`MemoryStore::put`] with a storage class.
    pub fn put_with_class(&self, bucket: &str, key: &str, bytes: &[u8], class: Option<&str>) {
        let mut state = self.state();
        state.clock += 1;
        let clock = state.clock;
        let object = StoredObject {
            bytes: bytes.to_vec(),
            etag: format!("\"v{clock}\""),
            last_modified: OffsetDateTime::UNIX_EPOCH + Duration::from_secs(clock as u64),
            storage_class: class.map(str::to_owned),
            metadata: Vec::new(),
        };
        state
            .buckets
            .entry(bucket.to_owned())
            .or_default()
            .insert(key.to_owned(), object);
    }

    /// [`MemoryStore::put`] with user metadata (name, value), as `x-amz-meta-*` would set it.
    pub fn put_with_metadata(
        &self,
        bucket: &str,
        key: &str,
        bytes: &[u8],
        metadata: &[(&str, &str)],
    ) {
        self.put(bucket, key, bytes);
        if let Some(object) = self
            .state()
            .buckets
            .get_mut(bucket)
            .and_then(|objects| objects.get_mut(key))
        {
            object.metadata = metadata
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect();
        }
    }

    /// Deletes an object; a missing one is ignored.
    pub fn delete(&self, bucket: &str, key: &str) {
        if let Some(objects) = self.state().buckets.get_mut(bucket) {
            objects.remove(key);
        }
    }

    /// The objects of `bucket`: key and content.
    pub fn objects(&self, bucket: &str) -> BTreeMap<String, Vec<u8>> {
        self.state()
            .buckets
            .get(bucket)
            .map(|objects| {
                objects
                    .iter()
                    .map(|(key, object)| (key.clone(), object.bytes.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Replaces the faults.
    pub fn set_faults(&self, faults: Faults) {
        let mut state = self.state();
        state.faults = faults;
        state.requests = 0;
        state.completed_listings.clear();
    }

    /// The (bucket, prefix) listings that returned their last page since the faults were set,
    /// with the number of the request (counted like `cancel_at_request`) that returned it.
    pub fn completed_listings(&self) -> BTreeMap<(String, String), u64> {
        self.state().completed_listings.clone()
    }

    /// The listing entry of `bucket/key` as the store would list it now.
    pub fn entry(&self, bucket: &str, key: &str) -> Option<ObjectEntry> {
        let state = self.state();
        let object = state.buckets.get(bucket)?.get(key)?;
        Some(object.entry(key))
    }

    /// GETs of each `bucket/key` since the last call, and resets the count.
    pub fn take_gets(&self) -> HashMap<String, u64> {
        std::mem::take(&mut self.state().gets)
    }

    async fn wait(&self) {
        let delay = {
            let mut state = self.state();
            let request = state.requests;
            state.requests += 1;
            if let Some((at, token)) = &state.faults.cancel_at_request
                && request >= *at
            {
                token.cancel();
            }
            state.faults.delay
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
    }
}

/// An error as the S3 source reports it after its retries.
fn error(operation: Operation, target: &str, kind: ErrorKind, message: &str) -> SourceError {
    SourceError {
        operation,
        target: target.to_owned(),
        kind,
        status: None,
        code: None,
        message: message.to_owned(),
        expected_owner: None,
        endpoint: None,
    }
}

impl ObjectStore for MemoryStore {
    async fn list_buckets(&self) -> Result<Vec<String>, SourceError> {
        self.wait().await;
        let state = self.state();
        if state.faults.fail_list_buckets {
            return Err(error(
                Operation::ListBuckets,
                "",
                ErrorKind::ServerError,
                "injected ListBuckets failure",
            ));
        }
        Ok(state.buckets.keys().cloned().collect())
    }

    async fn locate_bucket(&self, bucket: &str) -> Result<(), SourceError> {
        self.wait().await;
        if self.state().buckets.contains_key(bucket) {
            Ok(())
        } else {
            Err(error(
                Operation::GetBucketLocation,
                bucket,
                ErrorKind::NoSuchBucket,
                "no such bucket",
            ))
        }
    }

    async fn list_page(
        &self,
        bucket: &str,
        request: &ListRequest<'_>,
        continuation: Option<String>,
    ) -> Result<ListPage, SourceError> {
        self.wait().await;
        let mut state = self.state();
        let prefix = request.prefix;
        // The continuation token is "page number:last item", so a failure can name a page.
        let (page_number, after) = match &continuation {
            None => (0, None),
            Some(token) => {
                let (number, key) = token.split_once(':').unwrap_or(("0", token));
                (number.parse::<usize>().unwrap_or(0), Some(key.to_owned()))
            }
        };
        let failure = if state.faults.denied.contains(bucket) {
            Some((ErrorKind::AccessDenied, "injected denial"))
        } else if !state.buckets.contains_key(bucket) {
            Some((ErrorKind::NoSuchBucket, "no such bucket"))
        } else if state
            .faults
            .fail_listing
            .as_ref()
            .is_some_and(|(failing, from_page)| failing == bucket && page_number >= *from_page)
        {
            Some((ErrorKind::ServerError, "injected listing failure"))
        } else {
            None
        };
        if let Some((kind, message)) = failure {
            return Err(error(Operation::ListObjects, bucket, kind, message));
        }
        // Keys and common prefixes, in key order, as S3 pages them together.
        let after = after.or_else(|| request.start_after.map(str::to_owned));
        let mut items: Vec<(String, Option<ObjectEntry>)> = Vec::new();
        for (key, object) in &state.buckets[bucket] {
            if !key.starts_with(prefix) || after.as_ref().is_some_and(|after| key <= after) {
                continue;
            }
            let common = request
                .delimited
                .then(|| key[prefix.len()..].find('/'))
                .flatten()
                .map(|at| key[..prefix.len() + at + 1].to_owned());
            match common {
                Some(common) => {
                    // Resuming after a common prefix skips the rest of its keys.
                    let seen = after.as_ref().is_some_and(|after| *after == common)
                        || items.last().is_some_and(|(last, _)| *last == common);
                    if !seen {
                        items.push((common, None));
                    }
                }
                None if key.ends_with('/') && object.bytes.is_empty() => {}
                None => items.push((key.clone(), Some(object.entry(key)))),
            }
            if items.len() > self.page_size {
                break;
            }
        }
        let continuation = if items.len() > self.page_size {
            items.truncate(self.page_size);
            items
                .last()
                .map(|(last, _)| format!("{}:{last}", page_number + 1))
        } else {
            None
        };
        if continuation.is_none() {
            // `wait` counted this request already.
            let request = state.requests - 1;
            state
                .completed_listings
                .insert((bucket.to_owned(), prefix.to_owned()), request);
        }
        let mut page = ListPage {
            continuation,
            ..ListPage::default()
        };
        for (item, entry) in items {
            match entry {
                Some(entry) => page.entries.push(entry),
                None => page.common_prefixes.push(item),
            }
        }
        if state.faults.unsorted.contains(bucket) {
            page.entries.reverse();
        }
        Ok(page)
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: u64,
    ) -> Result<Fetched, SourceError> {
        self.wait().await;
        let target = format!("{bucket}/{key}");
        let mut state = self.state();
        *state.gets.entry(target.clone()).or_default() += 1;
        if let Some(left) = state.faults.get_failures.get_mut(&target)
            && *left > 0
        {
            if *left != u32::MAX {
                *left -= 1;
            }
            return Err(error(
                Operation::GetObject,
                &target,
                ErrorKind::ServerError,
                "injected GET failure",
            ));
        }
        if state.faults.vanish_on_get.remove(&target)
            && let Some(objects) = state.buckets.get_mut(bucket)
        {
            objects.remove(key);
        }
        let Some(object) = state.buckets.get(bucket).and_then(|o| o.get(key)) else {
            return Ok(Fetched::Gone);
        };
        if object.bytes.len() as u64 > max_bytes {
            return Ok(Fetched::TooLarge);
        }
        self.stats
            .bytes_downloaded
            .fetch_add(object.bytes.len() as u64, Ordering::Relaxed);
        let fetched = FetchedObject {
            bytes: object.bytes.clone(),
            content_type: None,
            content_encoding: None,
            metadata: object.metadata.clone(),
        };
        let class = object.storage_class.clone();
        if let Some(left) = state.faults.overwrite_after_get.get_mut(&target)
            && *left > 0
        {
            *left -= 1;
            let mut newer = fetched.bytes.clone();
            newer.extend_from_slice(b" (newer)");
            drop(state);
            self.put_with_class(bucket, key, &newer, class.as_deref());
        }
        Ok(Fetched::Content(fetched))
    }

    async fn head_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectEntry>, SourceError> {
        self.wait().await;
        let target = format!("{bucket}/{key}");
        let state = self.state();
        if state.faults.denied.contains(bucket) {
            return Err(error(
                Operation::HeadObject,
                &target,
                ErrorKind::AccessDenied,
                "injected denial",
            ));
        }
        if state
            .faults
            .get_failures
            .get(&target)
            .is_some_and(|left| *left == u32::MAX)
        {
            return Err(error(
                Operation::HeadObject,
                &target,
                ErrorKind::ServerError,
                "injected HEAD failure",
            ));
        }
        Ok(state
            .buckets
            .get(bucket)
            .and_then(|objects| objects.get(key))
            .map(|object| object.entry(key)))
    }

    async fn download(
        &self,
        bucket: &str,
        key: &str,
        path: &std::path::Path,
    ) -> Result<Option<u64>, SourceError> {
        let bytes = match self.get_object(bucket, key, u64::MAX).await? {
            Fetched::Content(object) => object.bytes,
            Fetched::Gone | Fetched::TooLarge => return Ok(None),
        };
        std::fs::write(path, &bytes).map_err(|e| {
            error(
                Operation::GetObject,
                &format!("{bucket}/{key}"),
                ErrorKind::Other,
                &format!("writing {} failed: {e}", path.display()),
            )
        })?;
        Ok(Some(bytes.len() as u64))
    }

    fn stats(&self) -> &S3Stats {
        &self.stats
    }
}
