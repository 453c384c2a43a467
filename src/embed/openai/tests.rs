//! The `openai` provider against a small `/v1/embeddings` server of our own, in-process, that
//! fails on demand.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::*;
use crate::embed::testing::WordHashEmbedder;

/// What the server answers to one request.
#[derive(Clone, Debug)]
enum Reply {
    /// The vectors of [`WordHashEmbedder`], scaled by 3 and listed in reverse order (with
    /// their indexes), so that the client must sort and normalise.
    Vectors,
    /// This status, with this `Retry-After` if any.
    Status(u16, Option<&'static str>),
    /// A body that is not JSON.
    Garbage,
    /// One vector fewer than asked.
    WrongCount,
    /// Vectors one component short.
    WrongLength,
    /// [`Reply::Vectors`], after this long.
    Slow(Duration),
    /// A 400 naming `dimensions`, as OpenAI answers for text-embedding-ada-002, when the
    /// request carries the field; else [`Reply::Vectors`].
    RefuseDimensions,
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    authorization: Option<String>,
    model: String,
    dimensions: Option<u64>,
    inputs: usize,
}

#[derive(Clone)]
struct Script {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// The server: replies come from the script in order, then [`Reply::Vectors`].
struct FakeEndpoint {
    url: String,
    script: Script,
}

const DIMENSIONS: usize = 16;

impl FakeEndpoint {
    async fn start(replies: impl IntoIterator<Item = Reply>) -> Self {
        let script = Script {
            replies: Arc::new(Mutex::new(replies.into_iter().collect())),
            seen: Arc::default(),
        };
        let router = axum::Router::new()
            .route("/v1/embeddings", axum::routing::post(answer))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, script }
    }

    fn seen(&self) -> Vec<Seen> {
        self.script.seen.lock().unwrap().clone()
    }

    fn embedder(&self, batch_size: usize, api_key: Option<&str>) -> OpenaiEmbedder {
        let provider = EmbeddingProvider::Openai {
            endpoint_url: self.url.clone(),
            model: "fake-model".into(),
            api_key: api_key.map(Secret::new),
            dimensions: DIMENSIONS,
            batch_size,
            requests_per_second: 0,
            tokenizer: None,
        };
        let options = CallOptions {
            retry: RetryPolicy {
                max_attempts: 4,
                initial_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
            },
            timeout: Duration::from_millis(500),
        };
        OpenaiEmbedder::with_options(&provider, options).unwrap()
    }
}

async fn answer(
    axum::extract::State(script): axum::extract::State<Script>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let inputs: Vec<String> = serde_json::from_value(request["input"].clone()).unwrap();
    script.seen.lock().unwrap().push(Seen {
        authorization: headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap().to_owned()),
        model: request["model"].as_str().unwrap_or_default().to_owned(),
        dimensions: request["dimensions"].as_u64(),
        inputs: inputs.len(),
    });
    let reply = script
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Reply::Vectors);
    let fake = WordHashEmbedder::new(DIMENSIONS);
    let vectors = |count: usize, length: usize| {
        let data: Vec<serde_json::Value> = inputs
            .iter()
            .take(count)
            .enumerate()
            .rev()
            .map(|(index, text)| {
                let vector: Vec<f32> = fake
                    .vector(text)
                    .iter()
                    .take(length)
                    .map(|x| x * 3.0)
                    .collect();
                serde_json::json!({"object": "embedding", "index": index, "embedding": vector})
            })
            .collect();
        serde_json::json!({"object": "list", "data": data, "model": "fake-model"}).to_string()
    };
    match reply {
        Reply::RefuseDimensions if request.get("dimensions").is_some() => (
            StatusCode::BAD_REQUEST,
            r#"{"error":{"message":"This model does not support specifying dimensions.","param":"dimensions"}}"#,
        )
            .into_response(),
        Reply::Vectors | Reply::RefuseDimensions => {
            vectors(inputs.len(), DIMENSIONS).into_response()
        }
        Reply::Slow(delay) => {
            tokio::time::sleep(delay).await;
            vectors(inputs.len(), DIMENSIONS).into_response()
        }
        Reply::Status(status, retry_after) => {
            let mut response = (
                StatusCode::from_u16(status).unwrap(),
                "{\"error\":\"scripted\"}",
            )
                .into_response();
            if let Some(value) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, value.parse().unwrap());
            }
            response
        }
        Reply::Garbage => "<html>not json</html>".into_response(),
        Reply::WrongCount => vectors(inputs.len() - 1, DIMENSIONS).into_response(),
        Reply::WrongLength => vectors(inputs.len(), DIMENSIONS - 1).into_response(),
    }
}

fn texts(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("text number {i} about topic{i}"))
        .collect()
}

#[tokio::test]
async fn texts_go_in_batches_and_come_back_in_order_normalised() {
    let server = FakeEndpoint::start([]).await;
    let embedder = server.embedder(2, Some("sk-test-key"));
    let texts = texts(5);
    let vectors = embedder.embed(&texts).await.unwrap();
    let fake = WordHashEmbedder::new(DIMENSIONS);
    for (text, vector) in texts.iter().zip(&vectors) {
        let expected = fake.vector(text);
        for (got, want) in vector.iter().zip(&expected) {
            assert!((got - want).abs() < 1e-6, "{text}");
        }
    }
    let seen = server.seen();
    assert_eq!(seen.iter().map(|s| s.inputs).collect::<Vec<_>>(), [2, 2, 1]);
    assert!(seen.iter().all(
        |s| s.model == "fake-model" && s.authorization.as_deref() == Some("Bearer sk-test-key")
    ));
    assert_eq!((embedder.requests(), embedder.retries()), (3, 0));
    assert_eq!(embedder.model().id, "openai:fake-model");
}

#[tokio::test]
async fn throttling_server_errors_and_slow_answers_are_retried_and_counted() {
    let server = FakeEndpoint::start([
        Reply::Status(429, Some("0")),
        Reply::Status(503, None),
        Reply::Slow(Duration::from_secs(3)),
    ])
    .await;
    let embedder = server.embedder(8, None);
    let vectors = embedder.embed(&texts(3)).await.unwrap();
    assert_eq!(vectors.len(), 3);
    assert_eq!((embedder.requests(), embedder.retries()), (4, 3));
    assert!(server.seen().iter().all(|s| s.authorization.is_none()));
}

#[tokio::test]
async fn an_unusable_answer_fails_that_call_only_and_is_not_retried() {
    let server = FakeEndpoint::start([Reply::Garbage, Reply::WrongCount, Reply::WrongLength]).await;
    let embedder = server.embedder(8, Some("sk-secret-key"));
    let garbage = embedder.embed(&texts(2)).await.unwrap_err();
    assert!(
        matches!(&garbage, EmbedError::Endpoint(m) if m.contains("not an embeddings list")),
        "{garbage}"
    );
    let count = embedder.embed(&texts(2)).await.unwrap_err();
    assert_eq!(
        count.to_string(),
        "the embedding provider answered 1 vectors, expected 2 vectors of 16"
    );
    let length = embedder.embed(&texts(2)).await.unwrap_err();
    assert!(matches!(length, EmbedError::Shape { .. }), "{length}");
    assert_eq!(embedder.retries(), 0);
    assert_eq!(
        embedder.embed(&texts(2)).await.unwrap().len(),
        2,
        "the next call works"
    );
    for error in [garbage, count, length] {
        assert!(!format!("{error} {error:?}").contains("sk-secret-key"));
    }
}

#[tokio::test]
async fn a_lasting_failure_gives_up_after_the_attempts_and_a_client_error_at_once() {
    let server = FakeEndpoint::start(vec![Reply::Status(500, None); 4]).await;
    let embedder = server.embedder(8, Some("sk-secret-key"));
    let error = embedder.embed(&texts(1)).await.unwrap_err();
    assert!(error.to_string().contains("HTTP 500"), "{error}");
    assert_eq!((embedder.requests(), embedder.retries()), (4, 3));
    let server = FakeEndpoint::start([Reply::Status(401, None)]).await;
    let embedder = server.embedder(8, Some("sk-secret-key"));
    let error = embedder.embed(&texts(1)).await.unwrap_err();
    assert!(error.to_string().contains("HTTP 401"), "{error}");
    assert!(!error.to_string().contains("sk-secret-key"));
    assert_eq!(embedder.requests(), 1);
}

#[tokio::test]
async fn the_request_body_carries_model_input_format_and_dimensions() {
    let server = FakeEndpoint::start([]).await;
    let embedder = server.embedder(8, None);
    let texts = texts(2);
    assert_eq!(
        embedder.request_body(&texts, true),
        serde_json::json!({
            "model": "fake-model",
            "input": ["text number 0 about topic0", "text number 1 about topic1"],
            "encoding_format": "float",
            "dimensions": DIMENSIONS,
        })
    );
    let without = embedder.request_body(&texts, false);
    assert_eq!(without.get("dimensions"), None, "{without}");
    embedder.embed(&texts).await.unwrap();
    assert_eq!(server.seen()[0].dimensions, Some(DIMENSIONS as u64));
}

#[tokio::test]
async fn an_endpoint_refusing_dimensions_gets_requests_without_it_from_then_on() {
    let server = FakeEndpoint::start(vec![Reply::RefuseDimensions; 3]).await;
    let embedder = server.embedder(8, None);
    assert_eq!(embedder.embed(&texts(2)).await.unwrap().len(), 2);
    assert_eq!(embedder.embed(&texts(1)).await.unwrap().len(), 1);
    let sent: Vec<_> = server.seen().iter().map(|s| s.dimensions).collect();
    assert_eq!(sent, [Some(DIMENSIONS as u64), None, None]);
    assert_eq!((embedder.requests(), embedder.retries()), (3, 0));
}

#[tokio::test]
async fn a_refused_dimensions_field_is_named_when_the_request_without_it_fails_too() {
    let server = FakeEndpoint::start([Reply::RefuseDimensions, Reply::WrongLength]).await;
    let embedder = server.embedder(8, None);
    let error = embedder.embed(&texts(2)).await.unwrap_err().to_string();
    assert!(
        error.contains("refuses the `dimensions` field (embedding.dimensions is 16)")
            && error.contains("a vector of 15"),
        "{error}"
    );
    let server = FakeEndpoint::start([Reply::Status(400, None)]).await;
    let error = server.embedder(8, None).embed(&texts(1)).await.unwrap_err();
    assert!(
        !error.to_string().contains("`dimensions`"),
        "a refusal that does not name the field is not about it: {error}"
    );
    assert_eq!(server.seen().len(), 1, "and is not sent again");
}

#[test]
fn retry_after_is_read_as_seconds_or_a_date() {
    assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
    assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(Duration::ZERO),
        "a date in the past means now"
    );
    assert_eq!(parse_retry_after("soon"), None);
}
