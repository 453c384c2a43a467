//! Credentials: turns a connector's identity settings into an AWS SDK configuration.
//!
//! Three modes, as the config allows: static keys (with an optional session token), the
//! default AWS chain (environment, profile, web identity for Kubernetes, ECS and EC2 metadata),
//! and either of those as the source identity of an IAM role assumed through STS with an
//! ExternalId. Assumed-role credentials sit behind the SDK's identity cache, which refreshes
//! them before they expire, so long syncs keep working. This module builds providers; it does
//! not call S3.

use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;

use crate::config::ConnectorConfig;

/// The region used when neither the config nor the environment names one.
const FALLBACK_REGION: &str = "us-east-1";

/// Where the credentials of a connector come from, for messages and `verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialMode {
    /// Static keys from the config.
    StaticKeys,
    /// The default AWS credential chain.
    DefaultChain,
    /// A role assumed through STS, from static keys or the default chain.
    AssumedRole {
        /// The role.
        role_arn: String,
        /// True when static keys are the source identity.
        from_static_keys: bool,
    },
}

impl CredentialMode {
    /// The mode a connector's settings select.
    pub fn of(connector: &ConnectorConfig) -> Self {
        let from_static_keys = connector.access_key_id().is_some();
        match connector.role() {
            Some(role_arn) => Self::AssumedRole {
                role_arn: role_arn.to_owned(),
                from_static_keys,
            },
            None if from_static_keys => Self::StaticKeys,
            None => Self::DefaultChain,
        }
    }
}

/// The SDK configuration of a connector: region, credentials, timeouts, and SDK retries off
/// (our [`crate::retry::RetryPolicy`] retries instead, so attempts are counted in one place).
pub async fn sdk_config(connector: &ConnectorConfig) -> SdkConfig {
    let source = source_sdk_config(connector).await;
    let Some(role_arn) = connector.role() else {
        return source;
    };
    let mut role = AssumeRoleProvider::builder(role_arn)
        .session_name(&connector.role_session_name)
        .session_length(Duration::from_secs(connector.role_duration_seconds.into()))
        .configure(&sts_sdk_config(connector, &source));
    if let Some(region) = source.region() {
        role = role.region(region.clone());
    }
    if let Some(external_id) = connector.external_id.as_deref() {
        role = role.external_id(external_id);
    }
    // `build` takes the source identity (static keys or the default chain) from the config.
    let provider = role.build().await;
    source
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build()
}

/// The configuration of the source identity alone: static keys, else the default chain. For a
/// connector without a role this is its identity; with a role, the identity that assumes it.
pub async fn source_sdk_config(connector: &ConnectorConfig) -> SdkConfig {
    let region = resolve_region(connector.region.as_deref()).await;
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(connector.connect_timeout))
        .read_timeout(Duration::from_secs(connector.read_timeout))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .timeout_config(timeouts)
        .retry_config(RetryConfig::disabled());
    if let Some(credentials) = static_credentials(connector) {
        loader = loader.credentials_provider(credentials);
    }
    loader.load().await
}

/// `config` with STS's endpoint: `sts_endpoint_url`, else `endpoint_url` (S3-compatible stores
/// such as MinIO serve STS on their own endpoint), else AWS's.
fn sts_sdk_config(connector: &ConnectorConfig, config: &SdkConfig) -> SdkConfig {
    let endpoint = connector
        .sts_endpoint_url
        .as_deref()
        .or(connector.endpoint_url.as_deref());
    let mut builder = config.clone().into_builder();
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    builder.build()
}

/// The ARN of the source identity, from sts:GetCallerIdentity.
pub async fn caller_arn(connector: &ConnectorConfig) -> Result<String, CredentialsProblem> {
    let source = source_sdk_config(connector).await;
    let client = aws_sdk_sts::Client::new(&sts_sdk_config(connector, &source));
    let output =
        client.get_caller_identity().send().await.map_err(|error| {
            CredentialsProblem::from_error(&CredentialMode::of(connector), &error)
        })?;
    output
        .arn()
        .map(str::to_owned)
        .ok_or_else(|| CredentialsProblem {
            code: None,
            cause: "sts:GetCallerIdentity returned no ARN".to_owned(),
        })
}

/// Resolves the connector's credentials once (for a role: sts:AssumeRole with the external
/// id), as `verify` does before touching S3. Returns a description of the identity.
pub async fn resolve(connector: &ConnectorConfig) -> Result<String, CredentialsProblem> {
    let mode = CredentialMode::of(connector);
    let config = sdk_config(connector).await;
    let Some(provider) = config.credentials_provider() else {
        return Err(CredentialsProblem {
            code: None,
            cause: "no credentials provider is configured".to_owned(),
        });
    };
    match provider.provide_credentials().await {
        Ok(credentials) => Ok(match mode {
            CredentialMode::StaticKeys => {
                format!(
                    "static keys (access key {})",
                    mask_key_id(credentials.access_key_id())
                )
            }
            CredentialMode::DefaultChain => format!(
                "the default AWS credential chain (access key {})",
                mask_key_id(credentials.access_key_id())
            ),
            CredentialMode::AssumedRole { role_arn, .. } => {
                format!("assumed role {role_arn} with the external id")
            }
        }),
        Err(error) => Err(CredentialsProblem::from_error(&mode, &error)),
    }
}

/// The first four and last four characters of an access key id.
fn mask_key_id(key_id: &str) -> String {
    if key_id.len() <= 8 {
        return "*".repeat(key_id.len());
    }
    format!("{}…{}", &key_id[..4], &key_id[key_id.len() - 4..])
}

/// Why credentials could not be obtained or were refused, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{cause}")]
pub struct CredentialsProblem {
    /// The raw AWS error code, for support.
    pub code: Option<String>,
    /// What is wrong and what to do.
    pub cause: String,
}

/// What failed while obtaining credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialFailure {
    /// STS (or the S3-compatible store's STS) answered with this error code.
    Refused(String),
    /// STS could not be reached.
    Unreachable,
    /// No credentials were found (default chain empty).
    NotFound,
    /// Anything else.
    Other,
}

impl CredentialsProblem {
    /// Explains a credentials failure of `mode`; a pure function, tested with a table.
    pub fn explain(mode: &CredentialMode, failure: &CredentialFailure) -> Self {
        let source = match mode {
            CredentialMode::AssumedRole {
                from_static_keys: true,
                ..
            }
            | CredentialMode::StaticKeys => {
                "the static keys (aws_access_key_id / aws_secret_access_key)"
            }
            _ => "the default AWS credential chain's credentials",
        };
        let refused = match failure {
            CredentialFailure::Refused(code) => Some(code.as_str()),
            _ => None,
        };
        let cause = match (mode, refused, failure) {
            (CredentialMode::AssumedRole { role_arn, .. }, Some("AccessDenied"), _) => format!(
                "sts:AssumeRole of {role_arn} was refused: the role's trust policy does not name our principal, or the external_id does not match its sts:ExternalId condition (s3-connector trust-policy prints the policy to install)"
            ),
            (_, Some("InvalidClientTokenId" | "SignatureDoesNotMatch" | "InvalidAccessKeyId"), _) => format!(
                "{source} were refused: the access key is unknown or deactivated, or the secret key is wrong"
            ),
            (_, Some("ExpiredToken" | "ExpiredTokenException"), _) => {
                format!("{source} have expired: renew the session token")
            }
            (_, Some("RegionDisabledException"), _) => {
                "STS is not activated in the connector's region: activate it in IAM, or set region to one where it is".to_owned()
            }
            (_, Some(code), _) => format!("STS refused the request ({code})"),
            (_, None, CredentialFailure::Unreachable) => "STS is unreachable: check the network, and sts_endpoint_url / endpoint_url".to_owned(),
            (_, None, CredentialFailure::NotFound) => "no credentials were found: set aws_access_key_id and aws_secret_access_key, or provide credentials to the default AWS chain (environment, profile, web identity, instance role)".to_owned(),
            (_, None, _) => "credentials could not be obtained".to_owned(),
        };
        Self {
            code: refused.map(str::to_owned),
            cause,
        }
    }

    /// Explains an error from the SDK's credential providers or from an STS call.
    pub fn from_error(mode: &CredentialMode, error: &(dyn std::error::Error + 'static)) -> Self {
        let mut failure = CredentialFailure::Other;
        let mut detail = error.to_string();
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(err) = current {
            if let Some(sdk) = err.downcast_ref::<aws_sdk_sts::error::SdkError<AssumeRoleError>>() {
                (failure, detail) = sts_failure(sdk);
                break;
            }
            if let Some(sdk) =
                err.downcast_ref::<aws_sdk_sts::error::SdkError<GetCallerIdentityError>>()
            {
                (failure, detail) = sts_failure(sdk);
                break;
            }
            if let Some(CredentialsError::CredentialsNotLoaded(_)) =
                err.downcast_ref::<CredentialsError>()
            {
                failure = CredentialFailure::NotFound;
            }
            current = err.source();
        }
        let mut problem = Self::explain(mode, &failure);
        if !detail.is_empty() && failure != CredentialFailure::NotFound {
            problem.cause = format!("{} ({detail})", problem.cause);
        }
        problem
    }
}

/// The text of the first `<tag>` element in `xml`.
fn xml_element(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..end].trim().to_owned()).filter(|text| !text.is_empty())
}

/// The failure and message of an STS call's error.
fn sts_failure<E>(
    error: &aws_sdk_sts::error::SdkError<E, aws_sdk_sts::config::http::HttpResponse>,
) -> (CredentialFailure, String)
where
    E: ProvideErrorMetadata,
{
    use aws_sdk_sts::error::SdkError;
    match error {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            (CredentialFailure::Unreachable, String::new())
        }
        _ => {
            // Some S3-compatible stores (and moto) shape STS errors in ways the SDK's parser
            // does not read; the raw body still names the code.
            let raw_body = error
                .raw_response()
                .and_then(|response| response.body().bytes())
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let code = error
                .code()
                .map(str::to_owned)
                .or_else(|| xml_element(&raw_body, "Code"));
            let message = error
                .message()
                .map(str::to_owned)
                .or_else(|| xml_element(&raw_body, "Message"))
                .unwrap_or_else(|| error.to_string());
            match code {
                Some(code) => (CredentialFailure::Refused(code), message),
                None => (CredentialFailure::Other, message),
            }
        }
    }
}

/// Static keys from the config, if set.
fn static_credentials(connector: &ConnectorConfig) -> Option<SharedCredentialsProvider> {
    let key_id = connector.access_key_id()?;
    let secret = connector.secret_access_key()?;
    Some(SharedCredentialsProvider::new(Credentials::new(
        key_id,
        secret.expose(),
        connector
            .session_token()
            .map(|token| token.expose().to_owned()),
        None,
        "s3-connector-config",
    )))
}

async fn resolve_region(configured: Option<&str>) -> Region {
    match configured {
        Some(region) => Region::new(region.to_owned()),
        None => RegionProviderChain::default_provider()
            .or_else(FALLBACK_REGION)
            .region()
            .await
            .unwrap_or_else(|| Region::from_static(FALLBACK_REGION)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_failures_are_explained() {
        let role = CredentialMode::AssumedRole {
            role_arn: "arn:aws:iam::123456789012:role/reader".into(),
            from_static_keys: true,
        };
        let refused = |code: &str| CredentialFailure::Refused(code.to_owned());
        let cases = [
            (
                &role,
                refused("AccessDenied"),
                "sts:AssumeRole of arn:aws:iam::123456789012:role/reader was refused: the role's trust policy does not name our principal, or the external_id does not match",
            ),
            (
                &role,
                refused("InvalidClientTokenId"),
                "the static keys (aws_access_key_id / aws_secret_access_key) were refused",
            ),
            (
                &CredentialMode::StaticKeys,
                refused("SignatureDoesNotMatch"),
                "the static keys (aws_access_key_id / aws_secret_access_key) were refused: the access key is unknown or deactivated, or the secret key is wrong",
            ),
            (
                &CredentialMode::DefaultChain,
                refused("ExpiredToken"),
                "the default AWS credential chain's credentials have expired",
            ),
            (
                &role,
                refused("RegionDisabledException"),
                "STS is not activated in the connector's region",
            ),
            (
                &role,
                refused("Throttling"),
                "STS refused the request (Throttling)",
            ),
            (&role, CredentialFailure::Unreachable, "STS is unreachable"),
            (
                &CredentialMode::DefaultChain,
                CredentialFailure::NotFound,
                "no credentials were found",
            ),
            (
                &CredentialMode::DefaultChain,
                CredentialFailure::Other,
                "credentials could not be obtained",
            ),
        ];
        for (mode, failure, expected) in cases {
            let problem = CredentialsProblem::explain(mode, &failure);
            assert!(
                problem.cause.starts_with(expected),
                "{failure:?}: {}",
                problem.cause
            );
            let code = match &failure {
                CredentialFailure::Refused(code) => Some(code.clone()),
                _ => None,
            };
            assert_eq!(problem.code, code, "the raw code is kept for support");
        }
    }

    #[test]
    fn access_key_ids_are_masked_and_xml_codes_found() {
        assert_eq!(mask_key_id("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
        assert_eq!(mask_key_id("short"), "*****");
        assert_eq!(
            xml_element(
                "<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>",
                "Code"
            ),
            Some("AccessDenied".to_owned())
        );
        assert_eq!(xml_element("<a></a>", "Code"), None);
    }
}
