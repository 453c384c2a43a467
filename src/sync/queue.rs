//! The byte budget of the download queue: the bytes that downloads hold ahead of the writer.
//!
//! Downloads go on while the writer embeds and writes a batch, and their documents wait in a
//! queue of `concurrency` documents. Counted in documents alone, that queue holds `concurrency`
//! times the largest document. So a download also reserves bytes of a [`ByteBudget`] before
//! it starts (the object's listed size: what GetObject brings into memory), trims the
//! reservation to its document's text once extracted, and the writer gives the reservation
//! back as it takes the document off the queue (its batch has a bound of its own). The
//! documents in the queue and the downloads in flight together hold at most the budget.
//!
//! A reservation larger than the whole budget is cut to the whole budget: such a document waits
//! until nothing else is reserved and then passes alone. The budget cannot deadlock: nothing
//! waits for bytes while it holds some (a document whose text outgrew its reservation gives the
//! reservation back before it asks again), and the writer never waits for bytes.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes shared by the downloads in flight and the documents waiting for the writer; its
/// clones share them.
#[derive(Clone)]
pub(super) struct ByteBudget {
    bytes: Arc<Semaphore>,
    total: u32,
}

/// Bytes of a [`ByteBudget`] held by one download and then its document, given back on drop.
pub(super) struct Reserved {
    permit: OwnedSemaphorePermit,
    budget: ByteBudget,
}

impl ByteBudget {
    /// A budget of `total` bytes (at most `u32::MAX`, 4 GiB; more is cut to it).
    pub(super) fn new(total: usize) -> Self {
        let total = u32::try_from(total).unwrap_or(u32::MAX);
        Self {
            bytes: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// Waits until `bytes` are free (the whole budget when `bytes` is more) and reserves them.
    pub(super) async fn reserve(&self, bytes: u64) -> Reserved {
        let permit = Arc::clone(&self.bytes)
            .acquire_many_owned(self.capped(bytes))
            .await
            .unwrap_or_else(|_| unreachable!("the byte budget's semaphore is never closed"));
        Reserved {
            permit,
            budget: self.clone(),
        }
    }

    /// Bytes reserved now (by every [`Reserved`] alive).
    #[cfg(test)]
    pub(super) fn reserved(&self) -> usize {
        self.total as usize - self.bytes.available_permits()
    }

    fn capped(&self, bytes: u64) -> u32 {
        u32::try_from(bytes).map_or(self.total, |bytes| bytes.min(self.total))
    }
}

impl Reserved {
    /// The reservation resized to `bytes`: what is past them is given back at once; when it is
    /// more than what it holds, the reservation is given back whole and `bytes` waited for.
    pub(super) async fn resize(mut self, bytes: u64) -> Self {
        let wanted = self.budget.capped(bytes) as usize;
        let held = self.permit.num_permits();
        if wanted <= held {
            drop(self.permit.split(held - wanted));
            return self;
        }
        let Self { permit, budget } = self;
        drop(permit);
        budget.reserve(bytes).await
    }

    /// Bytes this reservation holds.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.permit.num_permits()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use futures::StreamExt as _;
    use futures::channel::mpsc;

    use super::ByteBudget;

    const BUDGET: usize = 1000;

    /// One queued document: its real text size, and its queue bookkeeping.
    struct Queued {
        text: u64,
        _reserved: super::Reserved,
    }

    /// Runs documents of (listed size, text size) through the budget as the sync does:
    /// reserve, "download" (yield), resize to the text, queue; a slow writer takes them off.
    /// After every document the writer takes, checks that the queue holds at most the budget
    /// or a single document, and returns the largest number of bytes ever queued.
    async fn run(documents: Vec<(u64, u64)>, concurrency: usize) -> u64 {
        let budget = ByteBudget::new(BUDGET);
        let budget = &budget;
        let queued = Arc::new(AtomicU64::new(0));
        let in_queue = Arc::new(AtomicU64::new(0));
        let (ready, mut queue) = mpsc::channel::<Queued>(concurrency);
        let count = documents.len();
        let downloading = futures::stream::iter(documents)
            .map(|(listed, text)| {
                let (queued, in_queue) = (Arc::clone(&queued), Arc::clone(&in_queue));
                async move {
                    let reserved = budget.reserve(listed).await;
                    assert!(reserved.bytes() <= BUDGET);
                    tokio::task::yield_now().await;
                    let reserved = reserved.resize(text).await;
                    queued.fetch_add(text, Ordering::SeqCst);
                    in_queue.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, mpsc::SendError>(Queued {
                        text,
                        _reserved: reserved,
                    })
                }
            })
            .buffer_unordered(concurrency)
            .forward(ready);
        let writing = async {
            let mut most = 0;
            let mut taken = 0;
            while let Some(document) = queue.next().await {
                // What the queue held, this document included, before the writer took it.
                let held = queued.load(Ordering::SeqCst);
                let documents = in_queue.load(Ordering::SeqCst);
                assert!(
                    held <= BUDGET as u64 || documents == 1,
                    "{held} bytes in {documents} documents queued, budget {BUDGET}"
                );
                assert!(budget.reserved() <= BUDGET);
                most = most.max(held);
                queued.fetch_sub(document.text, Ordering::SeqCst);
                in_queue.fetch_sub(1, Ordering::SeqCst);
                drop(document);
                taken += 1;
                // A slow writer: the downloads fill the queue meanwhile.
                for _ in 0..5 {
                    tokio::task::yield_now().await;
                }
            }
            assert_eq!(taken, count);
            most
        };
        let (sent, most) = tokio::join!(downloading, writing);
        sent.expect("every document queued");
        assert_eq!(budget.reserved(), 0, "every reservation given back");
        most
    }

    #[tokio::test]
    async fn the_queue_never_holds_more_than_the_budget() {
        // Texts smaller, equal and larger than their objects (a compressed format).
        let documents: Vec<(u64, u64)> = (0..200u64)
            .map(|n| (100 + n % 7 * 50, [30, 400, 250, 0][n as usize % 4]))
            .collect();
        let most = run(documents, 8).await;
        assert!(most <= BUDGET as u64, "{most}");
        assert!(most > BUDGET as u64 / 2, "the queue filled: {most}");
    }

    #[tokio::test]
    async fn a_document_larger_than_the_budget_passes_alone() {
        let mut documents: Vec<(u64, u64)> = (0..50).map(|_| (100, 100)).collect();
        documents.insert(10, (5_000, 4_000));
        documents.insert(30, (50, 3_000));
        documents.push((u64::MAX, 10));
        documents.push((10, u64::MAX / 2));
        let most = run(documents, 4).await;
        assert!(most >= u64::MAX / 2, "the huge text was queued: {most}");
    }

    #[tokio::test]
    async fn resizing_gives_back_what_is_past_the_text() {
        let budget = ByteBudget::new(BUDGET);
        let reserved = budget.reserve(600).await;
        assert_eq!(budget.reserved(), 600);
        let reserved = reserved.resize(200).await;
        assert_eq!((reserved.bytes(), budget.reserved()), (200, 200));
        let reserved = reserved.resize(5_000).await;
        assert_eq!((reserved.bytes(), budget.reserved()), (BUDGET, BUDGET));
        drop(reserved);
        assert_eq!(budget.reserved(), 0);
    }
}
