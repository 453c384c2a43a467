//! A small OpenAI-compatible embeddings endpoint (`POST /v1/embeddings`) for the end-to-end
//! tests of `embedding: {provider: openai}`: the vector of a text is the word-hash vector of
//! [`WordHashEmbedder`] (deterministic, so a test computes a query's vector itself), every
//! request is recorded (model, `dimensions`, texts, the `Authorization` header), and the test can make it refuse texts
//! containing a word, refuse the `dimensions` field as models without shortened embeddings do,
//! or hold requests unanswered from the Nth on while it kills the process that sent them.
//!
//! It runs on a thread and runtime of its own, so it answers while a test blocks on a child
//! process, and from synchronous and asynchronous tests alike.

use std::net::TcpListener;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use s3_connector::embed::testing::WordHashEmbedder;

/// One request as the endpoint saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct EmbedRequest {
    /// The `model` field.
    pub model: String,
    /// The `dimensions` field, when sent.
    pub dimensions: Option<u64>,
    /// The `input` texts, in order.
    pub inputs: Vec<String>,
    /// The `Authorization` header, when sent.
    pub authorization: Option<String>,
}

/// What the test set and what the endpoint saw.
#[derive(Default)]
struct Inner {
    requests: Vec<EmbedRequest>,
    /// Requests over the endpoint's life.
    total: usize,
    fail_word: Option<String>,
    refuse_dimensions: bool,
    /// Requests from this number on (counted from 1 over the endpoint's life) get no answer.
    hold_from: Option<usize>,
}

struct State {
    dimensions: usize,
    inner: Mutex<Inner>,
    /// Signalled on every request, for [`EmbedServer::wait_for_requests`].
    arrived: Condvar,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The endpoint; stops when dropped.
pub struct EmbedServer {
    url: String,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl EmbedServer {
    /// Starts an endpoint answering vectors of `dimensions` components on a free port.
    pub fn start(dimensions: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the embeddings endpoint");
        listener.set_nonblocking(true).expect("non-blocking");
        let url = format!("http://{}/v1", listener.local_addr().expect("address"));
        let state = Arc::new(State {
            dimensions,
            inner: Mutex::default(),
            arrived: Condvar::new(),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = axum::Router::new()
            .route("/v1/embeddings", axum::routing::post(answer))
            .with_state(Arc::clone(&state));
        std::thread::Builder::new()
            .name("embed-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime of the embeddings endpoint");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    // Held requests never finish: stopping drops them with the runtime.
                    tokio::select! {
                        _ = axum::serve(listener, router) => {}
                        _ = stopped => {}
                    }
                });
            })
            .expect("start the embeddings endpoint");
        Self {
            url,
            state,
            stop: Some(stop),
        }
    }

    /// The base URL a config's `endpoint_url` takes: `http://127.0.0.1:PORT/v1`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The vector the endpoint answers for `text` (before the client normalises it again).
    pub fn vector(&self, text: &str) -> Vec<f32> {
        WordHashEmbedder::new(self.state.dimensions).vector(text)
    }

    /// Makes every request with a text containing `word` fail with HTTP 400 (`None`: none).
    pub fn fail_on(&self, word: Option<&str>) {
        self.state.lock().fail_word = word.map(str::to_owned);
    }

    /// Makes every request that carries `dimensions` fail with HTTP 400 naming the field, as
    /// OpenAI does for text-embedding-ada-002 and vLLM for models without Matryoshka training.
    pub fn refuse_dimensions(&self, refuse: bool) {
        self.state.lock().refuse_dimensions = refuse;
    }

    /// Leaves the `n`th request from now on (1: the next one) and every later one
    /// unanswered; `None` answers all again. A held request ends when its client goes.
    pub fn hold_from(&self, n: Option<usize>) {
        let mut inner = self.state.lock();
        inner.hold_from = n.map(|n| inner.total + n);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<EmbedRequest> {
        self.state.lock().requests.clone()
    }

    /// The texts of every request so far, in order.
    pub fn texts(&self) -> Vec<String> {
        self.state
            .lock()
            .requests
            .iter()
            .flat_map(|request| request.inputs.clone())
            .collect()
    }

    /// Forgets the requests seen so far.
    pub fn clear(&self) {
        self.state.lock().requests.clear();
    }

    /// Waits until `n` requests have arrived since the last [`EmbedServer::clear`]; false
    /// if `timeout` passed first.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut inner = self.state.lock();
        while inner.requests.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            inner = self
                .state
                .arrived
                .wait_timeout(inner, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

impl Drop for EmbedServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An error answer in OpenAI's shape.
fn refusal(message: &str, param: Option<&str>) -> Response {
    let body = serde_json::json!({
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": null}
    });
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn answer(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return refusal("the body is not JSON", None);
    };
    let Ok(inputs) = serde_json::from_value::<Vec<String>>(request["input"].clone()) else {
        return refusal("input must be a list of strings", Some("input"));
    };
    let seen = EmbedRequest {
        model: request["model"].as_str().unwrap_or_default().to_owned(),
        dimensions: request["dimensions"].as_u64(),
        inputs,
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
    };
    let (held, failing, refused) = {
        let mut inner = state.lock();
        inner.requests.push(seen.clone());
        state.arrived.notify_all();
        inner.total += 1;
        let number = inner.total;
        (
            inner.hold_from.is_some_and(|from| number >= from),
            inner
                .fail_word
                .as_deref()
                .is_some_and(|word| seen.inputs.iter().any(|text| text.contains(word))),
            inner.refuse_dimensions && seen.dimensions.is_some(),
        )
    };
    if held {
        std::future::pending::<()>().await;
    }
    if refused {
        return refusal(
            "This model does not support specifying dimensions.",
            Some("dimensions"),
        );
    }
    if failing {
        return refusal(
            "a text of this request is refused on purpose",
            Some("input"),
        );
    }
    let fake = WordHashEmbedder::new(state.dimensions);
    let data: Vec<serde_json::Value> = seen
        .inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            serde_json::json!({"object": "embedding", "index": index, "embedding": fake.vector(text)})
        })
        .collect();
    let body = serde_json::json!({"object": "list", "data": data, "model": seen.model});
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
