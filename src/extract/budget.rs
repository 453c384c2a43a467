//! The per-object budget of an extraction: how many bytes may still be produced by
//! decompression (compressed objects, zip entries, PDF streams) and when the time is up.
//!
//! Extractors call it at natural checkpoints (every chunk read, every zip entry, every PDF page
//! and glyph), so a hostile object stops at the cap and an abandoned one stops working soon after
//! its deadline. Not a memory allocator guard: code we call that allocates without reading
//! through here (see `pdf.rs` for lopdf's load) is bounded by other means.

use std::cell::Cell;
use std::io::Read;
use std::time::{Duration, Instant};

use super::ExtractError;

/// Bytes read per step: small enough to stop promptly at the cap, large enough to be cheap.
const CHUNK: usize = 64 * 1024;

/// What an extraction may still spend. Single-threaded: one per extraction.
#[derive(Debug)]
pub(super) struct Budget {
    /// Decompressed bytes that may still be produced.
    remaining: Cell<u64>,
    /// The cap, for messages.
    max_bytes: u64,
    deadline: Option<Instant>,
    timeout: Duration,
}

impl Budget {
    /// A budget of `max_bytes` decompressed bytes, ending `timeout` from now.
    pub(super) fn new(max_bytes: u64, timeout: Duration) -> Self {
        Budget {
            remaining: Cell::new(max_bytes),
            max_bytes,
            deadline: Instant::now().checked_add(timeout),
            timeout,
        }
    }

    /// No limits at all: for trusted input (tests, benchmarks, the text-only [`super::extract`]).
    pub(super) fn unlimited() -> Self {
        Budget {
            remaining: Cell::new(u64::MAX),
            max_bytes: u64::MAX,
            deadline: None,
            timeout: Duration::MAX,
        }
    }

    /// Another budget with the same deadline and its own cap of `max_bytes` (for bytes that are
    /// held only while extracting, such as a PDF's internal streams).
    pub(super) fn sibling(&self, max_bytes: u64) -> Self {
        Budget {
            remaining: Cell::new(max_bytes),
            max_bytes,
            deadline: self.deadline,
            timeout: self.timeout,
        }
    }

    /// The cap of this budget in bytes.
    pub(super) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// A budget whose time is already up (tests of the cooperative checks).
    #[cfg(test)]
    pub(super) fn expired() -> Self {
        let mut budget = Budget::new(u64::MAX, Duration::ZERO);
        budget.deadline = Some(Instant::now() - Duration::from_secs(1));
        budget
    }

    /// Fails once the deadline has passed.
    pub(super) fn check_time(&self) -> Result<(), ExtractError> {
        match self.deadline {
            Some(deadline) if Instant::now() >= deadline => Err(ExtractError::Timeout {
                timeout: self.timeout,
            }),
            _ => Ok(()),
        }
    }

    /// Records `n` more decompressed bytes of `what`; fails past the cap.
    pub(super) fn spend(&self, n: u64, what: &'static str) -> Result<(), ExtractError> {
        match self.remaining.get().checked_sub(n) {
            Some(left) => {
                self.remaining.set(left);
                Ok(())
            }
            None => {
                self.remaining.set(0);
                Err(self.too_large(what))
            }
        }
    }

    /// The error for output past the cap.
    pub(super) fn too_large(&self, what: &'static str) -> ExtractError {
        ExtractError::TooLarge {
            what,
            limit: self.max_bytes,
        }
    }

    /// Reads `reader` to its end like [`Budget::read_all`], keeping only the count.
    pub(super) fn count_all(
        &self,
        mut reader: impl Read,
        what: &'static str,
    ) -> Result<u64, ExtractError> {
        let mut total = 0u64;
        let mut chunk = vec![0u8; CHUNK];
        loop {
            self.check_time()?;
            match reader.read(&mut chunk) {
                Ok(0) | Err(_) => return Ok(total),
                Ok(n) => {
                    self.spend(n as u64, what)?;
                    total += n as u64;
                }
            }
        }
    }

    /// Reads `reader` to its end, spending the budget as it goes and checking the clock at each
    /// chunk. `what` names the content in a cap error; read errors are mapped by `on_error`.
    pub(super) fn read_all(
        &self,
        mut reader: impl Read,
        what: &'static str,
        on_error: impl Fn(std::io::Error) -> ExtractError,
    ) -> Result<Vec<u8>, ExtractError> {
        let mut out = Vec::new();
        let mut chunk = vec![0u8; CHUNK];
        loop {
            self.check_time()?;
            let n = match reader.read(&mut chunk) {
                Ok(0) => return Ok(out),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(on_error(e)),
            };
            self.spend(n as u64, what)?;
            out.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spending_past_the_cap_fails_and_names_the_limit() {
        let budget = Budget::new(10, Duration::from_secs(60));
        budget.spend(6, "x").unwrap();
        budget.spend(4, "x").unwrap();
        let err = budget.spend(1, "decompressed content").unwrap_err();
        assert_eq!(
            err,
            ExtractError::TooLarge {
                what: "decompressed content",
                limit: 10
            }
        );
    }

    #[test]
    fn read_all_stops_at_the_cap() {
        let budget = Budget::new(100_000, Duration::from_secs(60));
        let endless = std::io::repeat(b'a');
        let err = budget
            .read_all(endless, "entry", |e| panic!("{e}"))
            .unwrap_err();
        assert!(matches!(err, ExtractError::TooLarge { limit: 100_000, .. }));
        let ok = Budget::new(100_000, Duration::from_secs(60))
            .read_all(&b"abc"[..], "entry", |e| panic!("{e}"))
            .unwrap();
        assert_eq!(ok, b"abc");
    }

    #[test]
    fn an_expired_budget_stops_reading() {
        let err = Budget::expired()
            .read_all(&b"abc"[..], "entry", |e| panic!("{e}"))
            .unwrap_err();
        assert!(matches!(err, ExtractError::Timeout { .. }), "{err}");
        assert!(Budget::unlimited().check_time().is_ok());
    }
}
