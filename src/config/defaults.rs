//! Every default of the configuration, defined once and used by both serde and the docs.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

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

/// The largest fraction of a bucket's indexed documents one sync deletes without
/// `--allow-mass-delete`: 0.5.
pub const fn max_delete_fraction() -> f64 {
    0.5
}

/// Where `run` keeps the sync history: `./data/state`.
pub fn state_dir() -> PathBuf {
    PathBuf::from("./data/state")
}

/// The HTTP listener of `run`: `127.0.0.1:9464` (9464 is the port Prometheus exporters of
/// this kind commonly use).
pub fn listen() -> String {
    listen_address().to_string()
}

/// [`listen`] as an address.
pub const fn listen_address() -> SocketAddr {
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9464)
}

/// How long `run` waits for syncs in flight at shutdown: 30 s.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// [`SHUTDOWN_TIMEOUT`] as the config file writes it.
pub fn shutdown_timeout() -> String {
    format!("{}s", SHUTDOWN_TIMEOUT.as_secs())
}

/// Whether `run` syncs a connector at start-up: no (its schedule decides).
pub const fn sync_on_start() -> bool {
    false
}

/// Time budget for extracting one object: 30 s.
pub const fn extraction_timeout() -> u64 {
    30
}

/// Characters of extracted text kept in a body: 1,000,000.
pub const fn max_body_chars() -> u64 {
    1_000_000
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

/// Largest request body the management API accepts: 64 KiB (a connector is well under 4 KiB).
pub const fn api_max_body_bytes() -> usize {
    64 * 1024
}

/// How long the API's probe retries an AssumeRole refused with AccessDenied, for IAM to
/// propagate a new role: 20 s (new trust policies usually work within 10 s; a wrong ExternalId
/// gets the same refusal, so this is also how long that mistake takes to be answered).
pub const API_PROBE_WAIT: Duration = Duration::from_secs(20);

/// [`API_PROBE_WAIT`] as the config file writes it.
pub fn api_probe_wait() -> String {
    format!("{}s", API_PROBE_WAIT.as_secs())
}

/// The names besides IP addresses that the `Host` of an API request may carry: `localhost`.
pub fn api_allowed_hosts() -> Vec<String> {
    vec!["localhost".to_owned()]
}

/// Most HTTP connections `run` keeps open at once: 256 (a management API and its probes need
/// a handful; each connection holds a file descriptor and a task).
pub const fn api_max_connections() -> usize {
    256
}

/// How long a request may take to send its whole body: 30 s (the largest body allowed,
/// 10 MiB, needs about 350 kB/s).
pub const API_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// [`API_BODY_TIMEOUT`] as the config file writes it.
pub fn api_body_timeout() -> String {
    format!("{}s", API_BODY_TIMEOUT.as_secs())
}

/// Seconds of SQS long polling per ReceiveMessage: 20 (SQS's maximum: the fewest empty
/// answers).
pub const fn notifications_wait_time() -> u64 {
    20
}

/// Seconds a received notification stays hidden from other consumers: 300, extended while its
/// objects are still being processed.
pub const fn notifications_visibility_timeout() -> u64 {
    300
}

/// Messages per ReceiveMessage: 10 (SQS's maximum).
pub const fn notifications_max_messages() -> u32 {
    10
}

/// Path segments that make a key's group for `sharding.by: prefix`: 1 (the top-level folder).
pub const fn shard_depth() -> usize {
    1
}

/// How old an S3 Inventory may be before the sync lists the bucket instead: 9 days (a weekly
/// inventory plus the 48 hours S3 may take to deliver one).
pub const fn inventory_max_age() -> Duration {
    Duration::from_secs(9 * 24 * 3600)
}

/// How long before an S3 Inventory's creation an object must have been last modified for the
/// inventory's silence to delete its document: 1 day. S3 Inventory is eventually consistent,
/// so objects written shortly before its scan may be missing from it.
pub const fn inventory_deletion_grace() -> Duration {
    Duration::from_secs(24 * 3600)
}
