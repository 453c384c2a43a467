//! The binding record: what an index's documents came from (buckets, bucket owner, endpoint).
//!
//! It is the index's own data: each sink stores it beside its documents (the embedded index in
//! a file next to tantivy's, OpenSearch in the mapping's `_meta`) and reads it back. Whether a
//! sync may write an index that records another source is decided by the orchestrator
//! (`crate::sync::target`), not here.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::{BucketSelection, ConnectorConfig, redact_urls};

/// What an index's documents came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexSource {
    /// The bucket names, sorted, or `["*"]` for every bucket the identity can list.
    pub buckets: Vec<String>,
    /// The expected bucket owner (12-digit account id), when the connector sets one.
    pub owner: Option<String>,
    /// The S3 endpoint: `endpoint_url`, or `aws` for AWS's own.
    pub endpoint: String,
}

impl IndexSource {
    /// The source a connector's settings point at.
    pub fn of(connector: &ConnectorConfig) -> Self {
        let mut buckets = match &connector.buckets {
            BucketSelection::All => vec!["*".to_owned()],
            BucketSelection::Named(names) => names.clone(),
        };
        buckets.sort();
        Self {
            buckets,
            owner: connector.expected_owner().map(str::to_owned),
            endpoint: connector.endpoint_url.as_deref().map_or_else(
                || "aws".to_owned(),
                |url| url.trim_end_matches('/').to_owned(),
            ),
        }
    }
}

impl fmt::Display for IndexSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bucket(s) {}", self.buckets.join(", "))?;
        match &self.owner {
            Some(owner) => write!(f, " of account {owner}")?,
            None => write!(f, " (no expected owner)")?,
        }
        write!(f, " at endpoint {}", redact_urls(&self.endpoint))
    }
}
