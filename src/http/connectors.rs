//! `/api/v1/connectors` and `/api/v1/connectors/{id}`: list, create, get, update, delete.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};

use super::errors::{NoConnector, TooLarge, Unauthorized, answer, too_large};
use super::handle::{ApiAccess, ApiError, Caller, StatusCode, WorkerHandle};
use super::model::{Connector, ConnectorList, CreateConnector, Deleted, Error, UpdateConnector};
use super::params::{ConnectorId, Params, flag};

/// The routes of this file.
pub(super) fn routes<H: WorkerHandle>() -> Router<Arc<H>> {
    Router::new()
        .route("/api/v1/connectors", get(list::<H>).post(create::<H>))
        .route(
            "/api/v1/connectors/{id}",
            get(get_one::<H>).patch(update::<H>).delete(delete::<H>),
        )
}

/// A request body, or the answer when it cannot be read.
pub(super) fn body(
    body: Result<Bytes, BytesRejection>,
    access: Option<&ApiAccess>,
) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| match (rejection.status(), access) {
        (StatusCode::PAYLOAD_TOO_LARGE, Some(access)) => too_large(access.max_body_bytes),
        _ => ApiError::bad_request(format!(
            "the body could not be read: {}",
            rejection.body_text()
        )),
    })
}

/// Every connector the caller sees (a tenant: its own; the operator: all, each with its
/// tenant), and the stored ones that cannot run.
#[utoipa::path(get, path = "/api/v1/connectors", operation_id = "listConnectors", tag = "connectors",
    responses(
        (status = 200, description = "The file's connectors first, then the API's; conflicts are stored connectors that do not run.", body = ConnectorList),
        Unauthorized,
    ))]
pub(super) async fn list<H: WorkerHandle>(
    State(handle): State<Arc<H>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    answer(StatusCode::OK, handle.list(&caller))
}

/// Validates like the config file, probes the role with the caller's ExternalId (a tenant's
/// own; the deployment's for the operator), and stores the connector, the caller's, only if
/// the probe passes; it then syncs at once and on its schedule.
#[utoipa::path(post, path = "/api/v1/connectors", operation_id = "createConnector", tag = "connectors",
    request_body = CreateConnector,
    responses(
        (status = 201, description = "Stored; the probe's steps are included.", body = Connector,
            links(
                ("GetConnector" = (operation_id = "getConnector", parameters(("id" = "$response.body#/id")), description = "The connector just answered.")),
                ("UpdateConnector" = (operation_id = "updateConnector", parameters(("id" = "$response.body#/id")), description = "Change it.")),
                ("SyncConnector" = (operation_id = "syncConnector", parameters(("id" = "$response.body#/id")), description = "Sync it now.")),
                ("ListSyncs" = (operation_id = "listSyncs", parameters(("id" = "$response.body#/id")), description = "Its sync history.")),
                ("SearchConnector" = (operation_id = "search", parameters(("id" = "$response.body#/id")), description = "Search its index.")),
                ("DeleteConnector" = (operation_id = "deleteConnector", parameters(("id" = "$response.body#/id")), description = "Delete it.")),
            )),
        (status = 400, description = "Not valid: every problem with its field (AWS keys are always refused).", body = Error),
        Unauthorized,
        (status = 403, description = "A tenant sent retarget (the operator's token only).", body = Error),
        (status = 409, description = "The id is taken, or the index belongs to another connector (live, or one that left it with its documents kept; its owner named) or holds another source's documents.", body = Error),
        TooLarge,
        (status = 422, description = "The probe failed: its steps and the actionable cause; nothing was stored.", body = Error),
        (status = 500, description = "The probe passed but the connector could not be stored (disk).", body = Error),
    ))]
pub(super) async fn create<H: WorkerHandle>(
    State(handle): State<Arc<H>>,
    Extension(caller): Extension<Caller>,
    sent: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let sent = body(sent, handle.api().as_ref())?;
    Ok(answer(
        StatusCode::CREATED,
        handle.create(&caller, sent).await,
    ))
}

/// One connector.
#[utoipa::path(get, path = "/api/v1/connectors/{id}", operation_id = "getConnector", tag = "connectors",
    params(ConnectorId),
    responses(
        (status = 200, description = "The connector, with its live status.", body = Connector,
            links(
                ("UpdateConnector" = (operation_id = "updateConnector", parameters(("id" = "$response.body#/id")), description = "Change it.")),
                ("SyncConnector" = (operation_id = "syncConnector", parameters(("id" = "$response.body#/id")), description = "Sync it now.")),
                ("DeleteConnector" = (operation_id = "deleteConnector", parameters(("id" = "$response.body#/id")), description = "Delete it.")),
            )),
        Unauthorized,
        NoConnector,
    ))]
pub(super) async fn get_one<H: WorkerHandle>(
    State(handle): State<Arc<H>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    answer(StatusCode::OK, handle.get(&caller, &id))
}

/// Changes an API connector by a JSON merge patch of its request, checked like a create;
/// probed again when its source changed; applied at once (a new schedule too).
#[utoipa::path(patch, path = "/api/v1/connectors/{id}", operation_id = "updateConnector", tag = "connectors",
    params(ConnectorId),
    request_body = UpdateConnector,
    responses(
        (status = 200, description = "Stored and applied.", body = Connector,
            links(
                ("GetConnector" = (operation_id = "getConnector", parameters(("id" = "$response.body#/id")), description = "The connector just answered.")),
                ("SyncConnector" = (operation_id = "syncConnector", parameters(("id" = "$response.body#/id")), description = "Sync it now.")),
                ("ListSyncs" = (operation_id = "listSyncs", parameters(("id" = "$response.body#/id")), description = "Its sync history.")),
                ("SearchConnector" = (operation_id = "search", parameters(("id" = "$response.body#/id")), description = "Search its index.")),
                ("DeleteConnector" = (operation_id = "deleteConnector", parameters(("id" = "$response.body#/id")), description = "Delete it.")),
            )),
        (status = 400, description = "The merged request is not valid: every problem with its field.", body = Error),
        Unauthorized,
        NoConnector,
        (status = 409, description = "A file connector, a stored one that does not run, an index of another connector (its owner named) or holding another source's documents, or a change meanwhile.", body = Error),
        TooLarge,
        (status = 422, description = "The probe of the new settings failed; nothing was changed.", body = Error),
        (status = 500, description = "The connector could not be stored (disk).", body = Error),
        (status = 503, description = "The index's recorded source cannot be read.", body = Error),
    ))]
pub(super) async fn update<H: WorkerHandle>(
    State(handle): State<Arc<H>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    sent: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let sent = body(sent, handle.api().as_ref())?;
    Ok(answer(
        StatusCode::OK,
        handle.update(&caller, &id, sent).await,
    ))
}

/// Deletes an API connector: its schedule stops, it is removed from the store and its sync
/// history is deleted; with `delete_index=true` its documents are deleted too (else the index
/// stays its: no other connector may take it without the operator's retarget).
#[utoipa::path(delete, path = "/api/v1/connectors/{id}", operation_id = "deleteConnector", tag = "connectors",
    params(ConnectorId, ("delete_index" = Option<bool>, Query, description = "Also delete its documents (after its sync in flight stopped).")),
    responses(
        (status = 200, description = "Deleted.", body = Deleted),
        (status = 400, description = "A bad delete_index.", body = Error),
        Unauthorized,
        NoConnector,
        (status = 409, description = "A connector of the config file.", body = Error),
        (status = 500, description = "The store or the index could not be changed.", body = Error),
        (status = 503, description = "Its sync did not stop in time; its documents were kept.", body = Error),
    ))]
pub(super) async fn delete<H: WorkerHandle>(
    State(handle): State<Arc<H>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let drop_index = flag(&params, "delete_index")?;
    Ok(answer(
        StatusCode::OK,
        handle.delete(&caller, &id, drop_index).await,
    ))
}
