//! `GET /api/v1/aws-setup`: what a customer creates in their account so that a connector can
//! read their bucket: the principal to trust, the ExternalId, both policies, and the same as a
//! CloudFormation template, a Terraform snippet and AWS CLI commands.

use serde_json::{Value, json};

use super::request::{BucketUri, validate_form};
use crate::config::inherit::ConnectorDefaults;
use crate::http::model::AwsSetup;
use crate::policy;

/// The set-up for a role named `role_name` reading `uri`.
pub fn aws_setup(principal: &str, external_id: &str, uri: &BucketUri, role_name: &str) -> AwsSetup {
    let trust = policy::trust_policy(principal, external_id);
    let permissions = permissions(uri);
    AwsSetup {
        principal_arn: principal.to_owned(),
        external_id: external_id.to_owned(),
        role_name: role_name.to_owned(),
        bucket_uri: format!("s3://{}/{}", uri.bucket, uri.prefix)
            .trim_end_matches('/')
            .to_owned(),
        cloudformation: policy::cloudformation(role_name, &trust, &permissions),
        terraform: policy::terraform(role_name, &trust, &permissions),
        aws_cli: policy::aws_cli_commands(role_name, &trust, &permissions),
        trust_policy: trust,
        permissions_policy: permissions,
        next: "Create the role in the account that owns the bucket, then POST /api/v1/connectors with {id, bucket_uri, role_arn, expected_bucket_owner}.".to_owned(),
    }
}

/// The least-privilege permissions for one bucket and prefix, from the same function `verify`
/// and `trust-policy` use.
fn permissions(uri: &BucketUri) -> Value {
    let mut form = json!({ "id": "aws-setup", "buckets": [uri.bucket] });
    if !uri.prefix.is_empty() {
        form["sync_rules"] = json!([{ "bucket": uri.bucket, "prefix": uri.prefix }]);
    }
    match validate_form(&form, &ConnectorDefaults::default()) {
        Ok(connector) => policy::permissions_policy(&connector),
        // The URI was checked by the caller; an empty policy would be visible, not silent.
        Err(_) => json!({ "Version": "2012-10-17", "Statement": [] }),
    }
}
