//! The narrow handle through which the HTTP surface reaches the worker: the operations of the
//! management API (list, get, create, update, delete, sync now, history, search, AWS set-up)
//! and what `/readyz`, `/status` and `/metrics` render. The worker implements it
//! (`worker::api::Handle`); the tests implement it with a fake (`http/tests.rs`).
//!
//! Every operation is asked by a [`Caller`]: the operator (`api.token`) or a tenant (a token
//! `POST /api/v1/tenants` issued). A tenant sees only its own connectors: another's answers
//! exactly as a missing one.
//!
//! An operation answers the JSON of a success, or an [`ApiError`] with its status code and the
//! details of the error shape `{"error": {"status", "message", ...}}`. What is HTTP stays on
//! this side: routes, the token, the body limit, query parameters and the status code of a
//! success (201 for a create, 202 for a sync started, 200 else).

use std::future::Future;

use axum::body::Bytes;
pub use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use crate::config::Secret;

use super::model::{
    AwsSetup, Connector, ConnectorList, Deleted, ErrorBody, FieldProblem, SearchResult, SyncList,
    SyncStarted, Tenant, TenantCreated, TenantDeleted, TenantList,
};

/// What an operation answers: the body of a success, or the error.
pub type Answer<T> = Result<T, ApiError>;

/// The API's access settings, from the config's `api:` block.
#[derive(Debug, Clone)]
pub struct ApiAccess {
    /// The bearer token every `/api` request must carry (never logged).
    pub token: Secret,
    /// The largest request body accepted, in bytes (`api.max_body_bytes`).
    pub max_body_bytes: usize,
}

/// Who sent a request: the token it carried, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The operator: `api.token`. Sees and changes every connector, manages tenants. Also
    /// every caller of `/status` and `/readyz` when the config has no `api:` block.
    Admin,
    /// A tenant, by its id: sees and changes only the connectors it created.
    Tenant(String),
}

impl Caller {
    /// The tenant's id; `None` for the operator.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Self::Admin => None,
            Self::Tenant(id) => Some(id),
        }
    }

    /// True when this caller may see a connector of `tenant` (`None`: the operator's or the
    /// file's).
    pub fn sees(&self, tenant: Option<&str>) -> bool {
        match self {
            Self::Admin => true,
            Self::Tenant(id) => tenant == Some(id.as_str()),
        }
    }
}

/// The worker, as the HTTP surface sees it.
pub trait WorkerHandle: Send + Sync + 'static {
    /// The API's settings; `None` when the config has no `api:` block (then `/api` and the
    /// console are not served).
    fn api(&self) -> Option<ApiAccess>;
    /// The tenant whose token this is (compared in constant time); `None` for any other.
    fn tenant_of(&self, token: &str) -> Option<String>;
    /// `Ok` when ready to work; else every reason it is not, of the connectors `caller` sees.
    fn readiness(&self, caller: &Caller) -> Result<(), Vec<String>>;
    /// The status report of `/status` (the connectors `caller` sees), as pretty-printed JSON.
    fn status(&self, caller: &Caller) -> Result<Vec<u8>, String>;
    /// The metrics of `/metrics`: their content type and the text.
    fn metrics(&self) -> (&'static str, String);
    /// True when a connector with this id runs and `caller` sees it.
    fn exists(&self, caller: &Caller, id: &str) -> bool;
    /// Every connector `caller` sees, and the stored ones that cannot run.
    fn list(&self, caller: &Caller) -> Answer<ConnectorList>;
    /// One connector.
    fn get(&self, caller: &Caller, id: &str) -> Answer<Connector>;
    /// Creates a connector of `caller` from a request body (JSON, not yet parsed).
    fn create(
        &self,
        caller: &Caller,
        body: Bytes,
    ) -> impl Future<Output = Answer<Connector>> + Send;
    /// Changes a connector by a JSON merge patch (not yet parsed).
    fn update(
        &self,
        caller: &Caller,
        id: &str,
        body: Bytes,
    ) -> impl Future<Output = Answer<Connector>> + Send;
    /// Deletes a connector, and its documents when `delete_index`.
    fn delete(
        &self,
        caller: &Caller,
        id: &str,
        delete_index: bool,
    ) -> impl Future<Output = Answer<Deleted>> + Send;
    /// Starts a sync now; `retarget` lets it re-bind the index to the connector's source,
    /// `reembed` rebuilds every vector (the index may hold another model's).
    fn sync_now(
        &self,
        caller: &Caller,
        id: &str,
        retarget: bool,
        reembed: bool,
    ) -> Answer<SyncStarted>;
    /// The connector's last `limit` syncs, newest first.
    fn history(&self, caller: &Caller, id: &str, limit: usize) -> Answer<SyncList>;
    /// Searches the connector's index; `mode` `None` is the index's default
    /// ([`SearchMode::default_for`](crate::sink::passages::SearchMode::default_for)).
    fn search(
        &self,
        caller: &Caller,
        id: &str,
        query: &str,
        mode: Option<crate::sink::passages::SearchMode>,
        limit: usize,
    ) -> impl Future<Output = Answer<SearchResult>> + Send;
    /// The AWS set-up of a role named `role_name` reading `bucket_uri` (both unchecked), with
    /// the ExternalId of `caller`.
    fn aws_setup(
        &self,
        caller: &Caller,
        bucket_uri: &str,
        role_name: &str,
    ) -> impl Future<Output = Answer<AwsSetup>> + Send;
    /// Creates a tenant from a request body (JSON, not yet parsed): its token, shown once.
    /// Only the operator calls it (the HTTP surface refuses tenants).
    fn create_tenant(&self, body: Bytes) -> impl Future<Output = Answer<TenantCreated>> + Send;
    /// Every tenant.
    fn tenants(&self) -> Answer<TenantList>;
    /// One tenant.
    fn tenant(&self, id: &str) -> Answer<Tenant>;
    /// Deletes a tenant and its connectors, and their documents when `delete_index`.
    fn delete_tenant(
        &self,
        id: &str,
        delete_index: bool,
    ) -> impl Future<Output = Answer<TenantDeleted>> + Send;
}

/// An error answer: its status code and body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The status code.
    pub status: StatusCode,
    /// The body's `error` object.
    pub body: Box<ErrorBody>,
}

impl ApiError {
    /// An error with only a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: Box::new(ErrorBody {
                status: status.as_u16(),
                message: message.into(),
                ..ErrorBody::default()
            }),
        }
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 for a connector that does not exist.
    pub fn no_connector(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("no connector with id {id:?}"),
        )
    }

    /// 404 for a tenant that does not exist.
    pub fn no_tenant(id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("no tenant with id {id:?}"))
    }

    /// 403 for a tenant's token on a route of the operator.
    pub fn operator_only(what: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            format!("{what} needs the operator's token (api.token), not a tenant's"),
        )
    }

    /// 400 for a body that is not a valid connector: every problem, each with its field.
    pub fn problems(problems: Vec<FieldProblem>) -> Self {
        let list: Vec<String> = problems
            .iter()
            .map(|p| match &p.value {
                Some(value) => format!("{}: {value} {}", p.field, p.rule),
                None => format!("{}: {}", p.field, p.rule),
            })
            .collect();
        let mut error =
            Self::bad_request(format!("the connector is not valid: {}", list.join("; ")));
        error.body.problems = Some(problems);
        error
    }

    /// The failing probe step's cause and every step.
    pub fn with_probe(mut self, cause: String, steps: &impl Serialize) -> Self {
        self.body.cause = Some(cause);
        self.body.steps = Some(to_value(steps));
        self
    }

    /// A detail named `name` (`running`, `recorded`, `wanted`).
    pub fn with(mut self, name: &str, value: &impl Serialize) -> Self {
        self.body.details.insert(name.to_owned(), to_value(value));
        self
    }
}

fn to_value(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
