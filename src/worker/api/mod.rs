//! The worker's side of the management API under `/api/v1`: connectors created by a request
//! once a probe of the customer's role passes, listed, updated (re-probed when their source
//! changed), synced, searched and deleted; plus the AWS set-up a customer needs. [`Handle`] is
//! the worker as the HTTP surface (`crate::http`) sees it: the operations of
//! [`WorkerHandle`], answering the API's types or an [`ApiError`].
//!
//! A created connector is stored (crash-safe, under `state_dir`) only after `verify`'s probe
//! passed with the deployment's ExternalId; connectors of the config file are listed too but
//! are read-only. Not here: routes, the token and the body limit (`crate::http`), the update
//! (`update.rs`), the body's validation (`request.rs`), the file (`store.rs`), the policies
//! (`crate::policy`).

pub mod request;
pub mod setup;
pub mod store;
mod update;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use serde_json::json;
use time::OffsetDateTime;

use super::state::{SyncRecord, Trigger};
use super::{Entry, Origin, Shared, WorkerError, lock};
use crate::config::api::ApiConfig as ApiSettings;
use crate::config::inherit::ConnectorDefaults;
use crate::config::{BucketSelection, Config, ConnectorConfig, Secret};
use crate::credentials::CredentialMode;
use crate::http::handle::{Answer, ApiAccess, ApiError, StatusCode, WorkerHandle};
use crate::http::model::{
    AwsSetup, Conflict as ConflictView, Connector, ConnectorList, Credentials, Deleted, Hit,
    HitPassage, InventoryView, NotificationsView, SearchResult, SyncList, SyncStarted,
};
use crate::sink::passages::{self, Fusion, PassageQuery, SearchMode, Snippet};
use crate::sink::{AnySink, ScanFrom, Sink};
use crate::verify::{self, PropagationWait, Status, StepResult};
use request::{BucketUri, Flags};
use store::{Store, StoredConnector, Verified};

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

    /// What the HTTP surface needs to guard the API.
    fn access(&self) -> ApiAccess {
        ApiAccess {
            token: self.token.clone(),
            max_body_bytes: self.max_body_bytes,
        }
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

/// The worker as the HTTP surface sees it.
#[derive(Debug, Clone)]
pub(crate) struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// The handle of a worker.
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The API's state; `Err` when the config has no `api:` block (the HTTP surface serves
    /// no API route then).
    fn state(&self) -> Result<&ApiState, ApiError> {
        self.shared
            .api
            .as_ref()
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "the management API is off"))
    }
}

impl WorkerHandle for Handle {
    fn api(&self) -> Option<ApiAccess> {
        self.shared.api.as_ref().map(ApiState::access)
    }

    fn readiness(&self) -> Result<(), Vec<String>> {
        self.shared.readiness()
    }

    fn status(&self) -> Result<Vec<u8>, String> {
        serde_json::to_vec_pretty(&self.shared.status()).map_err(|e| e.to_string())
    }

    fn metrics(&self) -> (&'static str, String) {
        (super::metrics::CONTENT_TYPE, self.shared.metrics.render())
    }

    fn exists(&self, id: &str) -> bool {
        self.shared.entry(id).is_some()
    }

    fn list(&self) -> Answer<ConnectorList> {
        Ok(list(&self.shared, self.state()?))
    }

    fn get(&self, id: &str) -> Answer<Connector> {
        self.state()?;
        let entry = self
            .shared
            .entry(id)
            .ok_or_else(|| ApiError::no_connector(id))?;
        Ok(view(&entry))
    }

    async fn create(&self, body: Bytes) -> Answer<Connector> {
        create(&self.shared, self.state()?, &body).await
    }

    async fn update(&self, id: &str, body: Bytes) -> Answer<Connector> {
        update::update(&self.shared, self.state()?, id, &body).await
    }

    async fn delete(&self, id: &str, delete_index: bool) -> Answer<Deleted> {
        delete(&self.shared, self.state()?, id, delete_index).await
    }

    fn sync_now(&self, id: &str, retarget: bool) -> Answer<SyncStarted> {
        self.state()?;
        sync_now(&self.shared, id, retarget)
    }

    fn history(&self, id: &str, limit: usize) -> Answer<SyncList> {
        self.state()?;
        syncs(&self.shared, id, limit)
    }

    async fn search(
        &self,
        id: &str,
        query: &str,
        mode: Option<SearchMode>,
        limit: usize,
    ) -> Answer<SearchResult> {
        self.state()?;
        search(&self.shared, id, query, mode, limit).await
    }

    async fn aws_setup(&self, bucket_uri: &str, role_name: &str) -> Answer<AwsSetup> {
        aws_setup(self.state()?, bucket_uri, role_name).await
    }
}

/// `GET /api/v1/aws-setup[?bucket_uri=s3://bucket/prefix&role_name=NAME]`.
async fn aws_setup(api: &ApiState, bucket_uri: &str, role_name: &str) -> Answer<AwsSetup> {
    let uri = BucketUri::parse(bucket_uri).map_err(|rule| {
        ApiError::bad_request(format!("query parameter bucket_uri {bucket_uri:?} {rule}"))
    })?;
    if crate::config::rules_of_names::check_role_arn(&format!(
        "arn:aws:iam::111122223333:role/{role_name}"
    ))
    .is_err()
    {
        return Err(ApiError::bad_request(format!(
            "query parameter role_name {role_name:?} is not an IAM role name (1 to 64 of letters, digits and +=,.@_-)"
        )));
    }
    let principal = principal(api).await.map_err(|cause| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "cannot find the principal customers must trust: {cause}; set api.principal_arn"
            ),
        )
    })?;
    Ok(setup::aws_setup(
        &principal,
        &api.external_id,
        &uri,
        role_name,
    ))
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
async fn create(shared: &Arc<Shared>, api: &ApiState, body: &[u8]) -> Answer<Connector> {
    let (checked, flags) =
        request::parse_create(body, &api.external_id, &api.defaults).map_err(ApiError::problems)?;
    let connector = checked.connector;
    let existing: Vec<Arc<Entry>> = shared.entries();
    if let Some(reason) = clash(&connector, existing.iter().map(|e| e.connector())) {
        return Err(ApiError::new(StatusCode::CONFLICT, reason));
    }
    let steps = api.probe(&connector, flags).await;
    probe_failed(&connector, &steps)?;
    let _changing = api.changing.lock().await;
    // Another request may have taken the id or index while the probe ran.
    if let Some(reason) = clash(&connector, shared.entries().iter().map(|e| e.connector())) {
        return Err(ApiError::new(StatusCode::CONFLICT, reason));
    }
    let stored = StoredConnector {
        form: checked.form,
        verified: verified(&connector),
        request: Some(checked.request),
        retarget_pending: false,
    };
    let mut all = stored_connectors(shared, api);
    all.push(stored.clone());
    api.store.save(&all).map_err(|cause| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the probe passed but the connector could not be stored: {cause}"),
        )
    })?;
    let entry = Entry::new(
        connector,
        Origin::Api(Box::new(stored)),
        crate::sync::shard::Shard::whole(),
        &shared.history,
    )
    .map_err(|cause| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the connector was stored but its history cannot be read: {cause}"),
        )
    })?;
    let entry = shared.add(entry);
    // The first sync, now; the schedule counts from here.
    shared.start_sync(&entry, Trigger::Api, flags.retarget);
    tracing::info!(message = "Created a connector through the API.", connector = %entry.id());
    let mut answer = view(&entry);
    answer.steps = Some(json!(steps));
    Ok(answer)
}

/// The 422 answer when a step of the probe failed.
fn probe_failed(connector: &ConnectorConfig, steps: &[StepResult]) -> Result<(), ApiError> {
    if verify::all_passed(steps) {
        return Ok(());
    }
    let cause = first_failure(steps);
    tracing::info!(message = "A connector's probe failed; nothing was stored.", connector = %connector.id, %cause);
    Err(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("the probe failed, so nothing was stored: {cause}"),
    )
    .with_probe(cause, &steps))
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
fn list(shared: &Shared, api: &ApiState) -> ConnectorList {
    ConnectorList {
        connectors: shared.entries().iter().map(|e| view(e)).collect(),
        conflicts: lock(&api.conflicts)
            .iter()
            .map(|c| ConflictView {
                id: c.stored.id().to_owned(),
                reason: c.reason.clone(),
                verified: json!(c.stored.verified),
            })
            .collect(),
    }
}

/// One connector as the API shows it: settings (never secrets), `verified_*`, live status.
fn view(entry: &Entry) -> Connector {
    let connector = entry.connector();
    let stored = entry.stored();
    let status = entry.status();
    let credentials = match CredentialMode::of(&connector) {
        CredentialMode::StaticKeys => Credentials::StaticKeys,
        CredentialMode::DefaultChain => Credentials::DefaultChain,
        CredentialMode::AssumedRole { .. } => Credentials::AssumedRole,
    };
    let verified = stored.as_ref().map(|s| &s.verified);
    Connector {
        id: connector.id.clone(),
        origin: if stored.is_some() {
            crate::http::model::Origin::Api
        } else {
            crate::http::model::Origin::File
        },
        read_only: stored.is_none(),
        index_name: connector.index_name().to_owned(),
        buckets: match &connector.buckets {
            BucketSelection::All => vec!["*".to_owned()],
            BucketSelection::Named(names) => names.clone(),
        },
        role_arn: connector.role().map(str::to_owned),
        expected_bucket_owner: connector.expected_owner().map(str::to_owned),
        credentials,
        schedule: status.schedule,
        running: status.running.map(|running| json!(running)),
        next_run: status.next_run.map(rfc3339),
        last_sync: status.last_sync.map(|record| json!(record)),
        last_success_at: status.last_success_at.map(rfc3339),
        skipped: status.skipped,
        notifications: connector.notifications.as_ref().map(|n| NotificationsView {
            queue_url: n.queue_url.clone(),
            format: n.format.as_str().to_owned(),
        }),
        inventory: connector.inventory.as_ref().map(|i| InventoryView {
            destination: if i.prefix.is_empty() {
                format!("s3://{}", i.bucket)
            } else {
                format!("s3://{}/{}", i.bucket, i.prefix)
            },
            config_id: i.config_id.clone(),
            max_age: humantime::format_duration(i.max_age).to_string(),
            deletion_grace: humantime::format_duration(i.deletion_grace).to_string(),
        }),
        verified_bucket_uri: verified.map(|v| v.verified_bucket_uri.clone()),
        verified_role_arn: verified.map(|v| v.verified_role_arn.clone()),
        verified_bucket_owner_account_id: verified
            .map(|v| v.verified_bucket_owner_account_id.clone()),
        verified_at: verified.map(|v| rfc3339(v.verified_at)),
        sync_rules: stored
            .as_ref()
            .and_then(|s| s.form.get("sync_rules"))
            .cloned(),
        steps: None,
        probed: None,
        retarget_pending: None,
    }
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
    drop_index: bool,
) -> Answer<Deleted> {
    let deleted = |documents_deleted| Deleted {
        id: id.to_owned(),
        deleted: true,
        documents_deleted,
    };
    let _changing = api.changing.lock().await;
    let Some(entry) = shared.entry(id) else {
        // A stored connector that conflicts can be deleted too.
        let mut conflicts = lock(&api.conflicts);
        let before = conflicts.len();
        conflicts.retain(|c| c.stored.id() != id);
        if conflicts.len() == before {
            return Err(ApiError::no_connector(id));
        }
        drop(conflicts);
        api.store
            .save(&stored_connectors(shared, api))
            .map_err(|cause| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, cause.to_string()))?;
        return Ok(deleted(0));
    };
    if entry.is_file_connector() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "connector {id} comes from the config file and is read-only here; remove it from the file"
            ),
        ));
    }
    shared.remove(id);
    let remaining = stored_connectors(shared, api);
    api.store.save(&remaining).map_err(|cause| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "connector {id} was stopped but the store could not be rewritten, so it comes back at the next start: {cause}"
            ),
        )
    })?;
    let mut documents_deleted = 0;
    if drop_index {
        let waited = tokio::time::timeout(DELETE_WAIT, async {
            while entry.busy.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        if waited.is_err() {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "connector {id} was deleted, but its sync did not stop within {} s, so its documents were kept; delete again with delete_index=true",
                    DELETE_WAIT.as_secs()
                ),
            ));
        }
        documents_deleted = drop_documents(shared, &entry.connector())
            .await
            .map_err(|cause| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("connector {id} was deleted, but its documents could not be: {cause}"),
                )
            })?;
    }
    tracing::info!(message = "Deleted a connector through the API.", connector = %id, drop_index, documents_deleted);
    Ok(deleted(documents_deleted))
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
fn sync_now(shared: &Arc<Shared>, id: &str, retarget: bool) -> Answer<SyncStarted> {
    let entry = shared.entry(id).ok_or_else(|| ApiError::no_connector(id))?;
    if shared
        .shutting_down
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the worker is shutting down",
        ));
    }
    if shared.start_sync(&entry, Trigger::Api, retarget) {
        Ok(SyncStarted {
            id: id.to_owned(),
            started: true,
            retarget,
        })
    } else {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("a sync of connector {id} is running; it was not started twice"),
        )
        .with("running", &entry.status().running))
    }
}

/// `GET /api/v1/connectors/{id}/syncs[?limit=N]`: the history, newest first.
fn syncs(shared: &Shared, id: &str, limit: usize) -> Answer<SyncList> {
    if shared.entry(id).is_none() {
        return Err(ApiError::no_connector(id));
    }
    let records = shared
        .history
        .records(id)
        .map_err(|cause| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, cause.to_string()))?;
    let newest: Vec<&SyncRecord> = records.iter().rev().take(limit).collect();
    Ok(SyncList {
        id: id.to_owned(),
        syncs: newest.into_iter().map(|record| json!(record)).collect(),
    })
}

/// `GET /api/v1/connectors/{id}/search?q=...&mode=...&limit=N`: passages (or whole documents),
/// the query's vector from the connector's `embedding:` model when the mode needs one.
async fn search(
    shared: &Shared,
    id: &str,
    text: &str,
    mode: Option<SearchMode>,
    limit: usize,
) -> Answer<SearchResult> {
    let entry = shared.entry(id).ok_or_else(|| ApiError::no_connector(id))?;
    let result = |mode: SearchMode, hits| SearchResult {
        id: id.to_owned(),
        query: text.to_owned(),
        mode: mode_name(mode).to_owned(),
        hits,
    };
    let sink =
        match AnySink::open_existing(&shared.config.index, entry.connector().index_name()).await {
            Ok(Some(sink)) => sink,
            Ok(None) => return Ok(result(mode.unwrap_or(SearchMode::Keyword), Vec::new())),
            Err(cause) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("cannot open the index: {cause}"),
                ));
            }
        };
    let unavailable = |cause: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, cause);
    let recorded = crate::with_sink!(&sink, sink => sink.recorded_model().await)
        .map_err(|cause| unavailable(format!("cannot read the index's model: {cause}")))?;
    let mode = mode.unwrap_or_else(|| SearchMode::default_for(recorded.as_ref()));
    let vector = if mode.needs_vector() {
        let embedder = crate::embed::for_connector(entry.connector().embedding.as_ref())
            .map_err(|cause| unavailable(format!("cannot load the embedding model: {cause}")))?;
        let vector = passages::query_vector(embedder.as_deref(), recorded.as_ref(), text)
            .await
            .map_err(|cause| ApiError::bad_request(cause.to_string()))?;
        Some(vector)
    } else {
        None
    };
    let query = PassageQuery {
        text: text.to_owned(),
        vector,
        mode,
        fusion: Fusion::default(),
        limit,
    };
    let found = crate::with_sink!(&sink, sink => sink.search_passages(&query).await)
        .map_err(|cause| ApiError::bad_request(format!("the search failed: {cause}")))?;
    let hits = found
        .into_iter()
        .map(|hit| {
            let (snippet, highlights) = Snippet::parts(hit.snippet);
            Hit {
                id: hit.id.to_hex(),
                bucket: hit.bucket,
                key: hit.key,
                score: hit.score,
                title: hit.title,
                passage: hit.passage.map(|span| HitPassage {
                    ordinal: span.ordinal,
                    start: span.start as u64,
                    end: span.end as u64,
                    heading: span.heading,
                    page: span.page,
                }),
                snippet,
                highlights,
            }
        })
        .collect();
    Ok(result(mode, hits))
}

/// The API's name of a search mode.
fn mode_name(mode: SearchMode) -> &'static str {
    match mode {
        SearchMode::Keyword => "keyword",
        SearchMode::Semantic => "semantic",
        SearchMode::Hybrid => "hybrid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::snippet::snippet;
    use crate::sync::ConfigShards;
    use serde_json::Value;

    /// A worker with the API on and one file connector, over an embedded index in `dir`.
    fn handle(dir: &std::path::Path) -> Handle {
        let text = format!(
            "index:\n  kind: embedded\n  path: {index}\nstate_dir: {state}\napi:\n  token: handle-test-token-0123\n  external_id: handle-test\n  principal_arn: arn:aws:iam::111122223333:user/platform\ndefaults:\n  region: us-east-1\nconnectors:\n  - id: from-file\n    buckets: [docs]\n",
            index = dir.join("index").display(),
            state = dir.join("state").display(),
        );
        let config = crate::config::parse(
            &text,
            std::path::Path::new("test.yml"),
            std::path::Path::new("."),
            &|_| None,
        )
        .unwrap();
        let shards = ConfigShards::whole(&config);
        let worker = super::super::Worker::new(config, shards).unwrap();
        Handle::new(worker.shared)
    }

    #[tokio::test]
    async fn the_worker_answers_through_its_handle_without_http() {
        let dir = tempfile::tempdir().unwrap();
        let handle = handle(dir.path());
        let access = handle.api().unwrap();
        assert_eq!(access.token.expose(), "handle-test-token-0123");
        let listed = handle.list().unwrap();
        assert_eq!(listed.connectors.len(), 1);
        let file = &listed.connectors[0];
        assert_eq!((file.id.as_str(), file.read_only), ("from-file", true));
        assert_eq!(file.origin, crate::http::model::Origin::File);
        assert!(handle.exists("from-file") && !handle.exists("nobody"));
        assert_eq!(
            handle.get("nobody").unwrap_err(),
            ApiError::no_connector("nobody")
        );
        // The file's connectors are read-only.
        let refused = handle
            .update("from-file", Bytes::from_static(br#"{"interval": "1h"}"#))
            .await
            .unwrap_err();
        assert_eq!(refused.status, StatusCode::CONFLICT, "{refused:?}");
        let refused = handle.delete("from-file", false).await.unwrap_err();
        assert_eq!(refused.status, StatusCode::CONFLICT, "{refused:?}");
        // A bad body is 400 with every problem, before any probe.
        let refused = handle
            .create(Bytes::from_static(br#"{"id": "beta"}"#))
            .await
            .unwrap_err();
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert_eq!(refused.body.problems.map(|p| p.len()), Some(3));
        // History and search before any sync: empty.
        assert!(handle.history("from-file", 10).unwrap().syncs.is_empty());
        assert!(
            handle
                .search("from-file", "anything", None, 10)
                .await
                .unwrap()
                .hits
                .is_empty()
        );
        assert_eq!(
            handle.sync_now("nobody", false).unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        // The AWS set-up names the deployment's principal and ExternalId.
        let setup = handle
            .aws_setup("s3://acme-docs/reports", "reader")
            .await
            .unwrap();
        assert_eq!(setup.external_id, "handle-test");
        assert_eq!(setup.bucket_uri, "s3://acme-docs/reports");
        let refused = handle.aws_setup("http://x", "reader").await.unwrap_err();
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        // Readiness: the file connector's index was not opened yet.
        assert!(handle.readiness().is_err());
        let status: Value = serde_json::from_slice(&handle.status().unwrap()).unwrap();
        assert_eq!(status["connectors"][0]["id"], "from-file");
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
