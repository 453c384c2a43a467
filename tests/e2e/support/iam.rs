//! IAM set-up in moto for identity tests: users with access keys, roles with trust policies,
//! inline policies. Raw IAM query-API calls (no IAM SDK in the build), made while IAM
//! enforcement is off; turn enforcement on afterwards with `MotoServer::enable_iam_enforcement`.

use super::moto::{MotoServer, xml_values};

/// The account moto puts everything in.
pub const ACCOUNT_ID: &str = "123456789012";

/// Signs nothing, but names the IAM service so moto routes the call to IAM.
const IAM_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=00";

/// An IAM user with an access key.
#[derive(Debug, Clone)]
pub struct User {
    /// The user's ARN.
    pub arn: String,
    /// Its access key id.
    pub access_key_id: String,
    /// Its secret key.
    pub secret_access_key: String,
}

/// Creates user `name` with an access key and the inline policy `policy` (JSON).
pub fn create_user(moto: &MotoServer, name: &str, policy: &str) -> User {
    call(moto, &[("Action", "CreateUser"), ("UserName", name)]);
    let key = call(moto, &[("Action", "CreateAccessKey"), ("UserName", name)]);
    call(
        moto,
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", name),
            ("PolicyName", "inline"),
            ("PolicyDocument", policy),
        ],
    );
    User {
        arn: format!("arn:aws:iam::{ACCOUNT_ID}:user/{name}"),
        access_key_id: first(&key, "AccessKeyId"),
        secret_access_key: first(&key, "SecretAccessKey"),
    }
}

/// Creates role `name` trusting per `trust` (JSON) with the inline policy `policy`; returns
/// its ARN.
pub fn create_role(moto: &MotoServer, name: &str, trust: &str, policy: &str) -> String {
    let created = call(
        moto,
        &[
            ("Action", "CreateRole"),
            ("RoleName", name),
            ("AssumeRolePolicyDocument", trust),
        ],
    );
    call(
        moto,
        &[
            ("Action", "PutRolePolicy"),
            ("RoleName", name),
            ("PolicyName", "inline"),
            ("PolicyDocument", policy),
        ],
    );
    first(&created, "Arn")
}

/// A policy allowing everything a connector does on `bucket` (moto checks HeadBucket as its own
/// action, `s3:HeadBucket`).
pub fn bucket_reader_policy(bucket: &str) -> String {
    format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Effect": "Allow", "Action": ["s3:ListBucket", "s3:HeadBucket", "s3:GetBucketLocation"], "Resource": "arn:aws:s3:::{bucket}"}},
            {{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::{bucket}/*"}}
        ]}}"#
    )
}

fn first(xml: &str, tag: &str) -> String {
    xml_values(xml, tag)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no <{tag}> in IAM answer: {xml}"))
}

fn call(moto: &MotoServer, params: &[(&str, &str)]) -> String {
    let mut body: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{name}={}", form_encode(value)))
        .collect();
    body.push("Version=2010-05-08".to_owned());
    let response = moto.request(
        "POST",
        "/",
        &[
            ("Authorization", IAM_AUTHORIZATION),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.join("&").as_bytes(),
    );
    assert!(
        response.is_success(),
        "IAM {params:?} answered {}: {}",
        response.status,
        response.text()
    );
    response.text()
}

fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
