//! The `openai` provider: any endpoint that speaks OpenAI's `POST /v1/embeddings` (OpenAI,
//! Azure OpenAI's v1 API, Ollama, vLLM, text-embeddings-inference, LM Studio).
//!
//! Texts go in requests of `batch_size`, at most `requests_per_second` of them (governor),
//! each through the crate's one retry policy ([`RetryPolicy`]): throttling (429), server
//! errors, timeouts and dropped connections are retried with backoff, waiting at least what a
//! `Retry-After` asks; every retry is counted ([`Embedder::retries`]). An answer that is not
//! the expected JSON, or holds another number or length of vectors, fails that call and is not
//! retried. Vectors are L2-normalised here (not every server does it). The API key is sent as
//! `Authorization: Bearer` (and `api-key` to `*.openai.azure.com`), and never logged.
//!
//! Each request carries the configured `dimensions`, which OpenAI's text-embedding-3 models
//! (and servers of Matryoshka models) honour by shortening their vectors. A model or server
//! that refuses the field (text-embedding-ada-002, vLLM for other models) answers a client
//! error naming it: the request is sent again at once without it, and later requests go
//! without it, with a warning naming the field; the vectors must then have the configured
//! length on their own, and a failure from then on names the field.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Deserialize;

use super::tokens::TokenCounter;
use super::{EmbedError, EmbedFuture, Embedder, EmbeddingModel};
use crate::config::Secret;
use crate::config::embedding::EmbeddingProvider;
use crate::retry::{RetryPolicy, Transient};

/// Attempts per request, the first included.
const ATTEMPTS: u32 = 5;

/// How long one request may take, answer included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A client of one endpoint and model.
pub struct OpenaiEmbedder {
    model: EmbeddingModel,
    model_name: String,
    url: String,
    api_key: Option<Secret>,
    azure: bool,
    batch_size: usize,
    client: reqwest::Client,
    limiter: Option<DefaultDirectRateLimiter>,
    retry: RetryPolicy,
    counter: TokenCounter,
    requests: AtomicU64,
    retries: AtomicU64,
    /// Whether requests carry `dimensions`: until the endpoint refuses the field.
    send_dimensions: AtomicBool,
}

/// The options tests shorten.
#[derive(Debug, Clone, Copy)]
pub struct CallOptions {
    /// How requests are retried.
    pub retry: RetryPolicy,
    /// How long one request may take.
    pub timeout: Duration,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::with_attempts(ATTEMPTS),
            timeout: REQUEST_TIMEOUT,
        }
    }
}

impl OpenaiEmbedder {
    /// The client of an `openai` provider block; the tokenizer, when one is configured, is
    /// loaded now. Panics on a `local` block (the caller matched it).
    pub fn new(provider: &EmbeddingProvider) -> Result<Self, EmbedError> {
        Self::with_options(provider, CallOptions::default())
    }

    /// [`OpenaiEmbedder::new`] with other retry and timeout settings.
    pub fn with_options(
        provider: &EmbeddingProvider,
        options: CallOptions,
    ) -> Result<Self, EmbedError> {
        let EmbeddingProvider::Openai {
            endpoint_url,
            model,
            api_key,
            dimensions,
            batch_size,
            requests_per_second,
            tokenizer,
        } = provider
        else {
            unreachable!("OpenaiEmbedder::new is given the openai provider");
        };
        let counter = match tokenizer {
            Some(path) => TokenCounter::from_file(path)?,
            None => TokenCounter::Estimate,
        };
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .build()
            .map_err(|e| EmbedError::Endpoint(format!("cannot build the HTTP client: {e}")))?;
        let host = endpoint_url
            .split_once("://")
            .map_or("", |(_, rest)| rest.split(['/', ':']).next().unwrap_or(""));
        Ok(Self {
            model: EmbeddingModel {
                id: format!("openai:{model}"),
                dimensions: *dimensions,
            },
            model_name: model.clone(),
            url: format!("{}/embeddings", endpoint_url.trim_end_matches('/')),
            api_key: api_key.clone(),
            azure: host.ends_with(".openai.azure.com"),
            batch_size: (*batch_size).max(1),
            client,
            limiter: NonZeroU32::new(*requests_per_second)
                .map(|rate| RateLimiter::direct(Quota::per_second(rate))),
            retry: options.retry,
            counter,
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            send_dimensions: AtomicBool::new(true),
        })
    }

    /// Requests sent so far, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// One batch, retried as the policy says.
    async fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.retry
            .run_limited(
                "Embedding request failed; retrying.",
                self.limiter.as_ref(),
                (&self.requests, &self.retries),
                || self.call(texts),
            )
            .await
            .map_err(CallError::into_embed_error)
    }

    /// The body of a request for `texts`, with the `dimensions` field or without it.
    fn request_body(&self, texts: &[String], with_dimensions: bool) -> serde_json::Value {
        let mut body = serde_json::json!({
            "model": self.model_name,
            "input": texts,
            "encoding_format": "float",
        });
        if with_dimensions {
            body["dimensions"] = self.model.dimensions.into();
        }
        body
    }

    /// One request; sent again at once without `dimensions` when the endpoint refuses that
    /// field (and never with it after that). Once it has refused the field, a lasting failure
    /// names it: the vectors may have another length without it.
    async fn call(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, CallError> {
        let with_dimensions = self.send_dimensions.load(Ordering::Relaxed);
        let answer = match self.send(texts, with_dimensions).await {
            Err(refused) if with_dimensions && refused.refuses_dimensions() => {
                self.send_dimensions.store(false, Ordering::Relaxed);
                tracing::warn!(
                    message = "The embedding endpoint refuses the `dimensions` field; sending requests without it.",
                    url = %self.url,
                    model = %self.model_name,
                    dimensions = self.model.dimensions,
                    error = %refused
                );
                if let Some(limiter) = &self.limiter {
                    limiter.until_ready().await;
                }
                self.requests.fetch_add(1, Ordering::Relaxed);
                self.send(texts, false).await
            }
            other => other,
        };
        if self.send_dimensions.load(Ordering::Relaxed) {
            return answer;
        }
        // A transient failure is retried (without the field) as any other.
        answer.map_err(|error| {
            if error.is_transient() {
                return error;
            }
            CallError::Answer(EmbedError::Endpoint(format!(
                "the endpoint refuses the `dimensions` field (embedding.dimensions is {}), so \
                 requests go without it, and this one failed: {}",
                self.model.dimensions,
                error.into_embed_error()
            )))
        })
    }

    /// One request, as it goes.
    async fn send(
        &self,
        texts: &[String],
        with_dimensions: bool,
    ) -> Result<Vec<Vec<f32>>, CallError> {
        let mut request = self
            .client
            .post(&self.url)
            .json(&self.request_body(texts, with_dimensions));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
            if self.azure {
                request = request.header("api-key", key.expose());
            }
        }
        let response = request.send().await.map_err(CallError::transport)?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(parse_retry_after);
            let body = response.text().await.unwrap_or_default();
            return Err(CallError::Status {
                status: status.as_u16(),
                body: body.chars().take(300).collect(),
                retry_after,
            });
        }
        let body = response.bytes().await.map_err(CallError::transport)?;
        read_answer(&body, texts.len(), self.model.dimensions).map_err(CallError::Answer)
    }
}

impl Embedder for OpenaiEmbedder {
    fn model(&self) -> &EmbeddingModel {
        &self.model
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.counter.count(text)
    }

    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
        Box::pin(super::in_batches(texts, self.batch_size, |batch| {
            self.embed_batch(batch)
        }))
    }

    fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

/// Why one request failed.
#[derive(Debug, thiserror::Error)]
enum CallError {
    /// The endpoint answered an error status.
    #[error("the endpoint answered HTTP {status}: {body}")]
    Status {
        status: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    /// The request did not complete.
    #[error("the request failed: {message}")]
    Transport { message: String, transient: bool },
    /// The answer is unusable.
    #[error("{0}")]
    Answer(EmbedError),
}

impl CallError {
    fn transport(error: reqwest::Error) -> Self {
        let transient =
            error.is_timeout() || error.is_connect() || error.is_request() || error.is_body();
        // reqwest's message names the URL, never the headers: the key stays out.
        Self::Transport {
            message: error.to_string(),
            transient,
        }
    }

    /// Whether this is a client error (400, 422) whose answer names the `dimensions` field:
    /// how OpenAI, vLLM and validating servers refuse a field they do not take.
    fn refuses_dimensions(&self) -> bool {
        match self {
            Self::Status { status, body, .. } => {
                matches!(status, 400 | 422) && body.to_ascii_lowercase().contains("dimensions")
            }
            _ => false,
        }
    }

    fn into_embed_error(self) -> EmbedError {
        match self {
            Self::Answer(error) => error,
            other => EmbedError::Endpoint(other.to_string()),
        }
    }
}

impl Transient for CallError {
    fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => matches!(status, 408 | 409 | 429 | 500..=599),
            Self::Transport { transient, .. } => *transient,
            Self::Answer(_) => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A `Retry-After` value: seconds, or an HTTP date (then the time until it).
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let wait = at - time::OffsetDateTime::now_utc();
    Some(wait.try_into().unwrap_or(Duration::ZERO))
}

/// The answer's shape.
#[derive(Deserialize)]
struct Answer {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    embedding: Vec<f32>,
    #[serde(default)]
    index: Option<usize>,
}

/// The vectors of an answer, in input order and normalised; an error when the answer is not
/// JSON of that shape or holds another count or length of vectors.
fn read_answer(
    body: &[u8],
    expected: usize,
    dimensions: usize,
) -> Result<Vec<Vec<f32>>, EmbedError> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        let start: String = String::from_utf8_lossy(body).chars().take(100).collect();
        EmbedError::Endpoint(format!(
            "the answer is not an embeddings list ({e}): {start:?}"
        ))
    })?;
    let shape = |got: String| EmbedError::Shape {
        expected: format!("{expected} vectors of {dimensions}"),
        got,
    };
    if answer.data.len() != expected {
        return Err(shape(format!("{} vectors", answer.data.len())));
    }
    let mut items = answer.data;
    if items.iter().all(|item| item.index.is_some()) {
        items.sort_by_key(|item| item.index);
        if items
            .iter()
            .enumerate()
            .any(|(i, item)| item.index != Some(i))
        {
            return Err(shape("vectors with repeated or missing indexes".into()));
        }
    }
    items
        .into_iter()
        .map(|item| {
            let mut vector = item.embedding;
            if vector.len() != dimensions {
                return Err(shape(format!("a vector of {}", vector.len())));
            }
            if vector.iter().any(|x| !x.is_finite()) {
                return Err(shape("a vector with a non-finite component".into()));
            }
            let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                vector.iter_mut().for_each(|x| *x /= norm);
            }
            Ok(vector)
        })
        .collect()
}

#[cfg(test)]
mod tests;
