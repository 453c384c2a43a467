//! The request and response bodies of the management API. The OpenAPI document's schemas are
//! derived from these types (`ToSchema`), and the worker's answers are these types, so the
//! document and the answers cannot drift apart.
//!
//! Request bodies are read by the worker from the raw bytes (so that every problem of a body
//! is reported in one answer); [`CreateConnector`] and [`UpdateConnector`] describe them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The body of `POST /api/v1/connectors`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnector {
    /// `[a-z0-9][a-z0-9_-]*`, at most 64 characters.
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    pub id: String,
    /// `s3://bucket` or `s3://bucket/prefix`.
    #[schema(pattern = "^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")]
    pub bucket_uri: String,
    /// `arn:aws:iam::<account>:role/<name>`, trusting GET /aws-setup's principal under its
    /// ExternalId.
    #[schema(pattern = "^arn:[a-z0-9-]+:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$")]
    pub role_arn: String,
    /// The 12-digit account that owns the bucket.
    #[schema(pattern = "^[0-9]{12}$")]
    pub expected_bucket_owner: String,
    /// The index to write; default the id.
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    pub index_name: Option<String>,
    /// Inline sync rules, as in the config file.
    #[schema(value_type = Option<Vec<Object>>)]
    pub sync_rules: Option<Value>,
    /// Cron (UTC); not with interval.
    pub schedule: Option<String>,
    /// Such as 1h; not with schedule.
    pub interval: Option<String>,
    /// Let the first sync re-bind an index that holds documents of another source, or that a
    /// connector left with its documents. The operator's token only. Not stored.
    pub retarget: Option<bool>,
    /// false: do not wait (api.probe_wait) for a refused AssumeRole to propagate through IAM.
    /// Default true. Not stored.
    pub wait: Option<bool>,
    /// S3 event notifications through SQS, as in the config file (not `sqs_endpoint_url`).
    /// The worker consumes the queue between syncs.
    pub notifications: Option<Notifications>,
    /// The bucket's S3 Inventory as its listing, as in the config file. The probe reads the
    /// destination with the connector's role; a missing inventory is a warning (the sync lists
    /// the bucket until one arrives).
    pub inventory: Option<Inventory>,
    /// Passages and vectors, as in the config file; absent: the `defaults:` block's (none
    /// when the defaults have none). File paths are the operator's only.
    pub embedding: Option<Embedding>,
}

/// The body of `PATCH /api/v1/connectors/{id}`: a JSON merge patch of [`CreateConnector`].
/// Its schema is [`CreateConnector`]'s with no field required (derived, so the two cannot
/// drift apart).
#[derive(Debug, Clone, Copy)]
pub struct UpdateConnector;

/// What the document says of a patch, beside [`CreateConnector`]'s fields.
const UPDATE_CONNECTOR: &str = "A JSON merge patch (RFC 7396) of the fields POST accepts: \
    every field optional; a field sent replaces the stored one, objects (notifications, \
    inventory, embedding) are merged field by field, null removes an optional field (back to \
    the defaults' value). `id`, if sent, must be the connector's own. `retarget` lets the next \
    sync re-bind the index to the new source, deleting the old source's documents; `wait` and \
    `retarget` are not stored.";

impl utoipa::PartialSchema for UpdateConnector {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{RefOr, schema::Schema};
        let mut schema = <CreateConnector as utoipa::PartialSchema>::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.required.clear();
            object.description = Some(UPDATE_CONNECTOR.to_owned());
        }
        schema
    }
}

impl ToSchema for UpdateConnector {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <CreateConnector as ToSchema>::schemas(schemas);
    }
}

/// A connector's S3 event notifications, as in the config file.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// The SQS queue's URL.
    pub queue_url: String,
    /// The messages' format.
    #[schema(value_type = Option<String>, pattern = "^(auto|s3|sns|eventbridge)$")]
    pub format: Option<String>,
    /// Long-poll seconds.
    #[schema(minimum = 0, maximum = 20)]
    pub wait_time: Option<u32>,
    /// Seconds a received message stays invisible.
    #[schema(minimum = 1, maximum = 43200)]
    pub visibility_timeout: Option<u32>,
    /// Messages per receive.
    #[schema(minimum = 1, maximum = 10)]
    pub max_messages: Option<u32>,
}

/// A connector's S3 Inventory, as in the config file.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// `s3://BUCKET[/PREFIX]`, the inventory configuration's destination.
    #[schema(pattern = "^s3://")]
    pub destination: String,
    /// The inventory configuration's id.
    #[schema(min_length = 1)]
    pub config_id: String,
    /// Such as 9d (the default); an older inventory falls back to a listing.
    pub max_age: Option<String>,
    /// Such as 1d (the default).
    pub deletion_grace: Option<String>,
}

/// A connector's `embedding:` block, as in the config file (`config::embedding::EmbeddingFile`
/// judges the values), without `api_key_file`: the API reads no file of the worker's for a
/// caller. A tenant names no file either: `model_dir` and `tokenizer` are the operator's, and a
/// tenant's `provider: local` runs the model of `defaults.embedding.model_dir`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Embedding {
    /// `local` (the model runs in the worker) or `openai` (an OpenAI-compatible
    /// `/v1/embeddings` endpoint).
    #[schema(pattern = "^(local|openai)$")]
    pub provider: String,
    /// `local`: the model directory, an absolute path on the worker. The operator's token
    /// only; default `defaults.embedding.model_dir`.
    #[schema(pattern = "^/")]
    pub model_dir: Option<String>,
    /// `openai`: the API's base URL, the part before `/embeddings`.
    #[schema(pattern = "^https?://")]
    pub endpoint_url: Option<String>,
    /// `openai`: the model name sent with each request.
    pub model: Option<String>,
    /// `openai`: the API key, sent as `Authorization: Bearer`. Stored, never answered (a
    /// connector shows `api_key_set`).
    #[schema(format = Password)]
    pub api_key: Option<String>,
    /// Components of every vector: required with `openai`; with `local` checked against the
    /// model.
    #[schema(minimum = 1, maximum = 65536)]
    pub dimensions: Option<u64>,
    /// `openai`: texts per request. Default 32.
    #[schema(minimum = 1, maximum = 2048)]
    pub batch_size: Option<u64>,
    /// `openai`: requests per second at most; 0 unlimited (the default).
    #[schema(minimum = 0, maximum = 100000)]
    pub requests_per_second: Option<u64>,
    /// `openai`: a `tokenizer.json` to count tokens with, an absolute path on the worker. The
    /// operator's token only; default an estimate from the text's length.
    #[schema(pattern = "^/")]
    pub tokenizer: Option<String>,
    /// `local`: threads the model runs on. Default the worker's CPUs.
    #[schema(minimum = 1, maximum = 256)]
    pub threads: Option<u64>,
    /// Tokens per passage at most. Default 256.
    #[schema(minimum = 16, maximum = 8192)]
    pub max_tokens: Option<u64>,
    /// Tokens neighbouring passages share, less than half of `max_tokens`. Default 32.
    #[schema(minimum = 0, maximum = 4096)]
    pub overlap_tokens: Option<u64>,
    /// Passages kept per document. Default 1000.
    #[schema(minimum = 1, maximum = 1000000)]
    pub max_passages_per_document: Option<u64>,
}

/// A connector's embedding settings as the API shows them: never the API key, nor a path on
/// the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EmbeddingView {
    /// `local` or `openai`.
    #[schema(pattern = "^(local|openai)$")]
    pub provider: String,
    /// `openai`: the endpoint's base URL (any credentials in it masked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// `openai`: the model name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `openai`: whether an API key is set (the key itself is never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_set: Option<bool>,
    /// Components of every vector: configured (`openai`, or a `local` check), else null.
    pub dimensions: Option<u64>,
    /// `openai`: texts per request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u64>,
    /// `openai`: requests per second at most, 0 unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u64>,
    /// Threads of the model's pool.
    pub threads: u64,
    /// Tokens per passage at most.
    pub max_tokens: u64,
    /// Tokens neighbouring passages share.
    pub overlap_tokens: u64,
    /// Passages kept per document.
    pub max_passages_per_document: u64,
}

/// Where a connector's settings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The config file: read-only through the API.
    File,
    /// Created through the API.
    Api,
}

/// How a connector reaches its buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Credentials {
    /// Keys in the config.
    StaticKeys,
    /// The default credential chain.
    DefaultChain,
    /// A role assumed with an ExternalId.
    AssumedRole,
}

/// One connector as the API shows it: its settings (never secrets), what its probe verified,
/// and its live status.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Connector {
    /// Its id.
    pub id: String,
    /// The tenant that created it; null for the operator's and the config file's.
    pub tenant: Option<String>,
    /// Where it comes from.
    pub origin: Origin,
    /// True for the config file's connectors.
    pub read_only: bool,
    /// The index it writes.
    pub index_name: String,
    /// Its buckets (`*` for all).
    pub buckets: Vec<String>,
    /// The role it assumes.
    pub role_arn: Option<String>,
    /// The account that must own its buckets.
    pub expected_bucket_owner: Option<String>,
    /// How it reaches its buckets.
    pub credentials: Credentials,
    /// `every 15m`, `cron "..."`, or null.
    pub schedule: Option<String>,
    /// The sync running now: its trigger, start and objects listed so far.
    #[schema(value_type = Option<Object>)]
    pub running: Option<Value>,
    /// When the worker starts its next sync.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_run: Option<String>,
    /// The last sync recorded.
    #[schema(value_type = Option<SyncRecord>)]
    pub last_sync: Option<Value>,
    /// When the last successful sync ended.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_success_at: Option<String>,
    /// Syncs skipped since the worker started because the previous one still ran.
    pub skipped: u64,
    /// Its event notifications: the queue and the messages' format.
    pub notifications: Option<NotificationsView>,
    /// Its S3 Inventory listing.
    pub inventory: Option<InventoryView>,
    /// Its passages and vectors; null: keyword search over whole documents only.
    pub embedding: Option<EmbeddingView>,
    /// What its probe verified (API connectors): the bucket URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_bucket_uri: Option<String>,
    /// The role assumed with the ExternalId of its tenant (the deployment's for the
    /// operator's connectors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_role_arn: Option<String>,
    /// The account the bucket belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_bucket_owner_account_id: Option<String>,
    /// When the probe passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub verified_at: Option<String>,
    /// Its inline sync rules (API connectors that have them).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub sync_rules: Option<Value>,
    /// In a create's or update's answer: the probe's steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<ProbeStep>>)]
    pub steps: Option<Value>,
    /// In an update's answer: whether the probe ran again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probed: Option<bool>,
    /// In an update's answer: the next sync may re-target the index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retarget_pending: Option<bool>,
    /// In the answer of an update that changed `embedding`, when the index holds vectors of
    /// another model than the new block makes (or the new model cannot be loaded): both models,
    /// what fails until they agree, and the ways out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_change: Option<String>,
}

/// A connector's event notifications as the API shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct NotificationsView {
    /// The queue.
    pub queue_url: String,
    /// The messages' format.
    pub format: String,
}

/// A connector's S3 Inventory as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InventoryView {
    /// `s3://bucket[/prefix]`.
    pub destination: String,
    /// The inventory configuration's id.
    pub config_id: String,
    /// Such as `9days`.
    pub max_age: String,
    /// Such as `1day`.
    pub deletion_grace: String,
}

/// `GET /api/v1/connectors`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConnectorList {
    /// Every running connector: the file's first, then the API's by creation.
    pub connectors: Vec<Connector>,
    /// Stored connectors that cannot run (their id or index is taken by the file, or the
    /// current defaults break them).
    pub conflicts: Vec<Conflict>,
}

/// A stored connector that does not run, and why.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Conflict {
    /// Its id.
    pub id: String,
    /// Why it does not run.
    pub reason: String,
    /// What its probe verified.
    #[schema(value_type = Object)]
    pub verified: Value,
}

/// `DELETE /api/v1/connectors/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Deleted {
    /// The connector's id.
    pub id: String,
    /// Always true.
    pub deleted: bool,
    /// Documents deleted from its index (with `delete_index=true`).
    pub documents_deleted: u64,
}

/// `POST /api/v1/connectors/{id}/sync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SyncStarted {
    /// The connector's id.
    pub id: String,
    /// Always true.
    pub started: bool,
    /// Whether the sync may re-target the index.
    pub retarget: bool,
    /// Whether the sync rebuilds every vector.
    pub reembed: bool,
}

/// `GET /api/v1/connectors/{id}/syncs`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SyncList {
    /// The connector's id.
    pub id: String,
    /// Its syncs, newest first.
    #[schema(value_type = Vec<SyncRecord>)]
    pub syncs: Vec<Value>,
}

/// One recorded sync (the report of `sync --json`, its trigger and outcome).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SyncRecord {
    /// The connector's id.
    pub connector: String,
    /// What started it.
    #[schema(pattern = "^(start|interval|schedule|manual|api)$")]
    pub trigger: String,
    /// How it ended.
    #[schema(pattern = "^(succeeded|failed|cancelled|abandoned)$")]
    pub outcome: String,
    /// When it started.
    #[schema(format = DateTime)]
    pub started_at: String,
    /// When it ended.
    #[schema(format = DateTime)]
    pub finished_at: String,
    /// Errors.
    pub errors: u64,
    /// The first errors' messages.
    pub error_messages: Option<Vec<String>>,
}

/// `GET /api/v1/connectors/{id}/search`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SearchResult {
    /// The connector's id.
    pub id: String,
    /// The query as sent.
    pub query: String,
    /// How the hits were ranked: `keyword`, `semantic` or `hybrid`.
    #[schema(pattern = "^(keyword|semantic|hybrid)$")]
    pub mode: String,
    /// The hits, best first.
    pub hits: Vec<Hit>,
}

/// One search hit: a passage of a document, or a whole document in an index without passages.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Hit {
    /// The document's id.
    pub id: String,
    /// Its bucket.
    pub bucket: String,
    /// Its key.
    pub key: String,
    /// Its score (BM25, cosine, or the fused score).
    pub score: f32,
    /// Its title.
    pub title: Option<String>,
    /// The passage with its whole text; absent for a whole-document hit (whose text, the
    /// whole body, is not sent).
    pub passage: Option<HitPassage>,
    /// Text around the first query term found (the passage's, or the body's).
    pub snippet: Option<String>,
    /// Byte ranges `[start, end)` of `snippet` that the query matched, in order.
    #[schema(value_type = Vec<Vec<u64>>)]
    pub highlights: Vec<[usize; 2]>,
}

/// Where a hit's passage lies in its document.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HitPassage {
    /// Its ordinal among the document's passages, from 0.
    pub ordinal: u32,
    /// Its first byte in the document's text.
    pub start: u64,
    /// Its end (exclusive) in the document's text.
    pub end: u64,
    /// The headings above it, where known.
    pub heading: Option<String>,
    /// The page it starts on, where known.
    pub page: Option<u32>,
    /// Its whole text: the document's text from `start` to `end`.
    pub text: String,
}

/// The body of `POST /api/v1/tenants`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// `[a-z0-9][a-z0-9_-]*`, at most 64 characters.
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    pub id: String,
}

/// A tenant as the operator sees it (never its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Tenant {
    /// Its id.
    pub id: String,
    /// The ExternalId its customer's role must require; generated by the server.
    pub external_id: String,
    /// When it was created.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The ids of its connectors (stored ones that do not run included).
    pub connectors: Vec<String>,
}

/// `POST /api/v1/tenants`: the tenant and its token, which is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TenantCreated {
    /// Its id.
    pub id: String,
    /// Its bearer token for `/api`: shown only in this answer, stored only as a SHA-256 hash.
    pub token: String,
    /// The ExternalId its customer's role must require.
    pub external_id: String,
    /// When it was created.
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// `GET /api/v1/tenants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TenantList {
    /// Every tenant, by creation.
    pub tenants: Vec<Tenant>,
}

/// `DELETE /api/v1/tenants/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TenantDeleted {
    /// The tenant's id.
    pub id: String,
    /// Always true.
    pub deleted: bool,
    /// The ids of its connectors, deleted with it.
    pub connectors_deleted: Vec<String>,
    /// Documents deleted from their indexes (with `delete_index=true`).
    pub documents_deleted: u64,
}

/// `GET /api/v1/aws-setup`: what a customer creates in their account.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AwsSetup {
    /// The principal the role must trust.
    pub principal_arn: String,
    /// The caller's ExternalId: its tenant's, or the deployment's (`api.external_id`) for the
    /// operator.
    pub external_id: String,
    /// The role's name.
    pub role_name: String,
    /// The bucket and prefix the permissions are for.
    pub bucket_uri: String,
    /// The role's trust policy.
    #[schema(value_type = Object)]
    pub trust_policy: Value,
    /// The role's permissions policy.
    #[schema(value_type = Object)]
    pub permissions_policy: Value,
    /// The same as a CloudFormation template.
    #[schema(value_type = Object)]
    pub cloudformation: Value,
    /// The same as Terraform.
    pub terraform: String,
    /// The same as AWS CLI commands.
    pub aws_cli: String,
    /// What to do next.
    pub next: String,
}

/// An error answer: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Error {
    /// The error.
    pub error: ErrorBody,
}

/// What went wrong.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The status code.
    pub status: u16,
    /// What went wrong, and what to do.
    pub message: String,
    /// A body's problems, each with its field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<FieldProblem>>,
    /// The failing probe step, its target, message and AWS code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The probe's steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<ProbeStep>>)]
    pub steps: Option<Value>,
    /// Other details: the sync `running`, the index's `recorded` and `wanted` sources.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
}

/// One problem of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldProblem {
    /// The body field (`bucket_uri`, `sync_rules[0].prefix`), or `body` for the whole body.
    pub field: String,
    /// The offending value, quoted; masked for secrets; absent when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The rule broken.
    pub rule: String,
}

impl FieldProblem {
    /// A problem of `field`.
    pub fn new(field: &str, value: Option<String>, rule: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            value,
            rule: rule.into(),
        }
    }
}

/// One step of the probe of a connector's role and bucket.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProbeStep {
    /// The connector's id.
    pub connector: String,
    /// The step.
    pub step: String,
    /// What it probed.
    pub target: String,
    /// How it went.
    #[schema(pattern = "^(pass|fail|skip|warn)$")]
    pub status: String,
    /// What happened, and what to do about a failure.
    pub message: String,
    /// The raw AWS error code of a failure.
    pub code: Option<String>,
}

impl CreateConnector {
    /// Every problem of `body` against this type, as the document describes it: fields
    /// missing, fields unknown (with the nearest known name), values of the wrong type or out
    /// of range, at any depth. Values of the right type are not judged here (the config file's
    /// rules judge them).
    pub fn problems(body: &Value) -> Vec<FieldProblem> {
        let mut components = Vec::new();
        <Self as ToSchema>::schemas(&mut components);
        let components: Map<String, Value> = components
            .into_iter()
            .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap_or(Value::Null)))
            .collect();
        let root =
            serde_json::to_value(<Self as utoipa::PartialSchema>::schema()).unwrap_or(Value::Null);
        let mut problems = Vec::new();
        check_value("", body, &root, &components, &mut problems);
        problems
    }
}

/// Checks `value` (at `path`; empty for the body) against a JSON schema of the document.
fn check_value(
    path: &str,
    value: &Value,
    schema: &Value,
    components: &Map<String, Value>,
    problems: &mut Vec<FieldProblem>,
) {
    if let Some(name) = schema["$ref"].as_str() {
        let name = name.rsplit('/').next().unwrap_or_default();
        if let Some(schema) = components.get(name) {
            check_value(path, value, schema, components, problems);
        }
        return;
    }
    if let Some(choices) = schema["oneOf"].as_array() {
        // `Option<T>`: null, or T.
        if value.is_null() && choices.iter().any(|c| c["type"] == "null") {
            return;
        }
        if let Some(other) = choices.iter().find(|c| c["type"] != "null") {
            check_value(path, value, other, components, problems);
        }
        return;
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => return,
    };
    if value.is_null() && types.contains(&"null") {
        return;
    }
    let wanted = types
        .iter()
        .find(|t| **t != "null")
        .copied()
        .unwrap_or("null");
    let fits = match wanted {
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "integer" => value.as_i64().is_some_and(|n| {
            schema["minimum"].as_f64().is_none_or(|min| n as f64 >= min)
                && schema["maximum"].as_f64().is_none_or(|max| n as f64 <= max)
        }),
        "number" => value.is_number(),
        _ => true,
    };
    let field = if path.is_empty() { "body" } else { path };
    if !fits {
        // A secret (`format: password`) is never repeated.
        let shown = if schema["format"] == "password" {
            crate::config::REDACTED.to_owned()
        } else {
            value.to_string()
        };
        problems.push(FieldProblem::new(
            field,
            Some(shown),
            format!("must be {}", in_words(wanted, schema)),
        ));
        return;
    }
    let Value::Object(object) = value else {
        return;
    };
    let Some(properties) = schema["properties"].as_object() else {
        return;
    };
    for required in schema["required"].as_array().into_iter().flatten() {
        if let Some(name) = required.as_str()
            && !object.contains_key(name)
        {
            problems.push(FieldProblem::new(
                field,
                None,
                format!("missing field `{name}`"),
            ));
        }
    }
    for (name, item) in object {
        let item_path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        match properties.get(name) {
            Some(schema) => check_value(&item_path, item, schema, components, problems),
            None if schema["additionalProperties"] == false => {
                let known: Vec<&str> = properties.keys().map(String::as_str).collect();
                let nearest = known
                    .iter()
                    .map(|k| (strsim::jaro_winkler(name, k), *k))
                    .filter(|(score, _)| *score > 0.8)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, k)| format!("; did you mean `{k}`?"))
                    .unwrap_or_else(|| format!("; expected one of {}", known.join(", ")));
                problems.push(FieldProblem::new(
                    &item_path,
                    None,
                    format!("is an unknown field{nearest}"),
                ));
            }
            None => {}
        }
    }
}

/// A JSON type, in the words of a person.
fn in_words(kind: &str, schema: &Value) -> String {
    match kind {
        "string" => "text (a JSON string in quotes)".to_owned(),
        "boolean" => "true or false".to_owned(),
        "array" => "a list (a JSON array)".to_owned(),
        "object" => "an object of fields ({...})".to_owned(),
        "integer" => match (schema["minimum"].as_f64(), schema["maximum"].as_f64()) {
            (Some(min), Some(max)) => format!("a whole number from {min} to {max}"),
            (Some(min), None) => format!("a whole number of at least {min}"),
            (None, Some(max)) => format!("a whole number of at most {max}"),
            (None, None) => "a whole number".to_owned(),
        },
        "number" => "a number".to_owned(),
        other => other.to_owned(),
    }
}
