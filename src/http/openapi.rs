//! The OpenAPI 3 document of the management API, derived from the handlers' `#[utoipa::path]`
//! and the types of [`super::model`], and served at `/api/v1/openapi.json`. Nothing of it is
//! written by hand beside the code, so the two cannot drift; the tests check that it lists
//! exactly the routes the router serves.

use axum::Router;
use axum::extract::MatchedPath;
use axum::http::header::ALLOW;
use axum::http::{HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::errors::{Unauthorized, respond, text};
use super::guard::GuardAnswers;
use super::handle::{ApiError, StatusCode};
use super::model::{Error, FieldProblem, ProbeStep, SyncRecord};
use super::{aws_setup, connectors, search, syncs, tenants};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "s3-connector management API",
        version = "1",
        description = "Connectors created by a request once a probe of the customer's role passes (AssumeRole with the deployment's ExternalId, HeadBucket and ListObjectsV2 with ExpectedBucketOwner, one ranged GetObject). Every route needs `Authorization: Bearer <token>`: the operator's (`api.token`), which sees every connector and manages tenants, or a tenant's (from `POST /api/v1/tenants`), which sees only its own connectors (another tenant's answer 404) and whose connectors are probed and synced with its own ExternalId.",
    ),
    servers((url = "/")),
    security(("bearer" = [])),
    modifiers(&Bearer, &GuardAnswers),
    paths(
        aws_setup::aws_setup,
        openapi,
        connectors::list,
        connectors::create,
        connectors::get_one,
        connectors::update,
        connectors::delete,
        syncs::sync_now,
        syncs::history,
        search::search,
        tenants::list,
        tenants::create,
        tenants::get_one,
        tenants::delete,
    ),
    components(schemas(Error, FieldProblem, ProbeStep, SyncRecord)),
)]
pub struct ApiDoc;

/// Adds the bearer scheme the document's `security` names.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON.
pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

/// The methods the document gives `route` (a path as the router writes it, `{id}` and all),
/// in the order GET, POST, PATCH, DELETE.
fn methods(route: &str) -> Vec<&'static str> {
    let document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let item = &document["paths"][route];
    [
        ("get", "GET"),
        ("post", "POST"),
        ("put", "PUT"),
        ("patch", "PATCH"),
        ("delete", "DELETE"),
    ]
    .into_iter()
    .filter(|(key, _)| item.get(key).is_some())
    .map(|(_, method)| method)
    .collect()
}

/// 405 for a method an API route does not answer; `Allow` lists the methods the OpenAPI
/// document gives the route (which a test holds to the router), HEAD left out.
pub(super) async fn not_allowed(route: MatchedPath, uri: Uri) -> Response {
    let allowed = methods(route.as_str()).join(", ");
    let path = uri.path();
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{path} allows {allowed}"),
    )
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&allowed) {
        response.headers_mut().insert(ALLOW, value);
    }
    response
}

/// The route of the document.
pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/api/v1/openapi.json", get(openapi))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "openapi", tag = "openapi",
    responses(
        (status = 200, description = "The OpenAPI document.", content_type = "application/json", body = Object),
        Unauthorized,
    ))]
pub(super) async fn openapi() -> Response {
    match ApiDoc::openapi().to_pretty_json() {
        Ok(json) => respond(StatusCode::OK, "application/json", json.into_bytes()),
        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{error}\n")),
    }
}
