//! The one retry policy: exponential backoff with jitter and an attempt limit.
//!
//! Every remote call to S3, SQS and the OpenSearch sink goes through [`RetryPolicy::run`] (for
//! the AWS services through [`RetryPolicy::run_limited`], which adds the connector's rate limit
//! and the request and retry counts), and each error type says for itself whether it is worth
//! another try through [`Transient`]. Besides this, only the event consumer's loop waits after
//! repeated queue failures before it polls again.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use governor::DefaultDirectRateLimiter;

/// An error that knows whether trying again may help.
pub trait Transient {
    /// True for throttling, server errors, timeouts and dropped connections; false for errors
    /// that will be the same next time (denied, not found, invalid request).
    fn is_transient(&self) -> bool;

    /// How long the server asked to wait before the next try (HTTP `Retry-After`), if it
    /// did: the next retry waits at least that long, at most [`MAX_RETRY_AFTER`].
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// The longest `Retry-After` honoured: a server asking for more gets this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// The delay before the next retry: the backoff's, or longer when the server asked
/// (`retry_after`); `None` (no retry left) stays `None`.
pub fn delay_for(backoff: Option<Duration>, retry_after: Option<Duration>) -> Option<Duration> {
    let backoff = backoff?;
    Some(retry_after.map_or(backoff, |asked| asked.min(MAX_RETRY_AFTER).max(backoff)))
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts including the first; 1 means no retry.
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for each further one, with jitter.
    pub initial_delay: Duration,
    /// Upper bound of one delay.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The policy with the project's delays (100 ms doubling up to 20 s) and `max_attempts`.
    pub const fn with_attempts(max_attempts: u32) -> Self {
        Self {
            max_attempts,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(20),
        }
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.initial_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
            .with_jitter()
    }

    /// Runs `operation` until it succeeds, fails with a non-transient error, or the attempts
    /// are used up. `on_retry` is told of each error that will be retried and the delay.
    pub async fn run<T, E, Op, Fut>(
        &self,
        operation: Op,
        mut on_retry: impl FnMut(&E, Duration),
    ) -> Result<T, E>
    where
        E: Transient,
        Op: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        operation
            .retry(self.backoff())
            .sleep(tokio::time::sleep)
            .when(Transient::is_transient)
            .adjust(|error: &E, backoff| delay_for(backoff, error.retry_after()))
            .notify(|error, delay| on_retry(error, delay))
            .await
    }

    /// [`RetryPolicy::run`] for one call to an AWS service (S3, SQS): each attempt waits for
    /// the connector's rate `limiter` and counts in `requests`; each retry counts in `retries`
    /// and is logged with `retry_message` ("S3 call failed; retrying.").
    pub async fn run_limited<T, E, Op, Fut>(
        &self,
        retry_message: &'static str,
        limiter: Option<&DefaultDirectRateLimiter>,
        (requests, retries): (&AtomicU64, &AtomicU64),
        mut operation: Op,
    ) -> Result<T, E>
    where
        E: Transient + Display,
        Op: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run(
            || {
                // Boxed: an SDK call's future is tens of KiB, and every async layer above it
                // (sync → listing → source) would otherwise hold a copy of it on its poll
                // frame; in a debug build that overflowed a 2 MiB thread stack.
                let attempt = Box::pin(operation());
                async move {
                    if let Some(limiter) = limiter {
                        limiter.until_ready().await;
                    }
                    requests.fetch_add(1, Ordering::Relaxed);
                    attempt.await
                }
            },
            |error, delay| {
                retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    message = retry_message,
                    %error,
                    delay_ms = delay.as_millis() as u64
                );
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn a_retry_after_lengthens_the_delay_up_to_its_cap() {
        let s = Duration::from_secs;
        let cases = [
            (Some(s(1)), None, Some(s(1))),
            (Some(s(1)), Some(s(5)), Some(s(5))),
            (Some(s(3)), Some(s(1)), Some(s(3))),
            (Some(s(1)), Some(s(3600)), Some(MAX_RETRY_AFTER)),
            (None, Some(s(5)), None),
        ];
        for (backoff, asked, expected) in cases {
            assert_eq!(delay_for(backoff, asked), expected, "{backoff:?} {asked:?}");
        }
    }

    #[derive(Debug, PartialEq)]
    struct Failure {
        transient: bool,
    }

    impl Transient for Failure {
        fn is_transient(&self) -> bool {
            self.transient
        }
    }

    fn fast(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn retries_transient_errors_up_to_the_attempt_limit() {
        let calls = AtomicU32::new(0);
        let mut retries = 0;
        let result: Result<(), Failure> = fast(4)
            .run(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(Failure { transient: true })
                },
                |_, _| retries += 1,
            )
            .await;
        assert_eq!(result, Err(Failure { transient: true }));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert_eq!(retries, 3);
    }

    #[tokio::test]
    async fn gives_up_at_once_on_permanent_errors_and_returns_success() {
        let calls = AtomicU32::new(0);
        let result: Result<(), Failure> = fast(5)
            .run(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(Failure { transient: false })
                },
                |_, _| {},
            )
            .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = AtomicU32::new(0);
        let result = fast(5)
            .run(
                || async {
                    let attempt = calls.fetch_add(1, Ordering::SeqCst);
                    if attempt < 2 {
                        Err(Failure { transient: true })
                    } else {
                        Ok(attempt)
                    }
                },
                |_, _| {},
            )
            .await;
        assert_eq!(result, Ok(2));
    }
}
