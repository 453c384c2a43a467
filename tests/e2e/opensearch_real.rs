//! The sync scenarios of `sync_embedded.rs` against a real OpenSearch cluster, for people who
//! have one. They are `#[ignore]`d, so a plain `cargo test` reports them as ignored (never as
//! passed); run them with `--ignored` and `OPENSEARCH_URL` set:
//!
//! ```sh
//! OPENSEARCH_URL=https://localhost:9200 OPENSEARCH_USERNAME=admin OPENSEARCH_PASSWORD=... \
//!     OPENSEARCH_CA_CERT=/path/ca.pem cargo test --test e2e opensearch_real -- --ignored
//! ```
//!
//! `OPENSEARCH_INSECURE=1` turns certificate verification off instead. Every test writes an index
//! of its own named `s3c-e2e-*` and leaves it behind for inspection. Run with `--ignored` but
//! without `OPENSEARCH_URL`, each test fails and says so.

use crate::fixture::Backend;

/// The cluster of `$OPENSEARCH_URL`.
fn real_cluster() -> Backend {
    match std::env::var("OPENSEARCH_URL") {
        Ok(url) if !url.is_empty() => Backend::RealOpensearch(url),
        _ => panic!(
            "OPENSEARCH_URL is not set: the opensearch_real tests need a real OpenSearch cluster \
             (see tests/e2e/opensearch_real.rs)"
        ),
    }
}

crate::sync_embedded::sync_scenarios!(
    real_cluster,
    ignore = "needs a real OpenSearch cluster: set OPENSEARCH_URL and run with --ignored"
);
