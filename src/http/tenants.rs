//! `/api/v1/tenants` and `/api/v1/tenants/{id}`: the operator creates, lists, shows and
//! deletes tenants. A tenant's token is answered 403 here (the routes are in the public
//! document anyway; 403 says which token is needed, where a 404 would only puzzle).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};

use super::connectors::body;
use super::errors::{NoTenant, OperatorOnly, TooLarge, Unauthorized, answer};
use super::handle::{ApiError, Caller, StatusCode, WorkerHandle};
use super::model::{CreateTenant, Error, Tenant, TenantCreated, TenantDeleted, TenantList};
use super::params::{Params, TenantId, flag};

/// The routes of this file.
pub(super) fn routes<H: WorkerHandle>() -> Router<Arc<H>> {
    Router::new()
        .route("/api/v1/tenants", get(list::<H>).post(create::<H>))
        .route(
            "/api/v1/tenants/{id}",
            get(get_one::<H>).delete(delete::<H>),
        )
}

/// `Ok` for the operator; 403 for a tenant.
fn operator(caller: &Caller) -> Result<(), ApiError> {
    match caller {
        Caller::Admin => Ok(()),
        Caller::Tenant(_) => Err(ApiError::operator_only("managing tenants")),
    }
}

/// Every tenant, by creation (never their tokens).
#[utoipa::path(get, path = "/api/v1/tenants", operation_id = "listTenants", tag = "tenants",
    responses(
        (status = 200, description = "The tenants.", body = TenantList),
        Unauthorized,
        OperatorOnly,
    ))]
pub(super) async fn list<H: WorkerHandle>(
    State(handle): State<Arc<H>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    answer(
        StatusCode::OK,
        operator(&caller).and_then(|()| handle.tenants()),
    )
}

/// Creates a tenant: the server generates its token (256 random bits, shown only in this
/// answer, stored as a SHA-256 hash) and its ExternalId (128 random bits).
#[utoipa::path(post, path = "/api/v1/tenants", operation_id = "createTenant", tag = "tenants",
    request_body = CreateTenant,
    responses(
        (status = 201, description = "Created: its token (shown this once) and ExternalId.", body = TenantCreated,
            links(
                ("GetTenant" = (operation_id = "getTenant", parameters(("id" = "$response.body#/id")), description = "The tenant just created.")),
                ("DeleteTenant" = (operation_id = "deleteTenant", parameters(("id" = "$response.body#/id")), description = "Delete it.")),
            )),
        (status = 400, description = "Not valid: every problem with its field.", body = Error),
        Unauthorized,
        OperatorOnly,
        (status = 409, description = "The id is taken.", body = Error),
        TooLarge,
        (status = 500, description = "The tenant could not be stored (disk).", body = Error),
    ))]
pub(super) async fn create<H: WorkerHandle>(
    State(handle): State<Arc<H>>,
    Extension(caller): Extension<Caller>,
    sent: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    operator(&caller)?;
    let sent = body(sent, handle.api().as_ref())?;
    Ok(answer(
        StatusCode::CREATED,
        handle.create_tenant(sent).await,
    ))
}

/// One tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{id}", operation_id = "getTenant", tag = "tenants",
    params(TenantId),
    responses(
        (status = 200, description = "The tenant (never its token).", body = Tenant),
        Unauthorized,
        OperatorOnly,
        NoTenant,
    ))]
pub(super) async fn get_one<H: WorkerHandle>(
    State(handle): State<Arc<H>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    answer(
        StatusCode::OK,
        operator(&caller).and_then(|()| handle.tenant(&id)),
    )
}

/// Deletes a tenant: its token stops working at once, its connectors are deleted (their
/// histories too); with `delete_index=true` their documents are deleted too.
#[utoipa::path(delete, path = "/api/v1/tenants/{id}", operation_id = "deleteTenant", tag = "tenants",
    params(TenantId, ("delete_index" = Option<bool>, Query, description = "Also delete its connectors' documents.")),
    responses(
        (status = 200, description = "Deleted, with its connectors.", body = TenantDeleted),
        (status = 400, description = "A bad delete_index.", body = Error),
        Unauthorized,
        OperatorOnly,
        NoTenant,
        (status = 500, description = "The store or an index could not be changed.", body = Error),
        (status = 503, description = "A connector's sync did not stop in time; its documents were kept.", body = Error),
    ))]
pub(super) async fn delete<H: WorkerHandle>(
    State(handle): State<Arc<H>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    operator(&caller)?;
    let drop_index = flag(&params, "delete_index")?;
    Ok(answer(
        StatusCode::OK,
        handle.delete_tenant(&id, drop_index).await,
    ))
}
