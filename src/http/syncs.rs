//! `/api/v1/connectors/{id}/sync` (start one now) and `/api/v1/connectors/{id}/syncs` (the
//! history).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::errors::{NoConnector, Unauthorized, answer};
use super::handle::{ApiError, Caller, StatusCode, WorkerHandle};
use super::model::{Error, SyncList, SyncStarted};
use super::params::{ConnectorId, Params, flag, limit};

/// Syncs a history answers at most.
const MAX_HISTORY_LIMIT: usize = 1000;

/// The routes of this file.
pub(super) fn routes<H: WorkerHandle>() -> Router<Arc<H>> {
    Router::new()
        .route("/api/v1/connectors/{id}/sync", post(sync_now::<H>))
        .route("/api/v1/connectors/{id}/syncs", get(history::<H>))
}

/// Starts a sync now, outside the schedule.
#[utoipa::path(post, path = "/api/v1/connectors/{id}/sync", operation_id = "syncConnector", tag = "syncs",
    params(ConnectorId, ("retarget" = Option<bool>, Query, description = "Let this sync re-bind an index that holds documents of another source."),
        ("reembed" = Option<bool>, Query, description = "Rebuild every vector: every object is downloaded and embedded again, also when the index holds vectors of another model.")),
    responses(
        (status = 202, description = "Started.", body = SyncStarted,
            links(
                ("GetConnector" = (operation_id = "getConnector", parameters(("id" = "$response.body#/id")), description = "Its status, the sync running.")),
                ("ListSyncs" = (operation_id = "listSyncs", parameters(("id" = "$response.body#/id")), description = "Its sync history.")),
                ("DeleteConnector" = (operation_id = "deleteConnector", parameters(("id" = "$response.body#/id")), description = "Delete it.")),
            )),
        (status = 400, description = "A bad retarget or reembed.", body = Error),
        Unauthorized,
        NoConnector,
        (status = 409, description = "A sync of the connector runs; it was not started twice.", body = Error),
        (status = 503, description = "The worker is shutting down.", body = Error),
    ))]
pub(super) async fn sync_now<H: WorkerHandle>(
    State(handle): State<Arc<H>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let retarget = flag(&params, "retarget")?;
    let reembed = flag(&params, "reembed")?;
    Ok(answer(
        StatusCode::ACCEPTED,
        handle.sync_now(&caller, &id, retarget, reembed),
    ))
}

/// The connector's sync history, newest first.
#[utoipa::path(get, path = "/api/v1/connectors/{id}/syncs", operation_id = "listSyncs", tag = "syncs",
    params(ConnectorId, ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "Syncs to answer, default 50.")),
    responses(
        (status = 200, description = "The syncs, newest first.", body = SyncList),
        (status = 400, description = "A bad limit.", body = Error),
        Unauthorized,
        NoConnector,
        (status = 500, description = "The history cannot be read.", body = Error),
    ))]
pub(super) async fn history<H: WorkerHandle>(
    State(handle): State<Arc<H>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    if !handle.exists(&caller, &id) {
        return Err(ApiError::no_connector(&id));
    }
    let limit = limit(&params, 50, MAX_HISTORY_LIMIT)?;
    Ok(answer(StatusCode::OK, handle.history(&caller, &id, limit)))
}
