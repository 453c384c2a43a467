//! `/api/v1/aws-setup`: what a customer creates in their account so that a connector can read
//! their bucket.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};

use super::errors::{Unauthorized, answer};
use super::handle::{Caller, StatusCode, WorkerHandle};
use super::model::{AwsSetup, Error};
use super::params::{Params, param};

/// The routes of this file.
pub(super) fn routes<H: WorkerHandle>() -> Router<Arc<H>> {
    Router::new().route("/api/v1/aws-setup", get(aws_setup::<H>))
}

/// What a customer creates in their account: principal, ExternalId (a tenant's own; the
/// deployment's for the operator), trust and permissions policies, CloudFormation, Terraform,
/// AWS CLI.
#[utoipa::path(get, path = "/api/v1/aws-setup", operation_id = "awsSetup", tag = "aws-setup",
    params(
        ("bucket_uri" = Option<String>, Query, pattern = "^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", description = "s3://bucket[/prefix] to tailor the permissions policy to. Default s3://your-bucket."),
        ("role_name" = Option<String>, Query, pattern = "^[A-Za-z0-9+=,.@_-]{1,64}$", description = "The role's name. Default s3-connector-read."),
    ),
    responses(
        (status = 200, description = "The set-up.", body = AwsSetup),
        (status = 400, description = "A bad bucket_uri or role_name.", body = Error),
        Unauthorized,
        (status = 503, description = "The worker's own principal cannot be found (set api.principal_arn).", body = Error),
    ))]
pub(super) async fn aws_setup<H: WorkerHandle>(
    State(handle): State<Arc<H>>,
    Extension(caller): Extension<Caller>,
    params: Params,
) -> Response {
    let bucket_uri = param(&params, "bucket_uri").unwrap_or("s3://your-bucket");
    let role_name = param(&params, "role_name").unwrap_or("s3-connector-read");
    answer(
        StatusCode::OK,
        handle.aws_setup(&caller, bucket_uri, role_name).await,
    )
}
