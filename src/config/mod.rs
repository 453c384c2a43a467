//! The configuration file: what users write, its defaults, and its validation.
//!
//! The structs below are the reference documentation of the YAML format. Loading reads the
//! file, expands `${VAR}` references in string values, rejects unknown fields and wrong types
//! (all of them at once, with a "did you mean" for a misspelt field), and then checks every
//! rule at once, so that one run of `s3-connector validate` lists every problem with its
//! path, its value (secrets masked) and the rule it breaks. Nothing here talks to the network.

pub mod defaults;
pub mod env;
pub mod notifications;
pub mod opensearch;
pub mod rules_of_names;
pub mod schedule;
pub mod secret;
mod structure;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::rules::SyncRules;
pub use schedule::Schedule;
pub use secret::{REDACTED, Secret};

/// The whole configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where documents are indexed. Default: the embedded index under `./data/index`.
    #[serde(default)]
    pub index: IndexConfig,
    /// The connectors: each syncs some buckets into one index.
    pub connectors: Vec<ConnectorConfig>,
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
        deserialize_with = "schedule::string_or_number"
    )]
    pub shutdown_timeout: String,
}

impl Config {
    /// [`Config::listen`] as a socket address (validated by [`load`]).
    pub fn listen_address(&self) -> std::net::SocketAddr {
        self.listen
            .parse()
            .unwrap_or_else(|_| defaults::listen_address())
    }

    /// [`Config::shutdown_timeout`] as a duration (validated by [`load`]).
    pub fn shutdown_timeout_duration(&self) -> Duration {
        schedule::parse_duration(&self.shutdown_timeout).unwrap_or(defaults::SHUTDOWN_TIMEOUT)
    }
}

/// The index every connector writes to, one sub-index per connector `index_name`.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum IndexConfig {
    /// The embedded on-disk index (tantivy): nothing to install.
    Embedded {
        /// Directory holding one sub-directory per `index_name`. Default `./data/index`;
        /// a relative path is relative to the working directory.
        #[serde(default = "defaults::index_path")]
        path: PathBuf,
    },
    /// An OpenSearch cluster; see [`opensearch::OpensearchConfig`] for its fields.
    Opensearch(opensearch::OpensearchConfig),
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self::Embedded {
            path: defaults::index_path(),
        }
    }
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

/// One connector: a set of buckets, the identity that reads them, and how to read them.
///
/// Field names shared with Elastic's S3 connector (`buckets`, `aws_access_key_id`,
/// `aws_secret_access_key`, `read_timeout`, `connect_timeout`, `max_attempts`, `page_size`) mean
/// the same here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
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
    /// Lifetime of assumed-role credentials in seconds, 900..=43200. Default 3600. The SDK
    /// refreshes them before they expire.
    #[serde(default = "defaults::role_duration_seconds")]
    pub role_duration_seconds: u32,
    /// 12-digit account id sent as ExpectedBucketOwner on every S3 call: S3 refuses the call if
    /// the bucket belongs to another account.
    #[serde(default)]
    pub expected_bucket_owner: Option<String>,
    /// Sync rules: a JSON file path, or the rule list inline. Without rules every object of
    /// every bucket is synced.
    #[serde(default)]
    pub sync_rules: Option<SyncRulesSource>,
    /// Socket read timeout in seconds, 1..=3600. Default 90.
    #[serde(default = "defaults::read_timeout")]
    pub read_timeout: u64,
    /// TCP connect timeout in seconds, 1..=3600. Default 90.
    #[serde(default = "defaults::connect_timeout")]
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
    /// Time budget in seconds for extracting one object, 1..=3600; a file that takes longer is
    /// abandoned and its document gets `content_status: error`. Default 30.
    #[serde(default = "defaults::extraction_timeout")]
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
    /// When `run` syncs this connector: a cron expression evaluated in UTC, with 5 fields
    /// (minute hour day-of-month month day-of-week) or 6 with seconds first, e.g.
    /// `"0 */6 * * *"`. Not together with `interval`. Default: none.
    #[serde(default)]
    pub schedule: Option<String>,
    /// How often `run` syncs this connector, at a fixed rate from its start: a duration of at
    /// least 1s such as `15m` or `1h` (a bare number is seconds). A sync that comes due while
    /// the previous one still runs is skipped. Not together with `schedule`. Default: none.
    #[serde(default, deserialize_with = "schedule::optional_string_or_number")]
    pub interval: Option<String>,
    /// Whether `run` syncs this connector once at start-up, before its schedule. Default false.
    /// Without `schedule` and `interval`, `run` syncs the connector only when this is true;
    /// `s3-connector sync` syncs it whenever asked.
    #[serde(default = "defaults::sync_on_start")]
    pub sync_on_start: bool,
    /// S3 event notifications through SQS, consumed by `run` between full syncs; see
    /// [`notifications::NotificationsConfig`]. Default: none (full syncs only).
    #[serde(default)]
    pub notifications: Option<notifications::NotificationsConfig>,
    /// The validated `schedule` or `interval`, set by [`load`].
    #[serde(skip)]
    pub timer: Option<Schedule>,
    /// The validated rules, loaded from `sync_rules` by [`load`].
    #[serde(skip)]
    pub rules: Option<SyncRules>,
}

/// Which buckets a connector syncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketSelection {
    /// Every bucket the identity can list.
    All,
    /// These buckets.
    Named(Vec<String>),
}

impl ConnectorConfig {
    /// The index this connector writes to.
    pub fn index_name(&self) -> &str {
        self.index_name.as_deref().unwrap_or(&self.id)
    }

    /// The configured bucket selection.
    pub fn bucket_selection(&self) -> BucketSelection {
        if self.buckets.iter().any(|bucket| bucket == "*") {
            BucketSelection::All
        } else {
            BucketSelection::Named(self.buckets.clone())
        }
    }

    /// The effective `max_extracted_bytes`: as configured, else `max_content_bytes`.
    pub fn max_extracted_bytes(&self) -> u64 {
        self.max_extracted_bytes.unwrap_or(self.max_content_bytes)
    }

    /// Whether to use path-style addressing.
    pub fn path_style(&self) -> bool {
        self.force_path_style.unwrap_or(self.endpoint_url.is_some())
    }

    /// The static access key id, if one is set (an empty value counts as unset).
    pub fn access_key_id(&self) -> Option<&str> {
        self.aws_access_key_id.as_deref().filter(|v| !v.is_empty())
    }

    /// The static secret key, if one is set.
    pub fn secret_access_key(&self) -> Option<&Secret> {
        self.aws_secret_access_key
            .as_ref()
            .filter(|v| !v.is_empty())
    }

    /// The session token, if one is set.
    pub fn session_token(&self) -> Option<&Secret> {
        self.aws_session_token.as_ref().filter(|v| !v.is_empty())
    }

    /// The role to assume, if one is set.
    pub fn role(&self) -> Option<&str> {
        self.role_arn.as_deref().filter(|v| !v.is_empty())
    }

    /// The expected bucket owner, if one is set.
    pub fn expected_owner(&self) -> Option<&str> {
        self.expected_bucket_owner
            .as_deref()
            .filter(|v| !v.is_empty())
    }
}

/// One broken rule of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `connectors[1].expected_bucket_owner`.
    pub path: String,
    /// The offending value, quoted, or [`REDACTED`] for secrets; `None` when there is none.
    pub value: Option<String>,
    /// The rule broken, as a sentence fragment: "must be a 12-digit AWS account id".
    pub rule: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}: {} {}", self.path, value, self.rule),
            None => write!(f, "{}: {}", self.path, self.rule),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not YAML, or its structure does not fit (unknown field, wrong type).
    #[error("config file {path} is not valid: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What the parser said, with the field's path.
        message: String,
    },
    /// The file parsed, but values break rules; every problem is listed.
    #[error("config file {path} has {count} problem(s):\n{list}", count = problems.len(), list = problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

/// Fields whose values are secrets: masked in every message.
const SECRET_FIELDS: [&str; 3] = ["aws_secret_access_key", "aws_session_token", "password"];

/// Reads, expands and validates the configuration file at `path`, loading rule files relative
/// to the file's directory and variables from the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    parse(&text, path, base_dir, &|name| std::env::var(name).ok())
}

/// Parses and validates configuration text. `origin` names the file in messages; rule files
/// are read relative to `base_dir`; `lookup` resolves `${VAR}`.
pub fn parse(
    text: &str,
    origin: &Path,
    base_dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let syntax = |message: String| ConfigError::Syntax {
        path: origin.to_owned(),
        message,
    };
    let mut value: yaml_serde::Value =
        yaml_serde::from_str(text).map_err(|error| syntax(error.to_string()))?;
    let mut unset = Vec::new();
    env::expand_value(&mut value, "", lookup, &mut unset);
    let mut config: Config = structure::deserialize_reporting_all(value).map_err(|problems| {
        syntax(match problems.as_slice() {
            [one] => one.clone(),
            all => format!("{} problems:\n  - {}", all.len(), all.join("\n  - ")),
        })
    })?;
    let mut problems: Vec<Problem> = unset
        .into_iter()
        .map(|unset| Problem {
            path: unset.path,
            value: None,
            rule: format!(
                "uses ${{{}}}, which is not set in the environment (write ${{{}:-}} to make it optional)",
                unset.variable, unset.variable
            ),
        })
        .collect();
    validate(&mut config, base_dir, &mut problems);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid {
            path: origin.to_owned(),
            problems,
        })
    }
}

/// Collects the problems of one connector, prefixing paths with `connectors[N].`.
struct ConnectorProblems<'a> {
    list: &'a mut Vec<Problem>,
    position: usize,
}

impl ConnectorProblems<'_> {
    fn push(&mut self, field: &str, value: Option<String>, rule: String) {
        self.list.push(Problem {
            path: format!("connectors[{}].{field}", self.position),
            value,
            rule,
        });
    }

    /// Reports `rule` for a visible value, shown quoted.
    fn check(&mut self, field: &str, value: &str, result: Result<(), String>) {
        if let Err(rule) = result {
            self.push(field, Some(format!("{value:?}")), rule);
        }
    }

    /// Reports a problem that has no value to show (a missing field) or a masked one.
    fn without_value(&mut self, field: &str, masked: bool, rule: impl Into<String>) {
        self.push(field, masked.then(|| REDACTED.to_owned()), rule.into());
    }
}

/// Checks every rule, loading sync rules into each connector; appends what is broken.
fn validate(config: &mut Config, base_dir: &Path, problems: &mut Vec<Problem>) {
    validate_worker_settings(config, problems);
    if config.connectors.is_empty() {
        problems.push(Problem {
            path: "connectors".into(),
            value: None,
            rule: "must list at least one connector".into(),
        });
    }
    if let IndexConfig::Opensearch(index) = &mut config.index {
        opensearch::validate(index, base_dir, problems);
    }
    let mut ids = HashSet::new();
    let mut index_names = HashSet::new();
    for (position, connector) in config.connectors.iter_mut().enumerate() {
        let mut report = ConnectorProblems {
            list: problems,
            position,
        };
        report.check(
            "id",
            &connector.id,
            rules_of_names::check_identifier(&connector.id),
        );
        if !ids.insert(connector.id.clone()) {
            report.check(
                "id",
                &connector.id,
                Err("is used by another connector".into()),
            );
        }
        let index_name = connector.index_name().to_owned();
        if connector.index_name.is_some() {
            report.check(
                "index_name",
                &index_name,
                rules_of_names::check_identifier(&index_name),
            );
        }
        if !index_names.insert(index_name.clone()) {
            report.check(
                "index_name",
                &index_name,
                Err("is used by another connector; each connector needs its own index, or their syncs would delete each other's documents".into()),
            );
        }
        validate_buckets(connector, &mut report);
        if let Some(region) = &connector.region {
            report.check("region", region, rules_of_names::check_region(region));
        }
        for (field, url) in [
            ("endpoint_url", &connector.endpoint_url),
            ("sts_endpoint_url", &connector.sts_endpoint_url),
        ] {
            if let Some(url) = url {
                report.check(field, url, rules_of_names::check_endpoint_url(url));
            }
        }
        validate_identity(connector, &mut report);
        let ranges: [(&str, u64, u64, u64); 10] = [
            ("read_timeout", connector.read_timeout, 1, 3600),
            ("connect_timeout", connector.connect_timeout, 1, 3600),
            ("max_attempts", connector.max_attempts.into(), 1, 20),
            ("page_size", connector.page_size.into(), 1, 1000),
            ("max_content_bytes", connector.max_content_bytes, 0, 1 << 30),
            ("concurrency", connector.concurrency as u64, 1, 256),
            (
                "requests_per_second",
                connector.requests_per_second.into(),
                0,
                100_000,
            ),
            (
                "max_extracted_bytes",
                connector.max_extracted_bytes(),
                0,
                1 << 32,
            ),
            ("extraction_timeout", connector.extraction_timeout, 1, 3600),
            ("max_body_chars", connector.max_body_chars, 1, 100_000_000),
        ];
        let fraction = connector.max_delete_fraction;
        if !(fraction > 0.0 && fraction <= 1.0) {
            report.push(
                "max_delete_fraction",
                Some(fraction.to_string()),
                "is out of range: must be greater than 0 and at most 1 (1 turns the mass-delete guard off)".into(),
            );
        }
        for (field, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                report.push(
                    field,
                    Some(value.to_string()),
                    format!("is out of range: must be between {min} and {max}"),
                );
            }
        }
        if let Some(notifications) = &connector.notifications {
            notifications::validate_connector(notifications, position, report.list);
        }
        connector.timer = validate_timer(connector, &mut report);
        connector.rules = load_rules(connector, base_dir, &mut report);
    }
}

fn validate_buckets(connector: &ConnectorConfig, report: &mut ConnectorProblems<'_>) {
    if connector.buckets.is_empty() {
        report.without_value(
            "buckets",
            false,
            "must name at least one bucket, or \"*\" for every bucket",
        );
    }
    let mut seen = HashSet::new();
    for (index, bucket) in connector.buckets.iter().enumerate() {
        let field = format!("buckets[{index}]");
        if bucket == "*" {
            if connector.buckets.len() > 1 {
                report.check(
                    &field,
                    bucket,
                    Err("must be the only entry of buckets".into()),
                );
            }
        } else {
            report.check(&field, bucket, rules_of_names::check_bucket_name(bucket));
            if !seen.insert(bucket) {
                report.check(&field, bucket, Err("is listed twice".into()));
            }
        }
    }
}

fn validate_identity(connector: &ConnectorConfig, report: &mut ConnectorProblems<'_>) {
    let has_key = connector.access_key_id().is_some();
    let has_secret = connector.secret_access_key().is_some();
    if has_key && !has_secret {
        report.without_value(
            "aws_secret_access_key",
            false,
            "is missing: aws_access_key_id needs its secret key",
        );
    }
    if has_secret && !has_key {
        report.without_value(
            "aws_secret_access_key",
            true,
            "is set without aws_access_key_id",
        );
    }
    if connector.session_token().is_some() && !(has_key && has_secret) {
        report.without_value(
            "aws_session_token",
            true,
            "is set without aws_access_key_id and aws_secret_access_key",
        );
    }
    let external_id = connector.external_id.as_deref().filter(|v| !v.is_empty());
    match (connector.role(), external_id) {
        (Some(arn), external_id) => {
            report.check("role_arn", arn, rules_of_names::check_role_arn(arn));
            match external_id {
                None => report.without_value(
                    "external_id",
                    false,
                    "is required with role_arn (it guards the role against confused deputies)",
                ),
                Some(external_id) => report.check(
                    "external_id",
                    external_id,
                    sts_string(external_id, 2, 1224, "+=,.@:/-", "external ids"),
                ),
            }
            let name = &connector.role_session_name;
            report.check(
                "role_session_name",
                name,
                sts_string(name, 2, 64, "+=,.@-", "role session names"),
            );
            let duration = connector.role_duration_seconds;
            if !(900..=43200).contains(&duration) {
                report.push(
                    "role_duration_seconds",
                    Some(duration.to_string()),
                    "is out of range: must be between 900 and 43200 seconds".into(),
                );
            }
        }
        (None, Some(external_id)) => report.check(
            "external_id",
            external_id,
            Err("is only allowed together with role_arn".into()),
        ),
        (None, None) => {}
    }
    if let Some(owner) = connector.expected_owner() {
        report.check(
            "expected_bucket_owner",
            owner,
            rules_of_names::check_account_id(owner),
        );
    }
}

/// Checks the top-level settings of `run`.
fn validate_worker_settings(config: &Config, problems: &mut Vec<Problem>) {
    if let Err(error) = config.listen.parse::<std::net::SocketAddr>() {
        problems.push(Problem {
            path: "listen".into(),
            value: Some(format!("{:?}", config.listen)),
            rule: format!(
                "is not an IP:PORT address ({error}), e.g. 127.0.0.1:9464 or 0.0.0.0:9464"
            ),
        });
    }
    if let Err(rule) = schedule::parse_duration(&config.shutdown_timeout) {
        problems.push(Problem {
            path: "shutdown_timeout".into(),
            value: Some(format!("{:?}", config.shutdown_timeout)),
            rule,
        });
    }
}

/// Parses the connector's `schedule` or `interval`; `None` when it has neither or they are
/// broken.
fn validate_timer(
    connector: &ConnectorConfig,
    report: &mut ConnectorProblems<'_>,
) -> Option<Schedule> {
    match (&connector.schedule, &connector.interval) {
        (Some(_), Some(interval)) => {
            report.check(
                "interval",
                interval,
                Err("is set together with schedule; use one of them".into()),
            );
            None
        }
        (Some(expression), None) => match schedule::parse_cron(expression) {
            Ok(cron) => Some(Schedule::Cron(Box::new(cron))),
            Err(rule) => {
                report.check("schedule", expression, Err(rule));
                None
            }
        },
        (None, Some(interval)) => match schedule::parse_interval(interval) {
            Ok(every) => Some(Schedule::Interval(every)),
            Err(rule) => {
                report.check("interval", interval, Err(rule));
                None
            }
        },
        (None, None) => None,
    }
}

/// Loads and checks the connector's sync rules; `None` when there are none or they are broken.
fn load_rules(
    connector: &ConnectorConfig,
    base_dir: &Path,
    report: &mut ConnectorProblems<'_>,
) -> Option<SyncRules> {
    let (loaded, field) = match connector.sync_rules.as_ref()? {
        SyncRulesSource::File(file) => {
            let full = base_dir.join(file);
            match std::fs::read_to_string(&full) {
                Ok(text) => (
                    SyncRules::from_json_str(&text),
                    format!("sync_rules (file {})", full.display()),
                ),
                Err(error) => {
                    report.check(
                        "sync_rules",
                        &file.display().to_string(),
                        Err(format!("cannot be read from {}: {error}", full.display())),
                    );
                    return None;
                }
            }
        }
        SyncRulesSource::Inline(value) => (SyncRules::from_value(value), "sync_rules".to_owned()),
    };
    let rules = match loaded {
        Ok(rules) => rules?,
        Err(errors) => {
            for error in errors {
                report.push(&format!("{field}{}", error.path()), None, error.message);
            }
            return None;
        }
    };
    let wildcard = connector.bucket_selection() == BucketSelection::All;
    for bucket in rules.buckets() {
        if let Err(rule) = rules_of_names::check_bucket_name(bucket) {
            report.check(&field, bucket, Err(format!("names a bucket that {rule}")));
        } else if !wildcard && !connector.buckets.iter().any(|b| b == bucket) {
            report.check(
                &field,
                bucket,
                Err(
                    "names a bucket that is not in buckets; add it there, or use buckets: [\"*\"]"
                        .into(),
                ),
            );
        }
    }
    Some(rules)
}

/// STS's rule for external ids and session names: length bounds and `[\w<extra>]`.
fn sts_string(value: &str, min: usize, max: usize, extra: &str, what: &str) -> Result<(), String> {
    let ok = (min..=max).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "is not allowed: {what} have {min} to {max} characters from letters, digits and _{extra}"
        ))
    }
}

#[cfg(test)]
mod tests;
