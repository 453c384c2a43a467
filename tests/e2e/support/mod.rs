//! Shared helpers of the integration tests: every test gets its servers from here (moto for S3,
//! SeaweedFS where speed matters, osmem-server for OpenSearch, the fault-injecting proxy, a TLS
//! front) so they start, wait and stop the same way everywhere.
//!
//! Not every test module uses every helper, hence `dead_code` and unused re-exports are allowed for this module tree.
#![allow(dead_code, unused_imports)]

pub mod embeddings;
pub mod fault_proxy;
pub mod http;
pub mod iam;
pub mod moto;
pub mod osmem;
pub mod seaweedfs;
pub mod tls;
pub mod tools;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub use embeddings::EmbeddingEndpoint;
pub use fault_proxy::{Fault, FaultHandle, FaultKind, FaultProxy, Match, ProxiedRequest, Storm};
pub use moto::{MotoServer, RecordedRequest};
pub use osmem::OsmemServer;
pub use seaweedfs::SeaweedServer;
pub use tls::TlsFront;

/// A name unique in this process and across processes, valid as an S3 bucket name (lowercase
/// letters, digits and hyphens, at most 63 characters): `prefix-<pid>-<counter>-<time>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let prefix: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(30)
        .collect();
    format!("{prefix}-{:x}-{n}-{nanos:x}", std::process::id())
}
