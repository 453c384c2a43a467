//! The sync scenarios of `sync_embedded.rs` against a real OpenSearch cluster, for people who
//! have one: they run only when `OPENSEARCH_URL` is set, and otherwise each prints why it did
//! not run (straight to the terminal, past the test harness's output capture).
//!
//! ```sh
//! OPENSEARCH_URL=https://localhost:9200 OPENSEARCH_USERNAME=admin OPENSEARCH_PASSWORD=... \
//!     OPENSEARCH_CA_CERT=/path/ca.pem cargo test --test e2e opensearch_real
//! ```
//!
//! `OPENSEARCH_INSECURE=1` turns certificate verification off instead. Every test writes an index
//! of its own named `s3c-e2e-*` and leaves it behind for inspection.

use std::io::Write as _;

use crate::fixture::Backend;

/// The cluster of `$OPENSEARCH_URL`, or `None` after printing that the test is skipped.
fn real_cluster() -> Option<Backend> {
    match std::env::var("OPENSEARCH_URL") {
        Ok(url) if !url.is_empty() => Some(Backend::RealOpensearch(url)),
        _ => {
            let thread = std::thread::current();
            let note = format!(
                "\nSKIPPED {}: OPENSEARCH_URL is not set, so this test did not run against a real \
                 OpenSearch cluster (see tests/e2e/opensearch_real.rs)\n",
                thread.name().unwrap_or("opensearch_real")
            );
            // One write, straight to the terminal: the harness captures only print!/eprint!.
            let _ = std::io::stderr().lock().write_all(note.as_bytes());
            None
        }
    }
}

crate::sync_embedded::sync_scenarios!(real_cluster);
