//! The configuration file: what users write, its defaults, and its validation.
//!
//! Two sets of types, so that a validated value cannot exist without passing validation: the
//! file's format ([`file::ConfigFile`], [`file::ConnectorFile`]: serde structs whose field docs
//! are the reference of the YAML format) and the settings the program uses ([`Config`],
//! [`ConnectorConfig`]: defaults applied, rules loaded, schedules and durations parsed), which
//! only [`load`]/[`parse`] build. Loading reads the file, expands `${VAR}` references in string
//! values, rejects unknown fields and wrong types (all of them at once, with a "did you mean"
//! for a misspelt field), and then checks every rule at once, so that one run of
//! `s3-connector validate` lists every problem with its path, its value (secrets masked) and
//! the rule it breaks. Nothing here talks to the network.

pub mod api;
pub mod defaults;
pub mod duration;
pub mod embedding;
pub mod env;
pub mod file;
pub mod inherit;
pub mod inventory;
pub mod notifications;
pub mod opensearch;
pub mod rules_of_names;
pub mod schedule;
pub mod secret;
pub mod sharding;
mod structure;

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::rules::SyncRules;
use file::{ConfigFile, ConnectorFile, SyncRulesSource};
pub use schedule::Schedule;
pub use secret::{REDACTED, Secret, redact_urls};

/// The validated configuration: what [`load`] returns, and only for a file that passed every
/// rule. The file's format, with every field's documentation, is [`file::ConfigFile`].
#[derive(Debug)]
pub struct Config {
    /// Where documents are indexed ([`file::ConfigFile::index`]).
    pub index: IndexConfig,
    /// The connectors, each validated.
    pub connectors: Vec<ConnectorConfig>,
    /// Where sync histories are kept ([`file::ConfigFile::state_dir`]).
    pub state_dir: PathBuf,
    /// The HTTP listener of `run` ([`file::ConfigFile::listen`]).
    pub listen: SocketAddr,
    /// How long `run` waits for syncs in flight at shutdown
    /// ([`file::ConfigFile::shutdown_timeout`]).
    pub shutdown_timeout: Duration,
    /// What connectors inherit ([`file::ConfigFile::defaults`]); API connectors are built
    /// with it.
    pub defaults: inherit::ConnectorDefaults,
    /// The management API, when enabled ([`file::ConfigFile::api`]).
    pub api: Option<api::ApiConfig>,
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

/// One validated connector: built by [`load`] from a [`file::ConnectorFile`] (whose field docs
/// are the reference) once every rule holds. Values are resolved: defaults applied, empty
/// strings turned into `None`, rules loaded, the schedule parsed.
#[derive(Debug)]
pub struct ConnectorConfig {
    /// Unique id ([`file::ConnectorFile::id`]).
    pub id: String,
    /// The index this connector writes to: `index_name`, else `id`.
    pub index_name: String,
    /// The buckets ([`file::ConnectorFile::buckets`]).
    pub buckets: BucketSelection,
    /// AWS region ([`file::ConnectorFile::region`]).
    pub region: Option<String>,
    /// S3-compatible endpoint ([`file::ConnectorFile::endpoint_url`]).
    pub endpoint_url: Option<String>,
    /// STS endpoint ([`file::ConnectorFile::sts_endpoint_url`]).
    pub sts_endpoint_url: Option<String>,
    /// Whether to use path-style addressing: `force_path_style`, else whether `endpoint_url`
    /// is set.
    pub path_style: bool,
    /// Static access key id ([`file::ConnectorFile::aws_access_key_id`]).
    pub aws_access_key_id: Option<String>,
    /// Static secret key ([`file::ConnectorFile::aws_secret_access_key`]).
    pub aws_secret_access_key: Option<Secret>,
    /// Session token ([`file::ConnectorFile::aws_session_token`]).
    pub aws_session_token: Option<Secret>,
    /// Role to assume ([`file::ConnectorFile::role_arn`]).
    pub role_arn: Option<String>,
    /// ExternalId for AssumeRole ([`file::ConnectorFile::external_id`]); set exactly when
    /// `role_arn` is.
    pub external_id: Option<String>,
    /// AssumeRole session name ([`file::ConnectorFile::role_session_name`]).
    pub role_session_name: String,
    /// Assumed-role credential lifetime ([`file::ConnectorFile::role_duration_seconds`]).
    pub role_duration_seconds: u32,
    /// ExpectedBucketOwner ([`file::ConnectorFile::expected_bucket_owner`]).
    pub expected_bucket_owner: Option<String>,
    /// The sync rules ([`file::ConnectorFile::sync_rules`]): [`SyncRules::all`] when none are
    /// written.
    pub rules: SyncRules,
    /// Socket read timeout in seconds ([`file::ConnectorFile::read_timeout`]).
    pub read_timeout: u64,
    /// TCP connect timeout in seconds ([`file::ConnectorFile::connect_timeout`]).
    pub connect_timeout: u64,
    /// Attempts per S3 request ([`file::ConnectorFile::max_attempts`]).
    pub max_attempts: u32,
    /// ListObjectsV2 page size ([`file::ConnectorFile::page_size`]).
    pub page_size: u32,
    /// Size cap for downloads ([`file::ConnectorFile::max_content_bytes`]).
    pub max_content_bytes: u64,
    /// Cap on unpacked bytes per object: `max_extracted_bytes`, else `max_content_bytes`.
    pub max_extracted_bytes: u64,
    /// Extraction time budget in seconds ([`file::ConnectorFile::extraction_timeout`]).
    pub extraction_timeout: u64,
    /// Characters kept per body ([`file::ConnectorFile::max_body_chars`]).
    pub max_body_chars: u64,
    /// Downloads in flight ([`file::ConnectorFile::concurrency`]).
    pub concurrency: usize,
    /// S3 requests per second, 0 unlimited ([`file::ConnectorFile::requests_per_second`]).
    pub requests_per_second: u32,
    /// The mass-delete guard's fraction ([`file::ConnectorFile::max_delete_fraction`]).
    pub max_delete_fraction: f64,
    /// Whether downloaded objects' tags are indexed ([`file::ConnectorFile::index_tags`]).
    pub index_tags: bool,
    /// When `run` syncs this connector: the parsed `schedule` or `interval`; `None` for
    /// neither.
    pub timer: Option<Schedule>,
    /// Whether `run` syncs at start-up ([`file::ConnectorFile::sync_on_start`]).
    pub sync_on_start: bool,
    /// S3 event notifications through SQS ([`file::ConnectorFile::notifications`]).
    pub notifications: Option<notifications::NotificationsConfig>,
    /// How `--shard I/N` splits the buckets ([`file::ConnectorFile::sharding`]), validated.
    pub sharding: sharding::ShardingConfig,
    /// Where to read each bucket's S3 Inventory instead of listing it
    /// ([`file::ConnectorFile::inventory`]); `None`: list with ListObjectsV2.
    pub inventory: Option<inventory::InventorySettings>,
    /// Passages and vectors (the `embedding:` block); `None`: full text only.
    pub embedding: Option<embedding::EmbeddingSettings>,
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
    /// Builds the validated connector from a file connector whose every rule held, with its
    /// parsed schedule and loaded rules.
    fn from_file(
        raw: ConnectorFile,
        timer: Option<Schedule>,
        rules: SyncRules,
        (inventory, embedding): (
            Option<inventory::InventorySettings>,
            Option<embedding::EmbeddingSettings>,
        ),
    ) -> Self {
        let some = |value: Option<String>| value.filter(|v| !v.is_empty());
        let secret = |value: Option<Secret>| value.filter(|v| !v.is_empty());
        let buckets = if raw.buckets.iter().any(|bucket| bucket == "*") {
            BucketSelection::All
        } else {
            BucketSelection::Named(raw.buckets)
        };
        let path_style = raw.force_path_style.unwrap_or(raw.endpoint_url.is_some());
        let role_arn = some(raw.role_arn);
        Self {
            index_name: raw.index_name.unwrap_or_else(|| raw.id.clone()),
            id: raw.id,
            buckets,
            region: raw.region,
            endpoint_url: raw.endpoint_url,
            sts_endpoint_url: raw.sts_endpoint_url,
            path_style,
            aws_access_key_id: some(raw.aws_access_key_id),
            aws_secret_access_key: secret(raw.aws_secret_access_key),
            aws_session_token: secret(raw.aws_session_token),
            external_id: role_arn.is_some().then(|| some(raw.external_id)).flatten(),
            role_arn,
            role_session_name: raw.role_session_name,
            role_duration_seconds: raw.role_duration_seconds,
            expected_bucket_owner: some(raw.expected_bucket_owner),
            rules,
            read_timeout: raw.read_timeout,
            connect_timeout: raw.connect_timeout,
            max_attempts: raw.max_attempts,
            page_size: raw.page_size,
            max_extracted_bytes: raw.max_extracted_bytes.unwrap_or(raw.max_content_bytes),
            max_content_bytes: raw.max_content_bytes,
            extraction_timeout: raw.extraction_timeout,
            max_body_chars: raw.max_body_chars,
            concurrency: raw.concurrency,
            requests_per_second: raw.requests_per_second,
            max_delete_fraction: raw.max_delete_fraction,
            index_tags: raw.index_tags,
            timer,
            sync_on_start: raw.sync_on_start,
            notifications: raw.notifications,
            sharding: raw.sharding,
            inventory,
            embedding,
        }
    }

    /// The index this connector writes to.
    pub fn index_name(&self) -> &str {
        &self.index_name
    }

    /// The static access key id, if one is set.
    pub fn access_key_id(&self) -> Option<&str> {
        self.aws_access_key_id.as_deref()
    }

    /// The static secret key, if one is set.
    pub fn secret_access_key(&self) -> Option<&Secret> {
        self.aws_secret_access_key.as_ref()
    }

    /// The session token, if one is set.
    pub fn session_token(&self) -> Option<&Secret> {
        self.aws_session_token.as_ref()
    }

    /// The role to assume, if one is set.
    pub fn role(&self) -> Option<&str> {
        self.role_arn.as_deref()
    }

    /// The expected bucket owner, if one is set.
    pub fn expected_owner(&self) -> Option<&str> {
        self.expected_bucket_owner.as_deref()
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
    /// The file is not YAML.
    #[error("config file {path} is not valid: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What the parser said, with the field's path.
        message: String,
    },
    /// The file is YAML, but its structure (unknown fields, wrong types) or its values break
    /// rules; every problem is listed, both kinds together.
    #[error("config file {path} has {count} problem(s):\n{list}", count = problems.len(), list = problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

/// Fields whose values are secrets: masked in every message.
const SECRET_FIELDS: [&str; 4] = [
    "aws_secret_access_key",
    "aws_session_token",
    "password",
    "api_key",
];

/// Reads, expands and validates the configuration file at `path`, loading rule files relative
/// to the file's directory and variables from the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, parse)
}

/// A parser of configuration text: [`parse`] or [`parse_index_view`].
type TextParser<T> =
    fn(&str, &Path, &Path, &dyn Fn(&str) -> Option<String>) -> Result<T, ConfigError>;

/// Reads the file at `path` and hands its text to `parse` with the file's directory and the
/// process environment.
fn load_with<T>(path: &Path, parse: TextParser<T>) -> Result<T, ConfigError> {
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
    let value = read_yaml(text, origin)?;
    parse_value(value, origin, base_dir, lookup)
}

/// The YAML value of configuration text, or why it is not YAML.
fn read_yaml(text: &str, origin: &Path) -> Result<yaml_serde::Value, ConfigError> {
    yaml_serde::from_str(text).map_err(|error| ConfigError::Syntax {
        path: origin.to_owned(),
        message: error.to_string(),
    })
}

/// [`parse`] of text already read as YAML.
fn parse_value(
    mut value: yaml_serde::Value,
    origin: &Path,
    base_dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut unset = Vec::new();
    env::expand_value(&mut value, "", lookup, &mut unset);
    let inherited = inherit::apply(&mut value);
    let mut structure = structure::deserialize_reporting_all::<ConfigFile>(value);
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
    problems.extend(structure.problems.iter().cloned());
    // The value rules are checked on the file with its structural problems taken out, so that
    // one run names both kinds; a rule broken only by that repair is not the file's problem.
    let mut value_problems = Vec::new();
    let validated = structure
        .parsed
        .take()
        .and_then(|file| validate(file, base_dir, &mut value_problems));
    problems.extend(
        value_problems
            .into_iter()
            .filter(|problem| !structure.is_repaired(&problem.path)),
    );
    inherit::name_inherited(&mut problems, &inherited);
    match validated {
        Some(config) if problems.is_empty() => Ok(config),
        _ => Err(ConfigError::Invalid {
            path: origin.to_owned(),
            problems,
        }),
    }
}

/// What `search` needs of a configuration: the index and each connector's id and index name.
#[derive(Debug)]
pub struct IndexView {
    /// Where documents are indexed ([`file::ConfigFile::index`]).
    pub index: IndexConfig,
    /// Each connector's id and the index it writes (`index_name`, else `id`), in file order.
    pub connectors: Vec<(String, String)>,
}

/// The fields of a connector that [`load_index_view`] reads.
const INDEX_VIEW_FIELDS: [&str; 2] = ["id", "index_name"];

/// Reads and validates only what [`IndexView`] holds from the configuration file at `path`:
/// the `index` block and each connector's `id` and `index_name`. The rest of the file (the
/// credentials and the variables they name, buckets, rules, schedules) is not read, so a
/// command that only reads the index works without the AWS keys in its environment.
pub fn load_index_view(path: &Path) -> Result<IndexView, ConfigError> {
    load_with(path, parse_index_view)
}

/// [`load_index_view`] of configuration text (arguments as for [`parse`]).
fn parse_index_view(
    text: &str,
    origin: &Path,
    base_dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexView, ConfigError> {
    let value = index_view_of(read_yaml(text, origin)?);
    let config = parse_value(value, origin, base_dir, lookup)?;
    Ok(IndexView {
        index: config.index,
        connectors: config
            .connectors
            .into_iter()
            .map(|connector| (connector.id, connector.index_name))
            .collect(),
    })
}

/// The document with only the `index` block and each connector's [`INDEX_VIEW_FIELDS`] (and
/// `buckets: ["*"]`, which a connector needs and which needs nothing).
fn index_view_of(document: yaml_serde::Value) -> yaml_serde::Value {
    use yaml_serde::{Mapping, Value};
    let yaml_serde::Value::Mapping(mut root) = document else {
        return document;
    };
    let mut view = Mapping::new();
    if let Some(index) = root.remove("index") {
        view.insert("index".into(), index);
    }
    if let Some(Value::Sequence(connectors)) = root.remove("connectors") {
        let connectors = connectors
            .into_iter()
            .map(|connector| match connector {
                Value::Mapping(mut fields) => {
                    let mut kept = Mapping::new();
                    for field in INDEX_VIEW_FIELDS {
                        if let Some(value) = fields.remove(field) {
                            kept.insert(field.into(), value);
                        }
                    }
                    kept.insert("buckets".into(), Value::Sequence(vec!["*".into()]));
                    Value::Mapping(kept)
                }
                other => other,
            })
            .collect();
        view.insert("connectors".into(), Value::Sequence(connectors));
    }
    Value::Mapping(view)
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
/// Returns the validated configuration, or `None` when some rule is broken (then `problems`
/// says which).
fn validate(file: ConfigFile, base_dir: &Path, problems: &mut Vec<Problem>) -> Option<Config> {
    let mut file = file;
    let (listen, shutdown_timeout) = validate_worker_settings(&file, problems);
    if let Some(api) = &mut file.api {
        api::validate(api, base_dir, problems);
    }
    if file.connectors.is_empty() && file.api.is_none() {
        problems.push(Problem {
            path: "connectors".into(),
            value: None,
            rule: "must list at least one connector (or enable the api block)".into(),
        });
    }
    if let IndexConfig::Opensearch(index) = &mut file.index {
        opensearch::validate(index, base_dir, problems);
    }
    let mut ids = HashSet::new();
    let mut index_names = HashSet::new();
    let connectors: Vec<Option<ConnectorConfig>> = file
        .connectors
        .into_iter()
        .enumerate()
        .map(|(position, connector)| {
            let mut report = ConnectorProblems {
                list: problems,
                position,
            };
            let before = report.list.len();
            let (timer, rules) = validate_connector(
                &connector,
                base_dir,
                &mut ids,
                &mut index_names,
                &mut report,
            );
            let inventory = inventory::validate(connector.inventory.as_ref(), &mut report);
            let embedding =
                embedding::validate(connector.embedding.as_ref(), base_dir, &mut report);
            (report.list.len() == before).then(|| {
                ConnectorConfig::from_file(connector, timer, rules, (inventory, embedding))
            })
        })
        .collect();
    Some(Config {
        index: file.index,
        connectors: connectors.into_iter().collect::<Option<_>>()?,
        state_dir: file.state_dir,
        listen: listen?,
        shutdown_timeout: shutdown_timeout?,
        defaults: file.defaults,
        api: file.api,
    })
}

/// Checks one connector's rules; returns its parsed schedule and loaded rules (meaningful only
/// when nothing was reported).
fn validate_connector(
    connector: &ConnectorFile,
    base_dir: &Path,
    ids: &mut HashSet<String>,
    index_names: &mut HashSet<String>,
    report: &mut ConnectorProblems<'_>,
) -> (Option<Schedule>, SyncRules) {
    {
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
        let index_name = connector
            .index_name
            .as_ref()
            .unwrap_or(&connector.id)
            .clone();
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
        validate_buckets(connector, report);
        if let Some(region) = &connector.region {
            report.check("region", region, rules_of_names::check_region(region));
        }
        for (field, url) in [
            ("endpoint_url", &connector.endpoint_url),
            ("sts_endpoint_url", &connector.sts_endpoint_url),
        ] {
            if let Some(url) = url {
                report.check(
                    field,
                    &redact_urls(url),
                    rules_of_names::check_endpoint_url(url),
                );
            }
        }
        validate_identity(connector, report);
        let fraction = connector.max_delete_fraction;
        if !(fraction > 0.0 && fraction <= 1.0) {
            report.push(
                "max_delete_fraction",
                Some(fraction.to_string()),
                "is out of range: must be greater than 0 and at most 1 (1 turns the mass-delete guard off)".into(),
            );
        }
        check_numbers(&CONNECTOR_NUMBERS, connector, &mut |field, value, rule| {
            report.push(field, value, rule)
        });
        if let Some(notifications) = &connector.notifications {
            notifications::validate_connector(notifications, report.position, report.list);
        }
        sharding::validate(&connector.sharding, report);
        (
            validate_timer(connector, report),
            load_rules(connector, base_dir, report),
        )
    }
}

/// A whole-number field of a block and the values it allows: one table per block serves both
/// its validation and the message for a value of the wrong type.
pub(crate) struct NumberRule<T> {
    /// The field.
    pub field: &'static str,
    /// The smallest value allowed.
    pub min: u64,
    /// The largest value allowed.
    pub max: u64,
    /// The field's value in a block.
    pub value: fn(&T) -> u64,
    /// What follows the range in the message (a unit, a reason); often empty.
    pub unit: &'static str,
}

/// Reports each field of `block` outside its rule's range.
fn check_numbers<T>(
    rules: &[NumberRule<T>],
    block: &T,
    push: &mut dyn FnMut(&str, Option<String>, String),
) {
    for rule in rules {
        let value = (rule.value)(block);
        if !(rule.min..=rule.max).contains(&value) {
            push(
                rule.field,
                Some(value.to_string()),
                format!(
                    "is out of range: must be between {} and {}{}",
                    rule.min, rule.max, rule.unit
                ),
            );
        }
    }
}

/// The range of the whole-number field at `path` (`connectors[0].page_size`,
/// `defaults.concurrency`, `index.bulk_max_docs`, ...), if it has one.
pub(crate) fn whole_number_range(path: &str) -> Option<(u64, u64)> {
    fn find<T>(rules: &[NumberRule<T>], field: &str) -> Option<(u64, u64)> {
        let rule = rules.iter().find(|rule| rule.field == field)?;
        Some((rule.min, rule.max))
    }
    let (block, field) = path.rsplit_once('.')?;
    if block == "index" {
        find(&opensearch::NUMBERS, field)
    } else if block.ends_with(".notifications") {
        find(&notifications::NUMBERS, field)
    } else if block == "api" {
        find(&api::NUMBERS, field)
    } else if block.ends_with(".embedding") {
        find(&embedding::NUMBERS, field)
    } else {
        find(&CONNECTOR_NUMBERS, field)
    }
}

/// The whole-number fields of a connector (and of `defaults`).
const CONNECTOR_NUMBERS: [NumberRule<ConnectorFile>; 10] = [
    NumberRule {
        field: "read_timeout",
        min: 1,
        max: 3600,
        value: |c| c.read_timeout,
        unit: "",
    },
    NumberRule {
        field: "connect_timeout",
        min: 1,
        max: 3600,
        value: |c| c.connect_timeout,
        unit: "",
    },
    NumberRule {
        field: "max_attempts",
        min: 1,
        max: 20,
        value: |c| c.max_attempts.into(),
        unit: "",
    },
    NumberRule {
        field: "page_size",
        min: 1,
        max: 1000,
        value: |c| c.page_size.into(),
        unit: "",
    },
    NumberRule {
        field: "max_content_bytes",
        min: 0,
        max: 1 << 30,
        value: |c| c.max_content_bytes,
        unit: "",
    },
    NumberRule {
        field: "concurrency",
        min: 1,
        max: 256,
        value: |c| c.concurrency as u64,
        unit: "",
    },
    NumberRule {
        field: "requests_per_second",
        min: 0,
        max: 100_000,
        value: |c| c.requests_per_second.into(),
        unit: "",
    },
    NumberRule {
        field: "max_extracted_bytes",
        min: 0,
        max: 1 << 32,
        value: |c| c.max_extracted_bytes.unwrap_or(c.max_content_bytes),
        unit: "",
    },
    NumberRule {
        field: "extraction_timeout",
        min: 1,
        max: 3600,
        value: |c| c.extraction_timeout,
        unit: "",
    },
    NumberRule {
        field: "max_body_chars",
        min: 1,
        max: 100_000_000,
        value: |c| c.max_body_chars,
        unit: "",
    },
];

fn validate_buckets(connector: &ConnectorFile, report: &mut ConnectorProblems<'_>) {
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

/// The value of an optional string field, `None` when it is unset or empty.
fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

fn validate_identity(connector: &ConnectorFile, report: &mut ConnectorProblems<'_>) {
    let has_key = non_empty(&connector.aws_access_key_id).is_some();
    let has_secret = connector
        .aws_secret_access_key
        .as_ref()
        .is_some_and(|v| !v.is_empty());
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
    let has_token = connector
        .aws_session_token
        .as_ref()
        .is_some_and(|v| !v.is_empty());
    if has_token && !(has_key && has_secret) {
        report.without_value(
            "aws_session_token",
            true,
            "is set without aws_access_key_id and aws_secret_access_key",
        );
    }
    let external_id = non_empty(&connector.external_id);
    match (non_empty(&connector.role_arn), external_id) {
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
    if let Some(owner) = non_empty(&connector.expected_bucket_owner) {
        report.check(
            "expected_bucket_owner",
            owner,
            rules_of_names::check_account_id(owner),
        );
    }
}

/// Checks the top-level settings of `run`; returns the listen address and the shutdown timeout
/// when they are valid.
fn validate_worker_settings(
    file: &ConfigFile,
    problems: &mut Vec<Problem>,
) -> (Option<SocketAddr>, Option<Duration>) {
    let listen = file
        .listen
        .parse::<SocketAddr>()
        .map_err(|error| {
            problems.push(Problem {
                path: "listen".into(),
                value: Some(format!("{:?}", file.listen)),
                rule: format!(
                    "is not an IP:PORT address ({error}), e.g. 127.0.0.1:9464 or 0.0.0.0:9464"
                ),
            })
        })
        .ok();
    let shutdown_timeout = duration::parse(&file.shutdown_timeout)
        .map_err(|rule| {
            problems.push(Problem {
                path: "shutdown_timeout".into(),
                value: Some(format!("{:?}", file.shutdown_timeout)),
                rule,
            })
        })
        .ok();
    (listen, shutdown_timeout)
}

/// Parses the connector's `schedule` or `interval`; `None` when it has neither or they are
/// broken.
fn validate_timer(
    connector: &ConnectorFile,
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

/// Loads and checks the connector's sync rules: [`SyncRules::all`] when there are none (or they
/// are broken, which is reported).
fn load_rules(
    connector: &ConnectorFile,
    base_dir: &Path,
    report: &mut ConnectorProblems<'_>,
) -> SyncRules {
    let Some(source) = connector.sync_rules.as_ref() else {
        return SyncRules::all();
    };
    let (loaded, field) = match source {
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
                    return SyncRules::all();
                }
            }
        }
        SyncRulesSource::Inline(value) => (SyncRules::from_value(value), "sync_rules".to_owned()),
    };
    let rules = match loaded {
        Ok(rules) => rules,
        Err(errors) => {
            for error in errors {
                report.push(&format!("{field}{}", error.path()), None, error.message);
            }
            return SyncRules::all();
        }
    };
    let wildcard = connector.buckets.iter().any(|b| b == "*");
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
    rules
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
