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

/// Time budget for extracting one object: 30 s.
pub const fn extraction_timeout() -> u64 {
    30
}

/// Characters of extracted text kept in a body: 1,000,000.
pub const fn max_body_chars() -> u64 {
    1_000_000
}
