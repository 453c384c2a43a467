//! Query parameters: decoded by the framework, read here with the API's rules and messages;
//! and the `{id}` path parameters as the OpenAPI document lists them.

use axum::extract::Query;
use utoipa::IntoParams;

use super::handle::ApiError;

/// The `{id}` of `/api/v1/connectors/{id}` and the routes below it, as the OpenAPI document
/// lists it (`params(...)` of a `#[utoipa::path]`); the handlers read it as `Path<String>`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "never built: it only describes the parameter")]
pub(super) struct ConnectorId {
    /// The connector's id.
    id: String,
}

/// The `{id}` of `/api/v1/tenants/{id}`, as the OpenAPI document lists it.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "never built: it only describes the parameter")]
pub(super) struct TenantId {
    /// The tenant's id.
    id: String,
}

/// A request's query parameters, decoded, in their order.
pub(super) type Params = Query<Vec<(String, String)>>;

/// The first value of query parameter `name`.
pub(super) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A boolean query flag: `true`/`1`/empty or `false`/`0`; absent is false.
pub(super) fn flag(params: &[(String, String)], name: &str) -> Result<bool, ApiError> {
    match param(params, name) {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1" | "") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "query parameter {name}={other:?} must be true or false"
        ))),
    }
}

/// Query parameter `limit`: `default` when absent, else a number from 1 to `max`.
pub(super) fn limit(
    params: &[(String, String)],
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match param(params, "limit") {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(limit) if (1..=max).contains(&limit) => Ok(limit),
            _ => Err(ApiError::bad_request(format!(
                "query parameter limit={text:?} must be a number from 1 to {max}"
            ))),
        },
    }
}
