//! The configuration file's format, exactly as users write it: the serde structs whose field
//! docs are the reference of the YAML format. Nothing here is validated: [`super::parse`] turns
//! these into the settings the program uses ([`super::Config`], [`super::ConnectorConfig`]), and
//! only a file that passes every rule becomes one.

use std::path::PathBuf;

use serde::Deserialize;

use super::{IndexConfig, Secret, defaults, duration};

/// The whole configuration file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Where documents are indexed. Default: the embedded index under `./data/index`.
    #[serde(default)]
    pub index: IndexConfig,
    /// The connectors: each syncs some buckets into one index. May be empty when `api` is set
    /// (connectors are then created through the API).
    #[serde(default)]
    pub connectors: Vec<ConnectorFile>,
    /// Settings inherited by every connector of this file that does not set them, and by every
    /// connector created through the API; see [`super::inherit::ConnectorDefaults`].
    #[serde(default)]
    pub defaults: super::inherit::ConnectorDefaults,
    /// The HTTP management API and web console of `run`; off without this block. See
    /// [`super::api::ApiConfig`].
    #[serde(default)]
    pub api: Option<super::api::ApiConfig>,
    /// Directory where `run` keeps each connector's sync history, one JSON line per sync in
    /// `<id>.jsonl`. Default `./data/state`; a relative path is relative to the working
    /// directory.
    #[serde(default = "defaults::state_dir")]
    pub state_dir: PathBuf,
    /// `IP:PORT` of the HTTP listener of `run` (`/healthz`, `/readyz`, `/status`, `/metrics`).
    /// Default `127.0.0.1:9464`; in a container use `0.0.0.0:9464` so that the port can be
    /// published. `run --listen` (or `S3C_LISTEN`) overrides it.
    #[serde(default = "defaults::listen")]
    pub listen: String,
    /// How long `run` waits after SIGTERM or SIGINT for syncs in flight to finish and commit
    /// before it exits anyway: a duration such as `30s` or `2m` (a bare number is seconds).
    /// Default `30s`.
    #[serde(
        default = "defaults::shutdown_timeout",
        deserialize_with = "duration::text"
    )]
    pub shutdown_timeout: String,
}

/// Where sync rules come from: a JSON file, or the rule list written inline.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SyncRulesSource {
    /// Path of a JSON rule file, relative to the config file's directory.
    File(PathBuf),
    /// The rule list itself, in the same form as a rule file.
    Inline(serde_json::Value),
}

/// One connector as written: a set of buckets, the identity that reads them, and how to read
/// them.
///
/// Field names shared with Elastic's S3 connector (`buckets`, `aws_access_key_id`,
/// `aws_secret_access_key`, `read_timeout`, `connect_timeout`, `max_attempts`, `page_size`) mean
/// the same here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorFile {
    /// Unique id, `[a-z0-9][a-z0-9_-]*`: names the connector in commands and reports.
    pub id: String,
    /// The index (embedded sub-index or OpenSearch index) to write. Default: `id`.
    #[serde(default)]
    pub index_name: Option<String>,
    /// Bucket names, or `["*"]` for every bucket the identity can list (ListBuckets).
    pub buckets: Vec<String>,
    /// AWS region of the buckets (and of STS). Default: the AWS region chain
    /// (`AWS_REGION`, profile), else `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint of an S3-compatible store (MinIO, SeaweedFS, ...), e.g. `http://127.0.0.1:9000`.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Endpoint for STS AssumeRole. Default: AWS's STS, or `endpoint_url` when that is set
    /// (S3-compatible stores such as MinIO serve STS on the same endpoint).
    #[serde(default)]
    pub sts_endpoint_url: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`). Default: true when `endpoint_url` is set.
    #[serde(default)]
    pub force_path_style: Option<bool>,
    /// Static access key id. Needs `aws_secret_access_key`. Without keys and without
    /// `role_arn`, the default AWS credential chain is used.
    #[serde(default)]
    pub aws_access_key_id: Option<String>,
    /// Static secret access key (masked in every output).
    #[serde(default)]
    pub aws_secret_access_key: Option<Secret>,
    /// Session token for temporary static keys (masked in every output).
    #[serde(default)]
    pub aws_session_token: Option<Secret>,
    /// IAM role to assume through STS, using the static keys or the default chain as the source
    /// identity: `arn:<partition>:iam::<account>:role/<name>`.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// ExternalId sent with AssumeRole. Required with `role_arn`, not allowed without it.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Session name for AssumeRole. Default `s3-connector`.
    #[serde(default = "defaults::role_session_name")]
    pub role_session_name: String,
    /// Lifetime of assumed-role credentials, 900..=43200 seconds (15m to 12h): a duration such
    /// as `1h` (a bare number is seconds). Default 3600 (1h). The SDK refreshes them before
    /// they expire.
    #[serde(
        default = "defaults::role_duration_seconds",
        deserialize_with = "duration::seconds"
    )]
    pub role_duration_seconds: u32,
    /// 12-digit account id sent as ExpectedBucketOwner on every S3 call: S3 refuses the call if
    /// the bucket belongs to another account.
    #[serde(default)]
    pub expected_bucket_owner: Option<String>,
    /// Sync rules: a JSON file path, or the rule list inline. Without rules every object of
    /// every bucket is synced.
    #[serde(default)]
    pub sync_rules: Option<SyncRulesSource>,
    /// Socket read timeout, 1..=3600 seconds: a duration such as `90s` or `2m` (a bare number
    /// is seconds). Default 90s.
    #[serde(
        default = "defaults::read_timeout",
        deserialize_with = "duration::seconds"
    )]
    pub read_timeout: u64,
    /// TCP connect timeout, 1..=3600 seconds: a duration such as `90s` (a bare number is
    /// seconds). Default 90s.
    #[serde(
        default = "defaults::connect_timeout",
        deserialize_with = "duration::seconds"
    )]
    pub connect_timeout: u64,
    /// Attempts per S3 request including the first, 1..=20, with exponential backoff and
    /// jitter between them. Default 5.
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
    /// ListObjectsV2 page size (MaxKeys), 1..=1000. Default 1000.
    #[serde(default = "defaults::page_size")]
    pub page_size: u32,
    /// Objects larger than this many bytes are indexed with metadata only and never
    /// downloaded, 0..=1073741824. Default 10485760 (10 MiB).
    #[serde(default = "defaults::max_content_bytes")]
    pub max_content_bytes: u64,
    /// Bytes that decompressing or unpacking one object may produce (gzip/zstd/bzip2/xz
    /// objects, the zip parts of Office and EPUB files, PDF text), 0..=4294967296. Past it
    /// extraction stops and the document is `too_large` with metadata only (gzip and zip bombs
    /// end here). Default: equal to `max_content_bytes`.
    #[serde(default)]
    pub max_extracted_bytes: Option<u64>,
    /// Time budget for extracting one object, 1..=3600 seconds: a duration such as `30s` or
    /// `2m` (a bare number is seconds); a file that takes longer is abandoned and its document
    /// gets `content_status: error`. Default 30s.
    #[serde(
        default = "defaults::extraction_timeout",
        deserialize_with = "duration::seconds"
    )]
    pub extraction_timeout: u64,
    /// Characters of extracted text kept in a document's body, 1..=100000000; the rest is cut
    /// off so that one huge text file cannot bloat the index. Default 1000000.
    #[serde(default = "defaults::max_body_chars")]
    pub max_body_chars: u64,
    /// Object downloads in flight, 1..=256. Default 16.
    #[serde(default = "defaults::concurrency")]
    pub concurrency: usize,
    /// S3 requests per second across this connector, 0..=100000; 0 means unlimited. Default 0.
    #[serde(default = "defaults::requests_per_second")]
    pub requests_per_second: u32,
    /// The mass-delete guard: when a complete listing would delete more than this fraction of a
    /// bucket's indexed documents (or documents of buckets that left the selection: of the whole
    /// index), and more than 100 of them, nothing is deleted and the sync fails, naming the
    /// counts. `0 < x <= 1`; 1.0 turns the guard off. `sync --allow-mass-delete` lets one sync
    /// through. Default 0.5.
    #[serde(default = "defaults::max_delete_fraction")]
    pub max_delete_fraction: f64,
    /// Whether to index each downloaded object's tags, as filters (`tag.<key>:<value>`): one
    /// GetObjectTagging request per downloaded object (the identity needs
    /// `s3:GetObjectTagging`). A tagging request that fails is logged and the object indexed
    /// without tags. User metadata (`x-amz-meta-*`) is always indexed: it comes with the
    /// download. Default false.
    #[serde(default)]
    pub index_tags: bool,
    /// When `run` syncs this connector: a cron expression evaluated in UTC, with 5 fields
    /// (minute hour day-of-month month day-of-week) or 6 with seconds first, e.g.
    /// `"0 */6 * * *"`. Not together with `interval`. Default: none.
    #[serde(default)]
    pub schedule: Option<String>,
    /// How often `run` syncs this connector, at a fixed rate from its start: a duration of at
    /// least 1s such as `15m` or `1h` (a bare number is seconds). A sync that comes due while
    /// the previous one still runs is skipped. Not together with `schedule`. Default: none.
    #[serde(default, deserialize_with = "duration::optional_text")]
    pub interval: Option<String>,
    /// Whether `run` syncs this connector once at start-up, before its schedule. Default false.
    /// Without `schedule` and `interval`, `run` syncs the connector only when this is true;
    /// `s3-connector sync` syncs it whenever asked.
    #[serde(default = "defaults::sync_on_start")]
    pub sync_on_start: bool,
    /// S3 event notifications through SQS, consumed by `run` between full syncs; see
    /// [`super::notifications::NotificationsConfig`]. Default: none (full syncs only).
    #[serde(default)]
    pub notifications: Option<super::notifications::NotificationsConfig>,
    /// How `--shard I/N` (or `S3C_SHARD`) splits this connector's buckets between workers; see
    /// [`super::sharding::ShardingConfig`]. Default: by the top-level folder.
    #[serde(default)]
    pub sharding: super::sharding::ShardingConfig,
    /// Take each bucket's object list from its newest complete S3 Inventory instead of
    /// ListObjectsV2 (for buckets of 10^8 objects and more); see
    /// [`super::inventory::InventoryFile`]. Default: none (list).
    #[serde(default)]
    pub inventory: Option<super::inventory::InventoryFile>,
    /// Cut each document's text into passages and embed them, so the index can be searched by
    /// meaning; see [`super::embedding::EmbeddingFile`]. Default: none (full text only, at
    /// exactly the cost of a sync without it).
    #[serde(default)]
    pub embedding: Option<super::embedding::EmbeddingFile>,
}
