//! Sources: where objects come from. S3 and S3-compatible stores ([`s3`]), and a bucket's S3
//! Inventory as a stand-in for its listing ([`inventory`]).
//!
//! A source lists and fetches objects; it knows nothing of rules, extraction, the index or the
//! sync. The sync sees a store only through [`ObjectStore`], so its promises are tested
//! in-process against `memory::MemoryStore` (with faults on demand) as well as end to end
//! against real S3 servers. It reads a bucket's objects through one seam, [`listing::Listing`]:
//! key-ordered pages and a verdict, whether they come from ListObjectsV2 or an inventory.

pub mod inventory;
pub mod listing;
#[cfg(test)]
pub mod memory;
pub mod s3;

use std::future::Future;

use s3::{Fetched, ObjectEntry, S3Stats, SourceError};

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The objects of the page, in key order.
    pub entries: Vec<ObjectEntry>,
    /// With [`ListRequest::delimited`]: the prefixes, each up to and including the first `/`
    /// after the request's prefix, that group the keys not returned in `entries`; in key
    /// order. Empty otherwise.
    pub common_prefixes: Vec<String>,
    /// Where the next page starts; `None` when this page ends the listing.
    pub continuation: Option<String>,
}

/// What one listing asks for: S3's ListObjectsV2 `Prefix`, `StartAfter` and `Delimiter`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListRequest<'a> {
    /// Only keys starting with this.
    pub prefix: &'a str,
    /// Only keys sorting after this one (by UTF-8 bytes); `None` from the first.
    pub start_after: Option<&'a str>,
    /// Group keys with a further `/` after the prefix into [`ListPage::common_prefixes`].
    pub delimited: bool,
}

impl<'a> ListRequest<'a> {
    /// Every key under `prefix`.
    pub fn under(prefix: &'a str) -> Self {
        Self {
            prefix,
            ..Self::default()
        }
    }
}

/// What the sync needs from an object store: the buckets, each bucket's listing page by page,
/// and the objects' content. Implementations count their requests in [`ObjectStore::stats`] and
/// apply their own retries: an error returned here is final for that call.
pub trait ObjectStore: Send + Sync {
    /// Names of every bucket the identity can list (`buckets: ["*"]`).
    fn list_buckets(&self) -> impl Future<Output = Result<Vec<String>, SourceError>> + Send;

    /// Finds where `bucket` lives so that later calls reach it; an error when it cannot be
    /// found.
    fn locate_bucket(&self, bucket: &str) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// One page of the objects of `bucket` that `request` asks for, from `continuation`
    /// (`None`: the first page), folder markers left out.
    fn list_page(
        &self,
        bucket: &str,
        request: &ListRequest<'_>,
        continuation: Option<String>,
    ) -> impl Future<Output = Result<ListPage, SourceError>> + Send;

    /// The object's content, at most `max_bytes` of it ([`Fetched::TooLarge`] past that;
    /// [`Fetched::Gone`] when it was deleted since it was listed).
    fn get_object(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: u64,
    ) -> impl Future<Output = Result<Fetched, SourceError>> + Send;

    /// The object's current state as a listing would show it (HeadObject); `None` when the key
    /// does not exist. Event notifications are checked against this, never trusted.
    fn head_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<ObjectEntry>, SourceError>> + Send;

    /// The object's tags (GetObjectTagging), for connectors with `index_tags`. Default: none,
    /// for stores without tags.
    fn object_tags(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, SourceError>> + Send {
        let _ = (bucket, key);
        async { Ok(Vec::new()) }
    }

    /// The whole object streamed into the file at `path` (created or emptied), never held in
    /// memory: for inventory files of any size. Its size; `None` when the key does not exist.
    fn download(
        &self,
        bucket: &str,
        key: &str,
        path: &std::path::Path,
    ) -> impl Future<Output = Result<Option<u64>, SourceError>> + Send;

    /// Requests, retries and bytes so far.
    fn stats(&self) -> &S3Stats;
}
