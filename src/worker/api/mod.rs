//! The management API of `run` under `/api/v1`: connectors created by a request once a probe
//! of the customer's role passes, listed, updated (re-probed when their source changed), synced,
//! searched and deleted; plus the AWS set-up a customer needs and the OpenAPI document of it all.
//!
//! Every route needs `Authorization: Bearer <api.token>` (compared in constant time, never
//! logged). A created connector is stored (crash-safe, under `state_dir`) only after
//! `verify`'s probe passed with the deployment's ExternalId; connectors of the config file are
//! listed too but are read-only. Answers are JSON; errors are `{"error": {...}}` with a
//! message, and the problems or probe steps behind it. Not here: HTTP plumbing (`http.rs`), the
//! update route (`update.rs`), the body's validation (`request.rs`), the file (`store.rs`), the
//! policies (`crate::policy`).

pub mod request;
pub mod setup;
pub mod store;
mod update;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::http::{json_response, respond};
use super::state::{SyncRecord, Trigger};
use super::{Entry, Origin, Shared, WorkerError, lock};
use crate::config::api::ApiConfig as ApiSettings;
use crate::config::inherit::ConnectorDefaults;
use crate::config::{BucketSelection, Config, ConnectorConfig, Secret};
use crate::credentials::CredentialMode;
use crate::sink::{AnySink, ScanFrom, Sink};
use crate::verify::{self, PropagationWait, Status, StepResult};
use request::{BucketUri, FieldProblem, Flags};
use store::{Store, StoredConnector, Verified};

/// The OpenAPI 3 document of these routes, written by hand beside them.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Results a search answers at most.
const MAX_SEARCH_LIMIT: usize = 100;

/// Characters of body text around the first hit of a query term.
const SNIPPET_CHARS: usize = 240;

/// How long DELETE waits for the connector's sync in flight to stop before dropping documents.
const DELETE_WAIT: Duration = Duration::from_secs(60);

/// The API's settings and state.
#[derive(Debug)]
pub(crate) struct ApiState {
    token: Secret,
    external_id: String,
    principal_arn: Mutex<Option<String>>,
    defaults: ConnectorDefaults,
    max_body_bytes: usize,
    /// How long the probe waits for a refused AssumeRole to propagate (`api.probe_wait`).
    probe_wait: Duration,
    store: Store,
    /// Stored connectors that cannot run now (their id or index is taken by the file, or the
    /// current defaults break them): kept in the store, reported by `GET /connectors`.
    conflicts: Mutex<Vec<Conflict>>,
    /// Serialises the store's changes.
    changing: tokio::sync::Mutex<()>,
}

/// A stored connector that is not running, and why.
#[derive(Debug, Clone)]
struct Conflict {
    stored: StoredConnector,
    reason: String,
}

impl ApiState {
    /// The API of `config`, and the stored connectors that can run beside the file's.
    pub(super) fn open(
        config: &Config,
        settings: &ApiSettings,
        file_entries: &[Entry],
    ) -> Result<(Self, Vec<(ConnectorConfig, StoredConnector)>), WorkerError> {
        let store = Store::new(&config.state_dir);
        let mut runnable: Vec<(ConnectorConfig, StoredConnector)> = Vec::new();
        let mut conflicts = Vec::new();
        let file_connectors: Vec<Arc<ConnectorConfig>> =
            file_entries.iter().map(|e| e.connector()).collect();
        for stored in store.load()? {
            let checked = request::validate_form(&stored.form, &config.defaults)
                .map_err(|problems| {
                    format!(
                        "it no longer validates with the current config: {}",
                        problems
                            .iter()
                            .map(|p| format!("{} {}", p.field, p.rule))
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                })
                .and_then(|connector| {
                    let taken = file_connectors
                        .iter()
                        .map(|c| &**c)
                        .chain(runnable.iter().map(|(c, _)| c));
                    match clash(&connector, taken) {
                        Some(reason) => Err(reason),
                        None => Ok(connector),
                    }
                });
            match checked {
                Ok(connector) => runnable.push((connector, stored)),
                Err(reason) => {
                    tracing::error!(
                        message = "A connector stored through the API is not started: it conflicts with the config file. It stays stored; delete it through the API or rename the file's connector.",
                        connector = stored.id(),
                        %reason
                    );
                    conflicts.push(Conflict { stored, reason });
                }
            }
        }
        let token = settings.token().cloned().unwrap_or_else(|| Secret::new(""));
        Ok((
            Self {
                token,
                external_id: settings.external_id.clone(),
                principal_arn: Mutex::new(settings.principal_arn.clone()),
                defaults: config.defaults.clone(),
                max_body_bytes: settings.max_body_bytes,
                probe_wait: settings.probe_wait(),
                store,
                conflicts: Mutex::new(conflicts),
                changing: tokio::sync::Mutex::new(()),
            },
            runnable,
        ))
    }

    /// True when the request carries the token.
    fn authorised(&self, request: &Request<Incoming>) -> bool {
        let Some(sent) = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let expected = self.token.expose().as_bytes();
        // ct_eq compares every byte whatever the first difference; the length is not secret.
        !expected.is_empty() && bool::from(sent.trim().as_bytes().ct_eq(expected))
    }

    /// The probe of a request with these flags: it waits for a refused AssumeRole to
    /// propagate unless the request says `"wait": false`.
    async fn probe(&self, connector: &ConnectorConfig, flags: Flags) -> Vec<StepResult> {
        let wait = if flags.wait {
            self.probe_wait
        } else {
            Duration::ZERO
        };
        verify::verify_connector(connector, PropagationWait::assume_role_only(wait)).await
    }

    /// A sync of `entry` re-targeted its index as an update allowed: the store forgets that it
    /// may.
    pub(super) async fn retarget_done(&self, shared: &Shared, entry: &Entry) {
        let _changing = self.changing.lock().await;
        let Some(mut stored) = entry.stored().filter(|s| s.retarget_pending) else {
            return;
        };
        stored.retarget_pending = false;
        let id = entry.id();
        *entry
            .settings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = super::Settings {
            connector: entry.connector(),
            origin: Origin::Api(Box::new(stored)),
        };
        if let Err(error) = self.store.save(&stored_connectors(shared, self)) {
            tracing::warn!(message = "Could not record in the store that the index was re-targeted; the next sync may re-target again.", connector = %id, %error);
        }
    }
}

/// Why a connector clashes with those already running: same id, or same index.
fn clash(
    connector: &ConnectorConfig,
    existing: impl IntoIterator<Item = impl std::borrow::Borrow<ConnectorConfig>>,
) -> Option<String> {
    for other in existing {
        let other = other.borrow();
        if other.id == connector.id {
            return Some(format!(
                "a connector with id {} already exists",
                connector.id
            ));
        }
        if other.index_name() == connector.index_name() {
            return Some(format!(
                "index {} is already written by connector {}; each connector needs its own index",
                connector.index_name(),
                other.id
            ));
        }
    }
    None
}

/// An error answer: `{"error": {"status", "message", ...details}}`.
fn error(status: StatusCode, message: impl Into<String>, details: Value) -> Response<Full<Bytes>> {
    let mut body = json!({ "status": status.as_u16(), "message": message.into() });
    if let (Value::Object(body), Value::Object(details)) = (&mut body, details) {
        body.extend(details);
    }
    json_response(status, &json!({ "error": body }))
}

fn problems_answer(problems: &[FieldProblem]) -> Response<Full<Bytes>> {
    let list: Vec<String> = problems
        .iter()
        .map(|p| match &p.value {
            Some(value) => format!("{}: {value} {}", p.field, p.rule),
            None => format!("{}: {}", p.field, p.rule),
        })
        .collect();
    error(
        StatusCode::BAD_REQUEST,
        format!("the connector is not valid: {}", list.join("; ")),
        json!({ "problems": problems }),
    )
}

/// Answers one `/api` request.
pub(super) async fn handle(
    shared: &Arc<Shared>,
    api: &ApiState,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if !api.authorised(&request) {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "send the API token as Authorization: Bearer <token>",
            json!({}),
        );
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    let path = request.uri().path().to_owned();
    let query = parse_query(request.uri().query().unwrap_or(""));
    let segments: Vec<&str> = path
        .strip_prefix("/api/v1/")
        .map(|rest| rest.trim_end_matches('/').split('/').collect())
        .unwrap_or_default();
    let method = request.method().clone();
    let Some(allowed) = allowed_methods(&segments) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no route {path}; see /api/v1/openapi.json"),
            json!({}),
        );
    };
    let response = match (&method, segments.as_slice()) {
        (&Method::GET, ["openapi.json"]) => respond(
            StatusCode::OK,
            "application/json",
            OPENAPI.as_bytes().to_vec(),
        ),
        (&Method::GET, ["aws-setup"]) => aws_setup(api, &query).await,
        (&Method::POST, ["connectors"]) => match read_body(api, request).await {
            Ok(body) => create(shared, api, &body).await,
            Err(response) => *response,
        },
        (&Method::GET, ["connectors"]) => list(shared, api),
        (&Method::GET, ["connectors", id]) => match shared.entry(id) {
            Some(entry) => json_response(StatusCode::OK, &view(&entry)),
            None => not_found(id),
        },
        (&Method::PATCH, ["connectors", id]) => match read_body(api, request).await {
            Ok(body) => update::update(shared, api, id, &body).await,
            Err(response) => *response,
        },
        (&Method::DELETE, ["connectors", id]) => delete(shared, api, id, &query).await,
        (&Method::POST, ["connectors", id, "sync"]) => sync_now(shared, id, &query),
        (&Method::GET, ["connectors", id, "syncs"]) => syncs(shared, id, &query),
        (&Method::GET, ["connectors", id, "search"]) => search(shared, id, &query).await,
        _ => {
            let mut response = error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{path} allows {allowed}"),
                json!({}),
            );
            if let Ok(value) = allowed.parse() {
                response.headers_mut().insert(ALLOW, value);
            }
            response
        }
    };
    tracing::debug!(message = "API request.", %method, path, status = response.status().as_u16());
    response
}

/// The methods a route under `/api/v1/` answers, as an `Allow` header; `None` for no route.
fn allowed_methods(segments: &[&str]) -> Option<&'static str> {
    Some(match segments {
        ["aws-setup"] | ["openapi.json"] => "GET",
        ["connectors"] => "GET, POST",
        ["connectors", _] => "GET, PATCH, DELETE",
        ["connectors", _, "sync"] => "POST",
        ["connectors", _, "syncs" | "search"] => "GET",
        _ => return None,
    })
}

/// The body, at most `max_body_bytes`.
async fn read_body(
    api: &ApiState,
    request: Request<Incoming>,
) -> Result<Bytes, Box<Response<Full<Bytes>>>> {
    match Limited::new(request.into_body(), api.max_body_bytes)
        .collect()
        .await
    {
        Ok(body) => Ok(body.to_bytes()),
        Err(cause) if cause.is::<http_body_util::LengthLimitError>() => Err(Box::new(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than {} bytes (api.max_body_bytes)",
                api.max_body_bytes
            ),
            json!({}),
        ))),
        Err(cause) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("the body could not be read: {cause}"),
            json!({}),
        ))),
    }
}

fn not_found(id: &str) -> Response<Full<Bytes>> {
    error(
        StatusCode::NOT_FOUND,
        format!("no connector with id {id:?}"),
        json!({}),
    )
}

/// `application/x-www-form-urlencoded` query pairs, decoded.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let hex = |byte: u8| (byte as char).to_digit(16);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            ) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A boolean query flag: `true`/`1` or `false`/`0`; `Err` names the bad value.
fn query_flag(query: &[(String, String)], name: &str) -> Result<bool, String> {
    match query_value(query, name) {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1" | "") => Ok(true),
        Some(other) => Err(format!(
            "query parameter {name}={other:?} must be true or false"
        )),
    }
}

fn bad_request(message: String) -> Response<Full<Bytes>> {
    error(StatusCode::BAD_REQUEST, message, json!({}))
}

/// `GET /api/v1/aws-setup[?bucket_uri=s3://bucket/prefix&role_name=NAME]`.
async fn aws_setup(api: &ApiState, query: &[(String, String)]) -> Response<Full<Bytes>> {
    let bucket_uri = query_value(query, "bucket_uri").unwrap_or("s3://your-bucket");
    let uri = match BucketUri::parse(bucket_uri) {
        Ok(uri) => uri,
        Err(rule) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("query parameter bucket_uri {bucket_uri:?} {rule}"),
                json!({}),
            );
        }
    };
    let role_name = query_value(query, "role_name").unwrap_or("s3-connector-read");
    if crate::config::rules_of_names::check_role_arn(&format!(
        "arn:aws:iam::111122223333:role/{role_name}"
    ))
    .is_err()
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "query parameter role_name {role_name:?} is not an IAM role name (1 to 64 of letters, digits and +=,.@_-)"
            ),
            json!({}),
        );
    }
    let principal = match principal(api).await {
        Ok(principal) => principal,
        Err(cause) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "cannot find the principal customers must trust: {cause}; set api.principal_arn"
                ),
                json!({}),
            );
        }
    };
    json_response(
        StatusCode::OK,
        &setup::aws_setup(&principal, &api.external_id, &uri, role_name),
    )
}

/// Our principal: `api.principal_arn`, else the worker's identity (found once).
async fn principal(api: &ApiState) -> Result<String, String> {
    if let Some(known) = lock(&api.principal_arn).clone() {
        return Ok(known);
    }
    let template =
        request::validate_form(&json!({"id": "aws-setup", "buckets": ["*"]}), &api.defaults)
            .map_err(|problems| format!("the defaults do not validate: {problems:?}"))?;
    let arn = crate::credentials::caller_arn(&template)
        .await
        .map_err(|problem| problem.to_string())?;
    let principal = crate::policy::principal_for_caller(&arn);
    *lock(&api.principal_arn) = Some(principal.clone());
    Ok(principal)
}

/// `POST /api/v1/connectors`: validate, probe, store, start.
async fn create(shared: &Arc<Shared>, api: &ApiState, body: &[u8]) -> Response<Full<Bytes>> {
    let (checked, flags) = match request::parse_create(body, &api.external_id, &api.defaults) {
        Ok(parsed) => parsed,
        Err(problems) => return problems_answer(&problems),
    };
    let connector = checked.connector;
    let existing: Vec<Arc<Entry>> = shared.entries();
    if let Some(reason) = clash(&connector, existing.iter().map(|e| e.connector())) {
        return error(StatusCode::CONFLICT, reason, json!({}));
    }
    let steps = api.probe(&connector, flags).await;
    if let Some(refused) = probe_failed(&connector, &steps) {
        return refused;
    }
    let _changing = api.changing.lock().await;
    // Another request may have taken the id or index while the probe ran.
    if let Some(reason) = clash(&connector, shared.entries().iter().map(|e| e.connector())) {
        return error(StatusCode::CONFLICT, reason, json!({}));
    }
    let stored = StoredConnector {
        form: checked.form,
        verified: verified(&connector),
        request: Some(checked.request),
        retarget_pending: false,
    };
    let mut all = stored_connectors(shared, api);
    all.push(stored.clone());
    if let Err(cause) = api.store.save(&all) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the probe passed but the connector could not be stored: {cause}"),
            json!({}),
        );
    }
    let entry = match Entry::new(
        connector,
        Origin::Api(Box::new(stored)),
        crate::sync::shard::Shard::whole(),
        &shared.history,
    ) {
        Ok(entry) => entry,
        Err(cause) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the connector was stored but its history cannot be read: {cause}"),
                json!({}),
            );
        }
    };
    let entry = shared.add(entry);
    // The first sync, now; the schedule counts from here.
    shared.start_sync(&entry, Trigger::Api, flags.retarget);
    tracing::info!(message = "Created a connector through the API.", connector = %entry.id());
    let mut answer = view(&entry);
    answer["steps"] = json!(steps);
    json_response(StatusCode::CREATED, &answer)
}

/// The 422 answer when a step of the probe failed; `None` when it passed.
fn probe_failed(
    connector: &ConnectorConfig,
    steps: &[StepResult],
) -> Option<Response<Full<Bytes>>> {
    if verify::all_passed(steps) {
        return None;
    }
    let cause = first_failure(steps);
    tracing::info!(message = "A connector's probe failed; nothing was stored.", connector = %connector.id, %cause);
    Some(error(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("the probe failed, so nothing was stored: {cause}"),
        json!({ "cause": cause, "steps": steps }),
    ))
}

/// What a passing probe of `connector` verified, now.
fn verified(connector: &ConnectorConfig) -> Verified {
    let bucket = match &connector.buckets {
        BucketSelection::Named(names) => names.first().cloned().unwrap_or_default(),
        BucketSelection::All => "*".to_owned(),
    };
    let prefix = connector
        .rules
        .list_prefixes(&bucket)
        .into_iter()
        .next()
        .unwrap_or_default();
    Verified {
        verified_bucket_uri: format!("s3://{bucket}/{prefix}")
            .trim_end_matches('/')
            .to_owned(),
        verified_role_arn: connector.role().unwrap_or_default().to_owned(),
        verified_bucket_owner_account_id: connector.expected_owner().unwrap_or_default().to_owned(),
        verified_at: OffsetDateTime::now_utc(),
    }
}

/// The failing step's message, with its target and AWS code.
fn first_failure(steps: &[StepResult]) -> String {
    steps
        .iter()
        .find(|s| s.status == Status::Fail)
        .map(|s| {
            let code = s
                .code
                .as_deref()
                .map(|c| format!(" [{c}]"))
                .unwrap_or_default();
            format!("{} {}: {}{code}", s.step.name(), s.target, s.message)
        })
        .unwrap_or_else(|| "a step failed".to_owned())
}

/// Every connector the store must hold: the running API connectors and the conflicting ones.
fn stored_connectors(shared: &Shared, api: &ApiState) -> Vec<StoredConnector> {
    let mut stored: Vec<StoredConnector> =
        shared.entries().iter().filter_map(|e| e.stored()).collect();
    stored.extend(lock(&api.conflicts).iter().map(|c| c.stored.clone()));
    stored
}

/// `GET /api/v1/connectors`.
fn list(shared: &Shared, api: &ApiState) -> Response<Full<Bytes>> {
    let connectors: Vec<Value> = shared.entries().iter().map(|e| view(e)).collect();
    let conflicts: Vec<Value> = lock(&api.conflicts)
        .iter()
        .map(|c| json!({ "id": c.stored.id(), "reason": c.reason, "verified": c.stored.verified }))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({ "connectors": connectors, "conflicts": conflicts }),
    )
}

/// One connector as the API shows it: settings (never secrets), `verified_*`, live status.
fn view(entry: &Entry) -> Value {
    let connector = entry.connector();
    let stored = entry.stored();
    let status = entry.status();
    let credentials = match CredentialMode::of(&connector) {
        CredentialMode::StaticKeys => "static_keys",
        CredentialMode::DefaultChain => "default_chain",
        CredentialMode::AssumedRole { .. } => "assumed_role",
    };
    let mut view = json!({
        "id": connector.id,
        "origin": if stored.is_some() { "api" } else { "file" },
        "read_only": stored.is_none(),
        "index_name": connector.index_name(),
        "buckets": match &connector.buckets {
            BucketSelection::All => vec!["*".to_owned()],
            BucketSelection::Named(names) => names.clone(),
        },
        "role_arn": connector.role(),
        "expected_bucket_owner": connector.expected_owner(),
        "credentials": credentials,
        "schedule": status.schedule,
        "running": status.running,
        "next_run": status.next_run.map(rfc3339),
        "last_sync": status.last_sync,
        "last_success_at": status.last_success_at.map(rfc3339),
        "skipped": status.skipped,
        "notifications": connector.notifications.as_ref().map(|n| json!({
            "queue_url": n.queue_url,
            "format": n.format.as_str(),
        })),
        "inventory": connector.inventory.as_ref().map(|i| json!({
            "destination": if i.prefix.is_empty() {
                format!("s3://{}", i.bucket)
            } else {
                format!("s3://{}/{}", i.bucket, i.prefix)
            },
            "config_id": i.config_id,
            "max_age": humantime::format_duration(i.max_age).to_string(),
            "deletion_grace": humantime::format_duration(i.deletion_grace).to_string(),
        })),
    });
    if let Some(stored) = &stored
        && let (Value::Object(view), Value::Object(verified)) = (&mut view, json!(stored.verified))
    {
        view.extend(verified);
        if let Some(rules) = stored.form.get("sync_rules") {
            view.insert("sync_rules".into(), rules.clone());
        }
    }
    view
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `DELETE /api/v1/connectors/{id}[?delete_index=true]`.
async fn delete(
    shared: &Arc<Shared>,
    api: &ApiState,
    id: &str,
    query: &[(String, String)],
) -> Response<Full<Bytes>> {
    let drop_index = match query_flag(query, "delete_index") {
        Ok(flag) => flag,
        Err(message) => return bad_request(message),
    };
    let _changing = api.changing.lock().await;
    let Some(entry) = shared.entry(id) else {
        // A stored connector that conflicts can be deleted too.
        let mut conflicts = lock(&api.conflicts);
        let before = conflicts.len();
        conflicts.retain(|c| c.stored.id() != id);
        if conflicts.len() == before {
            return not_found(id);
        }
        drop(conflicts);
        return match api.store.save(&stored_connectors(shared, api)) {
            Ok(()) => json_response(
                StatusCode::OK,
                &json!({ "id": id, "deleted": true, "documents_deleted": 0 }),
            ),
            Err(cause) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                cause.to_string(),
                json!({}),
            ),
        };
    };
    if entry.is_file_connector() {
        return error(
            StatusCode::CONFLICT,
            format!(
                "connector {id} comes from the config file and is read-only here; remove it from the file"
            ),
            json!({}),
        );
    }
    shared.remove(id);
    let remaining = stored_connectors(shared, api);
    if let Err(cause) = api.store.save(&remaining) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "connector {id} was stopped but the store could not be rewritten, so it comes back at the next start: {cause}"
            ),
            json!({}),
        );
    }
    let mut documents_deleted = 0;
    if drop_index {
        let waited = tokio::time::timeout(DELETE_WAIT, async {
            while entry.busy.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        if waited.is_err() {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "connector {id} was deleted, but its sync did not stop within {} s, so its documents were kept; delete again with delete_index=true",
                    DELETE_WAIT.as_secs()
                ),
                json!({}),
            );
        }
        match drop_documents(shared, &entry.connector()).await {
            Ok(count) => documents_deleted = count,
            Err(cause) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("connector {id} was deleted, but its documents could not be: {cause}"),
                    json!({}),
                );
            }
        }
    }
    tracing::info!(message = "Deleted a connector through the API.", connector = %id, drop_index, documents_deleted);
    json_response(
        StatusCode::OK,
        &json!({ "id": id, "deleted": true, "documents_deleted": documents_deleted }),
    )
}

/// Deletes every document of the connector's index; returns how many.
async fn drop_documents(shared: &Shared, connector: &ConnectorConfig) -> Result<u64, String> {
    let Some(sink) = AnySink::open_existing(&shared.config.index, connector.index_name())
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(0);
    };
    crate::with_sink!(&sink, sink => delete_all(sink).await)
}

async fn delete_all<S: Sink>(sink: &S) -> Result<u64, String> {
    let mut count = 0;
    let limit = sink.scan_page_size();
    for bucket in sink.indexed_buckets().await.map_err(|e| e.to_string())? {
        // Page by key; the deletes are not committed yet, so they do not move the pages.
        let mut after: Option<String> = None;
        loop {
            let page = sink
                .indexed_page(&bucket, ScanFrom::after(after.as_deref()), limit)
                .await
                .map_err(|e| e.to_string())?;
            let last_page = page.len() < limit;
            after = page.last().map(|entry| entry.key.clone());
            count += page.len() as u64;
            let ids = page.into_iter().map(|entry| entry.id).collect();
            sink.delete(ids).await.map_err(|e| e.to_string())?;
            if last_page {
                break;
            }
        }
    }
    sink.commit().await.map_err(|e| e.to_string())?;
    Ok(count)
}

/// `POST /api/v1/connectors/{id}/sync[?retarget=true]`.
fn sync_now(shared: &Arc<Shared>, id: &str, query: &[(String, String)]) -> Response<Full<Bytes>> {
    let retarget = match query_flag(query, "retarget") {
        Ok(flag) => flag,
        Err(message) => return bad_request(message),
    };
    let Some(entry) = shared.entry(id) else {
        return not_found(id);
    };
    if shared
        .shutting_down
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the worker is shutting down",
            json!({}),
        );
    }
    if shared.start_sync(&entry, Trigger::Api, retarget) {
        json_response(
            StatusCode::ACCEPTED,
            &json!({ "id": id, "started": true, "retarget": retarget }),
        )
    } else {
        error(
            StatusCode::CONFLICT,
            format!("a sync of connector {id} is running; it was not started twice"),
            json!({ "running": entry.status().running }),
        )
    }
}

/// `GET /api/v1/connectors/{id}/syncs[?limit=N]`: the history, newest first.
fn syncs(shared: &Shared, id: &str, query: &[(String, String)]) -> Response<Full<Bytes>> {
    if shared.entry(id).is_none() {
        return not_found(id);
    }
    let limit = match parse_limit(query, 50, 1000) {
        Ok(limit) => limit,
        Err(message) => return bad_request(message),
    };
    match shared.history.records(id) {
        Ok(records) => {
            let newest: Vec<&SyncRecord> = records.iter().rev().take(limit).collect();
            json_response(StatusCode::OK, &json!({ "id": id, "syncs": newest }))
        }
        Err(cause) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            cause.to_string(),
            json!({}),
        ),
    }
}

fn parse_limit(query: &[(String, String)], default: usize, max: usize) -> Result<usize, String> {
    match query_value(query, "limit") {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(limit) if (1..=max).contains(&limit) => Ok(limit),
            _ => Err(format!(
                "query parameter limit={text:?} must be a number from 1 to {max}"
            )),
        },
    }
}

/// One search hit as the API answers it.
#[derive(Debug, Serialize)]
struct Hit {
    id: String,
    bucket: String,
    key: String,
    score: f32,
    title: Option<String>,
    /// Up to [`SNIPPET_CHARS`] characters of body around the first query term found.
    snippet: Option<String>,
}

/// `GET /api/v1/connectors/{id}/search?q=...&limit=N`.
async fn search(shared: &Shared, id: &str, query: &[(String, String)]) -> Response<Full<Bytes>> {
    let Some(entry) = shared.entry(id) else {
        return not_found(id);
    };
    let Some(text) = query_value(query, "q").filter(|q| !q.trim().is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "query parameter q (the search text) is missing",
            json!({}),
        );
    };
    let limit = match parse_limit(query, 10, MAX_SEARCH_LIMIT) {
        Ok(limit) => limit,
        Err(message) => return bad_request(message),
    };
    let sink =
        match AnySink::open_existing(&shared.config.index, entry.connector().index_name()).await {
            Ok(Some(sink)) => sink,
            Ok(None) => {
                return json_response(
                    StatusCode::OK,
                    &json!({ "id": id, "query": text, "hits": [] }),
                );
            }
            Err(cause) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("cannot open the index: {cause}"),
                    json!({}),
                );
            }
        };
    let found = match crate::with_sink!(&sink, sink => sink.search(text, limit).await) {
        Ok(found) => found,
        Err(cause) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the search failed: {cause}"),
                json!({}),
            );
        }
    };
    let mut hits = Vec::with_capacity(found.len());
    for hit in found {
        let document = match crate::sink::DocId::from_hex(&hit.id) {
            Some(doc_id) => sink.get(doc_id).await.ok().flatten(),
            None => None,
        };
        hits.push(Hit {
            snippet: document
                .as_ref()
                .and_then(|d| d.body.as_deref())
                .map(|body| snippet(body, text)),
            title: document.and_then(|d| d.title),
            id: hit.id,
            bucket: hit.bucket,
            key: hit.key,
            score: hit.score,
        });
    }
    json_response(
        StatusCode::OK,
        &json!({ "id": id, "query": text, "hits": hits }),
    )
}

/// About [`SNIPPET_CHARS`] characters of `body` starting a little before the first query term
/// (also printed by the CLI's `search`).
pub fn snippet(body: &str, query: &str) -> String {
    let lower = body.to_lowercase();
    let start_byte = query
        .split_whitespace()
        .map(|term| {
            term.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|term| !term.is_empty())
        .filter_map(|term| lower.find(&term))
        .min()
        .unwrap_or(0);
    // `lower` can differ in length from `body`; count characters instead of bytes.
    let start_char = lower[..start_byte.min(lower.len())]
        .chars()
        .count()
        .saturating_sub(40);
    let text: String = body.chars().skip(start_char).take(SNIPPET_CHARS).collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if start_char > 0 {
        format!("…{text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_describes_exactly_the_routes() {
        let document: Value = serde_json::from_str(OPENAPI).unwrap();
        let paths = document["paths"].as_object().unwrap();
        let mut described = 0;
        for (path, operations) in paths {
            let concrete = path.replace("{id}", "some-id");
            let segments: Vec<&str> = concrete
                .strip_prefix("/api/v1/")
                .unwrap()
                .split('/')
                .collect();
            let allowed = allowed_methods(&segments).unwrap_or_else(|| panic!("no route {path}"));
            let methods: Vec<String> = operations
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "parameters")
                .map(|k| k.to_uppercase())
                .collect();
            let mut routed: Vec<&str> = allowed.split(", ").collect();
            routed.sort_unstable();
            let mut methods: Vec<&str> = methods.iter().map(String::as_str).collect();
            methods.sort_unstable();
            assert_eq!(methods, routed, "{path}");
            described += methods.len();
        }
        // Every route of `allowed_methods`: two on the collection, three on one connector, five
        // more.
        assert_eq!(described, 10);
    }

    #[test]
    fn the_openapi_links_name_operations_and_their_parameters() {
        let document: Value = serde_json::from_str(OPENAPI).unwrap();
        // operationId -> the path parameters of its path.
        let mut operations = std::collections::HashMap::new();
        for (path, methods) in document["paths"].as_object().unwrap() {
            for (method, operation) in methods.as_object().unwrap() {
                if let Some(id) = operation["operationId"].as_str() {
                    let parameters: Vec<String> = path
                        .split('/')
                        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                        .map(str::to_owned)
                        .collect();
                    operations.insert(id.to_owned(), (method.clone(), parameters));
                }
            }
        }
        let mut links = 0;
        for methods in document["paths"].as_object().unwrap().values() {
            for operation in methods.as_object().unwrap().values() {
                let Some(responses) = operation["responses"].as_object() else {
                    continue;
                };
                for response in responses.values() {
                    for (name, link) in response["links"].as_object().into_iter().flatten() {
                        let target = link["operationId"].as_str().unwrap();
                        let (_, parameters) = operations
                            .get(target)
                            .unwrap_or_else(|| panic!("link {name} names no operation {target}"));
                        let given: Vec<&String> =
                            link["parameters"].as_object().unwrap().keys().collect();
                        assert_eq!(given, parameters.iter().collect::<Vec<_>>(), "{name}");
                        links += 1;
                    }
                }
            }
        }
        // create -> get, update, sync, syncs, search, delete; update -> all but itself; get ->
        // update, sync, delete; sync -> get, syncs, delete.
        assert_eq!(links, 6 + 5 + 3 + 3);
    }

    #[test]
    fn query_strings_are_decoded() {
        let query = parse_query("q=quarterly+figures&bucket_uri=s3%3A%2F%2Fb%2Fp&flag&bad=%zz%4");
        assert_eq!(query_value(&query, "q"), Some("quarterly figures"));
        assert_eq!(query_value(&query, "bucket_uri"), Some("s3://b/p"));
        assert_eq!(query_value(&query, "flag"), Some(""));
        assert_eq!(query_value(&query, "bad"), Some("%zz%4"));
    }

    #[test]
    fn a_snippet_starts_near_the_first_term() {
        let body = format!("{} the quarterly figures are up", "padding ".repeat(50));
        let found = snippet(&body, "Quarterly");
        assert!(found.starts_with('…'), "{found}");
        assert!(found.contains("quarterly figures"), "{found}");
        assert_eq!(snippet("short text", "absent"), "short text");
    }
}
