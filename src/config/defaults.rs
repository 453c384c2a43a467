//! Every default of the configuration, defined once and used by both serde and the docs.

use std::path::PathBuf;

/// Where the embedded index lives: `./data/index`.
pub fn index_path() -> PathBuf {
    PathBuf::from("./data/index")
}

/// STS session name for assumed roles.
pub fn role_session_name() -> String {
    "s3-connector".to_owned()
}

/// Lifetime of assumed-role credentials: 3600 s.
pub const fn role_duration_seconds() -> u32 {
    3600
}

/// Socket read timeout for S3 calls: 90 s (Elastic's default).
pub const fn read_timeout() -> u64 {
    90
}

/// TCP connect timeout for S3 calls: 90 s (Elastic's default).
pub const fn connect_timeout() -> u64 {
    90
}

/// Attempts per S3 request, the first one included: 5.
pub const fn max_attempts() -> u32 {
    5
}

/// ListObjectsV2 MaxKeys: 1000 (S3's maximum).
pub const fn page_size() -> u32 {
    1000
}

/// Objects larger than this are indexed with metadata only: 10 MiB.
pub const fn max_content_bytes() -> u64 {
    10 * 1024 * 1024
}

/// Object downloads in flight per connector: 16.
pub const fn concurrency() -> usize {
    16
}

/// S3 requests per second; 0 means unlimited.
pub const fn requests_per_second() -> u32 {
    0
}

/// Documents per OpenSearch bulk request: 500.
pub const fn opensearch_bulk_max_docs() -> usize {
    500
}

/// Bytes of NDJSON per OpenSearch bulk request: 5 MiB.
pub const fn opensearch_bulk_max_bytes() -> u64 {
    5 * 1024 * 1024
}

/// OpenSearch bulk requests in flight: 2.
pub const fn opensearch_bulk_concurrency() -> usize {
    2
}

/// Retries of a failed OpenSearch request (or of the failed items of a bulk request) after
/// the first attempt: 8.
pub const fn opensearch_max_retries() -> u32 {
    8
}

/// Timeout of one OpenSearch request, connecting included: 60 s.
pub const fn opensearch_request_timeout() -> u64 {
    60
}
