//! A small OpenAI-compatible `/v1/embeddings` endpoint for the tests that run the binary with
//! `embedding: {provider: openai}`: it answers the vectors of the library's `WordHashEmbedder`
//! (texts sharing words have a positive cosine) and counts the requests and texts it embedded.
//! It runs on a thread of its own, so tests that block (on processes, on polling) do not stall
//! it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use s3_connector::embed::testing::WordHashEmbedder;

/// Components of every vector the endpoint answers.
pub const DIMENSIONS: usize = 16;

/// What the endpoint saw.
#[derive(Default)]
struct Counts {
    requests: AtomicUsize,
    texts: AtomicUsize,
}

/// A running endpoint (it stops with the test process).
pub struct EmbeddingEndpoint {
    /// The base URL to configure as `endpoint_url` (`http://127.0.0.1:PORT/v1`).
    pub url: String,
    counts: Arc<Counts>,
}

impl EmbeddingEndpoint {
    /// Starts an endpoint on a free port.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let counts = Arc::new(Counts::default());
        let state = Arc::clone(&counts);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let router = axum::Router::new()
                    .route("/v1/embeddings", axum::routing::post(answer))
                    .with_state(state);
                axum::serve(listener, router).await.unwrap();
            });
        });
        Self { url, counts }
    }

    /// The `embedding:` block of a connector using this endpoint (indented for a connector
    /// of a test config).
    pub fn block(&self) -> String {
        format!(
            "    embedding:\n      provider: openai\n      endpoint_url: {}\n      model: word-hash\n      dimensions: {DIMENSIONS}\n",
            self.url
        )
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.counts.requests.load(Ordering::SeqCst)
    }

    /// Texts embedded so far.
    pub fn texts(&self) -> usize {
        self.counts.texts.load(Ordering::SeqCst)
    }
}

async fn answer(
    axum::extract::State(counts): axum::extract::State<Arc<Counts>>,
    body: axum::body::Bytes,
) -> String {
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let inputs: Vec<String> = serde_json::from_value(request["input"].clone()).unwrap();
    counts.requests.fetch_add(1, Ordering::SeqCst);
    counts.texts.fetch_add(inputs.len(), Ordering::SeqCst);
    let fake = WordHashEmbedder::new(DIMENSIONS);
    let data: Vec<serde_json::Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            serde_json::json!({"object": "embedding", "index": index, "embedding": fake.vector(text)})
        })
        .collect();
    serde_json::json!({"object": "list", "data": data, "model": "word-hash"}).to_string()
}
