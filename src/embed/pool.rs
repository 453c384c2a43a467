//! The dedicated threads CPU-bound embedding runs on, so that a model never occupies the
//! async runtime's workers (listing, downloads, the HTTP API).
//!
//! A rayon pool of `threads` threads: candle's matrix products split their work on the rayon
//! pool they are called from, so a job and its inner parallelism both stay on these threads.
//! At most `2 × threads` jobs are queued or running; a caller beyond that waits (without
//! blocking its runtime thread) for a slot.

use std::panic::AssertUnwindSafe;

use tokio::sync::{Semaphore, oneshot};

use super::EmbedError;

/// A bounded queue in front of a fixed set of threads.
pub struct ComputePool {
    threads: rayon::ThreadPool,
    slots: Semaphore,
}

impl ComputePool {
    /// A pool of `threads` threads (at least one) named `embed-N`.
    pub fn new(threads: usize) -> Result<Self, EmbedError> {
        let threads = threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|n| format!("embed-{n}"))
            .build()
            .map_err(|e| {
                EmbedError::Model(format!("cannot start {threads} embedding threads: {e}"))
            })?;
        Ok(Self {
            threads: pool,
            slots: Semaphore::new(threads * 2),
        })
    }

    /// Threads of the pool.
    pub fn threads(&self) -> usize {
        self.threads.current_num_threads()
    }

    /// Runs `job` on the pool and waits for its result; a panic in `job` is an error, not a
    /// crash.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, EmbedError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| EmbedError::Model("the embedding pool is closed".into()))?;
        let (done, result) = oneshot::channel();
        self.threads.spawn(move || {
            let _ = done.send(std::panic::catch_unwind(AssertUnwindSafe(job)));
        });
        match result.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(EmbedError::Model(format!("the model panicked: {message}")))
            }
            Err(_) => Err(EmbedError::Model("an embedding job was dropped".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_pool_threads_and_panics_are_errors() {
        let pool = ComputePool::new(2).unwrap();
        assert_eq!(pool.threads(), 2);
        let name = pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert!(name.is_some_and(|n| n.starts_with("embed-")));
        let failed = pool.run(|| -> u32 { panic!("boom") }).await.unwrap_err();
        assert!(failed.to_string().contains("boom"), "{failed}");
        let results = futures::future::join_all((0..20u32).map(|i| pool.run(move || i * 2))).await;
        let values: Vec<u32> = results.into_iter().map(Result::unwrap).collect();
        assert_eq!(values, (0..20).map(|i| i * 2).collect::<Vec<_>>());
    }
}
