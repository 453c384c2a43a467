//! A connector request body, turned into the config file's connector form and validated by the
//! config file's own rules.
//!
//! The body names a bucket URI, a role and the bucket owner; the form adds the deployment's
//! ExternalId and inherits `defaults:`, then goes through `config::parse` like a file would, so
//! an API connector can break no rule a file connector must keep. AWS keys are refused before
//! anything else, and their values are never repeated. `${VAR}` in a body is never expanded.
//! An update is a JSON merge patch (RFC 7396) of the stored request, checked the same way.
//!
//! The `embedding` block names no file through the API but the operator's: `api_key_file` is
//! refused from everyone (the worker reads no file for a request; the key itself is sent), and
//! `model_dir` and `tokenizer` from a tenant (a path from a tenant would make the worker read
//! its own files for them); a `provider: local` without `model_dir` runs the model of
//! `defaults.embedding.model_dir`, looked up at each validation, so it follows the defaults.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::embedding::EmbeddingProvider;
use crate::config::inherit::ConnectorDefaults;
use crate::config::{self, ConfigError, ConnectorConfig, Problem, REDACTED};
use crate::http::handle::Caller;
use crate::http::model::FieldProblem;

use super::store::{StoredConnector, masked};

/// Body fields refused outright: credentials are never accepted through the API.
const KEY_FIELDS: [&str; 3] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];

/// The body of `POST /api/v1/connectors`; an update (`PATCH`) is merged into the stored one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateConnector {
    /// The connector's id, `[a-z0-9][a-z0-9_-]*`.
    pub id: String,
    /// `s3://bucket` or `s3://bucket/prefix`.
    pub bucket_uri: String,
    /// The customer's role that trusts our principal under the deployment's ExternalId.
    pub role_arn: String,
    /// The 12-digit account that must own the bucket.
    pub expected_bucket_owner: String,
    /// The index to write; default the id.
    #[serde(default)]
    pub index_name: Option<String>,
    /// Inline sync rules (a JSON array), as in the config file.
    #[serde(default)]
    pub sync_rules: Option<Value>,
    /// Cron schedule (UTC); not with `interval`.
    #[serde(default)]
    pub schedule: Option<String>,
    /// Sync interval such as `1h`; not with `schedule`.
    #[serde(default)]
    pub interval: Option<String>,
    /// S3 event notifications through SQS, as in the config file (without
    /// `sqs_endpoint_url`: the deployment's endpoint is used).
    #[serde(default)]
    pub notifications: Option<Value>,
    /// The bucket's S3 Inventory as its listing, as in the config file (`destination`,
    /// `config_id`, `max_age`, `deletion_grace`); the destination is read with the same role.
    #[serde(default)]
    pub inventory: Option<Value>,
    /// Passages and vectors, as in the config file (without `api_key_file`; `model_dir` and
    /// `tokenizer` the operator's only).
    #[serde(default)]
    pub embedding: Option<Value>,
}

/// Flags of one request, never stored: `retarget` lets the (next) sync re-bind an index that
/// holds documents of another source; `wait: false` skips the probe's wait for IAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    /// `"retarget": true`.
    pub retarget: bool,
    /// `"wait"`, default true.
    pub wait: bool,
}

/// A request checked into a connector (its Debug output masks the `embedding.api_key`).
pub struct Checked {
    /// The request's fields, flags removed: what an update merges into.
    pub request: Value,
    /// The config file's form.
    pub form: Value,
    /// The validated connector.
    pub connector: ConnectorConfig,
}

impl std::fmt::Debug for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checked")
            .field("request", &masked(&self.request))
            .field("form", &masked(&self.form))
            .field("connector", &self.connector)
            .finish()
    }
}

/// A bucket URI split into bucket and prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketUri {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, possibly empty.
    pub prefix: String,
}

impl BucketUri {
    /// Parses `s3://bucket[/prefix]`.
    pub fn parse(uri: &str) -> Result<Self, String> {
        let rest = uri
            .strip_prefix("s3://")
            .ok_or("must be an S3 URI: s3://bucket or s3://bucket/prefix")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        config::rules_of_names::check_bucket_name(bucket)
            .map_err(|rule| format!("names a bucket that {rule}"))?;
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

/// Parses and checks a create request: the checked connector and the request's flags, or
/// every problem found, all at once.
/// `caller` sends it (only the operator may name a file of the worker).
pub fn parse_create(
    body: &[u8],
    caller: &Caller,
    external_id: &str,
    defaults: &ConnectorDefaults,
) -> Result<(Checked, Flags), Vec<FieldProblem>> {
    let (object, flags, problems) = parse_object(body, caller)?;
    with_problems(check(object, external_id, defaults), flags, problems)
}

/// The checked connector and the body's flags when neither reading the body (`problems`) nor
/// the check found a problem; else every problem, the body's first.
fn with_problems(
    checked: Result<Checked, Vec<FieldProblem>>,
    flags: Flags,
    mut problems: Vec<FieldProblem>,
) -> Result<(Checked, Flags), Vec<FieldProblem>> {
    match checked {
        Ok(checked) if problems.is_empty() => Ok((checked, flags)),
        Ok(_) => Err(problems),
        Err(more) => {
            problems.extend(more);
            Err(problems)
        }
    }
}

/// Parses and checks an update of `stored` (connector `id`): the merged connector and the
/// update's flags, or every problem found, all at once. The body is a JSON merge patch of the
/// stored request: a field it names replaces the stored one (objects are merged the same way),
/// `null` removes it. `caller` sends it (only the operator may name a file of the worker).
pub fn parse_update(
    body: &[u8],
    caller: &Caller,
    id: &str,
    stored: &StoredConnector,
    external_id: &str,
    defaults: &ConnectorDefaults,
) -> Result<(Checked, Flags), Vec<FieldProblem>> {
    let (mut patch, flags, mut problems) = parse_object(body, caller)?;
    if let Some(sent) = patch.get("id")
        && sent.as_str() != Some(id)
    {
        problems.push(FieldProblem::new(
            "id",
            Some(sent.to_string()),
            format!(
                "cannot be changed (the connector is {id:?}); create another connector instead"
            ),
        ));
        patch.remove("id");
    }
    let mut request = request_of(stored);
    merge_patch(&mut request, Value::Object(patch));
    let Value::Object(request) = request else {
        return Err(vec![FieldProblem::new(
            "body",
            None,
            "must be a JSON object",
        )]);
    };
    with_problems(check(request, external_id, defaults), flags, problems)
}

/// The body as a JSON object without its flags and without the fields it (or its `caller`)
/// may not send, and the problems of those; `Err` when it is no JSON object at all.
#[allow(clippy::type_complexity)]
fn parse_object(
    body: &[u8],
    caller: &Caller,
) -> Result<(Map<String, Value>, Flags, Vec<FieldProblem>), Vec<FieldProblem>> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        // serde's message ends with its own " at line L column C": say the position once.
        let message = error.to_string();
        let position = format!(" at line {} column {}", error.line(), error.column());
        let message = message.strip_suffix(&position).unwrap_or(&message);
        vec![FieldProblem::new(
            "body",
            None,
            format!(
                "is not valid JSON: {message} (line {}, column {})",
                error.line(),
                error.column()
            ),
        )]
    })?;
    let Value::Object(mut object) = value else {
        return Err(vec![FieldProblem::new(
            "body",
            None,
            "must be a JSON object with id, bucket_uri, role_arn and expected_bucket_owner",
        )]);
    };
    let mut problems: Vec<FieldProblem> = KEY_FIELDS
        .iter()
        .filter(|field| object.remove(**field).is_some())
        .map(|field| {
            FieldProblem::new(
                field,
                Some(REDACTED.to_owned()),
                "is refused: the API accepts no AWS keys; create a role that trusts our principal (GET /api/v1/aws-setup) and send its role_arn",
            )
        })
        .collect();
    if object.remove("external_id").is_some() {
        problems.push(FieldProblem::new(
            "external_id",
            None,
            "is set by the deployment (GET /api/v1/aws-setup shows it); leave it out",
        ));
    }
    if object.remove("sharding").is_some() {
        problems.push(FieldProblem::new(
            "sharding",
            None,
            "is not available through the API: the API runs on one worker (run --shard N > 1 refuses an api block), which syncs its connectors whole",
        ));
    }
    if let Some(Value::Object(notifications)) = object.get_mut("notifications")
        && notifications.remove("sqs_endpoint_url").is_some()
    {
        problems.push(FieldProblem::new(
            "notifications.sqs_endpoint_url",
            None,
            "is set by the deployment (defaults.endpoint_url, else AWS's SQS); leave it out",
        ));
    }
    if let Some(Value::Object(embedding)) = object.get_mut("embedding") {
        problems.extend(embedding_files(embedding, caller));
    }
    let mut flag = |name: &str, default: bool| match object.remove(name) {
        None => default,
        Some(Value::Bool(value)) => value,
        Some(other) => {
            problems.push(FieldProblem::new(
                name,
                Some(other.to_string()),
                "must be true or false",
            ));
            default
        }
    };
    let flags = Flags {
        retarget: flag("retarget", false),
        wait: flag("wait", true),
    };
    Ok((object, flags, problems))
}

/// The problems of the files an `embedding` block names (removing those `caller` may not
/// name): `api_key_file` from anyone, `model_dir` and `tokenizer` from a tenant, and a
/// relative path from the operator (a request has no directory to resolve it against).
fn embedding_files(embedding: &mut Map<String, Value>, caller: &Caller) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    if embedding
        .remove("api_key_file")
        .is_some_and(|v| !v.is_null())
    {
        problems.push(FieldProblem::new(
            "embedding.api_key_file",
            None,
            "is not read through the API: the worker reads no file for a request; send the key \
             itself as embedding.api_key (stored, never answered)",
        ));
    }
    for (field, without) in [
        (
            "model_dir",
            "provider local then runs the model of defaults.embedding.model_dir",
        ),
        (
            "tokenizer",
            "tokens are then estimated from the text's length",
        ),
    ] {
        let Some(path) = embedding.get(field).filter(|v| !v.is_null()) else {
            continue;
        };
        let name = format!("embedding.{field}");
        if caller.tenant().is_some() {
            embedding.remove(field);
            problems.push(FieldProblem::new(
                &name,
                None,
                format!(
                    "is the operator's: a tenant names no path on the worker; leave it out ({without})"
                ),
            ));
        } else if path.as_str().is_some_and(|p| !Path::new(p).is_absolute()) {
            problems.push(FieldProblem::new(
                &name,
                Some(path.to_string()),
                "must be an absolute path: a request has no config file directory to resolve it \
                 against",
            ));
        }
    }
    problems
}

/// The problem of a tenant's connector whose own `embedding` block sends its passages to an
/// endpoint the operator has not admitted (`api.tenant_embedding_endpoints`): a tenant never
/// points the worker at a URL of its choosing, which could be a service inside the worker's
/// network. The operator's calls, blocks without an endpoint and the defaults' own endpoint
/// pass.
pub fn endpoint_problem(
    checked: &Checked,
    caller: &Caller,
    defaults: &ConnectorDefaults,
    admitted: &[String],
) -> Option<FieldProblem> {
    caller.tenant()?;
    let EmbeddingProvider::Openai { endpoint_url, .. } =
        &checked.connector.embedding.as_ref()?.provider
    else {
        return None;
    };
    let defaults_endpoint = defaults
        .embedding
        .as_ref()
        .and_then(|embedding| embedding.endpoint_url.as_deref());
    if defaults_endpoint == Some(endpoint_url.as_str())
        || config::api::admits_endpoint(admitted, endpoint_url)
    {
        return None;
    }
    let rule = if admitted.is_empty() {
        "is not admitted: the operator admits no endpoint of a tenant's own \
         (api.tenant_embedding_endpoints); leave the embedding block out to use the defaults', \
         or use provider local"
            .to_owned()
    } else {
        format!(
            "is not admitted: a tenant's endpoint must be one of {admitted:?} or lie below one \
             (api.tenant_embedding_endpoints)"
        )
    };
    Some(FieldProblem::new("embedding.endpoint_url", None, rule))
}

/// Stand-ins for required fields that are missing or of the wrong type, so that the config's
/// rules still judge every other field of the body (the answer is an error either way).
const STAND_INS: [(&str, &str); 4] = [
    ("id", "stand-in"),
    ("bucket_uri", "s3://stand-in-bucket"),
    ("role_arn", "arn:aws:iam::111122223333:role/stand-in"),
    ("expected_bucket_owner", "111122223333"),
];

/// Checks a request object (no flags) into the connector's form and the connector: every
/// problem of its shape (the documented type, `CreateConnector`) and of its values (the config
/// file's rules), at once.
fn check(
    object: Map<String, Value>,
    external_id: &str,
    defaults: &ConnectorDefaults,
) -> Result<Checked, Vec<FieldProblem>> {
    let value = Value::Object(object);
    let mut problems = crate::http::model::CreateConnector::problems(&value);
    let request: CreateConnector = if problems.is_empty() {
        serde_path_to_error::deserialize(value.clone()).map_err(|error| {
            let path = error.path().to_string();
            let field = if path == "." { "body".to_owned() } else { path };
            vec![FieldProblem::new(&field, None, error.inner().to_string())]
        })?
    } else {
        // Judge the well-formed fields; the others are reported already.
        let Value::Object(mut object) = value.clone() else {
            return Err(problems);
        };
        object.retain(|field, _| {
            !problems
                .iter()
                .any(|p| p.field == *field || p.field.starts_with(&format!("{field}.")))
        });
        for (field, stand_in) in STAND_INS {
            if !object.get(field).is_some_and(Value::is_string) {
                object.insert(field.into(), json!(stand_in));
            }
        }
        match serde_json::from_value(Value::Object(object)) {
            Ok(request) => request,
            Err(_) => return Err(problems),
        }
    };
    let (form, form_problems) = connector_form(&request, external_id);
    let reported = |field: &str| {
        problems
            .iter()
            .chain(&form_problems)
            .any(|p| p.field == field || field.starts_with(&format!("{}.", p.field)))
    };
    match validate_form(&form, defaults) {
        Ok(connector) if problems.is_empty() && form_problems.is_empty() => Ok(Checked {
            request: value,
            form,
            connector,
        }),
        Ok(_) => {
            problems.extend(form_problems);
            Err(problems)
        }
        Err(more) => {
            let more: Vec<FieldProblem> =
                more.into_iter().filter(|p| !reported(&p.field)).collect();
            problems.extend(form_problems);
            problems.extend(more);
            Err(problems)
        }
    }
}

/// Applies a JSON merge patch (RFC 7396) to `target`.
pub fn merge_patch(target: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(&key);
            } else {
                merge_patch(target.entry(key).or_insert(Value::Null), value);
            }
        }
    }
}

/// The request fields of a stored connector: as stored, or (for a file written before updates
/// existed) derived from its form, the inverse of [`connector_form`].
pub fn request_of(stored: &StoredConnector) -> Value {
    if let Some(request) = &stored.request {
        return request.clone();
    }
    let form = &stored.form;
    let bucket = form["buckets"][0].as_str().unwrap_or_default();
    let mut request = Map::new();
    let mut bucket_uri = format!("s3://{bucket}");
    match form
        .get("sync_rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([rule])
            if rule.as_object().is_some_and(|r| r.len() == 2)
                && rule["bucket"] == bucket
                && rule["prefix"].is_string() =>
        {
            bucket_uri.push('/');
            bucket_uri.push_str(rule["prefix"].as_str().unwrap_or_default());
        }
        Some(_) => {
            request.insert("sync_rules".into(), form["sync_rules"].clone());
        }
        None => {}
    }
    request.insert("bucket_uri".into(), json!(bucket_uri));
    for field in [
        "id",
        "role_arn",
        "expected_bucket_owner",
        "index_name",
        "schedule",
        "interval",
        "notifications",
        "inventory",
        "embedding",
    ] {
        if let Some(value) = form.get(field) {
            request.insert(field.into(), value.clone());
        }
    }
    Value::Object(request)
}

/// The config file's form of the requested connector, and the problems found making it (a
/// field with a problem is left out of the form, or stood in for).
fn connector_form(request: &CreateConnector, external_id: &str) -> (Value, Vec<FieldProblem>) {
    let mut problems = Vec::new();
    let uri = BucketUri::parse(&request.bucket_uri).unwrap_or_else(|rule| {
        problems.push(FieldProblem::new(
            "bucket_uri",
            Some(format!("{:?}", request.bucket_uri)),
            rule,
        ));
        BucketUri {
            bucket: "stand-in-bucket".to_owned(),
            prefix: String::new(),
        }
    });
    let mut form = Map::new();
    form.insert("id".into(), json!(request.id));
    form.insert("buckets".into(), json!([uri.bucket]));
    form.insert("role_arn".into(), json!(request.role_arn));
    form.insert("external_id".into(), json!(external_id));
    form.insert(
        "expected_bucket_owner".into(),
        json!(request.expected_bucket_owner),
    );
    if let Some(index_name) = &request.index_name {
        form.insert("index_name".into(), json!(index_name));
    }
    match (&request.sync_rules, uri.prefix.is_empty()) {
        (Some(Value::String(_)), _) => {
            problems.push(FieldProblem::new(
                "sync_rules",
                None,
                "must be the rule list itself (a JSON array), not a file path",
            ));
        }
        (Some(_), false) => {
            problems.push(FieldProblem::new(
                "sync_rules",
                None,
                "is set together with a prefix in bucket_uri; put the prefix in the rules",
            ));
        }
        (Some(rules), true) => {
            form.insert("sync_rules".into(), rules.clone());
        }
        (None, false) => {
            form.insert(
                "sync_rules".into(),
                json!([{ "bucket": uri.bucket, "prefix": uri.prefix }]),
            );
        }
        (None, true) => {}
    }
    for (field, value) in [
        ("schedule", &request.schedule),
        ("interval", &request.interval),
    ] {
        if let Some(value) = value {
            form.insert(field.into(), json!(value));
        }
    }
    for (field, value) in [
        ("notifications", &request.notifications),
        ("inventory", &request.inventory),
        ("embedding", &request.embedding),
    ] {
        if let Some(value) = value {
            form.insert(field.into(), value.clone());
        }
    }
    (Value::Object(form), problems)
}

/// Validates a connector form with the config file's rules, `defaults` inherited (and a
/// `provider: local` block without `model_dir` given `defaults.embedding.model_dir`); problems
/// name body fields (or `defaults.<field>` for a broken inherited value).
pub fn validate_form(
    form: &Value,
    defaults: &ConnectorDefaults,
) -> Result<ConnectorConfig, Vec<FieldProblem>> {
    let mut form = form.clone();
    if let Some(Value::Object(embedding)) = form.get_mut("embedding")
        && embedding.get("provider").and_then(Value::as_str) == Some("local")
        && !embedding.contains_key("model_dir")
        && let Some(dir) = defaults
            .embedding
            .as_ref()
            .and_then(|e| e.model_dir.as_ref())
    {
        embedding.insert("model_dir".into(), json!(dir));
    }
    let document = json!({ "defaults": defaults, "connectors": [form] });
    // JSON is YAML; the config parser reads it as a file, without the environment.
    let text = document.to_string();
    let parsed = config::parse(&text, Path::new("request body"), Path::new("."), &|_| None);
    match parsed {
        Ok(mut config) if config.connectors.len() == 1 => {
            config.connectors.pop().ok_or_else(Vec::new)
        }
        Ok(_) => Err(vec![FieldProblem::new(
            "body",
            None,
            "must describe one connector",
        )]),
        Err(ConfigError::Invalid { problems, .. }) => {
            Err(problems.iter().map(from_config_problem).collect())
        }
        Err(ConfigError::Syntax { message, .. }) => Err(message
            .lines()
            .map(|line| line.trim_start_matches("  - "))
            .filter(|line| !line.ends_with("problems:"))
            .map(|line| {
                let line = line.trim_start_matches(CONNECTOR_PREFIX);
                match line.split_once(": ") {
                    Some((field, rule)) => FieldProblem::new(field, None, rule),
                    None => FieldProblem::new("body", None, line),
                }
            })
            .collect()),
        Err(ConfigError::Read { .. }) => {
            Err(vec![FieldProblem::new("body", None, "could not be read")])
        }
    }
}

/// How the config parser names the one connector of a request.
const CONNECTOR_PREFIX: &str = "connectors[0].";

fn from_config_problem(problem: &Problem) -> FieldProblem {
    let field = problem
        .path
        .strip_prefix(CONNECTOR_PREFIX)
        .unwrap_or(&problem.path);
    // The body's bucket is `bucket_uri`; the form's `buckets[0]` is an internal name.
    let field = if field.starts_with("buckets") {
        "bucket_uri"
    } else {
        field
    };
    FieldProblem::new(field, problem.value.clone(), problem.rule.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn create(body: &str) -> Result<ConnectorConfig, Vec<FieldProblem>> {
        parse_create(
            body.as_bytes(),
            &Caller::Admin,
            "deployment-external-id",
            &ConnectorDefaults::default(),
        )
        .map(|(checked, _)| checked.connector)
    }

    const GOOD: &str = r#"{"id": "acme", "bucket_uri": "s3://acme-docs/reports/", "role_arn": "arn:aws:iam::111122223333:role/search", "expected_bucket_owner": "111122223333", "interval": "1h"}"#;

    #[test]
    fn a_good_request_becomes_a_connector_with_the_deployments_external_id() {
        let connector = create(GOOD).unwrap();
        assert_eq!(
            connector.buckets,
            crate::config::BucketSelection::Named(vec!["acme-docs".to_owned()])
        );
        assert_eq!(
            connector.external_id.as_deref(),
            Some("deployment-external-id")
        );
        assert_eq!(connector.expected_owner(), Some("111122223333"));
        assert_eq!(connector.rules.list_prefixes("acme-docs"), ["reports/"]);
        assert!(connector.timer.is_some());
    }

    #[test]
    fn bad_requests_name_each_field_and_rule() {
        let cases: [(&str, &str, &str); 8] = [
            (r#"{"id": "#, "body", "is not valid JSON"),
            ("[]", "body", "must be a JSON object"),
            (
                r#"{"id": "a", "bucket_uri": "s3://b", "role_arn": "r", "expected_bucket_owner": "1", "aws_secret_access_key": "wJalr-secret"}"#,
                "aws_secret_access_key",
                "accepts no AWS keys",
            ),
            (
                &GOOD.replace("s3://acme-docs/reports/", "http://x"),
                "bucket_uri",
                "must be an S3 URI",
            ),
            (
                &GOOD.replace("111122223333\",", "42\","),
                "expected_bucket_owner",
                "12-digit",
            ),
            (&GOOD.replace("\"acme\"", "\"Acme!\""), "id", "[a-z0-9]"),
            (&GOOD.replace("\"1h\"", "\"soon\""), "interval", ""),
            (
                &GOOD.replace("\"interval\"", "\"intervall\""),
                "intervall",
                "unknown field",
            ),
        ];
        for (body, field, rule) in cases {
            let problems = create(body).expect_err(body);
            assert_names(&problems, field, rule, body);
            let shown = format!("{problems:?}");
            assert!(!shown.contains("wJalr-secret"), "{shown}");
        }
    }

    #[test]
    fn every_problem_of_a_body_is_answered_at_once() {
        let fields = |body: &str| -> Vec<(String, String)> {
            create(body)
                .expect_err(body)
                .into_iter()
                .map(|p| (p.field, p.rule))
                .collect()
        };
        // Every missing field.
        let missing = fields(r#"{"id": "beta"}"#);
        for field in ["bucket_uri", "role_arn", "expected_bucket_owner"] {
            assert!(
                missing
                    .iter()
                    .any(|(f, r)| f == "body" && r == &format!("missing field `{field}`")),
                "{missing:?}"
            );
        }
        assert_eq!(missing.len(), 3, "{missing:?}");
        // Six bad values.
        let bad = fields(
            r#"{"id": "Acme!", "bucket_uri": "http://x", "role_arn": "nope", "expected_bucket_owner": "42", "interval": "soon", "index_name": "Bad Name"}"#,
        );
        let named: std::collections::BTreeSet<&str> = bad.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            named.into_iter().collect::<Vec<_>>(),
            [
                "bucket_uri",
                "expected_bucket_owner",
                "id",
                "index_name",
                "interval",
                "role_arn"
            ],
            "{bad:?}"
        );
        // Unknown fields and wrong types, at any depth, in a person's words; keys still refused.
        let shaped = fields(
            r#"{"id": 5, "bucket_uri": true, "role_arn": "arn:aws:iam::111122223333:role/search", "expected_bucket_owner": "111122223333", "intervall": "1h", "colour": "red", "notifications": {"queue_url": "https://sqs.us-east-1.amazonaws.com/111122223333/q", "wait_time": "soon", "max_messages": 11}, "aws_secret_access_key": "wJalr-secret"}"#,
        );
        for (field, rule) in [
            ("aws_secret_access_key", "accepts no AWS keys"),
            ("id", "must be text"),
            ("bucket_uri", "must be text"),
            ("intervall", "did you mean `interval`?"),
            ("colour", "unknown field"),
            ("notifications.wait_time", "a whole number from 0 to 20"),
            ("notifications.max_messages", "a whole number from 1 to 10"),
        ] {
            assert!(
                shaped.iter().any(|(f, r)| f == field && r.contains(rule)),
                "{field} {rule}: {shaped:?}"
            );
        }
        assert_eq!(shaped.len(), 7, "{shaped:?}");
        assert!(!format!("{shaped:?}").contains("wJalr"), "{shaped:?}");
        assert!(!format!("{shaped:?}").contains("u32"), "{shaped:?}");
    }

    #[test]
    fn bad_json_says_its_position_once() {
        let problems = create("{\n  \"id\": \"beta\",\n}").unwrap_err();
        let rule = &problems[0].rule;
        assert!(rule.contains("(line 3, column 1)"), "{rule}");
        assert!(!rule.contains("at line"), "{rule}");
    }

    #[test]
    fn a_broken_default_is_named_as_such() {
        let defaults = ConnectorDefaults {
            region: Some("EU".into()),
            ..ConnectorDefaults::default()
        };
        let problems = parse_create(
            GOOD.as_bytes(),
            &Caller::Admin,
            "deployment-external-id",
            &defaults,
        )
        .unwrap_err();
        assert_eq!(problems[0].field, "defaults.region", "{problems:?}");
    }

    fn stored(request: &str) -> StoredConnector {
        let (checked, _) = parse_create(
            request.as_bytes(),
            &Caller::Admin,
            "deployment-external-id",
            &ConnectorDefaults::default(),
        )
        .unwrap();
        StoredConnector {
            form: checked.form,
            verified: super::super::store::Verified {
                verified_bucket_uri: String::new(),
                verified_role_arn: String::new(),
                verified_bucket_owner_account_id: String::new(),
                verified_at: time::OffsetDateTime::UNIX_EPOCH,
            },
            request: Some(checked.request),
            retarget_pending: false,
            tenant: None,
        }
    }

    fn update(stored: &StoredConnector, body: &str) -> Result<(Checked, Flags), Vec<FieldProblem>> {
        parse_update(
            body.as_bytes(),
            &Caller::Admin,
            "acme",
            stored,
            "deployment-external-id",
            &ConnectorDefaults::default(),
        )
    }

    #[test]
    fn an_update_merges_into_the_stored_request() {
        let before = stored(GOOD);
        // Only what the patch names changes; null removes; flags are not stored.
        let (checked, flags) = update(
            &before,
            r#"{"interval": null, "schedule": "0 * * * *", "index_name": "acme-2", "retarget": true, "wait": false}"#,
        )
        .unwrap();
        assert_eq!(
            flags,
            Flags {
                retarget: true,
                wait: false
            }
        );
        assert_eq!(checked.connector.index_name(), "acme-2");
        assert_eq!(
            checked.connector.rules.list_prefixes("acme-docs"),
            ["reports/"]
        );
        assert!(checked.request.get("interval").is_none());
        assert!(checked.request.get("retarget").is_none());
        assert_eq!(checked.form["schedule"], "0 * * * *");
        // The merged request is validated like a create: every problem, by field.
        let problems = update(
            &before,
            r#"{"expected_bucket_owner": "42", "interval": "soon", "aws_session_token": "t0ken"}"#,
        )
        .unwrap_err();
        assert_eq!(problems[0].field, "aws_session_token", "{problems:?}");
        let problems = update(
            &before,
            r#"{"expected_bucket_owner": "42", "interval": "soon"}"#,
        )
        .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert!(
            fields.contains(&"expected_bucket_owner") && fields.contains(&"interval"),
            "{problems:?}"
        );
        for (body, field, rule) in [
            (r#"{"id": "other"}"#, "id", "cannot be changed"),
            (r#"{"role_arn": null}"#, "body", "missing field `role_arn`"),
            (r#"{"retarget": "yes"}"#, "retarget", "true or false"),
            (
                r#"{"sync_rules": [{"bucket": "acme-docs", "prefix": "x/"}]}"#,
                "sync_rules",
                "together with a prefix",
            ),
            (
                r#"{"sharding": {"by": "prefix"}}"#,
                "sharding",
                "one worker",
            ),
            (
                r#"{"notifications": {"queue_url": "https://sqs.us-east-1.amazonaws.com/111122223333/q", "sqs_endpoint_url": "http://elsewhere"}}"#,
                "notifications.sqs_endpoint_url",
                "set by the deployment",
            ),
            (
                r#"{"inventory": {"destination": "acme-inventories", "config_id": "daily"}}"#,
                "inventory.destination",
                "s3://",
            ),
            (
                r#"{"inventory": {"destination": "s3://acme-inventories"}}"#,
                "inventory",
                "config_id",
            ),
        ] {
            let problems = update(&before, body).expect_err(body);
            assert_names(&problems, field, rule, body);
        }
        // Notifications are merged field by field.
        let (with_queue, _) = update(
            &before,
            r#"{"notifications": {"queue_url": "https://sqs.us-east-1.amazonaws.com/111122223333/q"}}"#,
        )
        .unwrap();
        let mut after = before.clone();
        after.request = Some(with_queue.request);
        after.form = with_queue.form;
        let (checked, _) = update(&after, r#"{"notifications": {"wait_time": 5}}"#).unwrap();
        let notifications = checked.connector.notifications.unwrap();
        assert_eq!(
            (notifications.queue_url.as_str(), notifications.wait_time),
            ("https://sqs.us-east-1.amazonaws.com/111122223333/q", 5)
        );
        // So is an inventory; null removes it.
        let (with_inventory, _) = update(
            &before,
            r#"{"inventory": {"destination": "s3://acme-inventories/reports", "config_id": "daily"}}"#,
        )
        .unwrap();
        let mut after = before.clone();
        after.request = Some(with_inventory.request);
        after.form = with_inventory.form;
        let (checked, _) = update(&after, r#"{"inventory": {"max_age": "2d"}}"#).unwrap();
        let inventory = checked.connector.inventory.unwrap();
        assert_eq!(
            (
                inventory.bucket.as_str(),
                inventory.prefix.as_str(),
                inventory.config_id.as_str(),
                inventory.max_age
            ),
            (
                "acme-inventories",
                "reports",
                "daily",
                std::time::Duration::from_secs(2 * 86_400)
            )
        );
        let (checked, _) = update(&after, r#"{"inventory": null}"#).unwrap();
        assert!(checked.connector.inventory.is_none());
        assert!(checked.request.get("inventory").is_none());
    }

    #[test]
    fn the_request_of_an_older_store_is_derived_from_its_form() {
        for (body, bucket_uri, rules) in [
            (GOOD, "s3://acme-docs/reports/", None),
            (
                r#"{"id": "acme", "bucket_uri": "s3://acme-docs", "role_arn": "arn:aws:iam::111122223333:role/search", "expected_bucket_owner": "111122223333", "sync_rules": [{"bucket": "acme-docs", "extension": ["pdf"]}]}"#,
                "s3://acme-docs",
                Some(json!([{"bucket": "acme-docs", "extension": ["pdf"]}])),
            ),
        ] {
            let mut old = stored(body);
            let written = old.request.take().unwrap();
            let derived = request_of(&old);
            assert_eq!(derived["bucket_uri"], bucket_uri, "{derived}");
            assert_eq!(derived.get("sync_rules"), rules.as_ref(), "{derived}");
            // Checking it again gives the same connector form.
            let Value::Object(object) = derived else {
                panic!("not an object")
            };
            let checked = check(
                object,
                "deployment-external-id",
                &ConnectorDefaults::default(),
            )
            .unwrap();
            assert_eq!(checked.form, old.form, "{written}");
        }
    }

    /// Asserts that one of `problems` (of `body`) names `field` and a rule containing `rule`.
    fn assert_names(problems: &[FieldProblem], field: &str, rule: &str, body: &str) {
        assert!(
            problems
                .iter()
                .any(|p| p.field == field && p.rule.contains(rule)),
            "{body}: {problems:?}"
        );
    }

    /// `GOOD` with `"embedding": embedding`.
    fn with_embedding(embedding: &str) -> String {
        GOOD.replace(
            r#""interval": "1h""#,
            &format!(r#""interval": "1h", "embedding": {embedding}"#),
        )
    }

    const OPENAI: &str = r#"{"provider": "openai", "endpoint_url": "http://127.0.0.1:9/v1", "model": "m", "dimensions": 8, "api_key": "sk-tenant-secret-1"}"#;

    #[test]
    fn a_tenants_endpoint_is_one_the_operator_admits() {
        let tenant = Caller::Tenant("acme".into());
        let checked = |caller: &Caller, embedding: &str, defaults: &ConnectorDefaults| {
            parse_create(
                with_embedding(embedding).as_bytes(),
                caller,
                "deployment-external-id",
                defaults,
            )
            .unwrap()
            .0
        };
        let none = ConnectorDefaults::default();
        let admitted = ["http://127.0.0.1:9".to_owned()];
        let local = r#"{"provider": "local", "model_dir": "/m"}"#;
        let problem = |caller: &Caller, embedding: &str, admitted: &[String]| {
            endpoint_problem(&checked(caller, embedding, &none), caller, &none, admitted)
        };
        // (caller, block, admitted, refused)
        let table: [(&Caller, &str, &[String], bool); 5] = [
            (&tenant, OPENAI, &[], true),
            (&tenant, OPENAI, &admitted, false),
            (&tenant, &OPENAI.replace(":9/v1", ":99/v1"), &admitted, true),
            (&Caller::Admin, OPENAI, &[], false),
            (&Caller::Admin, local, &[], false),
        ];
        for (caller, block, admitted, refused) in table {
            let found = problem(caller, block, admitted);
            assert_eq!(found.is_some(), refused, "{caller:?} {block} {found:?}");
            if let Some(found) = found {
                assert_eq!(found.field, "embedding.endpoint_url");
                assert!(
                    found.rule.contains("api.tenant_embedding_endpoints"),
                    "{found:?}"
                );
                assert!(!format!("{found:?}").contains("sk-tenant"), "{found:?}");
            }
        }
        // The defaults' own endpoint is the operator's: a tenant may name it.
        let defaults = ConnectorDefaults {
            embedding: Some(
                serde_json::from_value(json!({"provider": "openai",
                    "endpoint_url": "http://127.0.0.1:9/v1", "model": "m", "dimensions": 8}))
                .unwrap(),
            ),
            ..ConnectorDefaults::default()
        };
        let inherited = checked(&tenant, OPENAI, &defaults);
        assert_eq!(endpoint_problem(&inherited, &tenant, &defaults, &[]), None);
    }

    #[test]
    fn an_embedding_block_is_judged_by_the_config_rules_and_hides_its_key() {
        let tenant = Caller::Tenant("acme".into());
        let as_caller = |caller: &Caller, body: &str| {
            parse_create(
                body.as_bytes(),
                caller,
                "deployment-external-id",
                &ConnectorDefaults::default(),
            )
        };
        let (checked, _) = as_caller(&tenant, &with_embedding(OPENAI)).unwrap();
        let Some(crate::config::embedding::EmbeddingSettings {
            provider:
                EmbeddingProvider::Openai {
                    api_key,
                    dimensions,
                    ..
                },
            ..
        }) = &checked.connector.embedding
        else {
            panic!("{checked:?}")
        };
        assert_eq!(
            (api_key.as_ref().map(Secret::expose), *dimensions),
            (Some("sk-tenant-secret-1"), 8)
        );
        // Stored with the request, never shown by Debug.
        assert_eq!(
            checked.request["embedding"]["api_key"],
            "sk-tenant-secret-1"
        );
        let stored = StoredConnector {
            form: checked.form.clone(),
            verified: stored(GOOD).verified,
            request: Some(checked.request.clone()),
            retarget_pending: false,
            tenant: Some("acme".into()),
        };
        for shown in [format!("{checked:?}"), format!("{stored:?}")] {
            assert!(!shown.contains("sk-tenant-secret-1"), "{shown}");
            assert!(shown.contains("api_key"), "{shown}");
        }
        for (caller, embedding, field, rule) in [
            (
                &Caller::Admin,
                r#"{"provider": "openai", "endpoint_url": "http://x/v1", "model": "m", "dimensions": 8, "api_key_file": "/etc/shadow"}"#,
                "embedding.api_key_file",
                "reads no file",
            ),
            (
                &tenant,
                r#"{"provider": "local", "model_dir": "/var/lib/models/x"}"#,
                "embedding.model_dir",
                "is the operator's",
            ),
            (
                &tenant,
                r#"{"provider": "openai", "endpoint_url": "http://x/v1", "model": "m", "dimensions": 8, "tokenizer": "/etc/passwd"}"#,
                "embedding.tokenizer",
                "is the operator's",
            ),
            (
                &Caller::Admin,
                r#"{"provider": "local", "model_dir": "models/x"}"#,
                "embedding.model_dir",
                "must be an absolute path",
            ),
            (
                &Caller::Admin,
                r#"{"provider": "local"}"#,
                "embedding.model_dir",
                "is missing",
            ),
            (
                &Caller::Admin,
                r#"{"provider": "onnx", "model_dir": "/m"}"#,
                "embedding.provider",
                "",
            ),
            (
                &Caller::Admin,
                r#"{"provider": "local", "model_dir": "/m", "max_tokens": 8}"#,
                "embedding.max_tokens",
                "16 to 8192",
            ),
            (
                &Caller::Admin,
                r#"{"provider": "local", "model_dir": "/m", "max_tokens": 64, "overlap_tokens": 32}"#,
                "embedding.overlap_tokens",
                "less than half of max_tokens (64)",
            ),
            (
                &Caller::Admin,
                r#"{"provider": "local", "model_dir": "/m", "endpoint_url": "http://x"}"#,
                "embedding.endpoint_url",
                "is not read by provider local",
            ),
            (
                &Caller::Admin,
                r#"{"provider": "openai", "endpoint_url": "ftp://x", "model": "m", "dimensions": 8}"#,
                "embedding.endpoint_url",
                "http:// or https://",
            ),
            (
                &Caller::Admin,
                r#"{"provider": "openai", "endpoint_url": "http://x/v1", "model": "m", "dimensions": 8, "api_key": 987654321}"#,
                "embedding.api_key",
                "must be text",
            ),
            (
                &Caller::Admin,
                r#"{"provider": "openai", "endpoint_url": "http://x/v1", "model": "m", "dimensions": 8, "api_key": "sk with 987654321 space"}"#,
                "embedding.api_key",
                "printable ASCII",
            ),
            (
                &Caller::Admin,
                r#"{"provider": "local", "model_dri": "/m"}"#,
                "embedding.model_dri",
                "did you mean `model_dir`?",
            ),
        ] {
            let body = with_embedding(embedding);
            let problems = as_caller(caller, &body).expect_err(&body);
            assert_names(&problems, field, rule, &body);
            let shown = format!("{problems:?}");
            for secret in ["987654321", "/etc/", "/var/lib/models"] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
    }

    #[test]
    fn a_local_block_without_a_model_dir_runs_the_defaults_model() {
        let defaults = ConnectorDefaults {
            embedding: Some(
                serde_json::from_value(json!({"provider": "local", "model_dir": "/opt/minilm"}))
                    .unwrap(),
            ),
            ..ConnectorDefaults::default()
        };
        let tenant = Caller::Tenant("acme".into());
        let create = |body: &str| {
            parse_create(body.as_bytes(), &tenant, "tenant-external-id", &defaults)
                .map(|(checked, _)| checked)
        };
        let model_dir = |checked: &Checked| match &checked.connector.embedding {
            Some(settings) => match &settings.provider {
                EmbeddingProvider::Local { model_dir, .. } => Some(model_dir.clone()),
                other => panic!("{other:?}"),
            },
            None => None,
        };
        // No block: the defaults' whole block. A local block of its own: the defaults' model,
        // its own passage settings; the stored form names no path.
        let inherited = create(GOOD).unwrap();
        assert_eq!(model_dir(&inherited), Some("/opt/minilm".into()));
        let own = create(&with_embedding(
            r#"{"provider": "local", "max_tokens": 128}"#,
        ))
        .unwrap();
        assert_eq!(model_dir(&own), Some("/opt/minilm".into()));
        assert_eq!(own.connector.embedding.unwrap().passages.max_tokens, 128);
        assert!(own.form["embedding"].get("model_dir").is_none());
        // The defaults' openai key stays out of reach: a block of the tenant's own replaces the
        // defaults' whole block.
        let defaults = ConnectorDefaults {
            embedding: Some(serde_json::from_value(json!({"provider": "openai", "endpoint_url": "http://x/v1", "model": "m", "dimensions": 8, "api_key": "sk-operator"})).unwrap()),
            ..ConnectorDefaults::default()
        };
        let (checked, _) = parse_create(
            with_embedding(r#"{"provider": "openai", "endpoint_url": "http://tenant/v1", "model": "m", "dimensions": 8}"#).as_bytes(),
            &tenant,
            "tenant-external-id",
            &defaults,
        )
        .unwrap();
        let Some(EmbeddingProvider::Openai { api_key, .. }) =
            checked.connector.embedding.map(|e| e.provider)
        else {
            panic!("not openai")
        };
        assert_eq!(api_key, None);
    }

    #[test]
    fn an_embedding_update_merges_and_null_falls_back_to_the_defaults() {
        let before = stored(&with_embedding(OPENAI));
        let (checked, _) = update(&before, r#"{"embedding": {"batch_size": 4}}"#).unwrap();
        let Some(EmbeddingProvider::Openai {
            api_key,
            batch_size,
            ..
        }) = checked.connector.embedding.map(|e| e.provider)
        else {
            panic!("not openai")
        };
        assert_eq!(
            (api_key.as_ref().map(Secret::expose), batch_size),
            (Some("sk-tenant-secret-1"), 4)
        );
        // Switching the provider: the other provider's fields must go too, each named.
        let problems = update(
            &before,
            r#"{"embedding": {"provider": "local", "model_dir": "/m"}}"#,
        )
        .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "embedding.endpoint_url",
                "embedding.model",
                "embedding.api_key"
            ],
            "{problems:?}"
        );
        assert!(
            !format!("{problems:?}").contains("sk-tenant"),
            "{problems:?}"
        );
        let (checked, _) = update(
            &before,
            r#"{"embedding": {"provider": "local", "model_dir": "/m", "endpoint_url": null, "model": null, "api_key": null, "dimensions": null}}"#,
        )
        .unwrap();
        assert!(matches!(
            checked.connector.embedding.map(|e| e.provider),
            Some(EmbeddingProvider::Local { .. })
        ));
        // null: back to the defaults (none here).
        let (checked, _) = update(&before, r#"{"embedding": null}"#).unwrap();
        assert_eq!(checked.connector.embedding, None);
        assert!(checked.request.get("embedding").is_none());
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut target, json!({"a": "z", "c": {"f": null}}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}}));
        merge_patch(&mut target, json!({"c": ["x"]}));
        assert_eq!(target, json!({"a": "z", "c": ["x"]}));
    }
}
