//! `/api/v1/connectors/{id}/search`: the connector's index, searched by words, by meaning or
//! both; the hits are passages (whole documents in an index without passages).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};

use super::errors::{NoConnector, Unauthorized, answer};
use super::handle::{ApiError, Caller, StatusCode, WorkerHandle};
use super::model::{Error, SearchResult};
use super::params::{Params, limit, param};
use crate::sink::passages::SearchMode;

/// Results a search answers at most.
const MAX_SEARCH_LIMIT: usize = 100;

/// The routes of this file.
pub(super) fn routes<H: WorkerHandle>() -> Router<Arc<H>> {
    Router::new().route("/api/v1/connectors/{id}/search", get(search::<H>))
}

/// Searches the connector's index: passages (or whole documents) with title and a snippet of
/// their text, its matched words' byte ranges marked.
#[utoipa::path(get, path = "/api/v1/connectors/{id}/search", operation_id = "search", tag = "search",
    params(
        ("id" = String, Path, description = "The connector's id."),
        ("q" = String, Query, min_length = 1, description = "The search text."),
        ("mode" = Option<String>, Query, pattern = "^(keyword|semantic|hybrid)$", description = "keyword (BM25), semantic (vectors) or hybrid (both, fused); default hybrid when the index holds vectors, keyword otherwise."),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 100, description = "Hits to answer, default 10."),
    ),
    responses(
        (status = 200, description = "The hits, best first (none before the first sync).", body = SearchResult),
        (status = 400, description = "No q, a bad mode or limit, a semantic search on an index without vectors, or a query the index refuses.", body = Error),
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
    let mode = match mode(&params) {
        Ok(mode) => mode,
        Err(error) => return error.into_response(),
    };
    match limit(&params, 10, MAX_SEARCH_LIMIT) {
        Ok(limit) => answer(
            StatusCode::OK,
            handle.search(&caller, &id, text, mode, limit).await,
        ),
        Err(error) => error.into_response(),
    }
}

/// Query parameter `mode`: `None` when absent.
fn mode(params: &[(String, String)]) -> Result<Option<SearchMode>, ApiError> {
    match param(params, "mode") {
        None => Ok(None),
        Some("keyword") => Ok(Some(SearchMode::Keyword)),
        Some("semantic") => Ok(Some(SearchMode::Semantic)),
        Some("hybrid") => Ok(Some(SearchMode::Hybrid)),
        Some(other) => Err(ApiError::bad_request(format!(
            "query parameter mode={other:?} must be keyword, semantic or hybrid"
        ))),
    }
}
