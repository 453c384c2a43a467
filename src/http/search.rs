//! `/api/v1/connectors/{id}/search`: the connector's index, searched.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};

use super::errors::{NoConnector, Unauthorized, answer};
use super::handle::{ApiError, Caller, StatusCode, WorkerHandle};
use super::model::{Error, SearchResult};
use super::params::{Params, limit, param};

/// Results a search answers at most.
const MAX_SEARCH_LIMIT: usize = 100;

/// The routes of this file.
pub(super) fn routes<H: WorkerHandle>() -> Router<Arc<H>> {
    Router::new().route("/api/v1/connectors/{id}/search", get(search::<H>))
}

/// Searches the connector's index: hits with title and a snippet of body text.
#[utoipa::path(get, path = "/api/v1/connectors/{id}/search", operation_id = "search", tag = "search",
    params(
        ("id" = String, Path, description = "The connector's id."),
        ("q" = String, Query, min_length = 1, description = "The search text."),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 100, description = "Hits to answer, default 10."),
    ),
    responses(
        (status = 200, description = "The hits, best first (none before the first sync).", body = SearchResult),
        (status = 400, description = "No q, a bad limit, or a query the index refuses.", body = Error),
        Unauthorized,
        NoConnector,
        (status = 409, description = "The index holds documents of another source than the connector's; refused until a sync re-targets it.", body = Error),
        (status = 503, description = "The index cannot be opened.", body = Error),
    ))]
pub(super) async fn search<H: WorkerHandle>(
    State(handle): State<Arc<H>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    params: Params,
) -> Response {
    if !handle.exists(&caller, &id) {
        return ApiError::no_connector(&id).into_response();
    }
    let Some(text) = param(&params, "q").filter(|q| !q.trim().is_empty()) else {
        return ApiError::bad_request("query parameter q (the search text) is missing")
            .into_response();
    };
    match limit(&params, 10, MAX_SEARCH_LIMIT) {
        Ok(limit) => answer(
            StatusCode::OK,
            handle.search(&caller, &id, text, limit).await,
        ),
        Err(error) => error.into_response(),
    }
}
