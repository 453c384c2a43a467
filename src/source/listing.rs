//! The listing seam: what the sync reads a bucket's objects from. A [`Listing`] yields pages of
//! [`ObjectEntry`] in key order, then a verdict: complete (`Ok(None)`), failed with its typed
//! error, or cancelled ([`Stopped`]). Only a complete listing lets the sync delete what it did
//! not return, and its [`Freshness`] says how far that silence counts: a live listing
//! (ListObjectsV2) is the bucket now; a snapshot (an S3 Inventory) proves nothing of objects
//! written around or after it was made.
//!
//! Two listings implement it: the ListObjectsV2 walk of a shard's part of a bucket (in the
//! sync, which owns the shards) and an S3 Inventory ([`super::inventory`]). The merge, the
//! mass-delete guard and the deletion rule see only this seam.

use std::future::Future;

use time::OffsetDateTime;

use super::s3::ObjectEntry;

/// Why a listing ended before its last page.
#[derive(Debug)]
pub enum Stopped<E> {
    /// A request or a read failed (after retries): the listing is incomplete.
    Failed(E),
    /// The sync was cancelled (shutdown) before the listing's end.
    Cancelled,
}

impl<E> From<E> for Stopped<E> {
    fn from(error: E) -> Self {
        Self::Failed(error)
    }
}

/// A bucket's objects, as pages in key order: each key once, folder markers left out.
pub trait Listing: Send {
    /// Why it can fail.
    type Error: Send;

    /// The next page (never empty), after every key of the pages before it; `Ok(None)` once
    /// the listing is complete.
    fn next_page(
        &mut self,
    ) -> impl Future<Output = Result<Option<Vec<ObjectEntry>>, Stopped<Self::Error>>> + Send;

    /// What the listing's silence about a key proves once it is complete.
    fn freshness(&self) -> Freshness;
}

/// What a complete listing proves about the documents it did not return, and about the
/// versions it did. Data the listing gives; the sync decides with the pure methods below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The bucket as it is (ListObjectsV2): a document it did not return is gone.
    Live,
    /// A snapshot of the bucket (an S3 Inventory): it may lack objects written at or after
    /// `deletable_before` (its creation time, less the connector's `deletion_grace`, for what
    /// its eventually consistent scan may have missed), and may list older versions than the
    /// index holds.
    Snapshot {
        /// Documents of objects modified at or after this are never deleted on its word.
        deletable_before: OffsetDateTime,
    },
}

impl Freshness {
    /// Whether a document whose object was last modified at `indexed` may be deleted because
    /// the complete listing did not return its key.
    pub fn may_delete_unlisted(self, indexed: Option<OffsetDateTime>) -> bool {
        match self {
            Self::Live => true,
            Self::Snapshot { deletable_before } => deletable(indexed, deletable_before),
        }
    }

    /// Whether the index already holds a later version (modified at `indexed`) than the one
    /// listed (modified at `listed`): then the listed version is no reason to download the
    /// object again. Never for a live listing, which is the bucket now.
    pub fn index_is_ahead(self, indexed: Option<OffsetDateTime>, listed: OffsetDateTime) -> bool {
        match self {
            Self::Live => false,
            Self::Snapshot { .. } => index_is_newer(indexed, listed),
        }
    }
}

/// Whether a document whose object was last modified at `indexed` may be deleted because an
/// inventory does not list it, `created` being the inventory's creation less the deletion
/// grace: only when the object is older than that. One written later (or of unknown age) is
/// not on the inventory's word. Listings give last-modified times in whole seconds, so an
/// object of the inventory's own second counts as later.
pub fn deletable(indexed: Option<OffsetDateTime>, created: OffsetDateTime) -> bool {
    let second = created.replace_nanosecond(0).unwrap_or(created);
    indexed.is_some_and(|modified| modified < second)
}

/// Whether the index holds a later version of an object than the inventory lists (written by
/// an event or a listing after the inventory was made): the inventory's older version is no
/// reason to download the object again.
pub fn index_is_newer(indexed: Option<OffsetDateTime>, listed: OffsetDateTime) -> bool {
    indexed.is_some_and(|modified| modified > listed)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_deletion_rule() {
        let created = OffsetDateTime::from_unix_timestamp(1_795_824_000).unwrap()
            + Duration::from_millis(300);
        let day = Duration::from_secs(86_400);
        let table = [
            (Some(created - day), true),
            (Some(created - Duration::from_millis(301)), true),
            // The inventory's own second, truncated as listings truncate it: written later.
            (Some(created - Duration::from_millis(300)), false),
            (Some(created), false),
            (Some(created + Duration::from_secs(1)), false),
            (None, false),
        ];
        for (indexed, expected) in table {
            assert_eq!(deletable(indexed, created), expected, "{indexed:?}");
            let snapshot = Freshness::Snapshot {
                deletable_before: created,
            };
            assert_eq!(snapshot.may_delete_unlisted(indexed), expected);
            assert!(Freshness::Live.may_delete_unlisted(indexed));
        }
        assert!(index_is_newer(Some(created + day), created));
        assert!(!index_is_newer(Some(created), created));
        assert!(!index_is_newer(None, created));
        let snapshot = Freshness::Snapshot {
            deletable_before: created,
        };
        assert!(snapshot.index_is_ahead(Some(created + day), created));
        assert!(!Freshness::Live.index_is_ahead(Some(created + day), created));
    }
}
