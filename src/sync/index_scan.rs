//! A shard's read of a bucket's indexed documents in key order, a page at a time.
//!
//! A range shard reads only its range. A prefix shard reads past the folders of other shards:
//! when a full page ends inside one, the next page starts after that folder
//! ([`Shard::skip_from`]), so a shard reads its own documents and about a page per run of
//! foreign keys, not the whole bucket. Pages may still hold keys of other shards (a page's
//! tail, keys outside folders): callers keep to the keys the shard [`Shard::owns`].

use crate::sink::{IndexedPage, ScanFrom, Sink};
use crate::sync::shard::Shard;

/// One bucket's key-ordered read of the index for one shard.
pub(super) struct IndexScan<'a> {
    shard: &'a Shard,
    bucket: &'a str,
    page_size: usize,
    /// Where the next page starts; `None` once the last page was read.
    next: Option<Cursor>,
    /// The last key of a range shard: a page that reaches it is the last.
    through: Option<&'a str>,
}

/// [`ScanFrom`], owned between pages.
enum Cursor {
    Start,
    After(String),
    AtLeast(String),
}

impl<'a> IndexScan<'a> {
    /// A read of `bucket` for `shard`, `page_size` documents a page.
    pub(super) fn new(shard: &'a Shard, bucket: &'a str, page_size: usize) -> Self {
        let (start, through) = shard.key_range();
        Self {
            shard,
            bucket,
            page_size,
            next: Some(start.map_or(Cursor::Start, |start| Cursor::After(start.to_owned()))),
            through,
        }
    }

    /// The next page; empty once the read is over, and on every call after that. A failed
    /// read may be tried again.
    pub(super) async fn next_page<S: Sink>(&mut self, sink: &S) -> IndexedPage {
        let from = match &self.next {
            None => return Ok(Vec::new()),
            Some(Cursor::Start) => ScanFrom::Start,
            Some(Cursor::After(key)) => ScanFrom::After(key),
            Some(Cursor::AtLeast(key)) => ScanFrom::AtLeast(key),
        };
        let page = sink.indexed_page(self.bucket, from, self.page_size).await?;
        self.next = match page.last() {
            // A short page is the last, and so is one that reached the shard's range's end.
            Some(last) if page.len() == self.page_size && !past(&last.key, self.through) => {
                Some(match self.shard.skip_from(&last.key) {
                    Some(first) => Cursor::AtLeast(first),
                    None => Cursor::After(last.key.clone()),
                })
            }
            _ => None,
        };
        Ok(page)
    }
}

/// Whether a read that reached `key` has passed `through`, the last key of a range shard.
fn past(key: &str, through: Option<&str>) -> bool {
    through.is_some_and(|through| key >= through)
}
