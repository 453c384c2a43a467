//! The transport to one OpenSearch cluster: URL, authentication (basic or AWS SigV4), TLS trust,
//! timeouts, and sending a request once or under the retry policy.
//!
//! This module knows HTTP, not documents: what a request means and how its answer is read is up
//! to the callers (`mapping`, `bulk`, `scan`, `search`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::opensearch::OpenSearch;
use ::opensearch::auth::Credentials;
use ::opensearch::cert::{Certificate, CertificateValidation};
use ::opensearch::http::headers::{CONTENT_TYPE, HeaderMap, HeaderValue};
use ::opensearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use ::opensearch::http::{Method, Url};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::error::{OpensearchError, is_transient_status};
use crate::config::opensearch::OpensearchConfig;
use crate::config::redact_urls;
use crate::retry::RetryPolicy;

/// A request body: JSON, or NDJSON for `_bulk`.
#[derive(Clone, Debug)]
pub(super) enum Body {
    /// `application/json`.
    Json(Bytes),
    /// `application/x-ndjson`: one action line and one source line per document.
    NdJson(Bytes),
}

impl Body {
    /// A JSON body.
    pub(super) fn json(value: &serde_json::Value) -> Self {
        Self::Json(Bytes::from(value.to_string()))
    }
}

/// What one request sends: method, path, query and body.
#[derive(Clone, Copy, Debug)]
pub(super) struct Request<'a> {
    /// The HTTP method.
    pub method: Method,
    /// The path below the cluster's URL, e.g. from [`index_path`].
    pub path: &'a str,
    /// The query parameters.
    pub query: &'a [(&'a str, &'a str)],
    /// The body, if any.
    pub body: Option<&'a Body>,
}

/// An answer that was not a transient failure: any status the caller has to look at.
#[derive(Debug)]
pub(super) struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body, read in full.
    pub body: Bytes,
}

impl Reply {
    /// True for 2xx.
    pub(super) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body parsed as `T` for a 2xx answer; the error answer of `action` otherwise.
    pub(super) fn json<T: DeserializeOwned>(self, action: &str) -> Result<T, OpensearchError> {
        if !self.is_success() {
            return Err(self.into_error(action));
        }
        serde_json::from_slice(&self.body).map_err(|error| OpensearchError::InvalidResponse {
            action: action.to_owned(),
            detail: error.to_string(),
        })
    }

    /// This answer as the error of `action`.
    pub(super) fn into_error(self, action: &str) -> OpensearchError {
        OpensearchError::status(action, self.status, &self.body)
    }
}

/// The HTTP client of one cluster, shared by every index the process opens on it.
#[derive(Clone, Debug)]
pub(super) struct Client {
    os: OpenSearch,
    /// The URL as configured, for messages (its user information hidden).
    url: String,
    /// `max_retries + 1` attempts.
    pub retry: RetryPolicy,
    /// Requests retried so far, by every clone of this client.
    retries: Arc<AtomicU64>,
}

impl Client {
    /// Builds the client from the configuration: reads the CA file, loads AWS credentials for
    /// SigV4 (lazily: nothing is fetched until the first request), sets the timeout. Sends
    /// nothing.
    pub(super) async fn build(config: &OpensearchConfig) -> Result<Self, OpensearchError> {
        let shown = redact_urls(&config.url).into_owned();
        let url = Url::parse(&config.url).map_err(|error| OpensearchError::Url {
            url: shown.clone(),
            cause: error.to_string(),
        })?;
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
            .timeout(Duration::from_secs(config.request_timeout));
        if config.tls_insecure_skip_verify {
            tracing::warn!(
                message = "TLS certificate verification is off for OpenSearch (tls_insecure_skip_verify: true): anyone on the network path can read and change what is sent.",
                url = %shown
            );
            builder = builder.cert_validation(CertificateValidation::None);
        } else if let Some(path) = &config.ca_cert {
            let ca_error = |cause: String| OpensearchError::CaCert {
                path: path.clone(),
                cause,
            };
            let pem = std::fs::read(path).map_err(|error| ca_error(error.to_string()))?;
            let chain = Certificate::from_pem(&pem).map_err(|error| ca_error(error.to_string()))?;
            builder = builder.cert_validation(CertificateValidation::Full(chain));
        }
        if let Some((username, password)) = config.basic_auth() {
            if config.url.starts_with("http://") {
                tracing::warn!(
                    message = "OpenSearch credentials are sent over plain http; use https.",
                    url = %shown
                );
            }
            builder = builder.auth(Credentials::Basic(
                username.to_owned(),
                password.expose().to_owned(),
            ));
        }
        if let Some(sigv4) = &config.aws_sigv4 {
            let sdk_config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(sigv4.region.clone()))
                .load()
                .await;
            let credentials = Credentials::try_from(&sdk_config)
                .map_err(|error| OpensearchError::Client(format!("AWS SigV4: {error}")))?;
            builder = builder
                .auth(credentials)
                .service_name(sigv4.service.as_str());
        }
        let transport = builder
            .build()
            .map_err(|error| OpensearchError::Client(error.to_string()))?;
        Ok(Self {
            os: OpenSearch::new(transport),
            url: shown,
            retry: RetryPolicy::with_attempts(config.max_retries.saturating_add(1)),
            retries: Arc::default(),
        })
    }

    /// Sends one request. Transport failures and transient statuses (429, 502-504) are errors
    /// (see `Transient`); every other answer, error statuses included, is a [`Reply`].
    pub(super) async fn send_once(
        &self,
        action: &str,
        request: Request<'_>,
    ) -> Result<Reply, OpensearchError> {
        let mut headers = HeaderMap::new();
        let bytes = request.body.map(|body| match body {
            Body::Json(bytes) => bytes.clone(),
            Body::NdJson(bytes) => {
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-ndjson"),
                );
                bytes.clone()
            }
        });
        let transport_error = |cause| OpensearchError::transport(action, &self.url, &cause);
        let query = (!request.query.is_empty()).then_some(request.query);
        let response = self
            .os
            .send(request.method, request.path, headers, query, bytes, None)
            .await
            .map_err(transport_error)?;
        let status = response.status_code().as_u16();
        let body = response.bytes().await.map_err(transport_error)?;
        if is_transient_status(status) {
            return Err(OpensearchError::status(action, status, &body));
        }
        Ok(Reply { status, body })
    }

    /// Sends a request under the retry policy: transient failures are tried again with backoff,
    /// up to `max_retries` times.
    pub(super) async fn send(
        &self,
        action: &str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Body>,
    ) -> Result<Reply, OpensearchError> {
        let request = Request {
            method,
            path,
            query,
            body,
        };
        self.retry
            .run(
                || self.send_once(action, request),
                |error, delay| self.note_retry(error, delay),
            )
            .await
    }

    /// Counts and logs a retry the policy is about to make.
    pub(super) fn note_retry(&self, error: &OpensearchError, delay: Duration) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            message = "OpenSearch request failed; retrying.",
            %error,
            delay_ms = delay.as_millis() as u64
        );
    }

    /// Requests retried so far.
    pub(super) fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

/// `/{index}/{endpoint}`; index names are restricted to `[a-z0-9_-]`, so they need no escaping.
pub(super) fn index_path(index: &str, endpoint: &str) -> String {
    format!("/{index}/{endpoint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A URL with a password (which validation refuses) still never reaches a message: the
    /// client's own error quotes the URL, and ours names it.
    #[tokio::test]
    async fn a_password_in_the_url_is_never_in_an_error() {
        // Nothing listens on a port that was just free.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config: OpensearchConfig = serde_json::from_value(serde_json::json!({
            "url": format!("http://admin:hunter2-DO-NOT-LEAK@127.0.0.1:{port}/prefix"),
            "max_retries": 0,
        }))
        .unwrap();
        let client = Client::build(&config).await.unwrap();
        let error = client
            .send("reading the cluster's name", Method::Get, "/", &[], None)
            .await
            .unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains(&format!("http://**REDACTED**@127.0.0.1:{port}/prefix")),
            "{shown}"
        );
        let unparsable: OpensearchConfig = serde_json::from_value(serde_json::json!({
            "url": "http://admin:hunter2-DO-NOT-LEAK@[bad/",
        }))
        .unwrap();
        let error = Client::build(&unparsable).await.unwrap_err().to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }
}
