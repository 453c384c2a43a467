//! The validated `embedding:` block of a connector: which model turns passages into vectors,
//! and how passages are cut. Absent means no passages and no vectors: a plain full-text sync.

use std::path::PathBuf;

use crate::config::secret::Secret;

/// A connector's embedding settings, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingSettings {
    /// Where the vectors come from.
    pub provider: EmbeddingProvider,
    /// How passages are cut.
    pub passages: PassageSettings,
    /// Threads of the dedicated pool the local model runs on (never the async runtime's).
    pub threads: usize,
}

/// Where vectors come from.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbeddingProvider {
    /// A sentence-transformers model (all-MiniLM-L6-v2) run in-process with candle.
    Local {
        /// The model directory, in the Hugging Face hub layout (`config.json`,
        /// `model.safetensors`, `tokenizer.json`).
        model_dir: PathBuf,
    },
    /// An OpenAI-compatible `/v1/embeddings` endpoint.
    Openai {
        /// The endpoint's base URL (`https://api.openai.com/v1`).
        endpoint_url: String,
        /// The model name sent with each request.
        model: String,
        /// The API key, if the endpoint needs one.
        api_key: Option<Secret>,
        /// Components of every vector.
        dimensions: usize,
        /// Texts per request.
        batch_size: usize,
        /// Requests per second at most, 0 unlimited.
        requests_per_second: u32,
        /// A `tokenizer.json` to count tokens with; `None`: estimated from characters.
        tokenizer: Option<PathBuf>,
    },
}

/// How a document's text is cut into passages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassageSettings {
    /// Tokens per passage at most (the model's tokenizer counts them). Default 256.
    pub max_tokens: usize,
    /// Tokens shared by neighbouring passages. Default 32.
    pub overlap_tokens: usize,
    /// Passages kept per document; the rest are dropped and counted. Default 1,000.
    pub max_passages_per_document: usize,
}
