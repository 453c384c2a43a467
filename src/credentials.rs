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
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};

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
    let region = resolve_region(connector.region.as_deref()).await;
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(connector.connect_timeout))
        .read_timeout(Duration::from_secs(connector.read_timeout))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region.clone())
        .timeout_config(timeouts)
        .retry_config(RetryConfig::disabled());
    if let Some(credentials) = static_credentials(connector) {
        loader = loader.credentials_provider(credentials);
    }
    let base = loader.load().await;
    let Some(role_arn) = connector.role() else {
        return base;
    };
    // STS for the role: S3-compatible stores (MinIO) serve it on their own endpoint.
    let sts_endpoint = connector
        .sts_endpoint_url
        .as_deref()
        .or(connector.endpoint_url.as_deref());
    let mut sts_config = base.clone().into_builder();
    if let Some(endpoint) = sts_endpoint {
        sts_config = sts_config.endpoint_url(endpoint);
    }
    let mut role = AssumeRoleProvider::builder(role_arn)
        .session_name(&connector.role_session_name)
        .session_length(Duration::from_secs(connector.role_duration_seconds.into()))
        .region(region)
        .configure(&sts_config.build());
    if let Some(external_id) = connector.external_id.as_deref() {
        role = role.external_id(external_id);
    }
    // `build` takes the source identity (static keys or the default chain) from `sts_config`.
    let provider = role.build().await;
    base.into_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build()
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
